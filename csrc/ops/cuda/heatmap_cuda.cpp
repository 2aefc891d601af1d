// Landmark heatmaps: CUDA implementations (checks, device guard, current
// stream, launcher call, launch check). Compiled by the host compiler.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/gt.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "kernels/cuda/heatmap.cuh"
#include "ops/checks.h"
#include "ops/heatmap.h"

namespace pf3d {
namespace ops {
namespace {

void check_map_size(const char* op, int64_t H, int64_t W) {
  check_numel_fits(op, "one map (H, W)", H, W, 1, 1,
                   int64_t(std::numeric_limits<int32_t>::max()) - 1);
}

std::tuple<at::Tensor, at::Tensor> heatmap_encode_cuda(const at::Tensor& points_in,
                                                       const std::optional<at::Tensor>& visibility,
                                                       int64_t height, int64_t width, double sigma,
                                                       bool unbiased,
                                                       std::optional<at::ScalarType> dtype) {
  const char* op = "heatmap_encode";
  const at::ScalarType out_dtype =
      check_heatmap_encode(points_in, visibility, height, width, sigma, dtype);
  check_device_type(op, "points", points_in, c10::DeviceType::CUDA);
  check_map_size(op, height, width);
  const c10::cuda::CUDAGuard guard(points_in.device());
  const int64_t B = points_in.size(0), K = points_in.size(1);
  at::Tensor heatmaps = at::empty({B, K, height, width}, points_in.options().dtype(out_dtype));
  at::Tensor weight = at::empty({B, K}, points_in.options().dtype(at::kFloat));
  if (B * K == 0) return {heatmaps, weight};
  const at::Tensor points = points_in.contiguous();
  at::Tensor vis;
  if (visibility.has_value()) vis = at::gt(*visibility, 0).contiguous();
  heatmap::EncodeParams p;
  p.maps = B * K;
  p.height = height;
  p.width = width;
  p.sigma = sigma;
  p.unbiased = unbiased;
  C10_CUDA_CHECK(heatmap::encode_cuda(
      p, heatmap_dtype(points.scalar_type()), points.const_data_ptr(),
      vis.defined() ? reinterpret_cast<const uint8_t*>(vis.const_data_ptr()) : nullptr,
      heatmap_dtype(out_dtype), heatmaps.mutable_data_ptr(), weight.mutable_data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream()));
  return {heatmaps, weight};
}

std::tuple<at::Tensor, at::Tensor> heatmap_decode_cuda(const at::Tensor& hm_in,
                                                       c10::string_view refine,
                                                       int64_t blur_kernel) {
  const int mode = check_heatmap_decode(hm_in, refine, blur_kernel);
  check_device_type("heatmap_decode", "heatmaps", hm_in, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(hm_in.device());
  const int64_t B = hm_in.size(0), K = hm_in.size(1), H = hm_in.size(2), W = hm_in.size(3);
  const at::ScalarType cd = hm_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor coords = at::empty({B, K, 2}, hm_in.options().dtype(cd));
  at::Tensor scores = at::empty({B, K}, hm_in.options().dtype(cd));
  if (B * K == 0) return {coords, scores};
  const at::Tensor hm = hm_in.contiguous();
  heatmap::DecodeParams p;
  p.maps = B * K;
  p.height = H;
  p.width = W;
  p.refine = mode;
  heatmap::DarkWeights w;
  if (mode == heatmap::kRefineDark) heatmap::dark_weights(int(blur_kernel), &w);
  C10_CUDA_CHECK(heatmap::decode_cuda(p, heatmap_dtype(hm.scalar_type()), hm.const_data_ptr(), w,
                                      coords.mutable_data_ptr(), scores.mutable_data_ptr(),
                                      c10::cuda::getCurrentCUDAStream()));
  return {coords, scores};
}

at::Tensor soft_argmax_cuda(const at::Tensor& hm_in, double beta) {
  check_soft_argmax("soft_argmax", hm_in, beta);
  check_device_type("soft_argmax", "heatmaps", hm_in, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(hm_in.device());
  const int64_t B = hm_in.size(0), K = hm_in.size(1);
  at::Tensor coords = at::empty({B, K, 2}, hm_in.options());
  if (B * K == 0) return coords;
  const at::Tensor hm = hm_in.contiguous();
  heatmap::SoftArgmaxParams p;
  p.maps = B * K;
  p.height = hm.size(2);
  p.width = hm.size(3);
  p.beta = beta;
  C10_CUDA_CHECK(heatmap::soft_argmax_cuda(p, heatmap_dtype(hm.scalar_type()), hm.const_data_ptr(),
                                           coords.mutable_data_ptr(),
                                           c10::cuda::getCurrentCUDAStream()));
  return coords;
}

at::Tensor soft_argmax_backward_cuda(const at::Tensor& grad_in, const at::Tensor& hm_in,
                                     const at::Tensor& coords_in, double beta) {
  check_soft_argmax_backward(grad_in, hm_in, coords_in, beta);
  check_device_type("_soft_argmax_backward", "heatmaps", hm_in, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(hm_in.device());
  at::Tensor grad_hm = at::empty(hm_in.sizes(), hm_in.options());
  const int64_t B = hm_in.size(0), K = hm_in.size(1);
  if (B * K == 0) return grad_hm;
  const at::Tensor hm = hm_in.contiguous();
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor coords = coords_in.contiguous();
  heatmap::SoftArgmaxParams p;
  p.maps = B * K;
  p.height = hm.size(2);
  p.width = hm.size(3);
  p.beta = beta;
  C10_CUDA_CHECK(heatmap::soft_argmax_backward_cuda(
      p, heatmap_dtype(hm.scalar_type()), grad.const_data_ptr(), hm.const_data_ptr(),
      coords.const_data_ptr(), grad_hm.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()));
  return grad_hm;
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
