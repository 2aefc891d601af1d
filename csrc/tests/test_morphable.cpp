// C++ tests of the torch-free morphable kernels: tiled/vectorised CPU paths vs
// the scalar per-vertex path, known answers, backward vs finite differences.
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/morphable.h"
#include "tests/testing.h"

using namespace pf3d::morphable;

template <typename T>
struct Problem {
  int64_t B, I, E, N, M;
  std::vector<T> pose, id, ex, mean, A, X;
  std::vector<int64_t> ids;
  Params<T> params() const {
    Params<T> p;
    p.pose = pose.data();
    p.id_coeff = id.data();
    p.exp_coeff = ex.data();
    p.mean = mean.data();
    p.id_basis = A.data();
    p.exp_basis = X.data();
    p.vertex_ids = ids.empty() ? nullptr : ids.data();
    p.B = B;
    p.I = I;
    p.E = E;
    p.N = N;
    p.M = ids.empty() ? N : (int64_t)ids.size();
    return p;
  }
};

template <typename T>
Problem<T> make(int64_t B, int64_t I, int64_t E, int64_t N, int64_t nids, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Problem<T> q;
  q.B = B;
  q.I = I;
  q.E = E;
  q.N = N;
  q.M = nids > 0 ? nids : N;
  auto fill = [&](std::vector<T>& v, size_t n) {
    v.resize(n);
    for (auto& x : v) x = (T)u(rng);
  };
  fill(q.pose, 12 * B);
  fill(q.id, B * I);
  fill(q.ex, B * E);
  fill(q.mean, 3 * N);
  fill(q.A, 3 * N * I);
  fill(q.X, 3 * N * E);
  std::uniform_int_distribution<int64_t> ui(0, N - 1);
  for (int64_t i = 0; i < nids; ++i) q.ids.push_back(ui(rng));
  return q;
}

template <typename T>
double max_rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::fabs((double)a[i] - (double)b[i]) / (1.0 + std::fabs((double)b[i]));
    if (d > m) m = d;
  }
  return m;
}

template <typename T>
void check_case(int64_t B, int64_t I, int64_t E, int64_t N, int64_t nids, double tol) {
  auto q = make<T>(B, I, E, N, nids, (unsigned)(B * 131 + I * 7 + E * 3 + N + nids));
  auto p = q.params();
  std::vector<T> o1(B * p.M * 3, T(-7)), o2(B * p.M * 3, T(-9));
  forward_cpu(p, o1.data());
  forward_naive(p, o2.data());
  double e = max_rel_err(o1, o2);
  if (!(e <= tol))
    std::fprintf(stderr, "forward B=%lld I=%lld E=%lld N=%lld ids=%lld err=%g\n", (long long)B,
                 (long long)I, (long long)E, (long long)N, (long long)nids, e);
  PF3D_CHECK(e <= tol);

  std::vector<T> g(B * p.M * 3);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (auto& x : g) x = (T)u(rng);
  std::vector<T> gp1(12 * B, T(-1)), gi1(B * I, T(-1)), ge1(B * E, T(-1));
  std::vector<T> gp2(12 * B), gi2(B * I), ge2(B * E);
  backward_cpu(p, g.data(), gp1.data(), gi1.data(), ge1.data());
  backward_naive(p, g.data(), gp2.data(), gi2.data(), ge2.data());
  // sums over M vertices: scale the tolerance
  double btol = tol * (10.0 + p.M);
  double eb = std::max(max_rel_err(gp1, gp2), std::max(max_rel_err(gi1, gi2), max_rel_err(ge1, ge2)));
  if (!(eb <= btol))
    std::fprintf(stderr, "backward B=%lld I=%lld E=%lld N=%lld ids=%lld err=%g\n", (long long)B,
                 (long long)I, (long long)E, (long long)N, (long long)nids, eb);
  PF3D_CHECK(eb <= btol);

  // determinism: a second call gives bit-identical results
  std::vector<T> gp3(12 * B), gi3(B * I), ge3(B * E);
  backward_cpu(p, g.data(), gp3.data(), gi3.data(), ge3.data());
  PF3D_CHECK(gp1 == gp3 && gi1 == gi3 && ge1 == ge3);
}

void known_answers() {
  // identity pose, zero coefficients -> mean; pure translation; scale
  const int64_t N = 5, I = 3, E = 2;
  for (int64_t B : {1, 4}) {
    auto q = make<double>(B, I, E, N, 0, 3);
    std::fill(q.id.begin(), q.id.end(), 0.0);
    std::fill(q.ex.begin(), q.ex.end(), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      double* P = q.pose.data() + 12 * b;
      const double f = 1.0 + b, t[3] = {0.5 * b, -1.0, 2.0};
      for (int i = 0; i < 12; ++i) P[i] = 0;
      for (int i = 0; i < 3; ++i) {
        P[4 * i + i] = f;
        P[4 * i + 3] = t[i];
      }
    }
    auto p = q.params();
    std::vector<double> o(B * N * 3);
    forward_cpu(p, o.data());
    for (int64_t b = 0; b < B; ++b) {
      const double f = 1.0 + b, t[3] = {0.5 * b, -1.0, 2.0};
      for (int64_t v = 0; v < N; ++v)
        for (int c = 0; c < 3; ++c)
          PF3D_CHECK_NEAR(o[(b * N + v) * 3 + c], f * q.mean[3 * v + c] + t[c], 1e-12);
    }
  }
}

void grad_fd() {
  // backward vs central finite differences of sum(w * forward)
  const int64_t B = 3, I = 4, E = 2, N = 7;
  auto q = make<double>(B, I, E, N, 4, 11);
  auto p = q.params();
  std::vector<double> w(B * p.M * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7 * i + 0.3);
  std::vector<double> gp(12 * B), gi(B * I), ge(B * E);
  backward_cpu(p, w.data(), gp.data(), gi.data(), ge.data());
  auto loss = [&](Problem<double>& qq) {
    auto pp = qq.params();
    std::vector<double> o(B * pp.M * 3);
    forward_cpu(pp, o.data());
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += w[i] * o[i];
    return s;
  };
  const double h = 1e-6;
  auto fd = [&](std::vector<double>& x, size_t i) {
    double x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(q);
    x[i] = x0 - h;
    double lm = loss(q);
    x[i] = x0;
    return (lp - lm) / (2 * h);
  };
  for (size_t i = 0; i < q.pose.size(); ++i) PF3D_CHECK_NEAR(gp[i], fd(q.pose, i), 1e-6);
  for (size_t i = 0; i < q.id.size(); ++i) PF3D_CHECK_NEAR(gi[i], fd(q.id, i), 1e-6);
  for (size_t i = 0; i < q.ex.size(); ++i) PF3D_CHECK_NEAR(ge[i], fd(q.ex, i), 1e-6);
}

int main() {
  std::printf("cpu variant: %s\n", cpu_variant());
  for (int64_t B : {1, 2, 3, 5, 8, 13, 64, 70, 131})
    for (int64_t N : {1, 33, 100}) {
      check_case<double>(B, 40, 10, N, 0, 1e-12);
      check_case<float>(B, 40, 10, N, 0, 2e-5);
      check_case<double>(B, 40, 10, N, 68, 1e-12);
    }
  for (int64_t B : {1, 9, 64}) {
    check_case<double>(B, 199, 100, 50, 0, 1e-12);
    check_case<float>(B, 199, 100, 50, 0, 1e-4);
    check_case<double>(B, 0, 10, 40, 0, 1e-12);
    check_case<double>(B, 40, 0, 40, 0, 1e-12);
    check_case<double>(B, 0, 0, 40, 0, 1e-12);
    check_case<double>(B, 3, 7, 9000, 0, 1e-12);  // several backward chunks
  }
  check_case<double>(0, 40, 10, 20, 0, 1e-12);
  known_answers();
  grad_fd();
  PF3D_TEST_MAIN_END();
}
