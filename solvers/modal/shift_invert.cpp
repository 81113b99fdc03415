// Shift-invert operators of the CPU modal solvers: y = (K - sigma M)^{-1} x for blocks of
// right-hand sides, through a supernodal CHOLMOD LL^T (shifts below the spectrum) or a MUMPS
// LDL^T (any shift; its inertia is the Sturm count at the shift).
#include <cholmod.h>
#include "sequential_mumps.hpp"
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <type_traits>
#include <vector>

#include "modal_internal.hpp"
#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::solvers::detail {

static_assert(sizeof(SuiteSparse_long) == sizeof(std::int64_t),
              "CHOLMOD's long interface must use 64-bit indices like model::SparseMatrix");

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string describe_shift(double sigma) {
  const double hz = std::sqrt(std::abs(sigma)) / (2.0 * std::numbers::pi);
  return fmt::format("sigma = {:.6g} (rad/s)^2 = {}(2 pi * {:.4g} Hz)^2", sigma,
                     sigma < 0 ? "-" : "", hz);
}

namespace {

double trace_lower(const SparseMatrix& lower) {
  double trace = 0.0;
  for (Eigen::Index col = 0; col < lower.outerSize(); ++col) {
    for (SparseMatrix::InnerIterator it(lower, col); it; ++it) {
      if (it.row() == it.col()) trace += it.value();
    }
  }
  return trace;
}

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

cholmod_sparse view_of(SparseMatrix& lower) {
  cholmod_sparse view{};
  view.nrow = static_cast<std::size_t>(lower.rows());
  view.ncol = static_cast<std::size_t>(lower.cols());
  view.nzmax = static_cast<std::size_t>(lower.nonZeros());
  view.p = lower.outerIndexPtr();
  view.i = lower.innerIndexPtr();
  view.x = lower.valuePtr();
  view.stype = -1;  // lower triangle
  view.itype = CHOLMOD_LONG;
  view.xtype = CHOLMOD_REAL;
  view.dtype = CHOLMOD_DOUBLE;
  view.sorted = 1;
  view.packed = 1;
  return view;
}

}  // namespace

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
double automatic_shift(const SparseMatrix& stiffness, const SparseMatrix& mass) {
  constexpr double shift_reference_hz = 1.0;
  constexpr double shift_floor_ratio = 1e-9;
  constexpr double shift_cap_ratio = 1e-4;
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

void mass_product(const SparseMatrix& mass, const double* x, double* y, Eigen::Index ncols) {
  const Eigen::Index n = mass.rows();
  Eigen::Map<const Eigen::MatrixXd> in(x, n, ncols);
  Eigen::Map<Eigen::MatrixXd> out(y, n, ncols);
  out.noalias() = mass.selfadjointView<Eigen::Lower>() * in;
}

SymmetricProduct::SymmetricProduct(const SparseMatrix& lower) {
  full_ = lower.selfadjointView<Eigen::Lower>();
  full_.makeCompressed();
}

namespace {

// out[0, W) = sum over the stored entries e of row i of values[e] * x[inner[e]][c0, c0 + W), for
// row-major blocks with `stride` doubles per row: a width known at compile time keeps the W
// partial sums in registers (vectorised).
template <int W>
inline void product_row(const std::int64_t* inner, const double* values, std::int64_t begin,
                        std::int64_t end, const double* x, std::size_t stride, double* out) {
  double sum[W] = {};
  for (std::int64_t e = begin; e < end; ++e) {
    const double value = values[e];
    const double* in = x + static_cast<std::size_t>(inner[e]) * stride;
    for (int c = 0; c < W; ++c) sum[c] += value * in[c];
  }
  for (int c = 0; c < W; ++c) out[c] = sum[c];
}

// Products of more than a few entries' worth of work run on all cores (OpenMP).
constexpr double parallel_product_work = 1 << 18;

}  // namespace

void SymmetricProduct::apply(const double* x, double* y, Eigen::Index ncols) const {
  const Eigen::Index n = full_.rows();
  const auto b = static_cast<std::size_t>(ncols);
  const auto rows = static_cast<std::size_t>(n);
  x_rows_.resize(rows * b);
  y_rows_.resize(rows * b);
  const std::int64_t* outer = full_.outerIndexPtr();
  const std::int64_t* inner = full_.innerIndexPtr();
  const double* values = full_.valuePtr();
  double* x_rows = x_rows_.data();
  double* y_rows = y_rows_.data();
  // The block's columns in groups of 16, 12, 8, 4, 2 and 1: each group one pass of a stored row
  // (from cache after the first group), so the matrix is read from memory once per product.
  const auto row = [&](Eigen::Index i) {
    const std::int64_t begin = outer[i], end = outer[i + 1];
    double* out = y_rows + static_cast<std::size_t>(i) * b;
    std::size_t c = 0;
    const auto group = [&]<int W>() {
      if (c + W > b) return;
      product_row<W>(inner, values, begin, end, x_rows + c, b, out + c);
      c += W;
    };
    while (c + 16 <= b) group.template operator()<16>();
    group.template operator()<12>();
    group.template operator()<8>();
    group.template operator()<4>();
    group.template operator()<2>();
    group.template operator()<1>();
  };
  const bool parallel =
      static_cast<double>(full_.nonZeros()) * static_cast<double>(b) >= parallel_product_work;
  // One parallel region: the block turned row-major, the product, and the result turned back.
  // The last two share the static row split (same loop, same schedule), so each thread reads back
  // only rows it computed and needs no barrier between them.
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < b; ++c) {
        x_rows[static_cast<std::size_t>(i) * b + c] = x[c * rows + static_cast<std::size_t>(i)];
      }
    }
#pragma omp for schedule(static) nowait
    for (Eigen::Index i = 0; i < n; ++i) row(i);
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < b; ++c) {
        y[c * rows + static_cast<std::size_t>(i)] = y_rows[static_cast<std::size_t>(i) * b + c];
      }
    }
  }
}

// ---- CHOLMOD ------------------------------------------------------------------------------

CholmodShiftInvert::CholmodShiftInvert(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                       double sigma, const std::string& ordering)
    : sigma_(sigma), common_(std::make_unique<cholmod_common>()) {
  const auto start = Clock::now();
  cholmod_l_start(common_.get());
  common_->print = 0;  // errors are reported by us, as exceptions
  common_->supernodal = CHOLMOD_SUPERNODAL;
  if (ordering == "amd" || ordering == "metis" || ordering == "nesdis") {
    common_->nmethods = 1;
    common_->method[0].ordering =
        ordering == "amd" ? CHOLMOD_AMD : (ordering == "metis" ? CHOLMOD_METIS : CHOLMOD_NESDIS);
    common_->postorder = 1;
  } else if (ordering != "auto") {
    throw InputError(fmt::format("modal solver: unknown ordering '{}' (auto, amd, metis, nesdis)",
                                 ordering));
  }
  const std::int64_t n = stiffness.rows();
  shifted_ = stiffness - sigma * mass;
  shifted_.makeCompressed();
  cholmod_sparse view = view_of(shifted_);
  const auto context = [&] { return fmt::format("n = {}, {}", n, describe_shift(sigma)); };

  factor_ = cholmod_l_analyze(&view, common_.get());
  if (factor_ == nullptr) {
    throw NumericalError(fmt::format("modal solver: ordering/analysis of K - sigma M failed: {} "
                                     "({})",
                                     cholmod_status_text(common_->status), context()));
  }
  static constexpr const char* ordering_names[] = {"natural", "given", "AMD", "METIS",
                                                   "NESDIS", "AMD(A A^T)", "postordered"};
  const int selected = factor_->ordering;
  spdlog::debug("modal: CHOLMOD analysis in {:.3f} s: nnz(L) = {:.4g}, {:.4g} GFlop, ordering {}",
                seconds_since(start), common_->lnz, common_->fl * 1e-9,
                selected >= 0 && selected <= 6 ? ordering_names[selected] : "?");
  int ok = cholmod_l_factorize(&view, factor_, common_.get());
  if (common_->status == CHOLMOD_NOT_POSDEF && sigma < 0.0) {
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
    if (ok) common_->status = CHOLMOD_OK;
  }
  if (!ok || common_->status == CHOLMOD_NOT_POSDEF || factor_->minor < factor_->n) {
    if (common_->status == CHOLMOD_NOT_POSDEF || factor_->minor < factor_->n) {
      throw NumericalError(fmt::format(
          "modal solver: K - sigma M is not positive definite (Cholesky failed at column {} "
          "of {}; {}). With a shift below the lowest eigenvalue this cannot happen unless K is "
          "not positive semi-definite or M not positive definite (negative stiffness, a "
          "massless DOF, a bad element); a user shift must lie below the lowest eigenvalue",
          factor_->minor, n, context()));
    }
    throw NumericalError(fmt::format("modal solver: Cholesky factorisation of K - sigma M "
                                     "failed: {} ({})",
                                     cholmod_status_text(common_->status), context()));
  }
  factor_nonzeros_ = static_cast<std::int64_t>(common_->lnz);
  const auto* perm = static_cast<const SuiteSparse_long*>(factor_->Perm);
  permutation_.assign(perm, perm + n);
  const int threads = blas_threads();
  if (threads > 1 && factor_->is_super && factor_->is_ll) {
    schedule_ = std::make_unique<kernels::SupernodalSchedule>(
        kernels::supernodal_schedule(supernodal_view()));
    threaded_ = std::make_unique<kernels::cpu::ThreadedSupernodalSolver>(supernodal_view(),
                                                                          *schedule_, threads);
    spdlog::debug("modal: factor solves on {} threads ({:.1f} % of the factor above the "
                  "threads' subtrees)",
                  threads, 100.0 * threaded_->top_fraction());
  }
  factor_seconds_ = seconds_since(start);
  spdlog::info("modal: factorised K - sigma M (n = {}, nnz(L) = {}, {}) in {:.3f} s", n,
               factor_nonzeros_, factor_->is_super ? "supernodal" : "simplicial",
               factor_seconds_);
}

CholmodShiftInvert::~CholmodShiftInvert() {
  cholmod_l_free_factor(&factor_, common_.get());
  cholmod_l_free_dense(&x_, common_.get());
  cholmod_l_free_dense(&y_workspace_, common_.get());
  cholmod_l_free_dense(&e_workspace_, common_.get());
  cholmod_l_finish(common_.get());
}

kernels::SupernodalFactorView CholmodShiftInvert::supernodal_view() const {
  if (factor_ == nullptr || !factor_->is_super || !factor_->is_ll) {
    throw Error("modal solver: the CHOLMOD factor is not supernodal LL^T (a device copy needs "
                "one)");
  }
  kernels::SupernodalFactorView view;
  view.n = static_cast<std::int64_t>(factor_->n);
  view.n_supernodes = static_cast<std::int64_t>(factor_->nsuper);
  view.super = static_cast<const std::int64_t*>(factor_->super);
  view.pi = static_cast<const std::int64_t*>(factor_->pi);
  view.px = static_cast<const std::int64_t*>(factor_->px);
  view.rows = static_cast<const std::int64_t*>(factor_->s);
  view.values = static_cast<const double*>(factor_->x);
  view.perm = static_cast<const std::int64_t*>(factor_->Perm);
  return view;
}

bool CholmodShiftInvert::try_factorise(SparseMatrix& target) {
  cholmod_sparse view = view_of(target);
  const int ok = cholmod_l_factorize(&view, factor_, common_.get());
  return ok && common_->status == CHOLMOD_OK && factor_->minor == factor_->n;
}

void CholmodShiftInvert::raw_solve(const double* in, double* out, Eigen::Index ncols) const {
  if (threaded_) {
    std::memcpy(out, in, sizeof(double) * static_cast<std::size_t>(rows() * ncols));
    threaded_->solve(out, rows(), ncols);
    return;
  }
  cholmod_dense rhs{};
  rhs.nrow = static_cast<std::size_t>(rows());
  rhs.ncol = static_cast<std::size_t>(ncols);
  rhs.nzmax = rhs.nrow * rhs.ncol;
  rhs.d = rhs.nrow;
  rhs.x = const_cast<double*>(in);  // read only: CHOLMOD takes B as input
  rhs.xtype = CHOLMOD_REAL;
  rhs.dtype = CHOLMOD_DOUBLE;
  if (!cholmod_l_solve2(CHOLMOD_A, factor_, &rhs, nullptr, &x_, nullptr, &y_workspace_,
                        &e_workspace_, common_.get())) {
    throw NumericalError(fmt::format("modal solver: CHOLMOD solve failed: {} (n = {}, {} "
                                     "right-hand sides, {})",
                                     cholmod_status_text(common_->status), rows(), ncols,
                                     describe_shift(sigma_)));
  }
  std::memcpy(out, x_->x, sizeof(double) * static_cast<std::size_t>(rows() * ncols));
}

// Iterative refinement against the unregularised A: y += (A + delta I)^{-1} (x - A y). The error
// is multiplied by delta (A + delta I)^{-1} per step: it vanishes on every component where A is
// not singular and stays put (does not grow) on the common null space of K and M, which the
// M-inner-product iteration never sees.
void CholmodShiftInvert::solve(const double* in, double* out, Eigen::Index ncols) const {
  raw_solve(in, out, ncols);
  if (regularisation_ <= 0.0) return;
  const Eigen::Index n = rows();
  Eigen::Map<const Eigen::MatrixXd> x(in, n, ncols);
  Eigen::Map<Eigen::MatrixXd> y(out, n, ncols);
  Eigen::MatrixXd residual(n, ncols), correction(n, ncols);
  const Eigen::VectorXd x_norms = x.colwise().norm().transpose();
  double previous = std::numeric_limits<double>::infinity();
  for (int step = 0; step < 30; ++step) {
    residual.noalias() = x - shifted_.selfadjointView<Eigen::Lower>() * y;
    double worst = 0.0;  // largest relative residual over the columns
    for (Eigen::Index j = 0; j < ncols; ++j) {
      if (x_norms[j] > 0.0) worst = std::max(worst, residual.col(j).norm() / x_norms[j]);
    }
    // Stop at round-off level, or when a step no longer reduces the residual.
    if (worst <= 1e-15 || worst >= previous) break;
    previous = worst;
    raw_solve(residual.data(), correction.data(), ncols);
    y += correction;
  }
}

// ---- MUMPS --------------------------------------------------------------------------------

struct MumpsShiftInvert::State {
  DMUMPS_STRUC_C id{};
  bool initialised = false;
  SparseMatrix shifted;
  std::vector<MUMPS_INT> rows, cols;
  double sigma = 0.0;
  double factor_seconds = 0.0;
  std::int64_t factor_nonzeros = 0;
  std::int64_t below = 0;
  std::vector<double> buffer;

  ~State() {
    if (initialised) {
      id.job = -2;
      detail::sequential_dmumps()(&id);
    }
  }
};

MumpsShiftInvert::MumpsShiftInvert(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                   double sigma, const std::vector<std::int64_t>* ordering)
    : state_(std::make_unique<State>()) {
  const auto start = Clock::now();
  if (stiffness.rows() >= std::numeric_limits<MUMPS_INT>::max()) {
    throw InputError(fmt::format("modal solver: {} equations exceed MUMPS's 32-bit indices",
                                 stiffness.rows()));
  }
  State& s = *state_;
  s.sigma = sigma;
  s.shifted = stiffness - sigma * mass;
  s.shifted.makeCompressed();
  const auto nnz = static_cast<std::size_t>(s.shifted.nonZeros());
  s.rows.resize(nnz);
  s.cols.resize(nnz);
  for (Eigen::Index j = 0; j < s.shifted.outerSize(); ++j) {
    for (auto k = s.shifted.outerIndexPtr()[j]; k < s.shifted.outerIndexPtr()[j + 1]; ++k) {
      s.rows[k] = static_cast<MUMPS_INT>(s.shifted.innerIndexPtr()[k] + 1);
      s.cols[k] = static_cast<MUMPS_INT>(j + 1);
    }
  }
  auto& id = s.id;
  id.job = -1;  // initialise
  id.par = 1;   // the host takes part in the factorisation
  id.sym = 2;   // general symmetric: LDL^T with pivoting
  id.comm_fortran = -987654;  // MUMPS's "use MPI_COMM_WORLD" (the sequential stub)
  detail::sequential_dmumps()(&id);
  if (id.infog[0] < 0) {
    throw NumericalError(fmt::format("modal solver: MUMPS initialisation failed (INFOG(1) = {})",
                                     id.infog[0]));
  }
  s.initialised = true;
  id.icntl[0] = -1;  // no error, diagnostic, global or statistics output
  id.icntl[1] = -1;
  id.icntl[2] = -1;
  id.icntl[3] = 0;
  id.icntl[6] = 7;   // ICNTL(7): automatic fill-reducing ordering
  id.icntl[12] = 1;  // ICNTL(13): no ScaLAPACK root, so INFOG(12) counts every negative pivot
  id.icntl[23] = 1;  // ICNTL(24): detect null pivots (INFOG(28)): sigma on an eigenvalue
  id.n = static_cast<MUMPS_INT>(s.shifted.rows());
  id.nnz = static_cast<MUMPS_INT8>(nnz);
  id.irn = s.rows.data();
  id.jcn = s.cols.data();
  id.a = s.shifted.valuePtr();
  std::vector<MUMPS_INT> permutation;
  if (ordering != nullptr && static_cast<Eigen::Index>(ordering->size()) == s.shifted.rows()) {
    permutation.resize(ordering->size());
    for (std::size_t k = 0; k < ordering->size(); ++k) {
      permutation[static_cast<std::size_t>((*ordering)[k])] = static_cast<MUMPS_INT>(k + 1);
    }
    id.perm_in = permutation.data();
    id.icntl[6] = 1;  // ICNTL(7) = 1: the ordering given in PERM_IN
  }
  for (int relaxation : {25, 100, 400}) {
    id.icntl[13] = relaxation;  // ICNTL(14): % increase of the estimated working space
    id.job = 4;                 // analysis + factorisation
    detail::sequential_dmumps()(&id);
    if (id.infog[0] != -9 && id.infog[0] != -8) break;
  }
  if (id.infog[0] < 0) {
    throw NumericalError(fmt::format("modal solver: LDL^T factorisation of K - sigma M failed "
                                     "(MUMPS INFOG(1) = {}, INFOG(2) = {}; n = {}, {})",
                                     id.infog[0], id.infog[1], id.n, describe_shift(sigma)));
  }
  if (id.infog[27] > 0) {  // INFOG(28): null pivots
    throw NumericalError(fmt::format("modal solver: K - sigma M is singular at {} ({} null "
                                     "pivots): the shift lies on an eigenvalue",
                                     describe_shift(sigma), id.infog[27]));
  }
  s.below = id.infog[11];  // INFOG(12): negative pivots = eigenvalues below sigma
  // INFOG(29): entries in the factors (negative: in millions).
  s.factor_nonzeros = id.infog[28] >= 0 ? id.infog[28] : -static_cast<std::int64_t>(id.infog[28]) * 1000000;
  s.factor_seconds = seconds_since(start);
  spdlog::info("modal: LDL^T of K - sigma M (n = {}, {} entries in the factors, {} eigenvalues "
               "below the shift, {}) in {:.3f} s",
               id.n, s.factor_nonzeros, s.below, describe_shift(sigma), s.factor_seconds);
}

MumpsShiftInvert::~MumpsShiftInvert() = default;

Eigen::Index MumpsShiftInvert::rows() const { return state_->shifted.rows(); }
double MumpsShiftInvert::sigma() const { return state_->sigma; }
double MumpsShiftInvert::factor_seconds() const { return state_->factor_seconds; }
std::int64_t MumpsShiftInvert::factor_nonzeros() const { return state_->factor_nonzeros; }
std::int64_t MumpsShiftInvert::count_below() const { return state_->below; }

void MumpsShiftInvert::solve(const double* in, double* out, Eigen::Index ncols) const {
  State& s = *state_;
  const auto n = static_cast<std::size_t>(rows());
  std::memcpy(out, in, sizeof(double) * n * static_cast<std::size_t>(ncols));
  auto& id = s.id;
  id.icntl[19] = 0;  // ICNTL(20): dense right-hand sides
  id.icntl[20] = 0;  // ICNTL(21): solution centralised, overwriting rhs
  id.nrhs = static_cast<MUMPS_INT>(ncols);
  id.lrhs = static_cast<MUMPS_INT>(n);
  id.rhs = out;
  id.job = 3;
  detail::sequential_dmumps()(&id);
  if (id.infog[0] < 0) {
    throw NumericalError(fmt::format("modal solver: MUMPS solve failed (INFOG(1) = {}, INFOG(2) "
                                     "= {}; n = {}, {})",
                                     id.infog[0], id.infog[1], n, describe_shift(s.sigma)));
  }
}

}  // namespace vsense::solvers::detail
