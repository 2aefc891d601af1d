// CUDA kernels of the heatmap family (torch-free). See heatmap.cuh / heatmap.h.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/heatmap.cuh"

namespace pf3d {
namespace heatmap {
namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 4;          // encode: output elements per thread
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride above this

template <typename T> struct AccT { using type = float; };
template <> struct AccT<double> { using type = double; };

__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ double ld(double v) { return v; }
__device__ __forceinline__ float ld(__half v) { return __half2float(v); }

__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(double* p, double v) { *p = v; }
__device__ __forceinline__ void st(__half* p, float v) { *p = __float2half_rn(v); }

__device__ __forceinline__ float dexp(float v) { return expf(v); }
__device__ __forceinline__ double dexp(double v) { return exp(v); }

inline int grid_for(int64_t blocks) {
  return int(blocks < kMaxBlocks ? (blocks < 1 ? 1 : blocks) : kMaxBlocks);
}

// ---------------------------------------------------------------- encode --
template <typename P, typename O>
__global__ void encode_kernel(EncodeParams p, const P* __restrict__ pts,
                              const uint8_t* __restrict__ vis, O* __restrict__ out,
                              float* __restrict__ weight, int64_t blocks_per_map) {
  using A = typename AccT<O>::type;
  const int32_t W = int32_t(p.width);
  const int32_t HW = int32_t(p.height * p.width);
  const int64_t nblocks = p.maps * blocks_per_map;
  const A k = A(-1.0 / (2.0 * p.sigma * p.sigma));
  for (int64_t b = blockIdx.x; b < nblocks; b += gridDim.x) {
    const int64_t m = b / blocks_per_map;
    const int32_t tile = int32_t(b - m * blocks_per_map);
    double cx = 0.0, cy = 0.0;
    const bool ok = encode_center(double(pts[2 * m]), double(pts[2 * m + 1]),
                                  vis ? vis[m] != 0 : true, p.height, p.width, p.unbiased, &cx,
                                  &cy);
    if (tile == 0 && threadIdx.x == 0) weight[m] = ok ? 1.0f : 0.0f;
    O* map = out + m * int64_t(HW);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int32_t e = tile * (kThreads * kPerThread) + j * kThreads + int32_t(threadIdx.x);
      if (e >= HW) break;
      const int32_t y = e / W, x = e - y * W;
      A v = A(0);
      if (ok && encode_inside(double(x), cx, p.sigma) && encode_inside(double(y), cy, p.sigma)) {
        const A dx = A(double(x) - cx), dy = A(double(y) - cy);
        v = dexp(dx * dx * k) * dexp(dy * dy * k);
      }
      st(map + e, v);
    }
  }
}

template <typename P, typename O>
cudaError_t encode_launch(const EncodeParams& p, const P* pts, const uint8_t* vis, O* out,
                          float* weight, cudaStream_t stream) {
  const int64_t per_block = kThreads * kPerThread;
  const int64_t bpm = (p.height * p.width + per_block - 1) / per_block;
  encode_kernel<<<grid_for(p.maps * bpm), kThreads, 0, stream>>>(p, pts, vis, out, weight, bpm);
  return cudaGetLastError();
}

template <typename P>
cudaError_t encode_out(const EncodeParams& p, const P* pts, const uint8_t* vis, DType od,
                       void* out, float* w, cudaStream_t s) {
  switch (od) {
    case DType::kHalf: return encode_launch(p, pts, vis, static_cast<__half*>(out), w, s);
    case DType::kDouble: return encode_launch(p, pts, vis, static_cast<double*>(out), w, s);
    default: return encode_launch(p, pts, vis, static_cast<float*>(out), w, s);
  }
}

// ------------------------------------------------------------ reductions --
template <typename A>
__device__ A block_sum(A v, A* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const A r = sh[0];
  __syncthreads();
  return r;
}

// max ignoring NaN (-inf when all NaN)
template <typename A>
__device__ A block_max(A v, A* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const A o = sh[threadIdx.x + s];
      if (o > sh[threadIdx.x]) sh[threadIdx.x] = o;
    }
    __syncthreads();
  }
  const A r = sh[0];
  __syncthreads();
  return r;
}

// ---------------------------------------------------------------- decode --
template <typename T>
__global__ void decode_kernel(DecodeParams p, const T* __restrict__ hm, DarkWeights w,
                              typename AccT<T>::type* __restrict__ coords,
                              typename AccT<T>::type* __restrict__ scores) {
  using A = typename AccT<T>::type;
  __shared__ A sv[kThreads];
  __shared__ int64_t si[kThreads];
  __shared__ double sL[13];
  const int64_t H = p.height, W = p.width, HW = H * W;
  for (int64_t m = blockIdx.x; m < p.maps; m += gridDim.x) {
    const T* map = hm + m * HW;
    A bv = A(0);
    int64_t bi = -1;
    for (int64_t e = threadIdx.x; e < HW; e += kThreads) {
      const A v = ld(map[e]);
      if (bi < 0 || argmax_better(v, e, bv, bi)) {
        bv = v;
        bi = e;
      }
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) {
        const int64_t oi = si[threadIdx.x + s];
        if (oi >= 0 && (si[threadIdx.x] < 0 ||
                        argmax_better(sv[threadIdx.x + s], oi, sv[threadIdx.x], si[threadIdx.x]))) {
          sv[threadIdx.x] = sv[threadIdx.x + s];
          si[threadIdx.x] = oi;
        }
      }
      __syncthreads();
    }
    const int64_t idx = si[0];
    const int64_t px = idx % W, py = idx / W;
    const bool dark = p.refine == kRefineDark && dark_applies(px, py, H, W);
    if (dark && threadIdx.x < 13) {
      int dy, dx;
      dark_point(int(threadIdx.x), &dy, &dx);
      sL[threadIdx.x] = dark_logblur(map, H, W, py + dy, px + dx, w,
                                     [](T v) { return double(ld(v)); });
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      A x = A(px), y = A(py);
      if (p.refine == kRefineQuarter) {
        const T* row = map + py * W;
        if (px > 0 && px < W - 1) x += quarter_step<A>(ld(row[px - 1]), ld(row[px + 1]));
        if (py > 0 && py < H - 1)
          y += quarter_step<A>(ld(map[(py - 1) * W + px]), ld(map[(py + 1) * W + px]));
      } else if (dark) {
        double ox, oy;
        if (dark_solve(sL, &ox, &oy)) {
          x = A(double(px) + ox);
          y = A(double(py) + oy);
        }
      }
      coords[2 * m] = x;
      coords[2 * m + 1] = y;
      scores[m] = ld(map[idx]);
    }
    __syncthreads();
  }
}

// ----------------------------------------------------------- soft-argmax --
// Per map: mx = max(beta m) (NaN skipped), e = exp(beta m - mx); returns the
// block-wide (S, SX, SY) to every thread.
template <typename T>
__device__ void softmax_stats(const T* map, int64_t H, int64_t W, T beta, T* sh, T* mx, T* S,
                              T* SX, T* SY, bool need_xy) {
  const int64_t HW = H * W;
  T a = -INFINITY;
  for (int64_t e = threadIdx.x; e < HW; e += kThreads) {
    const T v = beta * map[e];
    if (v > a) a = v;
  }
  *mx = block_max(a, sh);
  T s = 0, sx = 0, sy = 0;
  for (int64_t e = threadIdx.x; e < HW; e += kThreads) {
    const T ev = dexp(beta * map[e] - *mx);
    s += ev;
    if (need_xy) {
      sx += ev * T(e % W);
      sy += ev * T(e / W);
    }
  }
  *S = block_sum(s, sh);
  if (need_xy) {
    *SX = block_sum(sx, sh);
    *SY = block_sum(sy, sh);
  }
}

template <typename T>
__global__ void soft_argmax_kernel(SoftArgmaxParams p, const T* __restrict__ hm,
                                   T* __restrict__ coords) {
  __shared__ T sh[kThreads];
  const int64_t HW = p.height * p.width;
  for (int64_t m = blockIdx.x; m < p.maps; m += gridDim.x) {
    T mx, S, SX, SY;
    softmax_stats(hm + m * HW, p.height, p.width, T(p.beta), sh, &mx, &S, &SX, &SY, true);
    if (threadIdx.x == 0) {
      coords[2 * m] = SX / S;
      coords[2 * m + 1] = SY / S;
    }
  }
}

template <typename T>
__global__ void soft_argmax_backward_kernel(SoftArgmaxParams p, const T* __restrict__ gc,
                                            const T* __restrict__ hm, const T* __restrict__ c,
                                            T* __restrict__ gh) {
  __shared__ T sh[kThreads];
  const int64_t W = p.width, HW = p.height * p.width;
  const T beta = T(p.beta);
  for (int64_t m = blockIdx.x; m < p.maps; m += gridDim.x) {
    const T* map = hm + m * HW;
    T mx, S, SX, SY;
    softmax_stats(map, p.height, W, beta, sh, &mx, &S, &SX, &SY, false);
    const T k = beta / S, gx = gc[2 * m], gy = gc[2 * m + 1], cx = c[2 * m], cy = c[2 * m + 1];
    for (int64_t e = threadIdx.x; e < HW; e += kThreads) {
      const T ev = dexp(beta * map[e] - mx);
      gh[m * HW + e] = k * ev * (gx * (T(e % W) - cx) + gy * (T(e / W) - cy));
    }
  }
}

}  // namespace

cudaError_t encode_cuda(const EncodeParams& p, DType points_dtype, const void* points,
                        const uint8_t* visible, DType out_dtype, void* out, float* weight,
                        cudaStream_t stream) {
  if (p.maps <= 0) return cudaSuccess;
  if (p.height * p.width >= (int64_t(1) << 31)) return cudaErrorInvalidValue;
  if (points_dtype == DType::kDouble)
    return encode_out(p, static_cast<const double*>(points), visible, out_dtype, out, weight,
                      stream);
  return encode_out(p, static_cast<const float*>(points), visible, out_dtype, out, weight,
                    stream);
}

cudaError_t decode_cuda(const DecodeParams& p, DType in_dtype, const void* heatmaps,
                        const DarkWeights& w, void* coords, void* scores, cudaStream_t stream) {
  if (p.maps <= 0) return cudaSuccess;
  const int grid = grid_for(p.maps);
  switch (in_dtype) {
    case DType::kHalf:
      decode_kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<const __half*>(heatmaps), w,
                                                   static_cast<float*>(coords),
                                                   static_cast<float*>(scores));
      break;
    case DType::kDouble:
      decode_kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<const double*>(heatmaps), w,
                                                   static_cast<double*>(coords),
                                                   static_cast<double*>(scores));
      break;
    default:
      decode_kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<const float*>(heatmaps), w,
                                                   static_cast<float*>(coords),
                                                   static_cast<float*>(scores));
  }
  return cudaGetLastError();
}

cudaError_t soft_argmax_cuda(const SoftArgmaxParams& p, DType dtype, const void* heatmaps,
                             void* coords, cudaStream_t stream) {
  if (p.maps <= 0) return cudaSuccess;
  const int grid = grid_for(p.maps);
  if (dtype == DType::kDouble)
    soft_argmax_kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<const double*>(heatmaps),
                                                      static_cast<double*>(coords));
  else
    soft_argmax_kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<const float*>(heatmaps),
                                                      static_cast<float*>(coords));
  return cudaGetLastError();
}

cudaError_t soft_argmax_backward_cuda(const SoftArgmaxParams& p, DType dtype,
                                      const void* grad_coords, const void* heatmaps,
                                      const void* coords, void* grad_heatmaps,
                                      cudaStream_t stream) {
  if (p.maps <= 0) return cudaSuccess;
  const int grid = grid_for(p.maps);
  if (dtype == DType::kDouble)
    soft_argmax_backward_kernel<<<grid, kThreads, 0, stream>>>(
        p, static_cast<const double*>(grad_coords), static_cast<const double*>(heatmaps),
        static_cast<const double*>(coords), static_cast<double*>(grad_heatmaps));
  else
    soft_argmax_backward_kernel<<<grid, kThreads, 0, stream>>>(
        p, static_cast<const float*>(grad_coords), static_cast<const float*>(heatmaps),
        static_cast<const float*>(coords), static_cast<float*>(grad_heatmaps));
  return cudaGetLastError();
}

}  // namespace heatmap
}  // namespace pf3d
