// Landmark heatmaps (encode / decode / soft-argmax): input checks shared by the
// CPU and CUDA ops. Semantics in csrc/kernels/heatmap.h.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <c10/core/DeviceType.h>

#include <cstdint>
#include <optional>

#include "kernels/heatmap.h"

namespace pf3d {
namespace ops {

// points (B, K, 2) float32/float64; visibility (B, K) real or bool, same device;
// height, width >= 1; sigma finite > 0; dtype float16/float32/float64 (default
// float32). Returns the output dtype.
at::ScalarType check_heatmap_encode(const at::Tensor& points,
                                    const std::optional<at::Tensor>& visibility, int64_t height,
                                    int64_t width, double sigma,
                                    std::optional<at::ScalarType> dtype);

// heatmaps (B, K, H, W) float16/float32/float64 with H, W >= 1; refine in
// {"none", "quarter", "dark"}; blur_kernel odd in [3, 255]. Returns the refine code.
int check_heatmap_decode(const at::Tensor& heatmaps, c10::string_view refine,
                         int64_t blur_kernel);

// heatmaps (B, K, H, W) float32/float64 with H, W >= 1; beta finite.
void check_soft_argmax(const char* op, const at::Tensor& heatmaps, double beta);

// grad_coords / coords (B, K, 2) of the dtype and device of heatmaps.
void check_soft_argmax_backward(const at::Tensor& grad_coords, const at::Tensor& heatmaps,
                                const at::Tensor& coords, double beta);

heatmap::DType heatmap_dtype(at::ScalarType t);

// Checked, contiguous inputs and allocated outputs of one call, shared by the
// CPU and CUDA ops (`device` is the backend's device type; the CUDA kernels
// index one map with int32, so they pass max_map_elems). `empty` means there is
// nothing to launch.
struct EncodeCall {
  at::Tensor heatmaps, weight, points, vis;
  heatmap::EncodeParams p;
  heatmap::DType in_dtype, out_dtype;
  bool empty = false;
  const uint8_t* vis_ptr() const {
    return vis.defined() ? reinterpret_cast<const uint8_t*>(vis.const_data_ptr()) : nullptr;
  }
};
EncodeCall prepare_heatmap_encode(const at::Tensor& points,
                                  const std::optional<at::Tensor>& visibility, int64_t height,
                                  int64_t width, double sigma, bool unbiased,
                                  std::optional<at::ScalarType> dtype, c10::DeviceType device,
                                  int64_t max_map_elems);

struct DecodeCall {
  at::Tensor coords, scores, heatmaps;
  heatmap::DecodeParams p;
  heatmap::DarkWeights w;
  heatmap::DType dtype;
  bool empty = false;
};
DecodeCall prepare_heatmap_decode(const at::Tensor& heatmaps, c10::string_view refine,
                                  int64_t blur_kernel, c10::DeviceType device,
                                  int64_t max_map_elems);

// Forward: out = coords (B, K, 2). Backward (grad_coords given): out = grad of
// the heatmaps, grad and coords contiguous.
struct SoftArgmaxCall {
  at::Tensor out, heatmaps, grad, coords;
  heatmap::SoftArgmaxParams p;
  heatmap::DType dtype;
  bool empty = false;
};
SoftArgmaxCall prepare_soft_argmax(const at::Tensor& heatmaps, double beta,
                                   c10::DeviceType device, int64_t max_map_elems);
SoftArgmaxCall prepare_soft_argmax_backward(const at::Tensor& grad_coords,
                                            const at::Tensor& heatmaps, const at::Tensor& coords,
                                            double beta, c10::DeviceType device,
                                            int64_t max_map_elems);

}  // namespace ops
}  // namespace pf3d
