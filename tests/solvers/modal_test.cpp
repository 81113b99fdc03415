// CPU modal solver against Eigen's dense generalized eigensolver and closed-form spring chains.
#include "vsense/solvers/modal.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>

#include "../../solvers/modal/modal_internal.hpp"
#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"
#include "vsense/model/genset.hpp"
#include "vsense/solvers/modal_analysis.hpp"
#include "vsense/solvers/slepc.hpp"
#include "vsense/solvers/sturm.hpp"

namespace vsense::solvers {
namespace {

using model::SparseMatrix;
using Triplet = Eigen::Triplet<double, std::int64_t>;

// Tolerances of these tests, in one place. The problems are well conditioned (lambda_max /
// lambda_min <= 1e5), so the dense reference itself is accurate to ~1e-13 relative on the lowest
// eigenvalues; the solver's own tolerance is 1e-12.
constexpr double eigenvalue_relative_tolerance = 1e-10;
constexpr double mac_minimum = 0.999999;
constexpr double orthonormality_tolerance = 1e-10;
constexpr double residual_tolerance = 1e-8;

SparseMatrix from_triplets(std::int64_t n, const std::vector<Triplet>& triplets) {
  SparseMatrix matrix(n, n);
  matrix.setFromTriplets(triplets.begin(), triplets.end());
  return matrix;
}

Eigen::MatrixXd dense(const SparseMatrix& lower) {
  const SparseMatrix full = lower.selfadjointView<Eigen::Lower>();
  return Eigen::MatrixXd(full);
}

// Random sparse symmetric matrix, lower triangle, about `per_row` off-diagonal entries per row,
// made positive definite by strict diagonal dominance (diagonal = row sum + `margin` * U(1, 2)).
SparseMatrix random_spd(std::int64_t n, int per_row, double margin, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::uniform_int_distribution<std::int64_t> column(0, n - 1);
  std::vector<double> row_sum(static_cast<std::size_t>(n), 0.0);
  std::vector<Triplet> triplets;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int e = 0; e < per_row / 2; ++e) {
      const std::int64_t j = column(random);
      if (j == i) continue;
      const double value = uniform(random);
      triplets.emplace_back(std::max(i, j), std::min(i, j), value);
      row_sum[i] += std::abs(value);
      row_sum[j] += std::abs(value);
    }
  }
  for (std::int64_t i = 0; i < n; ++i) {
    triplets.emplace_back(i, i, row_sum[i] + margin * (1.5 + 0.5 * uniform(random)));
  }
  return from_triplets(n, triplets);  // duplicates are summed: still dominant
}

// Free-free chain: n masses `mass` joined by n - 1 springs `stiffness`.
struct Chain {
  SparseMatrix stiffness, mass;
};
Chain free_free_chain(std::int64_t n, double stiffness, double mass) {
  std::vector<Triplet> k, m;
  for (std::int64_t i = 0; i < n; ++i) {
    const double ends = (i == 0 || i == n - 1) ? 1.0 : 2.0;
    k.emplace_back(i, i, ends * stiffness);
    if (i > 0) k.emplace_back(i, i - 1, -stiffness);
    m.emplace_back(i, i, mass);
  }
  return {from_triplets(n, k), from_triplets(n, m)};
}

// Two identical, uncoupled free-free chains (unit masses): every eigenvalue is double.
Chain two_free_free_chains(std::int64_t n, double stiffness, double mass) {
  const Chain chain = free_free_chain(n, stiffness, mass);
  std::vector<Triplet> k, m;
  for (int copy = 0; copy < 2; ++copy) {
    for (std::int64_t col = 0; col < n; ++col) {
      for (SparseMatrix::InnerIterator it(chain.stiffness, col); it; ++it) {
        k.emplace_back(it.row() + copy * n, it.col() + copy * n, it.value());
      }
      m.emplace_back(col + copy * n, col + copy * n, mass);
    }
  }
  return {from_triplets(2 * n, k), from_triplets(2 * n, m)};
}

// Eigenvalues of the free-free chain: the path graph's Laplacian has eigenvalues
// 2 - 2 cos(j pi / n), j = 0..n-1, so lambda_j = (2 k / m) (1 - cos(j pi / n)).
double chain_eigenvalue(std::int64_t j, std::int64_t n, double stiffness, double mass) {
  return 2.0 * stiffness / mass * (1.0 - std::cos(static_cast<double>(j) * std::numbers::pi / n));
}

// 3-D 7-point Laplacian on a side^3 grid with fixed boundary and unit lumped mass: eigenvalues
// a_i + a_j + a_k with a_i = 2 - 2 cos(i pi / (side + 1)), most of them 3- or 6-fold.
Chain cube_laplacian(std::int64_t side) {
  const std::int64_t n = side * side * side;
  std::vector<Triplet> k, m;
  const auto index = [&](std::int64_t x, std::int64_t y, std::int64_t z) {
    return x + side * (y + side * z);
  };
  for (std::int64_t z = 0; z < side; ++z) {
    for (std::int64_t y = 0; y < side; ++y) {
      for (std::int64_t x = 0; x < side; ++x) {
        const std::int64_t i = index(x, y, z);
        k.emplace_back(i, i, 6.0);
        m.emplace_back(i, i, 1.0);
        if (x > 0) k.emplace_back(i, index(x - 1, y, z), -1.0);
        if (y > 0) k.emplace_back(i, index(x, y - 1, z), -1.0);
        if (z > 0) k.emplace_back(i, index(x, y, z - 1), -1.0);
      }
    }
  }
  return {from_triplets(n, k), from_triplets(n, m)};
}

std::vector<double> cube_laplacian_eigenvalues(std::int64_t side, std::size_t count) {
  std::vector<double> axis, values;
  for (std::int64_t i = 1; i <= std::min<std::int64_t>(side, 12); ++i) {
    axis.push_back(2.0 - 2.0 * std::cos(static_cast<double>(i) * std::numbers::pi / (side + 1)));
  }
  for (const double a : axis) {
    for (const double b : axis) {
      for (const double c : axis) values.push_back(a + b + c);
    }
  }
  std::sort(values.begin(), values.end());
  values.resize(count);
  return values;
}

double max_orthonormality_error(const SparseMatrix& mass, const Eigen::MatrixXd& vectors) {
  const Eigen::MatrixXd gram =
      vectors.transpose() * (mass.selfadjointView<Eigen::Lower>() * vectors);
  return (gram - Eigen::MatrixXd::Identity(gram.rows(), gram.cols())).cwiseAbs().maxCoeff();
}

// Modal assurance criterion in the M inner product (sign and scale free).
double mac(const Eigen::MatrixXd& mass, const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const double ab = a.dot(mass * b);
  return ab * ab / (a.dot(mass * a) * b.dot(mass * b));
}

TEST(ModalSolver, RandomSparseProblemMatchesDenseReference) {
  const std::int64_t n = 300;
  const SparseMatrix stiffness = random_spd(n, 8, 0.05, 1);
  const SparseMatrix mass = random_spd(n, 4, 5.0, 2);
  ModalOptions options;
  options.n_modes = 12;
  const ModalResult result = solve_lowest_modes(stiffness, mass, options);

  const Eigen::MatrixXd k = dense(stiffness), m = dense(mass);
  const Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> reference(k, m);
  ASSERT_EQ(result.eigenvalues.size(), options.n_modes);
  ASSERT_EQ(result.vectors.rows(), n);
  ASSERT_EQ(result.vectors.cols(), options.n_modes);
  for (int j = 0; j < options.n_modes; ++j) {
    const double expected = reference.eigenvalues()[j];
    EXPECT_LE(std::abs(result.eigenvalues[j] - expected) / std::abs(expected),
              eigenvalue_relative_tolerance)
        << "mode " << j << ": " << result.eigenvalues[j] << " vs " << expected;
    EXPECT_GE(mac(m, result.vectors.col(j), reference.eigenvectors().col(j)), mac_minimum)
        << "mode " << j;
  }
  EXPECT_GT(result.factor_nonzeros, 0);
  EXPECT_GE(result.iterations, 1);
}

TEST(ModalSolver, FreeFreeChainMatchesClosedForm) {
  const std::int64_t n = 200;
  const double k = 3.0e6, m = 2.5;  // eigenvalues up to 4.8e6 (rad/s)^2
  const Chain chain = free_free_chain(n, k, m);
  ModalOptions options;
  options.n_modes = 15;
  const ModalResult result = solve_lowest_modes(chain.stiffness, chain.mass, options);
  // The rigid-body mode: zero up to round-off of the largest eigenvalue.
  EXPECT_LE(std::abs(result.eigenvalues[0]), 1e-12 * 4 * k / m);
  for (int j = 1; j < options.n_modes; ++j) {
    const double expected = chain_eigenvalue(j, n, k, m);
    EXPECT_LE(std::abs(result.eigenvalues[j] - expected) / expected, eigenvalue_relative_tolerance)
        << "mode " << j << ": " << result.eigenvalues[j] << " vs " << expected;
  }
  // The rigid mode is a uniform translation: x = 1 / sqrt(n m).
  const double uniform = 1.0 / std::sqrt(n * m);
  EXPECT_LE((result.vectors.col(0).cwiseAbs().array() - uniform).abs().maxCoeff(), 1e-8 * uniform);
}

TEST(ModalSolver, EigenvaluesAscendAndModesAreMassOrthonormal) {
  const Chain chain = free_free_chain(500, 1.0, 1.0);
  const SparseMatrix stiffness = random_spd(400, 6, 0.1, 3);
  const SparseMatrix mass = random_spd(400, 6, 2.0, 4);
  for (const auto& [k, m] : {std::pair{chain.stiffness, chain.mass}, std::pair{stiffness, mass}}) {
    ModalOptions options;
    options.n_modes = 25;
    const ModalResult result = solve_lowest_modes(k, m, options);
    for (int j = 1; j < options.n_modes; ++j) {
      EXPECT_LE(result.eigenvalues[j - 1], result.eigenvalues[j]);
    }
    EXPECT_LE(max_orthonormality_error(m, result.vectors), orthonormality_tolerance);
  }
}

TEST(ModalSolver, ResidualsAreSmallAndMatchTheirDefinition) {
  const Chain chain = free_free_chain(300, 2.0e5, 0.7);
  ModalOptions options;
  options.n_modes = 20;
  const ModalResult result = solve_lowest_modes(chain.stiffness, chain.mass, options);
  ASSERT_EQ(result.residuals.size(), options.n_modes);
  EXPECT_LE(result.residuals.maxCoeff(), residual_tolerance);
  // Flexible modes: exactly the contract's ||K x - lambda M x|| / ||K x||.
  const Eigen::MatrixXd k = dense(chain.stiffness), m = dense(chain.mass);
  for (int j = 1; j < options.n_modes; ++j) {
    const Eigen::VectorXd x = result.vectors.col(j);
    const double expected = (k * x - result.eigenvalues[j] * m * x).norm() / (k * x).norm();
    // Both are round-off (1e-14..1e-11, computed in different orders): same magnitude.
    EXPECT_NEAR(result.residuals[j], expected, 0.5 * expected + 1e-13) << "mode " << j;
  }
}

TEST(ModalSolver, RepeatedEigenvaluesAreAllFound) {
  // Two identical, uncoupled free-free chains: every eigenvalue is double (two rigid modes).
  const std::int64_t n = 120;
  const Chain doubled = two_free_free_chains(n, 1.0e4, 1.0);
  const SparseMatrix& stiffness = doubled.stiffness;
  const SparseMatrix& mass = doubled.mass;
  ModalOptions options;
  options.n_modes = 10;
  const ModalResult result = solve_lowest_modes(stiffness, mass, options);
  for (int j = 0; j < options.n_modes; ++j) {
    const double expected = chain_eigenvalue(j / 2, n, 1.0e4, 1.0);
    EXPECT_NEAR(result.eigenvalues[j], expected, 1e-10 * std::max(expected, 1.0))
        << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(mass, result.vectors), orthonormality_tolerance);
}

TEST(ModalSolver, AllModesOfASmallModel) {
  const Chain chain = free_free_chain(7, 1.0, 2.0);
  ModalOptions options;
  options.n_modes = 7;
  const ModalResult result = solve_lowest_modes(chain.stiffness, chain.mass, options);
  for (int j = 1; j < 7; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], chain_eigenvalue(j, 7, 1.0, 2.0), 1e-12);
  }
  EXPECT_LE(max_orthonormality_error(chain.mass, result.vectors), orthonormality_tolerance);
}

TEST(ModalSolver, MoreModesThanEquationsIsInputError) {
  const Chain chain = free_free_chain(10, 1.0, 1.0);
  ModalOptions options;
  options.n_modes = 11;
  EXPECT_THROW(solve_lowest_modes(chain.stiffness, chain.mass, options), InputError);
  options.n_modes = 0;
  EXPECT_THROW(solve_lowest_modes(chain.stiffness, chain.mass, options), InputError);
}

TEST(ModalSolver, MismatchedMatrixSizesAreInputError) {
  const Chain a = free_free_chain(10, 1.0, 1.0), b = free_free_chain(9, 1.0, 1.0);
  try {
    solve_lowest_modes(a.stiffness, b.mass, ModalOptions{});
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("10x10 but M is 9x9"), std::string::npos) << e.what();
  }
}

TEST(ModalSolver, ShiftAboveTheLowestEigenvalueIsNumericalError) {
  const Chain chain = free_free_chain(50, 1.0, 1.0);
  ModalOptions options;
  options.n_modes = 5;
  options.shift = 0.5 * (chain_eigenvalue(1, 50, 1.0, 1.0) + chain_eigenvalue(2, 50, 1.0, 1.0));
  try {
    solve_lowest_modes(chain.stiffness, chain.mass, options);
    FAIL() << "expected NumericalError";
  } catch (const NumericalError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("not positive definite"), std::string::npos) << message;
    EXPECT_NE(message.find("n = 50"), std::string::npos) << message;
  }
}

TEST(ModalSolver, ShiftOnAnEigenvalueGivesCorrectModesOrNumericalError) {
  // sigma = 0 on a free-free chain makes K - sigma M = K exactly singular (K * ones = 0 in
  // floating point). The guarantee: either a NumericalError, or a result that passed the
  // solver's residual and orthonormality checks, hence matches the closed form.
  const std::int64_t n = 60;
  const Chain chain = free_free_chain(n, 1.0, 1.0);
  ModalOptions options;
  options.n_modes = 6;
  options.shift = 0.0;
  try {
    const ModalResult result = solve_lowest_modes(chain.stiffness, chain.mass, options);
    for (int j = 0; j < options.n_modes; ++j) {
      EXPECT_NEAR(result.eigenvalues[j], chain_eigenvalue(j, n, 1.0, 1.0), 1e-8) << "mode " << j;
    }
    EXPECT_LE(max_orthonormality_error(chain.mass, result.vectors), 1e-8);
  } catch (const NumericalError& e) {
    SUCCEED() << e.what();
  }
}

TEST(ModalSolver, NonConvergenceIsNumericalError) {
  const Chain chain = free_free_chain(400, 1.0, 1.0);
  ModalOptions options;
  options.n_modes = 30;
  options.subspace_size = 31;
  options.max_iterations = 1;
  EXPECT_THROW(solve_lowest_modes(chain.stiffness, chain.mass, options), NumericalError);
}

TEST(ModalSolver, HighlyRepeatedEigenvaluesAreRecoveredByTheDeflationCheck) {
  // 6-fold and 3-fold eigenvalues: single-vector Lanczos tends to miss copies.
  const std::int64_t side = 14;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 20;
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  const auto expected = cube_laplacian_eigenvalues(side, 20);
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[j], 1e-10 * expected[j]) << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(cube.mass, result.vectors), orthonormality_tolerance);
  EXPECT_LE(result.residuals.maxCoeff(), residual_tolerance);
}

// ---- block solver, spectrum slicing, completeness ------------------------------------------

// Sizes of the clusters of equal eigenvalues (relative `tolerance`), ascending values.
std::vector<int> cluster_sizes(const std::vector<double>& sorted, double tolerance) {
  std::vector<int> sizes;
  for (std::size_t j = 0; j < sorted.size(); ++j) {
    if (j > 0 && std::abs(sorted[j] - sorted[j - 1]) <= tolerance * std::abs(sorted[j])) {
      ++sizes.back();
    } else {
      sizes.push_back(1);
    }
  }
  return sizes;
}

TEST(ModalSolver, BlockSolverFindsEveryCopyOfSixFoldEigenvaluesByItself) {
  // The cube Laplacian (side 14) has eigenvalue multiplicities 1, 3, 3, 3, 1, 6 from the
  // bottom (a_1 + a_2 + a_3 in 6 orders is the 6-fold one). A block of 8 finds all copies
  // without the repeated-eigenvalue pass.
  const std::int64_t side = 14;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 17;  // whole clusters: 1 + 3 + 3 + 3 + 1 + 6
  options.block_size = 8;
  options.deflation_check = false;
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  EXPECT_EQ(result.method, "block");
  const auto expected = cube_laplacian_eigenvalues(side, 17);
  const std::vector<double> found(result.eigenvalues.data(),
                                  result.eigenvalues.data() + result.eigenvalues.size());
  EXPECT_EQ(cluster_sizes(found, 1e-9), (std::vector<int>{1, 3, 3, 3, 1, 6}));
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[j], 1e-10 * expected[j]) << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(cube.mass, result.vectors), orthonormality_tolerance);
  EXPECT_EQ(result.recovered_modes, 0);
}

TEST(ModalSolver, BlockSmallerThanTheMultiplicityIsCompletedByTheCheck) {
  // Blocks of 2 against 6-fold eigenvalues: the block method alone may miss copies; the
  // repeated-eigenvalue pass (run because a cluster as large as the block was found) and the
  // Sturm count must end with the exact multiplicities.
  const std::int64_t side = 14;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 17;  // 1 + 3 + 3 + 3 + 1 + 6
  options.block_size = 2;
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  const auto expected = cube_laplacian_eigenvalues(side, 17);
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[j], 1e-10 * expected[j]) << "mode " << j;
  }
  const auto count = check_completeness(cube.stiffness, cube.mass, result.eigenvalues.data(),
                                        result.eigenvalues.size(), &result.ordering);
  EXPECT_EQ(count.below, 11);  // just below the 6-fold top cluster
}

TEST(ModalSolver, BlockAndSingleVectorLanczosAgree) {
  const SparseMatrix stiffness = random_spd(500, 8, 0.05, 11);
  const SparseMatrix mass = random_spd(500, 4, 5.0, 12);
  ModalOptions options;
  options.n_modes = 20;
  const ModalResult block = solve_lowest_modes(stiffness, mass, options);
  options.method = EigenMethod::lanczos;
  const ModalResult single = solve_lowest_modes(stiffness, mass, options);
  EXPECT_EQ(block.method, "block");
  EXPECT_EQ(single.method, "lanczos");
  EXPECT_GT(block.solves, 0);
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(block.eigenvalues[j], single.eigenvalues[j], 1e-10 * single.eigenvalues[j])
        << "mode " << j;
  }
}

TEST(ModalSolver, FreeFreeSolidHasSixRigidBodyModesSpanningTheRigidMotions) {
  const model::Model model = model::read_inp(test::data_path("ccx/free_free_c3d20.inp"));
  const model::DofMap dofs = model::build_dof_map(model);
  const model::SystemMatrices system = model::assemble(model, dofs);
  ModalOptions options;
  options.n_modes = 10;
  const ModalResult result = solve_lowest_modes(system.stiffness, system.mass, options);
  const double first_elastic = result.eigenvalues[6];
  ASSERT_GT(first_elastic, 0.0);
  int rigid = 0;
  for (int j = 0; j < options.n_modes; ++j) rigid += std::abs(result.eigenvalues[j]) < 1e-6 * first_elastic;
  EXPECT_EQ(rigid, 6);
  // Each rigid motion (3 translations, 3 rotations about the origin) lies in the span of the
  // six rigid modes: its M-orthogonal remainder after projection is round-off.
  const Eigen::MatrixXd phi = result.vectors.leftCols(6);
  const Eigen::MatrixXd m_phi = system.mass.selfadjointView<Eigen::Lower>() * phi;
  for (int motion = 0; motion < 6; ++motion) {
    Eigen::VectorXd u = Eigen::VectorXd::Zero(dofs.n_equations);
    for (std::size_t node = 0; node < model.n_nodes(); ++node) {
      const auto& x = model.coordinates[node];
      const double displacement[6][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1},
                                         {0, -x[2], x[1]}, {x[2], 0, -x[0]}, {-x[1], x[0], 0}};
      for (int d = 0; d < 3; ++d) {
        const auto equation = dofs.equation[3 * node + d];
        if (equation >= 0) u[equation] = displacement[motion][d];
      }
    }
    const Eigen::VectorXd remainder = u - phi * (m_phi.transpose() * u);
    const Eigen::VectorXd m_remainder = system.mass.selfadjointView<Eigen::Lower>() * remainder;
    const Eigen::VectorXd m_u = system.mass.selfadjointView<Eigen::Lower>() * u;
    EXPECT_LE(std::sqrt(std::abs(remainder.dot(m_remainder)) / u.dot(m_u)), 1e-6)
        << "rigid motion " << motion;
  }
  // The Sturm count at the top sees the 6 rigid modes too.
  const auto count = check_completeness(system.stiffness, system.mass, result.eigenvalues.data(),
                                        result.eigenvalues.size(), &result.ordering);
  EXPECT_EQ(count.below, options.n_modes - 1);
}

TEST(ModalSolver, ModesBelowABoundSpanSeveralShiftsAndMatchOneShift) {
  // Every eigenvalue of the cube Laplacian below 1.2 (48 of them, clusters up to 9-fold) in
  // slices of at most 15 modes: several shifts, each slice certified by the Sturm counts at its
  // ends.
  const std::int64_t side = 14;
  const Chain cube = cube_laplacian(side);
  const double upper = 1.2;
  std::vector<double> expected;
  for (const double value : cube_laplacian_eigenvalues(side, 1728)) {
    if (value < upper) expected.push_back(value);
  }
  ASSERT_EQ(expected.size(), 48u);
  ModalOptions options;
  options.upper = upper;
  options.slice_modes = 15;
  const ModalResult sliced = solve_lowest_modes(cube.stiffness, cube.mass, options);
  EXPECT_GE(sliced.slices, 3);
  ASSERT_EQ(sliced.eigenvalues.size(), static_cast<Eigen::Index>(expected.size()));
  ASSERT_FALSE(sliced.certified.empty());
  EXPECT_EQ(sliced.certified.back().below, static_cast<std::int64_t>(expected.size()));
  for (std::size_t j = 1; j < sliced.certified.size(); ++j) {
    EXPECT_GT(sliced.certified[j].sigma, sliced.certified[j - 1].sigma);
    EXPECT_GE(sliced.certified[j].below, sliced.certified[j - 1].below);
  }
  for (std::size_t j = 0; j < expected.size(); ++j) {
    EXPECT_NEAR(sliced.eigenvalues[static_cast<Eigen::Index>(j)], expected[j], 1e-10 * expected[j])
        << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(cube.mass, sliced.vectors), orthonormality_tolerance);
  EXPECT_LE(sliced.residuals.maxCoeff(), residual_tolerance);

  options.slice_modes = 0;  // one shift
  const ModalResult single = solve_lowest_modes(cube.stiffness, cube.mass, options);
  EXPECT_EQ(single.slices, 1);
  ASSERT_EQ(single.eigenvalues.size(), sliced.eigenvalues.size());
  for (Eigen::Index j = 0; j < single.eigenvalues.size(); ++j) {
    EXPECT_NEAR(single.eigenvalues[j], sliced.eigenvalues[j], 1e-10 * single.eigenvalues[j]);
  }
}

TEST(ModalSolver, LowestModesRequestLargerThanASliceIsSliced) {
  const std::int64_t side = 12;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 45;
  options.slice_modes = 12;
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  EXPECT_GE(result.slices, 3);
  ASSERT_EQ(result.eigenvalues.size(), 45);
  const auto expected = cube_laplacian_eigenvalues(side, 45);
  for (int j = 0; j < 45; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[j], 1e-10 * expected[j]) << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(cube.mass, result.vectors), orthonormality_tolerance);
  ASSERT_FALSE(result.certified.empty());
  EXPECT_GE(result.certified.back().below, 45);
}

TEST(ModalSolver, SliceSizeFollowsTheMemoryLeftForTheBasis) {
  // About 32 n bytes per mode (Lanczos vectors and M times them, two per mode): 3/4 of the
  // memory left, from 40 to 300 modes per shift.
  const std::size_t gib = std::size_t{1} << 30;
  EXPECT_EQ(slice_modes_in_memory(1'000'000, 8 * gib), 201);
  EXPECT_EQ(slice_modes_in_memory(1'000'000, 12 * gib), 300);
  EXPECT_EQ(slice_modes_in_memory(1'000'000, gib), 40);
  EXPECT_EQ(slice_modes_in_memory(100'000, 24 * gib), 300);
  // Unknown memory: the size fixed before the factorisation (a 4 GiB basis).
  EXPECT_EQ(slice_modes_in_memory(1'000'000, 0), default_slice_modes(1'000'000));
  EXPECT_EQ(default_slice_modes(1'000'000), 134);
}

TEST(SymmetricProduct, MatchesTheLowerTriangleProductForEveryBlockWidth) {
  // Widths that exercise each column group (16, 12, 8, 4, 2, 1) and their mixtures, on a matrix
  // small enough for one thread and one large enough for the parallel path.
  for (const std::int64_t n : {std::int64_t{40}, std::int64_t{6000}}) {
    const SparseMatrix lower = random_spd(n, 10, 1.0, 31 + static_cast<std::uint64_t>(n));
    const detail::SymmetricProduct product(lower);
    std::mt19937_64 random(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (const int width : {1, 2, 3, 5, 7, 8, 11, 12, 13, 16, 19, 28, 31, 33}) {
      Eigen::MatrixXd x(n, width);
      for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = uniform(random);
      Eigen::MatrixXd expected(n, width), y(n, width);
      detail::mass_product(lower, x.data(), expected.data(), width);
      product.apply(x.data(), y.data(), width);
      EXPECT_LE((y - expected).cwiseAbs().maxCoeff(), 1e-13 * expected.cwiseAbs().maxCoeff())
          << "n = " << n << ", width " << width;
    }
  }
}

TEST(ModalSolver, BlockLanczosNeedsOneWholeBasisPassPerBlockAndStaysMassOrthonormal) {
  // After the blocks a new block couples to are projected out, the pass over the whole basis
  // removes only round-off, so one pass suffices for most blocks (the starting blocks after a
  // restart and rank-deficient blocks take two); the Ritz vectors stay M-orthonormal and the
  // eigenvalues match the dense reference as with two passes everywhere. Both ways of keeping
  // M times the basis (whole, or the two latest blocks) give the same.
  const std::int64_t n = 900;
  const SparseMatrix stiffness = random_spd(n, 8, 0.05, 21);
  const SparseMatrix mass = random_spd(n, 4, 5.0, 22);
  const double sigma = detail::automatic_shift(stiffness, mass);
  const detail::CholmodShiftInvert factor(stiffness, mass, sigma);
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> reference(dense(stiffness),
                                                                      dense(mass));
  using MassBasis = detail::BlockLanczosSettings::MassBasis;
  for (const MassBasis kept : {MassBasis::whole, MassBasis::latest_blocks}) {
    detail::BlockLanczosSettings settings;
    settings.n_wanted = 60;
    settings.block_size = 8;
    settings.tolerance = 1e-12;
    settings.mass_basis = kept;
    const detail::BlockLanczosPairs pairs =
        detail::block_lanczos(factor, detail::SymmetricProduct(mass), settings);
    const bool whole = kept == MassBasis::whole;
    EXPECT_EQ(pairs.whole_mass_basis, whole);
    ASSERT_GT(pairs.blocks, 20);
    EXPECT_GT(pairs.restarts, 0);
    EXPECT_GE(pairs.basis_passes, pairs.blocks);
    EXPECT_LE(pairs.basis_passes, pairs.blocks + pairs.blocks / 4)
        << pairs.blocks << " blocks, " << pairs.restarts << " restarts, whole " << whole;
    EXPECT_LT(max_orthonormality_error(mass, pairs.vectors), 1e-12) << "whole " << whole;
    std::vector<double> found(pairs.eigenvalues.data(),
                              pairs.eigenvalues.data() + pairs.eigenvalues.size());
    std::sort(found.begin(), found.end());
    for (int j = 0; j < settings.n_wanted; ++j) {
      EXPECT_NEAR(found[static_cast<std::size_t>(j)], reference.eigenvalues()[j],
                  eigenvalue_relative_tolerance * std::abs(reference.eigenvalues()[j]))
          << "mode " << j << ", whole " << whole;
    }
  }
}

TEST(ModalSolver, WithMassTimesTheLatestBlocksOnlyRepeatedEigenvaluesAreAllFound) {
  // The cube's 3- and 6-fold eigenvalues with blocks of 2: the deflated passes for missed
  // copies run too, on the latest-blocks path.
  const std::int64_t side = 9;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 24;
  options.block_size = 2;
  const double sigma = detail::automatic_shift(cube.stiffness, cube.mass);
  detail::BlockLanczosSettings settings =
      detail::block_settings(cube.stiffness.rows(), options.n_modes, options);
  settings.mass_basis = detail::BlockLanczosSettings::MassBasis::latest_blocks;
  const detail::CholmodShiftInvert factor(cube.stiffness, cube.mass, sigma);
  const ModalResult result = detail::block_modes_on_host(
      factor, detail::SymmetricProduct(cube.mass), cube.stiffness, cube.mass, options, settings);
  const std::vector<double> expected =
      cube_laplacian_eigenvalues(side, static_cast<std::size_t>(options.n_modes));
  ASSERT_EQ(result.eigenvalues.size(), options.n_modes);
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[static_cast<std::size_t>(j)],
                eigenvalue_relative_tolerance * expected[static_cast<std::size_t>(j)])
        << "mode " << j;
  }
  EXPECT_LT(max_orthonormality_error(cube.mass, result.vectors), orthonormality_tolerance);
}

TEST(ModalSolver, SlicedRequestThatFitsOneShiftIsThePlainBlockPath) {
  // A request that reaches spectrum slicing but fits one shift once the factor sizes the slices
  // runs the plain block path on that factor: the same iteration, the same bits, no slices, and
  // the Sturm count left to the modal analysis.
  const Chain cube = cube_laplacian(10);
  ModalOptions options;
  options.n_modes = 20;
  const double sigma = detail::automatic_shift(cube.stiffness, cube.mass);
  const ModalResult plain =
      detail::solve_lowest_modes_block(cube.stiffness, cube.mass, options, sigma);
  options.slice_modes = 30;
  const ModalResult sliced = detail::solve_modes_sliced(cube.stiffness, cube.mass, options, sigma);
  EXPECT_EQ(sliced.slices, 1);
  EXPECT_TRUE(sliced.certified.empty());
  EXPECT_EQ(sliced.solves, plain.solves);
  ASSERT_EQ(sliced.eigenvalues.size(), plain.eigenvalues.size());
  for (Eigen::Index j = 0; j < plain.eigenvalues.size(); ++j) {
    EXPECT_EQ(sliced.eigenvalues[j], plain.eigenvalues[j]) << "mode " << j;
  }
  EXPECT_EQ((sliced.vectors - plain.vectors).cwiseAbs().maxCoeff(), 0.0);
}

TEST(ModalSolver, ABoundBelowEveryModeIsInputError) {
  const Chain chain = free_free_chain(50, 1.0, 1.0);
  ModalOptions options;
  options.upper = -1.0;  // below the rigid-body mode at 0
  EXPECT_THROW(solve_lowest_modes(chain.stiffness, chain.mass, options), InputError);
}

TEST(ModalSolver, InjectedWrongAnswerFromTheBlockSolverFailsTheCompletenessCheck) {
  const Chain cube = cube_laplacian(10);
  ModalOptions options;
  options.n_modes = 12;
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  std::vector<double> values(result.eigenvalues.data(),
                             result.eigenvalues.data() + result.eigenvalues.size());
  EXPECT_NO_THROW(check_completeness(cube.stiffness, cube.mass, values.data(),
                                     static_cast<std::int64_t>(values.size()), &result.ordering));
  // Drop the lowest (simple) eigenvalue and claim a copy of the top one instead.
  std::vector<double> wrong(values.begin() + 1, values.end());
  wrong.push_back(values.back());
  EXPECT_THROW(check_completeness(cube.stiffness, cube.mass, wrong.data(),
                                  static_cast<std::int64_t>(wrong.size()), &result.ordering),
               NumericalError);
}

// The checks after every solve (normalisation, residuals, M-orthonormality) run a panel of
// modes at a time: exact pairs of a diagonal pencil in three panels (16 + 16 + 8 modes), given
// with arbitrary scale and sign, pass and come out normalised; a wrong eigenvalue or a repeated
// vector in the last panel fails, naming the mode.
TEST(ModalSolver, ChecksOverSeveralPanelsNormaliseAndCatchAWrongModeInAnyPanel) {
  const std::int64_t n = 200;
  const int m = 40;
  std::vector<Triplet> k, mass;
  for (std::int64_t i = 0; i < n; ++i) {
    k.emplace_back(i, i, 4.0 * static_cast<double>((i + 1) * (i + 1)));
    mass.emplace_back(i, i, 4.0);
  }
  const SparseMatrix stiffness = from_triplets(n, k), mass_matrix = from_triplets(n, mass);
  const auto exact = [&] {
    ModalResult result;
    result.eigenvalues.resize(m);
    result.vectors = Eigen::MatrixXd::Zero(n, m);
    for (int j = 0; j < m; ++j) {
      result.eigenvalues[j] = static_cast<double>((j + 1) * (j + 1));
      result.vectors(j, j) = (j % 2 == 0 ? -1.0 : 1.0) * (0.5 + j);  // any scale, any sign
    }
    return result;
  };
  ModalOptions options;
  ModalResult good = exact();
  ASSERT_NO_THROW(detail::finish_result(stiffness, mass_matrix, -1.0, options, good));
  for (int j = 0; j < m; ++j) {
    EXPECT_NEAR(good.vectors(j, j), 0.5, 1e-15) << j;  // x^T M x = 1, largest entry positive
    EXPECT_LE(good.residuals[j], 1e-15) << j;
  }

  ModalResult wrong_value = exact();
  wrong_value.eigenvalues[36] *= 1.001;
  try {
    detail::finish_result(stiffness, mass_matrix, -1.0, options, wrong_value);
    ADD_FAILURE() << "a wrong eigenvalue in the last panel passed the residual check";
  } catch (const NumericalError& error) {
    EXPECT_NE(std::string(error.what()).find("mode 37"), std::string::npos) << error.what();
  }

  ModalResult repeated = exact();
  repeated.eigenvalues[38] = repeated.eigenvalues[37];
  repeated.vectors.col(38) = repeated.vectors.col(37);
  try {
    detail::finish_result(stiffness, mass_matrix, -1.0, options, repeated);
    ADD_FAILURE() << "a repeated mode in the last panel passed the M-orthonormality check";
  } catch (const NumericalError& error) {
    EXPECT_NE(std::string(error.what()).find("M-orthonormal"), std::string::npos)
        << error.what();
  }
}

TEST(ModalAnalysis, FmaxReturnsExactlyTheModesBelowItCertifiedByTheSturmCount) {
  // The free-free C3D20 block: 6 rigid-body modes, then elastic ones from about 1284 Hz.
  const model::Model model = model::read_inp(test::data_path("ccx/free_free_c3d20.inp"));
  ModalAnalysisOptions options;
  options.fmax_hz = 2500.0;
  options.n_modes = 4;  // only a starting size: the count decides
  ModalAnalysisReport report;
  const io::ModesData block = modal_analysis(model, options, &report);
  ASSERT_GE(block.n_modes(), 7u);
  EXPECT_EQ(report.sturm_count, static_cast<std::int64_t>(block.n_modes()));
  EXPECT_EQ(report.method, "block");
  for (const double f : block.frequencies_hz) EXPECT_LT(f, options.fmax_hz);
  // The single-vector path grows its request instead; both find the same modes.
  options.method = EigenMethod::lanczos;
  const io::ModesData single = modal_analysis(model, options);
  ASSERT_EQ(single.n_modes(), block.n_modes());
  for (std::size_t j = 6; j < block.frequencies_hz.size(); ++j) {
    EXPECT_NEAR(block.frequencies_hz[j], single.frequencies_hz[j], 1e-9 * single.frequencies_hz[j]);
  }
}

// 3-D Laplacian on a 47^3 grid: 103823 unknowns, nnz(L) about 3e7.
TEST(ModalSolver, SlowLaplacian3dHundredThousandUnknowns) {
  const std::int64_t side = 47;
  const Chain cube = cube_laplacian(side);
  ModalOptions options;
  options.n_modes = 20;
  const auto start = std::chrono::steady_clock::now();
  const ModalResult result = solve_lowest_modes(cube.stiffness, cube.mass, options);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto expected = cube_laplacian_eigenvalues(side, 20);
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(result.eigenvalues[j], expected[j], 1e-10 * expected[j]) << "mode " << j;
  }
  EXPECT_LE(result.residuals.maxCoeff(), residual_tolerance);
  RecordProperty("total_seconds", std::to_string(total));
  std::printf("n = %ld: factorisation %.2f s (nnz(L) = %ld), Lanczos %.2f s, %d restarts, "
              "%d recovered, total %.2f s\n",
              static_cast<long>(cube.stiffness.rows()), result.factor_seconds,
              static_cast<long>(result.factor_nonzeros), result.solve_seconds, result.iterations,
              result.recovered_modes, total);
}


// --- The SLEPc backend (solve_lowest_modes_slepc; one MPI rank, this process) ---------------
// The same problems as above with the same tolerances: the backends must agree.

#define VSENSE_SKIP_WITHOUT_SLEPC()                                               \
  if (!slepc_compiled()) {                                                        \
    GTEST_SKIP() << "this build has no SLEPc backend (VSENSE_WITH_SLEPC, Debian " \
                    "libslepc-real-dev)";                                         \
  }

TEST(SlepcSolver, FreeFreeChainMatchesClosedFormIncludingItsRigidBodyMode) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  const std::int64_t n = 400;
  const double k = 3.0e5, m = 1.3;
  const Chain chain = free_free_chain(n, k, m);
  ModalOptions options;
  options.n_modes = 12;
  const ModalResult result =
      solve_lowest_modes_slepc(&chain.stiffness, &chain.mass, options, /*certify=*/true);
  ASSERT_EQ(result.eigenvalues.size(), options.n_modes);
  const double top = chain_eigenvalue(options.n_modes - 1, n, k, m);
  EXPECT_NEAR(result.eigenvalues[0], 0.0, 1e-10 * top) << "the rigid-body mode";
  for (int j = 1; j < options.n_modes; ++j) {
    const double expected = chain_eigenvalue(j, n, k, m);
    EXPECT_NEAR(result.eigenvalues[j], expected, eigenvalue_relative_tolerance * expected)
        << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(chain.mass, result.vectors), orthonormality_tolerance);
  EXPECT_LE(result.residuals.tail(options.n_modes - 1).maxCoeff(), residual_tolerance);
  ASSERT_EQ(result.certified.size(), 1u);
  EXPECT_EQ(result.certified[0].below, options.n_modes - 1);  // counted just below the top
}

TEST(SlepcSolver, RepeatedEigenvaluesAreAllFound) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  // Two identical, uncoupled free-free chains: every eigenvalue is double (two rigid modes).
  const std::int64_t n = 120;
  const Chain doubled = two_free_free_chains(n, 1.0e4, 1.0);
  const SparseMatrix& stiffness = doubled.stiffness;
  const SparseMatrix& mass = doubled.mass;
  ModalOptions options;
  options.n_modes = 10;
  const ModalResult result = solve_lowest_modes_slepc(&stiffness, &mass, options, true);
  for (int j = 0; j < options.n_modes; ++j) {
    const double expected = chain_eigenvalue(j / 2, n, 1.0e4, 1.0);
    EXPECT_NEAR(result.eigenvalues[j], expected, 1e-10 * std::max(expected, 1.0))
        << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(mass, result.vectors), orthonormality_tolerance);
  EXPECT_FALSE(result.certified.empty());
}

TEST(SlepcSolver, EveryModeBelowABoundIsFoundThroughClusters) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  // The cube Laplacian's 48 eigenvalues below 1.2, in clusters up to 9-fold: the count at the
  // bound fixes the request, the count just below the top certifies it.
  const std::int64_t side = 14;
  const Chain cube = cube_laplacian(side);
  const double upper = 1.2;
  std::vector<double> expected;
  for (const double value : cube_laplacian_eigenvalues(side, 1728)) {
    if (value < upper) expected.push_back(value);
  }
  ModalOptions options;
  options.upper = upper;
  const ModalResult result = solve_lowest_modes_slepc(&cube.stiffness, &cube.mass, options, true);
  ASSERT_EQ(result.eigenvalues.size(), static_cast<Eigen::Index>(expected.size()));
  for (std::size_t j = 0; j < expected.size(); ++j) {
    EXPECT_NEAR(result.eigenvalues[static_cast<Eigen::Index>(j)], expected[j],
                eigenvalue_relative_tolerance * expected[j])
        << "mode " << j;
  }
  EXPECT_LE(max_orthonormality_error(cube.mass, result.vectors), orthonormality_tolerance);
  EXPECT_LE(result.residuals.maxCoeff(), residual_tolerance);
}

TEST(SlepcSolver, AgreesWithTheCpuSolverOnAMachineModel) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  test::ScratchDir dir("slepc-genset");
  model::GensetOptions genset;
  genset.target_dofs = 10000;
  model::write_genset(genset, dir.file("genset.inp"));
  const model::Model machine = model::read_inp(dir.file("genset.inp"));
  const model::DofMap dofs = model::build_dof_map(machine);
  const model::SystemMatrices system = model::assemble(machine, dofs);
  ModalOptions options;
  options.n_modes = 15;
  const ModalResult cpu = solve_lowest_modes(system.stiffness, system.mass, options);
  const ModalResult slepc =
      solve_lowest_modes_slepc(&system.stiffness, &system.mass, options, true);
  ASSERT_EQ(slepc.eigenvalues.size(), cpu.eigenvalues.size());
  const Eigen::MatrixXd mass_cpu = system.mass.selfadjointView<Eigen::Lower>() * cpu.vectors;
  for (int j = 0; j < options.n_modes; ++j) {
    EXPECT_NEAR(slepc.eigenvalues[j], cpu.eigenvalues[j], 1e-10 * cpu.eigenvalues[j])
        << "mode " << j;
    // Both mass-normalised: |phi_slepc^T M phi_cpu| = 1 for a simple mode.
    EXPECT_GT(std::abs(slepc.vectors.col(j).dot(mass_cpu.col(j))), mac_minimum) << "mode " << j;
  }
  EXPECT_LE(slepc.residuals.maxCoeff(), residual_tolerance);
}

TEST(SlepcSolver, TheCompletenessCheckCatchesAMissingMode) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  const Chain chain = free_free_chain(200, 1.0e4, 1.0);
  ModalOptions options;
  options.n_modes = 8;
  ModalResult result = solve_lowest_modes_slepc(&chain.stiffness, &chain.mass, options, false);
  EXPECT_TRUE(result.certified.empty());
  // The answer with its 4th mode removed: the count below the top exposes it.
  std::vector<double> wrong(result.eigenvalues.data(), result.eigenvalues.data() + 8);
  wrong.erase(wrong.begin() + 3);
  const auto count = [&](double sigma) { return sturm_count(chain.stiffness, chain.mass, sigma); };
  EXPECT_THROW(check_completeness(wrong.data(), static_cast<std::int64_t>(wrong.size()), count),
               NumericalError);
  EXPECT_NO_THROW(check_completeness(result.eigenvalues.data(), 8, count));
}

TEST(SlepcSolver, ImpossibleRequestsAreInputErrors) {
  VSENSE_SKIP_WITHOUT_SLEPC();
  const Chain chain = free_free_chain(20, 1.0, 1.0);
  ModalOptions options;
  options.n_modes = 20;  // all of them: not what a Krylov method returns
  EXPECT_THROW(solve_lowest_modes_slepc(&chain.stiffness, &chain.mass, options, true), InputError);
  options.n_modes = 5;
  options.upper = -1.0;  // below every eigenvalue
  EXPECT_THROW(solve_lowest_modes_slepc(&chain.stiffness, &chain.mass, options, true), InputError);
}

}  // namespace
}  // namespace vsense::solvers
