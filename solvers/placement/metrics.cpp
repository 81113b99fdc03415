// Quality metrics of a sensor layout (place-bench). Definitions in placement.hpp (Metrics).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/placement.hpp"

namespace vsense::solvers::placement {

namespace {

using RowBlock = Eigen::Map<const Eigen::Matrix<double, 3, Eigen::Dynamic, Eigen::RowMajor>>;
constexpr double infinity = std::numeric_limits<double>::infinity();

/// The Cholesky factor of an information matrix, or nothing when it is numerically singular
/// (smallest eigenvalue below 1e-13 of the largest: the LS estimator does not exist).
std::optional<Eigen::LLT<Eigen::MatrixXd>> factor_if_regular(const Eigen::MatrixXd& q) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(q, Eigen::EigenvaluesOnly);
  const double lo = eig.eigenvalues().minCoeff(), hi = eig.eigenvalues().maxCoeff();
  if (!(hi > 0.0) || lo <= 1e-13 * hi) return std::nullopt;
  Eigen::LLT<Eigen::MatrixXd> llt(q);
  if (llt.info() != Eigen::Success) return std::nullopt;
  return llt;
}

double log_det_of(const Eigen::LLT<Eigen::MatrixXd>& llt) {
  return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
}

}  // namespace

Metrics evaluate(const Problem& problem, const std::vector<std::size_t>& sensors,
                 const MetricsOptions& options) {
  const std::size_t m = problem.n_modes, s = sensors.size(), nt = problem.n_targets;
  const auto mi = static_cast<Eigen::Index>(m);
  if (problem.target_stress.size() != m * nt * 6 || nt == 0) {
    throw InputError("placement metrics need the target stresses (ProblemRequest::keep_target_stress)");
  }
  Metrics out;
  const Eigen::MatrixXd q = information(problem, sensors, 0.0);
  const auto ls = factor_if_regular(q);

  // Information: log det, condition number, off-diagonal MAC of the restricted shapes.
  {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(q, Eigen::EigenvaluesOnly);
    const double lo = eig.eigenvalues().minCoeff(), hi = eig.eigenvalues().maxCoeff();
    out.log_det_fim = ls ? log_det_of(*ls) : -infinity;
    out.condition_number = ls ? hi / lo : infinity;
  }
  double worst_mac = 0.0;
  for (Eigen::Index k = 0; k < mi; ++k) {
    for (Eigen::Index l = k + 1; l < mi; ++l) {
      const double d = q(k, k) * q(l, l);
      worst_mac = std::max(worst_mac, d > 0.0 ? q(k, l) * q(k, l) / d : 1.0);
    }
  }
  out.max_offdiag_mac = worst_mac;

  // Stress errors. lambda: displacement-weighted prior variances (sigma = 1).
  const auto lambda = prior_variances(problem, mode_weights(problem, true, options.weight_exponent),
                                      options.snr);
  Eigen::VectorXd sd(mi);
  for (Eigen::Index k = 0; k < mi; ++k) sd[k] = std::sqrt(lambda[static_cast<std::size_t>(k)]);
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> g(
      problem.response_information.data(), mi, mi);
  const Eigen::MatrixXd g_dense = g;
  double prior_trace = 0.0;
  for (Eigen::Index k = 0; k < mi; ++k) prior_trace += sd[k] * sd[k] * g(k, k);
  Eigen::MatrixXd posterior = q;
  posterior.diagonal() += sd.array().square().inverse().matrix();
  const Eigen::LLT<Eigen::MatrixXd> bayes(posterior);
  if (bayes.info() != Eigen::Success) {
    throw NumericalError("placement metrics: Lambda^-1 + Q is not positive definite");
  }
  out.bayes_error_trace = bayes.solve(g_dense).trace() / prior_trace;
  const double ls_trace = ls ? ls->solve(g_dense).trace() : infinity;
  out.stress_error_trace = ls_trace / prior_trace;

  // Equivalent stresses A [6 nt, m]: ||A_t x||^2 = vm(Psi_t x)^2 (see make_problem).
  Eigen::MatrixXd a(static_cast<Eigen::Index>(6 * nt), mi);
  const double r2 = std::sqrt(0.5), r3 = std::sqrt(3.0);
  for (std::size_t k = 0; k < m; ++k) {
    for (std::size_t t = 0; t < nt; ++t) {
      const double* st = problem.target_stress.data() + (k * nt + t) * 6;
      const auto row = static_cast<Eigen::Index>(6 * t);
      const auto col = static_cast<Eigen::Index>(k);
      a(row + 0, col) = r2 * (st[0] - st[1]);
      a(row + 1, col) = r2 * (st[1] - st[2]);
      a(row + 2, col) = r2 * (st[2] - st[0]);
      a(row + 3, col) = r3 * st[3];
      a(row + 4, col) = r3 * st[4];
      a(row + 5, col) = r3 * st[5];
    }
  }
  double worst_signal = 0.0;
  {
    const Eigen::MatrixXd as = a * sd.asDiagonal();
    for (std::size_t t = 0; t < nt; ++t) {
      worst_signal = std::max(worst_signal, as.middleRows(static_cast<Eigen::Index>(6 * t), 6).squaredNorm());
    }
  }
  if (ls) {
    // E[vm(e_t)^2] = ||A_t L^-T||_F^2 with Q^-1 = L^-T L^-1.
    const Eigen::MatrixXd al = a * Eigen::MatrixXd(ls->matrixL().solve(Eigen::MatrixXd::Identity(mi, mi))).transpose();
    double worst_error = 0.0;
    for (std::size_t t = 0; t < nt; ++t) {
      worst_error = std::max(worst_error, al.middleRows(static_cast<Eigen::Index>(6 * t), 6).squaredNorm());
    }
    out.stress_error_max = worst_signal > 0.0 ? worst_error / worst_signal : 0.0;
  } else {
    out.stress_error_max = infinity;
  }

  // Monte Carlo: q ~ N(0, Lambda_w), y = Phi_S q + e, e ~ N(0, I).
  out.monte_carlo_error = ls ? 0.0 : infinity;
  if (options.samples > 0 && s > 0) {
    const auto ns = static_cast<Eigen::Index>(options.samples);
    std::mt19937_64 rng(options.seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd modal(mi, ns);
    for (Eigen::Index c = 0; c < ns; ++c) {
      for (Eigen::Index k = 0; k < mi; ++k) modal(k, c) = sd[k] * normal(rng);
    }
    Eigen::MatrixXd phi_s(static_cast<Eigen::Index>(3 * s), mi);
    for (std::size_t i = 0; i < s; ++i) {
      phi_s.middleRows(static_cast<Eigen::Index>(3 * i), 3) =
          RowBlock(problem.blocks.data() + 3 * m * sensors[i], 3, mi);
    }
    Eigen::MatrixXd y = phi_s * modal;
    for (Eigen::Index c = 0; c < ns; ++c) {
      for (Eigen::Index r = 0; r < y.rows(); ++r) y(r, c) += normal(rng);
    }
    const Eigen::MatrixXd rhs = phi_s.transpose() * y;
    const double signal = (a * modal).squaredNorm();
    auto relative = [&](const Eigen::MatrixXd& estimate) {
      return signal > 0.0 ? std::sqrt((a * (estimate - modal)).squaredNorm() / signal) : 0.0;
    };
    if (ls) out.monte_carlo_error = relative(ls->solve(rhs));
    out.bayes_monte_carlo_error = relative(bayes.solve(rhs));
  }

  // One failed sensor (LS): the worst increase of the stress-error trace and drop of log det.
  out.worst_failure_ratio = ls ? 1.0 : infinity;
  out.worst_failure_log_det_drop = ls ? 0.0 : infinity;
  if (ls) {
    const double log_det_all = log_det_of(*ls);
    for (std::size_t i = 0; i < s; ++i) {
      const RowBlock p(problem.blocks.data() + 3 * m * sensors[i], 3, mi);
      Eigen::MatrixXd reduced = q;
      reduced.noalias() -= p.transpose() * p;
      const auto reduced_ls = factor_if_regular(reduced);
      const double ratio = reduced_ls ? reduced_ls->solve(g_dense).trace() / ls_trace : infinity;
      const double drop = reduced_ls ? log_det_all - log_det_of(*reduced_ls) : infinity;
      if (out.worst_failure_node < 0 || ratio > out.worst_failure_ratio) {
        out.worst_failure_ratio = ratio;
        out.worst_failure_node = problem.node_ids[sensors[i]];
      }
      out.worst_failure_log_det_drop = std::max(out.worst_failure_log_det_drop, drop);
    }
  }
  return out;
}

}  // namespace vsense::solvers::placement
