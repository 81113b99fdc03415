// The cuSOLVER dense modes without CUDA: NotCompiled.
#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::kernels::cuda {

void dense_lowest_modes(const CudaExecutor&, const double*, const double*, std::size_t, double,
                        std::size_t, double*, double*) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}

void dense_lowest_modes(const CudaExecutor&, const LowerCscView&, const LowerCscView&, double,
                        std::size_t, double*, double*) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}

std::int64_t dense_modes_max_equations(const CudaExecutor&) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}

}  // namespace vsense::kernels::cuda
