// Spectrum slicing for the block solver: "every mode below lambda_max" and requests larger than
// one shift should carry.
//
// The spectrum is cut at boundaries b_0 = sigma_0 < b_1 < ... < b_S. The inertia of an LDL^T
// factorisation of K - b_i M (MUMPS) says exactly how many eigenvalues lie below b_i, so each
// slice (b_{i-1}, b_i) knows its count c_i before it is solved, and the solve is certified when
// it returns c_i eigenpairs inside the slice (residual and M-orthonormality checked after).
//  - Slice 1 is solved around the negative shift sigma_0 (the supernodal Cholesky factor of the
//    plain block path): its lowest pairs are the lowest eigenvalues, rigid-body modes included.
//    b_1 is put in a gap below the highest pair found, and count(b_1) must equal the pairs kept.
//  - Slice i >= 2 is solved around its centre (b_{i-1} + b_i) / 2 with the largest |nu|: the
//    c_i eigenvalues nearest the centre are exactly those of the slice, which it is symmetric
//    about, so no effort goes to eigenvalues outside it.
//  - The next boundary is estimated from the count so far with Weyl's law for 3-D solids,
//    N(lambda) ~ lambda^{3/2}, so that a slice holds about slice_modes eigenvalues (the last
//    one: what remains of the request); its count corrects the estimate.
//  - slice_modes is sized, once slice 1's factor is held, by the memory left for the basis
//    (slice_modes_in_memory): a lowest-modes request whose basis fits is solved on one shift.
// Eigenvectors of different slices belong to different eigenvalues, so they are M-orthogonal up
// to residual / gap; a final Rayleigh-Ritz on the union of all slices (dense, m x m) restores
// orthonormality to round-off where two slices meet at a close pair.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <vector>

#include "modal_internal.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/solvers/sturm.hpp"

namespace vsense::solvers {

namespace {

// The basis of a slice holds 2 x n x (about 2 n_modes + 64) doubles with M times it.
constexpr double basis_bytes_per_mode(std::int64_t n_equations) {
  return 2.0 * 2.0 * 8.0 * static_cast<double>(n_equations);
}

// At most 300 modes per shift: fewer restarts of a smaller basis against one more LDL^T
// factorisation.
constexpr double max_slice_modes = 300.0;
constexpr double min_slice_modes = 40.0;

}  // namespace

int default_slice_modes(std::int64_t n_equations) {
  const double limit =
      4.0 * 1024 * 1024 * 1024 / std::max(basis_bytes_per_mode(n_equations), 1.0);
  return static_cast<int>(std::clamp(limit, min_slice_modes, max_slice_modes));
}

int slice_modes_in_memory(std::int64_t n_equations, std::size_t free_bytes) {
  if (free_bytes == 0) return default_slice_modes(n_equations);
  const double limit =
      0.75 * static_cast<double>(free_bytes) / std::max(basis_bytes_per_mode(n_equations), 1.0);
  return static_cast<int>(std::clamp(limit, min_slice_modes, max_slice_modes));
}

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;
using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

double hz(double lambda) { return std::sqrt(std::max(lambda, 0.0)) / (2.0 * std::numbers::pi); }

struct Collected {
  std::vector<double> values;
  std::vector<Eigen::VectorXd> vectors;
  BlockLanczosPairs counters;
};

// Rayleigh-Ritz of K, M on the span of all collected vectors: X <- X Y with
// (X^T K X) Y = (X^T M X) Y Lambda. Vectors of distinct eigenvalues are already nearly
// M-orthogonal, so X^T M X is close to the identity; a duplicate would make it singular.
void merge_slices(const SparseMatrix& stiffness, const SparseMatrix& mass, Collected& all,
                  ModalResult& result) {
  const Index n = stiffness.rows();
  const auto m = static_cast<Index>(all.values.size());
  MatrixXd x(n, m);
  for (Index j = 0; j < m; ++j) x.col(j) = all.vectors[static_cast<std::size_t>(j)];
  MatrixXd kx(n, m), mx(n, m);
  SymmetricProduct(stiffness).apply(x.data(), kx.data(), m);
  SymmetricProduct(mass).apply(x.data(), mx.data(), m);
  MatrixXd gk = x.transpose() * kx, gm = x.transpose() * mx;
  gk = 0.5 * (gk + gk.transpose()).eval();
  gm = 0.5 * (gm + gm.transpose()).eval();
  const Eigen::GeneralizedSelfAdjointEigenSolver<MatrixXd> eigen(gk, gm);
  if (eigen.info() != Eigen::Success) {
    throw NumericalError(fmt::format("modal solver: merging {} modes of the spectrum slices "
                                     "failed (X^T M X not positive definite: a mode found twice?)",
                                     m));
  }
  result.eigenvalues = eigen.eigenvalues();
  result.vectors = x * eigen.eigenvectors();
}

}  // namespace

ModalResult solve_modes_sliced(const SparseMatrix& stiffness, const SparseMatrix& mass,
                               const ModalOptions& options, double sigma) {
  const Index n = stiffness.rows();
  const bool below_mode = std::isfinite(options.upper);
  const double upper = options.upper;
  const auto start = Clock::now();
  ModalResult result;
  result.method = "block";

  // Slice 1's operator. Freed once slice 1 is solved when more slices follow: their counts and
  // operators are LDL^T factorisations of about the same size (~10 GB each at 1e6 equations),
  // and holding both at once is what a 24 GB node cannot.
  auto factor =
      std::make_unique<const CholmodShiftInvert>(stiffness, mass, sigma, options.ordering);
  const SymmetricProduct mass_product(mass);
  result.factor_seconds = factor->factor_seconds();
  result.factor_nonzeros = factor->factor_nonzeros();
  result.regularisation = factor->regularisation();
  result.ordering = factor->permutation();
  // The slices are as large as the memory left beside the factor lets their basis be.
  const std::size_t free_bytes = CpuExecutor{}.free_bytes();
  const Index slice = options.slice_modes > 0 ? options.slice_modes
                                              : slice_modes_in_memory(n, free_bytes);
  if (options.slice_modes == 0 && free_bytes > 0) {
    spdlog::info("modal: {:.1f} GiB of memory left beside the factor: up to {} modes per shift",
                 static_cast<double>(free_bytes) / (1024.0 * 1024.0 * 1024.0), slice);
  }
  if (!below_mode && options.n_modes <= slice && factor->regularisation() == 0.0) {
    // One shift carries the request: the plain block path on this factor (repeated-eigenvalue
    // check included; the Sturm count follows in the modal analysis).
    spdlog::info("modal: {} modes on one shift, {}", options.n_modes, describe_shift(sigma));
    return block_modes_on_host(*factor, mass_product, stiffness, mass, options,
                               block_settings(n, options.n_modes, options));
  }
  Collected all;
  std::uint64_t seed = 1;

  const auto run = [&](const ShiftInvert& op, Index nev, Wanted wanted, const char* pass) {
    BlockLanczosSettings settings = block_settings(n, static_cast<int>(nev), options);
    settings.wanted = wanted;
    settings.seed = seed++;
    settings.pass = pass;
    result.block_size = settings.block_size;
    BlockLanczosPairs pairs = block_lanczos(op, mass_product, settings);
    add_counters(all.counters, pairs);
    keep_lowest(pairs, pairs.eigenvalues.size());
    return pairs;
  };
  const auto take = [&](const BlockLanczosPairs& pairs, Index j) {
    all.values.push_back(pairs.eigenvalues[j]);
    all.vectors.emplace_back(pairs.vectors.col(j));
  };
  const auto count_at = [&](double at) {
    const SturmCount count = sturm_count(stiffness, mass, at, &result.ordering);
    result.factor_seconds += count.seconds;
    return count.below;
  };

  if (factor->regularisation() > 0.0) {
    // A singular pencil: the inertia of K - s M also counts the common null space of K and M,
    // so counts certify nothing. Grow the request on the one factor until it passes `upper`.
    if (below_mode) {
      spdlog::warn("modal: singular pencil: modes below {:.6g} Hz are found by growing the "
                   "request (no Sturm count can certify them)",
                   hz(upper));
    }
    Index nev = std::min<Index>(std::max(options.n_modes, 1), n / 2);
    for (;;) {
      const BlockLanczosPairs pairs = run(*factor, nev, Wanted::largest, "main");
      const double top = pairs.eigenvalues[pairs.eigenvalues.size() - 1];
      if (!below_mode || top >= upper || 2 * nev > n / 2) {
        for (Index j = 0; j < pairs.eigenvalues.size(); ++j) {
          if (!below_mode || pairs.eigenvalues[j] < upper) take(pairs, j);
        }
        break;
      }
      spdlog::info("modal: {} modes reach only {:.4g} Hz: asking for {}", nev, hz(top), 2 * nev);
      nev *= 2;
    }
  } else {
    Index target = options.n_modes;
    std::int64_t upper_count = -1;
    if (below_mode) {
      upper_count = count_at(upper);
      target = upper_count;
      spdlog::info("modal: Sturm count: {} modes below {:.6g} Hz", upper_count, hz(upper));
      if (target == 0) {
        throw InputError(fmt::format("no mode lies below {:.6g} Hz (the Sturm count at that "
                                     "frequency is 0)",
                                     hz(upper)));
      }
    }
    if (target > n) {
      throw InputError(fmt::format("modal solver: {} modes requested but the model has only {} "
                                   "equations",
                                   target, n));
    }
    // Slice 1, around sigma_0 < lambda_1.
    const bool single = target <= slice;
    const Index first = single ? target : slice;
    spdlog::info("modal: {} modes, {} per slice: slice 1 around {}", target, slice,
                 describe_shift(sigma));
    BlockLanczosPairs pairs = run(*factor, first, Wanted::largest, "slice 1");
    if (single && below_mode) {
      // The count at `upper` is known: the pass must find exactly that many below it. A block
      // method can miss a copy of an eigenvalue repeated more often than its block size; a
      // larger search from a new start vector finds it, and the count stays the judge.
      Index nev = first;
      for (int attempt = 0;; ++attempt) {
        for (Index j = 0; j < pairs.eigenvalues.size(); ++j) {
          if (pairs.eigenvalues[j] < upper) take(pairs, j);
        }
        const auto found = static_cast<std::int64_t>(all.values.size());
        if (found == upper_count) break;
        const Index larger = std::min<Index>(n, nev + std::max<Index>(8, nev / 2));
        if (found > upper_count || attempt == 2 || larger == nev) {
          throw NumericalError(fmt::format(
              "Sturm check failed: {} eigenvalues lie below {:.6g} Hz but {} were found there; "
              "modes are missing",
              upper_count, hz(upper), found));
        }
        spdlog::warn("modal: {} of the {} modes below {:.6g} Hz found (a repeated eigenvalue "
                     "missed); searching again for {} pairs from a new start",
                     found, upper_count, hz(upper), larger);
        all.values.clear();
        all.vectors.clear();
        nev = larger;
        pairs = run(*factor, nev, Wanted::largest, "slice 1, again");
      }
      result.certified.push_back({upper, upper_count});
    } else if (single) {
      for (Index j = 0; j < pairs.eigenvalues.size(); ++j) take(pairs, j);
    } else {
      factor.reset();
      // b_1 in the widest relative gap among the upper half of the pairs found; the pairs
      // below it are kept.
      Index keep = first - 1;
      double widest = -1.0;
      for (Index j = first / 2; j + 1 < first; ++j) {
        const double gap = (pairs.eigenvalues[j + 1] - pairs.eigenvalues[j]) /
                           std::max(std::abs(pairs.eigenvalues[j + 1]), 1e-300);
        if (gap >= widest) {
          widest = gap;
          keep = j + 1;
        }
      }
      double bound = 0.5 * (pairs.eigenvalues[keep - 1] + pairs.eigenvalues[keep]);
      std::int64_t below = count_at(bound);
      if (below != keep) {
        throw NumericalError(fmt::format(
            "Sturm check failed: {} eigenvalues lie below {:.6g} Hz but {} were found there "
            "(slice 1); modes are missing",
            below, hz(bound), keep));
      }
      for (Index j = 0; j < keep; ++j) take(pairs, j);
      result.certified.push_back({bound, below});
      // Local exponent of N(lambda) ~ lambda^p from slice 1's own eigenvalues.
      double exponent = 1.5;
      const double half = pairs.eigenvalues[keep / 2];
      if (half > 0.0 && bound > half) {
        exponent = std::clamp(std::log(static_cast<double>(keep) /
                                       static_cast<double>(keep - keep / 2)) /
                                  std::log(bound / half),
                              0.05, 3.0);
      }
      int index = 1;
      while (below < target) {
        ++index;
        // The next boundary: about `aim` more eigenvalues by N(lambda) ~ lambda^p, p fitted
        // to the counts so far (the low spectrum of a machine on mounts is far sparser than
        // Weyl's asymptotic p = 3/2), refitted from each trial count. A full slice, or what
        // remains of the request and a margin for the estimate when that is less: the last
        // slice solves no more modes than it must.
        const Index remaining = target - below;
        const Index aim = std::min<Index>(slice, remaining + std::max<Index>(8, remaining / 4));
        const auto boundary_for = [&](double p) {
          return bound * std::pow(static_cast<double>(below + aim) /
                                      static_cast<double>(std::max<std::int64_t>(below, 1)),
                                  1.0 / p);
        };
        double next = boundary_for(exponent);
        std::int64_t next_below = -1;
        for (int attempt = 0; attempt < 8; ++attempt) {
          if (below_mode && next >= 0.95 * upper) {
            next = upper;
            next_below = upper_count;
          } else {
            next_below = count_at(next);
          }
          const std::int64_t count = next_below - below;
          if ((count >= std::max<Index>(1, aim / 4) || next == upper) && count <= 2 * aim) {
            break;
          }
          if (count > 0) {
            exponent = std::clamp(std::log(static_cast<double>(next_below) /
                                           static_cast<double>(std::max<std::int64_t>(below, 1))) /
                                      std::log(next / bound),
                                  0.05, 3.0);
          } else {
            exponent = std::max(0.05, 0.5 * exponent);
          }
          next = boundary_for(exponent);
          if (count > 2 * aim) next = std::min(next, bound + 0.5 * (next - bound));
        }
        if (next_below > below) {
          exponent = std::clamp(std::log(static_cast<double>(next_below) /
                                         static_cast<double>(std::max<std::int64_t>(below, 1))) /
                                    std::log(next / bound),
                                0.05, 3.0);
        }
        const Index count = next_below - below;
        if (count <= 0 || count > 4 * slice) {
          throw NumericalError(fmt::format("modal solver: could not place slice {} above {:.6g} "
                                           "Hz ({} eigenvalues in the last try)",
                                           index, hz(bound), count));
        }
        const double centre = 0.5 * (bound + next);
        const std::string pass = fmt::format("slice {}", index);
        spdlog::info("modal: slice {}: {} modes in {:.6g}..{:.6g} Hz around {}", index, count,
                     hz(bound), hz(next), describe_shift(centre));
        const MumpsShiftInvert op(stiffness, mass, centre, &result.ordering);
        result.factor_seconds += op.factor_seconds();
        if (op.count_below() < below || op.count_below() > next_below) {
          throw NumericalError(fmt::format("modal solver: inconsistent Sturm counts: {} below "
                                           "{:.6g} Hz, {} below {:.6g} Hz, {} below {:.6g} Hz",
                                           below, hz(bound), op.count_below(), hz(centre),
                                           next_below, hz(next)));
        }
        // The count nearest the centre are the slice; if one of them converged to a copy
        // outside (a missed one inside), ask for a few more and keep the slice's.
        Index found = 0;
        for (Index extra = 0; extra <= 2 * options.block_size + 16; extra += 8) {
          const BlockLanczosPairs slice_pairs =
              run(op, std::min<Index>(count + extra, n / 2), Wanted::magnitude, pass.c_str());
          found = 0;
          for (Index j = 0; j < slice_pairs.eigenvalues.size(); ++j) {
            const double value = slice_pairs.eigenvalues[j];
            if (value > bound && value < next) ++found;
          }
          if (found == count) {
            for (Index j = 0; j < slice_pairs.eigenvalues.size(); ++j) {
              const double value = slice_pairs.eigenvalues[j];
              if (value > bound && value < next) take(slice_pairs, j);
            }
            break;
          }
          spdlog::info("modal: slice {}: {} of {} modes inside, asking for more", index, found,
                       count);
        }
        if (found != count) {
          throw NumericalError(fmt::format(
              "Sturm check failed: {} eigenvalues lie in {:.6g}..{:.6g} Hz (slice {}) but {} "
              "were found there; modes are missing",
              count, hz(bound), hz(next), index, found));
        }
        bound = next;
        below = next_below;
        result.certified.push_back({bound, below});
      }
      result.slices = index;
      // Nothing lies between the last boundary and `upper` (same count): certified up to there.
      if (below_mode && bound < upper) result.certified.push_back({upper, upper_count});
    }
  }

  if (result.slices > 1) {
    merge_slices(stiffness, mass, all, result);
  } else {
    const auto m = static_cast<Index>(all.values.size());
    result.eigenvalues.resize(m);
    result.vectors.resize(n, m);
    for (Index j = 0; j < m; ++j) {
      result.eigenvalues[j] = all.values[static_cast<std::size_t>(j)];
      result.vectors.col(j) = all.vectors[static_cast<std::size_t>(j)];
    }
  }
  // Lowest-n_modes requests keep the lowest of the last slice.
  if (!below_mode && result.eigenvalues.size() > options.n_modes) {
    result.eigenvalues.conservativeResize(options.n_modes);
    result.vectors.conservativeResize(n, options.n_modes);
  }
  result.iterations = all.counters.restarts;
  result.solves = all.counters.solves;
  result.operator_seconds = all.counters.operator_seconds;
  result.orthogonalisation_seconds = all.counters.orthogonalisation_seconds;
  result.ritz_seconds = all.counters.ritz_seconds;
  ModalOptions checks = options;
  checks.n_modes = static_cast<int>(result.eigenvalues.size());
  finish_result(stiffness, mass, sigma, checks, result);
  result.solve_seconds = seconds_since(start) - result.factor_seconds;
  const Index m = result.eigenvalues.size();
  spdlog::info("modal: {} modes in {} slice{}, {} solves, {} restarts; lowest {:.6g}, highest "
               "{:.6g} (rad/s)^2",
               m, result.slices, result.slices == 1 ? "" : "s", result.solves, result.iterations,
               result.eigenvalues[0], result.eigenvalues[m - 1]);
  return result;
}

}  // namespace detail
}  // namespace vsense::solvers
