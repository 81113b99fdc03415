#pragma once
/// @file modal.hpp
/// @brief Lowest modes of K x = lambda M x (CPU path: shift-invert Lanczos on a CHOLMOD factor).
#include <Eigen/Dense>
#include <cstdint>
#include <limits>

#include "vsense/model/assembly.hpp"

namespace vsense::solvers {

struct ModalOptions {
  int n_modes = 10;
  /// Spectral shift sigma in (rad/s)^2; NaN = automatic (a small negative shift, so that
  /// K - sigma M is positive definite even for free-free models).
  double shift = std::numeric_limits<double>::quiet_NaN();
  double tolerance = 1e-12;   ///< relative tolerance on the Ritz values
  int max_iterations = 1000;  ///< restarts of the Lanczos process
  int subspace_size = 0;      ///< Lanczos basis size; 0 = automatic
  /// After convergence, run short Lanczos passes on the M-orthogonal complement of the modes
  /// found: an eigenvalue found there below the highest returned one is a missed copy of a
  /// repeated eigenvalue (single-vector Lanczos finds extra copies only through round-off) and is
  /// added. Costs one short pass (about 20-40 solves) when nothing was missed.
  bool deflation_check = true;
};

struct ModalResult {
  Eigen::VectorXd eigenvalues;  ///< [m] ascending, (rad/s)^2
  Eigen::MatrixXd vectors;      ///< [n_equations, m] mass-normalised
  Eigen::VectorXd residuals;    ///< [m] ||K x - lambda M x|| / ||K x||
  double factor_seconds = 0.0;
  double solve_seconds = 0.0;
  std::int64_t factor_nonzeros = 0;
  int iterations = 0;
  /// > 0 when K - sigma M was singular (K and M share null vectors) and was factorised with this
  /// diagonal shift, every solve being refined against the true matrix.
  double regularisation = 0.0;           ///< Lanczos restarts, all passes
  int recovered_modes = 0;      ///< missed copies of repeated eigenvalues found by the check
};

/// @brief Lowest `n_modes` eigenpairs.
/// @param[in] stiffness, mass lower triangles (model::SparseMatrix convention)
/// @throws InputError for an impossible request (more modes than equations),
///         NumericalError when the factorisation or the iteration fails.
ModalResult solve_lowest_modes(const model::SparseMatrix& stiffness,
                               const model::SparseMatrix& mass, const ModalOptions& options);

}  // namespace vsense::solvers
