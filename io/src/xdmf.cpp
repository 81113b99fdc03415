#include "vsense/io/xdmf.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {
// Temporary file then rename, so that a reader never sees half a file.
void write_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary);
    file << text;
    file.close();
    if (!file) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw IoError(fmt::format("{}: cannot write", path));
    }
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot write: {}", path, ec.message()));
}
}  // namespace

void write_modes_xdmf(const std::string& xdmf_path, const std::string& h5_path,
                      const ModesData& data) {
  if (data.n_cells <= 0) {
    throw InputError(fmt::format("{}: no solid cells to show (the modes have no topology)",
                                 h5_path));
  }
  namespace fs = std::filesystem;
  const fs::path xdmf_dir = fs::absolute(xdmf_path).parent_path();
  const std::string h5 = fs::relative(fs::absolute(h5_path), xdmf_dir).string();
  const std::size_t n = data.n_nodes();
  const std::size_t m = data.n_modes();

  std::string xml;
  auto out = std::back_inserter(xml);
  fmt::format_to(out,
                 "<?xml version=\"1.0\" ?>\n"
                 "<Xdmf Version=\"3.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n"
                 "<Domain>\n"
                 "<Topology Name=\"cells\" TopologyType=\"Mixed\" NumberOfElements=\"{}\">\n"
                 "  <DataItem Dimensions=\"{}\" NumberType=\"Int\" Precision=\"8\" "
                 "Format=\"HDF\">{}:/mesh/topology</DataItem>\n"
                 "</Topology>\n"
                 "<Geometry Name=\"nodes\" GeometryType=\"XYZ\">\n"
                 "  <DataItem Dimensions=\"{} 3\" NumberType=\"Float\" Precision=\"8\" "
                 "Format=\"HDF\">{}:/mesh/coordinates</DataItem>\n"
                 "</Geometry>\n"
                 "<Grid Name=\"modes\" GridType=\"Collection\" CollectionType=\"Temporal\">\n",
                 data.n_cells, data.topology.size(), h5, n, h5);
  for (std::size_t k = 0; k < m; ++k) {
    auto slab = [&](const char* name, const char* type, const char* dataset, int width) {
      fmt::format_to(out,
                     "  <Attribute Name=\"{}\" AttributeType=\"{}\" Center=\"Node\">\n"
                     "   <DataItem ItemType=\"HyperSlab\" Dimensions=\"{} {}\">\n"
                     "    <DataItem Dimensions=\"3 3\" Format=\"XML\">{} 0 0 1 1 1 1 {} {}"
                     "</DataItem>\n"
                     "    <DataItem Dimensions=\"{} {} {}\" NumberType=\"Float\" Precision=\"8\" "
                     "Format=\"HDF\">{}:{}</DataItem>\n"
                     "   </DataItem>\n"
                     "  </Attribute>\n",
                     name, type, n, width, k, n, width, m, n, width, h5, dataset);
    };
    fmt::format_to(out,
                   " <Grid Name=\"mode {}\" GridType=\"Uniform\">\n"
                   "  <Time Value=\"{:.9g}\"/>\n"
                   "  <Topology Reference=\"/Xdmf/Domain/Topology[1]\"/>\n"
                   "  <Geometry Reference=\"/Xdmf/Domain/Geometry[1]\"/>\n",
                   k + 1, data.frequencies_hz[k]);
    slab("mode_shape", "Vector", "/modes/shapes", 3);
    slab("modal_stress", "Tensor6", "/modes/nodal_stress", 6);
    fmt::format_to(out, " </Grid>\n");
  }
  fmt::format_to(out, "</Grid>\n</Domain>\n</Xdmf>\n");

  write_atomically(xdmf_path, xml);
}

void write_results_xdmf(const std::string& xdmf_path, const std::string& h5_path,
                        std::size_t n_nodes, std::int64_t n_cells, std::size_t topology_size,
                        bool with_damage) {
  namespace fs = std::filesystem;
  const fs::path xdmf_dir = fs::absolute(xdmf_path).parent_path();
  const std::string h5 = fs::relative(fs::absolute(h5_path), xdmf_dir).string();
  std::string xml;
  auto out = std::back_inserter(xml);
  fmt::format_to(out,
                 "<?xml version=\"1.0\" ?>\n"
                 "<Xdmf Version=\"3.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n"
                 "<Domain>\n"
                 "<Grid Name=\"results\" GridType=\"Uniform\">\n");
  if (n_cells > 0) {
    fmt::format_to(out,
                   " <Topology TopologyType=\"Mixed\" NumberOfElements=\"{}\">\n"
                   "  <DataItem Dimensions=\"{}\" NumberType=\"Int\" Precision=\"8\" "
                   "Format=\"HDF\">{}:/mesh/topology</DataItem>\n"
                   " </Topology>\n",
                   n_cells, topology_size, h5);
  } else {
    fmt::format_to(out,
                   " <Topology TopologyType=\"Polyvertex\" NumberOfElements=\"{}\" "
                   "NodesPerElement=\"1\">\n"
                   "  <DataItem Dimensions=\"{}\" NumberType=\"Int\" Precision=\"8\" "
                   "Format=\"HDF\">{}:/mesh/point_cells</DataItem>\n"
                   " </Topology>\n",
                   n_nodes, n_nodes, h5);
  }
  fmt::format_to(out,
                 " <Geometry GeometryType=\"XYZ\">\n"
                 "  <DataItem Dimensions=\"{} 3\" NumberType=\"Float\" Precision=\"8\" "
                 "Format=\"HDF\">{}:/results/coordinates</DataItem>\n"
                 " </Geometry>\n",
                 n_nodes, h5);
  auto scalar = [&](const char* name) {
    fmt::format_to(out,
                   " <Attribute Name=\"{}\" AttributeType=\"Scalar\" Center=\"Node\">\n"
                   "  <DataItem Dimensions=\"{}\" NumberType=\"Float\" Precision=\"8\" "
                   "Format=\"HDF\">{}:/results/{}</DataItem>\n"
                   " </Attribute>\n",
                   name, n_nodes, h5, name);
  };
  scalar("von_mises_max");
  scalar("von_mises_noise_rms");
  if (with_damage) {
    scalar("damage");
    scalar("damage_equivalent_range");
    scalar("cycles");
  }
  fmt::format_to(out, "</Grid>\n</Domain>\n</Xdmf>\n");
  write_atomically(xdmf_path, xml);
}

}  // namespace vsense::io
