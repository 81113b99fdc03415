// CUDA placement scoring (kernels/include/vsense/kernels/placement.hpp): the candidate blocks
// live on the device; each pass is one cuBLAS dgemm per chunk, a warp per candidate for the
// 3 x 3 Grams and the score, and a two-stage argmax with the same tie rule as the CPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <math_constants.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/kernels/placement_scores.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;

/// Conditional error variance below which a node adds nothing (as on the CPU).
constexpr double min_conditional_variance = 1e-10;
constexpr int threads_per_block = 256;
constexpr int warps_per_block = threads_per_block / 32;

__device__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

/// One warp per candidate: the Grams of its three product rows and the score.
/// product: [count, 3, k] row-major; scale: [count] 1/s_j or null; scores: [count]
__global__ void grams_kernel(const double* __restrict__ product, std::size_t count, std::size_t k,
                             std::size_t k1, int kind, const double* __restrict__ scale,
                             const std::uint8_t* __restrict__ eligible, double* __restrict__ scores) {
  const std::size_t warp = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  const std::size_t n_warps = static_cast<std::size_t>(gridDim.x) * blockDim.x / 32;
  for (std::size_t j = warp; j < count; j += n_warps) {
    if (!eligible[j]) {
      if (lane == 0) scores[j] = -CUDART_INF;
      continue;
    }
    const double* p0 = product + 3 * k * j;
    const double* p1 = p0 + k;
    const double* p2 = p1 + k;
    double s[6] = {0, 0, 0, 0, 0, 0}, t[6] = {0, 0, 0, 0, 0, 0};
    for (std::size_t c = lane; c < k1; c += 32) {
      const double a = p0[c], b = p1[c], d = p2[c];
      s[0] += a * a;
      s[1] += b * b;
      s[2] += d * d;
      s[3] += a * b;
      s[4] += b * d;
      s[5] += a * d;
    }
    for (std::size_t c = k1 + lane; c < k; c += 32) {
      const double a = p0[c], b = p1[c], d = p2[c];
      t[0] += a * a;
      t[1] += b * b;
      t[2] += d * d;
      t[3] += a * b;
      t[4] += b * d;
      t[5] += a * d;
    }
    for (int e = 0; e < 6; ++e) {
      s[e] = warp_sum(s[e]);
      t[e] = warp_sum(t[e]);
    }
    if (lane == 0) {
      const double factor = scale ? scale[j] : 1.0;
      for (int e = 0; e < 6; ++e) {
        s[e] *= factor;
        t[e] *= factor;
      }
      const double value = common::block_score(kind, s, t);
      scores[j] = isnan(value) ? -CUDART_INF : value;
    }
  }
}

/// c[j, a] = exp(-|x_j - y_a| / lambda), row-major [count, n_sel].
__global__ void correlation_kernel(const double* __restrict__ x, std::size_t count,
                                   const double* __restrict__ y, std::size_t n_sel, double length,
                                   double* __restrict__ c) {
  const std::size_t total = count * n_sel;
  for (std::size_t e = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t j = e / n_sel, a = e % n_sel;
    const double dx = x[3 * j] - y[3 * a], dy = x[3 * j + 1] - y[3 * a + 1], dz = x[3 * j + 2] - y[3 * a + 2];
    c[e] = exp(-sqrt(dx * dx + dy * dy + dz * dz) / length);
  }
}

/// scale_j = 1 / (1 - c_j . beta_j) (0 when the node adds nothing); beta negated in place.
__global__ void conditional_kernel(const double* __restrict__ c, double* __restrict__ beta,
                                   std::size_t count, std::size_t n_sel, double* __restrict__ scale) {
  for (std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < count;
       j += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    double dot = 0.0;
    for (std::size_t a = 0; a < n_sel; ++a) {
      dot += c[j * n_sel + a] * beta[j * n_sel + a];
      beta[j * n_sel + a] = -beta[j * n_sel + a];
    }
    const double s = 1.0 - dot;
    scale[j] = s > min_conditional_variance ? 1.0 / s : 0.0;
  }
}

struct DeviceBest {
  double score;
  long long index;  // -1: none
};

__device__ DeviceBest better_of(DeviceBest a, DeviceBest b) {
  if (a.index < 0) return b;
  if (b.index < 0) return a;
  if (a.score > b.score) return a;
  if (b.score > a.score) return b;
  return a.index < b.index ? a : b;
}

/// Stage 1: one best per block over [0, n); stage 2 (one block) reduces the blocks' bests.
__global__ void argmax_kernel(const double* __restrict__ scores, const std::uint8_t* __restrict__ eligible,
                              std::size_t n, DeviceBest* __restrict__ out) {
  __shared__ DeviceBest shared[threads_per_block];
  DeviceBest best{0.0, -1};
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    if (eligible[i] && !isnan(scores[i])) best = better_of(best, DeviceBest{scores[i], static_cast<long long>(i)});
  }
  shared[threadIdx.x] = best;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride) {
      shared[threadIdx.x] = better_of(shared[threadIdx.x], shared[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = shared[0];
}

__global__ void reduce_best_kernel(const DeviceBest* __restrict__ partial, int count, DeviceBest* __restrict__ out) {
  __shared__ DeviceBest shared[threads_per_block];
  DeviceBest best{0.0, -1};
  for (int i = threadIdx.x; i < count; i += blockDim.x) best = better_of(best, partial[i]);
  shared[threadIdx.x] = best;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride) {
      shared[threadIdx.x] = better_of(shared[threadIdx.x], shared[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = shared[0];
}

/// Owns a cuBLAS handle.
class BlasHandle {
public:
  BlasHandle() { VSENSE_CUBLAS_CHECK(cublasCreate(&handle_)); }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  ~BlasHandle() { cublasDestroy(handle_); }
  cublasHandle_t get() const noexcept { return handle_; }

private:
  cublasHandle_t handle_ = nullptr;
};

int grid_for(std::size_t work, int per_block) {
  const std::size_t blocks = (work + per_block - 1) / per_block;
  return static_cast<int>(std::min<std::size_t>(std::max<std::size_t>(blocks, 1), 65535));
}

class CudaBlockScorer final : public BlockScorer {
public:
  CudaBlockScorer(const CudaExecutor& exec, std::size_t offset, std::size_t n, std::size_t m,
                  const double* blocks, const double* coordinates, std::size_t chunk)
      : BlockScorer(offset, n, m), exec_(exec), chunk_(std::max<std::size_t>(chunk, 1)),
        stream_(static_cast<cudaStream_t>(exec.stream())), handle_(make_handle(exec)) {
    VSENSE_CUBLAS_CHECK(cublasSetStream(handle_->get(), stream_));
    blocks_.reserve(3 * n * m);
    coordinates_.reserve(3 * n);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(blocks_.get(), blocks, 3 * n * m * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(coordinates_.get(), coordinates, 3 * n * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_));
    eligible_.reserve(n);
    scores_.reserve(n);
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  static std::unique_ptr<BlasHandle> make_handle(const CudaExecutor& exec) {
    VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
    return std::make_unique<BlasHandle>();
  }

  BestCandidate score(const ScoreRequest& request, const std::uint8_t* eligible,
                      double* scores) override {
    if (request.right == nullptr || request.k1 == 0) {
      throw Error("placement scoring: the right matrix R1 must have at least one column");
    }
    VSENSE_CUDA_CHECK(cudaSetDevice(exec_.device_id()));
    const std::size_t k = request.k1 + request.k2;
    const ErrorCorrelation* corr =
        request.correlation && request.correlation->n_selected > 0 ? request.correlation : nullptr;
    if (corr && !(corr->length > 0.0)) {
      throw Error(fmt::format("placement scoring: correlation length must be > 0, got {}", corr->length));
    }
    // Uploads: eligibility, R, and the selected nodes' data of the correlated model.
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(eligible_.get(), eligible, n_, cudaMemcpyHostToDevice, stream_));
    double* right = right_.reserve(m_ * k);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(right, request.right, m_ * k * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_));
    std::size_t n_sel = 0;
    if (corr) {
      n_sel = corr->n_selected;
      VSENSE_CUDA_CHECK(cudaMemcpyAsync(selected_coordinates_.reserve(3 * n_sel), corr->selected_coordinates,
                                        3 * n_sel * sizeof(double), cudaMemcpyHostToDevice, stream_));
      VSENSE_CUDA_CHECK(cudaMemcpyAsync(selected_inverse_.reserve(n_sel * n_sel), corr->selected_inverse,
                                        n_sel * n_sel * sizeof(double), cudaMemcpyHostToDevice, stream_));
      VSENSE_CUDA_CHECK(cudaMemcpyAsync(selected_products_.reserve(3 * n_sel * k), corr->selected_products,
                                        3 * n_sel * k * sizeof(double), cudaMemcpyHostToDevice, stream_));
    }
    const double one = 1.0, zero = 0.0;
    std::size_t global = offset_;
    const std::size_t global_end = offset_ + n_;
    while (global < global_end) {
      const std::size_t chunk_end = std::min(global_end, (global / chunk_ + 1) * chunk_);
      const std::size_t first = global - offset_;
      const std::size_t count = chunk_end - global;
      global = chunk_end;
      double* product = product_.reserve(3 * count * k);
      // P^T (k x 3c, col-major) = R^T (k x m) Phi^T (m x 3c): P row-major [3c, k].
      VSENSE_CUBLAS_CHECK(cublasDgemm(handle_->get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(k),
                                      static_cast<int>(3 * count), static_cast<int>(m_), &one, right,
                                      static_cast<int>(k), blocks_.get() + 3 * m_ * first,
                                      static_cast<int>(m_), &zero, product, static_cast<int>(k)));
      const double* scale = nullptr;
      if (corr) {
        double* c = correlation_.reserve(count * n_sel);
        double* beta = beta_.reserve(count * n_sel);
        double* s = scale_.reserve(count);
        correlation_kernel<<<grid_for(count * n_sel, threads_per_block), threads_per_block, 0, stream_>>>(
            coordinates_.get() + 3 * first, count, selected_coordinates_.get(), n_sel, corr->length, c);
        VSENSE_CUDA_CHECK(cudaGetLastError());
        // beta^T (n_sel x c) = C_S^-1 (n_sel x n_sel, symmetric) c^T (n_sel x c)
        VSENSE_CUBLAS_CHECK(cublasDgemm(handle_->get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n_sel),
                                        static_cast<int>(count), static_cast<int>(n_sel), &one,
                                        selected_inverse_.get(), static_cast<int>(n_sel), c,
                                        static_cast<int>(n_sel), &zero, beta, static_cast<int>(n_sel)));
        conditional_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, stream_>>>(
            c, beta, count, n_sel, s);
        VSENSE_CUDA_CHECK(cudaGetLastError());
        // P^T (3k x c) += P_S^T (3k x n_sel) (-beta)^T (n_sel x c)
        VSENSE_CUBLAS_CHECK(cublasDgemm(handle_->get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(3 * k),
                                        static_cast<int>(count), static_cast<int>(n_sel), &one,
                                        selected_products_.get(), static_cast<int>(3 * k), beta,
                                        static_cast<int>(n_sel), &one, product, static_cast<int>(3 * k)));
        scale = s;
      }
      grams_kernel<<<grid_for(count, warps_per_block), threads_per_block, 0, stream_>>>(
          product, count, k, request.k1, static_cast<int>(request.score), scale,
          eligible_.get() + first, scores_.get() + first);
      VSENSE_CUDA_CHECK(cudaGetLastError());
    }
    const int blocks = grid_for(n_, threads_per_block);
    DeviceBest* partial = partial_.reserve(static_cast<std::size_t>(blocks) + 1);
    argmax_kernel<<<blocks, threads_per_block, 0, stream_>>>(scores_.get(), eligible_.get(), n_, partial);
    VSENSE_CUDA_CHECK(cudaGetLastError());
    reduce_best_kernel<<<1, threads_per_block, 0, stream_>>>(partial, blocks, partial + blocks);
    VSENSE_CUDA_CHECK(cudaGetLastError());
    DeviceBest best{0.0, -1};
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(&best, partial + blocks, sizeof(DeviceBest), cudaMemcpyDeviceToHost, stream_));
    if (scores) {
      VSENSE_CUDA_CHECK(cudaMemcpyAsync(scores, scores_.get(), n_ * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    }
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    BestCandidate out;
    if (best.index >= 0) {
      out.score = best.score;
      out.index = static_cast<std::int64_t>(offset_) + best.index;
    }
    return out;
  }

private:
  const CudaExecutor& exec_;
  std::size_t chunk_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<BlasHandle> handle_;
  DeviceBuffer<double> blocks_, coordinates_, scores_, right_, product_;
  DeviceBuffer<std::uint8_t> eligible_;
  DeviceBuffer<double> selected_coordinates_, selected_inverse_, selected_products_, correlation_, beta_, scale_;
  DeviceBuffer<DeviceBest> partial_;
};

}  // namespace

std::unique_ptr<BlockScorer> make_block_scorer(const CudaExecutor& exec, std::size_t offset,
                                               std::size_t n, std::size_t m,
                                               const double* blocks, const double* coordinates,
                                               std::size_t chunk) {
  return std::make_unique<CudaBlockScorer>(exec, offset, n, m, blocks, coordinates, chunk);
}

}  // namespace vsense::kernels::cuda
