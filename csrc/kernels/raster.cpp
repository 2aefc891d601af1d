// CPU rasterizer and interpolation (torch-free). See raster.h for the rules.
//
// rasterize: for each (batch element, band of rows) task
//   pass 0 (per vertex): the window-relative range of pixel centres each
//     coordinate spans (ceil/floor, clamped) -> 16 bytes per vertex;
//   pass 1 (per triangle): the triangle's centre box is the min of the ceils and
//     the max of the floors of its vertices (integer min/max only), so the many
//     sub-pixel triangles that contain no centre are rejected in a handful of
//     instructions; the rest get the exact float64 edge setup, the centres in
//     the box are tested directly (not incrementally, so the result does not
//     depend on the window) and the z-test writes face/bary/depth of winners;
//   pass 2 (per pixel): background depth -inf -> 0.
// Triangles are visited in increasing index order and a later triangle wins
// only with a strictly larger depth, which gives the "smaller face on ties" rule.
#include "kernels/raster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pf3d {
namespace raster {

namespace {

inline int64_t num_threads() {
#if defined(PF3D_USE_ATEN_PARALLEL)
  return at::get_num_threads();
#elif defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Per-vertex centre ranges; int16 when the window allows it (8 bytes a vertex
// keeps the table in L2 for BFM-sized meshes), int32 otherwise.
template <typename I>
struct VBox {
  I cx, fx, cy, fy;
};

template <typename I>
inline int32_t min3(I a, I b, I c) { return std::min(a, std::min(b, c)); }
template <typename I>
inline int32_t max3(I a, I b, I c) { return std::max(a, std::max(b, c)); }

// Cheap pre-test for a candidate with a single centre in its box: true only
// when the centre is outside the triangle by a margin far above the rounding
// error of any evaluation order (so it never rejects what the exact canonical
// test in tri_eval would cover). NaN coordinates make every comparison false.
template <typename T>
inline bool surely_outside(const T* a, const T* b, const T* c, double px, double py) {
  const double ax = a[0], ay = a[1], bx = b[0], by = b[1], cx = c[0], cy = c[1];
  const double area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
  const double e0 = (cx - bx) * (py - by) - (cy - by) * (px - bx);
  const double e1 = (ax - cx) * (py - cy) - (ay - cy) * (px - cx);
  const double e2 = (bx - ax) * (py - ay) - (by - ay) * (px - ax);
  // every product above is bounded by D^2, D = the larger side of the box
  // spanned by the triangle and the centre
  const double xl = std::min(std::min(ax, bx), std::min(cx, px));
  const double xh = std::max(std::max(ax, bx), std::max(cx, px));
  const double yl = std::min(std::min(ay, by), std::min(cy, py));
  const double yh = std::max(std::max(ay, by), std::max(cy, py));
  const double d = std::max(xh - xl, yh - yl);
  const double m = 1e-9 * d * d;
  if (!(std::fabs(area) > 4 * m)) return false;  // near-degenerate: exact path
  const double s = area > 0 ? 1.0 : -1.0;
  return (s * e0 < -m) | (s * e1 < -m) | (s * e2 < -m);
}

template <typename T, typename I>
void raster_band(const T* verts, const int32_t* tris, const RasterParams& p, int64_t r0,
                 int64_t r1, VBox<I>* vbox, int32_t* cand_buf, int32_t* face, T* bary, T* depth) {
  const int64_t W = p.W;
  const double dx0 = (double)p.x0, dy0 = (double)p.y0;
  // pass 0
  for (int64_t v = 0; v < p.N; ++v) {
    int32_t cx, fx, cy, fy;
    centre_range((double)verts[3 * v] - dx0, p.W, cx, fx);
    centre_range((double)verts[3 * v + 1] - dy0, p.H, cy, fy);
    vbox[v] = VBox<I>{(I)cx, (I)fx, (I)cy, (I)fy};
  }
  // init the band
  for (int64_t i = r0; i < r1; ++i) {
    for (int64_t j = 0; j < W; ++j) {
      face[i * W + j] = -1;
      depth[i * W + j] = -std::numeric_limits<T>::infinity();
    }
  }
  std::fill(bary + r0 * W * 3, bary + r1 * W * 3, T(0));
  const int32_t rlo = (int32_t)r0, rhi = (int32_t)(r1 - 1), chi = (int32_t)(W - 1);
  // pass 1a: branch-free compaction of the triangles whose box holds a centre
  int32_t* cand = cand_buf;
  int64_t nc = 0;
#if defined(__SSE2__)
  if (sizeof(I) == 2) {
    // int16 lanes (cx, fx, cy, fy): one min and one max over the 3 vertices
    const __m128i lo_clamp = _mm_setr_epi16(0, 0, (int16_t)rlo, 0, 0, 0, 0, 0);
    const __m128i hi_clamp = _mm_setr_epi16((int16_t)chi, 0, (int16_t)rhi, 0, 0, 0, 0, 0);
    for (int64_t f = 0; f < p.F; ++f) {
      const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f]));
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f + 1]));
      const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f + 2]));
      const __m128i mn = _mm_max_epi16(_mm_min_epi16(a, _mm_min_epi16(b, c)), lo_clamp);
      const __m128i mx = _mm_srli_epi64(_mm_max_epi16(a, _mm_max_epi16(b, c)), 16);
      const __m128i mxc = _mm_min_epi16(mx, hi_clamp);
      // lanes 0 (columns) and 2 (rows): empty when min > max
      const int bad = _mm_movemask_epi8(_mm_cmpgt_epi16(mn, mxc)) & 0x33;
      cand[nc] = (int32_t)f;
      nc += bad == 0;
    }
  } else
#endif
  {
    for (int64_t f = 0; f < p.F; ++f) {
      const VBox<I> a = vbox[tris[3 * f]], b = vbox[tris[3 * f + 1]], c = vbox[tris[3 * f + 2]];
      const int32_t imin = std::max(rlo, min3(a.cy, b.cy, c.cy));
      const int32_t imax = std::min(rhi, max3(a.fy, b.fy, c.fy));
      const int32_t jmin = std::max(0, min3(a.cx, b.cx, c.cx));
      const int32_t jmax = std::min(chi, max3(a.fx, b.fx, c.fx));
      cand[nc] = (int32_t)f;
      nc += (imin <= imax) & (jmin <= jmax);
    }
  }
  // pass 1b: exact coverage and z-test of the candidates, in face order
  for (int64_t q = 0; q < nc; ++q) {
    const int64_t f = cand[q];
    const int32_t ia = tris[3 * f], ib = tris[3 * f + 1], ic = tris[3 * f + 2];
    const VBox<I> a = vbox[ia], b = vbox[ib], c = vbox[ic];
    const int32_t imin = std::max(rlo, min3(a.cy, b.cy, c.cy));
    const int32_t imax = std::min(rhi, max3(a.fy, b.fy, c.fy));
    const int32_t jmin = std::max(0, min3(a.cx, b.cx, c.cx));
    const int32_t jmax = std::min(chi, max3(a.fx, b.fx, c.fx));
    const T* va = verts + 3 * (int64_t)ia;
    const T* vb = verts + 3 * (int64_t)ib;
    const T* vc = verts + 3 * (int64_t)ic;
    if (imin == imax && jmin == jmax &&
        surely_outside(va, vb, vc, (double)(p.x0 + jmin), (double)(p.y0 + imin)))
      continue;
    TriSetup t;
    if (!tri_setup(va, vb, vc, t)) continue;
    for (int32_t i = imin; i <= imax; ++i) {
      const double py = (double)(p.y0 + i);
      for (int32_t j = jmin; j <= jmax; ++j) {
        const double px = (double)(p.x0 + j);
        double bc[3], z;
        if (!tri_eval(t, px, py, bc, z)) continue;
        const T zt = depth_value<T>(z);
        const int64_t pix = (int64_t)i * W + j;
        if (face[pix] < 0 || zt > depth[pix]) {
          face[pix] = (int32_t)f;
          depth[pix] = zt;
          bary[3 * pix] = (T)bc[0];
          bary[3 * pix + 1] = (T)bc[1];
          bary[3 * pix + 2] = (T)bc[2];
        }
      }
    }
  }
  // pass 2
  for (int64_t pix = r0 * W; pix < r1 * W; ++pix)
    if (face[pix] < 0) depth[pix] = T(0);
}

}  // namespace

template <typename T>
void rasterize_cpu(const T* vertices, const int32_t* triangles, const RasterParams& p,
                   int32_t* face_index, T* bary, T* depth) {
  if (p.B <= 0 || p.H <= 0 || p.W <= 0) return;
  const int64_t HW = p.H * p.W;
  const int64_t threads = std::max<int64_t>(1, num_threads());
  // bands per batch element: only when the batch alone cannot fill the threads
  int64_t bands = 1;
  if (p.B < threads) {
    bands = (threads + p.B - 1) / p.B;
    bands = std::min<int64_t>(bands, std::max<int64_t>(1, p.H / 8));  // >= 8 rows per band
    // banding repeats pass 0 and the triangle loop; skip it for tiny images
    if (HW < 4096) bands = 1;
  }
  const int64_t rows_per_band = (p.H + bands - 1) / bands;
  const int64_t tasks = p.B * bands;
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    const bool small = p.W < 32000 && p.H < 32000;
    std::vector<VBox<int16_t>> vb16(small ? (size_t)std::max<int64_t>(p.N, 1) : 0);
    std::vector<VBox<int32_t>> vb32(small ? 0 : (size_t)std::max<int64_t>(p.N, 1));
    std::vector<int32_t> cand((size_t)std::max<int64_t>(p.F, 1));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / bands, band = t % bands;
      const int64_t r0 = band * rows_per_band;
      const int64_t r1 = std::min(p.H, r0 + rows_per_band);
      if (r0 >= r1) continue;
      if (small)
        raster_band<T, int16_t>(vertices + b * p.N * 3, triangles, p, r0, r1, vb16.data(),
                                cand.data(), face_index + b * HW, bary + b * HW * 3, depth + b * HW);
      else
        raster_band<T, int32_t>(vertices + b * p.N * 3, triangles, p, r0, r1, vb32.data(),
                                cand.data(), face_index + b * HW, bary + b * HW * 3, depth + b * HW);
    }
  });
}

template <typename T>
void interpolate_cpu(const T* attributes, const int32_t* face_index, const T* bary,
                     const int32_t* triangles, const InterpParams& p, T* out) {
  const int64_t total = p.B * p.HW;
  const int64_t C = p.C;
  parallel_for(0, total, 1024, [&](int64_t s, int64_t e) {
    for (int64_t q = s; q < e; ++q) {
      T* o = out + q * C;
      const int32_t f = face_index[q];
      if (f < 0) {
        for (int64_t c = 0; c < C; ++c) o[c] = T(0);
        continue;
      }
      const int64_t b = q / p.HW;
      const T* A = attributes + (p.broadcast ? 0 : b * p.N * C);
      const T* a0 = A + (int64_t)triangles[3 * (int64_t)f] * C;
      const T* a1 = A + (int64_t)triangles[3 * (int64_t)f + 1] * C;
      const T* a2 = A + (int64_t)triangles[3 * (int64_t)f + 2] * C;
      const T w0 = bary[3 * q], w1 = bary[3 * q + 1], w2 = bary[3 * q + 2];
      for (int64_t c = 0; c < C; ++c) o[c] = w0 * a0[c] + w1 * a1[c] + w2 * a2[c];
    }
  });
}

namespace {
template <typename T>
void scatter_pixels(const T* grad, const int32_t* face_index, const T* bary,
                    const int32_t* triangles, int64_t q0, int64_t q1, int64_t C, T* G) {
  for (int64_t q = q0; q < q1; ++q) {
    const int32_t f = face_index[q];
    if (f < 0) continue;
    const T* g = grad + q * C;
    for (int k = 0; k < 3; ++k) {
      const T w = bary[3 * q + k];
      T* dst = G + (int64_t)triangles[3 * (int64_t)f + k] * C;
      for (int64_t c = 0; c < C; ++c) dst[c] += w * g[c];
    }
  }
}
}  // namespace

template <typename T>
void interpolate_backward_cpu(const T* grad, const int32_t* face_index, const T* bary,
                              const int32_t* triangles, const InterpParams& p,
                              T* grad_attributes) {
  const int64_t NC = p.N * p.C;
  if (!p.broadcast) {
    // one batch element per task, pixels in order: deterministic
    parallel_for(0, p.B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        T* G = grad_attributes + b * NC;
        std::fill(G, G + NC, T(0));
        scatter_pixels<T>(grad + b * p.HW * p.C, face_index + b * p.HW, bary + b * p.HW * 3,
                          triangles, 0, p.HW, p.C, G);
      }
    });
    return;
  }
  std::fill(grad_attributes, grad_attributes + NC, T(0));
  if (p.B <= 0) return;
  // Fixed chunking of the batch (independent of the thread count): chunk k
  // accumulates its batch elements in order into its own buffer; the buffers
  // are then summed in chunk order.
  const int64_t chunks = std::min<int64_t>(p.B, 8);
  if (chunks == 1) {
    scatter_pixels<T>(grad, face_index, bary, triangles, 0, p.B * p.HW, p.C, grad_attributes);
    return;
  }
  std::vector<T> partial((size_t)(chunks * NC), T(0));
  parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t bs = k * p.B / chunks, be = (k + 1) * p.B / chunks;
      scatter_pixels<T>(grad + bs * p.HW * p.C, face_index + bs * p.HW, bary + bs * p.HW * 3,
                        triangles, 0, (be - bs) * p.HW, p.C, partial.data() + k * NC);
    }
  });
  parallel_for(0, NC, 4096, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      T acc = partial[i];
      for (int64_t k = 1; k < chunks; ++k) acc += partial[k * NC + i];
      grad_attributes[i] = acc;
    }
  });
}

#define PF3D_RASTER_INST(T)                                                                   \
  template void rasterize_cpu<T>(const T*, const int32_t*, const RasterParams&, int32_t*, T*, \
                                 T*);                                                         \
  template void interpolate_cpu<T>(const T*, const int32_t*, const T*, const int32_t*,        \
                                   const InterpParams&, T*);                                  \
  template void interpolate_backward_cpu<T>(const T*, const int32_t*, const T*,               \
                                            const int32_t*, const InterpParams&, T*);
PF3D_RASTER_INST(float)
PF3D_RASTER_INST(double)
#undef PF3D_RASTER_INST

}  // namespace raster
}  // namespace pf3d
