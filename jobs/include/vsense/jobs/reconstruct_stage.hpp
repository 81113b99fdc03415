#pragma once
/// @file reconstruct_stage.hpp
/// @brief The reconstruction stage (`vsense reconstruct`): measured accelerations of a
/// vsense-archive and the modes of the model in, displacements, stresses and fatigue damage at
/// the output nodes out (vsense-results file + XDMF), streamed, checkpointed, MPI-parallel in
/// time. The numerics live in solvers/ (vsense/solvers/reconstruction.hpp); this stage reads
/// the inputs, shares the work between ranks, writes the outputs and the checkpoints.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"

namespace vsense::jobs {

struct ReconstructRequest {
  std::string modes_path;                  ///< vsense-modes file
  std::vector<std::string> archive_paths;  ///< vsense-archive files (any order)
  std::string placement_path;  ///< optional: use only the channels on these sensor nodes
  std::string out_path;        ///< vsense-results file
  std::string xdmf_path;       ///< empty: OUT with .xdmf next to it; "-": none
  std::string nodes;           ///< output nodes: NSET or node-list file; empty: all nodes

  // Modes and estimation.
  int n_modes = 0;                 ///< use the lowest n flexible modes; 0: all
  double rigid_hz = 0.01;          ///< modes below are rigid-body modes and left out
  double regularisation = 0.0;     ///< Tikhonov weight relative to the mean of diag(A^T A)
  std::string units;               ///< model units; empty: those of the modes file

  // Integration band and statistics.
  double band_low_hz = std::numeric_limits<double>::quiet_NaN();   ///< NaN: automatic
  double band_high_hz = std::numeric_limits<double>::quiet_NaN();  ///< NaN: Nyquist
  double settle_s = std::numeric_limits<double>::quiet_NaN();      ///< NaN: automatic

  // Fatigue.
  std::string sn_curve_path;                     ///< empty: no damage
  std::string equivalent = "signed-von-mises";   ///< signed-von-mises|von-mises|max-principal
  std::string residue = "half-cycles";           ///< half-cycles|closed|discard
  double equivalent_cycles = 2.0e6;              ///< N_eq of the damage-equivalent range

  // Archive handling.
  std::string gaps = "split";            ///< split|error: what a gap or overlap between files does
  std::string unobservable = "exclude";  ///< exclude|error: samples whose live channels cannot
                                         ///< identify the modes (e.g. all channels dropped)

  // Outputs, backend, checkpoints.
  bool history = false;                 ///< also write q(t), u(t), sigma(t) at the output nodes
  std::string backend = "auto";         ///< auto|cpu|cuda
  bool resume = false;                  ///< continue from the checkpoint of a killed run
  double checkpoint_interval_s = 60.0;  ///< wall-clock seconds between checkpoints; 0: none
  std::int64_t block_samples = 0;       ///< FFT length of a block (a power of two); 0: automatic
};

struct ReconstructSummary {
  std::string out_path, xdmf_path;
  std::string backend;      ///< what ran ("cpu", "cuda:0 ...")
  int ranks = 1;
  std::int64_t n_samples = 0;       ///< over all segments
  std::int64_t n_segments = 0;      ///< continuous segments
  std::int64_t n_channels = 0;      ///< channels used
  std::int64_t n_modes = 0;         ///< modes used
  std::int64_t n_nodes = 0;         ///< output nodes
  double sample_rate_hz = 0.0;
  double band_low_hz = 0.0, band_high_hz = 0.0, settle_s = 0.0;
  std::int64_t dropout_samples = 0;       ///< channel-samples that were NaN
  std::int64_t channel_set_changes = 0;   ///< times the expansion was re-derived
  std::int64_t excluded_samples = 0;      ///< samples left out of the statistics
  double channel_noise_rms = 0.0;         ///< estimated from the fit's residual (NaN: none)
  double von_mises_max = 0.0;             ///< over all output nodes, model stress units
  std::int64_t von_mises_max_node = -1;
  double damage_max = 0.0;                ///< Miner sum (0 without an S-N curve)
  std::int64_t damage_max_node = -1;
  bool resumed = false;
  double seconds = 0.0;                   ///< whole stage, wall clock
  double node_samples_per_second = 0.0;   ///< n_nodes * n_samples / processing seconds
  long long peak_memory_bytes = 0;        ///< of rank 0
};

/// @brief Runs the stage on every rank of `comm` (collective): each rank reconstructs a share
/// of the archive's time blocks; rank 0 merges the fatigue states exactly and writes the
/// results, so that the output does not depend on the number of ranks.
/// @throws InputError for bad inputs or requests (on every rank, agreed), IoError,
///         NumericalError, NotCompiled / DeviceUnavailable for an unavailable backend.
ReconstructSummary run_reconstruct(const ReconstructRequest& request,
                                   const cluster::Communicator& comm);

/// One-object JSON of a summary (for `--json` and the job runner).
std::string to_json(const ReconstructSummary& summary);

}  // namespace vsense::jobs
