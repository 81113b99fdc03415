// cluster/vsense-submit and the Slurm templates against a real single-node Slurm started for
// the test (Debian's slurm-wlm and munge: munged, slurmctld and slurmd on private ports with a
// slurm.conf in a scratch directory): a single run, a job array over two job files, an MPI run
// on 2 ranks through srun, and a failing run whose exit status comes back through sbatch
// --wait. Skipped with a message where Slurm is not installed or cannot start. The dry run
// (the batch script only) needs no Slurm.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/test_support.hpp"
#include "vsense/cluster/communicator.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::test::run_command;
using vsense::test::ScratchDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string submit_script() { return std::string(VSENSE_SOURCE_DIR) + "/cluster/vsense-submit"; }

/// A small job (10^4 DOF genset, 6 modes, 3 sensors): seconds.
std::string write_job(const fs::path& dir, const std::string& name, const std::string& extra) {
  const fs::path path = dir / (name + ".toml");
  std::ofstream(path) << fmt::format(R"(schema_version = 1
name = "{}"
output_dir = "{}-results"
[model]
builtin = "genset"
dofs = 10000
[modes]
count = 6
[placement]
sensors = 3
method = "d-optimal"
{}
[report]
plots = false
)",
                                     name, name, extra);
  return path.string();
}

/// munged + slurmctld + slurmd for one test, stopped (by their pid files) on destruction.
class SlurmCluster {
public:
  explicit SlurmCluster(const fs::path& dir) : dir_(dir) {}
  ~SlurmCluster() { stop(); }

  /// Starts the daemons; false (with why()) when Slurm is missing or does not come up.
  bool start() {
    for (const char* tool : {"munged", "slurmctld", "slurmd", "sbatch", "sinfo"}) {
      if (run_command(fmt::format("command -v {} >/dev/null 2>&1 || test -x /usr/sbin/{}", tool,
                                  tool))
              .exit_code != 0) {
        why_ = fmt::format("{} is not installed (Debian: apt-get install slurm-wlm munge)", tool);
        return false;
      }
    }
    const fs::path munge = dir_ / "munge";
    fs::create_directories(munge);
    fs::create_directories(dir_ / "state");
    fs::create_directories(dir_ / "spool");
    ::chmod(munge.c_str(), 0700);
    {
      std::random_device random;
      std::ofstream key(munge / "munge.key", std::ios::binary);
      for (int i = 0; i < 128; ++i) key.put(static_cast<char>(random() & 0xff));
    }
    ::chmod((munge / "munge.key").c_str(), 0600);
    const auto munged = run_command(fmt::format(
        "PATH=$PATH:/usr/sbin munged --force --socket='{0}/munge.socket' --key-file='{0}/munge.key' "
        "--pid-file='{0}/munged.pid' --log-file='{0}/munged.log' --seed-file='{0}/munged.seed'",
        munge.string()));
    if (munged.exit_code != 0) {
      why_ = "munged did not start: " + munged.err + slurp(munge / "munged.log");
      return false;
    }
    const std::string host = run_command("hostname -s").out.substr(0, 64);
    const std::string node = host.substr(0, host.find('\n'));
    const int port = 20000 + 2 * static_cast<int>(::getpid() % 10000);
    const std::string user = run_command("id -un").out;
    const std::string cpus = run_command("nproc").out;
    const fs::path conf = dir_ / "slurm.conf";
    std::ofstream(conf) << fmt::format(
        "ClusterName=vsensetest\nSlurmctldHost={node}\nSlurmUser={user}\nSlurmdUser={user}\n"
        "SlurmctldPort={p0}\nSlurmdPort={p1}\nAuthType=auth/munge\nCredType=cred/munge\n"
        "AuthInfo=socket={d}/munge/munge.socket\nStateSaveLocation={d}/state\n"
        "SlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\n"
        "SlurmdPidFile={d}/slurmd.pid\nSlurmctldLogFile={d}/slurmctld.log\n"
        "SlurmdLogFile={d}/slurmd.log\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
        "SchedulerType=sched/builtin\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
        "ReturnToService=2\nMpiDefault=none\nJobAcctGatherType=jobacct_gather/none\n"
        "AccountingStorageType=accounting_storage/none\n"
        "NodeName={node} CPUs={cpus} State=UNKNOWN\n"
        "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
        fmt::arg("node", node), fmt::arg("user", user.substr(0, user.find('\n'))),
        fmt::arg("p0", port), fmt::arg("p1", port + 1), fmt::arg("d", dir_.string()),
        fmt::arg("cpus", cpus.substr(0, cpus.find('\n'))));
    setenv("SLURM_CONF", conf.c_str(), 1);
    for (const char* daemon : {"slurmctld", "slurmd"}) {
      const auto r = run_command(fmt::format("PATH=$PATH:/usr/sbin {} -f '{}'", daemon,
                                             conf.string()));
      if (r.exit_code != 0) {
        why_ = fmt::format("{} did not start: {}{}", daemon, r.err,
                           slurp(dir_ / (std::string(daemon) + ".log")));
        return false;
      }
    }
    // Up when the node is idle (at most a minute; a machine where it never is cannot run it).
    for (int attempt = 0; attempt < 120; ++attempt) {
      if (run_command("sinfo -h -o %T").out.rfind("idle", 0) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    why_ = "the Slurm node did not become idle:\n" + run_command("sinfo 2>&1").out +
           slurp(dir_ / "slurmctld.log").substr(0, 3000) + slurp(dir_ / "slurmd.log").substr(0, 3000);
    return false;
  }

  const std::string& why() const noexcept { return why_; }

private:
  void stop() {
    for (const char* pid_file : {"slurmd.pid", "slurmctld.pid", "munge/munged.pid"}) {
      std::ifstream in(dir_ / pid_file);
      long pid = 0;
      if (in >> pid && pid > 1) ::kill(static_cast<pid_t>(pid), SIGTERM);
    }
    unsetenv("SLURM_CONF");
  }
  fs::path dir_;
  std::string why_;
};

TEST(SlurmSubmit, DryRunWritesTheBatchScriptWithTheRequestedResources) {
  ScratchDir dir("slurm-dry");
  const auto job = write_job(dir.path(), "dry", "");
  auto r = run_command(fmt::format("'{}' --dry-run --gpus 1 --cpus 4 --time 02:00:00 --vsense '{}' "
                                   "'{}' -- --force",
                                   submit_script(), VSENSE_BINARY, job));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("#SBATCH --gres=gpu:1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --cpus-per-task=4\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --time=02:00:00\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--partition"), std::string::npos) << "an empty field's line is dropped";
  {
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("# ", 0) == 0) continue;  // the template's own comments
      EXPECT_EQ(line.find('@'), std::string::npos) << "a field was left unfilled: " << line;
    }
  }
  EXPECT_NE(r.out.find(fmt::format("\"{}\" run \"{}\" --force", VSENSE_BINARY, job)),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(fs::exists(dir.path() / "dry-results" / "vsense-dry.sbatch"));
  // Without GPUs no GPU is requested; an MPI run goes through srun; several files: an array.
  r = run_command(fmt::format("'{}' --dry-run --mpi 8 --nodes 2 --vsense '{}' '{}'",
                              submit_script(), VSENSE_BINARY, job));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("--gres"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --ntasks=8\n#SBATCH"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --nodes=2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("srun --mpi=pmix"), std::string::npos) << r.out;
  const auto other = write_job(dir.path(), "other", "");
  r = run_command(fmt::format("'{}' --dry-run --max-parallel 1 --vsense '{}' '{}' '{}'",
                              submit_script(), VSENSE_BINARY, job, other));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("#SBATCH --array=0-1%1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("job_files=({} {})", job, other)), std::string::npos) << r.out;
}

TEST(SlurmSubmit, ABadJobFileIsRefusedBeforeAnythingIsQueued) {
  ScratchDir dir("slurm-bad");
  const std::string job = dir.file("bad.toml");
  std::ofstream(job) << "schema_version = 1\n[model]\nbuiltin = \"genset\"\n[modes]\ncount = 0\n";
  const auto r = run_command(fmt::format("PATH=/nonexistent:$PATH '{}' --vsense '{}' '{}'",
                                         submit_script(), VSENSE_BINARY, job));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.toml:5: modes.count: must be in [1, 100000], got 0"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("nothing was submitted"), std::string::npos) << r.err;
}

TEST(SlurmSubmit, RunsSingleArrayAndMpiJobsOnARealSlurm) {
  ScratchDir dir("slurm");
  SlurmCluster slurm(dir.path() / "slurm");
  if (!slurm.start()) GTEST_SKIP() << "Slurm could not start here: " << slurm.why();
  const fs::path jobs = dir.path() / "jobs";
  fs::create_directories(jobs);
  const std::string submit =
      fmt::format("'{}' --wait --cpus 1 --time 00:10:00 --vsense '{}'", submit_script(),
                  VSENSE_BINARY);

  // One run.
  const auto single = write_job(jobs, "single", "");
  auto r = run_command(fmt::format("{} '{}'", submit, single));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string job_id = r.out.substr(0, r.out.find('\n'));
  const fs::path log = jobs / "single-results" / fmt::format("vsense-single-{}.log", job_id);
  ASSERT_TRUE(fs::exists(log)) << log << "\n" << r.err;
  std::string text = slurp(log);
  EXPECT_NE(text.find("vsense: finished with exit status 0"), std::string::npos) << text;
  EXPECT_NE(text.find("[4/4] report: done"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(jobs / "single-results" / "report" / "index.html"));
  EXPECT_TRUE(fs::exists(jobs / "single-results" / "placement.h5"));

  // A job array: one task per job file.
  const auto a = write_job(jobs, "variant-a", "");
  const auto b = write_job(jobs, "variant-b", "");
  r = run_command(fmt::format("{} --name variants '{}' '{}'", submit, a, b));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string array_id = r.out.substr(0, r.out.find('\n'));
  for (const char* variant : {"variant-a", "variant-b"}) {
    EXPECT_TRUE(fs::exists(jobs / (std::string(variant) + "-results") / "placement.h5"))
        << variant;
  }
  for (int task = 0; task < 2; ++task) {
    const fs::path task_log = jobs / "variant-a-results" / fmt::format("variants-{}_{}.log",
                                                                       array_id, task);
    ASSERT_TRUE(fs::exists(task_log)) << task_log;
    EXPECT_NE(slurp(task_log).find("vsense: finished with exit status 0"), std::string::npos)
        << slurp(task_log);
  }

  // An MPI run on 2 ranks through srun (PMIx).
  if (vsense::cluster::mpi_compiled()) {
    const auto mpi = write_job(jobs, "mpi", "");
    r = run_command(fmt::format("{} --mpi 2 '{}'", submit, mpi));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string mpi_id = r.out.substr(0, r.out.find('\n'));
    text = slurp(jobs / "mpi-results" / fmt::format("vsense-mpi-{}.log", mpi_id));
    EXPECT_NE(text.find("on 2 ranks"), std::string::npos) << text;
    EXPECT_NE(text.find("vsense: finished with exit status 0"), std::string::npos) << text;
    EXPECT_TRUE(fs::exists(jobs / "mpi-results" / "placement.h5"));
  }

  // A run that fails inside a stage: its exit status comes back through sbatch --wait.
  const auto failing = write_job(jobs, "failing", "candidates = \"NO_SUCH_SET\"");
  r = run_command(fmt::format("{} '{}'", submit, failing));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  const std::string failing_id = r.out.substr(0, r.out.find('\n'));
  text = slurp(jobs / "failing-results" / fmt::format("vsense-failing-{}.log", failing_id));
  EXPECT_NE(text.find("vsense: finished with exit status 2"), std::string::npos) << text;
  EXPECT_NE(text.find("NO_SUCH_SET"), std::string::npos) << text;
}

}  // namespace
