// The supernodal solve: the level schedule's invariants, the CPU reference (levels upwards and
// downwards, each level's supernodes in reverse order) against CHOLMOD's own solve on CHOLMOD
// factors of SPD matrices with a known condition number, and the CUDA solve against the CPU
// reference (skipped without a device). Leading dimension n + 3 throughout; nrhs = 33 is two
// full chunks of the device's 16 right-hand sides and a partial one.
#include "vsense/kernels/supernodal.hpp"

#include <cholmod.h>
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "common/tolerances.hpp"
#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace {

namespace tol = vsense::test::tolerance;
using vsense::kernels::SupernodalFactorView;
using vsense::kernels::SupernodalSchedule;
using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, std::int64_t>;

static_assert(sizeof(SuiteSparse_long) == sizeof(std::int64_t), "CHOLMOD's long interface");

/// An SPD test matrix with its exact 2-norm condition number.
struct TestMatrix {
  std::string name;
  SparseMatrix full;  // both triangles (for residuals)
  double condition = 1.0;
};

/// A = L7 (x) C + shift I: L7 the 7-point Laplacian of an nx x ny x nz grid with Dirichlet
/// boundaries, C = tridiag(-1, 2, -1) coupling 3 unknowns per node (node-major numbering). The
/// eigenvalues of A are lambda(L7) lambda(C) + shift, so its condition number is exact:
/// lambda(L7) spans sum_d 2 (1 -+ cos(pi / (n_d + 1))), lambda(C) spans 2 -+ sqrt(2).
TestMatrix grid_matrix(int nx, int ny, int nz, double shift) {
  const double c[3][3] = {{2.0, -1.0, 0.0}, {-1.0, 2.0, -1.0}, {0.0, -1.0, 2.0}};
  const auto node = [&](int i, int j, int k) -> std::int64_t { return i + nx * (j + ny * k); };
  std::vector<Eigen::Triplet<double, std::int64_t>> entries;
  const auto block = [&](std::int64_t p, std::int64_t q, double scale) {
    for (int d = 0; d < 3; ++d) {
      for (int e = 0; e < 3; ++e) {
        if (c[d][e] != 0.0) entries.emplace_back(3 * p + d, 3 * q + e, scale * c[d][e]);
      }
    }
  };
  for (int k = 0; k < nz; ++k) {
    for (int j = 0; j < ny; ++j) {
      for (int i = 0; i < nx; ++i) {
        const auto p = node(i, j, k);
        block(p, p, 6.0);
        for (int d = 0; d < 3; ++d) entries.emplace_back(3 * p + d, 3 * p + d, shift);
        if (i > 0) block(p, node(i - 1, j, k), -1.0);
        if (i + 1 < nx) block(p, node(i + 1, j, k), -1.0);
        if (j > 0) block(p, node(i, j - 1, k), -1.0);
        if (j + 1 < ny) block(p, node(i, j + 1, k), -1.0);
        if (k > 0) block(p, node(i, j, k - 1), -1.0);
        if (k + 1 < nz) block(p, node(i, j, k + 1), -1.0);
      }
    }
  }
  TestMatrix a;
  a.name = "grid" + std::to_string(nx) + "x" + std::to_string(ny) + "x" + std::to_string(nz);
  const std::int64_t n = 3 * node(0, 0, nz);
  a.full.resize(n, n);
  a.full.setFromTriplets(entries.begin(), entries.end());
  double laplacian_min = 0.0, laplacian_max = 0.0;
  for (const int m : {nx, ny, nz}) {
    const double cosine = std::cos(std::numbers::pi / (m + 1));
    laplacian_min += 2.0 * (1.0 - cosine);
    laplacian_max += 2.0 * (1.0 + cosine);
  }
  a.condition = (laplacian_max * (2.0 + std::numbers::sqrt2) + shift) /
                (laplacian_min * (2.0 - std::numbers::sqrt2) + shift);
  return a;
}

/// A small dense-ish SPD matrix; its condition number from a dense eigensolver.
TestMatrix tiny_matrix(const std::string& name, const Eigen::MatrixXd& dense) {
  TestMatrix a;
  a.name = name;
  a.full = dense.sparseView();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(dense);
  a.condition = eigen.eigenvalues().maxCoeff() / eigen.eigenvalues().minCoeff();
  return a;
}

/// n = 7 with two decoupled blocks: the supernodal elimination tree is a forest.
TestMatrix forest_matrix() {
  Eigen::MatrixXd dense = Eigen::MatrixXd::Zero(7, 7);
  for (int i = 0; i < 3; ++i) dense(i, i) = 4.0;
  dense(0, 1) = dense(1, 0) = 1.0;
  dense(1, 2) = dense(2, 1) = -1.5;
  dense(0, 2) = dense(2, 0) = 0.5;
  for (int i = 3; i < 7; ++i) {
    dense(i, i) = 3.0;
    if (i + 1 < 7) dense(i, i + 1) = dense(i + 1, i) = -1.0;
  }
  return tiny_matrix("forest7", dense);
}

enum class Ordering { cholmod_default, metis, amd };

/// A CHOLMOD supernodal LL^T factor of a test matrix.
class CholmodFactor {
public:
  CholmodFactor(const SparseMatrix& full, Ordering ordering) {
    cholmod_l_start(&common_);
    common_.print = 0;
    common_.supernodal = CHOLMOD_SUPERNODAL;
    common_.final_ll = 1;  // stay LL^T
    if (ordering != Ordering::cholmod_default) {
      common_.nmethods = 1;
      common_.method[0].ordering = ordering == Ordering::metis ? CHOLMOD_METIS : CHOLMOD_AMD;
      common_.postorder = 1;
    }
    lower_ = full.triangularView<Eigen::Lower>();
    lower_.makeCompressed();
    a_ = view_of(lower_);
    factor_ = cholmod_l_analyze(&a_, &common_);
    if (factor_ != nullptr) ok_ = cholmod_l_factorize(&a_, factor_, &common_) != 0;
    ok_ = ok_ && common_.status == CHOLMOD_OK && factor_->minor == factor_->n;
  }
  ~CholmodFactor() {
    cholmod_l_free_factor(&factor_, &common_);
    cholmod_l_finish(&common_);
  }
  CholmodFactor(const CholmodFactor&) = delete;
  CholmodFactor& operator=(const CholmodFactor&) = delete;

  bool ok() const { return ok_; }
  bool supernodal_ll() const { return factor_->is_super && factor_->is_ll; }
  std::int64_t n() const { return static_cast<std::int64_t>(factor_->n); }

  SupernodalFactorView view() const {
    SupernodalFactorView v;
    v.n = static_cast<std::int64_t>(factor_->n);
    v.n_supernodes = static_cast<std::int64_t>(factor_->nsuper);
    v.super = static_cast<const std::int64_t*>(factor_->super);
    v.pi = static_cast<const std::int64_t*>(factor_->pi);
    v.px = static_cast<const std::int64_t*>(factor_->px);
    v.rows = static_cast<const std::int64_t*>(factor_->s);
    v.values = static_cast<const double*>(factor_->x);
    v.perm = static_cast<const std::int64_t*>(factor_->Perm);
    return v;
  }

  /// CHOLMOD's solve of A X = B; b is [n, nrhs] with leading dimension ld, X has ld n.
  std::vector<double> solve(const std::vector<double>& b, std::int64_t ld, std::int64_t nrhs) {
    cholmod_dense rhs{};
    rhs.nrow = static_cast<std::size_t>(n());
    rhs.ncol = static_cast<std::size_t>(nrhs);
    rhs.d = static_cast<std::size_t>(ld);
    rhs.nzmax = rhs.d * rhs.ncol;
    rhs.x = const_cast<double*>(b.data());  // read only
    rhs.xtype = CHOLMOD_REAL;
    rhs.dtype = CHOLMOD_DOUBLE;
    cholmod_dense* x = cholmod_l_solve(CHOLMOD_A, factor_, &rhs, &common_);
    if (x == nullptr) return {};
    const auto* values = static_cast<const double*>(x->x);
    std::vector<double> out;
    for (std::int64_t j = 0; j < nrhs; ++j) {
      out.insert(out.end(), values + j * x->d, values + j * x->d + n());
    }
    cholmod_l_free_dense(&x, &common_);
    return out;
  }

private:
  static cholmod_sparse view_of(SparseMatrix& lower) {
    cholmod_sparse view{};
    view.nrow = static_cast<std::size_t>(lower.rows());
    view.ncol = static_cast<std::size_t>(lower.cols());
    view.nzmax = static_cast<std::size_t>(lower.nonZeros());
    view.p = lower.outerIndexPtr();
    view.i = lower.innerIndexPtr();
    view.x = lower.valuePtr();
    view.stype = -1;
    view.itype = CHOLMOD_LONG;
    view.xtype = CHOLMOD_REAL;
    view.dtype = CHOLMOD_DOUBLE;
    view.sorted = 1;
    view.packed = 1;
    return view;
  }

  cholmod_common common_{};
  SparseMatrix lower_;
  cholmod_sparse a_{};
  cholmod_factor* factor_ = nullptr;
  bool ok_ = false;
};

/// Random right-hand sides [n, nrhs] with leading dimension ld; the padding rows hold a sentinel
/// that no solve may touch.
constexpr double padding_sentinel = -12345.0;
std::vector<double> random_rhs(std::int64_t n, std::int64_t ld, std::int64_t nrhs,
                               std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> b(static_cast<std::size_t>(ld * nrhs), padding_sentinel);
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = 0; i < n; ++i) b[static_cast<std::size_t>(i + j * ld)] = uniform(random);
  }
  return b;
}

/// Worst over the columns of ||x_j - reference_j||_2 / ||reference_j||_2; x has leading
/// dimension ld, reference n.
double worst_difference(const std::vector<double>& x, std::int64_t ld,
                        const std::vector<double>& reference, std::int64_t n, std::int64_t nrhs) {
  double worst = 0.0;
  for (std::int64_t j = 0; j < nrhs; ++j) {
    double difference = 0.0, norm = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double r = reference[static_cast<std::size_t>(i + j * n)];
      const double d = x[static_cast<std::size_t>(i + j * ld)] - r;
      difference += d * d;
      norm += r * r;
    }
    worst = std::max(worst, std::sqrt(difference / norm));
  }
  return worst;
}

/// Worst over the columns of ||A x_j - b_j||_inf / (||A||_inf ||x_j||_inf) (the normwise
/// backward error); x and b have leading dimension ld.
double worst_residual(const SparseMatrix& a, const std::vector<double>& x,
                      const std::vector<double>& b, std::int64_t ld, std::int64_t nrhs) {
  const std::int64_t n = a.rows();
  Eigen::VectorXd row_sums = Eigen::VectorXd::Zero(n);
  for (Eigen::Index col = 0; col < a.outerSize(); ++col) {
    for (SparseMatrix::InnerIterator it(a, col); it; ++it)
      row_sums(it.row()) += std::abs(it.value());
  }
  const double a_norm = row_sums.maxCoeff();
  double worst = 0.0;
  for (std::int64_t j = 0; j < nrhs; ++j) {
    const Eigen::Map<const Eigen::VectorXd> xj(x.data() + j * ld, n), bj(b.data() + j * ld, n);
    const Eigen::VectorXd r = a * xj - bj;
    worst = std::max(worst, r.lpNorm<Eigen::Infinity>() / (a_norm * xj.lpNorm<Eigen::Infinity>()));
  }
  return worst;
}

/// True when every padding row of x still holds the sentinel.
bool padding_untouched(const std::vector<double>& x, std::int64_t n, std::int64_t ld,
                       std::int64_t nrhs) {
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = n; i < ld; ++i) {
      if (x[static_cast<std::size_t>(i + j * ld)] != padding_sentinel) return false;
    }
  }
  return true;
}

struct Case {
  std::string matrix;  // "grid", "grid_large", "one", "forest7"
  Ordering ordering = Ordering::cholmod_default;
};

TestMatrix make_matrix(const std::string& name) {
  if (name == "grid") return grid_matrix(17, 15, 13, 1e-2);        // n = 9945
  if (name == "grid_large") return grid_matrix(21, 19, 17, 1e-3);  // n = 20349
  if (name == "one") return tiny_matrix("one", Eigen::MatrixXd::Constant(1, 1, 4.0));
  return forest_matrix();
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
  static constexpr const char* names[] = {"default", "metis", "amd"};
  return info.param.matrix + "_" + names[static_cast<int>(info.param.ordering)];
}

constexpr std::int64_t rhs_counts[] = {1, 3, 8, 33};
constexpr std::int64_t max_rhs = 33;

class SupernodalSolve : public testing::TestWithParam<Case> {
protected:
  void SetUp() override {
    matrix_ = make_matrix(GetParam().matrix);
    factor_ = std::make_unique<CholmodFactor>(matrix_.full, GetParam().ordering);
    ASSERT_TRUE(factor_->ok()) << matrix_.name << ": CHOLMOD factorisation failed";
    ASSERT_TRUE(factor_->supernodal_ll())
        << matrix_.name << ": CHOLMOD did not leave a supernodal LL^T factor";
    view_ = factor_->view();
    schedule_ = vsense::kernels::supernodal_schedule(view_);
  }

  /// The solves of the CPU reference and CHOLMOD agree to within what the conditioning allows.
  double solve_tolerance() const { return tol::factor_solve_rel(matrix_.condition); }

  TestMatrix matrix_;
  std::unique_ptr<CholmodFactor> factor_;
  SupernodalFactorView view_;
  SupernodalSchedule schedule_;
};

TEST_P(SupernodalSolve, ScheduleCoversEverySupernodeOnceAndParentsLieAbove) {
  const std::int64_t ns = view_.n_supernodes;
  ASSERT_EQ(static_cast<std::int64_t>(schedule_.order.size()), ns);
  ASSERT_EQ(static_cast<std::int64_t>(schedule_.level_offsets.size()), schedule_.n_levels + 1);
  EXPECT_EQ(schedule_.level_offsets.front(), 0);
  EXPECT_EQ(schedule_.level_offsets.back(), ns);
  std::vector<int> seen(static_cast<std::size_t>(ns), 0);
  for (std::int64_t l = 0; l < schedule_.n_levels; ++l) {
    const auto first = schedule_.level_offsets[static_cast<std::size_t>(l)];
    const auto last = schedule_.level_offsets[static_cast<std::size_t>(l) + 1];
    EXPECT_LT(first, last) << "empty level " << l;
    for (auto k = first; k < last; ++k) {
      const auto s = schedule_.order[static_cast<std::size_t>(k)];
      ASSERT_GE(s, 0);
      ASSERT_LT(s, ns);
      ++seen[static_cast<std::size_t>(s)];
      EXPECT_EQ(schedule_.level[static_cast<std::size_t>(s)], l) << "supernode " << s;
    }
  }
  for (std::int64_t s = 0; s < ns; ++s) EXPECT_EQ(seen[static_cast<std::size_t>(s)], 1) << s;

  // Levels from the leaves: 0 without children, else 1 + the highest child's.
  std::vector<std::int64_t> expected(static_cast<std::size_t>(ns), 0);
  std::int64_t roots = 0;
  for (std::int64_t s = 0; s < ns; ++s) {
    const std::int64_t ncols = view_.super[s + 1] - view_.super[s];
    const std::int64_t nrows = view_.pi[s + 1] - view_.pi[s];
    const auto parent = schedule_.parent[static_cast<std::size_t>(s)];
    if (nrows == ncols) {
      EXPECT_EQ(parent, -1) << "supernode " << s << " has no rows below but a parent";
      ++roots;
      continue;
    }
    const std::int64_t first_below = view_.rows[view_.pi[s] + ncols];
    ASSERT_GT(parent, s);
    EXPECT_TRUE(view_.super[parent] <= first_below && first_below < view_.super[parent + 1])
        << "supernode " << s << ": parent " << parent << " does not hold row " << first_below;
    EXPECT_GT(schedule_.level[static_cast<std::size_t>(parent)],
              schedule_.level[static_cast<std::size_t>(s)]);
    auto& e = expected[static_cast<std::size_t>(parent)];
    e = std::max(e, expected[static_cast<std::size_t>(s)] + 1);
  }
  EXPECT_EQ(schedule_.level, expected);
  if (GetParam().matrix == "forest7") {
    EXPECT_GE(roots, 2) << "the forest has one tree";
  }
  if (GetParam().matrix.starts_with("grid")) {
    // Enough structure to test levels: many supernodes, a deep tree, wide levels, and both
    // the device's batched (small) and cuBLAS (large, > 128 columns) supernodes.
    EXPECT_GE(ns, 100);
    EXPECT_GE(schedule_.n_levels, 5);
    EXPECT_GE(schedule_.level_offsets[1], 16) << "few leaves";
    EXPECT_GT(schedule_.max_columns, 128);
  }
}

TEST_P(SupernodalSolve, CpuReferenceMatchesCholmod) {
  const std::int64_t n = view_.n, ld = n + 3;
  for (const std::int64_t nrhs : rhs_counts) {
    const auto b = random_rhs(n, ld, nrhs, 17 + static_cast<std::uint64_t>(nrhs));
    const auto expected = factor_->solve(b, ld, nrhs);
    ASSERT_EQ(static_cast<std::int64_t>(expected.size()), n * nrhs) << "CHOLMOD solve failed";
    auto x = b;
    vsense::kernels::cpu::supernodal_solve(view_, schedule_, x.data(), ld, nrhs);
    EXPECT_TRUE(padding_untouched(x, n, ld, nrhs)) << "nrhs = " << nrhs;
    const double difference = worst_difference(x, ld, expected, n, nrhs);
    EXPECT_LE(difference, solve_tolerance())
        << matrix_.name << " n = " << n << " nrhs = " << nrhs << " condition " << matrix_.condition;
    const double residual = worst_residual(matrix_.full, x, b, ld, nrhs);
    EXPECT_LE(residual, tol::factor_solve_backward_error)
        << matrix_.name << " n = " << n << " nrhs = " << nrhs;
  }
}

TEST_P(SupernodalSolve, ThreadedSolveMatchesCholmodOnAnyThreadCount) {
  // One thread (one subtree bin, nothing on top), two, and counts that do not divide the tree
  // evenly; every right-hand-side count; padding rows beyond n untouched.
  const std::int64_t n = view_.n, ld = n + 3;
  for (const int threads : {1, 2, 3, 5}) {
    const vsense::kernels::cpu::ThreadedSupernodalSolver solver(view_, schedule_, threads);
    EXPECT_EQ(solver.threads(), threads);
    EXPECT_GE(solver.top_fraction(), 0.0);
    EXPECT_LE(solver.top_fraction(), 1.0);
    if (threads == 1) {
      EXPECT_EQ(solver.top_fraction(), 0.0);
    }
    if (threads == 2 && GetParam().matrix == "grid_large") {
      // A nested-dissection tree splits below its top separators: most of the factor is solved
      // by the threads, not on top (on the smaller grid the top separators' dense blocks hold
      // over half of the factor's entries).
      EXPECT_LT(solver.top_fraction(), 0.5) << matrix_.name;
    }
    for (const std::int64_t nrhs : rhs_counts) {
      const auto b = random_rhs(n, ld, nrhs, 29 + static_cast<std::uint64_t>(nrhs));
      const auto expected = factor_->solve(b, ld, nrhs);
      ASSERT_EQ(static_cast<std::int64_t>(expected.size()), n * nrhs) << "CHOLMOD solve failed";
      auto x = b;
      solver.solve(x.data(), ld, nrhs);
      EXPECT_TRUE(padding_untouched(x, n, ld, nrhs)) << "nrhs = " << nrhs;
      EXPECT_LE(worst_difference(x, ld, expected, n, nrhs), solve_tolerance())
          << matrix_.name << " threads " << threads << " nrhs = " << nrhs;
      EXPECT_LE(worst_residual(matrix_.full, x, b, ld, nrhs), tol::factor_solve_backward_error)
          << matrix_.name << " threads " << threads << " nrhs = " << nrhs;
    }
    std::vector<double> x(static_cast<std::size_t>(n), 1.0);
    EXPECT_THROW(solver.solve(x.data(), n - 1, 1), vsense::InputError);
  }
  EXPECT_THROW(vsense::kernels::cpu::ThreadedSupernodalSolver(view_, schedule_, 0),
               vsense::InputError);
}

TEST_P(SupernodalSolve, CpuReferenceRejectsBadShapes) {
  std::vector<double> x(static_cast<std::size_t>(view_.n), 1.0);
  EXPECT_THROW(vsense::kernels::cpu::supernodal_solve(view_, schedule_, x.data(), view_.n - 1, 1),
               vsense::InputError);
  EXPECT_THROW(vsense::kernels::cpu::supernodal_solve(view_, schedule_, x.data(), view_.n, -1),
               vsense::InputError);
}

TEST_P(SupernodalSolve, BytesNeededGrowWithTheRightHandSides) {
  if (!vsense::CudaExecutor::compiled()) {
    EXPECT_THROW(vsense::kernels::cuda::DeviceSupernodalFactor::bytes_needed(view_, 1),
                 vsense::NotCompiled);
    return;
  }
  using vsense::kernels::cuda::DeviceSupernodalFactor;
  const std::size_t one = DeviceSupernodalFactor::bytes_needed(view_, 1);
  const std::size_t many = DeviceSupernodalFactor::bytes_needed(view_, max_rhs);
  const auto n = static_cast<std::size_t>(view_.n);
  const auto ns = static_cast<std::size_t>(view_.n_supernodes);
  // At least L's values and rows, the offsets, the permutation and the [n, max_rhs] workspace.
  const std::size_t floor =
      sizeof(double) * static_cast<std::size_t>(view_.px[ns]) +
      sizeof(std::int64_t) * (static_cast<std::size_t>(view_.pi[ns]) + 3 * (ns + 1) + n);
  EXPECT_GE(one, floor + sizeof(double) * n);
  EXPECT_GE(many - one, sizeof(double) * n * static_cast<std::size_t>(max_rhs - 1));
  EXPECT_EQ(DeviceSupernodalFactor::bytes_needed(view_, max_rhs), many);  // a pure function
  EXPECT_THROW(DeviceSupernodalFactor::bytes_needed(view_, 0), vsense::InputError);
}

TEST_P(SupernodalSolve, CudaMatchesTheCpuReference) {
  if (vsense::CudaExecutor::device_count() == 0) GTEST_SKIP() << "no usable CUDA device";
  using vsense::kernels::cuda::DeviceSupernodalFactor;
  const auto exec = vsense::CudaExecutor::create(0);
  const DeviceSupernodalFactor device(exec, view_, max_rhs);
  EXPECT_EQ(device.device_bytes(), DeviceSupernodalFactor::bytes_needed(view_, max_rhs));
  const std::int64_t n = view_.n, ld = n + 3;
  for (const std::int64_t nrhs : rhs_counts) {
    const auto b = random_rhs(n, ld, nrhs, 29 + static_cast<std::uint64_t>(nrhs));
    auto cpu = b;
    vsense::kernels::cpu::supernodal_solve(view_, schedule_, cpu.data(), ld, nrhs);
    std::vector<double> reference;  // the CPU result with leading dimension n
    for (std::int64_t j = 0; j < nrhs; ++j) {
      reference.insert(reference.end(), cpu.begin() + j * ld, cpu.begin() + j * ld + n);
    }
    vsense::DeviceArray<double> x(exec, b.size());
    x.copy_from_host(b.data());
    device.solve(x.data(), ld, nrhs);
    exec->synchronize();
    const auto gpu = x.to_host();
    EXPECT_TRUE(padding_untouched(gpu, n, ld, nrhs)) << "nrhs = " << nrhs;
    EXPECT_LE(worst_difference(gpu, ld, reference, n, nrhs), solve_tolerance())
        << matrix_.name << " n = " << n << " nrhs = " << nrhs;
    EXPECT_LE(worst_residual(matrix_.full, gpu, b, ld, nrhs), tol::factor_solve_backward_error)
        << matrix_.name << " n = " << n << " nrhs = " << nrhs;
  }
  vsense::DeviceArray<double> x(exec, static_cast<std::size_t>(ld * (max_rhs + 1)));
  EXPECT_THROW(device.solve(x.data(), ld, max_rhs + 1), vsense::InputError);
  EXPECT_THROW(device.solve(x.data(), n - 1, 1), vsense::InputError);
}

INSTANTIATE_TEST_SUITE_P(Factors, SupernodalSolve,
                         testing::Values(Case{"grid", Ordering::cholmod_default},
                                         Case{"grid", Ordering::metis}, Case{"grid", Ordering::amd},
                                         Case{"grid_large", Ordering::metis},
                                         Case{"one", Ordering::cholmod_default},
                                         Case{"forest7", Ordering::cholmod_default},
                                         Case{"forest7", Ordering::metis}),
                         case_name);

TEST(SupernodalSchedule, RejectsMalformedFactors) {
  // Two supernodes of one column each, n = 2, where supernode 1 claims a row below (row 0)
  // that lies before its own column: not a factor in elimination order.
  const std::int64_t super[] = {0, 1, 2}, pi[] = {0, 2, 4}, px[] = {0, 2, 4};
  const std::int64_t rows[] = {0, 1, 1, 0};
  const double values[] = {2.0, 0.5, 2.0, 0.5};
  SupernodalFactorView v;
  v.n = 2;
  v.n_supernodes = 2;
  v.super = super;
  v.pi = pi;
  v.px = px;
  v.rows = rows;
  v.values = values;
  EXPECT_THROW(vsense::kernels::supernodal_schedule(v), vsense::InputError);
  const std::int64_t bad_super[] = {1, 1, 2};
  v.super = bad_super;
  EXPECT_THROW(vsense::kernels::supernodal_schedule(v), vsense::InputError);
  // A valid factor (two roots) with a permutation that repeats an index.
  const std::int64_t roots_pi[] = {0, 1, 2}, roots_px[] = {0, 1, 2}, roots_rows[] = {0, 1};
  const std::int64_t repeated[] = {1, 1};
  v.super = super;
  v.pi = roots_pi;
  v.px = roots_px;
  v.rows = roots_rows;
  EXPECT_EQ(vsense::kernels::supernodal_schedule(v).n_levels, 1);
  v.perm = repeated;
  EXPECT_THROW(vsense::kernels::supernodal_schedule(v), vsense::InputError);
}

TEST(SupernodalSchedule, SolvesWithoutAPermutation) {
  // L = [[2, 0], [1, 3]] as one supernode, perm = identity (nullptr): A = L L^T.
  const std::int64_t super[] = {0, 2}, pi[] = {0, 2}, px[] = {0, 4};
  const std::int64_t rows[] = {0, 1};
  const double values[] = {2.0, 1.0, 0.0, 3.0};
  const SupernodalFactorView v{2, 1, super, pi, px, rows, values, nullptr};
  const auto schedule = vsense::kernels::supernodal_schedule(v);
  EXPECT_EQ(schedule.n_levels, 1);
  // A = [[4, 2], [2, 10]], x = (1, -1): b = (2, -8).
  double x[] = {2.0, -8.0};
  vsense::kernels::cpu::supernodal_solve(v, schedule, x, 2, 1);
  EXPECT_NEAR(x[0], 1.0, 4 * std::numeric_limits<double>::epsilon());
  EXPECT_NEAR(x[1], -1.0, 4 * std::numeric_limits<double>::epsilon());
}

}  // namespace
