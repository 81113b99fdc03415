#pragma once
/// @file stage_support.hpp
/// @brief What every stage shares: wall-clock timing, peak memory, JSON escaping, and running
/// serial work on rank 0 while the other ranks wait.
#include <chrono>
#include <functional>
#include <string>

#include "vsense/cluster/communicator.hpp"

namespace vsense::jobs {

/// Seconds since `start` (steady clock).
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Peak resident memory of this process in bytes (VmHWM of /proc/self/status; 0 if unknown).
long long peak_memory_bytes();

/// A string escaped for a JSON document (quotes not included).
std::string json_escape(const std::string& text);

/// @brief Serial work of a stage: `work` runs on rank 0 only; the other ranks wait, and all
/// ranks agree on failure (cluster::collectively), so that either every rank returns or every
/// rank throws (rank 0's error class, its message naming rank 0).
void on_root(const cluster::Communicator& comm, const std::function<void()>& work);

}  // namespace vsense::jobs
