#!/usr/bin/env bash
# What pruning costs the main job's model, and what fine-tuning wins back:
# trains examples/tiny-llama.json on the fortunes corpus (as .ci/main does),
# then gives the held-out loss of the dense model, of its 2:4-pruned and
# structured-pruned forms (by magnitude, and by activation on the corpus),
# and of each after the same fine-tuning (2:4: masked), the dense model's
# too, so that the extra steps are not mistaken for what pruning kept.
# usage: examples/prune-fortunes.sh [BUILD_DIR] [cpu|cuda] [STEPS] [TUNE_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin target=${2:-cpu} steps=${3:-400} tune=${4:-500}
out=${1:-build}/prune-fortunes
mkdir -p "$out"
corpus=$out/fortunes.txt
cat /usr/share/games/fortunes/{fortunes,literature,riddles,people,science,wisdom,humorists} > "$corpus"
spec=examples/tiny-llama.json
held=0.05 # the last 5% of the corpus: never trained on, scored by eval
train=(--data "$corpus" --held-out $held --warmup 40 --quiet)
common=(--target=$target --batch 4 --seq-len 128)

eval_loss() { # ARTIFACT [--weights W]: the mean held-out loss
  "$bin/gai-run" eval "$@" --data "$corpus" --held-out $held --json |
    python3 -c 'import json,sys; print("%.4f" % json.loads(sys.stdin.read())["loss"])'
}

"$bin/gaic" $spec --mode=train "${common[@]}" --train-batch=8 -o "$out/dense-train.gai"
"$bin/gai-run" train "$out/dense-train.gai" "${train[@]}" --steps $steps -o "$out/dense.safetensors"

structured="--prune-heads 2 --prune-mlp 0.25"
declare -A forms=([dense]="" ["2:4"]="--prune=2:4" [structured]="$structured"
                  [calibrated]="$structured --calibration $corpus")
printf '%-12s %12s %14s\n' form "held-out loss" "after ${tune} steps"
for form in dense "2:4" structured calibrated; do
  flags=(${forms[$form]})
  name=${form//:/-}
  "$bin/gaic" $spec --weights "$out/dense.safetensors" "${common[@]}" --entries=forward \
    "${flags[@]}" -o "$out/$name.gai"
  before=$(eval_loss "$out/$name.gai")
  # Fine-tune from the dense weights (2:4: masked, the pruned weights held
  # at zero), at a tenth of the learning rate.
  "$bin/gaic" $spec --weights "$out/dense.safetensors" --mode=train "${common[@]}" \
    --train-batch=8 "${flags[@]}" -o "$out/$name-train.gai"
  "$bin/gai-run" train "$out/$name-train.gai" "${train[@]}" --steps $tune --lr 1e-4 \
    --min-lr 1e-5 -o "$out/$name-tuned.safetensors"
  if [ "$form" = "2:4" ]; then # compressed by the same rule
    "$bin/gaic" $spec --weights "$out/$name-tuned.safetensors" "${common[@]}" \
      --entries=forward "${flags[@]}" -o "$out/$name-tuned.gai"
    after=$(eval_loss "$out/$name-tuned.gai")
  else # the trained weights bind to the (pruned) artifact
    after=$(eval_loss "$out/$name.gai" --weights "$out/$name-tuned.safetensors")
  fi
  printf '%-12s %12s %14s\n' "$form" "$before" "$after"
done
