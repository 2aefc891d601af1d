// Wing / Adaptive Wing losses: schemas and input checks.
#include "ops/wing.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "ops/checks.h"

namespace pf3d {
namespace ops {

int parse_reduction(const char* op, c10::string_view reduction) {
  if (reduction == "mean") return wing::kMean;
  if (reduction == "sum") return wing::kSum;
  if (reduction == "none") return wing::kNone;
  TORCH_CHECK_VALUE(false, "pyface3d.", op,
                    ": argument `reduction` must be one of 'mean', 'sum', 'none', got '",
                    std::string(reduction.data(), reduction.size()), "'");
  return -1;
}

namespace {
void check_pair(const char* op, const at::Tensor& pred, const at::Tensor& target, int64_t dim,
                const char* shape_doc) {
  check_dim(op, "pred", pred, dim, shape_doc);
  check_dim(op, "target", target, dim, shape_doc);
  TORCH_CHECK_VALUE(pred.sizes() == target.sizes(), "pyface3d.", op,
                    ": arguments `pred` and `target` must have the same shape ", shape_doc,
                    ", got ", pred.sizes(), " and ", target.sizes());
  check_dtype(op, "pred", pred, {at::kFloat, at::kDouble});
  check_same_dtype(op, "target", target, "pred", pred);
  check_same_device(op, "target", target, "pred", pred);
}

void check_finite(const char* op, const char* name, double v) {
  TORCH_CHECK_VALUE(std::isfinite(v), "pyface3d.", op, ": argument `", name,
                    "` must be finite, got ", v);
}
}  // namespace

int check_wing(const char* op, const at::Tensor& pred, const at::Tensor& target, double omega,
               double epsilon, c10::string_view reduction) {
  check_pair(op, pred, target, 3, "(B, N, D)");
  check_positive(op, "omega", omega);
  check_positive(op, "epsilon", epsilon);
  return parse_reduction(op, reduction);
}

int check_awing(const char* op, const at::Tensor& pred, const at::Tensor& target, double alpha,
                double omega, double epsilon, double theta, double weight, double threshold,
                int64_t dilation, c10::string_view reduction) {
  check_pair(op, pred, target, 4, "(B, K, H, W)");
  check_finite(op, "alpha", alpha);
  check_positive(op, "omega", omega);
  check_positive(op, "epsilon", epsilon);
  check_positive(op, "theta", theta);
  TORCH_CHECK_VALUE(std::isfinite(weight) && weight >= 0, "pyface3d.", op,
                    ": argument `weight` must be finite and >= 0, got ", weight);
  check_finite(op, "threshold", threshold);
  TORCH_CHECK_VALUE(dilation >= 1 && dilation % 2 == 1 && dilation <= (1 << 20), "pyface3d.",
                    op, ": argument `dilation` must be an odd integer in [1, 1048575], got ",
                    dilation);
  return parse_reduction(op, reduction);
}

void check_grad_output(const char* op, const at::Tensor& grad_output, const at::Tensor& pred,
                       int reduction) {
  if (reduction == wing::kNone) {
    TORCH_CHECK_VALUE(grad_output.sizes() == pred.sizes(), "pyface3d.", op,
                      ": argument `grad_output` must have the shape of `pred` ", pred.sizes(),
                      " for reduction 'none', got ", grad_output.sizes());
  } else {
    TORCH_CHECK_VALUE(grad_output.numel() == 1, "pyface3d.", op,
                      ": argument `grad_output` must be a scalar for reduction 'mean'/'sum', "
                      "got shape ",
                      grad_output.sizes());
  }
  check_same_dtype(op, "grad_output", grad_output, "pred", pred);
  check_same_device(op, "grad_output", grad_output, "pred", pred);
}

at::Tensor alloc_forward_out(const at::Tensor& pred, int reduction, bool* done) {
  *done = false;
  if (reduction == wing::kNone) {
    at::Tensor out = at::empty(pred.sizes(), pred.options());
    *done = pred.numel() == 0;
    return out;
  }
  if (pred.numel() == 0) {
    *done = true;
    const double v = reduction == wing::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0;
    return at::full({}, v, pred.options());
  }
  return at::empty({}, pred.options());
}

wing::AWingParams make_awing_params(double alpha, double omega, double epsilon, double theta,
                                    double weight, double threshold, int64_t dilation) {
  wing::AWingParams p;
  p.alpha = alpha;
  p.omega = omega;
  p.epsilon = epsilon;
  p.theta = theta;
  p.weight = weight;
  p.threshold = threshold;
  p.dilation = static_cast<int>(dilation);
  return p;
}

namespace {
LossCall finish_call(LossCall c, const at::Tensor& pred, const at::Tensor& target,
                     const at::Tensor* grad_output) {
  if (grad_output) {
    c.out = at::empty(pred.sizes(), pred.options());
    c.done = pred.numel() == 0;
    c.grad_output = grad_output->contiguous();
  } else {
    c.out = alloc_forward_out(pred, c.reduction, &c.done);
  }
  c.pred = pred.contiguous();
  c.target = target.contiguous();
  c.n = pred.numel();
  return c;
}
}  // namespace

LossCall prepare_wing_call(const char* op, const at::Tensor& pred, const at::Tensor& target,
                           double omega, double epsilon, c10::string_view reduction,
                           c10::DeviceType device, const at::Tensor* grad_output) {
  LossCall c;
  c.reduction = check_wing(op, pred, target, omega, epsilon, reduction);
  if (grad_output) check_grad_output(op, *grad_output, pred, c.reduction);
  check_device_type(op, "pred", pred, device);
  c.wing = wing::make_wing_params(omega, epsilon);
  return finish_call(std::move(c), pred, target, grad_output);
}

LossCall prepare_awing_call(const char* op, const at::Tensor& pred, const at::Tensor& target,
                            double alpha, double omega, double epsilon, double theta,
                            double weight, double threshold, int64_t dilation,
                            c10::string_view reduction, c10::DeviceType device,
                            const at::Tensor* grad_output) {
  LossCall c;
  c.reduction = check_awing(op, pred, target, alpha, omega, epsilon, theta, weight, threshold,
                            dilation, reduction);
  if (grad_output) check_grad_output(op, *grad_output, pred, c.reduction);
  check_device_type(op, "pred", pred, device);
  c.awing = make_awing_params(alpha, omega, epsilon, theta, weight, threshold, dilation);
  c = finish_call(std::move(c), pred, target, grad_output);
  c.BK = pred.size(0) * pred.size(1);
  c.H = pred.size(2);
  c.W = pred.size(3);
  return c;
}

}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_FRAGMENT(pyface3d, m) {
  m.def(
      "wing_loss(Tensor pred, Tensor target, float omega=10.0, float epsilon=2.0, "
      "str reduction=\"mean\") -> Tensor");
  m.def(
      "_wing_loss_backward(Tensor grad_output, Tensor pred, Tensor target, float omega, "
      "float epsilon, str reduction) -> Tensor");
  m.def(
      "adaptive_wing_loss(Tensor pred, Tensor target, float alpha=2.1, float omega=14.0, "
      "float epsilon=1.0, float theta=0.5, float weight=10.0, float threshold=0.2, "
      "int dilation=3, str reduction=\"mean\") -> Tensor");
  m.def(
      "_adaptive_wing_loss_backward(Tensor grad_output, Tensor pred, Tensor target, "
      "float alpha, float omega, float epsilon, float theta, float weight, float threshold, "
      "int dilation, str reduction) -> Tensor");
}
