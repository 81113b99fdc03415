// The reconstruction results file (see results_file.hpp).
#include "vsense/io/results_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {
constexpr const char* results_format = "vsense-results";
constexpr std::int64_t results_format_version = 1;

void check(bool ok, const std::string& path, const std::string& what) {
  if (!ok) throw InputError(fmt::format("{}: cannot write results: {}", path, what));
}

std::string length_unit(const std::string& units) { return units == "mm-t-s" ? "mm" : "m"; }
std::string stress_unit(const std::string& units) { return units == "mm-t-s" ? "MPa" : "Pa"; }
}  // namespace

HistoryLayout create_results(const std::string& path, const ResultsHeader& h) {
  const std::size_t p = h.node_ids.size(), m = h.mode_indices.size();
  const std::size_t nc = h.channel_names.size(), ns = h.segment_start_times.size();
  check(h.coordinates.size() == 3 * p, path, "coordinates are not [p, 3]");
  check(h.frequencies_hz.size() == m, path, "frequencies do not match the modes");
  check(h.channel_nodes.size() == nc && h.channel_units.size() == nc &&
            h.channel_directions.size() == 3 * nc,
        path, "channel table is inconsistent");
  check(h.segment_samples.size() == ns && h.segment_first_sample.size() == ns, path,
        "segment table is inconsistent");
  hdf5::File file(path, hdf5::File::Mode::create);
  hdf5::write_standard_attributes(file, results_format, results_format_version, h.units,
                                  h.source_sha256);
  file.set_attribute("/", "modes_file", h.modes_file);
  file.create_group("/results");
  file.set_attribute("/results", "sample_rate_hz", h.sample_rate_hz);
  file.set_attribute("/results", "start_time", h.start_time);
  file.set_attribute("/results", "n_samples", h.n_samples);
  file.set_attribute("/results", "stress_unit", stress_unit(h.units));
  file.set_attribute("/results", "length_unit", length_unit(h.units));
  for (const auto& [name, value] : h.attributes) file.set_attribute("/results", name, value);
  for (const auto& [name, value] : h.text_attributes) file.set_attribute("/results", name, value);
  file.write("/results/node_ids", {p}, h.node_ids.data());
  file.write("/results/coordinates", {p, 3}, h.coordinates.data());
  file.write("/results/mode_indices", {m}, h.mode_indices.data());
  file.write("/results/frequencies_hz", {m}, h.frequencies_hz.data());
  file.write_strings("/results/archive_files", h.archive_files);
  file.write_strings("/results/channels/name", h.channel_names);
  file.write("/results/channels/node_id", {nc}, h.channel_nodes.data());
  file.write("/results/channels/direction", {nc, 3}, h.channel_directions.data());
  file.write_strings("/results/channels/unit", h.channel_units);
  file.write_strings("/results/segments/start_time", h.segment_start_times);
  file.write("/results/segments/n_samples", {ns}, h.segment_samples.data());
  file.write("/results/segments/first_sample", {ns}, h.segment_first_sample.data());
  if (!h.topology.empty()) {
    file.write("/mesh/coordinates", {p, 3}, h.coordinates.data());
    file.write("/mesh/topology", {h.topology.size()}, h.topology.data());
    file.set_attribute("/mesh/topology", "n_cells", h.n_cells);
  } else {
    // Each output node as a point cell (XDMF Polyvertex), so ParaView shows a node subset.
    std::vector<std::int64_t> cells(p);
    for (std::size_t j = 0; j < p; ++j) cells[j] = static_cast<std::int64_t>(j);
    file.write("/mesh/point_cells", {p}, cells.data());
  }
  HistoryLayout layout;
  if (h.history) {
    const auto n = static_cast<hsize_t>(h.n_samples);
    layout.modal_coordinates = file.create_contiguous("/results/modal_coordinates", {n, m}, 8);
    layout.displacement = file.create_contiguous("/results/displacement", {n, p, 3}, 4);
    layout.stress = file.create_contiguous("/results/stress", {n, p, 6}, 4);
    file.set_attribute("/results/displacement", "unit", length_unit(h.units));
    file.set_attribute("/results/stress", "unit", stress_unit(h.units));
    file.set_attribute("/results/stress", "components", std::string("xx, yy, zz, xy, yz, zx"));
  }
  file.close();
  return layout;
}

void complete_results(const std::string& path, const ResultsSummary& s) {
  hdf5::File file(path, hdf5::File::Mode::update);
  const hsize_t p = s.von_mises_max.size();
  file.write("/results/von_mises_max", {p}, s.von_mises_max.data());
  file.write("/results/von_mises_max_time_s", {p}, s.von_mises_max_time_s.data());
  if (!s.von_mises_noise_rms.empty()) {
    file.write("/results/von_mises_noise_rms", {p}, s.von_mises_noise_rms.data());
  }
  if (!s.damage.empty()) {
    file.write("/results/damage", {p}, s.damage.data());
    file.write("/results/damage_equivalent_range", {p}, s.damage_equivalent_range.data());
    file.write("/results/cycles", {p}, s.cycles.data());
  }
  file.write("/results/channels/dropout_samples", {s.dropout_samples.size()},
             s.dropout_samples.data());
  for (const auto& [name, value] : s.attributes) file.set_attribute("/results", name, value);
  for (const auto& [name, value] : s.text_attributes) file.set_attribute("/results", name, value);
  file.close();
}

RawFile::RawFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw IoError(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  }
}

RawFile::~RawFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RawFile::write(std::int64_t offset, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(fmt::format("{}: cannot write {} bytes at {}: {}", path_, bytes, offset,
                                std::strerror(errno)));
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += n;
  }
}

void RawFile::sync() {
  if (::fdatasync(fd_) != 0 && errno != EINVAL) {
    throw IoError(fmt::format("{}: cannot flush to disk: {}", path_, std::strerror(errno)));
  }
}

}  // namespace vsense::io
