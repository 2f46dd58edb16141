// Hopper's warpgroup MMA (wgmma.mma_async, sm_90a) for 64-wide bf16 tiles
// in Mma.cuh's swizzled<64> layout: rows of 128 bytes whose 16-byte chunks
// are XORed with row % 8, which is wgmma's 128-byte swizzle when a tile
// starts 1024-byte aligned.
//
// A warpgroup (four warps) multiplies 64 rows of A by a B that the
// tensor cores read from shared memory once for all four warps, where
// mma.sync has each warp bring B through its registers by ldmatrix: the
// shared-memory reads that bound the mma.sync attention backward fall by
// about four.
//
// The accumulators of a 64 × 64 product are mma.sync's C tiles: warp w
// holds rows 16w..16w + 15 as acc[n] for columns 8n..8n + 7. An A from
// registers is mma.sync's A fragment of the warp's 16 rows.
#ifndef GAI_RUNTIME_HAL_CUDA_WGMMA_CUH
#define GAI_RUNTIME_HAL_CUDA_WGMMA_CUH

#include <cstdint>
#include <type_traits>

// Only an sm_90a build has wgmma; others compile the callers' other path.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GAI_DEVICE_WGMMA 1
#else
#define GAI_DEVICE_WGMMA 0
#endif

namespace gai::cuda {

#if GAI_CUDA_WGMMA
constexpr bool kWgmmaBuild = true;
#else
constexpr bool kWgmmaBuild = false; // the wgmma kernels are not instantiated
#endif

// Where wgmma's tiles start: its 128-byte swizzle's atom. A kernel asks
// for this many bytes of shared memory more, for alignedForWgmma.
constexpr int kWgmmaAlignment = 1024;

/// The first kWgmmaAlignment-aligned byte of dynamic shared memory.
__device__ __forceinline__ unsigned char *alignedForWgmma(unsigned char *shared) {
  const auto at = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  return shared + (kWgmmaAlignment - at % kWgmmaAlignment) % kWgmmaAlignment;
}

/// The descriptor of a swizzled<64> bf16 tile from `start` (inside a
/// 1024-byte aligned tile: a row start, or 32-byte steps along a row). Its
/// 8-row groups lie 1024 bytes apart: the stride along M or N for a K-major
/// operand, along K for an MN-major one. Tiles 64 wide hold one swizzle
/// atom across, so the other offset is never used.
__device__ __forceinline__ uint64_t tileDescriptor(const void *start) {
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(start));
  constexpr uint64_t kGroupStride = 1024 >> 4, kUnused = 1, k128ByteSwizzle = 1;
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) | kUnused << 16 | kGroupStride << 32 |
         k128ByteSwizzle << 62;
}

#if GAI_DEVICE_WGMMA

#define GAI_WGMMA_ACC                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define GAI_WGMMA_OUT(d)                                                                   \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), \
      "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]),          \
      "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),          \
      "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]),          \
      "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]),          \
      "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])

/// d = A·B (+ d where `accumulate`) for a 64 × 64 × 16 step, A and B by
/// descriptor. MajorA/MajorB: 0 for K-major (K along a tile row), 1 for
/// MN-major. A first step that does not accumulate spares zeroing d.
template <int MajorA, int MajorB>
__device__ __forceinline__ void wgmma64(float (&d)[8][4], uint64_t a, uint64_t b,
                                        bool accumulate = true) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " GAI_WGMMA_ACC
               ", %32, %33, p, 1, 1, %35, %36;\n}\n"
               : GAI_WGMMA_OUT(d)
               : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)), "n"(MajorA), "n"(MajorB));
}

/// d += A·B with A the warp's mma.sync A fragment (16 rows × 16 k).
template <int MajorB>
__device__ __forceinline__ void wgmma64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " GAI_WGMMA_ACC
               ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
               : GAI_WGMMA_OUT(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1), "n"(MajorB));
}

#undef GAI_WGMMA_ACC
#undef GAI_WGMMA_OUT

/// Orders the warpgroup's register writes before the wgmmas that follow.
__device__ __forceinline__ void wgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
/// Waits until at most `Pending` committed groups are still running.
template <int Pending> __device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}
/// Makes this thread's shared-memory writes visible to wgmma's reads
/// (the async proxy); a barrier then covers the other threads'.
__device__ __forceinline__ void fenceSharedForWgmma() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

#endif // GAI_DEVICE_WGMMA

/// Keeps the compiler from moving reads or writes of `r` (accumulators or
/// A fragments) across a wgmma still in flight: they are the wgmma's until
/// its wait.
template <typename T, int N>
__device__ __forceinline__ void holdOperands(T (&r)[N][4]) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, uint32_t>,
                "f32 accumulators or packed bf16 pairs");
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if constexpr (std::is_same_v<T, float>)
        asm volatile("" : "+f"(r[i][e])::"memory");
      else
        asm volatile("" : "+r"(r[i][e])::"memory");
}

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_WGMMA_CUH
