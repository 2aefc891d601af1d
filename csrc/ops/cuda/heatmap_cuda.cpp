// Landmark heatmaps: CUDA implementations (shared checks and allocation in
// ops/heatmap.cpp, then device guard, current stream, launcher, launch check).
// Compiled by the host compiler.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "kernels/cuda/heatmap.cuh"
#include "ops/heatmap.h"

namespace pf3d {
namespace ops {
namespace {

// The kernels index one map with int32.
constexpr int64_t kMaxMap = int64_t(std::numeric_limits<int32_t>::max()) - 1;

std::tuple<at::Tensor, at::Tensor> heatmap_encode_cuda(const at::Tensor& points,
                                                       const std::optional<at::Tensor>& visibility,
                                                       int64_t height, int64_t width, double sigma,
                                                       bool unbiased,
                                                       std::optional<at::ScalarType> dtype) {
  const EncodeCall c = prepare_heatmap_encode(points, visibility, height, width, sigma, unbiased,
                                              dtype, c10::DeviceType::CUDA, kMaxMap);
  const c10::cuda::CUDAGuard guard(c.points.device());
  if (!c.empty)
    C10_CUDA_CHECK(heatmap::encode_cuda(c.p, c.in_dtype, c.points.const_data_ptr(), c.vis_ptr(),
                                        c.out_dtype, c.heatmaps.mutable_data_ptr(),
                                        c.weight.mutable_data_ptr<float>(),
                                        c10::cuda::getCurrentCUDAStream()));
  return {c.heatmaps, c.weight};
}

std::tuple<at::Tensor, at::Tensor> heatmap_decode_cuda(const at::Tensor& heatmaps,
                                                       c10::string_view refine,
                                                       int64_t blur_kernel) {
  const DecodeCall c =
      prepare_heatmap_decode(heatmaps, refine, blur_kernel, c10::DeviceType::CUDA, kMaxMap);
  const c10::cuda::CUDAGuard guard(c.heatmaps.device());
  if (!c.empty)
    C10_CUDA_CHECK(heatmap::decode_cuda(c.p, c.dtype, c.heatmaps.const_data_ptr(), c.w,
                                        c.coords.mutable_data_ptr(), c.scores.mutable_data_ptr(),
                                        c10::cuda::getCurrentCUDAStream()));
  return {c.coords, c.scores};
}

at::Tensor soft_argmax_cuda(const at::Tensor& heatmaps, double beta) {
  const SoftArgmaxCall c = prepare_soft_argmax(heatmaps, beta, c10::DeviceType::CUDA, kMaxMap);
  const c10::cuda::CUDAGuard guard(c.heatmaps.device());
  if (!c.empty)
    C10_CUDA_CHECK(heatmap::soft_argmax_cuda(c.p, c.dtype, c.heatmaps.const_data_ptr(),
                                             c.out.mutable_data_ptr(),
                                             c10::cuda::getCurrentCUDAStream()));
  return c.out;
}

at::Tensor soft_argmax_backward_cuda(const at::Tensor& grad_coords, const at::Tensor& heatmaps,
                                     const at::Tensor& coords, double beta) {
  const SoftArgmaxCall c = prepare_soft_argmax_backward(grad_coords, heatmaps, coords, beta,
                                                        c10::DeviceType::CUDA, kMaxMap);
  const c10::cuda::CUDAGuard guard(c.heatmaps.device());
  if (!c.empty)
    C10_CUDA_CHECK(heatmap::soft_argmax_backward_cuda(
        c.p, c.dtype, c.grad.const_data_ptr(), c.heatmaps.const_data_ptr(),
        c.coords.const_data_ptr(), c.out.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()));
  return c.out;
}

}  // namespace
}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("heatmap_encode", &pf3d::ops::heatmap_encode_cuda);
  m.impl("heatmap_decode", &pf3d::ops::heatmap_decode_cuda);
  m.impl("soft_argmax", &pf3d::ops::soft_argmax_cuda);
  m.impl("_soft_argmax_backward", &pf3d::ops::soft_argmax_backward_cuda);
}
