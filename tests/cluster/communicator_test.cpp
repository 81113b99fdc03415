// The Communicator: single-process behaviour, partitions, and real MPI runs of
// vsense_mpi_probe under mpirun (1 to 3 ranks; skipped where mpirun or MPI is missing).
#include "vsense/cluster/communicator.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>


#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"

namespace {

using vsense::cluster::Communicator;
using vsense::cluster::Partition;

TEST(Communicator, SingleProcessCollectivesAreIdentities) {
  const Communicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  std::vector<std::byte> data{std::byte{1}, std::byte{2}};
  comm.broadcast(data);
  EXPECT_EQ(data.size(), 2u);
  const auto pieces = comm.allgather(data);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0], data);
  double v[1] = {3.5};
  comm.allreduce_max(v);
  EXPECT_EQ(v[0], 3.5);
}

TEST(Communicator, SingleProcessAgreementRethrowsTheLocalError) {
  const Communicator comm;
  EXPECT_NO_THROW(vsense::cluster::collectively(comm, [] {}));
  EXPECT_THROW(vsense::cluster::collectively(comm, [] { throw vsense::InputError("x"); }),
               vsense::InputError);
}

TEST(Partition, CoversTheRangeWithBoundariesOnTheGranule) {
  for (std::int64_t n : {0, 1, 7, 100, 4097}) {
    for (int parts : {1, 2, 3, 7}) {
      const Partition p{n, 64, parts};
      EXPECT_EQ(p.begin(0), 0);
      EXPECT_EQ(p.end(parts - 1), n);
      for (int k = 0; k < parts; ++k) {
        EXPECT_LE(p.begin(k), p.end(k)) << n << " " << parts << " " << k;
        if (p.begin(k) != n) EXPECT_EQ(p.begin(k) % 64, 0) << n << " " << parts << " " << k;
      }
    }
  }
  // Even shares of whole granules: 10 granules over 3 parts = 3, 3, 4.
  const Partition p{640, 64, 3};
  EXPECT_EQ(p.begin(1), 192);
  EXPECT_EQ(p.begin(2), 384);
}

// Runs the probe under mpirun with n ranks; skips when that is impossible here.
vsense::test::CommandResult run_probe(int ranks, int fail_rank) {
  return vsense::test::run_command(fmt::format(
      "{} {} {} 2>&1", vsense::test::mpi_launcher(ranks), VSENSE_MPI_PROBE, fail_rank));
}

class MpiProbe : public ::testing::TestWithParam<int> {
protected:
  void SetUp() override {
    if (!vsense::cluster::mpi_compiled()) GTEST_SKIP() << "this build has no MPI";
    if (vsense::test::mpi_launcher(1).empty()) GTEST_SKIP() << "no mpirun on this machine";
  }
};

TEST_P(MpiProbe, RanksAreDistinctAndCollectivesAgree) {
  const int n = GetParam();
  const auto result = run_probe(n, -1);
  ASSERT_EQ(result.exit_code, 0) << result.out;
  std::string expected_gather = "gather ";
  for (int r = 0; r < n; ++r) expected_gather += "r" + std::to_string(r);
  EXPECT_NE(result.out.find(expected_gather + "\n"), std::string::npos) << result.out;
  for (int r = 0; r < n; ++r) {
    EXPECT_NE(result.out.find(fmt::format("rank {} of {} broadcast 5\n", r, n)),
              std::string::npos)
        << result.out;
    EXPECT_NE(result.out.find(fmt::format("rank {} max {} 10 sum {}\n", r, n - 1, n * (n + 1) / 2)),
              std::string::npos)
        << result.out;
    EXPECT_NE(result.out.find(fmt::format("rank {} agreed ok\n", r)), std::string::npos)
        << result.out;
  }
}

TEST_P(MpiProbe, OneFailingRankMakesEveryRankFailWithItsError) {
  const int n = GetParam();
  const int failing = n - 1;
  const auto result = run_probe(n, failing);
  ASSERT_EQ(result.exit_code, 0) << result.out;
  for (int r = 0; r < n; ++r) {
    const std::string prefix = fmt::format("rank {} agreed failure 2 agreed=1: ", r);
    const std::string message =
        r == failing ? "bad.inp:3: broken line"
                     : fmt::format("rank {}: bad.inp:3: broken line", failing);
    EXPECT_NE(result.out.find(prefix + message + "\n"), std::string::npos) << result.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, MpiProbe, ::testing::Values(1, 2, 3));

}  // namespace
