// The gai passes. Each lives in its own file and has its own lit test,
// test/passes/<flag>.mlir.
#ifndef GAI_PASSES_TD
#define GAI_PASSES_TD

include "mlir/Pass/PassBase.td"

def GaiAttentionRewrite : Pass<"gai-attention-rewrite", "func::FuncOp"> {
  let summary = "Replace naive attention with gai.flash_attention";
  let description = [{
    Finds `softmax(select(causal_mask, Q·Kᵀ·scale, -inf))·V`. K and V may be
    repeated along the head axis for grouped queries, and a softcap
    (c·tanh(s / c)) may follow the scale. It replaces the pattern with
    `gai.flash_attention` {scale, kv_groups, causal, window, softcap}. The
    rewrite runs only when it is exact. It leaves these unchanged: a softmax
    over another axis, a mask that is not causal, a scale that is not the same
    for every element, a fill value other than -inf (or the type's lowest), and
    K and V repeated differently.

    With `fold-cache-writes`, a generation step's flash attention whose K
    and V are cache writes at its query positions, of few new rows,
    becomes one `gai.cached_attention` together with those writes and the
    RoPE of its query and new keys (when both are rotated alike). Every
    other use of the caches must follow the attention, and K and V must be
    two writes of as many rows as the query (at most `folded-rows`).
  }];
  let options = [
    Option<"foldCacheWrites", "fold-cache-writes", "bool", /*default=*/"false",
           "fold a generation step's KV cache writes and RoPE into its "
           "attention (gai.cached_attention)">,
    Option<"foldedRows", "folded-rows", "int64_t", /*default=*/"16",
           "the most new rows a folded step may have (the runtime's "
           "kMostFoldedQueries)">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiAttentionLayout : Pass<"gai-attention-layout", "func::FuncOp"> {
  let summary = "Let attention read and write [B, T, H, D] tensors in place "
                "of the head transposes around it";
  let description = [{
    A projection makes q, k and v as [B, T, H·D], and the output projection
    reads [B, T, H·D]; attention works per head. The frontend bridges the
    two with transposes ([0, 2, 1, 3]), each a pass over the tensor. This
    pass drops them: an operand of gai.flash_attention or
    gai.flash_attention_grad made by such a transpose becomes the
    transpose's input, marked in `token_major`, and a result (the output,
    or a gradient) read only through such transposes, or as the backward's
    `out`, is made [B, T, H, D] itself. The kernels read and write rows at
    any stride. A slice of a packed q/k/v projection before the transpose
    becomes a view at lowering (exec), as does a concat of the gradients.

    With `tensor-core-forward`, gai.flash_attention is changed only where
    the CUDA runtime's tensor-core kernel runs it (bf16, head dims both 64
    or both 128, at least 64 queries), the one forward kernel that takes
    strides; the backward kernels all do, as do the CPU's.

    With `rope-token-major`, a q or k gradient that RoPE rotates back
    before its head transpose is transposed first and rotated token-major
    (gai.rope token_major): the backward then writes dq and dk [B, T, H, D]
    and no transpose is left.
  }];
  let options = [
    Option<"tensorCoreForward", "tensor-core-forward", "bool", /*default=*/"false",
           "change gai.flash_attention only where the CUDA runtime's "
           "tensor-core kernel runs it (the CUDA target)">,
    Option<"ropeTokenMajor", "rope-token-major", "bool", /*default=*/"false",
           "rotate q and k gradients after their head transpose, so the "
           "backward writes them [B, T, H, D]">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiFusion : Pass<"gai-fusion", "func::FuncOp"> {
  let summary = "Attach GEMM epilogues; group elementwise and row ops into "
                "gai.fusion regions";
  let description = [{
    First, a `gai.matmul` absorbs the ops that follow it into a `gai.gemm`:
    a bias add ([N]), then an activation (silu, gelu, gelu-tanh, relu), then
    a residual add. Each absorbed op must be the only user of the value
    before it.

    Second, the pass puts elementwise ops and row ops (softmax, reductions
    over the last axis, rms_norm, layer_norm, rope, masks) into `gai.fusion`
    regions. Each region becomes one kernel. A producer joins its consumer's
    region when the consumer is its only user, so a region is a tree and no
    intermediate escapes it. Splat constants are copied into each region
    that uses them.

    Before both, with `gated-gemm-rows` = R > 0, a gated linear unit
    `act(x·Wgᵀ) * (x·Wuᵀ)` (any epilogue activation; both weights [N, K]
    with K a multiple of 8, both products used only there) whose x has at
    most R rows becomes one `gai.gated_gemm`.

    A region reads at most `max-inputs` tensors; a producer that would take
    it past that starts a region of its own.

    With `absorb-transposes`, a transpose that keeps the last axis joins its
    only consumer's region too (its input becomes the region's input): the
    generated GPU kernels read rows through the permutation, so the head
    transposes before RoPE cost no pass of their own.
  }];
  let options = [
    Option<"epilogues", "epilogues", "bool", /*default=*/"true",
           "attach bias, activation and residual adds to GEMMs">,
    Option<"libraryActivations", "library-activations", "bool",
           /*default=*/"false",
           "attach only the activations a GEMM library applies in its own "
           "epilogue (relu, tanh-gelu): silu and exact gelu then stay with "
           "their consumers' fusion kernel instead of costing a pass of "
           "their own after a library GEMM (the CUDA target)">,
    Option<"absorbTransposes", "absorb-transposes", "bool", /*default=*/"false",
           "let a transpose that keeps the last axis join its consumer's "
           "region, read through the permutation (the CUDA target)">,
    Option<"gatedGemmRows", "gated-gemm-rows", "int64_t", /*default=*/"0",
           "make act(x·Wgᵀ) * (x·Wuᵀ) one gai.gated_gemm when x has at "
           "most this many rows (0: never; the CUDA target's GEMV takes 8)">,
    Option<"narrowResidualRows", "narrow-residual-rows", "int64_t", /*default=*/"0",
           "a product whose library GEMM is fast only with a bf16 result (2:4 "
           "weights, a gai.decompress: cuSPARSELt writes bf16 only; fp8 ones, "
           "a gai.dequantize fp8_e4m3: cuBLASLt's fp8 GEMM with an f32 C runs "
           "at about bf16's speed) of more rows than this keeps an f32 residual "
           "add out of its GEMM, for the next fusion kernel (0: never; the CUDA "
           "target sets its GEMV's 8, whose residual epilogue reads such weights "
           "as they are)">,
    Option<"normFoldRows", "norm-fold-rows", "int64_t", /*default=*/"-1",
           "the most rows of an RMSNorm region kept apart for the decode "
           "lowering's fold into its GEMV (-1: every one); a larger one merges "
           "as other regions do (a 2:4 prefill's residual add joins it)">,
    Option<"columnPartialRows", "column-partial-rows", "int64_t", /*default=*/"0",
           "a sum over every row of an f32 region result (a norm weight's or a "
           "bias's gradient) reads column sums of this many rows (or of the "
           "largest power-of-two fraction of it dividing the rows) that the "
           "region's kernel adds as it goes, and the rows are not written "
           "when nothing else reads them (0 or 1: never; the CUDA target "
           "sets 8, the CPU kernels have no such form)">,
    Option<"maxInputs", "max-inputs", "int64_t", /*default=*/"64",
           "the most tensors a region reads: the gradient norm of a deep "
           "model would otherwise read every gradient in one kernel, whose "
           "code generation grows faster than its size">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiAutodiff : Pass<"gai-autodiff", "ModuleOp"> {
  let summary = "Reverse-mode gradient of a loss function";
  let description = [{
    For `@f(args) -> (loss, ...)` with a scalar float loss, adds
    `@f_grad(args) -> (loss, d loss / d arg for each float argument)`: the
    forward ops, then each op's vector-Jacobian product in reverse order,
    adjoints of values with several users summed, broadcasts summed back.
    Ops without a rule are reported on the op.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"loss\"",
           "the function to differentiate">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiTrainStep : Pass<"gai-train-step", "ModuleOp"> {
  let summary = "Training entries from a loss function over gai.param weights";
  let description = [{
    From `@<function>(tokens, targets) -> loss`, adds:
    - `@train_step(tokens, targets)`: the loss and its gradients with
      respect to every parameter, added to the state `grad.<name>` (so
      micro-batches accumulate), and `grad_sq`, the squared global norm of
      the accumulated gradients;
    - `@optimizer_step(lr, beta1, beta2, eps, weight_decay, grad_scale,
      bias_correction1, bias_correction2_sqrt)`: AdamW as PyTorch computes
      it (decoupled weight decay on parameters of rank >= 2 only) over the
      gradients times `grad_scale` (clipping and micro-batch averaging),
      with moments in the state `adam.m.<name>`, `adam.v.<name>`; new
      parameters go to `param.<name>`, and the gradients are zeroed
      (`--gai-first-micro-batch` removes that);
    - `@zero_grads()`: zeroes the gradients (a skipped step).
    The learning-rate schedule and the clipping factor come from the caller,
    which sees the loss and the norm first.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"eval_loss\"",
           "the loss function">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiFirstMicroBatch : Pass<"gai-first-micro-batch", "ModuleOp"> {
  let summary = "A training step for a step's first micro-batch, which writes the gradients";
  let description = [{
    After `--gai-train-step`: adds `@train_step_first`, `@train_step`
    without the gradients' state arguments, whose gradients are written to
    `grad.<name>` instead of added to what it held (a parameter without a
    gradient gets zeros). The runtime runs it for a step's first
    micro-batch, so the gradients need no zeroing between steps:
    `@optimizer_step` stops zeroing them, and no GEMM reads them to add its
    product. `@zero_grads` stays (a skipped step, a resumed run).
  }];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiFusedUpdate : Pass<"gai-fused-update", "ModuleOp"> {
  let summary = "A training step and its AdamW update in one entry, the gradients as its values";
  let description = [{
    After `--gai-first-micro-batch`: replaces `@train_step`,
    `@train_step_first`, `@optimizer_step` and `@zero_grads` by
    `@train_update`, the first micro-batch's step followed by the update,
    for training with one micro-batch a step (`gaic --fused-update`). The
    gradients are no longer state: the memory plan places them where the
    backward's freed activations were. The update's `grad_scale` argument
    becomes `grad_clip` (the max norm; +inf: no clipping), and the device
    computes PyTorch's clip_grad_norm_ factor from the step's `grad_sq`.
    A step whose loss or `grad_sq` is not finite returns every state
    tensor as it was, as the host's skip does.
  }];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiParamCopies : Pass<"gai-param-copies", "ModuleOp"> {
  let summary = "Keep the low-precision copies of f32 master weights as state";
  let description = [{
    After `--gai-fused-update`: every `gai.convert` of an f32 `gai.param`
    to a narrower float that `@train_update` updates becomes a state
    argument named `param_copy.<weight>` in each function that converts it,
    and `@train_update` returns the copy of each new master beside it (the
    update's kernel writes it: 2 bytes a parameter, where the next step
    would read 4 and write 2 to convert). `@refresh_param_copies` makes
    every copy from its master; the runtime runs it before an entry when a
    master was written from the host (initialised, loaded, resumed). A
    function other than `@train_update` that writes a master is an error.
  }];
  let dependentDialects = ["::mlir::gai::GaiDialect", "::mlir::func::FuncDialect"];
}

def GaiMasterWeights : Pass<"gai-master-weights", "ModuleOp"> {
  let summary = "Keep low-precision parameters as f32 masters, converted where read";
  let description = [{
    Mixed-precision training: every `gai.param` of a float type other than
    f32 becomes an f32 `gai.param` of the same name followed by a
    `gai.convert` to the old type. Compute keeps its precision, while the
    parameters (and so, after `--gai-train-step`, their gradients and
    optimizer moments) are f32, and small updates are not lost to rounding.
  }];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiQuantize : Pass<"gai-quantize", "ModuleOp"> {
  let summary = "Store the weights that feed matmuls quantized (int8, int4, fp8 e4m3)";
  let description = [{
    Weight-only quantization. A 2-D float parameter whose every use is the
    right-hand side of a `gai.matmul` (lhs not transposed) becomes
    quantized values, f32 scales and, for int4, zero points (parameters
    named `W`, `W.scale`, `W.zero`), read back by one `gai.dequantize` that
    the matmuls take instead: `int8` per row, symmetric; `int4` in groups
    of `group` along k, asymmetric; `fp8` (e4m3) with one scale for the
    tensor, or per row with `fp8-per-row`. The values are always stored
    [n, k] (k contiguous), so a matmul that read its weight [k, n] now
    reads the transpose (`transposed` on the parameter tells the packer).

    Left alone: parameters with any other use (an embedding table, a tied
    LM head), ones of rank other than 2, and names matching a glob of
    `skip` (by default the LM head, embeddings and MoE routers). Errors: a k that is not
    a multiple of 8, or of `group` (int4), naming the parameter.

    The values themselves are made at compile time by gaic, from the
    weights file (gai/Quantize.h).
  }];
  let options = [
    Option<"weights", "weights", "std::string", /*default=*/"\"int8\"",
           "the format: int8, int4 or fp8">,
    Option<"group", "group", "int64_t", /*default=*/"128",
           "int4: the k's that share a scale and zero point">,
    ListOption<"skip", "skip", "std::string",
               "globs of parameter names to keep in float (default: "
               "*lm_head*, *embed*, *wte*, *wpe*, *.gate.weight, *router*; 'none' "
               "quantizes all)">,
    Option<"fp8PerRow", "fp8-per-row", "bool", /*default=*/"false",
           "fp8: one scale a row instead of one for the tensor">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiPrune : Pass<"gai-prune", "ModuleOp"> {
  let summary = "2:4 sparsity of the weights that feed matmuls; structured "
                "pruning of attention heads and MLP channels";
  let description = [{
    `pattern=2:4`: the weights that --gai-quantize would take (2-D float
    parameters read only as a matmul's rhs, not matching `skip`) keep two
    values of every four along k. Each becomes its kept values `W`
    [n, k / 2] and their positions `W.meta` [n, k / 8] (i8, a nibble a
    group), read back by one `gai.decompress` that the matmuls take (the
    exec lowering folds it into the GEMM, which reads the compressed
    form). With `masked`, for training, the weight stays dense and the
    matmuls read it times its 2:4 mask, made in the graph from its own
    magnitudes (abs, topk 2 of each 4, one_hot): gradients at pruned
    positions are zero, so weights pruned at compile time stay exactly
    zero under AdamW. Error: a k that is not a multiple of 8, naming the
    weight.

    `heads=N`, `mlp=R`: every attention of the frontend's form
    (softmax(q·kᵀ)·v, K and V maybe repeated for grouped queries) loses N
    query heads, whole KV groups at a time, and every MLP (its down
    projection over act(x·W1) or act(x·W1) ⊙ (x·W2)) the fraction R of its
    channels, kept count rounded to a multiple of 8. The shapes that carry
    them shrink, from the q/k/v (gate/up) projections and biases through
    reshapes, RoPE, caches and the function's types to the o (down)
    projection. Each sliced weight gets a `gai.prune` attribute: its
    group, axis, blocks and how many units stay. Which units stay (the
    largest weights) is gaic's choice, made from the weights. Errors: N not
    a multiple of the query heads per KV head, or all of them, naming the
    op. Runs before --gai-attention-rewrite.

    gaic makes the values from the weights file at compile time.
  }];
  let options = [
    Option<"pattern", "pattern", "std::string", /*default=*/"\"\"",
           "2:4, or empty for no 2:4 sparsity">,
    Option<"masked", "masked", "bool", /*default=*/"false",
           "2:4 kept dense and masked in the graph (training)">,
    ListOption<"skip", "skip", "std::string",
               "globs of weight names that stay dense (default: as --gai-quantize's; "
               "'none' prunes all)">,
    Option<"heads", "heads", "int64_t", /*default=*/"0",
           "query heads to remove from every attention">,
    Option<"mlp", "mlp", "double", /*default=*/"0.0",
           "the fraction of every MLP's channels to remove">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

def GaiShard : Pass<"gai-shard", "ModuleOp"> {
  let summary = "Data parallelism and ZeRO-1 over a device grid (shard dialect)";
  let description = [{
    Makes the training entries of `--gai-train-step` per-rank programs of a
    job laid out on `shard.grid @mesh` (axes dp, tp), inserting the
    collectives as MLIR's `shard` ops: every rank runs the step on its own
    rows (the frontend built the loss at the local batch), so

    - with `zero=0` (data parallelism) each fresh gradient is averaged over
      the dp axis as soon as it is made, in buckets of about `bucket-bytes`
      (flattened, concatenated, one `shard.all_reduce`, split again), before
      it is added to `grad.<name>`; the gradients, their norm and the
      optimizer step are then the same on every rank;
    - with `zero=1` each fresh gradient is flattened, padded to a multiple
      of the dp size and reduce-scattered (`shard.reduce_scatter`, average),
      so `grad.<name>`, `adam.m.<name>` and `adam.v.<name>` hold this rank's
      1/dp of the flattened tensor; `grad_sq` sums the shards' squares over
      the ranks; `@optimizer_step` updates the rank's slice of each
      parameter (`shard.all_slice`) and all-gathers the result
      (`shard.all_gather`). Sharded state carries `gai.shard = {shape,
      axes}`: the whole tensor's shape and the grid axes it is split over.

    The loss and `@eval_loss`'s result are averaged over dp, so every rank
    reports the global batch's loss. With tp > 1 (a loss split by
    `--gai-shard-tensors`, whose grid this pass widens to dp×tp), `grad_sq`
    sums the squares of the tp-split weights' gradients over tp, once. A grid
    of one leaves the module as it is.
  }];
  let options = [
    Option<"mesh", "mesh", "std::string", /*default=*/"\"dp=1\"",
           "the device grid: dp=D[,tp=T]">,
    Option<"zero", "zero", "int64_t", /*default=*/"0",
           "0: replicated optimizer state; 1: ZeRO-1 (sharded over dp)">,
    Option<"bucketBytes", "bucket-bytes", "int64_t", /*default=*/"26214400",
           "gradient bytes per all-reduce (data parallelism)">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect", "::mlir::shard::ShardDialect"];
}

def GaiShardTensors : Pass<"gai-shard-tensors", "ModuleOp"> {
  let summary = "Tensor parallelism: attention heads and MLP channels split over tp ranks";
  let description = [{
    Megatron's tensor parallelism of the model's functions, on the
    frontend's graph (before attention rewriting), for a grid
    `shard.grid @mesh(shape = 1xT)`: the query, key and value projections
    and the MLP's gate and up projections become column-parallel (each rank
    computes 1/T of the heads, whole KV groups, and of the channels), the
    attention runs on the rank's heads with their share of the KV cache,
    and the output and down projections become row-parallel: each rank's
    product is a partial sum, added up by one `shard.all_reduce` (sum over
    axis 1) before the bias and the residual. Embeddings, norms and the LM
    head stay whole on every rank, except an LM head of its own (not the
    embedding's), which splits over the vocabulary: each rank computes V/T
    of the logits, and a `shard.all_gather` gives every rank all of them.

    The values that carry the heads or channels shrink as structured
    pruning shrinks them (StructuredPrune.h), and each weight sliced gets
    `gai.tp`: the slicing of rank 0, rank r keeping units [r·k, (r+1)·k) of
    each segment (gaic slices the weights per rank). An attention whose KV
    heads do not divide by T (multi-query attention) stays whole, computed
    by every rank; an MLP whose channels do not divide is an error naming
    the op and the axis.

    A loss (`@eval_loss`) is split too, before `--gai-train-step`
    differentiates it: each column-parallel matmul gets
    `gai.tp_partial_input_grad`, so that autodiff sums its input's gradient
    over tp (Megatron's "f"), and the VJP of the row-parallel all-reduce
    hands the cotangent to every rank. Run after `--gai-train-step`, it is
    an error.
  }];
  let options = [
    Option<"tp", "tp", "int64_t", /*default=*/"1", "tensor-parallel ranks">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect", "::mlir::shard::ShardDialect"];
}

def GaiRemat : Pass<"gai-remat", "ModuleOp"> {
  let summary = "Recompute forward values in the backward pass to fit a memory budget";
  let description = [{
    Rematerialization of a training step (`function`, after autodiff): a
    forward value that the backward pass reads is either kept, live from
    the forward pass to its last backward use, or recomputed by a clone of
    its op placed just before its first backward use. The forward pass is
    every op up to the one that makes the loss (the first result).

    `mode=auto` keeps the planned peak (`fixed-bytes` plus the arena that
    the function's buffers need, placed by the arena planner) under
    `budget` bytes at the least recomputed FLOPs, greedily: while the plan
    is over budget, recompute the value that frees the most bytes at the
    peak (less the bytes of inputs whose lives it extends) per FLOP, then
    plan again. A budget that no choice reaches is an error giving the
    smallest peak the pass reached. `mode=full` is classic per-layer
    checkpointing: only values that cross from one layer to another (by
    the ops' `layers.N` locations) are kept, everything else the backward
    pass reads is recomputed.

    Never recomputed: ops with memory effects or randomness, the KV cache's
    writes (`gai.cache_write`, `gai.cached_attention`), and values the
    function returns. The function gets a `gai.remat` dictionary: the
    arena before and after, the ops recomputed and their FLOPs.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"train_step\"",
           "the training step to rematerialize">,
    Option<"mode", "mode", "std::string", /*default=*/"\"auto\"",
           "auto (fit the budget at the least recomputation) or full "
           "(recompute every layer from its input)">,
    Option<"budget", "budget", "int64_t", /*default=*/"0",
           "bytes the planned peak may take (0: no budget; auto then "
           "recomputes nothing)">,
    Option<"fixedBytes", "fixed-bytes", "int64_t", /*default=*/"0",
           "bytes outside the arena that count against the budget "
           "(parameters, optimizer state, inputs and outputs)">,
  ];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

#endif // GAI_PASSES_TD
