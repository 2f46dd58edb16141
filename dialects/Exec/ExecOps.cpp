// The exec dialect: registration and the ref attribute's syntax.
#include "dialects/Exec/ExecOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::exec;

#include "dialects/Exec/ExecDialect.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Exec/ExecAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/Exec/ExecOps.cpp.inc"

static constexpr const char *kSpaceNames[] = {"arena", "weights", "state",
                                              "input", "output"};

StringRef mlir::exec::spaceName(Space space) {
  return kSpaceNames[static_cast<int64_t>(space)];
}

void ExecDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Exec/ExecAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/Exec/ExecOps.cpp.inc"
      >();
}

// #exec.ref<arena 128, 512>: space, byte offset, byte size.
Attribute RefAttr::parse(AsmParser &parser, Type) {
  StringRef keyword;
  int64_t offset = 0, size = 0;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeyword(&keyword))
    return {};
  const auto *it = llvm::find(kSpaceNames, keyword);
  if (it == std::end(kSpaceNames)) {
    parser.emitError(loc, "unknown space '")
        << keyword << "', expected arena, weights, state, input or output";
    return {};
  }
  if (parser.parseInteger(offset) || parser.parseComma() ||
      parser.parseInteger(size) || parser.parseGreater())
    return {};
  if (offset < 0 || size < 0) {
    parser.emitError(loc, "offset and size must not be negative");
    return {};
  }
  return RefAttr::get(parser.getContext(),
                      static_cast<Space>(it - std::begin(kSpaceNames)), offset,
                      size);
}

void RefAttr::print(AsmPrinter &printer) const {
  printer << "<" << spaceName(getSpace()) << " " << getOffset() << ", "
          << getSize() << ">";
}
