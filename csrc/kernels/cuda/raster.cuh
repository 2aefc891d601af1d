// CUDA launchers of the raster family (torch-free; raw pointers, sizes, stream).
// Shapes and rules: see kernels/raster.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/raster.h"

namespace pf3d {
namespace raster {

// Bytes of scratch memory rasterize_cuda needs (the caller allocates it).
size_t rasterize_cuda_workspace_bytes(const RasterParams& p, bool is_double);

// Writes face_index (B,H,W), bary (B,H,W,3), depth (B,H,W). Deterministic:
// float32 uses one 64-bit atomicMax per covered centre on the key
// (ordered depth << 32 | ~face); float64 uses an atomicMax pass on the
// ordered depth and a second pass taking the smallest face among exact ties.
template <typename T>
cudaError_t rasterize_cuda(const T* vertices, const int32_t* triangles, const RasterParams& p,
                           int32_t* face_index, T* bary, T* depth, void* workspace,
                           cudaStream_t stream);

template <typename T>
cudaError_t interpolate_cuda(const T* attributes, const int32_t* face_index, const T* bary,
                             const int32_t* triangles, const InterpParams& p, T* out,
                             cudaStream_t stream);

// Zeroes grad_attributes and scatter-adds with float atomics (the order of
// the additions, hence the last bits, may vary from run to run).
template <typename T>
cudaError_t interpolate_backward_cuda(const T* grad, const int32_t* face_index, const T* bary,
                                      const int32_t* triangles, const InterpParams& p,
                                      T* grad_attributes, cudaStream_t stream);

}  // namespace raster
}  // namespace pf3d
