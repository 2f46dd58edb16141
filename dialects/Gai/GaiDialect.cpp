// Registers the gai dialect's ops.
#include "dialects/Gai/GaiDialect.h"
#include "dialects/Gai/GaiOps.h"

using namespace mlir;
using namespace mlir::gai;

#include "dialects/Gai/GaiDialect.cpp.inc"
#include "dialects/Gai/GaiInterfaces.cpp.inc"

void GaiDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Gai/GaiOps.cpp.inc"
      >();
}
