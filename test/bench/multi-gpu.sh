#!/usr/bin/env bash
# The multi-GPU figures (data parallelism, ZeRO-1, tensor-parallel
# generation, a loss check), in two halves:
#
#   multi-gpu.sh compile GAIC OUT N   (where MLIR is: the artifacts, small,
#                                      with no weights)
#   multi-gpu.sh run BIN OUT N PEERS  (on a machine of N GPUs: gai's runs
#                                      and, beside them, test/bench/ddp_peer.py
#                                      on PEERS, the shared peers script)
#
# JSON lines go to stdout. N is 2 or 4; the one-GPU runs of the same
# workloads are the baseline of each. NCCL comes from GAI_NCCL_LIBRARY (a
# PyTorch environment's nvidia/nccl/lib/libnccl.so.2 is found if unset).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
what=$1
train_models="gpt2-124m:16:1024 llama-1b:4:2048" # name:batch per GPU:sequence

if [ "$what" = compile ]; then
  gaic=$2 out=$3 n=$4
  mkdir -p "$out"
  for m in $train_models; do
    IFS=: read -r name rows seq <<<"$m"
    common=("$root/examples/hf/$name/config.json" --mode=train --target=cuda --dtype=bf16
            --train-seq-len=$seq --batch 1 --seq-len $seq)
    "$gaic" "${common[@]}" --train-batch=$rows -o "$out/$name-one.gai"
    "$gaic" "${common[@]}" --train-batch=$((rows * n)) --mesh dp=$n -o "$out/$name-dp$n.gai"
    "$gaic" "${common[@]}" --train-batch=$((rows * n)) --mesh dp=$n --zero=1 -o "$out/$name-zero$n.gai"
  done
  # The loss check: gpt2-124m's global batch of 16 on one GPU, dp=2, tp=2.
  common=("$root/examples/hf/gpt2-124m/config.json" --mode=train --target=cuda --dtype=bf16
          --train-seq-len=1024 --batch 1 --seq-len 1024 --train-batch=16)
  "$gaic" "${common[@]}" --mesh dp=2 -o "$out/gpt2-124m-loss-dp2.gai"
  "$gaic" "${common[@]}" --mesh tp=2 -o "$out/gpt2-124m-loss-tp2.gai"
  # Generation: llama-1b prefill of 2048 tokens and batch-1 decode, one GPU
  # and tp=N, weights bound at run time.
  config=$root/examples/hf/llama-1b/config.json
  for mesh in "" "--mesh tp=$n"; do
    tag=${mesh:+-tp$n}
    "$gaic" $config --target=cuda --dtype=bf16 --entries=prefill,decode --batch 1 --seq-len 2048 \
      --prefill-len 2048 $mesh -o "$out/llama-1b-prefill$tag.gai"
    "$gaic" $config --target=cuda --dtype=bf16 --entries=prefill,decode --batch 1 --seq-len 384 \
      --prefill-len 128 $mesh -o "$out/llama-1b-decode$tag.gai"
  done
  exit 0
fi

bin=$2 out=$3 n=$4 peers=$5
run=$bin/gai-run
export NCCL_NVLS_ENABLE=0
if [ -z "${GAI_NCCL_LIBRARY:-}" ]; then
  GAI_NCCL_LIBRARY=$(python3 -c "import glob, site; c=[p for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/nccl/lib/libnccl.so.2')]; print(c[0] if c else '')")
  export GAI_NCCL_LIBRARY
fi
data=/tmp/multi-gpu-random.bin
python3 -c "import random, array; random.seed(0); open('$data', 'wb').write(
  array.array('H', (random.randrange(32000) for _ in range(8000000))).tobytes())"
last() { tail -1 "$1" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({k: r[k] for k in r if k in ('step','loss','tokens_per_s','step_s','allocated_bytes','device_used_bytes')}))"; }

for m in $train_models; do
  IFS=: read -r name rows seq <<<"$m"
  flags=(--data "$data" --data-format u16 --steps 12 --warmup 2 --quiet)
  echo "{\"run\": \"gai $name one GPU\", \"result\": $($run train "$out/$name-one.gai" "${flags[@]}" \
    --batch $rows --metrics /tmp/$name-one.jsonl -o /tmp/x.safetensors >/dev/null 2>&1; last /tmp/$name-one.jsonl)}"
  for kind in dp zero; do
    $run launch -n $n -- train "$out/$name-$kind$n.gai" "${flags[@]}" --batch $((rows * n)) \
      --metrics /tmp/$name-$kind.jsonl -o /tmp/x.safetensors >/dev/null 2>&1 || true
    echo "{\"run\": \"gai $name $kind=$n\", \"result\": $(last /tmp/$name-$kind.jsonl 2>/dev/null || echo null)}"
  done
  torchrun --nproc-per-node 1 "$here/ddp_peer.py" --peers "$peers" --model $name --batch $rows \
    --seq $seq --modes ddp 2>/dev/null | grep '^{' || true
  torchrun --nproc-per-node $n "$here/ddp_peer.py" --peers "$peers" --model $name --batch $rows \
    --seq $seq --modes ddp,zero1,fsdp 2>/dev/null | grep '^{' || true
done

# Tensor-parallel generation against one GPU, on the same random weights.
$run init "$out/llama-1b-prefill.gai" -o /tmp/llama-1b.safetensors >/dev/null
for tag in "" "-tp$n"; do
  launch=()
  [ -n "$tag" ] && launch=($run launch -n $n --)
  [ -z "$tag" ] && launch=($run)
  "${launch[@]}" bench "$out/llama-1b-prefill$tag.gai" --weights /tmp/llama-1b.safetensors \
    --workload prefill --name "llama-1b$tag" --iters 20 2>/dev/null | grep '^{'
  "${launch[@]}" bench "$out/llama-1b-decode$tag.gai" --weights /tmp/llama-1b.safetensors \
    --workload decode --name "llama-1b$tag" 2>/dev/null | grep '^{'
done

# The loss check: 50 steps of the same global batch, one GPU against dp=2
# and tp=2 (the gpt2-124m artifact of 16 rows).
if [ "$n" -ge 2 ]; then
  flags=(--data "$data" --data-format u16 --steps 50 --warmup 5 --quiet --batch 16)
  $run train "$out/gpt2-124m-one.gai" "${flags[@]}" --metrics /tmp/loss-one.jsonl -o /tmp/x.safetensors \
    >/dev/null 2>&1 || true
  for kind in dp2 tp2; do
    $run launch -n 2 -- train "$out/gpt2-124m-loss-$kind.gai" "${flags[@]}" \
      --metrics /tmp/loss-$kind.jsonl -o /tmp/x.safetensors >/dev/null 2>&1 || true
    python3 - /tmp/loss-one.jsonl /tmp/loss-$kind.jsonl $kind <<'PY'
import json, sys
def losses(p):
    return [json.loads(l)["loss"] for l in open(p) if '"loss"' in l and '"step"' in l]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and b else None
print(json.dumps({"run": "loss check " + sys.argv[3], "steps": min(len(a), len(b)),
                  "worst_relative": worst, "last": [a[-1] if a else None, b[-1] if b else None]}))
PY
  done
fi
