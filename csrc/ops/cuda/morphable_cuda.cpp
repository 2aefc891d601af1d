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
morphable::Params<T> make_params(const MorphableSizes& s, const at::Tensor& pose,
                                 const at::Tensor& idc, const at::Tensor& exc,
                                 const at::Tensor& mean, const at::Tensor& A,
                                 const at::Tensor& X, const at::Tensor& ids) {
  morphable::Params<T> p;
  p.pose = pose.const_data_ptr<T>();
  p.id_coeff = idc.const_data_ptr<T>();
  p.exp_coeff = exc.const_data_ptr<T>();
  p.mean = mean.const_data_ptr<T>();
  p.id_basis = A.const_data_ptr<T>();
  p.exp_basis = X.const_data_ptr<T>();
  p.vertex_ids = ids.defined() ? ids.const_data_ptr<int64_t>() : nullptr;
  p.B = s.B;
  p.I = s.I;
  p.E = s.E;
  p.N = s.N;
  p.M = s.M;
  return p;
}

at::Tensor morphable_reconstruct_cuda(const at::Tensor& pose, const at::Tensor& id_coeff,
                                      const at::Tensor& exp_coeff, const at::Tensor& mean,
                                      const at::Tensor& id_basis, const at::Tensor& exp_basis,
                                      const c10::optional<at::Tensor>& vertex_ids) {
  const char* op = "morphable_reconstruct";
  const auto s = check_morphable_inputs(op, pose, id_coeff, exp_coeff, mean, id_basis,
                                        exp_basis, vertex_ids, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(pose.device());
  at::Tensor out = at::empty({s.B, s.M, 3}, pose.options());
  if (s.B == 0 || s.M == 0) return out;
  const at::Tensor P = pose.contiguous(), a = id_coeff.contiguous(), e = exp_coeff.contiguous(),
                   mu = mean.contiguous(), A = id_basis.contiguous(),
                   X = exp_basis.contiguous(), ids = morphable_ids_int64(vertex_ids);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (pose.scalar_type() == at::kFloat) {
    auto p = make_params<float>(s, P, a, e, mu, A, X, ids);
    C10_CUDA_CHECK(morphable::forward_cuda(p, out.mutable_data_ptr<float>(), stream));
  } else {
    auto p = make_params<double>(s, P, a, e, mu, A, X, ids);
    C10_CUDA_CHECK(morphable::forward_cuda(p, out.mutable_data_ptr<double>(), stream));
  }
  return out;
}

template <typename T>
void run_backward(const MorphableSizes& s, const at::Tensor& g, const at::Tensor& P,
                  const at::Tensor& a, const at::Tensor& e, const at::Tensor& mu,
                  const at::Tensor& A, const at::Tensor& X, const at::Tensor& ids,
                  at::Tensor& gp, at::Tensor& gi, at::Tensor& ge) {
  auto p = make_params<T>(s, P, a, e, mu, A, X, ids);
  const size_t bytes = morphable::backward_cuda_workspace_bytes(p);
  at::Tensor ws = at::empty({(int64_t)std::max<size_t>(bytes, 1)}, P.options().dtype(at::kByte));
  C10_CUDA_CHECK(morphable::backward_cuda(
      p, g.const_data_ptr<T>(), gp.mutable_data_ptr<T>(), gi.mutable_data_ptr<T>(),
      ge.mutable_data_ptr<T>(), ws.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> morphable_reconstruct_backward_cuda(
    const at::Tensor& grad_vertices, const at::Tensor& pose, const at::Tensor& id_coeff,
    const at::Tensor& exp_coeff, const at::Tensor& mean, const at::Tensor& id_basis,
    const at::Tensor& exp_basis, const c10::optional<at::Tensor>& vertex_ids) {
  const char* op = "_morphable_reconstruct_backward";
  const auto s = check_morphable_inputs(op, pose, id_coeff, exp_coeff, mean, id_basis,
                                        exp_basis, vertex_ids, c10::DeviceType::CUDA,
                                        &grad_vertices);
  const c10::cuda::CUDAGuard guard(pose.device());
  at::Tensor gp = at::empty({s.B, 3, 4}, pose.options());
  at::Tensor gi = at::empty({s.B, s.I}, pose.options());
  at::Tensor ge = at::empty({s.B, s.E}, pose.options());
  if (s.B == 0) return {gp, gi, ge};
  const at::Tensor g = grad_vertices.contiguous(), P = pose.contiguous(),
                   a = id_coeff.contiguous(), e = exp_coeff.contiguous(),
                   mu = mean.contiguous(), A = id_basis.contiguous(),
                   X = exp_basis.contiguous(), ids = morphable_ids_int64(vertex_ids);
  if (pose.scalar_type() == at::kFloat)
    run_backward<float>(s, g, P, a, e, mu, A, X, ids, gp, gi, ge);
  else
    run_backward<double>(s, g, P, a, e, mu, A, X, ids, gp, gi, ge);
  return {gp, gi, ge};
}

}  // namespace
}  // namespace pf3d

TORCH_LIBRARY_IMPL(pyface3d, CUDA, m) {
  m.impl("morphable_reconstruct", &pf3d::morphable_reconstruct_cuda);
  m.impl("_morphable_reconstruct_backward", &pf3d::morphable_reconstruct_backward_cuda);
}
