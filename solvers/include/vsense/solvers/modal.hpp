#pragma once
/// @file modal.hpp
/// @brief Lowest modes of K x = lambda M x (CPU path: block shift-invert Lanczos on a CHOLMOD
/// supernodal factor; the single-vector Spectra Lanczos stays selectable).
#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "vsense/model/assembly.hpp"

namespace vsense::solvers {

/// The eigen-iteration of the CPU path.
enum class EigenMethod {
  /// Block shift-invert Lanczos with thick restart (Krylov-Schur form), full blocked
  /// M-reorthogonalisation and locking: solves with the factor for a block of vectors at once.
  block,
  /// Spectra's single-vector implicitly restarted Lanczos (one solve per vector), with a
  /// deflated pass for missed copies of repeated eigenvalues. The reference the block method
  /// replaced.
  lanczos,
};

/// One end of a certified slice of the spectrum: exactly `below` eigenvalues lie below `sigma`
/// (the inertia of an LDL^T factorisation of K - sigma M), and all of them were found.
struct SliceBound {
  double sigma = 0.0;       ///< (rad/s)^2
  std::int64_t below = 0;
};

struct ModalOptions {
  int n_modes = 10;
  /// When finite: every mode with lambda < upper ((rad/s)^2) instead of the lowest n_modes
  /// (block method only). The Sturm count at `upper` tells how many there are up front.
  double upper = std::numeric_limits<double>::infinity();
  /// Spectrum slicing (block method): at most this many modes per shift; a request for more
  /// (n_modes, or the count below `upper`) is cut into slices, each solved around its own shift
  /// (LDL^T of K - sigma_i M) and certified by the Sturm counts at its ends. 0 = automatic
  /// (default_slice_modes).
  int slice_modes = 0;
  EigenMethod method = EigenMethod::block;
  /// Vectors per block of the block method; 0 = automatic (see default_block_size).
  int block_size = 0;
  /// Fill-reducing ordering of the CHOLMOD factor: "auto" (CHOLMOD's default: AMD, METIS
  /// tried when AMD fills badly), "amd", "metis", "nesdis".
  std::string ordering = "auto";
  /// Spectral shift sigma in (rad/s)^2; NaN = automatic (a small negative shift, so that
  /// K - sigma M is positive definite even for free-free models).
  double shift = std::numeric_limits<double>::quiet_NaN();
  double tolerance = 1e-12;   ///< relative tolerance on the Ritz values
  int max_iterations = 1000;  ///< restarts of the Lanczos process
  int subspace_size = 0;      ///< Lanczos basis size (vectors); 0 = automatic
  /// After convergence, run short Lanczos passes on the M-orthogonal complement of the modes
  /// found: an eigenvalue found there below the highest returned one is a missed copy of a
  /// repeated eigenvalue (single-vector Lanczos finds extra copies only through round-off) and is
  /// added. Costs one short pass (about 20-40 solves) when nothing was missed. The block method
  /// finds up to block_size copies by itself and runs the pass only when it found a cluster of
  /// block_size or more copies.
  bool deflation_check = true;
};

struct ModalResult {
  Eigen::VectorXd eigenvalues;  ///< [m] ascending, (rad/s)^2
  Eigen::MatrixXd vectors;      ///< [n_equations, m] mass-normalised
  Eigen::VectorXd residuals;    ///< [m] ||K x - lambda M x|| / ||K x||
  double factor_seconds = 0.0;  ///< CPU path: Sturm-count factorisations of slicing included
  double solve_seconds = 0.0;
  double sturm_seconds = 0.0;   ///< SLEPc backend: its distributed Sturm counts
  std::int64_t factor_nonzeros = 0;
  int iterations = 0;  ///< restarts, all passes
  /// > 0 when K - sigma M was singular (K and M share null vectors) and was factorised with this
  /// diagonal shift, every solve being refined against the true matrix.
  double regularisation = 0.0;
  int recovered_modes = 0;      ///< missed copies of repeated eigenvalues found by the check
  std::string method = "block";  ///< "block", "lanczos" or "dense"
  int block_size = 0;            ///< vectors per block (1 for single-vector Lanczos)
  std::int64_t solves = 0;       ///< right-hand sides solved with the factor (block method)
  double operator_seconds = 0.0;           ///< of solve_seconds: solves with the factor
  double orthogonalisation_seconds = 0.0;  ///< of solve_seconds: M-products, Gram-Schmidt
  double ritz_seconds = 0.0;               ///< of solve_seconds: projected problems, restarts
  /// The fill-reducing order of the factor [n] (pivot k is equation ordering[k]); empty for the
  /// dense path. The Sturm count reuses it (same sparsity pattern).
  std::vector<std::int64_t> ordering;
  /// Slice ends whose Sturm counts certified the result (ascending; empty when the result still
  /// needs a completeness check). Every eigenvalue below the last one was found; the result
  /// holds all of them (`upper` requests) or the lowest n_modes of them.
  std::vector<SliceBound> certified;
  int slices = 1;  ///< shifts used (spectrum slicing)
};

/// Modes per slice when ModalOptions::slice_modes is 0, before anything is factorised: a
/// request for more goes to spectrum slicing (whose first factor then sizes the slices by
/// slice_modes_in_memory). At most 300; fewer where the basis of a slice would exceed 4 GiB.
int default_slice_modes(std::int64_t n_equations);

/// Modes per slice when ModalOptions::slice_modes is 0, with the first factor held and
/// `free_bytes` of host memory left (CpuExecutor::free_bytes): as many as a block basis in
/// 3/4 of them carries (about 4 n doubles per mode: the Lanczos vectors and M times them),
/// from 40 to 300. `free_bytes` = 0 (unknown): default_slice_modes.
int slice_modes_in_memory(std::int64_t n_equations, std::size_t free_bytes);

/// The block size the block method uses when ModalOptions::block_size is 0.
int default_block_size(std::int64_t n_equations, int n_modes);

/// @brief Lowest `n_modes` eigenpairs.
/// @param[in] stiffness, mass lower triangles (model::SparseMatrix convention)
/// @throws InputError for an impossible request (more modes than equations),
///         NumericalError when the factorisation or the iteration fails.
ModalResult solve_lowest_modes(const model::SparseMatrix& stiffness,
                               const model::SparseMatrix& mass, const ModalOptions& options);

}  // namespace vsense::solvers
