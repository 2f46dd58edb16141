#!/usr/bin/env bash
# Compiles a few tiny CPU artifacts with gaic and writes their payloads (the
# FlatBuffer without its 24-byte footer) to DIR: the artifact fuzzer's seeds.
#   test/fuzz/make_artifact_corpus.sh GAIC DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 GAIC DIR" >&2; exit 2; }
gaic=$1 out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
hf=$root/test/fixtures/hf
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compile() { # NAME SPEC FLAGS...
  local name=$1 spec=$2
  shift 2
  "$gaic" "$spec" --emit=artifact --target=cpu --cpu=x86-64 "$@" -o "$tmp/$name.gai"
  local size
  size=$(stat -c %s "$tmp/$name.gai")
  head -c $((size - 24)) "$tmp/$name.gai" > "$out/$name"
}

compile llama-forward "$root/examples/tiny-llama.json" --batch 1 --seq-len 8
compile llama-steps "$root/examples/tiny-llama.json" --batch 2 --seq-len 16 \
  --entries=prefill,decode --prefill-len 4
compile llama-train "$root/examples/tiny-llama.json" --mode=train --batch 1 \
  --seq-len 8 --train-batch 2 --train-seq-len 8
compile gpt-steps "$root/examples/tiny-gpt.json" --batch 1 --seq-len 8 \
  --entries=forward,prefill,decode
compile moe-forward "$root/examples/tiny-moe.json" --batch 1 --seq-len 4
for model in gpt2 mixtral gemma qwen2; do
  compile "hf-$model" "$hf/$model-tiny/config.json" --batch 1 --seq-len 8 \
    --entries=prefill,decode --prefill-len 4
done
