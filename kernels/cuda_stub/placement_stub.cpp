// The CUDA placement scorer for builds without CUDA: throws NotCompiled, so the placement
// solvers link unchanged and `--backend cuda` fails with a clear message.
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/placement.hpp"

namespace vsense::kernels::cuda {
std::unique_ptr<BlockScorer> make_block_scorer(const CudaExecutor&, std::size_t, std::size_t,
                                               std::size_t, const double*, const double*,
                                               std::size_t) {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}
}  // namespace vsense::kernels::cuda
