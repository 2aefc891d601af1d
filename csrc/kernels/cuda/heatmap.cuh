// CUDA launchers of the heatmap family (torch-free). Semantics, shapes and
// conventions in kernels/heatmap.h. All pointers are device pointers to
// contiguous arrays; each launcher returns cudaGetLastError() after its launch.
// Intra-map indices are 32-bit: height * width must be < 2^31.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/heatmap.h"

namespace pf3d {
namespace heatmap {

// One thread per 4 output elements (coalesced writes); half output supported.
cudaError_t encode_cuda(const EncodeParams& p, DType points_dtype, const void* points,
                        const uint8_t* visible, DType out_dtype, void* out, float* weight,
                        cudaStream_t stream);

// One block per map: argmax reduction, then refinement (DARK: 13 threads blur
// one neighbour each). coords/scores: double for kDouble input, else float.
cudaError_t decode_cuda(const DecodeParams& p, DType in_dtype, const void* heatmaps,
                        const DarkWeights& w, void* coords, void* scores, cudaStream_t stream);

// One block per map; dtype kFloat or kDouble. Deterministic (fixed reduction trees).
cudaError_t soft_argmax_cuda(const SoftArgmaxParams& p, DType dtype, const void* heatmaps,
                             void* coords, cudaStream_t stream);
cudaError_t soft_argmax_backward_cuda(const SoftArgmaxParams& p, DType dtype,
                                      const void* grad_coords, const void* heatmaps,
                                      const void* coords, void* grad_heatmaps,
                                      cudaStream_t stream);

}  // namespace heatmap
}  // namespace pf3d
