// Input checks of the raster ops, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pf3d {
namespace raster_ops {

// Validates rasterize's arguments (shapes, dtypes, devices, window, sizes,
// triangle indices in [0, N)). Returns triangles as contiguous int32.
at::Tensor check_rasterize(const at::Tensor& vertices, const at::Tensor& triangles,
                           int64_t height, int64_t width, int64_t x0, int64_t y0);

// Validates interpolate's arguments; returns triangles as contiguous int32.
at::Tensor check_interpolate(const at::Tensor& attributes, const at::Tensor& face_index,
                             const at::Tensor& bary, const at::Tensor& triangles);

// Validates _interpolate_backward's arguments; returns triangles as int32.
at::Tensor check_interpolate_backward(const at::Tensor& grad, const at::Tensor& face_index,
                                      const at::Tensor& bary, const at::Tensor& triangles,
                                      int64_t num_vertices);

}  // namespace raster_ops
}  // namespace pf3d
