// Dense lowest modes (the small-model modal path): the CPU reference against the sparse
// shift-invert solver on a CalculiX test block (two independent methods), a free-free model's
// rigid-body modes, and the cuSOLVER path against the CPU (skipped without a device).
#include "vsense/kernels/dense_eigen.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"
#include "vsense/solvers/modal.hpp"

namespace {

struct Dense {
  std::size_t n = 0;
  std::vector<double> k, m;
  vsense::model::SparseMatrix sparse_k, sparse_m;
};

Dense dense_of(const std::string& inp) {
  const auto model = vsense::model::read_inp(vsense::test::data_path(inp));
  const auto dofs = vsense::model::build_dof_map(model);
  auto system = vsense::model::assemble(model, dofs);
  Dense d;
  d.n = static_cast<std::size_t>(system.stiffness.rows());
  d.k.assign(d.n * d.n, 0.0);
  d.m.assign(d.n * d.n, 0.0);
  auto fill = [&](const vsense::model::SparseMatrix& a, std::vector<double>& out) {
    for (Eigen::Index c = 0; c < a.outerSize(); ++c) {
      for (vsense::model::SparseMatrix::InnerIterator it(a, c); it; ++it) {
        const auto i = static_cast<std::size_t>(it.row()), j = static_cast<std::size_t>(it.col());
        out[i * d.n + j] = out[j * d.n + i] = it.value();  // lower triangle stored
      }
    }
  };
  fill(system.stiffness, d.k);
  fill(system.mass, d.m);
  d.sparse_k = std::move(system.stiffness);
  d.sparse_m = std::move(system.mass);
  return d;
}

TEST(DenseModes, CpuMatchesTheSparseShiftInvertSolver) {
  const Dense d = dense_of("ccx/c3d8_cantilever.inp");
  const std::size_t count = 8;
  std::vector<double> values(count), vectors(d.n * count);
  const vsense::CpuExecutor cpu;
  vsense::kernels::dense_lowest_modes(cpu, d.k.data(), d.m.data(), d.n, -1e3, count,
                                      values.data(), vectors.data());
  vsense::solvers::ModalOptions options;
  options.n_modes = static_cast<int>(count);
  const auto sparse = vsense::solvers::solve_lowest_modes(d.sparse_k, d.sparse_m, options);
  const Eigen::Map<const Eigen::MatrixXd> x(vectors.data(), static_cast<Eigen::Index>(d.n),
                                            static_cast<Eigen::Index>(count));
  const Eigen::Map<const Eigen::MatrixXd> mass(d.m.data(), static_cast<Eigen::Index>(d.n),
                                               static_cast<Eigen::Index>(d.n));
  const Eigen::MatrixXd gram = x.transpose() * mass * x;
  for (std::size_t j = 0; j < count; ++j) {
    const auto jj = static_cast<Eigen::Index>(j);
    EXPECT_NEAR(values[j], sparse.eigenvalues(jj), 1e-10 * sparse.eigenvalues(jj)) << j;
    // Mass-normalised and the same shape (MAC through M, sign-free).
    EXPECT_NEAR(gram(jj, jj), 1.0, 1e-10);
    const double mac = std::pow(x.col(jj).dot(mass * sparse.vectors.col(jj)), 2);
    EXPECT_NEAR(mac, 1.0, 1e-9) << j;
  }
}

TEST(DenseModes, FreeFreeModelHasSixRigidBodyModes) {
  const Dense d = dense_of("ccx/free_free_c3d20.inp");
  std::vector<double> values(8), vectors(d.n * 8);
  vsense::kernels::dense_lowest_modes(vsense::CpuExecutor{}, d.k.data(), d.m.data(), d.n, -1e2, 8,
                                      values.data(), vectors.data());
  for (int j = 0; j < 6; ++j) EXPECT_LT(std::abs(values[static_cast<std::size_t>(j)]), 1e-6 * values[6]) << j;
  EXPECT_GT(values[6], 1.0);
}

TEST(DenseModes, CudaMatchesTheCpu) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  const Dense d = dense_of("ccx/c3d8_cantilever.inp");
  const std::size_t count = 12;
  std::vector<double> a(count), b(count), xa(d.n * count), xb(d.n * count);
  vsense::kernels::dense_lowest_modes(vsense::CpuExecutor{}, d.k.data(), d.m.data(), d.n, -1e3,
                                      count, a.data(), xa.data());
  const auto gpu = vsense::CudaExecutor::create(0);
  vsense::kernels::dense_lowest_modes(*gpu, d.k.data(), d.m.data(), d.n, -1e3, count, b.data(),
                                      xb.data());
  for (std::size_t j = 0; j < count; ++j) {
    EXPECT_NEAR(b[j], a[j], 1e-8 * a[j]) << j;  // the GPU-vs-CPU bar for frequencies
    double dot = 0.0;
    for (std::size_t i = 0; i < d.n; ++i) {
      double mx = 0.0;
      for (std::size_t l = 0; l < d.n; ++l) mx += d.m[i * d.n + l] * xa[j * d.n + l];
      dot += xb[j * d.n + i] * mx;
    }
    EXPECT_NEAR(dot * dot, 1.0, 1e-8) << j;
  }
}

vsense::kernels::LowerCscView view_of(const vsense::model::SparseMatrix& a) {
  return {a.rows(), a.outerIndexPtr(), a.innerIndexPtr(), a.valuePtr()};
}

TEST(DenseModes, SparseLowerTrianglesGiveTheDenseResult) {
  const Dense d = dense_of("ccx/c3d8_cantilever.inp");
  const std::size_t count = 6;
  std::vector<double> a(count), b(count), xa(d.n * count), xb(d.n * count);
  const vsense::CpuExecutor cpu;
  vsense::kernels::dense_lowest_modes(cpu, d.k.data(), d.m.data(), d.n, -1e3, count, a.data(),
                                      xa.data());
  vsense::kernels::dense_lowest_modes(cpu, view_of(d.sparse_k), view_of(d.sparse_m), -1e3, count,
                                      b.data(), xb.data());
  for (std::size_t j = 0; j < count; ++j) EXPECT_EQ(b[j], a[j]) << j;  // the same dense solve
  EXPECT_EQ(xb, xa);
  // K and M of different sizes are a request error.
  const vsense::kernels::LowerCscView short_m{d.sparse_m.rows() - 1, d.sparse_m.outerIndexPtr(),
                                              d.sparse_m.innerIndexPtr(), d.sparse_m.valuePtr()};
  EXPECT_THROW(vsense::kernels::dense_lowest_modes(cpu, view_of(d.sparse_k), short_m, -1e3, 1,
                                                   b.data(), xb.data()),
               vsense::InputError);
}

TEST(DenseModes, CudaFromSparseLowerTrianglesMatchesTheCpu) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  const Dense d = dense_of("ccx/free_free_c3d20.inp");
  const std::size_t count = 10;
  std::vector<double> a(count), b(count), xa(d.n * count), xb(d.n * count);
  vsense::kernels::dense_lowest_modes(vsense::CpuExecutor{}, view_of(d.sparse_k),
                                      view_of(d.sparse_m), -1e2, count, a.data(), xa.data());
  const auto gpu = vsense::CudaExecutor::create(0);
  vsense::kernels::dense_lowest_modes(*gpu, view_of(d.sparse_k), view_of(d.sparse_m), -1e2, count,
                                      b.data(), xb.data());
  // Six rigid-body modes (zero to round-off of the largest), then elastic ones to 1e-8.
  for (std::size_t j = 0; j < 6; ++j) EXPECT_LT(std::abs(b[j]), 1e-6 * a[6]) << j;
  for (std::size_t j = 6; j < count; ++j) EXPECT_NEAR(b[j], a[j], 1e-8 * a[j]) << j;
}

TEST(DenseModes, ImpossibleRequestsAreErrors) {
  const std::vector<double> k{2.0, 0.0, 0.0, 3.0}, m{1.0, 0.0, 0.0, 1.0};
  std::vector<double> values(3), vectors(6);
  EXPECT_THROW(vsense::kernels::dense_lowest_modes(vsense::CpuExecutor{}, k.data(), m.data(), 2,
                                                   -1.0, 3, values.data(), vectors.data()),
               vsense::InputError);
  // A shift above the lowest eigenvalue: K - sigma M is indefinite.
  EXPECT_THROW(vsense::kernels::dense_lowest_modes(vsense::CpuExecutor{}, k.data(), m.data(), 2,
                                                   2.5, 1, values.data(), vectors.data()),
               vsense::NumericalError);
}

}  // namespace
