#pragma once
/// @file place_stage.hpp
/// @brief The placement stages: one method (`vsense place`) or a comparison of several on the
/// same model (`vsense place-bench`), from a modes file to vsense-placement files (and the
/// comparison's tables). Methods and metrics are solvers/placement's.
#include <cstdint>
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/io/placement_file.hpp"
#include "vsense/solvers/placement.hpp"

namespace vsense::jobs {

/// The problem and criterion options every placement method shares.
struct PlacementSettings {
  std::string modes;                  ///< modes file
  std::string backend = "auto";       ///< auto|cpu|cuda
  std::string candidates, targets;    ///< "" = surface nodes / all nodes
  std::vector<std::string> exclude;   ///< NSETs or node-list files
  std::string weighting = "auto";     ///< auto|none|displacement
  std::size_t sensors = 0;            ///< triaxial sensors
  std::size_t n_modes = 0;            ///< use the first K flexible modes (0 = all)
  bool skip_rigid = true;
  double rigid_hz = 0.01;
  double min_distance = 0.0;          ///< model length units
  double weight_exponent = 3.0;
  double snr = 100.0;
  double correlation_length = 0.0;    ///< model length units; 0 = uncorrelated
  double efi_fraction = -1.0;         ///< < 0: the 2.5/5/10 % schedule
  std::size_t scoring_chunk = 0;      ///< candidates per scoring GEMM; 0: the backend's default
};

struct PlaceSummary {
  std::string out_path, method, backend, criterion_name;
  std::size_t n_sensors = 0, n_candidates = 0, n_modes = 0;
  double criterion = 0.0;
  double phase1_criterion = 0.0;  ///< two-phase only (NaN otherwise)
  std::size_t n_exchanges = 0, scoring_passes = 0;
  std::vector<std::int64_t> node_ids;
  std::vector<std::string> warnings;
  double placement_seconds = 0.0, total_seconds = 0.0;
  long long peak_memory_bytes = 0;
};

/// @brief One method: reads the modes, places, writes `out_path` (vsense-placement).
/// Serial on rank 0 (the scoring is partition-invariant, so ranks may share the candidates in
/// a later version without changing the result); the others wait. The summary is complete on
/// rank 0. @throws InputError, IoError, NotCompiled/DeviceUnavailable (backend), on every rank.
PlaceSummary run_place(const PlacementSettings& settings, const std::string& method,
                       const std::string& out_path, const cluster::Communicator& comm);

struct PlaceBenchRequest {
  PlacementSettings settings;
  std::vector<std::string> methods;  ///< method names; {"all"} = every method
  std::string out_dir;               ///< place_bench.md/.csv, layouts.csv, candidates.csv,
                                     ///< placement_<method>.h5 (and plots)
  std::size_t samples = 200;         ///< Monte-Carlo samples of the metrics
  std::uint64_t seed = 1;
  bool plots = false;                ///< layouts.png, metrics.png via benchmarks/place_plots.py
  std::string plot_script;           ///< place_plots.py (empty: looked for)
};

struct PlaceBenchRow {
  std::string method;
  double seconds = 0.0;
  std::size_t scoring_passes = 0;
  double criterion = 0.0;
  std::vector<std::int64_t> node_ids;
  solvers::placement::Metrics metrics;
};

struct PlaceBenchSummary {
  std::string out_dir, backend, table_markdown;
  std::size_t n_candidates = 0, n_modes = 0, n_sensors = 0;
  bool plotted = false;
  std::vector<PlaceBenchRow> rows;
  std::vector<std::string> files;  ///< what was written, relative to out_dir
  double total_seconds = 0.0;
  long long peak_memory_bytes = 0;
};

/// @brief Several methods on one model, compared (metrics of solvers::placement::evaluate).
/// Serial on rank 0 as run_place. @throws as run_place.
PlaceBenchSummary run_place_bench(const PlaceBenchRequest& request,
                                  const cluster::Communicator& comm);

/// One-object JSON summaries (`"command":"place"` / `"command":"place-bench"`).
std::string to_json(const PlaceSummary& summary);
std::string to_json(const PlaceBenchSummary& summary);

/// The method names of a list ("all" = every method, else comma-separated names).
/// @throws InputError naming an unknown method.
std::vector<std::string> parse_method_list(const std::string& list);

}  // namespace vsense::jobs
