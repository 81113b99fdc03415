#pragma once
/// @file mpi_env.hpp
/// @brief Process-level parallel environment. Until the distributed stages land (issue 6) vsense
/// runs as one rank; this is the single place that will learn about MPI.
namespace vsense::cluster {

struct RankInfo {
  int rank = 0;
  int size = 1;
};

/// The calling process's rank and the number of ranks.
RankInfo rank_info() noexcept;

}  // namespace vsense::cluster
