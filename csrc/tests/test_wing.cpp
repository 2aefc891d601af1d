// C++ tests of the torch-free Wing / Adaptive Wing kernels (csrc/kernels/wing.*).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "kernels/wing.h"
#include "tests/testing.h"

using namespace pf3d::wing;

static double wing_exact(double d, double omega, double eps) {
  const double x = std::fabs(d);
  const double C = omega - omega * std::log1p(omega / eps);
  return x < omega ? omega * std::log1p(x / eps) : x - C;
}

static double awing_exact(double p, double y, const AWingParams& q) {
  const double d = std::fabs(y - p), e = q.alpha - y;
  if (d < q.theta) return q.omega * std::log1p(std::pow(d / q.epsilon, e));
  const double r = q.theta / q.epsilon;
  const double A = q.omega / (1 + std::pow(r, e)) * e * std::pow(r, e - 1) / q.epsilon;
  const double C = q.theta * A - q.omega * std::log1p(std::pow(r, e));
  return A * d - C;
}

static uint32_t lcg_state = 12345;
static double urand() {  // [0, 1)
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return (lcg_state >> 8) / 16777216.0;
}

static void test_wing_scalar() {
  const WingParams p = make_wing_params(10.0, 2.0);
  PF3D_CHECK_NEAR(p.C, 10.0 - 10.0 * std::log(6.0), 1e-12);
  PF3D_CHECK_NEAR(wing_value<double>(1.0, 10.0, 2.0, p.C), 10.0 * std::log(1.5), 1e-12);
  PF3D_CHECK_NEAR(wing_value<double>(-1.0, 10.0, 2.0, p.C), 10.0 * std::log(1.5), 1e-12);
  PF3D_CHECK_NEAR(wing_value<double>(15.0, 10.0, 2.0, p.C), 15.0 - p.C, 1e-12);
  // continuity at omega
  PF3D_CHECK_NEAR(wing_value<double>(10.0 - 1e-9, 10.0, 2.0, p.C),
                  wing_value<double>(10.0, 10.0, 2.0, p.C), 1e-8);
  // gradient
  PF3D_CHECK_NEAR(wing_grad<double>(1.0, 10.0, 2.0), 10.0 / 3.0, 1e-12);
  PF3D_CHECK_NEAR(wing_grad<double>(-1.0, 10.0, 2.0), -10.0 / 3.0, 1e-12);
  PF3D_CHECK_NEAR(wing_grad<double>(0.0, 10.0, 2.0), 0.0, 0);
  PF3D_CHECK_NEAR(wing_grad<double>(-20.0, 10.0, 2.0), -1.0, 0);
}

static void test_wing_float_fast_path() {
  // elementwise: vectorised float path vs exact double
  const int64_t n = 200000;
  std::vector<float> pred(n), target(n, 0.0f), out(n), out_exact(n);
  for (int64_t i = 0; i < n; ++i) {
    // log-spaced magnitudes from 1e-30 to 1e6, both signs, and exact zeros
    const double mag = std::pow(10.0, -30.0 + 36.0 * urand());
    pred[i] = static_cast<float>((i % 2 ? -1 : 1) * mag);
    if (i % 97 == 0) pred[i] = 0.0f;
  }
  const WingParams p = make_wing_params(10.0, 2.1);
  wing_forward_cpu(pred.data(), target.data(), n, p, kNone, out.data());
  wing_forward_cpu_exact(pred.data(), target.data(), n, p, kNone, out_exact.data());
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = wing_exact(pred[i], 10.0, 2.1);
    const double rel = e == 0 ? std::fabs(out[i]) : std::fabs(out[i] - e) / std::fabs(e);
    if (rel > worst) worst = rel;
  }
  PF3D_CHECK(worst < 6e-7);  // a few float ulps
  // reductions
  float mean = 0, sum = 0;
  wing_forward_cpu(pred.data(), target.data(), n, p, kMean, &mean);
  wing_forward_cpu(pred.data(), target.data(), n, p, kSum, &sum);
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += wing_exact(pred[i], 10.0, 2.1);
  PF3D_CHECK_NEAR(sum, ref, 1e-6 * std::fabs(ref));
  PF3D_CHECK_NEAR(mean, ref / n, 1e-6 * std::fabs(ref / n));
  // deterministic
  float sum2 = 0;
  wing_forward_cpu(pred.data(), target.data(), n, p, kSum, &sum2);
  PF3D_CHECK(sum == sum2);
  // empty mean is NaN, empty sum 0
  float e_mean = 0, e_sum = 1;
  wing_forward_cpu(pred.data(), target.data(), 0, p, kMean, &e_mean);
  wing_forward_cpu(pred.data(), target.data(), 0, p, kSum, &e_sum);
  PF3D_CHECK(std::isnan(e_mean));
  PF3D_CHECK(e_sum == 0.0f);
  // NaN / Inf inputs propagate through the linear branch
  float bad[3] = {NAN, INFINITY, -INFINITY}, zero3[3] = {0, 0, 0}, o3[3];
  wing_forward_cpu(bad, zero3, 3, p, kNone, o3);
  PF3D_CHECK(std::isnan(o3[0]));
  PF3D_CHECK(std::isinf(o3[1]) && o3[1] > 0);
  PF3D_CHECK(std::isinf(o3[2]) && o3[2] > 0);
}

static void test_wing_double_and_backward() {
  const int64_t n = 5000;
  std::vector<double> pred(n), target(n), out(n), grad(n), go(n);
  for (int64_t i = 0; i < n; ++i) {
    pred[i] = 30.0 * (urand() - 0.5);
    target[i] = 30.0 * (urand() - 0.5);
    go[i] = urand();
  }
  const WingParams p = make_wing_params(10.0, 2.1);
  wing_forward_cpu(pred.data(), target.data(), n, p, kNone, out.data());
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    PF3D_CHECK_NEAR(out[i], wing_exact(pred[i] - target[i], 10.0, 2.1), 1e-12);
    s += out[i];
  }
  double mean = 0;
  wing_forward_cpu(pred.data(), target.data(), n, p, kMean, &mean);
  PF3D_CHECK_NEAR(mean, s / n, 1e-10);
  // backward, none: finite differences
  wing_backward_cpu(go.data(), pred.data(), target.data(), n, p, kNone, grad.data());
  for (int64_t i = 0; i < n; i += 37) {
    const double d = pred[i] - target[i], h = 1e-6;
    if (std::fabs(std::fabs(d) - 10.0) < 1e-3 || std::fabs(d) < 1e-3) continue;
    const double fd = (wing_exact(d + h, 10.0, 2.1) - wing_exact(d - h, 10.0, 2.1)) / (2 * h);
    PF3D_CHECK_NEAR(grad[i], go[i] * fd, 1e-6);
  }
  // backward, mean: g / n
  double g1 = 2.0;
  wing_backward_cpu(&g1, pred.data(), target.data(), n, p, kMean, grad.data());
  PF3D_CHECK_NEAR(grad[5], 2.0 / n * wing_grad<double>(pred[5] - target[5], 10.0, 2.1), 1e-15);
}

static void test_awing_scalar() {
  AWingParams q;  // paper defaults
  for (double y : {0.0, 0.3, 0.9, 1.0}) {
    for (double p : {y, y + 0.1, y - 0.45, y + 0.7, y - 2.0}) {
      double v, s;
      awing_value_slope<double>(std::fabs(y - p), y, q.alpha, q.omega, q.epsilon, q.theta, &v,
                                &s);
      PF3D_CHECK_NEAR(v, awing_exact(p, y, q), 1e-12);
    }
    // continuity of value and slope at theta
    double v0, s0, v1, s1;
    awing_value_slope<double>(q.theta - 1e-10, y, q.alpha, q.omega, q.epsilon, q.theta, &v0,
                              &s0);
    awing_value_slope<double>(q.theta, y, q.alpha, q.omega, q.epsilon, q.theta, &v1, &s1);
    PF3D_CHECK_NEAR(v0, v1, 1e-8);
    PF3D_CHECK_NEAR(s0, s1, 1e-6 * std::fabs(s1));
  }
  // slope at d = 0 is 0 even when alpha - y < 1 (true derivative infinite)
  double v, s;
  awing_value_slope<double>(0.0, 1.5, q.alpha, q.omega, q.epsilon, q.theta, &v, &s);
  PF3D_CHECK(s == 0.0 && v == 0.0);
  float vf, sf;
  awing_value_slope<float>(0.0f, 1.9f, 2.1f, 14.0f, 1.0f, 0.5f, &vf, &sf);
  PF3D_CHECK(sf == 0.0f && vf == 0.0f);
}

static void test_awing_weight_map() {
  // one 4x5 map, foreground at the corner (0,0) and at (2,3); 0.2 is not > 0.2
  const int64_t H = 4, W = 5;
  std::vector<double> t(H * W, 0.0), m(H * W);
  t[0] = 0.5;
  t[2 * W + 3] = 0.3;
  t[3 * W + 0] = 0.2;
  AWingParams q;
  q.weight = 10.0;
  awing_weight_map_cpu(t.data(), 1, H, W, q, m.data());
  const int expect[4][5] = {{1, 1, 0, 0, 0}, {1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}, {0, 0, 1, 1, 1}};
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) PF3D_CHECK_NEAR(m[i * W + j], 1.0 + 10.0 * expect[i][j], 0);
  q.dilation = 1;
  awing_weight_map_cpu(t.data(), 1, H, W, q, m.data());
  for (int64_t k = 0; k < H * W; ++k) PF3D_CHECK_NEAR(m[k], t[k] > 0.2 ? 11.0 : 1.0, 0);
  q.weight = 0.0;
  awing_weight_map_cpu(t.data(), 1, H, W, q, m.data());
  for (int64_t k = 0; k < H * W; ++k) PF3D_CHECK_NEAR(m[k], 1.0, 0);
}

static void test_awing_batch() {
  const int64_t BK = 3, H = 6, W = 7, n = BK * H * W;
  std::vector<double> pred(n), target(n), out(n), grad(n), go(n), M(n);
  for (int64_t i = 0; i < n; ++i) {
    target[i] = urand() < 0.2 ? urand() : 0.0;
    pred[i] = target[i] + 0.8 * (urand() - 0.5);
    go[i] = urand();
  }
  AWingParams q;
  awing_weight_map_cpu(target.data(), BK, H, W, q, M.data());
  awing_forward_cpu(pred.data(), target.data(), BK, H, W, q, kNone, out.data());
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    PF3D_CHECK_NEAR(out[i], M[i] * awing_exact(pred[i], target[i], q), 1e-10);
    s += out[i];
  }
  double sum = 0, mean = 0;
  awing_forward_cpu(pred.data(), target.data(), BK, H, W, q, kSum, &sum);
  awing_forward_cpu(pred.data(), target.data(), BK, H, W, q, kMean, &mean);
  PF3D_CHECK_NEAR(sum, s, 1e-9);
  PF3D_CHECK_NEAR(mean, s / n, 1e-11);
  awing_backward_cpu(go.data(), pred.data(), target.data(), BK, H, W, q, kNone, grad.data());
  for (int64_t i = 0; i < n; ++i) {
    const double d = std::fabs(pred[i] - target[i]), h = 1e-7;
    if (d < 1e-4 || std::fabs(d - q.theta) < 1e-4) continue;
    const double fd =
        (awing_exact(pred[i] + h, target[i], q) - awing_exact(pred[i] - h, target[i], q)) /
        (2 * h);
    PF3D_CHECK_NEAR(grad[i], go[i] * M[i] * fd, 1e-5 * (1 + std::fabs(go[i] * M[i] * fd)));
  }
  // float path agrees with double
  std::vector<float> pf(pred.begin(), pred.end()), tf(target.begin(), target.end());
  float sf = 0;
  awing_forward_cpu(pf.data(), tf.data(), BK, H, W, q, kSum, &sf);
  PF3D_CHECK_NEAR(sf, s, 1e-4 * std::fabs(s));
}

static void test_awing_float_fast_path() {
  // vectorised float rows vs exact double, including lanes the fast path hands back
  // to the scalar code (d = 0, subnormal d, targets above alpha, huge exponents)
  const int64_t H = 7, W = 37, n = H * W;
  std::vector<float> pred(n), target(n), out(n), grad(n), go(n);
  for (int64_t i = 0; i < n; ++i) {
    target[i] = urand() < 0.3 ? static_cast<float>(urand()) : 0.0f;
    pred[i] = target[i] + static_cast<float>(2.0 * (urand() - 0.5) * std::pow(10.0, -6 * urand()));
    go[i] = static_cast<float>(urand());
  }
  pred[0] = target[0];                 // d = 0
  pred[1] = target[1] + 1e-40f;        // subnormal d
  target[2] = 3.0f; pred[2] = 2.9f;    // e < 0
  target[3] = 1.5f; pred[3] = 1.5f;    // d = 0, e < 1
  target[4] = 0.0f; pred[4] = 1e-30f;  // |a| > 80
  AWingParams q;
  awing_forward_cpu(pred.data(), target.data(), 1, H, W, q, kNone, out.data());
  awing_backward_cpu(go.data(), pred.data(), target.data(), 1, H, W, q, kNone, grad.data());
  std::vector<double> pd(pred.begin(), pred.end()), td(target.begin(), target.end()), M(n);
  std::vector<double> outd(n), gradd(n), god(go.begin(), go.end());
  awing_forward_cpu(pd.data(), td.data(), 1, H, W, q, kNone, outd.data());
  awing_backward_cpu(god.data(), pd.data(), td.data(), 1, H, W, q, kNone, gradd.data());
  for (int64_t i = 0; i < n; ++i) {
    PF3D_CHECK(std::isfinite(out[i]) && std::isfinite(grad[i]));
    PF3D_CHECK_NEAR(out[i], outd[i], 3e-6 * (1e-3 + std::fabs(outd[i])));
    PF3D_CHECK_NEAR(grad[i], gradd[i], 3e-6 * (1e-3 + std::fabs(gradd[i])));
  }
  PF3D_CHECK(grad[0] == 0.0f && grad[3] == 0.0f);
}

int main() {
  test_awing_float_fast_path();
  test_wing_scalar();
  test_wing_float_fast_path();
  test_wing_double_and_backward();
  test_awing_scalar();
  test_awing_weight_map();
  test_awing_batch();
  PF3D_TEST_MAIN_END();
}
