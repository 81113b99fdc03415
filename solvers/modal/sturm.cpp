#include "vsense/solvers/sturm.hpp"

#include <cholmod.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "vsense/kernels/errors.hpp"

namespace vsense::solvers {

namespace {

/// RAII for a cholmod_common in the int64 ("l") interface.
struct CholmodCommon {
  cholmod_common common{};
  CholmodCommon() {
    cholmod_l_start(&common);
    common.print = 0;
    common.error_handler = nullptr;
  }
  ~CholmodCommon() { cholmod_l_finish(&common); }
};

}  // namespace

SturmCount sturm_count(const model::SparseMatrix& stiffness, const model::SparseMatrix& mass,
                       double sigma) {
  const auto start = std::chrono::steady_clock::now();
  if (stiffness.rows() != mass.rows() || stiffness.cols() != mass.cols()) {
    throw InputError(fmt::format("K is {}x{} but M is {}x{}", stiffness.rows(), stiffness.cols(),
                                 mass.rows(), mass.cols()));
  }
  model::SparseMatrix shifted = stiffness - sigma * mass;  // lower triangle, like K and M
  shifted.makeCompressed();

  CholmodCommon cm;
  // Simplicial LDL^T: the supernodal path computes LL^T only, which fails on an indefinite
  // matrix; LDL^T without pivoting exposes the inertia in D.
  cm.common.supernodal = CHOLMOD_SIMPLICIAL;
  cm.common.final_ll = 0;
  cholmod_sparse a{};
  a.nrow = static_cast<std::size_t>(shifted.rows());
  a.ncol = static_cast<std::size_t>(shifted.cols());
  a.nzmax = static_cast<std::size_t>(shifted.nonZeros());
  a.p = shifted.outerIndexPtr();
  a.i = shifted.innerIndexPtr();
  a.x = shifted.valuePtr();
  a.stype = -1;  // lower triangle stored
  a.itype = CHOLMOD_LONG;
  a.xtype = CHOLMOD_REAL;
  a.dtype = CHOLMOD_DOUBLE;
  a.sorted = 1;
  a.packed = 1;

  cholmod_factor* factor = cholmod_l_analyze(&a, &cm.common);
  if (!factor) throw NumericalError("Sturm count: symbolic analysis of K - sigma M failed");
  cholmod_l_factorize(&a, factor, &cm.common);
  const int status = cm.common.status;
  SturmCount result;
  result.sigma = sigma;
  if (status == CHOLMOD_OK && !factor->is_ll && !factor->is_super) {
    const auto* lp = static_cast<const SuiteSparse_long*>(factor->p);
    const auto* lx = static_cast<const double*>(factor->x);
    double largest = 0.0;
    for (std::size_t j = 0; j < factor->n; ++j) largest = std::max(largest, std::abs(lx[lp[j]]));
    for (std::size_t j = 0; j < factor->n; ++j) {
      const double d = lx[lp[j]];
      if (std::abs(d) <= 1e-14 * largest) {
        const std::size_t n = factor->n;
        cholmod_l_free_factor(&factor, &cm.common);
        throw NumericalError(fmt::format(
            "Sturm count: K - sigma M is singular at sigma = {:.10g} (rad/s)^2 (pivot {} of {} "
            "is {:.3g}); sigma lies on an eigenvalue",
            sigma, j, n, d));
      }
      if (d < 0.0) ++result.below;
    }
  }
  cholmod_l_free_factor(&factor, &cm.common);
  if (status != CHOLMOD_OK) {
    throw NumericalError(fmt::format(
        "Sturm count: LDL^T factorisation of K - sigma M failed at sigma = {:.10g} (CHOLMOD "
        "status {})",
        sigma, status));
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("Sturm count at sigma = {:.6g}: {} eigenvalues below ({:.2f} s)", sigma,
                result.below, result.seconds);
  return result;
}

SturmCount check_completeness(const model::SparseMatrix& stiffness,
                              const model::SparseMatrix& mass, const double* eigenvalues,
                              std::int64_t n_eigenvalues) {
  if (n_eigenvalues <= 0) throw InputError("completeness check of an empty set of modes");
  double scale = 1.0;  // (rad/s)^2; keeps the offset meaningful when only rigid modes are found
  for (std::int64_t i = 0; i < n_eigenvalues; ++i) scale = std::max(scale, std::abs(eigenvalues[i]));
  const double top = eigenvalues[n_eigenvalues - 1];
  // Just below the top cluster: relative offset well above the eigenvalue accuracy (1e-10) and
  // well below physical mode separations.
  double sigma = top - 1e-6 * scale;
  std::int64_t returned_below = 0;
  for (std::int64_t i = 0; i < n_eigenvalues; ++i) returned_below += eigenvalues[i] < sigma;
  SturmCount count;
  try {
    count = sturm_count(stiffness, mass, sigma);
  } catch (const NumericalError&) {
    // sigma landed on an eigenvalue (to working precision): step a little further down.
    sigma = top - 1e-5 * scale;
    returned_below = 0;
    for (std::int64_t i = 0; i < n_eigenvalues; ++i) returned_below += eigenvalues[i] < sigma;
    count = sturm_count(stiffness, mass, sigma);
  }
  const auto hz = [](double lambda) { return std::sqrt(std::max(lambda, 0.0)) / (2.0 * M_PI); };
  if (count.below != returned_below) {
    throw NumericalError(fmt::format(
        "Sturm check failed: {} eigenvalues lie below {:.6g} Hz but {} were found there; modes "
        "are missing: rerun with more modes or report the model",
        count.below, hz(sigma), returned_below));
  }
  spdlog::info("Sturm check passed: exactly {} modes below {:.6g} Hz ({:.2f} s)", count.below,
               hz(sigma), count.seconds);
  return count;
}

}  // namespace vsense::solvers
