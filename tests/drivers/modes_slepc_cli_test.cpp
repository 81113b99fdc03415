// `vsense modes` on the SLEPc backend end to end: one process with --backend slepc, and 2 and 3
// MPI ranks with --backend auto, against the CPU path on the same model (frequencies, shapes,
// modal stresses, checks), --fmax over several ranks, and the one-line failure when the backend
// cannot be loaded.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/test_support.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/solvers/slepc.hpp"

namespace {

using vsense::test::run_command;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

// Same basis from two backends: the frequencies to round-off of the 1e-12 solver tolerance,
// the shapes and stresses to the accuracy that frequency accuracy implies for well-separated
// modes.
constexpr double frequency_tolerance = 1e-9;  // relative
constexpr double mac_minimum = 0.999999;
constexpr double stress_tolerance = 1e-5;  // relative to the mode's largest stress component

#define VSENSE_SKIP_WITHOUT_SLEPC()                                                \
  if (!vsense::solvers::slepc_compiled()) {                                        \
    GTEST_SKIP() << "this build has no SLEPc backend (VSENSE_WITH_SLEPC, Debian "  \
                    "libslepc-real-dev)";                                          \
  }

class SlepcModes : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    if (!vsense::solvers::slepc_compiled()) return;
    dir_ = new ScratchDir("modes-slepc");
    model_ = dir_->file("genset.inp");
    ASSERT_EQ(run_vsense(fmt::format("model generate genset --dofs 10000 --out '{}' -q", model_))
                  .exit_code,
              0);
    const auto r = run_vsense(fmt::format("modes '{}' --modes 12 --backend cpu --out '{}' -q",
                                          model_, dir_->file("cpu.h5")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  /// The modes file `path` holds the CPU path's basis (every mode of `path` is one of the CPU
  /// file's lowest ones, in order).
  static void expect_same_basis(const std::string& path) {
    const auto cpu = vsense::io::read_modes(dir_->file("cpu.h5"));
    const auto other = vsense::io::read_modes(path);
    ASSERT_LE(other.n_modes(), cpu.n_modes());
    ASSERT_GT(other.n_modes(), 0u);
    const std::size_t n3 = cpu.n_nodes() * 3, n6 = cpu.n_nodes() * 6;
    for (std::size_t j = 0; j < other.n_modes(); ++j) {
      EXPECT_NEAR(other.frequencies_hz[j], cpu.frequencies_hz[j],
                  frequency_tolerance * cpu.frequencies_hz[j])
          << "mode " << j + 1;
      EXPECT_LE(other.residuals[j], 1e-8) << "mode " << j + 1;
      double ab = 0, aa = 0, bb = 0;
      for (std::size_t i = 0; i < n3; ++i) {
        const double a = cpu.shapes[j * n3 + i], b = other.shapes[j * n3 + i];
        ab += a * b;
        aa += a * a;
        bb += b * b;
      }
      const double mac = ab * ab / (aa * bb);
      EXPECT_GT(mac, mac_minimum) << "mode " << j + 1;
      const double sign = ab < 0 ? -1.0 : 1.0;
      double largest = 0, worst = 0;
      for (std::size_t i = 0; i < n6; ++i) {
        largest = std::max(largest, std::abs(cpu.nodal_stress[j * n6 + i]));
        worst = std::max(worst, std::abs(cpu.nodal_stress[j * n6 + i] -
                                         sign * other.nodal_stress[j * n6 + i]));
      }
      EXPECT_LE(worst, stress_tolerance * largest) << "mode " << j + 1;
    }
  }

  static ScratchDir* dir_;
  static std::string model_;
};
ScratchDir* SlepcModes::dir_ = nullptr;
std::string SlepcModes::model_;

TEST_F(SlepcModes, OneProcessMatchesTheCpuPath) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  const std::string out = dir_->file("slepc1.h5");
  const auto r = run_vsense(fmt::format("modes '{}' --modes 12 --backend slepc --out '{}' --json",
                                        model_, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"backend\":\"slepc (SLEPc "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 rank)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"sturm_count\":-1"), std::string::npos) << "the Sturm check ran";
  EXPECT_NE(r.err.find("Sturm check passed"), std::string::npos) << r.err;
  expect_same_basis(out);
  EXPECT_TRUE(std::filesystem::exists(dir_->file("slepc1.xdmf")));
}

TEST_F(SlepcModes, TwoAndThreeRanksDistributeTheSolveAndMatchTheCpuPath) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  for (const int ranks : {2, 3}) {
    const std::string mpirun = vsense::test::mpi_launcher(ranks);
    if (mpirun.empty()) GTEST_SKIP() << "no mpirun on this machine";
    const std::string out = dir_->file(fmt::format("slepc{}.h5", ranks));
    const auto r = run_command(fmt::format(
        "OMPI_MCA_mpi_yield_when_idle=1 {} '{}' modes '{}' --modes 12 --out '{}' --json",
        mpirun, VSENSE_BINARY, model_, out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(fmt::format("{} ranks)", ranks)), std::string::npos)
        << "auto picks SLEPc under mpirun: " << r.out;
    EXPECT_NE(r.out.find(fmt::format("\"ranks\":{}", ranks)), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one summary: " << r.out;
    expect_same_basis(out);
  }
}

TEST_F(SlepcModes, EveryModeBelowAFrequencyOverTwoRanks) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  const std::string mpirun = vsense::test::mpi_launcher(2);
  if (mpirun.empty()) GTEST_SKIP() << "no mpirun on this machine";
  const auto cpu = vsense::io::read_modes(dir_->file("cpu.h5"));
  // Midway between modes 8 and 9 of the CPU basis: exactly 8 modes lie below.
  const double fmax = 0.5 * (cpu.frequencies_hz[7] + cpu.frequencies_hz[8]);
  const std::string out = dir_->file("slepc-fmax.h5");
  const auto r = run_command(fmt::format(
      "OMPI_MCA_mpi_yield_when_idle=1 {} '{}' modes '{}' --fmax {:.9g} --backend slepc --out "
      "'{}' --json",
      mpirun, VSENSE_BINARY, model_, fmax, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"n_modes\":8,"), std::string::npos) << r.out;
  expect_same_basis(out);
}

TEST(SlepcModesErrors, AnUnloadableBackendIsAOneLineErrorWithNoOutput) {
  ScratchDir dir("modes-slepc-missing");
  const std::string model = dir.file("genset.inp");
  ASSERT_EQ(run_vsense(fmt::format("model generate genset --dofs 10000 --out '{}' -q", model))
                .exit_code,
            0);
  const std::string out = dir.file("modes.h5");
  const auto r = run_command(fmt::format(
      "VSENSE_SLEPC_PLUGIN='{}' '{}' modes '{}' --modes 5 --backend slepc --out '{}'",
      dir.file("no-such-plugin.so"), VSENSE_BINARY, model, out));
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("SLEPc backend could not be loaded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-plugin.so"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
