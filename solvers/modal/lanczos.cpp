// CPU modal solver: lowest eigenpairs of K x = lambda M x by shift-invert Lanczos (Spectra's
// implicitly restarted Lanczos, generalized shift-invert mode) on a CHOLMOD supernodal Cholesky
// factor of A = K - sigma M.
//
// Why a negative shift: if A = K - sigma M is positive definite then, by Sylvester's law of
// inertia, sigma lies below every eigenvalue; the transformed eigenvalues nu = 1 / (lambda -
// sigma) are then all positive and the largest nu are exactly the lowest lambda, so no mode is
// skipped. A free-free model (6 rigid-body modes at lambda = 0) is handled as well, because any
// sigma < 0 keeps A positive definite when K is positive semi-definite and M positive definite.
#include <cholmod.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <Spectra/SymGEigsShiftSolver.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <type_traits>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/modal.hpp"

namespace vsense::solvers {

namespace {

static_assert(std::is_same_v<SuiteSparse_long, std::int64_t> ||
                  sizeof(SuiteSparse_long) == sizeof(std::int64_t),
              "CHOLMOD's long interface must use 64-bit indices like model::SparseMatrix");

using Clock = std::chrono::steady_clock;
using model::SparseMatrix;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- automatic shift ----------------------------------------------------------------------
//
// sigma = -s with s = clamp((2 pi * 1 Hz)^2, 1e-9 * lambda_scale, 1e-4 * lambda_scale), where
// lambda_scale = trace(K) / trace(M) is a unit-free estimate of a typical eigenvalue (the
// mean diagonal stiffness over mean diagonal mass; it lies inside the spectrum, near its upper
// part for FE models).
//  - (2 pi * 1 Hz)^2: machines and structures have their first flexible modes at a few Hz and
//    above; a shift within an order of magnitude or two of the lowest eigenvalues gives the
//    transformed spectrum nu = 1/(lambda - sigma) a good separation, hence few restarts, while
//    rigid-body modes stay at a finite nu = 1/s.
//  - upper cap 1e-4 * lambda_scale: nondimensional or scaled models whose whole spectrum lies
//    below 1 Hz (the unit chains of the tests) still get a shift near their low end.
//  - lower floor 1e-9 * lambda_scale: the smallest eigenvalue of A is about s (rigid modes);
//    K's assembly round-off is about eps * lambda_max ~ 1e-16 * (1e2..1e3) * lambda_scale, so
//    the floor keeps A's rigid-mode pivots several thousand times above round-off, which keeps
//    those modes accurate in very stiff models (lambda_scale > 4e10, e.g. fine steel meshes).
constexpr double shift_reference_hz = 1.0;
constexpr double shift_floor_ratio = 1e-9;
constexpr double shift_cap_ratio = 1e-4;

// Largest number of equations for which "all modes" (n_modes == n) is computed densely.
constexpr std::int64_t dense_all_modes_limit = 4000;

// Post-checks. The Lanczos residual bound tol * |nu| translates into a normwise backward error
// of about tol for K x = lambda M x; the limits leave three orders of magnitude for round-off.
constexpr double backward_error_floor = 1e-8;
constexpr double orthonormality_limit = 1e-8;

double trace_lower(const SparseMatrix& lower) {
  double trace = 0.0;
  for (Eigen::Index col = 0; col < lower.outerSize(); ++col) {
    for (SparseMatrix::InnerIterator it(lower, col); it; ++it) {
      if (it.row() == it.col()) trace += it.value();
    }
  }
  return trace;
}

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

double automatic_shift(const SparseMatrix& stiffness, const SparseMatrix& mass) {
  const double trace_k = trace_lower(stiffness);
  const double trace_m = trace_lower(mass);
  if (!(trace_m > 0.0) || !std::isfinite(trace_m)) {
    throw InputError(fmt::format("modal solver: the mass matrix has trace {} (it must be "
                                 "positive definite: does every free DOF carry mass?)",
                                 trace_m));
  }
  const double reference = std::pow(2.0 * std::numbers::pi * shift_reference_hz, 2);
  const double lambda_scale = trace_k / trace_m;
  if (!(lambda_scale > 0.0) || !std::isfinite(lambda_scale)) {
    // No stiffness at all: every eigenvalue is 0 and any negative shift works.
    return -1.0;
  }
  const double magnitude = std::clamp(reference, shift_floor_ratio * lambda_scale,
                                      shift_cap_ratio * lambda_scale);
  spdlog::debug("modal: trace(K)/trace(M) = {:.6g} (rad/s)^2, automatic shift {:.6g}",
                lambda_scale, -magnitude);
  return -magnitude;
}

// "sigma = -39.48 (rad/s)^2 = -(2 pi * 1 Hz)^2" for messages.
std::string describe_shift(double sigma) {
  const double hz = std::sqrt(std::abs(sigma)) / (2.0 * std::numbers::pi);
  return fmt::format("sigma = {:.6g} (rad/s)^2 = {}(2 pi * {:.4g} Hz)^2", sigma,
                     sigma < 0 ? "-" : "", hz);
}

// ---- CHOLMOD ------------------------------------------------------------------------------

const char* cholmod_status_text(int status) {
  switch (status) {
    case CHOLMOD_NOT_INSTALLED: return "a required CHOLMOD module is not installed";
    case CHOLMOD_OUT_OF_MEMORY: return "out of memory";
    case CHOLMOD_TOO_LARGE: return "integer overflow (the problem is too large)";
    case CHOLMOD_INVALID: return "invalid input";
    case CHOLMOD_GPU_PROBLEM: return "GPU problem";
    case CHOLMOD_NOT_POSDEF: return "matrix not positive definite";
    case CHOLMOD_DSMALL: return "tiny diagonal entry";
    default: return "unknown status";
  }
}

/// @brief y = (K - sigma M)^{-1} x through a supernodal Cholesky factor: Spectra's shift-solve
/// operator. K, M are lower triangles; A = K - sigma M is formed once, lower triangle, and
/// handed to CHOLMOD without copying (stype = -1, 64-bit indices).
class ShiftedCholeskySolve {
public:
  using Scalar = double;

  ShiftedCholeskySolve(const SparseMatrix& stiffness, const SparseMatrix& mass, int n_modes)
      : stiffness_(stiffness), mass_(mass), n_modes_(n_modes) {
    cholmod_l_start(&common_);
    common_.print = 0;  // errors are reported by us, as exceptions
    common_.supernodal = CHOLMOD_SUPERNODAL;
  }
  ShiftedCholeskySolve(const ShiftedCholeskySolve&) = delete;
  ShiftedCholeskySolve& operator=(const ShiftedCholeskySolve&) = delete;
  ~ShiftedCholeskySolve() {
    cholmod_l_free_factor(&factor_, &common_);
    cholmod_l_free_dense(&x_, &common_);
    cholmod_l_free_dense(&y_workspace_, &common_);
    cholmod_l_free_dense(&e_workspace_, &common_);
    cholmod_l_finish(&common_);
  }

  Eigen::Index rows() const { return stiffness_.rows(); }
  Eigen::Index cols() const { return stiffness_.rows(); }

  /// Factorises K - sigma M unless that shift is already factorised.
  void set_shift(double sigma) {
    if (factor_ != nullptr && sigma == sigma_) return;
    factorise(sigma);
  }

  void perform_op(const double* x_in, double* y_out) const {
    cholmod_dense rhs{};
    rhs.nrow = static_cast<std::size_t>(rows());
    rhs.ncol = 1;
    rhs.nzmax = rhs.nrow;
    rhs.d = rhs.nrow;
    rhs.x = const_cast<double*>(x_in);  // read only: CHOLMOD takes B as input
    rhs.xtype = CHOLMOD_REAL;
    rhs.dtype = CHOLMOD_DOUBLE;
    if (!cholmod_l_solve2(CHOLMOD_A, factor_, &rhs, nullptr, &x_, nullptr, &y_workspace_,
                          &e_workspace_, &common_)) {
      throw NumericalError(fmt::format("modal solver: CHOLMOD solve failed: {} (n = {}, {})",
                                       cholmod_status_text(common_.status), rows(),
                                       describe_shift(sigma_)));
    }
    std::memcpy(y_out, x_->x, sizeof(double) * static_cast<std::size_t>(rows()));
    if (regularisation_ > 0.0) refine(x_in, y_out);
  }

  double factor_seconds() const noexcept { return factor_seconds_; }
  std::int64_t factor_nonzeros() const noexcept { return factor_nonzeros_; }

  /// Diagonal shift added to K - sigma M when the pencil is singular (0: none was needed).
  double regularisation() const noexcept { return regularisation_; }

private:
  // Iterative refinement against the unregularised A: y += (A + delta I)^{-1} (x - A y). The
  // error is multiplied by delta (A + delta I)^{-1} per step: it vanishes on every component
  // where A is not singular and stays put (does not grow) on the common null space of K and M,
  // which the M-inner-product Lanczos never sees.
  void refine(const double* x_in, double* y_out) const {
    const auto n = rows();
    Eigen::Map<const Eigen::VectorXd> x(x_in, n);
    Eigen::Map<Eigen::VectorXd> y(y_out, n);
    Eigen::VectorXd residual(n);
    const double x_norm = x.norm();
    double previous = std::numeric_limits<double>::infinity();
    for (int step = 0; step < 30; ++step) {
      residual.noalias() = x - shifted_.selfadjointView<Eigen::Lower>() * y;
      const double norm = residual.norm();
      // Stop at round-off level, or when a step no longer reduces the residual.
      if (norm <= 1e-15 * x_norm || norm >= previous) break;
      previous = norm;
      cholmod_dense rhs{};
      rhs.nrow = static_cast<std::size_t>(n);
      rhs.ncol = 1;
      rhs.nzmax = rhs.nrow;
      rhs.d = rhs.nrow;
      rhs.x = residual.data();
      rhs.xtype = CHOLMOD_REAL;
      rhs.dtype = CHOLMOD_DOUBLE;
      if (!cholmod_l_solve2(CHOLMOD_A, factor_, &rhs, nullptr, &x_, nullptr, &y_workspace_,
                            &e_workspace_, &common_)) {
        throw NumericalError(fmt::format("modal solver: CHOLMOD solve failed: {} (n = {})",
                                         cholmod_status_text(common_.status), n));
      }
      y += Eigen::Map<const Eigen::VectorXd>(static_cast<const double*>(x_->x), n);
    }
  }

  /// Factorises K - sigma M + delta I. CHOLMOD reads `regularised` (a copy of A with delta on
  /// the diagonal) when delta > 0, else A itself.
  bool try_factorise(SparseMatrix& target) {
    cholmod_sparse view{};
    view.nrow = static_cast<std::size_t>(target.rows());
    view.ncol = static_cast<std::size_t>(target.cols());
    view.nzmax = static_cast<std::size_t>(target.nonZeros());
    view.p = target.outerIndexPtr();
    view.i = target.innerIndexPtr();
    view.x = target.valuePtr();
    view.stype = -1;
    view.itype = CHOLMOD_LONG;
    view.xtype = CHOLMOD_REAL;
    view.dtype = CHOLMOD_DOUBLE;
    view.sorted = 1;
    view.packed = 1;
    const int ok = cholmod_l_factorize(&view, factor_, &common_);
    return ok && common_.status == CHOLMOD_OK && factor_->minor == factor_->n;
  }

  void factorise(double sigma) {
    const auto start = Clock::now();
    const std::int64_t n = stiffness_.rows();
    cholmod_l_free_factor(&factor_, &common_);
    sigma_ = sigma;
    shifted_ = stiffness_ - sigma * mass_;
    shifted_.makeCompressed();

    cholmod_sparse view{};
    view.nrow = static_cast<std::size_t>(n);
    view.ncol = static_cast<std::size_t>(n);
    view.nzmax = static_cast<std::size_t>(shifted_.nonZeros());
    view.p = shifted_.outerIndexPtr();
    view.i = shifted_.innerIndexPtr();
    view.x = shifted_.valuePtr();
    view.stype = -1;  // lower triangle
    view.itype = CHOLMOD_LONG;
    view.xtype = CHOLMOD_REAL;
    view.dtype = CHOLMOD_DOUBLE;
    view.sorted = 1;
    view.packed = 1;

    const auto context = [&] {
      return fmt::format("n = {}, n_modes = {}, {}", n, n_modes_, describe_shift(sigma));
    };
    factor_ = cholmod_l_analyze(&view, &common_);
    if (factor_ == nullptr) {
      throw NumericalError(fmt::format("modal solver: ordering/analysis of K - sigma M failed: {} "
                                       "({})",
                                       cholmod_status_text(common_.status), context()));
    }
    spdlog::debug("modal: CHOLMOD analysis: nnz(L) = {:.4g}, {:.4g} GFlop, ordering method {}",
                  common_.lnz, common_.fl * 1e-9, common_.selected);
    int ok = cholmod_l_factorize(&view, factor_, &common_);
    if (common_.status == CHOLMOD_NOT_POSDEF && sigma < 0.0) {
      // With sigma below the spectrum, A = K - sigma M is only singular where K and M share a
      // null vector: a singular pencil, as reduced-integration elements with their 2x2x2 mass
      // rule produce (C3D20R hourglass modes carrying no mass). Those vectors are not modes and
      // the M-inner-product Lanczos never sees them; factorise A + delta I instead (static
      // regularisation, delta far below every physical pivot) and refine each solve against A.
      double max_diagonal = 0.0;
      for (Eigen::Index j = 0; j < shifted_.outerSize(); ++j) {
        for (SparseMatrix::InnerIterator it(shifted_, j); it; ++it) {
          if (it.row() == it.col()) max_diagonal = std::max(max_diagonal, std::abs(it.value()));
        }
      }
      regularisation_ = 1e-12 * max_diagonal;
      SparseMatrix regularised = shifted_;
      for (Eigen::Index j = 0; j < regularised.outerSize(); ++j) {
        regularised.coeffRef(j, j) += regularisation_;
      }
      regularised.makeCompressed();
      spdlog::warn("modal: K - sigma M is singular (K and M share null vectors, e.g. hourglass "
                   "modes of reduced-integration elements without mass); regularising with "
                   "delta = {:.3g} and refining every solve",
                   regularisation_);
      ok = try_factorise(regularised) ? 1 : 0;
      if (ok) common_.status = CHOLMOD_OK;
    }
    if (!ok || common_.status == CHOLMOD_NOT_POSDEF || factor_->minor < factor_->n) {
      if (common_.status == CHOLMOD_NOT_POSDEF || factor_->minor < factor_->n) {
        throw NumericalError(fmt::format(
            "modal solver: K - sigma M is not positive definite (Cholesky failed at column {} "
            "of {}; {}). With a shift below the lowest eigenvalue this cannot happen unless K is "
            "not positive semi-definite or M not positive definite (negative stiffness, a "
            "massless DOF, a bad element); a user shift must lie below the lowest eigenvalue",
            factor_->minor, n, context()));
      }
      throw NumericalError(fmt::format("modal solver: Cholesky factorisation of K - sigma M "
                                       "failed: {} ({})",
                                       cholmod_status_text(common_.status), context()));
    }
    factor_nonzeros_ = static_cast<std::int64_t>(common_.lnz);
    factor_seconds_ = seconds_since(start);
    spdlog::info("modal: factorised K - sigma M (n = {}, nnz(L) = {}, {}) in {:.3f} s", n,
                 factor_nonzeros_, factor_->is_super ? "supernodal" : "simplicial",
                 factor_seconds_);
  }

  const SparseMatrix& stiffness_;
  const SparseMatrix& mass_;
  int n_modes_;
  SparseMatrix shifted_;  // A = K - sigma M, lower triangle; CHOLMOD reads it in place
  double sigma_ = std::numeric_limits<double>::quiet_NaN();
  mutable cholmod_common common_{};
  cholmod_factor* factor_ = nullptr;
  // Solve output and workspaces, reused by every perform_op (cholmod_l_solve2).
  mutable cholmod_dense* x_ = nullptr;
  mutable cholmod_dense* y_workspace_ = nullptr;
  mutable cholmod_dense* e_workspace_ = nullptr;
  double factor_seconds_ = 0.0;
  std::int64_t factor_nonzeros_ = 0;
  double regularisation_ = 0.0;
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

// ---- checks and post-processing -----------------------------------------------------------

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
  Eigen::MatrixXd mass_vectors = mass.selfadjointView<Eigen::Lower>() * vectors;
  for (Eigen::Index j = 0; j < m; ++j) {
    const double norm_sq = vectors.col(j).dot(mass_vectors.col(j));
    if (!(norm_sq > 0.0) || !std::isfinite(norm_sq)) {
      throw NumericalError(fmt::format("modal solver: mode {} has x^T M x = {} (n = {}, "
                                       "n_modes = {}, {})",
                                       j + 1, norm_sq, n, m, describe_shift(sigma)));
    }
    Eigen::Index largest = 0;
    vectors.col(j).cwiseAbs().maxCoeff(&largest);
    const double scale = (vectors(largest, j) < 0 ? -1.0 : 1.0) / std::sqrt(norm_sq);
    vectors.col(j) *= scale;
    mass_vectors.col(j) *= scale;
  }
  const Eigen::MatrixXd stiffness_vectors = stiffness.selfadjointView<Eigen::Lower>() * vectors;

  const double norm_k = norm1_symmetric(stiffness);
  const double norm_m = norm1_symmetric(mass);
  const double backward_limit = std::max(backward_error_floor, 1e3 * options.tolerance);
  result.residuals.resize(m);
  for (Eigen::Index j = 0; j < m; ++j) {
    const double lambda = result.eigenvalues[j];
    const double residual =
        (stiffness_vectors.col(j) - lambda * mass_vectors.col(j)).norm();
    const double denominator =
        std::max({stiffness_vectors.col(j).norm(), std::abs(sigma) * mass_vectors.col(j).norm(),
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

  const Eigen::MatrixXd gram = vectors.transpose() * mass_vectors;
  const double orthonormality = (gram - Eigen::MatrixXd::Identity(m, m)).cwiseAbs().maxCoeff();
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

}  // namespace

ModalResult solve_lowest_modes(const model::SparseMatrix& stiffness,
                               const model::SparseMatrix& mass, const ModalOptions& options) {
  check_request(stiffness, mass, options);
  const std::int64_t n = stiffness.rows();
  const int nev = options.n_modes;
  const double sigma =
      std::isnan(options.shift) ? automatic_shift(stiffness, mass) : options.shift;
  ModalResult result;

  if (nev == n) {
    spdlog::info("modal: all {} modes requested: dense generalized eigensolver", n);
    solve_all_modes_dense(stiffness, mass, result);
    finish_result(stiffness, mass, sigma, options, result);
    return result;
  }

  const std::int64_t ncv =
      options.subspace_size > 0
          ? options.subspace_size
          : std::min<std::int64_t>(n, std::max<std::int64_t>(2 * nev + 1, nev + 20));
  spdlog::info("modal: {} lowest modes of n = {} equations, {}, Lanczos basis {}", nev, n,
               describe_shift(sigma), ncv);

  ShiftedCholeskySolve shift_solve(stiffness, mass, nev);
  shift_solve.set_shift(sigma);  // factorise here, so that failures and timing are ours
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
  result.factor_seconds = shift_solve.factor_seconds();
  result.factor_nonzeros = shift_solve.factor_nonzeros();
  result.regularisation = shift_solve.regularisation();
  spdlog::info("modal: {} modes in {} restarts, {:.3f} s (factorisation {:.3f} s); lowest {:.6g}, "
               "highest {:.6g} (rad/s)^2",
               nev, result.iterations, result.solve_seconds, result.factor_seconds,
               result.eigenvalues[0], result.eigenvalues[nev - 1]);
  return result;
}

}  // namespace vsense::solvers
