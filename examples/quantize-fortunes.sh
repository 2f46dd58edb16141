#!/usr/bin/env bash
# What weight quantization costs the main job's model: trains
# examples/tiny-llama.json on the fortunes corpus (as .ci/main does), then
# gives the held-out loss and perplexity of the float model and of its
# int8, int4 (groups of 128) and fp8 forms, and the increase of each.
# usage: examples/quantize-fortunes.sh [BUILD_DIR] [cpu|cuda] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin target=${2:-cpu} steps=${3:-2000}
out=${1:-build}/quantize-fortunes
mkdir -p "$out"
corpus=$out/fortunes.txt
cat /usr/share/games/fortunes/{fortunes,literature,riddles,people,science,wisdom,humorists} > "$corpus"
spec=examples/tiny-llama.json
held=0.05 # the last 5% of the corpus: never trained on, scored by eval
common=(--target=$target --batch 4 --seq-len 128 --entries=forward)

"$bin/gaic" $spec --mode=train --target=$target --train-batch=8 -o "$out/train.gai"
"$bin/gai-run" train "$out/train.gai" --data "$corpus" --held-out $held --steps $steps \
  --warmup 40 --quiet -o "$out/trained.safetensors" > /dev/null

loss_of() {
  "$bin/gai-run" eval "$1" --data "$corpus" --held-out $held --json |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["loss"])'
}
"$bin/gaic" $spec --weights "$out/trained.safetensors" "${common[@]}" -o "$out/float.gai"
base=$(loss_of "$out/float.gai")
printf '%-6s %10s %10s %10s\n' form loss perplexity increase
python3 -c "import math; print('%-6s %10.4f %10.4f %10s' % ('float', $base, math.exp($base), '-'))"
for form in int8 int4 fp8; do
  "$bin/gaic" $spec --weights "$out/trained.safetensors" "${common[@]}" --quantize=$form \
    --quant-group 128 -o "$out/$form.gai"
  loss=$(loss_of "$out/$form.gai")
  python3 -c "import math; print('%-6s %10.4f %10.4f %9.2f%%' % ('$form', $loss, math.exp($loss), 100 * (math.exp($loss) / math.exp($base) - 1)))"
done
