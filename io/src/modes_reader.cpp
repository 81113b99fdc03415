// Piecewise reading of modes files (see modes_reader.hpp).
#include "vsense/io/modes_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

struct ModesReader::File {
  explicit File(const std::string& path) : file(path, hdf5::File::Mode::read) {}
  hdf5::File file;
};

namespace {

std::string dims_string(const std::vector<hsize_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

void expect_shape(const hdf5::File& file, const std::string& dataset,
                  const std::vector<hsize_t>& expected) {
  const auto actual = file.shape(dataset);
  if (actual != expected) {
    throw InputError(fmt::format("{}: dataset {} has shape {} but expected {}", file.path(),
                                 dataset, dims_string(actual), dims_string(expected)));
  }
}

}  // namespace

ModesReader::ModesReader(const std::string& path)
    : file_(std::make_unique<File>(path)), path_(path) {
  const hdf5::File& file = file_->file;
  const std::string format = file.string_attribute("/", "format");
  if (format != "vsense-modes") {
    throw InputError(fmt::format("{}: attribute format is \"{}\" but a modes file "
                                 "(\"vsense-modes\") was expected",
                                 path, format));
  }
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != 1) {
    throw InputError(fmt::format("{}: format_version {} is not supported (this vsense reads "
                                 "vsense-modes version 1)",
                                 path, version));
  }
  units_ = file.string_attribute("/", "units");
  if (file.has_attribute("/", "source_sha256")) {
    source_sha256_ = file.string_attribute("/", "source_sha256");
  }
  if (file.has_attribute("/", "source_file")) source_file_ = file.string_attribute("/", "source_file");
  const auto node_shape = file.shape("/mesh/node_ids");
  const auto mode_shape = file.shape("/modes/eigenvalues");
  if (node_shape.size() != 1 || mode_shape.size() != 1) {
    throw InputError(fmt::format("{}: /mesh/node_ids or /modes/eigenvalues is not a vector", path));
  }
  const hsize_t n = node_shape[0], m = mode_shape[0];
  expect_shape(file, "/mesh/coordinates", {n, 3});
  expect_shape(file, "/modes/frequencies_hz", {m});
  expect_shape(file, "/modes/shapes", {m, n, 3});
  expect_shape(file, "/modes/nodal_stress", {m, n, 6});
  node_ids_ = file.read_int64("/mesh/node_ids");
  coordinates_ = file.read_double("/mesh/coordinates");
  eigenvalues_ = file.read_double("/modes/eigenvalues");
  frequencies_hz_ = file.read_double("/modes/frequencies_hz");
  for (std::size_t i = 0; i < eigenvalues_.size(); ++i) {
    if (!std::isfinite(eigenvalues_[i]) || (i > 0 && eigenvalues_[i] < eigenvalues_[i - 1])) {
      throw InputError(fmt::format("{}: dataset /modes/eigenvalues is not finite and ascending "
                                   "(value {} = {})",
                                   path, i, eigenvalues_[i]));
    }
  }
  index_of_.reserve(node_ids_.size());
  for (std::size_t i = 0; i < node_ids_.size(); ++i) {
    if (!index_of_.emplace(node_ids_[i], i).second) {
      throw InputError(fmt::format("{}: dataset /mesh/node_ids lists node {} twice", path,
                                   node_ids_[i]));
    }
  }
  if (file.exists("/mesh/node_sets")) set_names_ = file.members("/mesh/node_sets");
}

ModesReader::~ModesReader() = default;
ModesReader::ModesReader(ModesReader&&) noexcept = default;
ModesReader& ModesReader::operator=(ModesReader&&) noexcept = default;

std::int64_t ModesReader::node_index(std::int64_t node_id) const {
  const auto it = index_of_.find(node_id);
  return it == index_of_.end() ? -1 : static_cast<std::int64_t>(it->second);
}

std::vector<std::int64_t> ModesReader::node_set(const std::string& name) const {
  const std::string key = upper(name);
  if (std::find(set_names_.begin(), set_names_.end(), key) == set_names_.end()) {
    throw InputError(fmt::format(
        "{}: node set {} is not in /mesh/node_sets (sets: {})", path_, name,
        set_names_.empty() ? std::string("none") : fmt::format("{}", fmt::join(set_names_, ", "))));
  }
  return file_->file.read_int64("/mesh/node_sets/" + key);
}

std::vector<std::size_t> resolve_node_spec(
    const std::string& spec, const std::string& what,
    const std::function<std::int64_t(std::int64_t)>& index_of,
    const std::function<std::optional<std::vector<std::int64_t>>(const std::string&)>& set_ids,
    const std::vector<std::string>& set_names, const std::string& source) {
  std::vector<std::size_t> out;
  std::error_code ec;
  if (std::filesystem::is_regular_file(spec, ec)) {
    std::ifstream in(spec);
    if (!in) throw InputError(fmt::format("{}: cannot read the {} node list", spec, what));
    std::string line;
    int line_number = 0;
    while (std::getline(in, line)) {
      ++line_number;
      if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      const std::string text = trim(line);
      if (text.empty()) continue;
      std::size_t used = 0;
      long long id = 0;
      try {
        id = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != text.size()) {
        throw InputError(fmt::format("{}:{}: '{}' is not a node id", spec, line_number, text));
      }
      const std::int64_t index = index_of(id);
      if (index < 0) {
        throw InputError(fmt::format("{}:{}: node {} is not in the model ({})", spec, line_number,
                                     id, source));
      }
      out.push_back(static_cast<std::size_t>(index));
    }
    if (out.empty()) throw InputError(fmt::format("{}: the {} node list is empty", spec, what));
  } else {
    const auto ids = set_ids(upper(spec));
    if (!ids) {
      throw InputError(fmt::format(
          "{} nodes '{}': neither a node-list file nor a node set of the model (sets: {})", what,
          spec,
          set_names.empty() ? std::string("none") : fmt::format("{}", fmt::join(set_names, ", "))));
    }
    for (const std::int64_t id : *ids) {
      const std::int64_t index = index_of(id);
      if (index < 0) {
        throw InputError(fmt::format("{}: node set {} names node {}, which has no mode data",
                                     source, upper(spec), id));
      }
      out.push_back(static_cast<std::size_t>(index));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::size_t> ModesReader::resolve_nodes(const std::string& spec,
                                                    const std::string& what) const {
  return resolve_node_spec(
      spec, what, [this](std::int64_t id) { return node_index(id); },
      [this](const std::string& name) -> std::optional<std::vector<std::int64_t>> {
        if (std::find(set_names_.begin(), set_names_.end(), name) == set_names_.end()) {
          return std::nullopt;
        }
        return node_set(name);
      },
      set_names_, path_);
}

bool ModesReader::has_topology() const { return file_->file.exists("/mesh/topology"); }

std::vector<std::int64_t> ModesReader::topology(std::int64_t* n_cells) const {
  const hdf5::File& file = file_->file;
  auto topology = file.read_int64("/mesh/topology");
  if (n_cells) *n_cells = file.int_attribute("/mesh/topology", "n_cells");
  for (std::size_t i = 0; i < topology.size();) {
    const std::int64_t code = topology[i];
    const int k = code == 6 ? 4 : code == 9 ? 8 : code == 38 ? 10 : code == 48 ? 20 : -1;
    if (k < 0 || i + 1 + static_cast<std::size_t>(k) > topology.size()) {
      throw InputError(fmt::format("{}: dataset /mesh/topology is malformed at entry {}", path_, i));
    }
    for (int j = 1; j <= k; ++j) {
      if (topology[i + j] < 0 || topology[i + j] >= static_cast<std::int64_t>(n_nodes())) {
        throw InputError(fmt::format("{}: dataset /mesh/topology refers to node index {} "
                                     "outside [0, {})",
                                     path_, topology[i + j], n_nodes()));
      }
    }
    i += 1 + static_cast<std::size_t>(k);
  }
  return topology;
}

std::vector<double> ModesReader::read_rows(const char* dataset, std::size_t components,
                                           const std::vector<std::int64_t>& modes,
                                           const std::vector<std::size_t>& nodes) const {
  const std::size_t n = n_nodes();
  for (const std::int64_t mode : modes) {
    if (mode < 0 || static_cast<std::size_t>(mode) >= n_modes()) {
      throw InputError(fmt::format("{}: mode {} does not exist (the file has {} modes)", path_,
                                   mode, n_modes()));
    }
  }
  for (const std::size_t node : nodes) {
    if (node >= n) {
      throw InputError(fmt::format("{}: node index {} out of range [0, {})", path_, node, n));
    }
  }
  const hdf5::File& file = file_->file;
  hdf5::Handle id(H5Dopen2(file.id(), dataset, H5P_DEFAULT), H5Dclose);
  hdf5::Handle file_space(id ? H5Dget_space(id.get()) : -1, H5Sclose);
  const hsize_t row_count[3] = {1, static_cast<hsize_t>(n), static_cast<hsize_t>(components)};
  hdf5::Handle memory_space(H5Screate_simple(3, row_count, nullptr), H5Sclose);
  if (!id || !file_space || !memory_space) {
    throw InputError(fmt::format("{}: dataset {} cannot be opened", path_, dataset));
  }
  bool all_nodes = nodes.size() == n;
  for (std::size_t j = 0; all_nodes && j < n; ++j) all_nodes = nodes[j] == j;
  std::vector<double> out(modes.size() * nodes.size() * components);
  std::vector<double> row(all_nodes ? 0 : n * components);
  // One mode at a time: a row of the dataset is contiguous on disk (and one chunk-row when the
  // dataset is chunked), and memory stays at one row whatever the number of modes.
  for (std::size_t k = 0; k < modes.size(); ++k) {
    const hsize_t start[3] = {static_cast<hsize_t>(modes[k]), 0, 0};
    double* target = all_nodes ? out.data() + k * n * components : row.data();
    if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, row_count,
                            nullptr) < 0 ||
        H5Dread(id.get(), H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
                target) < 0) {
      throw InputError(fmt::format("{}: cannot read mode {} of {} (damaged file?)", path_,
                                   modes[k], dataset));
    }
    if (!all_nodes) {
      double* dst = out.data() + k * nodes.size() * components;
      for (std::size_t j = 0; j < nodes.size(); ++j) {
        std::copy_n(row.data() + nodes[j] * components, components, dst + j * components);
      }
    }
  }
  return out;
}

std::vector<double> ModesReader::shapes(const std::vector<std::int64_t>& modes,
                                        const std::vector<std::size_t>& nodes) const {
  return read_rows("/modes/shapes", 3, modes, nodes);
}

std::vector<double> ModesReader::stresses(const std::vector<std::int64_t>& modes,
                                          const std::vector<std::size_t>& nodes) const {
  return read_rows("/modes/nodal_stress", 6, modes, nodes);
}

}  // namespace vsense::io
