// Schemas of the morphable ops and their input checks.
#include "ops/morphable.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/max.h>
#include <ATen/ops/min.h>
#include <torch/library.h>

#include "ops/checks.h"

#include <limits>

namespace pf3d {

MorphableSizes check_morphable_inputs(const char* op, const at::Tensor& pose,
                                      const at::Tensor& id_coeff, const at::Tensor& exp_coeff,
                                      const at::Tensor& mean, const at::Tensor& id_basis,
                                      const at::Tensor& exp_basis,
                                      const c10::optional<at::Tensor>& vertex_ids,
                                      c10::DeviceType device_type,
                                      const at::Tensor* grad_vertices) {
  MorphableSizes s;
  // devices
  check_device_type(op, "pose", pose, device_type);
  check_same_device(op, "id_coeff", id_coeff, "pose", pose);
  check_same_device(op, "exp_coeff", exp_coeff, "pose", pose);
  check_same_device(op, "mean", mean, "pose", pose);
  check_same_device(op, "id_basis", id_basis, "pose", pose);
  check_same_device(op, "exp_basis", exp_basis, "pose", pose);
  if (vertex_ids.has_value() && vertex_ids->defined())
    check_same_device(op, "vertex_ids", *vertex_ids, "pose", pose);
  if (grad_vertices) check_same_device(op, "grad_vertices", *grad_vertices, "pose", pose);
  // dtypes
  check_dtype(op, "pose", pose, {at::kFloat, at::kDouble});
  check_same_dtype(op, "id_coeff", id_coeff, "pose", pose);
  check_same_dtype(op, "exp_coeff", exp_coeff, "pose", pose);
  check_same_dtype(op, "mean", mean, "pose", pose);
  check_same_dtype(op, "id_basis", id_basis, "pose", pose);
  check_same_dtype(op, "exp_basis", exp_basis, "pose", pose);
  if (grad_vertices) check_same_dtype(op, "grad_vertices", *grad_vertices, "pose", pose);
  // shapes
  check_dim(op, "pose", pose, 3, "(B, 3, 4)");
  check_size(op, "pose", pose, 1, 3, "(B, 3, 4)");
  check_size(op, "pose", pose, 2, 4, "(B, 3, 4)");
  s.B = pose.size(0);
  check_dim(op, "mean", mean, 1, "(3N,)");
  TORCH_CHECK_VALUE(mean.size(0) % 3 == 0, "pyface3d.", op,
                    ": argument `mean` must have shape (3N,) (x0, y0, z0, x1, ...), got length ",
                    mean.size(0), " which is not a multiple of 3");
  s.N = mean.size(0) / 3;
  check_dim(op, "id_basis", id_basis, 2, "(3N, I)");
  check_size(op, "id_basis", id_basis, 0, 3 * s.N, "(3N, I) with 3N = len(mean)");
  check_dim(op, "exp_basis", exp_basis, 2, "(3N, E)");
  check_size(op, "exp_basis", exp_basis, 0, 3 * s.N, "(3N, E) with 3N = len(mean)");
  s.I = id_basis.size(1);
  s.E = exp_basis.size(1);
  check_dim(op, "id_coeff", id_coeff, 2, "(B, I)");
  check_size(op, "id_coeff", id_coeff, 0, s.B, "(B, I) with B = pose.size(0)");
  check_size(op, "id_coeff", id_coeff, 1, s.I, "(B, I) with I = id_basis.size(1)");
  check_dim(op, "exp_coeff", exp_coeff, 2, "(B, E)");
  check_size(op, "exp_coeff", exp_coeff, 0, s.B, "(B, E) with B = pose.size(0)");
  check_size(op, "exp_coeff", exp_coeff, 1, s.E, "(B, E) with E = exp_basis.size(1)");
  s.M = s.N;
  if (vertex_ids.has_value() && vertex_ids->defined()) {
    const at::Tensor& ids = *vertex_ids;
    check_dtype(op, "vertex_ids", ids, {at::kLong, at::kInt});
    check_dim(op, "vertex_ids", ids, 1, "(M,)");
    s.M = ids.size(0);
    if (s.M > 0) {
      const int64_t lo = ids.min().item<int64_t>();
      const int64_t hi = ids.max().item<int64_t>();
      TORCH_CHECK_INDEX(lo >= 0 && hi < s.N, "pyface3d.", op,
                        ": argument `vertex_ids` must hold vertex indices in [0, ", s.N,
                        ") (N = len(mean) / 3), got values in [", lo, ", ", hi, "]");
    }
  }
  if (grad_vertices) {
    check_dim(op, "grad_vertices", *grad_vertices, 3, "(B, M, 3)");
    check_size(op, "grad_vertices", *grad_vertices, 0, s.B, "(B, M, 3)");
    check_size(op, "grad_vertices", *grad_vertices, 1, s.M, "(B, M, 3)");
    check_size(op, "grad_vertices", *grad_vertices, 2, 3, "(B, M, 3)");
  }
  // the kernels index with int64; the CUDA grid needs tiles < 2^31
  check_numel_fits(op, "the bases", 3 * s.N, s.I + s.E + 1, 1, 1,
                   std::numeric_limits<int64_t>::max() / 8);
  check_numel_fits(op, "the output", s.B, s.M, 3, 1, std::numeric_limits<int64_t>::max() / 8);
  return s;
}

at::Tensor morphable_ids_int64(const c10::optional<at::Tensor>& vertex_ids) {
  if (!vertex_ids.has_value() || !vertex_ids->defined()) return at::Tensor();
  return vertex_ids->to(at::kLong).contiguous();
}

MorphableCall prepare_morphable_call(const char* op, const at::Tensor& pose,
                                     const at::Tensor& id_coeff, const at::Tensor& exp_coeff,
                                     const at::Tensor& mean, const at::Tensor& id_basis,
                                     const at::Tensor& exp_basis,
                                     const c10::optional<at::Tensor>& vertex_ids,
                                     c10::DeviceType device_type,
                                     const at::Tensor* grad_vertices) {
  MorphableCall c;
  c.s = check_morphable_inputs(op, pose, id_coeff, exp_coeff, mean, id_basis, exp_basis,
                               vertex_ids, device_type, grad_vertices);
  c.pose = pose.contiguous();
  c.id_coeff = id_coeff.contiguous();
  c.exp_coeff = exp_coeff.contiguous();
  c.mean = mean.contiguous();
  c.id_basis = id_basis.contiguous();
  c.exp_basis = exp_basis.contiguous();
  c.ids = morphable_ids_int64(vertex_ids);
  if (grad_vertices) c.grad = grad_vertices->contiguous();
  return c;
}

bool alloc_morphable_grads(const MorphableCall& c, at::Tensor& grad_pose, at::Tensor& grad_id,
                           at::Tensor& grad_exp) {
  grad_pose = at::empty({c.s.B, 3, 4}, c.pose.options());
  grad_id = at::empty({c.s.B, c.s.I}, c.pose.options());
  grad_exp = at::empty({c.s.B, c.s.E}, c.pose.options());
  if (c.s.B == 0) return true;
  if (c.s.M == 0) {
    grad_pose.zero_();
    grad_id.zero_();
    grad_exp.zero_();
    return true;
  }
  return false;
}

}  // namespace pf3d

TORCH_LIBRARY_FRAGMENT(pyface3d, m) {
  m.def(
      "morphable_reconstruct(Tensor pose, Tensor id_coeff, Tensor exp_coeff, Tensor mean, "
      "Tensor id_basis, Tensor exp_basis, Tensor? vertex_ids=None) -> Tensor");
  m.def(
      "_morphable_reconstruct_backward(Tensor grad_vertices, Tensor pose, Tensor id_coeff, "
      "Tensor exp_coeff, Tensor mean, Tensor id_basis, Tensor exp_basis, Tensor? vertex_ids) "
      "-> (Tensor, Tensor, Tensor)");
}
