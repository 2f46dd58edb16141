// The `gai.prune` attribute: a dictionary, so that it survives passes that
// know nothing of it (they copy a parameter's discardable attributes).
#include "passes/PruneAttr.h"

namespace mlir::gai {

std::optional<WeightSlicing> weightSlicing(ParamOp p, StringRef attr) {
  auto dict = p->getAttrOfType<DictionaryAttr>(attr);
  if (!dict)
    return std::nullopt;
  auto group = dict.getAs<StringAttr>("group");
  auto kind = dict.getAs<StringAttr>("kind");
  auto perUnit = dict.getAs<IntegerAttr>("per_unit");
  auto axis = dict.getAs<IntegerAttr>("axis");
  auto keep = dict.getAs<IntegerAttr>("keep");
  auto segments = dict.getAs<DenseI64ArrayAttr>("segments");
  if (!group || !kind || !perUnit || !axis || !keep || !segments || segments.size() % 3 != 0)
    return std::nullopt;
  WeightSlicing s{group.str(), kind.str(), axis.getInt(), keep.getInt(), perUnit.getInt(), {}};
  if (auto replicas = dict.getAs<IntegerAttr>("replicas"))
    s.replicas = replicas.getInt();
  ArrayRef<int64_t> v = segments.asArrayRef();
  for (size_t i = 0; i < v.size(); i += 3)
    s.segments.push_back({v[i], v[i + 1], v[i + 2]});
  return s;
}

void setWeightSlicing(ParamOp p, const WeightSlicing &s, StringRef attr) {
  Builder b(p.getContext());
  SmallVector<int64_t> flat;
  for (const PruneSegment &seg : s.segments)
    flat.append({seg.offset, seg.units, seg.size});
  NamedAttrList entries;
  if (auto old = p->getAttrOfType<DictionaryAttr>(attr))
    entries.append(old.getValue());
  entries.set("group", b.getStringAttr(s.group));
  entries.set("kind", b.getStringAttr(s.kind));
  entries.set("per_unit", b.getI64IntegerAttr(s.perUnit));
  entries.set("axis", b.getI64IntegerAttr(s.axis));
  entries.set("keep", b.getI64IntegerAttr(s.keep));
  entries.set("segments", b.getDenseI64ArrayAttr(flat));
  if (s.replicas > 1)
    entries.set("replicas", b.getI64IntegerAttr(s.replicas));
  p->setAttr(attr, entries.getDictionary(p.getContext()));
}

std::optional<Masked24> masked24(ParamOp p) {
  auto dict = p->getAttrOfType<DictionaryAttr>(kPruneAttr);
  auto pattern = dict ? dict.getAs<StringAttr>("pattern") : StringAttr();
  if (!pattern || pattern.getValue() != "2:4")
    return std::nullopt;
  auto layout = dict.getAs<StringAttr>("layout");
  return Masked24{layout && layout.getValue() == "kn"};
}

void setMasked24(ParamOp p, Masked24 masked) {
  NamedAttrList entries;
  if (auto old = p->getAttrOfType<DictionaryAttr>(kPruneAttr))
    entries.append(old.getValue());
  entries.set("pattern", StringAttr::get(p.getContext(), "2:4"));
  entries.set("layout", StringAttr::get(p.getContext(), masked.kn ? "kn" : "nk"));
  p->setAttr(kPruneAttr, entries.getDictionary(p.getContext()));
}

} // namespace mlir::gai
