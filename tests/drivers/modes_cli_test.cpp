// The `vsense modes` and `vsense model export` commands end to end: success with --json, and
// one-line errors with non-zero exits and no output file for bad requests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/test_support.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/executor.hpp"

namespace {

using vsense::test::run_vsense;
using vsense::test::ScratchDir;

/// A steel bar of 4 C3D8 elements clamped at one end, written as .inp.
std::string write_bar(const ScratchDir& dir, const std::string& extra = "") {
  const std::string path = dir.file("bar.inp");
  std::ofstream out(path);
  out << "*NODE, NSET=NALL\n";
  int id = 1;
  for (int i = 0; i <= 4; ++i) {
    for (int j = 0; j <= 1; ++j) {
      for (int k = 0; k <= 1; ++k) {
        out << id++ << ", " << 0.1 * i << ", " << 0.02 * j << ", " << 0.03 * k << "\n";
      }
    }
  }
  auto n = [](int i, int j, int k) { return 1 + 4 * i + 2 * j + k; };
  out << "*ELEMENT, TYPE=C3D8, ELSET=EALL\n";
  for (int i = 0; i < 4; ++i) {
    out << i + 1 << ", " << n(i, 0, 0) << ", " << n(i + 1, 0, 0) << ", " << n(i + 1, 1, 0)
        << ", " << n(i, 1, 0) << ", " << n(i, 0, 1) << ", " << n(i + 1, 0, 1) << ", "
        << n(i + 1, 1, 1) << ", " << n(i, 1, 1) << "\n";
  }
  out << "*NSET, NSET=CLAMP\n1, 2, 3, 4\n*BOUNDARY\nCLAMP, 1, 3\n"
      << "*MATERIAL, NAME=STEEL\n*ELASTIC\n210e9, 0.3\n*DENSITY\n7850\n"
      << "*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL\n"
      << extra;
  return path;
}

int count_lines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n';
  return lines;
}

TEST(ModesCommand, WritesModesFileAndJsonSummary) {
  ScratchDir dir("modes-cli");
  const auto model = write_bar(dir);
  const auto out = dir.file("modes.h5");
  const auto r = run_vsense("modes '" + model + "' --modes 5 --out '" + out + "' --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"command\":\"modes\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"n_modes\":5"), std::string::npos) << r.out;
  const auto modes = vsense::io::read_modes(out);
  ASSERT_EQ(modes.n_modes(), 5u);
  EXPECT_EQ(modes.n_nodes(), 20u);
  for (std::size_t i = 1; i < modes.n_modes(); ++i) {
    EXPECT_LE(modes.frequencies_hz[i - 1], modes.frequencies_hz[i]);
  }
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
}

TEST(ModesCommand, BadRequestsFailWithOneLineAndNoOutput) {
  ScratchDir dir("modes-cli-bad");
  const auto model = write_bar(dir);
  const auto out = dir.file("modes.h5");
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"modes '" + model + "' --modes 500 --out '" + out + "'", "modes"},
      {"modes '" + model + "' --out '" + out + "'", "--modes"},
      {"modes '" + model + "' --modes 3 --out '" + out + "' --backend tpu", "tpu"},
      {"modes '" + dir.file("missing.inp") + "' --modes 3 --out '" + out + "'", "missing.inp"},
      {"modes '" + model + "' --modes 3 --out '" + out + "' --solver qr", "qr"},
      {"modes '" + model + "' --modes 3 --out '" + out + "' --solver dense --backend cpu",
       "--solver dense runs on a GPU only"},
  };
  for (const auto& c : cases) {
    const auto r = run_vsense(c.args);
    EXPECT_EQ(r.exit_code, 2) << "a bad request (README's exit codes): " << c.args;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.args;
  }
  // A malformed model: the error names file and line, on one line.
  const auto bad = write_bar(dir, "*ELEMENT, TYPE=C3D8, ELSET=EALL\n9, 1, 2, 3\n");
  const auto r = run_vsense("modes '" + bad + "' --modes 3 --out '" + out + "' -q");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bar.inp:"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(ModesCommand, CudaBackendWithoutADeviceFailsWithItsExitCodeAndOneLine) {
  if (vsense::CudaExecutor::device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  ScratchDir dir("modes-cli-cuda");
  const auto model = write_bar(dir);
  const auto out = dir.file("modes.h5");
  for (const std::string backend : {"cuda", "cuda:1"}) {
    const auto r =
        run_vsense("modes '" + model + "' --modes 3 --out '" + out + "' --backend " + backend);
    // README exit codes: 5 backend not compiled, 6 no device.
    EXPECT_EQ(r.exit_code, vsense::CudaExecutor::compiled() ? 6 : 5) << backend << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(vsense::CudaExecutor::compiled() ? "no usable CUDA device" : "CUDA"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

TEST(ModesCommand, AutoBackendWithoutADeviceRunsOnTheCpu) {
  if (vsense::CudaExecutor::device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  ScratchDir dir("modes-cli-auto");
  const auto model = write_bar(dir);
  const auto out = dir.file("modes.h5");
  const auto r = run_vsense("modes '" + model + "' --modes 3 --out '" + out +
                            "' --backend auto --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"backend\":\"cpu"), std::string::npos) << r.out;
  EXPECT_EQ(vsense::io::read_modes(out).n_modes(), 3u);
}

/// `vsense modes` on the bar, `env` (assignments) before the command, `flags` after it.
vsense::test::CommandResult run_modes_with_env(const ScratchDir& dir, const std::string& env,
                                               const std::string& out, const std::string& flags) {
  const auto model = write_bar(dir);
  return vsense::test::run_command(env + " '" + VSENSE_BINARY + "' modes '" + model +
                                   "' --modes 5 --out '" + out + "' --json " + flags);
}

TEST(ModesCommand, BackendNamesTheBlasKernelsAndTheUsersChoiceStays) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "OpenBLAS's Prescott kernels are x86-64 kernels";
#endif
  if (vsense::blas_core().empty()) GTEST_SKIP() << "the BLAS of this build is not OpenBLAS";
  ScratchDir dir("modes-cli-blas-user");
  const auto r = run_modes_with_env(dir, "OPENBLAS_CORETYPE=Prescott", dir.file("m.h5"), "-v");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OpenBLAS Prescott kernels"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("restarted with"), std::string::npos) << r.err;
}

TEST(ModesCommand, RestartsOnFasterBlasKernelsWhereOpenBlasFellBackToGenericOnes) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    GTEST_SKIP() << "OPENBLAS_CORETYPE is set for the tests";
  }
  // This test process loaded OpenBLAS with its own choice of kernels.
  const std::string here = vsense::blas_core();
  const auto faster = vsense::faster_blas_core(here, vsense::cpu_features());
  if (!faster) {
    GTEST_SKIP() << "OpenBLAS chose " << (here.empty() ? "no (not OpenBLAS)" : here)
                 << " kernels here: nothing faster to restart on";
  }
  ScratchDir dir("modes-cli-blas-restart");
  const auto restarted = run_modes_with_env(dir, "", dir.file("fast.h5"), "-v");
  ASSERT_EQ(restarted.exit_code, 0) << restarted.err;
  EXPECT_NE(restarted.out.find("OpenBLAS " + *faster + " kernels"), std::string::npos)
      << restarted.out;
  EXPECT_NE(restarted.err.find("restarted with OPENBLAS_CORETYPE=" + *faster), std::string::npos)
      << restarted.err;
  // VSENSE_KEEP_BLAS_CORE keeps OpenBLAS's choice; both give the same modes.
  const auto kept = run_modes_with_env(dir, "VSENSE_KEEP_BLAS_CORE=1", dir.file("kept.h5"), "-q");
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_NE(kept.out.find("OpenBLAS " + here + " kernels"), std::string::npos) << kept.out;
  const auto a = vsense::io::read_modes(dir.file("fast.h5"));
  const auto b = vsense::io::read_modes(dir.file("kept.h5"));
  ASSERT_EQ(a.n_modes(), 5u);
  ASSERT_EQ(b.n_modes(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(a.frequencies_hz[i], b.frequencies_hz[i], 1e-9 * b.frequencies_hz[i]) << i;
  }
}

/// `vsense modes --backend cuda <solver_args>` on the bar against the CPU: exit 0, `"backend"`
/// starting with `backend_prefix`, frequencies within 1e-8, residuals below 1e-6.
void expect_device_run_matches_the_cpu(const std::string& solver_args,
                                       const std::string& backend_prefix) {
  ScratchDir dir("modes-cli-cuda-run");
  const auto model = write_bar(dir);
  const auto on_cpu = dir.file("cpu.h5"), on_gpu = dir.file("gpu.h5");
  const auto c = run_vsense("modes '" + model + "' --modes 5 --out '" + on_cpu +
                            "' --backend cpu -q");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const auto g = run_vsense("modes '" + model + "' --modes 5 --out '" + on_gpu +
                            "' --backend cuda " + solver_args + " --json -q");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.out.find("\"backend\":\"" + backend_prefix), std::string::npos) << g.out;
  const auto a = vsense::io::read_modes(on_cpu), b = vsense::io::read_modes(on_gpu);
  ASSERT_EQ(b.n_modes(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(b.frequencies_hz[i], a.frequencies_hz[i], 1e-8 * a.frequencies_hz[i]) << i;
    EXPECT_LE(b.residuals[i], 1e-6) << i;
  }
}

TEST(ModesCommand, CudaBackendSolvesDenselyOnTheDeviceAndSaysSo) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  expect_device_run_matches_the_cpu("", "cuda (dense cuSOLVER) on cuda:0");
}

TEST(ModesCommand, CudaBlockSolverMatchesTheCpuAndSaysWhereItRan) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  expect_device_run_matches_the_cpu("--solver block", "cuda (block Lanczos on the device");
}

TEST(ModelExportCommand, WritesSymmetricMatrixMarketFiles) {
  ScratchDir dir("export-cli");
  const auto model = write_bar(dir);
  const auto r = run_vsense("model export '" + model + "' --out-dir '" + dir.file("mtx") + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream k(dir.file("mtx/K.mtx"));
  std::string header;
  std::getline(k, header);
  EXPECT_EQ(header, "%%MatrixMarket matrix coordinate real symmetric");
  std::string line;
  while (std::getline(k, line) && !line.empty() && line[0] == '%') {
  }
  std::istringstream sizes(line);
  long rows = 0, cols = 0, nnz = 0;
  sizes >> rows >> cols >> nnz;
  EXPECT_EQ(rows, 3 * 16);  // 20 nodes, 4 clamped
  EXPECT_EQ(cols, rows);
  EXPECT_GT(nnz, rows);
  EXPECT_TRUE(std::filesystem::exists(dir.file("mtx/M.mtx")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("mtx/dofs.txt")));
}

}  // namespace
