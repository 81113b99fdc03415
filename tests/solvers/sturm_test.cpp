// Sturm counts against the closed-form spectrum of a fixed-free spring-mass chain, and the
// completeness check catching an injected missing mode.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/sturm.hpp"

namespace {

using vsense::model::SparseMatrix;

/// n masses m in a line, each joined to the next by a spring k, the first also to the ground.
/// Eigenvalues: 4 k/m sin^2((2j-1) pi / (2 (2n+1))), j = 1..n.
struct Chain {
  SparseMatrix stiffness, mass;
  std::vector<double> eigenvalues;
};

Chain make_chain(int n, double k, double m) {
  std::vector<Eigen::Triplet<double, std::int64_t>> kt, mt;
  for (int i = 0; i < n; ++i) {
    kt.emplace_back(i, i, i + 1 < n ? 2 * k : k);
    if (i + 1 < n) kt.emplace_back(i + 1, i, -k);
    mt.emplace_back(i, i, m);
  }
  Chain c;
  c.stiffness.resize(n, n);
  c.mass.resize(n, n);
  c.stiffness.setFromTriplets(kt.begin(), kt.end());
  c.mass.setFromTriplets(mt.begin(), mt.end());
  for (int j = 1; j <= n; ++j) {
    const double s = std::sin((2 * j - 1) * std::numbers::pi / (2.0 * (2 * n + 1)));
    c.eigenvalues.push_back(4.0 * k / m * s * s);
  }
  return c;
}

TEST(SturmCount, MatchesClosedFormSpectrumOfSpringChain) {
  const Chain c = make_chain(400, 2.5e6, 3.0);
  for (int below : {0, 1, 7, 50, 399, 400}) {
    // A shift halfway between eigenvalue `below` and the next one.
    const double lo = below == 0 ? 0.0 : c.eigenvalues[below - 1];
    const double hi = below == 400 ? 2.0 * c.eigenvalues.back() : c.eigenvalues[below];
    const auto count = vsense::solvers::sturm_count(c.stiffness, c.mass, 0.5 * (lo + hi));
    EXPECT_EQ(count.below, below);
  }
}

TEST(SturmCount, CompletenessCheckPassesForTrueSpectrumAndCatchesMissingMode) {
  const Chain c = make_chain(300, 1e4, 0.5);
  std::vector<double> lowest(c.eigenvalues.begin(), c.eigenvalues.begin() + 20);
  EXPECT_EQ(vsense::solvers::check_completeness(c.stiffness, c.mass, lowest.data(), 20).below,
            19);
  // Inject a wrong answer: drop the 5th eigenvalue and append the 21st instead.
  std::vector<double> wrong = lowest;
  wrong.erase(wrong.begin() + 4);
  wrong.push_back(c.eigenvalues[20]);
  EXPECT_THROW(vsense::solvers::check_completeness(c.stiffness, c.mass, wrong.data(), 20),
               vsense::NumericalError);
}

TEST(SturmCount, SingularShiftIsANumericalError) {
  // Two uncoupled unit oscillators: K - sigma M is exactly singular at sigma = 4.
  SparseMatrix k(2, 2), m(2, 2);
  k.insert(0, 0) = 4.0;
  k.insert(1, 1) = 9.0;
  m.insert(0, 0) = 1.0;
  m.insert(1, 1) = 1.0;
  EXPECT_THROW(vsense::solvers::sturm_count(k, m, 4.0), vsense::NumericalError);
  EXPECT_EQ(vsense::solvers::sturm_count(k, m, 5.0).below, 1);
}

}  // namespace
