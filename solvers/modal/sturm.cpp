#include "vsense/solvers/sturm.hpp"

#include "sequential_mumps.hpp"
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "vsense/kernels/errors.hpp"

namespace vsense::solvers {

namespace {

/// RAII for one sequential MUMPS instance (symmetric indefinite LDL^T).
class MumpsLdlt {
public:
  MumpsLdlt() {
    id_.job = -1;  // initialise
    id_.par = 1;   // the host takes part in the factorisation
    id_.sym = 2;   // general symmetric: LDL^T with pivoting
    id_.comm_fortran = -987654;  // MUMPS's "use MPI_COMM_WORLD" (the sequential stub)
    detail::sequential_dmumps()(&id_);
    if (id_.infog[0] < 0) {
      throw NumericalError(fmt::format("Sturm count: MUMPS initialisation failed (INFOG(1) = {})",
                                       id_.infog[0]));
    }
    initialised_ = true;
    id_.icntl[0] = -1;  // no error, diagnostic, global or statistics output
    id_.icntl[1] = -1;
    id_.icntl[2] = -1;
    id_.icntl[3] = 0;
    id_.icntl[6] = 7;   // ICNTL(7): automatic fill-reducing ordering
    id_.icntl[12] = 1;  // ICNTL(13): no ScaLAPACK root, so INFOG(12) counts every negative pivot
    id_.icntl[23] = 1;  // ICNTL(24): detect null pivots (INFOG(28)): sigma on an eigenvalue
  }
  MumpsLdlt(const MumpsLdlt&) = delete;
  MumpsLdlt& operator=(const MumpsLdlt&) = delete;
  ~MumpsLdlt() {
    if (initialised_) {
      id_.job = -2;
      detail::sequential_dmumps()(&id_);
    }
  }
  DMUMPS_STRUC_C& get() noexcept { return id_; }

private:
  DMUMPS_STRUC_C id_{};
  bool initialised_ = false;
};

}  // namespace

SturmCount sturm_count(const model::SparseMatrix& stiffness, const model::SparseMatrix& mass,
                       double sigma, const std::vector<std::int64_t>* ordering) {
  const auto start = std::chrono::steady_clock::now();
  if (stiffness.rows() != mass.rows() || stiffness.cols() != mass.cols()) {
    throw InputError(fmt::format("K is {}x{} but M is {}x{}", stiffness.rows(), stiffness.cols(),
                                 mass.rows(), mass.cols()));
  }
  if (stiffness.rows() >= std::numeric_limits<MUMPS_INT>::max()) {
    throw InputError(fmt::format("Sturm count: {} equations exceed MUMPS's 32-bit indices",
                                 stiffness.rows()));
  }
  // K - sigma M as 1-based coordinates of its lower triangle (MUMPS's symmetric input).
  model::SparseMatrix shifted = stiffness - sigma * mass;
  shifted.makeCompressed();
  const auto nnz = static_cast<std::size_t>(shifted.nonZeros());
  std::vector<MUMPS_INT> rows(nnz), cols(nnz);
  for (Eigen::Index j = 0; j < shifted.outerSize(); ++j) {
    for (auto k = shifted.outerIndexPtr()[j]; k < shifted.outerIndexPtr()[j + 1]; ++k) {
      rows[k] = static_cast<MUMPS_INT>(shifted.innerIndexPtr()[k] + 1);
      cols[k] = static_cast<MUMPS_INT>(j + 1);
    }
  }

  MumpsLdlt mumps;
  auto& id = mumps.get();
  id.n = static_cast<MUMPS_INT>(shifted.rows());
  id.nnz = static_cast<MUMPS_INT8>(nnz);
  id.irn = rows.data();
  id.jcn = cols.data();
  id.a = shifted.valuePtr();
  // A fill-reducing ordering computed before (the nested dissection of the eigen-solve's
  // Cholesky factor of K - sigma0 M, same sparsity pattern) spares MUMPS its own ordering.
  std::vector<MUMPS_INT> permutation;
  if (ordering != nullptr && static_cast<Eigen::Index>(ordering->size()) == shifted.rows()) {
    permutation.resize(ordering->size());
    for (std::size_t k = 0; k < ordering->size(); ++k) {
      permutation[static_cast<std::size_t>((*ordering)[k])] = static_cast<MUMPS_INT>(k + 1);
    }
    id.perm_in = permutation.data();
    id.icntl[6] = 1;  // ICNTL(7) = 1: the ordering given in PERM_IN
  }
  id.icntl[30] = 1;  // ICNTL(31) = 1: factors not kept (only the inertia is needed)
  // Analysis, then factorisation; when MUMPS's workspace estimate is too small (INFO(1) = -9),
  // retry with more relaxation, as its manual advises.
  const auto analysis_start = std::chrono::steady_clock::now();
  id.job = 1;
  detail::sequential_dmumps()(&id);
  const double analysis_seconds = std::chrono::duration<double>(
      std::chrono::steady_clock::now() - analysis_start).count();
  if (id.infog[0] >= 0) {
    for (int relaxation : {25, 100, 400}) {
      id.icntl[13] = relaxation;  // ICNTL(14): % increase of the estimated working space
      id.job = 2;
      detail::sequential_dmumps()(&id);
      if (id.infog[0] != -9 && id.infog[0] != -8) break;
      spdlog::debug("Sturm count: MUMPS workspace too small at {}%, retrying", relaxation);
    }
  }
  spdlog::debug("Sturm count: MUMPS analysis {:.3f} s ({} ordering), factorisation {:.3f} s",
                analysis_seconds, permutation.empty() ? "own" : "given",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - analysis_start)
                        .count() - analysis_seconds);
  if (id.infog[0] < 0) {
    throw NumericalError(fmt::format(
        "Sturm count: LDL^T factorisation of K - sigma M failed at sigma = {:.10g} (MUMPS "
        "INFOG(1) = {}, INFOG(2) = {})",
        sigma, id.infog[0], id.infog[1]));
  }
  SturmCount result;
  result.sigma = sigma;
  result.below = id.infog[11];  // INFOG(12): negative pivots = eigenvalues below sigma
  const MUMPS_INT null_pivots = id.infog[27];  // INFOG(28)
  if (null_pivots > 0) {
    throw NumericalError(fmt::format(
        "Sturm count: K - sigma M is singular at sigma = {:.10g} (rad/s)^2 ({} null pivots); "
        "sigma lies on an eigenvalue",
        sigma, null_pivots));
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("Sturm count at sigma = {:.6g}: {} eigenvalues below ({:.2f} s)", sigma,
                result.below, result.seconds);
  return result;
}

SturmCount check_completeness(const model::SparseMatrix& stiffness,
                              const model::SparseMatrix& mass, const double* eigenvalues,
                              std::int64_t n_eigenvalues,
                              const std::vector<std::int64_t>* ordering) {
  return check_completeness(eigenvalues, n_eigenvalues, [&](double sigma) {
    return sturm_count(stiffness, mass, sigma, ordering);
  });
}

SturmCount check_completeness(const double* eigenvalues, std::int64_t n_eigenvalues,
                              const std::function<SturmCount(double sigma)>& count_below) {
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
    count = count_below(sigma);
  } catch (const NumericalError&) {
    // sigma landed on an eigenvalue (to working precision): step a little further down.
    sigma = top - 1e-5 * scale;
    returned_below = 0;
    for (std::int64_t i = 0; i < n_eigenvalues; ++i) returned_below += eigenvalues[i] < sigma;
    count = count_below(sigma);
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
