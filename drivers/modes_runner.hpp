#pragma once
/// @file modes_runner.hpp
/// @brief The `modes` step from a model file to a modes file, shared by `modes` and `demo`.
#include <string>
#include <vector>

#include "vsense/solvers/modal_analysis.hpp"

namespace vsense::drivers {

struct ModesRequest {
  std::string model_path;
  std::string out_path;
  std::string units = "SI";
  solvers::ModalAnalysisOptions options;
};

struct ModesSummary {
  std::string model_path, out_path;
  std::string xdmf_path;  ///< ParaView companion of out_path (empty without solid cells)
  std::int64_t n_nodes = 0, n_elements = 0;
  std::vector<double> frequencies_hz;
  std::vector<double> residuals;
  solvers::ModalAnalysisReport report;
  double read_seconds = 0.0, write_seconds = 0.0, total_seconds = 0.0;
  long long peak_memory_bytes = 0;
};

/// Reads the model, computes the modes, writes the modes file; logs progress.
ModesSummary run_modes(const ModesRequest& request);

/// One JSON object describing a modes run.
std::string modes_summary_json(const ModesSummary& summary, const std::string& backend);

}  // namespace vsense::drivers
