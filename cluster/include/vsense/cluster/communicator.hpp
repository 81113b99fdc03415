#pragma once
/// @file communicator.hpp
/// @brief The process-level parallel environment: MPI when this build has it and the process
/// was started by an MPI launcher, one rank otherwise. This is the only place that talks to
/// MPI; stages receive a Communicator explicitly and never call MPI themselves.
///
/// Collectives here are deterministic: reductions that could depend on the order in which
/// ranks contribute (floating-point sums) are not offered; gather/allgather return the
/// pieces in rank order so that callers combine them in a fixed order.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vsense::cluster {

/// True when this build contains MPI (VSENSE_WITH_MPI found an MPI library).
bool mpi_compiled() noexcept;

/// True when the process environment says an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx)
/// started it. vsense initialises MPI only then, so that a plain run never pays for MPI start-up.
bool launched_by_mpi() noexcept;

/// @brief A group of ranks (MPI_COMM_WORLD, or a single process).
class Communicator {
public:
  /// A single-process communicator (rank 0 of 1).
  Communicator() = default;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  bool is_root() const noexcept { return rank_ == 0; }
  /// True when this communicator spans MPI processes (even if only one).
  bool uses_mpi() const noexcept { return handle_ != nullptr; }

  void barrier() const;
  /// `data` of `root` replaces `data` on every rank.
  void broadcast(std::vector<std::byte>& data, int root = 0) const;
  /// Every rank's `data`, in rank order, on `root` (empty elsewhere).
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> data, int root = 0) const;
  /// Every rank's `data`, in rank order, on every rank.
  std::vector<std::vector<std::byte>> allgather(std::span<const std::byte> data) const;
  /// Element-wise maximum / minimum over ranks, in place (exact: order-independent).
  void allreduce_max(std::span<double> values) const;
  void allreduce_min(std::span<double> values) const;
  /// Element-wise integer sum over ranks, in place (exact).
  void allreduce_sum(std::span<std::int64_t> values) const;

  /// @brief Collective failure agreement. Every rank calls it with the exception it caught
  /// (or null). If no rank failed it returns; otherwise every rank throws: a failing rank its
  /// own exception, the others an error of the same class as the lowest failing rank's, whose
  /// message names that rank. No rank is left waiting in a later collective.
  void agree(std::exception_ptr local_failure) const;

private:
  friend class MpiSession;
  Communicator(void* handle, int rank, int size) : handle_(handle), rank_(rank), size_(size) {}
  void* handle_ = nullptr;  ///< MPI_Comm, when MPI is in use
  int rank_ = 0;
  int size_ = 1;
};

/// @brief Runs `work` on every rank, then agrees on failure (Communicator::agree): either all
/// ranks return or all throw.
void collectively(const Communicator& comm, const std::function<void()>& work);

/// True when the error being handled was raised on every rank by Communicator::agree (so that
/// only rank 0 needs to print it).
bool failure_was_agreed() noexcept;

/// @brief MPI for the life of the object: initialised when compiled in and launched by an MPI
/// launcher (or when `force` is set), finalised on destruction. Create one, in main.
class MpiSession {
public:
  MpiSession(int& argc, char**& argv, bool force = false);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  const Communicator& world() const noexcept { return world_; }
  bool active() const noexcept { return active_; }
  /// "MPI (Open MPI v4.1.4), 3 ranks" or "single process".
  std::string description() const;

private:
  Communicator world_;
  bool active_ = false;
};

/// @brief An even split of [0, n) into `parts` contiguous ranges whose boundaries are
/// multiples of `granule` (the last range takes the remainder). Part k is
/// [begin(k), begin(k + 1)). Used to share candidates, time blocks or nodes between ranks.
struct Partition {
  std::int64_t n = 0;
  std::int64_t granule = 1;
  int parts = 1;
  std::int64_t begin(int part) const noexcept;
  std::int64_t end(int part) const noexcept { return begin(part + 1); }
};

}  // namespace vsense::cluster
