// The exec dialect: the plan an artifact stores, one op per command.
#ifndef EXEC_OPS_TD
#define EXEC_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/SymbolInterfaces.td"

def Exec_Dialect : Dialect {
  let name = "exec";
  let cppNamespace = "::mlir::exec";
  let summary = "Buffers in fixed spaces and the commands that use them";
  let description = [{
    Everything is bufferized and planned: a tensor is a byte range in one of
    five spaces (the entry's arena, the weights, persistent state, the
    entry's packed inputs or outputs). Commands are generated kernel
    launches, GEMMs, attention, and runtime library calls. Generated kernels
    are `func.func`s over memrefs beside the entries.
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
// Tensors with a home
//===----------------------------------------------------------------------===//

class Exec_TensorDecl<string mnemonic> : Exec_Op<mnemonic> {
  let arguments = (ins StrAttr:$name, TypeAttr:$type, Exec_RefAttr:$ref);
  let assemblyFormat = "$name `:` $type `at` $ref attr-dict";
}

def Exec_WeightOp : Exec_TensorDecl<"weight"> {
  let summary = "a named tensor of the weights";
}
def Exec_StateOp : Exec_TensorDecl<"state"> {
  let summary = "persistent state such as a KV cache, kept between calls";
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
// Commands
//===----------------------------------------------------------------------===//

def Exec_GemmOp : Exec_Op<"gemm"> {
  let summary = "c = act(a·b + bias) + residual, batched";
  let arguments = (ins Exec_RefAttr:$a, Exec_RefAttr:$b, Exec_RefAttr:$c,
      Exec_RefAttr:$bias, Exec_RefAttr:$residual, I64Attr:$batch, I64Attr:$m,
      I64Attr:$n, I64Attr:$k, BoolAttr:$transpose_a, BoolAttr:$transpose_b,
      I64Attr:$stride_a, I64Attr:$stride_b, I64Attr:$stride_c,
      StrAttr:$activation, TypeAttr:$element, OptionalAttr<Exec_RefAttr>:$gate,
      OptionalAttr<Exec_RefAttr>:$norm_weight, OptionalAttr<Exec_RefAttr>:$norm_out,
      OptionalAttr<Exec_RefAttr>:$norm_squares,
      DefaultValuedAttr<F32Attr, "0.0">:$norm_offset,
      OptionalAttr<Exec_RefAttr>:$a_squares,
      DefaultValuedAttr<F32Attr, "0.0">:$a_norm_eps,
      DefaultValuedAttr<BoolAttr, "false">:$wide_c);
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
  }];
  let assemblyFormat = "attr-dict";
}

def Exec_AttentionOp : Exec_Op<"attention"> {
  let summary = "flash attention (see the runtime's attention kernel)";
  let arguments = (ins Exec_RefAttr:$q, Exec_RefAttr:$k, Exec_RefAttr:$v,
      Exec_RefAttr:$out, Exec_RefAttr:$query_start, I64Attr:$batch,
      I64Attr:$heads, I64Attr:$kv_heads, I64Attr:$queries, I64Attr:$keys,
      I64Attr:$head_dim, I64Attr:$value_dim, F32Attr:$scale, F32Attr:$softcap,
      BoolAttr:$causal, I64Attr:$window, TypeAttr:$element,
      OptionalAttr<Exec_RefAttr>:$k_new, OptionalAttr<Exec_RefAttr>:$v_new,
      OptionalAttr<Exec_RefAttr>:$rope_positions,
      DefaultValuedAttr<I64Attr, "0">:$rope_style,
      DefaultValuedAttr<F32Attr, "0.0">:$rope_theta,
      DefaultValuedAttr<BoolAttr, "false">:$cache_ready);
  let description = [{
    `element` is the type of q, k, v and out. With `k_new` and `v_new` (a
    gai.cached_attention) the step's new rows [B, Hkv, queries, D] go into
    the caches k and v at `query_start` in the same kernel, and with
    `rope_style` 1 (half) or 2 (interleaved) q and the new keys are rotated
    first, at `rope_positions` ([B or 1, queries]) with `rope_theta`.
    `cache_ready`: no earlier step of the entry writes k, v or query_start,
    so the kernel may read them while the step before it still runs.
  }];
  let assemblyFormat = "attr-dict";
}

def Exec_LaunchOp : Exec_Op<"launch",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "runs a generated kernel over buffers";
  let arguments = (ins FlatSymbolRefAttr:$kernel, Exec_RefArray:$args);
  let assemblyFormat = "$kernel $args attr-dict";
}

def Exec_CallOp : Exec_Op<"call"> {
  let summary = "runs a runtime library kernel";
  let description = [{
    `element` is the element type of the kernel's main float operand (the
    table, cache, logits or reduced tensor); data movement names its data's.
  }];
  let arguments = (ins StrAttr:$callee, Exec_RefArray:$args,
                       DenseI64ArrayAttr:$ints, TypeAttr:$element);
  let assemblyFormat = "$callee $args `ints` $ints `:` $element attr-dict";
}

#endif // EXEC_OPS_TD
