// CPU implementations of the raster ops (shared checks and allocation in
// ops/raster.cpp, then the csrc/kernels calls).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <tuple>

#include "kernels/raster.h"
#include "ops/raster.h"

namespace pf3d {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> rasterize_cpu_op(const at::Tensor& vertices,
                                                                const at::Tensor& triangles,
                                                                int64_t height, int64_t width,
                                                                int64_t x0, int64_t y0) {
  const auto c = raster_ops::prepare_rasterize(vertices, triangles, height, width, x0, y0,
                                               c10::DeviceType::CPU);
  if (!c.done)
    AT_DISPATCH_FLOATING_TYPES(c.vertices.scalar_type(), "rasterize", [&] {
      raster::rasterize_cpu<scalar_t>(
          c.vertices.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
          c.face.mutable_data_ptr<int32_t>(), c.bary.mutable_data_ptr<scalar_t>(),
          c.depth.mutable_data_ptr<scalar_t>());
    });
  return {c.face, c.bary, c.depth};
}

at::Tensor interpolate_cpu_op(const at::Tensor& attributes, const at::Tensor& face_index,
                              const at::Tensor& bary, const at::Tensor& triangles) {
  const auto c = raster_ops::prepare_interpolate(attributes, face_index, bary, triangles,
                                                 c10::DeviceType::CPU);
  if (!c.done)
    AT_DISPATCH_FLOATING_TYPES(c.values.scalar_type(), "interpolate", [&] {
      raster::interpolate_cpu<scalar_t>(
          c.values.const_data_ptr<scalar_t>(), c.face_index.const_data_ptr<int32_t>(),
          c.bary.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
          c.out.mutable_data_ptr<scalar_t>());
    });
  return c.out;
}

at::Tensor interpolate_backward_cpu_op(const at::Tensor& grad, const at::Tensor& face_index,
                                       const at::Tensor& bary, const at::Tensor& triangles,
                                       int64_t num_vertices, bool broadcast) {
  const auto c = raster_ops::prepare_interpolate_backward(
      grad, face_index, bary, triangles, num_vertices, broadcast, c10::DeviceType::CPU);
  if (!c.done)
    AT_DISPATCH_FLOATING_TYPES(c.values.scalar_type(), "_interpolate_backward", [&] {
      raster::interpolate_backward_cpu<scalar_t>(
          c.values.const_data_ptr<scalar_t>(), c.face_index.const_data_ptr<int32_t>(),
          c.bary.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
          c.out.mutable_data_ptr<scalar_t>());
    });
  return c.out;
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("rasterize", &pf3d::rasterize_cpu_op);
  m.impl("interpolate", &pf3d::interpolate_cpu_op);
  m.impl("_interpolate_backward", &pf3d::interpolate_backward_cpu_op);
}
