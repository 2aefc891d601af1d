// Wing and Adaptive Wing losses: torch-free per-element math shared by the CPU
// and CUDA paths, and the CPU batch functions.
//
// Wing (Feng et al. 2018), on residuals d = pred - target of shape (B, N, D):
//   x = |d|;  w(x) = omega * ln(1 + x / epsilon)   if x < omega
//                    x - C                          otherwise,
//   C = omega - omega * ln(1 + omega / epsilon)     (continuity at x = omega).
//   dw/dpred = sign(d) * (omega / (epsilon + x) if x < omega else 1), sign(0) = 0.
//
// Adaptive Wing (Wang et al. 2019), on heatmaps pred/target (B, K, H, W):
//   y = target, d = |y - pred|, e = alpha - y,
//   l = omega * ln(1 + (d / epsilon)^e)             if d < theta
//       A * d - C                                   otherwise,
//   A = omega / (1 + (theta/epsilon)^e) * e * (theta/epsilon)^(e - 1) / epsilon,
//   C = theta * A - omega * ln(1 + (theta/epsilon)^e);
//   weighted by M = 1 + weight * D, D = [max of (target > threshold) over the
//   dilation x dilation window centred on the pixel, clipped at the map border].
//   The gradient at d = 0 is defined as 0 (the true derivative is 0 for e > 1,
//   infinite for e < 1): pow(0, e - 1) is never evaluated.
//
// Reductions: 0 = none (elementwise), 1 = mean, 2 = sum. Mean and sum are
// deterministic: fixed-size chunks (independent of the thread count) are summed
// in a fixed order into per-chunk partials, which are then summed in order.
#pragma once

#include <cstdint>
#include <cmath>

#include "kernels/common.h"

namespace pf3d {
namespace wing {

enum Reduction : int { kNone = 0, kMean = 1, kSum = 2 };

// Elements per deterministic partial sum on the CPU.
constexpr int64_t kCpuChunk = 16384;

// Math shims: the CUDA device functions in device code, <cmath> on the host.
PF3D_HD float log1p_(float v) {
#if defined(__CUDA_ARCH__)
  return ::log1pf(v);
#else
  return std::log1p(v);
#endif
}
PF3D_HD double log1p_(double v) {
#if defined(__CUDA_ARCH__)
  return ::log1p(v);
#else
  return std::log1p(v);
#endif
}
PF3D_HD float pow_(float a, float b) {
#if defined(__CUDA_ARCH__)
  return ::powf(a, b);
#else
  return std::pow(a, b);
#endif
}
PF3D_HD double pow_(double a, double b) {
#if defined(__CUDA_ARCH__)
  return ::pow(a, b);
#else
  return std::pow(a, b);
#endif
}

// ---------------------------------------------------------------- Wing ----
struct WingParams {
  double omega = 10.0;
  double epsilon = 2.0;
  double C = 0.0;  // omega - omega * log1p(omega / epsilon); see make_wing_params
};

inline WingParams make_wing_params(double omega, double epsilon) {
  WingParams p;
  p.omega = omega;
  p.epsilon = epsilon;
  p.C = omega - omega * std::log1p(omega / epsilon);
  return p;
}

// Loss of one residual d = pred - target.
template <typename T>
PF3D_HD T wing_value(T d, T omega, T epsilon, T C) {
  const T x = d < T(0) ? -d : d;
  return x < omega ? omega * log1p_(x / epsilon) : x - C;
}

// d loss / d pred for one residual d = pred - target (sign(0) = 0).
template <typename T>
PF3D_HD T wing_grad(T d, T omega, T epsilon) {
  const T x = d < T(0) ? -d : d;
  const T s = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
  return x < omega ? s * (omega / (epsilon + x)) : s;
}

// CPU batch functions (raw contiguous arrays of n elements).
//   forward, reduction none: out[n] = loss per element;
//   forward, mean/sum:       out[0] = mean/sum (mean of n = 0 is NaN).
//   backward: grad_pred[i] = g_i * wing_grad(pred[i] - target[i]) (/ n for mean),
//             g_i = grad_out[i] for none, grad_out[0] otherwise.
void wing_forward_cpu(const float* pred, const float* target, int64_t n, const WingParams& p,
                      int reduction, float* out);
void wing_forward_cpu(const double* pred, const double* target, int64_t n,
                      const WingParams& p, int reduction, double* out);
void wing_backward_cpu(const float* grad_out, const float* pred, const float* target, int64_t n,
                       const WingParams& p, int reduction, float* grad_pred);
void wing_backward_cpu(const double* grad_out, const double* pred, const double* target,
                       int64_t n, const WingParams& p, int reduction, double* grad_pred);

// Exact (std::log1p) scalar forward used by the C++ tests to check the
// vectorised float path.
void wing_forward_cpu_exact(const float* pred, const float* target, int64_t n,
                            const WingParams& p, int reduction, float* out);

// ------------------------------------------------------- Adaptive Wing ----
struct AWingParams {
  double alpha = 2.1;
  double omega = 14.0;
  double epsilon = 1.0;
  double theta = 0.5;
  double weight = 10.0;
  double threshold = 0.2;
  int dilation = 3;  // odd, >= 1
};

// Loss (value) and d loss / d d (slope, before the sign of pred - y) for one
// pixel, unweighted. d >= 0. slope at d = 0 is 0 by definition.
//
// Both branches are evaluated with one pow and one log1p: with
// dd = min(d, theta) and P = (dd / epsilon)^e,
//   slope = omega * e * P / ((1 + P) * dd)        (= A when d >= theta)
//   value = omega * ln(1 + P) + max(d - theta, 0) * slope,
// which is omega * ln(1 + (d/eps)^e) below theta and A * d - C above it
// (C = theta * A - omega * ln(1 + (theta/eps)^e)).
template <typename T>
PF3D_HD void awing_value_slope(T d, T y, T alpha, T omega, T epsilon, T theta, T* value,
                               T* slope) {
  const T e = alpha - y;
  if (d == T(0)) {
    // pow(0, e): 0 for e > 0, 1 for e = 0, inf for e < 0 (as torch.pow).
    *value = omega * log1p_(pow_(T(0), e));
    *slope = T(0);
    return;
  }
  const bool below = d < theta;  // false for NaN d: NaN propagates through the linear part
  const T dd = below ? d : theta;
  const T P = pow_(dd / epsilon, e);
  const T s = omega * e * P / ((T(1) + P) * dd);
  *slope = s;
  *value = below ? omega * log1p_(P) : omega * log1p_(P) + (d - theta) * s;
}

// Dilated foreground test: is any target pixel in the dilation x dilation
// window centred on (i, j) (clipped to the map) > threshold?
template <typename T>
PF3D_HD bool awing_foreground(const T* map, int64_t H, int64_t W, int64_t i, int64_t j,
                              int dilation, T threshold) {
  const int64_t r = dilation / 2;
  const int64_t i0 = i - r < 0 ? 0 : i - r, i1 = i + r >= H ? H - 1 : i + r;
  const int64_t j0 = j - r < 0 ? 0 : j - r, j1 = j + r >= W ? W - 1 : j + r;
  for (int64_t a = i0; a <= i1; ++a)
    for (int64_t b = j0; b <= j1; ++b)
      if (map[a * W + b] > threshold) return true;
  return false;
}

// CPU batch functions on contiguous (BK, H, W) maps (BK = B * K).
//   forward: none -> out[BK*H*W]; mean/sum -> out[0] (mean of 0 elements = NaN).
//   backward: grad_pred = g * M * slope * sign(pred - y) (/ numel for mean).
void awing_forward_cpu(const float* pred, const float* target, int64_t BK, int64_t H, int64_t W,
                       const AWingParams& p, int reduction, float* out);
void awing_forward_cpu(const double* pred, const double* target, int64_t BK, int64_t H,
                       int64_t W, const AWingParams& p, int reduction, double* out);
void awing_backward_cpu(const float* grad_out, const float* pred, const float* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        float* grad_pred);
void awing_backward_cpu(const double* grad_out, const double* pred, const double* target,
                        int64_t BK, int64_t H, int64_t W, const AWingParams& p, int reduction,
                        double* grad_pred);

// Weight map M (BK, H, W) materialised (used by the C++ tests).
void awing_weight_map_cpu(const double* target, int64_t BK, int64_t H, int64_t W,
                          const AWingParams& p, double* out);

}  // namespace wing
}  // namespace pf3d
