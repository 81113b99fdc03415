// The backends of the modal analysis: the dense path (the one `--backend cuda` runs, here also
// on the CPU executor, so that its shift, normalisation and checks are tested without a
// device) against the sparse CPU solver, and the CUDA backend against the CPU on a small genset
// (skipped without a device).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <cmath>
#include <string>

#include "../../solvers/modal/modal_internal.hpp"
#include "common/test_support.hpp"
#include "common/tolerances.hpp"
#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/genset.hpp"
#include "vsense/model/inp_reader.hpp"
#include "vsense/solvers/modal.hpp"
#include "vsense/solvers/modal_analysis.hpp"

namespace {

namespace tol = vsense::test::tolerance;
using vsense::solvers::ModalAnalysisOptions;
using vsense::solvers::ModalBackend;

vsense::model::SystemMatrices system_of(const vsense::model::Model& model) {
  return vsense::model::assemble(model, vsense::model::build_dof_map(model));
}

/// (x_a^T M x_b)^2: the mass-weighted MAC of two mass-normalised vectors (sign-free).
double mass_mac(const vsense::model::SparseMatrix& mass, const Eigen::VectorXd& a,
                const Eigen::VectorXd& b) {
  const Eigen::VectorXd mb = mass.selfadjointView<Eigen::Lower>() * b;
  const double ab = a.dot(mb);
  const double aa = a.dot(mass.selfadjointView<Eigen::Lower>() * a), bb = b.dot(mb);
  return ab * ab / (aa * bb);
}

void expect_same_modes(const vsense::solvers::ModalResult& tested,
                       const vsense::solvers::ModalResult& reference,
                       const vsense::model::SparseMatrix& mass, double rigid_below) {
  ASSERT_EQ(tested.eigenvalues.size(), reference.eigenvalues.size());
  for (Eigen::Index j = 0; j < reference.eigenvalues.size(); ++j) {
    const double lambda = reference.eigenvalues(j);
    if (std::abs(lambda) <= rigid_below) {
      // Rigid-body modes: zero to round-off of the largest, and arbitrary within their space.
      EXPECT_LE(std::abs(tested.eigenvalues(j)), rigid_below) << "mode " << j + 1;
      continue;
    }
    EXPECT_NEAR(std::sqrt(tested.eigenvalues(j)), std::sqrt(lambda),
                tol::backend_frequency_rel * std::sqrt(lambda))
        << "mode " << j + 1;
    EXPECT_GE(mass_mac(mass, tested.vectors.col(j), reference.vectors.col(j)), tol::backend_mac_min)
        << "mode " << j + 1;
    EXPECT_LE(tested.residuals(j), 1e-6) << "mode " << j + 1;
  }
}

TEST(DenseModalPath, OnTheCpuExecutorMatchesTheSparseSolver) {
  for (const std::string name : {"ccx/c3d20_cantilever.inp", "ccx/mixed_springs_masses.inp",
                                 "ccx/free_free_c3d20.inp"}) {
    SCOPED_TRACE(name);
    const auto model = vsense::model::read_inp(vsense::test::data_path(name));
    const auto system = system_of(model);
    vsense::solvers::ModalOptions options;
    options.n_modes = 12;
    const auto sparse = vsense::solvers::solve_lowest_modes(system.stiffness, system.mass, options);
    const auto dense = vsense::solvers::detail::solve_lowest_modes_dense(
        vsense::CpuExecutor{}, system.stiffness, system.mass, options);
    EXPECT_EQ(dense.method, "dense");
    expect_same_modes(dense, sparse, system.mass, 1e-6 * sparse.eigenvalues(11));
  }
}

TEST(DenseModalPath, SingularPencilIsANumericalError) {
  // Massless hourglass modes: K - sigma M is singular, which only the sparse CPU path handles
  // (and `--backend auto` falls back to it).
  const auto model =
      vsense::model::read_inp(vsense::test::data_path("inp/c3d20r_beam_singular_pencil.inp"));
  const auto system = system_of(model);
  vsense::solvers::ModalOptions options;
  options.n_modes = 4;
  try {
    vsense::solvers::detail::solve_lowest_modes_dense(vsense::CpuExecutor{}, system.stiffness,
                                                      system.mass, options);
    ADD_FAILURE() << "the singular pencil was solved densely";
  } catch (const vsense::NumericalError& error) {
    std::cout << "dense path on the singular pencil: " << error.what() << "\n";
  }
}

TEST(ModalAnalysisBackend, CudaWithoutADeviceIsAClassifiedError) {
  if (vsense::CudaExecutor::device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  const auto model = vsense::model::read_inp(vsense::test::data_path("ccx/c3d8_cantilever.inp"));
  ModalAnalysisOptions options;
  options.backend = ModalBackend::cuda;
  options.n_modes = 4;
  if (vsense::CudaExecutor::compiled()) {
    EXPECT_THROW(vsense::solvers::modal_analysis(model, options), vsense::DeviceUnavailable);
  } else {
    EXPECT_THROW(vsense::solvers::modal_analysis(model, options), vsense::NotCompiled);
  }
}

class CudaModalAnalysis : public ::testing::Test {
protected:
  void SetUp() override {
    if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  }
  static vsense::model::Model genset(std::int64_t dofs) {
    vsense::test::ScratchDir dir("cuda-modal");
    vsense::model::GensetOptions options;
    options.target_dofs = dofs;
    vsense::model::write_genset(options, dir.file("genset.inp"));
    return vsense::model::read_inp(dir.file("genset.inp"));
  }
};

TEST_F(CudaModalAnalysis, DenseOnTheDeviceMatchesTheCpuOnASmallGenset) {
  const auto model = genset(10000);
  ModalAnalysisOptions cpu_options;
  cpu_options.n_modes = 20;
  vsense::solvers::ModalAnalysisReport cpu_report, gpu_report;
  const auto cpu = vsense::solvers::modal_analysis(model, cpu_options, &cpu_report);
  ModalAnalysisOptions gpu_options = cpu_options;
  gpu_options.backend = ModalBackend::cuda;
  const auto gpu = vsense::solvers::modal_analysis(model, gpu_options, &gpu_report);
  EXPECT_EQ(gpu_report.method, "dense");
  EXPECT_EQ(gpu_report.backend.rfind("cuda (dense cuSOLVER) on cuda:0", 0), 0u) << gpu_report.backend;
  EXPECT_EQ(gpu_report.sturm_count, cpu_report.sturm_count);  // the check ran for both
  ASSERT_EQ(gpu.n_modes(), cpu.n_modes());
  const std::size_t n_nodes = cpu.n_nodes();
  for (std::size_t j = 0; j < cpu.n_modes(); ++j) {
    EXPECT_NEAR(gpu.frequencies_hz[j], cpu.frequencies_hz[j],
                tol::backend_frequency_rel * cpu.frequencies_hz[j])
        << "mode " << j + 1;
    // Nodal shapes (the mass-weighted MAC is checked in DenseModalPath) and stresses, after
    // matching the sign.
    const double* a = cpu.shapes.data() + j * n_nodes * 3;
    const double* b = gpu.shapes.data() + j * n_nodes * 3;
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < n_nodes * 3; ++i) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    EXPECT_GE(ab * ab / (aa * bb), tol::backend_mac_min) << "mode " << j + 1;
    const double sign = ab < 0 ? -1.0 : 1.0;
    const double* sa = cpu.nodal_stress.data() + j * n_nodes * 6;
    const double* sb = gpu.nodal_stress.data() + j * n_nodes * 6;
    double peak = 0, difference = 0;
    for (std::size_t i = 0; i < n_nodes * 6; ++i) {
      peak = std::max(peak, std::abs(sa[i]));
      difference = std::max(difference, std::abs(sign * sb[i] - sa[i]));
    }
    // Eigenvector error ~ residual / relative gap (~1e-9 here), carried into the stresses.
    EXPECT_LE(difference, 1e-6 * peak) << "mode " << j + 1;
  }
}

TEST_F(CudaModalAnalysis, AboveTheDenseLimitAutoFallsBackAndCudaFails) {
  const auto device = vsense::CudaExecutor::create(0);
  const std::int64_t limit = vsense::kernels::cuda::dense_modes_max_equations(*device);
  const auto model = genset(limit + 6000);
  ModalAnalysisOptions options;
  options.n_modes = 4;
  options.backend = ModalBackend::cuda;
  options.executor = device;
  EXPECT_THROW(vsense::solvers::modal_analysis(model, options), vsense::NotCompiled);
  options.cpu_fallback = true;
  vsense::solvers::ModalAnalysisReport report;
  const auto data = vsense::solvers::modal_analysis(model, options, &report);
  EXPECT_EQ(report.backend.rfind("cpu", 0), 0u) << report.backend;
  EXPECT_EQ(data.n_modes(), 4u);
}

}  // namespace
