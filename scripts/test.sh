#!/usr/bin/env bash
# Set up the environment (first run only) and run the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"`.
# Tests run in parallel processes, one per core up to 4 (LIBKD_BENCH_TEST_WORKERS overrides; 0 runs them in
# this process); the Ray tests stay together in one of them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
CORES='import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))'
WORKERS="${LIBKD_BENCH_TEST_WORKERS:-$(python -c "$CORES")}"
# pytest exits 5 when it collects no test: with `set -e` that fails this script, as it should.
python -m pytest -n "$WORKERS" --dist loadgroup "$@"
