// 2:4 semi-structured sparsity: the format of artifact.fbs's
// WeightFormat::Sparse24, made from float weights and read back. gaic
// prunes with these at compile time; the CPU backend, `gai-run init` and
// the tests use them too, so there is one definition of the format.
#ifndef GAI_SPARSITY_H
#define GAI_SPARSITY_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gai {

/// A weight [rows, cols] that keeps two of every four consecutive values
/// of a row: `values` [rows, cols / 2], the kept ones in order, and `meta`
/// [rows, cols / 8] bytes. Group g of a row keeps positions i0 < i1 (0..3),
/// written as the nibble i0 | i1 << 2; group 2j is byte j's low nibble,
/// 2j + 1 its high one: the sparse tensor cores' metadata for 16-bit
/// types. cols is a multiple of 8.
struct Sparse24Weight {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
  std::vector<uint8_t> meta;
};

/// The companion tensor of 2:4 weight `weight`: its metadata, named
/// `<weight>.meta` in artifacts and safetensors files.
std::string sparseMetaName(std::string_view weight);

/// Keeps the two largest |w| of each group of four, ties to the lower
/// position (the order gai.topk picks in, so the graph's mask agrees).
Sparse24Weight compress24(const float *w, int64_t rows, int64_t cols);

/// Row `row` of the dense weight, `cols` floats into `out`: zeros, then
/// each group's first value at i0 and its second at i1 (so a nibble with
/// i0 == i1 holds the second).
void decompress24Row(const float *values, const uint8_t *meta, int64_t row, int64_t cols,
                     float *out);

/// `w` [rows, cols] with all but each group's two kept values zeroed, in
/// place: what a dense model computes that equals the 2:4 one.
void prune24(float *w, int64_t rows, int64_t cols);

} // namespace gai

#endif // GAI_SPARSITY_H
