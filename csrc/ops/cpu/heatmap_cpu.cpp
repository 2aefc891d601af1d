// Landmark heatmaps: CPU implementations (shared checks and allocation in
// ops/heatmap.cpp, then the csrc/kernels calls).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <limits>

#include "kernels/heatmap.h"
#include "ops/heatmap.h"

namespace pf3d {
namespace ops {
namespace {

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

std::tuple<at::Tensor, at::Tensor> heatmap_encode_cpu(const at::Tensor& points,
                                                      const std::optional<at::Tensor>& visibility,
                                                      int64_t height, int64_t width, double sigma,
                                                      bool unbiased,
                                                      std::optional<at::ScalarType> dtype) {
  const EncodeCall c = prepare_heatmap_encode(points, visibility, height, width, sigma, unbiased,
                                              dtype, c10::DeviceType::CPU, kNoLimit);
  if (!c.empty)
    heatmap::encode_cpu(c.p, c.in_dtype, c.points.const_data_ptr(), c.vis_ptr(), c.out_dtype,
                        c.heatmaps.mutable_data_ptr(), c.weight.mutable_data_ptr<float>());
  return {c.heatmaps, c.weight};
}

std::tuple<at::Tensor, at::Tensor> heatmap_decode_cpu(const at::Tensor& heatmaps,
                                                      c10::string_view refine,
                                                      int64_t blur_kernel) {
  const DecodeCall c =
      prepare_heatmap_decode(heatmaps, refine, blur_kernel, c10::DeviceType::CPU, kNoLimit);
  if (!c.empty)
    heatmap::decode_cpu(c.p, c.dtype, c.heatmaps.const_data_ptr(), c.w,
                        c.coords.mutable_data_ptr(), c.scores.mutable_data_ptr());
  return {c.coords, c.scores};
}

at::Tensor soft_argmax_cpu(const at::Tensor& heatmaps, double beta) {
  const SoftArgmaxCall c = prepare_soft_argmax(heatmaps, beta, c10::DeviceType::CPU, kNoLimit);
  if (!c.empty)
    heatmap::soft_argmax_cpu(c.p, c.dtype, c.heatmaps.const_data_ptr(), c.out.mutable_data_ptr());
  return c.out;
}

at::Tensor soft_argmax_backward_cpu(const at::Tensor& grad_coords, const at::Tensor& heatmaps,
                                    const at::Tensor& coords, double beta) {
  const SoftArgmaxCall c = prepare_soft_argmax_backward(grad_coords, heatmaps, coords, beta,
                                                        c10::DeviceType::CPU, kNoLimit);
  if (!c.empty)
    heatmap::soft_argmax_backward_cpu(c.p, c.dtype, c.grad.const_data_ptr(),
                                      c.heatmaps.const_data_ptr(), c.coords.const_data_ptr(),
                                      c.out.mutable_data_ptr());
  return c.out;
}

}  // namespace
}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("heatmap_encode", &pf3d::ops::heatmap_encode_cpu);
  m.impl("heatmap_decode", &pf3d::ops::heatmap_decode_cpu);
  m.impl("soft_argmax", &pf3d::ops::soft_argmax_cpu);
  m.impl("_soft_argmax_backward", &pf3d::ops::soft_argmax_backward_cpu);
}
