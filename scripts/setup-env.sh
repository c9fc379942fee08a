#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install libkd-bench with everything it needs.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it reinstalls only when the pins change).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIBKD_BENCH_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "libkd-bench setup: $PYTHON not found; install Python >= 3.10 or set PYTHON=/path/to/python3" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "libkd-bench setup: $("$PYTHON" --version 2>&1) is too old; Python >= 3.10 is required (set PYTHON=...)" >&2
    exit 2
fi

# torch/torchvision pins per CPU architecture (a CUDA build on x86-64, which also runs on the CPU).
case "$(uname -m)" in
    aarch64|arm64) TORCH_PINS=(torch==2.9.1 torchvision==0.24.1) ;;
    *) TORCH_PINS=(torch==2.14.1 torchvision==0.29.1) ;;
esac

STAMP="$VENV/.libkd-bench-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16) ${TORCH_PINS[*]}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "libkd-bench setup: creating virtual environment $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "libkd-bench setup: installing dependencies into $VENV (first run: a few minutes)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "${TORCH_PINS[@]}"
    "$VENV/bin/python" -m pip install --quiet -c "$ROOT/scripts/constraints.txt" -e "$ROOT[dev,ray]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
