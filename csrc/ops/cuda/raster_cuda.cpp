// CUDA implementations of the raster ops (plain C++; shared checks and allocation
// in ops/raster.cpp, kernels in kernels/cuda/raster.cu).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "kernels/cuda/raster.cuh"
#include "ops/raster.h"

namespace pf3d {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> rasterize_cuda_op(const at::Tensor& vertices,
                                                                 const at::Tensor& triangles,
                                                                 int64_t height, int64_t width,
                                                                 int64_t x0, int64_t y0) {
  const auto c = raster_ops::prepare_rasterize(vertices, triangles, height, width, x0, y0,
                                               c10::DeviceType::CUDA);
  if (c.done) return {c.face, c.bary, c.depth};
  const c10::cuda::CUDAGuard guard(vertices.device());
  const bool dbl = c.vertices.scalar_type() == at::kDouble;
  at::Tensor ws = at::empty({(int64_t)raster::rasterize_cuda_workspace_bytes(c.p, dbl)},
                            vertices.options().dtype(at::kByte));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.vertices.scalar_type(), "rasterize", [&] {
    C10_CUDA_CHECK(raster::rasterize_cuda<scalar_t>(
        c.vertices.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
        c.face.mutable_data_ptr<int32_t>(), c.bary.mutable_data_ptr<scalar_t>(),
        c.depth.mutable_data_ptr<scalar_t>(), ws.mutable_data_ptr(), stream));
  });
  return {c.face, c.bary, c.depth};
}

at::Tensor interpolate_cuda_op(const at::Tensor& attributes, const at::Tensor& face_index,
                               const at::Tensor& bary, const at::Tensor& triangles) {
  const auto c = raster_ops::prepare_interpolate(attributes, face_index, bary, triangles,
                                                 c10::DeviceType::CUDA);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(attributes.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.values.scalar_type(), "interpolate", [&] {
    C10_CUDA_CHECK(raster::interpolate_cuda<scalar_t>(
        c.values.const_data_ptr<scalar_t>(), c.face_index.const_data_ptr<int32_t>(),
        c.bary.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
        c.out.mutable_data_ptr<scalar_t>(), stream));
  });
  return c.out;
}

at::Tensor interpolate_backward_cuda_op(const at::Tensor& grad, const at::Tensor& face_index,
                                        const at::Tensor& bary, const at::Tensor& triangles,
                                        int64_t num_vertices, bool broadcast) {
  const auto c = raster_ops::prepare_interpolate_backward(
      grad, face_index, bary, triangles, num_vertices, broadcast, c10::DeviceType::CUDA);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(grad.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.values.scalar_type(), "_interpolate_backward", [&] {
    C10_CUDA_CHECK(raster::interpolate_backward_cuda<scalar_t>(
        c.values.const_data_ptr<scalar_t>(), c.face_index.const_data_ptr<int32_t>(),
        c.bary.const_data_ptr<scalar_t>(), c.triangles.const_data_ptr<int32_t>(), c.p,
        c.out.mutable_data_ptr<scalar_t>(), stream));
  });
  return c.out;
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("rasterize", &pf3d::rasterize_cuda_op);
  m.impl("interpolate", &pf3d::interpolate_cuda_op);
  m.impl("_interpolate_backward", &pf3d::interpolate_backward_cuda_op);
}
