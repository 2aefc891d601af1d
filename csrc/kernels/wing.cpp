// Wing / Adaptive Wing losses: CPU batch functions (torch-free).
#include "kernels/wing.h"

#include <cstring>
#include <limits>
#include <vector>

namespace pf3d {
namespace wing {
namespace {

// ---------------------------------------------------------------------------
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
  const float c = (u - (t - 1.0f)) / t;
  return r + c;
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
      for (int64_t i = b; i < e; ++i) out[i] = wing_value<double>(pred[i] - target[i], omega, eps, C);
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

// Runs fn(row_index, m, i, Mrow) for every row of every map, Mrow = weights of the row
// (nullptr when weight == 0, i.e. M = 1).
template <typename T, typename Fn>
void for_rows(const T* target, int64_t BK, int64_t H, int64_t W, const AWingParams& p,
              const Fn& fn) {
  const int64_t rows = BK * H;
  const int64_t grain = W > 0 ? (4096 + W - 1) / W : 1;
  pf3d::parallel_for(0, rows, grain, [&](int64_t rb, int64_t re) {
    std::vector<unsigned char> col(W), fg(W);
    std::vector<T> mrow(W);
    const T weight = static_cast<T>(p.weight), thr = static_cast<T>(p.threshold);
    for (int64_t r = rb; r < re; ++r) {
      const int64_t m = r / H, i = r % H;
      if (p.weight != 0.0) {
        foreground_row<T>(target + m * H * W, H, W, i, p.dilation, thr, col.data(), fg.data());
        for (int64_t j = 0; j < W; ++j) mrow[j] = T(1) + weight * static_cast<T>(fg[j]);
        fn(r, mrow.data());
      } else {
        fn(r, static_cast<const T*>(nullptr));
      }
    }
  });
}

template <typename T>
void awing_forward_impl(const T* pred, const T* target, int64_t BK, int64_t H, int64_t W,
                        const AWingParams& p, int reduction, T* out) {
  const T alpha = static_cast<T>(p.alpha), omega = static_cast<T>(p.omega),
          eps = static_cast<T>(p.epsilon), theta = static_cast<T>(p.theta);
  const int64_t n = BK * H * W;
  const int64_t rows = BK * H;
  std::vector<double> partial(reduction == kNone ? 0 : rows, 0.0);
  for_rows<T>(target, BK, H, W, p, [&](int64_t r, const T* M) {
    const T* pr = pred + r * W;
    const T* tr = target + r * W;
    double acc = 0.0;
    for (int64_t j = 0; j < W; ++j) {
      const T y = tr[j];
      const T d = std::fabs(y - pr[j]);
      T v, s;
      awing_value_slope<T>(d, y, alpha, omega, eps, theta, &v, &s);
      if (M) v *= M[j];
      if (reduction == kNone)
        out[r * W + j] = v;
      else
        acc += static_cast<double>(v);
    }
    if (reduction != kNone) partial[r] = acc;
  });
  if (reduction == kNone) return;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) total += partial[r];
  out[0] = static_cast<T>(finish(total, n, reduction));
}

template <typename T>
void awing_backward_impl(const T* grad_out, const T* pred, const T* target, int64_t BK,
                         int64_t H, int64_t W, const AWingParams& p, int reduction,
                         T* grad_pred) {
  const T alpha = static_cast<T>(p.alpha), omega = static_cast<T>(p.omega),
          eps = static_cast<T>(p.epsilon), theta = static_cast<T>(p.theta);
  const int64_t n = BK * H * W;
  T g = T(0);
  if (reduction == kMean)
    g = static_cast<T>(static_cast<double>(grad_out[0]) / static_cast<double>(n));
  else if (reduction == kSum)
    g = grad_out[0];
  for_rows<T>(target, BK, H, W, p, [&](int64_t r, const T* M) {
    const T* pr = pred + r * W;
    const T* tr = target + r * W;
    for (int64_t j = 0; j < W; ++j) {
      const T y = tr[j];
      const T diff = pr[j] - y;
      const T d = std::fabs(diff);
      T v, s;
      awing_value_slope<T>(d, y, alpha, omega, eps, theta, &v, &s);
      const T sg = diff > T(0) ? T(1) : (diff < T(0) ? T(-1) : T(0));
      T gr = s * sg;
      if (M) gr *= M[j];
      const T gi = reduction == kNone ? grad_out[r * W + j] : g;
      grad_pred[r * W + j] = gi * gr;
    }
  });
}

}  // namespace

void awing_forward_cpu(const float* pred, const float* target, int64_t BK, int64_t H, int64_t W,
                       const AWingParams& p, int reduction, float* out) {
  awing_forward_impl<float>(pred, target, BK, H, W, p, reduction, out);
}
void awing_forward_cpu(const double* pred, const double* target, int64_t BK, int64_t H,
                       int64_t W, const AWingParams& p, int reduction, double* out) {
  awing_forward_impl<double>(pred, target, BK, H, W, p, reduction, out);
}
void awing_backward_cpu(const float* grad_out, const float* pred, const float* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        float* grad_pred) {
  awing_backward_impl<float>(grad_out, pred, target, BK, H, W, p, reduction, grad_pred);
}
void awing_backward_cpu(const double* grad_out, const double* pred, const double* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        double* grad_pred) {
  awing_backward_impl<double>(grad_out, pred, target, BK, H, W, p, reduction, grad_pred);
}

void awing_weight_map_cpu(const double* target, int64_t BK, int64_t H, int64_t W,
                          const AWingParams& p, double* out) {
  for_rows<double>(target, BK, H, W, p, [&](int64_t r, const double* M) {
    for (int64_t j = 0; j < W; ++j) out[r * W + j] = M ? M[j] : 1.0;
  });
}

}  // namespace wing
}  // namespace pf3d
