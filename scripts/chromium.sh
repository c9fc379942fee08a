#!/usr/bin/env bash
# Sourced by scripts/test.sh before the whole suite: the leaderboard site's browser tests (tests/test_site_browser.py)
# drive the system Chromium through Playwright, which downloads no browser. Installs the Debian package chromium
# when it is missing and this runs as root with apt-get (CI's fresh machine); otherwise says how to get it, and the
# browser tests skip (under CI they fail). Quiet and idempotent: nothing happens once chromium is on the PATH.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "libkd-bench setup: installing chromium for the browser tests (first run only)" >&2
        CHROMIUM_LOG="$(mktemp)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
            >"$CHROMIUM_LOG" 2>&1; then
            tail -n 5 "$CHROMIUM_LOG" >&2
            echo "libkd-bench setup: could not install chromium; the browser tests will skip" >&2
        fi
        rm -f "$CHROMIUM_LOG"
    else
        echo "libkd-bench setup: chromium not found; 'apt-get install chromium' (as root) runs the browser tests" >&2
    fi
fi
