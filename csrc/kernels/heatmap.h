// Landmark heatmaps: encode (points -> Gaussian maps), decode (argmax with
// optional quarter-offset or DARK refinement) and soft-argmax. Torch-free
// per-map math shared by the CPU and CUDA paths, and the CPU batch functions.
//
// Shapes (documented once here):
//   points      (B, K, 2)     (x, y) in heatmap pixels, pixel centres at integers
//   visible     (B, K)        uint8 0/1 (nullptr: all visible)
//   heatmaps    (B, K, H, W)  row-major, contiguous
//   coords      (B, K, 2)     (x, y)
//   scores      (B, K)
//   weight      (B, K)        float 0/1
// "maps" below is B * K; every map is processed independently.
//
// Encode: value(x, y) = gx(x) * gy(y),  g(d) = exp(-d^2 / (2 sigma^2)) when
//   |d| <= 3 sigma, else 0 (square truncation window). Centre c = (px, py) when
//   unbiased, (floor(px + 0.5), floor(py + 0.5)) otherwise. A map is all zero
//   (weight 0) when the point is invisible, not finite, or its rounded centre
//   lies outside [0, W-1] x [0, H-1]. The rounding and the window test are done
//   in double precision.
//
// Decode argmax: the first maximum in row-major order; NaN compares smaller
//   than every number (including -inf); an all-NaN map gives index 0 (coords
//   (0, 0)) and score NaN. The score is the map value at the argmax.
// Quarter: x += 0.25 * sign(m[y, x+1] - m[y, x-1]) when 0 < x < W-1 (sign of
//   NaN or 0 is 0); the same for y.
// DARK (Zhang et al. 2020): blur the map with a k x k Gaussian (sigma =
//   0.3 * ((k - 1) / 2 - 1) + 0.8, weights normalised to sum 1, border
//   reflect-101), L = log(max(blur, 1e-10)) (NaN stays NaN); at the argmax
//   (px, py) of the original map, when 1 < px < W-2 and 1 < py < H-2, take the
//   central-difference gradient and Hessian of L, offset = -H^-1 g when det(H)
//   is finite and non-zero and the offset is not NaN, each component clipped
//   to [-1, 1]. Only the 13 blurred values the differences use are computed.
//
// Soft-argmax: p = softmax(beta * m) over the map, coords = (sum p x, sum p y).
//   Backward: dL/dm[y,x] = beta * p * (gx * (x - cx) + gy * (y - cy)).
#pragma once

#include <cstdint>
#include <cstring>
#include <cmath>

#include "kernels/common.h"

namespace pf3d {
namespace heatmap {

enum class DType : int { kHalf = 0, kFloat = 1, kDouble = 2 };
enum Refine : int { kRefineNone = 0, kRefineQuarter = 1, kRefineDark = 2 };

// Largest DARK blur kernel (the blur of the 13 needed values costs 13 k^2).
constexpr int kMaxBlurKernel = 255;
// Lower clamp of the blurred map before the log (DARK).
constexpr double kDarkEps = 1e-10;

struct EncodeParams {
  int64_t maps = 0;  // B * K
  int64_t height = 0;
  int64_t width = 0;
  double sigma = 1.0;
  bool unbiased = true;
};

struct DecodeParams {
  int64_t maps = 0;
  int64_t height = 0;
  int64_t width = 0;
  int refine = kRefineNone;
};

// Normalised 1-D Gaussian weights of the DARK blur (passed by value to CUDA).
struct DarkWeights {
  int radius = 0;  // k = 2 * radius + 1
  double w[kMaxBlurKernel];
};

struct SoftArgmaxParams {
  int64_t maps = 0;
  int64_t height = 0;
  int64_t width = 0;
  double beta = 1.0;
};

// ------------------------------------------------------------- helpers ----
PF3D_HD bool is_nan(double v) { return v != v; }
PF3D_HD bool is_finite(double v) { return v - v == 0.0; }

// Reflect-101 border (OpenCV BORDER_REFLECT_101, repeated for any offset):
// ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
PF3D_HD int64_t reflect101(int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i >= n ? period - i : i;
}

// ------------------------------------------------------------- encode -----
// Centre of one map; false when the map is empty (weight 0).
PF3D_HD bool encode_center(double px, double py, bool visible, int64_t H, int64_t W,
                           bool unbiased, double* cx, double* cy) {
  if (!visible || !is_finite(px) || !is_finite(py)) return false;
  const double rx = floor(px + 0.5), ry = floor(py + 0.5);
  if (!(rx >= 0.0 && rx <= double(W - 1) && ry >= 0.0 && ry <= double(H - 1))) return false;
  *cx = unbiased ? px : rx;
  *cy = unbiased ? py : ry;
  return true;
}

// True when pixel coordinate i is inside the truncation window of centre c.
PF3D_HD bool encode_inside(double i, double c, double sigma) {
  return fabs(i - c) <= 3.0 * sigma;
}

// ------------------------------------------------------------- decode -----
// Quarter-pixel step from the two neighbours: +-0.25, or 0 for a tie or NaN.
template <typename A>
PF3D_HD A quarter_step(A left, A right) {
  const A d = right - left;
  return d > A(0) ? A(0.25) : (d < A(0) ? A(-0.25) : A(0));
}

PF3D_HD double dark_sigma(int k) { return 0.3 * ((k - 1) * 0.5 - 1.0) + 0.8; }

inline void dark_weights(int k, DarkWeights* out) {
  const int r = (k - 1) / 2;
  const double s = dark_sigma(k);
  double sum = 0.0;
  for (int t = -r; t <= r; ++t) {
    out->w[t + r] = std::exp(-double(t) * t / (2.0 * s * s));
    sum += out->w[t + r];
  }
  for (int i = 0; i < k; ++i) out->w[i] /= sum;
  out->radius = r;
}

// The 13 points (dy, dx) around the argmax whose log-blur DARK needs, in order:
// centre, x-1, x+1, x-2, x+2, y-1, y+1, y-2, y+2, (+1,+1), (-1,+1), (+1,-1), (-1,-1).
PF3D_HD void dark_point(int j, int* dy, int* dx) {
  const signed char t[13][2] = {{0, 0},  {0, -1}, {0, 1},  {0, -2}, {0, 2},
                                {-1, 0}, {1, 0},  {-2, 0}, {2, 0},  {1, 1},
                                {-1, 1}, {1, -1}, {-1, -1}};
  *dy = t[j][0];
  *dx = t[j][1];
}

// log(max(blur(map)[yy, xx], 1e-10)) with the separable reflect-101 blur
// (horizontal pass first, then vertical, as the reference). `load` converts
// one element to double.
template <typename T, typename Load>
PF3D_HD double dark_logblur(const T* map, int64_t H, int64_t W, int64_t yy, int64_t xx,
                            const DarkWeights& w, Load load) {
  const int r = w.radius;
  double acc = 0.0;
  for (int t = -r; t <= r; ++t) {
    const T* row = map + reflect101(yy + t, H) * W;
    double racc = 0.0;
    if (xx - r >= 0 && xx + r < W) {
      const T* p = row + xx - r;
      for (int s = 0; s <= 2 * r; ++s) racc += w.w[s] * load(p[s]);
    } else {
      for (int s = -r; s <= r; ++s) racc += w.w[s + r] * load(row[reflect101(xx + s, W)]);
    }
    acc += w.w[t + r] * racc;
  }
  if (is_nan(acc)) return acc;
  return log(acc > kDarkEps ? acc : kDarkEps);
}

// DARK offset from the 13 log-blur values (order of dark_point). Returns false
// (offset 0) when the Hessian is singular / not finite or the offset is NaN.
PF3D_HD bool dark_solve(const double* L, double* ox, double* oy) {
  *ox = 0.0;
  *oy = 0.0;
  const double dx = 0.5 * (L[2] - L[1]);
  const double dy = 0.5 * (L[6] - L[5]);
  const double dxx = 0.25 * (L[4] - 2.0 * L[0] + L[3]);
  const double dyy = 0.25 * (L[8] - 2.0 * L[0] + L[7]);
  const double dxy = 0.25 * (L[9] - L[10] - L[11] + L[12]);
  const double det = dxx * dyy - dxy * dxy;
  if (!(det != 0.0) || !is_finite(det)) return false;
  double a = -(dyy * dx - dxy * dy) / det;
  double b = -(dxx * dy - dxy * dx) / det;
  if (is_nan(a) || is_nan(b)) return false;
  *ox = a < -1.0 ? -1.0 : (a > 1.0 ? 1.0 : a);
  *oy = b < -1.0 ? -1.0 : (b > 1.0 ? 1.0 : b);
  return true;
}

// True when the DARK window (+-2 pixels) fits around (px, py).
PF3D_HD bool dark_applies(int64_t px, int64_t py, int64_t H, int64_t W) {
  return px > 1 && px < W - 2 && py > 1 && py < H - 2;
}

// Argmax order: is (va, ia) before (vb, ib)? NaN is smaller than any number;
// ties go to the smaller index.
template <typename A>
PF3D_HD bool argmax_better(A va, int64_t ia, A vb, int64_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na != nb) return nb;  // the non-NaN one wins
  if (!na && va != vb) return va > vb;
  return ia < ib;
}

// ------------------------------------------------------- half on the CPU ---
// IEEE binary16 <-> binary32 (round to nearest even), for the torch-free CPU path.
inline uint16_t float_to_half_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t o;
  if (u >= (143u << 23)) {  // >= 65536: inf, or NaN (kept quiet)
    o = u > 0x7f800000u ? 0x7e00 : 0x7c00;
  } else if (u < (113u << 23)) {  // < 2^-14: subnormal half or zero
    const uint32_t magic_u = 126u << 23;  // 0.5: aligns the 10 mantissa bits
    float mf, vf;
    std::memcpy(&mf, &magic_u, 4);
    std::memcpy(&vf, &u, 4);
    vf += mf;
    uint32_t v;
    std::memcpy(&v, &vf, 4);
    o = uint16_t(v - magic_u);
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
    o = uint16_t(u >> 13);
  }
  return uint16_t(o | (sign >> 16));
}

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t u;
  if (e == 0) {
    float f = float(m) * 5.9604644775390625e-08f;  // m * 2^-24
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else if (e == 31) {
    u = sign | 0x7f800000u | (m << 13);
  } else {
    u = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ------------------------------------------------- CPU batch functions ----
// All pointers are contiguous; sizes as in the header comment. `points` and
// `out` dtypes as given (points: kFloat/kDouble; out: any).
void encode_cpu(const EncodeParams& p, DType points_dtype, const void* points,
                const uint8_t* visible, DType out_dtype, void* out, float* weight);

// heatmaps of in_dtype; coords/scores are double for kDouble input, else float.
// `w` is used for kRefineDark only.
void decode_cpu(const DecodeParams& p, DType in_dtype, const void* heatmaps, const DarkWeights& w,
                void* coords, void* scores);

// dtype kFloat or kDouble for every tensor.
void soft_argmax_cpu(const SoftArgmaxParams& p, DType dtype, const void* heatmaps, void* coords);
void soft_argmax_backward_cpu(const SoftArgmaxParams& p, DType dtype, const void* grad_coords,
                              const void* heatmaps, const void* coords, void* grad_heatmaps);

}  // namespace heatmap
}  // namespace pf3d
