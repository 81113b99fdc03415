#pragma once
/// @file archive.hpp
/// @brief Measurement archives of the contract (`format = "vsense-archive"`, version 1): one
/// or more HDF5 files, each one contiguous segment of accelerations.
///
/// Layout of one file (spec/formats.md section 1):
/// ```
/// /                    attrs format="vsense-archive", format_version=1, sample_rate_hz,
///                      start_time (ISO 8601 UTC), and units/created_by/created_at/source_sha256
/// /data                float32 or float64 [n_samples, n_channels], chunked, in channel units
/// /channels/name       string  [n_channels]
/// /channels/node_id    int64   [n_channels]
/// /channels/direction  float64 [n_channels, 3] unit vectors in model coordinates
/// /channels/unit       string  [n_channels] "m/s^2", "mm/s^2" or "g"
/// ```
/// Both the writer and the reader keep memory bounded by one chunk (writer) or the block the
/// caller asks for (reader), whatever the archive's length.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vsense::io {

// ---- time stamps ----------------------------------------------------------------------------

/// @brief A UTC instant: whole POSIX seconds (leap seconds not counted) plus a fraction, so
/// that differences of start times keep sub-microsecond precision over centuries.
struct UtcTime {
  std::int64_t seconds = 0;  ///< since 1970-01-01T00:00:00Z
  double fraction = 0.0;     ///< [0, 1) s
};

/// @brief Parses ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm)" (a space may stand
/// for the T). A time without zone designator is refused: it would be ambiguous.
/// @throws InputError saying what is wrong (the caller adds file and attribute).
UtcTime parse_utc_time(const std::string& text);

/// @brief "YYYY-MM-DDTHH:MM:SS[.fffffffff]Z", the fraction to nanoseconds without trailing
/// zeros (none when whole).
std::string format_utc_time(const UtcTime& time);

/// @brief `time` plus `seconds` (may be negative), normalised.
UtcTime add_seconds(const UtcTime& time, double seconds);

/// @brief `later - earlier` in seconds.
double seconds_between(const UtcTime& earlier, const UtcTime& later);

// ---- channels and units ---------------------------------------------------------------------

/// @brief One sensor channel of an archive.
struct ArchiveChannel {
  std::string name;                          ///< unique within the archive
  std::int64_t node_id = 0;                  ///< model node the sensor sits on
  std::array<double, 3> direction{0, 0, 0};  ///< unit vector in model coordinates
  std::string unit = "m/s^2";                ///< "m/s^2", "mm/s^2" or "g"

  bool operator==(const ArchiveChannel&) const = default;
};

/// The standard acceleration of gravity, m/s^2 (the value "g" stands for).
inline constexpr double standard_gravity = 9.80665;

/// @brief Factor that turns a value in `channel_unit` into the acceleration unit of the model
/// units (`"SI"`: m/s^2, `"mm-t-s"`: mm/s^2).
/// @throws InputError for an unknown channel unit or unit system.
double acceleration_factor(const std::string& channel_unit, const std::string& model_units);

/// @brief Whether `unit` is one of the channel units the contract allows.
bool is_archive_unit(const std::string& unit);

// ---- writing --------------------------------------------------------------------------------

enum class SampleType { float32, float64 };

struct ArchiveWriterOptions {
  double sample_rate_hz = 0.0;
  std::string start_time;  ///< ISO 8601 UTC; validated (and written as given)
  std::vector<ArchiveChannel> channels;
  SampleType sample_type = SampleType::float32;
  std::string units = "SI";          ///< model units the node ids and directions refer to
  std::string source_sha256;         ///< of whatever the data were made from (may be empty)
  std::size_t chunk_samples = 4096;  ///< rows per HDF5 chunk (fewer for very wide archives)
  unsigned compression_level = 0;    ///< deflate level 0 (none) .. 9, with shuffle
};

/// @brief Writes one segment file, appending blocks of samples; memory stays at one chunk.
/// The file appears under its name only on commit() (written under a temporary name, then
/// renamed); a writer destroyed without commit leaves nothing behind.
class ArchiveWriter {
public:
  /// @throws InputError for invalid options (unit, direction, rate, start time, names),
  /// IoError when the file cannot be created.
  ArchiveWriter(const std::string& path, ArchiveWriterOptions options);
  ~ArchiveWriter();
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  /// @param[in] samples [n_samples, n_channels] row-major, in the channel units; NaN allowed.
  /// @throws IoError
  void append(const double* samples, std::size_t n_samples);
  /// Writes what is buffered, closes and renames into place. @throws IoError
  void commit();

  std::int64_t n_samples() const noexcept;
  std::size_t n_channels() const noexcept;
  const std::string& path() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- reading --------------------------------------------------------------------------------

/// What to do when consecutive files are not contiguous.
enum class DiscontinuityPolicy {
  error,  ///< any gap or overlap is an InputError naming both files
  split,  ///< each contiguous run of files is a separate continuous segment
};

struct ArchiveOptions {
  std::string model_units = "SI";  ///< "SI" (data returned in m/s^2) or "mm-t-s" (mm/s^2)
  DiscontinuityPolicy discontinuities = DiscontinuityPolicy::error;
};

/// @brief One file of an archive, as validated.
struct ArchiveFile {
  std::string path;
  std::string start_time;  ///< as written
  UtcTime start;
  std::int64_t n_samples = 0;
  SampleType sample_type = SampleType::float32;
};

/// @brief A gap or an overlap between two files consecutive in time.
struct Discontinuity {
  enum class Kind { gap, overlap };
  Kind kind = Kind::gap;
  std::string before_path, after_path;
  /// Missing samples (gap) or samples present twice (overlap), rounded to whole samples.
  std::int64_t samples = 0;
  /// Signed offset of the later file's start from the earlier file's end, seconds.
  double seconds = 0.0;
};

/// @brief A run of contiguous files read as one continuous signal.
struct ContinuousSegment {
  std::string start_time;  ///< of its first file
  UtcTime start;
  std::int64_t n_samples = 0;         ///< over all its files
  std::vector<std::size_t> files;     ///< indices into Archive::files(), in time order
  std::vector<std::int64_t> offsets;  ///< [files.size()] first sample of each file
};

/// @brief An archive given as several files: validated, ordered by start time, split into
/// continuous segments, and read in blocks converted to model units.
///
/// Opening reads only metadata (every file's attributes and channel table). Reading keeps at
/// most one file open. Not thread-safe: give each thread its own Archive.
class Archive {
public:
  /// @throws InputError naming file, dataset and channel for anything invalid, and naming
  /// both files for mismatched channel lists or sample rates, or (policy error) a gap/overlap.
  explicit Archive(const std::vector<std::string>& paths, ArchiveOptions options = {});
  ~Archive();
  Archive(Archive&&) noexcept;
  Archive& operator=(Archive&&) noexcept;

  double sample_rate_hz() const noexcept { return sample_rate_hz_; }
  std::size_t n_channels() const noexcept { return channels_.size(); }
  const std::vector<ArchiveChannel>& channels() const noexcept { return channels_; }
  /// [n_channels] factors from channel units to model units (applied by read_chunk).
  const std::vector<double>& to_model_units() const noexcept { return to_model_units_; }
  const std::string& model_units() const noexcept { return options_.model_units; }

  /// All files in time order.
  const std::vector<ArchiveFile>& files() const noexcept { return files_; }
  /// Gaps and overlaps between consecutive files (whatever the policy).
  const std::vector<Discontinuity>& discontinuities() const noexcept { return discontinuities_; }
  const std::vector<ContinuousSegment>& segments() const noexcept { return segments_; }
  std::size_t n_segments() const noexcept { return segments_.size(); }
  std::int64_t n_samples(std::size_t segment) const;
  /// Samples over all segments.
  std::int64_t total_samples() const noexcept;

  /// @brief Reads samples [first_sample, first_sample + n_samples) of a continuous segment,
  /// across file boundaries, converted to model units; NaN (dropouts) stay NaN.
  /// @param[out] out [n_samples, n_channels] row-major, caller-owned.
  /// @throws InputError for a range outside the segment or an unreadable (corrupt) file.
  void read_chunk(std::size_t segment, std::int64_t first_sample, std::int64_t n_samples,
                  double* out);
  /// The same into a new vector [n_samples, n_channels].
  std::vector<double> read_chunk(std::size_t segment, std::int64_t first_sample,
                                 std::int64_t n_samples);

private:
  struct OpenFile;
  void read_file_rows(std::size_t file, std::int64_t first_row, std::int64_t n_rows, double* out);

  ArchiveOptions options_;
  double sample_rate_hz_ = 0.0;
  std::vector<ArchiveChannel> channels_;
  std::vector<double> to_model_units_;
  std::vector<ArchiveFile> files_;
  std::vector<Discontinuity> discontinuities_;
  std::vector<ContinuousSegment> segments_;
  std::unique_ptr<OpenFile> open_;  ///< the one file kept open for reading
};

/// @brief One line describing a discontinuity ("gap of 1000 samples (1 s) between A and B").
std::string describe(const Discontinuity& discontinuity);

}  // namespace vsense::io
