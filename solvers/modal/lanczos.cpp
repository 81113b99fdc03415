// CPU modal solver: lowest eigenpairs of K x = lambda M x by shift-invert Lanczos (Spectra's
// implicitly restarted Lanczos, generalized shift-invert mode) on a CHOLMOD supernodal Cholesky
// factor of A = K - sigma M.
//
// Why a negative shift: if A = K - sigma M is positive definite then, by Sylvester's law of
// inertia, sigma lies below every eigenvalue; the transformed eigenvalues nu = 1 / (lambda -
// sigma) are then all positive and the largest nu are exactly the lowest lambda, so no mode is
// skipped. A free-free model (6 rigid-body modes at lambda = 0) is handled as well, because any
// sigma < 0 keeps A positive definite when K is positive semi-definite and M positive definite.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <Spectra/SymGEigsShiftSolver.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "modal_internal.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/modal.hpp"

namespace vsense::solvers::detail {

namespace {

using Clock = std::chrono::steady_clock;

/// Spectra's shift-solve operator interface over a factor: y = (K - sigma M)^{-1} x.
class ShiftedCholeskySolve {
public:
  using Scalar = double;
  explicit ShiftedCholeskySolve(const ShiftInvert& op) : op_(op) {}
  Eigen::Index rows() const { return op_.rows(); }
  Eigen::Index cols() const { return op_.rows(); }
  void set_shift(double sigma) {
    if (sigma != op_.sigma()) {
      throw std::logic_error("modal solver: Spectra asked for a shift that is not factorised");
    }
  }
  void perform_op(const double* x_in, double* y_out) const { op_.solve(x_in, y_out, 1); }

private:
  const ShiftInvert& op_;
};

/// @brief y = M x with M stored as its lower triangle: Spectra's B operator.
class MassProduct {
public:
  using Scalar = double;
  explicit MassProduct(const SparseMatrix& mass) : mass_(mass) {}
  Eigen::Index rows() const { return mass_.rows(); }
  Eigen::Index cols() const { return mass_.cols(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, mass_.cols());
    Eigen::Map<Eigen::VectorXd> y(y_out, mass_.rows());
    y.noalias() = mass_.selfadjointView<Eigen::Lower>() * x;
  }

private:
  const SparseMatrix& mass_;
};

/// @brief The shift-solve restricted to the M-orthogonal complement of known modes Phi:
/// z -> P (K - sigma M)^{-1} P^T z with P = I - Phi Phi^T M. Spectra applies it to z = M x, so
/// the iteration operator is P A^{-1} M P, self-adjoint in the M inner product, with the known
/// modes mapped to 0 and every other eigenpair unchanged.
class DeflatedShiftSolve {
public:
  using Scalar = double;
  // modes: [n, f] M-orthonormal; mass_modes: [n, f] = M * modes
  DeflatedShiftSolve(ShiftedCholeskySolve& solve, const Eigen::MatrixXd& modes,
                     const Eigen::MatrixXd& mass_modes)
      : solve_(solve), modes_(modes), mass_modes_(mass_modes), work_(modes.rows()) {}
  Eigen::Index rows() const { return solve_.rows(); }
  Eigen::Index cols() const { return solve_.rows(); }
  void set_shift(double sigma) { solve_.set_shift(sigma); }
  void perform_op(const double* z_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> z(z_in, rows());
    Eigen::Map<Eigen::VectorXd> y(y_out, rows());
    work_.noalias() = z - mass_modes_ * (modes_.transpose() * z);
    solve_.perform_op(work_.data(), y_out);
    y -= modes_ * (mass_modes_.transpose() * y);
  }

private:
  ShiftedCholeskySolve& solve_;
  const Eigen::MatrixXd& modes_;
  const Eigen::MatrixXd& mass_modes_;
  mutable Eigen::VectorXd work_;
};

struct LanczosPairs {
  Eigen::VectorXd eigenvalues;  // [k] ascending
  Eigen::MatrixXd vectors;      // [n, k]
  int restarts = 0;
  Eigen::Index operations = 0;
};

// One implicitly restarted Lanczos run for the `nev` largest nu = 1/(lambda - sigma), i.e. the
// lowest lambda. `start`: the initial vector, or nullptr for Spectra's fixed-seed one.
template <typename ShiftSolve>
LanczosPairs run_lanczos(ShiftSolve& shift_solve, MassProduct& mass_product, int nev,
                         Eigen::Index ncv, double sigma, const ModalOptions& options,
                         const Eigen::VectorXd* start, const char* pass) {
  const Eigen::Index n = shift_solve.rows();
  using Solver = Spectra::SymGEigsShiftSolver<ShiftSolve, MassProduct,
                                              Spectra::GEigsMode::ShiftInvert>;
  const auto begin = Clock::now();
  LanczosPairs pairs;
  Eigen::Index converged = 0;
  Spectra::CompInfo info = Spectra::CompInfo::NotComputed;
  try {
    Solver solver(shift_solve, mass_product, nev, ncv, sigma);
    if (start != nullptr) {
      solver.init(start->data());
    } else {
      solver.init();  // Spectra's fixed-seed start vector: runs are reproducible
    }
    converged = solver.compute(Spectra::SortRule::LargestAlge, options.max_iterations,
                               options.tolerance, Spectra::SortRule::SmallestAlge);
    info = solver.info();
    pairs.restarts = static_cast<int>(solver.num_iterations());
    pairs.operations = solver.num_operations();
    if (info == Spectra::CompInfo::Successful) {
      pairs.eigenvalues = solver.eigenvalues();
      pairs.vectors = solver.eigenvectors();
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw NumericalError(fmt::format("modal solver: Lanczos iteration ({}) failed: {} (n = {}, "
                                     "n_modes = {}, basis {}, {})",
                                     pass, e.what(), n, nev, ncv, describe_shift(sigma)));
  }
  if (info != Spectra::CompInfo::Successful || pairs.eigenvalues.size() != nev) {
    throw NumericalError(fmt::format(
        "modal solver: Lanczos ({}) did not converge: {} of {} modes after {} restarts (n = {}, "
        "basis {}, tolerance {:.3g}, {}); raise max_iterations or subspace_size",
        pass, converged, nev, pairs.restarts, n, ncv, options.tolerance, describe_shift(sigma)));
  }
  spdlog::debug("modal: Lanczos ({}): {} modes, {} restarts, {} operator applications in "
                "{:.3f} s",
                pass, nev, pairs.restarts, pairs.operations, seconds_since(begin));
  return pairs;
}

// Modes per deflation pass: enough to catch a missed pair or triple in one pass.
constexpr int deflation_pass_modes = 3;
// Ritz tolerance of the detection pass: ample to tell a missed eigenvalue from the next ones.
constexpr double detection_tolerance = 1e-6;

// Finds copies of repeated eigenvalues that the main run missed: Lanczos on the M-orthogonal
// complement of all modes found so far; eigenvalues found there clearly below the highest
// wanted one are missed modes. Repeats until a pass finds none. `found` grows; the caller keeps
// the lowest n_modes.
void recover_missed_modes(ShiftedCholeskySolve& shift_solve, MassProduct& mass_product,
                          const SparseMatrix& mass, double sigma, const ModalOptions& options,
                          LanczosPairs& found, int& recovered, int& restarts) {
  const Eigen::Index n = shift_solve.rows();
  const int nev = options.n_modes;
  for (int pass = 1; pass <= nev; ++pass) {
    const Eigen::Index f = found.vectors.cols();
    const int k = deflation_pass_modes;
    const Eigen::Index ncv = std::max<Eigen::Index>(2 * k + 1, k + 20);
    if (n - f <= 2 * ncv) {
      // The complement is barely larger than the basis: the main run's basis already spanned
      // most of the space, and a Lanczos run there is ill-posed.
      spdlog::debug("modal: deflation check skipped (n = {}, {} modes found)", n, f);
      return;
    }
    const Eigen::MatrixXd mass_modes = mass.selfadjointView<Eigen::Lower>() * found.vectors;
    DeflatedShiftSolve deflated(shift_solve, found.vectors, mass_modes);
    // A fixed-seed random start, projected onto the complement.
    Eigen::VectorXd start(n);
    std::uint64_t state = 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(pass);
    for (Eigen::Index i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      start[i] = static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5;
    }
    start -= found.vectors * (mass_modes.transpose() * start);
    // Detection needs only a few digits: a loose tolerance first, and the full one only in the
    // rare case that something was missed.
    ModalOptions detection = options;
    detection.tolerance = std::max(options.tolerance, detection_tolerance);
    LanczosPairs extra = run_lanczos(deflated, mass_product, k, ncv, sigma, detection, &start,
                                     "deflation check");
    restarts += extra.restarts;

    // The highest wanted eigenvalue so far, and what counts as clearly below it (a copy of the
    // top eigenvalue itself is an equally valid choice, not a missed mode).
    std::vector<double> sorted(found.eigenvalues.data(), found.eigenvalues.data() + f);
    std::sort(sorted.begin(), sorted.end());
    const double top = sorted[static_cast<std::size_t>(nev) - 1];
    const double margin = 1e-8 * std::max(std::abs(top), std::abs(sigma));
    std::vector<Eigen::Index> missed;
    for (Eigen::Index j = 0; j < extra.eigenvalues.size(); ++j) {
      if (extra.eigenvalues[j] < top - margin) missed.push_back(j);
    }
    if (missed.empty()) return;
    if (detection.tolerance > options.tolerance) {
      extra = run_lanczos(deflated, mass_product, k, ncv, sigma, options, &start,
                          "recovering missed modes");
      restarts += extra.restarts;
      missed.clear();
      for (Eigen::Index j = 0; j < extra.eigenvalues.size(); ++j) {
        if (extra.eigenvalues[j] < top - margin) missed.push_back(j);
      }
    }
    spdlog::info("modal: deflation check found {} missed cop{} of repeated eigenvalues (lowest "
                 "{:.6g} (rad/s)^2); adding and checking again",
                 missed.size(), missed.size() == 1 ? "y" : "ies", extra.eigenvalues[missed[0]]);
    found.eigenvalues.conservativeResize(f + static_cast<Eigen::Index>(missed.size()));
    found.vectors.conservativeResize(n, f + static_cast<Eigen::Index>(missed.size()));
    for (std::size_t i = 0; i < missed.size(); ++i) {
      found.eigenvalues[f + static_cast<Eigen::Index>(i)] = extra.eigenvalues[missed[i]];
      found.vectors.col(f + static_cast<Eigen::Index>(i)) = extra.vectors.col(missed[i]);
    }
    recovered += static_cast<int>(missed.size());
  }
}

// Keeps the lowest `count` pairs, ascending.
void keep_lowest(LanczosPairs& pairs, Eigen::Index count) {
  std::vector<Eigen::Index> order(static_cast<std::size_t>(pairs.eigenvalues.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<Eigen::Index>(i);
  std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) {
    return pairs.eigenvalues[a] < pairs.eigenvalues[b];
  });
  Eigen::VectorXd values(count);
  Eigen::MatrixXd vectors(pairs.vectors.rows(), count);
  for (Eigen::Index j = 0; j < count; ++j) {
    values[j] = pairs.eigenvalues[order[static_cast<std::size_t>(j)]];
    vectors.col(j) = pairs.vectors.col(order[static_cast<std::size_t>(j)]);
  }
  pairs.eigenvalues = std::move(values);
  pairs.vectors = std::move(vectors);
}

}  // namespace

ModalResult solve_lowest_modes_lanczos(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                       const ModalOptions& options, double sigma) {
  const std::int64_t n = stiffness.rows();
  const int nev = options.n_modes;
  ModalResult result;
  result.method = "lanczos";
  result.block_size = 1;
  const std::int64_t ncv =
      options.subspace_size > 0
          ? options.subspace_size
          : std::min<std::int64_t>(n, std::max<std::int64_t>(2 * nev + 1, nev + 20));
  spdlog::info("modal: {} lowest modes of n = {} equations, {}, Lanczos basis {}", nev, n,
               describe_shift(sigma), ncv);

  const CholmodShiftInvert factor(stiffness, mass, sigma, options.ordering);
  ShiftedCholeskySolve shift_solve(factor);
  MassProduct mass_product(mass);

  const auto start = Clock::now();
  LanczosPairs pairs = run_lanczos(shift_solve, mass_product, nev, ncv, sigma, options, nullptr,
                                   "main");
  result.iterations = pairs.restarts;
  if (options.deflation_check) {
    recover_missed_modes(shift_solve, mass_product, mass, sigma, options, pairs,
                         result.recovered_modes, result.iterations);
    keep_lowest(pairs, nev);
  }
  result.eigenvalues = std::move(pairs.eigenvalues);
  result.vectors = std::move(pairs.vectors);
  finish_result(stiffness, mass, sigma, options, result);
  result.solve_seconds = seconds_since(start);
  result.factor_seconds = factor.factor_seconds();
  result.factor_nonzeros = factor.factor_nonzeros();
  result.regularisation = factor.regularisation();
  result.ordering = factor.permutation();
  spdlog::info("modal: {} modes in {} restarts, {:.3f} s (factorisation {:.3f} s); lowest {:.6g}, "
               "highest {:.6g} (rad/s)^2",
               nev, result.iterations, result.solve_seconds, result.factor_seconds,
               result.eigenvalues[0], result.eigenvalues[nev - 1]);
  return result;
}

}  // namespace vsense::solvers::detail
