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

template <typename T>
morphable::Params<T> make_params(const MorphableSizes& s, const at::Tensor& pose,
                                 const at::Tensor& idc, const at::Tensor& exc,
                                 const at::Tensor& mean, const at::Tensor& A,
                                 const at::Tensor& X, const at::Tensor& ids) {
  morphable::Params<T> p;
  p.pose = pose.data_ptr<T>();
  p.id_coeff = idc.data_ptr<T>();
  p.exp_coeff = exc.data_ptr<T>();
  p.mean = mean.data_ptr<T>();
  p.id_basis = A.data_ptr<T>();
  p.exp_basis = X.data_ptr<T>();
  p.vertex_ids = ids.defined() ? ids.data_ptr<int64_t>() : nullptr;
  p.B = s.B;
  p.I = s.I;
  p.E = s.E;
  p.N = s.N;
  p.M = s.M;
  return p;
}

at::Tensor morphable_reconstruct_cpu(const at::Tensor& pose, const at::Tensor& id_coeff,
                                     const at::Tensor& exp_coeff, const at::Tensor& mean,
                                     const at::Tensor& id_basis, const at::Tensor& exp_basis,
                                     const c10::optional<at::Tensor>& vertex_ids) {
  const char* op = "morphable_reconstruct";
  const auto s = check_morphable_inputs(op, pose, id_coeff, exp_coeff, mean, id_basis,
                                        exp_basis, vertex_ids, c10::DeviceType::CPU);
  at::Tensor out = at::empty({s.B, s.M, 3}, pose.options());
  if (s.B == 0 || s.M == 0) return out;
  const at::Tensor P = pose.contiguous(), a = id_coeff.contiguous(), e = exp_coeff.contiguous(),
                   mu = mean.contiguous(), A = id_basis.contiguous(),
                   X = exp_basis.contiguous(), ids = morphable_ids_int64(vertex_ids);
  AT_DISPATCH_FLOATING_TYPES(pose.scalar_type(), "morphable_reconstruct_cpu", [&] {
    auto p = make_params<scalar_t>(s, P, a, e, mu, A, X, ids);
    morphable::forward_cpu(p, out.data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> morphable_reconstruct_backward_cpu(
    const at::Tensor& grad_vertices, const at::Tensor& pose, const at::Tensor& id_coeff,
    const at::Tensor& exp_coeff, const at::Tensor& mean, const at::Tensor& id_basis,
    const at::Tensor& exp_basis, const c10::optional<at::Tensor>& vertex_ids) {
  const char* op = "_morphable_reconstruct_backward";
  const auto s = check_morphable_inputs(op, pose, id_coeff, exp_coeff, mean, id_basis,
                                        exp_basis, vertex_ids, c10::DeviceType::CPU,
                                        &grad_vertices);
  at::Tensor gp = at::empty({s.B, 3, 4}, pose.options());
  at::Tensor gi = at::empty({s.B, s.I}, pose.options());
  at::Tensor ge = at::empty({s.B, s.E}, pose.options());
  if (s.B == 0) return {gp, gi, ge};
  if (s.M == 0) return {gp.zero_(), gi.zero_(), ge.zero_()};
  const at::Tensor g = grad_vertices.contiguous(), P = pose.contiguous(),
                   a = id_coeff.contiguous(), e = exp_coeff.contiguous(),
                   mu = mean.contiguous(), A = id_basis.contiguous(),
                   X = exp_basis.contiguous(), ids = morphable_ids_int64(vertex_ids);
  AT_DISPATCH_FLOATING_TYPES(pose.scalar_type(), "morphable_reconstruct_backward_cpu", [&] {
    auto p = make_params<scalar_t>(s, P, a, e, mu, A, X, ids);
    morphable::backward_cpu(p, g.data_ptr<scalar_t>(), gp.data_ptr<scalar_t>(),
                            gi.data_ptr<scalar_t>(), ge.data_ptr<scalar_t>());
  });
  return {gp, gi, ge};
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CPU, m) {
  m.impl("morphable_reconstruct", &pf3d::morphable_reconstruct_cpu);
  m.impl("_morphable_reconstruct_backward", &pf3d::morphable_reconstruct_backward_cpu);
}
