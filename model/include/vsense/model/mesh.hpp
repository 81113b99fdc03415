#pragma once
/// @file mesh.hpp
/// @brief Mesh topology for visualisation (XDMF) and for finding the surface of the model.
#include <cstdint>
#include <vector>

#include "vsense/model/model.hpp"

namespace vsense::model {

/// XDMF cell type codes used in the "Mixed" topology (XDMF 2/3 conventions; the node orders of
/// C3D4/C3D8/C3D10/C3D20 equal XDMF's/VTK's, so connectivity is written as in the .inp).
enum XdmfCellCode : std::int64_t {
  xdmf_tetrahedron = 6,
  xdmf_hexahedron = 9,
  xdmf_tetrahedron_10 = 38,
  xdmf_hexahedron_20 = 48,
};

/// @brief The solid elements as an XDMF "Mixed" topology over node indices: for each cell its
/// code, then its node indices. Springs and point masses are not cells.
/// @param[out] n_cells number of cells written
std::vector<std::int64_t> xdmf_mixed_topology(const Model& model, std::int64_t& n_cells);

/// @brief Node indices on the outer surface: nodes of the element faces that belong to exactly
/// one solid cell (faces identified by their sorted corner nodes), ascending.
/// @param[in] topology XDMF mixed topology as made by xdmf_mixed_topology
/// @throws InputError for an unknown cell code.
std::vector<std::int32_t> surface_nodes(const std::vector<std::int64_t>& topology,
                                        std::int64_t n_cells);

}  // namespace vsense::model
