// The rules each gai op carries: its VJP, its interpretation, and the traits
// fusion reads. Passes ask the op through these instead of listing ops.
#ifndef GAI_INTERFACES_TD
#define GAI_INTERFACES_TD

include "mlir/IR/OpBase.td"

//===----------------------------------------------------------------------===//
// Autodiff
//===----------------------------------------------------------------------===//

def Gai_VJPOpInterface : OpInterface<"VJPOpInterface"> {
  let cppNamespace = "::mlir::gai";
  let description = [{
    The op's vector-Jacobian product. Reverse-mode autodiff (`--gai-autodiff`,
    the train-step pass) calls it for each op, last op first, once some
    result of the op reaches the loss. Ops whose operands carry no gradient
    (names, attributes, integers) take the default, which adds nothing.
  }];
  let methods = [
    InterfaceMethod<[{
        Given the cotangents of the op's results (null for a result that
        does not reach the loss), builds those of its operands with
        `builder` and adds them to `sweep`. Fails with a diagnostic on the
        op for a case it has no rule for.
      }],
      "::llvm::LogicalResult", "vjp",
      (ins "::mlir::ImplicitLocOpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultCotangents,
           "::mlir::gai::VJPSweep &":$sweep),
      /*methodBody=*/"",
      /*defaultImplementation=*/[{ return ::mlir::success(); }]>
  ];
}

// An op with its own VJP rule (in GaiVJP.cpp).
defvar Gai_Differentiable = DeclareOpInterfaceMethods<Gai_VJPOpInterface, ["vjp"]>;
// An op none of whose operands can carry a gradient.
defvar Gai_NoGradient = Gai_VJPOpInterface;

//===----------------------------------------------------------------------===//
// Reference interpretation
//===----------------------------------------------------------------------===//

def Gai_InterpretOpInterface : OpInterface<"InterpretOpInterface"> {
  let cppNamespace = "::mlir::gai";
  let description = [{
    The op evaluated on host tensors in double precision: the reference
    interpreter, which numerical tests use as their oracle, runs each op
    through this.
  }];
  let methods = [
    InterfaceMethod<[{
        Reads the operands' values from `state` and sets the results'.
        Errors (an index out of range, a missing weight) name the op.
      }],
      "::llvm::Error", "interpret", (ins "::mlir::gai::InterpretState &":$state)>
  ];
}

defvar Gai_Interpreted = DeclareOpInterfaceMethods<Gai_InterpretOpInterface>;

//===----------------------------------------------------------------------===//
// Fusibility
//===----------------------------------------------------------------------===//

// Each result element from the operands' elements at the same index after
// NumPy broadcasting. (MLIR's `Elementwise` marks the ops whose operands
// and results share one shape.)
def Gai_BroadcastElementwise : NativeOpTrait<"BroadcastElementwise"> {
  let cppNamespace = "::mlir::gai";
}

// Each element a function of its index and the op's attributes alone.
def Gai_IndexFunction : NativeOpTrait<"IndexFunction"> {
  let cppNamespace = "::mlir::gai";
}

def Gai_RowOpInterface : OpInterface<"RowOpInterface"> {
  let cppNamespace = "::mlir::gai";
  let description = [{
    An op that reads a whole row of an operand (a norm, a softmax, a
    reduction), or another element of it (RoPE's rotation pairs). A fused
    kernel computes it by holding a row of the last axis in its threads.
  }];
  let methods = [
    InterfaceMethod<[{
        Whether the rows the op reads run along the last axis, the only rows
        a fused kernel holds.
      }],
      "bool", "readsLastAxisRows", (ins), /*methodBody=*/"",
      /*defaultImplementation=*/[{ return true; }]>
  ];
}

// A row op whose rows may run along another axis.
defvar Gai_LastAxisRowOp =
    DeclareOpInterfaceMethods<Gai_RowOpInterface, ["readsLastAxisRows"]>;

#endif // GAI_INTERFACES_TD
