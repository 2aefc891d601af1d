// Wing / Adaptive Wing losses: CUDA launchers (torch-free; raw device pointers).
//
// Forward with reduction mean/sum is a deterministic two-pass block reduction:
// pass 1 writes one partial per block of a grid whose size depends only on the
// number of elements (wing_reduce_blocks(n)), pass 2 (one block) sums the
// partials in a fixed order. No float atomics. The caller supplies the partials
// workspace: wing_reduce_blocks(n) elements of the data type, on the device.
// All launches go on `stream`; each launcher returns cudaGetLastError().
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/wing.h"

namespace pf3d {
namespace wing {

// Number of partials (blocks of pass 1) for n elements: 1 .. 1024.
int64_t wing_reduce_blocks(int64_t n);

cudaError_t wing_forward_cuda(const float* pred, const float* target, int64_t n,
                              const WingParams& p, int reduction, float* out, float* partial,
                              cudaStream_t stream);
cudaError_t wing_forward_cuda(const double* pred, const double* target, int64_t n,
                              const WingParams& p, int reduction, double* out, double* partial,
                              cudaStream_t stream);
// grad_out: n elements for reduction none, one element (device) otherwise.
cudaError_t wing_backward_cuda(const float* grad_out, const float* pred, const float* target,
                               int64_t n, const WingParams& p, int reduction, float* grad_pred,
                               cudaStream_t stream);
cudaError_t wing_backward_cuda(const double* grad_out, const double* pred,
                               const double* target, int64_t n, const WingParams& p,
                               int reduction, double* grad_pred, cudaStream_t stream);

// Contiguous (BK, H, W) maps; partial: wing_reduce_blocks(BK * H * W) elements.
cudaError_t awing_forward_cuda(const float* pred, const float* target, int64_t BK, int64_t H,
                               int64_t W, const AWingParams& p, int reduction, float* out,
                               float* partial, cudaStream_t stream);
cudaError_t awing_forward_cuda(const double* pred, const double* target, int64_t BK, int64_t H,
                               int64_t W, const AWingParams& p, int reduction, double* out,
                               double* partial, cudaStream_t stream);
cudaError_t awing_backward_cuda(const float* grad_out, const float* pred, const float* target,
                                int64_t BK, int64_t H, int64_t W, const AWingParams& p,
                                int reduction, float* grad_pred, cudaStream_t stream);
cudaError_t awing_backward_cuda(const double* grad_out, const double* pred,
                                const double* target, int64_t BK, int64_t H, int64_t W,
                                const AWingParams& p, int reduction, double* grad_pred,
                                cudaStream_t stream);

}  // namespace wing
}  // namespace pf3d
