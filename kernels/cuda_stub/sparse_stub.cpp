// The cuSPARSE product without CUDA: NotCompiled.
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"

namespace vsense::kernels::cuda {

void sparse_times_dense(const CudaExecutor&, const CsrMatrixView&, const double*, std::size_t,
                        double*) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}

}  // namespace vsense::kernels::cuda
