// CPU implementation of the morphable ops: checks, allocation, calls into
// csrc/kernels/morphable (tiled over vertices, vectorised over the batch).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "kernels/morphable.h"
#include "ops/morphable.h"

namespace pf3d {
namespace {

at::Tensor morphable_reconstruct_cpu(const at::Tensor& pose, const at::Tensor& id_coeff,
                                     const at::Tensor& exp_coeff, const at::Tensor& mean,
                                     const at::Tensor& id_basis, const at::Tensor& exp_basis,
                                     const c10::optional<at::Tensor>& vertex_ids) {
  const auto c = prepare_morphable_call("morphable_reconstruct", pose, id_coeff, exp_coeff, mean,
                                        id_basis, exp_basis, vertex_ids, c10::DeviceType::CPU);
  at::Tensor out = at::empty({c.s.B, c.s.M, 3}, pose.options());
  if (c.s.B == 0 || c.s.M == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(pose.scalar_type(), "morphable_reconstruct_cpu", [&] {
    morphable::forward_cpu(c.params<scalar_t>(), out.mutable_data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> morphable_reconstruct_backward_cpu(
    const at::Tensor& grad_vertices, const at::Tensor& pose, const at::Tensor& id_coeff,
    const at::Tensor& exp_coeff, const at::Tensor& mean, const at::Tensor& id_basis,
    const at::Tensor& exp_basis, const c10::optional<at::Tensor>& vertex_ids) {
  const auto c = prepare_morphable_call("_morphable_reconstruct_backward", pose, id_coeff,
                                        exp_coeff, mean, id_basis, exp_basis, vertex_ids,
                                        c10::DeviceType::CPU, &grad_vertices);
  at::Tensor gp, gi, ge;
  if (alloc_morphable_grads(c, gp, gi, ge)) return {gp, gi, ge};
  AT_DISPATCH_FLOATING_TYPES(pose.scalar_type(), "morphable_reconstruct_backward_cpu", [&] {
    morphable::backward_cpu(c.params<scalar_t>(), c.grad.const_data_ptr<scalar_t>(),
                            gp.mutable_data_ptr<scalar_t>(), gi.mutable_data_ptr<scalar_t>(),
                            ge.mutable_data_ptr<scalar_t>());
  });
  return {gp, gi, ge};
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("morphable_reconstruct", &pf3d::morphable_reconstruct_cpu);
  m.impl("_morphable_reconstruct_backward", &pf3d::morphable_reconstruct_backward_cpu);
}
