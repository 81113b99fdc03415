// Measurement archives (spec/formats.md section 1, "vsense-archive" version 1): time stamps,
// the segment writer, and the multi-file reader.
#include "vsense/io/archive.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>
#include <set>

#include "row_appender.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {

constexpr const char* archive_format = "vsense-archive";
constexpr std::int64_t archive_format_version = 1;
// Directions are often written rounded to four digits (0.7071, 0.7071, 0: norm 1 - 1e-5):
// a norm within 1e-4 of one is accepted, an amplitude error far below any sensor's
// calibration and alignment accuracy; anything further off is a mistake, not rounding.
constexpr double direction_norm_tolerance = 1e-4;

// ---- civil calendar (proleptic Gregorian), after H. Hinnant's public-domain algorithms ----

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

UtcTime normalised(std::int64_t seconds, double fraction) {
  const double whole = std::floor(fraction);
  seconds += static_cast<std::int64_t>(whole);
  fraction -= whole;
  if (fraction >= 1.0) {  // floor of a value just below an integer, rounded up
    seconds += 1;
    fraction = 0.0;
  }
  return {seconds, fraction};
}

}  // namespace

UtcTime parse_utc_time(const std::string& text) {
  auto bad = [&](const std::string& why) -> InputError {
    return InputError(
        fmt::format("\"{}\" is not an ISO 8601 UTC time "
                    "(YYYY-MM-DDTHH:MM:SS[.fff]Z): {}",
                    text, why));
  };
  std::size_t pos = 0;
  auto digits = [&](std::size_t n, const char* what) -> int {
    if (pos + n > text.size()) throw bad(fmt::format("{} is missing", what));
    int value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = text[pos + i];
      if (c < '0' || c > '9') throw bad(fmt::format("{} must be {} digits", what, n));
      value = value * 10 + (c - '0');
    }
    pos += n;
    return value;
  };
  auto expect = [&](const char* allowed, const char* after) {
    if (pos >= text.size() || std::string_view(allowed).find(text[pos]) == std::string::npos) {
      throw bad(fmt::format("'{}' expected after the {}", allowed[0], after));
    }
    ++pos;
  };
  const int year = digits(4, "the year");
  expect("-", "year");
  const int month = digits(2, "the month");
  expect("-", "month");
  const int day = digits(2, "the day");
  expect("Tt ", "date");
  const int hour = digits(2, "the hour");
  expect(":", "hour");
  const int minute = digits(2, "the minute");
  expect(":", "minute");
  const int second = digits(2, "the second");
  if (month < 1 || month > 12) throw bad(fmt::format("month {} is out of range", month));
  if (day < 1 || static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month))) {
    throw bad(fmt::format("day {} is out of range", day));
  }
  if (hour > 23 || minute > 59 || second > 59) {
    throw bad("hour, minute or second is out of range (leap seconds are not supported)");
  }
  double fraction = 0.0;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    const std::size_t begin = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == begin) throw bad("no digits after the decimal point");
    fraction = std::stod("0." + text.substr(begin, pos - begin));
  }
  std::int64_t zone_offset_s = 0;
  if (pos >= text.size()) {
    throw bad("no time zone designator (append Z for UTC)");
  }
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    const int zone_hours = digits(2, "the zone hours");
    int zone_minutes = 0;
    if (pos < text.size() && text[pos] == ':') ++pos;
    if (pos < text.size()) zone_minutes = digits(2, "the zone minutes");
    if (zone_hours > 23 || zone_minutes > 59) throw bad("zone offset out of range");
    zone_offset_s = sign * (zone_hours * 3600 + zone_minutes * 60);
  } else {
    throw bad(fmt::format("unexpected '{}' where the time zone should be", text[pos]));
  }
  if (pos != text.size()) throw bad(fmt::format("unexpected \"{}\" at the end", text.substr(pos)));
  const std::int64_t seconds =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - zone_offset_s;
  return normalised(seconds, fraction);
}

std::string format_utc_time(const UtcTime& time) {
  std::int64_t seconds = time.seconds;
  auto nanoseconds = static_cast<std::int64_t>(std::llround(time.fraction * 1e9));
  if (nanoseconds >= 1000000000) {
    seconds += 1;
    nanoseconds -= 1000000000;
  }
  std::int64_t days = seconds / 86400;
  std::int64_t rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    days -= 1;
  }
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  std::string out = fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}", y, m, d, rest / 3600,
                                (rest / 60) % 60, rest % 60);
  if (nanoseconds > 0) {
    std::string fraction = fmt::format("{:09d}", nanoseconds);
    while (fraction.back() == '0') fraction.pop_back();
    out += "." + fraction;
  }
  return out + "Z";
}

UtcTime add_seconds(const UtcTime& time, double seconds) {
  // Whole and fractional parts separately, so that adding hours keeps nanoseconds exact.
  const double whole = std::floor(seconds);
  return normalised(time.seconds + static_cast<std::int64_t>(whole),
                    time.fraction + (seconds - whole));
}

double seconds_between(const UtcTime& earlier, const UtcTime& later) {
  return static_cast<double>(later.seconds - earlier.seconds) + (later.fraction - earlier.fraction);
}

// ---- units ----------------------------------------------------------------------------------

bool is_archive_unit(const std::string& unit) {
  return unit == "m/s^2" || unit == "mm/s^2" || unit == "g";
}

double acceleration_factor(const std::string& channel_unit, const std::string& model_units) {
  double to_si = 0.0;
  if (channel_unit == "m/s^2") {
    to_si = 1.0;
  } else if (channel_unit == "mm/s^2") {
    to_si = 1e-3;
  } else if (channel_unit == "g") {
    to_si = standard_gravity;
  } else {
    throw InputError(
        fmt::format("unit \"{}\" is not one of \"m/s^2\", \"mm/s^2\", \"g\"", channel_unit));
  }
  if (model_units == "SI") return to_si;
  if (model_units == "mm-t-s") return to_si * 1e3;
  throw InputError(
      fmt::format("model units \"{}\" are not one of \"SI\", \"mm-t-s\"", model_units));
}

namespace {

// Checks one channel; `place` prefixes the message ("FILE: /channels/unit[3]").
void check_channel(const ArchiveChannel& channel, std::size_t index, const std::string& where) {
  if (channel.name.empty()) {
    throw InputError(
        fmt::format("{}: dataset /channels/name[{}]: empty channel name", where, index));
  }
  if (!is_archive_unit(channel.unit)) {
    throw InputError(
        fmt::format("{}: dataset /channels/unit[{}] (channel \"{}\"): unit \"{}\" "
                    "is not one of \"m/s^2\", \"mm/s^2\", \"g\"",
                    where, index, channel.name, channel.unit));
  }
  const auto& v = channel.direction;
  const double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (!std::isfinite(norm) || std::abs(norm - 1.0) > direction_norm_tolerance) {
    throw InputError(
        fmt::format("{}: dataset /channels/direction[{}] (channel \"{}\"): "
                    "({}, {}, {}) is not a unit vector (norm {})",
                    where, index, channel.name, v[0], v[1], v[2], norm));
  }
}

void check_unique_names(const std::vector<ArchiveChannel>& channels, const std::string& where) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (!seen.insert(channels[i].name).second) {
      throw InputError(
          fmt::format("{}: dataset /channels/name[{}]: channel name \"{}\" appears "
                      "twice",
                      where, i, channels[i].name));
    }
  }
}

}  // namespace

// ---- writer ---------------------------------------------------------------------------------

struct ArchiveWriter::Impl {
  explicit Impl(const std::string& path) : output(path) {}
  // Declaration order is destruction order reversed: the dataset closes before the file, the
  // file before the temporary is removed.
  hdf5::AtomicOutput output;
  std::unique_ptr<hdf5::File> file;
  std::optional<detail::RowAppender> data;
  ArchiveWriterOptions options;
  std::string path;
  bool committed = false;
  std::int64_t samples_at_commit = 0;
};

ArchiveWriter::ArchiveWriter(const std::string& path, ArchiveWriterOptions options) {
  // Everything is checked before the first byte is written.
  if (!(options.sample_rate_hz > 0.0) || !std::isfinite(options.sample_rate_hz)) {
    throw InputError(fmt::format("{}: cannot write archive: sample rate {} Hz is not positive",
                                 path, options.sample_rate_hz));
  }
  try {
    parse_utc_time(options.start_time);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: cannot write archive: start time {}", path, e.what()));
  }
  if (options.channels.empty()) {
    throw InputError(fmt::format("{}: cannot write archive: no channels", path));
  }
  for (std::size_t i = 0; i < options.channels.size(); ++i) {
    check_channel(options.channels[i], i, path);
  }
  check_unique_names(options.channels, path);
  if (options.units != "SI" && options.units != "mm-t-s") {
    throw InputError(
        fmt::format("{}: cannot write archive: model units \"{}\" are not SI or "
                    "mm-t-s",
                    path, options.units));
  }

  impl_ = std::make_unique<Impl>(path);
  impl_->path = path;
  impl_->options = std::move(options);
  const auto& o = impl_->options;
  impl_->file =
      std::make_unique<hdf5::File>(impl_->output.temporary_path(), hdf5::File::Mode::create);
  hdf5::File& file = *impl_->file;
  hdf5::write_standard_attributes(file, archive_format, archive_format_version, o.units,
                                  o.source_sha256);
  file.set_attribute("/", "sample_rate_hz", o.sample_rate_hz);
  file.set_attribute("/", "start_time", o.start_time);

  const std::size_t n = o.channels.size();
  std::vector<std::string> names(n), units(n);
  std::vector<std::int64_t> node_ids(n);
  std::vector<double> directions(3 * n);
  for (std::size_t i = 0; i < n; ++i) {
    names[i] = o.channels[i].name;
    units[i] = o.channels[i].unit;
    node_ids[i] = o.channels[i].node_id;
    for (int k = 0; k < 3; ++k) directions[3 * i + k] = o.channels[i].direction[k];
  }
  file.create_group("/channels");
  file.write_strings("/channels/name", names);
  file.write("/channels/node_id", {static_cast<hsize_t>(n)}, node_ids.data());
  file.write("/channels/direction", {static_cast<hsize_t>(n), 3}, directions.data());
  file.set_attribute("/channels/direction", "frame", std::string("model coordinates"));
  file.write_strings("/channels/unit", units);

  const bool single = o.sample_type == SampleType::float32;
  const std::size_t chunk_rows = detail::chunk_rows_for(n, single ? 4 : 8, o.chunk_samples);
  // Checksummed chunks: archives are kept for years and copied around; a damaged chunk must
  // be an error when read, not silently wrong accelerations.
  impl_->data.emplace(file, "/data", n, single ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, chunk_rows,
                      o.compression_level, false, true);
  file.set_attribute("/data", "layout", std::string("[n_samples, n_channels]"));
  file.set_attribute("/data", "unit", std::string("per channel, /channels/unit"));
}

ArchiveWriter::~ArchiveWriter() = default;

void ArchiveWriter::append(const double* samples, std::size_t n_samples) {
  if (impl_->committed) {
    throw IoError(fmt::format("{}: cannot append to a committed archive", impl_->path));
  }
  impl_->data->append(samples, n_samples);
}

void ArchiveWriter::commit() {
  if (impl_->committed) return;
  impl_->data->flush();
  const std::int64_t rows = impl_->data->n_rows();
  impl_->data.reset();
  impl_->file->set_attribute("/", "n_samples", rows);
  impl_->file->close();
  impl_->output.commit();
  impl_->committed = true;
  impl_->samples_at_commit = rows;
}

std::int64_t ArchiveWriter::n_samples() const noexcept {
  return impl_->data ? impl_->data->n_rows() : impl_->samples_at_commit;
}

std::size_t ArchiveWriter::n_channels() const noexcept { return impl_->options.channels.size(); }

const std::string& ArchiveWriter::path() const noexcept { return impl_->path; }

// ---- reader ---------------------------------------------------------------------------------

struct Archive::OpenFile {
  std::size_t index = 0;
  std::unique_ptr<hdf5::File> file;
  hdf5::Handle dataset;
};

namespace {

// The class and size of a dataset's element type, read without loading data.
struct ElementType {
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t bytes = 0;
};

ElementType element_type(const hdf5::File& file, const std::string& dataset) {
  hdf5::Handle id(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!id) {
    throw InputError(fmt::format("{}: dataset {} cannot be opened ({})", file.path(), dataset,
                                 detail::hdf5_error_message()));
  }
  hdf5::Handle type(H5Dget_type(id.get()), H5Tclose);
  if (!type) {
    throw InputError(fmt::format("{}: dataset {}: cannot read its type", file.path(), dataset));
  }
  return {H5Tget_class(type.get()), H5Tget_size(type.get())};
}

std::string shape_string(const std::vector<hsize_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// Reads and checks the channel table of one file.
std::vector<ArchiveChannel> read_channels(const hdf5::File& file) {
  const std::string& path = file.path();
  const auto name_shape = file.shape("/channels/name");
  if (name_shape.size() != 1) {
    throw InputError(
        fmt::format("{}: dataset /channels/name has shape {} but expected "
                    "[n_channels]",
                    path, shape_string(name_shape)));
  }
  const hsize_t n = name_shape[0];
  auto expect_shape = [&](const std::string& dataset, const std::vector<hsize_t>& expected) {
    const auto actual = file.shape(dataset);
    if (actual != expected) {
      throw InputError(
          fmt::format("{}: dataset {} has shape {} but /channels/name lists {} "
                      "channels, so {} was expected",
                      path, dataset, shape_string(actual), n, shape_string(expected)));
    }
  };
  expect_shape("/channels/node_id", {n});
  expect_shape("/channels/direction", {n, 3});
  expect_shape("/channels/unit", {n});
  const auto names = file.read_strings("/channels/name");
  const auto node_ids = file.read_int64("/channels/node_id");
  const auto directions = file.read_double("/channels/direction");
  const auto units = file.read_strings("/channels/unit");
  std::vector<ArchiveChannel> channels(n);
  for (std::size_t i = 0; i < n; ++i) {
    channels[i].name = names[i];
    channels[i].node_id = node_ids[i];
    channels[i].direction = {directions[3 * i], directions[3 * i + 1], directions[3 * i + 2]};
    channels[i].unit = units[i];
    check_channel(channels[i], i, path);
  }
  check_unique_names(channels, path);
  return channels;
}

// Why two channel lists differ, for the message that names both files.
std::string channel_difference(const std::vector<ArchiveChannel>& a,
                               const std::vector<ArchiveChannel>& b) {
  if (a.size() != b.size()) return fmt::format("{} channels against {}", b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto text = [](const ArchiveChannel& c) {
      return fmt::format("\"{}\" (node {}, direction ({}, {}, {}), unit {})", c.name, c.node_id,
                         c.direction[0], c.direction[1], c.direction[2], c.unit);
    };
    if (!(a[i] == b[i]))
      return fmt::format("channel {} is {} against {}", i, text(b[i]), text(a[i]));
  }
  return "";
}

}  // namespace

std::string describe(const Discontinuity& d) {
  return fmt::format("{} of {} samples ({:.9g} s) between {} and {}",
                     d.kind == Discontinuity::Kind::gap ? "gap" : "overlap", d.samples,
                     std::abs(d.seconds), d.before_path, d.after_path);
}

Archive::Archive(const std::vector<std::string>& paths, ArchiveOptions options)
    : options_(std::move(options)) {
  if (paths.empty()) throw InputError("no archive files given");
  // Validates the unit system once, before any file is read.
  acceleration_factor("m/s^2", options_.model_units);

  std::string first_path;
  for (const auto& path : paths) {
    const hdf5::File file(path, hdf5::File::Mode::read);
    const std::string format = file.string_attribute("/", "format");
    if (format != archive_format) {
      throw InputError(fmt::format("{}: attribute format is \"{}\" but expected \"{}\"", path,
                                   format, archive_format));
    }
    const std::int64_t version = file.int_attribute("/", "format_version");
    if (version != archive_format_version) {
      throw InputError(
          fmt::format("{}: format_version {} is not supported (this vsense reads "
                      "vsense-archive version {})",
                      path, version, archive_format_version));
    }
    const double rate = file.double_attribute("/", "sample_rate_hz");
    if (!(rate > 0.0) || !std::isfinite(rate)) {
      throw InputError(
          fmt::format("{}: attribute sample_rate_hz is {} but must be positive", path, rate));
    }
    ArchiveFile info;
    info.path = path;
    info.start_time = file.string_attribute("/", "start_time");
    try {
      info.start = parse_utc_time(info.start_time);
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: attribute start_time: {}", path, e.what()));
    }
    std::vector<ArchiveChannel> channels = read_channels(file);
    const auto data_shape = file.shape("/data");
    if (data_shape.size() != 2) {
      throw InputError(
          fmt::format("{}: dataset /data has shape {} but expected "
                      "[n_samples, n_channels]",
                      path, shape_string(data_shape)));
    }
    if (data_shape[1] != channels.size()) {
      throw InputError(
          fmt::format("{}: dataset /data has {} columns but /channels/name lists "
                      "{} channels",
                      path, data_shape[1], channels.size()));
    }
    const ElementType type = element_type(file, "/data");
    if (type.type_class != H5T_FLOAT || (type.bytes != 4 && type.bytes != 8)) {
      throw InputError(
          fmt::format("{}: dataset /data must hold float32 or float64 values "
                      "(found a {}-byte {})",
                      path, type.bytes, type.type_class == H5T_INTEGER ? "integer" : "non-float"));
    }
    info.sample_type = type.bytes == 4 ? SampleType::float32 : SampleType::float64;
    info.n_samples = static_cast<std::int64_t>(data_shape[0]);

    if (files_.empty()) {
      first_path = path;
      sample_rate_hz_ = rate;
      channels_ = std::move(channels);
    } else {
      if (std::abs(rate - sample_rate_hz_) > 1e-12 * sample_rate_hz_) {
        throw InputError(fmt::format("{}: sample_rate_hz {} differs from {} in {}", path, rate,
                                     sample_rate_hz_, first_path));
      }
      if (channels != channels_) {
        throw InputError(fmt::format("{}: channel list differs from {}: {}", path, first_path,
                                     channel_difference(channels_, channels)));
      }
    }
    files_.push_back(std::move(info));
  }

  to_model_units_.resize(channels_.size());
  for (std::size_t c = 0; c < channels_.size(); ++c) {
    to_model_units_[c] = acceleration_factor(channels_[c].unit, options_.model_units);
  }

  // Order by start time (stable, so equal starts keep the order given: they overlap anyway).
  std::stable_sort(files_.begin(), files_.end(), [](const ArchiveFile& a, const ArchiveFile& b) {
    return a.start.seconds != b.start.seconds ? a.start.seconds < b.start.seconds
                                              : a.start.fraction < b.start.fraction;
  });

  // Each file is checked against the running timeline of its segment (not just the previous
  // file's end), so that offsets below half a sample cannot accumulate over many files.
  for (std::size_t i = 0; i < files_.size(); ++i) {
    if (i > 0) {
      ContinuousSegment& current = segments_.back();
      const double expected_s = static_cast<double>(current.n_samples) / sample_rate_hz_;
      const double offset_s = seconds_between(current.start, files_[i].start) - expected_s;
      const double offset_samples = offset_s * sample_rate_hz_;
      if (std::abs(offset_samples) <= 0.5) {
        current.files.push_back(i);
        current.offsets.push_back(current.n_samples);
        current.n_samples += files_[i].n_samples;
        continue;
      }
      Discontinuity d;
      d.kind = offset_samples > 0 ? Discontinuity::Kind::gap : Discontinuity::Kind::overlap;
      d.before_path = files_[i - 1].path;
      d.after_path = files_[i].path;
      d.samples = std::llround(std::abs(offset_samples));
      d.seconds = offset_s;
      discontinuities_.push_back(std::move(d));
    }
    ContinuousSegment segment;
    segment.start_time = files_[i].start_time;
    segment.start = files_[i].start;
    segment.n_samples = files_[i].n_samples;
    segment.files = {i};
    segment.offsets = {0};
    segments_.push_back(std::move(segment));
  }
  if (options_.discontinuities == DiscontinuityPolicy::error && !discontinuities_.empty()) {
    std::string message = "archive is not continuous: " + describe(discontinuities_.front());
    if (discontinuities_.size() > 1) {
      message += fmt::format(" (and {} more)", discontinuities_.size() - 1);
    }
    throw InputError(message);
  }
}

Archive::~Archive() = default;
Archive::Archive(Archive&&) noexcept = default;
Archive& Archive::operator=(Archive&&) noexcept = default;

std::int64_t Archive::n_samples(std::size_t segment) const {
  if (segment >= segments_.size()) {
    throw InputError(
        fmt::format("archive segment {} does not exist ({} segments)", segment, segments_.size()));
  }
  return segments_[segment].n_samples;
}

std::int64_t Archive::total_samples() const noexcept {
  std::int64_t total = 0;
  for (const auto& s : segments_) total += s.n_samples;
  return total;
}

void Archive::read_file_rows(std::size_t index, std::int64_t first_row, std::int64_t n_rows,
                             double* out) {
  const ArchiveFile& info = files_[index];
  if (!open_ || open_->index != index) {
    open_.reset();
    auto open = std::make_unique<OpenFile>();
    open->index = index;
    open->file = std::make_unique<hdf5::File>(info.path, hdf5::File::Mode::read);
    // A cache of two chunks lets blocks that are not chunk-aligned reuse a decompressed
    // chunk instead of decoding it twice, and no more: memory stays at the caller's block plus
    // two chunks (of whatever shape the file's writer chose, capped at 256 MiB).
    std::size_t chunk_bytes = std::size_t{1} << 20;
    {
      hdf5::Handle probe(H5Dopen2(open->file->id(), "/data", H5P_DEFAULT), H5Dclose);
      hdf5::Handle dcpl(probe ? H5Dget_create_plist(probe.get()) : -1, H5Pclose);
      hdf5::Handle type(probe ? H5Dget_type(probe.get()) : -1, H5Tclose);
      hsize_t dims[2] = {0, 0};
      if (dcpl && type && H5Pget_layout(dcpl.get()) == H5D_CHUNKED &&
          H5Pget_chunk(dcpl.get(), 2, dims) == 2) {
        chunk_bytes = static_cast<std::size_t>(dims[0] * dims[1]) * H5Tget_size(type.get());
      }
      detail::hdf5_error_message();  // clears the stack of a failed probe; the open reports
    }
    const std::size_t cache_bytes =
        std::clamp<std::size_t>(2 * chunk_bytes, std::size_t{1} << 20, std::size_t{256} << 20);
    hdf5::Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
    if (!dapl || H5Pset_chunk_cache(dapl.get(), 1009, cache_bytes, 0.75) < 0) {
      throw IoError("HDF5: cannot create a dataset access property list");
    }
    open->dataset = hdf5::Handle(H5Dopen2(open->file->id(), "/data", dapl.get()), H5Dclose);
    if (!open->dataset) {
      throw InputError(fmt::format("{}: dataset /data cannot be opened (damaged file?) ({})",
                                   info.path, detail::hdf5_error_message()));
    }
    open_ = std::move(open);
  }
  const std::size_t n_channels = channels_.size();
  if (n_rows <= 0 || n_channels == 0) return;
  hdf5::Handle file_space(H5Dget_space(open_->dataset.get()), H5Sclose);
  const hsize_t start[2] = {static_cast<hsize_t>(first_row), 0};
  const hsize_t count[2] = {static_cast<hsize_t>(n_rows), static_cast<hsize_t>(n_channels)};
  hdf5::Handle memory_space(H5Screate_simple(2, count, nullptr), H5Sclose);
  if (!file_space || !memory_space ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Dread(open_->dataset.get(), H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(),
              H5P_DEFAULT, out) < 0) {
    const std::string detail = detail::hdf5_error_message();
    open_.reset();
    throw InputError(fmt::format("{}: cannot read dataset /data rows {} .. {} (damaged file?){}",
                                 info.path, first_row, first_row + n_rows - 1,
                                 detail.empty() ? "" : " (HDF5: " + detail + ")"));
  }
}

void Archive::read_chunk(std::size_t segment, std::int64_t first_sample, std::int64_t n_samples,
                         double* out) {
  const std::int64_t length = this->n_samples(segment);
  if (first_sample < 0 || n_samples < 0 || first_sample + n_samples > length) {
    throw InputError(fmt::format("archive segment {}: samples {} .. {} are outside [0, {})",
                                 segment, first_sample, first_sample + n_samples, length));
  }
  const ContinuousSegment& s = segments_[segment];
  const std::size_t n_channels = channels_.size();
  // The file holding first_sample: the last whose offset is <= it.
  std::size_t part = static_cast<std::size_t>(
      std::upper_bound(s.offsets.begin(), s.offsets.end(), first_sample) - s.offsets.begin() - 1);
  std::int64_t done = 0;
  while (done < n_samples) {
    const std::size_t index = s.files[part];
    const std::int64_t row = first_sample + done - s.offsets[part];
    const std::int64_t take = std::min(n_samples - done, files_[index].n_samples - row);
    if (take > 0) {
      read_file_rows(index, row, take, out + static_cast<std::size_t>(done) * n_channels);
      done += take;
    }
    ++part;
  }
  const std::size_t total = static_cast<std::size_t>(n_samples) * n_channels;
  for (std::size_t i = 0; i < total; i += n_channels) {
    for (std::size_t c = 0; c < n_channels; ++c) out[i + c] *= to_model_units_[c];
  }
}

std::vector<double> Archive::read_chunk(std::size_t segment, std::int64_t first_sample,
                                        std::int64_t n_samples) {
  std::vector<double> out(static_cast<std::size_t>(std::max<std::int64_t>(n_samples, 0)) *
                          channels_.size());
  read_chunk(segment, first_sample, n_samples, out.data());
  return out;
}

}  // namespace vsense::io
