// pyface3d kernels: torch-free building blocks shared by the CPU and CUDA paths.
//
// Everything under csrc/kernels is plain C++17 (and CUDA for csrc/kernels/cuda):
// no torch headers. The torch-facing ops in csrc/ops call into it with raw
// pointers and plain parameter structs, so the same code can serve a torch op,
// a TensorRT plugin or a C++ test.
#pragma once

#include <cstdint>
#include <cmath>

#if defined(__CUDACC__)
#define PF3D_HD __host__ __device__ __forceinline__
#else
#define PF3D_HD inline
#endif

#if defined(PF3D_USE_ATEN_PARALLEL)
// Built inside the torch extension: use ATen's thread pool so that
// torch.set_num_threads applies and only one OpenMP runtime is in play.
#include <ATen/Parallel.h>
#elif defined(_OPENMP)
#include <omp.h>
#endif

namespace pf3d {

// parallel_for(begin, end, grain, fn): calls fn(b, e) on disjoint sub-ranges
// covering [begin, end). Sub-ranges are at least `grain` long (except the last).
// Serial when the range is short; fn must not throw.
template <typename F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
#if defined(PF3D_USE_ATEN_PARALLEL)
  at::parallel_for(begin, end, grain, fn);
#elif defined(_OPENMP)
  const int64_t n = end - begin;
  int64_t chunks = (n + grain - 1) / grain;
  const int64_t threads = omp_get_max_threads();
  if (chunks > threads) chunks = threads;
  if (chunks <= 1 || omp_in_parallel()) { fn(begin, end); return; }
  const int64_t step = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = begin + c * step;
    const int64_t e = b + step < end ? b + step : end;
    if (b < e) fn(b, e);
  }
#else
  fn(begin, end);
#endif
}

}  // namespace pf3d
