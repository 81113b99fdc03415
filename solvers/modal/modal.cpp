// CPU modal solver front end: request checks, the choice between the block and the
// single-vector shift-invert Lanczos, and the post-checks shared by both (mass normalisation,
// residuals, backward error, M-orthonormality).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "modal_internal.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/modal.hpp"

namespace vsense::solvers {

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;


// Post-checks. The Lanczos residual bound tol * |nu| translates into a normwise backward error
// of about tol for K x = lambda M x; the limits leave three orders of magnitude for round-off.
constexpr double backward_error_floor = 1e-8;
constexpr double orthonormality_limit = 1e-8;

// 1-norm (= infinity norm) of the symmetric matrix whose lower triangle is given.
double norm1_symmetric(const SparseMatrix& lower) {
  Eigen::VectorXd column_sums = Eigen::VectorXd::Zero(lower.cols());
  for (Eigen::Index col = 0; col < lower.outerSize(); ++col) {
    for (SparseMatrix::InnerIterator it(lower, col); it; ++it) {
      if (it.row() < it.col()) continue;  // the upper triangle is not part of the matrix
      column_sums[col] += std::abs(it.value());
      if (it.row() != it.col()) column_sums[it.row()] += std::abs(it.value());
    }
  }
  return column_sums.size() > 0 ? column_sums.maxCoeff() : 0.0;
}

}  // namespace

void check_request(const SparseMatrix& stiffness, const SparseMatrix& mass,
                   const ModalOptions& options) {
  if (stiffness.rows() != stiffness.cols() || mass.rows() != mass.cols() ||
      stiffness.rows() != mass.rows()) {
    throw InputError(fmt::format("modal solver: K is {}x{} but M is {}x{}", stiffness.rows(),
                                 stiffness.cols(), mass.rows(), mass.cols()));
  }
  const std::int64_t n = stiffness.rows();
  if (n == 0) throw InputError("modal solver: the model has no free degrees of freedom");
  if (options.n_modes < 1) {
    throw InputError(fmt::format("modal solver: n_modes must be at least 1, got {}",
                                 options.n_modes));
  }
  if (options.n_modes > n) {
    throw InputError(fmt::format("modal solver: {} modes requested but the model has only {} "
                                 "equations (free DOFs)",
                                 options.n_modes, n));
  }
  if (options.subspace_size != 0 &&
      (options.subspace_size <= options.n_modes || options.subspace_size > n)) {
    throw InputError(fmt::format("modal solver: subspace_size {} must exceed n_modes = {} and "
                                 "be at most n = {} (or 0 for automatic)",
                                 options.subspace_size, options.n_modes, n));
  }
  if (!(options.tolerance > 0.0) || options.max_iterations < 1) {
    throw InputError(fmt::format("modal solver: tolerance ({}) and max_iterations ({}) must be "
                                 "positive",
                                 options.tolerance, options.max_iterations));
  }
  if (std::isinf(options.shift)) throw InputError("modal solver: the shift must be finite");
}

// Normalises to x^T M x = 1 with a deterministic sign (largest-magnitude entry positive),
// computes residuals ||K x - lambda M x|| / max(||K x||, |sigma| ||M x||) and checks the
// normwise backward error and M-orthonormality.
//
// Why the |sigma| ||M x|| floor: a rigid-body mode has K x = 0 up to round-off, so ||K x||
// alone would make its relative residual meaningless. Eigenvalues below |sigma| are resolved
// by the shift-invert operator only to about |sigma| times the solve accuracy, so that is the
// scale they are measured against; for every mode with lambda >> |sigma| (all flexible modes
// with the automatic shift) the floor is inactive and the contract's definition holds exactly.
void finish_result(const SparseMatrix& stiffness, const SparseMatrix& mass, double sigma,
                   const ModalOptions& options, ModalResult& result) {
  const Eigen::Index n = stiffness.rows();
  const Eigen::Index m = result.eigenvalues.size();
  Eigen::MatrixXd& vectors = result.vectors;  // [n, m]
  // A panel of modes at a time: K and M times [n, panel] blocks, not the whole [n, m] basis
  // (whose products and their row-major work blocks held 6.4 GB beside the factor at 1e6
  // equations and 200 modes). M is applied twice: once to normalise, once for the checks.
  const Eigen::Index panel = std::min<Eigen::Index>(m, 16);
  const SymmetricProduct mass_product(mass);
  const SymmetricProduct stiffness_product(stiffness);
  Eigen::MatrixXd mass_panel(n, panel), stiffness_panel(n, panel);
  for (Eigen::Index j0 = 0; j0 < m; j0 += panel) {
    const Eigen::Index width = std::min(panel, m - j0);
    mass_product.apply(vectors.col(j0).data(), mass_panel.data(), width);
    for (Eigen::Index c = 0; c < width; ++c) {
      const Eigen::Index j = j0 + c;
      const double norm_sq = vectors.col(j).dot(mass_panel.col(c));
      if (!(norm_sq > 0.0) || !std::isfinite(norm_sq)) {
        throw NumericalError(fmt::format("modal solver: mode {} has x^T M x = {} (n = {}, "
                                         "n_modes = {}, {})",
                                         j + 1, norm_sq, n, m, describe_shift(sigma)));
      }
      Eigen::Index largest = 0;
      vectors.col(j).cwiseAbs().maxCoeff(&largest);
      vectors.col(j) *= (vectors(largest, j) < 0 ? -1.0 : 1.0) / std::sqrt(norm_sq);
    }
  }

  const double norm_k = norm1_symmetric(stiffness);
  const double norm_m = norm1_symmetric(mass);
  const double backward_limit = std::max(backward_error_floor, 1e3 * options.tolerance);
  result.residuals.resize(m);
  Eigen::MatrixXd gram(m, m);  // Phi^T M Phi, upper triangle
  for (Eigen::Index j0 = 0; j0 < m; j0 += panel) {
    const Eigen::Index width = std::min(panel, m - j0);
    mass_product.apply(vectors.col(j0).data(), mass_panel.data(), width);
    stiffness_product.apply(vectors.col(j0).data(), stiffness_panel.data(), width);
    for (Eigen::Index c = 0; c < width; ++c) {
      const Eigen::Index j = j0 + c;
      const double lambda = result.eigenvalues[j];
      const double residual = (stiffness_panel.col(c) - lambda * mass_panel.col(c)).norm();
      const double denominator =
          std::max({stiffness_panel.col(c).norm(), std::abs(sigma) * mass_panel.col(c).norm(),
                    std::numeric_limits<double>::min()});
      result.residuals[j] = residual / denominator;
      const double backward_error =
          residual / ((norm_k + std::abs(lambda) * norm_m) * vectors.col(j).norm());
      if (!(backward_error <= backward_limit)) {
        throw NumericalError(fmt::format(
            "modal solver: mode {} (lambda = {:.6g}) failed the residual check: backward error "
            "{:.3g} > {:.3g} (n = {}, n_modes = {}, {})",
            j + 1, lambda, backward_error, backward_limit, n, m, describe_shift(sigma)));
      }
    }
    // The upper triangle and the diagonal block: Phi^T M Phi is symmetric.
    gram.block(0, j0, j0 + width, width).noalias() =
        vectors.leftCols(j0 + width).transpose() * mass_panel.leftCols(width);
  }

  double orthonormality = 0.0;
  for (Eigen::Index j = 0; j < m; ++j) {
    for (Eigen::Index i = 0; i <= j; ++i) {
      const double deviation = std::abs(gram(i, j) - (i == j ? 1.0 : 0.0));
      if (!(deviation <= orthonormality) && !std::isnan(orthonormality)) orthonormality = deviation;
    }
  }
  spdlog::debug("modal: max |Phi^T M Phi - I| = {:.3g}, max residual {:.3g}", orthonormality,
                result.residuals.maxCoeff());
  if (!(orthonormality <= orthonormality_limit)) {
    throw NumericalError(fmt::format("modal solver: the modes are not M-orthonormal: max |Phi^T "
                                     "M Phi - I| = {:.3g} > {:.3g} (n = {}, n_modes = {}, {})",
                                     orthonormality, orthonormality_limit, n, m,
                                     describe_shift(sigma)));
  }
}

// All n modes: the Lanczos process needs n_modes < n, so this small case is solved densely.
void solve_all_modes_dense(const SparseMatrix& stiffness, const SparseMatrix& mass,
                           ModalResult& result) {
  const std::int64_t n = stiffness.rows();
  if (n > dense_all_modes_limit) {
    throw InputError(fmt::format("modal solver: all {} modes of a model requested; request fewer "
                                 "(at most {}) or use a model with at most {} equations",
                                 n, n - 1, dense_all_modes_limit));
  }
  const auto start = Clock::now();
  const SparseMatrix full_stiffness = stiffness.selfadjointView<Eigen::Lower>();
  const SparseMatrix full_mass = mass.selfadjointView<Eigen::Lower>();
  const Eigen::MatrixXd k(full_stiffness);
  const Eigen::MatrixXd m(full_mass);
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> solver(
      k, m, Eigen::ComputeEigenvectors | Eigen::Ax_lBx);
  if (solver.info() != Eigen::Success) {
    throw NumericalError(fmt::format("modal solver: dense generalized eigensolver failed for all "
                                     "{} modes (is M positive definite?)",
                                     n));
  }
  result.eigenvalues = solver.eigenvalues();
  result.vectors = solver.eigenvectors();
  result.factor_seconds = 0.0;
  result.solve_seconds = seconds_since(start);
  result.factor_nonzeros = n * (n + 1) / 2;
  result.iterations = 0;
}

}  // namespace detail

ModalResult solve_lowest_modes(const model::SparseMatrix& stiffness,
                               const model::SparseMatrix& mass, const ModalOptions& options) {
  detail::check_request(stiffness, mass, options);
  const std::int64_t n = stiffness.rows();
  const double sigma =
      std::isnan(options.shift) ? detail::automatic_shift(stiffness, mass) : options.shift;
  const bool sliced =
      std::isfinite(options.upper) ||
      options.n_modes > (options.slice_modes > 0 ? options.slice_modes : default_slice_modes(n));
  if (options.method == EigenMethod::block && sliced) {
    return detail::solve_modes_sliced(stiffness, mass, options, sigma);
  }
  if (std::isfinite(options.upper)) {
    throw InputError("modal solver: modes below a bound need the block method");
  }
  if (options.n_modes == n) {
    spdlog::info("modal: all {} modes requested: dense generalized eigensolver", n);
    ModalResult result;
    detail::solve_all_modes_dense(stiffness, mass, result);
    detail::finish_result(stiffness, mass, sigma, options, result);
    return result;
  }
  if (options.method == EigenMethod::lanczos) {
    return detail::solve_lowest_modes_lanczos(stiffness, mass, options, sigma);
  }
  return detail::solve_lowest_modes_block(stiffness, mass, options, sigma);
}

}  // namespace vsense::solvers
