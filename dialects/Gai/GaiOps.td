// Primitive ops of the gai dialect. Shape rules live in GaiOps.cpp, VJP rules
// in GaiVJP.cpp, interpretations in GaiInterpret*.cpp.
#ifndef GAI_OPS_TD
#define GAI_OPS_TD

include "GaiDialect.td"
include "GaiEnums.td"
include "GaiInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

def Gai_ParamOp : Gai_Op<"param", [Gai_NoGradient, Gai_Interpreted, Pure]> {
  let summary = "a named model parameter";
  let description = [{
    The name is the tensor's name in the weights file (safetensors), e.g.
    `model.layers.0.self_attn.q_proj.weight`.
    ```mlir
    %w = gai.param "lm_head.weight" : tensor<256x64xf32>
    ```
    `transposed`: a weight [n, k] made at compile time from the file's
    [k, n] (the quantizer stores GPT-2's Conv1D weights so).
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$transposed);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = "$name (`transposed` $transposed^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Gai_ConstantOp : Gai_Op<"constant", [Gai_NoGradient, Gai_Interpreted, Pure,
    ConstantLike, InferTypeOpAdaptor]> {
  let summary = "a constant tensor";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Gai_IotaOp : Gai_Op<"iota", [Gai_NoGradient, Gai_Interpreted,
    Gai_IndexFunction, Pure]> {
  let summary = "indices 0, 1, … along one dimension, repeated along the others";
  let description = [{
    ```mlir
    %pos = gai.iota dim = 1 : tensor<2x32xi32>   // positions of a [B, T] batch
    ```
  }];
  let arguments = (ins I64Attr:$dim);
  let results = (outs Gai_IndexTensor:$result);
  let assemblyFormat = "`dim` `=` $dim attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Embedding and matmul
//===----------------------------------------------------------------------===//

def Gai_EmbeddingOp : Gai_Op<"embedding", [Gai_Differentiable, Gai_Interpreted,
    Pure, InferTypeOpAdaptor]> {
  let summary = "rows of a [V, D] table picked by token ids";
  let description = [{
    The result has the ids' shape followed by D.
    ```mlir
    %x = gai.embedding %table, %ids
        : (tensor<256x64xf32>, tensor<2x32xi32>) -> tensor<2x32x64xf32>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$table, Gai_IndexTensor:$indices,
                       DefaultValuedAttr<I64Attr, "1">:$vocab_shards);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $indices attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// With vocab_shards = T > 1 the table is this rank's 1/T of the
    /// vocabulary, by its index along the grid's tensor-parallel axis (rank
    /// r holds rows [r·V/T, (r+1)·V/T)): ids of the others give zero rows,
    /// and a sum over the tensor-parallel ranks makes the whole lookup.
    int64_t vocabulary() {
      return getTable().getType().getDimSize(0) * getVocabShards();
    }
  }];
}

def Gai_EmbeddingGradOp : Gai_Op<"embedding_grad", [Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "the gradient of a gai.embedding's table: rows scatter-added";
  let description = [{
    `grad` is the lookup's gradient (the ids' shape followed by D); the
    result is the [rows, D] table's: row r sums the grad rows of every id
    that picked it. With vocab_shards = T > 1 the table holds this rank's
    rows of the vocabulary, as gai.embedding's, and other ids add nothing.
    No one-hot matrix is made.
    ```mlir
    %g = gai.embedding_grad %dx, %ids rows = 256
        : (tensor<2x32x64xf32>, tensor<2x32xi32>) -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$grad, Gai_IndexTensor:$indices, I64Attr:$rows,
                       DefaultValuedAttr<I64Attr, "1">:$vocab_shards);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $indices `rows` `=` $rows attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_MatmulOp : Gai_Op<"matmul", [Gai_Differentiable, Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "batched matrix product with broadcast batch dims";
  let description = [{
    `lhs` is [..., M, K] ([..., K, M] with `transpose_lhs`), `rhs` is
    [..., K, N] ([..., N, K] with `transpose_rhs`); leading batch dims broadcast.
    Accumulation is in f32 whatever the element type.
    ```mlir
    %y = gai.matmul %x, %w transpose_rhs
        : (tensor<2x32x64xf32>, tensor<176x64xf32>) -> tensor<2x32x176xf32>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$lhs, Gai_FloatTensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_lhs` $transpose_lhs^)? (`transpose_rhs` $transpose_rhs^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_DequantizeOp : Gai_Op<"dequantize", [Gai_NoGradient, Gai_Interpreted, Pure]> {
  let summary = "a quantized weight [n, k] read back as floats";
  let description = [{
    w = (values - zero) · scale, row by row: `int8` values (i8) with a
    scale per row (f32 [n]); `int4` values (i4) with a scale and an integer
    zero point (i8, 0..15) per `group` of k (f32 and i8 [n, k / group]);
    `fp8_e4m3` values (f8E4M3FN) with one scale (f32 [1]) or one per row
    (f32 [n]). The --gai-quantize pass makes these from parameters that
    feed matmuls, and the exec lowering folds each into its GEMMs, which
    read the quantized bytes.
    ```mlir
    %w = gai.dequantize int4 group 32 %q, %s, %z
        : (tensor<176x64xi4>, tensor<176x2xf32>, tensor<176x2xi8>) -> tensor<176x64xbf16>
    ```
  }];
  let arguments = (ins Gai_QuantFormat:$format, OptionalAttr<I64Attr>:$group,
                       Gai_Tensor:$values, Gai_FloatTensor:$scale,
                       Optional<Gai_Tensor>:$zero);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $format (`group` $group^)? $values `,` $scale (`,` $zero^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gai_DecompressOp : Gai_Op<"decompress", [Gai_NoGradient, Gai_Interpreted, Pure]> {
  let summary = "a 2:4 sparse weight [n, k] read back as floats";
  let description = [{
    Each group of four along k keeps two values: `values` [n, k / 2] holds
    them in order, `meta` [n, k / 8] (i8) their positions i0 < i1 as the
    nibble i0 | i1 << 2, two groups a byte, the even one in the low
    nibble (gai/Sparsity.h). The --gai-prune pass makes these from
    parameters that feed matmuls, and the exec lowering folds each into its
    GEMMs, which read the compressed form.
    ```mlir
    %w = gai.decompress %v, %m
        : (tensor<176x32xbf16>, tensor<176x8xi8>) -> tensor<176x64xbf16>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$values, Gai_Tensor:$meta);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $values `,` $meta attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

// Binary ops broadcast their operands like NumPy; element types must match.
class Gai_BinaryOp<string mnemonic, string what, list<Trait> traits = []>
    : Gai_Op<mnemonic, !listconcat(traits, [Pure, InferTypeOpAdaptor,
        Gai_Interpreted, Gai_BroadcastElementwise])> {
  let summary = what;
  let arguments = (ins Gai_Tensor:$lhs, Gai_Tensor:$rhs);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(::mlir::MLIRContext *,
        std::optional<::mlir::Location> loc, Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return inferBroadcastType(loc, getOperationName(), adaptor.getLhs(),
                                adaptor.getRhs(), types);
    }
  }];
}

def Gai_AddOp : Gai_BinaryOp<"add", "lhs + rhs", [Commutative, Gai_Differentiable]>;
def Gai_SubOp : Gai_BinaryOp<"sub", "lhs - rhs", [Gai_Differentiable]>;
def Gai_MulOp : Gai_BinaryOp<"mul", "lhs * rhs", [Commutative, Gai_Differentiable]>;
def Gai_DivOp : Gai_BinaryOp<"div", "lhs / rhs", [Gai_Differentiable]>;
def Gai_MaxOp : Gai_BinaryOp<"max", "elementwise maximum", [Commutative]>;
def Gai_MinOp : Gai_BinaryOp<"min", "elementwise minimum", [Commutative]>;
def Gai_PowOp : Gai_BinaryOp<"pow", "lhs raised to rhs">;

class Gai_UnaryOp<string mnemonic, string what, list<Trait> traits = []>
    : Gai_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType,
        Gai_Interpreted, Elementwise])> {
  let summary = what;
  let arguments = (ins Gai_FloatTensor:$input);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Gai_NegOp : Gai_UnaryOp<"neg", "-x", [Gai_Differentiable]>;
def Gai_AbsOp : Gai_UnaryOp<"abs", "|x|">;
def Gai_ExpOp : Gai_UnaryOp<"exp", "e^x", [Gai_Differentiable]>;
def Gai_LogOp : Gai_UnaryOp<"log", "natural logarithm", [Gai_Differentiable]>;
def Gai_SqrtOp : Gai_UnaryOp<"sqrt", "square root", [Gai_Differentiable]>;
def Gai_RsqrtOp : Gai_UnaryOp<"rsqrt", "1 / sqrt(x)", [Gai_Differentiable]>;
def Gai_ReciprocalOp : Gai_UnaryOp<"reciprocal", "1 / x", [Gai_Differentiable]>;
def Gai_TanhOp : Gai_UnaryOp<"tanh", "hyperbolic tangent", [Gai_Differentiable]>;
def Gai_SigmoidOp : Gai_UnaryOp<"sigmoid", "1 / (1 + e^-x)", [Gai_Differentiable]>;
def Gai_SiluOp : Gai_UnaryOp<"silu", "x * sigmoid(x)", [Gai_Differentiable]>;
def Gai_ReluOp : Gai_UnaryOp<"relu", "max(x, 0)">;

def Gai_GeluOp : Gai_Op<"gelu", [Gai_Differentiable, Gai_Interpreted, Elementwise,
    Pure, SameOperandsAndResultType]> {
  let summary = "x * Phi(x), exactly (erf) or by the tanh approximation";
  let arguments = (ins Gai_FloatTensor:$input,
      DefaultValuedAttr<Gai_GeluApproximation,
                        "::mlir::gai::GeluApproximation::None">:$approximation);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = "$approximation $input attr-dict `:` type($input)";
}

// Not MLIR's Elementwise: its generic shape check would run before the
// verifier's diagnostic that names both shapes.
def Gai_ConvertOp : Gai_Op<"convert", [Gai_Differentiable, Gai_Interpreted,
    Gai_BroadcastElementwise, Pure]> {
  let summary = "element type conversion (round to nearest even)";
  let arguments = (ins Gai_Tensor:$input);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

def Gai_SelectOp : Gai_Op<"select", [Gai_Differentiable, Gai_Interpreted,
    Gai_BroadcastElementwise, Pure, InferTypeOpAdaptor]> {
  let summary = "cond ? on_true : on_false, broadcasting all three";
  let arguments = (ins Gai_MaskTensor:$condition, Gai_Tensor:$on_true,
                       Gai_Tensor:$on_false);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $on_true `,` $on_false attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Reductions and normalisation
//===----------------------------------------------------------------------===//

def Gai_ReduceOp : Gai_Op<"reduce", [Gai_Differentiable, Gai_Interpreted,
    Gai_LastAxisRowOp, Pure, InferTypeOpAdaptor]> {
  let summary = "sum, mean, max or min over some dimensions";
  let description = [{
    ```mlir
    %m = gai.reduce mean %x axes = [2] keep_dims
        : (tensor<2x32x64xf32>) -> tensor<2x32x1xf32>
    ```
  }];
  let arguments = (ins Gai_ReduceKind:$kind, Gai_FloatTensor:$input,
                       DenseI64ArrayAttr:$axes, UnitAttr:$keep_dims);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $kind $input `axes` `=` $axes (`keep_dims` $keep_dims^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Gai_SoftmaxOp : Gai_Op<"softmax", [Gai_Differentiable, Gai_Interpreted,
    Gai_LastAxisRowOp, Pure, SameOperandsAndResultType]> {
  let summary = "softmax along one dimension";
  let arguments = (ins Gai_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = "$input `axis` `=` $axis attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Gai_RmsNormOp : Gai_Op<"rms_norm", [Gai_Differentiable, Gai_Interpreted,
    Gai_RowOpInterface, Pure, InferTypeOpAdaptor]> {
  let summary = "x / sqrt(mean(x^2) + eps) * w over the last dimension";
  let description = [{
    With `unit_offset` the scale is (1 + w), as Gemma stores it. Statistics
    are computed in f32.
  }];
  let arguments = (ins Gai_FloatTensor:$input, Gai_FloatTensor:$weight,
                       F64Attr:$epsilon, UnitAttr:$unit_offset);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $epsilon (`unit_offset` $unit_offset^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_LayerNormOp : Gai_Op<"layer_norm", [Gai_Differentiable, Gai_Interpreted,
    Gai_RowOpInterface, Pure, InferTypeOpAdaptor]> {
  let summary = "(x - mean) / sqrt(var + eps) * w (+ b) over the last dimension";
  let arguments = (ins Gai_FloatTensor:$input, Gai_FloatTensor:$weight,
                       Optional<Gai_FloatTensor>:$bias, F64Attr:$epsilon);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? `eps` `=` $epsilon attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Positions and attention masks
//===----------------------------------------------------------------------===//

def Gai_RopeOp : Gai_Op<"rope", [Gai_Differentiable, Gai_Interpreted,
    Gai_RowOpInterface, Pure, InferTypeOpAdaptor]> {
  let summary = "rotary position embedding of x [B, H, T, D] at positions [B, T]";
  let description = [{
    Rotates pairs of the head dimension by angle pos * theta^(-2i/D). `half`
    pairs i with i + D/2 (HF LLaMA); `interleaved` pairs 2i with 2i + 1.
    A positions batch of 1 broadcasts. `llama3_scaling` = [factor,
    low_freq_factor, high_freq_factor, original context] rescales the
    frequencies as Llama 3.1 does (ropeFrequency in GaiOps.h).
    `token_major`: x is [B, T, H, D] (positions index its axis 1), as a
    gradient after its head transpose is (--gai-attention-layout).
    `frequencies` (rotary_dim / 2 values) are the inverse frequencies in place of
    theta's, as YaRN and LongRoPE compute them (the frontend picks
    LongRoPE's short or long table; a generation step blends the two by a
    per-row share). `attention_factor` scales the cosines and sines (YaRN's and LongRoPE's magnitude
    correction); the rotation's transpose keeps it. `rotary_dim` (even, at
    most D): only the first rotary_dim elements of each head rotate (pairs
    within them, frequencies of a head of rotary_dim); the rest pass
    through (partial rotary embeddings, Phi-4-mini's).
  }];
  let arguments = (ins Gai_FloatTensor:$input, Gai_IndexTensor:$positions,
                       F64Attr:$theta, Gai_RopeStyle:$style,
                       OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling,
                       UnitAttr:$token_major,
                       OptionalAttr<DenseF32ArrayAttr>:$frequencies,
                       OptionalAttr<F32Attr>:$attention_factor,
                       OptionalAttr<I64Attr>:$rotary_dim);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $style (`token_major` $token_major^)? $input `,` $positions `theta` `=` $theta attr-dict `:`
    functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The input's token axis: 2 ([B, H, T, D]), or 1 when token-major.
    int64_t tokenAxis() { return getTokenMajor() ? 1 : 2; }
    /// Whether it is more than theta's rotation of whole heads: a table,
    /// Llama 3's rescaling, a scale, or partial rotation (what the fused
    /// attention kernel's RoPE does not do).
    bool rotatesBeyondTheta() {
      return getLlama3Scaling() || getFrequencies() || getAttentionFactor() || getRotaryDim();
    }
    /// The rotated elements of each head: rotary_dim, or all.
    int64_t rotatedLength() {
      return getRotaryDim().value_or(
          llvm::cast<RankedTensorType>(getInput().getType()).getShape().back());
    }
  }];
}

def Gai_CausalMaskOp : Gai_Op<"causal_mask", [Gai_NoGradient, Gai_Interpreted,
    Gai_IndexFunction, Pure]> {
  let summary = "which keys each query may see: [..., T, S] of i1";
  let description = [{
    Query i sits at position i + S - T (the last T of S positions). Key j is
    visible when j <= that position and, with a window W > 0, when
    position - j < W (sliding-window attention).
    ```mlir
    %m = gai.causal_mask window = 4096 : tensor<32x32xi1>
    ```
  }];
  let arguments = (ins DefaultValuedAttr<I64Attr, "0">:$window);
  let results = (outs Gai_MaskTensor:$result);
  let assemblyFormat = "(`window` `=` $window^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Gai_PositionMaskOp : Gai_Op<"position_mask", [Gai_NoGradient, Gai_Interpreted,
    Pure]> {
  let summary = "causal mask for queries that start at per-row positions";
  let description = [{
    The result is [B, 1, T, S] of i1. Query i of row b sits at position
    `positions[b] + i` and sees key j when j <= that position and, with a
    window W > 0, when position - j < W. Generation steps use it over a KV
    cache of S slots.
    ```mlir
    %m = gai.position_mask %start window = 4096
        : (tensor<4xi32>) -> tensor<4x1x1x2048xi1>
    ```
  }];
  let arguments = (ins Gai_IndexTensor:$positions,
                       DefaultValuedAttr<I64Attr, "0">:$window);
  let results = (outs Gai_MaskTensor:$result);
  let assemblyFormat = [{
    $positions (`window` `=` $window^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gai_CacheWriteOp : Gai_Op<"cache_write", [Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "a KV cache [B, H, S, D] with rows written at per-row positions";
  let description = [{
    Row b of `update` [B, H, T, D] lands in slots
    `positions[b] .. positions[b] + T - 1` of the cache's sequence axis; the
    other slots keep their values. Positions past S - T are a runtime error.
  }];
  let arguments = (ins Gai_FloatTensor:$cache, Gai_FloatTensor:$update,
                       Gai_IndexTensor:$positions);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $cache `,` $update `at` $positions attr-dict `:`
    functional-type(operands, results)
  }];
}

def Gai_TakeOp : Gai_Op<"take", [Gai_Interpreted, Pure, InferTypeOpAdaptor]> {
  let summary = "row indices[b] of each batch entry: [B, T, ...] -> [B, ...]";
  let description = [{
    Picks the last prompt position of each row after prefill.
    ```mlir
    %h = gai.take %x, %last : (tensor<4x128x64xf32>, tensor<4xi32>) -> tensor<4x64xf32>
    ```
  }];
  let arguments = (ins Gai_Tensor:$input, Gai_IndexTensor:$indices);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $indices attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

def Gai_ReshapeOp : Gai_Op<"reshape", [Gai_Differentiable, Gai_Interpreted, Pure]> {
  let summary = "the same elements in row-major order, another shape";
  let arguments = (ins Gai_Tensor:$input);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Gai_TransposeOp : Gai_Op<"transpose", [Gai_Differentiable, Gai_Interpreted,
    Pure, InferTypeOpAdaptor]> {
  let summary = "permute dimensions: result dim i is input dim permutation[i]";
  let arguments = (ins Gai_Tensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $input `permutation` `=` $permutation attr-dict `:`
    functional-type(operands, results)
  }];
  // A transpose that only moves unit dimensions is a reshape (a view).
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// Whether the dimensions larger than 1 keep their order: the elements
    /// stay where they are, and the transpose is a reshape.
    bool movesOnlyUnitDims();
  }];
}

def Gai_SliceOp : Gai_Op<"slice", [Gai_Differentiable, Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "the box [offsets, offsets + sizes) with unit strides";
  let arguments = (ins Gai_Tensor:$input, DenseI64ArrayAttr:$offsets,
                       DenseI64ArrayAttr:$sizes);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $input `offsets` `=` $offsets `sizes` `=` $sizes attr-dict `:`
    functional-type(operands, results)
  }];
}

def Gai_ConcatOp : Gai_Op<"concat", [Gai_Differentiable, Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "join tensors along one dimension";
  let arguments = (ins Variadic<Gai_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $inputs `axis` `=` $axis attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_RepeatOp : Gai_Op<"repeat", [Gai_Differentiable, Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "repeat each slice along an axis `times` times in a row";
  let description = [{
    Like torch.repeat_interleave: K/V heads [B, Hkv, T, D] repeated for
    grouped-query attention become [B, Hkv * times, T, D], head h reading
    KV head h / times.
  }];
  let arguments = (ins Gai_Tensor:$input, I64Attr:$axis, I64Attr:$times);
  let results = (outs Gai_Tensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `times` `=` $times attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Mixture of experts and loss
//===----------------------------------------------------------------------===//

def Gai_TopKOp : Gai_Op<"topk", [Gai_Differentiable, Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "the k largest entries of the last dimension and their indices";
  let description = [{
    Values are sorted, largest first; ties go to the lower index. Routes tokens
    to experts in a mixture of experts.
    ```mlir
    %w, %e = gai.topk %probs k = 2
        : (tensor<64x4xf32>) -> (tensor<64x2xf32>, tensor<64x2xi32>)
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$input, I64Attr:$k);
  let results = (outs Gai_FloatTensor:$values, Gai_IndexTensor:$indices);
  let assemblyFormat = [{
    $input `k` `=` $k attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_OneHotOp : Gai_Op<"one_hot", [Gai_NoGradient, Gai_Interpreted, Pure]> {
  let summary = "indices [...] to [..., depth] of 0 and 1";
  let arguments = (ins Gai_IndexTensor:$indices, I64Attr:$depth,
                       DefaultValuedAttr<I64Attr, "1">:$vocab_shards);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $indices `depth` `=` $depth attr-dict `:` functional-type(operands, results)
  }];
  let description = [{
    With vocab_shards = T > 1, the depth is this rank's share of T·depth
    classes (as gai.embedding's table): indices of the other ranks give
    zero rows.
  }];
  let hasVerifier = 1;
}

def Gai_CrossEntropyOp : Gai_Op<"cross_entropy", [Gai_Differentiable,
    Gai_Interpreted, Pure, InferTypeOpAdaptor]> {
  let summary = "softmax cross-entropy of logits [..., V] against labels [...]";
  let description = [{
    Labels equal to `ignore_index` add nothing; `mean` divides by the count
    of the others. The loss is f32.
  }];
  let arguments = (ins Gai_FloatTensor:$logits, Gai_IndexTensor:$labels,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Gai_LossReduction,
                        "::mlir::gai::LossReduction::Mean">:$reduction);
  let results = (outs StaticShapeTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $reduction $logits `,` $labels attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_CrossEntropyGradOp : Gai_Op<"cross_entropy_grad", [Gai_Interpreted, Pure]> {
  let summary = "d loss / d logits of gai.cross_entropy, given d loss";
  let description = [{
    (softmax(logits) - one_hot(labels)) · grad, divided by the count of
    counted labels for `mean`; rows whose label is `ignore_index` are zero.
    `grad` is the loss's adjoint: a scalar for `mean` and `sum`, the labels'
    shape for `none`. One fused pass over each row of logits: the backward
    of the loss never materialises the probabilities.
  }];
  let arguments = (ins Gai_FloatTensor:$logits, Gai_IndexTensor:$labels,
      StaticShapeTensorOf<[F32]>:$grad,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Gai_LossReduction,
                        "::mlir::gai::LossReduction::Mean">:$reduction);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $reduction $logits `,` $labels `,` $grad attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Composite ops made by rewriting
//===----------------------------------------------------------------------===//

def Gai_FlashAttentionOp : Gai_Op<"flash_attention", [Gai_Differentiable,
    Gai_Interpreted, Pure, InferTypeOpAdaptor]> {
  let summary = "softmax(mask(Q·Kᵀ·scale))·V without materialising the scores";
  let description = [{
    `query` is [B, H, T, D]; `key` and `value` are [B, H / kv_groups, S, D]
    and [B, H / kv_groups, S, Dv]: query head h reads KV head h / kv_groups
    (grouped-query attention; kv_groups = H is multi-query). With `causal`,
    query i sits at position i + S - T, or at `query_positions[b] + i` when
    given (a generation step over a KV cache), and sees keys j <= that
    position, and with a window W > 0 only those with position - j < W. A softcap c > 0
    applies c·tanh(s / c) to the scaled scores before masking. The attention
    rewriting pass makes this op from the naive pattern. With `with_lse` it
    also returns each query row's log-sum-exp of its masked scores, f32
    [B, H, T] (-inf for a row that sees no key): what its backward
    (gai.flash_attention_grad) needs to rebuild the probabilities.
    `token_major` (query, key, value, result; empty: none) marks the tensors
    laid out [B, T, H, D] instead, as a projection makes them: the kernels
    read and write rows at any stride, so no transpose is needed
    (gai-attention-layout sets it).
    ```mlir
    %o = gai.flash_attention %q, %k, %v scale = 0.125 kv_groups = 4 causal
        : (tensor<1x8x32x64xbf16>, tensor<1x2x32x64xbf16>,
           tensor<1x2x32x64xbf16>) -> tensor<1x8x32x64xbf16>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$query, Gai_FloatTensor:$key,
                       Gai_FloatTensor:$value,
                       Optional<Gai_IndexTensor>:$query_positions,
                       F64Attr:$scale,
                       I64Attr:$kv_groups, UnitAttr:$causal,
                       DefaultValuedAttr<I64Attr, "0">:$window,
                       DefaultValuedAttr<F64Attr, "0.0">:$softcap,
                       UnitAttr:$with_lse,
                       DefaultValuedOptionalAttr<DenseBoolArrayAttr, "{}">:$token_major);
  let results = (outs Gai_FloatTensor:$result, Optional<F32Tensor>:$lse);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`at` $query_positions^)?
    `scale` `=` $scale `kv_groups` `=` $kv_groups
    (`causal` $causal^)? (`window` `=` $window^)? (`softcap` `=` $softcap^)?
    (`with_lse` $with_lse^)? attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The tensors `token_major` speaks of, in its order.
    enum TensorIndex : unsigned { kQuery, kKey, kValue, kResult, kTensors };
    /// Whether tensor `index` is laid out [B, T, H, D].
    bool isTokenMajor(unsigned index) {
      ArrayRef<bool> flags = getTokenMajor();
      return index < flags.size() && flags[index];
    }
  }];
}

def Gai_FlashAttentionGradOp : Gai_Op<"flash_attention_grad", [Gai_Interpreted,
    Pure, InferTypeOpAdaptor]> {
  let summary = "the query, key and value gradients of gai.flash_attention";
  let description = [{
    Given the forward's operands, its result `out`, its row log-sum-exps
    `lse` (f32 [B, H, T]) and the result's gradient `out_grad`, the
    gradients of query, key and value (FlashAttention-2's backward): with
    P = exp(S - lse), dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP - rowsum(dO ⊙ O))
    through the softcap's derivative, dQ = dS·K·scale and dK = dSᵀ·Q·scale,
    summed over each KV head's query heads. Nothing [T, S]-sized is made.
    The attributes are the forward's; no query positions (a training
    forward has none). `token_major` (query, key, value, out, out_grad and
    the three gradients; empty: none) marks the tensors laid out
    [B, T, H, D] instead of [B, H, T, D].
  }];
  let arguments = (ins Gai_FloatTensor:$query, Gai_FloatTensor:$key,
                       Gai_FloatTensor:$value, Gai_FloatTensor:$out,
                       F32Tensor:$lse, Gai_FloatTensor:$out_grad,
                       F64Attr:$scale, I64Attr:$kv_groups, UnitAttr:$causal,
                       DefaultValuedAttr<I64Attr, "0">:$window,
                       DefaultValuedAttr<F64Attr, "0.0">:$softcap,
                       DefaultValuedOptionalAttr<DenseBoolArrayAttr, "{}">:$token_major);
  let results = (outs Gai_FloatTensor:$query_grad, Gai_FloatTensor:$key_grad,
                      Gai_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $out `,` $lse `,` $out_grad
    `scale` `=` $scale `kv_groups` `=` $kv_groups
    (`causal` $causal^)? (`window` `=` $window^)? (`softcap` `=` $softcap^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The tensors `token_major` speaks of, in its order.
    enum TensorIndex : unsigned {
      kQuery, kKey, kValue, kOut, kOutGrad, kQueryGrad, kKeyGrad, kValueGrad, kTensors
    };
    /// Whether tensor `index` is laid out [B, T, H, D].
    bool isTokenMajor(unsigned index) {
      ArrayRef<bool> flags = getTokenMajor();
      return index < flags.size() && flags[index];
    }
  }];
}

def Gai_CachedAttentionOp : Gai_Op<"cached_attention", [Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "a generation step's attention, its RoPE and its KV cache writes";
  let description = [{
    One op for what a decode step does around its KV caches:
    ```
    q' = rope(query, rope_positions)      k' = rope(key, rope_positions)
    key_cache'   = cache_write(key_cache, k', positions)
    value_cache' = cache_write(value_cache, value, positions)
    result = flash_attention(q', key_cache', value_cache' at positions)
    ```
    without the rotation when `rope_style` is absent. `query` is [B, H, T, D],
    `key` and `value` the step's new rows [B, H / kv_groups, T, D | Dv], the
    caches [B, H / kv_groups, S, D | Dv]. The results are the attention
    output and the two caches. The attention rewriting pass makes this op
    (its `fold-cache-writes` option) so that one kernel does all of it: the
    GPU runtime reads the new rows where a separate write would have put
    them.
    ```mlir
    %o, %kc, %vc = gai.cached_attention %q, %k, %v into %kcache, %vcache
        at %start rope half %pos theta = 1.0e4 scale = 0.125 kv_groups = 8
        causal : (...) -> (...)
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$query, Gai_FloatTensor:$key,
                       Gai_FloatTensor:$value, Gai_FloatTensor:$key_cache,
                       Gai_FloatTensor:$value_cache,
                       Gai_IndexTensor:$positions,
                       Optional<Gai_IndexTensor>:$rope_positions,
                       OptionalAttr<Gai_RopeStyle>:$rope_style,
                       OptionalAttr<F64Attr>:$rope_theta,
                       F64Attr:$scale, I64Attr:$kv_groups, UnitAttr:$causal,
                       DefaultValuedAttr<I64Attr, "0">:$window,
                       DefaultValuedAttr<F64Attr, "0.0">:$softcap);
  let results = (outs Gai_FloatTensor:$result, Gai_FloatTensor:$new_key_cache,
                      Gai_FloatTensor:$new_value_cache);
  let assemblyFormat = [{
    $query `,` $key `,` $value `into` $key_cache `,` $value_cache
    `at` $positions
    (`rope` $rope_style^ $rope_positions `theta` `=` $rope_theta)?
    `scale` `=` $scale `kv_groups` `=` $kv_groups
    (`causal` $causal^)? (`window` `=` $window^)? (`softcap` `=` $softcap^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Gai_GemmOp : Gai_Op<"gemm", [Gai_Interpreted, Pure, InferTypeOpAdaptor,
    AttrSizedOperandSegments]> {
  let summary = "act(lhs·rhs + bias) + residual: a matmul with its epilogue";
  let description = [{
    The fusion pass makes this op from a `gai.matmul` and the bias add,
    activation and residual add that follow it, so that one GEMM call (a
    cuBLASLt epilogue, or the CPU kernel's store loop) does all of them.
    `bias` is [N]; `residual` has the result's shape. Over bf16 or f16
    operands without a bias, the residual may be f32 (a residual stream
    kept in f32): the result is then f32, the product added unrounded.
    `wide` asks for that f32 result without a residual (a gradient that a
    first micro-batch writes where later ones add to it).
    ```mlir
    %y = gai.gemm %x, %w bias %b transpose_rhs activation = gelu_tanh
        : (tensor<2x8x64xf32>, tensor<256x64xf32>, tensor<256xf32>)
        -> tensor<2x8x256xf32>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$lhs, Gai_FloatTensor:$rhs,
      Optional<Gai_FloatTensor>:$bias, Optional<Gai_FloatTensor>:$residual,
      UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs,
      DefaultValuedAttr<Gai_EpilogueActivation,
                        "::mlir::gai::EpilogueActivation::None">:$activation,
      UnitAttr:$wide);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`bias` $bias^)? (`residual` $residual^)?
    (`transpose_lhs` $transpose_lhs^)? (`transpose_rhs` $transpose_rhs^)?
    (`activation` `=` $activation^)? (`wide` $wide^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Gai_GatedGemmOp : Gai_Op<"gated_gemm", [Gai_Interpreted, Pure,
    InferTypeOpAdaptor]> {
  let summary = "act(lhs·gateᵀ) ⊙ (lhs·upᵀ): a gated linear unit's two products";
  let description = [{
    `lhs` is [..., M, K]; `gate` and `up` are weights stored [N, K], as a
    linear layer's. The fusion pass (`gated-gemm-rows`) makes this op from
    `act(x·Wgᵀ) * (x·Wuᵀ)` (SwiGLU, GeGLU) when x has few rows, as in a
    decode step: one GEMV then streams both weights and writes only the
    gated product, so the activation and the multiply cost no kernel and
    no dependency of their own.
    ```mlir
    %h = gai.gated_gemm %x, %wg, %wu activation = silu
        : (tensor<1x1x64xf32>, tensor<176x64xf32>, tensor<176x64xf32>)
        -> tensor<1x1x176xf32>
    ```
  }];
  let arguments = (ins Gai_FloatTensor:$lhs, Gai_FloatTensor:$gate,
      Gai_FloatTensor:$up, Gai_EpilogueActivation:$activation);
  let results = (outs Gai_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $gate `,` $up `activation` `=` $activation attr-dict `:`
    functional-type(operands, results)
  }];
}

def Gai_FusionOp : Gai_Op<"fusion", [Gai_Interpreted, IsolatedFromAbove,
    SingleBlockImplicitTerminator<"YieldOp">, RecursiveMemoryEffects]> {
  let summary = "elementwise and row-reduction ops that become one kernel";
  let description = [{
    The body computes the results from the block arguments, which stand for
    `inputs`, and ends in `gai.yield`. Codegen lowers each region to one
    kernel, so its intermediates never reach memory.
    ```mlir
    %y = gai.fusion %x, %w : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32> {
    ^bb0(%a: tensor<8x64xf32>, %b: tensor<64xf32>):
      %n = gai.rms_norm %a, %b eps = 1.0e-5 : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
      gai.yield %n : tensor<8x64xf32>
    }
    ```

    With `column_partials` (result indices) and `partial_rows` = G, each
    listed result holds column sums instead of rows: the yielded value is
    [rows..., C] and the result is f32 [rows / G, C], row i the sum of
    yielded rows iG .. iG + G - 1. A sum over every row (a norm weight's
    gradient) then reads G times fewer rows than the kernel would have
    written.
  }];
  let arguments = (ins Variadic<Gai_Tensor>:$inputs,
                   OptionalAttr<DenseI64ArrayAttr>:$column_partials,
                   OptionalAttr<I64Attr>:$partial_rows);
  let results = (outs Variadic<Gai_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $inputs attr-dict `:` functional-type($inputs, $results) $body
  }];
  let extraClassDeclaration = [{
    /// Whether result `i` holds column sums over `partial_rows` rows.
    bool isColumnPartial(unsigned i) {
      std::optional<llvm::ArrayRef<int64_t>> partials = getColumnPartials();
      return partials && llvm::is_contained(*partials, static_cast<int64_t>(i));
    }
  }];
  let hasRegionVerifier = 1;
}

def Gai_YieldOp : Gai_Op<"yield", [Pure, Terminator, ReturnLike,
    HasParent<"FusionOp">]> {
  let summary = "the results of a gai.fusion body";
  let arguments = (ins Variadic<Gai_Tensor>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
  let builders = [OpBuilder<(ins), [{ /* nothing to yield */ }]>];
}

#endif // GAI_OPS_TD
