// The supernodal solve on a CUDA device (kernels/include/vsense/kernels/supernodal.hpp). The
// factor is uploaded once; a solve permutes B into a workspace, runs the level schedule
// upwards (forward) and downwards (backward), and permutes the result back. In each level the
// small supernodes are one batched launch (supernodal_kernels.cuh, one thread block each) and
// the large ones, near the root, are cuBLAS dtrsm/dgemm on their contiguous row block of the
// workspace plus a gather or scatter of the rows below. Everything is queued on the executor's
// stream, in the order of the CPU reference.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"
#include "supernodal_kernels.cuh"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/supernodal.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;
namespace detail = supernodal_detail;

/// A supernode solved with cuBLAS (host copy of its offsets).
struct LargeSupernode {
  std::int64_t first_column = 0, ncols = 0, nrows = 0, row_offset = 0, value_offset = 0;
};

/// How the device executes a factor: per level the batched small supernodes and the large
/// ones, and the sizes of the device arrays. A function of the view alone, so bytes_needed
/// and the constructor agree.
struct Plan {
  std::int64_t n = 0, n_supernodes = 0, n_levels = 0;
  std::int64_t n_values = 0, n_rows = 0;  // px[n_supernodes], pi[n_supernodes]
  /// Small supernodes grouped by level, most entries first within a level (the longest blocks
  /// start first); level l is small_list[small_offsets[l] .. small_offsets[l+1]-1].
  std::vector<std::int64_t> small_list, small_offsets;
  std::vector<std::vector<LargeSupernode>> large;  // [n_levels]
  std::int64_t max_large_below = 0;                // rows below a large supernode, at most
  std::size_t bytes = 0;
};

Plan make_plan(const SupernodalFactorView& f, std::int64_t max_rhs) {
  if (max_rhs < 1) {
    throw InputError(fmt::format("supernodal factor on the device: max_rhs = {}", max_rhs));
  }
  // cuBLAS takes int sizes: n bounds every row count and leading dimension it sees.
  if (f.n > std::numeric_limits<int>::max() || max_rhs > std::numeric_limits<int>::max()) {
    throw InputError(
        fmt::format("supernodal factor on the device: n = {} or max_rhs = {} "
                    "exceeds cuBLAS' 32-bit sizes",
                    f.n, max_rhs));
  }
  const SupernodalSchedule schedule = supernodal_schedule(f);  // checks the structure
  Plan plan;
  plan.n = f.n;
  plan.n_supernodes = f.n_supernodes;
  plan.n_levels = schedule.n_levels;
  plan.n_values = f.n_supernodes > 0 ? f.px[f.n_supernodes] : 0;
  plan.n_rows = f.n_supernodes > 0 ? f.pi[f.n_supernodes] : 0;
  plan.small_offsets.assign(1, 0);
  plan.large.resize(static_cast<std::size_t>(schedule.n_levels));
  const auto entries = [&](std::int64_t s) {
    return (f.super[s + 1] - f.super[s]) * (f.pi[s + 1] - f.pi[s]);
  };
  for (std::int64_t level = 0; level < schedule.n_levels; ++level) {
    const auto first = plan.small_list.size();
    for (auto k = schedule.level_offsets[static_cast<std::size_t>(level)];
         k < schedule.level_offsets[static_cast<std::size_t>(level) + 1]; ++k) {
      const std::int64_t s = schedule.order[static_cast<std::size_t>(k)];
      const std::int64_t ncols = f.super[s + 1] - f.super[s], nrows = f.pi[s + 1] - f.pi[s];
      if (detail::is_large_supernode(ncols, nrows)) {
        plan.large[static_cast<std::size_t>(level)].push_back(
            {f.super[s], ncols, nrows, f.pi[s], f.px[s]});
        plan.max_large_below = std::max(plan.max_large_below, nrows - ncols);
      } else {
        plan.small_list.push_back(s);
      }
    }
    std::stable_sort(plan.small_list.begin() + static_cast<std::ptrdiff_t>(first),
                     plan.small_list.end(),
                     [&](std::int64_t a, std::int64_t b) { return entries(a) > entries(b); });
    plan.small_offsets.push_back(static_cast<std::int64_t>(plan.small_list.size()));
  }
  const auto count = [](std::int64_t k) { return static_cast<std::size_t>(k); };
  plan.bytes =
      sizeof(double) * (count(plan.n_values) + count(f.n) * count(max_rhs) +
                        count(plan.max_large_below) * count(max_rhs)) +
      sizeof(std::int64_t) * (count(plan.n_rows) + (f.n > 0 ? 3 * count(f.n_supernodes + 1) : 0) +
                              count(f.n) + plan.small_list.size());
  return plan;
}

template <typename T>
T* upload(DeviceBuffer<T>& buffer, const T* host, std::size_t n, cudaStream_t stream) {
  T* device = buffer.reserve(n);
  if (n > 0) {
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  return device;
}

/// Blocks for a grid-stride loop over `total` elements with `threads` per block.
unsigned blocks_for(std::int64_t total, int threads) {
  constexpr std::int64_t max_blocks = 65535;  // plenty for a grid-stride loop
  return static_cast<unsigned>(
      std::clamp<std::int64_t>((total + threads - 1) / threads, 1, max_blocks));
}

constexpr int kElementThreads = 256;

}  // namespace

struct DeviceSupernodalFactor::Impl {
  std::shared_ptr<const CudaExecutor> exec;
  std::int64_t max_rhs = 0;
  Plan plan;
  DeviceBuffer<double> values;     // [n_values] L->x
  DeviceBuffer<double> workspace;  // [n, max_rhs] the permuted block, leading dimension n
  DeviceBuffer<double> below;      // [max_large_below, max_rhs] rows below a large supernode
  DeviceBuffer<std::int64_t> super, pi, px;  // [n_supernodes + 1]
  DeviceBuffer<std::int64_t> rows;           // [n_rows] L->s
  DeviceBuffer<std::int64_t> perm;           // [n]
  DeviceBuffer<std::int64_t> small_list;     // [small_list.size()]
  cublasHandle_t blas = nullptr;

  ~Impl() {
    // Queued solves may still read the buffers the members free after this.
    if (exec) cudaStreamSynchronize(static_cast<cudaStream_t>(exec->stream()));
    if (blas) cublasDestroy(blas);
  }

  cudaStream_t stream() const { return static_cast<cudaStream_t>(exec->stream()); }

  void forward_large(const LargeSupernode& s, double* x, std::int64_t nrhs) const {
    const double one = 1.0, zero = 0.0;
    const double* l = values.get() + s.value_offset;  // [nrows, ncols]
    double* x1 = x + s.first_column;                  // [ncols, nrhs], leading dimension n
    const int n = static_cast<int>(plan.n), m = static_cast<int>(nrhs);
    const int ncols = static_cast<int>(s.ncols), nrows = static_cast<int>(s.nrows);
    const int nbelow = nrows - ncols;
    VSENSE_CUBLAS_CHECK(cublasDtrsm(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                    CUBLAS_DIAG_NON_UNIT, ncols, m, &one, l, nrows, x1, n));
    if (nbelow == 0) return;
    double* t = below.get();  // [nbelow, nrhs] = L21 X1
    VSENSE_CUBLAS_CHECK(cublasDgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, nbelow, m, ncols, &one,
                                    l + ncols, nrows, x1, n, &zero, t, nbelow));
    const unsigned blocks = blocks_for(static_cast<std::int64_t>(nbelow) * nrhs, kElementThreads);
    detail::scatter_subtract_kernel<<<blocks, kElementThreads, 0, stream()>>>(
        rows.get() + s.row_offset + ncols, nbelow, nrhs, t, x, plan.n);
    VSENSE_CUDA_CHECK(cudaGetLastError());
  }

  void backward_large(const LargeSupernode& s, double* x, std::int64_t nrhs) const {
    const double one = 1.0, minus_one = -1.0;
    const double* l = values.get() + s.value_offset;
    double* x1 = x + s.first_column;
    const int n = static_cast<int>(plan.n), m = static_cast<int>(nrhs);
    const int ncols = static_cast<int>(s.ncols), nrows = static_cast<int>(s.nrows);
    const int nbelow = nrows - ncols;
    if (nbelow > 0) {
      double* t = below.get();  // [nbelow, nrhs] = X[rows below, :]
      const unsigned blocks = blocks_for(static_cast<std::int64_t>(nbelow) * nrhs, kElementThreads);
      detail::gather_rows_kernel<<<blocks, kElementThreads, 0, stream()>>>(
          rows.get() + s.row_offset + ncols, nbelow, nrhs, x, plan.n, t);
      VSENSE_CUDA_CHECK(cudaGetLastError());
      // X1 -= L21^T T
      VSENSE_CUBLAS_CHECK(cublasDgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, ncols, m, nbelow, &minus_one,
                                      l + ncols, nrows, t, nbelow, &one, x1, n));
    }
    VSENSE_CUBLAS_CHECK(cublasDtrsm(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                                    CUBLAS_DIAG_NON_UNIT, ncols, m, &one, l, nrows, x1, n));
  }

  /// The batched kernel over the small supernodes of one level (nothing when there are none).
  void small_level(bool forward, std::int64_t level, double* x, std::int64_t nrhs) const {
    const std::int64_t first = plan.small_offsets[static_cast<std::size_t>(level)];
    const std::int64_t count = plan.small_offsets[static_cast<std::size_t>(level) + 1] - first;
    if (count == 0) return;
    // One block per supernode; a grid-stride loop takes the rest beyond 65535.
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(count, 65535));
    if (forward) {
      detail::forward_small_kernel<<<blocks, detail::kThreads, 0, stream()>>>(
          small_list.get() + first, count, super.get(), pi.get(), px.get(), rows.get(),
          values.get(), x, plan.n, nrhs);
    } else {
      detail::backward_small_kernel<<<blocks, detail::kThreads, 0, stream()>>>(
          small_list.get() + first, count, super.get(), pi.get(), px.get(), rows.get(),
          values.get(), x, plan.n, nrhs);
    }
    VSENSE_CUDA_CHECK(cudaGetLastError());
  }
};

DeviceSupernodalFactor::DeviceSupernodalFactor(std::shared_ptr<const CudaExecutor> exec,
                                               const SupernodalFactorView& factor,
                                               std::int64_t max_rhs)
    : impl_(std::make_unique<Impl>()) {
  if (!exec) throw InputError("supernodal factor on the device: no executor");
  Impl& d = *impl_;
  d.plan = make_plan(factor, max_rhs);
  d.max_rhs = max_rhs;
  VSENSE_CUDA_CHECK(cudaSetDevice(exec->device_id()));
  std::size_t free_bytes = 0, total_bytes = 0;
  VSENSE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (d.plan.bytes > free_bytes) {
    throw DeviceResourceError(fmt::format(
        "supernodal factor: n = {}, {} supernodes, {} values and {} right-hand sides need {} "
        "bytes on cuda:{} but {} of {} are free",
        factor.n, factor.n_supernodes, d.plan.n_values, max_rhs, d.plan.bytes, exec->device_id(),
        free_bytes, total_bytes));
  }
  d.exec = std::move(exec);
  const cudaStream_t stream = d.stream();
  const auto n = static_cast<std::size_t>(factor.n);
  const auto ns1 = static_cast<std::size_t>(factor.n_supernodes + 1);
  if (factor.n > 0) {
    upload(d.values, factor.values, static_cast<std::size_t>(d.plan.n_values), stream);
    upload(d.rows, factor.rows, static_cast<std::size_t>(d.plan.n_rows), stream);
    upload(d.super, factor.super, ns1, stream);
    upload(d.pi, factor.pi, ns1, stream);
    upload(d.px, factor.px, ns1, stream);
  }
  std::vector<std::int64_t> identity;
  const std::int64_t* perm = factor.perm;
  if (perm == nullptr) {
    identity.resize(n);
    for (std::size_t i = 0; i < n; ++i) identity[i] = static_cast<std::int64_t>(i);
    perm = identity.data();
  }
  upload(d.perm, perm, n, stream);
  upload(d.small_list, d.plan.small_list.data(), d.plan.small_list.size(), stream);
  // Never read before written; zeroed so a bug shows as wrong numbers, not as garbage.
  const std::size_t workspace = n * static_cast<std::size_t>(max_rhs);
  const std::size_t below =
      static_cast<std::size_t>(d.plan.max_large_below) * static_cast<std::size_t>(max_rhs);
  double* workspace_device = d.workspace.reserve(workspace);
  double* below_device = d.below.reserve(below);
  if (workspace > 0) {
    VSENSE_CUDA_CHECK(cudaMemsetAsync(workspace_device, 0, workspace * sizeof(double), stream));
  }
  if (below > 0) {
    VSENSE_CUDA_CHECK(cudaMemsetAsync(below_device, 0, below * sizeof(double), stream));
  }
  VSENSE_CUBLAS_CHECK(cublasCreate(&d.blas));
  VSENSE_CUBLAS_CHECK(cublasSetStream(d.blas, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host arrays may go after this
}

DeviceSupernodalFactor::~DeviceSupernodalFactor() = default;

void DeviceSupernodalFactor::solve(double* x, std::int64_t ld, std::int64_t nrhs) const {
  const Impl& d = *impl_;
  const std::int64_t n = d.plan.n;
  if (ld < n || nrhs < 0 || nrhs > d.max_rhs) {
    throw InputError(
        fmt::format("supernodal solve on the device: leading dimension {} for n = "
                    "{}, {} right-hand sides of at most {}",
                    ld, n, nrhs, d.max_rhs));
  }
  if (n == 0 || nrhs == 0) return;
  if (x == nullptr) throw InputError("supernodal solve on the device: x is null");
  VSENSE_CUDA_CHECK(cudaSetDevice(d.exec->device_id()));
  const cudaStream_t stream = d.stream();
  double* w = d.workspace.get();  // [n, nrhs], leading dimension n
  const std::int64_t total = n * nrhs;
  // y = B(perm, :): the gather of the rows below a large supernode, with perm as the row list.
  detail::gather_rows_kernel<<<blocks_for(total, kElementThreads), kElementThreads, 0, stream>>>(
      d.perm.get(), n, nrhs, x, ld, w);
  VSENSE_CUDA_CHECK(cudaGetLastError());
  for (std::int64_t level = 0; level < d.plan.n_levels; ++level) {
    d.small_level(true, level, w, nrhs);
    for (const auto& s : d.plan.large[static_cast<std::size_t>(level)]) {
      d.forward_large(s, w, nrhs);
    }
  }
  for (std::int64_t level = d.plan.n_levels - 1; level >= 0; --level) {
    d.small_level(false, level, w, nrhs);
    for (const auto& s : d.plan.large[static_cast<std::size_t>(level)]) {
      d.backward_large(s, w, nrhs);
    }
  }
  detail::permute_out_kernel<<<blocks_for(total, kElementThreads), kElementThreads, 0, stream>>>(
      d.perm.get(), n, nrhs, w, x, ld);
  VSENSE_CUDA_CHECK(cudaGetLastError());
}

std::size_t DeviceSupernodalFactor::device_bytes() const noexcept { return impl_->plan.bytes; }

std::size_t DeviceSupernodalFactor::bytes_needed(const SupernodalFactorView& factor,
                                                 std::int64_t max_rhs) {
  return make_plan(factor, max_rhs).bytes;
}

}  // namespace vsense::kernels::cuda
