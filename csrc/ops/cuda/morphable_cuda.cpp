// CUDA implementation of the morphable ops: checks, device guard, current
// stream, launch (kernels in csrc/kernels/cuda/morphable.cu), launch check.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "kernels/cuda/morphable.cuh"
#include "ops/morphable.h"

namespace pf3d {
namespace {

template <typename T>
void run_forward(const MorphableCall& c, at::Tensor& out) {
  C10_CUDA_CHECK(morphable::forward_cuda(c.params<T>(), out.mutable_data_ptr<T>(),
                                         c10::cuda::getCurrentCUDAStream()));
}

at::Tensor morphable_reconstruct_cuda(const at::Tensor& pose, const at::Tensor& id_coeff,
                                      const at::Tensor& exp_coeff, const at::Tensor& mean,
                                      const at::Tensor& id_basis, const at::Tensor& exp_basis,
                                      const c10::optional<at::Tensor>& vertex_ids) {
  const auto c = prepare_morphable_call("morphable_reconstruct", pose, id_coeff, exp_coeff, mean,
                                        id_basis, exp_basis, vertex_ids, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pose.device());
  at::Tensor out = at::empty({c.s.B, c.s.M, 3}, pose.options());
  if (c.s.B == 0 || c.s.M == 0) return out;
  if (pose.scalar_type() == at::kFloat)
    run_forward<float>(c, out);
  else
    run_forward<double>(c, out);
  return out;
}

template <typename T>
void run_backward(const MorphableCall& c, at::Tensor& gp, at::Tensor& gi, at::Tensor& ge) {
  const auto p = c.params<T>();
  const size_t bytes = morphable::backward_cuda_workspace_bytes(p);
  at::Tensor ws =
      at::empty({(int64_t)std::max<size_t>(bytes, 1)}, c.pose.options().dtype(at::kByte));
  C10_CUDA_CHECK(morphable::backward_cuda(
      p, c.grad.const_data_ptr<T>(), gp.mutable_data_ptr<T>(), gi.mutable_data_ptr<T>(),
      ge.mutable_data_ptr<T>(), ws.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> morphable_reconstruct_backward_cuda(
    const at::Tensor& grad_vertices, const at::Tensor& pose, const at::Tensor& id_coeff,
    const at::Tensor& exp_coeff, const at::Tensor& mean, const at::Tensor& id_basis,
    const at::Tensor& exp_basis, const c10::optional<at::Tensor>& vertex_ids) {
  const auto c = prepare_morphable_call("_morphable_reconstruct_backward", pose, id_coeff,
                                        exp_coeff, mean, id_basis, exp_basis, vertex_ids,
                                        c10::DeviceType::CUDA, &grad_vertices);
  const c10::cuda::CUDAGuard guard(pose.device());
  at::Tensor gp, gi, ge;
  if (alloc_morphable_grads(c, gp, gi, ge)) return {gp, gi, ge};
  if (pose.scalar_type() == at::kFloat)
    run_backward<float>(c, gp, gi, ge);
  else
    run_backward<double>(c, gp, gi, ge);
  return {gp, gi, ge};
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("morphable_reconstruct", &pf3d::morphable_reconstruct_cuda);
  m.impl("_morphable_reconstruct_backward", &pf3d::morphable_reconstruct_backward_cuda);
}
