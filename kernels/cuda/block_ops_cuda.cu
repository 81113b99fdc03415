// The block products on a CUDA device
// (kernels/include/vsense/kernels/block_ops.hpp): cuBLAS for the tall products,
// cudaMemcpy2D for block copies, cuSPARSE SpMM for the symmetric matrix.
// Everything is queued on the executor's stream; the products whose result
// lands on the host (gemm_tn, download) wait for it.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"
#include "vsense/kernels/block_ops.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;

void cusparse_status(cusparseStatus_t status, const char* call, const char* file, int line) {
  if (status == CUSPARSE_STATUS_SUCCESS) return;
  const std::string what =
      fmt::format("{} failed at {}:{}: {}", call, file, line, cusparseGetErrorString(status));
  if (status == CUSPARSE_STATUS_ALLOC_FAILED) throw DeviceResourceError(what);
  if (status == CUSPARSE_STATUS_NOT_INITIALIZED) throw DeviceUnavailable(what);
  throw Error(what);
}
#define VSENSE_CUSPARSE_STATUS(call) cusparse_status((call), #call, __FILE__, __LINE__)

/// x[i + j ld] /= divisors[j] for i < rows, j < cols; a grid-stride loop over
/// all entries.
__global__ void divide_columns_kernel(double* x, std::int64_t rows, std::int64_t cols,
                                      std::int64_t ld, const double* __restrict__ divisors) {
  const std::int64_t count = rows * cols;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t j = e / rows, i = e - j * rows;
    x[i + j * ld] /= divisors[j];
  }
}

/// buffer.reserve(n) for a buffer that queued work may still read: growing it
/// frees the old allocation, so the stream is drained first.
double* reserve_after(DeviceBuffer<double>& buffer, std::size_t n, cudaStream_t stream) {
  if (n > buffer.capacity()) VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
  return buffer.reserve(n);
}

unsigned grid_for(std::int64_t count, unsigned threads) {
  const std::int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(std::min<std::int64_t>(std::max<std::int64_t>(blocks, 1), 65535));
}

class DeviceBlockOps final : public BlockOps {
public:
  explicit DeviceBlockOps(std::shared_ptr<const CudaExecutor> exec)
      : exec_(std::move(exec)), stream_(static_cast<cudaStream_t>(exec_->stream())) {
    VSENSE_CUDA_CHECK(cudaSetDevice(exec_->device_id()));
    VSENSE_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
      VSENSE_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
      VSENSE_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
    } catch (...) {
      cublasDestroy(handle_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
  ~DeviceBlockOps() override {
    if (handle_) cublasDestroy(handle_);
  }
  DeviceBlockOps(const DeviceBlockOps&) = delete;
  DeviceBlockOps& operator=(const DeviceBlockOps&) = delete;

  std::shared_ptr<const Executor> executor() const noexcept override { return exec_; }
  bool host_memory() const noexcept override { return false; }

  void gemm_tn(double alpha, BlockView a, BlockView b, double beta, double* c,
               std::int64_t ldc) override {
    const std::int64_t k = a.cols, m = b.cols;
    if (k == 0 || m == 0) return;
    double* small = reserve_after(result_, static_cast<std::size_t>(k * m), stream_);
    if (beta != 0.0) upload_small(c, ldc, k, m, small);
    VSENSE_CUBLAS_CHECK(cublasDgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(k),
                                    static_cast<int>(m), static_cast<int>(a.rows), &alpha, a.data,
                                    static_cast<int>(a.ld), b.data, static_cast<int>(b.ld), &beta,
                                    small, static_cast<int>(k)));
    VSENSE_CUDA_CHECK(cudaMemcpy2DAsync(
        c, static_cast<std::size_t>(ldc) * sizeof(double), small,
        static_cast<std::size_t>(k) * sizeof(double), static_cast<std::size_t>(k) * sizeof(double),
        static_cast<std::size_t>(m), cudaMemcpyDeviceToHost, stream_));
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void gemm_nn(double alpha, BlockView a, const double* b, std::int64_t ldb, double beta,
               BlockView c) override {
    const std::int64_t k = a.cols, m = c.cols;
    if (c.rows == 0 || m == 0) return;
    if (k == 0) {
      // c = beta c: cuBLAS dgeam with a zero second operand.
      if (beta == 1.0) return;
      const double zero = 0.0;
      VSENSE_CUBLAS_CHECK(cublasDgeam(handle_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(c.rows),
                                      static_cast<int>(m), &beta, c.data, static_cast<int>(c.ld),
                                      &zero, c.data, static_cast<int>(c.ld), c.data,
                                      static_cast<int>(c.ld)));
      return;
    }
    // The host coefficients may be reused by the caller once this returns: the
    // copy from pageable memory is staged before cudaMemcpy2DAsync returns.
    double* small = reserve_after(coefficients_, static_cast<std::size_t>(k * m), stream_);
    upload_small(b, ldb, k, m, small);
    VSENSE_CUBLAS_CHECK(cublasDgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(c.rows),
                                    static_cast<int>(m), static_cast<int>(k), &alpha, a.data,
                                    static_cast<int>(a.ld), small, static_cast<int>(k), &beta,
                                    c.data, static_cast<int>(c.ld)));
  }

  void divide_columns(BlockView x, const double* divisors) override {
    if (x.rows == 0 || x.cols == 0) return;
    double* d = reserve_after(divisors_, static_cast<std::size_t>(x.cols), stream_);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(d, divisors,
                                      static_cast<std::size_t>(x.cols) * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_));
    constexpr unsigned threads = 256;
    divide_columns_kernel<<<grid_for(x.rows * x.cols, threads), threads, 0, stream_>>>(
        x.data, x.rows, x.cols, x.ld, d);
    VSENSE_CUDA_CHECK(cudaGetLastError());
  }

  void copy(BlockView from, BlockView to) override {
    if (from.rows == 0 || from.cols == 0) return;
    VSENSE_CUDA_CHECK(
        cudaMemcpy2DAsync(to.data, static_cast<std::size_t>(to.ld) * sizeof(double), from.data,
                          static_cast<std::size_t>(from.ld) * sizeof(double),
                          static_cast<std::size_t>(from.rows) * sizeof(double),
                          static_cast<std::size_t>(from.cols), cudaMemcpyDeviceToDevice, stream_));
  }

  void upload(const double* host, std::int64_t ld, BlockView to) override {
    if (to.rows == 0 || to.cols == 0) return;
    VSENSE_CUDA_CHECK(cudaMemcpy2DAsync(to.data, static_cast<std::size_t>(to.ld) * sizeof(double),
                                        host, static_cast<std::size_t>(ld) * sizeof(double),
                                        static_cast<std::size_t>(to.rows) * sizeof(double),
                                        static_cast<std::size_t>(to.cols), cudaMemcpyHostToDevice,
                                        stream_));
    // Large blocks from pageable memory: wait, so that the caller may free the
    // host block.
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void download(BlockView from, double* host, std::int64_t ld) override {
    if (from.rows == 0 || from.cols == 0) return;
    VSENSE_CUDA_CHECK(
        cudaMemcpy2DAsync(host, static_cast<std::size_t>(ld) * sizeof(double), from.data,
                          static_cast<std::size_t>(from.ld) * sizeof(double),
                          static_cast<std::size_t>(from.rows) * sizeof(double),
                          static_cast<std::size_t>(from.cols), cudaMemcpyDeviceToHost, stream_));
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void synchronize() override { VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

private:
  void upload_small(const double* host, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                    double* device) {
    VSENSE_CUDA_CHECK(cudaMemcpy2DAsync(device, static_cast<std::size_t>(rows) * sizeof(double),
                                        host, static_cast<std::size_t>(ld) * sizeof(double),
                                        static_cast<std::size_t>(rows) * sizeof(double),
                                        static_cast<std::size_t>(cols), cudaMemcpyHostToDevice,
                                        stream_));
  }

  std::shared_ptr<const CudaExecutor> exec_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  // Device copies of the host operands and results ([k, m] coefficients, [k, m]
  // results of gemm_tn, [cols] divisors), grown as needed.
  DeviceBuffer<double> coefficients_, result_, divisors_;
};

}  // namespace

std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const CudaExecutor> exec) {
  return std::make_unique<DeviceBlockOps>(std::move(exec));
}

// ---------------------------------------------------------------------------------------------

struct DeviceSymmetricMatrix::State {
  std::shared_ptr<const CudaExecutor> exec;
  std::int64_t n = 0, nnz = 0;
  bool narrow = true;  // 32-bit indices (half the index traffic) when the entries allow
  DeviceBuffer<std::int32_t> offsets32, columns32;
  DeviceBuffer<std::int64_t> offsets64, columns64;
  DeviceBuffer<double> values;
  mutable DeviceBuffer<double> work;
  cusparseHandle_t handle = nullptr;
  cusparseConstSpMatDescr_t matrix = nullptr;
  ~State() {
    if (matrix) cusparseDestroySpMat(matrix);
    if (handle) cusparseDestroy(handle);
  }
};

DeviceSymmetricMatrix::DeviceSymmetricMatrix(std::shared_ptr<const CudaExecutor> exec,
                                             const LowerCscView& lower)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.exec = std::move(exec);
  s.n = lower.n;
  const auto n = static_cast<std::size_t>(lower.n);
  // Both triangles in compressed rows, columns ascending within a row (the
  // lower triangle's columns are visited in order: row r receives its columns
  // below r first, from earlier columns, then its diagonal and the upper part
  // from column r, rows ascending).
  std::vector<std::int64_t> offsets(n + 1, 0);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::int64_t e = lower.col_offsets[j]; e < lower.col_offsets[j + 1]; ++e) {
      const auto i = static_cast<std::size_t>(lower.rows[e]);
      if (i < j) continue;  // entries above the diagonal are ignored (LowerCscView)
      ++offsets[i + 1];
      if (i != j) ++offsets[j + 1];
    }
  }
  for (std::size_t r = 0; r < n; ++r) offsets[r + 1] += offsets[r];
  s.nnz = offsets[n];
  std::vector<std::int64_t> next(offsets.begin(), offsets.end() - 1);
  std::vector<std::int64_t> columns(static_cast<std::size_t>(s.nnz));
  std::vector<double> values(static_cast<std::size_t>(s.nnz));
  for (std::size_t j = 0; j < n; ++j) {
    for (std::int64_t e = lower.col_offsets[j]; e < lower.col_offsets[j + 1]; ++e) {
      const auto i = static_cast<std::size_t>(lower.rows[e]);
      if (i < j) continue;
      const auto put = [&](std::size_t row, std::size_t column) {
        const auto at = static_cast<std::size_t>(next[row]++);
        columns[at] = static_cast<std::int64_t>(column);
        values[at] = lower.values[e];
      };
      put(i, j);
      if (i != j) put(j, i);
    }
  }
  VSENSE_CUDA_CHECK(cudaSetDevice(s.exec->device_id()));
  auto stream = static_cast<cudaStream_t>(s.exec->stream());
  const auto count = static_cast<std::size_t>(s.nnz);
  s.narrow = s.nnz <= std::numeric_limits<std::int32_t>::max();
  const void* offsets_device = nullptr;
  const void* columns_device = nullptr;
  if (s.narrow) {
    const std::vector<std::int32_t> offsets32(offsets.begin(), offsets.end());
    const std::vector<std::int32_t> columns32(columns.begin(), columns.end());
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(s.offsets32.reserve(n + 1), offsets32.data(),
                                      (n + 1) * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                      stream));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(s.columns32.reserve(count), columns32.data(),
                                      count * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                      stream));
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
    offsets_device = s.offsets32.get();
    columns_device = s.columns32.get();
  } else {
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(s.offsets64.reserve(n + 1), offsets.data(),
                                      (n + 1) * sizeof(std::int64_t), cudaMemcpyHostToDevice,
                                      stream));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(s.columns64.reserve(count), columns.data(),
                                      count * sizeof(std::int64_t), cudaMemcpyHostToDevice,
                                      stream));
    offsets_device = s.offsets64.get();
    columns_device = s.columns64.get();
  }
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(s.values.reserve(count), values.data(), count * sizeof(double),
                                    cudaMemcpyHostToDevice, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host arrays leave scope
  VSENSE_CUSPARSE_STATUS(cusparseCreate(&s.handle));
  VSENSE_CUSPARSE_STATUS(cusparseSetStream(s.handle, stream));
  const auto index = s.narrow ? CUSPARSE_INDEX_32I : CUSPARSE_INDEX_64I;
  VSENSE_CUSPARSE_STATUS(cusparseCreateConstCsr(&s.matrix, s.n, s.n, s.nnz, offsets_device,
                                                columns_device, s.values.get(), index, index,
                                                CUSPARSE_INDEX_BASE_ZERO, CUDA_R_64F));
}

DeviceSymmetricMatrix::~DeviceSymmetricMatrix() = default;

std::int64_t DeviceSymmetricMatrix::rows() const noexcept { return state_->n; }

std::size_t DeviceSymmetricMatrix::device_bytes() const noexcept {
  const State& s = *state_;
  const std::size_t index = s.narrow ? sizeof(std::int32_t) : sizeof(std::int64_t);
  return static_cast<std::size_t>(s.n + 1) * index +
         static_cast<std::size_t>(s.nnz) * (index + sizeof(double));
}

void DeviceSymmetricMatrix::apply(const double* x, double* y, std::int64_t ncols) const {
  const State& s = *state_;
  if (s.n == 0 || ncols == 0) return;
  cusparseConstDnMatDescr_t x_descr = nullptr;
  cusparseDnMatDescr_t y_descr = nullptr;
  struct Descriptors {
    cusparseConstDnMatDescr_t& x;
    cusparseDnMatDescr_t& y;
    ~Descriptors() {
      if (y) cusparseDestroyDnMat(y);
      if (x) cusparseDestroyDnMat(x);
    }
  } guard{x_descr, y_descr};
  VSENSE_CUSPARSE_STATUS(
      cusparseCreateConstDnMat(&x_descr, s.n, ncols, s.n, x, CUDA_R_64F, CUSPARSE_ORDER_COL));
  VSENSE_CUSPARSE_STATUS(
      cusparseCreateDnMat(&y_descr, s.n, ncols, s.n, y, CUDA_R_64F, CUSPARSE_ORDER_COL));
  const double one = 1.0, zero = 0.0;
  std::size_t work_bytes = 0;
  VSENSE_CUSPARSE_STATUS(cusparseSpMM_bufferSize(
      s.handle, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one, s.matrix,
      x_descr, &zero, y_descr, CUDA_R_64F, CUSPARSE_SPMM_ALG_DEFAULT, &work_bytes));
  double* work = reserve_after(s.work, (work_bytes + sizeof(double) - 1) / sizeof(double),
                               static_cast<cudaStream_t>(s.exec->stream()));
  VSENSE_CUSPARSE_STATUS(cusparseSpMM(s.handle, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                      CUSPARSE_OPERATION_NON_TRANSPOSE, &one, s.matrix, x_descr,
                                      &zero, y_descr, CUDA_R_64F, CUSPARSE_SPMM_ALG_DEFAULT, work));
}

}  // namespace vsense::kernels::cuda
