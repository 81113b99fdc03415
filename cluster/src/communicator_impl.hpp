#pragma once
// Internal to vsense_cluster: the failure record ranks exchange in Communicator::agree.
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"

namespace vsense::cluster {

struct FailureRecord {
  bool failed = false;
  int exit_code = 0;
  std::string message;
  static FailureRecord of(std::exception_ptr failure);
  std::vector<std::byte> encode() const;
  static FailureRecord decode(std::span<const std::byte> bytes);
};

/// Throws as Communicator::agree says, given every rank's encoded record in rank order.
void resolve_agreement(const std::vector<std::vector<std::byte>>& records, int rank,
                       std::exception_ptr local_failure);

}  // namespace vsense::cluster
