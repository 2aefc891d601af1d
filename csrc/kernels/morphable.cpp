// CPU batch functions of the morphable kernels (torch-free). See morphable.h.
//
// The vectorised code lives in morphable_cpu_impl.inc and is compiled twice on
// x86-64 with GCC: once for the baseline ISA (SSE2, 16-byte vectors) and once
// with `#pragma GCC target("avx2,fma")` (32-byte vectors, FMA); the variant is
// picked at run time with __builtin_cpu_supports. Elsewhere (other compilers,
// other architectures) only the baseline variant is built (16-byte GCC/Clang
// vectors map to NEON on aarch64).
#include "kernels/morphable.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define PF3D_MM_HAVE_AVX2_VARIANT 1
#else
#define PF3D_MM_HAVE_AVX2_VARIANT 0
#endif

namespace pf3d {
namespace morphable {
namespace {

namespace base {
#define PF3D_MM_VBYTES 16
#define PF3D_MM_FMA 0
#include "kernels/morphable_cpu_impl.inc"
#undef PF3D_MM_VBYTES
#undef PF3D_MM_FMA
}  // namespace base

#if PF3D_MM_HAVE_AVX2_VARIANT
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define PF3D_MM_VBYTES 32
#define PF3D_MM_FMA 1
#include "kernels/morphable_cpu_impl.inc"
#undef PF3D_MM_VBYTES
#undef PF3D_MM_FMA
}  // namespace avx2
#pragma GCC pop_options

bool use_avx2() {
#if defined(PF3D_MM_FORCE_BASELINE)  // for testing the baseline variant
  return false;
#endif
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
}
#else
bool use_avx2() { return false; }
#endif

}  // namespace

const char* cpu_variant() { return use_avx2() ? "avx2+fma" : "baseline"; }

template <typename T>
void forward_cpu(const Params<T>& p, T* out) {
#if PF3D_MM_HAVE_AVX2_VARIANT
  if (use_avx2()) return avx2::forward(p, out);
#endif
  base::forward(p, out);
}

template <typename T>
void backward_cpu(const Params<T>& p, const T* grad_vertices, T* grad_pose, T* grad_id,
                  T* grad_exp) {
#if PF3D_MM_HAVE_AVX2_VARIANT
  if (use_avx2()) return avx2::backward(p, grad_vertices, grad_pose, grad_id, grad_exp);
#endif
  base::backward(p, grad_vertices, grad_pose, grad_id, grad_exp);
}

template <typename T>
void forward_naive(const Params<T>& p, T* out) {
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t m = 0; m < p.M; ++m) {
      T s[3];
      shape_vertex(p, b, vertex_of(p, m), s);
      pose_apply(p.pose + 12 * b, s, out + (b * p.M + m) * 3);
    }
}

template <typename T>
void backward_naive(const Params<T>& p, const T* g, T* gpose, T* gid, T* gexp) {
  std::fill(gpose, gpose + 12 * p.B, T(0));
  std::fill(gid, gid + p.I * p.B, T(0));
  std::fill(gexp, gexp + p.E * p.B, T(0));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t m = 0; m < p.M; ++m) {
      const int64_t v = vertex_of(p, m);
      T s[3], gs[3];
      shape_vertex(p, b, v, s);
      const T* gv = g + (b * p.M + m) * 3;
      const T gg[3] = {gv[0], gv[1], gv[2]};
      pose_grad_accumulate(gg, s, gpose + 12 * b);
      pose_apply_transpose(p.pose + 12 * b, gg, gs);
      for (int c = 0; c < 3; ++c) {
        const T* ri = p.id_basis + (3 * v + c) * p.I;
        for (int64_t k = 0; k < p.I; ++k) gid[b * p.I + k] += ri[k] * gs[c];
        const T* re = p.exp_basis + (3 * v + c) * p.E;
        for (int64_t k = 0; k < p.E; ++k) gexp[b * p.E + k] += re[k] * gs[c];
      }
    }
}

#define PF3D_MM_INSTANTIATE(T)                                                             \
  template void forward_cpu<T>(const Params<T>&, T*);                                      \
  template void backward_cpu<T>(const Params<T>&, const T*, T*, T*, T*);                   \
  template void forward_naive<T>(const Params<T>&, T*);                                    \
  template void backward_naive<T>(const Params<T>&, const T*, T*, T*, T*);
PF3D_MM_INSTANTIATE(float)
PF3D_MM_INSTANTIATE(double)
#undef PF3D_MM_INSTANTIATE

}  // namespace morphable
}  // namespace pf3d
