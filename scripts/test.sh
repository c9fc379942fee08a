#!/usr/bin/env bash
# Set up the environment (first run only) and run the tests.
#   scripts/test.sh            the fast tier: every test not marked slow (a few minutes on two cores)
#   scripts/test.sh --all      the whole suite, as continuous integration runs it (--full: the same)
# Other arguments go to pytest, e.g. `scripts/test.sh tests/test_metrics.py` or `scripts/test.sh --all -x`.
# Tests run in parallel processes, one per core up to 4 (LIBKD_BENCH_TEST_WORKERS overrides; 0 runs them in
# this process); the Ray tests stay together in one of them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
TIER=(-m "not slow")
if [ "${1:-}" = "--all" ] || [ "${1:-}" = "--full" ]; then
    TIER=()
    shift
fi
if [ "${#TIER[@]}" -eq 0 ]; then
    source "$ROOT/scripts/chromium.sh"  # the site's browser tests (slow tier) need the system Chromium
fi
CORES='import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))'
WORKERS="${LIBKD_BENCH_TEST_WORKERS:-$(python -c "$CORES")}"
# pytest exits 5 when it collects no test: with `set -e` that fails this script, as it should.
python -m pytest -n "$WORKERS" --dist loadgroup "${TIER[@]}" "$@"
