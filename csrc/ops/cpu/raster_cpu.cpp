// CPU implementations of the raster ops.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <tuple>

#include "kernels/raster.h"
#include "ops/checks.h"
#include "ops/raster.h"

namespace pf3d {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> rasterize_cpu_op(const at::Tensor& vertices,
                                                                const at::Tensor& triangles,
                                                                int64_t height, int64_t width,
                                                                int64_t x0, int64_t y0) {
  check_device_type("rasterize", "vertices", vertices, c10::DeviceType::CPU);
  at::Tensor tri = raster_ops::check_rasterize(vertices, triangles, height, width, x0, y0);
  const int64_t B = vertices.size(0);
  auto opts = vertices.options();
  at::Tensor face = at::empty({B, height, width}, opts.dtype(at::kInt));
  at::Tensor bary = at::empty({B, height, width, 3}, opts);
  at::Tensor depth = at::empty({B, height, width}, opts);
  if (B == 0) return {face, bary, depth};
  if (tri.size(0) == 0 || vertices.size(1) == 0) {
    face.fill_(-1);
    bary.zero_();
    depth.zero_();
    return {face, bary, depth};
  }
  at::Tensor v = vertices.contiguous();
  raster::RasterParams p{B, v.size(1), tri.size(0), height, width, x0, y0};
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "rasterize", [&] {
    raster::rasterize_cpu<scalar_t>(v.data_ptr<scalar_t>(), tri.data_ptr<int32_t>(), p,
                                    face.data_ptr<int32_t>(), bary.data_ptr<scalar_t>(),
                                    depth.data_ptr<scalar_t>());
  });
  return {face, bary, depth};
}

at::Tensor interpolate_cpu_op(const at::Tensor& attributes, const at::Tensor& face_index,
                              const at::Tensor& bary, const at::Tensor& triangles) {
  check_device_type("interpolate", "attributes", attributes, c10::DeviceType::CPU);
  at::Tensor tri = raster_ops::check_interpolate(attributes, face_index, bary, triangles);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = attributes.size(2);
  at::Tensor out = at::empty({B, H, W, C}, attributes.options());
  if (out.numel() == 0) return out;
  at::Tensor a = attributes.contiguous(), fi = face_index.contiguous(), b = bary.contiguous();
  raster::InterpParams p{B, H * W, C, a.size(1), tri.size(0), a.size(0) == 1};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "interpolate", [&] {
    raster::interpolate_cpu<scalar_t>(a.data_ptr<scalar_t>(), fi.data_ptr<int32_t>(),
                                      b.data_ptr<scalar_t>(), tri.data_ptr<int32_t>(), p,
                                      out.data_ptr<scalar_t>());
  });
  return out;
}

at::Tensor interpolate_backward_cpu_op(const at::Tensor& grad, const at::Tensor& face_index,
                                       const at::Tensor& bary, const at::Tensor& triangles,
                                       int64_t num_vertices, bool broadcast) {
  check_device_type("_interpolate_backward", "grad", grad, c10::DeviceType::CPU);
  at::Tensor tri =
      raster_ops::check_interpolate_backward(grad, face_index, bary, triangles, num_vertices);
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = grad.size(3);
  at::Tensor out = at::empty({broadcast ? 1 : B, num_vertices, C}, grad.options());
  if (out.numel() == 0) return out;
  if (B * H * W == 0 || tri.size(0) == 0) return out.zero_();
  at::Tensor g = grad.contiguous(), fi = face_index.contiguous(), b = bary.contiguous();
  raster::InterpParams p{B, H * W, C, num_vertices, tri.size(0), broadcast};
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "_interpolate_backward", [&] {
    raster::interpolate_backward_cpu<scalar_t>(g.data_ptr<scalar_t>(), fi.data_ptr<int32_t>(),
                                               b.data_ptr<scalar_t>(), tri.data_ptr<int32_t>(),
                                               p, out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("rasterize", &pf3d::rasterize_cpu_op);
  m.impl("interpolate", &pf3d::interpolate_cpu_op);
  m.impl("_interpolate_backward", &pf3d::interpolate_backward_cpu_op);
}
