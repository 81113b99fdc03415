#pragma once
/// @file check.cuh
/// @brief Error checks for every CUDA runtime call.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "vsense/kernels/errors.hpp"

namespace vsense::cuda_detail {
inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  const std::string what = fmt::format("{} failed at {}:{}: {} ({})", call, file, line,
                                       cudaGetErrorString(status), static_cast<int>(status));
  if (status == cudaErrorMemoryAllocation) throw DeviceResourceError(what);
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver) {
    throw DeviceUnavailable(what);
  }
  throw Error(what);
}
}  // namespace vsense::cuda_detail

#define VSENSE_CUDA_CHECK(call) ::vsense::cuda_detail::check((call), #call, __FILE__, __LINE__)
