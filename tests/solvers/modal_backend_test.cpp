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
#include "vsense/kernels/supernodal.hpp"
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

/// Host BlockOps that report device memory: the block iteration then takes every path a device
/// takes (blocks staged through upload and download, storage from DeviceArray, the found modes
/// copied for the repeated-eigenvalue check), with host arithmetic.
class StagedHostOps final : public vsense::kernels::BlockOps {
public:
  StagedHostOps()
      : exec_(std::make_shared<vsense::CpuExecutor>()),
        host_(vsense::kernels::cpu::make_block_ops(exec_)) {}
  std::shared_ptr<const vsense::Executor> executor() const noexcept override { return exec_; }
  bool host_memory() const noexcept override { return false; }
  void gemm_tn(double alpha, vsense::kernels::BlockView a, vsense::kernels::BlockView b,
               double beta, double* c, std::int64_t ldc) override {
    host_->gemm_tn(alpha, a, b, beta, c, ldc);
  }
  void gemm_nn(double alpha, vsense::kernels::BlockView a, const double* b, std::int64_t ldb,
               double beta, vsense::kernels::BlockView c) override {
    host_->gemm_nn(alpha, a, b, ldb, beta, c);
  }
  void divide_columns(vsense::kernels::BlockView x, const double* divisors) override {
    host_->divide_columns(x, divisors);
  }
  void copy(vsense::kernels::BlockView from, vsense::kernels::BlockView to) override {
    host_->copy(from, to);
  }
  void upload(const double* host, std::int64_t ld, vsense::kernels::BlockView to) override {
    ++uploads;
    host_->upload(host, ld, to);
  }
  void download(vsense::kernels::BlockView from, double* host, std::int64_t ld) override {
    ++downloads;
    host_->download(from, host, ld);
  }
  void synchronize() override {}
  int uploads = 0, downloads = 0;

private:
  std::shared_ptr<const vsense::CpuExecutor> exec_;
  std::unique_ptr<vsense::kernels::BlockOps> host_;
};

/// Two identical fixed-fixed spring chains (n each): every eigenvalue is double.
std::pair<vsense::model::SparseMatrix, vsense::model::SparseMatrix> doubled_chain(
    std::int64_t n) {
  std::vector<Eigen::Triplet<double, std::int64_t>> k, m;
  for (std::int64_t copy = 0; copy < 2; ++copy) {
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t row = copy * n + i;
      k.emplace_back(row, row, 2.0e6);
      m.emplace_back(row, row, 1.0 + 0.25 * static_cast<double>(i % 3));
      if (i > 0) k.emplace_back(row, row - 1, -1.0e6);
    }
  }
  vsense::model::SparseMatrix stiffness(2 * n, 2 * n), mass(2 * n, 2 * n);
  stiffness.setFromTriplets(k.begin(), k.end());
  mass.setFromTriplets(m.begin(), m.end());
  stiffness.makeCompressed();
  mass.makeCompressed();
  return {stiffness, mass};
}

TEST(BlockIterationSpace, DeviceStagedPathsGiveTheHostPathsResults) {
  namespace detail = vsense::solvers::detail;
  const auto [stiffness, mass] = doubled_chain(300);
  vsense::solvers::ModalOptions options;
  options.n_modes = 12;
  options.block_size = 2;  // clusters of 2 = the block: the repeated-eigenvalue check runs
  const double sigma = detail::automatic_shift(stiffness, mass);
  const auto settings = detail::block_settings(stiffness.rows(), options.n_modes, options);
  const detail::CholmodShiftInvert factor(stiffness, mass, sigma);
  const detail::SymmetricProduct product(mass);

  const auto host_ops = vsense::kernels::cpu::make_block_ops(std::make_shared<vsense::CpuExecutor>());
  const auto host = detail::block_modes(detail::host_space(factor, product, *host_ops), factor,
                                        stiffness, mass, options, settings);
  StagedHostOps staged_ops;
  const auto staged = detail::block_modes(detail::host_space(factor, product, staged_ops), factor,
                                          stiffness, mass, options, settings);
  EXPECT_GT(staged_ops.uploads, 0);    // the start block, the found modes for the check
  EXPECT_GT(staged_ops.downloads, 0);  // the Ritz vectors
  ASSERT_EQ(staged.eigenvalues.size(), host.eigenvalues.size());
  EXPECT_EQ(staged.solves, host.solves);
  EXPECT_EQ(staged.iterations, host.iterations);
  // The same arithmetic in the same order: the same bits.
  for (Eigen::Index j = 0; j < host.eigenvalues.size(); ++j) {
    EXPECT_EQ(staged.eigenvalues(j), host.eigenvalues(j)) << "mode " << j + 1;
  }
  EXPECT_EQ((staged.vectors - host.vectors).cwiseAbs().maxCoeff(), 0.0);
  // And the modes are right: every eigenvalue double, residuals small.
  for (Eigen::Index j = 0; j + 1 < host.eigenvalues.size(); j += 2) {
    EXPECT_NEAR(host.eigenvalues(j), host.eigenvalues(j + 1), 1e-9 * host.eigenvalues(j + 1));
  }
  EXPECT_LE(host.residuals.maxCoeff(), 1e-8);
}

TEST(BlockIterationSpace, SupernodalViewOfTheShiftInvertFactorSolvesLikeCholmod) {
  // The view the device copy is made from: the CPU reference solve through it must give CHOLMOD's
  // solution of K - sigma M on a machine model (a wrong pointer, permutation or layout gives an
  // O(1) error).
  vsense::test::ScratchDir dir("supernodal-view");
  vsense::model::GensetOptions genset;
  genset.target_dofs = 10000;
  vsense::model::write_genset(genset, dir.file("genset.inp"));
  const auto system = system_of(vsense::model::read_inp(dir.file("genset.inp")));
  namespace detail = vsense::solvers::detail;
  const double sigma = detail::automatic_shift(system.stiffness, system.mass);
  const detail::CholmodShiftInvert factor(system.stiffness, system.mass, sigma);
  const vsense::kernels::SupernodalFactorView view = factor.supernodal_view();
  ASSERT_EQ(view.n, system.stiffness.rows());
  const auto schedule = vsense::kernels::supernodal_schedule(view);
  const Eigen::Index n = view.n, nrhs = 5;
  const Eigen::MatrixXd b = Eigen::MatrixXd::Random(n, nrhs);
  Eigen::MatrixXd expected(n, nrhs);
  factor.solve(b.data(), expected.data(), nrhs);
  Eigen::MatrixXd x = b;
  vsense::kernels::cpu::supernodal_solve(view, schedule, x.data(), n, nrhs);
  const vsense::model::SparseMatrix shifted = system.stiffness - sigma * system.mass;
  const Eigen::MatrixXd residual = shifted.selfadjointView<Eigen::Lower>() * x - b;
  double norm_a = 0.0;  // ||A||_inf of the symmetric matrix from its lower triangle
  {
    Eigen::VectorXd row_sums = Eigen::VectorXd::Zero(n);
    for (Eigen::Index j = 0; j < shifted.outerSize(); ++j) {
      for (vsense::model::SparseMatrix::InnerIterator it(shifted, j); it; ++it) {
        row_sums[it.row()] += std::abs(it.value());
        if (it.row() != it.col()) row_sums[it.col()] += std::abs(it.value());
      }
    }
    norm_a = row_sums.maxCoeff();
  }
  for (Eigen::Index j = 0; j < nrhs; ++j) {
    const double backward = residual.col(j).cwiseAbs().maxCoeff() /
                            (norm_a * x.col(j).cwiseAbs().maxCoeff());
    EXPECT_LE(backward, tol::factor_solve_backward_error) << "column " << j;
    EXPECT_LE((x.col(j) - expected.col(j)).norm(), 1e-6 * expected.col(j).norm()) << "column " << j;
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

/// Compares two modal analyses of the same model: frequencies, nodal shapes (MAC, sign-free)
/// and modal stresses.
void expect_same_modes_data(const vsense::io::ModesData& tested,
                            const vsense::io::ModesData& reference) {
  ASSERT_EQ(tested.n_modes(), reference.n_modes());
  const std::size_t n_nodes = reference.n_nodes();
  for (std::size_t j = 0; j < reference.n_modes(); ++j) {
    EXPECT_NEAR(tested.frequencies_hz[j], reference.frequencies_hz[j],
                tol::backend_frequency_rel * reference.frequencies_hz[j])
        << "mode " << j + 1;
    const double* a = reference.shapes.data() + j * n_nodes * 3;
    const double* b = tested.shapes.data() + j * n_nodes * 3;
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < n_nodes * 3; ++i) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    EXPECT_GE(ab * ab / (aa * bb), tol::backend_mac_min) << "mode " << j + 1;
    const double sign = ab < 0 ? -1.0 : 1.0;
    const double* sa = reference.nodal_stress.data() + j * n_nodes * 6;
    const double* sb = tested.nodal_stress.data() + j * n_nodes * 6;
    double peak = 0, difference = 0;
    for (std::size_t i = 0; i < n_nodes * 6; ++i) {
      peak = std::max(peak, std::abs(sa[i]));
      difference = std::max(difference, std::abs(sign * sb[i] - sa[i]));
    }
    // Eigenvector error ~ residual / relative gap (~1e-9 here), carried into the stresses.
    EXPECT_LE(difference, 1e-6 * peak) << "mode " << j + 1;
  }
}

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
  expect_same_modes_data(gpu, cpu);
}

TEST_F(CudaModalAnalysis, BlockLanczosOnTheDeviceMatchesTheCpuOnASmallGenset) {
  const auto model = genset(10000);
  ModalAnalysisOptions cpu_options;
  cpu_options.n_modes = 20;
  vsense::solvers::ModalAnalysisReport cpu_report, gpu_report;
  const auto cpu = vsense::solvers::modal_analysis(model, cpu_options, &cpu_report);
  ModalAnalysisOptions gpu_options = cpu_options;
  gpu_options.backend = ModalBackend::cuda;
  gpu_options.device_solver = vsense::solvers::DeviceSolver::block;
  const auto gpu = vsense::solvers::modal_analysis(model, gpu_options, &gpu_report);
  EXPECT_EQ(gpu_report.method, "block");
  EXPECT_EQ(gpu_report.backend.rfind("cuda (block Lanczos on the device, factor solves on the "
                                     "device) on cuda:0",
                                     0),
            0u)
      << gpu_report.backend;
  EXPECT_EQ(gpu_report.sturm_count, cpu_report.sturm_count);
  expect_same_modes_data(gpu, cpu);
}

TEST_F(CudaModalAnalysis, BlockLanczosOnTheDeviceFindsEveryModeBelowFmax) {
  const auto model = genset(10000);
  ModalAnalysisOptions cpu_options;
  cpu_options.n_modes = 8;
  cpu_options.fmax_hz = 150.0;
  vsense::solvers::ModalAnalysisReport cpu_report, gpu_report;
  const auto cpu = vsense::solvers::modal_analysis(model, cpu_options, &cpu_report);
  ModalAnalysisOptions gpu_options = cpu_options;
  gpu_options.backend = ModalBackend::cuda;
  gpu_options.device_solver = vsense::solvers::DeviceSolver::block;
  const auto gpu = vsense::solvers::modal_analysis(model, gpu_options, &gpu_report);
  EXPECT_EQ(gpu_report.sturm_count, cpu_report.sturm_count);
  EXPECT_GT(cpu.n_modes(), 8u);  // the request had to grow
  expect_same_modes_data(gpu, cpu);
}

TEST_F(CudaModalAnalysis, AboveTheDenseLimitTheBlockSolverRunsOnTheDevice) {
  const auto device = vsense::CudaExecutor::create(0);
  const std::int64_t limit = vsense::kernels::cuda::dense_modes_max_equations(*device);
  const auto model = genset(limit + 6000);
  ModalAnalysisOptions cpu_options;
  cpu_options.n_modes = 12;
  const auto cpu = vsense::solvers::modal_analysis(model, cpu_options);
  ModalAnalysisOptions options = cpu_options;
  options.backend = ModalBackend::cuda;
  options.executor = device;
  vsense::solvers::ModalAnalysisReport report;
  const auto gpu = vsense::solvers::modal_analysis(model, options, &report);
  EXPECT_EQ(report.method, "block");
  EXPECT_EQ(report.backend.rfind("cuda (block Lanczos", 0), 0u) << report.backend;
  expect_same_modes_data(gpu, cpu);
  options.device_solver = vsense::solvers::DeviceSolver::dense;
  EXPECT_THROW(vsense::solvers::modal_analysis(model, options), vsense::InputError);
}

}  // namespace
