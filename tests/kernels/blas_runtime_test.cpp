// Which OpenBLAS kernels to restart on: only a generic fallback is overridden, and only with
// kernels the CPU can run.
#include "vsense/kernels/blas_runtime.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using vsense::CpuFeatures;
using vsense::faster_blas_core;

CpuFeatures sse_only() { return {}; }
CpuFeatures avx_only() { return {.avx = true}; }
CpuFeatures avx2_fma() { return {.avx = true, .avx2 = true, .fma = true}; }
CpuFeatures avx512() { return {.avx = true, .avx2 = true, .fma = true, .avx512 = true}; }

TEST(BlasRuntime, GenericKernelsOnAnAvx512CpuRestartOnSkylakeX) {
  EXPECT_EQ(faster_blas_core("Prescott", avx512()), "SkylakeX");
  EXPECT_EQ(faster_blas_core("Core2", avx512()), "SkylakeX");
  EXPECT_EQ(faster_blas_core("Unknown", avx512()), "SkylakeX");
  EXPECT_EQ(faster_blas_core("Sandybridge", avx512()), "SkylakeX");
}

TEST(BlasRuntime, GenericKernelsGetTheBestTheCpuCanRun) {
  EXPECT_EQ(faster_blas_core("Prescott", avx2_fma()), "Haswell");
  EXPECT_EQ(faster_blas_core("Nehalem", avx2_fma()), "Haswell");
  EXPECT_EQ(faster_blas_core("Barcelona", avx2_fma()), "Haswell");
  EXPECT_EQ(faster_blas_core("Prescott", avx_only()), "Sandybridge");
  EXPECT_EQ(faster_blas_core("Sandybridge", avx2_fma()), "Haswell");
}

TEST(BlasRuntime, NoRestartWhenNothingFasterRunsHere) {
  EXPECT_FALSE(faster_blas_core("Prescott", sse_only()).has_value());
  EXPECT_FALSE(faster_blas_core("Sandybridge", avx_only()).has_value());
}

TEST(BlasRuntime, DeliberateOrUnknownChoicesAreLeftAlone) {
  for (const char* core : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids",
                           "Bulldozer", "NeoverseN1", "SomeFutureCore"}) {
    EXPECT_FALSE(faster_blas_core(core, avx512()).has_value()) << core;
  }
  EXPECT_FALSE(faster_blas_core("", avx512()).has_value()) << "not OpenBLAS";
}

TEST(BlasRuntime, NoRestartNoteWithoutARestart) {
  if (std::getenv("VSENSE_BLAS_CORE_BEFORE_RESTART") != nullptr) {
    GTEST_SKIP() << "this test process was started by a restarted vsense";
  }
  EXPECT_TRUE(vsense::blas_restart_note().empty());
}

}  // namespace
