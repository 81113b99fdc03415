// Block shift-invert Lanczos with thick restart (Krylov-Schur form) for K x =
// lambda M x.
//
// The operator is T = (K - sigma M)^{-1} M, self-adjoint in the M inner
// product, with eigenvalues nu = 1 / (lambda - sigma). The basis V is
// M-orthonormal and satisfies
//     T V[:, :k] = V[:, :k] H[:k, :k] + V[:, k:k+b] H[k:k+b, :k]
// (H symmetric on [:k, :k]; the last block V[:, k:k+b] not yet multiplied by
// T). Why a block method: every step solves with the factor for b right-hand
// sides at once, so the factor (the dominant memory traffic) is read once per b
// vectors and the supernodal solve runs as BLAS-3 (dtrsm/dgemm on b columns)
// instead of BLAS-2. A block of b vectors also finds up to b copies of a
// repeated eigenvalue in exact arithmetic, which single-vector Lanczos finds
// only through round-off. Why full reorthogonalisation: with a factor-bound
// operator the solves cost far more than block Gram-Schmidt against the basis
// (BLAS-3 GEMMs), and full reorthogonalisation removes every ghost-eigenvalue
// issue of selective schemes. Restart: the Ritz vectors of the p best Ritz
// values replace the basis (H becomes diagonal with a coupling row to the kept
// residual block); converged wanted pairs are locked by zeroing their coupling
// (a perturbation of T no larger than the tolerance), so they stay exact.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "modal_internal.hpp"
#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::solvers {
namespace detail {

namespace {

using Clock = std::chrono::steady_clock;
using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

// Fixed-seed uniform(-0.5, 0.5) entries: reproducible runs.
void random_fill(double* x, Index count, std::uint64_t& state) {
  for (Index i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5;
  }
}

using kernels::BlockOps;
using kernels::BlockView;

/// rows x cols doubles (leading dimension rows) in the memory of `ops`:
/// uninitialised host memory on the CPU, device memory on a GPU.
class Storage {
public:
  Storage(const BlockOps& ops, Index rows, Index cols) : rows_(rows), cols_(cols) {
    const auto count = static_cast<std::size_t>(std::max<Index>(rows * cols, 1));
    if (ops.host_memory()) {
      host_.reset(new double[count]);
      data_ = host_.get();
    } else {
      device_ = std::make_unique<DeviceArray<double>>(ops.executor(), count);
      data_ = device_->data();
    }
  }
  BlockView view() const { return {data_, rows_, cols_, rows_}; }
  BlockView columns(Index first, Index count) const { return view().columns(first, count); }
  double* column(Index j) const { return data_ + j * rows_; }

private:
  Index rows_, cols_;
  std::unique_ptr<double[]> host_;
  std::unique_ptr<DeviceArray<double>> device_;
  double* data_ = nullptr;
};

/// The random entries of random_fill, written where `ops` computes (the same
/// numbers on every backend). x: ld = x.rows.
void fill_random(BlockOps& ops, BlockView x, std::uint64_t& state) {
  if (ops.host_memory()) {
    random_fill(x.data, x.rows * x.cols, state);
    return;
  }
  std::vector<double> host(static_cast<std::size_t>(x.rows * x.cols));
  random_fill(host.data(), x.rows * x.cols, state);
  ops.upload(host.data(), x.rows, x);
}

/// M-orthonormalisation of a block against an M-orthonormal basis V (with MV =
/// M V kept next to it), tracking the coefficients:
///     W_in = V C + Q R     (plus components along the deflated vectors,
///     removed).
/// Block classical Gram-Schmidt followed by an eigen-based intra-block
/// orthonormalisation (G = W^T M W = U S U^T, Q = W U S^{-1/2}), repeated until
/// the block comes back orthonormal. One M-product of the block per pass; the
/// projections read MV instead. Directions that vanish (rank deficiency of the
/// block: an invariant subspace was found) are replaced by random vectors with
/// zero coefficients, which keeps the relation exact. The tall products run
/// where the vectors live (BlockOps); the small [m, b] and [b, b] matrices and
/// their eigen-decompositions stay on the host.
///
/// Passes over the whole basis dominate the cost (each reads [n, m] doubles
/// for a [n, b] block: memory-bound). A Lanczos block T V_r lies, in exact
/// arithmetic, in the span of the columns its coupling row in H names (the
/// previous block; after a restart the kept Ritz vectors) plus the new
/// direction; `local_from` names the first of those columns. Projecting them
/// out first (a pass over a few blocks) leaves the whole-basis pass only
/// round-off to remove, so the norm of the block hardly drops in it and one
/// pass suffices (the DGKS test of Daniel, Gragg, Kaufman and Stewart, in block
/// form: the smallest eigenvalue of G after the pass at least half the largest
/// before it; then the components left along V are below 2 eps relative). A
/// block that fails the test gets the second pass ("twice is enough").
class BlockOrthonormaliser {
public:
  BlockOrthonormaliser(const IterationSpace& space, Index b, const BlockView& deflate,
                       const BlockView& mass_deflate, std::uint64_t seed)
      : space_(space),
        ops_(*space.ops),
        deflate_(deflate),
        mass_deflate_(mass_deflate),
        rng_(seed),
        mw_(ops_, space.n, b),
        q_(ops_, space.n, b) {}

  /// Passes over the whole basis so far (the starting block, with no basis, makes none).
  std::int64_t passes() const { return passes_; }

  /// Basis columns [first, first + vectors.cols) with M times them: the local set.
  struct Coupled {
    Index first;
    BlockView vectors, mass_vectors;
  };

  // w: [n, b] in: the block, out: Q. basis: [n, m]; mass_basis: M times it, or no columns when
  // only the local set's M-products are kept (the whole-basis pass then takes its coefficients
  // from V^T (M w), at one more M-product). c: [m, b], r: [b, b], mq: [n, b] = M Q (may be the
  // storage of a local block's M-product: it is written after they are read). coupled: the
  // local set, projected out first in pass 0 (empty: none).
  void run(BlockView w, BlockView basis, BlockView mass_basis, MatrixXd& c, MatrixXd& r,
           BlockView mq, const std::vector<Coupled>& coupled) {
    const Index n = w.rows, b = w.cols, m = basis.cols;
    c.setZero(m, b);
    r.setIdentity(b, b);
    const BlockView mw = mw_.columns(0, b);
    const BlockView q = q_.columns(0, b);
    double reference_sq = -1.0;  // largest squared M-norm of an input column
    // Whether mw = M w can be updated alongside w (the previous pass left a
    // well-conditioned block whose M-product, mq, is accurate) instead of
    // recomputed.
    bool derived = false;
    constexpr int max_passes = 6;
    const bool whole = mass_basis.cols == m;
    // Whether mw = M w holds through the pass (updated alongside w).
    bool current = false;
    const auto project = [&](const BlockView& vectors, const BlockView& mass_vectors) {
      d_.resize(vectors.cols, b);
      ops_.gemm_tn(1.0, mass_vectors, w, 0.0, d_.data(), d_.rows());
      ops_.gemm_nn(-1.0, vectors, d_.data(), d_.rows(), 1.0, w);
      if (current) ops_.gemm_nn(-1.0, mass_vectors, d_.data(), d_.rows(), 1.0, mw);
    };
    const auto project_basis = [&] {
      if (whole) {
        project(basis, mass_basis);
        return;
      }
      d_.resize(m, b);
      ops_.gemm_tn(1.0, basis, mw, 0.0, d_.data(), d_.rows());
      ops_.gemm_nn(-1.0, basis, d_.data(), d_.rows(), 1.0, w);
      current = false;
    };
    // The block's squared M-norms before the whole-basis pass of pass 0, when
    // a local pass preceded it: W_before = W_after + V D with V M-orthonormal,
    // so G_before = G_after + D^T D.
    MatrixXd removed;
    const bool local = m > 0 && !coupled.empty();
    for (int pass = 0; pass < max_passes; ++pass) {
      current = derived;
      if (derived) {
        ops_.copy(mq, mw);
      } else if (!whole && m > 0) {
        space_.mass(w.data, mw.data, b);  // the whole-basis pass needs M w
        current = true;
      }
      if (pass == 0 && local) {
        for (const Coupled& block : coupled) {
          project(block.vectors, block.mass_vectors);
          c.middleRows(block.first, block.vectors.cols) += d_;  // r = I in pass 0
        }
      }
      if (deflate_.cols > 0) {
        project(deflate_, mass_deflate_);
        if (pass == 0 && local) removed = d_.transpose() * d_;
      }
      if (m > 0) {
        project_basis();
        c.noalias() += d_ * r;
        if (pass == 0 && local) {
          if (removed.size() == 0) removed = MatrixXd::Zero(b, b);
          removed.noalias() += d_.transpose() * d_;
        }
      }
      if (!current) space_.mass(w.data, mw.data, b);
      MatrixXd gram(b, b);
      ops_.gemm_tn(1.0, w, mw, 0.0, gram.data(), b);
      gram = 0.5 * (gram + gram.transpose()).eval();
      if (m > 0) ++passes_;
      if (reference_sq < 0.0) {
        // After the first projection; the scale of what is left decides what
        // counts as gone.
        reference_sq = gram.diagonal().maxCoeff();
        if (!(reference_sq > 0.0) || !std::isfinite(reference_sq)) reference_sq = 1.0;
      }
      const Eigen::SelfAdjointEigenSolver<MatrixXd> eigen(gram);
      const VectorXd& s = eigen.eigenvalues();
      const MatrixXd& u = eigen.eigenvectors();
      ops_.gemm_nn(1.0, w, u.data(), b, 0.0, q);
      ops_.gemm_nn(1.0, mw, u.data(), b, 0.0, mq);
      const MatrixXd rotated_r = u.transpose() * r;
      VectorXd norms = VectorXd::Ones(b);
      std::vector<Index> vanished;
      double deviation = 0.0;  // max |S_i - 1|: how far the block was from orthonormal
      for (Index i = 0; i < b; ++i) {
        if (s[i] > 1e-28 * reference_sq) {
          norms[i] = std::sqrt(s[i]);
          r.row(i) = norms[i] * rotated_r.row(i);
          deviation = std::max(deviation, std::abs(s[i] - 1.0));
        } else {
          // A vanished direction: a random vector instead (made orthogonal in
          // the next pass), with zero coefficient, so that W_in = V C + Q R
          // still holds.
          r.row(i).setZero();
          vanished.push_back(i);
        }
      }
      ops_.divide_columns(q, norms.data());
      ops_.divide_columns(mq, norms.data());
      for (const Index i : vanished) fill_random(ops_, q.columns(i, 1), rng_);
      ops_.copy(q, w);
      const bool replaced = !vanished.empty();
      if (pass >= 1 && !replaced && deviation <= 1e-10) return;
      if (pass == 0 && local && !replaced && removed.size() > 0 && s[0] >= 1e-4 * s[b - 1]) {
        // Every column kept at least half its squared M-norm through the whole-basis pass
        // (what it still has along V is then round-off of its size), and the block is well
        // enough conditioned that S^{-1/2} amplifies that round-off by at most 100.
        const VectorXd after = gram.diagonal();
        const VectorXd before = after + removed.diagonal();
        if ((after.array() >= 0.5 * before.array()).all()) return;
      }
      // Q = W U S^{-1/2} and M Q likewise: the error of the derived M Q is
      // about eps times the condition number of U S^{-1/2}, negligible when
      // S_min / S_max >= 1e-8.
      derived = !replaced && s[0] >= 1e-8 * s[b - 1];
    }
    throw NumericalError(
        fmt::format("modal solver: could not M-orthonormalise a block of {} "
                    "vectors against a basis of {} in {} passes (n = {})",
                    b, m, max_passes, n));
  }

private:
  const IterationSpace& space_;
  BlockOps& ops_;
  BlockView deflate_, mass_deflate_;
  std::uint64_t rng_;
  Storage mw_, q_;
  MatrixXd d_;
  std::int64_t passes_ = 0;
};

}  // namespace

// Basis size: 3 n_wanted (measured on the genset at 1e5 DOF, 50 modes: 200
// solves and 2 restarts against 232 solves and 6 restarts with 2 n_wanted), at
// most 2 n_wanted + 64 for large requests (memory: the basis and M times it are
// 2 x n x basis doubles), and room for four blocks beyond the wanted pairs.
Index default_basis_size(Index nev, Index b) {
  return std::max(nev + 4 * b, std::min(3 * nev, 2 * nev + 64));
}

namespace {
// Eigen's own parallel products (OpenMP) would compete for the cores with the
// BLAS threads of the factor solves, each pool spinning while the other works;
// the iteration's large products go to the BLAS, and Eigen runs single-threaded
// for the small ones meanwhile.
class EigenSingleThreaded {
public:
  EigenSingleThreaded() : previous_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~EigenSingleThreaded() { Eigen::setNbThreads(previous_); }
  EigenSingleThreaded(const EigenSingleThreaded&) = delete;
  EigenSingleThreaded& operator=(const EigenSingleThreaded&) = delete;

private:
  int previous_;
};
}  // namespace

IterationSpace host_space(const ShiftInvert& op, const SymmetricProduct& mass, BlockOps& ops) {
  IterationSpace space;
  space.ops = &ops;
  space.n = op.rows();
  space.sigma = op.sigma();
  space.solve = [&op](const double* in, double* out, Index ncols) { op.solve(in, out, ncols); };
  space.mass = [&mass](const double* in, double* out, Index ncols) { mass.apply(in, out, ncols); };
  return space;
}

BlockLanczosPairs block_lanczos(const ShiftInvert& op, const SymmetricProduct& mass,
                                const BlockLanczosSettings& settings) {
  const auto ops = kernels::cpu::make_block_ops(std::make_shared<CpuExecutor>());
  return block_lanczos(host_space(op, mass, *ops), settings);
}

BlockLanczosPairs block_lanczos(const IterationSpace& space, const BlockLanczosSettings& settings) {
  const auto begin = Clock::now();
  const EigenSingleThreaded eigen_single_threaded;
  BlockOps& ops = *space.ops;
  const Index n = space.n;
  const Index nev = settings.n_wanted;
  const Index b = settings.block_size;
  const Index f = settings.deflate.cols;
  const double sigma = space.sigma;
  const Index available = n - f;
  Index cap = settings.basis_size > 0 ? settings.basis_size : default_basis_size(nev, b);
  cap = std::min(cap, available - b);
  if (nev < 1 || b < 1 || cap < nev + b) {
    throw InputError(
        fmt::format("modal solver: block Lanczos ({}) needs n_wanted >= 1 and a "
                    "basis of at least n_wanted + block = {} vectors, but n = {} "
                    "({} deflated) allows {}",
                    settings.pass, nev + b, n, f, cap));
  }

  BlockOrthonormaliser orthonormaliser(space, b, settings.deflate, settings.mass_deflate,
                                       settings.seed * 0x9E3779B97F4A7C15ull + 7);
  // The basis (M-orthonormal columns), and M times it: the whole basis, or its two latest
  // blocks only (what the operator's input and the local pass need) when the whole would take
  // more than half the free memory beside the basis.
  BlockLanczosPairs out;
  {
    using MassBasis = BlockLanczosSettings::MassBasis;
    const double basis_bytes = 8.0 * static_cast<double>(n) * static_cast<double>(cap + b);
    out.whole_mass_basis =
        settings.mass_basis == MassBasis::whole ||
        (settings.mass_basis == MassBasis::automatic &&
         (!ops.host_memory() ||
          2.0 * basis_bytes <= 0.5 * static_cast<double>(CpuExecutor().free_bytes())));
  }
  const bool whole = out.whole_mass_basis;
  const Storage v(ops, n, cap + b);
  auto mv_storage = std::make_unique<Storage>(ops, n, whole ? cap + b : 2 * b);
  const Storage& mv = *mv_storage;
  // With the latest blocks only: mv's two slots of b columns, and the basis column each slot's
  // block starts at.
  Index window_first[2] = {-1, -1};
  const auto slot_of = [&](Index first) -> int {
    for (int slot = 0; slot < 2; ++slot) {
      if (window_first[slot] == first) return slot;
    }
    return -1;
  };
  // M times the basis block at column `first` (b columns).
  const auto mass_block = [&](Index first) -> BlockView {
    if (whole) return mv.columns(first, b);
    const int slot = slot_of(first);
    if (slot < 0) throw Error("modal solver: block Lanczos lost M times a basis block");
    return mv.columns(slot * b, b);
  };
  const auto mass_basis = [&](Index columns) {
    return whole ? mv.columns(0, columns) : mv.columns(0, 0);
  };
  MatrixXd h = MatrixXd::Zero(cap + b, cap + b);
  const Storage w(ops, n, b);
  // Restart work: the new basis V[:, :p] = V[:, :k] Y is formed a slab of rows at a time, in
  // place (each slab of the result depends on the same rows of V only), so a restart needs
  // [slab, p] more doubles instead of another [n, p] (3.7 GB at 1e6 equations and 200 modes).
  const Index slab = std::min(n, std::max<Index>(16384, (n + 15) / 16));
  std::unique_ptr<Storage> restart_work;  // [slab, cap], made at the first restart
  MatrixXd coefficients, coupling;
  // The solves are timed to their end (device work is queued asynchronously).
  const auto solve = [&](const double* in, double* result) {
    const auto t = Clock::now();
    space.solve(in, result, b);
    ops.synchronize();
    out.operator_seconds += seconds_since(t);
    out.solves += b;
  };

  // Starting block: T applied to fixed-seed random vectors, so that the whole
  // basis lies in the range of T (as ARPACK's mode 3 starts): when M is
  // singular (massless hourglass modes of reduced-integration elements), a raw
  // random vector carries components along null(M) that the M inner product
  // never sees but K does, and they would spoil the Ritz vectors.
  std::uint64_t state = 0x2545F4914F6CDD1Dull + settings.seed;
  fill_random(ops, w.view(), state);
  {
    auto t = Clock::now();
    window_first[0] = 0;
    space.mass(w.column(0), mass_block(0).data, b);
    out.operator_seconds += seconds_since(t);
    solve(mass_block(0).data, v.column(0));
    t = Clock::now();
    orthonormaliser.run(v.columns(0, b), v.columns(0, 0), mass_basis(0), coefficients, coupling,
                        mass_block(0), {});
    out.orthogonalisation_seconds += seconds_since(t);
  }

  Index k = 0;  // processed columns: T V[:, :k] is expressed in the basis
  VectorXd theta;
  MatrixXd y;
  std::vector<Index> order;
  VectorXd beta;
  auto last_report = Clock::now();

  // Rayleigh-Ritz on H[:k, :k]; returns the number of leading wanted pairs that
  // converged.
  const auto rayleigh_ritz = [&]() -> Index {
    const auto t = Clock::now();
    const Eigen::SelfAdjointEigenSolver<MatrixXd> eigen(h.topLeftCorner(k, k));
    theta = eigen.eigenvalues();
    y = eigen.eigenvectors();
    order.resize(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), Index{0});
    if (settings.wanted == Wanted::largest) {
      std::sort(order.begin(), order.end(), [&](Index a, Index c) { return theta[a] > theta[c]; });
    } else {
      std::sort(order.begin(), order.end(),
                [&](Index a, Index c) { return std::abs(theta[a]) > std::abs(theta[c]); });
    }
    // ||T x - theta x||_M = ||H[k:k+b, :k] y||_2 for the Ritz vector x = V y.
    beta = (h.block(k, 0, b, k) * y).colwise().norm().transpose();
    Index converged = 0;
    while (converged < nev) {
      const Index j = order[static_cast<std::size_t>(converged)];
      if (!(beta[j] <= settings.tolerance * std::abs(theta[j]))) break;
      ++converged;
    }
    out.ritz_seconds += seconds_since(t);
    return converged;
  };

  for (;;) {
    // Expand the basis block by block until it is full.
    Index converged = 0;
    while (k + b <= cap) {
      solve(mass_block(k).data, w.column(0));  // W = (K - sigma M)^{-1} M V_r
      const auto t = Clock::now();
      // The columns T V_r couples to in exact arithmetic: those of its row in H (the previous
      // block, or the unlocked kept Ritz vectors after a restart), and V_r itself. With the
      // latest blocks only, the local pass covers V_r and the previous block when coupled
      // (after a restart the kept Ritz vectors are left to the whole-basis passes: that block
      // takes two).
      Index local_from = k;
      while (local_from > 0 && !h.block(k, local_from - 1, b, 1).isZero(0.0)) --local_from;
      std::vector<BlockOrthonormaliser::Coupled> coupled;
      BlockView mq;
      if (whole) {
        coupled.push_back({local_from, v.columns(local_from, k + b - local_from),
                           mv.columns(local_from, k + b - local_from)});
        mq = mv.columns(k + b, b);
      } else {
        const int current = slot_of(k);
        if (k >= b && local_from <= k - b && slot_of(k - b) >= 0) {
          coupled.push_back({k - b, v.columns(k - b, b), mass_block(k - b)});
        }
        coupled.push_back({k, v.columns(k, b), mass_block(k)});
        mq = mv.columns((1 - current) * b, b);  // the previous block's slot, read first
      }
      orthonormaliser.run(w.view(), v.columns(0, k + b), mass_basis(k + b), coefficients,
                          coupling, mq, coupled);
      if (!whole) window_first[1 - slot_of(k)] = k + b;
      ++out.blocks;
      out.orthogonalisation_seconds += seconds_since(t);
      // T V_r = V[:, :k+b] C + Q R: fill column block k of H (symmetric).
      h.block(0, k, k, b) = h.block(k, 0, b, k).transpose();
      const MatrixXd diagonal = coefficients.bottomRows(b);
      h.block(k, k, b, b) = 0.5 * (diagonal + diagonal.transpose());
      h.block(k + b, 0, b, k + b).setZero();
      h.block(k + b, k, b, b) = coupling;
      ops.copy(w.view(), v.columns(k + b, b));
      k += b;
      if (k >= nev) {
        converged = rayleigh_ritz();
        if (converged == nev) break;
      }
    }
    if (converged == nev) break;
    if (out.restarts >= settings.max_restarts) {
      throw NumericalError(
          fmt::format("modal solver: block Lanczos ({}) did not converge: {} "
                      "of {} modes after {} restarts "
                      "(n = {}, block {}, basis {}, tolerance {:.3g}, {}); "
                      "raise max_iterations or "
                      "subspace_size",
                      settings.pass, converged, nev, out.restarts, n, b, cap, settings.tolerance,
                      describe_shift(sigma)));
    }
    if (seconds_since(last_report) >= 2.0) {
      spdlog::info(
          "modal: block Lanczos ({}): restart {}, {} of {} modes "
          "converged, {} solves, "
          "{:.1f} s",
          settings.pass, out.restarts, converged, nev, out.solves, seconds_since(begin));
      last_report = Clock::now();
    }
    // Thick restart: keep the p best Ritz vectors and the residual block.
    const auto t = Clock::now();
    Index p = std::max(nev, nev + (k - nev) / 2);
    p = std::min(p, k - b);
    MatrixXd kept_y(k, p);
    VectorXd kept_theta(p);
    for (Index j = 0; j < p; ++j) {
      kept_y.col(j) = y.col(order[static_cast<std::size_t>(j)]);
      kept_theta[j] = theta[order[static_cast<std::size_t>(j)]];
    }
    MatrixXd new_coupling = h.block(k, 0, b, k) * kept_y;                 // [b, p]
    for (Index j = 0; j < converged; ++j) new_coupling.col(j).setZero();  // locking
    if (!restart_work) restart_work = std::make_unique<Storage>(ops, slab, cap);
    for (Index first = 0; first < n; first += slab) {
      const Index rows = std::min(slab, n - first);
      const BlockView work{restart_work->column(0), rows, p, rows};
      ops.gemm_nn(1.0, v.columns(0, k).row_block(first, rows), kept_y.data(), k, 0.0, work);
      ops.copy(work, v.columns(0, p).row_block(first, rows));
      if (whole) {
        ops.gemm_nn(1.0, mv.columns(0, k).row_block(first, rows), kept_y.data(), k, 0.0, work);
        ops.copy(work, mv.columns(0, p).row_block(first, rows));
      }
    }
    ops.copy(v.columns(k, b), v.columns(p, b));  // p <= k - b: no overlap
    if (whole) {
      ops.copy(mv.columns(k, b), mv.columns(p, b));
    } else {
      // M times the residual block stays in its slot; the other slot is no basis block now.
      const int residual = slot_of(k);
      if (residual < 0) throw Error("modal solver: block Lanczos lost M times a basis block");
      window_first[residual] = p;
      window_first[1 - residual] = -1;
    }
    h.setZero();
    h.topLeftCorner(p, p).diagonal() = kept_theta;
    h.block(p, 0, b, p) = new_coupling;
    h.block(0, p, p, b) = new_coupling.transpose();
    k = p;
    ++out.restarts;
    ops.synchronize();
    out.ritz_seconds += seconds_since(t);
  }

  const auto t = Clock::now();
  MatrixXd wanted_y(k, nev);
  out.eigenvalues.resize(nev);
  for (Index j = 0; j < nev; ++j) {
    const Index i = order[static_cast<std::size_t>(j)];
    wanted_y.col(j) = y.col(i);
    out.eigenvalues[j] = sigma + 1.0 / theta[i];
  }
  // M V is released and the Ritz vectors V[:, :nev] = V[:, :k] Y are formed in place, a slab of
  // rows at a time (as a restart forms the kept vectors), then copied out: beside the basis
  // only the [n, nev] result is allocated (never beside both [n, cap + b] blocks: 1.6 GB at 1e6
  // equations and 200 modes).
  mv_storage.reset();  // `mv` is not used below
  if (!restart_work) restart_work = std::make_unique<Storage>(ops, slab, cap);
  for (Index first = 0; first < n; first += slab) {
    const Index rows = std::min(slab, n - first);
    const BlockView work{restart_work->column(0), rows, nev, rows};
    ops.gemm_nn(1.0, v.columns(0, k).row_block(first, rows), wanted_y.data(), k, 0.0, work);
    ops.copy(work, v.columns(0, nev).row_block(first, rows));
  }
  ops.synchronize();
  out.vectors.resize(n, nev);
  if (ops.host_memory()) {
    std::copy(v.column(0), v.column(0) + n * nev, out.vectors.data());
  } else {
    ops.download(v.columns(0, nev), out.vectors.data(), n);
  }
  out.ritz_seconds += seconds_since(t);
  out.basis_passes = orthonormaliser.passes();
  spdlog::debug(
      "modal: block Lanczos ({}): {} modes, block {}, basis {}, {} "
      "restarts, {} "
      "solves in {:.3f} s (solves {:.3f} s, orthogonalisation {:.3f} "
      "s, {} passes over the basis for {} blocks, Ritz {:.3f} s; M times {})",
      settings.pass, nev, b, cap, out.restarts, out.solves, seconds_since(begin),
      out.operator_seconds, out.orthogonalisation_seconds, out.basis_passes, out.blocks,
      out.ritz_seconds, whole ? "the whole basis" : "the two latest blocks");
  return out;
}

namespace {

// Modes per deflation pass and the Ritz tolerance of its detection run (ample
// to tell a missed eigenvalue from the next ones).
constexpr double detection_tolerance = 1e-6;

// The largest number of eigenvalues equal to within `relative` of each other.
Index largest_cluster(const VectorXd& sorted, double relative) {
  Index best = sorted.size() > 0 ? 1 : 0, run = 1;
  for (Index j = 1; j < sorted.size(); ++j) {
    const double scale = std::max({std::abs(sorted[j]), std::abs(sorted[j - 1]), 1e-300});
    run = std::abs(sorted[j] - sorted[j - 1]) <= relative * scale ? run + 1 : 1;
    best = std::max(best, run);
  }
  return best;
}

}  // namespace

// A block of b random start vectors captures min(multiplicity, b) copies of
// every eigenvalue in exact arithmetic, so only a cluster of b or more found
// copies can hide further copies. For those, search the M-orthogonal complement
// of the modes found (as the single-vector path does for every run) and add
// what lies clearly below the highest wanted eigenvalue.
namespace {
void recover_missed_copies(const IterationSpace& space, const BlockLanczosSettings& main,
                           BlockLanczosPairs& found, int& recovered) {
  const Index n = space.n;
  const Index nev = main.n_wanted;
  for (int pass = 1; pass <= nev; ++pass) {
    keep_lowest(found, found.eigenvalues.size());
    if (largest_cluster(found.eigenvalues.head(nev), 1e-8) < main.block_size) return;
    const Index f = found.vectors.cols();
    BlockLanczosSettings check = main;
    check.n_wanted = main.block_size;
    check.basis_size = 0;
    check.seed = main.seed + static_cast<std::uint64_t>(pass);
    check.pass = "repeated-eigenvalue check";
    if (n - f < 2 * (check.n_wanted + 3 * check.block_size)) return;  // complement too small
    // The found vectors where the iteration runs (a copy on a device), and M
    // times them.
    std::unique_ptr<Storage> found_copy;
    BlockView deflate{found.vectors.data(), n, f, n};
    if (!space.ops->host_memory()) {
      found_copy = std::make_unique<Storage>(*space.ops, n, f);
      space.ops->upload(found.vectors.data(), n, found_copy->view());
      deflate = found_copy->view();
    }
    const Storage mass_found(*space.ops, n, f);
    space.mass(deflate.data, mass_found.column(0), f);
    check.deflate = deflate;
    check.mass_deflate = mass_found.view();
    check.tolerance = std::max(main.tolerance, detection_tolerance);
    BlockLanczosPairs extra = block_lanczos(space, check);
    add_counters(found, extra);
    const double top = found.eigenvalues[nev - 1];
    const double margin = 1e-8 * std::max(std::abs(top), std::abs(space.sigma));
    const auto missed = [&] {
      std::vector<Index> list;
      for (Index j = 0; j < extra.eigenvalues.size(); ++j) {
        if (extra.eigenvalues[j] < top - margin) list.push_back(j);
      }
      return list;
    };
    std::vector<Index> below = missed();
    if (below.empty()) return;
    if (check.tolerance > main.tolerance) {
      check.tolerance = main.tolerance;
      check.pass = "recovering missed modes";
      extra = block_lanczos(space, check);
      add_counters(found, extra);
      below = missed();
      if (below.empty()) return;
    }
    spdlog::info(
        "modal: repeated-eigenvalue check found {} missed cop{} (lowest {:.6g} "
        "(rad/s)^2); adding and checking again",
        below.size(), below.size() == 1 ? "y" : "ies", extra.eigenvalues[below[0]]);
    const auto added = static_cast<Index>(below.size());
    found.eigenvalues.conservativeResize(f + added);
    found.vectors.conservativeResize(n, f + added);
    for (Index i = 0; i < added; ++i) {
      found.eigenvalues[f + i] = extra.eigenvalues[below[static_cast<std::size_t>(i)]];
      found.vectors.col(f + i) = extra.vectors.col(below[static_cast<std::size_t>(i)]);
    }
    recovered += static_cast<int>(added);
  }
}

}  // namespace

// Keeps the lowest `count` pairs, ascending.
void keep_lowest(BlockLanczosPairs& pairs, Index count) {
  std::vector<Index> order(static_cast<std::size_t>(pairs.eigenvalues.size()));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](Index a, Index c) { return pairs.eigenvalues[a] < pairs.eigenvalues[c]; });
  VectorXd values(count);
  MatrixXd vectors(pairs.vectors.rows(), count);
  for (Index j = 0; j < count; ++j) {
    values[j] = pairs.eigenvalues[order[static_cast<std::size_t>(j)]];
    vectors.col(j) = pairs.vectors.col(order[static_cast<std::size_t>(j)]);
  }
  pairs.eigenvalues = std::move(values);
  pairs.vectors = std::move(vectors);
}

void add_counters(BlockLanczosPairs& total, const BlockLanczosPairs& pass) {
  total.restarts += pass.restarts;
  total.solves += pass.solves;
  total.blocks += pass.blocks;
  total.basis_passes += pass.basis_passes;
  total.operator_seconds += pass.operator_seconds;
  total.orthogonalisation_seconds += pass.orthogonalisation_seconds;
  total.ritz_seconds += pass.ritz_seconds;
}

BlockLanczosSettings block_settings(Index n, int nev, const ModalOptions& options) {
  BlockLanczosSettings settings;
  settings.n_wanted = nev;
  settings.block_size = options.block_size > 0 ? options.block_size : default_block_size(n, nev);
  settings.basis_size = options.subspace_size;
  // A user basis size leaves room for at least one block beyond the wanted
  // modes.
  if (settings.basis_size > 0) {
    settings.block_size = std::max(1, std::min(settings.block_size, settings.basis_size - nev));
  }
  // The basis holds basis + block vectors, all independent: shrink the block
  // for tiny models.
  while (settings.block_size > 1 &&
         default_basis_size(nev, settings.block_size) + settings.block_size > n) {
    settings.block_size /= 2;
  }
  if (settings.basis_size == 0 &&
      default_basis_size(nev, settings.block_size) + settings.block_size > n) {
    settings.basis_size = static_cast<int>(n - settings.block_size);
  }
  settings.tolerance = options.tolerance;
  settings.max_restarts = options.max_iterations;
  return settings;
}

ModalResult block_modes(const IterationSpace& space, const CholmodShiftInvert& factor,
                        const SparseMatrix& stiffness, const SparseMatrix& mass,
                        const ModalOptions& options, const BlockLanczosSettings& settings) {
  const auto start = Clock::now();
  const int nev = settings.n_wanted;
  const double sigma = space.sigma;
  BlockLanczosPairs pairs = block_lanczos(space, settings);
  ModalResult result;
  result.method = "block";
  result.block_size = settings.block_size;
  if (options.deflation_check) {
    recover_missed_copies(space, settings, pairs, result.recovered_modes);
  }
  keep_lowest(pairs, nev);
  result.iterations = pairs.restarts;
  result.solves = pairs.solves;
  result.operator_seconds = pairs.operator_seconds;
  result.orthogonalisation_seconds = pairs.orthogonalisation_seconds;
  result.ritz_seconds = pairs.ritz_seconds;
  result.eigenvalues = std::move(pairs.eigenvalues);
  result.vectors = std::move(pairs.vectors);
  finish_result(stiffness, mass, sigma, options, result);
  result.solve_seconds = seconds_since(start);
  result.factor_seconds = factor.factor_seconds();
  result.factor_nonzeros = factor.factor_nonzeros();
  result.regularisation = factor.regularisation();
  result.ordering = factor.permutation();
  spdlog::info(
      "modal: {} modes in {} restarts, {} solves (block {}), {:.3f} "
      "s: solves {:.3f} s, "
      "orthogonalisation {:.3f} s, Ritz {:.3f} s (factorisation "
      "{:.3f} s); lowest "
      "{:.6g}, highest {:.6g} (rad/s)^2",
      nev, result.iterations, result.solves, result.block_size, result.solve_seconds,
      result.operator_seconds, result.orthogonalisation_seconds, result.ritz_seconds,
      result.factor_seconds, result.eigenvalues[0], result.eigenvalues[nev - 1]);
  return result;
}

ModalResult solve_lowest_modes_block(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                     const ModalOptions& options, double sigma) {
  const Index n = stiffness.rows();
  const int nev = options.n_modes;
  const BlockLanczosSettings settings = block_settings(n, nev, options);
  spdlog::info(
      "modal: {} lowest modes of n = {} equations, {}, block Lanczos "
      "(block {})",
      nev, n, describe_shift(sigma), settings.block_size);

  const CholmodShiftInvert factor(stiffness, mass, sigma, options.ordering);
  return block_modes_on_host(factor, SymmetricProduct(mass), stiffness, mass, options, settings);
}

ModalResult block_modes_on_host(const CholmodShiftInvert& factor,
                                const SymmetricProduct& mass_product,
                                const SparseMatrix& stiffness, const SparseMatrix& mass,
                                const ModalOptions& options, const BlockLanczosSettings& settings) {
  const auto ops = kernels::cpu::make_block_ops(std::make_shared<CpuExecutor>());
  return block_modes(host_space(factor, mass_product, *ops), factor, stiffness, mass, options,
                     settings);
}

}  // namespace detail

// Measured on the genset at 1e5 DOF, 50 modes (a shared 2-core machine): the
// solve costs 49, 21, 15 and 12.5 ms per vector with blocks of 4, 8, 12 and 16,
// while the vectors needed grow with the block (164, 200, 252, 304 solves with
// a basis of 150); 8 and 12 tie at 50 modes, larger requests amortise larger
// blocks.
int default_block_size(std::int64_t n_equations, int n_modes) {
  (void)n_equations;
  return n_modes <= 60 ? 8 : 12;
}

}  // namespace vsense::solvers
