// Sparse times dense: the CPU kernel against Eigen's sparse product on awkward sizes (rows and
// vectors not multiples of the panel or a warp), and the cuSPARSE SpMM against the CPU
// (skipped without a device).
#include "vsense/kernels/sparse.hpp"

#include <gtest/gtest.h>

#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/tolerances.hpp"

namespace {

namespace tol = vsense::test::tolerance;

struct Csr {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> offsets;
  std::vector<std::int32_t> columns;
  std::vector<double> values;
  vsense::kernels::CsrMatrixView view() const {
    return {rows, cols, offsets.data(), columns.data(), values.data()};
  }
};

/// A random sparse matrix with empty rows, about `per_row` entries elsewhere (fixed seed).
Csr random_csr(std::int64_t rows, std::int64_t cols, int per_row, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::uniform_int_distribution<std::int32_t> column(0, static_cast<std::int32_t>(cols - 1));
  Csr a;
  a.rows = rows;
  a.cols = cols;
  a.offsets.push_back(0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<std::int32_t> row;
    if (r % 7 != 3) {
      for (int k = 0; k < per_row; ++k) row.push_back(column(random));
    }
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (const auto c : row) {
      a.columns.push_back(c);
      a.values.push_back(uniform(random));
    }
    a.offsets.push_back(static_cast<std::int64_t>(a.columns.size()));
  }
  return a;
}

std::vector<double> random_block(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> x(n);
  for (auto& v : x) v = uniform(random);
  return x;
}

/// max |y - reference| / max |reference| per vector, worst over the vectors.
double worst_relative(const std::vector<double>& y, const std::vector<double>& reference,
                      std::size_t rows, std::size_t n_vectors) {
  double worst = 0.0;
  for (std::size_t j = 0; j < n_vectors; ++j) {
    double peak = 0.0, difference = 0.0;
    for (std::size_t i = 0; i < rows; ++i) {
      peak = std::max(peak, std::abs(reference[j * rows + i]));
      difference = std::max(difference, std::abs(y[j * rows + i] - reference[j * rows + i]));
    }
    worst = std::max(worst, peak > 0.0 ? difference / peak : difference);
  }
  return worst;
}

TEST(SparseTimesDense, CpuMatchesEigenOnAwkwardSizes) {
  const Csr a = random_csr(597, 413, 23, 7);
  const std::size_t n_vectors = 37;  // one full panel of 32 and a partial one
  const auto x = random_block(413 * n_vectors, 11);
  std::vector<double> y(597 * n_vectors, -1.0);
  vsense::kernels::cpu::sparse_times_dense(vsense::CpuExecutor{}, a.view(), x.data(), n_vectors,
                                           y.data());
  Eigen::SparseMatrix<double, Eigen::RowMajor> reference(597, 413);
  std::vector<Eigen::Triplet<double>> entries;
  for (std::int64_t r = 0; r < a.rows; ++r) {
    for (auto k = a.offsets[r]; k < a.offsets[r + 1]; ++k) {
      entries.emplace_back(static_cast<int>(r), a.columns[k], a.values[k]);
    }
  }
  reference.setFromTriplets(entries.begin(), entries.end());
  const Eigen::Map<const Eigen::MatrixXd> xm(x.data(), 413, static_cast<Eigen::Index>(n_vectors));
  const Eigen::MatrixXd expected = reference * xm;
  const std::vector<double> expected_values(expected.data(), expected.data() + expected.size());
  const double worst = worst_relative(y, expected_values, 597, n_vectors);
  EXPECT_LE(worst, tol::same_sum_rel);
  // Empty rows give exact zeros.
  for (std::size_t j = 0; j < n_vectors; ++j) EXPECT_EQ(y[j * 597 + 3], 0.0) << j;
}

TEST(SparseTimesDense, CudaMatchesTheCpu) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  const Csr a = random_csr(5973, 4111, 41, 3);
  const std::size_t n_vectors = 53;
  const auto x = random_block(4111 * n_vectors, 5);
  std::vector<double> cpu(5973 * n_vectors), gpu(5973 * n_vectors, -1.0);
  vsense::kernels::cpu::sparse_times_dense(vsense::CpuExecutor{}, a.view(), x.data(), n_vectors,
                                           cpu.data());
  const auto device = vsense::CudaExecutor::create(0);
  vsense::kernels::sparse_times_dense(*device, a.view(), x.data(), n_vectors, gpu.data());
  EXPECT_LE(worst_relative(gpu, cpu, 5973, n_vectors), tol::same_sum_rel);
}

}  // namespace
