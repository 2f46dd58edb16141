// The gai dialect: a tensor-level graph of the primitive ops of transformer models.
#ifndef GAI_DIALECT_TD
#define GAI_DIALECT_TD

include "mlir/IR/OpBase.td"

def Gai_Dialect : Dialect {
  let name = "gai";
  let cppNamespace = "::mlir::gai";
  let summary = "Tensor graphs of generative transformer models";
  let description = [{
    Ops act on builtin ranked tensors of static shape. Element types are
    f32/f16/bf16/f8E4M3FN for activations and weights, i8/i4 for quantized
    weights, i32 for token ids and positions, and i1 for masks. Every op infers
    or checks its result type; binary ops broadcast like NumPy.
  }];
}

class Gai_Op<string mnemonic, list<Trait> traits = []>
    : Op<Gai_Dialect, mnemonic, traits>;

// Element types.
def Gai_FloatElement : AnyTypeOf<[F32, F16, BF16, F8E4M3FN]>;

// Tensors of static shape.
def Gai_Tensor : StaticShapeTensorOf<[F32, F16, BF16, F8E4M3FN, I1, I<4>, I8, I32]>;
def Gai_FloatTensor : StaticShapeTensorOf<[F32, F16, BF16, F8E4M3FN]>;
def Gai_IndexTensor : StaticShapeTensorOf<[I32]>;
def Gai_MaskTensor : StaticShapeTensorOf<[I1]>;

#endif // GAI_DIALECT_TD
