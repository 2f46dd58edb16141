// Typed, strict reading of JSON objects with errors that name the field.
#include "frontend/JsonFields.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace llvm;

namespace gai {

void JsonErrors::report(StringRef path, const Twine &message) {
  if (!first)
    first = fileName + ": field '" + path.str() + "': " + message.str();
}

Error JsonErrors::takeError() {
  if (!first)
    return Error::success();
  std::string message = std::move(*first);
  first.reset();
  return createStringError(inconvertibleErrorCode(), message);
}

std::string describeJson(const json::Value &v) {
  std::string s;
  raw_string_ostream os(s);
  os << v;
  if (s.size() > 40)
    s = s.substr(0, 37) + "...";
  return s;
}

std::string JsonFields::fieldPath(StringRef key) const {
  return path.empty() ? key.str() : path + "." + key.str();
}

bool JsonFields::has(StringRef key) const {
  const json::Value *v = object.get(key);
  return v && v->kind() != json::Value::Null;
}

bool JsonFields::isNull(StringRef key) const {
  const json::Value *v = object.get(key);
  return v && v->kind() == json::Value::Null;
}

const json::Value *JsonFields::lookup(StringRef key, bool required) {
  seen.insert(key);
  const json::Value *v = object.get(key);
  if (!v || v->kind() == json::Value::Null) {
    if (required)
      report(key, "is required");
    return nullptr;
  }
  return v;
}

void JsonFields::integer(StringRef key, int64_t &out, int64_t min,
                         bool required, int64_t max) {
  const json::Value *v = lookup(key, required);
  if (!v)
    return;
  std::optional<int64_t> i = v->getAsInteger();
  if (!i) {
    // 1e5 or 4.0 in a config is still an integer when it is one exactly.
    // (Range-checked first: converting 1e300 to int64_t is undefined.)
    std::optional<double> d = v->getAsNumber();
    if (d && std::fabs(*d) < 9.0e18 && std::trunc(*d) == *d)
      i = static_cast<int64_t>(*d);
  }
  if (!i)
    return report(key, "expected an integer, got " + describeJson(*v));
  if (*i < min)
    return report(key, "expected an integer >= " + Twine(min) + ", got " +
                           Twine(*i));
  if (*i > max)
    return report(key, "expected an integer <= " + Twine(max) + ", got " +
                           Twine(*i));
  out = *i;
}

void JsonFields::number(StringRef key, double &out, double min,
                        bool required) {
  const json::Value *v = lookup(key, required);
  if (!v)
    return;
  std::optional<double> d = v->getAsNumber();
  if (!d)
    return report(key, "expected a number, got " + describeJson(*v));
  if (*d < min)
    return report(key, "expected a number >= " + describeJson(json::Value(min)) + ", got " +
                           describeJson(*v));
  out = *d;
}

void JsonFields::boolean(StringRef key, bool &out) {
  const json::Value *v = lookup(key, false);
  if (!v)
    return;
  std::optional<bool> b = v->getAsBoolean();
  if (!b)
    return report(key, "expected true or false, got " + describeJson(*v));
  out = *b;
}

void JsonFields::string(StringRef key, std::string &out,
                        ArrayRef<StringRef> allowed, bool required) {
  const json::Value *v = lookup(key, required);
  if (!v)
    return;
  std::optional<StringRef> s = v->getAsString();
  if (!s)
    return report(key, "expected a string, got " + describeJson(*v));
  if (!allowed.empty() && !llvm::is_contained(allowed, *s)) {
    std::string list;
    for (StringRef a : allowed)
      list += (list.empty() ? "\"" : ", \"") + a.str() + "\"";
    return report(key, "expected one of " + list + ", got \"" + *s + "\"");
  }
  out = s->str();
}

void JsonFields::numbers(StringRef key, std::vector<double> &out, double above,
                         bool required) {
  const json::Value *v = lookup(key, required);
  if (!v)
    return;
  const json::Array *array = v->getAsArray();
  if (!array)
    return report(key, "expected an array of numbers, got " + describeJson(*v));
  std::vector<double> result;
  for (const json::Value &item : *array) {
    std::optional<double> d = item.getAsNumber();
    if (!d || !(*d > above) || !std::isfinite(*d))
      return report(key, "expected an array of finite numbers > " +
                             describeJson(json::Value(above)) + ", found " + describeJson(item));
    result.push_back(*d);
  }
  out = std::move(result);
}

void JsonFields::strings(StringRef key, std::vector<std::string> &out) {
  const json::Value *v = lookup(key, false);
  if (!v)
    return;
  if (std::optional<StringRef> one = v->getAsString()) {
    out = {one->str()};
    return;
  }
  const json::Array *array = v->getAsArray();
  if (!array)
    return report(key, "expected a string or an array of strings, got " +
                           describeJson(*v));
  std::vector<std::string> result;
  for (const json::Value &item : *array) {
    std::optional<StringRef> s = item.getAsString();
    if (!s)
      return report(key, "expected an array of strings, found " +
                             describeJson(item));
    result.push_back(s->str());
  }
  out = std::move(result);
}

const json::Object *JsonFields::nested(StringRef key) {
  const json::Value *v = lookup(key, false);
  if (!v)
    return nullptr;
  const json::Object *o = v->getAsObject();
  if (!o)
    report(key, "expected an object, got " + describeJson(*v));
  return o;
}

void JsonFields::ignore(ArrayRef<StringRef> keys) {
  for (StringRef key : keys)
    seen.insert(key);
}

void JsonFields::rejectUnknownKeys() {
  std::vector<std::string> unknown;
  for (const auto &entry : object)
    if (!seen.contains(entry.first.str()))
      unknown.push_back(entry.first.str());
  if (unknown.empty())
    return;
  llvm::sort(unknown);
  std::vector<std::string> knownKeys;
  for (const auto &key : seen.keys())
    knownKeys.push_back(key.str());
  llvm::sort(knownKeys);
  std::string known;
  for (const std::string &key : knownKeys)
    known += (known.empty() ? "" : ", ") + key;
  report(unknown.front(), "unknown key (known keys here: " + known + ")");
}

} // namespace gai
