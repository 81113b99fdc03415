// Reconstruction numerics: the band integrator against -1/omega^2 and against direct
// convolution, modal expansion against independent formulas (and with dropouts), the stress
// recovery against a plain per-node reference, the fatigue state's exact merge and
// serialisation, and the block pipeline on a synthetic archive with a known modal history.
#include "vsense/solvers/reconstruction.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"

namespace {

namespace rc = vsense::solvers::reconstruction;
using vsense::solvers::RainflowCounter;

double two_pi() { return 2.0 * std::numbers::pi; }

// ---- BandIntegrator -----------------------------------------------------------------------

struct BandCase {
  double fs, low, high;
};

class BandIntegratorResponse : public ::testing::TestWithParam<BandCase> {};

TEST_P(BandIntegratorResponse, MatchesMinusOneOverOmegaSquaredInsideTheBand) {
  const auto [fs, low, high] = GetParam();
  rc::BandIntegrator integrator(fs, low, high, 1);
  double worst = 0.0, worst_f = 0.0;
  // Log-spaced frequencies across the whole band, both edges included.
  for (int i = 0; i <= 200; ++i) {
    const double f = low * std::pow(high / low, i / 200.0);
    const double err = std::abs(integrator.response(f) / rc::BandIntegrator::ideal(f) - 1.0);
    if (err > worst) {
      worst = err;
      worst_f = f;
    }
  }
  EXPECT_LE(worst, rc::BandIntegrator::design_tolerance)
      << "worst relative error " << worst << " at " << worst_f << " Hz";
  // Below the band it does not amplify: zero at DC (to round-off of the sum of the taps), never
  // above 3.3 times the gain at the low corner (the design's knee), half of it at 0.1 low.
  const double at_low = std::abs(rc::BandIntegrator::ideal(low));
  EXPECT_NEAR(integrator.response(0.0), 0.0, 1e-9 * at_low);
  for (int i = 1; i < 100; ++i) {
    EXPECT_LE(std::abs(integrator.response(low * i / 100.0)), 3.3 * at_low) << low * i / 100.0;
  }
  EXPECT_LT(std::abs(integrator.response(0.1 * low)), 0.6 * at_low);
  EXPECT_LT(std::abs(integrator.response(0.5 * fs * 0.999)),
            1e-4 * std::abs(rc::BandIntegrator::ideal(high)));
  // Zero-phase: symmetric taps; the half-length is the reach of the filter.
  const auto& h = integrator.taps();
  const std::size_t l = integrator.half_length();
  for (std::size_t k = 1; k <= l; ++k) ASSERT_EQ(h[l + k], h[l - k]);
}

INSTANTIATE_TEST_SUITE_P(Bands, BandIntegratorResponse,
                         ::testing::Values(BandCase{1000.0, 2.0, 400.0},
                                           BandCase{1000.0, 5.0, 100.0},
                                           BandCase{4096.0, 10.0, 1800.0},
                                           BandCase{200.0, 0.5, 90.0}),
                         [](const auto& info) {
                           std::string name = fmt::format("fs{}_band{}to{}", info.param.fs,
                                                          info.param.low, info.param.high);
                           std::replace(name.begin(), name.end(), '.', 'p');
                           return name;
                         });

TEST(BandIntegrator, BlocksGiveTheDirectConvolution) {
  const double fs = 500.0;
  rc::BandIntegrator integrator(fs, 4.0, 200.0, 3, 1 << 13);
  const auto& h = integrator.taps();
  const auto l = static_cast<std::int64_t>(integrator.half_length());
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise;
  const std::int64_t n = 20000;
  std::vector<double> x(static_cast<std::size_t>(n) * 3);
  for (double& v : x) v = noise(rng);
  // Blocked: output samples [t0, t0 + H) from inputs [t0 - L, t0 + H + L) (zeros outside).
  const auto block = static_cast<std::int64_t>(integrator.block_samples());
  std::vector<double> blocked(x.size());
  for (std::int64_t t0 = 0; t0 < n; t0 += block) {
    const std::int64_t count = std::min(block, n - t0);
    std::vector<double> in(static_cast<std::size_t>(count + 2 * l) * 3, 0.0);
    for (std::int64_t k = 0; k < count + 2 * l; ++k) {
      const std::int64_t t = t0 - l + k;
      if (t < 0 || t >= n) continue;
      for (int c = 0; c < 3; ++c) in[static_cast<std::size_t>(k * 3 + c)] = x[static_cast<std::size_t>(t * 3 + c)];
    }
    integrator.apply(in.data(), static_cast<std::size_t>(count), blocked.data() + t0 * 3);
  }
  // Direct convolution at a few samples, including block joints.
  double scale = 0.0;
  for (double v : blocked) scale = std::max(scale, std::abs(v));
  for (std::int64_t t : {std::int64_t{0}, l, block - 1, block, block + 1, 2 * block, n - 1}) {
    if (t >= n) continue;
    for (int c = 0; c < 3; ++c) {
      double direct = 0.0;
      for (std::int64_t k = -l; k <= l; ++k) {
        const std::int64_t s = t - k;
        if (s >= 0 && s < n) direct += h[static_cast<std::size_t>(l + k)] * x[static_cast<std::size_t>(s * 3 + c)];
      }
      EXPECT_NEAR(blocked[static_cast<std::size_t>(t * 3 + c)], direct, 1e-12 * scale)
          << "sample " << t << " column " << c;
    }
  }
}

TEST(BandIntegrator, IntegratesASinusoidTwice) {
  const double fs = 1000.0, f = 37.0;
  rc::BandIntegrator integrator(fs, 3.0, 300.0, 1);
  const auto l = static_cast<std::int64_t>(integrator.half_length());
  const std::int64_t n = 4 * l + 1000;
  std::vector<double> in(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t) in[static_cast<std::size_t>(t)] = std::cos(two_pi() * f * t / fs);
  const std::int64_t n_out = n - 2 * l;
  std::vector<double> out(static_cast<std::size_t>(n_out));
  ASSERT_LE(static_cast<std::size_t>(n), integrator.fft_size());
  integrator.apply(in.data(), static_cast<std::size_t>(n_out), out.data());
  const double w2 = std::pow(two_pi() * f, 2);
  for (std::int64_t t = 0; t < n_out; t += 97) {
    const double expected = -std::cos(two_pi() * f * (t + l) / fs) / w2;
    EXPECT_NEAR(out[static_cast<std::size_t>(t)], expected, 2e-5 / w2) << "sample " << t;
  }
}

TEST(BandIntegrator, RejectsImpossibleBands) {
  EXPECT_THROW(rc::BandIntegrator(1000.0, 0.0, 100.0, 1), vsense::InputError);
  EXPECT_THROW(rc::BandIntegrator(1000.0, 50.0, 40.0, 1), vsense::InputError);
  EXPECT_THROW(rc::BandIntegrator(1000.0, 5.0, 480.0, 1), vsense::InputError);
  EXPECT_THROW(rc::BandIntegrator(1000.0, 5.0, 100.0, 1, 1000), vsense::InputError);
}

// ---- ModalExpansion -----------------------------------------------------------------------

std::vector<double> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d;
  std::vector<double> a(rows * cols);
  for (double& v : a) v = d(rng);
  return a;
}

TEST(ModalExpansion, RecoversModalAccelerationsFromAnyIdentifyingSubset) {
  const std::size_t nc = 9, m = 4, n = 50;
  const auto a = random_matrix(nc, m, 2);
  const auto q = random_matrix(n, m, 3);
  std::vector<double> y(n * nc, 0.0);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t c = 0; c < nc; ++c)
      for (std::size_t k = 0; k < m; ++k) y[t * nc + c] += a[c * m + k] * q[t * m + k];
  // Dropouts: rows 10-19 lose channels 0 and 5, rows 30-34 keep only 3 channels (< m).
  for (std::size_t t = 10; t < 20; ++t) y[t * nc + 0] = y[t * nc + 5] = std::nan("");
  for (std::size_t t = 30; t < 35; ++t)
    for (std::size_t c = 3; c < nc; ++c) y[t * nc + c] = std::nan("");
  rc::ModalExpansion expansion(a, nc, m);
  std::vector<double> q_hat(n * m);
  std::vector<std::uint8_t> observable(n);
  std::vector<std::uint32_t> live(n);
  expansion.expand(y.data(), n, q_hat.data(), observable.data(), live.data());
  for (std::size_t t = 0; t < n; ++t) {
    const bool unobservable = t >= 30 && t < 35;
    EXPECT_EQ(observable[t], unobservable ? 0 : 1) << t;
    EXPECT_EQ(live[t], unobservable ? 3u : (t >= 10 && t < 20 ? 7u : 9u)) << t;
    for (std::size_t k = 0; k < m; ++k) {
      EXPECT_NEAR(q_hat[t * m + k], unobservable ? 0.0 : q[t * m + k], 1e-12) << t << " " << k;
    }
  }
}

TEST(ModalExpansion, TikhonovMatchesTheNormalEquations) {
  const std::size_t nc = 6, m = 5;
  const auto a = random_matrix(nc, m, 5);
  const auto y = random_matrix(1, nc, 6);
  const double alpha = 0.3;
  rc::ModalExpansion expansion(a, nc, m, {alpha, 1e8});
  std::vector<double> q_hat(m);
  std::uint8_t observable = 0;
  expansion.expand(y.data(), 1, q_hat.data(), &observable);
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> A(
      a.data(), static_cast<Eigen::Index>(nc), static_cast<Eigen::Index>(m));
  Eigen::Map<const Eigen::VectorXd> Y(y.data(), static_cast<Eigen::Index>(nc));
  const double gamma = alpha * alpha * A.squaredNorm() / static_cast<double>(m);
  const Eigen::MatrixXd normal =
      A.transpose() * A + gamma * Eigen::MatrixXd::Identity(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  const Eigen::VectorXd expected = normal.ldlt().solve(A.transpose() * Y);
  EXPECT_EQ(observable, 1);
  for (std::size_t k = 0; k < m; ++k) EXPECT_NEAR(q_hat[k], expected(static_cast<Eigen::Index>(k)), 1e-12);
}

TEST(ModalExpansion, FewerChannelsThanModesIsUnobservableWithoutRegularisation) {
  const auto a = random_matrix(3, 5, 7);
  rc::ModalExpansion plain(a, 3, 5);
  EXPECT_FALSE(plain.full().observable);
  EXPECT_TRUE(std::isinf(plain.full().condition));
  rc::ModalExpansion regularised(a, 3, 5, {0.1, 1e8});
  EXPECT_TRUE(regularised.full().observable);
}

// ---- StressFatigue and FatigueState -------------------------------------------------------

// Per node, the naive way: sigma = Psi q sample by sample, von Mises maxima, and a one-channel
// counter fed the signed von Mises of the counted samples.
struct NaiveResult {
  std::vector<double> vm_max, damage;
  std::vector<std::int64_t> vm_sample;
};

NaiveResult naive(const std::vector<double>& psi, const std::vector<double>& q, std::size_t p,
                  std::size_t m, std::size_t n, const std::vector<std::uint8_t>& counted,
                  const vsense::solvers::SnCurve& curve) {
  NaiveResult out;
  out.vm_max.assign(p, 0.0);
  out.vm_sample.assign(p, -1);
  for (std::size_t j = 0; j < p; ++j) {
    RainflowCounter counter(1);
    vsense::solvers::MinerDamage damage(curve, 1);
    std::vector<double> series;
    for (std::size_t t = 0; t < n; ++t) {
      if (!counted[t]) continue;
      double s[6] = {};
      for (int c = 0; c < 6; ++c)
        for (std::size_t k = 0; k < m; ++k) s[c] += psi[(j * 6 + c) * m + k] * q[t * m + k];
      const double dxy = s[0] - s[1], dyz = s[1] - s[2], dzx = s[2] - s[0];
      const double vm = std::sqrt(0.5 * (dxy * dxy + dyz * dyz + dzx * dzx) +
                                  3.0 * (s[3] * s[3] + s[4] * s[4] + s[5] * s[5]));
      if (out.vm_sample[j] < 0 || vm > out.vm_max[j]) {
        out.vm_max[j] = vm;
        out.vm_sample[j] = static_cast<std::int64_t>(t);
      }
      series.push_back(s[0] + s[1] + s[2] < 0.0 ? -vm : vm);
    }
    counter.process(std::span<const double>(series), damage);
    counter.finish(vsense::solvers::ResidueTreatment::half_cycles, damage);
    out.damage.push_back(damage.damage(0));
  }
  return out;
}

TEST(StressFatigue, MatchesThePlainPerNodeComputation) {
  const std::size_t p = 300, m = 6, n = 700;  // 3 tiles, the last partial; 3 passes
  const auto psi = random_matrix(p * 6, m, 11);
  const auto q = random_matrix(n, m, 12);
  std::vector<std::uint8_t> counted(n, 1);
  for (std::size_t t = 0; t < 40; ++t) counted[t] = 0;
  for (std::size_t t = 300; t < 320; ++t) counted[t] = 0;
  const auto curve = vsense::solvers::make_basquin_curve(1.0, 1e6, 3.0);
  rc::StressFatigue recovery(psi, {}, p, m, rc::EquivalentStress::signed_von_mises);
  rc::FatigueState state(p, &curve);
  recovery.process(q.data(), n, 0, counted.data(), state, nullptr);
  state.finish(vsense::solvers::ResidueTreatment::half_cycles);
  const auto expected = naive(psi, q, p, m, n, counted, curve);
  EXPECT_EQ(state.counted_samples(), static_cast<std::int64_t>(n - 60));
  for (std::size_t j = 0; j < p; ++j) {
    EXPECT_NEAR(state.von_mises_max()[j], expected.vm_max[j], 1e-12 * expected.vm_max[j]) << j;
    EXPECT_EQ(state.von_mises_max_sample()[j], expected.vm_sample[j]) << j;
    EXPECT_NEAR(state.damage()->damage(static_cast<std::int64_t>(j)), expected.damage[j],
                1e-9 * expected.damage[j])
        << j;
    EXPECT_GT(expected.damage[j], 0.0);
  }
}

TEST(FatigueState, MergingConsecutivePiecesEqualsOneRunAndSerialisationIsExact) {
  const std::size_t p = 200, m = 5, n = 1000;
  const auto psi = random_matrix(p * 6, m, 21);
  const auto q = random_matrix(n, m, 22);
  std::vector<std::uint8_t> counted(n, 1);
  const auto curve = vsense::solvers::make_eurocode3_curve(71.0, 0.05);
  rc::StressFatigue recovery(psi, {}, p, m, rc::EquivalentStress::von_mises);
  rc::FatigueState whole(p, &curve);
  recovery.process(q.data(), n, 0, counted.data(), whole, nullptr);
  for (std::size_t cut : {std::size_t{1}, std::size_t{257}, std::size_t{999}}) {
    rc::FatigueState first(p, &curve), second(p, &curve);
    recovery.process(q.data(), cut, 0, counted.data(), first, nullptr);
    recovery.process(q.data() + cut * m, n - cut, static_cast<std::int64_t>(cut),
                     counted.data() + cut, second, nullptr);
    // Through bytes, as between MPI ranks or across a checkpoint.
    rc::FatigueState restored(p, &curve);
    restored.deserialize(second.serialize());
    EXPECT_TRUE(restored == second);
    first.merge(restored);
    EXPECT_TRUE(first == whole) << "cut at " << cut;
  }
  rc::FatigueState other(p + 1, &curve);
  EXPECT_THROW(other.deserialize(whole.serialize()), vsense::InputError);
}

TEST(StressFatigue, CudaAgreesWithTheCpu) {
  if (vsense::CudaExecutor::device_count() == 0) {
    GTEST_SKIP() << "no usable CUDA device: the CUDA stress recovery is not run";
  }
  const std::size_t p = 597, m = 7, n = 1500;  // awkward sizes: partial tiles and runs
  const auto psi = random_matrix(p * 6, m, 31);
  const auto q = random_matrix(n, m, 32);
  std::vector<std::uint8_t> counted(n, 1);
  for (std::size_t t = 100; t < 130; ++t) counted[t] = 0;
  const auto curve = vsense::solvers::make_basquin_curve(1.0, 1e6, 3.0);
  for (const auto kind : {rc::EquivalentStress::signed_von_mises, rc::EquivalentStress::max_principal}) {
    rc::StressFatigue cpu(psi, {}, p, m, kind);
    rc::StressFatigue gpu(psi, {}, p, m, kind, vsense::CudaExecutor::create(0));
    rc::FatigueState a(p, &curve), b(p, &curve);
    // Two calls, so that the node states cross a call boundary on the device path.
    cpu.process(q.data(), 700, 0, counted.data(), a, nullptr);
    cpu.process(q.data() + 700 * m, n - 700, 700, counted.data() + 700, a, nullptr);
    gpu.process(q.data(), 700, 0, counted.data(), b, nullptr);
    gpu.process(q.data() + 700 * m, n - 700, 700, counted.data() + 700, b, nullptr);
    a.finish(vsense::solvers::ResidueTreatment::half_cycles);
    b.finish(vsense::solvers::ResidueTreatment::half_cycles);
    EXPECT_EQ(a.counted_samples(), b.counted_samples());
    for (std::size_t j = 0; j < p; ++j) {
      EXPECT_NEAR(b.von_mises_max()[j], a.von_mises_max()[j], 1e-12 * a.von_mises_max()[j]) << j;
      const auto c = static_cast<std::int64_t>(j);
      EXPECT_NEAR(b.damage()->damage(c), a.damage()->damage(c), 1e-9 * a.damage()->damage(c)) << j;
      EXPECT_NEAR(b.damage()->cycles(c), a.damage()->cycles(c), 1e-3 * a.damage()->cycles(c)) << j;
    }
  }
}

TEST(StressFatigue, CudaWithoutADeviceSaysWhy) {
  if (vsense::CudaExecutor::device_count() > 0) GTEST_SKIP() << "a CUDA device exists";
  EXPECT_THROW((void)vsense::make_executor("cuda"), vsense::Error);
}

}  // namespace
