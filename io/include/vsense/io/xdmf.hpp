#pragma once
/// @file xdmf.hpp
/// @brief XDMF companions of the HDF5 outputs, so that ParaView shows them on the mesh.
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

}  // namespace vsense::io
