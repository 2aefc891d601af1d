// Wing / Adaptive Wing losses: CUDA implementations (shared checks and allocation
// in ops/wing.cpp, then device guard, current stream, launcher, launch check).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "kernels/cuda/wing.cuh"
#include "kernels/wing.h"
#include "ops/wing.h"

namespace pf3d {
namespace ops {
namespace {

constexpr auto kCUDA = c10::DeviceType::CUDA;

// Per-block partial sums of the deterministic two-pass reduction.
at::Tensor partial_workspace(const LossCall& c) {
  const int64_t nb = c.reduction == wing::kNone ? 0 : wing::wing_reduce_blocks(c.n);
  return at::empty({nb}, c.pred.options());
}

at::Tensor wing_loss_cuda(const at::Tensor& pred, const at::Tensor& target, double omega,
                          double epsilon, c10::string_view reduction) {
  const LossCall c =
      prepare_wing_call("wing_loss", pred, target, omega, epsilon, reduction, kCUDA, nullptr);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor partial = partial_workspace(c);
  by_float_dtype(c.pred, [&](auto tag) {
    using T = decltype(tag);
    C10_CUDA_CHECK(wing::wing_forward_cuda(c.pred.const_data_ptr<T>(),
                                           c.target.const_data_ptr<T>(), c.n, c.wing,
                                           c.reduction, c.out.mutable_data_ptr<T>(),
                                           partial.mutable_data_ptr<T>(),
                                           c10::cuda::getCurrentCUDAStream()));
  });
  return c.out;
}

at::Tensor wing_loss_backward_cuda(const at::Tensor& grad_output, const at::Tensor& pred,
                                   const at::Tensor& target, double omega, double epsilon,
                                   c10::string_view reduction) {
  const LossCall c = prepare_wing_call("_wing_loss_backward", pred, target, omega, epsilon,
                                       reduction, kCUDA, &grad_output);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(pred.device());
  by_float_dtype(c.pred, [&](auto tag) {
    using T = decltype(tag);
    C10_CUDA_CHECK(wing::wing_backward_cuda(
        c.grad_output.const_data_ptr<T>(), c.pred.const_data_ptr<T>(),
        c.target.const_data_ptr<T>(), c.n, c.wing, c.reduction, c.out.mutable_data_ptr<T>(),
        c10::cuda::getCurrentCUDAStream()));
  });
  return c.out;
}

at::Tensor awing_loss_cuda(const at::Tensor& pred, const at::Tensor& target, double alpha,
                           double omega, double epsilon, double theta, double weight,
                           double threshold, int64_t dilation, c10::string_view reduction) {
  const LossCall c = prepare_awing_call("adaptive_wing_loss", pred, target, alpha, omega, epsilon,
                                        theta, weight, threshold, dilation, reduction, kCUDA,
                                        nullptr);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor partial = partial_workspace(c);
  by_float_dtype(c.pred, [&](auto tag) {
    using T = decltype(tag);
    C10_CUDA_CHECK(wing::awing_forward_cuda(
        c.pred.const_data_ptr<T>(), c.target.const_data_ptr<T>(), c.BK, c.H, c.W, c.awing,
        c.reduction, c.out.mutable_data_ptr<T>(), partial.mutable_data_ptr<T>(),
        c10::cuda::getCurrentCUDAStream()));
  });
  return c.out;
}

at::Tensor awing_loss_backward_cuda(const at::Tensor& grad_output, const at::Tensor& pred,
                                    const at::Tensor& target, double alpha, double omega,
                                    double epsilon, double theta, double weight,
                                    double threshold, int64_t dilation,
                                    c10::string_view reduction) {
  const LossCall c = prepare_awing_call("_adaptive_wing_loss_backward", pred, target, alpha,
                                        omega, epsilon, theta, weight, threshold, dilation,
                                        reduction, kCUDA, &grad_output);
  if (c.done) return c.out;
  const c10::cuda::CUDAGuard guard(pred.device());
  by_float_dtype(c.pred, [&](auto tag) {
    using T = decltype(tag);
    C10_CUDA_CHECK(wing::awing_backward_cuda(
        c.grad_output.const_data_ptr<T>(), c.pred.const_data_ptr<T>(),
        c.target.const_data_ptr<T>(), c.BK, c.H, c.W, c.awing, c.reduction,
        c.out.mutable_data_ptr<T>(), c10::cuda::getCurrentCUDAStream()));
  });
  return c.out;
}

}  // namespace
}  // namespace ops
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("wing_loss", &pf3d::ops::wing_loss_cuda);
  m.impl("_wing_loss_backward", &pf3d::ops::wing_loss_backward_cuda);
  m.impl("adaptive_wing_loss", &pf3d::ops::awing_loss_cuda);
  m.impl("_adaptive_wing_loss_backward", &pf3d::ops::awing_loss_backward_cuda);
}
