// The CUDA stress recovery without CUDA: NotCompiled, so that the CPU path links unchanged.
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/stress_recovery.hpp"

namespace vsense::kernels::cuda {

std::unique_ptr<StressRecoveryDevice> make_stress_recovery(const CudaExecutor&, const double*,
                                                           std::size_t, std::size_t, int) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}

}  // namespace vsense::kernels::cuda
