#!/usr/bin/env bash
# Runs the test suite: set-up with the test extras, then pytest (unit tests on tiny random Llamas, a few
# integration tests on the embedded model). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
