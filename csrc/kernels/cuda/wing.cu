// Wing / Adaptive Wing losses: CUDA kernels (torch-free).
#include "kernels/cuda/wing.cuh"

#include <cuda_runtime.h>

namespace pf3d {
namespace wing {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxReduceBlocks = 1024;
constexpr int64_t kMaxMapBlocks = 65536;
constexpr int kPass2Threads = 1024;

// ---- element functors ------------------------------------------------------
template <typename T>
struct WingValueF {
  const T* pred;
  const T* target;
  T omega, epsilon, C;
  __device__ __forceinline__ T operator()(int64_t i) const {
    return wing_value<T>(pred[i] - target[i], omega, epsilon, C);
  }
};

template <typename T>
struct WingGradF {
  const T* grad_out;
  const T* pred;
  const T* target;
  T omega, epsilon;
  bool elementwise;  // reduction none
  T scale;           // 1/n for mean, 1 for sum
  __device__ __forceinline__ T operator()(int64_t i) const {
    const T g = elementwise ? grad_out[i] : grad_out[0] * scale;
    return g * wing_grad<T>(pred[i] - target[i], omega, epsilon);
  }
};

template <typename T>
struct AWingBase {
  const T* pred;
  const T* target;
  int64_t H, W;
  T alpha, omega, epsilon, theta, weight, threshold;
  int dilation;
  // value and slope times the weight map M, and the sign of pred - y.
  __device__ __forceinline__ void eval(int64_t i, T* v, T* s, T* sign) const {
    const T y = target[i];
    const T diff = pred[i] - y;
    const T d = diff < T(0) ? -diff : diff;
    awing_value_slope<T>(d, y, alpha, omega, epsilon, theta, v, s);
    if (weight != T(0)) {
      const int64_t hw = H * W;
      const int64_t m = i / hw;
      const int64_t rem = i - m * hw;
      const int64_t r = rem / W;
      const int64_t c = rem - r * W;
      const bool fg = awing_foreground<T>(target + m * hw, H, W, r, c, dilation, threshold);
      const T M = fg ? T(1) + weight : T(1);
      *v *= M;
      *s *= M;
    }
    *sign = diff > T(0) ? T(1) : (diff < T(0) ? T(-1) : T(0));
  }
};

template <typename T>
struct AWingValueF {
  AWingBase<T> b;
  __device__ __forceinline__ T operator()(int64_t i) const {
    T v, s, sg;
    b.eval(i, &v, &s, &sg);
    return v;
  }
};

template <typename T>
struct AWingGradF {
  AWingBase<T> b;
  const T* grad_out;
  bool elementwise;
  T scale;
  __device__ __forceinline__ T operator()(int64_t i) const {
    T v, s, sg;
    b.eval(i, &v, &s, &sg);
    const T g = elementwise ? grad_out[i] : grad_out[0] * scale;
    return g * (s * sg);
  }
};

// ---- generic kernels ---------------------------------------------------------
template <typename T, typename F>
__global__ void map_kernel(int64_t n, F f, T* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[i] = f(i);
}

// Fixed-order tree reduction of one value per thread over the block.
template <typename T, int NT>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T sh[NT];
  sh[threadIdx.x] = v;
  __syncthreads();
#pragma unroll
  for (int s = NT / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

template <typename T, typename F>
__global__ void __launch_bounds__(kThreads) reduce_pass1(int64_t n, F f, T* __restrict__ partial) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  T acc = T(0);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += stride)
    acc += f(i);
  const T s = block_sum<T, kThreads>(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <typename T>
__global__ void __launch_bounds__(kPass2Threads)
    reduce_pass2(const T* __restrict__ partial, int64_t nparts, T scale, T* __restrict__ out) {
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < nparts; i += kPass2Threads) acc += partial[i];
  const T s = block_sum<T, kPass2Threads>(acc);
  if (threadIdx.x == 0) out[0] = s * scale;
}

int map_blocks(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > kMaxMapBlocks) b = kMaxMapBlocks;
  if (b < 1) b = 1;
  return static_cast<int>(b);
}

template <typename T, typename F>
cudaError_t run_forward(int64_t n, const F& f, int reduction, T* out, T* partial,
                        cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (reduction == kNone) {
    map_kernel<T, F><<<map_blocks(n), kThreads, 0, stream>>>(n, f, out);
    return cudaGetLastError();
  }
  const int64_t nb = wing_reduce_blocks(n);
  reduce_pass1<T, F><<<static_cast<int>(nb), kThreads, 0, stream>>>(n, f, partial);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const T scale = reduction == kMean ? static_cast<T>(1.0 / static_cast<double>(n)) : T(1);
  reduce_pass2<T><<<1, kPass2Threads, 0, stream>>>(partial, nb, scale, out);
  return cudaGetLastError();
}

template <typename T, typename F>
cudaError_t run_map(int64_t n, const F& f, T* out, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  map_kernel<T, F><<<map_blocks(n), kThreads, 0, stream>>>(n, f, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t wing_forward_t(const T* pred, const T* target, int64_t n, const WingParams& p,
                           int reduction, T* out, T* partial, cudaStream_t stream) {
  WingValueF<T> f{pred, target, static_cast<T>(p.omega), static_cast<T>(p.epsilon),
                  static_cast<T>(p.C)};
  return run_forward<T>(n, f, reduction, out, partial, stream);
}

template <typename T>
cudaError_t wing_backward_t(const T* grad_out, const T* pred, const T* target, int64_t n,
                            const WingParams& p, int reduction, T* grad_pred,
                            cudaStream_t stream) {
  const T scale = reduction == kMean ? static_cast<T>(1.0 / static_cast<double>(n)) : T(1);
  WingGradF<T> f{grad_out, pred, target, static_cast<T>(p.omega), static_cast<T>(p.epsilon),
                 reduction == kNone, scale};
  return run_map<T>(n, f, grad_pred, stream);
}

template <typename T>
AWingBase<T> awing_base(const T* pred, const T* target, int64_t H, int64_t W,
                        const AWingParams& p) {
  return AWingBase<T>{pred,
                      target,
                      H,
                      W,
                      static_cast<T>(p.alpha),
                      static_cast<T>(p.omega),
                      static_cast<T>(p.epsilon),
                      static_cast<T>(p.theta),
                      static_cast<T>(p.weight),
                      static_cast<T>(p.threshold),
                      p.dilation};
}

template <typename T>
cudaError_t awing_forward_t(const T* pred, const T* target, int64_t BK, int64_t H, int64_t W,
                            const AWingParams& p, int reduction, T* out, T* partial,
                            cudaStream_t stream) {
  AWingValueF<T> f{awing_base<T>(pred, target, H, W, p)};
  return run_forward<T>(BK * H * W, f, reduction, out, partial, stream);
}

template <typename T>
cudaError_t awing_backward_t(const T* grad_out, const T* pred, const T* target, int64_t BK,
                             int64_t H, int64_t W, const AWingParams& p, int reduction,
                             T* grad_pred, cudaStream_t stream) {
  const int64_t n = BK * H * W;
  const T scale = reduction == kMean ? static_cast<T>(1.0 / static_cast<double>(n)) : T(1);
  AWingGradF<T> f{awing_base<T>(pred, target, H, W, p), grad_out, reduction == kNone, scale};
  return run_map<T>(n, f, grad_pred, stream);
}

}  // namespace

int64_t wing_reduce_blocks(int64_t n) {
  int64_t b = (n + 4 * kThreads - 1) / (4 * kThreads);
  if (b > kMaxReduceBlocks) b = kMaxReduceBlocks;
  if (b < 1) b = 1;
  return b;
}

cudaError_t wing_forward_cuda(const float* pred, const float* target, int64_t n,
                              const WingParams& p, int reduction, float* out, float* partial,
                              cudaStream_t stream) {
  return wing_forward_t<float>(pred, target, n, p, reduction, out, partial, stream);
}
cudaError_t wing_forward_cuda(const double* pred, const double* target, int64_t n,
                              const WingParams& p, int reduction, double* out, double* partial,
                              cudaStream_t stream) {
  return wing_forward_t<double>(pred, target, n, p, reduction, out, partial, stream);
}
cudaError_t wing_backward_cuda(const float* grad_out, const float* pred, const float* target,
                               int64_t n, const WingParams& p, int reduction, float* grad_pred,
                               cudaStream_t stream) {
  return wing_backward_t<float>(grad_out, pred, target, n, p, reduction, grad_pred, stream);
}
cudaError_t wing_backward_cuda(const double* grad_out, const double* pred,
                               const double* target, int64_t n, const WingParams& p,
                               int reduction, double* grad_pred, cudaStream_t stream) {
  return wing_backward_t<double>(grad_out, pred, target, n, p, reduction, grad_pred, stream);
}
cudaError_t awing_forward_cuda(const float* pred, const float* target, int64_t BK, int64_t H,
                               int64_t W, const AWingParams& p, int reduction, float* out,
                               float* partial, cudaStream_t stream) {
  return awing_forward_t<float>(pred, target, BK, H, W, p, reduction, out, partial, stream);
}
cudaError_t awing_forward_cuda(const double* pred, const double* target, int64_t BK, int64_t H,
                               int64_t W, const AWingParams& p, int reduction, double* out,
                               double* partial, cudaStream_t stream) {
  return awing_forward_t<double>(pred, target, BK, H, W, p, reduction, out, partial, stream);
}
cudaError_t awing_backward_cuda(const float* grad_out, const float* pred, const float* target,
                                int64_t BK, int64_t H, int64_t W, const AWingParams& p,
                                int reduction, float* grad_pred, cudaStream_t stream) {
  return awing_backward_t<float>(grad_out, pred, target, BK, H, W, p, reduction, grad_pred,
                                 stream);
}
cudaError_t awing_backward_cuda(const double* grad_out, const double* pred,
                                const double* target, int64_t BK, int64_t H, int64_t W,
                                const AWingParams& p, int reduction, double* grad_pred,
                                cudaStream_t stream) {
  return awing_backward_t<double>(grad_out, pred, target, BK, H, W, p, reduction, grad_pred,
                                  stream);
}

}  // namespace wing
}  // namespace pf3d
