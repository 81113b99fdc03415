#pragma once
/// @file truth_file.hpp
/// @brief The true modal response behind a simulated archive
/// (`format = "vsense-simulation-truth"`, version 1), for checking reconstructions.
///
/// ```
/// /                            standard attrs (format, format_version, units, created_by,
///                              created_at, source_sha256 = the modes file), sample_rate_hz,
///                              start_time (ISO 8601 UTC, of sample 0), n_samples
/// /truth/modal_coordinates     float64 [n_samples, m] displacement-level q, u = Phi[:, idx] q
/// /truth/modal_accelerations   float64 [n_samples, m] q'' (optional)
/// /truth/speed_rpm             float64 [n_samples]   engine speed
/// /truth/mode_indices          int64   [m]   zero-based, into /modes of the modes file
/// /truth/frequencies_hz        float64 [m]
/// /truth/damping_ratios        float64 [m]
/// /truth/archive_files         string  [n_files] file names of the archive segments
/// /truth/file_first_sample     int64   [n_files] first sample of each file
/// attrs on /truth: the simulation's parameters
/// ```
/// Sample k of the truth is sample k of the archive files taken in order.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vsense::io {

struct TruthInfo {
  double sample_rate_hz = 0.0;
  std::string start_time;  ///< ISO 8601 UTC, of sample 0
  std::string units = "SI";
  std::string source_sha256;               ///< of the modes file
  std::vector<std::int64_t> mode_indices;  ///< [m]
  std::vector<double> frequencies_hz;      ///< [m]
  std::vector<double> damping_ratios;      ///< [m]
  bool with_accelerations = false;
  std::map<std::string, double> parameters;            ///< numeric attributes of /truth
  std::map<std::string, std::string> text_parameters;  ///< text attributes of /truth
  std::size_t n_modes() const noexcept { return mode_indices.size(); }
};

/// @brief Streams a truth file block by block (memory: one chunk per dataset); the file
/// appears only on commit().
class TruthWriter {
public:
  /// @throws InputError for inconsistent sizes, IoError when the file cannot be created.
  TruthWriter(const std::string& path, TruthInfo info, std::size_t chunk_samples = 4096);
  ~TruthWriter();
  TruthWriter(const TruthWriter&) = delete;
  TruthWriter& operator=(const TruthWriter&) = delete;

  /// @param[in] q [n, m]; q_acc [n, m] (read only with accelerations); speed_rpm [n]
  void append(const double* q, const double* q_acc, const double* speed_rpm, std::size_t n);
  /// Archive files the samples went to (written on commit).
  void set_archive_files(std::vector<std::string> names, std::vector<std::int64_t> first_samples);
  /// @throws IoError
  void commit();
  std::int64_t n_samples() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// @brief Reads a truth file: metadata at once, time histories by row ranges.
class TruthReader {
public:
  /// @throws InputError naming the file and dataset when it is not a valid truth file.
  explicit TruthReader(const std::string& path);
  ~TruthReader();
  const TruthInfo& info() const noexcept { return info_; }
  std::int64_t n_samples() const noexcept { return n_samples_; }
  const std::vector<std::string>& archive_files() const noexcept { return archive_files_; }
  const std::vector<std::int64_t>& file_first_sample() const noexcept { return first_samples_; }

  /// Rows [first, first + n) as [n, m]. @throws InputError out of range or unreadable
  std::vector<double> modal_coordinates(std::int64_t first, std::int64_t n) const;
  /// Rows [first, first + n) as [n, m]. @throws InputError when the file has none
  std::vector<double> modal_accelerations(std::int64_t first, std::int64_t n) const;
  std::vector<double> speed_rpm(std::int64_t first, std::int64_t n) const;

private:
  std::vector<double> read_rows(const std::string& dataset, std::int64_t first, std::int64_t n,
                                std::size_t n_columns) const;
  std::string path_;
  TruthInfo info_;
  std::int64_t n_samples_ = 0;
  std::vector<std::string> archive_files_;
  std::vector<std::int64_t> first_samples_;
};

}  // namespace vsense::io
