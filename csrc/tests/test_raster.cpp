// C++ tests of the torch-free raster kernels (csrc/kernels/raster.*).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/raster.h"
#include "tests/testing.h"

using namespace pf3d::raster;

namespace {

struct Out {
  std::vector<int32_t> face;
  std::vector<double> bary, depth;
};

Out run(const std::vector<double>& v, const std::vector<int32_t>& t, int64_t H, int64_t W,
        int64_t x0 = 0, int64_t y0 = 0, int64_t B = 1) {
  RasterParams p{B, (int64_t)v.size() / 3 / B, (int64_t)t.size() / 3, H, W, x0, y0};
  Out o;
  o.face.assign(B * H * W, 7);
  o.bary.assign(B * H * W * 3, 7);
  o.depth.assign(B * H * W, 7);
  rasterize_cpu<double>(v.data(), t.data(), p, o.face.data(), o.bary.data(), o.depth.data());
  return o;
}

void test_one_triangle() {
  // top edge y = 1 and left edge x = 1 included, hypotenuse x + y = 6 excluded
  for (int flip = 0; flip < 2; ++flip) {
    std::vector<double> v = {1, 1, 2, 5, 1, 2, 1, 5, 2};
    std::vector<int32_t> t = flip ? std::vector<int32_t>{0, 2, 1} : std::vector<int32_t>{0, 1, 2};
    Out o = run(v, t, 8, 8);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool in = x >= 1 && y >= 1 && x + y < 6;
        PF3D_CHECK((o.face[y * 8 + x] >= 0) == in);
        PF3D_CHECK_NEAR(o.depth[y * 8 + x], in ? 2.0 : 0.0, 0);
        if (in) {
          const double* b = &o.bary[3 * (y * 8 + x)];
          PF3D_CHECK_NEAR(b[0] + b[1] + b[2], 1.0, 1e-15);
          // bary reproduces the position
          PF3D_CHECK_NEAR(b[0] * 1 + b[1 + flip] * 5 + b[2 - flip] * 1, x, 1e-12);
        } else {
          PF3D_CHECK(o.bary[3 * (y * 8 + x)] == 0);
        }
      }
  }
}

void test_shared_edge_once() {
  std::vector<double> v = {1, 1, 0, 5, 1, 0, 5, 5, 0, 1, 5, 0};
  std::vector<int32_t> t1 = {0, 1, 2}, t2 = {0, 2, 3};
  Out a = run(v, t1, 8, 8), b = run(v, t2, 8, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      const int cnt = (a.face[y * 8 + x] >= 0) + (b.face[y * 8 + x] >= 0);
      const bool in = x >= 1 && x < 5 && y >= 1 && y < 5;
      PF3D_CHECK(cnt == (in ? 1 : 0));
    }
}

void test_occlusion_and_ties() {
  // face 0 far, face 1 near, face 2 duplicate of face 1 (exact tie -> 1)
  std::vector<double> v = {0, 0, 1, 9, 0, 1, 0, 9, 1, 0, 0, 5, 9, 0, 5, 0, 9, 5};
  std::vector<int32_t> t = {0, 1, 2, 3, 4, 5, 5, 3, 4};
  Out o = run(v, t, 10, 10);
  int n = 0;
  for (int i = 0; i < 100; ++i)
    if (o.face[i] >= 0) {
      ++n;
      PF3D_CHECK(o.face[i] == 1);
      PF3D_CHECK(o.depth[i] == 5);
    }
  PF3D_CHECK(n > 30);
}

void test_planar_depth_and_nan() {
  std::vector<double> v = {0.3, 0.2, 0, 9.7, 1.1, 0, 2.2, 8.9, 0,
                           std::nan(""), 1, 1};
  for (int k = 0; k < 3; ++k) v[3 * k + 2] = 0.25 * v[3 * k] - 0.5 * v[3 * k + 1] + 3;
  std::vector<int32_t> t = {0, 1, 2, 0, 1, 3};
  Out o = run(v, t, 10, 10);
  int n = 0;
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x)
      if (o.face[y * 10 + x] >= 0) {
        ++n;
        PF3D_CHECK(o.face[y * 10 + x] == 0);  // the NaN triangle covers nothing
        PF3D_CHECK_NEAR(o.depth[y * 10 + x], 0.25 * x - 0.5 * y + 3, 1e-12);
      }
  PF3D_CHECK(n > 20);
}

void test_roi_crop() {
  uint32_t s = 12345;
  auto rnd = [&]() { s = s * 1664525u + 1013904223u; return (s >> 8) / 16777216.0; };
  const int N = 50, F = 90, H = 30, W = 40;
  std::vector<double> v(N * 3);
  for (int i = 0; i < N; ++i) {
    v[3 * i] = rnd() * 46 - 3;
    v[3 * i + 1] = rnd() * 36 - 3;
    v[3 * i + 2] = rnd() * 10;
    if (i % 3 == 0) { v[3 * i] = std::round(v[3 * i]); v[3 * i + 1] = std::round(v[3 * i + 1]); }
  }
  std::vector<int32_t> t(F * 3);
  for (auto& x : t) x = (int32_t)(rnd() * N) % N;
  Out full = run(v, t, H, W);
  const int x0 = 9, y0 = 4, h = 17, w = 21;
  Out roi = run(v, t, h, w, x0, y0);
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      const int a = i * w + j, b = (i + y0) * W + (j + x0);
      PF3D_CHECK(roi.face[a] == full.face[b]);
      PF3D_CHECK(roi.depth[a] == full.depth[b]);
      for (int k = 0; k < 3; ++k) PF3D_CHECK(roi.bary[3 * a + k] == full.bary[3 * b + k]);
    }
}

void test_interpolate() {
  // 1 pixel per batch element; B = 3, broadcast and not
  std::vector<int32_t> tri = {0, 1, 2};
  std::vector<int32_t> face = {0, -1, 0};
  std::vector<double> bary = {0.2, 0.3, 0.5, 0, 0, 0, 1, 0, 0};
  std::vector<double> attr = {1, 10, 2, 20, 3, 30};  // (1, 3, 2)
  InterpParams p{3, 1, 2, 3, 1, true};
  std::vector<double> out(6, 7);
  interpolate_cpu<double>(attr.data(), face.data(), bary.data(), tri.data(), p, out.data());
  PF3D_CHECK_NEAR(out[0], 0.2 + 0.6 + 1.5, 1e-15);
  PF3D_CHECK_NEAR(out[1], 2 + 6 + 15, 1e-13);
  PF3D_CHECK(out[2] == 0 && out[3] == 0);
  PF3D_CHECK_NEAR(out[4], 1, 0);
  std::vector<double> grad = {1, 2, 5, 5, 3, 4};
  std::vector<double> ga(6, 7);
  interpolate_backward_cpu<double>(grad.data(), face.data(), bary.data(), tri.data(), p,
                                   ga.data());
  // vertex 0: 0.2*(1,2) + 1*(3,4); vertex 1: 0.3*(1,2); vertex 2: 0.5*(1,2)
  PF3D_CHECK_NEAR(ga[0], 3.2, 1e-15);
  PF3D_CHECK_NEAR(ga[1], 4.4, 1e-15);
  PF3D_CHECK_NEAR(ga[2], 0.3, 1e-15);
  PF3D_CHECK_NEAR(ga[5], 1.0, 1e-15);
  InterpParams q = p;
  q.broadcast = false;
  std::vector<double> attr3(18, 1.0), gb(18, 7);
  interpolate_backward_cpu<double>(grad.data(), face.data(), bary.data(), tri.data(), q,
                                   gb.data());
  PF3D_CHECK(gb[6] == 0 && gb[7] == 0);  // batch 1 is background
  PF3D_CHECK_NEAR(gb[12], 3, 0);
}

}  // namespace

int main() {
  test_one_triangle();
  test_shared_edge_once();
  test_occlusion_and_ties();
  test_planar_depth_and_nan();
  test_roi_crop();
  test_interpolate();
  PF3D_TEST_MAIN_END();
}
