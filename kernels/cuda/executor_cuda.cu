#include <cuda_runtime.h>
#include <fmt/format.h>

#include "check.cuh"
#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense {

bool CudaExecutor::compiled() noexcept { return true; }

int CudaExecutor::device_count() noexcept {
  int count = 0;
  // Without a driver this returns cudaErrorInsufficientDriver (35), not "no device": any
  // error means no usable device.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::shared_ptr<CudaExecutor> CudaExecutor::create(int device_id) {
  const int count = device_count();
  if (count == 0) throw DeviceUnavailable("no usable CUDA device (driver or GPU missing)");
  if (device_id < 0 || device_id >= count) {
    throw DeviceUnavailable(
        fmt::format("CUDA device {} requested but only {} device(s) exist", device_id, count));
  }
  return std::shared_ptr<CudaExecutor>(new CudaExecutor(device_id));
}

CudaExecutor::CudaExecutor(int device_id) : device_id_(device_id) {
  VSENSE_CUDA_CHECK(cudaSetDevice(device_id_));
  cudaStream_t stream = nullptr;
  VSENSE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
}

CudaExecutor::~CudaExecutor() {
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void CudaExecutor::synchronize() const {
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
}

std::size_t CudaExecutor::free_bytes() const {
  VSENSE_CUDA_CHECK(cudaSetDevice(device_id_));
  std::size_t free_bytes = 0, total_bytes = 0;
  VSENSE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

std::string CudaExecutor::description() const {
  cudaDeviceProp prop{};
  VSENSE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_id_));
  return fmt::format("cuda:{} {} ({:.0f} GiB)", device_id_, prop.name,
                     static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

namespace cuda_memory {
void* allocate(const CudaExecutor& exec, std::size_t bytes) {
  VSENSE_CUDA_CHECK(cudaSetDevice(exec.device_id()));
  void* ptr = nullptr;
  if (bytes > 0) VSENSE_CUDA_CHECK(cudaMalloc(&ptr, bytes));
  return ptr;
}
void release(void* ptr) noexcept {
  if (ptr) cudaFree(ptr);
}
void copy_to_device(const CudaExecutor& exec, void* dst, const void* src, std::size_t bytes) {
  auto stream = static_cast<cudaStream_t>(exec.stream());
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
}
void copy_to_host(const CudaExecutor& exec, void* dst, const void* src, std::size_t bytes) {
  auto stream = static_cast<cudaStream_t>(exec.stream());
  VSENSE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
  VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream));
}
}  // namespace cuda_memory

}  // namespace vsense
