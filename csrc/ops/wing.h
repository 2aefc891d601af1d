// Wing / Adaptive Wing losses: input checks shared by the CPU and CUDA ops.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/string_view.h>

#include "kernels/wing.h"

namespace pf3d {
namespace ops {

// "none" -> kNone, "mean" -> kMean, "sum" -> kSum; ValueError otherwise.
int parse_reduction(const char* op, c10::string_view reduction);

// pred/target (B, N, D), same dtype (float32/float64), same device; omega, epsilon > 0.
// Returns the reduction code.
int check_wing(const char* op, const at::Tensor& pred, const at::Tensor& target, double omega,
               double epsilon, c10::string_view reduction);

// pred/target (B, K, H, W), same dtype (float32/float64), same device; omega, epsilon,
// theta > 0; alpha, threshold finite; weight finite and >= 0; dilation odd and >= 1.
int check_awing(const char* op, const at::Tensor& pred, const at::Tensor& target, double alpha,
                double omega, double epsilon, double theta, double weight, double threshold,
                int64_t dilation, c10::string_view reduction);

// grad_output: the shape of pred for reduction "none", a scalar otherwise; dtype and
// device of pred.
void check_grad_output(const char* op, const at::Tensor& grad_output, const at::Tensor& pred,
                       int reduction);

// Output of a forward pass: the input's shape for "none", a 0-dim tensor otherwise.
// Empty inputs: mean -> NaN (as torch.mean), sum -> 0; *done is then true.
at::Tensor alloc_forward_out(const at::Tensor& pred, int reduction, bool* done);

// Checked, contiguous inputs and the allocated output of one call, shared by the
// CPU and CUDA ops. Forward: out is the loss; backward (grad_output given): out
// is the gradient w.r.t. pred. `done`: nothing to launch (empty input).
struct LossCall {
  at::Tensor out, pred, target, grad_output;
  int reduction = 0;
  bool done = false;
  wing::WingParams wing{};
  wing::AWingParams awing{};
  int64_t n = 0, BK = 0, H = 0, W = 0;
};
LossCall prepare_wing_call(const char* op, const at::Tensor& pred, const at::Tensor& target,
                           double omega, double epsilon, c10::string_view reduction,
                           c10::DeviceType device, const at::Tensor* grad_output);
LossCall prepare_awing_call(const char* op, const at::Tensor& pred, const at::Tensor& target,
                            double alpha, double omega, double epsilon, double theta,
                            double weight, double threshold, int64_t dilation,
                            c10::string_view reduction, c10::DeviceType device,
                            const at::Tensor* grad_output);

// Calls f(float{}) or f(double{}) by the dtype of t (float32 / float64 only).
template <typename F>
void by_float_dtype(const at::Tensor& t, F&& f) {
  if (t.scalar_type() == at::kFloat)
    f(float{});
  else
    f(double{});
}

wing::AWingParams make_awing_params(double alpha, double omega, double epsilon, double theta,
                                    double weight, double threshold, int64_t dilation);

}  // namespace ops
}  // namespace pf3d
