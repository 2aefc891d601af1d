// CUDA launchers of the morphable kernels (torch-free; raw pointers, sizes and a
// stream; return the cudaError_t of the launch). See kernels/morphable.h for shapes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/morphable.h"

namespace pf3d {
namespace morphable {

// vertices (B, M, 3). vertex_ids in p must be a device pointer (or nullptr) and
// already validated.
template <typename T>
cudaError_t forward_cuda(const Params<T>& p, T* out, cudaStream_t stream);

// Bytes of device workspace backward_cuda needs (per-block partial sums).
template <typename T>
size_t backward_cuda_workspace_bytes(const Params<T>& p);

// grad_vertices (B, M, 3) -> grad_pose (B, 12), grad_id (B, I), grad_exp (B, E).
// Deterministic two-stage reduction (per-block partials in `workspace`, then a
// fixed-order sum); no atomics.
template <typename T>
cudaError_t backward_cuda(const Params<T>& p, const T* grad_vertices, T* grad_pose, T* grad_id,
                          T* grad_exp, void* workspace, cudaStream_t stream);

}  // namespace morphable
}  // namespace pf3d
