// Measurement archives: writer/reader round trip, unit conversion, multi-file ordering, gaps
// and overlaps, and one-line input errors that name file, dataset and channel.
#include "vsense/io/archive.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/test_support.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {
namespace {

namespace fs = std::filesystem;
using vsense::test::ScratchDir;

std::vector<ArchiveChannel> three_channels(const std::string& unit = "m/s^2") {
  const double s = std::sqrt(0.5);
  return {
      {"S1_X", 11, {1, 0, 0}, unit}, {"S1_Y", 11, {0, 1, 0}, unit}, {"S2_D", 42, {s, 0, s}, unit}};
}

// Value of sample t, channel c: distinct everywhere, so misplaced rows or columns show.
double sample_value(std::int64_t t, std::size_t c) {
  return std::sin(0.01 * static_cast<double>(t) + static_cast<double>(c)) + 0.001 * c;
}

// Writes a file of n samples starting at sample `first` of sample_value, in blocks of
// `block` samples (to exercise partial chunks).
std::string write_archive(const std::string& path, const std::string& start_time, std::int64_t n,
                          std::int64_t first = 0, double rate = 100.0,
                          std::vector<ArchiveChannel> channels = three_channels(),
                          SampleType type = SampleType::float64, std::size_t block = 333) {
  ArchiveWriterOptions options;
  options.sample_rate_hz = rate;
  options.start_time = start_time;
  options.channels = std::move(channels);
  options.sample_type = type;
  options.chunk_samples = 128;
  ArchiveWriter writer(path, options);
  const std::size_t nc = writer.n_channels();
  std::vector<double> rows;
  for (std::int64_t done = 0; done < n;) {
    const std::int64_t take = std::min<std::int64_t>(static_cast<std::int64_t>(block), n - done);
    rows.assign(static_cast<std::size_t>(take) * nc, 0.0);
    for (std::int64_t t = 0; t < take; ++t) {
      for (std::size_t c = 0; c < nc; ++c) rows[t * nc + c] = sample_value(first + done + t, c);
    }
    writer.append(rows.data(), static_cast<std::size_t>(take));
    done += take;
  }
  writer.commit();
  return path;
}

// A hand-made archive file, for contents the writer refuses to produce.
struct RawArchive {
  std::string format = "vsense-archive";
  std::int64_t version = 1;
  double rate = 100.0;
  std::string start = "2024-01-01T00:00:00Z";
  std::vector<std::string> names{"A", "B"};
  std::vector<std::int64_t> nodes{1, 2};
  std::vector<double> directions{1, 0, 0, 0, 0, 1};
  std::vector<std::string> units{"g", "g"};
  hsize_t n_samples = 10, n_columns = 2;
};

std::string write_raw(const std::string& path, const RawArchive& raw) {
  hdf5::File file(path, hdf5::File::Mode::create);
  file.set_attribute("/", "format", raw.format);
  file.set_attribute("/", "format_version", raw.version);
  file.set_attribute("/", "sample_rate_hz", raw.rate);
  file.set_attribute("/", "start_time", raw.start);
  std::vector<double> data(raw.n_samples * raw.n_columns, 0.5);
  file.write("/data", {raw.n_samples, raw.n_columns}, data.data());
  file.write_strings("/channels/name", raw.names);
  file.write("/channels/node_id", {raw.nodes.size()}, raw.nodes.data());
  file.write("/channels/direction", {raw.directions.size() / 3, 3}, raw.directions.data());
  file.write_strings("/channels/unit", raw.units);
  file.close();
  return path;
}

// Runs `action`, expects an InputError whose one-line message contains every fragment.
template <class Action>
void expect_input_error(Action action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& f : fragments) {
      EXPECT_NE(message.find(f), std::string::npos) << "\"" << f << "\" not in: " << message;
    }
  }
}

// ---- time stamps ----------------------------------------------------------------------------

TEST(UtcTime, ParsesFormatsAndAddsExactly) {
  const UtcTime t = parse_utc_time("2024-02-29T23:59:59.25Z");
  EXPECT_EQ(t.seconds, 1709251199);
  EXPECT_DOUBLE_EQ(t.fraction, 0.25);
  EXPECT_EQ(format_utc_time(t), "2024-02-29T23:59:59.25Z");
  EXPECT_EQ(format_utc_time(add_seconds(t, 0.75)), "2024-03-01T00:00:00Z");
  EXPECT_EQ(format_utc_time(add_seconds(t, -86400.5)), "2024-02-28T23:59:58.75Z");
  // Zone offsets are converted to UTC; a space may stand for the T.
  EXPECT_EQ(format_utc_time(parse_utc_time("2024-01-01 02:30:00+02:30")), "2024-01-01T00:00:00Z");
  EXPECT_EQ(format_utc_time(parse_utc_time("1969-12-31T23:59:59.5Z")), "1969-12-31T23:59:59.5Z");
  EXPECT_DOUBLE_EQ(seconds_between(parse_utc_time("2024-01-01T00:00:00Z"),
                                   parse_utc_time("2024-01-01T01:00:00.001Z")),
                   3600.001);
}

TEST(UtcTime, RejectsMalformedOrZonelessTimes) {
  for (const char* bad : {"2024-01-01T00:00:00", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-1-01T00:00:00Z", "yesterday",
                          "2024-01-01T00:00:00Zjunk", "2024-01-01T00:00:00.Z"}) {
    EXPECT_THROW(parse_utc_time(bad), InputError) << bad;
  }
}

// ---- writer and reader ----------------------------------------------------------------------

TEST(Archive, RoundTripFloat64IsExactAcrossChunksAndBlocks) {
  ScratchDir dir("archive-roundtrip");
  const auto path = write_archive(dir.file("a.h5"), "2024-05-01T12:00:00Z", 1000);
  Archive archive({path});
  ASSERT_EQ(archive.n_segments(), 1u);
  EXPECT_EQ(archive.n_samples(0), 1000);
  EXPECT_EQ(archive.channels(), three_channels());
  EXPECT_DOUBLE_EQ(archive.sample_rate_hz(), 100.0);
  EXPECT_EQ(archive.segments()[0].start_time, "2024-05-01T12:00:00Z");
  EXPECT_EQ(archive.files()[0].sample_type, SampleType::float64);
  // Blocks that do not align with the 128-sample chunks.
  for (const auto& [first, n] :
       {std::pair<std::int64_t, std::int64_t>{0, 1000}, {127, 2}, {999, 1}, {300, 0}}) {
    const auto block = archive.read_chunk(0, first, n);
    ASSERT_EQ(block.size(), static_cast<std::size_t>(n) * 3);
    for (std::int64_t t = 0; t < n; ++t) {
      for (std::size_t c = 0; c < 3; ++c) {
        ASSERT_EQ(block[t * 3 + c], sample_value(first + t, c)) << t << ", " << c;
      }
    }
  }
  // The file carries the contract's attributes, and no temporary file is left.
  const hdf5::File file(path, hdf5::File::Mode::read);
  EXPECT_EQ(file.string_attribute("/", "format"), "vsense-archive");
  EXPECT_EQ(file.int_attribute("/", "format_version"), 1);
  EXPECT_TRUE(file.has_attribute("/", "created_by"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Archive, RoundTripFloat32RoundsOnceAndKeepsNaN) {
  ScratchDir dir("archive-float32");
  ArchiveWriterOptions options;
  options.sample_rate_hz = 10.0;
  options.start_time = "2024-05-01T12:00:00Z";
  options.channels = three_channels();
  const std::vector<double> rows = {0.1,     -2.5e-3, std::numeric_limits<double>::quiet_NaN(),
                                    1e5 / 3, 7.0,     -0.0};
  {
    ArchiveWriter writer(dir.file("f.h5"), options);
    writer.append(rows.data(), 2);
    EXPECT_EQ(writer.n_samples(), 2);
    writer.commit();
  }
  Archive archive({dir.file("f.h5")});
  EXPECT_EQ(archive.files()[0].sample_type, SampleType::float32);
  const auto back = archive.read_chunk(0, 0, 2);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (std::isnan(rows[i])) {
      EXPECT_TRUE(std::isnan(back[i]));
    } else {
      EXPECT_EQ(back[i], static_cast<double>(static_cast<float>(rows[i])));
    }
  }
}

TEST(Archive, WriterWithoutCommitLeavesNothing) {
  ScratchDir dir("archive-abandon");
  {
    ArchiveWriterOptions options;
    options.sample_rate_hz = 10.0;
    options.start_time = "2024-05-01T12:00:00Z";
    options.channels = three_channels();
    ArchiveWriter writer(dir.file("never.h5"), options);
    const std::vector<double> row(3, 1.0);
    writer.append(row.data(), 1);
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Archive, WriterRefusesInvalidChannels) {
  ScratchDir dir("archive-writer-invalid");
  ArchiveWriterOptions options;
  options.sample_rate_hz = 10.0;
  options.start_time = "2024-05-01T12:00:00Z";
  options.channels = three_channels("m/s2");
  expect_input_error([&] { ArchiveWriter(dir.file("x.h5"), options); }, {"x.h5", "m/s2", "S1_X"});
  options.channels = three_channels();
  options.channels[1].name = "S1_X";
  expect_input_error([&] { ArchiveWriter(dir.file("x.h5"), options); }, {"twice"});
  options.channels = three_channels();
  options.start_time = "2024-05-01 12:00";
  expect_input_error([&] { ArchiveWriter(dir.file("x.h5"), options); }, {"start time"});
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Archive, ConvertsChannelUnitsToModelUnits) {
  ScratchDir dir("archive-units");
  std::vector<ArchiveChannel> channels = {
      {"G", 1, {1, 0, 0}, "g"}, {"MM", 1, {0, 1, 0}, "mm/s^2"}, {"M", 1, {0, 0, 1}, "m/s^2"}};
  ArchiveWriterOptions options;
  options.sample_rate_hz = 10.0;
  options.start_time = "2024-05-01T12:00:00Z";
  options.channels = channels;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> rows = {1.0, 1000.0, 2.0, nan, -500.0, nan};
  {
    ArchiveWriter writer(dir.file("u.h5"), options);
    writer.append(rows.data(), 2);
    writer.commit();
  }
  Archive si({dir.file("u.h5")}, {"SI", DiscontinuityPolicy::error});
  const auto a = si.read_chunk(0, 0, 2);
  EXPECT_DOUBLE_EQ(a[0], 9.80665);
  EXPECT_DOUBLE_EQ(a[1], 1.0);
  EXPECT_DOUBLE_EQ(a[2], 2.0);
  EXPECT_TRUE(std::isnan(a[3]));
  EXPECT_DOUBLE_EQ(a[4], -0.5);
  EXPECT_TRUE(std::isnan(a[5]));
  Archive mm({dir.file("u.h5")}, {"mm-t-s", DiscontinuityPolicy::error});
  const auto b = mm.read_chunk(0, 0, 1);
  EXPECT_DOUBLE_EQ(b[0], 9806.65);
  EXPECT_DOUBLE_EQ(b[1], 1000.0);
  EXPECT_DOUBLE_EQ(b[2], 2000.0);
  EXPECT_THROW(Archive({dir.file("u.h5")}, {"imperial", DiscontinuityPolicy::error}), InputError);
  EXPECT_DOUBLE_EQ(acceleration_factor("g", "mm-t-s"), 9806.65);
}

TEST(Archive, OrdersFilesByStartTimeAndReadsAcrossFileBoundaries) {
  ScratchDir dir("archive-order");
  // Three contiguous files of 250, 100 and 400 samples at 100 Hz, given out of order.
  const auto a = write_archive(dir.file("a.h5"), "2024-05-01T12:00:00Z", 250, 0);
  const auto b = write_archive(dir.file("b.h5"), "2024-05-01T12:00:02.5Z", 100, 250);
  const auto c = write_archive(dir.file("c.h5"), "2024-05-01T12:00:03.5Z", 400, 350);
  Archive archive({c, a, b});
  ASSERT_EQ(archive.n_segments(), 1u);
  EXPECT_TRUE(archive.discontinuities().empty());
  EXPECT_EQ(archive.files()[0].path, a);
  EXPECT_EQ(archive.files()[1].path, b);
  EXPECT_EQ(archive.files()[2].path, c);
  EXPECT_EQ(archive.n_samples(0), 750);
  EXPECT_EQ(archive.total_samples(), 750);
  // One block over all three files, one inside the middle file, one across a boundary.
  for (const auto& [first, n] :
       {std::pair<std::int64_t, std::int64_t>{0, 750}, {260, 20}, {249, 102}}) {
    const auto block = archive.read_chunk(0, first, n);
    for (std::int64_t t = 0; t < n; ++t) {
      for (std::size_t k = 0; k < 3; ++k) {
        ASSERT_EQ(block[t * 3 + k], sample_value(first + t, k)) << first + t;
      }
    }
  }
  expect_input_error([&] { archive.read_chunk(0, 700, 51); }, {"700", "750"});
}

TEST(Archive, DetectsGapsAndOverlapsInWholeSamples) {
  ScratchDir dir("archive-gaps");
  // 100 Hz: a (0 .. 1 s), b starts 1 s after a ends (gap of 100 samples), c overlaps the end
  // of b by 0.5 s (50 samples).
  const auto a = write_archive(dir.file("a.h5"), "2024-05-01T00:00:00Z", 100);
  const auto b = write_archive(dir.file("b.h5"), "2024-05-01T00:00:02Z", 100);
  const auto c = write_archive(dir.file("c.h5"), "2024-05-01T00:00:02.5Z", 100);
  expect_input_error([&] { Archive({a, b, c}); }, {"gap of 100 samples", "a.h5", "b.h5", "1 more"});
  Archive split({a, b, c}, {"SI", DiscontinuityPolicy::split});
  ASSERT_EQ(split.discontinuities().size(), 2u);
  const auto& gap = split.discontinuities()[0];
  EXPECT_EQ(gap.kind, Discontinuity::Kind::gap);
  EXPECT_EQ(gap.samples, 100);
  EXPECT_NEAR(gap.seconds, 1.0, 1e-12);
  EXPECT_EQ(gap.before_path, a);
  EXPECT_EQ(gap.after_path, b);
  const auto& overlap = split.discontinuities()[1];
  EXPECT_EQ(overlap.kind, Discontinuity::Kind::overlap);
  EXPECT_EQ(overlap.samples, 50);
  EXPECT_NEAR(overlap.seconds, -0.5, 1e-12);
  ASSERT_EQ(split.n_segments(), 3u);
  EXPECT_EQ(split.segments()[2].start_time, "2024-05-01T00:00:02.5Z");
  for (std::size_t s = 0; s < 3; ++s) EXPECT_EQ(split.n_samples(s), 100);
}

TEST(Archive, HalfASampleIsTheContiguityTolerance) {
  ScratchDir dir("archive-tolerance");
  const auto a = write_archive(dir.file("a.h5"), "2024-05-01T00:00:00Z", 100);
  // b should start at 1.000 s; 4 ms late at 100 Hz is 0.4 samples: contiguous.
  const auto b = write_archive(dir.file("b.h5"), "2024-05-01T00:00:01.004Z", 100);
  // c should then start at 2.000 s on the segment's timeline: 6 ms late is 0.6 samples, a gap
  // of one sample, even though it is only 2 ms after b's own nominal end.
  const auto c = write_archive(dir.file("c.h5"), "2024-05-01T00:00:02.006Z", 100);
  Archive archive({a, b, c}, {"SI", DiscontinuityPolicy::split});
  ASSERT_EQ(archive.discontinuities().size(), 1u);
  EXPECT_EQ(archive.discontinuities()[0].samples, 1);
  EXPECT_EQ(archive.discontinuities()[0].after_path, c);
  ASSERT_EQ(archive.n_segments(), 2u);
  EXPECT_EQ(archive.n_samples(0), 200);
}

TEST(Archive, SampleRateMismatchNamesBothFiles) {
  ScratchDir dir("archive-rate");
  const auto a = write_archive(dir.file("a.h5"), "2024-05-01T00:00:00Z", 100, 0, 100.0);
  const auto b = write_archive(dir.file("b.h5"), "2024-05-01T00:00:01Z", 100, 0, 200.0);
  expect_input_error([&] { Archive({a, b}); }, {"a.h5", "b.h5", "sample_rate_hz", "200", "100"});
}

TEST(Archive, ChannelListMismatchNamesBothFiles) {
  ScratchDir dir("archive-channels");
  const auto a = write_archive(dir.file("a.h5"), "2024-05-01T00:00:00Z", 10);
  auto fewer = three_channels();
  fewer.pop_back();
  const auto b = write_archive(dir.file("b.h5"), "2024-05-01T00:00:01Z", 10, 0, 100.0, fewer);
  expect_input_error([&] { Archive({a, b}); }, {"a.h5", "b.h5", "2 channels against 3"});
  auto other_unit = three_channels();
  other_unit[2].unit = "g";
  const auto c = write_archive(dir.file("c.h5"), "2024-05-01T00:00:01Z", 10, 0, 100.0, other_unit);
  expect_input_error([&] { Archive({a, c}); }, {"a.h5", "c.h5", "channel 2", "S2_D"});
}

TEST(Archive, DataColumnsMustMatchTheChannelTable) {
  ScratchDir dir("archive-columns");
  RawArchive raw;
  raw.n_columns = 3;
  const auto path = write_raw(dir.file("cols.h5"), raw);
  expect_input_error([&] { Archive({path}); }, {"cols.h5", "/data", "3 columns", "2 channels"});
  raw = RawArchive{};
  raw.nodes = {1, 2, 3};
  const auto nodes = write_raw(dir.file("nodes.h5"), raw);
  expect_input_error([&] { Archive({nodes}); }, {"nodes.h5", "/channels/node_id"});
}

TEST(Archive, UnknownUnitNamesFileDatasetAndChannel) {
  ScratchDir dir("archive-unit");
  RawArchive raw;
  raw.units = {"g", "m/s2"};
  const auto path = write_raw(dir.file("unit.h5"), raw);
  expect_input_error([&] { Archive({path}); }, {"unit.h5", "/channels/unit[1]", "\"B\"", "m/s2"});
}

TEST(Archive, NonUnitDirectionNamesFileDatasetAndChannel) {
  ScratchDir dir("archive-direction");
  RawArchive raw;
  raw.directions = {1, 0, 0, 1, 1, 0};
  const auto path = write_raw(dir.file("dir.h5"), raw);
  expect_input_error([&] { Archive({path}); },
                     {"dir.h5", "/channels/direction[1]", "\"B\"", "not a unit vector"});
  // Rounded to four digits (norm 1 - 1e-5) is accepted; to three (1 - 1.5e-4) is not.
  raw.directions = {0.7071, 0.7071, 0, 0, 0, 1};
  EXPECT_NO_THROW(Archive({write_raw(dir.file("four.h5"), raw)}));
  raw.directions = {0.707, 0.707, 0, 0, 0, 1};
  EXPECT_THROW(Archive({write_raw(dir.file("three.h5"), raw)}), InputError);
}

TEST(Archive, ForeignOrBadAttributesAreInputErrors) {
  ScratchDir dir("archive-attrs");
  RawArchive raw;
  raw.format = "vsense-modes";
  expect_input_error([&] { Archive({write_raw(dir.file("f.h5"), raw)}); }, {"f.h5", "format"});
  raw = RawArchive{};
  raw.version = 2;
  expect_input_error([&] { Archive({write_raw(dir.file("v.h5"), raw)}); },
                     {"v.h5", "format_version"});
  raw = RawArchive{};
  raw.start = "2024-01-01T00:00:00";
  expect_input_error([&] { Archive({write_raw(dir.file("t.h5"), raw)}); },
                     {"t.h5", "start_time", "zone"});
  raw = RawArchive{};
  raw.rate = -1.0;
  expect_input_error([&] { Archive({write_raw(dir.file("r.h5"), raw)}); },
                     {"r.h5", "sample_rate_hz"});
  expect_input_error([&] { Archive({dir.file("missing.h5")}); }, {"missing.h5"});
  expect_input_error([&] { Archive(std::vector<std::string>{}); }, {"no archive files"});
}

TEST(Archive, TruncatedFileIsAOneLineInputError) {
  ScratchDir dir("archive-truncated");
  const auto path = write_archive(dir.file("cut.h5"), "2024-05-01T00:00:00Z", 5000);
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_input_error([&] { Archive({path}); }, {"cut.h5"});
  // Damaged bytes inside the data: the chunk checksums catch them when the data are read.
  const auto damaged = write_archive(dir.file("damaged.h5"), "2024-05-01T00:00:00Z", 5000);
  {
    std::fstream file(damaged, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(damaged) * 6 / 10));
    const std::string junk(2048, '\x5a');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  expect_input_error(
      [&] {
        Archive archive({damaged});
        archive.read_chunk(0, 0, archive.n_samples(0));
      },
      {"damaged.h5"});
  // Garbage that is not HDF5 at all.
  { std::ofstream(dir.file("junk.h5")) << "not an archive"; }
  expect_input_error([&] { Archive({dir.file("junk.h5")}); }, {"junk.h5", "not an HDF5 file"});
}

}  // namespace
}  // namespace vsense::io
