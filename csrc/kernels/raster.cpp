// CPU rasterizer and interpolation (torch-free). See raster.h for the rules.
//
// rasterize: for each (batch element, band of rows) task
//   pass 0 (per vertex): the window-relative range of pixel centres each
//     coordinate spans (ceil/floor, clamped) -> 8 (int16) or 16 bytes a vertex;
//   pass 1 (per triangle): the triangle's centre box is the min of the ceils and
//     the max of the floors of its vertices (integer min/max only), so the many
//     sub-pixel triangles that contain no centre are rejected in a handful of
//     instructions; the rest get the exact float64 edge setup, the centres in
//     the box are tested directly (not incrementally, so the result does not
//     depend on the window) and the z-test writes face/bary/depth of winners;
//   pass 2 (per pixel): background depth -inf -> 0.
// Triangles are visited in increasing index order and a later triangle wins
// only with a strictly larger depth, which gives the "smaller face on ties" rule.
//
// Two variants, picked at run time (same results bit for bit):
//   baseline (SSE2): as above, one candidate at a time, with a float64
//     pre-test that rejects single-centre candidates far outside;
//   AVX2 (x86-64 GCC, int16 windows, when the CPU has AVX2; the environment
//     variable PYFACE3D_RASTER_BASELINE=1 forces the baseline, for tests):
//     pass 0 four vertices per step; pass 1a four triangles per step (one
//     256-bit min/max over their vertex boxes), candidates and their clamped
//     boxes stored compacted;
//     pass 1b in chunks of <= 256 jobs, a job being one (triangle, centre)
//     pair of a box of at most 2x2 centres: the exact setup and edge tests
//     of 4 jobs per step in float64 lanes (the IEEE operations of tri_setup /
//     tri_eval in the same order, no FMA), covered lanes compacted in order,
//     their barycentrics / depths 4 per step, then the z-tests in job order.
//     A larger box is scanned 4 centres of a row per step (raster_box_avx2)
// Scratch buffers live per thread and are reused across calls.
#include "kernels/raster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <cstdlib>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define PF3D_RASTER_AVX2 1
#else
#define PF3D_RASTER_AVX2 0
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

// ---- pieces shared by the baseline and the AVX2 variant --------------------

template <typename T, typename I>
inline void pass0_scalar(const T* verts, const RasterParams& p, int64_t v0, int64_t v1,
                         VBox<I>* vbox) {
  const double dx0 = (double)p.x0, dy0 = (double)p.y0;
  for (int64_t v = v0; v < v1; ++v) {
    int32_t cx, fx, cy, fy;
    centre_range((double)verts[3 * v] - dx0, p.W, cx, fx);
    centre_range((double)verts[3 * v + 1] - dy0, p.H, cy, fy);
    vbox[v] = VBox<I>{(I)cx, (I)fx, (I)cy, (I)fy};
  }
}

template <typename T>
inline void init_band(int64_t W, int64_t r0, int64_t r1, int32_t* face, T* bary, T* depth) {
  std::fill(face + r0 * W, face + r1 * W, int32_t(-1));
  std::fill(depth + r0 * W, depth + r1 * W, -std::numeric_limits<T>::infinity());
  std::fill(bary + r0 * W * 3, bary + r1 * W * 3, T(0));
}

template <typename T>
inline void finish_band(int64_t W, int64_t r0, int64_t r1, const int32_t* face, T* depth) {
  for (int64_t pix = r0 * W; pix < r1 * W; ++pix)
    if (face[pix] < 0) depth[pix] = T(0);
}

// pass 1a: branch-free compaction of the triangles whose box holds a centre
// of rows [rlo, rhi], columns [0, chi]; returns the number of candidates.
template <typename I>
inline int64_t pass1a(const int32_t* tris, int64_t F, const VBox<I>* vbox, int32_t rlo,
                      int32_t rhi, int32_t chi, int32_t* cand) {
  int64_t nc = 0;
#if defined(__SSE2__)
  if (sizeof(I) == 2) {
    // int16 lanes (cx, fx, cy, fy): one min and one max over the 3 vertices
    const __m128i lo_clamp = _mm_setr_epi16(0, 0, (int16_t)rlo, 0, 0, 0, 0, 0);
    const __m128i hi_clamp = _mm_setr_epi16((int16_t)chi, 0, (int16_t)rhi, 0, 0, 0, 0, 0);
    for (int64_t f = 0; f < F; ++f) {
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
    return nc;
  }
#endif
  for (int64_t f = 0; f < F; ++f) {
    const VBox<I> a = vbox[tris[3 * f]], b = vbox[tris[3 * f + 1]], c = vbox[tris[3 * f + 2]];
    const int32_t imin = std::max(rlo, min3(a.cy, b.cy, c.cy));
    const int32_t imax = std::min(rhi, max3(a.fy, b.fy, c.fy));
    const int32_t jmin = std::max(0, min3(a.cx, b.cx, c.cx));
    const int32_t jmax = std::min(chi, max3(a.fx, b.fx, c.fx));
    cand[nc] = (int32_t)f;
    nc += (imin <= imax) & (jmin <= jmax);
  }
  return nc;
}

// Exact coverage and z-test of one triangle over the centres of its box.
template <typename T>
inline void raster_box(const T* va, const T* vb, const T* vc, int32_t f, const RasterParams& p,
                       int32_t imin, int32_t imax, int32_t jmin, int32_t jmax, int32_t* face,
                       T* bary, T* depth) {
  TriSetup t;
  if (!tri_setup(va, vb, vc, t)) return;
  const int64_t W = p.W;
  for (int32_t i = imin; i <= imax; ++i) {
    const double py = (double)(p.y0 + i);
    for (int32_t j = jmin; j <= jmax; ++j) {
      const double px = (double)(p.x0 + j);
      double bc[3], z;
      if (!tri_eval(t, px, py, bc, z)) continue;
      const T zt = depth_value<T>(z);
      const int64_t pix = (int64_t)i * W + j;
      if (face[pix] < 0 || zt > depth[pix]) {
        face[pix] = f;
        depth[pix] = zt;
        bary[3 * pix] = (T)bc[0];
        bary[3 * pix + 1] = (T)bc[1];
        bary[3 * pix + 2] = (T)bc[2];
      }
    }
  }
}

// Per-thread scratch (vertex boxes, candidate list) reused across calls: no
// allocation (and no page faults on fresh pages) per call.
struct Scratch {
  std::vector<int32_t> cand;
  std::vector<uint64_t> cbox;  // AVX2 variant: the candidates' boxes
  std::vector<unsigned char> vbox;  // VBox<int16_t> or VBox<int32_t>, 16-byte aligned
};

inline Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

// ---- baseline variant -------------------------------------------------------

template <typename T, typename I>
void raster_band(const T* verts, const int32_t* tris, const RasterParams& p, int64_t r0,
                 int64_t r1, VBox<I>* vbox, int32_t* cand, int32_t* face, T* bary, T* depth) {
  const int64_t W = p.W;
  pass0_scalar<T, I>(verts, p, 0, p.N, vbox);
  init_band<T>(W, r0, r1, face, bary, depth);
  const int32_t rlo = (int32_t)r0, rhi = (int32_t)(r1 - 1), chi = (int32_t)(W - 1);
  const int64_t nc = pass1a<I>(tris, p.F, vbox, rlo, rhi, chi, cand);
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
    raster_box<T>(va, vb, vc, (int32_t)f, p, imin, imax, jmin, jmax, face, bary, depth);
  }
  finish_band<T>(W, r0, r1, face, depth);
}

// ---- AVX2 variant (x86-64 GCC; picked at run time) -------------------------
//
// Same results bit for bit: the vector code performs exactly the IEEE double
// operations of tri_setup / tri_eval (same operands, same order, each rounded;
// no FMA: the variant is compiled for "avx2" only, and -ffp-contract=off), one
// (triangle, centre) pair per lane, and applies the z-tests in the same order.
#if PF3D_RASTER_AVX2

#define PF3D_AVX2 __attribute__((target("avx2")))

// pass 0 for int16 boxes, 4 vertices per step (same arithmetic as centre_range)
template <typename T>
PF3D_AVX2 void pass0_avx2(const T* verts, const RasterParams& p, VBox<int16_t>* vbox) {
  const __m256d ox = _mm256_set1_pd((double)p.x0), oy = _mm256_set1_pd((double)p.y0);
  const __m256d m1 = _mm256_set1_pd(-1.0), one = _mm256_set1_pd(1.0);
  const __m256d nw = _mm256_set1_pd((double)p.W), nh = _mm256_set1_pd((double)p.H);
  const int64_t n4 = p.N & ~int64_t(3);
  auto range = [&](__m256d u, __m256d n, __m128i& c, __m128i& f) PF3D_AVX2 {
    u = _mm256_max_pd(u, m1);  // (u >= -1) ? u : -1, NaN -> -1
    u = _mm256_min_pd(u, n);   // (u <= n) ? u : n
    const __m256d v = _mm256_add_pd(u, one);
    const __m128i t = _mm256_cvttpd_epi32(v);
    const __m256d tv = _mm256_cvtepi32_pd(t);
    const __m256d lt = _mm256_cmp_pd(tv, v, _CMP_LT_OQ);
    f = _mm_sub_epi32(t, _mm_set1_epi32(1));
    // c = t - 1 + (t < v): narrow the 64-bit mask lanes to 32 bits
    const __m128i lt32 = _mm_castps_si128(_mm_shuffle_ps(
        _mm256_castps256_ps128(_mm256_castpd_ps(lt)),
        _mm256_extractf128_ps(_mm256_castpd_ps(lt), 1), _MM_SHUFFLE(2, 0, 2, 0)));
    c = _mm_sub_epi32(f, lt32);  // mask is -1 where t < v
  };
  for (int64_t v = 0; v < n4; v += 4) {
    const T* q = verts + 3 * v;
    __m256d X, Y;
    if constexpr (sizeof(T) == 4) {
      const __m128 L0 = _mm_loadu_ps((const float*)q);      // x0 y0 z0 x1
      const __m128 L1 = _mm_loadu_ps((const float*)q + 4);  // y1 z1 x2 y2
      const __m128 L2 = _mm_loadu_ps((const float*)q + 8);  // z2 x3 y3 z3
      __m128 x = _mm_shuffle_ps(L0, L1, _MM_SHUFFLE(3, 2, 3, 0));  // x0 x1 x2 y2
      x = _mm_insert_ps(x, L2, (1 << 6) | (3 << 4));               // x0 x1 x2 x3
      __m128 y = _mm_shuffle_ps(L1, L2, _MM_SHUFFLE(0, 2, 3, 0));  // y1 y2 y3 z2
      y = _mm_castsi128_ps(_mm_slli_si128(_mm_castps_si128(y), 4));  // 0 y1 y2 y3
      y = _mm_insert_ps(y, L0, (1 << 6) | (0 << 4));               // y0 y1 y2 y3
      X = _mm256_cvtps_pd(x);
      Y = _mm256_cvtps_pd(y);
    } else {
      X = _mm256_setr_pd((double)q[0], (double)q[3], (double)q[6], (double)q[9]);
      Y = _mm256_setr_pd((double)q[1], (double)q[4], (double)q[7], (double)q[10]);
    }
    __m128i cx, fx, cy, fy;
    range(_mm256_sub_pd(X, ox), nw, cx, fx);
    range(_mm256_sub_pd(Y, oy), nh, cy, fy);
    const __m128i u1 = _mm_unpacklo_epi32(cx, fx), u2 = _mm_unpackhi_epi32(cx, fx);
    const __m128i v1 = _mm_unpacklo_epi32(cy, fy), v2 = _mm_unpackhi_epi32(cy, fy);
    const __m128i o01 = _mm_packs_epi32(_mm_unpacklo_epi64(u1, v1), _mm_unpackhi_epi64(u1, v1));
    const __m128i o23 = _mm_packs_epi32(_mm_unpacklo_epi64(u2, v2), _mm_unpackhi_epi64(u2, v2));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(vbox + v), o01);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(vbox + v + 2), o23);
  }
  pass0_scalar<T, int16_t>(verts, p, n4, p.N, vbox);
}

// Coverage of 4 (triangle, centre) pairs, one per lane: the operations of
// tri_setup + tri_eval in the same order (bit-identical). Returns the
// movemask of the covered lanes; w[3] and sum are the edge functions and
// their sum there (barycentrics w / sum and depth are formed later).
PF3D_AVX2 inline int eval4(const __m256d x[3], const __m256d y[3], const __m256d zc[3],
                           __m256d px, __m256d py, __m256d w[3], __m256d& sum) {
  const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0),
                mone = _mm256_set1_pd(-1.0);
  // finite3: a - a == 0
  __m256d ok = _mm256_cmp_pd(_mm256_sub_pd(x[0], x[0]), zero, _CMP_EQ_OQ);
  for (int k = 0; k < 3; ++k) {
    if (k) ok = _mm256_and_pd(ok, _mm256_cmp_pd(_mm256_sub_pd(x[k], x[k]), zero, _CMP_EQ_OQ));
    ok = _mm256_and_pd(ok, _mm256_cmp_pd(_mm256_sub_pd(y[k], y[k]), zero, _CMP_EQ_OQ));
    ok = _mm256_and_pd(ok, _mm256_cmp_pd(_mm256_sub_pd(zc[k], zc[k]), zero, _CMP_EQ_OQ));
  }
  const __m256d area =
      _mm256_sub_pd(_mm256_mul_pd(_mm256_sub_pd(x[1], x[0]), _mm256_sub_pd(y[2], y[0])),
                    _mm256_mul_pd(_mm256_sub_pd(y[1], y[0]), _mm256_sub_pd(x[2], x[0])));
  ok = _mm256_and_pd(ok, _mm256_cmp_pd(area, zero, _CMP_NEQ_UQ));
  ok = _mm256_and_pd(ok, _mm256_cmp_pd(_mm256_sub_pd(area, area), zero, _CMP_EQ_OQ));
  const __m256d pos = _mm256_cmp_pd(area, zero, _CMP_GT_OQ);
  const __m256d orient = _mm256_blendv_pd(mone, one, pos);
  const __m256d norient = _mm256_blendv_pd(one, mone, pos);
  for (int k = 0; k < 3; ++k) {
    const int a = k == 2 ? 0 : k + 1;
    const int c = k == 0 ? 2 : k - 1;
    // edge a -> c; canonical order: lo = smaller (y, x)
    const __m256d ab = _mm256_or_pd(
        _mm256_cmp_pd(y[a], y[c], _CMP_LT_OQ),
        _mm256_and_pd(_mm256_cmp_pd(y[a], y[c], _CMP_EQ_OQ), _mm256_cmp_pd(x[a], x[c], _CMP_LT_OQ)));
    const __m256d lx = _mm256_blendv_pd(x[c], x[a], ab), ly = _mm256_blendv_pd(y[c], y[a], ab);
    const __m256d hx = _mm256_blendv_pd(x[a], x[c], ab), hy = _mm256_blendv_pd(y[a], y[c], ab);
    const __m256d s = _mm256_blendv_pd(norient, orient, ab);
    const __m256d sdx = _mm256_mul_pd(s, _mm256_sub_pd(hx, lx));
    const __m256d sdy = _mm256_mul_pd(s, _mm256_sub_pd(hy, ly));
    const __m256d incl = _mm256_or_pd(
        _mm256_cmp_pd(sdy, zero, _CMP_LT_OQ),
        _mm256_and_pd(_mm256_cmp_pd(sdy, zero, _CMP_EQ_OQ), _mm256_cmp_pd(sdx, zero, _CMP_GT_OQ)));
    w[k] = _mm256_sub_pd(_mm256_mul_pd(sdx, _mm256_sub_pd(py, ly)),
                         _mm256_mul_pd(sdy, _mm256_sub_pd(px, lx)));
    const __m256d eok = _mm256_or_pd(_mm256_cmp_pd(w[k], zero, _CMP_GT_OQ),
                                     _mm256_and_pd(_mm256_cmp_pd(w[k], zero, _CMP_EQ_OQ), incl));
    ok = _mm256_and_pd(ok, eok);
  }
  sum = _mm256_add_pd(_mm256_add_pd(w[0], w[1]), w[2]);
  ok = _mm256_and_pd(ok, _mm256_cmp_pd(sum, zero, _CMP_GT_OQ));
  return _mm256_movemask_pd(ok);
}

// Vertex (x, y, z) of 4 lanes -> x, y, z vectors (float64). The masked loads
// never touch the element after z (the last vertex may end the buffer).
PF3D_AVX2 inline void load_xyz(const float* const v[4], __m256d& X, __m256d& Y, __m256d& Z) {
  const __m128i m = _mm_setr_epi32(-1, -1, -1, 0);
  const __m128 p0 = _mm_maskload_ps(v[0], m), p1 = _mm_maskload_ps(v[1], m);
  const __m128 p2 = _mm_maskload_ps(v[2], m), p3 = _mm_maskload_ps(v[3], m);
  const __m128 t0 = _mm_unpacklo_ps(p0, p1), t1 = _mm_unpacklo_ps(p2, p3);  // x x y y
  const __m128 t2 = _mm_unpackhi_ps(p0, p1), t3 = _mm_unpackhi_ps(p2, p3);  // z z 0 0
  X = _mm256_cvtps_pd(_mm_movelh_ps(t0, t1));
  Y = _mm256_cvtps_pd(_mm_movehl_ps(t1, t0));
  Z = _mm256_cvtps_pd(_mm_movelh_ps(t2, t3));
}

PF3D_AVX2 inline void load_xyz(const double* const v[4], __m256d& X, __m256d& Y, __m256d& Z) {
  const __m256i m = _mm256_setr_epi64x(-1, -1, -1, 0);
  const __m256d p0 = _mm256_maskload_pd(v[0], m), p1 = _mm256_maskload_pd(v[1], m);
  const __m256d p2 = _mm256_maskload_pd(v[2], m), p3 = _mm256_maskload_pd(v[3], m);
  const __m256d t0 = _mm256_unpacklo_pd(p0, p1), t1 = _mm256_unpackhi_pd(p0, p1);  // x x z z | y y 0 0
  const __m256d t2 = _mm256_unpacklo_pd(p2, p3), t3 = _mm256_unpackhi_pd(p2, p3);
  X = _mm256_permute2f128_pd(t0, t2, 0x20);
  Z = _mm256_permute2f128_pd(t0, t2, 0x31);
  Y = _mm256_permute2f128_pd(t1, t3, 0x20);
}

// raster_box for large boxes, 4 centres of a row per step: the operations of
// tri_eval in the same order on each lane (the edge terms of the row computed
// once, exactly as tri_eval computes them), IEEE divisions, no FMA: the same
// coverage, barycentrics and depths bit for bit; the z-tests of one triangle
// touch distinct pixels, so their order does not matter.
template <typename T>
PF3D_AVX2 void raster_box_avx2(const T* va, const T* vb, const T* vc, int32_t f,
                               const RasterParams& p, int32_t imin, int32_t imax, int32_t jmin,
                               int32_t jmax, int32_t* face, T* bary, T* depth) {
  TriSetup t;
  if (!tri_setup(va, vb, vc, t)) return;
  const int64_t W = p.W;
  const __m256d zero = _mm256_setzero_pd(), lane = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
  __m256d sdy[3], lx[3], incl[3], zc[3];
  for (int k = 0; k < 3; ++k) {
    sdy[k] = _mm256_set1_pd(t.sdy[k]);
    lx[k] = _mm256_set1_pd(t.lx[k]);
    incl[k] = _mm256_castsi256_pd(_mm256_set1_epi64x(t.incl[k] ? -1 : 0));
    zc[k] = _mm256_set1_pd(t.z[k]);
  }
  alignas(32) double bz[4], b0[4], b1[4], b2[4];
  for (int32_t i = imin; i <= imax; ++i) {
    const double py = (double)(p.y0 + i);
    __m256d a[3];
    for (int k = 0; k < 3; ++k) a[k] = _mm256_set1_pd(dmul(t.sdx[k], dsub(py, t.ly[k])));
    for (int32_t j = jmin; j <= jmax; j += 4) {
      // centres x0 + j + l: integers, exact in double
      const __m256d px = _mm256_add_pd(_mm256_set1_pd((double)(p.x0 + j)), lane);
      __m256d w[3], ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
      for (int k = 0; k < 3; ++k) {
        w[k] = _mm256_sub_pd(a[k], _mm256_mul_pd(sdy[k], _mm256_sub_pd(px, lx[k])));
        ok = _mm256_and_pd(ok, _mm256_or_pd(
            _mm256_cmp_pd(w[k], zero, _CMP_GT_OQ),
            _mm256_and_pd(_mm256_cmp_pd(w[k], zero, _CMP_EQ_OQ), incl[k])));
      }
      const __m256d sum = _mm256_add_pd(_mm256_add_pd(w[0], w[1]), w[2]);
      ok = _mm256_and_pd(ok, _mm256_cmp_pd(sum, zero, _CMP_GT_OQ));
      int m = _mm256_movemask_pd(ok);
      const int32_t left = jmax - j + 1;
      if (left < 4) m &= (1 << left) - 1;
      if (!m) continue;
      const __m256d c0 = _mm256_div_pd(w[0], sum), c1 = _mm256_div_pd(w[1], sum),
                    c2 = _mm256_div_pd(w[2], sum);
      const __m256d z = _mm256_add_pd(
          _mm256_add_pd(_mm256_mul_pd(c0, zc[0]), _mm256_mul_pd(c1, zc[1])),
          _mm256_mul_pd(c2, zc[2]));
      _mm256_store_pd(bz, z);
      _mm256_store_pd(b0, c0);
      _mm256_store_pd(b1, c1);
      _mm256_store_pd(b2, c2);
      for (int l = 0; l < 4; ++l) {
        if (!(m >> l & 1)) continue;
        const T zt = depth_value<T>(bz[l]);
        const int64_t pix = (int64_t)i * W + j + l;
        if (face[pix] < 0 || zt > depth[pix]) {
          face[pix] = f;
          depth[pix] = zt;
          bary[3 * pix] = (T)b0[l];
          bary[3 * pix + 1] = (T)b1[l];
          bary[3 * pix + 2] = (T)b2[l];
        }
      }
    }
  }
}

// A job is one (face, centre) pair: face in bits 0-31, column j in 32-47,
// row i in 48-63 (window relative; int16 windows only).
constexpr uint64_t kJobJ = uint64_t(1) << 32, kJobI = uint64_t(1) << 48;
constexpr int kChunkJobs = 256;
constexpr int kChunkBig = 64;  // boxes larger than 2x2 per chunk

// Lane compaction: for a mask of 4 lanes, the set lanes first, in order.
struct CompressTables {
  alignas(16) uint8_t b32[16][16];  // _mm_shuffle_epi8 control, 4 x 32-bit
  alignas(32) int32_t p64[16][8];   // _mm256_permutevar8x32 control, 4 x 64-bit
  constexpr CompressTables() : b32(), p64() {
    for (int m = 0; m < 16; ++m) {
      int k = 0;
      for (int l = 0; l < 4; ++l)
        if (m >> l & 1) {
          for (int b = 0; b < 4; ++b) b32[m][4 * k + b] = (uint8_t)(4 * l + b);
          p64[m][2 * k] = 2 * l;
          p64[m][2 * k + 1] = 2 * l + 1;
          ++k;
        }
      for (; k < 4; ++k) {
        for (int b = 0; b < 4; ++b) b32[m][4 * k + b] = 0x80;
        p64[m][2 * k] = 0;
        p64[m][2 * k + 1] = 1;
      }
    }
  }
};
constexpr CompressTables kCompress{};

inline int popcount4(int m) { return (int)((0x4332322132212110ull >> (4 * m)) & 0xf); }

// Per-band working set of pass 1b (about 27 kB: stays in L1/L2).
template <typename T>
struct Chunk {
  alignas(32) uint64_t jobs[kChunkJobs + 4];
  // covered pairs, in job order: edge functions, their sum, vertex depths
  alignas(32) double w0[kChunkJobs + 4], w1[kChunkJobs + 4], w2[kChunkJobs + 4];
  alignas(32) double s[kChunkJobs + 4], z0[kChunkJobs + 4], z1[kChunkJobs + 4],
      z2[kChunkJobs + 4];
  alignas(16) int32_t f[kChunkJobs + 4], pix[kChunkJobs + 4];
  // their depth and barycentrics in the output dtype
  alignas(32) T zt[kChunkJobs + 4], b0[kChunkJobs + 4], b1[kChunkJobs + 4], b2[kChunkJobs + 4];
  // per group of 4 jobs: hits before it and its covered lanes
  int32_t gpre[kChunkJobs / 4 + 1];
  uint8_t gmask[kChunkJobs / 4 + 1];
  // larger boxes: their candidate and the number of jobs before them
  int64_t bigq[kChunkBig];
  int32_t bigpos[kChunkBig];
};

// Coverage of jobs[0, nj) (nj >= 1), 4 per step; the covered ones are
// appended, in order, to the hit arrays. Returns their number.
template <typename T>
PF3D_AVX2 inline int eval_jobs(Chunk<T>& C, int nj, const T* verts, const int32_t* tris,
                               const RasterParams& p) {
  for (int l = nj; l < ((nj + 3) & ~3); ++l) C.jobs[l] = C.jobs[nj - 1];  // masked off below
  const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m128i x0v = _mm_set1_epi32((int32_t)p.x0), y0v = _mm_set1_epi32((int32_t)p.y0);
  const __m128i Wv = _mm_set1_epi32((int32_t)p.W), low16 = _mm_set1_epi32(0xffff);
  int nh = 0;
  for (int g = 0; g < nj; g += 4) {
    const T* v[3][4];
    for (int l = 0; l < 4; ++l) {
      const int32_t* t = tris + 3 * (int64_t)(uint32_t)C.jobs[g + l];
      v[0][l] = verts + 3 * (int64_t)t[0];
      v[1][l] = verts + 3 * (int64_t)t[1];
      v[2][l] = verts + 3 * (int64_t)t[2];
    }
    __m256d x[3], y[3], zc[3];
    for (int k = 0; k < 3; ++k) load_xyz(v[k], x[k], y[k], zc[k]);
    // faces | (i << 16 | j)
    const __m256i J = _mm256_permutevar8x32_epi32(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(C.jobs + g)), perm);
    const __m128i fv = _mm256_castsi256_si128(J), ij = _mm256_extracti128_si256(J, 1);
    const __m128i jv = _mm_and_si128(ij, low16), iv = _mm_srli_epi32(ij, 16);
    // (double)(x0 + j), (double)(y0 + i): exact in int32 (|x0| < 2^30, j < 2^15)
    const __m256d px = _mm256_cvtepi32_pd(_mm_add_epi32(jv, x0v));
    const __m256d py = _mm256_cvtepi32_pd(_mm_add_epi32(iv, y0v));
    __m256d w[3], sum;
    int mask = eval4(x, y, zc, px, py, w, sum);
    if (nj - g < 4) mask &= (1 << (nj - g)) - 1;
    C.gpre[g >> 2] = nh;
    C.gmask[g >> 2] = (uint8_t)mask;
    const __m256i c64 = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.p64[mask]));
    const __m128i c32 = _mm_load_si128(reinterpret_cast<const __m128i*>(kCompress.b32[mask]));
    auto put = [&](double* dst, __m256d a) PF3D_AVX2 {
      _mm256_storeu_pd(dst + nh, _mm256_castsi256_pd(
                                     _mm256_permutevar8x32_epi32(_mm256_castpd_si256(a), c64)));
    };
    put(C.w0, w[0]);
    put(C.w1, w[1]);
    put(C.w2, w[2]);
    put(C.s, sum);
    put(C.z0, zc[0]);
    put(C.z1, zc[1]);
    put(C.z2, zc[2]);
    // pixel index i * W + j < 2^30 (int16 windows)
    const __m128i pix = _mm_add_epi32(_mm_mullo_epi32(iv, Wv), jv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(C.f + nh), _mm_shuffle_epi8(fv, c32));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(C.pix + nh), _mm_shuffle_epi8(pix, c32));
    nh += popcount4(mask);
  }
  return nh;
}

// Barycentrics w / sum and depth of hits[0, nh) (4 per step, the operations
// of tri_eval).
template <typename T>
PF3D_AVX2 inline void finish_hits(Chunk<T>& C, int nh) {
  for (int h = nh; h < ((nh + 3) & ~3); ++h) {  // defined values in the padding lanes
    C.w0[h] = C.w1[h] = C.w2[h] = C.z0[h] = C.z1[h] = C.z2[h] = 0.0;
    C.s[h] = 1.0;
  }
  for (int h = 0; h < nh; h += 4) {
    const __m256d sum = _mm256_load_pd(C.s + h);
    const __m256d b0 = _mm256_div_pd(_mm256_load_pd(C.w0 + h), sum);
    const __m256d b1 = _mm256_div_pd(_mm256_load_pd(C.w1 + h), sum);
    const __m256d b2 = _mm256_div_pd(_mm256_load_pd(C.w2 + h), sum);
    const __m256d z =
        _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(b0, _mm256_load_pd(C.z0 + h)),
                                    _mm256_mul_pd(b1, _mm256_load_pd(C.z1 + h))),
                      _mm256_mul_pd(b2, _mm256_load_pd(C.z2 + h)));
    if constexpr (sizeof(T) == 4) {
      __m128 zf = _mm256_cvtpd_ps(z);
      zf = _mm_andnot_ps(_mm_cmpeq_ps(zf, _mm_setzero_ps()), zf);  // -0 -> +0
      _mm_store_ps((float*)C.zt + h, zf);
      _mm_store_ps((float*)C.b0 + h, _mm256_cvtpd_ps(b0));
      _mm_store_ps((float*)C.b1 + h, _mm256_cvtpd_ps(b1));
      _mm_store_ps((float*)C.b2 + h, _mm256_cvtpd_ps(b2));
    } else {
      _mm256_store_pd((double*)C.zt + h,
                      _mm256_andnot_pd(_mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_EQ_OQ), z));
      _mm256_store_pd((double*)C.b0 + h, b0);
      _mm256_store_pd((double*)C.b1 + h, b1);
      _mm256_store_pd((double*)C.b2 + h, b2);
    }
  }
}

// z-tests of hits[h0, h1), in order.
template <typename T>
PF3D_AVX2 inline void ztest_hits(const Chunk<T>& C, int h0, int h1, int32_t* face, T* bary,
                                 T* depth) {
  for (int h = h0; h < h1; ++h) {
    const int64_t pix = C.pix[h];
    const T zt = C.zt[h];
    if (face[pix] < 0 || zt > depth[pix]) {
      face[pix] = C.f[h];
      depth[pix] = zt;
      bary[3 * pix] = C.b0[h];
      bary[3 * pix + 1] = C.b1[h];
      bary[3 * pix + 2] = C.b2[h];
    }
  }
}

// int16 windows only (the int32 ones take the baseline variant).
template <typename T>
PF3D_AVX2 void raster_band_avx2(const T* verts, const int32_t* tris, const RasterParams& p,
                                int64_t r0, int64_t r1, VBox<int16_t>* vbox, int32_t* cand,
                                uint64_t* cbox, int32_t* face, T* bary, T* depth) {
  const int64_t W = p.W;
  pass0_avx2<T>(verts, p, vbox);
  init_band<T>(W, r0, r1, face, bary, depth);
  const int32_t rlo = (int32_t)r0, rhi = (int32_t)(r1 - 1), chi = (int32_t)(W - 1);
  // pass 1a: as in pass1a, also keeping each candidate's clamped box
  // (jmin, jmax, imin, imax as int16)
  int64_t nc = 0;
  {
    const __m128i lo_clamp = _mm_setr_epi16(0, 0, (int16_t)rlo, 0, 0, 0, 0, 0);
    const __m128i hi_clamp = _mm_setr_epi16((int16_t)chi, 0, (int16_t)rhi, 0, 0, 0, 0, 0);
    int64_t f = 0;
    {
      // four triangles per step
      const __m256i lo4 = _mm256_broadcastq_epi64(lo_clamp);
      const __m256i hi4 = _mm256_broadcastq_epi64(hi_clamp);
      const long long* vb64 = reinterpret_cast<const long long*>(vbox);
      const __m256i lanes02 = _mm256_set1_epi64x(0x0000ffff0000ffffLL);
      const __m128i iota = _mm_setr_epi32(0, 1, 2, 3);
      for (; f + 4 <= p.F; f += 4) {
        const int32_t* t = tris + 3 * f;
        // a0 b0 c0 a1 b1 c1 a2 b2 c2 a3 b3 c3: plain 64-bit loads (gathers are slow on
        // some CPUs)
        auto load4 = [vb64](int32_t v0, int32_t v1, int32_t v2, int32_t v3) PF3D_AVX2 {
          const __m128i lo = _mm_castpd_si128(_mm_loadh_pd(
              _mm_castsi128_pd(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(vb64 + v0))),
              reinterpret_cast<const double*>(vb64 + v1)));
          const __m128i hi = _mm_castpd_si128(_mm_loadh_pd(
              _mm_castsi128_pd(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(vb64 + v2))),
              reinterpret_cast<const double*>(vb64 + v3)));
          return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
        };
        const __m256i a = load4(t[0], t[3], t[6], t[9]);
        const __m256i b = load4(t[1], t[4], t[7], t[10]);
        const __m256i c = load4(t[2], t[5], t[8], t[11]);
        const __m256i mn = _mm256_max_epi16(_mm256_min_epi16(a, _mm256_min_epi16(b, c)), lo4);
        const __m256i mx = _mm256_srli_epi64(_mm256_max_epi16(a, _mm256_max_epi16(b, c)), 16);
        const __m256i mxc = _mm256_min_epi16(mx, hi4);
        // candidates: lanes 0 (columns) and 2 (rows) not empty
        const __m256i bad = _mm256_and_si256(_mm256_cmpgt_epi16(mn, mxc), lanes02);
        const int m = _mm256_movemask_pd(
            _mm256_castsi256_pd(_mm256_cmpeq_epi64(bad, _mm256_setzero_si256())));
        // per 128-bit half: boxes of triangles (0, 1) and (2, 3)
        const __m256 bx = _mm256_shuffle_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(mn, mxc)),
                                            _mm256_castsi256_ps(_mm256_unpackhi_epi16(mn, mxc)),
                                            _MM_SHUFFLE(2, 0, 2, 0));
        // compacted stores (nc + 4 <= f + 4 <= F)
        const __m256i c64 = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.p64[m]));
        const __m128i c32 = _mm_load_si128(reinterpret_cast<const __m128i*>(kCompress.b32[m]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(cbox + nc),
                            _mm256_permutevar8x32_epi32(_mm256_castps_si256(bx), c64));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(cand + nc),
                         _mm_shuffle_epi8(_mm_add_epi32(_mm_set1_epi32((int32_t)f), iota), c32));
        nc += popcount4(m);
      }
    }
    for (; f < p.F; ++f) {
      const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f]));
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f + 1]));
      const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vbox + tris[3 * f + 2]));
      const __m128i mn = _mm_max_epi16(_mm_min_epi16(a, _mm_min_epi16(b, c)), lo_clamp);
      const __m128i mx = _mm_srli_epi64(_mm_max_epi16(a, _mm_max_epi16(b, c)), 16);
      const __m128i mxc = _mm_min_epi16(mx, hi_clamp);
      const int bad = _mm_movemask_epi8(_mm_cmpgt_epi16(mn, mxc)) & 0x33;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(cbox + nc),
                       _mm_shuffle_epi32(_mm_unpacklo_epi16(mn, mxc), _MM_SHUFFLE(3, 3, 2, 0)));
      cand[nc] = (int32_t)f;
      nc += bad == 0;
    }
  }
  // pass 1b, in chunks of up to kChunkJobs jobs: boxes of up to 2x2 centres
  // become jobs (one per centre); a larger box is set up once and scanned
  // between the z-tests of the jobs before it and of those after it.
  Chunk<T> C;
  int64_t q = 0;
  while (q < nc) {
    int nj = 0, nbig = 0;
    while (q < nc && nj <= kChunkJobs - 4 && nbig < kChunkBig) {
      const uint64_t bx = cbox[q];
      const int32_t jmin = (int16_t)bx, jmax = (int16_t)(bx >> 16);
      const int32_t imin = (int16_t)(bx >> 32), imax = (int16_t)(bx >> 48);
      const int32_t dj = jmax - jmin, di = imax - imin;  // >= 0
      if ((dj | di) > 1) {
        C.bigq[nbig] = q++;
        C.bigpos[nbig++] = nj;
        continue;
      }
      // branch-free append of the 1, 2 or 4 centres
      const uint64_t base = (uint32_t)cand[q] | (uint64_t)jmin << 32 | (uint64_t)imin << 48;
      C.jobs[nj] = base;
      C.jobs[nj + 1] = base + kJobJ;
      C.jobs[nj + 1 + dj] = base + kJobI;
      C.jobs[nj + 1 + dj + di] = base + kJobI + kJobJ;
      nj += 1 + dj + di + (dj & di);
      ++q;
    }
    const int nh = nj ? eval_jobs<T>(C, nj, verts, tris, p) : 0;
    if (nh) finish_hits<T>(C, nh);
    int h = 0;
    for (int k = 0; k < nbig; ++k) {
      const int pos = C.bigpos[k];
      const int hb = pos >= nj ? nh
                               : C.gpre[pos >> 2] +
                                     popcount4(C.gmask[pos >> 2] & ((1 << (pos & 3)) - 1));
      ztest_hits<T>(C, h, hb, face, bary, depth);
      h = hb;
      const uint64_t bx = cbox[C.bigq[k]];
      const int32_t f = cand[C.bigq[k]];
      const int32_t* t = tris + 3 * (int64_t)f;
      raster_box_avx2<T>(verts + 3 * (int64_t)t[0], verts + 3 * (int64_t)t[1],
                         verts + 3 * (int64_t)t[2], f, p, (int16_t)(bx >> 32),
                         (int16_t)(bx >> 48), (int16_t)bx, (int16_t)(bx >> 16), face, bary,
                         depth);
    }
    ztest_hits<T>(C, h, nh, face, bary, depth);
  }
  finish_band<T>(W, r0, r1, face, depth);
}

#undef PF3D_AVX2

bool use_avx2() {
  static const bool ok = [] {
    const char* e = std::getenv("PYFACE3D_RASTER_BASELINE");  // testing the baseline
    if (e && e[0] && e[0] != '0') return false;
    __builtin_cpu_init();
    return (bool)__builtin_cpu_supports("avx2");
  }();
  return ok;
}
#endif  // PF3D_RASTER_AVX2

template <typename T, typename I>
void run_band(const T* verts, const int32_t* tris, const RasterParams& p, int64_t r0, int64_t r1,
              VBox<I>* vbox, int32_t* cand, uint64_t* cbox, int32_t* face, T* bary, T* depth) {
#if PF3D_RASTER_AVX2
  if constexpr (sizeof(I) == 2) {
    if (use_avx2())
      return raster_band_avx2<T>(verts, tris, p, r0, r1, vbox, cand, cbox, face, bary, depth);
  }
#endif
  (void)cbox;
  raster_band<T, I>(verts, tris, p, r0, r1, vbox, cand, face, bary, depth);
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
    Scratch& s = scratch();
    const size_t nv = (size_t)std::max<int64_t>(p.N, 1);
    const size_t vbytes = nv * (small ? sizeof(VBox<int16_t>) : sizeof(VBox<int32_t>));
    if (s.vbox.size() < vbytes + 16) s.vbox.resize(vbytes + 16);
    if (s.cand.size() < (size_t)std::max<int64_t>(p.F, 1)) s.cand.resize((size_t)p.F);
#if PF3D_RASTER_AVX2
    if (small && use_avx2() && s.cbox.size() < s.cand.size()) s.cbox.resize(s.cand.size());
#endif
    void* vb = s.vbox.data() + ((16 - (reinterpret_cast<uintptr_t>(s.vbox.data()) & 15)) & 15);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / bands, band = t % bands;
      const int64_t r0 = band * rows_per_band;
      const int64_t r1 = std::min(p.H, r0 + rows_per_band);
      if (r0 >= r1) continue;
      if (small)
        run_band<T, int16_t>(vertices + b * p.N * 3, triangles, p, r0, r1,
                             static_cast<VBox<int16_t>*>(vb), s.cand.data(), s.cbox.data(),
                             face_index + b * HW, bary + b * HW * 3, depth + b * HW);
      else
        run_band<T, int32_t>(vertices + b * p.N * 3, triangles, p, r0, r1,
                             static_cast<VBox<int32_t>*>(vb), s.cand.data(), s.cbox.data(),
                             face_index + b * HW, bary + b * HW * 3, depth + b * HW);
    }
    // keep the scratch of face-sized meshes (about 1.2 MB for BFM); give huge ones back
    if (s.vbox.size() + 12 * s.cand.size() > (size_t(64) << 20)) s = Scratch();
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
