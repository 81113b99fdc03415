// Sparse times dense with cuSPARSE (kernels/include/vsense/kernels/sparse.hpp): one SpMM over
// all vectors, column-major blocks as on the host.
#include <cuda_runtime.h>
#include <cusparse.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;

void cusparse_check(cusparseStatus_t status, const char* call, const char* file, int line) {
  if (status == CUSPARSE_STATUS_SUCCESS) return;
  const std::string what = fmt::format("{} failed at {}:{}: cuSPARSE status {} ({})", call, file,
                                       line, static_cast<int>(status),
                                       cusparseGetErrorString(status));
  if (status == CUSPARSE_STATUS_ALLOC_FAILED || status == CUSPARSE_STATUS_INSUFFICIENT_RESOURCES) {
    throw DeviceResourceError(what);
  }
  if (status == CUSPARSE_STATUS_NOT_INITIALIZED) throw DeviceUnavailable(what);
  throw Error(what);
}
#define VSENSE_CUSPARSE_CHECK(call) cusparse_check((call), #call, __FILE__, __LINE__)

struct Handle {
  cusparseHandle_t handle = nullptr;
  cusparseConstSpMatDescr_t a = nullptr;
  cusparseConstDnMatDescr_t x = nullptr;
  cusparseDnMatDescr_t y = nullptr;
  ~Handle() {
    if (y) cusparseDestroyDnMat(y);
    if (x) cusparseDestroyDnMat(x);
    if (a) cusparseDestroySpMat(a);
    if (handle) cusparseDestroy(handle);
  }
};

template <typename T>
void upload(DeviceBuffer<T>& buffer, const T* host, std::size_t n, cudaStream_t stream) {
  T* device = buffer.reserve(n);
  if (n > 0) {
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
}

}  // namespace

void sparse_times_dense(const CudaExecutor& exec, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y) {
  if (a.rows < 0 || a.cols < 0 || (a.rows > 0 && a.row_offsets == nullptr)) {
    throw InputError(fmt::format("sparse_times_dense: malformed {}x{} matrix", a.rows, a.cols));
  }
  const auto rows = static_cast<std::size_t>(a.rows), cols = static_cast<std::size_t>(a.cols);
  const auto nnz = static_cast<std::size_t>(a.nnz());
  if (rows == 0 || n_vectors == 0) return;
  if (nnz == 0 || cols == 0) {
    std::fill(y, y + rows * n_vectors, 0.0);
    return;
  }
  VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
  auto stream = static_cast<cudaStream_t>(exec.stream());
  Handle h;
  VSENSE_CUSPARSE_CHECK(cusparseCreate(&h.handle));
  VSENSE_CUSPARSE_CHECK(cusparseSetStream(h.handle, stream));

  // 32-bit indices when they fit (half the index traffic), else 64-bit for both arrays.
  const bool narrow = nnz <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
  DeviceBuffer<std::int32_t> offsets32, columns32;
  DeviceBuffer<std::int64_t> offsets64, columns64;
  DeviceBuffer<double> values, x_device, y_device, work;
  const void* offsets_device = nullptr;
  const void* columns_device = nullptr;
  if (narrow) {
    std::vector<std::int32_t> offsets(a.row_offsets, a.row_offsets + rows + 1);
    upload(offsets32, offsets.data(), offsets.size(), stream);
    upload(columns32, a.columns, nnz, stream);
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));  // `offsets` leaves scope
    offsets_device = offsets32.get();
    columns_device = columns32.get();
  } else {
    std::vector<std::int64_t> columns(a.columns, a.columns + nnz);
    upload(offsets64, a.row_offsets, rows + 1, stream);
    upload(columns64, columns.data(), nnz, stream);
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
    offsets_device = offsets64.get();
    columns_device = columns64.get();
  }
  upload(values, a.values, nnz, stream);
  upload(x_device, x, cols * n_vectors, stream);
  double* y_ptr = y_device.reserve(rows * n_vectors);
  const auto index = narrow ? CUSPARSE_INDEX_32I : CUSPARSE_INDEX_64I;
  VSENSE_CUSPARSE_CHECK(cusparseCreateConstCsr(&h.a, a.rows, a.cols, static_cast<std::int64_t>(nnz),
                                               offsets_device, columns_device, values.get(),
                                               index, index, CUSPARSE_INDEX_BASE_ZERO,
                                               CUDA_R_64F));
  const auto n_vec = static_cast<std::int64_t>(n_vectors);
  VSENSE_CUSPARSE_CHECK(cusparseCreateConstDnMat(&h.x, a.cols, n_vec, a.cols, x_device.get(),
                                                 CUDA_R_64F, CUSPARSE_ORDER_COL));
  VSENSE_CUSPARSE_CHECK(
      cusparseCreateDnMat(&h.y, a.rows, n_vec, a.rows, y_ptr, CUDA_R_64F, CUSPARSE_ORDER_COL));
  const double one = 1.0, zero = 0.0;
  // The default algorithm takes column-major blocks; with A not transposed the result is the
  // same from run to run.
  std::size_t work_bytes = 0;
  VSENSE_CUSPARSE_CHECK(cusparseSpMM_bufferSize(
      h.handle, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one, h.a,
      h.x, &zero, h.y, CUDA_R_64F, CUSPARSE_SPMM_ALG_DEFAULT, &work_bytes));
  double* work_ptr = work.reserve((work_bytes + sizeof(double) - 1) / sizeof(double));
  VSENSE_CUSPARSE_CHECK(cusparseSpMM(h.handle, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                     CUSPARSE_OPERATION_NON_TRANSPOSE, &one, h.a, h.x, &zero, h.y,
                                     CUDA_R_64F, CUSPARSE_SPMM_ALG_DEFAULT, work_ptr));
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(y, y_ptr, rows * n_vectors * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace vsense::kernels::cuda
