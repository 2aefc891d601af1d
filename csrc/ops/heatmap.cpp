// Landmark heatmaps: schemas and input checks.
#include "ops/heatmap.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/gt.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>

#include "ops/checks.h"

namespace pf3d {
namespace ops {

namespace {
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

void check_maps(const char* op, const at::Tensor& hm) {
  check_dim(op, "heatmaps", hm, 4, "(B, K, H, W)");
  TORCH_CHECK_VALUE(hm.size(2) >= 1 && hm.size(3) >= 1, "pyface3d.", op,
                    ": argument `heatmaps` must have shape (B, K, H, W) with H, W >= 1, got shape ",
                    hm.sizes());
}
}  // namespace

heatmap::DType heatmap_dtype(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return heatmap::DType::kHalf;
    case at::kDouble: return heatmap::DType::kDouble;
    default: return heatmap::DType::kFloat;
  }
}

at::ScalarType check_heatmap_encode(const at::Tensor& points,
                                    const std::optional<at::Tensor>& visibility, int64_t height,
                                    int64_t width, double sigma,
                                    std::optional<at::ScalarType> dtype) {
  const char* op = "heatmap_encode";
  check_dim(op, "points", points, 3, "(B, K, 2)");
  check_size(op, "points", points, 2, 2, "(B, K, 2)");
  check_dtype(op, "points", points, {at::kFloat, at::kDouble});
  if (visibility.has_value()) {
    const at::Tensor& v = *visibility;
    check_dim(op, "visibility", v, 2, "(B, K)");
    TORCH_CHECK_VALUE(v.size(0) == points.size(0) && v.size(1) == points.size(1), "pyface3d.",
                      op, ": argument `visibility` must have shape (B, K) = (", points.size(0),
                      ", ", points.size(1), "), got shape ", v.sizes());
    TORCH_CHECK_TYPE(!c10::isComplexType(v.scalar_type()), "pyface3d.", op,
                     ": argument `visibility` must be bool or a real dtype, got ",
                     v.scalar_type());
    check_same_device(op, "visibility", v, "points", points);
  }
  TORCH_CHECK_VALUE(height >= 1, "pyface3d.", op, ": argument `height` must be >= 1, got ",
                    height);
  TORCH_CHECK_VALUE(width >= 1, "pyface3d.", op, ": argument `width` must be >= 1, got ", width);
  check_positive(op, "sigma", sigma);
  const at::ScalarType out = dtype.has_value() ? *dtype : at::kFloat;
  TORCH_CHECK_TYPE(out == at::kHalf || out == at::kFloat || out == at::kDouble, "pyface3d.", op,
                   ": argument `dtype` must be one of float16, float32, float64 (or None), got ",
                   out);
  check_numel_fits(op, "the output (B, K, H, W)", points.size(0), points.size(1), height, width,
                   kI64Max / 8);
  return out;
}

int check_heatmap_decode(const at::Tensor& heatmaps, c10::string_view refine,
                         int64_t blur_kernel) {
  const char* op = "heatmap_decode";
  check_maps(op, heatmaps);
  check_dtype(op, "heatmaps", heatmaps, {at::kHalf, at::kFloat, at::kDouble});
  int mode;
  if (refine == "none") {
    mode = heatmap::kRefineNone;
  } else if (refine == "quarter") {
    mode = heatmap::kRefineQuarter;
  } else if (refine == "dark") {
    mode = heatmap::kRefineDark;
  } else {
    TORCH_CHECK_VALUE(false, "pyface3d.", op,
                      ": argument `refine` must be one of 'none', 'quarter', 'dark', got '",
                      std::string(refine.data(), refine.size()), "'");
  }
  TORCH_CHECK_VALUE(blur_kernel >= 3 && blur_kernel <= heatmap::kMaxBlurKernel &&
                        blur_kernel % 2 == 1,
                    "pyface3d.", op, ": argument `blur_kernel` must be an odd integer in [3, ",
                    heatmap::kMaxBlurKernel, "], got ", blur_kernel);
  return mode;
}

void check_soft_argmax(const char* op, const at::Tensor& heatmaps, double beta) {
  check_maps(op, heatmaps);
  check_dtype(op, "heatmaps", heatmaps, {at::kFloat, at::kDouble});
  TORCH_CHECK_VALUE(std::isfinite(beta), "pyface3d.", op, ": argument `beta` must be finite, got ",
                    beta);
}

void check_soft_argmax_backward(const at::Tensor& grad_coords, const at::Tensor& heatmaps,
                                const at::Tensor& coords, double beta) {
  const char* op = "_soft_argmax_backward";
  check_soft_argmax(op, heatmaps, beta);
  const char* names[2] = {"grad_coords", "coords"};
  const at::Tensor* ts[2] = {&grad_coords, &coords};
  for (int i = 0; i < 2; ++i) {
    const at::Tensor& t = *ts[i];
    check_dim(op, names[i], t, 3, "(B, K, 2)");
    TORCH_CHECK_VALUE(t.size(0) == heatmaps.size(0) && t.size(1) == heatmaps.size(1) &&
                          t.size(2) == 2,
                      "pyface3d.", op, ": argument `", names[i], "` must have shape (B, K, 2) = (",
                      heatmaps.size(0), ", ", heatmaps.size(1), ", 2), got shape ", t.sizes());
    check_same_dtype(op, names[i], t, "heatmaps", heatmaps);
    check_same_device(op, names[i], t, "heatmaps", heatmaps);
  }
}

namespace {
void check_map_elems(const char* op, int64_t H, int64_t W, int64_t max_map_elems) {
  check_numel_fits(op, "one map (H, W)", H, W, 1, 1, max_map_elems);
}
}  // namespace

EncodeCall prepare_heatmap_encode(const at::Tensor& points,
                                  const std::optional<at::Tensor>& visibility, int64_t height,
                                  int64_t width, double sigma, bool unbiased,
                                  std::optional<at::ScalarType> dtype, c10::DeviceType device,
                                  int64_t max_map_elems) {
  const char* op = "heatmap_encode";
  const at::ScalarType out_dtype =
      check_heatmap_encode(points, visibility, height, width, sigma, dtype);
  check_device_type(op, "points", points, device);
  check_map_elems(op, height, width, max_map_elems);
  EncodeCall c;
  const int64_t B = points.size(0), K = points.size(1);
  c.heatmaps = at::empty({B, K, height, width}, points.options().dtype(out_dtype));
  c.weight = at::empty({B, K}, points.options().dtype(at::kFloat));
  c.empty = B * K == 0;
  c.points = points.contiguous();
  if (visibility.has_value() && !c.empty) c.vis = at::gt(*visibility, 0).contiguous();
  c.p.maps = B * K;
  c.p.height = height;
  c.p.width = width;
  c.p.sigma = sigma;
  c.p.unbiased = unbiased;
  c.in_dtype = heatmap_dtype(c.points.scalar_type());
  c.out_dtype = heatmap_dtype(out_dtype);
  return c;
}

DecodeCall prepare_heatmap_decode(const at::Tensor& heatmaps, c10::string_view refine,
                                  int64_t blur_kernel, c10::DeviceType device,
                                  int64_t max_map_elems) {
  const char* op = "heatmap_decode";
  const int mode = check_heatmap_decode(heatmaps, refine, blur_kernel);
  check_device_type(op, "heatmaps", heatmaps, device);
  const int64_t B = heatmaps.size(0), K = heatmaps.size(1), H = heatmaps.size(2),
                W = heatmaps.size(3);
  check_map_elems(op, H, W, max_map_elems);
  DecodeCall c;
  const at::ScalarType cd = heatmaps.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  c.coords = at::empty({B, K, 2}, heatmaps.options().dtype(cd));
  c.scores = at::empty({B, K}, heatmaps.options().dtype(cd));
  c.empty = B * K == 0;
  c.heatmaps = heatmaps.contiguous();
  c.p.maps = B * K;
  c.p.height = H;
  c.p.width = W;
  c.p.refine = mode;
  if (mode == heatmap::kRefineDark) heatmap::dark_weights(int(blur_kernel), &c.w);
  c.dtype = heatmap_dtype(heatmaps.scalar_type());
  return c;
}

namespace {
SoftArgmaxCall soft_argmax_call(const at::Tensor& heatmaps, double beta,
                                int64_t max_map_elems, const char* op) {
  check_map_elems(op, heatmaps.size(2), heatmaps.size(3), max_map_elems);
  SoftArgmaxCall c;
  c.empty = heatmaps.size(0) * heatmaps.size(1) == 0;
  c.heatmaps = heatmaps.contiguous();
  c.p.maps = heatmaps.size(0) * heatmaps.size(1);
  c.p.height = heatmaps.size(2);
  c.p.width = heatmaps.size(3);
  c.p.beta = beta;
  c.dtype = heatmap_dtype(heatmaps.scalar_type());
  return c;
}
}  // namespace

SoftArgmaxCall prepare_soft_argmax(const at::Tensor& heatmaps, double beta,
                                   c10::DeviceType device, int64_t max_map_elems) {
  check_soft_argmax("soft_argmax", heatmaps, beta);
  check_device_type("soft_argmax", "heatmaps", heatmaps, device);
  SoftArgmaxCall c = soft_argmax_call(heatmaps, beta, max_map_elems, "soft_argmax");
  c.out = at::empty({heatmaps.size(0), heatmaps.size(1), 2}, heatmaps.options());
  return c;
}

SoftArgmaxCall prepare_soft_argmax_backward(const at::Tensor& grad_coords,
                                            const at::Tensor& heatmaps, const at::Tensor& coords,
                                            double beta, c10::DeviceType device,
                                            int64_t max_map_elems) {
  const char* op = "_soft_argmax_backward";
  check_soft_argmax_backward(grad_coords, heatmaps, coords, beta);
  check_device_type(op, "heatmaps", heatmaps, device);
  SoftArgmaxCall c = soft_argmax_call(heatmaps, beta, max_map_elems, op);
  c.out = at::empty(heatmaps.sizes(), heatmaps.options());
  c.grad = grad_coords.contiguous();
  c.coords = coords.contiguous();
  return c;
}

}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_FRAGMENT(pyface3d, m) {
  m.def(
      "heatmap_encode(Tensor points, Tensor? visibility, int height, int width, float sigma, "
      "bool unbiased=True, ScalarType? dtype=None) -> (Tensor heatmaps, Tensor target_weight)");
  m.def(
      "heatmap_decode(Tensor heatmaps, str refine=\"none\", int blur_kernel=11) "
      "-> (Tensor coords, Tensor scores)");
  m.def("soft_argmax(Tensor heatmaps, float beta=1.0) -> Tensor");
  m.def(
      "_soft_argmax_backward(Tensor grad_coords, Tensor heatmaps, Tensor coords, float beta) "
      "-> Tensor");
}
