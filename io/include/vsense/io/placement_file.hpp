#pragma once
/// @file placement_file.hpp
/// @brief The placement file of the contract (`format = "vsense-placement"`, version 1).
///
/// Contract datasets: /placement/node_ids int64 [s] (in the order chosen),
/// /placement/criterion float64 [s] (the method's criterion after each pick), attributes
/// method, n_modes, n_candidates on /placement. vsense adds (readers may ignore them):
/// /placement/coordinates [s, 3], /placement/scores [s] (the score each sensor was chosen
/// with), /placement/mode_indices int64 [n_modes] (zero-based, into the modes file),
/// /placement/frequencies_hz [n_modes], and attributes criterion_name plus the options used.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vsense::io {

struct PlacementData {
  std::vector<std::int64_t> node_ids;      ///< [s]
  std::vector<double> criterion;           ///< [s]
  std::vector<double> coordinates;         ///< [s, 3] model units (optional: empty)
  std::vector<double> scores;              ///< [s] (optional: empty)
  std::vector<std::int64_t> mode_indices;  ///< [n_modes] (optional: empty)
  std::vector<double> frequencies_hz;      ///< [n_modes] (optional: empty)
  std::string method;
  std::string criterion_name;
  std::int64_t n_modes = 0;
  std::int64_t n_candidates = 0;
  std::map<std::string, double> options;   ///< numeric options, written as attributes
  std::map<std::string, std::string> text_options;  ///< text options, written as attributes
  std::string units = "SI";
  std::string source_sha256;               ///< of the modes file
};

/// @brief Writes atomically (temporary name, then rename). @throws IoError, InputError (sizes)
void write_placement(const std::string& path, const PlacementData& data);

/// @brief Reads and validates a placement file. @throws InputError naming file and dataset.
PlacementData read_placement(const std::string& path);

}  // namespace vsense::io
