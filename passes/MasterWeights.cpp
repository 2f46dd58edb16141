// f32 master copies of low-precision parameters, for mixed-precision
// training: the parameter the optimizer updates is f32, what compute reads
// is its conversion.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIMASTERWEIGHTS
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

struct MasterWeightsPass
    : mlir::gai::impl::GaiMasterWeightsBase<MasterWeightsPass> {
  void runOnOperation() override {
    SmallVector<ParamOp> lowPrecision;
    getOperation().walk([&](ParamOp p) {
      Type element = p.getType().getElementType();
      if (isa<FloatType>(element) && !element.isF32())
        lowPrecision.push_back(p);
    });
    for (ParamOp p : lowPrecision) {
      ImplicitLocOpBuilder b(p.getLoc(), p);
      RankedTensorType type = p.getType();
      auto master = ParamOp::create(b, type.clone(b.getF32Type()), p.getName());
      // What other passes recorded on it (--gai-prune's slicing, say).
      master->setDiscardableAttrs(p->getDiscardableAttrDictionary());
      Value compute = ConvertOp::create(b, type, master);
      p.getResult().replaceAllUsesWith(compute);
      p.erase();
    }
  }
};

} // namespace
