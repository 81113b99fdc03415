// Communicator and MpiSession over MPI (built when VSENSE_WITH_MPI finds an MPI library).
#include <mpi.h>

#include <algorithm>
#include <limits>
#include <string>

#include "communicator_impl.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::cluster {

namespace {
MPI_Comm comm_of(void* handle) { return *static_cast<MPI_Comm*>(handle); }

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw IoError(std::string("MPI: ") + what + " failed: " + std::string(text, length));
}

int as_count(std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw IoError("MPI: a message of " + std::to_string(n) +
                  " bytes is larger than one MPI call can carry");
  }
  return static_cast<int>(n);
}

MPI_Comm world_comm = MPI_COMM_WORLD;

/// Displacements of pieces of the given byte counts laid end to end, and the total.
std::vector<int> displacements_of(const std::vector<int>& counts, std::size_t& total) {
  std::vector<int> displacements(counts.size());
  total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    displacements[r] = as_count(total);
    total += static_cast<std::size_t>(counts[r]);
  }
  return displacements;
}

/// The received buffer cut back into its pieces, in rank order.
std::vector<std::vector<std::byte>> split_pieces(const std::vector<std::byte>& all,
                                                 const std::vector<int>& counts,
                                                 const std::vector<int>& displacements) {
  std::vector<std::vector<std::byte>> out;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    out.emplace_back(all.begin() + displacements[r], all.begin() + displacements[r] + counts[r]);
  }
  return out;
}
}  // namespace

bool mpi_compiled() noexcept { return true; }

void Communicator::barrier() const {
  if (!handle_) return;
  check(MPI_Barrier(comm_of(handle_)), "MPI_Barrier");
}

void Communicator::broadcast(std::vector<std::byte>& data, int root) const {
  if (!handle_) return;
  long long n = static_cast<long long>(data.size());
  check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm_of(handle_)), "MPI_Bcast");
  data.resize(static_cast<std::size_t>(n));
  check(MPI_Bcast(data.data(), as_count(data.size()), MPI_BYTE, root, comm_of(handle_)),
        "MPI_Bcast");
}

std::vector<std::vector<std::byte>> Communicator::gather(std::span<const std::byte> data,
                                                         int root) const {
  if (!handle_) return {std::vector<std::byte>(data.begin(), data.end())};
  const int n = as_count(data.size());
  std::vector<int> counts(rank_ == root ? size_ : 0);
  check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm_of(handle_)),
        "MPI_Gather");
  std::size_t total = 0;
  const std::vector<int> displacements = displacements_of(counts, total);
  std::vector<std::byte> all(total);
  check(MPI_Gatherv(data.data(), n, MPI_BYTE, all.data(), counts.data(), displacements.data(),
                    MPI_BYTE, root, comm_of(handle_)),
        "MPI_Gatherv");
  return split_pieces(all, counts, displacements);
}

std::vector<std::vector<std::byte>> Communicator::allgather(std::span<const std::byte> data) const {
  if (!handle_) return {std::vector<std::byte>(data.begin(), data.end())};
  const int n = as_count(data.size());
  std::vector<int> counts(static_cast<std::size_t>(size_));
  check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_of(handle_)),
        "MPI_Allgather");
  std::size_t total = 0;
  const std::vector<int> displacements = displacements_of(counts, total);
  std::vector<std::byte> all(total);
  check(MPI_Allgatherv(data.data(), n, MPI_BYTE, all.data(), counts.data(),
                       displacements.data(), MPI_BYTE, comm_of(handle_)),
        "MPI_Allgatherv");
  return split_pieces(all, counts, displacements);
}

void Communicator::allreduce_max(std::span<double> values) const {
  if (!handle_ || values.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), as_count(values.size()), MPI_DOUBLE, MPI_MAX,
                      comm_of(handle_)),
        "MPI_Allreduce");
}

void Communicator::allreduce_min(std::span<double> values) const {
  if (!handle_ || values.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), as_count(values.size()), MPI_DOUBLE, MPI_MIN,
                      comm_of(handle_)),
        "MPI_Allreduce");
}

void Communicator::allreduce_sum(std::span<std::int64_t> values) const {
  if (!handle_ || values.empty()) return;
  static_assert(sizeof(long long) == sizeof(std::int64_t));
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), as_count(values.size()), MPI_LONG_LONG,
                      MPI_SUM, comm_of(handle_)),
        "MPI_Allreduce");
}

MpiSession::MpiSession(int& argc, char**& argv, bool force) {
  if (!force && !launched_by_mpi()) return;
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  }
  // Errors come back as return codes (turned into exceptions), not as aborts.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  world_ = Communicator(&world_comm, rank, size);
  active_ = true;
}

MpiSession::~MpiSession() {
  if (!active_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

std::string MpiSession::description() const {
  if (!active_) return "single process";
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(version, &length);
  std::string text(version, static_cast<std::size_t>(length));
  if (const auto comma = text.find(','); comma != std::string::npos) text.resize(comma);
  return "MPI (" + text + "), " + std::to_string(world_.size()) +
         (world_.size() == 1 ? " rank" : " ranks");
}

}  // namespace vsense::cluster
