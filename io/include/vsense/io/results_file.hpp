#pragma once
/// @file results_file.hpp
/// @brief The reconstruction results file of the contract (`format = "vsense-results"`,
/// version 1).
///
/// ```
/// /                          format, format_version, units, created_by, created_at,
///                            source_sha256 (of the modes file and the archive files, in that
///                            order), modes_file
/// /results                   attrs: settle_s, sample_rate_hz, start_time, n_samples,
///                            band_low_hz, band_high_hz, equivalent_stress, residue, ... (below)
/// /results/node_ids          int64   [p]     output nodes
/// /results/coordinates       float64 [p, 3]
/// /results/von_mises_max     float64 [p]     over the archive, settling intervals excluded
/// /results/von_mises_max_time_s float64 [p]  seconds from the archive's first sample (NaN: none)
/// /results/damage            float64 [p]     Miner sum (with an S-N curve)
/// /results/damage_equivalent_range float64 [p] for equivalent_cycles cycles (with an S-N curve)
/// /results/cycles            float64 [p]     rainflow cycles counted (half cycles count 0.5)
/// /results/von_mises_noise_rms float64 [p]   RMS von Mises of the sensor noise in the estimated
///                            stress (attrs channel_noise_rms, channel_noise_dof on /results)
/// /results/mode_indices      int64   [m]     zero-based, into the modes file
/// /results/frequencies_hz    float64 [m]
/// /results/channels/{name, node_id, direction, unit, dropout_samples}  the channels used
/// /results/segments/{start_time, n_samples, first_sample}  continuous segments, time order
/// /results/modal_coordinates float64 [n_samples, m]     (with --history)
/// /results/displacement      float32 [n_samples, p, 3]  (with --history)
/// /results/stress            float32 [n_samples, p, 6]  (with --history) xx yy zz xy yz zx
/// /mesh/coordinates, /mesh/topology  (when the output nodes are all nodes: for XDMF)
/// ```
/// The history datasets are contiguous and allocated when the file is created; their rows are
/// written with pwrite() at known offsets (any MPI rank, any order), so an interrupted run
/// leaves a file whose metadata is intact and a resumed run fills in the rest.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vsense::io {

struct ResultsHeader {
  std::string units = "SI";
  std::string source_sha256;
  std::string modes_file;
  std::vector<std::string> archive_files;  ///< in time order
  double sample_rate_hz = 0.0;
  std::string start_time;                   ///< of the first sample
  std::int64_t n_samples = 0;               ///< over all segments
  std::vector<std::int64_t> node_ids;       ///< [p]
  std::vector<double> coordinates;          ///< [p, 3]
  std::vector<std::int64_t> mode_indices;   ///< [m]
  std::vector<double> frequencies_hz;       ///< [m]
  std::vector<std::string> channel_names;
  std::vector<std::int64_t> channel_nodes;
  std::vector<double> channel_directions;   ///< [n_channels, 3]
  std::vector<std::string> channel_units;
  std::vector<std::string> segment_start_times;
  std::vector<std::int64_t> segment_samples, segment_first_sample;
  std::vector<std::int64_t> topology;       ///< optional (all nodes output): XDMF Mixed list
  std::int64_t n_cells = 0;
  std::map<std::string, double> attributes;            ///< on /results
  std::map<std::string, std::string> text_attributes;  ///< on /results
  bool history = false;
};

/// Byte offsets of the history datasets' data in the file (-1: none).
struct HistoryLayout {
  std::int64_t modal_coordinates = -1;  ///< float64 [n_samples, m]
  std::int64_t displacement = -1;       ///< float32 [n_samples, p, 3]
  std::int64_t stress = -1;             ///< float32 [n_samples, p, 6]
};

/// @brief Creates the file with everything known before the archive is processed, and the
/// history datasets allocated in full. @throws IoError, InputError for inconsistent sizes.
HistoryLayout create_results(const std::string& path, const ResultsHeader& header);

/// The per-node results, known at the end.
struct ResultsSummary {
  std::vector<double> von_mises_max;        ///< [p]
  std::vector<double> von_mises_max_time_s; ///< [p]
  std::vector<double> damage;               ///< [p] or empty (no S-N curve)
  std::vector<double> damage_equivalent_range;  ///< [p] or empty
  std::vector<double> cycles;               ///< [p] or empty
  std::vector<double> von_mises_noise_rms;  ///< [p] RMS von Mises of the noise in the estimate
  std::vector<std::int64_t> dropout_samples;    ///< [n_channels]
  std::map<std::string, double> attributes;            ///< more attributes on /results
  std::map<std::string, std::string> text_attributes;
};

/// @brief Adds the summary to a file made by create_results (opened for update).
/// @throws IoError
void complete_results(const std::string& path, const ResultsSummary& summary);

/// @brief Raw row writes into the history datasets (POSIX pwrite; safe from several processes
/// writing disjoint rows).
class RawFile {
public:
  /// @throws IoError when the file cannot be opened for writing.
  explicit RawFile(const std::string& path);
  ~RawFile();
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  /// Writes `bytes` bytes at `offset`. @throws IoError (disk full, ...)
  void write(std::int64_t offset, const void* data, std::size_t bytes);
  /// fdatasync: the rows written so far are on disk. @throws IoError
  void sync();

private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace vsense::io
