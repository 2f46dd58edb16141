// Enumerations used as op attributes in the gai dialect.
#ifndef GAI_ENUMS_TD
#define GAI_ENUMS_TD

include "mlir/IR/EnumAttr.td"

def Gai_ReduceKind : I32EnumAttr<"ReduceKind", "reduction combiner", [
    I32EnumAttrCase<"Sum", 0, "sum">,
    I32EnumAttrCase<"Mean", 1, "mean">,
    I32EnumAttrCase<"Max", 2, "max">,
    I32EnumAttrCase<"Min", 3, "min">]> {
  let cppNamespace = "::mlir::gai";
}

def Gai_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "how gelu is computed", [
    I32EnumAttrCase<"None", 0, "none">,   // x * Phi(x) with erf
    I32EnumAttrCase<"Tanh", 1, "tanh">]> { // GPT-2's gelu_new / gelu_pytorch_tanh
  let cppNamespace = "::mlir::gai";
}

// Which pairs of the head dimension RoPE rotates together.
def Gai_RopeStyle : I32EnumAttr<"RopeStyle", "rotary embedding pairing", [
    I32EnumAttrCase<"Half", 0, "half">,            // (i, i + d/2), HF LLaMA
    I32EnumAttrCase<"Interleaved", 1, "interleaved">]> { // (2i, 2i + 1), GPT-J, Meta
  let cppNamespace = "::mlir::gai";
}

// How a quantized weight is stored (gai.dequantize).
def Gai_QuantFormat : I32EnumAttr<"QuantFormat", "quantized weight format", [
    I32EnumAttrCase<"Int8", 0, "int8">,          // symmetric, a scale per row
    I32EnumAttrCase<"Int4", 1, "int4">,          // asymmetric, a scale and zero per group of k
    I32EnumAttrCase<"Fp8E4M3", 2, "fp8_e4m3">]> { // a scale per tensor or per row
  let cppNamespace = "::mlir::gai";
}

def Gai_LossReduction : I32EnumAttr<"LossReduction", "loss reduction", [
    I32EnumAttrCase<"Mean", 0, "mean">,  // over labels that are not ignored
    I32EnumAttrCase<"Sum", 1, "sum">,
    I32EnumAttrCase<"None", 2, "none">]> {
  let cppNamespace = "::mlir::gai";
}

// Activations a GEMM epilogue applies.
def Gai_EpilogueActivation : I32EnumAttr<"EpilogueActivation",
    "activation fused into a GEMM", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Silu", 1, "silu">,
    I32EnumAttrCase<"Gelu", 2, "gelu">,          // exact (erf)
    I32EnumAttrCase<"GeluTanh", 3, "gelu_tanh">,
    I32EnumAttrCase<"Relu", 4, "relu">]> {
  let cppNamespace = "::mlir::gai";
}

#endif // GAI_ENUMS_TD
