// Quality metrics of a sensor layout (place-bench). Definitions in placement.hpp (Metrics).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/placement.hpp"

namespace vsense::solvers::placement {

namespace {

using RowBlock = Eigen::Map<const Eigen::Matrix<double, 3, Eigen::Dynamic, Eigen::RowMajor>>;

double log_det_spd(const Eigen::MatrixXd& q) {
  Eigen::LLT<Eigen::MatrixXd> llt(q);
  if (llt.info() != Eigen::Success) return -std::numeric_limits<double>::infinity();
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

  // Information: log det, condition number, off-diagonal MAC of the restricted shapes.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(q, Eigen::EigenvaluesOnly);
  const double lo = eig.eigenvalues().minCoeff(), hi = eig.eigenvalues().maxCoeff();
  if (lo > 1e-13 * hi && hi > 0.0) {
    out.log_det_fim = eig.eigenvalues().array().log().sum();
    out.condition_number = hi / lo;
  } else {
    out.log_det_fim = -std::numeric_limits<double>::infinity();
    out.condition_number = std::numeric_limits<double>::infinity();
  }
  double worst_mac = 0.0;
  for (Eigen::Index k = 0; k < mi; ++k) {
    for (Eigen::Index l = k + 1; l < mi; ++l) {
      const double d = q(k, k) * q(l, l);
      worst_mac = std::max(worst_mac, d > 0.0 ? q(k, l) * q(k, l) / d : 1.0);
    }
  }
  out.max_offdiag_mac = worst_mac;

  // Estimation: least squares with the ridge, unit noise, displacement-weighted amplitudes.
  const double ridge = information_ridge(problem);
  const auto lambda = prior_variances(problem, mode_weights(problem, true, options.weight_exponent),
                                      options.snr);
  Eigen::MatrixXd q_ridge = q;
  q_ridge.diagonal().array() += ridge;
  Eigen::LLT<Eigen::MatrixXd> llt(q_ridge);
  if (llt.info() != Eigen::Success) throw NumericalError("placement metrics: Q + eps I is not positive definite");
  const Eigen::MatrixXd q_inv = llt.solve(Eigen::MatrixXd::Identity(mi, mi));
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> g(
      problem.response_information.data(), mi, mi);
  double prior_trace = 0.0;
  for (Eigen::Index k = 0; k < mi; ++k) prior_trace += lambda[static_cast<std::size_t>(k)] * g(k, k);
  const double error_trace = (q_inv * g).trace();
  out.stress_error_trace = error_trace / prior_trace;

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
  {
    const Eigen::MatrixXd l_inv_t =
        llt.matrixL().solve(Eigen::MatrixXd::Identity(mi, mi)).transpose();  // Q^-1 = L^-T L^-1
    const Eigen::MatrixXd al = a * l_inv_t;
    Eigen::VectorXd sd(mi);
    for (Eigen::Index k = 0; k < mi; ++k) sd[k] = std::sqrt(lambda[static_cast<std::size_t>(k)]);
    const Eigen::MatrixXd as = a * sd.asDiagonal();
    double worst_error = 0.0, worst_signal = 0.0;
    for (std::size_t t = 0; t < nt; ++t) {
      const auto row = static_cast<Eigen::Index>(6 * t);
      worst_error = std::max(worst_error, al.middleRows(row, 6).squaredNorm());
      worst_signal = std::max(worst_signal, as.middleRows(row, 6).squaredNorm());
    }
    out.stress_error_max = worst_signal > 0.0 ? worst_error / worst_signal : 0.0;
  }

  // Monte Carlo: q ~ N(0, Lambda_w), y = Phi_S q + e, e ~ N(0, I), q^ = (Q + eps I)^-1 Phi_S^T y.
  if (options.samples > 0 && s > 0) {
    const auto ns = static_cast<Eigen::Index>(options.samples);
    std::mt19937_64 rng(options.seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd modal(mi, ns);
    for (Eigen::Index c = 0; c < ns; ++c) {
      for (Eigen::Index k = 0; k < mi; ++k) modal(k, c) = std::sqrt(lambda[static_cast<std::size_t>(k)]) * normal(rng);
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
    const Eigen::MatrixXd estimate = llt.solve(phi_s.transpose() * y);
    const double error = (a * (estimate - modal)).squaredNorm();
    const double signal = (a * modal).squaredNorm();
    out.monte_carlo_error = signal > 0.0 ? std::sqrt(error / signal) : 0.0;
  }

  // One failed sensor: the worst increase of the stress-error trace and drop of log det.
  const double log_det_all = log_det_spd(q_ridge);
  out.worst_failure_ratio = 1.0;
  for (std::size_t i = 0; i < s; ++i) {
    const RowBlock p(problem.blocks.data() + 3 * m * sensors[i], 3, mi);
    Eigen::MatrixXd reduced = q_ridge;
    reduced.noalias() -= p.transpose() * p;
    Eigen::LLT<Eigen::MatrixXd> reduced_llt(reduced);
    double ratio = std::numeric_limits<double>::infinity();
    double drop = std::numeric_limits<double>::infinity();
    if (reduced_llt.info() == Eigen::Success) {
      ratio = (reduced_llt.solve(Eigen::MatrixXd(g))).trace() / error_trace;
      drop = log_det_all - 2.0 * reduced_llt.matrixLLT().diagonal().array().log().sum();
    }
    if (ratio > out.worst_failure_ratio || out.worst_failure_node < 0) {
      out.worst_failure_ratio = ratio;
      out.worst_failure_node = problem.node_ids[sensors[i]];
    }
    out.worst_failure_log_det_drop = std::max(out.worst_failure_log_det_drop, drop);
  }
  return out;
}

}  // namespace vsense::solvers::placement
