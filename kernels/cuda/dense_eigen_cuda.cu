// Dense lowest modes with cuSOLVER (kernels/include/vsense/kernels/dense_eigen.hpp): B = K -
// sigma M and A = M on the device, cusolverDnDsygvdx for the `count` largest mu only.
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "check.cuh"
#include "device_buffer.cuh"
#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;

void cusolver_check(cusolverStatus_t status, const char* call, const char* file, int line) {
  if (status == CUSOLVER_STATUS_SUCCESS) return;
  const std::string what = fmt::format("{} failed at {}:{}: cuSOLVER status {}", call, file,
                                       line, static_cast<int>(status));
  if (status == CUSOLVER_STATUS_ALLOC_FAILED) throw DeviceResourceError(what);
  if (status == CUSOLVER_STATUS_NOT_INITIALIZED) throw DeviceUnavailable(what);
  throw Error(what);
}
#define VSENSE_CUSOLVER_CHECK(call) cusolver_check((call), #call, __FILE__, __LINE__)

/// b = k - shift m, element-wise on n^2 values.
__global__ void shifted_kernel(const double* k, const double* __restrict__ m,
                               double shift, std::size_t count, double* b) {  // b may be k
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    b[i] = k[i] - shift * m[i];
  }
}

struct Handle {
  cusolverDnHandle_t handle = nullptr;
  ~Handle() {
    if (handle) cusolverDnDestroy(handle);
  }
};

/// dense[i + j n] = a(i, j) for the lower triangle (i >= j) of a CSC matrix; one thread per
/// column. `dense` is zero beforehand; its upper triangle stays zero (cuSOLVER reads the lower).
__global__ void scatter_lower_kernel(std::int64_t n, const std::int64_t* __restrict__ offsets,
                                     const std::int64_t* __restrict__ rows,
                                     const double* __restrict__ values, double* dense) {
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    for (std::int64_t k = offsets[j]; k < offsets[j + 1]; ++k) {
      const std::int64_t i = rows[k];
      if (i >= j) dense[i + j * n] = values[k];
    }
  }
}

/// A sparse lower triangle on the device.
struct DeviceCsc {
  DeviceBuffer<std::int64_t> offsets, rows;
  DeviceBuffer<double> values;
  void upload(const LowerCscView& a, cudaStream_t stream) {
    const auto n = static_cast<std::size_t>(a.n), nnz = static_cast<std::size_t>(a.nnz());
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(offsets.reserve(n + 1), a.col_offsets,
                                      (n + 1) * sizeof(std::int64_t), cudaMemcpyHostToDevice,
                                      stream));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(rows.reserve(nnz), a.rows, nnz * sizeof(std::int64_t),
                                      cudaMemcpyHostToDevice, stream));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(values.reserve(nnz), a.values, nnz * sizeof(double),
                                      cudaMemcpyHostToDevice, stream));
  }
};

/// The solve once A = M and B = K (lower triangles at least) are on the device: B = K - sigma M,
/// cusolverDnDsygvdx for the `count` largest mu, results to the host.
void solve_on_device(cusolverDnHandle_t solver, cudaStream_t stream, double* a_device,
                     double* b_device, std::size_t n, double shift, std::size_t count,
                     double* eigenvalues, double* vectors) {
  const std::size_t nn = n * n;
  shifted_kernel<<<1024, 256, 0, stream>>>(b_device, a_device, shift, nn, b_device);
  VSENSE_CUDA_CHECK(cudaGetLastError());
  DeviceBuffer<double> w, work;
  DeviceBuffer<int> info;
  const int ni = static_cast<int>(n);
  const int il = static_cast<int>(n - count + 1), iu = ni;
  int found = 0, lwork = 0;
  double* w_device = w.reserve(n);
  VSENSE_CUSOLVER_CHECK(cusolverDnDsygvdx_bufferSize(
      solver, CUSOLVER_EIG_TYPE_1, CUSOLVER_EIG_MODE_VECTOR, CUSOLVER_EIG_RANGE_I,
      CUBLAS_FILL_MODE_LOWER, ni, a_device, ni, b_device, ni, 0.0, 0.0, il, iu, &found, w_device,
      &lwork));
  double* work_device = work.reserve(static_cast<std::size_t>(lwork));
  int* info_device = info.reserve(1);
  VSENSE_CUSOLVER_CHECK(cusolverDnDsygvdx(solver, CUSOLVER_EIG_TYPE_1, CUSOLVER_EIG_MODE_VECTOR,
                                          CUSOLVER_EIG_RANGE_I, CUBLAS_FILL_MODE_LOWER, ni,
                                          a_device, ni, b_device, ni, 0.0, 0.0, il, iu, &found,
                                          w_device, work_device, lwork, info_device));
  int info_host = 0;
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(&info_host, info_device, sizeof(int), cudaMemcpyDeviceToHost, stream));
  std::vector<double> mu(n);
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(mu.data(), w_device, count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  std::vector<double> x(n * count);
  // The eigenvectors of the range are the first `count` columns of A, ascending in mu.
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(x.data(), a_device, n * count * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (info_host > ni) {
    throw NumericalError("dense modes: K - sigma M is not positive definite (sigma not below "
                         "the lowest eigenvalue?)");
  }
  if (info_host != 0 || found != static_cast<int>(count)) {
    throw NumericalError(fmt::format("dense modes: cusolverDnDsygvdx returned info {} with {} of "
                                     "{} eigenpairs",
                                     info_host, found, count));
  }
  for (std::size_t j = 0; j < count; ++j) {
    const std::size_t column = count - 1 - j;  // largest mu first = lowest lambda first
    const double m_j = mu[column];
    if (!(m_j > 0.0)) throw NumericalError("dense modes: fewer modes with mass than requested");
    eigenvalues[j] = shift + 1.0 / m_j;
    const double scale = 1.0 / std::sqrt(m_j);
    for (std::size_t i = 0; i < n; ++i) vectors[j * n + i] = scale * x[column * n + i];
  }
}

void check_count(std::size_t n, std::size_t count) {
  if (count == 0 || count > n) {
    throw InputError(fmt::format("dense modes: {} modes of {} equations", count, n));
  }
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max() / 2)) {
    throw InputError(fmt::format("dense modes: {} equations exceed cuSOLVER's 32-bit sizes", n));
  }
}

/// What both entry points set up: the executor's device and stream, a cuSOLVER handle on it,
/// and the two n x n device matrices (a: M, then the eigenvectors; b: K, then K - sigma M).
struct DenseProblem {
  DenseProblem(const CudaExecutor& exec, std::size_t n) {
    VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
    stream = static_cast<cudaStream_t>(exec.stream());
    VSENSE_CUSOLVER_CHECK(cusolverDnCreate(&solver.handle));
    VSENSE_CUSOLVER_CHECK(cusolverDnSetStream(solver.handle, stream));
    a_device = a.reserve(n * n);
    b_device = b.reserve(n * n);
  }
  cudaStream_t stream = nullptr;
  Handle solver;
  DeviceBuffer<double> a, b;
  double* a_device = nullptr;
  double* b_device = nullptr;
};

}  // namespace

void dense_lowest_modes(const CudaExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors) {
  check_count(n, count);
  DenseProblem problem(exec, n);
  const auto stream = problem.stream;
  const std::size_t nn = n * n;
  double* a_device = problem.a_device;
  double* b_device = problem.b_device;
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(a_device, mass, nn * sizeof(double), cudaMemcpyHostToDevice, stream));
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(b_device, stiffness, nn * sizeof(double), cudaMemcpyHostToDevice, stream));
  solve_on_device(problem.solver.handle, stream, a_device, b_device, n, shift, count,
                  eigenvalues, vectors);
}

void dense_lowest_modes(const CudaExecutor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors) {
  if (stiffness.n != mass.n || stiffness.n < 0) {
    throw InputError(fmt::format("dense modes: K is {0}x{0} but M is {1}x{1}", stiffness.n,
                                 mass.n));
  }
  const auto n = static_cast<std::size_t>(stiffness.n);
  check_count(n, count);
  DenseProblem problem(exec, n);
  const auto stream = problem.stream;
  const std::size_t nn = n * n;
  double* a_device = problem.a_device;
  double* b_device = problem.b_device;
  VSENSE_CUDA_CHECK(cudaMemsetAsync(a_device, 0, nn * sizeof(double), stream));
  VSENSE_CUDA_CHECK(cudaMemsetAsync(b_device, 0, nn * sizeof(double), stream));
  DeviceCsc k_device, m_device;
  k_device.upload(stiffness, stream);
  m_device.upload(mass, stream);
  const int blocks = static_cast<int>(std::min<std::size_t>((n + 255) / 256, 4096));
  scatter_lower_kernel<<<std::max(blocks, 1), 256, 0, stream>>>(
      stiffness.n, k_device.offsets.get(), k_device.rows.get(), k_device.values.get(), b_device);
  VSENSE_CUDA_CHECK(cudaGetLastError());
  scatter_lower_kernel<<<std::max(blocks, 1), 256, 0, stream>>>(
      mass.n, m_device.offsets.get(), m_device.rows.get(), m_device.values.get(), a_device);
  VSENSE_CUDA_CHECK(cudaGetLastError());
  solve_on_device(problem.solver.handle, stream, a_device, b_device, n, shift, count,
                  eigenvalues, vectors);
}

std::int64_t dense_modes_max_equations(const CudaExecutor& exec) {
  VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
  std::size_t free_bytes = 0, total_bytes = 0;
  VSENSE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double usable = 0.8 * static_cast<double>(free_bytes);
  const auto by_memory = static_cast<std::int64_t>(
      std::floor(std::sqrt(usable / static_cast<double>(dense_modes_bytes_per_entry))));
  return std::min(dense_modes_equation_cap, by_memory);
}

}  // namespace vsense::kernels::cuda
