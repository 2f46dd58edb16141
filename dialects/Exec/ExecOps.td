// The exec dialect: the plan an artifact stores, one op per command.
#ifndef EXEC_OPS_TD
#define EXEC_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/EnumAttr.td"

def Exec_Dialect : Dialect {
  let name = "exec";
  let cppNamespace = "::mlir::exec";
  let summary = "Buffers in fixed spaces and the commands that use them";
  let description = [{
    Everything is bufferized and planned: a tensor is a byte range in one of
    five spaces (the entry's arena, the weights, persistent state, the
    entry's packed inputs or outputs). Commands are generated kernel
    launches and one op per runtime library command (GEMM, attention,
    embedding, ...), with named, typed attributes. Generated kernels are
    `func.func`s over memrefs beside the entries.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Exec_Op<string mnemonic, list<Trait> traits = []>
    : Op<Exec_Dialect, mnemonic, traits>;

def Exec_RefAttr : AttrDef<Exec_Dialect, "Ref"> {
  let mnemonic = "ref";
  let summary = "a byte range in one space: `#exec.ref<arena 128, 512>`";
  let parameters = (ins "::mlir::exec::Space":$space, "int64_t":$offset,
                        "int64_t":$size);
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    bool isNone() const { return getSize() == 0; }
  }];
}

def Exec_RefArray : TypedArrayAttrBase<Exec_RefAttr, "buffer refs">;

//===----------------------------------------------------------------------===//
// Enumerations (the artifact schema's enums, value for value)
//===----------------------------------------------------------------------===//

def Exec_Activation : I32EnumAttr<"Activation", "a GEMM epilogue's activation", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Silu", 1, "silu">,
    I32EnumAttrCase<"Gelu", 2, "gelu">,          // exact (erf)
    I32EnumAttrCase<"GeluTanh", 3, "gelu_tanh">,
    I32EnumAttrCase<"Relu", 4, "relu">]> {
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_ActivationAttr : EnumAttr<Exec_Dialect, Exec_Activation, "activation">;

def Exec_RopeStyle : I32EnumAttr<"RopeStyle", "which head-dimension pairs RoPE rotates", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Half", 1, "half">,               // (i, i + d/2), HF LLaMA
    I32EnumAttrCase<"Interleaved", 2, "interleaved">]> { // (2i, 2i + 1)
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_RopeStyleAttr : EnumAttr<Exec_Dialect, Exec_RopeStyle, "rope_style">;

def Exec_ReduceKind : I32EnumAttr<"ReduceKind", "a reduction's combiner", [
    I32EnumAttrCase<"Sum", 0, "sum">,
    I32EnumAttrCase<"Mean", 1, "mean">,
    I32EnumAttrCase<"Max", 2, "max">,
    I32EnumAttrCase<"Min", 3, "min">]> {
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_ReduceKindAttr : EnumAttr<Exec_Dialect, Exec_ReduceKind, "reduce_kind">;

def Exec_LossReduction : I32EnumAttr<"LossReduction", "how a loss reduces its rows", [
    I32EnumAttrCase<"Mean", 0, "mean">,  // over labels that are not ignored
    I32EnumAttrCase<"Sum", 1, "sum">,
    I32EnumAttrCase<"None", 2, "none">]> {
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_LossReductionAttr : EnumAttr<Exec_Dialect, Exec_LossReduction, "loss_reduction">;

def Exec_WeightFormat : I32EnumAttr<"WeightFormat", "how a GEMM's weights are stored", [
    I32EnumAttrCase<"Float", 0, "float">,  // the GEMM's element type
    I32EnumAttrCase<"Int8", 1, "int8">,    // symmetric, a scale per row
    I32EnumAttrCase<"Int4", 2, "int4">,    // asymmetric, a scale and zero per group of k
    I32EnumAttrCase<"Fp8E4M3", 3, "fp8_e4m3">,    // a scale per tensor or per row
    I32EnumAttrCase<"Sparse24", 4, "sparse_2_4">]> { // 2:4: kept values [n, k/2], positions
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_WeightFormatAttr : EnumAttr<Exec_Dialect, Exec_WeightFormat, "weight_format">;

def Exec_CollectiveReduce : I32EnumAttr<"CollectiveReduce",
    "how a collective combines the ranks' values", [
    I32EnumAttrCase<"Sum", 0, "sum">,
    I32EnumAttrCase<"Average", 1, "average">,
    I32EnumAttrCase<"Max", 2, "max">]> {
  let cppNamespace = "::mlir::exec";
  let genSpecializedAttr = 0;
}
def Exec_CollectiveReduceAttr
    : EnumAttr<Exec_Dialect, Exec_CollectiveReduce, "collective_reduce">;

def Exec_StateRole : I32EnumAttr<"StateRole", "what a state tensor is for", [
    I32EnumAttrCase<"Other", 0, "other">,
    I32EnumAttrCase<"Parameter", 1, "parameter">,   // trainable; f32 master copy in mixed precision
    I32EnumAttrCase<"Gradient", 2, "gradient">,
    I32EnumAttrCase<"FirstMoment", 3, "first_moment">,   // AdamW m
    I32EnumAttrCase<"SecondMoment", 4, "second_moment">, // AdamW v
    I32EnumAttrCase<"KVCache", 5, "kv_cache">,
    I32EnumAttrCase<"ParameterCopy", 6, "parameter_copy">]> { // a master's bf16/f16 copy
  let cppNamespace = "::mlir::exec";
}

//===----------------------------------------------------------------------===//
// Tensors with a home
//===----------------------------------------------------------------------===//

class Exec_TensorDecl<string mnemonic> : Exec_Op<mnemonic> {
  let arguments = (ins StrAttr:$name, TypeAttr:$type, Exec_RefAttr:$ref);
  let assemblyFormat = "$name `:` $type `at` $ref attr-dict";
}

def Exec_WeightOp : Exec_TensorDecl<"weight"> {
  let summary = "a named tensor of the weights";
}
def Exec_StateOp : Exec_Op<"state"> {
  let summary = "persistent state such as a KV cache, kept between calls";
  let arguments = (ins StrAttr:$name, TypeAttr:$type, Exec_RefAttr:$ref,
      Exec_StateRole:$role);
  let assemblyFormat = "$role $name `:` $type `at` $ref attr-dict";
}
def Exec_InputOp : Exec_TensorDecl<"input"> {
  let summary = "an input of the enclosing entry";
}
def Exec_OutputOp : Exec_TensorDecl<"output"> {
  let summary = "an output of the enclosing entry";
}

def Exec_EntryOp : Exec_Op<"entry", [Symbol, SingleBlock, NoTerminator]> {
  let summary = "an entry point: inputs, outputs and commands in order";
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$arena_size);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name `arena` $arena_size attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Commands: one op each, mirrored one for one by the artifact's `Command`
// union. Sizes are elements unless a name says bytes.
//===----------------------------------------------------------------------===//

// A command's sizes are checked against its buffers once, by the runtime's
// command decoder, which gaic also runs on the artifact it writes.
class Exec_Command<string mnemonic, list<Trait> traits = []>
    : Exec_Op<mnemonic, traits> {
  let assemblyFormat = "attr-dict";
}

def Exec_GemmOp : Exec_Command<"gemm"> {
  let summary = "c = act(a·b + bias) + residual, batched";
  let arguments = (ins Exec_RefAttr:$a, Exec_RefAttr:$b, Exec_RefAttr:$c,
      Exec_RefAttr:$bias, Exec_RefAttr:$residual, I64Attr:$batch, I64Attr:$m,
      I64Attr:$n, I64Attr:$k, BoolAttr:$transpose_a, BoolAttr:$transpose_b,
      I64Attr:$stride_a, I64Attr:$stride_b, I64Attr:$stride_c,
      Exec_ActivationAttr:$activation, TypeAttr:$element,
      OptionalAttr<Exec_RefAttr>:$gate,
      OptionalAttr<Exec_RefAttr>:$norm_weight, OptionalAttr<Exec_RefAttr>:$norm_out,
      OptionalAttr<Exec_RefAttr>:$norm_squares,
      DefaultValuedAttr<F32Attr, "0.0">:$norm_offset,
      OptionalAttr<Exec_RefAttr>:$a_squares,
      DefaultValuedAttr<F32Attr, "0.0">:$a_norm_eps,
      DefaultValuedAttr<BoolAttr, "false">:$wide_c,
      DefaultValuedAttr<Exec_WeightFormatAttr, "::mlir::exec::WeightFormat::Float">:$weight_format,
      OptionalAttr<Exec_RefAttr>:$b_scale, OptionalAttr<Exec_RefAttr>:$b_zero,
      OptionalAttr<Exec_RefAttr>:$gate_scale, OptionalAttr<Exec_RefAttr>:$gate_zero,
      DefaultValuedAttr<I64Attr, "0">:$group,
      OptionalAttr<Exec_RefAttr>:$b_meta, OptionalAttr<Exec_RefAttr>:$gate_meta,
      OptionalAttr<Exec_RefAttr>:$a_scale);
  let description = [{
    `element` is the type of a, b, c, bias and residual; the product
    accumulates in f32. `wide_c` (bf16 operands, no bias): c and residual
    are f32 instead, an f32 residual stream. With `gate` (weights [n, k]
    like b, which is then transposed; batch 1, no bias or residual): c =
    act(a·gateᵀ) ⊙ (a·bᵀ), a gated linear unit's two products in one call.

    An RMSNorm folded between decode-sized GEMMs: the GEMM making the
    norm's input also writes c ⊙ (norm_weight + norm_offset) to `norm_out`
    and adds each row's sum of c² to `norm_squares` (f64 [m], zeroed
    earlier in the entry); a GEMM reading the norm takes that `norm_out`
    as a and scales its products row by row by
    1/sqrt(a_squares / k + a_norm_eps).

    Quantized weights (`weight_format` not float, from a gai.dequantize):
    b and gate are stored [n, k] in that format with `b_scale`/`gate_scale`
    (and, int4, `b_zero`/`gate_zero` per `group` of k); the GEMM
    dequantizes them as it reads them. 2:4 sparse weights (`sparse_2_4`,
    from a gai.decompress): b is the kept values [n, k / 2] in `element`
    and `b_meta` their positions [n, k / 8] (gai/Sparsity.h); a gate is
    stored alike, with `gate_meta`.

    With `a_scale` (fp8 weights, bf16 element, batch 1, no gate): a is
    e4m3 [m, k] and `a_scale` f32 [m] its rows' scales, a row of the bf16
    product's A being a's row times its scale: made by the kernel that
    makes A (buildGpuFusionKernel's e4m3 results).
  }];
}

def Exec_AttentionOp : Exec_Command<"attention"> {
  let summary = "flash attention (see the runtime's attention kernel)";
  let arguments = (ins Exec_RefAttr:$q, Exec_RefAttr:$k, Exec_RefAttr:$v,
      Exec_RefAttr:$out, Exec_RefAttr:$query_start, I64Attr:$batch,
      I64Attr:$heads, I64Attr:$kv_heads, I64Attr:$queries, I64Attr:$keys,
      I64Attr:$head_dim, I64Attr:$value_dim, F32Attr:$scale, F32Attr:$softcap,
      BoolAttr:$causal, I64Attr:$window, TypeAttr:$element,
      OptionalAttr<Exec_RefAttr>:$k_new, OptionalAttr<Exec_RefAttr>:$v_new,
      OptionalAttr<Exec_RefAttr>:$rope_positions,
      DefaultValuedAttr<Exec_RopeStyleAttr, "::mlir::exec::RopeStyle::None">:$rope,
      DefaultValuedAttr<F32Attr, "0.0">:$rope_theta,
      DefaultValuedAttr<BoolAttr, "false">:$cache_ready,
      OptionalAttr<Exec_RefAttr>:$lse,
      OptionalAttr<DenseI64ArrayAttr>:$strides);
  let description = [{
    `element` is the type of q, k, v and out: q [batch, heads, queries,
    head_dim], k [batch, kv_heads, keys, head_dim], v [batch, kv_heads,
    keys, value_dim]. With `k_new` and `v_new` (a gai.cached_attention)
    the step's new rows [batch, kv_heads, queries, D] go into the caches k
    and v at `query_start` in the same kernel, and with `rope` q and the
    new keys are rotated first, at `rope_positions` ([batch or 1, queries])
    with `rope_theta`. `cache_ready`: no earlier step of the entry writes
    k, v or query_start, so the kernel may read them while the step before
    it still runs. `lse` (f32 [batch, heads, queries]) receives each query
    row's log-sum-exp of its masked scores, for attention_grad.
    `strides` (absent: the layouts above, packed) places the rows of q, k,
    v and out, three a tensor in that order, in elements: between
    batches, between heads, between rows; the head dim is contiguous. A
    [B, T, H, D] tensor, or one slice of a packed projection, is read and
    written in place this way. Not with `k_new`.
  }];
}

def Exec_AttentionGradOp : Exec_Command<"attention_grad"> {
  let summary = "attention's backward (see the runtime's attention kernels)";
  let arguments = (ins Exec_RefAttr:$q, Exec_RefAttr:$k, Exec_RefAttr:$v,
      Exec_RefAttr:$out, Exec_RefAttr:$lse, Exec_RefAttr:$out_grad,
      Exec_RefAttr:$q_grad, Exec_RefAttr:$k_grad, Exec_RefAttr:$v_grad,
      I64Attr:$batch, I64Attr:$heads, I64Attr:$kv_heads, I64Attr:$queries,
      I64Attr:$keys, I64Attr:$head_dim, I64Attr:$value_dim, F32Attr:$scale,
      F32Attr:$softcap, BoolAttr:$causal, I64Attr:$window, TypeAttr:$element,
      OptionalAttr<DenseI64ArrayAttr>:$strides);
  let description = [{
    gai.flash_attention_grad: q, k, v, out and out_grad as attention's
    operands and result, lse its row log-sum-exps (f32); the gradients have
    the shapes of q, k and v. Every element but lse is `element`.
    `strides` as exec.attention's, for q, k, v, out, out_grad, q_grad,
    k_grad and v_grad (24 values); lse is always packed.
  }];
}

def Exec_LaunchOp : Exec_Op<"launch",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "runs a generated kernel over buffers";
  let arguments = (ins FlatSymbolRefAttr:$kernel, Exec_RefArray:$args);
  let assemblyFormat = "$kernel $args attr-dict";
}

def Exec_EmbeddingOp : Exec_Command<"embedding"> {
  let summary = "out[i] = table[indices[i]]: rows of a [vocab, dim] table";
  let arguments = (ins Exec_RefAttr:$table, Exec_RefAttr:$indices,
      Exec_RefAttr:$out, I64Attr:$vocab, I64Attr:$dim, I64Attr:$count,
      TypeAttr:$element, DefaultValuedAttr<I64Attr, "1">:$row_shards,
      DefaultValuedAttr<I32Attr, "0">:$row_shard_axes);
  let description = [{
    `indices` are `count` i32 token ids; an id outside [0, vocab ×
    row_shards) is an error at run time. `element` is the type of table and
    out. With row_shards > 1 the table holds rows [g·vocab, (g+1)·vocab),
    g the rank's index in its group along the grid axes `row_shard_axes`
    (a bitmask): other ids give zero rows.
  }];
}

def Exec_EmbeddingGradOp : Exec_Command<"embedding_grad"> {
  let summary = "out = zeros; out[indices[i]] += grad[i]: a table's gradient";
  let arguments = (ins Exec_RefAttr:$grad, Exec_RefAttr:$indices,
      Exec_RefAttr:$out, I64Attr:$vocab, I64Attr:$dim, I64Attr:$count,
      TypeAttr:$element, DefaultValuedAttr<I64Attr, "1">:$row_shards,
      DefaultValuedAttr<I32Attr, "0">:$row_shard_axes);
  let description = [{
    exec.embedding's backward: grad [count, dim] and out [vocab, dim] of
    `element`, indices as exec.embedding's (row shards too: ids of other
    ranks add nothing).
  }];
}

def Exec_CacheWriteOp : Exec_Command<"cache_write"> {
  let summary = "writes new rows into a KV cache at each row's position";
  let arguments = (ins Exec_RefAttr:$cache, Exec_RefAttr:$update,
      Exec_RefAttr:$positions, I64Attr:$batch, I64Attr:$heads, I64Attr:$slots,
      I64Attr:$rows, I64Attr:$dim, TypeAttr:$element);
  let description = [{
    cache [batch, heads, slots, dim], update [batch, heads, rows, dim],
    positions i32 [batch]: row b's update lands at slots positions[b] ..
    positions[b] + rows; past `slots` is an error at run time.
  }];
}

def Exec_TakeOp : Exec_Command<"take"> {
  let summary = "out[b] = input[b, indices[b]]: one row of each sequence";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$indices,
      Exec_RefAttr:$out, I64Attr:$batch, I64Attr:$length, I64Attr:$row_bytes);
  let description = [{
    input [batch, length, row], indices i32 [batch]; rows are copied as
    bytes (`row_bytes`, a multiple of 4), whatever their type.
  }];
}

def Exec_TransposeOp : Exec_Command<"transpose"> {
  let summary = "out = input with its dimensions permuted";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out,
      I64Attr:$element_bytes, DenseI64ArrayAttr:$shape,
      DenseI64ArrayAttr:$permutation);
  let description = [{
    `shape` is the input's; out's dimension d is the input's
    permutation[d]. Elements are moved as `element_bytes` bytes.
  }];
}

def Exec_SliceOp : Exec_Command<"slice"> {
  let summary = "out = input[offsets : offsets + sizes]";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out,
      I64Attr:$element_bytes, DenseI64ArrayAttr:$shape,
      DenseI64ArrayAttr:$offsets, DenseI64ArrayAttr:$sizes);
}

def Exec_TopKOp : Exec_Command<"topk"> {
  let summary = "the k largest of each row, and their indices";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$values,
      Exec_RefAttr:$indices, I64Attr:$rows, I64Attr:$n, I64Attr:$k,
      TypeAttr:$element);
  let description = [{
    input [rows, n] of `element`, values [rows, k] of `element`, indices
    i32 [rows, k], largest first.
  }];
}

def Exec_CrossEntropyOp : Exec_Command<"cross_entropy"> {
  let summary = "softmax cross-entropy of logits against labels";
  let arguments = (ins Exec_RefAttr:$logits, Exec_RefAttr:$labels,
      Exec_RefAttr:$loss, I64Attr:$rows, I64Attr:$vocab, I64Attr:$ignore_index,
      Exec_LossReductionAttr:$reduction, TypeAttr:$element);
  let description = [{
    logits [rows, vocab] of `element`, labels i32 [rows]; loss f32, one
    value (mean, sum) or [rows] (none). Rows labelled `ignore_index` count
    for nothing.
  }];
}

def Exec_CrossEntropyGradOp : Exec_Command<"cross_entropy_grad"> {
  let summary = "the gradient of cross_entropy with respect to its logits";
  let arguments = (ins Exec_RefAttr:$logits, Exec_RefAttr:$labels,
      Exec_RefAttr:$loss_grad, Exec_RefAttr:$out, I64Attr:$rows,
      I64Attr:$vocab, I64Attr:$ignore_index, Exec_LossReductionAttr:$reduction,
      TypeAttr:$element);
  let description = [{
    As cross_entropy, with the loss's gradient `loss_grad` (f32, shaped as
    its loss); out [rows, vocab] of `element`.
  }];
}

def Exec_PlaceOp : Exec_Command<"place"> {
  let summary = "copies `outer` blocks of bytes into strided places";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out,
      I64Attr:$outer, I64Attr:$chunk_bytes, I64Attr:$stride_bytes,
      I64Attr:$offset_bytes);
  let description = [{
    Block i (chunk_bytes, packed in input) lands at out + offset_bytes +
    i * stride_bytes: a concatenation's part or a repeat's copy.
  }];
}

def Exec_OneHotOp : Exec_Command<"one_hot"> {
  let summary = "out[i, j] = (indices[i] == j)";
  let arguments = (ins Exec_RefAttr:$indices, Exec_RefAttr:$out,
      I64Attr:$count, I64Attr:$depth, TypeAttr:$element,
      DefaultValuedAttr<I64Attr, "1">:$row_shards,
      DefaultValuedAttr<I32Attr, "0">:$row_shard_axes);
  let description = [{
    As exec.embedding's sharded rows: with row_shards > 1, out holds
    classes [g·depth, (g+1)·depth) of depth × row_shards.
  }];
}

def Exec_ReduceOp : Exec_Command<"reduce"> {
  let summary = "reduces [outer, n, inner] over its middle dimension";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out,
      Exec_ReduceKindAttr:$kind, I64Attr:$outer, I64Attr:$n, I64Attr:$inner,
      TypeAttr:$element);
}

def Exec_CopyOp : Exec_Command<"copy"> {
  let summary = "copies input's bytes to out (of the same size)";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out);
}

def Exec_FillOp : Exec_Command<"fill"> {
  let summary = "sets every element of out to one value";
  let arguments = (ins Exec_RefAttr:$out, I64Attr:$bits, TypeAttr:$element);
  let description = [{
    `bits` is the value's bit pattern in `element` (f32 or bf16); out
    holds a whole number of elements.
  }];
}

//===----------------------------------------------------------------------===//
// Collectives over the ranks of a device grid (the module's `exec.mesh`).
// A group is the ranks that differ from this one only on `grid_axes`;
// tensors are split or joined along their outermost axis.
//===----------------------------------------------------------------------===//

def Exec_AllReduceOp : Exec_Command<"all_reduce"> {
  let summary = "out = reduce(input) over the group, count elements";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out, I64Attr:$count,
      TypeAttr:$element, Exec_CollectiveReduceAttr:$reduction,
      DenseI16ArrayAttr:$grid_axes);
}

def Exec_AllGatherOp : Exec_Command<"all_gather"> {
  let summary = "out = the group's inputs (count elements each) in rank order";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out, I64Attr:$count,
      TypeAttr:$element, DenseI16ArrayAttr:$grid_axes);
}

def Exec_ReduceScatterOp : Exec_Command<"reduce_scatter"> {
  let summary = "out = this rank's count elements of reduce(input) over the group";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out, I64Attr:$count,
      TypeAttr:$element, Exec_CollectiveReduceAttr:$reduction,
      DenseI16ArrayAttr:$grid_axes);
}

def Exec_AllSliceOp : Exec_Command<"all_slice"> {
  let summary = "out = this rank's count elements of input (no communication)";
  let arguments = (ins Exec_RefAttr:$input, Exec_RefAttr:$out, I64Attr:$count,
      TypeAttr:$element, DenseI16ArrayAttr:$grid_axes);
}

#endif // EXEC_OPS_TD
