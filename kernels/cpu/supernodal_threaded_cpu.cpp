// Block solves with a supernodal factor on several threads (ThreadedSupernodalSolver,
// kernels/include/vsense/kernels/supernodal.hpp).
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/supernodal.hpp"

namespace vsense::kernels::cpu {

namespace {

// Cutting stops when the heaviest thread's share of the subtrees is within this of the mean,
// or when the cuts would leave more than this many subtrees per thread.
constexpr double balance_target = 1.05;
constexpr std::size_t max_subtrees_per_thread = 64;

/// Restores the BLAS thread count on exit (also when a solve throws).
class BlasThreads {
public:
  explicit BlasThreads(int threads) : previous_(blas_threads()) {
    if (previous_ != threads) set_blas_threads(threads);
  }
  ~BlasThreads() {
    if (blas_threads() != previous_) set_blas_threads(previous_);
  }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

private:
  int previous_;
};

}  // namespace

ThreadedSupernodalSolver::ThreadedSupernodalSolver(const SupernodalFactorView& factor,
                                                   const SupernodalSchedule& schedule,
                                                   int threads)
    : f_(factor) {
  const std::int64_t ns = factor.n_supernodes;
  if (threads < 1) {
    throw InputError(fmt::format("threaded supernodal solve: {} threads", threads));
  }
  if (static_cast<std::int64_t>(schedule.parent.size()) != ns ||
      static_cast<std::int64_t>(schedule.level.size()) != ns) {
    throw InputError(fmt::format("threaded supernodal solve: a schedule of {} supernodes for a "
                                 "factor of {}",
                                 schedule.parent.size(), ns));
  }
  const auto T = static_cast<std::size_t>(threads);
  // Work of a supernode: its factor entries (what a solve streams); of a subtree: the sum.
  std::vector<double> subtree(static_cast<std::size_t>(ns), 0.0);
  std::vector<std::vector<std::int64_t>> children(static_cast<std::size_t>(ns));
  std::vector<std::int64_t> roots;
  double total = 0.0;
  for (std::int64_t s = 0; s < ns; ++s) {
    const double entries = static_cast<double>(factor.pi[s + 1] - factor.pi[s]) *
                           static_cast<double>(factor.super[s + 1] - factor.super[s]);
    subtree[static_cast<std::size_t>(s)] = entries;
    total += entries;
    const std::int64_t parent = schedule.parent[static_cast<std::size_t>(s)];
    if (parent < 0) {
      roots.push_back(s);
    } else {
      children[static_cast<std::size_t>(parent)].push_back(s);
    }
    max_below_ = std::max(max_below_, (factor.pi[s + 1] - factor.pi[s]) -
                                          (factor.super[s + 1] - factor.super[s]));
  }
  // Children before parents (levels ascending): subtree sums bottom-up.
  for (const std::int64_t s : schedule.order) {
    const std::int64_t parent = schedule.parent[static_cast<std::size_t>(s)];
    if (parent >= 0) {
      subtree[static_cast<std::size_t>(parent)] += subtree[static_cast<std::size_t>(s)];
    }
  }
  // Cut the heaviest subtree of the frontier (its root joins the top) until the frontier packs
  // evenly onto the threads (longest first, each to the lightest thread).
  std::vector<char> in_top(static_cast<std::size_t>(ns), 0);
  std::vector<std::int64_t> frontier = roots;
  std::vector<std::vector<std::int64_t>> packed;
  const auto by_work = [&](std::int64_t a, std::int64_t b) {
    return subtree[static_cast<std::size_t>(a)] > subtree[static_cast<std::size_t>(b)] ||
           (subtree[static_cast<std::size_t>(a)] == subtree[static_cast<std::size_t>(b)] && a < b);
  };
  for (;;) {
    std::sort(frontier.begin(), frontier.end(), by_work);
    packed.assign(T, {});
    std::vector<double> load(T, 0.0);
    double frontier_work = 0.0;
    for (const std::int64_t s : frontier) {
      const auto lightest = static_cast<std::size_t>(
          std::min_element(load.begin(), load.end()) - load.begin());
      packed[lightest].push_back(s);
      load[lightest] += subtree[static_cast<std::size_t>(s)];
      frontier_work += subtree[static_cast<std::size_t>(s)];
    }
    const double heaviest = *std::max_element(load.begin(), load.end());
    if (T == 1 || heaviest <= balance_target * frontier_work / static_cast<double>(T) ||
        frontier.size() >= max_subtrees_per_thread * T) {
      break;
    }
    const auto cut = std::find_if(frontier.begin(), frontier.end(), [&](std::int64_t s) {
      return !children[static_cast<std::size_t>(s)].empty();
    });
    if (cut == frontier.end()) break;  // only leaves left
    const std::int64_t s = *cut;
    frontier.erase(cut);
    in_top[static_cast<std::size_t>(s)] = 1;
    for (const std::int64_t c : children[static_cast<std::size_t>(s)]) frontier.push_back(c);
  }
  // Each thread's supernodes, and the top's, in an order with children before parents.
  const auto solve_order = [&](std::vector<std::int64_t>& list) {
    std::sort(list.begin(), list.end(), [&](std::int64_t a, std::int64_t b) {
      const auto la = schedule.level[static_cast<std::size_t>(a)];
      const auto lb = schedule.level[static_cast<std::size_t>(b)];
      return la < lb || (la == lb && a < b);
    });
  };
  bins_.assign(T, {});
  for (std::size_t t = 0; t < T; ++t) {
    std::vector<std::int64_t> stack = packed[t];
    while (!stack.empty()) {
      const std::int64_t s = stack.back();
      stack.pop_back();
      bins_[t].push_back(s);
      for (const std::int64_t c : children[static_cast<std::size_t>(s)]) stack.push_back(c);
    }
    solve_order(bins_[t]);
  }
  double top_work = 0.0;
  top_index_.assign(static_cast<std::size_t>(factor.n), -1);
  for (std::int64_t s = 0; s < ns; ++s) {
    if (!in_top[static_cast<std::size_t>(s)]) continue;
    top_.push_back(s);
    top_work += static_cast<double>(factor.pi[s + 1] - factor.pi[s]) *
                static_cast<double>(factor.super[s + 1] - factor.super[s]);
  }
  solve_order(top_);
  for (const std::int64_t s : top_) {
    for (std::int64_t c = factor.super[s]; c < factor.super[s + 1]; ++c) {
      top_index_[static_cast<std::size_t>(c)] = top_rows_++;
    }
  }
  top_fraction_ = total > 0.0 ? top_work / total : 0.0;
  buffers_.resize(T);
  work_.resize(T);
}

namespace {

/// Forward step of supernode s: X1 := L11^{-1} X1, then the rows below -= L21 X1, into y for
/// rows with top_index < 0 (or all rows when `buffer` is null), else into buffer (rows indexed
/// by top_index, leading dimension top_rows).
void forward(const SupernodalFactorView& f, std::int64_t s, double* y, std::int64_t nrhs,
             double* work, const std::int64_t* top_index, double* buffer, std::int64_t top_rows) {
  const std::int64_t k1 = f.super[s], ncols = f.super[s + 1] - k1;
  const std::int64_t p0 = f.pi[s], nrows = f.pi[s + 1] - p0, below = nrows - ncols;
  const double* l = f.values + f.px[s];
  const auto n = static_cast<int>(f.n);
  double* x1 = y + k1;
  cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit,
              static_cast<int>(ncols), static_cast<int>(nrhs), 1.0, l, static_cast<int>(nrows), x1,
              n);
  if (below == 0) return;
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(below),
              static_cast<int>(nrhs), static_cast<int>(ncols), 1.0, l + ncols,
              static_cast<int>(nrows), x1, n, 0.0, work, static_cast<int>(below));
  const std::int64_t* rows = f.rows + p0 + ncols;
  for (std::int64_t j = 0; j < nrhs; ++j) {
    const double* w = work + j * below;
    double* yj = y + j * f.n;
    if (buffer == nullptr) {
      for (std::int64_t r = 0; r < below; ++r) yj[rows[r]] -= w[r];
      continue;
    }
    double* bj = buffer + j * top_rows;
    for (std::int64_t r = 0; r < below; ++r) {
      const std::int64_t t = top_index[rows[r]];
      if (t < 0) {
        yj[rows[r]] -= w[r];
      } else {
        bj[t] -= w[r];
      }
    }
  }
}

/// Backward step of supernode s: X1 -= L21^T X[rows below], then X1 := L11^{-T} X1.
void backward(const SupernodalFactorView& f, std::int64_t s, double* y, std::int64_t nrhs,
              double* work) {
  const std::int64_t k1 = f.super[s], ncols = f.super[s + 1] - k1;
  const std::int64_t p0 = f.pi[s], nrows = f.pi[s + 1] - p0, below = nrows - ncols;
  const double* l = f.values + f.px[s];
  const auto n = static_cast<int>(f.n);
  double* x1 = y + k1;
  if (below > 0) {
    const std::int64_t* rows = f.rows + p0 + ncols;
    for (std::int64_t j = 0; j < nrhs; ++j) {
      const double* yj = y + j * f.n;
      double* w = work + j * below;
      for (std::int64_t r = 0; r < below; ++r) w[r] = yj[rows[r]];
    }
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(ncols),
                static_cast<int>(nrhs), static_cast<int>(below), -1.0, l + ncols,
                static_cast<int>(nrows), work, static_cast<int>(below), 1.0, x1, n);
  }
  cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit,
              static_cast<int>(ncols), static_cast<int>(nrhs), 1.0, l, static_cast<int>(nrows), x1,
              n);
}

}  // namespace

void ThreadedSupernodalSolver::solve(double* x, std::int64_t ld, std::int64_t nrhs) const {
  const std::int64_t n = f_.n;
  if (ld < n || nrhs < 0) {
    throw InputError(fmt::format("threaded supernodal solve: leading dimension {} for n = {} and "
                                 "{} right-hand sides",
                                 ld, n, nrhs));
  }
  if (n == 0 || nrhs == 0) return;
  if (n * nrhs > std::int64_t{1} << 31) {
    throw InputError(fmt::format("threaded supernodal solve: n = {} times {} right-hand sides "
                                 "exceeds the BLAS's 32-bit sizes",
                                 n, nrhs));
  }
  const auto T = static_cast<std::int64_t>(bins_.size());
  y_.resize(static_cast<std::size_t>(n * nrhs));
  double* y = y_.data();
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = 0; i < n; ++i) y[i + j * n] = x[(f_.perm ? f_.perm[i] : i) + j * ld];
  }
  for (std::int64_t t = 0; t < T; ++t) {
    buffers_[static_cast<std::size_t>(t)].assign(static_cast<std::size_t>(top_rows_ * nrhs), 0.0);
    work_[static_cast<std::size_t>(t)].resize(static_cast<std::size_t>(std::max<std::int64_t>(
        max_below_ * nrhs, 1)));
  }
  {
    // The subtrees: one thread each, single-threaded BLAS.
    const BlasThreads single(1);
#pragma omp parallel for num_threads(static_cast<int>(T)) schedule(static, 1)
    for (std::int64_t t = 0; t < T; ++t) {
      const auto k = static_cast<std::size_t>(t);
      for (const std::int64_t s : bins_[k]) {
        forward(f_, s, y, nrhs, work_[k].data(), top_index_.data(), buffers_[k].data(), top_rows_);
      }
    }
  }
  // The subtrees' updates to the top, in thread order; then the top on all BLAS threads.
  for (std::int64_t t = 0; t < T; ++t) {
    const double* buffer = buffers_[static_cast<std::size_t>(t)].data();
    for (const std::int64_t s : top_) {
      for (std::int64_t c = f_.super[s]; c < f_.super[s + 1]; ++c) {
        const std::int64_t r = top_index_[static_cast<std::size_t>(c)];
        for (std::int64_t j = 0; j < nrhs; ++j) y[c + j * n] += buffer[r + j * top_rows_];
      }
    }
  }
  double* work = work_[0].data();
  for (const std::int64_t s : top_) forward(f_, s, y, nrhs, work, nullptr, nullptr, 0);
  for (auto it = top_.rbegin(); it != top_.rend(); ++it) backward(f_, *it, y, nrhs, work);
  {
    const BlasThreads single(1);
#pragma omp parallel for num_threads(static_cast<int>(T)) schedule(static, 1)
    for (std::int64_t t = 0; t < T; ++t) {
      const auto k = static_cast<std::size_t>(t);
      for (auto it = bins_[k].rbegin(); it != bins_[k].rend(); ++it) {
        backward(f_, *it, y, nrhs, work_[k].data());
      }
    }
  }
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = 0; i < n; ++i) x[(f_.perm ? f_.perm[i] : i) + j * ld] = y[i + j * n];
  }
}

}  // namespace vsense::kernels::cpu
