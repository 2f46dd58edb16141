// The JSON lines gai-run prints (bench results, training metrics).
#ifndef GAI_TOOLS_GAI_RUN_JSONLINE_H
#define GAI_TOOLS_GAI_RUN_JSONLINE_H

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

namespace gai {

/// `fields` as one `{"key": value, ...}` line. nlohmann writes it, so it is
/// valid JSON whatever the values: names escaped, NaN and Inf as null.
inline std::string jsonLine(const nlohmann::ordered_json &fields) {
  std::string line = "{";
  for (auto it = fields.begin(); it != fields.end(); ++it)
    line += (it == fields.begin() ? "" : ", ") + nlohmann::json(it.key()).dump() +
            ": " + it.value().dump();
  return line + "}";
}

/// `value` to `decimals` places, so a figure prints as briefly as before;
/// NaN and Inf pass through (and print as null).
inline double rounded(double value, int decimals) {
  if (!std::isfinite(value))
    return value;
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_JSONLINE_H
