// The level schedule of a supernodal factor and the CPU reference solve
// (kernels/include/vsense/kernels/supernodal.hpp): plain loops on CHOLMOD's layout, in the
// order the device executes them.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/supernodal.hpp"

namespace vsense::kernels {

namespace {

[[noreturn]] void malformed(const std::string& what) {
  throw InputError(fmt::format("supernodal factor: {}", what));
}

void check_arrays(const SupernodalFactorView& f) {
  if (f.n < 0 || f.n_supernodes < 0) {
    malformed(fmt::format("n = {} with {} supernodes", f.n, f.n_supernodes));
  }
  if (f.n == 0) {
    if (f.n_supernodes != 0) malformed(fmt::format("n = 0 with {} supernodes", f.n_supernodes));
    return;
  }
  if (f.n_supernodes == 0 || f.super == nullptr || f.pi == nullptr || f.px == nullptr ||
      f.rows == nullptr || f.values == nullptr) {
    malformed(fmt::format("n = {} with {} supernodes and missing arrays", f.n, f.n_supernodes));
  }
}

}  // namespace

SupernodalSchedule supernodal_schedule(const SupernodalFactorView& f) {
  check_arrays(f);
  SupernodalSchedule schedule;
  const std::int64_t ns = f.n_supernodes;
  if (ns == 0) {
    schedule.level_offsets.push_back(0);
    return schedule;
  }
  if (f.super[0] != 0 || f.super[ns] != f.n || f.pi[0] != 0 || f.px[0] != 0) {
    malformed(fmt::format("super[0] = {}, super[{}] = {} (n = {}), pi[0] = {}, px[0] = {}",
                          f.super[0], ns, f.super[ns], f.n, f.pi[0], f.px[0]));
  }
  if (f.perm != nullptr) {
    // Solves index B and X through it: a repeated or out-of-range entry would write out of
    // bounds (on the device too).
    std::vector<char> taken(static_cast<std::size_t>(f.n), 0);
    for (std::int64_t i = 0; i < f.n; ++i) {
      const std::int64_t p = f.perm[i];
      if (p < 0 || p >= f.n || taken[static_cast<std::size_t>(p)]) {
        malformed(fmt::format("perm[{}] = {} is out of range or repeated (n = {})", i, p, f.n));
      }
      taken[static_cast<std::size_t>(p)] = 1;
    }
  }
  // The supernode of each column, to find parents.
  std::vector<std::int64_t> owner(static_cast<std::size_t>(f.n));
  for (std::int64_t s = 0; s < ns; ++s) {
    const std::int64_t k1 = f.super[s], k2 = f.super[s + 1];
    const std::int64_t ncols = k2 - k1, nrows = f.pi[s + 1] - f.pi[s];
    if (ncols <= 0 || nrows < ncols || f.px[s + 1] - f.px[s] < nrows * ncols) {
      malformed(fmt::format("supernode {} has {} columns, {} rows and {} values", s, ncols, nrows,
                            f.px[s + 1] - f.px[s]));
    }
    for (std::int64_t k = k1; k < k2; ++k) owner[static_cast<std::size_t>(k)] = s;
    schedule.max_columns = std::max(schedule.max_columns, ncols);
    schedule.max_rows = std::max(schedule.max_rows, nrows);
    schedule.max_below = std::max(schedule.max_below, nrows - ncols);
  }
  schedule.parent.assign(static_cast<std::size_t>(ns), -1);
  schedule.level.assign(static_cast<std::size_t>(ns), 0);
  for (std::int64_t s = 0; s < ns; ++s) {
    const std::int64_t k1 = f.super[s], k2 = f.super[s + 1], p0 = f.pi[s];
    const std::int64_t ncols = k2 - k1, nrows = f.pi[s + 1] - p0;
    for (std::int64_t c = 0; c < ncols; ++c) {
      if (f.rows[p0 + c] != k1 + c) {
        malformed(
            fmt::format("supernode {} (columns {}..{}) has row {} in place {} of its "
                        "diagonal block",
                        s, k1, k2 - 1, f.rows[p0 + c], c));
      }
    }
    for (std::int64_t r = ncols; r < nrows; ++r) {
      const std::int64_t row = f.rows[p0 + r];
      const std::int64_t previous = r == ncols ? k2 - 1 : f.rows[p0 + r - 1];
      if (row <= previous || row >= f.n) {
        malformed(
            fmt::format("supernode {} (columns {}..{}) has row {} after {} below its "
                        "diagonal block (n = {})",
                        s, k1, k2 - 1, row, previous, f.n));
      }
    }
    if (nrows > ncols) {
      // Parents come later in the elimination order, so one ascending pass sets every level.
      const std::int64_t parent = owner[static_cast<std::size_t>(f.rows[p0 + ncols])];
      schedule.parent[static_cast<std::size_t>(s)] = parent;
      auto& parent_level = schedule.level[static_cast<std::size_t>(parent)];
      parent_level = std::max(parent_level, schedule.level[static_cast<std::size_t>(s)] + 1);
    }
  }
  // The level solves are right when every row below s lies in a supernode of a higher level
  // (it is then updated by s before it is solved, and no two supernodes of one level touch each
  // other's rows). CHOLMOD's supernodal etree guarantees it (those rows lie in ancestors); a
  // violation would make the solves silently wrong.
  for (std::int64_t s = 0; s < ns; ++s) {
    const std::int64_t ncols = f.super[s + 1] - f.super[s], p0 = f.pi[s];
    const std::int64_t level = schedule.level[static_cast<std::size_t>(s)];
    for (std::int64_t r = ncols; r < f.pi[s + 1] - p0; ++r) {
      const std::int64_t target = owner[static_cast<std::size_t>(f.rows[p0 + r])];
      if (schedule.level[static_cast<std::size_t>(target)] <= level) {
        malformed(fmt::format(
            "row {} below supernode {} (level {}) lies in supernode {} of "
            "level {}, not in an ancestor",
            f.rows[p0 + r], s, level, target, schedule.level[static_cast<std::size_t>(target)]));
      }
    }
  }
  for (const auto l : schedule.level) schedule.n_levels = std::max(schedule.n_levels, l + 1);
  // Counting sort by level keeps each level ascending.
  schedule.level_offsets.assign(static_cast<std::size_t>(schedule.n_levels) + 1, 0);
  for (const auto l : schedule.level) ++schedule.level_offsets[static_cast<std::size_t>(l) + 1];
  for (std::int64_t l = 0; l < schedule.n_levels; ++l) {
    schedule.level_offsets[static_cast<std::size_t>(l) + 1] +=
        schedule.level_offsets[static_cast<std::size_t>(l)];
  }
  schedule.order.resize(static_cast<std::size_t>(ns));
  std::vector<std::int64_t> next(schedule.level_offsets.begin(), schedule.level_offsets.end() - 1);
  for (std::int64_t s = 0; s < ns; ++s) {
    const auto l = static_cast<std::size_t>(schedule.level[static_cast<std::size_t>(s)]);
    schedule.order[static_cast<std::size_t>(next[l]++)] = s;
  }
  return schedule;
}

namespace cpu {

namespace {

/// X1 := L11^{-1} X1, then X[rows below] -= L21 X1; y is [n, nrhs] with leading dimension n.
void forward_supernode(const SupernodalFactorView& f, std::int64_t s, double* y,
                       std::int64_t nrhs) {
  const std::int64_t k1 = f.super[s], ncols = f.super[s + 1] - k1;
  const std::int64_t p0 = f.pi[s], nrows = f.pi[s + 1] - p0;
  const double* l = f.values + f.px[s];  // [nrows, ncols], leading dimension nrows
  const std::int64_t* below = f.rows + p0;
  for (std::int64_t j = 0; j < nrhs; ++j) {
    double* yj = y + j * f.n;
    double* x1 = yj + k1;  // the supernode's own rows are contiguous
    for (std::int64_t c = 0; c < ncols; ++c) {
      const double* lc = l + c * nrows;
      const double v = x1[c] / lc[c];
      x1[c] = v;
      for (std::int64_t r = c + 1; r < ncols; ++r) x1[r] -= lc[r] * v;
      for (std::int64_t r = ncols; r < nrows; ++r) yj[below[r]] -= lc[r] * v;
    }
  }
}

/// X1 -= L21^T X[rows below], then X1 := L11^{-T} X1.
void backward_supernode(const SupernodalFactorView& f, std::int64_t s, double* y,
                        std::int64_t nrhs) {
  const std::int64_t k1 = f.super[s], ncols = f.super[s + 1] - k1;
  const std::int64_t p0 = f.pi[s], nrows = f.pi[s + 1] - p0;
  const double* l = f.values + f.px[s];
  const std::int64_t* below = f.rows + p0;
  for (std::int64_t j = 0; j < nrhs; ++j) {
    double* yj = y + j * f.n;
    double* x1 = yj + k1;
    for (std::int64_t c = ncols - 1; c >= 0; --c) {
      const double* lc = l + c * nrows;
      double v = x1[c];
      for (std::int64_t r = ncols; r < nrows; ++r) v -= lc[r] * yj[below[r]];
      for (std::int64_t r = c + 1; r < ncols; ++r) v -= lc[r] * x1[r];
      x1[c] = v / lc[c];
    }
  }
}

}  // namespace

void supernodal_solve(const SupernodalFactorView& f, const SupernodalSchedule& schedule, double* x,
                      std::int64_t ld, std::int64_t nrhs) {
  if (ld < f.n || nrhs < 0) {
    throw InputError(
        fmt::format("supernodal solve: leading dimension {} for n = {} and {} "
                    "right-hand sides",
                    ld, f.n, nrhs));
  }
  if (static_cast<std::int64_t>(schedule.order.size()) != f.n_supernodes ||
      static_cast<std::int64_t>(schedule.level_offsets.size()) != schedule.n_levels + 1) {
    throw InputError(
        fmt::format("supernodal solve: a schedule of {} supernodes in {} levels for "
                    "a factor of {} supernodes",
                    schedule.order.size(), schedule.n_levels, f.n_supernodes));
  }
  if (f.n == 0 || nrhs == 0) return;
  const std::int64_t n = f.n;
  // y = B(perm, :), [n, nrhs] with leading dimension n (as the device workspace).
  std::vector<double> y(static_cast<std::size_t>(n * nrhs));
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = 0; i < n; ++i) {
      y[static_cast<std::size_t>(i + j * n)] = x[(f.perm ? f.perm[i] : i) + j * ld];
    }
  }
  for (std::int64_t level = 0; level < schedule.n_levels; ++level) {
    const auto first = schedule.level_offsets[static_cast<std::size_t>(level)];
    for (auto k = schedule.level_offsets[static_cast<std::size_t>(level) + 1] - 1; k >= first;
         --k) {
      forward_supernode(f, schedule.order[static_cast<std::size_t>(k)], y.data(), nrhs);
    }
  }
  for (std::int64_t level = schedule.n_levels - 1; level >= 0; --level) {
    const auto first = schedule.level_offsets[static_cast<std::size_t>(level)];
    for (auto k = schedule.level_offsets[static_cast<std::size_t>(level) + 1] - 1; k >= first;
         --k) {
      backward_supernode(f, schedule.order[static_cast<std::size_t>(k)], y.data(), nrhs);
    }
  }
  for (std::int64_t j = 0; j < nrhs; ++j) {
    for (std::int64_t i = 0; i < n; ++i) {
      x[(f.perm ? f.perm[i] : i) + j * ld] = y[static_cast<std::size_t>(i + j * n)];
    }
  }
}

}  // namespace cpu

}  // namespace vsense::kernels
