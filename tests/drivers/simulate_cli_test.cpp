// `vsense simulate` end to end on the built-in genset (10^4 DOF): a multi-file archive in g,
// read back as one continuous segment; the truth file; placements and node lists as sensor
// sources; reproducible seeds; one-line errors without output files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include "common/test_support.hpp"
#include "vsense/io/archive.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/io/placement_file.hpp"
#include "vsense/io/truth_file.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

int count_lines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n';
  return lines;
}

// The genset's modes, computed once for all tests of this file.
class SimulateCommand : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ScratchDir>("simulate-cli");
    const auto model = dir_->file("genset.inp");
    auto r = run_vsense("model generate genset --dofs 1e4 --out '" + model + "' -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_vsense("modes '" + model + "' --modes 14 --out '" + modes_path() + "' -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string modes_path() { return dir_->file("modes.h5"); }

  static std::unique_ptr<ScratchDir> dir_;
};

std::unique_ptr<ScratchDir> SimulateCommand::dir_;

TEST_F(SimulateCommand, WritesSegmentFilesThatReadBackAsOneContinuousArchive) {
  ScratchDir out("simulate-cli-segments");
  const auto archive_path = out.file("run.h5");
  const auto r = run_vsense("simulate '" + modes_path() +
                            "' --sensor-set MOUNT_LOWER --unit g "
                            "--noise 0.001 --sample-rate 1000 --duration 20 --segment-s 8 "
                            "--start-time 2024-06-01T08:00:00Z --seed 3 --truth-accelerations "
                            "--out '" +
                            archive_path + "' --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"command\":\"simulate\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"n_channels\":36"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"load_set\":\"ENGINE_FEET\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"broadband_set\":\"MOUNT_UPPER\""), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(r.out), 1);

  std::vector<std::string> files;
  for (int k = 0; k < 3; ++k) files.push_back(out.file("run-00" + std::to_string(k) + ".h5"));
  for (const auto& f : files) EXPECT_TRUE(fs::exists(f)) << f;
  vsense::io::Archive archive({files[2], files[0], files[1]});
  ASSERT_EQ(archive.n_segments(), 1u);
  EXPECT_EQ(archive.n_samples(0), 20000);
  EXPECT_EQ(archive.segments()[0].start_time, "2024-06-01T08:00:00Z");
  EXPECT_EQ(archive.files()[2].start_time, "2024-06-01T08:00:16Z");
  ASSERT_EQ(archive.n_channels(), 36u);
  EXPECT_EQ(archive.channels()[0].unit, "g");
  EXPECT_DOUBLE_EQ(archive.to_model_units()[0], 9.80665);

  // The frame under the mounts moves, measurably above the 1 mg noise, and stays finite.
  const auto block = archive.read_chunk(0, 7000, 2000);  // across the first file boundary
  double sum_sq = 0.0;
  for (const double v : block) {
    ASSERT_TRUE(std::isfinite(v));
    sum_sq += v * v;
  }
  const double rms_si = std::sqrt(sum_sq / static_cast<double>(block.size()));
  EXPECT_GT(rms_si, 0.01);
  EXPECT_LT(rms_si, 100.0);

  const vsense::io::TruthReader truth(out.file("run-truth.h5"));
  EXPECT_EQ(truth.n_samples(), 20000);
  EXPECT_EQ(truth.info().n_modes(), 14u);
  EXPECT_TRUE(truth.info().with_accelerations);
  EXPECT_EQ(truth.archive_files(),
            (std::vector<std::string>{"run-000.h5", "run-001.h5", "run-002.h5"}));
  EXPECT_EQ(truth.file_first_sample(), (std::vector<std::int64_t>{0, 8000, 16000}));
  // Noise-free channel = direction . Phi q'' at the node; the noise is 1 mg RMS, so a sample
  // lies within 6 sigma of it (and float32 storage adds ~1e-7 relative).
  const auto modes = vsense::io::read_modes(modes_path());
  const auto acc = truth.modal_accelerations(7000, 2000);
  std::unordered_map<std::int64_t, std::size_t> index;
  for (std::size_t j = 0; j < modes.n_nodes(); ++j) index[modes.node_ids[j]] = j;
  double worst = 0.0;
  for (std::size_t t = 0; t < 2000; ++t) {
    for (std::size_t c = 0; c < 36; ++c) {
      const auto& ch = archive.channels()[c];
      const std::size_t node = index.at(ch.node_id);
      double expected = 0.0;
      for (std::size_t i = 0; i < 14; ++i) {
        const auto mode = static_cast<std::size_t>(truth.info().mode_indices[i]);
        for (std::size_t k = 0; k < 3; ++k) {
          expected += ch.direction[k] * modes.shapes[(mode * modes.n_nodes() + node) * 3 + k] *
                      acc[t * 14 + i];
        }
      }
      worst = std::max(worst, std::abs(block[t * 36 + c] - expected) / 9.80665);
    }
  }
  EXPECT_LT(worst, 6 * 0.001 + 1e-6 * rms_si);
}

TEST_F(SimulateCommand, PlacementAndNodeListsChooseTheChannels) {
  ScratchDir out("simulate-cli-sensors");
  const auto modes = vsense::io::read_modes(modes_path());
  const auto& feet = modes.node_sets.at("ENGINE_FEET");
  vsense::io::PlacementData placement;
  placement.node_ids = {feet[0], feet[5]};
  placement.criterion = {1.0, 2.0};
  placement.method = "test";
  placement.n_modes = 14;
  placement.n_candidates = static_cast<std::int64_t>(feet.size());
  vsense::io::write_placement(out.file("placement.h5"), placement);
  auto r =
      run_vsense("simulate '" + modes_path() + "' --placement '" + out.file("placement.h5") +
                 "' --directions xz --duration 1 --no-truth --out '" + out.file("p.h5") + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  vsense::io::Archive from_placement({out.file("p.h5")});
  ASSERT_EQ(from_placement.n_channels(), 4u);
  EXPECT_EQ(from_placement.channels()[1].name, "N" + std::to_string(feet[0]) + "_Z");
  EXPECT_FALSE(fs::exists(out.file("p-truth.h5")));

  {
    std::ofstream list(out.file("nodes.txt"));
    list << "# one triaxial sensor and one uniaxial at 45 degrees\n"
         << feet[1] << "\n\n"
         << feet[2] << " 1 0 1   # x-z diagonal\n";
  }
  r = run_vsense("simulate '" + modes_path() + "' --sensors '" + out.file("nodes.txt") +
                 "' --unit mm/s^2 --duration 1 --out '" + out.file("n.h5") + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  vsense::io::Archive from_list({out.file("n.h5")});
  ASSERT_EQ(from_list.n_channels(), 4u);
  EXPECT_EQ(from_list.channels()[3].name, "N" + std::to_string(feet[2]) + "_D1");
  EXPECT_NEAR(from_list.channels()[3].direction[0], std::sqrt(0.5), 1e-15);
  EXPECT_EQ(from_list.channels()[3].unit, "mm/s^2");
  EXPECT_TRUE(fs::exists(out.file("n-truth.h5")));
}

TEST_F(SimulateCommand, SameSeedSameSamplesAndRunUpsFollowTheSpeedProfile) {
  ScratchDir out("simulate-cli-seed");
  const std::string common = "simulate '" + modes_path() +
                             "' --sensor-set MOUNT_UPPER --duration 4 --sample-rate 500 "
                             "--run-up 600:3 --noise 0.01 ";
  ASSERT_EQ(run_vsense(common + "--seed 9 --out '" + out.file("a.h5") + "' -q").exit_code, 0);
  ASSERT_EQ(run_vsense(common + "--seed 9 --out '" + out.file("b.h5") + "' -q").exit_code, 0);
  ASSERT_EQ(run_vsense(common + "--seed 10 --out '" + out.file("c.h5") + "' -q").exit_code, 0);
  vsense::io::Archive a({out.file("a.h5")}), b({out.file("b.h5")}), c({out.file("c.h5")});
  const auto xa = a.read_chunk(0, 0, 2000);
  EXPECT_EQ(xa, b.read_chunk(0, 0, 2000));
  EXPECT_NE(xa, c.read_chunk(0, 0, 2000));
  const vsense::io::TruthReader truth(out.file("a-truth.h5"));
  const auto speed = truth.speed_rpm(0, 2000);
  EXPECT_DOUBLE_EQ(speed[0], 600.0);
  EXPECT_DOUBLE_EQ(speed[750], 1050.0);  // 1.5 s into the 3 s ramp
  EXPECT_DOUBLE_EQ(speed[1999], 1500.0);
}

TEST_F(SimulateCommand, BadRequestsFailWithOneLineAndNoOutput) {
  ScratchDir out("simulate-cli-bad");
  const auto target = out.file("x.h5");
  const std::string base = "simulate '" + modes_path() + "' --out '" + target + "' ";
  // Command-line syntax errors are CLI11's: the reason, then its "Run with --help" hint.
  struct Case {
    std::string args, expect;
    bool syntax = false;
  };
  const std::vector<Case> cases = {
      {base + "--sensor-set NO_SUCH_SET", "NO_SUCH_SET"},
      {base, "--sensor-set", true},
      {base + "--sensor-set FRAME_TOP --placement '" + modes_path() + "'", "2 were given", true},
      {base + "--sensor-set FRAME_TOP --unit furlongs", "furlongs", true},
      {base + "--sensor-set FRAME_TOP --start-time yesterday", "yesterday"},
      {base + "--sensor-set FRAME_TOP --damping 0.02,0.03", "--damping"},
      {base + "--placement '" + modes_path() + "'", "placement file"},
      {base + "--sensor-set FRAME_TOP --run-up 600", "--run-up"},
      {base + "--sensor-set FRAME_TOP --broadband-band 600:100", "band"},
  };
  for (const auto& c : cases) {
    const auto r = run_vsense(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_EQ(count_lines(r.err), c.syntax ? 2 : 1) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.substr(0, r.err.find('\n')).find(c.expect), std::string::npos) << c.args << "\n"
                                                                                   << r.err;
  }
  EXPECT_TRUE(fs::is_empty(out.path()));
}

}  // namespace
