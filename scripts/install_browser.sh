#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`), which tests/test_report.py uses to render the HTML run report
# and check what a reader sees. Idempotent: installs nothing when it is present; `apt-get update` only when needed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install_browser: chromium present ($(command -v chromium))"
  exit 0
fi
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update
fi
echo "install_browser: installing chromium"
"${as_root[@]}" apt-get install -y --no-install-recommends chromium
