#pragma once
/// @file slepc.hpp
/// @brief The distributed modal backend: PETSc/SLEPc Krylov-Schur with shift-and-invert on a
/// MUMPS Cholesky factor, over all MPI ranks (`vsense modes --backend slepc`, and `auto` under
/// mpirun with several ranks). Same outputs and checks as the CPU path: mass-normalised modes,
/// residuals, M-orthonormality, and a Sturm count from the inertia of a distributed MUMPS
/// LDL^T factorisation of K - sigma M.
///
/// PETSc lives in a plugin (libvsense_slepc.so, loaded on first use) so that its MPI-parallel
/// MUMPS never meets the sequential MUMPS of the CPU path's Sturm counts. The plugin is looked
/// for at $VSENSE_SLEPC_PLUGIN, next to the program (../lib/), then in the build tree.
#include <exception>
#include <functional>
#include <string>

#include "vsense/io/modes_file.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/model.hpp"
#include "vsense/solvers/modal.hpp"
#include "vsense/solvers/modal_analysis.hpp"

namespace vsense::solvers {

/// Whether this build has the SLEPc backend (VSENSE_WITH_SLEPC); loading can still fail.
bool slepc_compiled() noexcept;

/// @brief Loads the plugin and initialises PETSc (MPI too, when the program did not): collective
/// over MPI_COMM_WORLD. "SLEPc 3.18.2, PETSc 3.18.4, MUMPS Cholesky, 3 ranks".
/// @throws NotCompiled naming why the backend is not available.
std::string slepc_description();

/// How the ranks of a distributed analysis act together, in terms that keep this library free
/// of MPI (jobs pass cluster::Communicator's).
struct Collective {
  bool root = true;  ///< rank 0: holds the model, receives the modes
  /// Called on every rank after a step only some ranks ran, with this rank's failure (or
  /// nullptr): rethrows on every rank when any rank failed.
  std::function<void(std::exception_ptr)> agree = [](std::exception_ptr failure) {
    if (failure) std::rethrow_exception(failure);
  };
};

/// @brief solve_lowest_modes() on the SLEPc backend. Collective; the matrices (lower triangles)
/// on the root only (nullptr elsewhere). options: n_modes, upper (every mode below it, counted
/// first), shift (NaN: automatic), tolerance, max_iterations, subspace_size. With `certify`,
/// the Sturm count (check_completeness) proves the result complete and is recorded in
/// `certified`. Eigenvalues on every rank; vectors (mass-normalised), residuals on the root.
/// @throws InputError, NumericalError (a check failed), NotCompiled, on every rank.
ModalResult solve_lowest_modes_slepc(const model::SparseMatrix* stiffness,
                                     const model::SparseMatrix* mass, const ModalOptions& options,
                                     bool certify, const Collective& collective = {});

/// @brief The modal analysis of modal_analysis() on the SLEPc backend. Collective: every rank
/// calls it; `model` is read on the root only (nullptr elsewhere). The root assembles, every
/// rank factors and iterates on its block of rows, the root recovers stresses and gets the
/// data (the other ranks get empty data).
/// @throws as modal_analysis(), on every rank; NotCompiled without the backend.
io::ModesData modal_analysis_slepc(const model::Model* model,
                                   const ModalAnalysisOptions& options,
                                   const Collective& collective,
                                   ModalAnalysisReport* report = nullptr);

}  // namespace vsense::solvers
