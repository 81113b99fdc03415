// The supernodal solve on a device without CUDA: NotCompiled.
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/supernodal.hpp"

namespace vsense::kernels::cuda {

namespace {
[[noreturn]] void not_compiled() {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}
}  // namespace

struct DeviceSupernodalFactor::Impl {};

DeviceSupernodalFactor::DeviceSupernodalFactor(std::shared_ptr<const CudaExecutor>,
                                               const SupernodalFactorView&, std::int64_t) {
  not_compiled();
}

DeviceSupernodalFactor::~DeviceSupernodalFactor() = default;

void DeviceSupernodalFactor::solve(double*, std::int64_t, std::int64_t) const { not_compiled(); }

std::size_t DeviceSupernodalFactor::device_bytes() const noexcept { return 0; }

std::size_t DeviceSupernodalFactor::bytes_needed(const SupernodalFactorView&, std::int64_t) {
  not_compiled();
}

}  // namespace vsense::kernels::cuda
