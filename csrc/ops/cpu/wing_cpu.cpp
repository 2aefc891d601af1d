// Wing / Adaptive Wing losses: CPU implementations (shared checks and allocation
// in ops/wing.cpp, then the csrc/kernels calls).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "kernels/wing.h"
#include "ops/wing.h"

namespace pf3d {
namespace ops {
namespace {

constexpr auto kCPU = c10::DeviceType::CPU;

at::Tensor wing_loss_cpu(const at::Tensor& pred, const at::Tensor& target, double omega,
                         double epsilon, c10::string_view reduction) {
  const LossCall c =
      prepare_wing_call("wing_loss", pred, target, omega, epsilon, reduction, kCPU, nullptr);
  if (!c.done)
    by_float_dtype(c.pred, [&](auto tag) {
      using T = decltype(tag);
      wing::wing_forward_cpu(c.pred.const_data_ptr<T>(), c.target.const_data_ptr<T>(), c.n,
                             c.wing, c.reduction, c.out.mutable_data_ptr<T>());
    });
  return c.out;
}

at::Tensor wing_loss_backward_cpu(const at::Tensor& grad_output, const at::Tensor& pred,
                                  const at::Tensor& target, double omega, double epsilon,
                                  c10::string_view reduction) {
  const LossCall c = prepare_wing_call("_wing_loss_backward", pred, target, omega, epsilon,
                                       reduction, kCPU, &grad_output);
  if (!c.done)
    by_float_dtype(c.pred, [&](auto tag) {
      using T = decltype(tag);
      wing::wing_backward_cpu(c.grad_output.const_data_ptr<T>(), c.pred.const_data_ptr<T>(),
                              c.target.const_data_ptr<T>(), c.n, c.wing, c.reduction,
                              c.out.mutable_data_ptr<T>());
    });
  return c.out;
}

at::Tensor awing_loss_cpu(const at::Tensor& pred, const at::Tensor& target, double alpha,
                          double omega, double epsilon, double theta, double weight,
                          double threshold, int64_t dilation, c10::string_view reduction) {
  const LossCall c = prepare_awing_call("adaptive_wing_loss", pred, target, alpha, omega, epsilon,
                                        theta, weight, threshold, dilation, reduction, kCPU,
                                        nullptr);
  if (!c.done)
    by_float_dtype(c.pred, [&](auto tag) {
      using T = decltype(tag);
      wing::awing_forward_cpu(c.pred.const_data_ptr<T>(), c.target.const_data_ptr<T>(), c.BK,
                              c.H, c.W, c.awing, c.reduction, c.out.mutable_data_ptr<T>());
    });
  return c.out;
}

at::Tensor awing_loss_backward_cpu(const at::Tensor& grad_output, const at::Tensor& pred,
                                   const at::Tensor& target, double alpha, double omega,
                                   double epsilon, double theta, double weight,
                                   double threshold, int64_t dilation,
                                   c10::string_view reduction) {
  const LossCall c = prepare_awing_call("_adaptive_wing_loss_backward", pred, target, alpha,
                                        omega, epsilon, theta, weight, threshold, dilation,
                                        reduction, kCPU, &grad_output);
  if (!c.done)
    by_float_dtype(c.pred, [&](auto tag) {
      using T = decltype(tag);
      wing::awing_backward_cpu(c.grad_output.const_data_ptr<T>(), c.pred.const_data_ptr<T>(),
                               c.target.const_data_ptr<T>(), c.BK, c.H, c.W, c.awing,
                               c.reduction, c.out.mutable_data_ptr<T>());
    });
  return c.out;
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
