// Matrix Market export: header, symmetric lower-triangle entries, exact values, parsed back.
#include "vsense/io/matrix_market.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {
namespace {

// Parses a `coordinate real symmetric` file back into a lower-triangle matrix.
model::SparseMatrix parse_symmetric(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "%%MatrixMarket matrix coordinate real symmetric");
  while (std::getline(in, line) && !line.empty() && line[0] == '%') {
  }
  std::istringstream sizes(line);
  std::int64_t rows = 0, cols = 0, nnz = 0;
  sizes >> rows >> cols >> nnz;
  std::vector<Eigen::Triplet<double, std::int64_t>> triplets;
  std::int64_t i = 0, j = 0;
  double value = 0.0;
  while (in >> i >> j >> value) {
    EXPECT_GE(i, j) << "symmetric files hold the lower triangle only";
    triplets.emplace_back(i - 1, j - 1, value);
  }
  EXPECT_EQ(static_cast<std::int64_t>(triplets.size()), nnz);
  model::SparseMatrix matrix(rows, cols);
  matrix.setFromTriplets(triplets.begin(), triplets.end());
  return matrix;
}

TEST(MatrixMarket, LowerTriangleRoundTripsExactly) {
  test::ScratchDir dir("mm");
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const std::int64_t n = 57;
  std::vector<Eigen::Triplet<double, std::int64_t>> triplets;
  for (std::int64_t i = 0; i < n; ++i) {
    triplets.emplace_back(i, i, 10.0 + uniform(random));
    for (std::int64_t j = 0; j < i; ++j) {
      // Values with full 53-bit mantissas and a wide exponent range.
      if (uniform(random) > 0.8) triplets.emplace_back(i, j, uniform(random) * std::pow(10.0, i % 30 - 15));
    }
  }
  model::SparseMatrix lower(n, n);
  lower.setFromTriplets(triplets.begin(), triplets.end());
  write_matrix_market(dir.file("k.mtx"), lower);
  const model::SparseMatrix back = parse_symmetric(dir.file("k.mtx"));
  ASSERT_EQ(back.rows(), n);
  ASSERT_EQ(back.nonZeros(), lower.nonZeros());
  EXPECT_EQ((back - lower).norm(), 0.0);
}

TEST(MatrixMarket, EntriesAboveTheDiagonalAreLeftOut) {
  test::ScratchDir dir("mm");
  model::SparseMatrix full(2, 2);
  full.insert(0, 0) = 2.0;
  full.insert(1, 0) = -1.0;
  full.insert(0, 1) = -1.0;
  full.insert(1, 1) = 2.0;
  write_matrix_market(dir.file("k.mtx"), full);
  const model::SparseMatrix back = parse_symmetric(dir.file("k.mtx"));
  EXPECT_EQ(back.nonZeros(), 3);
  EXPECT_EQ(back.coeff(0, 1), 0.0);
  EXPECT_EQ(back.coeff(1, 0), -1.0);
}

TEST(MatrixMarket, NonSquareMatrixIsRejectedAndNoFileAppears) {
  test::ScratchDir dir("mm");
  model::SparseMatrix rectangular(3, 2);
  EXPECT_THROW(write_matrix_market(dir.file("k.mtx"), rectangular), InputError);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace vsense::io
