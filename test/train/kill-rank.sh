#!/usr/bin/env bash
# Kill -9 one rank of a data-parallel run mid-way (or, with STOP, make it
# hang): the job must end within 60 s with a message, and leave no rank
# behind.
# usage: kill-rank.sh ARTIFACT CORPUS WORKDIR [KILL|STOP]
set -euo pipefail
artifact=$1 corpus=$2 work=$3 signal=${4:-KILL}
rm -rf "$work" && mkdir -p "$work"
gai-run launch -n 2 -- train "$artifact" --data "$corpus" --steps 1000000 --batch 4 \
  --quiet -o "$work/never.safetensors" 2> "$work/err" &
job=$!
# The ranks are the gai-run trains of this artifact; rank 1's environment
# says so (mpirun's variable, or launch's own).
rank1=""
for _ in $(seq 1000); do
  for pid in $(pgrep -f "gai-run train $artifact" || true); do
    environment=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null || true)
    if grep -qx -e 'OMPI_COMM_WORLD_RANK=1' -e 'RANK=1' <<< "$environment"; then
      rank1=$pid
    fi
  done
  [ -n "$rank1" ] && break
  sleep 0.05
done
if [ -z "$rank1" ]; then
  echo "FAIL: rank 1 never started" >&2
  exit 1
fi
sleep 1 # well into training
start=$(date +%s)
kill -s "$signal" "$rank1"
status=0
timeout 60 tail --pid="$job" -f /dev/null || { echo "FAIL: the job ran on for 60 s" >&2; exit 1; }
wait "$job" || status=$?
elapsed=$(( $(date +%s) - start ))
left=$(pgrep -f "gai-run train $artifact" || true)
if [ "$status" -eq 0 ] || [ -n "$left" ]; then
  echo "FAIL: exit status $status, ranks left: ${left:-none}" >&2
  exit 1
fi
[ "$signal" = STOP ] && what=stopped || what=killed
echo "the job ended ${elapsed} s after rank 1 was $what, status $status"
cat "$work/err"
