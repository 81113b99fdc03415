// The device block products without CUDA: NotCompiled.
#include "vsense/kernels/block_ops.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::kernels::cuda {

namespace {
[[noreturn]] void not_compiled() {
  throw NotCompiled(
      "this vsense build has no CUDA backend (rebuild with "
      "VSENSE_WITH_CUDA=ON)");
}
}  // namespace

std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const CudaExecutor>) { not_compiled(); }

struct DeviceSymmetricMatrix::State {};

DeviceSymmetricMatrix::DeviceSymmetricMatrix(std::shared_ptr<const CudaExecutor>,
                                             const LowerCscView&) {
  not_compiled();
}
DeviceSymmetricMatrix::~DeviceSymmetricMatrix() = default;
std::int64_t DeviceSymmetricMatrix::rows() const noexcept { return 0; }
void DeviceSymmetricMatrix::apply(const double*, double*, std::int64_t) const { not_compiled(); }
std::size_t DeviceSymmetricMatrix::device_bytes() const noexcept { return 0; }

}  // namespace vsense::kernels::cuda
