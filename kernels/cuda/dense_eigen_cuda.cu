// Dense lowest modes with cuSOLVER (kernels/include/vsense/kernels/dense_eigen.hpp): B = K -
// sigma M and A = M on the device, cusolverDnDsygvdx for the `count` largest mu only.
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <fmt/format.h>

#include <cmath>
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

}  // namespace

void dense_lowest_modes(const CudaExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors) {
  if (count == 0 || count > n) {
    throw InputError(fmt::format("dense modes: {} modes of {} equations", count, n));
  }
  VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
  auto stream = static_cast<cudaStream_t>(exec.stream());
  Handle solver;
  VSENSE_CUSOLVER_CHECK(cusolverDnCreate(&solver.handle));
  VSENSE_CUSOLVER_CHECK(cusolverDnSetStream(solver.handle, stream));
  const std::size_t nn = n * n;
  DeviceBuffer<double> a, b, w, work;
  DeviceBuffer<int> info;
  double* a_device = a.reserve(nn);  // M, then the eigenvectors
  double* b_device = b.reserve(nn);  // K, then K - sigma M
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(a_device, mass, nn * sizeof(double), cudaMemcpyHostToDevice, stream));
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(b_device, stiffness, nn * sizeof(double), cudaMemcpyHostToDevice, stream));
  shifted_kernel<<<1024, 256, 0, stream>>>(b_device, a_device, shift, nn, b_device);
  VSENSE_CUDA_CHECK(cudaGetLastError());
  const int ni = static_cast<int>(n);
  const int il = static_cast<int>(n - count + 1), iu = ni;
  int found = 0, lwork = 0;
  double* w_device = w.reserve(n);
  VSENSE_CUSOLVER_CHECK(cusolverDnDsygvdx_bufferSize(
      solver.handle, CUSOLVER_EIG_TYPE_1, CUSOLVER_EIG_MODE_VECTOR, CUSOLVER_EIG_RANGE_I,
      CUBLAS_FILL_MODE_LOWER, ni, a_device, ni, b_device, ni, 0.0, 0.0, il, iu, &found, w_device,
      &lwork));
  double* work_device = work.reserve(static_cast<std::size_t>(lwork));
  int* info_device = info.reserve(1);
  VSENSE_CUSOLVER_CHECK(cusolverDnDsygvdx(solver.handle, CUSOLVER_EIG_TYPE_1,
                                          CUSOLVER_EIG_MODE_VECTOR, CUSOLVER_EIG_RANGE_I,
                                          CUBLAS_FILL_MODE_LOWER, ni, a_device, ni, b_device, ni,
                                          0.0, 0.0, il, iu, &found, w_device, work_device, lwork,
                                          info_device));
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

}  // namespace vsense::kernels::cuda
