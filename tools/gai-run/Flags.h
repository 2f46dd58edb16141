// Number parsing for gai-run's flags: the whole text must be the number.
#ifndef GAI_TOOLS_GAI_RUN_FLAGS_H
#define GAI_TOOLS_GAI_RUN_FLAGS_H

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace gai {

inline bool parseInt(const std::string &text, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno || end == text.c_str() || *end)
    return false;
  out = v;
  return true;
}

inline bool parseDouble(const std::string &text, double &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return !errno && end != text.c_str() && !*end && std::isfinite(out);
}

inline bool parseFloat(const std::string &text, float &out) {
  double v;
  if (!parseDouble(text, v))
    return false;
  out = static_cast<float>(v);
  return true;
}

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_FLAGS_H
