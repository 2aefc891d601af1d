// CUDA kernels of the morphable reconstruction (torch-free).
//
// Forward: one block = TV vertices x BCH = BT * NBT batch elements; thread
// (tx, ty) computes vertex tx for batch elements ty, ty + BT, ... The basis
// rows of the tile are staged in shared memory KC columns at a time with
// coalesced loads (for dense vertices the tile's rows are one contiguous span),
// the coefficients of the batch chunk likewise; the pose is applied in
// registers and the output written once. No (B, 3N) shape in memory.
//
// Backward: the same tiles recompute s, then
//   grad_pose partial  = sum over the tile of g [s^T, 1]    (shared-memory sums)
//   grad_coef partial  = A_tile^T (fR)^T g                   (shared-memory sums)
// Each block walks a fixed set of tiles (grid-stride) and accumulates into its
// own row of a workspace (one thread per entry, fixed order), then a second
// kernel sums the rows in order: deterministic, no atomics.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/morphable.cuh"

namespace pf3d {
namespace morphable {
namespace {

constexpr int KC = 16;               // basis columns staged per step
constexpr int64_t kMaxGridY = 65535;

template <typename T>
__device__ __forceinline__ T basis_at(const Params<T>& p, int64_t r, int64_t k) {
  return k < p.I ? p.id_basis[r * p.I + k] : p.exp_basis[r * p.E + (k - p.I)];
}

template <typename T>
__device__ __forceinline__ T coeff_at(const Params<T>& p, int64_t b, int64_t k) {
  return k < p.I ? p.id_coeff[b * p.I + k] : p.exp_coeff[b * p.E + (k - p.I)];
}

// As[3 TV][KC + 1] <- rows of the tile's vertices, basis columns [k0, k0 + kc).
template <typename T, int TV>
__device__ __forceinline__ void load_basis_tile(const Params<T>& p, int64_t m0, int nv,
                                                int64_t k0, int kc, T* As, int tid,
                                                int nthreads) {
  for (int idx = tid; idx < 3 * TV * KC; idx += nthreads) {
    const int row = idx / KC, col = idx % KC;
    T val = T(0);
    if (row < 3 * nv && col < kc) {
      const int64_t v = vertex_of(p, m0 + row / 3);
      val = basis_at(p, 3 * v + row % 3, k0 + col);
    }
    As[row * (KC + 1) + col] = val;
  }
}

// Cs[KC][BCH] <- coefficients of batch elements [b0, b0 + BCH), columns [k0, k0 + kc).
template <typename T, int BCH>
__device__ __forceinline__ void load_coeff_tile(const Params<T>& p, int64_t b0, int64_t k0,
                                                int kc, T* Cs, int tid, int nthreads) {
  for (int idx = tid; idx < KC * BCH; idx += nthreads) {
    const int kk = idx / BCH, bb = idx % BCH;
    const int64_t b = b0 + bb;
    Cs[idx] = (kk < kc && b < p.B) ? coeff_at(p, b, k0 + kk) : T(0);
  }
}

// s[c][j] for vertex m0 + tx, batch elements b0 + ty + j * BT.
template <typename T, int TV, int BT, int NBT>
__device__ __forceinline__ void shape_tile(const Params<T>& p, int64_t m0, int nv, int64_t b0,
                                           T* As, T* Cs, T (&s)[3][NBT]) {
  constexpr int BCH = BT * NBT, NT = TV * BT;
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TV + tx;
  const bool valid = tx < nv;
  const int64_t v = valid ? vertex_of(p, m0 + tx) : 0;
#pragma unroll
  for (int c = 0; c < 3; ++c)
#pragma unroll
    for (int j = 0; j < NBT; ++j) s[c][j] = valid ? p.mean[3 * v + c] : T(0);
  const int64_t K = p.I + p.E;
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int kc = (int)(K - k0 < KC ? K - k0 : KC);
    load_basis_tile<T, TV>(p, m0, nv, k0, kc, As, tid, NT);
    load_coeff_tile<T, BCH>(p, b0, k0, kc, Cs, tid, NT);
    __syncthreads();
    const T* a = As + 3 * tx * (KC + 1);
    for (int kk = 0; kk < kc; ++kk) {
      const T a0 = a[kk], a1 = a[KC + 1 + kk], a2 = a[2 * (KC + 1) + kk];
#pragma unroll
      for (int j = 0; j < NBT; ++j) {
        const T c = Cs[kk * BCH + ty + j * BT];
        s[0][j] += a0 * c;
        s[1][j] += a1 * c;
        s[2][j] += a2 * c;
      }
    }
    __syncthreads();
  }
}

template <typename T, int TV, int BT, int NBT>
__global__ void __launch_bounds__(TV * BT)
    forward_kernel(Params<T> p, T* __restrict__ out, int64_t b_base) {
  constexpr int BCH = BT * NBT;
  __shared__ T As[3 * TV * (KC + 1)];
  __shared__ T Cs[KC * BCH];
  const int64_t m0 = (int64_t)blockIdx.x * TV;
  const int nv = (int)(p.M - m0 < TV ? p.M - m0 : TV);
  const int64_t b0 = b_base + (int64_t)blockIdx.y * BCH;
  T s[3][NBT];
  shape_tile<T, TV, BT, NBT>(p, m0, nv, b0, As, Cs, s);
  const int tx = threadIdx.x, ty = threadIdx.y;
  if (tx >= nv) return;
  const int64_t m = m0 + tx;
#pragma unroll
  for (int j = 0; j < NBT; ++j) {
    const int64_t b = b0 + ty + j * BT;
    if (b >= p.B) continue;
    const T sv[3] = {s[0][j], s[1][j], s[2][j]};
    T o[3];
    pose_apply(p.pose + 12 * b, sv, o);
    T* dst = out + (b * p.M + m) * 3;
    dst[0] = o[0];
    dst[1] = o[1];
    dst[2] = o[2];
  }
}

template <typename T, int TV, int BT, int NBT>
__global__ void __launch_bounds__(TV * BT)
    backward_kernel(Params<T> p, const T* __restrict__ grad, T* __restrict__ part,
                    int64_t b_base, int64_t ntiles) {
  constexpr int BCH = BT * NBT, NT = TV * BT;
  __shared__ T As[3 * TV * (KC + 1)];
  __shared__ T Cs[KC * BCH];
  __shared__ T S[3 * TV * BCH];  // s, then g_s = (fR)^T g
  __shared__ T G[3 * TV * BCH];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TV + tx;
  const int64_t K = p.I + p.E, J = 12 + K;
  const int64_t b0 = b_base + (int64_t)blockIdx.y * BCH;
  T* my = part + (int64_t)blockIdx.x * p.B * J;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const int64_t m0 = tile * TV;
    const int nv = (int)(p.M - m0 < TV ? p.M - m0 : TV);
    T s[3][NBT];
    shape_tile<T, TV, BT, NBT>(p, m0, nv, b0, As, Cs, s);
    const int64_t m = m0 + tx;
#pragma unroll
    for (int j = 0; j < NBT; ++j) {
      const int bb = ty + j * BT;
      const int64_t b = b0 + bb;
      const bool ok = tx < nv && b < p.B;
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        S[(3 * tx + c) * BCH + bb] = s[c][j];
        G[(3 * tx + c) * BCH + bb] = ok ? grad[(b * p.M + m) * 3 + c] : T(0);
      }
    }
    __syncthreads();
    // grad_pose partials: entry q = 4 i + jj of batch element bb
    for (int o = tid; o < 12 * BCH; o += NT) {
      const int q = o / BCH, bb = o % BCH;
      const int64_t b = b0 + bb;
      if (b >= p.B) continue;
      const int i = q / 4, jj = q % 4;
      T acc = T(0);
      for (int t = 0; t < nv; ++t) {
        const T gi = G[(3 * t + i) * BCH + bb];
        acc += jj < 3 ? gi * S[(3 * t + jj) * BCH + bb] : gi;
      }
      my[b * J + q] += acc;
    }
    __syncthreads();
    // g_s = (fR)^T g into S
#pragma unroll
    for (int j = 0; j < NBT; ++j) {
      const int bb = ty + j * BT;
      const int64_t b = b0 + bb;
      T gs[3] = {T(0), T(0), T(0)};
      if (tx < nv && b < p.B) {
        const T g[3] = {G[(3 * tx) * BCH + bb], G[(3 * tx + 1) * BCH + bb],
                        G[(3 * tx + 2) * BCH + bb]};
        pose_apply_transpose(p.pose + 12 * b, g, gs);
      }
#pragma unroll
      for (int c = 0; c < 3; ++c) S[(3 * tx + c) * BCH + bb] = gs[c];
    }
    __syncthreads();
    // grad_coef partials: A_tile^T g_s, KC columns at a time
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int kc = (int)(K - k0 < KC ? K - k0 : KC);
      load_basis_tile<T, TV>(p, m0, nv, k0, kc, As, tid, NT);
      __syncthreads();
      for (int o = tid; o < KC * BCH; o += NT) {
        const int kk = o / BCH, bb = o % BCH;
        const int64_t b = b0 + bb;
        if (kk >= kc || b >= p.B) continue;
        T acc = T(0);
        for (int r = 0; r < 3 * nv; ++r) acc += As[r * (KC + 1) + kk] * S[r * BCH + bb];
        my[b * J + 12 + k0 + kk] += acc;
      }
      __syncthreads();
    }
  }
}

template <typename T>
__global__ void reduce_kernel(Params<T> p, const T* __restrict__ part, int64_t gx,
                              T* __restrict__ gpose, T* __restrict__ gid,
                              T* __restrict__ gexp) {
  const int64_t J = 12 + p.I + p.E, total = p.B * J;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  T s = T(0);
  for (int64_t x = 0; x < gx; ++x) s += part[x * total + idx];
  const int64_t b = idx / J, j = idx % J;
  if (j < 12)
    gpose[b * 12 + j] = s;
  else if (j < 12 + p.I)
    gid[b * p.I + (j - 12)] = s;
  else
    gexp[b * p.E + (j - 12 - p.I)] = s;
}

constexpr int kFwdTV = 64;
constexpr int kBwdTV = 32;

template <typename T, int TV, int BT, int NBT>
cudaError_t launch_forward(const Params<T>& p, T* out, cudaStream_t stream) {
  constexpr int BCH = BT * NBT;
  const int64_t ntiles = (p.M + TV - 1) / TV;
  const int64_t nb = (p.B + BCH - 1) / BCH;
  for (int64_t y0 = 0; y0 < nb; y0 += kMaxGridY) {
    const dim3 grid((unsigned)ntiles, (unsigned)std::min(kMaxGridY, nb - y0));
    forward_kernel<T, TV, BT, NBT><<<grid, dim3(TV, BT), 0, stream>>>(p, out, y0 * BCH);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

// Number of blocks along the vertices in the backward pass (depends on the
// shapes only, so that the reduction order is fixed).
template <typename T>
int64_t backward_gx(const Params<T>& p) {
  const int64_t ntiles = (p.M + kBwdTV - 1) / kBwdTV;
  const int64_t J = 12 + p.I + p.E;
  const int64_t cap = std::max<int64_t>(1, (int64_t(1) << 25) / std::max<int64_t>(1, p.B * J));
  return std::max<int64_t>(1, std::min<int64_t>({ntiles, int64_t(128), cap}));
}

template <typename T, int TV, int BT, int NBT>
cudaError_t launch_backward(const Params<T>& p, const T* grad, T* part, int64_t gx,
                            cudaStream_t stream) {
  constexpr int BCH = BT * NBT;
  const int64_t ntiles = (p.M + TV - 1) / TV;
  const int64_t nb = (p.B + BCH - 1) / BCH;
  for (int64_t y0 = 0; y0 < nb; y0 += kMaxGridY) {
    const dim3 grid((unsigned)gx, (unsigned)std::min(kMaxGridY, nb - y0));
    backward_kernel<T, TV, BT, NBT>
        <<<grid, dim3(TV, BT), 0, stream>>>(p, grad, part, y0 * BCH, ntiles);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace

template <typename T>
cudaError_t forward_cuda(const Params<T>& p, T* out, cudaStream_t stream) {
  if (p.B <= 0 || p.M <= 0) return cudaSuccess;
  if (p.B == 1) return launch_forward<T, kFwdTV, 1, 1>(p, out, stream);
  if (p.B <= 4) return launch_forward<T, kFwdTV, 1, 4>(p, out, stream);
  return launch_forward<T, kFwdTV, 4, 4>(p, out, stream);
}

template <typename T>
size_t backward_cuda_workspace_bytes(const Params<T>& p) {
  if (p.B <= 0 || p.M <= 0) return 0;
  return (size_t)backward_gx(p) * (size_t)p.B * (size_t)(12 + p.I + p.E) * sizeof(T);
}

template <typename T>
cudaError_t backward_cuda(const Params<T>& p, const T* grad, T* gpose, T* gid, T* gexp,
                          void* workspace, cudaStream_t stream) {
  if (p.B <= 0) return cudaSuccess;
  const int64_t J = 12 + p.I + p.E;
  if (p.M <= 0) {
    cudaError_t err = cudaMemsetAsync(gpose, 0, sizeof(T) * 12 * p.B, stream);
    if (err == cudaSuccess && p.I) err = cudaMemsetAsync(gid, 0, sizeof(T) * p.I * p.B, stream);
    if (err == cudaSuccess && p.E) err = cudaMemsetAsync(gexp, 0, sizeof(T) * p.E * p.B, stream);
    return err;
  }
  const int64_t gx = backward_gx(p);
  T* part = static_cast<T*>(workspace);
  cudaError_t err = cudaMemsetAsync(part, 0, backward_cuda_workspace_bytes(p), stream);
  if (err != cudaSuccess) return err;
  if (p.B == 1)
    err = launch_backward<T, kBwdTV, 1, 1>(p, grad, part, gx, stream);
  else
    err = launch_backward<T, kBwdTV, 4, 4>(p, grad, part, gx, stream);
  if (err != cudaSuccess) return err;
  const int64_t total = p.B * J;
  const int threads = 256;
  reduce_kernel<T><<<(unsigned)((total + threads - 1) / threads), threads, 0, stream>>>(
      p, part, gx, gpose, gid, gexp);
  return cudaGetLastError();
}

#define PF3D_MM_CUDA_INSTANTIATE(T)                                                         \
  template cudaError_t forward_cuda<T>(const Params<T>&, T*, cudaStream_t);                 \
  template size_t backward_cuda_workspace_bytes<T>(const Params<T>&);                       \
  template cudaError_t backward_cuda<T>(const Params<T>&, const T*, T*, T*, T*, void*,      \
                                        cudaStream_t);
PF3D_MM_CUDA_INSTANTIATE(float)
PF3D_MM_CUDA_INSTANTIATE(double)
#undef PF3D_MM_CUDA_INSTANTIATE

}  // namespace morphable
}  // namespace pf3d
