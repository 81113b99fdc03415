#pragma once
/// @file xdmf.hpp
/// @brief XDMF companions of the HDF5 outputs, so that ParaView shows them on the mesh.
#include <cstdint>
#include <string>

#include "vsense/io/modes_file.hpp"

namespace vsense::io {

/// @brief Writes `xdmf_path` describing the modes file `h5_path` (whose content is `data`): the
/// mesh, and one step per mode with the mode shape (vector), the modal stress (Tensor6:
/// xx, yy, zz, xy, yz, zx) and its frequency as the step's time value. The heavy data stay in
/// the HDF5 file (referenced by a path relative to the XDMF file). Written atomically.
/// @throws InputError when the data have no topology.
void write_modes_xdmf(const std::string& xdmf_path, const std::string& h5_path,
                      const ModesData& data);

/// @brief Writes `xdmf_path` describing the results file `h5_path`: its output nodes (on the
/// solid cells of /mesh/topology when the file has them, else as points of /mesh/point_cells)
/// with the node fields von_mises_max, and damage, damage_equivalent_range and cycles when
/// present. Written atomically.
/// @param[in] n_cells cells of /mesh/topology (0: points) and `topology_size` its length
void write_results_xdmf(const std::string& xdmf_path, const std::string& h5_path,
                        std::size_t n_nodes, std::int64_t n_cells, std::size_t topology_size,
                        bool with_damage);

}  // namespace vsense::io
