#pragma once
/// @file supernodal_kernels.cuh
/// @brief The device kernels of the supernodal solve (supernodal_cuda.cu launches them). Index
/// arithmetic follows cpu/supernodal_cpu.cpp: supernode s has columns k1 = super[s] ..
/// super[s+1]-1 (ncols), rows rows[pi[s] ..] (nrows: its own ncols columns, then the rows below)
/// and values values[px[s] ..], column-major nrows x ncols. The solution block x is the permuted
/// workspace, [n, nrhs] column-major with leading dimension ldx.
#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
#error "the supernodal solve needs double atomicAdd (sm_60 or newer)"
#endif

namespace vsense::kernels::cuda::supernodal_detail {

/// Threads of one block of the batched kernels (a multiple of the warp size, >= kRhsChunk).
constexpr int kThreads = 128;
constexpr int kWarp = 32;
/// Right-hand sides one block keeps in shared memory at a time; more are done in chunks.
constexpr int kRhsChunk = 16;
/// Supernodes up to this many columns and this many entries of L go to the batched kernels
/// (one thread block each); larger ones, the few near the root that hold most of the flops,
/// to cuBLAS. The entry bound keeps int offsets within a block and one block's share of L at
/// 4 MiB; the column bound keeps the shared block [kSmallMaxColumns, kRhsChunk] at 16 KiB and
/// the sequential steps of the triangular solves at 2 syncs per column.
constexpr int kSmallMaxColumns = 128;
constexpr std::int64_t kSmallMaxEntries = std::int64_t{1} << 19;

static_assert(kThreads % kWarp == 0 && kThreads >= kRhsChunk, "block shape");
static_assert(kSmallMaxEntries < (std::int64_t{1} << 31), "int offsets in the batched kernels");

/// True when supernode s (ncols columns, nrows rows) is solved by cuBLAS, not the batched kernels.
inline bool is_large_supernode(std::int64_t ncols, std::int64_t nrows) {
  return ncols > kSmallMaxColumns || ncols * nrows > kSmallMaxEntries;
}

/// The sum of v over the 32 lanes of a warp, in lane 0 (all lanes must call it).
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

/// Forward step of a level's small supernodes, one block per supernode list[b], b < count:
/// X1 := L11^{-1} X1 in shared memory, X1 back to x, then x[rows below] -= L21 X1 with atomics
/// (supernodes of one level may update the same rows of a common ancestor).
__global__ void __launch_bounds__(kThreads)
    forward_small_kernel(const std::int64_t* __restrict__ list, std::int64_t count,
                         const std::int64_t* __restrict__ super,
                         const std::int64_t* __restrict__ pi, const std::int64_t* __restrict__ px,
                         const std::int64_t* __restrict__ rows, const double* __restrict__ values,
                         double* x, std::int64_t ldx, std::int64_t nrhs) {
  // x1: [ncols, cj] of the current chunk of right-hand sides, leading dimension kSmallMaxColumns.
  __shared__ double x1[kSmallMaxColumns * kRhsChunk];
  const int tid = static_cast<int>(threadIdx.x);
  const int n_threads = static_cast<int>(blockDim.x);
  for (std::int64_t b = blockIdx.x; b < count; b += gridDim.x) {
    const std::int64_t s = list[b];
    const std::int64_t k1 = super[s];
    const int ncols = static_cast<int>(super[s + 1] - k1);
    const std::int64_t p0 = pi[s];
    const int nrows = static_cast<int>(pi[s + 1] - p0);
    const int nbelow = nrows - ncols;
    const double* __restrict__ l = values + px[s];               // [nrows, ncols]
    const std::int64_t* __restrict__ below = rows + p0 + ncols;  // [nbelow]
    for (std::int64_t j0 = 0; j0 < nrhs; j0 += kRhsChunk) {
      const int cj = static_cast<int>(nrhs - j0 < kRhsChunk ? nrhs - j0 : kRhsChunk);
      double* xc = x + j0 * ldx;  // the chunk's first right-hand side
      __syncthreads();            // the previous chunk or supernode is done with x1
      for (int t = tid; t < ncols * cj; t += n_threads) {
        const int r = t % ncols, j = t / ncols;
        x1[r + j * kSmallMaxColumns] = xc[k1 + r + j * ldx];
      }
      __syncthreads();
      for (int c = 0; c < ncols; ++c) {
        if (tid < cj) x1[c + tid * kSmallMaxColumns] /= l[c + c * nrows];
        __syncthreads();
        const int m = ncols - 1 - c;  // rows of L11 below the diagonal in column c
        for (int t = tid; t < m * cj; t += n_threads) {
          const int r = c + 1 + t % m, j = t / m;
          x1[r + j * kSmallMaxColumns] -= l[r + c * nrows] * x1[c + j * kSmallMaxColumns];
        }
        __syncthreads();
      }
      for (int t = tid; t < ncols * cj; t += n_threads) {
        const int r = t % ncols, j = t / ncols;
        xc[k1 + r + j * ldx] = x1[r + j * kSmallMaxColumns];
      }
      // One thread per row below: its row of L21 times X1, consecutive threads read
      // consecutive entries of each column of L21.
      for (int r = tid; r < nbelow; r += n_threads) {
        double acc[kRhsChunk];
#pragma unroll
        for (int j = 0; j < kRhsChunk; ++j) acc[j] = 0.0;
        for (int c = 0; c < ncols; ++c) {
          const double v = l[ncols + r + c * nrows];
#pragma unroll
          for (int j = 0; j < kRhsChunk; ++j) {
            if (j < cj) acc[j] += v * x1[c + j * kSmallMaxColumns];
          }
        }
        const std::int64_t row = below[r];
#pragma unroll
        for (int j = 0; j < kRhsChunk; ++j) {
          if (j < cj) atomicAdd(xc + row + j * ldx, -acc[j]);
        }
      }
    }
  }
}

/// Backward step of a level's small supernodes, one block per supernode: X1 -= L21^T x[rows
/// below] (one warp per column of L21, lanes over its rows), then X1 := L11^{-T} X1 in shared
/// memory and back to x. Only the supernode's own rows are written: no atomics.
__global__ void __launch_bounds__(kThreads)
    backward_small_kernel(const std::int64_t* __restrict__ list, std::int64_t count,
                          const std::int64_t* __restrict__ super,
                          const std::int64_t* __restrict__ pi, const std::int64_t* __restrict__ px,
                          const std::int64_t* __restrict__ rows, const double* __restrict__ values,
                          double* x, std::int64_t ldx, std::int64_t nrhs) {
  __shared__ double x1[kSmallMaxColumns * kRhsChunk];
  const int tid = static_cast<int>(threadIdx.x);
  const int n_threads = static_cast<int>(blockDim.x);
  const int lane = tid % kWarp, warp = tid / kWarp, n_warps = n_threads / kWarp;
  for (std::int64_t b = blockIdx.x; b < count; b += gridDim.x) {
    const std::int64_t s = list[b];
    const std::int64_t k1 = super[s];
    const int ncols = static_cast<int>(super[s + 1] - k1);
    const std::int64_t p0 = pi[s];
    const int nrows = static_cast<int>(pi[s + 1] - p0);
    const int nbelow = nrows - ncols;
    const double* __restrict__ l = values + px[s];
    const std::int64_t* __restrict__ below = rows + p0 + ncols;
    for (std::int64_t j0 = 0; j0 < nrhs; j0 += kRhsChunk) {
      const int cj = static_cast<int>(nrhs - j0 < kRhsChunk ? nrhs - j0 : kRhsChunk);
      double* xc = x + j0 * ldx;
      __syncthreads();
      for (int t = tid; t < ncols * cj; t += n_threads) {
        const int r = t % ncols, j = t / ncols;
        x1[r + j * kSmallMaxColumns] = xc[k1 + r + j * ldx];
      }
      __syncthreads();
      for (int c = warp; nbelow > 0 && c < ncols; c += n_warps) {  // uniform within a warp
        double acc[kRhsChunk];
#pragma unroll
        for (int j = 0; j < kRhsChunk; ++j) acc[j] = 0.0;
        const double* lc = l + ncols + c * nrows;  // column c of L21, [nbelow]
        for (int r = lane; r < nbelow; r += kWarp) {
          const double v = lc[r];
          const double* xr = xc + below[r];
#pragma unroll
          for (int j = 0; j < kRhsChunk; ++j) {
            if (j < cj) acc[j] += v * xr[j * ldx];
          }
        }
#pragma unroll
        for (int j = 0; j < kRhsChunk; ++j) {
          if (j < cj) {  // cj is uniform: every lane takes part in the shuffles
            const double sum = warp_sum(acc[j]);
            if (lane == 0) x1[c + j * kSmallMaxColumns] -= sum;
          }
        }
      }
      __syncthreads();
      for (int c = ncols - 1; c >= 0; --c) {
        if (tid < cj) x1[c + tid * kSmallMaxColumns] /= l[c + c * nrows];
        __syncthreads();
        // x1[r] -= L11(c, r) x1[c] for r < c: row c of L11 is the transposed column.
        for (int t = tid; t < c * cj; t += n_threads) {
          const int r = t % c, j = t / c;
          x1[r + j * kSmallMaxColumns] -= l[c + r * nrows] * x1[c + j * kSmallMaxColumns];
        }
        __syncthreads();
      }
      for (int t = tid; t < ncols * cj; t += n_threads) {
        const int r = t % ncols, j = t / ncols;
        xc[k1 + r + j * ldx] = x1[r + j * kSmallMaxColumns];
      }
    }
  }
}

/// t[r + j nbelow] = x[below[r] + j ldx] for r < nbelow, j < nrhs (rows below a large supernode
/// gathered for cuBLAS; with below = perm, the permutation of B into the workspace).
__global__ void gather_rows_kernel(const std::int64_t* __restrict__ below, std::int64_t nbelow,
                                   std::int64_t nrhs, const double* __restrict__ x,
                                   std::int64_t ldx, double* __restrict__ t) {
  const std::int64_t total = nbelow * nrhs;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i % nbelow, j = i / nbelow;
    t[i] = x[below[r] + j * ldx];
  }
}

/// x[below[r] + j ldx] -= t[r + j nbelow]: the cuBLAS product L21 X1 of a large supernode
/// scattered. Plain stores: the launches of a level are ordered on one stream and the rows
/// below one supernode are distinct.
__global__ void scatter_subtract_kernel(const std::int64_t* __restrict__ below, std::int64_t nbelow,
                                        std::int64_t nrhs, const double* __restrict__ t, double* x,
                                        std::int64_t ldx) {
  const std::int64_t total = nbelow * nrhs;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i % nbelow, j = i / nbelow;
    x[below[r] + j * ldx] -= t[i];
  }
}

/// b[perm[i] + j ldb] = y[i + j n]: the solution back in the caller's order and layout.
__global__ void permute_out_kernel(const std::int64_t* __restrict__ perm, std::int64_t n,
                                   std::int64_t nrhs, const double* __restrict__ y,
                                   double* __restrict__ b, std::int64_t ldb) {
  const std::int64_t total = n * nrhs;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i % n, j = i / n;
    b[perm[r] + j * ldb] = y[i];
  }
}

}  // namespace vsense::kernels::cuda::supernodal_detail
