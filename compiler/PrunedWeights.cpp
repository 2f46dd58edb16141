// Pruned weights made at compile time from the float ones.
#include "compiler/PrunedWeights.h"

#include "dialects/Gai/GaiOps.h"
#include "gai/FloatConvert.h"
#include "gai/Sparsity.h"
#include "gai/WeightSet.h"
#include "passes/PruneAttr.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <map>
#include <numeric>

namespace gai {
namespace {

using mlir::gai::DecompressOp;
using mlir::gai::DequantizeOp;
using mlir::gai::ParamOp;
using mlir::gai::PruneSegment;
using mlir::gai::WeightSlicing;

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A weight as f32, any shape.
struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

llvm::Expected<FloatTensor> readFloats(const WeightSet &weights, const std::string &name) {
  const TensorView *t = weights.find(name);
  if (!t)
    return error(weights.path() + ": no tensor '" + name + "' to prune");
  if (!canConvertFloats(t->dtype, DType::F32))
    return error(weights.path() + ": tensor '" + name + "' is " + dtypeName(t->dtype) +
                 "; pruning it needs floats");
  FloatTensor f{t->shape, std::vector<float>(static_cast<size_t>(t->numElements()))};
  convertFloats(t->data, t->dtype, f.values.data(), DType::F32, f.values.size());
  return f;
}

/// Elements before and after `axis`, and its extent.
struct AxisView {
  int64_t outer = 1, extent = 0, inner = 1;
};
AxisView viewAlong(const std::vector<int64_t> &shape, int64_t axis) {
  AxisView v;
  for (int64_t d = 0; d < axis; ++d)
    v.outer *= shape[d];
  for (int64_t d = axis + 1; d < static_cast<int64_t>(shape.size()); ++d)
    v.inner *= shape[d];
  v.extent = shape[axis];
  return v;
}

/// One group's weights and the slicing each records.
struct Group {
  std::string kind;
  int64_t units = 0, keep = 0, perUnit = 1;
  llvm::MapVector<llvm::StringRef, WeightSlicing> members;
};

llvm::Error checkSlicing(const WeightSet &weights, llvm::StringRef name, const FloatTensor &t,
                         const WeightSlicing &s, int64_t units) {
  bool ok = s.axis >= 0 && s.axis < static_cast<int64_t>(t.shape.size());
  for (const PruneSegment &seg : s.segments)
    ok = ok && seg.units == units && seg.offset >= 0 && seg.end() <= t.shape[s.axis];
  if (ok)
    return llvm::Error::success();
  return error(weights.path() + ": tensor '" + name + "' " +
               mlir::gai::formatShape(t.shape) + " does not have the heads or channels the " +
               "model's pruning expects along axis " + std::to_string(s.axis));
}

/// Whether `calibration` weighs every weight of `g` (each 2-D one measured
/// at its k; biases need nothing); otherwise the group goes by magnitude.
bool calibrates(const ActivationSquares *calibration, const Group &g,
                const std::map<std::string, FloatTensor> &floats) {
  if (!calibration)
    return false;
  for (auto &[name, s] : g.members) {
    const FloatTensor &t = floats.at(name.str());
    if (t.shape.size() == 1)
      continue;
    auto it = calibration->weights.find(name.str());
    if (t.shape.size() != 2 || it == calibration->weights.end() ||
        static_cast<int64_t>(it->second.sums.size()) != t.shape[it->second.kAxis])
      return false;
  }
  return true;
}

/// The group's units by Σw² over its weights (with calibration, each w²
/// times its input feature's Σx²), the largest first.
llvm::Expected<std::vector<int64_t>> rankUnits(const WeightSet &weights, const Group &g,
                                               std::map<std::string, FloatTensor> &floats,
                                               const ActivationSquares *calibration,
                                               bool &calibrated) {
  for (auto &[name, s] : g.members) {
    llvm::Expected<FloatTensor> t = readFloats(weights, name.str());
    if (!t)
      return t.takeError();
    if (llvm::Error e = checkSlicing(weights, name, *t, s, g.units))
      return std::move(e);
    floats[name.str()] = std::move(*t);
  }
  calibrated = calibrates(calibration, g, floats);
  std::vector<double> importance(static_cast<size_t>(g.units), 0.0);
  for (auto &[name, s] : g.members) {
    const FloatTensor &t = floats.at(name.str());
    AxisView v = viewAlong(t.shape, s.axis);
    // A weight element's feature along k: its row or its column.
    const std::vector<double> *sums = nullptr;
    int64_t kAxis = 0;
    double biasFactor = calibrated ? static_cast<double>(calibration->tokens) : 1.0;
    if (calibrated && t.shape.size() == 2) {
      const ActivationSquares::Weight &w = calibration->weights.at(name.str());
      sums = &w.sums;
      kAxis = w.kAxis;
    }
    for (const PruneSegment &seg : s.segments)
      for (int64_t u = 0; u < seg.units; ++u)
        for (int64_t o = 0; o < v.outer; ++o)
          for (int64_t i = seg.offset + u * seg.size; i < seg.offset + (u + 1) * seg.size; ++i)
            for (int64_t j = 0; j < v.inner; ++j) {
              double w = t.values[(o * v.extent + i) * v.inner + j];
              double factor = biasFactor;
              if (sums) {
                int64_t row = s.axis == 0 ? i : o, column = s.axis == 0 ? j : i;
                factor = (*sums)[kAxis == 0 ? row : column];
              }
              importance[u] += w * w * factor;
            }
  }
  std::vector<int64_t> order(static_cast<size_t>(g.units));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return importance[a] > importance[b]; });
  return order;
}

/// `t` with only the `kept` units (ascending) of each segment along the axis.
FloatTensor slice(const FloatTensor &t, const WeightSlicing &s, const std::vector<int64_t> &kept) {
  AxisView v = viewAlong(t.shape, s.axis);
  std::vector<std::pair<int64_t, int64_t>> ranges; // kept [from, to) along the axis
  int64_t at = 0;
  for (const PruneSegment &seg : s.segments) {
    ranges.push_back({at, seg.offset});
    for (int64_t u : kept)
      ranges.push_back({seg.offset + u * seg.size, seg.offset + (u + 1) * seg.size});
    at = seg.end();
  }
  ranges.push_back({at, v.extent});
  FloatTensor out{t.shape, {}};
  out.shape[s.axis] = 0;
  for (auto [from, to] : ranges)
    out.shape[s.axis] += to - from;
  for (int64_t o = 0; o < v.outer; ++o)
    for (auto [from, to] : ranges)
      out.values.insert(out.values.end(), t.values.begin() + (o * v.extent + from) * v.inner,
                        t.values.begin() + (o * v.extent + to) * v.inner);
  return out;
}

/// Structured pruning's weights, each group's choice the same everywhere.
llvm::Error sliceGroups(mlir::ModuleOp module, const WeightSet &weights,
                        const ActivationSquares *calibration, PrunedWeights &out) {
  std::map<std::string, Group> groups;
  std::vector<std::string> order; // as first found: the report's order
  llvm::StringSet<> seen;
  module.walk([&](ParamOp p) {
    std::optional<WeightSlicing> s = mlir::gai::weightSlicing(p);
    if (!s || !seen.insert(p.getName()).second)
      return;
    if (!groups.count(s->group))
      order.push_back(s->group);
    Group &g = groups[s->group];
    g.kind = s->kind;
    g.keep = s->keep;
    g.perUnit = s->perUnit;
    g.units = s->segments.empty() ? 0 : s->segments.front().units;
    g.members.insert({p.getName(), *s});
  });
  for (const std::string &name : order) {
    const Group &g = groups[name];
    std::map<std::string, FloatTensor> floats;
    bool calibrated = false;
    llvm::Expected<std::vector<int64_t>> order =
        rankUnits(weights, g, floats, calibration, calibrated);
    if (!order)
      return order.takeError();
    std::vector<int64_t> kept(order->begin(), order->begin() + g.keep),
        removed(order->begin() + g.keep, order->end());
    std::sort(kept.begin(), kept.end());
    std::sort(removed.begin(), removed.end());
    for (auto &[member, s] : g.members) {
      FloatTensor t = slice(floats[member.str()], s, kept);
      out.add(member.str(), DType::F32, t.shape, t.values);
    }
    out.groups.push_back({name, g.kind, g.units, g.perUnit, removed, calibrated});
  }
  return llvm::Error::success();
}

/// The weight `name` as pruning finds it: sliced already, or the file's.
const TensorView *source(const WeightSet &weights, const PrunedWeights &made,
                         const std::string &name, TensorView &view) {
  if (const TensorToWrite *t = made.find(name)) {
    view = {t->name, t->dtype, t->shape, t->data, t->byteSize};
    return &view;
  }
  return weights.find(name);
}

/// 2:4: the masked weights zeroed, the compressed ones made.
llvm::Error sparsify(mlir::ModuleOp module, const WeightSet &weights, PrunedWeights &out) {
  llvm::StringSet<> done;
  llvm::Error failed = llvm::Error::success();
  auto fail = [&](llvm::Error e) {
    failed = std::move(e);
    return mlir::WalkResult::interrupt();
  };
  module.walk([&](mlir::Operation *op) {
    auto masked = mlir::dyn_cast<ParamOp>(op);
    auto decompress = mlir::dyn_cast<DecompressOp>(op);
    std::optional<mlir::gai::Masked24> mask = masked ? mlir::gai::masked24(masked) : std::nullopt;
    if (!mask && !decompress)
      return mlir::WalkResult::advance();
    ParamOp values = decompress ? decompress.getValues().getDefiningOp<ParamOp>() : masked;
    ParamOp meta = decompress ? decompress.getMeta().getDefiningOp<ParamOp>() : ParamOp();
    if (!values || (decompress && !meta))
      return fail(error("a gai.decompress reads something other than parameters"));
    std::string name = values.getName().str();
    if (!done.insert(name).second)
      return mlir::WalkResult::advance();
    TensorView view;
    const TensorView *t = source(weights, out, name, view);
    if (!t)
      return fail(error(weights.path() + ": no tensor '" + name + "' to prune"));
    // [n, k]: the compressed weight's, or the masked one's, read [n, k].
    auto dense = mlir::cast<mlir::RankedTensorType>(decompress ? decompress.getType()
                                                               : values.getType());
    const bool transposed = decompress ? values.getTransposed() : mask->kn;
    int64_t n = dense.getDimSize(transposed && !decompress ? 1 : 0),
            k = dense.getDimSize(transposed && !decompress ? 0 : 1);
    llvm::Expected<std::vector<float>> w =
        floatMatrix(*t, weights.path(), n, k, transposed, "2:4 pruning");
    if (!w)
      return fail(w.takeError());
    ++out.sparseMatrices;
    if (mask) {
      prune24(w->data(), n, k);
      std::vector<float> file(w->size());
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < k; ++c)
          (transposed ? file[c * n + r] : file[r * k + c]) = (*w)[r * k + c];
      out.add(name, DType::F32, t->shape, file);
      return mlir::WalkResult::advance();
    }
    Sparse24Weight s = compress24(w->data(), n, k);
    mlir::Type element = dense.getElementType();
    DType dtype = element.isBF16() ? DType::BF16 : element.isF16() ? DType::F16 : DType::F32;
    auto bytes = std::make_shared<std::vector<uint8_t>>(s.values.size() * dtypeSize(dtype));
    convertFloats(reinterpret_cast<const uint8_t *>(s.values.data()), DType::F32, bytes->data(),
                  dtype, s.values.size());
    out.addBytes(name, dtype, {n, k / 2}, std::move(bytes));
    out.add(meta.getName().str(), DType::I8, {n, k / 8}, s.meta);
    return mlir::WalkResult::advance();
  });
  return failed;
}

} // namespace

bool hasPrunedWeights(mlir::ModuleOp module) {
  bool found = false;
  module.walk([&](mlir::Operation *op) {
    if (mlir::isa<DecompressOp>(op) || op->hasAttr(mlir::gai::kPruneAttr)) {
      found = true;
      return mlir::WalkResult::interrupt();
    }
    return mlir::WalkResult::advance();
  });
  return found;
}

llvm::Expected<MadeWeights> splitTensorParallelWeights(mlir::ModuleOp module,
                                                      const WeightSet &weights, int64_t parts) {
  MadeWeights out;
  llvm::StringSet<> seen;
  llvm::Error failed = llvm::Error::success();
  module.walk([&](ParamOp p) {
    std::optional<WeightSlicing> s =
        mlir::gai::weightSlicing(p, mlir::gai::kTensorParallelAttr);
    if (!s || !seen.insert(p.getName()).second || failed)
      return;
    llvm::Expected<FloatTensor> whole = readFloats(weights, p.getName().str());
    if (!whole) {
      failed = whole.takeError();
      return;
    }
    int64_t units = s->segments.empty() ? 0 : s->segments.front().units;
    if (llvm::Error e = checkSlicing(weights, p.getName(), *whole, *s, units)) {
      failed = std::move(e);
      return;
    }
    for (int64_t rank = 0; rank < parts; ++rank) {
      std::vector<int64_t> kept;
      const int64_t holder = rank / s->replicas;
      for (int64_t u = holder * s->keep; u < (holder + 1) * s->keep; ++u)
        kept.push_back(u);
      FloatTensor t = slice(*whole, *s, kept);
      std::string name = p.getName().str();
      if (rank > 0)
        name += "@tp" + std::to_string(rank);
      out.add(name, DType::F32, t.shape, t.values);
    }
  });
  if (failed)
    return std::move(failed);
  return out;
}

llvm::Expected<PrunedWeights> pruneWeights(mlir::ModuleOp module, const WeightSet &weights,
                                           const ActivationSquares *calibration) {
  PrunedWeights out;
  out.calibrationTokens = calibration ? calibration->tokens : 0;
  if (llvm::Error e = sliceGroups(module, weights, calibration, out))
    return std::move(e);
  if (llvm::Error e = sparsify(module, weights, out))
    return std::move(e);
  return out;
}

int64_t countParameters(mlir::ModuleOp module) {
  llvm::StringSet<> companions, seen;
  module.walk([&](DecompressOp d) {
    if (auto meta = d.getMeta().getDefiningOp<ParamOp>())
      companions.insert(meta.getName());
  });
  module.walk([&](DequantizeOp d) {
    for (mlir::Value v : {d.getScale(), d.getZero()})
      if (auto p = v ? v.getDefiningOp<ParamOp>() : ParamOp())
        companions.insert(p.getName());
  });
  int64_t count = 0;
  module.walk([&](ParamOp p) {
    if (companions.contains(p.getName()) || !seen.insert(p.getName()).second)
      return;
    int64_t n = p.getType().getNumElements();
    count += mlir::gai::masked24(p) ? n / 2 : n;
  });
  return count;
}

void printPruningReport(int64_t before, int64_t after, const PrunedWeights *pruned,
                        llvm::raw_ostream &os) {
  os << "pruned: " << before << " parameters before, " << after << " after"
     << llvm::format(" (%.1f%%)", before ? 100.0 * after / before : 0.0) << "\n";
  if (!pruned) {
    os << "  (no --weights: which heads and channels go is chosen from real weights)\n";
    return;
  }
  if (pruned->calibrationTokens > 0 && !pruned->groups.empty())
    os << "  importance: |w|² weighted by the inputs' Σx² over " << pruned->calibrationTokens
       << " calibration tokens\n";
  for (const PrunedGroup &g : pruned->groups) {
    os << "  " << g.name << ": ";
    if (g.kind == "heads") {
      os << "removed " << g.removed.size() * g.perUnit << " of " << g.units * g.perUnit
         << " query heads:";
      for (int64_t u : g.removed)
        for (int64_t h = u * g.perUnit; h < (u + 1) * g.perUnit; ++h)
          os << " " << h;
      if (g.perUnit > 1) {
        os << " (KV heads";
        for (int64_t u : g.removed)
          os << " " << u;
        os << ")";
      }
    } else {
      os << "removed " << g.removed.size() << " of " << g.units << " channels";
    }
    if (pruned->calibrationTokens > 0 && !g.calibrated)
      os << " (by magnitude: some of its weights were not measured)";
    os << "\n";
  }
  if (pruned->sparseMatrices)
    os << "  2:4: " << pruned->sparseMatrices
       << " matrices keep the two largest of every four weights along k\n";
}

} // namespace gai
