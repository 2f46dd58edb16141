// Builds safetensors file images in memory for tests.
#ifndef GAI_TEST_UNIT_SAFETENSORSIMAGE_H
#define GAI_TEST_UNIT_SAFETENSORSIMAGE_H

#include <cstdint>
#include <string>
#include <vector>

namespace gai::test {

/// 8-byte little-endian header length (`claimedLength` when given), the
/// header, then `dataBytes` bytes counting up from 0.
inline std::vector<uint8_t> safetensorsImage(const std::string &header,
                                             size_t dataBytes,
                                             uint64_t claimedLength = UINT64_MAX) {
  uint64_t n = claimedLength == UINT64_MAX ? header.size() : claimedLength;
  std::vector<uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (size_t i = 0; i < dataBytes; ++i)
    bytes.push_back(static_cast<uint8_t>(i));
  return bytes;
}

} // namespace gai::test

#endif // GAI_TEST_UNIT_SAFETENSORSIMAGE_H
