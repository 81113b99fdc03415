// The modes file of the contract (docs: spec/formats.md section 2, "vsense-modes" version 1).
#include "vsense/io/modes_file.hpp"

#include <fmt/format.h>

#include <cmath>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {

constexpr const char* modes_format = "vsense-modes";
constexpr std::int64_t modes_format_version = 1;

std::string dims_string(const std::vector<hsize_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

std::size_t element_count(const std::vector<hsize_t>& dims) {
  std::size_t count = 1;
  for (const hsize_t d : dims) count *= static_cast<std::size_t>(d);
  return count;
}

// The model's length unit, for the coordinates' unit attribute.
std::string length_unit(const std::string& units) {
  if (units == "SI") return "m";
  if (units == "mm-t-s") return "mm";
  return "model units";
}

// Checks that an array of the ModesData has the size its contract shape implies.
void check_size(const std::string& path, const char* name, std::size_t actual,
                const std::vector<hsize_t>& expected) {
  if (actual != element_count(expected)) {
    throw InputError(fmt::format("{}: cannot write modes file: {} has {} values but its shape {} "
                                 "needs {}",
                                 path, name, actual, dims_string(expected),
                                 element_count(expected)));
  }
}

// Reads a dataset after checking its shape, so that the message names what is wrong.
std::vector<double> read_checked(const hdf5::File& file, const std::string& dataset,
                                 const std::vector<hsize_t>& expected) {
  const auto actual = file.shape(dataset);
  if (actual != expected) {
    throw InputError(fmt::format("{}: dataset {} has shape {} but expected {}", file.path(),
                                 dataset, dims_string(actual), dims_string(expected)));
  }
  return file.read_double(dataset);
}

}  // namespace

void write_modes(const std::string& path, const ModesData& data) {
  const auto n_nodes = static_cast<hsize_t>(data.n_nodes());
  const auto m = static_cast<hsize_t>(data.n_modes());
  // Everything is checked before the first byte is written.
  check_size(path, "coordinates", data.coordinates.size(), {n_nodes, 3});
  check_size(path, "frequencies_hz", data.frequencies_hz.size(), {m});
  check_size(path, "shapes", data.shapes.size(), {m, n_nodes, 3});
  check_size(path, "nodal_stress", data.nodal_stress.size(), {m, n_nodes, 6});
  check_size(path, "residuals", data.residuals.size(), {m});

  hdf5::AtomicOutput output(path);
  {
    hdf5::File file(output.temporary_path(), hdf5::File::Mode::create);
    hdf5::write_standard_attributes(file, modes_format, modes_format_version, data.units,
                                    data.source_sha256);
    if (!data.source_file.empty()) file.set_attribute("/", "source_file", data.source_file);

    file.create_group("/mesh");
    file.write("/mesh/node_ids", {n_nodes}, data.node_ids.data());
    file.write("/mesh/coordinates", {n_nodes, 3}, data.coordinates.data());
    file.set_attribute("/mesh/coordinates", "unit", length_unit(data.units));

    if (data.n_cells > 0) {
      file.write("/mesh/topology", {static_cast<hsize_t>(data.topology.size())},
                 data.topology.data());
      file.set_attribute("/mesh/topology", "n_cells", data.n_cells);
      file.set_attribute("/mesh/topology", "layout",
                         std::string("XDMF Mixed: per cell its type code (6 tetrahedron, 9 "
                                     "hexahedron, 38 tetrahedron_10, 48 hexahedron_20) then "
                                     "its 0-based node indices into /mesh/node_ids"));
    }
    if (!data.node_sets.empty()) {
      file.create_group("/mesh/node_sets");
      for (const auto& [name, ids] : data.node_sets) {
        file.write("/mesh/node_sets/" + name, {static_cast<hsize_t>(ids.size())}, ids.data());
      }
    }

    file.create_group("/modes");
    file.write("/modes/eigenvalues", {m}, data.eigenvalues.data());
    file.set_attribute("/modes/eigenvalues", "unit", std::string("(rad/s)^2"));
    file.write("/modes/frequencies_hz", {m}, data.frequencies_hz.data());
    file.set_attribute("/modes/frequencies_hz", "unit", std::string("Hz"));
    file.write("/modes/shapes", {m, n_nodes, 3}, data.shapes.data());
    file.set_attribute("/modes/shapes", "normalisation", std::string("Phi^T M Phi = I"));
    file.write("/modes/nodal_stress", {m, n_nodes, 6}, data.nodal_stress.data());
    file.set_attribute("/modes/nodal_stress", "components",
                       std::string("xx, yy, zz, xy, yz, zx"));
    file.write("/modes/residuals", {m}, data.residuals.data());
    file.set_attribute("/modes/residuals", "definition",
                       std::string("||K x - lambda M x|| / ||K x||"));
    file.close();
  }
  output.commit();
}

ModesData read_modes(const std::string& path) {
  const hdf5::File file(path, hdf5::File::Mode::read);
  ModesData data;

  const std::string format = file.string_attribute("/", "format");
  if (format != modes_format) {
    throw InputError(fmt::format("{}: attribute format is \"{}\" but expected \"{}\"", path,
                                 format, modes_format));
  }
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != modes_format_version) {
    throw InputError(fmt::format("{}: format_version {} is not supported (this vsense reads "
                                 "vsense-modes version {})",
                                 path, version, modes_format_version));
  }
  data.units = file.string_attribute("/", "units");
  if (file.has_attribute("/", "source_sha256")) {
    data.source_sha256 = file.string_attribute("/", "source_sha256");
  }
  if (file.has_attribute("/", "source_file")) {
    data.source_file = file.string_attribute("/", "source_file");
  }

  const auto node_shape = file.shape("/mesh/node_ids");
  if (node_shape.size() != 1) {
    throw InputError(fmt::format("{}: dataset /mesh/node_ids has shape {} but expected [n_nodes]",
                                 path, dims_string(node_shape)));
  }
  const hsize_t n_nodes = node_shape[0];
  const auto mode_shape = file.shape("/modes/eigenvalues");
  if (mode_shape.size() != 1) {
    throw InputError(fmt::format("{}: dataset /modes/eigenvalues has shape {} but expected [m]",
                                 path, dims_string(mode_shape)));
  }
  const hsize_t m = mode_shape[0];

  data.node_ids = file.read_int64("/mesh/node_ids");
  data.coordinates = read_checked(file, "/mesh/coordinates", {n_nodes, 3});
  data.eigenvalues = file.read_double("/modes/eigenvalues");
  data.frequencies_hz = read_checked(file, "/modes/frequencies_hz", {m});
  data.shapes = read_checked(file, "/modes/shapes", {m, n_nodes, 3});
  data.nodal_stress = read_checked(file, "/modes/nodal_stress", {m, n_nodes, 6});
  data.residuals = read_checked(file, "/modes/residuals", {m});

  if (file.exists("/mesh/topology")) {
    data.topology = file.read_int64("/mesh/topology");
    data.n_cells = file.int_attribute("/mesh/topology", "n_cells");
    for (std::size_t i = 0; i < data.topology.size();) {
      const std::int64_t code = data.topology[i];
      const int n = code == 6 ? 4 : code == 9 ? 8 : code == 38 ? 10 : code == 48 ? 20 : -1;
      if (n < 0 || i + 1 + static_cast<std::size_t>(n) > data.topology.size()) {
        throw InputError(fmt::format("{}: dataset /mesh/topology is malformed at entry {}", path,
                                     i));
      }
      for (int k = 1; k <= n; ++k) {
        if (data.topology[i + k] < 0 || data.topology[i + k] >= static_cast<std::int64_t>(n_nodes)) {
          throw InputError(fmt::format("{}: dataset /mesh/topology refers to node index {} "
                                       "outside [0, {})",
                                       path, data.topology[i + k], n_nodes));
        }
      }
      i += 1 + static_cast<std::size_t>(n);
    }
  }
  if (file.exists("/mesh/node_sets")) {
    for (const auto& name : file.members("/mesh/node_sets")) {
      data.node_sets[name] = file.read_int64("/mesh/node_sets/" + name);
    }
  }

  for (std::size_t i = 0; i < data.eigenvalues.size(); ++i) {
    if (!std::isfinite(data.eigenvalues[i])) {
      throw InputError(fmt::format("{}: dataset /modes/eigenvalues: value {} is {}", path, i,
                                   data.eigenvalues[i]));
    }
    if (i > 0 && data.eigenvalues[i] < data.eigenvalues[i - 1]) {
      throw InputError(fmt::format("{}: dataset /modes/eigenvalues is not ascending (value {} = "
                                   "{} follows {})",
                                   path, i, data.eigenvalues[i], data.eigenvalues[i - 1]));
    }
  }
  return data;
}

}  // namespace vsense::io
