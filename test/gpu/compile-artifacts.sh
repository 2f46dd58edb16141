#!/usr/bin/env bash
# Compiles the GPU tests' artifacts (every HF fixture family, f32 and bf16;
# a forward entry at the fixture's shape, and prefill/decode for greedy
# generation; llama and gpt2 training, f32 and bf16 mixed precision, at the
# training fixtures' 2 x 16 batches) with gaic, so the GPU machine needs
# only the runtime.
# usage: compile-artifacts.sh GAIC FIXTURES_DIR OUT_DIR
set -euo pipefail
gaic=$1 fixtures=$2 out=$3
mkdir -p "$out"
for family in llama gpt2 mistral qwen2 mixtral gemma phi3 gemma2 qwen3 llama3 qwen2yarn gemma3 \
  phi3longrope phi3partial qwen2window; do
  dir=$fixtures/hf/$family-tiny
  for dtype in f32 bf16; do
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
      --dtype=$dtype --emit=artifact --entries=forward --batch 2 --seq-len 32 \
      -o "$out/$family-$dtype-forward.gai"
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
      --dtype=$dtype --emit=artifact --entries=prefill,decode --batch 2 \
      --seq-len 32 --prefill-len 3 -o "$out/$family-$dtype-generate.gai"
  done
done
for family in llama gpt2; do
  dir=$fixtures/hf/$family-tiny
  for dtype in f32 bf16; do
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
      --dtype=$dtype --mode=train --train-batch 2 --train-seq-len 16 --batch 1 \
      --seq-len 32 --emit=artifact -o "$out/$family-$dtype-train.gai"
  done
  # The step and its update in one entry (gradients not state).
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=bf16 --mode=train --train-batch 2 --train-seq-len 16 --batch 1 \
    --seq-len 32 --fused-update --emit=artifact -o "$out/$family-bf16-fused-train.gai"
  # The backward's RoPE before the head transposes (the form before
  # gai.rope token_major, the default).
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=f32 --mode=train --train-batch 2 --train-seq-len 16 --batch 1 \
    --seq-len 32 --rope-token-major=false --emit=artifact \
    -o "$out/$family-f32-transposed-train.gai"
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=bf16 --mode=train --train-batch 2 --train-seq-len 16 --batch 1 \
    --seq-len 32 --fused-update --rope-token-major=false --emit=artifact \
    -o "$out/$family-bf16-fused-transposed-train.gai"
done
# The collective steps of data parallelism and ZeRO-1 on a world of one (NCCL).
dir=$fixtures/hf/llama-tiny
for zero in 0 1; do
  name=$([ $zero = 1 ] && echo zero1 || echo dp1)
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=bf16 --mode=train --train-batch 2 --train-seq-len 16 --batch 1 \
    --seq-len 32 --mesh dp=1 --zero=$zero --emit=artifact -o "$out/llama-bf16-$name-train.gai"
done
# Quantized forms (groups of 16 divide every fixture's k): CUDA f32 and
# bf16 beside the CPU's f32 build of the same quantized model, and an int8
# generation artifact. quantized_forms FAMILY NAME-SUFFIX FORMATS [FLAGS...]
quantized_forms() {
  local family=$1 suffix=$2 formats=$3 dir=$fixtures/hf/$1-tiny
  shift 3
  for format in $formats; do
    local quant=(--quantize=$format --quant-group 16 "$@") name=$format$suffix
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cpu --dtype=f32 \
      --emit=artifact --entries=forward --batch 2 --seq-len 32 "${quant[@]}" \
      -o "$out/$family-cpu-$name-forward.gai"
    for dtype in f32 bf16; do
      "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
        --dtype=$dtype --emit=artifact --entries=forward --batch 2 --seq-len 32 "${quant[@]}" \
        -o "$out/$family-$dtype-$name-forward.gai"
    done
  done
  for dtype in f32 bf16; do
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
      --dtype=$dtype --emit=artifact --entries=prefill,decode --batch 2 --seq-len 32 \
      --prefill-len 3 --quantize=int8 "$@" -o "$out/$family-$dtype-int8$suffix-generate.gai"
  done
}
for family in llama gpt2 mistral qwen2 mixtral gemma; do
  quantized_forms $family "" "int8 int4 fp8"
done
# fp8 with the kernels that make each GEMM's A writing it in e4m3 (the
# default), beside the same model whose GEMMs convert their own A
# (CudaFusedFp8Activations).
for family in llama qwen2 gemma mistral; do
  dir=$fixtures/hf/$family-tiny
  for fused in true false; do
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda --dtype=bf16 \
      --emit=artifact --entries=forward --batch 2 --seq-len 32 --quantize=fp8 \
      --quant-group 16 --fuse-fp8-activations=$fused -o "$out/$family-bf16-fp8fused$fused-forward.gai"
  done
done
# Tied heads quantized as copies of their tables (int8head, int4head): the
# skip list keeps only the tables.
for family in gpt2 qwen2 gemma; do
  quantized_forms $family head "int8 int4" "--quant-skip=*embed*,*wte*,*wpe*"
done
# 2:4 pruned forms (--prune=2:4), at 8 positions so that every GEMM is
# decode-sized: bf16 runs the GEMV over the stored values, with norms
# folded and gated products; f32 decompresses. Beside them the CPU's f32
# build of the same pruned model, and a bf16 generation artifact.
for family in llama gpt2 gemma qwen2; do
  dir=$fixtures/hf/$family-tiny
  prune=(--prune=2:4)
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cpu --dtype=f32 \
    --emit=artifact --entries=forward --batch 1 --seq-len 8 "${prune[@]}" \
    -o "$out/$family-cpu-p24-forward.gai"
  for dtype in f32 bf16; do
    "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
      --dtype=$dtype --emit=artifact --entries=forward --batch 1 --seq-len 8 "${prune[@]}" \
      -o "$out/$family-$dtype-p24-forward.gai"
  done
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=bf16 --emit=artifact --entries=prefill,decode --batch 2 --seq-len 32 \
    --prefill-len 3 "${prune[@]}" -o "$out/$family-bf16-p24-generate.gai"
  # 64 rows: prefill-sized GEMMs (cuSPARSELt where it is found), beside the CPU.
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cpu --dtype=f32 \
    --emit=artifact --entries=forward --batch 2 --seq-len 32 "${prune[@]}" \
    -o "$out/$family-cpu-p24-rows-forward.gai"
  "$gaic" "$dir/config.json" --weights "$dir/model.safetensors" --target=cuda \
    --dtype=bf16 --emit=artifact --entries=forward --batch 2 --seq-len 32 "${prune[@]}" \
    -o "$out/$family-bf16-p24-rows-forward.gai"
done
