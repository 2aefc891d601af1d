// Morphable-model reconstruction (torch-free).
//
// Shapes (row-major, contiguous):
//   pose        (B, 12)   [f*R | t] as a row-major 3x4 matrix (3DDFA convention)
//   id_coeff    (B, I)
//   exp_coeff   (B, E)
//   mean        (3N,)     interleaved x0, y0, z0, x1, ...
//   id_basis    (3N, I)   same interleaving of the rows
//   exp_basis   (3N, E)
//   vertex_ids  (M,)      int64 vertex indices in [0, N), or nullptr (then M = N)
//   vertices    (B, M, 3)
//
//   s_v = mean_v + A_id,v a_id + A_exp,v a_exp      (3-vector; rows 3v..3v+2)
//   x_v = P[:, :3] s_v + P[:, 3]
//
// Backward (g = dL/dvertices, (B, M, 3)):
//   grad_pose[b] = sum_v g_v [s_v^T, 1]     (3x4, row-major)
//   g_s,v        = (f R)^T g_v
//   grad_id      = A_id^T  g_s,   grad_exp = A_exp^T g_s
//
// The per-vertex math below is shared by the CPU and CUDA paths; the CPU batch
// functions (morphable.cpp) tile over vertices and vectorise over the batch.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace pf3d {
namespace morphable {

template <typename T>
struct Params {
  const T* pose = nullptr;        // (B, 12)
  const T* id_coeff = nullptr;    // (B, I)
  const T* exp_coeff = nullptr;   // (B, E)
  const T* mean = nullptr;        // (3N,)
  const T* id_basis = nullptr;    // (3N, I)
  const T* exp_basis = nullptr;   // (3N, E)
  const int64_t* vertex_ids = nullptr;  // (M,) or nullptr
  int64_t B = 0, I = 0, E = 0, N = 0, M = 0;
};

// Vertex index of output point m.
template <typename T>
PF3D_HD int64_t vertex_of(const Params<T>& p, int64_t m) {
  return p.vertex_ids ? p.vertex_ids[m] : m;
}

// s = mean_v + A_id,v a + A_exp,v e for batch element b (scalar reference path).
template <typename T>
PF3D_HD void shape_vertex(const Params<T>& p, int64_t b, int64_t v, T s[3]) {
  const T* a = p.id_coeff + b * p.I;
  const T* e = p.exp_coeff + b * p.E;
  for (int c = 0; c < 3; ++c) {
    const int64_t r = 3 * v + c;
    T acc = p.mean[r];
    const T* ri = p.id_basis + r * p.I;
    for (int64_t k = 0; k < p.I; ++k) acc += ri[k] * a[k];
    const T* re = p.exp_basis + r * p.E;
    for (int64_t k = 0; k < p.E; ++k) acc += re[k] * e[k];
    s[c] = acc;
  }
}

// out = P[:, :3] s + P[:, 3]   (P row-major 3x4)
template <typename T>
PF3D_HD void pose_apply(const T* P, const T s[3], T out[3]) {
  for (int i = 0; i < 3; ++i)
    out[i] = P[4 * i + 0] * s[0] + P[4 * i + 1] * s[1] + P[4 * i + 2] * s[2] + P[4 * i + 3];
}

// gs = P[:, :3]^T g
template <typename T>
PF3D_HD void pose_apply_transpose(const T* P, const T g[3], T gs[3]) {
  for (int j = 0; j < 3; ++j) gs[j] = P[j] * g[0] + P[4 + j] * g[1] + P[8 + j] * g[2];
}

// gp (3x4 row-major) += g [s^T, 1]
template <typename T>
PF3D_HD void pose_grad_accumulate(const T g[3], const T s[3], T gp[12]) {
  for (int i = 0; i < 3; ++i) {
    gp[4 * i + 0] += g[i] * s[0];
    gp[4 * i + 1] += g[i] * s[1];
    gp[4 * i + 2] += g[i] * s[2];
    gp[4 * i + 3] += g[i];
  }
}

// ---- CPU batch functions (morphable.cpp), T = float or double --------------
// vertex_ids must already be validated (in [0, N)). out: (B, M, 3).
template <typename T>
void forward_cpu(const Params<T>& p, T* out);

// grad_vertices (B, M, 3) -> grad_pose (B, 12), grad_id (B, I), grad_exp (B, E).
// Deterministic: vertices are reduced in fixed chunks that depend only on M.
template <typename T>
void backward_cpu(const Params<T>& p, const T* grad_vertices, T* grad_pose, T* grad_id,
                  T* grad_exp);

// Straightforward scalar versions (one vertex at a time; serial), used by the
// C++ tests to check the tiled/vectorised paths.
template <typename T>
void forward_naive(const Params<T>& p, T* out);
template <typename T>
void backward_naive(const Params<T>& p, const T* grad_vertices, T* grad_pose, T* grad_id,
                    T* grad_exp);

// Which vectorised CPU variant forward_cpu/backward_cpu use on this machine
// ("avx2+fma" or "sse2").
const char* cpu_variant();

}  // namespace morphable
}  // namespace pf3d
