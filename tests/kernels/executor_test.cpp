// The host executor's view of memory: what the spectrum slicing sizes its slices by.
#include "vsense/kernels/executor.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace {

/// MemTotal of /proc/meminfo in bytes (0 when unreadable).
std::uint64_t total_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    std::uint64_t kib = 0;
    if (fields >> name >> kib && name == "MemTotal:") return kib * 1024;
  }
  return 0;
}

TEST(CpuExecutor, FreeBytesLieBetweenWhatATestNeedsAndTheMachinesMemory) {
  const std::uint64_t total = total_memory_bytes();
  if (total == 0) GTEST_SKIP() << "no /proc/meminfo on this system";
  const std::size_t free = vsense::CpuExecutor{}.free_bytes();
  // In bytes, not kB: a machine that runs this suite has well over 64 MiB left.
  EXPECT_GE(free, std::size_t{64} << 20);
  EXPECT_LE(free, total);
}

}  // namespace
