// Wing / Adaptive Wing losses: CUDA implementations (host side, compiled by g++).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "kernels/cuda/wing.cuh"
#include "kernels/wing.h"
#include "ops/checks.h"
#include "ops/wing.h"

namespace pf3d {
namespace ops {
namespace {

at::Tensor partial_workspace(const at::Tensor& pred, int reduction) {
  const int64_t nb = reduction == wing::kNone ? 0 : wing::wing_reduce_blocks(pred.numel());
  return at::empty({nb}, pred.options());
}

at::Tensor wing_loss_cuda(const at::Tensor& pred_, const at::Tensor& target_, double omega,
                          double epsilon, c10::string_view reduction) {
  const char* op = "wing_loss";
  const int red = check_wing(op, pred_, target_, omega, epsilon, reduction);
  check_device_type(op, "pred", pred_, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pred_.device());
  bool done;
  at::Tensor out = alloc_forward_out(pred_, red, &done);
  if (done) return out;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous();
  at::Tensor partial = partial_workspace(pred, red);
  const wing::WingParams p = wing::make_wing_params(omega, epsilon);
  const int64_t n = pred.numel();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (pred.scalar_type() == at::kFloat)
    C10_CUDA_CHECK(wing::wing_forward_cuda(pred.data_ptr<float>(), target.data_ptr<float>(), n,
                                           p, red, out.data_ptr<float>(),
                                           partial.data_ptr<float>(), stream));
  else
    C10_CUDA_CHECK(wing::wing_forward_cuda(pred.data_ptr<double>(), target.data_ptr<double>(),
                                           n, p, red, out.data_ptr<double>(),
                                           partial.data_ptr<double>(), stream));
  return out;
}

at::Tensor wing_loss_backward_cuda(const at::Tensor& grad_output_, const at::Tensor& pred_,
                                   const at::Tensor& target_, double omega, double epsilon,
                                   c10::string_view reduction) {
  const char* op = "_wing_loss_backward";
  const int red = check_wing(op, pred_, target_, omega, epsilon, reduction);
  check_grad_output(op, grad_output_, pred_, red);
  check_device_type(op, "pred", pred_, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pred_.device());
  at::Tensor grad = at::empty(pred_.sizes(), pred_.options());
  if (pred_.numel() == 0) return grad;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous(),
                   go = grad_output_.contiguous();
  const wing::WingParams p = wing::make_wing_params(omega, epsilon);
  const int64_t n = pred.numel();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (pred.scalar_type() == at::kFloat)
    C10_CUDA_CHECK(wing::wing_backward_cuda(go.data_ptr<float>(), pred.data_ptr<float>(),
                                            target.data_ptr<float>(), n, p, red,
                                            grad.data_ptr<float>(), stream));
  else
    C10_CUDA_CHECK(wing::wing_backward_cuda(go.data_ptr<double>(), pred.data_ptr<double>(),
                                            target.data_ptr<double>(), n, p, red,
                                            grad.data_ptr<double>(), stream));
  return grad;
}

at::Tensor awing_loss_cuda(const at::Tensor& pred_, const at::Tensor& target_, double alpha,
                           double omega, double epsilon, double theta, double weight,
                           double threshold, int64_t dilation, c10::string_view reduction) {
  const char* op = "adaptive_wing_loss";
  const int red = check_awing(op, pred_, target_, alpha, omega, epsilon, theta, weight,
                              threshold, dilation, reduction);
  check_device_type(op, "pred", pred_, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pred_.device());
  bool done;
  at::Tensor out = alloc_forward_out(pred_, red, &done);
  if (done) return out;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous();
  at::Tensor partial = partial_workspace(pred, red);
  const wing::AWingParams p =
      make_awing_params(alpha, omega, epsilon, theta, weight, threshold, dilation);
  const int64_t BK = pred.size(0) * pred.size(1), H = pred.size(2), W = pred.size(3);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (pred.scalar_type() == at::kFloat)
    C10_CUDA_CHECK(wing::awing_forward_cuda(pred.data_ptr<float>(), target.data_ptr<float>(),
                                            BK, H, W, p, red, out.data_ptr<float>(),
                                            partial.data_ptr<float>(), stream));
  else
    C10_CUDA_CHECK(wing::awing_forward_cuda(pred.data_ptr<double>(), target.data_ptr<double>(),
                                            BK, H, W, p, red, out.data_ptr<double>(),
                                            partial.data_ptr<double>(), stream));
  return out;
}

at::Tensor awing_loss_backward_cuda(const at::Tensor& grad_output_, const at::Tensor& pred_,
                                    const at::Tensor& target_, double alpha, double omega,
                                    double epsilon, double theta, double weight,
                                    double threshold, int64_t dilation,
                                    c10::string_view reduction) {
  const char* op = "_adaptive_wing_loss_backward";
  const int red = check_awing(op, pred_, target_, alpha, omega, epsilon, theta, weight,
                              threshold, dilation, reduction);
  check_grad_output(op, grad_output_, pred_, red);
  check_device_type(op, "pred", pred_, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pred_.device());
  at::Tensor grad = at::empty(pred_.sizes(), pred_.options());
  if (pred_.numel() == 0) return grad;
  const at::Tensor pred = pred_.contiguous(), target = target_.contiguous(),
                   go = grad_output_.contiguous();
  const wing::AWingParams p =
      make_awing_params(alpha, omega, epsilon, theta, weight, threshold, dilation);
  const int64_t BK = pred.size(0) * pred.size(1), H = pred.size(2), W = pred.size(3);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (pred.scalar_type() == at::kFloat)
    C10_CUDA_CHECK(wing::awing_backward_cuda(go.data_ptr<float>(), pred.data_ptr<float>(),
                                             target.data_ptr<float>(), BK, H, W, p, red,
                                             grad.data_ptr<float>(), stream));
  else
    C10_CUDA_CHECK(wing::awing_backward_cuda(go.data_ptr<double>(), pred.data_ptr<double>(),
                                             target.data_ptr<double>(), BK, H, W, p, red,
                                             grad.data_ptr<double>(), stream));
  return grad;
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
