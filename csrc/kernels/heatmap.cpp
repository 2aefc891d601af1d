// CPU batch functions of the heatmap family (torch-free). See heatmap.h.
#include "kernels/heatmap.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

namespace pf3d {
namespace heatmap {
namespace {

struct Half {
  uint16_t bits;
};

// ----------------------------------------------------------- load/store ---
inline float load_f(float v) { return v; }
inline double load_f(double v) { return v; }
inline float load_f(Half v) { return half_bits_to_float(v.bits); }

inline void store(float* p, double v) { *p = float(v); }
inline void store(double* p, double v) { *p = v; }
inline void store(Half* p, double v) { p->bits = float_to_half_bits(float(v)); }

// Accumulation type of a storage type: double for double, float otherwise.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

// Maps per parallel chunk for maps of `hw` elements.
inline int64_t grain_for(int64_t hw) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(hw, 1)); }

// ---------------------------------------------------------------- encode --
template <typename P, typename O>
void encode_impl(const EncodeParams& p, const P* pts, const uint8_t* vis, O* out, float* weight) {
  const int64_t H = p.height, W = p.width, HW = H * W;
  pf3d::parallel_for(0, p.maps, grain_for(HW), [&](int64_t b, int64_t e) {
    std::vector<double> gx(W), gy(H);
    for (int64_t m = b; m < e; ++m) {
      O* map = out + m * HW;
      double cx = 0.0, cy = 0.0;
      const bool ok = encode_center(double(pts[2 * m]), double(pts[2 * m + 1]),
                                    vis ? vis[m] != 0 : true, H, W, p.unbiased, &cx, &cy);
      weight[m] = ok ? 1.0f : 0.0f;
      if (!ok) {
        std::memset(static_cast<void*>(map), 0, sizeof(O) * HW);
        continue;
      }
      const double k = -1.0 / (2.0 * p.sigma * p.sigma);
      int64_t xa = W, xb = -1;
      for (int64_t x = 0; x < W; ++x) {
        const double d = double(x) - cx;
        gx[x] = encode_inside(double(x), cx, p.sigma) ? std::exp(d * d * k) : 0.0;
        if (gx[x] != 0.0) {
          if (xa == W) xa = x;
          xb = x;
        }
      }
      for (int64_t y = 0; y < H; ++y) {
        const double d = double(y) - cy;
        gy[y] = encode_inside(double(y), cy, p.sigma) ? std::exp(d * d * k) : 0.0;
      }
      for (int64_t y = 0; y < H; ++y) {
        O* row = map + y * W;
        const double g = gy[y];
        if (g == 0.0 || xb < xa) {
          std::memset(static_cast<void*>(row), 0, sizeof(O) * W);
          continue;
        }
        if (xa > 0) std::memset(static_cast<void*>(row), 0, sizeof(O) * xa);
        for (int64_t x = xa; x <= xb; ++x) store(row + x, g * gx[x]);
        if (xb + 1 < W) std::memset(static_cast<void*>(row + xb + 1), 0, sizeof(O) * (W - xb - 1));
      }
    }
  });
}

template <typename P>
void encode_out(const EncodeParams& p, const P* pts, const uint8_t* vis, DType od, void* out,
                float* w) {
  switch (od) {
    case DType::kHalf: encode_impl(p, pts, vis, static_cast<Half*>(out), w); break;
    case DType::kFloat: encode_impl(p, pts, vis, static_cast<float*>(out), w); break;
    case DType::kDouble: encode_impl(p, pts, vis, static_cast<double*>(out), w); break;
  }
}

// ---------------------------------------------------------------- argmax --
// First maximum in row-major order, NaN smaller than any number; all-NaN -> 0.
// Pass 1 finds the largest non-NaN value (`v > a ? v : a` never picks a NaN),
// pass 2 its first occurrence. Pass 1 uses GCC/Clang vector extensions when
// available (plain SSE2 / NEON code, no -march needed); scalar otherwise.
#if defined(__GNUC__) || defined(__clang__)
#define PF3D_HM_VEC 1
// 16-byte vectors: native SSE2 / NEON width (wider ones are lowered badly without -mavx).
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));
template <typename T> struct Vec;
template <> struct Vec<float> { using type = v4f; static constexpr int n = 4; };
template <> struct Vec<double> { using type = v2d; static constexpr int n = 2; };
#else
#define PF3D_HM_VEC 0
#endif

template <typename A, typename T>
A max_scalar(const T* map, int64_t b, int64_t e, A scale, A acc) {
  for (int64_t i = b; i < e; ++i) {
    const A v = scale * A(load_f(map[i]));
    acc = v > acc ? v : acc;
  }
  return acc;
}

// max_i scale * map[i] over non-NaN values (-inf when none).
template <typename T>
T scaled_max(const T* map, int64_t n, T scale) {
  T mx = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
#if PF3D_HM_VEC
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::n;
  if (n >= 2 * L) {
    V a0, a1, v0, v1;  // two accumulators for instruction-level parallelism
    for (int j = 0; j < L; ++j) a0[j] = a1[j] = mx;
    for (; i + 2 * L <= n; i += 2 * L) {
      std::memcpy(&v0, map + i, sizeof(V));
      std::memcpy(&v1, map + i + L, sizeof(V));
      v0 *= scale;
      v1 *= scale;
      a0 = v0 > a0 ? v0 : a0;
      a1 = v1 > a1 ? v1 : a1;
    }
    a0 = a1 > a0 ? a1 : a0;
    for (int j = 0; j < L; ++j) mx = a0[j] > mx ? a0[j] : mx;
  }
#endif
  return max_scalar(map, i, n, scale, mx);
}

template <typename T>
int64_t argmax_map(const T* map, int64_t n) {
  using A = typename Acc<T>::type;
  A mx;
  if constexpr (std::is_same<T, Half>::value)
    mx = max_scalar(map, 0, n, 1.0f, -std::numeric_limits<float>::infinity());
  else
    mx = scaled_max(map, n, T(1));
  for (int64_t i = 0; i < n; ++i)
    if (A(load_f(map[i])) == mx) return i;
  return 0;  // all NaN
}

template <typename T>
void decode_impl(const DecodeParams& p, const T* hm, const DarkWeights& w,
                 typename Acc<T>::type* coords, typename Acc<T>::type* scores) {
  using A = typename Acc<T>::type;
  const int64_t H = p.height, W = p.width, HW = H * W;
  auto load_d = [](T v) { return double(load_f(v)); };
  pf3d::parallel_for(0, p.maps, grain_for(HW), [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const T* map = hm + m * HW;
      const int64_t idx = argmax_map(map, HW);
      const int64_t px = idx % W, py = idx / W;
      A x = A(px), y = A(py);
      scores[m] = load_f(map[idx]);
      if (p.refine == kRefineQuarter) {
        const T* row = map + py * W;
        if (px > 0 && px < W - 1) x += quarter_step<A>(load_f(row[px - 1]), load_f(row[px + 1]));
        if (py > 0 && py < H - 1)
          y += quarter_step<A>(load_f(map[(py - 1) * W + px]), load_f(map[(py + 1) * W + px]));
      } else if (p.refine == kRefineDark && dark_applies(px, py, H, W)) {
        double L[13];
        for (int j = 0; j < 13; ++j) {
          int dy, dx;
          dark_point(j, &dy, &dx);
          L[j] = dark_logblur(map, H, W, py + dy, px + dx, w, load_d);
        }
        double ox, oy;
        if (dark_solve(L, &ox, &oy)) {
          x = A(double(px) + ox);
          y = A(double(py) + oy);
        }
      }
      coords[2 * m] = x;
      coords[2 * m + 1] = y;
    }
  });
}

// ----------------------------------------------------------- soft-argmax --
// exp(x) for x <= 0 in float, branch-free so that loops vectorise: Cody-Waite
// reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (relative
// error ~1e-7); 0 below -86 (where the 2^n scaling would leave the normal range),
// 1 above 0 (never reached: callers pass beta m - max), NaN for NaN.
inline float exp_neg(float x) {
  float xc = x < -86.0f ? -86.0f : x;
  xc = xc > 0.0f ? 0.0f : xc;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: rounds to an integer
  const float t = xc * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  uint32_t tb;
  std::memcpy(&tb, &t, 4);
  const int32_t ni = int32_t(tb) - 0x4b400000;  // bits of the shifter
  float r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  float q = 1.0f / 5040.0f;
  q = q * r + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  uint32_t qb;
  std::memcpy(&qb, &q, 4);
  qb += uint32_t(ni) << 23;
  float res;
  std::memcpy(&res, &qb, 4);
  return x < -86.0f ? 0.0f : (x == x ? res : x);  // NaN stays NaN
}
inline double exp_neg(double x) { return std::exp(x); }

#if PF3D_HM_VEC
// exp_neg on 4 lanes, same arithmetic as the scalar version.
#define PF3D_SPLAT4(c) (v4f{c, c, c, c})
inline v4f exp_neg4(v4f x) {
  const v4f lo = PF3D_SPLAT4(-86.0f), zero = PF3D_SPLAT4(0.0f);
  v4f xc = x < lo ? lo : x;
  xc = xc > zero ? zero : xc;
  const v4f shifter = PF3D_SPLAT4(12582912.0f);
  const v4f t = xc * 1.44269504088896341f + shifter;
  const v4f n = t - shifter;
  const v4i ni = (v4i)t - 0x4b400000;
  v4f r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  v4f q = PF3D_SPLAT4(1.0f / 5040.0f);
  q = q * r + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  const v4f res = (v4f)((v4i)q + (ni << 23));
  return x < lo ? zero : (x == x ? res : x);
}
#endif

// Row sums of e = exp(beta m - mx): sum e, sum e x.
template <typename T>
void row_sums(const T* row, int64_t W, T beta, T mx, T* s, T* sx) {
  T rs = 0, rx = 0;
  int64_t x = 0;
#if PF3D_HM_VEC
  if constexpr (std::is_same<T, float>::value) {
    if (W >= 4) {
      const v4f iota = {0, 1, 2, 3};
      v4f vs = PF3D_SPLAT4(0.0f), vx = vs, v;
      for (; x + 4 <= W; x += 4) {
        std::memcpy(&v, row + x, sizeof(v));
        const v4f ev = exp_neg4(v * beta - mx);
        vs += ev;
        vx += ev * (iota + float(x));
      }
      for (int j = 0; j < 4; ++j) {
        rs += vs[j];
        rx += vx[j];
      }
    }
  }
#endif
  for (; x < W; ++x) {
    const T ev = exp_neg(beta * row[x] - mx);
    rs += ev;
    rx += ev * T(x);
  }
  *s = rs;
  *sx = rx;
}

// Sums of e over the map: s, sum e x, sum e y; rows added in double.
template <typename T>
void softmax_sums(const T* map, int64_t H, int64_t W, T beta, T mx, double* s, double* sx,
                  double* sy) {
  double S = 0.0, SX = 0.0, SY = 0.0;
  for (int64_t y = 0; y < H; ++y) {
    T rs, rx;
    row_sums(map + y * W, W, beta, mx, &rs, &rx);
    S += double(rs);
    SX += double(rx);
    SY += double(rs) * double(y);
  }
  *s = S;
  *sx = SX;
  *sy = SY;
}

// g[x] = exp(beta m[x] - mx) for one row; returns the row sum.
template <typename T>
T row_exp(const T* row, T* g, int64_t W, T beta, T mx) {
  T rs = 0;
  int64_t x = 0;
#if PF3D_HM_VEC
  if constexpr (std::is_same<T, float>::value) {
    if (W >= 4) {
      v4f vs = PF3D_SPLAT4(0.0f), v;
      for (; x + 4 <= W; x += 4) {
        std::memcpy(&v, row + x, sizeof(v));
        const v4f o = exp_neg4(v * beta - mx);
        vs += o;
        std::memcpy(g + x, &o, sizeof(o));
      }
      for (int j = 0; j < 4; ++j) rs += vs[j];
    }
  }
#endif
  for (; x < W; ++x) {
    g[x] = exp_neg(beta * row[x] - mx);
    rs += g[x];
  }
  return rs;
}

// g[x] *= a * x + c for one row.
template <typename T>
void row_scale(T* g, int64_t W, T a, T c) {
  int64_t x = 0;
#if PF3D_HM_VEC
  if constexpr (std::is_same<T, float>::value) {
    const v4f iota = {0, 1, 2, 3};
    v4f v;
    for (; x + 4 <= W; x += 4) {
      std::memcpy(&v, g + x, sizeof(v));
      v *= (iota + float(x)) * a + c;
      std::memcpy(g + x, &v, sizeof(v));
    }
  }
#endif
  for (; x < W; ++x) g[x] *= a * T(x) + c;
}

template <typename T>
void soft_argmax_impl(const SoftArgmaxParams& p, const T* hm, T* coords) {
  const int64_t H = p.height, W = p.width, HW = H * W;
  const T beta = T(p.beta);
  pf3d::parallel_for(0, p.maps, grain_for(HW), [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const T* map = hm + m * HW;
      const T mx = scaled_max(map, HW, beta);
      double S, SX, SY;
      softmax_sums(map, H, W, beta, mx, &S, &SX, &SY);
      coords[2 * m] = T(SX / S);
      coords[2 * m + 1] = T(SY / S);
    }
  });
}

template <typename T>
void soft_argmax_backward_impl(const SoftArgmaxParams& p, const T* gc, const T* hm, const T* c,
                               T* gh) {
  const int64_t H = p.height, W = p.width, HW = H * W;
  const T beta = T(p.beta);
  pf3d::parallel_for(0, p.maps, grain_for(HW), [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const T* map = hm + m * HW;
      T* g = gh + m * HW;
      const T mx = scaled_max(map, HW, beta);
      // pass 1: g = e = exp(beta m - mx) and S (the map stays in L1/L2);
      // pass 2: g *= beta / S * (gx * (x - cx) + gy * (y - cy)).
      double S = 0.0;
      for (int64_t y = 0; y < H; ++y) S += double(row_exp(map + y * W, g + y * W, W, beta, mx));
      const double gx = double(gc[2 * m]), gy = double(gc[2 * m + 1]);
      const double cx = double(c[2 * m]), cy = double(c[2 * m + 1]);
      const double k = double(beta) / S;
      const T kgx = T(k * gx);
      for (int64_t y = 0; y < H; ++y) {
        const T cyv = T(k * (gy * (double(y) - cy) - gx * cx));
        row_scale(g + y * W, W, kgx, cyv);
      }
    }
  });
}

}  // namespace

void encode_cpu(const EncodeParams& p, DType points_dtype, const void* points,
                const uint8_t* visible, DType out_dtype, void* out, float* weight) {
  if (p.maps <= 0) return;
  if (points_dtype == DType::kDouble)
    encode_out(p, static_cast<const double*>(points), visible, out_dtype, out, weight);
  else
    encode_out(p, static_cast<const float*>(points), visible, out_dtype, out, weight);
}

void decode_cpu(const DecodeParams& p, DType in_dtype, const void* heatmaps, const DarkWeights& w,
                void* coords, void* scores) {
  if (p.maps <= 0) return;
  switch (in_dtype) {
    case DType::kHalf:
      decode_impl(p, static_cast<const Half*>(heatmaps), w, static_cast<float*>(coords),
                  static_cast<float*>(scores));
      break;
    case DType::kFloat:
      decode_impl(p, static_cast<const float*>(heatmaps), w, static_cast<float*>(coords),
                  static_cast<float*>(scores));
      break;
    case DType::kDouble:
      decode_impl(p, static_cast<const double*>(heatmaps), w, static_cast<double*>(coords),
                  static_cast<double*>(scores));
      break;
  }
}

void soft_argmax_cpu(const SoftArgmaxParams& p, DType dtype, const void* heatmaps, void* coords) {
  if (p.maps <= 0) return;
  if (dtype == DType::kDouble)
    soft_argmax_impl(p, static_cast<const double*>(heatmaps), static_cast<double*>(coords));
  else
    soft_argmax_impl(p, static_cast<const float*>(heatmaps), static_cast<float*>(coords));
}

void soft_argmax_backward_cpu(const SoftArgmaxParams& p, DType dtype, const void* grad_coords,
                              const void* heatmaps, const void* coords, void* grad_heatmaps) {
  if (p.maps <= 0) return;
  if (dtype == DType::kDouble)
    soft_argmax_backward_impl(p, static_cast<const double*>(grad_coords),
                              static_cast<const double*>(heatmaps),
                              static_cast<const double*>(coords),
                              static_cast<double*>(grad_heatmaps));
  else
    soft_argmax_backward_impl(p, static_cast<const float*>(grad_coords),
                              static_cast<const float*>(heatmaps),
                              static_cast<const float*>(coords),
                              static_cast<float*>(grad_heatmaps));
}

}  // namespace heatmap
}  // namespace pf3d
