// Communicator and MpiSession without MPI: one process, collectives are identities.
#include "communicator_impl.hpp"

namespace vsense::cluster {

bool mpi_compiled() noexcept { return false; }

void Communicator::barrier() const {}
void Communicator::broadcast(std::vector<std::byte>&, int) const {}
std::vector<std::vector<std::byte>> Communicator::gather(std::span<const std::byte> data,
                                                         int) const {
  return {std::vector<std::byte>(data.begin(), data.end())};
}
std::vector<std::vector<std::byte>> Communicator::allgather(std::span<const std::byte> data) const {
  return {std::vector<std::byte>(data.begin(), data.end())};
}
void Communicator::allreduce_max(std::span<double>) const {}
void Communicator::allreduce_min(std::span<double>) const {}
void Communicator::allreduce_sum(std::span<std::int64_t>) const {}

MpiSession::MpiSession(int&, char**&, bool) {}
MpiSession::~MpiSession() = default;
std::string MpiSession::description() const { return "single process"; }

}  // namespace vsense::cluster
