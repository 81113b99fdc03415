// The modes file: round trip, contract attributes, atomic writing, damaged and foreign files.
#include "vsense/io/modes_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/test_support.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {
namespace {

namespace fs = std::filesystem;

// A small but complete modes data set: 2 modes on 4 nodes, values that show misplaced
// indices (each entry differs).
ModesData sample_modes(std::size_t n_nodes = 4, std::size_t m = 2) {
  ModesData data;
  for (std::size_t i = 0; i < n_nodes; ++i) {
    data.node_ids.push_back(static_cast<std::int64_t>(10 + 7 * i));
    for (int c = 0; c < 3; ++c) data.coordinates.push_back(0.5 * i + 0.125 * c);
  }
  for (std::size_t k = 0; k < m; ++k) {
    const double lambda = 100.0 * (k + 1) * (k + 1);
    data.eigenvalues.push_back(lambda);
    data.frequencies_hz.push_back(std::sqrt(lambda) / (2 * 3.141592653589793));
    data.residuals.push_back(1e-14 * (k + 1));
    for (std::size_t i = 0; i < n_nodes * 3; ++i) data.shapes.push_back(1.0 / (1 + i + 100 * k));
    for (std::size_t i = 0; i < n_nodes * 6; ++i) data.nodal_stress.push_back(-3.5e6 * i + k);
  }
  data.units = "mm-t-s";
  data.source_sha256 = std::string(64, 'a');
  data.source_file = "genset.inp";
  return data;
}

// No file and no temporary left in the directory.
bool directory_is_empty(const fs::path& directory) {
  return fs::is_empty(directory);
}

TEST(ModesFile, RoundTripKeepsEveryValue) {
  test::ScratchDir dir("modes");
  const ModesData written = sample_modes();
  write_modes(dir.file("modes.h5"), written);
  const ModesData read = read_modes(dir.file("modes.h5"));
  EXPECT_EQ(read.node_ids, written.node_ids);
  EXPECT_EQ(read.coordinates, written.coordinates);
  EXPECT_EQ(read.eigenvalues, written.eigenvalues);
  EXPECT_EQ(read.frequencies_hz, written.frequencies_hz);
  EXPECT_EQ(read.shapes, written.shapes);
  EXPECT_EQ(read.nodal_stress, written.nodal_stress);
  EXPECT_EQ(read.residuals, written.residuals);
  EXPECT_EQ(read.units, written.units);
  EXPECT_EQ(read.source_sha256, written.source_sha256);
  EXPECT_EQ(read.source_file, written.source_file);
}

TEST(ModesFile, LargeDatasetsAreChunkedAndStillRoundTrip) {
  test::ScratchDir dir("modes");
  // 30 modes x 8000 nodes x 6 doubles = 11 MB of stress: above the compression threshold.
  const ModesData written = sample_modes(8000, 30);
  write_modes(dir.file("modes.h5"), written);
  const ModesData read = read_modes(dir.file("modes.h5"));
  EXPECT_EQ(read.shapes, written.shapes);
  EXPECT_EQ(read.nodal_stress, written.nodal_stress);
  const hdf5::File file(dir.file("modes.h5"), hdf5::File::Mode::read);
  const hdf5::Handle dataset(H5Dopen2(file.id(), "/modes/nodal_stress", H5P_DEFAULT), H5Dclose);
  ASSERT_TRUE(dataset);
  const hdf5::Handle plist(H5Dget_create_plist(dataset.get()), H5Pclose);
  EXPECT_EQ(H5Pget_layout(plist.get()), H5D_CHUNKED);
}

TEST(ModesFile, ChunksCompressedOnAllCoresDecodeThroughTheHdf5Filters) {
  // Shapes not a multiple of the chunk (edge chunks padded) in the leading, then the middle
  // dimension, with the dataset's declared filters (shuffle, deflate) applied by HDF5 when
  // reading: the same values.
  test::ScratchDir dir("chunks");
  for (const std::vector<hsize_t>& dims : {std::vector<hsize_t>{21, 20011, 3},
                                          std::vector<hsize_t>{3, 50021, 3}}) {
    std::vector<double> values(dims[0] * dims[1] * dims[2]);
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] = std::sin(0.001 * static_cast<double>(i)) * std::exp(static_cast<double>(i % 97));
    }
    {
      hdf5::File file(dir.file("c.h5"), hdf5::File::Mode::create);
      file.write("/a/b", dims, values.data());
    }
    const hdf5::File file(dir.file("c.h5"), hdf5::File::Mode::read);
    EXPECT_EQ(file.read_double("/a/b"), values);
    const hdf5::Handle dataset(H5Dopen2(file.id(), "/a/b", H5P_DEFAULT), H5Dclose);
    ASSERT_TRUE(dataset);
    const hdf5::Handle plist(H5Dget_create_plist(dataset.get()), H5Pclose);
    ASSERT_EQ(H5Pget_layout(plist.get()), H5D_CHUNKED);
    hsize_t chunk[3] = {0, 0, 0};
    ASSERT_EQ(H5Pget_chunk(plist.get(), 3, chunk), 3);
    EXPECT_TRUE(dims[0] % chunk[0] != 0 || dims[1] % chunk[1] != 0)
        << "an edge chunk: " << chunk[0] << " x " << chunk[1] << " x " << chunk[2];
    EXPECT_EQ(H5Pget_nfilters(plist.get()), 2);
    EXPECT_LT(H5Dget_storage_size(dataset.get()), values.size() * sizeof(double))
        << "the data are compressed";
  }
}

TEST(ModesFile, ContractAttributesArePresent) {
  test::ScratchDir dir("modes");
  write_modes(dir.file("modes.h5"), sample_modes());
  const hdf5::File file(dir.file("modes.h5"), hdf5::File::Mode::read);
  EXPECT_EQ(file.string_attribute("/", "format"), "vsense-modes");
  EXPECT_EQ(file.int_attribute("/", "format_version"), 1);
  EXPECT_EQ(file.string_attribute("/", "units"), "mm-t-s");
  EXPECT_EQ(file.string_attribute("/", "created_by").rfind("vsense ", 0), 0u);
  EXPECT_TRUE(std::regex_match(file.string_attribute("/", "created_at"),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << file.string_attribute("/", "created_at");
  EXPECT_EQ(file.string_attribute("/", "source_sha256"), std::string(64, 'a'));
  EXPECT_EQ(file.shape("/modes/shapes"), (std::vector<hsize_t>{2, 4, 3}));
  EXPECT_EQ(file.shape("/modes/nodal_stress"), (std::vector<hsize_t>{2, 4, 6}));
  EXPECT_EQ(file.shape("/mesh/coordinates"), (std::vector<hsize_t>{4, 3}));
}

TEST(ModesFile, ShapeMismatchIsRejectedBeforeAnyFileAppears) {
  test::ScratchDir dir("modes");
  ModesData data = sample_modes();
  data.shapes.pop_back();
  try {
    write_modes(dir.file("modes.h5"), data);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("shapes"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(directory_is_empty(dir.path()));
}

TEST(ModesFile, UnwritableDirectoryLeavesNoFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  test::ScratchDir dir("modes");
  const fs::path locked = dir.path() / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_modes((locked / "modes.h5").string(), sample_modes()), IoError);
  fs::permissions(locked, fs::perms::owner_all);
  EXPECT_TRUE(directory_is_empty(locked));
}

TEST(ModesFile, FailedFinalRenameLeavesNoTemporary) {
  // The target is a non-empty directory: everything is written, then the rename fails.
  test::ScratchDir dir("modes");
  const fs::path target = dir.path() / "modes.h5";
  fs::create_directory(target);
  std::ofstream(target / "keep") << "x";
  EXPECT_THROW(write_modes(target.string(), sample_modes()), IoError);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_TRUE(fs::is_directory(target));
}

TEST(ModesFile, MissingDirectoryIsAnIoError) {
  test::ScratchDir dir("modes");
  EXPECT_THROW(write_modes(dir.file("no/such/dir/modes.h5"), sample_modes()), IoError);
}

TEST(ModesFile, ExistingFileIsReplacedOnlyOnSuccess) {
  test::ScratchDir dir("modes");
  write_modes(dir.file("modes.h5"), sample_modes());
  ModesData bad = sample_modes();
  bad.residuals.clear();
  EXPECT_THROW(write_modes(dir.file("modes.h5"), bad), InputError);
  EXPECT_EQ(read_modes(dir.file("modes.h5")).residuals, sample_modes().residuals);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(ModesFile, TruncatedFileGivesOneLineInputErrorNamingTheFile) {
  test::ScratchDir dir("modes");
  const std::string path = dir.file("modes.h5");
  write_modes(path, sample_modes(2000, 10));
  fs::resize_file(path, fs::file_size(path) / 2);
  try {
    read_modes(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(ModesFile, NonHdf5FileGivesInputErrorNamingTheFile) {
  test::ScratchDir dir("modes");
  const std::string path = dir.file("modes.h5");
  std::ofstream(path) << "*NODE\n1, 0, 0, 0\n";
  try {
    read_modes(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_modes(dir.file("missing.h5")), InputError);
}

TEST(ModesFile, WrongFormatAttributeIsRejected) {
  test::ScratchDir dir("modes");
  const std::string path = dir.file("modes.h5");
  write_modes(path, sample_modes());
  {
    // Re-open for writing with the raw API (File has no append mode by design).
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(id, 0);
    ASSERT_GE(H5Adelete(id, "format"), 0);
    H5Fclose(id);
  }
  try {
    read_modes(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("format"), std::string::npos) << e.what();
  }
}

TEST(ModesFile, OtherFormatIsRejectedWithBothNames) {
  test::ScratchDir dir("modes");
  const std::string path = dir.file("placement.h5");
  {
    hdf5::File file(path, hdf5::File::Mode::create);
    hdf5::write_standard_attributes(file, "vsense-placement", 1, "SI", "");
    file.close();
  }
  try {
    read_modes(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("vsense-placement"), std::string::npos) << message;
    EXPECT_NE(message.find("vsense-modes"), std::string::npos) << message;
  }
}

TEST(ModesFile, WrongDatasetShapeNamesDatasetAndShapes) {
  test::ScratchDir dir("modes");
  const std::string path = dir.file("modes.h5");
  write_modes(path, sample_modes());
  {
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(id, 0);
    ASSERT_GE(H5Ldelete(id, "/modes/shapes", H5P_DEFAULT), 0);
    H5Fclose(id);
  }
  // Put back a [2, 4, 2] array where [2, 4, 3] belongs.
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(id, 0);
  const hsize_t dims[3] = {2, 4, 2};
  const std::vector<double> values(16, 1.0);
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t dataset = H5Dcreate2(id, "/modes/shapes", H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(dataset);
  H5Sclose(space);
  H5Fclose(id);
  try {
    read_modes(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": dataset /modes/shapes has shape [2, 4, 2] but expected [2, 4, 3]");
  }
}

}  // namespace
}  // namespace vsense::io
