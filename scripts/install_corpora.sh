#!/usr/bin/env bash
# Installs the Debian text corpora that scripts/make_features.py builds synthetic features from:
# WordNet 3.0 (concept words), fortunes (English and Chinese sentences) and the KJV bible (English sentences);
# and, for the SAE corpus of tokenlabel_jax.sae (varied English), the Python 3.11 documentation's reST sources
# (python3.11-doc) and the Jargon File (jargon-text).
# Idempotent: installs nothing when every package is already present; runs `apt-get update` only when needed.
set -euo pipefail

# bible-kjv-text ships the KJV compressed; the `bible` program of bible-kjv (which depends on it) prints it as text.
packages=(wordnet-base fortunes fortunes-min fortunes-zh bible-kjv-text bible-kjv python3.11-doc jargon-text)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_corpora: all corpora present (${packages[*]})"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when apt cannot yet see a missing package (a fresh machine has empty lists).
for pkg in "${missing[@]}"; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    "${as_root[@]}" apt-get update
    break
  fi
done

echo "install_corpora: installing ${missing[*]}"
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
