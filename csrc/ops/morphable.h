// Input checks of the morphable ops, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Optional.h>

#include <cstdint>

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

}  // namespace pf3d
