#!/usr/bin/env bash
# Kill -9 during training, resume from the latest checkpoint: the final
# weights must be bit-identical to an uninterrupted run's.
# usage: kill-resume.sh WORKDIR CORPUS
set -euo pipefail
work=$1 corpus=$2
rm -rf "$work" && mkdir -p "$work"
gaic "$(dirname "$0")/../../examples/tiny-llama.json" --mode=train --train-batch=4 \
  --train-seq-len=64 --emit=artifact -o "$work/model.gai"
flags=(train "$work/model.gai" --data "$corpus" --steps 40 --batch 8 --warmup 4 --seed 3 --quiet)
gai-run "${flags[@]}" -o "$work/uninterrupted.safetensors"

# gai-run itself in the background, so that the kill reaches it.
gai-run "${flags[@]}" --checkpoint-dir "$work/ck" --checkpoint-every 4 \
  -o "$work/resumed.safetensors" &
pid=$!
for _ in $(seq 3000); do # until a checkpoint at step 12 or later is named
  step=$(sed -n 's/^step-0*\([0-9][0-9]*\)\..*/\1/p' "$work/ck/latest" 2>/dev/null || true)
  [ "${step:-0}" -ge 12 ] && break
  sleep 0.01
done
kill -9 "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" -ne 137 ] || [ -e "$work/resumed.safetensors" ]; then
  echo "FAIL: the run was not killed mid-way (exit $status)" >&2
  exit 1
fi
echo "killed at $(cat "$work/ck/latest")"
gai-run "${flags[@]}" --checkpoint-dir "$work/ck" --checkpoint-every 4 --resume "$work/ck" \
  -o "$work/resumed.safetensors"
cmp "$work/uninterrupted.safetensors" "$work/resumed.safetensors"
echo "resumed weights are bit-identical"
