#include "../common/von_mises.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/stress.hpp"

namespace vsense::kernels {

namespace cpu {
void von_mises(const CpuExecutor&, const double* stress, std::size_t n, double* out) {
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    out[i] = common::von_mises(stress + 6 * i);
  }
}
}  // namespace cpu

void von_mises(const Executor& exec, const double* stress, std::size_t n, double* out) {
  switch (exec.backend()) {
    case Backend::cpu:
      return cpu::von_mises(static_cast<const CpuExecutor&>(exec), stress, n, out);
    case Backend::cuda:
      return cuda::von_mises(static_cast<const CudaExecutor&>(exec), stress, n, out);
  }
}

}  // namespace vsense::kernels
