// The simulation truth file ("vsense-simulation-truth" version 1, see truth_file.hpp).
#include "vsense/io/truth_file.hpp"

#include <fmt/format.h>

#include <optional>

#include "row_appender.hpp"
#include "vsense/io/archive.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {
constexpr const char* truth_format = "vsense-simulation-truth";
constexpr std::int64_t truth_format_version = 1;
}  // namespace

struct TruthWriter::Impl {
  explicit Impl(const std::string& path) : output(path) {}
  hdf5::AtomicOutput output;  // destroyed last: the file and datasets close before removal
  std::unique_ptr<hdf5::File> file;
  std::optional<detail::RowAppender> q, q_acc, speed;
  TruthInfo info;
  std::vector<std::string> archive_files;
  std::vector<std::int64_t> first_samples;
  std::int64_t rows_at_commit = 0;
  bool committed = false;
};

TruthWriter::TruthWriter(const std::string& path, TruthInfo info, std::size_t chunk_samples) {
  const std::size_t m = info.n_modes();
  if (info.frequencies_hz.size() != m || info.damping_ratios.size() != m) {
    throw InputError(
        fmt::format("{}: cannot write truth: {} mode indices, {} frequencies, {} "
                    "damping ratios",
                    path, m, info.frequencies_hz.size(), info.damping_ratios.size()));
  }
  try {
    parse_utc_time(info.start_time);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: cannot write truth: start time {}", path, e.what()));
  }
  impl_ = std::make_unique<Impl>(path);
  impl_->info = std::move(info);
  const TruthInfo& t = impl_->info;
  impl_->file =
      std::make_unique<hdf5::File>(impl_->output.temporary_path(), hdf5::File::Mode::create);
  hdf5::File& file = *impl_->file;
  hdf5::write_standard_attributes(file, truth_format, truth_format_version, t.units,
                                  t.source_sha256);
  file.set_attribute("/", "sample_rate_hz", t.sample_rate_hz);
  file.set_attribute("/", "start_time", t.start_time);
  file.create_group("/truth");
  const auto mh = static_cast<hsize_t>(m);
  file.write("/truth/mode_indices", {mh}, t.mode_indices.data());
  file.write("/truth/frequencies_hz", {mh}, t.frequencies_hz.data());
  file.set_attribute("/truth/frequencies_hz", "unit", std::string("Hz"));
  file.write("/truth/damping_ratios", {mh}, t.damping_ratios.data());
  for (const auto& [name, value] : t.parameters) file.set_attribute("/truth", name, value);
  for (const auto& [name, value] : t.text_parameters) file.set_attribute("/truth", name, value);

  const std::size_t rows = detail::chunk_rows_for(m, 8, chunk_samples);
  impl_->q.emplace(file, "/truth/modal_coordinates", m, H5T_IEEE_F64LE, rows, 0);
  file.set_attribute("/truth/modal_coordinates", "definition",
                     std::string("displacement-level modal coordinates q of the mass-normalised "
                                 "modes /truth/mode_indices: u = Phi q"));
  file.set_attribute("/truth/modal_coordinates", "layout", std::string("[n_samples, n_modes]"));
  if (t.with_accelerations) {
    impl_->q_acc.emplace(file, "/truth/modal_accelerations", m, H5T_IEEE_F64LE, rows, 0);
    file.set_attribute("/truth/modal_accelerations", "layout", std::string("[n_samples, n_modes]"));
  }
  impl_->speed.emplace(file, "/truth/speed_rpm", 1, H5T_IEEE_F64LE,
                       detail::chunk_rows_for(1, 8, 65536), 0, true);
  file.set_attribute("/truth/speed_rpm", "unit", std::string("rpm"));
}

TruthWriter::~TruthWriter() = default;

void TruthWriter::append(const double* q, const double* q_acc, const double* speed_rpm,
                         std::size_t n) {
  if (impl_->committed) throw IoError("cannot append to a committed truth file");
  impl_->q->append(q, n);
  if (impl_->q_acc) impl_->q_acc->append(q_acc, n);
  impl_->speed->append(speed_rpm, n);
}

void TruthWriter::set_archive_files(std::vector<std::string> names,
                                    std::vector<std::int64_t> first_samples) {
  if (names.size() != first_samples.size()) {
    throw InputError(fmt::format("truth file: {} archive files but {} first samples", names.size(),
                                 first_samples.size()));
  }
  impl_->archive_files = std::move(names);
  impl_->first_samples = std::move(first_samples);
}

void TruthWriter::commit() {
  if (impl_->committed) return;
  const std::int64_t rows = impl_->q->n_rows();
  impl_->q->flush();
  if (impl_->q_acc) impl_->q_acc->flush();
  impl_->speed->flush();
  impl_->q.reset();
  impl_->q_acc.reset();
  impl_->speed.reset();
  hdf5::File& file = *impl_->file;
  file.set_attribute("/", "n_samples", rows);
  file.write_strings("/truth/archive_files", impl_->archive_files);
  file.write("/truth/file_first_sample", {static_cast<hsize_t>(impl_->first_samples.size())},
             impl_->first_samples.data());
  file.close();
  impl_->output.commit();
  impl_->committed = true;
  impl_->rows_at_commit = rows;
}

std::int64_t TruthWriter::n_samples() const noexcept {
  return impl_->q ? impl_->q->n_rows() : impl_->rows_at_commit;
}

// ---- reader ---------------------------------------------------------------------------------

TruthReader::TruthReader(const std::string& path) : path_(path) {
  const hdf5::File file(path, hdf5::File::Mode::read);
  const std::string format = file.string_attribute("/", "format");
  if (format != truth_format) {
    throw InputError(fmt::format("{}: attribute format is \"{}\" but expected \"{}\"", path, format,
                                 truth_format));
  }
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != truth_format_version) {
    throw InputError(
        fmt::format("{}: format_version {} is not supported (this vsense reads {} "
                    "version {})",
                    path, version, truth_format, truth_format_version));
  }
  info_.units = file.string_attribute("/", "units");
  info_.source_sha256 = file.string_attribute("/", "source_sha256");
  info_.sample_rate_hz = file.double_attribute("/", "sample_rate_hz");
  info_.start_time = file.string_attribute("/", "start_time");
  info_.mode_indices = file.read_int64("/truth/mode_indices");
  info_.frequencies_hz = file.read_double("/truth/frequencies_hz");
  info_.damping_ratios = file.read_double("/truth/damping_ratios");
  info_.with_accelerations = file.exists("/truth/modal_accelerations");
  const std::size_t m = info_.n_modes();
  const auto shape = file.shape("/truth/modal_coordinates");
  if (shape.size() != 2 || shape[1] != m) {
    throw InputError(
        fmt::format("{}: dataset /truth/modal_coordinates has shape [{}] but [n, {}] "
                    "was expected",
                    path, fmt::join(shape, ", "), m));
  }
  n_samples_ = static_cast<std::int64_t>(shape[0]);
  archive_files_ = file.read_strings("/truth/archive_files");
  first_samples_ = file.read_int64("/truth/file_first_sample");
}

TruthReader::~TruthReader() = default;

std::vector<double> TruthReader::read_rows(const std::string& dataset, std::int64_t first,
                                           std::int64_t n, std::size_t n_columns) const {
  if (first < 0 || n < 0 || first + n > n_samples_) {
    throw InputError(fmt::format("{}: rows {} .. {} of {} are outside [0, {})", path_, first,
                                 first + n, dataset, n_samples_));
  }
  const hdf5::File file(path_, hdf5::File::Mode::read);
  if (!file.exists(dataset)) {
    throw InputError(fmt::format("{}: dataset {} is missing", path_, dataset));
  }
  std::vector<double> out(static_cast<std::size_t>(n) * n_columns);
  if (n == 0 || n_columns == 0) return out;
  hdf5::Handle id(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  hdf5::Handle file_space(id ? H5Dget_space(id.get()) : -1, H5Sclose);
  const int rank = file_space ? H5Sget_simple_extent_ndims(file_space.get()) : -1;
  const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
  const hsize_t count[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(n_columns)};
  hdf5::Handle memory_space(rank > 0 ? H5Screate_simple(rank, count, nullptr) : -1, H5Sclose);
  if (!memory_space ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Dread(id.get(), H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
              out.data()) < 0) {
    throw InputError(fmt::format("{}: cannot read rows {} .. {} of {} ({})", path_, first,
                                 first + n - 1, dataset, detail::hdf5_error_message()));
  }
  return out;
}

std::vector<double> TruthReader::modal_coordinates(std::int64_t first, std::int64_t n) const {
  return read_rows("/truth/modal_coordinates", first, n, info_.n_modes());
}

std::vector<double> TruthReader::modal_accelerations(std::int64_t first, std::int64_t n) const {
  return read_rows("/truth/modal_accelerations", first, n, info_.n_modes());
}

std::vector<double> TruthReader::speed_rpm(std::int64_t first, std::int64_t n) const {
  return read_rows("/truth/speed_rpm", first, n, 1);
}

}  // namespace vsense::io
