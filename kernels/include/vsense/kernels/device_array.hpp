#pragma once
/// @file device_array.hpp
/// @brief Memory owned on one executor; transfers are explicit.
#include <cstddef>
#include <memory>
#include <vector>

#include "vsense/kernels/executor.hpp"

namespace vsense {

namespace cuda_memory {
/// Raw device allocation helpers (kernels/cuda, or NotCompiled from the stub).
void* allocate(const CudaExecutor& exec, std::size_t bytes);
void release(void* ptr) noexcept;
void copy_to_device(const CudaExecutor& exec, void* dst, const void* src, std::size_t bytes);
void copy_to_host(const CudaExecutor& exec, void* dst, const void* src, std::size_t bytes);
}  // namespace cuda_memory

/// @brief A contiguous array of T on an executor (host memory for the CPU, device memory for CUDA).
template <typename T>
class DeviceArray {
public:
  DeviceArray(std::shared_ptr<const Executor> exec, std::size_t size)
      : exec_(std::move(exec)), size_(size) {
    if (exec_->backend() == Backend::cpu) {
      host_.resize(size);
      data_ = host_.data();
    } else {
      data_ = static_cast<T*>(
          cuda_memory::allocate(static_cast<const CudaExecutor&>(*exec_), size * sizeof(T)));
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (exec_ && exec_->backend() == Backend::cuda) cuda_memory::release(data_);
  }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  void copy_from_host(const T* src) {
    if (exec_->backend() == Backend::cpu) {
      std::copy(src, src + size_, data_);
    } else {
      cuda_memory::copy_to_device(static_cast<const CudaExecutor&>(*exec_), data_, src,
                                  size_ * sizeof(T));
    }
  }
  std::vector<T> to_host() const {
    std::vector<T> out(size_);
    if (exec_->backend() == Backend::cpu) {
      std::copy(data_, data_ + size_, out.begin());
    } else {
      cuda_memory::copy_to_host(static_cast<const CudaExecutor&>(*exec_), out.data(), data_,
                                size_ * sizeof(T));
    }
    return out;
  }

private:
  std::shared_ptr<const Executor> exec_;
  std::size_t size_ = 0;
  std::vector<T> host_;
  T* data_ = nullptr;
};

}  // namespace vsense
