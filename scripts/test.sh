#!/usr/bin/env bash
# Set up the environment (first run only) and run the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
# pytest exits 5 when it collects no test: with `set -e` that fails this script, as it should.
python -m pytest "$@"
