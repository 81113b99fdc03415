// Lowest modes with the dense kernel on an executor's backend (cuSOLVER on a GPU, Eigen on the
// CPU): the path of `vsense modes --backend cuda` for models up to the dense limit. Same shift
// rule, normalisation, residuals and checks as the CPU's sparse path (finish_result).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "modal_internal.hpp"
#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::solvers::detail {

namespace {
kernels::LowerCscView view_of(const SparseMatrix& lower) {
  if (!lower.isCompressed()) {
    throw Error("dense modes: the assembled matrix is not in compressed form");
  }
  return {lower.rows(), lower.outerIndexPtr(), lower.innerIndexPtr(), lower.valuePtr()};
}
}  // namespace

ModalResult solve_lowest_modes_dense(const Executor& exec, const SparseMatrix& stiffness,
                                     const SparseMatrix& mass, const ModalOptions& options) {
  check_request(stiffness, mass, options);
  // The automatic shift lies below every eigenvalue (rigid-body modes included), which is what
  // the dense kernel needs: B = K - sigma M positive definite.
  const double sigma = std::isnan(options.shift) ? automatic_shift(stiffness, mass) : options.shift;
  const auto n = static_cast<std::size_t>(stiffness.rows());
  const auto count = static_cast<std::size_t>(options.n_modes);
  const auto start = std::chrono::steady_clock::now();
  ModalResult result;
  result.eigenvalues.resize(static_cast<Eigen::Index>(count));
  result.vectors.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(count));
  kernels::dense_lowest_modes(exec, view_of(stiffness), view_of(mass), sigma, count,
                              result.eigenvalues.data(), result.vectors.data());
  result.solve_seconds = seconds_since(start);
  // K and M sharing null vectors (massless hourglass modes) make B = K - sigma M singular: its
  // Cholesky either fails (NumericalError above) or passes on round-off pivots and returns
  // spurious pairs with mu ~ 1 / round-off, i.e. lambda ~ sigma. With sigma < 0 no true
  // eigenvalue lies below sigma / 2 (K is positive semi-definite: lambda >= 0 up to round-off
  // of order eps * lambda_max, far above sigma / 2 for the automatic shift).
  for (Eigen::Index j = 0; sigma < 0.0 && j < result.eigenvalues.size(); ++j) {
    if (result.eigenvalues(j) < 0.5 * sigma) {
      throw NumericalError(fmt::format(
          "dense modes: eigenvalue {} = {:.6g} lies below sigma / 2 ({}): K and M share null "
          "vectors (singular pencil, e.g. massless hourglass modes), which only the CPU solver "
          "handles (it regularises); use --backend cpu",
          j + 1, result.eigenvalues(j), describe_shift(sigma)));
    }
  }
  result.factor_nonzeros = static_cast<std::int64_t>(n * (n + 1) / 2);
  result.method = "dense";
  result.block_size = 0;
  spdlog::info("modal: dense generalized eigen-solve of {} equations for {} modes on {} in "
               "{:.3f} s ({})",
               n, count, exec.description(), result.solve_seconds, describe_shift(sigma));
  finish_result(stiffness, mass, sigma, options, result);
  return result;
}

}  // namespace vsense::solvers::detail
