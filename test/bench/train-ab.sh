#!/usr/bin/env bash
# A session flag's effect on training speed: gai-run train on the same
# artifact with two sets of flags, alternating, so that the card's drift
# (clocks, power) falls on both. In two halves:
#
#   train-ab.sh compile GAIC OUT          (where MLIR is: the fused bf16
#                                          training artifacts of gpt2-124m
#                                          and llama-1b)
#   train-ab.sh run GAIRUN OUT "A" "B" [ROUNDS]
#                                         (on the GPU: ROUNDS, default 2, of
#                                          A then B for each model; A and B
#                                          are gai-run flags, such as
#                                          "--beside off" "--beside on")
#
# JSON lines go to stdout: the model, the flags, tokens/s over steps 3-12,
# the mean and median step, gai's allocated MiB. MODELS overrides the models
# (name:batch:sequence), CONFIGS the folder of NAME/config.json (examples/hf)
# TARGET and DTYPE the target and compute type (cuda, bf16), VOCAB the
# range of the random tokens (32000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
what=$1
models=${MODELS:-"gpt2-124m:16:1024 llama-1b:4:2048"}

if [ "$what" = compile ]; then
  gaic=$2 out=$3
  mkdir -p "$out"
  for m in $models; do
    IFS=: read -r name rows seq <<<"$m"
    "$gaic" "${CONFIGS:-$root/examples/hf}/$name/config.json" --mode=train --target=${TARGET:-cuda} \
      --dtype=${DTYPE:-bf16} --train-batch=$rows --train-seq-len=$seq --batch 1 --seq-len $seq \
      --fused-update --emit=artifact -o "$out/$name.gai"
  done
  exit 0
fi

[ "$what" = run ] || { echo "usage: train-ab.sh compile GAIC OUT | run GAIRUN OUT A B [ROUNDS]" >&2; exit 2; }
gairun=$2 out=$3 a=$4 b=$5 rounds=${6:-2}
vocab=${VOCAB:-32000} # random tokens below every model's vocabulary
data=$out/random-$vocab.bin
[ -f "$data" ] || python3 -c "import random, array, sys; random.seed(0); open(sys.argv[1], 'wb').write(
  array.array('H', (random.randrange(int(sys.argv[2])) for _ in range(2000000))).tobytes())" "$data" "$vocab"
for m in $models; do
  IFS=: read -r name rows seq <<<"$m"
  for ((r = 0; r < rounds; ++r)); do
    for flags in "$a" "$b"; do
      # shellcheck disable=SC2086 # the flags are words
      log=$("$gairun" train "$out/$name.gai" --data "$data" --steps 12 --batch $rows --warmup 2 \
            --quiet -o "$out/trained.safetensors" $flags 2>&1) || { echo "$log" >&2; exit 1; }
      python3 - "$name" "$flags" "$log" <<'PY'
import json, re, sys
name, flags, log = sys.argv[1:]
speed = re.search(r"speed: (\d+) tokens/s over steps \S+ \(a step: mean ([\d.]+) ms, median ([\d.]+) ms\)", log)
memory = re.search(r"memory: ([\d.]+) MiB allocated", log)
print(json.dumps({"workload": "train-" + name, "flags": flags,
                  "tokens_per_s": int(speed.group(1)) if speed else None,
                  "mean_step_ms": float(speed.group(2)) if speed else None,
                  "median_step_ms": float(speed.group(3)) if speed else None,
                  "allocated_mib": float(memory.group(1)) if memory else None}))
PY
    done
  done
done
