#pragma once
/// @file modal_analysis.hpp
/// @brief The whole modal step on a model: assemble, solve, recover modal stresses, and fill the
/// contents of a modes file.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "vsense/io/modes_file.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/model/model.hpp"
#include "vsense/solvers/modal.hpp"

namespace vsense::solvers {

/// Where the eigen-solve (and the modal stresses) run.
enum class ModalBackend {
  cpu,    ///< block shift-invert Lanczos on a CHOLMOD factor (the reference)
  cuda,   ///< on a CUDA device (dense cuSOLVER for small models, block Lanczos above)
  slepc,  ///< PETSc/SLEPc Krylov-Schur with MUMPS Cholesky, distributed over the MPI ranks
};

/// The eigen-solver of the cuda backend.
enum class DeviceSolver {
  automatic,  ///< dense cuSOLVER up to the device's dense limit, block Lanczos above it
  dense,      ///< dense cuSOLVER (InputError above the limit)
  block,      ///< block shift-invert Lanczos on a CHOLMOD factor copied to the device, any size
};

struct ModalAnalysisOptions {
  ModalBackend backend = ModalBackend::cpu;
  /// cuda: the device (nullptr: CUDA device 0). The eigen-solve is dense (cuSOLVER) for models
  /// up to kernels::cuda::dense_modes_max_equations equations and block Lanczos on a CHOLMOD
  /// factor copied to the device above (see device_solver); the modal stresses are one
  /// cuSPARSE product; the Sturm check stays on the CPU (MUMPS).
  std::shared_ptr<const Executor> executor;
  DeviceSolver device_solver = DeviceSolver::automatic;
  /// cuda: a pencil the dense path cannot factor, or a solve that runs out of device memory, is
  /// solved on the CPU with an info line saying why, instead of failing (`--backend auto`).
  bool cpu_fallback = false;
  int n_modes = 10;  ///< modes wanted (with fmax_hz: the first batch size)
  /// When > 0: return every mode below this frequency (the request grows until one mode above
  /// it is found); n_modes is then the starting size.
  double fmax_hz = 0.0;
  double shift = std::numeric_limits<double>::quiet_NaN();  ///< see ModalOptions::shift
  /// Largest acceptable relative residual; above it the analysis fails (NumericalError).
  double max_residual = 1e-6;
  /// Prove with a Sturm count that no mode is missing below the returned ones.
  bool sturm_check = true;
  EigenMethod method = EigenMethod::block;  ///< see ModalOptions::method
  int block_size = 0;                       ///< see ModalOptions::block_size
  std::string ordering = "auto";            ///< see ModalOptions::ordering
};

/// What the analysis did, for logs and `--json`.
struct ModalAnalysisReport {
  std::string backend;  ///< what solved, e.g. "cuda (dense cuSOLVER) on cuda:0 NVIDIA H100 ..."
  std::int64_t n_equations = 0;
  std::int64_t stiffness_nonzeros = 0;  ///< lower triangle incl. diagonal
  std::int64_t factor_nonzeros = 0;
  double assemble_seconds = 0.0;
  double factor_seconds = 0.0;
  double solve_seconds = 0.0;
  double stress_seconds = 0.0;
  double sturm_seconds = 0.0;
  std::int64_t sturm_count = -1;  ///< eigenvalues below the check's shift (-1: not checked)
  int solves = 0;  ///< eigen-solves run (more than one when fmax_hz grew the request)
  std::string method;          ///< "block", "lanczos" or "dense"
  int block_size = 0;          ///< vectors per block
  std::int64_t vectors_solved = 0;  ///< right-hand sides solved with the factors
  int restarts = 0;
  double operator_seconds = 0.0, orthogonalisation_seconds = 0.0, ritz_seconds = 0.0;
};

/// @brief Lowest modes of the model with mass-normalised shapes on all nodes and nodal modal
/// stresses. The returned data lack units and source hash (the caller knows them).
/// @throws InputError for impossible requests, NumericalError when a check fails.
io::ModesData modal_analysis(const model::Model& model, const ModalAnalysisOptions& options,
                             ModalAnalysisReport* report = nullptr);

}  // namespace vsense::solvers
