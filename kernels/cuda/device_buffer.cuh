#pragma once
/// @file device_buffer.cuh
/// @brief What the CUDA kernels share: the cuBLAS status check and a grow-only device buffer.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>

#include "check.cuh"
#include "vsense/kernels/errors.hpp"

namespace vsense::cuda_detail {

inline void cublas_check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const std::string what = fmt::format("{} failed at {}:{}: cuBLAS status {}", call, file, line,
                                       static_cast<int>(status));
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw DeviceResourceError(what);
  if (status == CUBLAS_STATUS_NOT_INITIALIZED) throw DeviceUnavailable(what);
  throw Error(what);
}

/// Device memory that only grows: reserve(n) keeps the allocation when it is large enough.
template <typename T>
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  T* reserve(std::size_t n) {
    if (n > capacity_) {
      if (ptr_) VSENSE_CUDA_CHECK(cudaFree(ptr_));
      ptr_ = nullptr;
      capacity_ = 0;
      VSENSE_CUDA_CHECK(
          cudaMalloc(reinterpret_cast<void**>(&ptr_), std::max<std::size_t>(n, 1) * sizeof(T)));
      capacity_ = n;
    }
    return ptr_;
  }
  T* get() const noexcept { return ptr_; }
  std::size_t capacity() const noexcept { return capacity_; }

private:
  T* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace vsense::cuda_detail

#define VSENSE_CUBLAS_CHECK(call) \
  ::vsense::cuda_detail::cublas_check((call), #call, __FILE__, __LINE__)
