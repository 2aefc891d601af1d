// CPU batch functions of the heatmap family (torch-free). See heatmap.h.
#include "kernels/heatmap.h"

#include <algorithm>
#include <limits>
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
// Pass 1 (vectorisable: `v > a ? v : a` is MAXPS and never picks a NaN) finds
// the largest non-NaN value; pass 2 finds its first occurrence.
template <typename T>
int64_t argmax_map(const T* map, int64_t n) {
  using A = typename Acc<T>::type;
  constexpr int L = 8;
  A acc[L];
  for (int j = 0; j < L; ++j) acc[j] = -std::numeric_limits<A>::infinity();
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) {
      const A v = load_f(map[i + j]);
      acc[j] = v > acc[j] ? v : acc[j];
    }
  for (; i < n; ++i) {
    const A v = load_f(map[i]);
    acc[0] = v > acc[0] ? v : acc[0];
  }
  A mx = acc[0];
  for (int j = 1; j < L; ++j) mx = acc[j] > mx ? acc[j] : mx;
  for (i = 0; i < n; ++i)
    if (load_f(map[i]) == mx) return i;
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

// Largest beta * m[i] (NaN skipped; -inf when none).
template <typename T>
T scaled_max(const T* map, int64_t n, T beta) {
  constexpr int L = 8;
  T acc[L];
  for (int j = 0; j < L; ++j) acc[j] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) {
      const T v = beta * map[i + j];
      acc[j] = v > acc[j] ? v : acc[j];
    }
  for (; i < n; ++i) {
    const T v = beta * map[i];
    acc[0] = v > acc[0] ? v : acc[0];
  }
  T mx = acc[0];
  for (int j = 1; j < L; ++j) mx = acc[j] > mx ? acc[j] : mx;
  return mx;
}

// Sums of e = exp(beta m - mx) over the map: s, sum e x, sum e y (double).
// Row sums in T (vectorised), rows added in double.
template <typename T>
void softmax_sums(const T* map, int64_t H, int64_t W, T beta, T mx, double* s, double* sx,
                  double* sy) {
  double S = 0.0, SX = 0.0, SY = 0.0;
  for (int64_t y = 0; y < H; ++y) {
    const T* row = map + y * W;
    T rs = 0, rx = 0;
    for (int64_t x = 0; x < W; ++x) {
      const T ev = exp_neg(beta * row[x] - mx);
      rs += ev;
      rx += ev * T(x);
    }
    S += double(rs);
    SX += double(rx);
    SY += double(rs) * double(y);
  }
  *s = S;
  *sx = SX;
  *sy = SY;
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
      double S, SX, SY;
      softmax_sums(map, H, W, beta, mx, &S, &SX, &SY);
      // g = beta / S * e * (gx * (x - cx) + gy * (y - cy))
      const double gx = double(gc[2 * m]), gy = double(gc[2 * m + 1]);
      const double cx = double(c[2 * m]), cy = double(c[2 * m + 1]);
      const T k = T(double(beta) / S);
      const T kgx = T(double(k) * gx);
      for (int64_t y = 0; y < H; ++y) {
        const T* row = map + y * W;
        T* grow = g + y * W;
        const T cyv = T(double(k) * (gy * (double(y) - cy) - gx * cx));
        for (int64_t x = 0; x < W; ++x) {
          const T ev = exp_neg(beta * row[x] - mx);
          grow[x] = ev * (kgx * T(x) + cyv);
        }
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
