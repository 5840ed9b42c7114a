#!/usr/bin/env bash
# Runs the test suite: set-up with the test extras and the 135M model, then pytest (unit tests on tiny random Llamas,
# integration tests on the 135M model, the `qwen` tests on the default 1.5B and the 0.5B models). Extra arguments go
# to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test --model=smollm2-135m-instruct
exec .venv/bin/python -m pytest -q "$@"
