// Triangle rasterizer and attribute interpolation: torch-free math shared by
// the CPU kernels (raster.cpp) and the CUDA kernels (cuda/raster.cu).
//
// Shapes (row-major, contiguous):
//   vertices   (B, N, 3)  image pixel coordinates: x right, y down, z toward the
//                         camera (LARGER z is NEARER); pixel centres are integers.
//   triangles  (F, 3)     int32 vertex indices (checked in range by the op).
//   face_index (B, H, W)  int32, -1 on background.
//   bary       (B, H, W, 3), depth (B, H, W): 0 on background.
//   Output pixel (i, j) samples the image point (x0 + j, y0 + i).
//
// Exactness rules (identical on CPU and CUDA, and in the torch reference):
//   * all geometry is evaluated in float64 (float32 inputs are widened exactly);
//   * an edge function is always evaluated with its two end points in a
//     canonical order (by (y, x)), and only then multiplied by +-1, so the two
//     triangles sharing an edge see exactly opposite values;
//   * a centre is covered when every normalised edge function is > 0, or == 0
//     on a top-left edge (edge direction d in the normalised winding:
//     d.y < 0, or d.y == 0 and d.x > 0), and their sum is > 0;
//   * every multiply/add is rounded separately (no FMA contraction: CUDA uses
//     the __d*_rn intrinsics), so CPU, CUDA and the reference agree bit for bit;
//   * depth = b0*z0 + b1*z1 + b2*z2 (float64) rounded to the output dtype; the
//     z-test compares that rounded value (-0 is normalised to +0); exact ties go
//     to the smaller face index.
#pragma once

#include <cstdint>
#include <cmath>

#include "kernels/common.h"

namespace pf3d {
namespace raster {

struct RasterParams {
  int64_t B;   // batch
  int64_t N;   // vertices per batch element
  int64_t F;   // triangles
  int64_t H;   // window height
  int64_t W;   // window width
  int64_t x0;  // image x of window column 0
  int64_t y0;  // image y of window row 0
};

struct InterpParams {
  int64_t B;      // batch of face_index / bary
  int64_t HW;     // pixels per batch element
  int64_t C;      // channels
  int64_t N;      // vertices
  int64_t F;      // triangles
  bool broadcast; // attributes (1, N, C) shared by the whole batch
};

// ---- correctly rounded primitives (no contraction on the device) ----------
#if defined(__CUDA_ARCH__)
PF3D_HD double dmul(double a, double b) { return __dmul_rn(a, b); }
PF3D_HD double dadd(double a, double b) { return __dadd_rn(a, b); }
PF3D_HD double dsub(double a, double b) { return __dsub_rn(a, b); }
PF3D_HD double ddiv(double a, double b) { return __ddiv_rn(a, b); }
#else
PF3D_HD double dmul(double a, double b) { return a * b; }
PF3D_HD double dadd(double a, double b) { return a + b; }
PF3D_HD double dsub(double a, double b) { return a - b; }
PF3D_HD double ddiv(double a, double b) { return a / b; }
#endif

PF3D_HD bool finite3(double a, double b, double c) {
  // a - a is 0 for finite a and NaN for inf/NaN.
  return (a - a) == 0.0 && (b - b) == 0.0 && (c - c) == 0.0;
}

// Range of pixel-centre indices [c, f] (window relative) spanned by one
// coordinate u = (vertex coordinate - window origin), clamped to [-1, n].
// c = ceil(u), f = floor(u) up to rounding that can only widen the range by
// one (the exact edge tests decide coverage). NaN u is treated as -1; such
// vertices are rejected later by tri_setup. Never converts a NaN/Inf to int.
// (n <= 2^30 is checked by the op, so v fits int32.)
PF3D_HD void centre_range(double u, int64_t n, int32_t& c, int32_t& f) {
  // branch-free (vectorisable): NaN -> -1 by the first select
  u = (u >= -1.0) ? u : -1.0;
  u = (u <= (double)n) ? u : (double)n;
  const double v = u + 1.0;                 // in [0, n + 1]
  const int32_t t = (int32_t)v;             // floor(v), v >= 0
  f = t - 1;
  c = t - 1 + ((double)t < v ? 1 : 0);
}

// Per-triangle setup: normalised edge functions w_k (k = edge opposite vertex k)
//   w_k(p) = sdx_k * (p.y - ly_k) - sdy_k * (p.x - lx_k)
struct TriSetup {
  double lx[3], ly[3], sdx[3], sdy[3];
  double z[3];
  bool incl[3];
};

// Returns false for triangles that cover nothing: a non-finite coordinate
// (x, y or z) or zero area.
template <typename T>
PF3D_HD bool tri_setup(const T* v0, const T* v1, const T* v2, TriSetup& t) {
  const double x[3] = {(double)v0[0], (double)v1[0], (double)v2[0]};
  const double y[3] = {(double)v0[1], (double)v1[1], (double)v2[1]};
  const double z[3] = {(double)v0[2], (double)v1[2], (double)v2[2]};
  if (!(finite3(x[0], x[1], x[2]) && finite3(y[0], y[1], y[2]) && finite3(z[0], z[1], z[2])))
    return false;
  const double area = dsub(dmul(dsub(x[1], x[0]), dsub(y[2], y[0])),
                           dmul(dsub(y[1], y[0]), dsub(x[2], x[0])));
  if (!(area != 0.0) || !(area - area == 0.0)) return false;
  const double orient = area > 0.0 ? 1.0 : -1.0;
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    const int a = k == 2 ? 0 : k + 1;
    const int b = k == 0 ? 2 : k - 1;
    // edge a -> b; canonical order: lo = smaller (y, x)
    const bool ab = (y[a] < y[b]) || (y[a] == y[b] && x[a] < x[b]);
    const int lo = ab ? a : b;
    const int hi = ab ? b : a;
    const double s = ab ? orient : -orient;
    const double dx = dsub(x[hi], x[lo]);
    const double dy = dsub(y[hi], y[lo]);
    t.lx[k] = x[lo];
    t.ly[k] = y[lo];
    t.sdx[k] = s * dx;  // exact (s = +-1)
    t.sdy[k] = s * dy;
    t.incl[k] = t.sdy[k] < 0.0 || (t.sdy[k] == 0.0 && t.sdx[k] > 0.0);
    t.z[k] = z[k];
  }
  return true;
}

PF3D_HD bool edge_ok(double w, bool incl) { return w > 0.0 || (w == 0.0 && incl); }

// Coverage of the centre (px, py) and, when covered, barycentrics and depth
// (float64). Used by pass 1 (z-test) and by the CUDA resolve pass, so the
// winning face's values are bit-identical wherever they are computed.
PF3D_HD bool tri_eval(const TriSetup& t, double px, double py, double b[3], double& z) {
  double w[3];
#pragma unroll
  for (int k = 0; k < 3; ++k)
    w[k] = dsub(dmul(t.sdx[k], dsub(py, t.ly[k])), dmul(t.sdy[k], dsub(px, t.lx[k])));
  const double sum = dadd(dadd(w[0], w[1]), w[2]);
  // non-short-circuit: one branch instead of four
  if (!(edge_ok(w[0], t.incl[0]) & edge_ok(w[1], t.incl[1]) & edge_ok(w[2], t.incl[2]) &
        (sum > 0.0)))
    return false;
  b[0] = ddiv(w[0], sum);
  b[1] = ddiv(w[1], sum);
  b[2] = ddiv(w[2], sum);
  z = dadd(dadd(dmul(b[0], t.z[0]), dmul(b[1], t.z[1])), dmul(b[2], t.z[2]));
  return true;
}

// Depth as stored and compared: rounded to the output dtype, -0 -> +0.
template <typename T>
PF3D_HD T depth_value(double z) {
  T zt = (T)z;
  if (zt == (T)0) zt = (T)0;
  return zt;
}

// ---- CPU batch functions (raster.cpp) -------------------------------------
// rasterize_cpu writes all three outputs (every pixel).
template <typename T>
void rasterize_cpu(const T* vertices, const int32_t* triangles, const RasterParams& p,
                   int32_t* face_index, T* bary, T* depth);

// out (B, HW, C): sum_k bary_k * attr[tri[f, k]]; 0 where face < 0.
template <typename T>
void interpolate_cpu(const T* attributes, const int32_t* face_index, const T* bary,
                     const int32_t* triangles, const InterpParams& p, T* out);

// grad_attributes ((broadcast ? 1 : B), N, C), overwritten. Deterministic: the
// summation order does not depend on the number of threads.
template <typename T>
void interpolate_backward_cpu(const T* grad, const int32_t* face_index, const T* bary,
                              const int32_t* triangles, const InterpParams& p,
                              T* grad_attributes);

}  // namespace raster
}  // namespace pf3d
