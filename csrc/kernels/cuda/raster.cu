// CUDA kernels of the raster family. Same per-face math as the CPU path
// (kernels/raster.h, correctly rounded __d*_rn primitives on the device), so
// CPU and CUDA results are identical.
//
// rasterize: one thread per (batch element, triangle); the triangle's box of
// pixel centres comes from the same clamped ceil/floor as on the CPU, most
// (sub-pixel) triangles leave after a few instructions, the others test their
// centres and update a 64-bit per-pixel key with atomicMax; a per-pixel
// resolve kernel then recomputes barycentrics and depth of the winning face.
#include "kernels/cuda/raster.cuh"

#include <algorithm>

namespace pf3d {
namespace raster {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t ordered32(float z) {
  const uint32_t u = __float_as_uint(z);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ unsigned long long ordered64(double z) {
  const unsigned long long u = (unsigned long long)__double_as_longlong(z);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

__device__ __forceinline__ float rn_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double rn_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float rn_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double rn_add(double a, double b) { return __dadd_rn(a, b); }

inline int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return (int)std::min<int64_t>(std::max<int64_t>(b, 1), 1 << 20);
}

// Centre box of a triangle in window coordinates; false when empty.
template <typename T>
__device__ __forceinline__ bool tri_box(const T* va, const T* vb, const T* vc,
                                        const RasterParams& p, int32_t& imin, int32_t& imax,
                                        int32_t& jmin, int32_t& jmax) {
  const double dx0 = (double)p.x0, dy0 = (double)p.y0;
  int32_t c[3], f[3], cy[3], fy[3];
  centre_range((double)va[0] - dx0, p.W, c[0], f[0]);
  centre_range((double)vb[0] - dx0, p.W, c[1], f[1]);
  centre_range((double)vc[0] - dx0, p.W, c[2], f[2]);
  centre_range((double)va[1] - dy0, p.H, cy[0], fy[0]);
  centre_range((double)vb[1] - dy0, p.H, cy[1], fy[1]);
  centre_range((double)vc[1] - dy0, p.H, cy[2], fy[2]);
  jmin = max(0, min(c[0], min(c[1], c[2])));
  jmax = min((int32_t)(p.W - 1), max(f[0], max(f[1], f[2])));
  imin = max(0, min(cy[0], min(cy[1], cy[2])));
  imax = min((int32_t)(p.H - 1), max(fy[0], max(fy[1], fy[2])));
  return imin <= imax && jmin <= jmax;
}

// MODE 0: float packed key; MODE 1: double depth max; MODE 2: double tie pass.
template <typename T, int MODE>
__global__ void raster_faces_kernel(const T* __restrict__ verts,
                                    const int32_t* __restrict__ tris, RasterParams p,
                                    unsigned long long* __restrict__ keys,
                                    unsigned int* __restrict__ faces) {
  const int64_t total = p.B * p.F;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = idx / p.F, f = idx - b * p.F;
    const T* V = verts + b * p.N * 3;
    const T* va = V + 3 * (int64_t)__ldg(tris + 3 * f);
    const T* vb = V + 3 * (int64_t)__ldg(tris + 3 * f + 1);
    const T* vc = V + 3 * (int64_t)__ldg(tris + 3 * f + 2);
    int32_t imin, imax, jmin, jmax;
    if (!tri_box(va, vb, vc, p, imin, imax, jmin, jmax)) continue;
    TriSetup t;
    if (!tri_setup(va, vb, vc, t)) continue;
    const int64_t base = b * p.H * p.W;
    for (int32_t i = imin; i <= imax; ++i) {
      const double py = (double)(p.y0 + i);
      for (int32_t j = jmin; j <= jmax; ++j) {
        double bc[3], z;
        if (!tri_eval(t, (double)(p.x0 + j), py, bc, z)) continue;
        const T zt = depth_value<T>(z);
        const int64_t pix = base + (int64_t)i * p.W + j;
        if (MODE == 0) {
          const unsigned long long key =
              ((unsigned long long)ordered32((float)zt) << 32) | (unsigned long long)(~(uint32_t)f);
          atomicMax(keys + pix, key);
        } else if (MODE == 1) {
          atomicMax(keys + pix, ordered64((double)zt));
        } else {
          if (ordered64((double)zt) == keys[pix]) atomicMin(faces + pix, (unsigned int)f);
        }
      }
    }
  }
}

template <typename T, bool PACKED>
__global__ void raster_resolve_kernel(const T* __restrict__ verts,
                                      const int32_t* __restrict__ tris, RasterParams p,
                                      const unsigned long long* __restrict__ keys,
                                      const unsigned int* __restrict__ faces,
                                      int32_t* __restrict__ face_out, T* __restrict__ bary,
                                      T* __restrict__ depth) {
  const int64_t HW = p.H * p.W, total = p.B * HW;
  for (int64_t pix = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; pix < total;
       pix += (int64_t)gridDim.x * blockDim.x) {
    int64_t f = -1;
    if (PACKED) {
      const unsigned long long key = keys[pix];
      if (key != 0ull) f = (int64_t)(~(uint32_t)(key & 0xffffffffull));
    } else {
      const unsigned int fu = faces[pix];
      if (fu != 0xffffffffu) f = fu;
    }
    T b0 = 0, b1 = 0, b2 = 0, zz = 0;
    if (f >= 0) {
      const int64_t b = pix / HW, rem = pix - b * HW;
      const int64_t i = rem / p.W, j = rem - i * p.W;
      const T* V = verts + b * p.N * 3;
      TriSetup t;
      double bc[3], z;
      if (tri_setup(V + 3 * (int64_t)tris[3 * f], V + 3 * (int64_t)tris[3 * f + 1],
                    V + 3 * (int64_t)tris[3 * f + 2], t) &&
          tri_eval(t, (double)(p.x0 + j), (double)(p.y0 + i), bc, z)) {
        b0 = (T)bc[0];
        b1 = (T)bc[1];
        b2 = (T)bc[2];
        zz = depth_value<T>(z);
      } else {
        f = -1;  // unreachable: the same math found it covered
      }
    }
    face_out[pix] = (int32_t)f;
    bary[3 * pix] = b0;
    bary[3 * pix + 1] = b1;
    bary[3 * pix + 2] = b2;
    depth[pix] = zz;
  }
}

template <typename T>
__global__ void interpolate_kernel(const T* __restrict__ attr, const int32_t* __restrict__ face,
                                   const T* __restrict__ bary, const int32_t* __restrict__ tris,
                                   InterpParams p, T* __restrict__ out) {
  const int64_t total = p.B * p.HW * p.C;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = e / p.C, c = e - q * p.C;
    const int32_t f = face[q];
    T v = 0;
    if (f >= 0) {
      const int64_t b = q / p.HW;
      const T* A = attr + (p.broadcast ? 0 : b * p.N * p.C);
      const T a0 = A[(int64_t)tris[3 * (int64_t)f] * p.C + c];
      const T a1 = A[(int64_t)tris[3 * (int64_t)f + 1] * p.C + c];
      const T a2 = A[(int64_t)tris[3 * (int64_t)f + 2] * p.C + c];
      // same rounding as the CPU and the reference: no contraction
      v = rn_add(rn_add(rn_mul(bary[3 * q], a0), rn_mul(bary[3 * q + 1], a1)),
                 rn_mul(bary[3 * q + 2], a2));
    }
    out[e] = v;
  }
}

template <typename T>
__global__ void interpolate_backward_kernel(const T* __restrict__ grad,
                                            const int32_t* __restrict__ face,
                                            const T* __restrict__ bary,
                                            const int32_t* __restrict__ tris, InterpParams p,
                                            T* __restrict__ gattr) {
  const int64_t total = p.B * p.HW * p.C;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = e / p.C, c = e - q * p.C;
    const int32_t f = face[q];
    if (f < 0) continue;
    const int64_t b = q / p.HW;
    T* G = gattr + (p.broadcast ? 0 : b * p.N * p.C);
    const T g = grad[e];
#pragma unroll
    for (int k = 0; k < 3; ++k)
      atomicAdd(G + (int64_t)tris[3 * (int64_t)f + k] * p.C + c, bary[3 * q + k] * g);
  }
}

}  // namespace

size_t rasterize_cuda_workspace_bytes(const RasterParams& p, bool is_double) {
  const size_t px = (size_t)(p.B * p.H * p.W);
  return px * sizeof(unsigned long long) + (is_double ? px * sizeof(unsigned int) : 0);
}

template <typename T>
cudaError_t rasterize_cuda(const T* vertices, const int32_t* triangles, const RasterParams& p,
                           int32_t* face_index, T* bary, T* depth, void* workspace,
                           cudaStream_t stream) {
  const int64_t px = p.B * p.H * p.W;
  if (px == 0) return cudaSuccess;
  constexpr bool dbl = sizeof(T) == 8;
  auto* keys = static_cast<unsigned long long*>(workspace);
  unsigned int* faces = dbl ? reinterpret_cast<unsigned int*>(keys + px) : nullptr;
  cudaError_t err = cudaMemsetAsync(keys, 0, (size_t)px * sizeof(unsigned long long), stream);
  if (err != cudaSuccess) return err;
  if (dbl) {
    err = cudaMemsetAsync(faces, 0xff, (size_t)px * sizeof(unsigned int), stream);
    if (err != cudaSuccess) return err;
  }
  const int64_t work = p.B * p.F;
  if (work > 0) {
    if (!dbl) {
      raster_faces_kernel<T, 0><<<blocks_for(work), kThreads, 0, stream>>>(vertices, triangles, p,
                                                                           keys, faces);
    } else {
      raster_faces_kernel<T, 1><<<blocks_for(work), kThreads, 0, stream>>>(vertices, triangles, p,
                                                                           keys, faces);
      err = cudaGetLastError();
      if (err != cudaSuccess) return err;
      raster_faces_kernel<T, 2><<<blocks_for(work), kThreads, 0, stream>>>(vertices, triangles, p,
                                                                           keys, faces);
    }
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  raster_resolve_kernel<T, !dbl><<<blocks_for(px), kThreads, 0, stream>>>(
      vertices, triangles, p, keys, faces, face_index, bary, depth);
  return cudaGetLastError();
}

template <typename T>
cudaError_t interpolate_cuda(const T* attributes, const int32_t* face_index, const T* bary,
                             const int32_t* triangles, const InterpParams& p, T* out,
                             cudaStream_t stream) {
  const int64_t total = p.B * p.HW * p.C;
  if (total == 0) return cudaSuccess;
  interpolate_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(attributes, face_index, bary,
                                                                    triangles, p, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t interpolate_backward_cuda(const T* grad, const int32_t* face_index, const T* bary,
                                      const int32_t* triangles, const InterpParams& p,
                                      T* grad_attributes, cudaStream_t stream) {
  const int64_t out_n = (p.broadcast ? 1 : p.B) * p.N * p.C;
  if (out_n == 0) return cudaSuccess;
  cudaError_t err = cudaMemsetAsync(grad_attributes, 0, (size_t)out_n * sizeof(T), stream);
  if (err != cudaSuccess) return err;
  const int64_t total = p.B * p.HW * p.C;
  if (total == 0 || p.F == 0) return cudaSuccess;
  interpolate_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      grad, face_index, bary, triangles, p, grad_attributes);
  return cudaGetLastError();
}

#define PF3D_RASTER_CUDA_INST(T)                                                               \
  template cudaError_t rasterize_cuda<T>(const T*, const int32_t*, const RasterParams&,        \
                                         int32_t*, T*, T*, void*, cudaStream_t);               \
  template cudaError_t interpolate_cuda<T>(const T*, const int32_t*, const T*, const int32_t*, \
                                           const InterpParams&, T*, cudaStream_t);             \
  template cudaError_t interpolate_backward_cuda<T>(const T*, const int32_t*, const T*,        \
                                                    const int32_t*, const InterpParams&, T*,   \
                                                    cudaStream_t);
PF3D_RASTER_CUDA_INST(float)
PF3D_RASTER_CUDA_INST(double)
#undef PF3D_RASTER_CUDA_INST

}  // namespace raster
}  // namespace pf3d
