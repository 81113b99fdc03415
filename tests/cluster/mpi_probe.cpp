// A small MPI program for tests/cluster: exercises the Communicator collectives and the failure
// agreement under mpirun, and prints one line per check that the test parses.
// Usage: vsense_mpi_probe [fail-rank]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/sturm.hpp"

int main(int argc, char** argv) {
  vsense::cluster::MpiSession session(argc, argv);
  const auto& comm = session.world();
  const int rank = comm.rank();
  const int size = comm.size();
  const int fail_rank = argc > 1 ? std::atoi(argv[1]) : -1;
  if (argc > 100) {
    // Never taken: keeps the sequential MUMPS libraries (which export MPI stubs) in the binary,
    // so that the probe sees the same link order as vsense.
    vsense::model::SparseMatrix k, m;
    (void)vsense::solvers::sturm_count(k, m, 0.0);
  }

  // Gather: every rank sends its rank as text; root checks the order.
  const std::string mine = "r" + std::to_string(rank);
  const auto pieces = comm.gather(std::as_bytes(std::span(mine.data(), mine.size())));
  if (rank == 0) {
    std::string joined;
    for (const auto& p : pieces) joined.append(reinterpret_cast<const char*>(p.data()), p.size());
    std::printf("gather %s\n", joined.c_str());
  }
  // Broadcast from the last rank.
  std::vector<std::byte> data(static_cast<std::size_t>(rank + 1), std::byte{0});
  if (rank == size - 1) data.assign(5, std::byte{7});
  comm.broadcast(data, size - 1);
  std::printf("rank %d of %d broadcast %zu\n", rank, size, data.size());
  // Reductions.
  double values[2] = {static_cast<double>(rank), 10.0 - rank};
  comm.allreduce_max(values);
  std::int64_t counts[1] = {rank + 1};
  comm.allreduce_sum(counts);
  std::printf("rank %d max %g %g sum %lld\n", rank, values[0], values[1],
              static_cast<long long>(counts[0]));
  // Failure agreement: one rank throws, every rank must throw the same class.
  try {
    vsense::cluster::collectively(comm, [&] {
      if (rank == fail_rank) throw vsense::InputError("bad.inp:3: broken line");
    });
    std::printf("rank %d agreed ok\n", rank);
  } catch (const vsense::Error& e) {
    std::printf("rank %d agreed failure %d agreed=%d: %s\n", rank, e.exit_code(),
                vsense::cluster::failure_was_agreed() ? 1 : 0, e.what());
  }
  std::fflush(stdout);
  return 0;
}
