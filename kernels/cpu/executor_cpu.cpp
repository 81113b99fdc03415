#include <fmt/format.h>

#include <thread>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense {

std::string CpuExecutor::description() const {
  return fmt::format("cpu ({} hardware threads)", std::thread::hardware_concurrency());
}

std::shared_ptr<Executor> make_executor(std::string_view spec) {
  if (spec == "cpu") return std::make_shared<CpuExecutor>();
  if (spec == "auto") {
    if (CudaExecutor::device_count() > 0) return CudaExecutor::create(0);
    return std::make_shared<CpuExecutor>();
  }
  if (spec == "cuda") return CudaExecutor::create(0);
  if (spec.substr(0, 5) == "cuda:") {
    const std::string id(spec.substr(5));
    int device = -1;
    try {
      std::size_t used = 0;
      device = std::stoi(id, &used);
      if (used != id.size()) device = -1;
    } catch (const std::exception&) {
      device = -1;
    }
    // Outside the parse: a missing device is DeviceUnavailable, not an unknown backend.
    if (device >= 0) return CudaExecutor::create(device);
  }
  throw InputError(fmt::format("unknown backend '{}' (expected auto, cpu, cuda or cuda:N)", spec));
}

}  // namespace vsense
