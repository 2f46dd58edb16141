// Times the verification of an external weights file: reading it, the
// checksum in memory, and the loader's read with the checksum alongside.
// One JSON line per method; docs/artifact.md gives the figures.
#include "gai/Artifact.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

// The checksum artifacts used before XXH3, for comparison.
uint64_t fnv1a64(const uint8_t *data, size_t size) {
  uint64_t state = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    state ^= data[i];
    state *= 1099511628211ull;
  }
  return state;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report(const std::string &method, size_t bytes, double seconds, uint64_t checksum) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(checksum));
  nlohmann::ordered_json line = {{"workload", "verify-weights"},
                                 {"method", method},
                                 {"gb", bytes / 1e9},
                                 {"s", seconds},
                                 {"gb_per_s", bytes / seconds / 1e9},
                                 {"checksum", hex}};
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr,
                 "usage: verify-bench FILE [--create GB]\n"
                 "With --create, first writes GB gigabytes of pseudo-random bytes to FILE.\n"
                 "FILE is read whole (it must fit in memory) by each method: read (the\n"
                 "loader's read alone), fnv1a64 and xxh3 (in memory, after a read),\n"
                 "read+xxh3 (the loader's read with the checksum computed alongside).\n");
    return 1;
  }
  std::string path = argv[1];
  if (argc == 4 && std::string(argv[2]) == "--create") {
    size_t bytes = static_cast<size_t>(std::atof(argv[3]) * 1e9);
    std::ofstream out(path, std::ios::binary);
    std::vector<uint64_t> block(1 << 17);
    uint64_t x = 88172645463325252ull;
    for (size_t written = 0; written < bytes && out;) {
      for (uint64_t &v : block) // xorshift: incompressible, like weights
        v = x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t n = std::min(bytes - written, block.size() * sizeof(uint64_t));
      out.write(reinterpret_cast<const char *>(block.data()), static_cast<std::streamsize>(n));
      written += n;
    }
    if (!out) {
      std::fprintf(stderr, "verify-bench: cannot write %s\n", path.c_str());
      return 1;
    }
  }

  std::vector<uint8_t> data;
  auto start = std::chrono::steady_clock::now();
  if (gai::Status s = gai::readFile(path, data); !s) {
    std::fprintf(stderr, "verify-bench: %s\n", s.message().c_str());
    return 1;
  }
  report("read", data.size(), secondsSince(start), 0);

  start = std::chrono::steady_clock::now();
  uint64_t old = fnv1a64(data.data(), data.size());
  report("fnv1a64", data.size(), secondsSince(start), old);

  start = std::chrono::steady_clock::now();
  uint64_t sum = gai::checksum64(data.data(), data.size());
  report("xxh3", data.size(), secondsSince(start), sum);

  data = {};
  uint64_t alongside = 0;
  start = std::chrono::steady_clock::now();
  if (gai::Status s = gai::readFile(path, data, &alongside); !s) {
    std::fprintf(stderr, "verify-bench: %s\n", s.message().c_str());
    return 1;
  }
  report("read+xxh3", data.size(), secondsSince(start), alongside);
  return alongside == sum ? 0 : 2;
}
