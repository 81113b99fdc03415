// The von Mises kernel on each backend against closed-form values and the CPU reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/stress.hpp"

namespace {

TEST(VonMises, UniaxialEqualsAxialStressAndPureShearIsSqrt3Tau) {
  vsense::CpuExecutor cpu;
  const std::vector<double> stress = {250.0, 0, 0, 0, 0, 0,  // uniaxial
                                      0, 0, 0, 10.0, 0, 0,   // pure shear xy
                                      7.0, 7.0, 7.0, 0, 0, 0};  // hydrostatic
  std::vector<double> out(3);
  vsense::kernels::von_mises(cpu, stress.data(), 3, out.data());
  EXPECT_DOUBLE_EQ(out[0], 250.0);
  EXPECT_NEAR(out[1], std::sqrt(3.0) * 10.0, 1e-12);
  EXPECT_NEAR(out[2], 0.0, 1e-12);
}

TEST(VonMises, CudaMatchesCpuOnAwkwardSize) {
  if (vsense::CudaExecutor::device_count() == 0) {
    GTEST_SKIP() << "no usable CUDA device"
                 << (vsense::CudaExecutor::compiled() ? "" : " (built without CUDA)");
  }
  const std::size_t n = 100003;  // not a multiple of any block size
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal(0.0, 100.0);
  std::vector<double> stress(6 * n);
  for (auto& s : stress) s = normal(rng);
  vsense::CpuExecutor cpu;
  std::vector<double> expected(n);
  vsense::kernels::von_mises(cpu, stress.data(), n, expected.data());

  auto gpu = vsense::CudaExecutor::create(0);
  vsense::DeviceArray<double> d_stress(gpu, 6 * n), d_out(gpu, n);
  d_stress.copy_from_host(stress.data());
  vsense::kernels::von_mises(*gpu, d_stress.data(), n, d_out.data());
  gpu->synchronize();
  const auto got = d_out.to_host();
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(got[i], expected[i], 1e-12 * (1.0 + expected[i])) << "at " << i;
  }
}

TEST(Executor, UnknownSpecIsAnInputError) {
  EXPECT_THROW(vsense::make_executor("tpu"), vsense::InputError);
  EXPECT_EQ(vsense::make_executor("cpu")->backend(), vsense::Backend::cpu);
}

}  // namespace
