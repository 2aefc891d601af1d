// Input checks shared by every op: each message names the op and the argument.
//
// Error kinds (mapped to Python exceptions by torch):
//   shape / value problems  -> TORCH_CHECK_VALUE  -> ValueError
//   dtype problems          -> TORCH_CHECK_TYPE   -> TypeError
//   out-of-range indices    -> TORCH_CHECK_INDEX  -> IndexError
//   device problems         -> TORCH_CHECK        -> RuntimeError
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

namespace pf3d {

inline std::string dtype_list(std::initializer_list<c10::ScalarType> ok) {
  std::string s;
  for (auto t : ok) {
    if (!s.empty()) s += ", ";
    s += c10::toString(t);
  }
  return s;
}

inline void check_dtype(const char* op, const char* name, const at::Tensor& t,
                        std::initializer_list<c10::ScalarType> ok) {
  for (auto d : ok)
    if (t.scalar_type() == d) return;
  TORCH_CHECK_TYPE(false, "pyface3d.", op, ": argument `", name, "` must have dtype in {",
                   dtype_list(ok), "}, got ", t.scalar_type());
}

inline void check_same_dtype(const char* op, const char* name, const at::Tensor& t,
                             const char* ref_name, const at::Tensor& ref) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), "pyface3d.", op, ": argument `", name,
                   "` must have the same dtype as `", ref_name, "` (", ref.scalar_type(),
                   "), got ", t.scalar_type());
}

inline void check_dim(const char* op, const char* name, const at::Tensor& t, int64_t dim,
                      const char* shape_doc) {
  TORCH_CHECK_VALUE(t.dim() == dim, "pyface3d.", op, ": argument `", name, "` must have shape ",
                    shape_doc, " (", dim, " dims), got shape ", t.sizes());
}

inline void check_size(const char* op, const char* name, const at::Tensor& t, int64_t d,
                       int64_t expected, const char* shape_doc) {
  TORCH_CHECK_VALUE(t.size(d) == expected, "pyface3d.", op, ": argument `", name,
                    "` must have shape ", shape_doc, " with size ", expected, " in dim ", d,
                    ", got shape ", t.sizes());
}

inline void check_same_device(const char* op, const char* name, const at::Tensor& t,
                              const char* ref_name, const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), "pyface3d.", op, ": argument `", name,
              "` must be on the same device as `", ref_name, "` (", ref.device(), "), got ",
              t.device());
}

inline void check_device_type(const char* op, const char* name, const at::Tensor& t,
                              c10::DeviceType type) {
  TORCH_CHECK(t.device().type() == type, "pyface3d.", op, ": argument `", name,
              "` must be a ", c10::DeviceTypeName(type), " tensor here, got ", t.device());
}

inline void check_positive(const char* op, const char* name, double v) {
  TORCH_CHECK_VALUE(std::isfinite(v) && v > 0, "pyface3d.", op, ": argument `", name,
                    "` must be finite and > 0, got ", v);
}

// Guards products of sizes that kernels index with int64 / int32.
inline void check_numel_fits(const char* op, const char* what, int64_t a, int64_t b,
                             int64_t c = 1, int64_t d = 1,
                             int64_t limit = std::numeric_limits<int32_t>::max()) {
  __int128 n = (__int128)a * b * c * d;
  TORCH_CHECK_VALUE(n <= (__int128)limit, "pyface3d.", op, ": ", what, " has ", (long long)a,
                    "x", (long long)b, "x", (long long)c, "x", (long long)d,
                    " elements, more than this op supports (", (long long)limit, ")");
}

}  // namespace pf3d
