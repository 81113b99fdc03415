// `vsense place` and `vsense place-bench` end to end on a small clamped bar: every method
// writes a contract placement file; bad requests fail with one line, exit code 2 and no file;
// too few channels for the modes is a warning.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/test_support.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/io/placement_file.hpp"

namespace {

using vsense::test::run_vsense;
using vsense::test::ScratchDir;

/// A steel bar of 8 C3D8 elements (0.8 x 0.02 x 0.03 m) clamped at x = 0, with node sets.
std::string write_bar(const ScratchDir& dir) {
  const std::string path = dir.file("bar.inp");
  std::ofstream out(path);
  out << "*NODE, NSET=NALL\n";
  int id = 1;
  for (int i = 0; i <= 8; ++i) {
    for (int j = 0; j <= 1; ++j) {
      for (int k = 0; k <= 1; ++k) {
        out << id++ << ", " << 0.1 * i << ", " << 0.02 * j << ", " << 0.03 * k << "\n";
      }
    }
  }
  auto n = [](int i, int j, int k) { return 1 + 4 * i + 2 * j + k; };
  out << "*ELEMENT, TYPE=C3D8, ELSET=EALL\n";
  for (int i = 0; i < 8; ++i) {
    out << i + 1 << ", " << n(i, 0, 0) << ", " << n(i + 1, 0, 0) << ", " << n(i + 1, 1, 0)
        << ", " << n(i, 1, 0) << ", " << n(i, 0, 1) << ", " << n(i + 1, 0, 1) << ", "
        << n(i + 1, 1, 1) << ", " << n(i, 1, 1) << "\n";
  }
  out << "*NSET, NSET=CLAMP\n1, 2, 3, 4\n*NSET, NSET=TIP\n33, 34, 35, 36\n"
      << "*BOUNDARY\nCLAMP, 1, 3\n"
      << "*MATERIAL, NAME=STEEL\n*ELASTIC\n210e9, 0.3\n*DENSITY\n7850\n"
      << "*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL\n";
  return path;
}

class PlaceCommand : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("place-cli");
    const auto model = write_bar(*dir_);
    modes_ = dir_->file("modes.h5");
    const auto r = run_vsense("modes '" + model + "' --modes 6 --out '" + modes_ + "' -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static ScratchDir* dir_;
  static std::string modes_;
};
ScratchDir* PlaceCommand::dir_ = nullptr;
std::string PlaceCommand::modes_;

TEST_F(PlaceCommand, EveryMethodWritesAContractPlacementFile) {
  for (const std::string method : {"efi", "efi-dpr", "kinetic-energy", "qr", "minmac", "d-optimal",
                                   "min-variance", "two-phase"}) {
    const auto out = dir_->file("placement-" + method + ".h5");
    const auto r = run_vsense("place '" + modes_ + "' --sensors 3 --method " + method +
                              " --min-distance 0.05 --out '" + out + "' --json -q");
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    EXPECT_NE(r.out.find("\"command\":\"place\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"method\":\"" + method + "\""), std::string::npos) << r.out;
    const auto placement = vsense::io::read_placement(out);
    EXPECT_EQ(placement.method, method);
    ASSERT_EQ(placement.node_ids.size(), 3u);
    EXPECT_EQ(placement.criterion.size(), 3u);
    EXPECT_EQ(placement.n_modes, 6);
    EXPECT_EQ(placement.n_candidates, 36) << "all 36 nodes lie on the surface of a 1-element-thick bar";
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::size_t b = a + 1; b < 3; ++b) {
        double d2 = 0.0;
        for (int c = 0; c < 3; ++c) {
          d2 += std::pow(placement.coordinates[3 * a + c] - placement.coordinates[3 * b + c], 2);
        }
        EXPECT_GE(std::sqrt(d2), 0.05) << method << ": sensors closer than --min-distance";
      }
    }
    const vsense::io::hdf5::File file(out, vsense::io::hdf5::File::Mode::read);
    EXPECT_EQ(file.string_attribute("/", "format"), "vsense-placement");
    EXPECT_EQ(file.int_attribute("/", "format_version"), 1);
    EXPECT_EQ(file.string_attribute("/", "source_sha256").size(), 64u);
  }
}

TEST_F(PlaceCommand, CandidatesFromSetsAndFiles) {
  const auto out = dir_->file("tip.h5");
  auto r = run_vsense("place '" + modes_ + "' --sensors 2 --method d-optimal --candidates tip --out '" +
                      out + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto id : vsense::io::read_placement(out).node_ids) {
    EXPECT_GE(id, 33);
    EXPECT_LE(id, 36);
  }
  {
    std::ofstream list(dir_->file("nodes.txt"));
    list << "# two nodes\n20\n21\n";
  }
  r = run_vsense("place '" + modes_ + "' --sensors 2 --method qr --candidates '" + dir_->file("nodes.txt") +
                 "' --out '" + out + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ids = vsense::io::read_placement(out).node_ids;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{20, 21}));
}

TEST_F(PlaceCommand, BadRequestsFailWithOneLineAndNoOutput) {
  const auto out = dir_->file("bad.h5");
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"--sensors 40 --method d-optimal", "only 36 candidate"},
      {"--sensors 2 --method d-optimal --candidates NOSUCH", "NOSUCH"},
      {"--sensors 2 --method random", "unknown placement method"},
      {"--sensors 2 --method qr --candidates TIP --exclude TIP", "candidate set is empty"},
      {"--sensors 3 --method d-optimal --min-distance 5", "only 1 of 3"},
      {"--sensors 2 --method efi --correlation-length 0.1", "correlation-length"},
  };
  for (const auto& c : cases) {
    const auto r = run_vsense("place '" + modes_ + "' " + c.args + " --out '" + out + "' -q");
    EXPECT_EQ(r.exit_code, 2) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.args;
  }
}

TEST_F(PlaceCommand, FewerChannelsThanModesIsAWarning) {
  const auto out = dir_->file("one.h5");
  const auto r = run_vsense("place '" + modes_ + "' --sensors 1 --method d-optimal --out '" + out + "' -q");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("not identifiable"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out));
}

TEST_F(PlaceCommand, BenchWritesTheReport) {
  const auto bench = dir_->file("bench");
  const auto r = run_vsense("place-bench '" + modes_ + "' --sensors 3 --methods d-optimal,two-phase,qr --out-dir '" +
                            bench + "' --samples 50 --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"command\":\"place-bench\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"method\":\"two-phase\""), std::string::npos) << r.out;
  for (const char* name : {"place_bench.md", "place_bench.csv", "layouts.csv", "candidates.csv",
                           "placement_d-optimal.h5", "placement_two-phase.h5", "placement_qr.h5"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(bench) / name)) << name;
  }
  std::ifstream csv(std::filesystem::path(bench) / "place_bench.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 4) << "header and one row per method";
}

}  // namespace
