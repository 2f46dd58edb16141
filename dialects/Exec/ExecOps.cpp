// The exec dialect: registration and the ref attribute's syntax.
#include "dialects/Exec/ExecOps.h"
#include "dialects/Gai/StateNames.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::exec;

#include "dialects/Exec/ExecDialect.cpp.inc"
#include "dialects/Exec/ExecEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Exec/ExecAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/Exec/ExecOps.cpp.inc"

static constexpr const char *kSpaceNames[] = {"arena", "weights", "state",
                                              "input", "output"};

StringRef mlir::exec::spaceName(Space space) {
  return kSpaceNames[static_cast<int64_t>(space)];
}

std::optional<StateName> mlir::exec::parseStateName(StringRef name) {
  static const std::pair<StringRef, StateRole> kPrefixes[] = {
      {gai::kParamPrefix, StateRole::Parameter},
      {gai::kGradPrefix, StateRole::Gradient},
      {gai::kFirstMomentPrefix, StateRole::FirstMoment},
      {gai::kSecondMomentPrefix, StateRole::SecondMoment},
      {gai::kCachePrefix, StateRole::KVCache},
      {gai::kParamCopyPrefix, StateRole::ParameterCopy}};
  for (auto [prefix, role] : kPrefixes)
    if (name.starts_with(prefix))
      return StateName{role, role == StateRole::KVCache ? StringRef() : name.drop_front(prefix.size())};
  return std::nullopt;
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

// Every arena buffer a command names lies inside the entry's arena.
LogicalResult EntryOp::verify() {
  int64_t arena = static_cast<int64_t>(getArenaSize());
  if (arena < 0)
    return emitOpError("arena size must not be negative, got ") << arena;
  WalkResult result = getBody().walk([&](Operation *op) {
    for (NamedAttribute attr : op->getAttrs()) {
      SmallVector<RefAttr> refs;
      if (auto ref = dyn_cast<RefAttr>(attr.getValue()))
        refs.push_back(ref);
      else if (auto array = dyn_cast<ArrayAttr>(attr.getValue()))
        for (Attribute a : array)
          if (auto ref = dyn_cast<RefAttr>(a))
            refs.push_back(ref);
      for (RefAttr ref : refs)
        if (ref.getSpace() == Space::Arena && ref.getOffset() + ref.getSize() > arena) {
          op->emitOpError("'") << attr.getName().getValue() << "' ends at byte "
                               << ref.getOffset() + ref.getSize()
                               << ", past the entry's arena of " << arena;
          return WalkResult::interrupt();
        }
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto kernel =
      symbols.lookupNearestSymbolFrom<func::FuncOp>(*this, getKernelAttr());
  if (!kernel)
    return emitOpError("launches '") << getKernel()
                                     << "', which is not a func.func kernel";
  if (kernel.getNumArguments() != getArgs().size())
    return emitOpError("passes ") << getArgs().size() << " buffers to '"
                                  << getKernel() << "', which takes "
                                  << kernel.getNumArguments();
  return success();
}
