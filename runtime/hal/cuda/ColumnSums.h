// Sums (or means) over the middle axis of [outer, n, inner]: the bias and
// norm-weight gradients, whose n is the batch's rows.
#ifndef GAI_RUNTIME_HAL_CUDA_COLUMNSUMS_H
#define GAI_RUNTIME_HAL_CUDA_COLUMNSUMS_H

#include "hal/cuda/Kernels.h"

#include <cstddef>
#include <cstdint>

namespace gai::cuda {

/// Whether columnSums takes this reduction: a sum or mean over at least 64
/// rows of at least 64 columns, 8 a vector (16-byte aligned rows), at
/// most 65535 outer slices, whose f32 results fit `workspaceBytes`. (Others have columns enough for
/// reduce's thread a column, or rows too few to need slices.)
bool columnSumsTake(int kind, int64_t outer, int64_t n, int64_t inner, const void *in,
                    size_t workspaceBytes);

/// out[o, c] = scale · Σ_j in[o, j, c], in f32 whatever the element type:
/// blocks sum 16-byte column vectors over slices of the rows into f32
/// partials in `workspace`, and a second kernel adds the slices up. Uses
/// at most `workspaceBytes` of it (columnSumsTake checks that one slice
/// fits).
void columnSums(Elem e, const void *in, void *out, int64_t outer, int64_t n, int64_t inner,
                float scale, float *workspace, size_t workspaceBytes, cudaStream_t stream);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_COLUMNSUMS_H
