// Typed, strict reading of JSON objects for the spec and HF config parsers:
// every error names the file and the field's path.
#ifndef GAI_FRONTEND_JSONFIELDS_H
#define GAI_FRONTEND_JSONFIELDS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gai {

/// A value as errors quote it: JSON's own spelling (1, not 1.000000),
/// cut at 40 characters.
std::string describeJson(const llvm::json::Value &v);

/// Shared error state of the readers of one file: the first error wins.
class JsonErrors {
public:
  explicit JsonErrors(llvm::StringRef fileName) : fileName(fileName.str()) {}
  void report(llvm::StringRef path, const llvm::Twine &message);
  bool failed() const { return first.has_value(); }
  llvm::Error takeError();

private:
  std::string fileName;
  std::optional<std::string> first;
};

/// Reads fields of one JSON object. Null counts as absent (HF configs write
/// null for "use the default"). Getters leave `out` untouched when the key is
/// absent or wrong, so callers set defaults first.
class JsonFields {
public:
  JsonFields(const llvm::json::Object &object, std::string path,
             JsonErrors &errors)
      : object(object), path(std::move(path)), sink(errors) {}

  bool has(llvm::StringRef key) const;
  /// Whether the key is there and null (HF's "none", where absent means
  /// "the default").
  bool isNull(llvm::StringRef key) const;
  /// Sizes are capped at 2^31 - 1 so that shape arithmetic cannot overflow.
  void integer(llvm::StringRef key, int64_t &out, int64_t min,
               bool required = false, int64_t max = INT32_MAX);
  void number(llvm::StringRef key, double &out, double min,
              bool required = false);
  void boolean(llvm::StringRef key, bool &out);
  /// A string that must be one of `allowed` (any string when empty).
  void string(llvm::StringRef key, std::string &out,
              llvm::ArrayRef<llvm::StringRef> allowed = {},
              bool required = false);
  void strings(llvm::StringRef key, std::vector<std::string> &out);
  /// An array of numbers, each > `above`.
  void numbers(llvm::StringRef key, std::vector<double> &out, double above,
               bool required = false);
  /// A nested object, or null when absent (reported when not an object).
  const llvm::json::Object *nested(llvm::StringRef key);
  /// Marks keys as understood without reading them.
  void ignore(llvm::ArrayRef<llvm::StringRef> keys);
  /// Reports the first key nobody read, to catch typos.
  void rejectUnknownKeys();

  std::string fieldPath(llvm::StringRef key) const;
  void report(llvm::StringRef key, const llvm::Twine &message) {
    sink.report(fieldPath(key), message);
  }

private:
  const llvm::json::Value *lookup(llvm::StringRef key, bool required);

  const llvm::json::Object &object;
  std::string path;
  JsonErrors &sink;
  llvm::StringSet<> seen;
};

struct ModelSpec;

/// The keys of the head counts, which differ between formats; an empty key
/// is absent from the format.
struct HeadKeys {
  llvm::StringRef heads, kvHeads, headDim;
};

/// Reads heads, KV heads (default: heads) and head_dim (default: the hidden
/// size over heads, which must divide it). Needs spec.dModel read first.
void readHeads(JsonFields &fields, const HeadKeys &keys, ModelSpec &spec);

} // namespace gai

#endif // GAI_FRONTEND_JSONFIELDS_H
