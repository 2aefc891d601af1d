// CUDA implementations of the raster ops (plain C++; kernels in kernels/cuda/raster.cu).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "kernels/cuda/raster.cuh"
#include "ops/checks.h"
#include "ops/raster.h"

namespace pf3d {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> rasterize_cuda_op(const at::Tensor& vertices,
                                                                 const at::Tensor& triangles,
                                                                 int64_t height, int64_t width,
                                                                 int64_t x0, int64_t y0) {
  check_device_type("rasterize", "vertices", vertices, c10::DeviceType::CUDA);
  at::Tensor tri = raster_ops::check_rasterize(vertices, triangles, height, width, x0, y0);
  c10::cuda::CUDAGuard guard(vertices.device());
  const int64_t B = vertices.size(0);
  auto opts = vertices.options();
  at::Tensor face = at::empty({B, height, width}, opts.dtype(at::kInt));
  at::Tensor bary = at::empty({B, height, width, 3}, opts);
  at::Tensor depth = at::empty({B, height, width}, opts);
  if (B == 0) return {face, bary, depth};
  at::Tensor v = vertices.contiguous();
  raster::RasterParams p{B, v.size(1), tri.size(0), height, width, x0, y0};
  const bool dbl = v.scalar_type() == at::kDouble;
  at::Tensor ws = at::empty({(int64_t)raster::rasterize_cuda_workspace_bytes(p, dbl)},
                            opts.dtype(at::kByte));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "rasterize", [&] {
    C10_CUDA_CHECK(raster::rasterize_cuda<scalar_t>(
        v.data_ptr<scalar_t>(), tri.data_ptr<int32_t>(), p, face.data_ptr<int32_t>(),
        bary.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(), ws.data_ptr(), stream.stream()));
  });
  return {face, bary, depth};
}

at::Tensor interpolate_cuda_op(const at::Tensor& attributes, const at::Tensor& face_index,
                               const at::Tensor& bary, const at::Tensor& triangles) {
  check_device_type("interpolate", "attributes", attributes, c10::DeviceType::CUDA);
  at::Tensor tri = raster_ops::check_interpolate(attributes, face_index, bary, triangles);
  c10::cuda::CUDAGuard guard(attributes.device());
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = attributes.size(2);
  at::Tensor out = at::empty({B, H, W, C}, attributes.options());
  if (out.numel() == 0) return out;
  at::Tensor a = attributes.contiguous(), fi = face_index.contiguous(), b = bary.contiguous();
  raster::InterpParams p{B, H * W, C, a.size(1), tri.size(0), a.size(0) == 1};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "interpolate", [&] {
    C10_CUDA_CHECK(raster::interpolate_cuda<scalar_t>(
        a.data_ptr<scalar_t>(), fi.data_ptr<int32_t>(), b.data_ptr<scalar_t>(),
        tri.data_ptr<int32_t>(), p, out.data_ptr<scalar_t>(), stream.stream()));
  });
  return out;
}

at::Tensor interpolate_backward_cuda_op(const at::Tensor& grad, const at::Tensor& face_index,
                                        const at::Tensor& bary, const at::Tensor& triangles,
                                        int64_t num_vertices, bool broadcast) {
  check_device_type("_interpolate_backward", "grad", grad, c10::DeviceType::CUDA);
  at::Tensor tri =
      raster_ops::check_interpolate_backward(grad, face_index, bary, triangles, num_vertices);
  c10::cuda::CUDAGuard guard(grad.device());
  const int64_t B = face_index.size(0), H = face_index.size(1), W = face_index.size(2);
  const int64_t C = grad.size(3);
  at::Tensor out = at::empty({broadcast ? 1 : B, num_vertices, C}, grad.options());
  if (out.numel() == 0) return out;
  at::Tensor g = grad.contiguous(), fi = face_index.contiguous(), b = bary.contiguous();
  raster::InterpParams p{B, H * W, C, num_vertices, tri.size(0), broadcast};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "_interpolate_backward", [&] {
    C10_CUDA_CHECK(raster::interpolate_backward_cuda<scalar_t>(
        g.data_ptr<scalar_t>(), fi.data_ptr<int32_t>(), b.data_ptr<scalar_t>(),
        tri.data_ptr<int32_t>(), p, out.data_ptr<scalar_t>(), stream.stream()));
  });
  return out;
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("rasterize", &pf3d::rasterize_cuda_op);
  m.impl("interpolate", &pf3d::interpolate_cuda_op);
  m.impl("_interpolate_backward", &pf3d::interpolate_backward_cuda_op);
}
