// The block products of the block eigen-iteration: the host BLAS implementation
// against Eigen on awkward sizes (n = 597, leading dimension n + 3), the cuBLAS
// one and the device symmetric sparse product against the host (skipped without
// a device).
#include "vsense/kernels/block_ops.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <memory>
#include <random>
#include <vector>

#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/errors.hpp"

namespace {

using Eigen::MatrixXd;
using vsense::kernels::BlockOps;
using vsense::kernels::BlockView;

constexpr std::int64_t n = 597, ld = n + 3;

/// Fixed-seed uniform(-1, 1) matrix.
MatrixXd random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  MatrixXd a(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) a(i, j) = uniform(random);
  }
  return a;
}

/// A [n, cols] block with leading dimension ld in an executor's memory, filled
/// from `values`.
struct Block {
  Block(BlockOps& ops, const MatrixXd& values)
      : storage(ops.executor(), static_cast<std::size_t>(ld * values.cols())),
        view{storage.data(), values.rows(), values.cols(), ld} {
    ops.upload(values.data(), values.rows(), view);
  }
  MatrixXd read(BlockOps& ops) const {
    MatrixXd out(view.rows, view.cols);
    ops.download(view, out.data(), view.rows);
    return out;
  }
  vsense::DeviceArray<double> storage;
  BlockView view;
};

/// Each product of `ops` against Eigen (|difference| <= 1e-13 of the operands'
/// scale: sums of at most n = 597 products of entries below 1, in a different
/// order).
void check_products(BlockOps& ops) {
  const MatrixXd a = random_matrix(n, 7, 1), b = random_matrix(n, 5, 2);
  const MatrixXd small = random_matrix(7, 5, 3);
  Block block_a(ops, a), block_b(ops, b);
  constexpr double tolerance = 1e-13 * n;

  MatrixXd c = random_matrix(7, 5, 4);
  const MatrixXd expected_tn = 2.0 * a.transpose() * b + 0.5 * c;
  ops.gemm_tn(2.0, block_a.view, block_b.view, 0.5, c.data(), c.rows());
  EXPECT_LE((c - expected_tn).cwiseAbs().maxCoeff(), tolerance);

  const MatrixXd expected_nn = -1.0 * a * small + 1.0 * b;
  ops.gemm_nn(-1.0, block_a.view, small.data(), small.rows(), 1.0, block_b.view);
  EXPECT_LE((block_b.read(ops) - expected_nn).cwiseAbs().maxCoeff(), tolerance);

  // Columns of a view (offset pointer, same leading dimension).
  MatrixXd c2(3, 2);
  ops.gemm_tn(1.0, block_a.view.columns(2, 3), block_a.view.columns(5, 2), 0.0, c2.data(), 3);
  EXPECT_LE((c2 - a.middleCols(2, 3).transpose() * a.middleCols(5, 2)).cwiseAbs().maxCoeff(),
            tolerance);

  const std::vector<double> divisors = {2.0, -4.0, 0.5, 3.0, 1.0, 8.0, -1.0};
  Block divided(ops, a);
  ops.divide_columns(divided.view, divisors.data());
  MatrixXd expected_divided = a;
  for (Eigen::Index j = 0; j < a.cols(); ++j) expected_divided.col(j) /= divisors[j];
  EXPECT_EQ((divided.read(ops) - expected_divided).cwiseAbs().maxCoeff(), 0.0);

  Block target(ops, MatrixXd::Zero(n, 3));
  ops.copy(block_a.view.columns(1, 3), target.view);
  ops.synchronize();
  EXPECT_EQ((target.read(ops) - a.middleCols(1, 3)).cwiseAbs().maxCoeff(), 0.0);
}

TEST(BlockOps, HostProductsMatchEigen) {
  const auto ops = vsense::kernels::cpu::make_block_ops(std::make_shared<vsense::CpuExecutor>());
  EXPECT_TRUE(ops->host_memory());
  check_products(*ops);
}

TEST(BlockOps, CudaProductsMatchEigen) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  const auto ops = vsense::kernels::cuda::make_block_ops(vsense::CudaExecutor::create(0));
  EXPECT_FALSE(ops->host_memory());
  check_products(*ops);
}

TEST(BlockOps, CudaWithoutTheBackendIsClassified) {
  if (vsense::CudaExecutor::compiled()) GTEST_SKIP() << "this build has the CUDA backend";
  EXPECT_THROW(vsense::kernels::cuda::make_block_ops(nullptr), vsense::NotCompiled);
}

TEST(DeviceSymmetricMatrix, ProductMatchesTheFullSymmetricMatrix) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  // A random symmetric pattern stored as its lower triangle (what the assembly
  // produces).
  std::mt19937_64 random(11);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::uniform_int_distribution<std::int64_t> column(0, n - 1);
  std::vector<Eigen::Triplet<double, std::int64_t>> entries;
  for (std::int64_t i = 0; i < n; ++i) {
    entries.emplace_back(i, i, 4.0 + uniform(random));
    for (int k = 0; k < 5; ++k) {
      const std::int64_t j = column(random);
      if (j < i) entries.emplace_back(i, j, uniform(random));
    }
  }
  Eigen::SparseMatrix<double, Eigen::ColMajor, std::int64_t> lower(n, n);
  lower.setFromTriplets(entries.begin(), entries.end());
  lower.makeCompressed();
  const auto exec = vsense::CudaExecutor::create(0);
  const vsense::kernels::cuda::DeviceSymmetricMatrix matrix(
      exec, {n, lower.outerIndexPtr(), lower.innerIndexPtr(), lower.valuePtr()});
  EXPECT_EQ(matrix.rows(), n);
  const MatrixXd x = random_matrix(n, 9, 12);
  vsense::DeviceArray<double> x_device(exec, static_cast<std::size_t>(n * 9));
  vsense::DeviceArray<double> y_device(exec, static_cast<std::size_t>(n * 9));
  x_device.copy_from_host(x.data());
  matrix.apply(x_device.data(), y_device.data(), 9);
  exec->synchronize();
  const std::vector<double> y = y_device.to_host();
  const MatrixXd expected = lower.selfadjointView<Eigen::Lower>() * x;
  const Eigen::Map<const MatrixXd> got(y.data(), n, 9);
  EXPECT_LE((got - expected).cwiseAbs().maxCoeff(), 1e-13 * n);
}

}  // namespace
