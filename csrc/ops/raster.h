// Input checks of the raster ops, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/core/Tensor.h>

#include <c10/core/DeviceType.h>

#include <cstdint>

#include "kernels/raster.h"

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

// Checked, contiguous inputs and allocated outputs of one call, shared by the CPU
// and CUDA ops. `done` means the outputs are already final (empty inputs: the
// background values are written here), so there is nothing to launch.
struct RasterizeCall {
  at::Tensor face, bary, depth, vertices, triangles;
  raster::RasterParams p;
  bool done = false;
};
RasterizeCall prepare_rasterize(const at::Tensor& vertices, const at::Tensor& triangles,
                                int64_t height, int64_t width, int64_t x0, int64_t y0,
                                c10::DeviceType device);

struct InterpolateCall {
  at::Tensor out, values, face_index, bary, triangles;  // values: attributes or grad
  raster::InterpParams p;
  bool done = false;
};
InterpolateCall prepare_interpolate(const at::Tensor& attributes, const at::Tensor& face_index,
                                    const at::Tensor& bary, const at::Tensor& triangles,
                                    c10::DeviceType device);
InterpolateCall prepare_interpolate_backward(const at::Tensor& grad, const at::Tensor& face_index,
                                             const at::Tensor& bary, const at::Tensor& triangles,
                                             int64_t num_vertices, bool broadcast,
                                             c10::DeviceType device);

}  // namespace raster_ops
}  // namespace pf3d
