// Every CUDA symbol of kernels/ for builds without CUDA: each throws NotCompiled, so algorithm
// code links unchanged and `--backend cuda` fails with a clear message.
#include "vsense/kernels/device_array.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/stress.hpp"

namespace vsense {
namespace {
[[noreturn]] void not_compiled() {
  throw NotCompiled("this vsense build has no CUDA backend (rebuild with VSENSE_WITH_CUDA=ON)");
}
}  // namespace

bool CudaExecutor::compiled() noexcept { return false; }
int CudaExecutor::device_count() noexcept { return 0; }
std::shared_ptr<CudaExecutor> CudaExecutor::create(int) { not_compiled(); }
CudaExecutor::CudaExecutor(int device_id) : device_id_(device_id) { not_compiled(); }
CudaExecutor::~CudaExecutor() = default;
void CudaExecutor::synchronize() const { not_compiled(); }
std::string CudaExecutor::description() const { not_compiled(); }
std::size_t CudaExecutor::free_bytes() const { not_compiled(); }

namespace cuda_memory {
void* allocate(const CudaExecutor&, std::size_t) { not_compiled(); }
void release(void*) noexcept {}
void copy_to_device(const CudaExecutor&, void*, const void*, std::size_t) { not_compiled(); }
void copy_to_host(const CudaExecutor&, void*, const void*, std::size_t) { not_compiled(); }
}  // namespace cuda_memory

namespace kernels::cuda {
void von_mises(const CudaExecutor&, const double*, std::size_t, double*) { not_compiled(); }
}  // namespace kernels::cuda
}  // namespace vsense
