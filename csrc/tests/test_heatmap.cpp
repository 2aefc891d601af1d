// Tests of the torch-free heatmap kernels (csrc/kernels/heatmap.h).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/heatmap.h"
#include "tests/testing.h"

using namespace pf3d::heatmap;

static void test_half_conversion() {
  const float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.9604645e-08f, 0.1f};
  for (float v : vals) PF3D_CHECK_NEAR(half_bits_to_float(float_to_half_bits(v)), v, std::fabs(v) * 1e-3);
  PF3D_CHECK(float_to_half_bits(1.0f) == 0x3c00);
  PF3D_CHECK(float_to_half_bits(-2.0f) == 0xc000);
  PF3D_CHECK(float_to_half_bits(70000.0f) == 0x7c00);  // overflow -> inf
  PF3D_CHECK(float_to_half_bits(1e-9f) == 0);           // underflow -> 0
  PF3D_CHECK(std::isnan(half_bits_to_float(float_to_half_bits(std::nanf("")))));
  PF3D_CHECK(float_to_half_bits(1.0f + 1.0f / 2048) == 0x3c00);  // tie -> even
}

static void test_reflect101() {
  PF3D_CHECK(reflect101(-1, 5) == 1);
  PF3D_CHECK(reflect101(-2, 5) == 2);
  PF3D_CHECK(reflect101(5, 5) == 3);
  PF3D_CHECK(reflect101(9, 5) == 1);
  PF3D_CHECK(reflect101(-7, 5) == 1);
  PF3D_CHECK(reflect101(3, 1) == 0);
}

static void test_encode_known() {
  const int64_t H = 9, W = 11;
  EncodeParams p;
  p.maps = 4;
  p.height = H;
  p.width = W;
  p.sigma = 1.0;
  p.unbiased = false;
  const float pts[8] = {5.0f, 4.0f, 5.4f, 3.6f, -0.7f, 2.0f, 1.0f, 1.0f};
  const uint8_t vis[4] = {1, 1, 1, 0};
  std::vector<float> out(4 * H * W, -1.0f);
  float w[4];
  encode_cpu(p, DType::kFloat, pts, vis, DType::kFloat, out.data(), w);
  PF3D_CHECK(w[0] == 1 && w[1] == 1 && w[2] == 0 && w[3] == 0);
  const float* m = out.data();
  PF3D_CHECK(m[4 * W + 5] == 1.0f);
  PF3D_CHECK_NEAR(m[4 * W + 6], std::exp(-0.5), 1e-7);
  PF3D_CHECK_NEAR(m[5 * W + 6], std::exp(-1.0), 1e-7);
  PF3D_CHECK_NEAR(m[4 * W + 8], std::exp(-4.5), 1e-7);  // |dx| = 3 sigma: inside
  PF3D_CHECK(m[4 * W + 9] == 0.0f && m[4 * W + 1] == 0.0f && m[0 * W + 5] == 0.0f);
  for (int64_t i = 0; i < H * W; ++i) PF3D_CHECK(out[H * W + i] == m[i]);  // biased rounding
  for (int64_t i = 2 * H * W; i < 4 * H * W; ++i) PF3D_CHECK(out[i] == 0.0f);
}

static void test_encode_unbiased_and_half() {
  const int64_t H = 9, W = 11;
  EncodeParams p;
  p.maps = 1;
  p.height = H;
  p.width = W;
  p.sigma = 1.5;
  const double pd[2] = {5.25, 3.5};
  std::vector<double> od(H * W);
  std::vector<uint16_t> oh(H * W);
  float w;
  encode_cpu(p, DType::kDouble, pd, nullptr, DType::kDouble, od.data(), &w);
  encode_cpu(p, DType::kDouble, pd, nullptr, DType::kHalf, oh.data(), &w);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double dx = x - 5.25, dy = y - 3.5;
      const bool in = std::fabs(dx) <= 4.5 && std::fabs(dy) <= 4.5;
      const double want = in ? std::exp(-(dx * dx + dy * dy) / (2 * 1.5 * 1.5)) : 0.0;
      PF3D_CHECK_NEAR(od[y * W + x], want, 1e-15);
      PF3D_CHECK_NEAR(half_bits_to_float(oh[y * W + x]), want, 1e-3);
    }
}

static void test_decode_round_trip() {
  const int64_t H = 40, W = 44, N = 6;
  EncodeParams p;
  p.maps = N;
  p.height = H;
  p.width = W;
  p.sigma = 2.0;
  p.unbiased = true;
  std::vector<float> pts(2 * N);
  for (int i = 0; i < N; ++i) {
    pts[2 * i] = 5.0f + 5.37f * i;
    pts[2 * i + 1] = 34.6f - 4.91f * i;
  }
  std::vector<float> hm(N * H * W), coords(2 * N), scores(N);
  std::vector<float> w(N);
  encode_cpu(p, DType::kFloat, pts.data(), nullptr, DType::kFloat, hm.data(), w.data());
  DecodeParams d;
  d.maps = N;
  d.height = H;
  d.width = W;
  DarkWeights dw;
  dark_weights(11, &dw);
  PF3D_CHECK(dw.radius == 5);
  d.refine = kRefineNone;
  decode_cpu(d, DType::kFloat, hm.data(), dw, coords.data(), scores.data());
  for (int i = 0; i < N; ++i) {
    PF3D_CHECK(coords[2 * i] == std::floor(pts[2 * i] + 0.5f));
    PF3D_CHECK(coords[2 * i + 1] == std::floor(pts[2 * i + 1] + 0.5f));
    PF3D_CHECK(scores[i] > 0.8f && scores[i] <= 1.0f);
  }
  d.refine = kRefineDark;
  decode_cpu(d, DType::kFloat, hm.data(), dw, coords.data(), scores.data());
  for (int i = 0; i < 2 * N; ++i) PF3D_CHECK_NEAR(coords[i], pts[i], 0.05);
  d.refine = kRefineQuarter;
  decode_cpu(d, DType::kFloat, hm.data(), dw, coords.data(), scores.data());
  for (int i = 0; i < 2 * N; ++i) PF3D_CHECK_NEAR(coords[i], pts[i], 0.5);
}

static void test_decode_nan_and_ties() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float hm[3 * 6] = {0, 2, 0, 2, 0, 0,   // tie: first
                     nan, nan, nan, nan, nan, nan,   // all NaN
                     nan, -1, nan, 0.5f, nan, nan};  // NaN below numbers
  DecodeParams d;
  d.maps = 3;
  d.height = 2;
  d.width = 3;
  DarkWeights dw;
  dark_weights(3, &dw);
  float c[6], s[3];
  decode_cpu(d, DType::kFloat, hm, dw, c, s);
  PF3D_CHECK(c[0] == 1 && c[1] == 0 && s[0] == 2);
  PF3D_CHECK(c[2] == 0 && c[3] == 0 && std::isnan(s[1]));
  PF3D_CHECK(c[4] == 0 && c[5] == 1 && s[2] == 0.5f);
}

static void test_soft_argmax() {
  const int64_t H = 5, W = 9;  // W not a multiple of 4
  std::vector<float> hm(H * W, -50.0f);
  hm[3 * W + 6] = 0.0f;
  SoftArgmaxParams p;
  p.maps = 1;
  p.height = H;
  p.width = W;
  float c[2];
  soft_argmax_cpu(p, DType::kFloat, hm.data(), c);
  PF3D_CHECK_NEAR(c[0], 6.0, 1e-5);
  PF3D_CHECK_NEAR(c[1], 3.0, 1e-5);
  // random map: compare with a direct double computation, and the backward
  // against central differences
  std::vector<double> x(H * W);
  for (int64_t i = 0; i < H * W; ++i) x[i] = std::sin(0.7 * i) * 2.0;
  p.beta = 1.3;
  double cd[2];
  soft_argmax_cpu(p, DType::kDouble, x.data(), cd);
  double S = 0, SX = 0, SY = 0;
  for (int64_t i = 0; i < H * W; ++i) {
    const double e = std::exp(1.3 * x[i]);
    S += e;
    SX += e * (i % W);
    SY += e * (i / W);
  }
  PF3D_CHECK_NEAR(cd[0], SX / S, 1e-12);
  PF3D_CHECK_NEAR(cd[1], SY / S, 1e-12);
  std::vector<float> xf(x.begin(), x.end());
  float cf[2];
  soft_argmax_cpu(p, DType::kFloat, xf.data(), cf);
  PF3D_CHECK_NEAR(cf[0], cd[0], 1e-5);
  PF3D_CHECK_NEAR(cf[1], cd[1], 1e-5);
  const double g[2] = {0.3, -1.1};
  std::vector<double> gh(H * W);
  soft_argmax_backward_cpu(p, DType::kDouble, g, x.data(), cd, gh.data());
  for (int64_t i = 0; i < H * W; i += 7) {
    double cp[2], cm[2];
    const double h = 1e-6, keep = x[i];
    x[i] = keep + h;
    soft_argmax_cpu(p, DType::kDouble, x.data(), cp);
    x[i] = keep - h;
    soft_argmax_cpu(p, DType::kDouble, x.data(), cm);
    x[i] = keep;
    const double num = (g[0] * (cp[0] - cm[0]) + g[1] * (cp[1] - cm[1])) / (2 * h);
    PF3D_CHECK_NEAR(gh[i], num, 1e-7);
  }
}

int main() {
  test_half_conversion();
  test_reflect101();
  test_encode_known();
  test_encode_unbiased_and_half();
  test_decode_round_trip();
  test_decode_nan_and_ties();
  test_soft_argmax();
  PF3D_TEST_MAIN_END();
}
