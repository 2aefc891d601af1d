// Wing / Adaptive Wing losses: CPU batch functions (torch-free).
#include "kernels/wing.h"

#include <cstring>
#include <limits>
#include <vector>

namespace pf3d {
namespace wing {
namespace {

// ---------------------------------------------------------------------------
// log(t) for a positive, normal, finite float t (Cephes logf core).
inline float log_core(float t) {
  int32_t bits;
  std::memcpy(&bits, &t, sizeof(bits));
  int32_t ex = ((bits >> 23) & 0xff) - 127;
  const int32_t mbits = (bits & 0x007fffff) | 0x3f800000;
  float m;
  std::memcpy(&m, &mbits, sizeof(m));
  const int32_t big = m > 1.41421356237f;  // 0 or 1
  m = m * (1.0f - 0.5f * static_cast<float>(big));
  ex += big;
  const float f = m - 1.0f;
  const float e = static_cast<float>(ex);
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  float r = f + y;
  r += 0.693359375f * e;
  return r;
}

// Vectorisable float log1p for u >= 0 (finite): Cephes-style logf of t = 1 + u
// (range reduction on the exponent bits, polynomial on the mantissa in
// [sqrt(1/2), sqrt(2))) plus the first-order correction (u - (t - 1)) / t for
// the rounding of 1 + u, which keeps small arguments accurate. Written without
// branches or calls so that GCC vectorises the loops that use it (SSE2 at the
// default -O3). Max relative error about 2 ulp against std::log1p on [0, 1e6]
// (checked in csrc/tests/test_wing.cpp). Infinite/NaN u give garbage that the
// callers select away (they take the linear branch for those).
inline float log1p_fast(float u) {
  const float t = 1.0f + u;
  const float c = (u - (t - 1.0f)) / t;
  return log_core(t) + c;
}

// exp(x) for |x| <= 80 (Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, polynomial in r,
// scaled by 2^n through the exponent bits). Vectorisable; callers keep |x| <= 80.
inline float exp_fast(float x) {
  const float v = x * 1.44269504088896341f;
  const int32_t n = static_cast<int32_t>(v + (v >= 0.0f ? 0.5f : -0.5f));
  const float fn = static_cast<float>(n);
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const int32_t sbits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &sbits, sizeof(scale));
  return y * scale;
}

// Branch-free select (c ? a : b) through the bits: GCC does not if-convert a
// ternary whose operand contains a division under the default -ftrapping-math,
// which would keep the loop scalar.
template <typename T, typename I>
inline T select_bits(bool c, T a, T b) {
  static_assert(sizeof(T) == sizeof(I), "size");
  const I mask = -static_cast<I>(c);
  I ia, ib;
  std::memcpy(&ia, &a, sizeof(ia));
  std::memcpy(&ib, &b, sizeof(ib));
  const I ir = (ia & mask) | (ib & ~mask);
  T r;
  std::memcpy(&r, &ir, sizeof(r));
  return r;
}
inline float select_f(bool c, float a, float b) { return select_bits<float, int32_t>(c, a, b); }
inline double select_f(bool c, double a, double b) {
  return select_bits<double, int64_t>(c, a, b);
}

constexpr int kBlock = 256;  // elements per vectorised block

// out[i] = wing(pred[i] - target[i]) for i < len (float, vectorised).
#if defined(__GNUC__)
#define PF3D_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PF3D_ALWAYS_INLINE inline
#endif
PF3D_ALWAYS_INLINE void wing_block_f_body(const float* __restrict pred,
                                          const float* __restrict target, int64_t len,
                                          float omega, float inv_eps, float C,
                                          float* __restrict out) {
  for (int64_t i = 0; i < len; ++i) {
    const float d = pred[i] - target[i];
    const float x = std::fabs(d);
    const float lg = omega * log1p_fast(x * inv_eps);
    out[i] = select_f(x < omega, lg, x - C);
  }
}

using WingBlockFn = void (*)(const float*, const float*, int64_t, float, float, float, float*);

void wing_block_f_generic(const float* __restrict pred, const float* __restrict target,
                          int64_t len, float omega, float inv_eps, float C,
                          float* __restrict out) {
  wing_block_f_body(pred, target, len, omega, inv_eps, C, out);
}

// On x86-64 with GCC/Clang, a second copy compiled for AVX2 + FMA (8 lanes, fused
// multiply-adds in the polynomial), chosen at run time when the CPU has them. The
// two copies may differ in the last ulp (FMA); each is deterministic.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(__AVX2__)
#define PF3D_WING_AVX2 1
__attribute__((target("avx2,fma"))) void wing_block_f_avx2(
    const float* __restrict pred, const float* __restrict target, int64_t len, float omega,
    float inv_eps, float C, float* __restrict out) {
  wing_block_f_body(pred, target, len, omega, inv_eps, C, out);
}
#endif

WingBlockFn pick_wing_block_f() {
#if defined(PF3D_WING_AVX2)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return wing_block_f_avx2;
#endif
  return wing_block_f_generic;
}

inline void wing_block_f(const float* pred, const float* target, int64_t len, float omega,
                         float inv_eps, float C, float* out) {
  static const WingBlockFn fn = pick_wing_block_f();
  fn(pred, target, len, omega, inv_eps, C, out);
}

// Deterministic sum of n values produced block by block by `fill(off, len, buf)`:
// fixed chunks of kCpuChunk elements, each summed in a fixed order
// (8 float lanes per 256-element block, blocks accumulated in double), then the
// chunk partials summed in order. Independent of the number of threads.
template <typename Fill>
double chunked_sum_f(int64_t n, const Fill& fill) {
  const int64_t nchunks = (n + kCpuChunk - 1) / kCpuChunk;
  std::vector<double> partial(nchunks, 0.0);
  pf3d::parallel_for(0, nchunks, 1, [&](int64_t cb, int64_t ce) {
    alignas(64) float buf[kBlock];
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t begin = c * kCpuChunk;
      const int64_t end = begin + kCpuChunk < n ? begin + kCpuChunk : n;
      double acc = 0.0;
      for (int64_t off = begin; off < end; off += kBlock) {
        const int64_t len = end - off < kBlock ? end - off : kBlock;
        fill(off, len, buf);
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int64_t len8 = len & ~int64_t(7);
        for (int64_t i = 0; i < len8; i += 8)
          for (int j = 0; j < 8; ++j) lanes[j] += buf[i + j];
        double s = 0.0;
        for (int j = 0; j < 8; ++j) s += lanes[j];
        for (int64_t i = len8; i < len; ++i) s += buf[i];
        acc += s;
      }
      partial[c] = acc;
    }
  });
  double total = 0.0;
  for (int64_t c = 0; c < nchunks; ++c) total += partial[c];
  return total;
}

// Same for double values produced one at a time by `value(i)`.
template <typename Value>
double chunked_sum_d(int64_t n, const Value& value) {
  const int64_t nchunks = (n + kCpuChunk - 1) / kCpuChunk;
  std::vector<double> partial(nchunks, 0.0);
  pf3d::parallel_for(0, nchunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t begin = c * kCpuChunk;
      const int64_t end = begin + kCpuChunk < n ? begin + kCpuChunk : n;
      double acc = 0.0;
      for (int64_t i = begin; i < end; ++i) acc += value(i);
      partial[c] = acc;
    }
  });
  double total = 0.0;
  for (int64_t c = 0; c < nchunks; ++c) total += partial[c];
  return total;
}

double finish(double total, int64_t n, int reduction) {
  if (reduction == kMean)
    return n > 0 ? total / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  return total;
}

// Grain for elementwise parallel loops.
constexpr int64_t kGrain = 32768;

}  // namespace

// ------------------------------------------------------------------ Wing ----
void wing_forward_cpu(const float* pred, const float* target, int64_t n, const WingParams& p,
                      int reduction, float* out) {
  const float omega = static_cast<float>(p.omega);
  const float inv_eps = static_cast<float>(1.0 / p.epsilon);
  const float C = static_cast<float>(p.C);
  if (reduction == kNone) {
    pf3d::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      wing_block_f(pred + b, target + b, e - b, omega, inv_eps, C, out + b);
    });
    return;
  }
  const double total = chunked_sum_f(n, [&](int64_t off, int64_t len, float* buf) {
    wing_block_f(pred + off, target + off, len, omega, inv_eps, C, buf);
  });
  out[0] = static_cast<float>(finish(total, n, reduction));
}

void wing_forward_cpu_exact(const float* pred, const float* target, int64_t n,
                            const WingParams& p, int reduction, float* out) {
  const float omega = static_cast<float>(p.omega), eps = static_cast<float>(p.epsilon),
              C = static_cast<float>(p.C);
  if (reduction == kNone) {
    for (int64_t i = 0; i < n; ++i) out[i] = wing_value<float>(pred[i] - target[i], omega, eps, C);
    return;
  }
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += wing_value<float>(pred[i] - target[i], omega, eps, C);
  out[0] = static_cast<float>(finish(total, n, reduction));
}

void wing_forward_cpu(const double* pred, const double* target, int64_t n,
                      const WingParams& p, int reduction, double* out) {
  const double omega = p.omega, eps = p.epsilon, C = p.C;
  if (reduction == kNone) {
    pf3d::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        out[i] = wing_value<double>(pred[i] - target[i], omega, eps, C);
    });
    return;
  }
  const double total = chunked_sum_d(
      n, [&](int64_t i) { return wing_value<double>(pred[i] - target[i], omega, eps, C); });
  out[0] = finish(total, n, reduction);
}

namespace {
template <typename T>
void wing_backward_impl(const T* __restrict grad_out, const T* __restrict pred,
                        const T* __restrict target, int64_t n, const WingParams& p,
                        int reduction, T* __restrict grad_pred) {
  const T omega = static_cast<T>(p.omega), eps = static_cast<T>(p.epsilon);
  if (reduction == kNone) {
    pf3d::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T d = pred[i] - target[i];
        const T x = std::fabs(d);
        const T s = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
        const T slope = select_f(x < omega, omega / (eps + x), T(1));
        grad_pred[i] = grad_out[i] * (s * slope);
      }
    });
    return;
  }
  const T g = reduction == kMean ? static_cast<T>(static_cast<double>(grad_out[0]) /
                                                  static_cast<double>(n))
                                 : grad_out[0];
  pf3d::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T d = pred[i] - target[i];
      const T x = std::fabs(d);
      const T s = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
      const T slope = select_f(x < omega, omega / (eps + x), T(1));
      grad_pred[i] = g * (s * slope);
    }
  });
}
}  // namespace

void wing_backward_cpu(const float* grad_out, const float* pred, const float* target, int64_t n,
                       const WingParams& p, int reduction, float* grad_pred) {
  wing_backward_impl<float>(grad_out, pred, target, n, p, reduction, grad_pred);
}
void wing_backward_cpu(const double* grad_out, const double* pred, const double* target,
                       int64_t n, const WingParams& p, int reduction, double* grad_pred) {
  wing_backward_impl<double>(grad_out, pred, target, n, p, reduction, grad_pred);
}

// --------------------------------------------------------- Adaptive Wing ----
namespace {

// Fills fg[0..W) with the dilated foreground flags of row i of one map.
template <typename T>
void foreground_row(const T* map, int64_t H, int64_t W, int64_t i, int dilation, T threshold,
                    unsigned char* col, unsigned char* fg) {
  const int64_t r = dilation / 2;
  const int64_t i0 = i - r < 0 ? 0 : i - r, i1 = i + r >= H ? H - 1 : i + r;
  for (int64_t j = 0; j < W; ++j) col[j] = 0;
  for (int64_t a = i0; a <= i1; ++a) {
    const T* row = map + a * W;
    for (int64_t j = 0; j < W; ++j) col[j] |= static_cast<unsigned char>(row[j] > threshold);
  }
  for (int64_t j = 0; j < W; ++j) {
    const int64_t j0 = j - r < 0 ? 0 : j - r, j1 = j + r >= W ? W - 1 : j + r;
    unsigned char v = 0;
    for (int64_t b = j0; b <= j1; ++b) v |= col[b];
    fg[j] = v;
  }
}

// Runs fn(row_index, Mrow, scratch) for every row of every map: Mrow = the weights
// M of the row (all 1 when weight == 0), scratch = 2 * W values private to the
// calling thread.
template <typename T, typename Fn>
void for_rows(const T* target, int64_t BK, int64_t H, int64_t W, const AWingParams& p,
              const Fn& fn) {
  const int64_t rows = BK * H;
  const int64_t grain = W > 0 ? (4096 + W - 1) / W : 1;
  pf3d::parallel_for(0, rows, grain, [&](int64_t rb, int64_t re) {
    std::vector<unsigned char> col(W), fg(W);
    std::vector<T> mrow(W, T(1)), scratch(2 * W);
    const T weight = static_cast<T>(p.weight), thr = static_cast<T>(p.threshold);
    for (int64_t r = rb; r < re; ++r) {
      const int64_t m = r / H, i = r % H;
      if (p.weight != 0.0) {
        foreground_row<T>(target + m * H * W, H, W, i, p.dilation, thr, col.data(), fg.data());
        for (int64_t j = 0; j < W; ++j) mrow[j] = T(1) + weight * static_cast<T>(fg[j]);
      }
      fn(r, static_cast<const T*>(mrow.data()), scratch.data());
    }
  });
}

// ---- float rows: branch-free, vectorisable evaluation -----------------------------
// Per pixel: dd = min(d, theta), a = e * ln(dd / eps), P = exp(a), then value and slope
// as in awing_value_slope. Lanes outside the fast path's domain (dd = 0 or subnormal,
// |a| > 80, NaN/Inf) are flagged through `aflag` (NaN or |a| > 80) and recomputed
// exactly by the scalar awing_value_slope<float> afterwards.
struct AWingF {
  float alpha, omega, theta, log_eps;
};

PF3D_ALWAYS_INLINE void awing_vs_fast(float pv, float y, const AWingF& q, float* v, float* s,
                                      float* sign, float* aflag) {
  const float diff = pv - y;
  const float d = std::fabs(diff);
  const float e = q.alpha - y;
  const bool below = d < q.theta;
  const float dd = select_f(below, d, q.theta);
  const bool normal = dd >= 1.17549435e-38f;  // false for 0, subnormals and NaN
  const float ddc = select_f(normal, dd, 1.0f);
  const float a = e * (log_core(ddc) - q.log_eps);
  const float ac = select_f(a > 80.0f, 80.0f, select_f(a < -80.0f, -80.0f, a));
  const float P = exp_fast(ac);
  const float lp = q.omega * log1p_fast(P);
  const float sl = q.omega * e * P / ((1.0f + P) * ddc);
  *s = sl;
  *v = select_f(below, lp, lp + (d - q.theta) * sl);
  *sign = select_f(diff > 0.0f, 1.0f, select_f(diff < 0.0f, -1.0f, 0.0f));
  *aflag = select_f(normal, a, std::numeric_limits<float>::quiet_NaN());
}

// vals[j] = M[j] * loss(j); aflag[j] as above.
PF3D_ALWAYS_INLINE void awing_row_fwd_body(const float* __restrict pr,
                                           const float* __restrict tr,
                                           const float* __restrict M, int64_t W,
                                           const AWingF& qr, float* __restrict vals,
                                           float* __restrict aflag) {
  const AWingF q = qr;  // local copy: no reloads through a possibly aliased reference
  for (int64_t j = 0; j < W; ++j) {
    float v, s, sg, a;
    awing_vs_fast(pr[j], tr[j], q, &v, &s, &sg, &a);
    vals[j] = M[j] * v;
    aflag[j] = a;
  }
}

// grad[j] = g_j * M[j] * slope * sign, g_j = go[j] (go != nullptr) or g.
PF3D_ALWAYS_INLINE void awing_row_bwd_body(const float* __restrict pr,
                                           const float* __restrict tr,
                                           const float* __restrict M, int64_t W,
                                           const AWingF& qr, const float* __restrict go,
                                           float g, float* __restrict grad,
                                           float* __restrict aflag) {
  const AWingF q = qr;  // local copy: no reloads through a possibly aliased reference
  if (go) {
    for (int64_t j = 0; j < W; ++j) {
      float v, s, sg, a;
      awing_vs_fast(pr[j], tr[j], q, &v, &s, &sg, &a);
      grad[j] = go[j] * (M[j] * (s * sg));
      aflag[j] = a;
    }
  } else {
    for (int64_t j = 0; j < W; ++j) {
      float v, s, sg, a;
      awing_vs_fast(pr[j], tr[j], q, &v, &s, &sg, &a);
      grad[j] = g * (M[j] * (s * sg));
      aflag[j] = a;
    }
  }
}

using AWingFwdFn = void (*)(const float*, const float*, const float*, int64_t, const AWingF&,
                            float*, float*);
using AWingBwdFn = void (*)(const float*, const float*, const float*, int64_t, const AWingF&,
                            const float*, float, float*, float*);

void awing_row_fwd_generic(const float* pr, const float* tr, const float* M, int64_t W,
                           const AWingF& q, float* vals, float* aflag) {
  awing_row_fwd_body(pr, tr, M, W, q, vals, aflag);
}
void awing_row_bwd_generic(const float* pr, const float* tr, const float* M, int64_t W,
                           const AWingF& q, const float* go, float g, float* grad,
                           float* aflag) {
  awing_row_bwd_body(pr, tr, M, W, q, go, g, grad, aflag);
}
#if defined(PF3D_WING_AVX2)
__attribute__((target("avx2,fma"))) void awing_row_fwd_avx2(const float* pr, const float* tr,
                                                            const float* M, int64_t W,
                                                            const AWingF& q, float* vals,
                                                            float* aflag) {
  awing_row_fwd_body(pr, tr, M, W, q, vals, aflag);
}
__attribute__((target("avx2,fma"))) void awing_row_bwd_avx2(const float* pr, const float* tr,
                                                            const float* M, int64_t W,
                                                            const AWingF& q, const float* go,
                                                            float g, float* grad,
                                                            float* aflag) {
  awing_row_bwd_body(pr, tr, M, W, q, go, g, grad, aflag);
}
#endif

bool use_avx2() {
#if defined(PF3D_WING_AVX2)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#else
  return false;
#endif
}

AWingFwdFn awing_row_fwd() {
#if defined(PF3D_WING_AVX2)
  if (use_avx2()) return awing_row_fwd_avx2;
#endif
  return awing_row_fwd_generic;
}
AWingBwdFn awing_row_bwd() {
#if defined(PF3D_WING_AVX2)
  if (use_avx2()) return awing_row_bwd_avx2;
#endif
  return awing_row_bwd_generic;
}

inline bool needs_exact(float a) { return !(std::fabs(a) <= 80.0f); }

void awing_forward_f(const float* pred, const float* target, int64_t BK, int64_t H, int64_t W,
                     const AWingParams& p, int reduction, float* out) {
  const AWingF q{static_cast<float>(p.alpha), static_cast<float>(p.omega),
                 static_cast<float>(p.theta), static_cast<float>(std::log(p.epsilon))};
  const float alpha = q.alpha, omega = q.omega, theta = q.theta,
              eps = static_cast<float>(p.epsilon);
  const int64_t n = BK * H * W, rows = BK * H;
  const AWingFwdFn fwd = awing_row_fwd();
  std::vector<double> partial(reduction == kNone ? 0 : rows, 0.0);
  for_rows<float>(target, BK, H, W, p, [&](int64_t r, const float* M, float* scratch) {
    const float* pr = pred + r * W;
    const float* tr = target + r * W;
    float* vals = reduction == kNone ? out + r * W : scratch;
    float* aflag = scratch + W;
    fwd(pr, tr, M, W, q, vals, aflag);
    for (int64_t j = 0; j < W; ++j) {
      if (needs_exact(aflag[j])) {
        float v, s;
        awing_value_slope<float>(std::fabs(tr[j] - pr[j]), tr[j], alpha, omega, eps, theta, &v,
                                 &s);
        vals[j] = M[j] * v;
      }
    }
    if (reduction != kNone) {
      double acc = 0.0;
      for (int64_t j = 0; j < W; ++j) acc += vals[j];
      partial[r] = acc;
    }
  });
  if (reduction == kNone) return;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) total += partial[r];
  out[0] = static_cast<float>(finish(total, n, reduction));
}

void awing_backward_f(const float* grad_out, const float* pred, const float* target, int64_t BK,
                      int64_t H, int64_t W, const AWingParams& p, int reduction,
                      float* grad_pred) {
  const AWingF q{static_cast<float>(p.alpha), static_cast<float>(p.omega),
                 static_cast<float>(p.theta), static_cast<float>(std::log(p.epsilon))};
  const float alpha = q.alpha, omega = q.omega, theta = q.theta,
              eps = static_cast<float>(p.epsilon);
  const int64_t n = BK * H * W;
  float g = 0.0f;
  if (reduction == kMean)
    g = static_cast<float>(static_cast<double>(grad_out[0]) / static_cast<double>(n));
  else if (reduction == kSum)
    g = grad_out[0];
  const AWingBwdFn bwd = awing_row_bwd();
  for_rows<float>(target, BK, H, W, p, [&](int64_t r, const float* M, float* scratch) {
    const float* pr = pred + r * W;
    const float* tr = target + r * W;
    const float* go = reduction == kNone ? grad_out + r * W : nullptr;
    float* gr = grad_pred + r * W;
    float* aflag = scratch + W;
    bwd(pr, tr, M, W, q, go, g, gr, aflag);
    for (int64_t j = 0; j < W; ++j) {
      if (needs_exact(aflag[j])) {
        const float diff = pr[j] - tr[j];
        float v, s;
        awing_value_slope<float>(std::fabs(diff), tr[j], alpha, omega, eps, theta, &v, &s);
        const float sg = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : 0.0f);
        gr[j] = (go ? go[j] : g) * (M[j] * (s * sg));
      }
    }
  });
}

// ---- double rows: exact scalar math ----------------------------------------------
void awing_forward_d(const double* pred, const double* target, int64_t BK, int64_t H,
                     int64_t W, const AWingParams& p, int reduction, double* out) {
  const double alpha = p.alpha, omega = p.omega, eps = p.epsilon, theta = p.theta;
  const int64_t n = BK * H * W, rows = BK * H;
  std::vector<double> partial(reduction == kNone ? 0 : rows, 0.0);
  for_rows<double>(target, BK, H, W, p, [&](int64_t r, const double* M, double*) {
    const double* pr = pred + r * W;
    const double* tr = target + r * W;
    double acc = 0.0;
    for (int64_t j = 0; j < W; ++j) {
      double v, s;
      awing_value_slope<double>(std::fabs(tr[j] - pr[j]), tr[j], alpha, omega, eps, theta, &v,
                                &s);
      v *= M[j];
      if (reduction == kNone)
        out[r * W + j] = v;
      else
        acc += v;
    }
    if (reduction != kNone) partial[r] = acc;
  });
  if (reduction == kNone) return;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) total += partial[r];
  out[0] = finish(total, n, reduction);
}

void awing_backward_d(const double* grad_out, const double* pred, const double* target,
                      int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                      double* grad_pred) {
  const double alpha = p.alpha, omega = p.omega, eps = p.epsilon, theta = p.theta;
  const int64_t n = BK * H * W;
  double g = 0.0;
  if (reduction == kMean)
    g = grad_out[0] / static_cast<double>(n);
  else if (reduction == kSum)
    g = grad_out[0];
  for_rows<double>(target, BK, H, W, p, [&](int64_t r, const double* M, double*) {
    const double* pr = pred + r * W;
    const double* tr = target + r * W;
    for (int64_t j = 0; j < W; ++j) {
      const double diff = pr[j] - tr[j];
      double v, s;
      awing_value_slope<double>(std::fabs(diff), tr[j], alpha, omega, eps, theta, &v, &s);
      const double sg = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
      const double gi = reduction == kNone ? grad_out[r * W + j] : g;
      grad_pred[r * W + j] = gi * (M[j] * (s * sg));
    }
  });
}

}  // namespace

void awing_forward_cpu(const float* pred, const float* target, int64_t BK, int64_t H, int64_t W,
                       const AWingParams& p, int reduction, float* out) {
  awing_forward_f(pred, target, BK, H, W, p, reduction, out);
}
void awing_forward_cpu(const double* pred, const double* target, int64_t BK, int64_t H,
                       int64_t W, const AWingParams& p, int reduction, double* out) {
  awing_forward_d(pred, target, BK, H, W, p, reduction, out);
}
void awing_backward_cpu(const float* grad_out, const float* pred, const float* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        float* grad_pred) {
  awing_backward_f(grad_out, pred, target, BK, H, W, p, reduction, grad_pred);
}
void awing_backward_cpu(const double* grad_out, const double* pred, const double* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        double* grad_pred) {
  awing_backward_d(grad_out, pred, target, BK, H, W, p, reduction, grad_pred);
}

void awing_weight_map_cpu(const double* target, int64_t BK, int64_t H, int64_t W,
                          const AWingParams& p, double* out) {
  for_rows<double>(target, BK, H, W, p, [&](int64_t r, const double* M, double*) {
    for (int64_t j = 0; j < W; ++j) out[r * W + j] = M[j];
  });
}

}  // namespace wing
}  // namespace pf3d
