// The placement file of the contract (spec/formats.md section 2, "vsense-placement" version 1).
#include "vsense/io/placement_file.hpp"

#include <fmt/format.h>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {
constexpr const char* placement_format = "vsense-placement";
constexpr std::int64_t placement_format_version = 1;

void check_length(const std::string& path, const char* name, std::size_t actual,
                  std::size_t expected) {
  if (actual != 0 && actual != expected) {
    throw InputError(fmt::format("{}: cannot write placement file: {} has {} values, expected {}",
                                 path, name, actual, expected));
  }
}
}  // namespace

void write_placement(const std::string& path, const PlacementData& data) {
  const std::size_t s = data.node_ids.size();
  if (data.criterion.size() != s) {
    throw InputError(fmt::format("{}: cannot write placement file: {} node ids but {} criterion "
                                 "values",
                                 path, s, data.criterion.size()));
  }
  check_length(path, "coordinates", data.coordinates.size(), 3 * s);
  check_length(path, "scores", data.scores.size(), s);
  check_length(path, "frequencies_hz", data.frequencies_hz.size(), data.mode_indices.size());

  hdf5::AtomicOutput output(path);
  {
    hdf5::File file(output.temporary_path(), hdf5::File::Mode::create);
    hdf5::write_standard_attributes(file, placement_format, placement_format_version, data.units,
                                    data.source_sha256);
    file.create_group("/placement");
    const auto hs = static_cast<hsize_t>(s);
    file.write("/placement/node_ids", {hs}, data.node_ids.data());
    file.write("/placement/criterion", {hs}, data.criterion.data());
    if (!data.criterion_name.empty()) {
      file.set_attribute("/placement/criterion", "definition", data.criterion_name);
    }
    if (!data.coordinates.empty()) {
      file.write("/placement/coordinates", {hs, 3}, data.coordinates.data());
    }
    if (!data.scores.empty()) file.write("/placement/scores", {hs}, data.scores.data());
    if (!data.mode_indices.empty()) {
      const auto hm = static_cast<hsize_t>(data.mode_indices.size());
      file.write("/placement/mode_indices", {hm}, data.mode_indices.data());
      file.write("/placement/frequencies_hz", {hm}, data.frequencies_hz.data());
    }
    file.set_attribute("/placement", "method", data.method);
    file.set_attribute("/placement", "n_modes", data.n_modes);
    file.set_attribute("/placement", "n_candidates", data.n_candidates);
    if (!data.criterion_name.empty()) {
      file.set_attribute("/placement", "criterion_name", data.criterion_name);
    }
    for (const auto& [name, value] : data.options) file.set_attribute("/placement", name, value);
    for (const auto& [name, value] : data.text_options) {
      file.set_attribute("/placement", name, value);
    }
    file.close();
  }
  output.commit();
}

PlacementData read_placement(const std::string& path) {
  const hdf5::File file(path, hdf5::File::Mode::read);
  const std::string format = file.string_attribute("/", "format");
  if (format != placement_format) {
    throw InputError(fmt::format("{}: attribute format is \"{}\" but expected \"{}\"", path,
                                 format, placement_format));
  }
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != placement_format_version) {
    throw InputError(fmt::format("{}: format_version {} is not supported (this vsense reads "
                                 "vsense-placement version {})",
                                 path, version, placement_format_version));
  }
  PlacementData data;
  data.units = file.string_attribute("/", "units");
  if (file.has_attribute("/", "source_sha256")) {
    data.source_sha256 = file.string_attribute("/", "source_sha256");
  }
  data.node_ids = file.read_int64("/placement/node_ids");
  data.criterion = file.read_double("/placement/criterion");
  if (data.criterion.size() != data.node_ids.size()) {
    throw InputError(fmt::format("{}: /placement/criterion has {} values but /placement/node_ids "
                                 "has {}",
                                 path, data.criterion.size(), data.node_ids.size()));
  }
  data.method = file.string_attribute("/placement", "method");
  data.n_modes = file.int_attribute("/placement", "n_modes");
  data.n_candidates = file.int_attribute("/placement", "n_candidates");
  if (file.has_attribute("/placement", "criterion_name")) {
    data.criterion_name = file.string_attribute("/placement", "criterion_name");
  }
  if (file.exists("/placement/coordinates")) data.coordinates = file.read_double("/placement/coordinates");
  if (file.exists("/placement/scores")) data.scores = file.read_double("/placement/scores");
  if (file.exists("/placement/mode_indices")) {
    data.mode_indices = file.read_int64("/placement/mode_indices");
    data.frequencies_hz = file.read_double("/placement/frequencies_hz");
  }
  return data;
}

}  // namespace vsense::io
