// Wing / Adaptive Wing losses: CPU implementations.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <limits>

#include "kernels/wing.h"
#include "ops/checks.h"
#include "ops/wing.h"

namespace pf3d {
namespace ops {
namespace {

at::Tensor wing_loss_cpu(const at::Tensor& pred_, const at::Tensor& target_, double omega,
                         double epsilon, c10::string_view reduction) {
  const char* op = "wing_loss";
  const int red = check_wing(op, pred_, target_, omega, epsilon, reduction);
  check_device_type(op, "pred", pred_, c10::DeviceType::CPU);
  bool done;
  at::Tensor out = alloc_forward_out(pred_, red, &done);
  if (done) return out;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous();
  const wing::WingParams p = wing::make_wing_params(omega, epsilon);
  const int64_t n = pred.numel();
  if (pred.scalar_type() == at::kFloat)
    wing::wing_forward_cpu(pred.data_ptr<float>(), target.data_ptr<float>(), n, p, red,
                           out.data_ptr<float>());
  else
    wing::wing_forward_cpu(pred.data_ptr<double>(), target.data_ptr<double>(), n, p, red,
                           out.data_ptr<double>());
  return out;
}

at::Tensor wing_loss_backward_cpu(const at::Tensor& grad_output_, const at::Tensor& pred_,
                                  const at::Tensor& target_, double omega, double epsilon,
                                  c10::string_view reduction) {
  const char* op = "_wing_loss_backward";
  const int red = check_wing(op, pred_, target_, omega, epsilon, reduction);
  check_grad_output(op, grad_output_, pred_, red);
  check_device_type(op, "pred", pred_, c10::DeviceType::CPU);
  at::Tensor grad = at::empty(pred_.sizes(), pred_.options());
  if (pred_.numel() == 0) return grad;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous(),
                   go = grad_output_.contiguous();
  const wing::WingParams p = wing::make_wing_params(omega, epsilon);
  const int64_t n = pred.numel();
  if (pred.scalar_type() == at::kFloat)
    wing::wing_backward_cpu(go.data_ptr<float>(), pred.data_ptr<float>(),
                            target.data_ptr<float>(), n, p, red, grad.data_ptr<float>());
  else
    wing::wing_backward_cpu(go.data_ptr<double>(), pred.data_ptr<double>(),
                            target.data_ptr<double>(), n, p, red, grad.data_ptr<double>());
  return grad;
}

at::Tensor awing_loss_cpu(const at::Tensor& pred_, const at::Tensor& target_, double alpha,
                          double omega, double epsilon, double theta, double weight,
                          double threshold, int64_t dilation, c10::string_view reduction) {
  const char* op = "adaptive_wing_loss";
  const int red = check_awing(op, pred_, target_, alpha, omega, epsilon, theta, weight,
                              threshold, dilation, reduction);
  check_device_type(op, "pred", pred_, c10::DeviceType::CPU);
  bool done;
  at::Tensor out = alloc_forward_out(pred_, red, &done);
  if (done) return out;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous();
  const wing::AWingParams p =
      make_awing_params(alpha, omega, epsilon, theta, weight, threshold, dilation);
  const int64_t BK = pred.size(0) * pred.size(1), H = pred.size(2), W = pred.size(3);
  if (pred.scalar_type() == at::kFloat)
    wing::awing_forward_cpu(pred.data_ptr<float>(), target.data_ptr<float>(), BK, H, W, p, red,
                            out.data_ptr<float>());
  else
    wing::awing_forward_cpu(pred.data_ptr<double>(), target.data_ptr<double>(), BK, H, W, p,
                            red, out.data_ptr<double>());
  return out;
}

at::Tensor awing_loss_backward_cpu(const at::Tensor& grad_output_, const at::Tensor& pred_,
                                   const at::Tensor& target_, double alpha, double omega,
                                   double epsilon, double theta, double weight,
                                   double threshold, int64_t dilation,
                                   c10::string_view reduction) {
  const char* op = "_adaptive_wing_loss_backward";
  const int red = check_awing(op, pred_, target_, alpha, omega, epsilon, theta, weight,
                              threshold, dilation, reduction);
  check_grad_output(op, grad_output_, pred_, red);
  check_device_type(op, "pred", pred_, c10::DeviceType::CPU);
  at::Tensor grad = at::empty(pred_.sizes(), pred_.options());
  if (pred_.numel() == 0) return grad;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous(),
                   go = grad_output_.contiguous();
  const wing::AWingParams p =
      make_awing_params(alpha, omega, epsilon, theta, weight, threshold, dilation);
  const int64_t BK = pred.size(0) * pred.size(1), H = pred.size(2), W = pred.size(3);
  if (pred.scalar_type() == at::kFloat)
    wing::awing_backward_cpu(go.data_ptr<float>(), pred.data_ptr<float>(),
                             target.data_ptr<float>(), BK, H, W, p, red,
                             grad.data_ptr<float>());
  else
    wing::awing_backward_cpu(go.data_ptr<double>(), pred.data_ptr<double>(),
                             target.data_ptr<double>(), BK, H, W, p, red,
                             grad.data_ptr<double>());
  return grad;
}

}  // namespace
}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("wing_loss", &pf3d::ops::wing_loss_cpu);
  m.impl("_wing_loss_backward", &pf3d::ops::wing_loss_backward_cpu);
  m.impl("adaptive_wing_loss", &pf3d::ops::awing_loss_cpu);
  m.impl("_adaptive_wing_loss_backward", &pf3d::ops::awing_loss_backward_cpu);
}
