// Sensor placement against brute force on small problems: every greedy step picks the best
// single candidate (exhaustive check with criteria recomputed from scratch by independent
// dense code), EfI leverages sum to the number of modes, the rank-3 (Woodbury / determinant
// lemma / Schur complement) gains match recomputation, two-phase never scores worse than its
// phase 1, results do not depend on the candidate partitioning, and the input errors.
#include <gtest/gtest.h>

#include <barrier>
#include <thread>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <set>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/solvers/placement.hpp"
#include "vsense/solvers/placement_scoring.hpp"

namespace {

namespace placement = vsense::solvers::placement;
using placement::Method;
using placement::Problem;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Criteria recomputed from scratch are compared with a relative tolerance: the greedy picks
/// from rank-3 updates and the reference from a fresh Cholesky of an m x m matrix with
/// condition numbers up to ~1e8 (ridge), so agreement to ~1e-8 relative is what double
/// precision promises; a wrong pick differs by far more on random data (gaps ~1e-3).
constexpr double criterion_rel = 1e-7;

/// A random problem: n nodes in the unit cube (every fourth one a near twin of its
/// predecessor, so that redundant clusters exist), m smooth "mode shapes", ascending
/// frequencies, and nt stress targets with random modal stresses (G as in make_problem).
Problem random_problem(std::size_t n, std::size_t m, std::uint64_t seed, std::size_t nt = 12) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  Problem p;
  p.n_modes = m;
  p.node_ids.resize(n);
  p.coordinates.resize(3 * n);
  for (std::size_t i = 0; i < n; ++i) {
    p.node_ids[i] = static_cast<std::int64_t>(100 + 3 * i);
    for (int d = 0; d < 3; ++d) {
      p.coordinates[3 * i + d] = (i % 4 == 3) ? p.coordinates[3 * (i - 1) + d] + 0.01 * u(rng) : u(rng);
    }
  }
  std::vector<double> wave(3 * m), phase(3 * m);
  for (auto& v : wave) v = 1.0 + 4.0 * u(rng);
  for (auto& v : phase) v = 6.28 * u(rng);
  p.blocks.resize(3 * n * m);
  for (std::size_t i = 0; i < n; ++i) {
    const double* x = &p.coordinates[3 * i];
    for (std::size_t d = 0; d < 3; ++d) {
      for (std::size_t k = 0; k < m; ++k) {
        const double arg = wave[3 * k] * x[0] + wave[3 * k + 1] * x[1] + wave[3 * k + 2] * x[2];
        p.blocks[(3 * i + d) * m + k] = std::sin(arg + phase[3 * k + d]) / std::sqrt(double(n));
      }
    }
  }
  double f = 5.0;
  for (std::size_t k = 0; k < m; ++k) {
    f *= 1.1 + u(rng);
    p.frequencies_hz.push_back(f);
    p.mode_indices.push_back(k);
  }
  p.n_targets = nt;
  p.target_stress.resize(m * nt * 6);
  for (auto& v : p.target_stress) v = normal(rng);
  // G = sum_t Psi_t^T V Psi_t with V the von Mises quadratic form (written out here).
  Eigen::Matrix<double, 6, 6> v = Eigen::Matrix<double, 6, 6>::Zero();
  v.topLeftCorner<3, 3>() << 1, -0.5, -0.5, -0.5, 1, -0.5, -0.5, -0.5, 1;
  v.bottomRightCorner<3, 3>() = 3.0 * Eigen::Matrix3d::Identity();
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(m, m);
  for (std::size_t t = 0; t < nt; ++t) {
    Eigen::MatrixXd psi(6, m);
    for (std::size_t k = 0; k < m; ++k) {
      for (int c = 0; c < 6; ++c) psi(c, k) = p.target_stress[(k * nt + t) * 6 + c];
    }
    g += psi.transpose() * v * psi;
  }
  p.response_information.resize(m * m);
  Eigen::Map<RowMatrix>(p.response_information.data(), m, m) = g;
  return p;
}

Eigen::MatrixXd block(const Problem& p, std::size_t i) {
  Eigen::MatrixXd b(3, p.n_modes);
  for (int d = 0; d < 3; ++d) {
    for (std::size_t k = 0; k < p.n_modes; ++k) b(d, k) = p.blocks[(3 * i + d) * p.n_modes + k];
  }
  return b;
}

double dist(const Problem& p, std::size_t a, std::size_t b) {
  double s = 0.0;
  for (int d = 0; d < 3; ++d) s += std::pow(p.coordinates[3 * a + d] - p.coordinates[3 * b + d], 2);
  return std::sqrt(s);
}

/// Information of a set by brute force: the full 3|S| x 3|S| error covariance
/// Sigma = C kron I3 (C_ab = exp(-d_ab / lambda)), Q = Phi_S^T Sigma^-1 Phi_S.
Eigen::MatrixXd brute_information(const Problem& p, const std::vector<std::size_t>& s, double lambda) {
  const std::size_t m = p.n_modes;
  if (s.empty()) return Eigen::MatrixXd::Zero(m, m);
  Eigen::MatrixXd phi(3 * s.size(), m);
  for (std::size_t a = 0; a < s.size(); ++a) phi.middleRows(3 * a, 3) = block(p, s[a]);
  Eigen::MatrixXd sigma = Eigen::MatrixXd::Identity(3 * s.size(), 3 * s.size());
  if (lambda > 0.0) {
    for (std::size_t a = 0; a < s.size(); ++a) {
      for (std::size_t b = 0; b < s.size(); ++b) {
        for (int d = 0; d < 3; ++d) sigma(3 * a + d, 3 * b + d) = std::exp(-dist(p, s[a], s[b]) / lambda);
      }
    }
  }
  return phi.transpose() * sigma.ldlt().solve(phi);
}

double ridge_of(const Problem& p) {
  double total = 0.0;
  for (double v : p.blocks) total += v * v;
  return 1e-6 * total / double(p.n_candidates() * p.n_modes);
}

/// Prior variances written out: w_k = (f_1 / f_k)^p, s_q^2 = snr^2 / mean channel power.
Eigen::VectorXd brute_prior(const Problem& p, bool weighting, double exponent, double snr) {
  const std::size_t m = p.n_modes, n = p.n_candidates();
  Eigen::VectorXd w(m);
  for (std::size_t k = 0; k < m; ++k) {
    w[k] = weighting ? std::pow(p.frequencies_hz[0] / p.frequencies_hz[k], exponent) : 1.0;
  }
  double power = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::MatrixXd b = block(p, i);
    for (std::size_t k = 0; k < m; ++k) power += w[k] * b.col(k).squaredNorm();
  }
  power /= double(3 * n);
  return w * (snr * snr / power);
}

double log_det(const Eigen::MatrixXd& q) {
  Eigen::LLT<Eigen::MatrixXd> llt(q);
  EXPECT_EQ(llt.info(), Eigen::Success);
  return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
}

Eigen::MatrixXd g_of(const Problem& p) {
  return Eigen::Map<const RowMatrix>(p.response_information.data(), p.n_modes, p.n_modes);
}

/// The criterion of a set, "higher is better": d-optimal log det(eps I + Q); min-variance
/// -tr((Lambda^-1 + Q)^-1 G).
double brute_criterion(const Problem& p, Method method, const std::vector<std::size_t>& s,
                       const placement::Options& o) {
  Eigen::MatrixXd q = brute_information(p, s, o.correlation_length);
  if (method == Method::d_optimal) {
    q.diagonal().array() += ridge_of(p);
    return log_det(q);
  }
  const bool weighting = o.mode_weighting.value_or(method == Method::two_phase);
  q.diagonal() += brute_prior(p, weighting, o.weight_exponent, o.snr).cwiseInverse();
  return -(q.ldlt().solve(g_of(p))).trace();
}

bool allowed(const Problem& p, const std::vector<std::size_t>& chosen, std::size_t j, double min_distance) {
  for (std::size_t a : chosen) {
    if (a == j || dist(p, a, j) < min_distance) return false;
  }
  return true;
}

/// Replays a forward greedy result: at every step the pick must attain the best criterion
/// over all allowed candidates.
void expect_greedy_optimal(const Problem& p, Method method, const placement::Options& o,
                           const placement::Result& r) {
  std::vector<std::size_t> chosen;
  for (std::size_t step = 0; step < r.sensors.size(); ++step) {
    double best = -std::numeric_limits<double>::infinity();
    std::size_t best_j = 0;
    for (std::size_t j = 0; j < p.n_candidates(); ++j) {
      if (!allowed(p, chosen, j, o.min_distance)) continue;
      auto trial = chosen;
      trial.push_back(j);
      const double c = brute_criterion(p, method, trial, o);
      if (c > best) {
        best = c;
        best_j = j;
      }
    }
    auto with_pick = chosen;
    with_pick.push_back(r.sensors[step]);
    ASSERT_TRUE(allowed(p, chosen, r.sensors[step], o.min_distance)) << "step " << step;
    const double got = brute_criterion(p, method, with_pick, o);
    EXPECT_GE(got, best - criterion_rel * std::abs(best))
        << placement::method_name(method) << " step " << step << ": picked " << r.sensors[step]
        << " (criterion " << got << ") but " << best_j << " gives " << best;
    chosen.push_back(r.sensors[step]);
  }
}

placement::Result run(const Problem& p, placement::Options o) {
  const vsense::CpuExecutor cpu;
  return placement::place(cpu, p, o);
}

placement::Options opts(Method method, std::size_t sensors) {
  placement::Options o;
  o.method = method;
  o.n_sensors = sensors;
  o.chunk = 16;  // several chunks even on small problems
  return o;
}

// ---- the scoring algebra -------------------------------------------------------------------

TEST(PlacementScoring, EfiLeveragesSumToNumberOfModes) {
  const Problem p = random_problem(97, 11, 1);
  Eigen::MatrixXd q = brute_information(p, [&] {
    std::vector<std::size_t> all(p.n_candidates());
    std::iota(all.begin(), all.end(), 0);
    return all;
  }(), 0.0);
  Eigen::LLT<Eigen::MatrixXd> llt(q);
  const RowMatrix right = Eigen::MatrixXd(llt.matrixL().solve(Eigen::MatrixXd::Identity(11, 11))).transpose();
  const vsense::CpuExecutor cpu;
  auto scorer = vsense::solvers::placement::make_cpu_block_scorer(0, p.n_candidates(), 11, p.blocks.data(),
                                                   p.coordinates.data(), 16);
  std::vector<std::uint8_t> all(p.n_candidates(), 1);
  std::vector<double> leverage(p.n_candidates()), removal(p.n_candidates());
  vsense::kernels::ScoreRequest request;
  request.right = right.data();
  request.k1 = 11;
  request.score = vsense::kernels::BlockScore::trace;
  scorer->score(request, all.data(), leverage.data());
  const double sum = std::accumulate(leverage.begin(), leverage.end(), 0.0);
  EXPECT_NEAR(sum, 11.0, 1e-11 * 11) << "sum of the triaxial EfI leverages tr(Phi_i Q^-1 Phi_i^T)";
  // EfI3 = 1 - det(I - Phi_i Q^-1 Phi_i^T) is the fraction of det Q lost without node i.
  request.score = vsense::kernels::BlockScore::efi_removal;
  scorer->score(request, all.data(), removal.data());
  for (std::size_t i = 0; i < p.n_candidates(); i += 7) {
    const Eigen::MatrixXd without = q - block(p, i).transpose() * block(p, i);
    const double expected = 1.0 - std::exp(log_det(without) - log_det(q));
    EXPECT_NEAR(removal[i], expected, 1e-10) << "node " << i;
  }
}

TEST(PlacementScoring, RankThreeGainsMatchRecomputation) {
  // d-optimal gain log det(I + Phi_j Q^-1 Phi_j^T) and min-variance gain
  // tr((I + S_j)^-1 Phi_j Q^-1 G Q^-1 Phi_j^T) against the criteria of S + j from scratch,
  // with and without the correlated error model (Schur complement of the sensor errors).
  const Problem p = random_problem(83, 9, 2);
  for (double lambda : {0.0, 0.3}) {
    for (Method method : {Method::d_optimal, Method::min_variance}) {
      placement::Options o = opts(method, 6);
      o.correlation_length = lambda;
      const auto r = run(p, o);
      // Each recorded pick score must equal the criterion change from scratch.
      std::vector<std::size_t> chosen;
      double before = brute_criterion(p, method, chosen, o);
      for (std::size_t step = 0; step < r.sensors.size(); ++step) {
        chosen.push_back(r.sensors[step]);
        const double after = brute_criterion(p, method, chosen, o);
        const double scale = method == Method::d_optimal ? std::abs(after) : std::abs(before);
        EXPECT_NEAR(r.pick_scores[step], after - before, 1e-8 * scale)
            << placement::method_name(method) << " lambda " << lambda << " step " << step;
        before = after;
      }
    }
  }
}

TEST(PlacementScoring, CorrelatedInformationMatchesDenseCovariance) {
  const Problem p = random_problem(40, 7, 3);
  const std::vector<std::size_t> s = {0, 2, 3, 9, 17, 33};
  const Eigen::MatrixXd expected = brute_information(p, s, 0.4);
  const Eigen::MatrixXd got = placement::information(p, s, 0.4);
  EXPECT_LT((got - expected).norm(), 1e-10 * expected.norm());
}

// ---- greedy steps against exhaustive search ------------------------------------------------

TEST(PlacementGreedy, DOptimalPicksTheBestCandidateEveryStep) {
  const Problem p = random_problem(70, 10, 4);
  for (double min_distance : {0.0, 0.25}) {
    auto o = opts(Method::d_optimal, 7);
    o.min_distance = min_distance;
    expect_greedy_optimal(p, Method::d_optimal, o, run(p, o));
  }
}

TEST(PlacementGreedy, MinVariancePicksTheBestCandidateEveryStep) {
  const Problem p = random_problem(70, 10, 5);
  struct Case {
    bool weighting;
    double lambda, min_distance;
  };
  for (const Case c : {Case{false, 0.0, 0.0}, Case{true, 0.0, 0.0}, Case{true, 0.2, 0.0},
                       Case{false, 0.5, 0.15}}) {
    auto o = opts(Method::min_variance, 7);
    o.mode_weighting = c.weighting;
    o.correlation_length = c.lambda;
    o.min_distance = c.min_distance;
    SCOPED_TRACE(::testing::Message() << "weighting " << c.weighting << " lambda " << c.lambda
                                      << " min distance " << c.min_distance);
    const auto r = run(p, o);
    expect_greedy_optimal(p, Method::min_variance, o, r);
    // The recorded criterion is the relative variance of the set after each pick.
    for (std::size_t k = 0; k < r.sensors.size(); ++k) {
      const std::vector<std::size_t> prefix(r.sensors.begin(), r.sensors.begin() + k + 1);
      const double prior = -brute_criterion(p, Method::min_variance, {}, o);
      EXPECT_NEAR(r.criterion[k], -brute_criterion(p, Method::min_variance, prefix, o) / prior,
                  1e-9);
    }
  }
}

TEST(PlacementGreedy, EfiRemovesTheLeastInformativeNodeEachRound) {
  // Backward elimination one node per round, replayed densely: remove the node whose removal
  // keeps the largest det(eps I + Q) (= the smallest EfI3, or EfI3 x DPR for efi-dpr).
  const Problem p = random_problem(45, 8, 6);
  const double eps = ridge_of(p);
  for (Method method : {Method::efi, Method::efi_dpr}) {
    auto o = opts(method, 5);
    o.efi_fraction = 0.0;
    const auto r = run(p, o);
    std::vector<std::size_t> alive(p.n_candidates());
    std::iota(alive.begin(), alive.end(), 0);
    while (alive.size() > 5) {
      Eigen::MatrixXd q = brute_information(p, alive, 0.0);
      q.diagonal().array() += eps;
      const double full = log_det(q);
      std::size_t worst = 0;
      double worst_score = std::numeric_limits<double>::infinity();
      for (std::size_t a = 0; a < alive.size(); ++a) {
        const Eigen::MatrixXd b = block(p, alive[a]);
        double score = 1.0 - std::exp(log_det(q - b.transpose() * b) - full);
        if (method == Method::efi_dpr) {
          double dpr = 0.0;
          for (std::size_t k = 0; k < p.n_modes; ++k) {
            dpr += b.col(k).squaredNorm() * p.frequencies_hz[0] / p.frequencies_hz[k];
          }
          score *= dpr;
        }
        if (score < worst_score) {
          worst_score = score;
          worst = a;
        }
      }
      alive.erase(alive.begin() + static_cast<std::ptrdiff_t>(worst));
    }
    EXPECT_EQ(std::set<std::size_t>(r.sensors.begin(), r.sensors.end()),
              std::set<std::size_t>(alive.begin(), alive.end()))
        << placement::method_name(method);
  }
}

TEST(PlacementGreedy, EfiFractionRoundsKeepTheTargetCount) {
  const Problem p = random_problem(300, 8, 7);
  auto o = opts(Method::efi, 9);
  const auto r = run(p, o);  // the 2.5 % schedule below 1000 nodes
  EXPECT_EQ(r.sensors.size(), 9u);
  EXPECT_EQ(std::set<std::size_t>(r.sensors.begin(), r.sensors.end()).size(), 9u);
  EXPECT_LT(r.n_scoring_passes, 300u - 9u) << "rounds remove several nodes at a time";
}

TEST(PlacementGreedy, QrPivotsTheLargestResidualBlock) {
  const Problem p = random_problem(60, 12, 8);
  const auto r = run(p, opts(Method::qr, 6));
  // First pass: 12 modes are spanned after 4 nodes; pick k maximises ||Phi_j (I - P)||_F^2
  // with P the projector on the row space of the blocks picked before.
  Eigen::MatrixXd rows(0, p.n_modes);
  for (std::size_t step = 0; step < 4; ++step) {
    Eigen::MatrixXd projector = Eigen::MatrixXd::Zero(p.n_modes, p.n_modes);
    if (rows.rows() > 0) {
      const Eigen::MatrixXd basis = rows.transpose().householderQr().householderQ() *
                                    Eigen::MatrixXd::Identity(p.n_modes, rows.rows());
      projector = basis * basis.transpose();
    }
    const Eigen::MatrixXd residual_op = Eigen::MatrixXd::Identity(p.n_modes, p.n_modes) - projector;
    double best = -1.0;
    for (std::size_t j = 0; j < p.n_candidates(); ++j) {
      if (std::find(r.sensors.begin(), r.sensors.begin() + step, j) != r.sensors.begin() + step) continue;
      best = std::max(best, (block(p, j) * residual_op).squaredNorm());
    }
    const double got = (block(p, r.sensors[step]) * residual_op).squaredNorm();
    EXPECT_NEAR(got, best, 1e-10 * best) << "step " << step;
    rows.conservativeResize(rows.rows() + 3, Eigen::NoChange);
    rows.bottomRows(3) = block(p, r.sensors[step]);
  }
  EXPECT_EQ(std::set<std::size_t>(r.sensors.begin(), r.sensors.end()).size(), 6u)
      << "a second pass continues past m / 3 nodes";
}

TEST(PlacementGreedy, MinMacPicksTheSmallestLargestMac) {
  const Problem p = random_problem(50, 6, 9);
  const auto r = run(p, opts(Method::minmac, 5));
  auto mac = [&](const std::vector<std::size_t>& s) {
    const Eigen::MatrixXd q = brute_information(p, s, 0.0);
    double worst = 0.0;
    for (std::size_t k = 0; k < p.n_modes; ++k) {
      for (std::size_t l = k + 1; l < p.n_modes; ++l) {
        worst = std::max(worst, q(k, l) * q(k, l) / (q(k, k) * q(l, l)));
      }
    }
    return worst;
  };
  for (std::size_t step = 1; step < r.sensors.size(); ++step) {
    std::vector<std::size_t> chosen(r.sensors.begin(), r.sensors.begin() + step);
    double best = 2.0;
    for (std::size_t j = 0; j < p.n_candidates(); ++j) {
      if (!allowed(p, chosen, j, 0.0)) continue;
      auto trial = chosen;
      trial.push_back(j);
      best = std::min(best, mac(trial));
    }
    chosen.push_back(r.sensors[step]);
    EXPECT_NEAR(mac(chosen), best, 1e-12) << "step " << step;
    EXPECT_NEAR(r.criterion[step], best, 1e-12);
  }
}

TEST(PlacementGreedy, KineticEnergyTakesTheLargestEnergiesApart) {
  const Problem p = random_problem(50, 6, 10);
  for (double min_distance : {0.0, 0.3}) {
    auto o = opts(Method::kinetic_energy, 6);
    o.min_distance = min_distance;
    const auto r = run(p, o);
    std::vector<std::size_t> order(p.n_candidates());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return block(p, a).squaredNorm() > block(p, b).squaredNorm();
    });
    std::vector<std::size_t> expected;
    for (std::size_t i : order) {
      if (expected.size() < 6 && allowed(p, expected, i, min_distance)) expected.push_back(i);
    }
    EXPECT_EQ(r.sensors, expected) << "min distance " << min_distance;
  }
}

// ---- two-phase -------------------------------------------------------------------------------

TEST(PlacementTwoPhase, NeverWorseThanPhaseOneAndNoImprovingExchangeLeft) {
  for (std::uint64_t seed : {11u, 12u, 13u, 14u}) {
    const Problem p = random_problem(64, 9, seed);
    for (double lambda : {0.0, 0.25}) {
      auto o = opts(Method::two_phase, 6);
      o.correlation_length = lambda;
      const auto r = run(p, o);
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " lambda " << lambda);
      ASSERT_TRUE(std::isfinite(r.phase1_criterion));
      EXPECT_LE(r.criterion.back(), r.phase1_criterion);
      const double prior = -brute_criterion(p, Method::two_phase, {}, o);
      EXPECT_NEAR(r.criterion.back(), -brute_criterion(p, Method::two_phase, r.sensors, o) / prior, 1e-9);
      // Termination: no sensor a can be exchanged for a node less redundant with S - a than a
      // is (the rule that drives the exchanges) with a lower criterion.
      const auto weights = placement::mode_weights(p, true, o.weight_exponent);
      const double current = brute_criterion(p, Method::two_phase, r.sensors, o);
      for (std::size_t a = 0; a < r.sensors.size(); ++a) {
        std::vector<std::size_t> rest;
        for (std::size_t b = 0; b < r.sensors.size(); ++b) {
          if (b != a) rest.push_back(r.sensors[b]);
        }
        double own = 0.0;
        for (std::size_t b : rest) own = std::max(own, placement::redundancy(p, r.sensors[a], b, weights));
        for (std::size_t j = 0; j < p.n_candidates(); ++j) {
          if (j == r.sensors[a] || !allowed(p, rest, j, 0.0)) continue;
          double rho = 0.0;
          for (std::size_t b : rest) rho = std::max(rho, placement::redundancy(p, j, b, weights));
          if (!(rho < own)) continue;
          auto trial = rest;
          trial.push_back(j);
          EXPECT_LE(brute_criterion(p, Method::two_phase, trial, o), current + 1e-9 * std::abs(current))
              << "exchanging sensor " << a << " for " << j << " improves";
        }
      }
    }
  }
}

TEST(PlacementTwoPhase, RedundancyIsOneForIdenticalNodesAndSymmetric) {
  Problem p = random_problem(10, 5, 15);
  std::copy(p.blocks.begin() + 3 * 5 * 2, p.blocks.begin() + 3 * 5 * 3, p.blocks.begin() + 3 * 5 * 7);
  const auto w = placement::mode_weights(p, true, 3.0);
  EXPECT_NEAR(placement::redundancy(p, 2, 7, w), 1.0, 1e-14);
  EXPECT_NEAR(placement::redundancy(p, 1, 4, w), placement::redundancy(p, 4, 1, w), 1e-15);
  EXPECT_LE(placement::redundancy(p, 1, 4, w), 1.0);
  EXPECT_GE(placement::redundancy(p, 1, 4, w), 0.0);
}

// ---- partitions (ranks) --------------------------------------------------------------------

TEST(PlacementPartitions, SameResultForAnyNumberOfPartitions) {
  const Problem p = random_problem(203, 10, 16);
  for (Method method : {Method::efi, Method::qr, Method::d_optimal, Method::min_variance, Method::two_phase}) {
    auto o = opts(method, 6);
    o.correlation_length = method == Method::min_variance ? 0.3 : 0.0;
    const auto reference = run(p, o);
    for (std::size_t parts : {2u, 3u, 7u, 20u}) {
      o.partitions = parts;
      const auto r = run(p, o);
      EXPECT_EQ(r.sensors, reference.sensors) << placement::method_name(method) << " with " << parts << " partitions";
      EXPECT_EQ(r.criterion, reference.criterion) << placement::method_name(method);
    }
  }
}

/// Processes simulated by threads: each holds only its share of the candidates and meets the
/// others at a barrier for every reduction, as MPI ranks do through the jobs layer.
class ThreadCollective final : public placement::CandidateCollective {
public:
  struct Shared {
    explicit Shared(int n) : size(n), barrier(n), best(static_cast<std::size_t>(n)) {}
    int size;
    std::barrier<> barrier;
    std::vector<vsense::kernels::BestCandidate> best;
    std::vector<double> scores;
  };
  ThreadCollective(Shared& shared, int rank) : shared_(shared), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_.size; }
  vsense::kernels::BestCandidate best(const vsense::kernels::BestCandidate& local) const override {
    shared_.best[static_cast<std::size_t>(rank_)] = local;
    shared_.barrier.arrive_and_wait();
    vsense::kernels::BestCandidate best;
    for (const auto& b : shared_.best) best = vsense::kernels::better(best, b);
    shared_.barrier.arrive_and_wait();
    return best;
  }
  void share(std::vector<double>& scores, const std::vector<std::size_t>& begin,
             const std::vector<std::size_t>& end) const override {
    if (rank_ == 0) shared_.scores.assign(scores.size(), 0.0);
    shared_.barrier.arrive_and_wait();
    const auto r = static_cast<std::size_t>(rank_);
    std::copy(scores.begin() + static_cast<std::ptrdiff_t>(begin[r]),
              scores.begin() + static_cast<std::ptrdiff_t>(end[r]),
              shared_.scores.begin() + static_cast<std::ptrdiff_t>(begin[r]));
    shared_.barrier.arrive_and_wait();
    scores = shared_.scores;
    shared_.barrier.arrive_and_wait();
  }

private:
  Shared& shared_;
  int rank_;
};

TEST(PlacementPartitions, CandidatesSharedBetweenProcessesGiveTheSamePlacement) {
  const Problem p = random_problem(203, 10, 16);
  for (Method method : {Method::efi, Method::qr, Method::minmac, Method::d_optimal,
                        Method::min_variance, Method::two_phase}) {
    auto o = opts(method, 6);
    o.chunk = 16;  // several chunks per process
    const auto reference = run(p, o);
    for (int processes : {2, 3, 5}) {
      ThreadCollective::Shared shared(processes);
      std::vector<placement::Result> results(static_cast<std::size_t>(processes));
      std::vector<std::thread> threads;
      for (int r = 0; r < processes; ++r) {
        threads.emplace_back([&, r] {
          ThreadCollective collective(shared, r);
          auto mine = o;
          mine.collective = &collective;
          results[static_cast<std::size_t>(r)] = run(p, mine);
        });
      }
      for (auto& t : threads) t.join();
      for (int r = 0; r < processes; ++r) {
        EXPECT_EQ(results[static_cast<std::size_t>(r)].sensors, reference.sensors)
            << placement::method_name(method) << ", process " << r << " of " << processes;
        EXPECT_EQ(results[static_cast<std::size_t>(r)].criterion, reference.criterion)
            << placement::method_name(method);
      }
    }
  }
}

// ---- requests that cannot be met -------------------------------------------------------------

TEST(PlacementErrors, ImpossibleRequestsAreInputErrors) {
  const Problem p = random_problem(20, 5, 17);
  EXPECT_THROW(run(p, opts(Method::d_optimal, 21)), vsense::InputError);
  EXPECT_THROW(run(p, opts(Method::d_optimal, 0)), vsense::InputError);
  auto far = opts(Method::d_optimal, 10);
  far.min_distance = 10.0;  // one sensor blocks the whole unit cube
  try {
    run(p, far);
    FAIL() << "expected InputError";
  } catch (const vsense::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 of 10"), std::string::npos) << e.what();
  }
  auto corr = opts(Method::efi, 3);
  corr.correlation_length = 0.1;
  EXPECT_THROW(run(p, corr), vsense::InputError);
  EXPECT_THROW(placement::parse_method("random"), vsense::InputError);
  Problem no_stress = p;
  no_stress.response_information.clear();
  EXPECT_THROW(run(no_stress, opts(Method::min_variance, 3)), vsense::InputError);
}

TEST(PlacementErrors, FewerChannelsThanModesWarnsUnidentifiable) {
  const Problem p = random_problem(30, 10, 18);
  const auto r = run(p, opts(Method::d_optimal, 3));  // 9 channels, 10 modes
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("identifiable"), std::string::npos);
  EXPECT_TRUE(run(p, opts(Method::d_optimal, 4)).warnings.empty());
}

// ---- problems from modes files ---------------------------------------------------------------

/// Two hexahedra side by side (12 nodes, all on the surface) plus one node with no cell,
/// 3 modes of which the first is rigid (0 Hz).
vsense::io::ModesData two_hex_modes() {
  vsense::io::ModesData d;
  std::int64_t id = 1;
  for (int i = 0; i <= 2; ++i) {
    for (int j = 0; j <= 1; ++j) {
      for (int k = 0; k <= 1; ++k) {
        d.node_ids.push_back(id++);
        d.coordinates.insert(d.coordinates.end(), {double(i), double(j), double(k)});
      }
    }
  }
  d.node_ids.push_back(99);
  d.coordinates.insert(d.coordinates.end(), {5.0, 5.0, 5.0});
  auto n = [](int i, int j, int k) { return std::int64_t(4 * i + 2 * j + k); };
  for (int c = 0; c < 2; ++c) {
    d.topology.insert(d.topology.end(), {9, n(c, 0, 0), n(c + 1, 0, 0), n(c + 1, 1, 0), n(c, 1, 0),
                                         n(c, 0, 1), n(c + 1, 0, 1), n(c + 1, 1, 1), n(c, 1, 1)});
  }
  d.n_cells = 2;
  const std::size_t nn = d.node_ids.size();
  d.frequencies_hz = {0.0, 10.0, 25.0};
  d.eigenvalues = {0.0, std::pow(2 * M_PI * 10, 2), std::pow(2 * M_PI * 25, 2)};
  d.residuals = {0, 0, 0};
  d.shapes.resize(3 * nn * 3);
  d.nodal_stress.resize(3 * nn * 6);
  for (std::size_t e = 0; e < d.shapes.size(); ++e) d.shapes[e] = std::sin(0.7 * double(e) + 0.3);
  for (std::size_t e = 0; e < d.nodal_stress.size(); ++e) d.nodal_stress[e] = std::cos(0.3 * double(e));
  d.node_sets["TOP"] = {2, 4, 6, 8, 10, 12};
  d.node_sets["LEFT"] = {1, 2, 3, 4};
  return d;
}

TEST(PlacementProblem, SurfaceCandidatesSetsFilesExclusionsAndModes) {
  const auto modes = two_hex_modes();
  placement::ProblemRequest request;
  auto p = placement::make_problem(modes, request);
  EXPECT_EQ(p.n_candidates(), 12u) << "the free node 99 has no face";
  EXPECT_EQ(p.n_modes, 2u) << "the rigid mode is left out by default";
  EXPECT_EQ(p.mode_indices, (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(p.response_information.size(), 4u);
  // blocks [n, 3, m] from shapes [m_file, n_nodes, 3]
  EXPECT_EQ(p.blocks[(3 * 5 + 2) * 2 + 1], modes.shapes[(2 * 13 + 5) * 3 + 2]);

  request.skip_rigid = false;
  request.max_modes = 1;
  EXPECT_EQ(placement::make_problem(modes, request).mode_indices, (std::vector<std::size_t>{0}));

  request = {};
  request.candidates = "top";  // set names are case-insensitive
  request.exclude = {"LEFT"};
  p = placement::make_problem(modes, request);
  EXPECT_EQ(p.node_ids, (std::vector<std::int64_t>{6, 8, 10, 12}));

  vsense::test::ScratchDir dir("placement-problem");
  {
    std::ofstream f(dir.file("nodes.txt"));
    f << "# sensors may go here\n3\n\n 99 # the free node\n12\n";
  }
  request = {};
  request.candidates = dir.file("nodes.txt");
  EXPECT_EQ(placement::make_problem(modes, request).node_ids, (std::vector<std::int64_t>{3, 12, 99}));
}

TEST(PlacementProblem, BadSelectionsAreInputErrorsThatSayWhy) {
  const auto modes = two_hex_modes();
  vsense::test::ScratchDir dir("placement-problem-bad");
  {
    std::ofstream(dir.file("bad.txt")) << "3\nfour\n";
    std::ofstream(dir.file("unknown.txt")) << "3\n1234\n";
  }
  struct Case {
    std::string candidates;
    std::vector<std::string> exclude;
    std::string expect;
  };
  for (const Case& c : {Case{"NOSUCHSET", {}, "sets: LEFT, TOP"}, Case{dir.file("bad.txt"), {}, "bad.txt:2"},
                        Case{dir.file("unknown.txt"), {}, "node 1234"},
                        Case{"LEFT", {"LEFT"}, "candidate set is empty"}}) {
    placement::ProblemRequest request;
    request.candidates = c.candidates;
    request.exclude = c.exclude;
    try {
      placement::make_problem(modes, request);
      ADD_FAILURE() << "expected InputError for " << c.candidates;
    } catch (const vsense::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
  auto no_mesh = modes;
  no_mesh.topology.clear();
  no_mesh.n_cells = 0;
  EXPECT_THROW(placement::make_problem(no_mesh, {}), vsense::InputError);
}

// ---- metrics -----------------------------------------------------------------------------------

TEST(PlacementMetrics, MonteCarloAgreesWithTheErrorCovariance) {
  const Problem p = random_problem(60, 8, 19);
  const auto r = run(p, opts(Method::d_optimal, 6));
  placement::MetricsOptions mo;
  mo.samples = 20000;
  mo.snr = 20.0;
  const auto metrics = placement::evaluate(p, r.sensors, mo);
  // E||A (q^ - q)||^2 / E||A q||^2 = tr(Cov G) / tr(Lambda G) for both estimators (LS:
  // Cov = Q^-1; Bayesian: Cov = (Lambda^-1 + Q)^-1): 20000 samples give ~1 % on the ratio.
  EXPECT_NEAR(metrics.monte_carlo_error * metrics.monte_carlo_error, metrics.stress_error_trace,
              0.03 * metrics.stress_error_trace);
  EXPECT_NEAR(metrics.bayes_monte_carlo_error * metrics.bayes_monte_carlo_error,
              metrics.bayes_error_trace, 0.03 * metrics.bayes_error_trace);
  EXPECT_LT(metrics.bayes_error_trace, std::min(1.0, metrics.stress_error_trace));
  Eigen::MatrixXd q = brute_information(p, r.sensors, 0.0);
  EXPECT_NEAR(metrics.log_det_fim, log_det(q), 1e-9 * std::abs(log_det(q)));
  EXPECT_GE(metrics.worst_failure_ratio, 1.0);
  EXPECT_GT(metrics.worst_failure_log_det_drop, 0.0);
  EXPECT_GE(metrics.condition_number, 1.0);
  EXPECT_LE(metrics.max_offdiag_mac, 1.0);
}

TEST(PlacementMetrics, UnidentifiableLayoutsHaveInfiniteLeastSquaresErrors) {
  const Problem p = random_problem(40, 10, 20);
  const auto metrics = placement::evaluate(p, {0, 5, 9}, {});  // 9 channels, 10 modes
  EXPECT_EQ(metrics.log_det_fim, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(metrics.stress_error_trace, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isfinite(metrics.bayes_error_trace));
  EXPECT_LT(metrics.bayes_error_trace, 1.0);
}

}  // namespace
