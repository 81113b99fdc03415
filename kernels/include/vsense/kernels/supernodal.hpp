#pragma once
/// @file supernodal.hpp
/// @brief Solves A X = B with a supernodal Cholesky factor L L^T = A(perm, perm) in CHOLMOD's
/// layout: a level schedule of the supernodal elimination tree (built once per factor), the CPU
/// reference that executes it, and the factor uploaded once to a CUDA device for repeated
/// block solves (the shift-invert operator of the modal solver).
///
/// Forward L z = y runs over the levels upwards (leaves first), backward L^T w = z downwards;
/// the supernodes of one level are independent in both, so a device handles a level with one
/// batched launch.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {

/// @brief A supernodal LL^T factor in CHOLMOD's layout (host memory, not owned):
/// L L^T = A(perm, perm). Supernode s holds columns super[s] .. super[s+1]-1 (ncols of them);
/// its row pattern is rows[pi[s] .. pi[s+1]-1] (nrows entries: first the ncols columns of the
/// supernode themselves, then the rows below, ascending); its values are the column-major
/// nrows x ncols block values[px[s] ..] (leading dimension nrows), lower triangular in its first
/// ncols rows (the entries above the diagonal are not read).
struct SupernodalFactorView {
  std::int64_t n = 0, n_supernodes = 0;
  const std::int64_t* super = nullptr;  ///< [n_supernodes + 1] first column of each supernode
  const std::int64_t* pi = nullptr;     ///< [n_supernodes + 1] offsets into rows
  const std::int64_t* px = nullptr;     ///< [n_supernodes + 1] offsets into values
  const std::int64_t* rows = nullptr;   ///< [pi[n_supernodes]] row indices (CHOLMOD L->s)
  const double* values = nullptr;       ///< [px[n_supernodes]] CHOLMOD L->x
  const std::int64_t* perm = nullptr;   ///< [n] CHOLMOD L->Perm; nullptr: the identity
};

/// @brief Level schedule of the supernodal elimination tree (host), built once per factor.
///
/// The parent of supernode s is the supernode holding its first row below the diagonal block
/// (none for a root: nrows == ncols). Leaves have level 0, every other supernode 1 + the
/// largest level of its children. Every row below the diagonal block of s belongs to an
/// ancestor of s, hence to a higher level: the supernodes of one level are independent in the
/// forward and in the backward solve (the forward updates of two of them may add into the same
/// rows of a common ancestor).
struct SupernodalSchedule {
  std::int64_t n_levels = 0;
  std::vector<std::int64_t> parent;         ///< [n_supernodes] parent supernode, -1 for a root
  std::vector<std::int64_t> level;          ///< [n_supernodes] level of each supernode
  std::vector<std::int64_t> level_offsets;  ///< [n_levels + 1] offsets into `order`
  /// [n_supernodes] the supernodes of level l are order[level_offsets[l] .. level_offsets[l+1]-1],
  /// ascending.
  std::vector<std::int64_t> order;
  std::int64_t max_columns = 0;  ///< largest ncols of a supernode
  std::int64_t max_rows = 0;     ///< largest nrows of a supernode
  std::int64_t max_below = 0;    ///< largest nrows - ncols of a supernode
};

/// @brief The level schedule of a factor; checks the factor's structure on the way.
/// @throws InputError when the view is not a supernodal factor (offsets not increasing, a
/// diagonal block whose rows are not the supernode's columns, rows below not ascending or out
/// of range, a row below in a supernode of the same or a lower level, perm not a permutation).
SupernodalSchedule supernodal_schedule(const SupernodalFactorView& factor);

namespace cpu {
/// @brief Reference: solves A X = B in place, executing the level schedule exactly as the device
/// does (same order of levels; within a level the supernodes are processed in reverse order,
/// which gives the same result only because they are independent).
/// @param[in] factor L with L L^T = A(perm, perm)
/// @param[in] schedule supernodal_schedule(factor)
/// @param[in,out] x host, [n, nrhs] column-major, leading dimension ld >= n: B in, X out
/// @throws InputError for ld < n, nrhs < 0 or a schedule of another factor
void supernodal_solve(const SupernodalFactorView& factor, const SupernodalSchedule& schedule,
                      double* x, std::int64_t ld, std::int64_t nrhs);

/// @brief Block solves with a supernodal factor on several threads at once (BLAS-3 per
/// supernode, as CHOLMOD's solve, which runs the supernodes one after the other: most are too
/// small for a threaded BLAS, so one core streams the factor while the others idle).
///
/// The elimination tree is cut into disjoint subtrees packed onto the threads by work (factor
/// entries), each thread solving its subtrees on single-threaded BLAS, and the top of the tree
/// above them, solved by all BLAS threads. Forward, a subtree's updates to rows of the top go to
/// a buffer of its thread, added in thread order before the top is solved; backward, the top is
/// solved first and the subtrees then only read it. Same arithmetic per supernode as CHOLMOD;
/// the sums into the top rows are ordered by the thread count, not by timing (reproducible).
/// Not for concurrent solve() calls (the workspaces are the object's).
class ThreadedSupernodalSolver {
public:
  /// @param[in] factor L with L L^T = A(perm, perm); must outlive the solver
  /// @param[in] schedule supernodal_schedule(factor)
  /// @param[in] threads how many threads solve subtrees at once (>= 1)
  /// @throws InputError for threads < 1 or a schedule of another factor
  ThreadedSupernodalSolver(const SupernodalFactorView& factor, const SupernodalSchedule& schedule,
                           int threads);
  /// @brief Solves A X = B in place. x: [n, nrhs] column-major, leading dimension ld >= n.
  void solve(double* x, std::int64_t ld, std::int64_t nrhs) const;
  int threads() const noexcept { return static_cast<int>(bins_.size()); }
  /// Fraction of the factor's entries in the top of the tree (solved by all BLAS threads).
  double top_fraction() const noexcept { return top_fraction_; }

private:
  SupernodalFactorView f_;
  std::vector<std::vector<std::int64_t>> bins_;  ///< per thread: supernodes in solve order
  std::vector<std::int64_t> top_;                ///< the top's supernodes in solve order
  std::vector<std::int64_t> top_index_;          ///< [n] row -> index among the top's rows, or -1
  std::int64_t top_rows_ = 0;
  std::int64_t max_below_ = 0;
  double top_fraction_ = 0.0;
  mutable std::vector<double> y_;                     ///< [n, nrhs] B(perm, :)
  mutable std::vector<std::vector<double>> buffers_;  ///< per thread: updates to the top's rows
  mutable std::vector<std::vector<double>> work_;     ///< per thread: [max_below, nrhs]
};
}  // namespace cpu

namespace cuda {
/// @brief A supernodal factor on a CUDA device, uploaded once and solved with many times
/// (pimpl: no CUDA types in the header). Not safe for concurrent solve() calls on different
/// streams: the solves share one device workspace, ordered by the executor's stream.
class DeviceSupernodalFactor {
public:
  /// @brief Uploads the factor and its schedule (blocks until the upload has finished, so the
  /// host arrays of `factor` may be released afterwards).
  /// @param[in] exec the device and stream every later solve is queued on
  /// @param[in] factor L with L L^T = A(perm, perm), host memory
  /// @param[in] max_rhs the most right-hand sides one solve() takes (sizes the workspace)
  /// @throws DeviceResourceError when the factor and workspace (bytes_needed) do not fit;
  /// InputError for a malformed factor or max_rhs < 1; NotCompiled without CUDA.
  DeviceSupernodalFactor(std::shared_ptr<const CudaExecutor> exec,
                         const SupernodalFactorView& factor, std::int64_t max_rhs);
  ~DeviceSupernodalFactor();
  DeviceSupernodalFactor(const DeviceSupernodalFactor&) = delete;
  DeviceSupernodalFactor& operator=(const DeviceSupernodalFactor&) = delete;

  /// @brief Solves A X = B in place, queued on the executor's stream (the caller synchronises
  /// when it needs the result).
  /// @param[in,out] x DEVICE pointer, [n, nrhs] column-major, leading dimension ld >= n
  /// @param[in] nrhs 0 <= nrhs <= max_rhs
  /// @throws InputError for ld < n or nrhs out of range
  void solve(double* x, std::int64_t ld, std::int64_t nrhs) const;

  /// Device bytes this object holds (factor, indices and workspace; not cuBLAS' own).
  std::size_t device_bytes() const noexcept;

  /// @brief Device bytes a factor would need for max_rhs right-hand sides (to decide before
  /// uploading); host arithmetic only, no device is touched. Equals device_bytes() of the
  /// uploaded factor.
  /// @throws InputError for a malformed factor or max_rhs < 1; NotCompiled without CUDA.
  static std::size_t bytes_needed(const SupernodalFactorView& factor, std::int64_t max_rhs);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
}  // namespace cuda

}  // namespace vsense::kernels
