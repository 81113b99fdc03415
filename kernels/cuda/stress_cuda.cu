#include <cuda_runtime.h>

#include "../common/von_mises.hpp"
#include "check.cuh"
#include "vsense/kernels/stress.hpp"

namespace vsense::kernels::cuda {

namespace {
__global__ void von_mises_kernel(const double* __restrict__ stress, std::size_t n,
                                 double* __restrict__ out) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = common::von_mises(stress + 6 * i);
  }
}
}  // namespace

void von_mises(const CudaExecutor& exec, const double* stress, std::size_t n, double* out) {
  if (n == 0) return;
  constexpr int threads = 256;
  const std::size_t wanted = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(wanted < 65535 ? wanted : 65535);
  von_mises_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(exec.stream())>>>(stress, n,
                                                                                     out);
  VSENSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace vsense::kernels::cuda
