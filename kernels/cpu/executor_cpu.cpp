#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense {

std::string CpuExecutor::description() const {
  const std::string core = blas_core();
  if (core.empty()) {
    return fmt::format("cpu ({} hardware threads)", std::thread::hardware_concurrency());
  }
  return fmt::format("cpu ({} hardware threads, OpenBLAS {} kernels)",
                     std::thread::hardware_concurrency(), core);
}

namespace {

// The first number of a file ("max" or anything unreadable: none).
std::optional<std::uint64_t> read_number(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// `key value` from a file of such lines (/proc/meminfo in kB, cgroup memory.stat in bytes).
std::optional<std::uint64_t> read_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    std::uint64_t value = 0;
    if (fields >> name >> value && (name == key || name == key + ":")) return value;
  }
  return std::nullopt;
}

// What is left under a cgroup limit: limit - (usage - reclaimable page cache). cgroup v2 (the
// process's own group, then the root of the namespace), else v1.
std::optional<std::uint64_t> cgroup_left() {
  std::string group_v2, group_v1;
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("0::", 0) == 0) group_v2 = line.substr(3);
      if (const auto at = line.find(":memory:"); at != std::string::npos) {
        group_v1 = line.substr(at + 8);
      }
    }
  }
  const auto left = [](const std::string& dir, const char* limit_file, const char* usage_file,
                       const char* cache_key) -> std::optional<std::uint64_t> {
    const auto limit = read_number(dir + limit_file);
    const auto usage = read_number(dir + usage_file);
    // v1 writes "no limit" as a number near 2^63.
    if (!limit || !usage || *limit >= (std::uint64_t{1} << 60)) return std::nullopt;
    const std::uint64_t cache = read_field(dir + "/memory.stat", cache_key).value_or(0);
    const std::uint64_t used = *usage > cache ? *usage - cache : 0;
    return *limit > used ? *limit - used : 0;
  };
  for (const std::string& dir : {"/sys/fs/cgroup" + group_v2, std::string("/sys/fs/cgroup")}) {
    if (auto value = left(dir, "/memory.max", "/memory.current", "inactive_file")) return value;
  }
  for (const std::string& dir :
       {"/sys/fs/cgroup/memory" + group_v1, std::string("/sys/fs/cgroup/memory")}) {
    if (auto value = left(dir, "/memory.limit_in_bytes", "/memory.usage_in_bytes",
                          "total_inactive_file")) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace

std::size_t CpuExecutor::free_bytes() const {
  std::optional<std::uint64_t> free;
  if (const auto available = read_field("/proc/meminfo", "MemAvailable")) {
    free = *available * 1024;
  }
  if (const auto left = cgroup_left()) free = free ? std::min(*free, *left) : *left;
  if (!free) return 0;
  return static_cast<std::size_t>(
      std::min<std::uint64_t>(*free, std::numeric_limits<std::size_t>::max()));
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
