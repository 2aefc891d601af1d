// Input checks of the morphable ops, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <tuple>

#include "kernels/morphable.h"

namespace pf3d {

struct MorphableSizes {
  int64_t B = 0, I = 0, E = 0, N = 0, M = 0;
};

// Checks dims, sizes, dtypes, devices (all on `device_type`, same device as
// `pose`) and the range of vertex_ids; returns the sizes. `op` names the op in
// the messages. When grad_vertices is given it must be (B, M, 3).
MorphableSizes check_morphable_inputs(const char* op, const at::Tensor& pose,
                                      const at::Tensor& id_coeff, const at::Tensor& exp_coeff,
                                      const at::Tensor& mean, const at::Tensor& id_basis,
                                      const at::Tensor& exp_basis,
                                      const c10::optional<at::Tensor>& vertex_ids,
                                      c10::DeviceType device_type,
                                      const at::Tensor* grad_vertices = nullptr);

// vertex_ids as a contiguous int64 tensor (undefined tensor when absent).
at::Tensor morphable_ids_int64(const c10::optional<at::Tensor>& vertex_ids);

// Checked, contiguous inputs of one call, shared by the CPU and CUDA ops.
struct MorphableCall {
  MorphableSizes s;
  at::Tensor pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, ids, grad;

  template <typename T>
  morphable::Params<T> params() const {
    morphable::Params<T> p;
    p.pose = pose.const_data_ptr<T>();
    p.id_coeff = id_coeff.const_data_ptr<T>();
    p.exp_coeff = exp_coeff.const_data_ptr<T>();
    p.mean = mean.const_data_ptr<T>();
    p.id_basis = id_basis.const_data_ptr<T>();
    p.exp_basis = exp_basis.const_data_ptr<T>();
    p.vertex_ids = ids.defined() ? ids.const_data_ptr<int64_t>() : nullptr;
    p.B = s.B;
    p.I = s.I;
    p.E = s.E;
    p.N = s.N;
    p.M = s.M;
    return p;
  }
};

// check_morphable_inputs, then the contiguous inputs (and grad_vertices).
MorphableCall prepare_morphable_call(const char* op, const at::Tensor& pose,
                                     const at::Tensor& id_coeff, const at::Tensor& exp_coeff,
                                     const at::Tensor& mean, const at::Tensor& id_basis,
                                     const at::Tensor& exp_basis,
                                     const c10::optional<at::Tensor>& vertex_ids,
                                     c10::DeviceType device_type,
                                     const at::Tensor* grad_vertices = nullptr);

// Gradient outputs (B,3,4), (B,I), (B,E). Returns true when nothing is left to
// compute (B == 0, or M == 0 and the gradients are zero-filled).
bool alloc_morphable_grads(const MorphableCall& c, at::Tensor& grad_pose, at::Tensor& grad_id,
                           at::Tensor& grad_exp);

}  // namespace pf3d
