// Tensor-core building blocks of the attention kernels: swizzled shared
// tiles filled by cp.async, ldmatrix loads and bf16 mma.sync m16n8k16.
//
// Fragment layouts (lane = 4·group + quad, pairCol = 2·quad):
// - A (16×16, row major): a0 (group, pairCol..+1), a1 (group + 8, pairCol),
//   a2 (group, pairCol + 8), a3 (group + 8, pairCol + 8);
// - B (16×8, k × n): b0 (k = pairCol..+1, n = group), b1 (k + 8);
// - C (16×8): c0, c1 (group, pairCol..+1), c2, c3 (group + 8, pairCol..+1).
// An accumulator tile pair [16 × 16] packs into an A fragment as it lies.
#ifndef GAI_RUNTIME_HAL_CUDA_MMA_CUH
#define GAI_RUNTIME_HAL_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <cstdint>

namespace gai::cuda {

/// The element offset of (row, col) in a swizzled [rows, D] tile; col is a
/// multiple of 8 (one 16-byte chunk).
template <int D> __device__ __forceinline__ int swizzled(int row, int col) {
  return row * D + ((((col >> 3) ^ (row & 7))) << 3);
}

__device__ __forceinline__ void copyAsync16(void *shared, const void *global,
                                            bool valid) {
  auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  int bytes = valid ? 16 : 0; // 0 fills the chunk with zeros
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address),
               "l"(global), "r"(bytes));
}
/// 8 bytes by cp.async (through L1: below .cg's 16-byte size).
__device__ __forceinline__ void copyAsync8(void *shared, const void *global, bool valid) {
  auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  int bytes = valid ? 8 : 0; // 0 writes zeros
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(address), "l"(global),
               "r"(bytes));
}
__device__ __forceinline__ void commitCopies() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int Pending> __device__ __forceinline__ void waitCopies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

__device__ __forceinline__ void loadMatrices(uint32_t (&r)[4], const void *shared) {
  auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void loadMatricesTransposed(uint32_t (&r)[4],
                                                       const void *shared) {
  auto address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

/// c += a·b for one m16n8k16 tile.
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&pair);
}

/// Stores a warp's 16 × 16 bf16 block (an A fragment: packFragment's
/// layout) at rows row0.., columns col0.. of a swizzled [rows, D] tile:
/// stmatrix on sm_90, four 32-bit stores a lane before.
template <int D>
__device__ __forceinline__ void storeFragment(__nv_bfloat16 *tile, const uint32_t (&a)[4],
                                              int row0, int col0, int lane) {
#if __CUDA_ARCH__ >= 900
  // Lane l gives the address of row l % 8 of matrix l / 8 (a[l / 8]).
  const int row = row0 + lane % 8 + 8 * ((lane / 8) % 2), col = col0 + 8 * (lane / 16);
  auto address = static_cast<unsigned>(__cvta_generic_to_shared(tile + swizzled<D>(row, col)));
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(
                   address),
               "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3])
               : "memory");
#else
  const int group = lane / 4, pairCol = 2 * (lane % 4);
#pragma unroll
  for (int i = 0; i < 4; ++i)
    *reinterpret_cast<uint32_t *>(tile + swizzled<D>(row0 + group + 8 * (i % 2), col0 + 8 * (i / 2)) +
                                  pairCol) = a[i];
#endif
}

/// Two [16 × 8] accumulator tiles as one A fragment (k along their columns).
__device__ __forceinline__ void packFragment(uint32_t (&a)[4], const float (&lo)[4],
                                             const float (&hi)[4]) {
  a[0] = packBf16(lo[0], lo[1]);
  a[1] = packBf16(lo[2], lo[3]);
  a[2] = packBf16(hi[0], hi[1]);
  a[3] = packBf16(hi[2], hi[3]);
}

/// Rows [row0, row0 + Rows) of a [rows, D] bf16 matrix whose rows start
/// `stride` elements apart (a multiple of 8) into a swizzled shared tile
/// by cp.async (Threads threads); rows past `rows` become zeros. A thread
/// copies the same column of rows a fixed step apart, so its addresses are
/// strides from one base (the swizzle repeats every 8).
template <int D, int Rows, int Threads>
__device__ __forceinline__ void loadRowsAsync(__nv_bfloat16 *tile, const __nv_bfloat16 *src,
                                              int row0, int rows, int64_t stride) {
  constexpr int kChunks = D / 8, kRowStep = Threads / kChunks;
  static_assert(kRowStep % 8 == 0 && Rows % kRowStep == 0, "copy layout");
  const int r0 = threadIdx.x / kChunks, col = (threadIdx.x % kChunks) * 8;
  __nv_bfloat16 *to = tile + swizzled<D>(r0, col);
  const __nv_bfloat16 *from = src + (row0 + r0) * stride + col;
#pragma unroll
  for (int i = 0; i < Rows / kRowStep; ++i) {
    bool valid = row0 + r0 + i * kRowStep < rows;
    copyAsync16(to + i * kRowStep * D, valid ? from + i * kRowStep * stride : src, valid);
  }
}

/// 2^x on the special function unit alone (denormal results flush to 0,
/// which a softmax weight never needs); exp2f adds a range fix-up around it.
__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_MMA_CUH
