#pragma once
/// @file modes_stage.hpp
/// @brief The modes stage (`vsense modes`, and the modes step of jobs and the demo): a model
/// file in, a vsense-modes file (+ XDMF for ParaView) out.
#include <cstdint>
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"
#include "vsense/solvers/modal_analysis.hpp"

namespace vsense::jobs {

struct ModesRequest {
  std::string model_path;       ///< .inp model
  std::string out_path;         ///< vsense-modes file
  std::string xdmf_path;        ///< empty: OUT with .xdmf (when the mesh has solid cells); "-": none
  std::string units = "SI";     ///< units the .inp is written in (SI or mm-t-s)
  /// auto|cpu|cuda|cuda:N|slepc; auto: slepc under mpirun with several ranks (when built), else
  /// the device when present and the model within its dense limit, else cpu. cuda solves
  /// densely on the device up to that limit.
  std::string backend = "auto";
  solvers::ModalAnalysisOptions options;
};

struct ModesSummary {
  std::string model_path, out_path;
  std::string xdmf_path;  ///< ParaView companion of out_path (empty without solid cells)
  std::string backend;    ///< what ran, e.g. "cuda (dense cuSOLVER) on cuda:0 ..." or "cpu (...)"
  int ranks = 1;
  std::int64_t n_nodes = 0, n_elements = 0;
  std::vector<double> frequencies_hz;
  std::vector<double> residuals;
  solvers::ModalAnalysisReport report;
  double read_seconds = 0.0, write_seconds = 0.0, total_seconds = 0.0;
  long long peak_memory_bytes = 0;  ///< of rank 0
};

/// @brief Reads the model, computes the modes, writes the modes file; logs progress.
/// Collective over `comm`: on the SLEPc backend every rank takes part in the solve; otherwise the
/// modal solver is serial, so rank 0 computes while the other ranks wait. Rank 0 writes. The summary is complete on rank 0; the others get the paths and ranks.
/// @throws InputError (model, request), NumericalError (a check failed), IoError, NotCompiled
///         (no CUDA in this build, or --backend cuda above the dense limit), DeviceUnavailable,
///         on every rank.
ModesSummary run_modes(const ModesRequest& request, const cluster::Communicator& comm);

/// One-object JSON of a summary (`"command":"modes"`), for `--json` and the job runner.
std::string to_json(const ModesSummary& summary);

}  // namespace vsense::jobs
