#pragma once
/// @file modes_file.hpp
/// @brief The modes file of the contract (`format = "vsense-modes"`, version 1).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vsense::io {

/// @brief Everything in a modes file. Arrays are row-major with the shapes stated.
struct ModesData {
  std::vector<std::int64_t> node_ids;  ///< [n_nodes]
  std::vector<double> coordinates;     ///< [n_nodes, 3] model units
  std::vector<double> eigenvalues;     ///< [m] omega^2 in (rad/s)^2, ascending
  std::vector<double> frequencies_hz;  ///< [m]
  std::vector<double> shapes;          ///< [m, n_nodes, 3] mass-normalised
  std::vector<double> nodal_stress;    ///< [m, n_nodes, 6] xx, yy, zz, xy, yz, zx
  std::vector<double> residuals;       ///< [m] ||K x - lambda M x|| / ||K x||
  /// Solid cells (optional, for visualisation and surface detection): XDMF "Mixed" topology
  /// over node indices, per cell its XDMF code then its nodes (see model/mesh.hpp).
  std::vector<std::int64_t> topology;
  std::int64_t n_cells = 0;
  /// Node sets of the model (optional): upper-case name -> node ids.
  std::map<std::string, std::vector<std::int64_t>> node_sets;
  std::string units = "SI";            ///< "SI" or "mm-t-s"
  std::string source_sha256;           ///< of the model file(s) the modes were computed from
  std::string source_file;             ///< the model path, for reference

  std::size_t n_nodes() const noexcept { return node_ids.size(); }
  std::size_t n_modes() const noexcept { return eigenvalues.size(); }
};

/// @brief Writes atomically (temporary name in the same directory, then rename).
/// @throws IoError on any HDF5 failure (the temporary file is removed).
void write_modes(const std::string& path, const ModesData& data);

/// @brief Reads and validates a modes file.
/// @throws InputError naming the file and dataset when it is not a valid modes file.
ModesData read_modes(const std::string& path);

}  // namespace vsense::io
