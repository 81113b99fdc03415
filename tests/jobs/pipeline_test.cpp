// `vsense run` end to end on a small job (built-in genset, 10^4 DOF): a rerun skips every
// unchanged stage and leaves the files alone; a changed setting reruns that stage and those
// after it only; a run killed inside a stage leaves the completed stages in place and the next
// run resumes from there with the same results as an uninterrupted run; 1 and 2 MPI ranks give
// the same outputs; several tasks without MPI are refused with a message.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <csignal>
#include <thread>

#include "common/test_support.hpp"
#include "vsense/cluster/communicator.hpp"
#include "vsense/io/hdf5.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::test::run_command;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

/// The job of these tests; `extra` goes at the end (inside [report], or new sections).
std::string job_text(int sensors, const std::string& extra = "") {
  return fmt::format(R"(schema_version = 1
name = "pipeline-test"
[model]
builtin = "genset"
dofs = 10000
[modes]
count = 8
[placement]
sensors = {}
method = "d-optimal"
[simulation]
duration_s = 5
sample_rate_hz = 200
unit = "g"
noise = 0.0001
seed = 7
[report]
plots = false
{})",
                     sensors, extra);
}

std::string write_job(const ScratchDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

/// "name":"status" pairs of the stages in a `vsense run --json` summary.
std::map<std::string, std::string> statuses(const std::string& json) {
  std::map<std::string, std::string> out;
  static const std::regex stage(R"re(\{"name":"([a-z]+)","status":"([a-z ]+)")re");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), stage);
       it != std::sregex_iterator(); ++it) {
    out[(*it)[1]] = (*it)[2];
  }
  return out;
}

/// The datasets that make up the results of the job, compared exactly between two output
/// directories (attributes such as created_at differ by design).
void expect_same_outputs(const fs::path& a, const fs::path& b) {
  const std::vector<std::pair<std::string, std::string>> datasets = {
      {"modes.h5", "/modes/frequencies_hz"},  {"modes.h5", "/modes/shapes"},
      {"modes.h5", "/modes/nodal_stress"},    {"placement.h5", "/placement/node_ids"},
      {"placement.h5", "/placement/criterion"}, {"simulation/run.h5", "/data"},
      {"simulation/truth.h5", "/truth/modal_coordinates"}};
  for (const auto& [file, dataset] : datasets) {
    const vsense::io::hdf5::File fa((a / file).string(), vsense::io::hdf5::File::Mode::read);
    const vsense::io::hdf5::File fb((b / file).string(), vsense::io::hdf5::File::Mode::read);
    const auto va = fa.read_double(dataset);
    const auto vb = fb.read_double(dataset);
    ASSERT_EQ(va.size(), vb.size()) << file << dataset;
    std::size_t differ = 0;
    for (std::size_t i = 0; i < va.size(); ++i) differ += va[i] != vb[i];
    EXPECT_EQ(differ, 0u) << file << ":" << dataset << ": " << differ << " of " << va.size()
                          << " values differ";
  }
}

/// Nothing but the lock file is left in OUTPUT/.vsense after a complete run.
::testing::AssertionResult no_staging_left(const fs::path& out) {
  for (const auto& entry : fs::directory_iterator(out / ".vsense")) {
    if (entry.path().filename() != "lock") {
      return ::testing::AssertionFailure() << "left behind: " << entry.path();
    }
  }
  return ::testing::AssertionSuccess();
}

std::string stage_key(const fs::path& file) {
  const vsense::io::hdf5::File f(file.string(), vsense::io::hdf5::File::Mode::read);
  return f.string_attribute("/", "job_stage_sha256");
}

/// One uninterrupted single-process run of the job, shared by the tests.
class PipelineRun : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    // One thread per process: the multithreaded modal solve is not bit-for-bit the same from
    // one run to the next (last-digit differences), which would hide what these tests check:
    // that resuming, and the number of ranks, change nothing at all.
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    dir_ = std::make_unique<ScratchDir>("pipeline");
    job_ = write_job(*dir_, "job.toml", job_text(4));
    const auto r = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job_,
                                          dir_->file("reference")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    first_json_ = r.out;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static fs::path reference() { return dir_->path() / "reference"; }
  static std::unique_ptr<ScratchDir> dir_;
  static std::string job_, first_json_;
};
std::unique_ptr<ScratchDir> PipelineRun::dir_;
std::string PipelineRun::job_, PipelineRun::first_json_;

TEST_F(PipelineRun, FirstRunRunsEveryStageAndStampsItsOutputs) {
  const auto s = statuses(first_json_);
  EXPECT_EQ(s, (std::map<std::string, std::string>{{"model", "ran"},
                                                   {"modes", "ran"},
                                                   {"placement", "ran"},
                                                   {"simulation", "ran"},
                                                   {"report", "ran"}}))
      << first_json_;
  for (const char* f : {"modes.h5", "placement.h5", "simulation/run.h5", "simulation/truth.h5"}) {
    EXPECT_EQ(stage_key(reference() / f).size(), 64u) << f;
  }
  EXPECT_TRUE(fs::exists(reference() / "report" / "index.html"));
  EXPECT_TRUE(fs::exists(reference() / "modes.xdmf"));
  EXPECT_TRUE(no_staging_left(reference()));
}

TEST_F(PipelineRun, RerunSkipsEveryUnchangedStageAndLeavesTheFilesAlone) {
  const auto before = fs::last_write_time(reference() / "modes.h5");
  const auto archive_before = fs::last_write_time(reference() / "simulation" / "run.h5");
  const auto r = run_vsense(
      fmt::format("run '{}' --output-dir '{}' --json", job_, reference().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [stage, status] : statuses(r.out)) EXPECT_EQ(status, "skipped") << stage;
  EXPECT_EQ(statuses(r.out).size(), 5u) << r.out;
  // The summary still says what the stages took when they ran (recorded in their outputs).
  EXPECT_NE(r.out.find("\"name\":\"modes\",\"status\":\"skipped\",\"detail\":\"unchanged\","
                       "\"backend\":\"cpu"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("modes           skipped          ("), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(reference() / "modes.h5"), before);
  EXPECT_EQ(fs::last_write_time(reference() / "simulation" / "run.h5"), archive_before);
  EXPECT_NE(r.err.find("up to date (inputs and settings unchanged since 20"), std::string::npos)
      << r.err;
}

TEST_F(PipelineRun, AChangedSettingRerunsThatStageAndTheOnesAfterIt) {
  const fs::path out = dir_->path() / "changed";
  fs::copy(reference(), out, fs::copy_options::recursive);
  const auto job = write_job(*dir_, "changed.toml", job_text(5));
  const auto r = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job, out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(statuses(r.out), (std::map<std::string, std::string>{{"model", "skipped"},
                                                                 {"modes", "skipped"},
                                                                 {"placement", "ran"},
                                                                 {"simulation", "ran"},
                                                                 {"report", "ran"}}))
      << r.out;
  const vsense::io::hdf5::File placement((out / "placement.h5").string(),
                                         vsense::io::hdf5::File::Mode::read);
  EXPECT_EQ(placement.read_int64("/placement/node_ids").size(), 5u);
  EXPECT_EQ(stage_key(out / "modes.h5"), stage_key(reference() / "modes.h5"));
  EXPECT_NE(stage_key(out / "placement.h5"), stage_key(reference() / "placement.h5"));
  // A damaged output is not trusted: its stage runs again.
  std::ofstream(out / "placement.h5", std::ios::trunc) << "not HDF5";
  const auto again =
      run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job, out.string()));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(statuses(again.out)["modes"], "skipped") << again.out;
  EXPECT_EQ(statuses(again.out)["placement"], "ran") << again.out;
}

TEST_F(PipelineRun, AKilledRunResumesAfterTheLastCompletedStageWithTheSameResults) {
  const fs::path out = dir_->path() / "killed";
  // Killed (SIGKILL) after the placement stage wrote its outputs, before they were moved in.
  const auto killed = run_command(fmt::format("VSENSE_FAULT_INJECT=kill:placement '{}' run '{}' "
                                              "--output-dir '{}'",
                                              VSENSE_BINARY, job_, out.string()));
  ASSERT_EQ(killed.exit_code, 128 + 9) << "expected death by SIGKILL\n" << killed.err;
  EXPECT_TRUE(fs::exists(out / "modes.h5"));
  EXPECT_FALSE(fs::exists(out / "placement.h5")) << "an output appeared before it was complete";
  EXPECT_TRUE(fs::exists(out / ".vsense" / "stage-placement" / "placement.h5"));

  const auto resumed = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job_,
                                              out.string()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(statuses(resumed.out), (std::map<std::string, std::string>{{"model", "skipped"},
                                                                       {"modes", "skipped"},
                                                                       {"placement", "ran"},
                                                                       {"simulation", "ran"},
                                                                       {"report", "ran"}}))
      << resumed.out;
  EXPECT_NE(resumed.err.find("redoing an interrupted run"), std::string::npos) << resumed.err;
  expect_same_outputs(reference(), out);
  EXPECT_TRUE(no_staging_left(out));
}

TEST_F(PipelineRun, AKillWhileMovingFinishedOutputsIsCompletedWithoutRedoingTheStage) {
  const fs::path out = dir_->path() / "killed-moving";
  // modes.h5 is in place, modes.xdmf not yet.
  const auto killed = run_command(fmt::format("VSENSE_FAULT_INJECT=kill-moving:modes '{}' "
                                              "run '{}' --output-dir '{}'",
                                              VSENSE_BINARY, job_, out.string()));
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;
  EXPECT_TRUE(fs::exists(out / ".vsense" / "stage-modes" / "complete"));
  EXPECT_TRUE(fs::exists(out / "modes.h5"));
  EXPECT_FALSE(fs::exists(out / "modes.xdmf"));
  const auto resumed = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job_,
                                              out.string()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(statuses(resumed.out)["modes"], "resumed") << resumed.out;
  EXPECT_EQ(statuses(resumed.out)["model"], "skipped") << resumed.out;
  EXPECT_EQ(statuses(resumed.out)["placement"], "ran") << resumed.out;
  EXPECT_TRUE(fs::exists(out / "modes.xdmf"));
  EXPECT_NE(resumed.err.find("finished moving the outputs of the interrupted run into place"),
            std::string::npos)
      << resumed.err;
  expect_same_outputs(reference(), out);
  EXPECT_TRUE(no_staging_left(out));
}

TEST_F(PipelineRun, OneAndTwoMpiRanksGiveTheSameOutputs) {
  if (!vsense::cluster::mpi_compiled()) GTEST_SKIP() << "this build has no MPI";
  const std::string mpirun = vsense::test::mpi_launcher(2);
  if (mpirun.empty()) GTEST_SKIP() << "no mpirun on this machine";
  // The modes on the CPU solver: `auto` under mpirun would distribute the eigen-solve over
  // SLEPc, whose modes agree with the CPU's to round-off, not to the bit (tests/drivers). Every
  // other stage must give the same bytes for any rank count.
  const std::string job = write_job(*dir_, "job-cpu-modes.toml",
                                    std::regex_replace(job_text(4), std::regex("count = 8"),
                                                       "count = 8\nbackend = \"cpu\""));
  const fs::path one = dir_->path() / "one-rank";
  ASSERT_EQ(run_vsense(fmt::format("run '{}' --output-dir '{}'", job, one.string())).exit_code,
            0);
  const fs::path out = dir_->path() / "two-ranks";
  // Waiting ranks yield their core (2-core machines run both ranks and the solver threads).
  const auto r = run_command(fmt::format("OMPI_MCA_mpi_yield_when_idle=1 {} '{}' run '{}' "
                                         "--output-dir '{}' --json",
                                         mpirun, VSENSE_BINARY, job, out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ranks\":2"), std::string::npos) << r.out;
  EXPECT_EQ(statuses(r.out).size(), 5u) << "one summary, from rank 0: " << r.out;
  expect_same_outputs(one, out);
  // The keys do not depend on the rank count either: the 1-rank run accepts these outputs.
  const auto again = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job,
                                            out.string()));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  for (const auto& [stage, status] : statuses(again.out)) EXPECT_EQ(status, "skipped") << stage;
}

TEST_F(PipelineRun, SeveralTasksWithoutMpiAreRefused) {
  // What srun without PMI (or a vsense built without MPI) looks like to the process.
  const auto r = run_command(fmt::format("SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=2 '{}' run '{}' "
                                         "--output-dir '{}'",
                                         VSENSE_BINARY, job_, dir_->file("tasks")));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("2 tasks"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_->path() / "tasks" / "modes.h5"));
}

TEST_F(PipelineRun, ASecondRunOnTheSameOutputDirectoryIsRefusedWhileTheFirstRuns) {
  // This process holds the lock as a running vsense would.
  const fs::path lock = reference() / ".vsense" / "lock";
  const int fd = ::open(lock.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_SETLK, &request), 0);
  ASSERT_EQ(::ftruncate(fd, 0), 0);
  ASSERT_EQ(::pwrite(fd, "pid 4242 on node17", 18, 0), 18);
  const auto r = run_vsense(fmt::format("run '{}' --output-dir '{}'", job_, reference().string()));
  ::close(fd);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(reference().string() + " is in use by another vsense run (pid 4242 on "
                                               "node17)"),
            std::string::npos)
      << r.err;
  // Released: the next run goes ahead.
  EXPECT_EQ(run_vsense(fmt::format("run '{}' --output-dir '{}' -q", job_, reference().string()))
                .exit_code,
            0);
}

TEST_F(PipelineRun, DryRunSaysWhatWouldRunAndRunsNothing) {
  const fs::path out = dir_->path() / "dry";
  const auto r = run_vsense(fmt::format("run '{}' --output-dir '{}' --dry-run --json", job_,
                                        out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [stage, status] : statuses(r.out)) EXPECT_EQ(status, "would run") << stage;
  EXPECT_FALSE(fs::exists(out)) << "a dry run created the output directory";
  EXPECT_NE(r.err.find("[2/5] modes: would run (genset.inp comes from an earlier stage)"),
            std::string::npos)
      << r.err;
}

// A study of measured data: a model file, an installed placement, archive files by glob. Its
// stages follow the content of those files: an edited model reruns the modes and what follows.
TEST_F(PipelineRun, MeasuredDataJobFollowsTheContentOfItsInputFiles) {
  const fs::path site = dir_->path() / "site";
  fs::create_directories(site / "archive");
  fs::copy_file(reference() / "genset.inp", site / "model.inp");
  fs::copy_file(reference() / "placement.h5", site / "installed.h5");
  fs::copy_file(reference() / "simulation" / "run.h5", site / "archive" / "day-1.h5");
  const auto job = write_job(*dir_, "measured.toml", R"(schema_version = 1
unavailable_stages = "skip"
output_dir = "measured-results"
[model]
path = "site/model.inp"
[modes]
count = 8
[placement]
file = "site/installed.h5"
[archives]
files = ["site/archive/*.h5"]
[reconstruction]
nodes = "FRAME_TOP"
[report]
plots = false
)");
  auto r = run_vsense(fmt::format("run '{}' --json", job));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto s = statuses(r.out);
  EXPECT_EQ(s.count("model"), 0u) << "a model file needs no model stage: " << r.out;
  EXPECT_EQ(s.count("placement"), 0u) << "an installed placement needs no stage: " << r.out;
  EXPECT_EQ(s["modes"], "ran");
  EXPECT_TRUE(s["reconstruction"] == "ran" || s["reconstruction"] == "not available") << r.out;
  EXPECT_EQ(s["report"], "ran");
  const fs::path out = dir_->path() / "measured-results";
  // The same model as the reference job's: the same modes, bit for bit.
  const vsense::io::hdf5::File a((out / "modes.h5").string(), vsense::io::hdf5::File::Mode::read);
  const vsense::io::hdf5::File b((reference() / "modes.h5").string(),
                                 vsense::io::hdf5::File::Mode::read);
  EXPECT_EQ(a.read_double("/modes/frequencies_hz"), b.read_double("/modes/frequencies_hz"));
  // Unchanged: skipped. An edited model (a comment is enough): the modes are computed again.
  r = run_vsense(fmt::format("run '{}' --json", job));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(statuses(r.out)["modes"], "skipped") << r.out;
  std::ofstream(site / "model.inp", std::ios::app) << "** edited\n";
  r = run_vsense(fmt::format("run '{}' --json", job));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(statuses(r.out)["modes"], "ran") << r.out;
  EXPECT_NE(r.err.find("[1/3] modes: running (inputs or settings changed)"), std::string::npos)
      << r.err;
}

// The reconstruction stage in a job, with 1 and 2 ranks; skipped while this build has no
// implementation of it (exit code 5, not compiled).
TEST_F(PipelineRun, ReconstructionOnOneAndTwoRanksGivesTheSameResults) {
  const fs::path one = dir_->path() / "rec-1";
  fs::copy(reference(), one, fs::copy_options::recursive);
  const auto job = write_job(*dir_, "rec.toml",
                             job_text(4, "[reconstruction]\nnodes = \"FRAME_TOP\"\n"
                                         "[fatigue]\nsn_curve = \"" +
                                             std::string(VSENSE_SOURCE_DIR) +
                                             "/jobs/examples/sn/weld_fat90_two_slope.toml\"\n"));
  const auto r = run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job, one.string()));
  if (r.exit_code == 5) GTEST_SKIP() << "the reconstruction stage is not in this build: " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(statuses(r.out)["reconstruction"], "ran") << r.out;
  EXPECT_EQ(statuses(r.out)["modes"], "skipped") << r.out;
  if (!vsense::cluster::mpi_compiled() || vsense::test::mpi_launcher(2).empty()) {
    GTEST_SKIP() << "no MPI for the 2-rank half";
  }
  const fs::path two = dir_->path() / "rec-2";
  fs::copy(reference(), two, fs::copy_options::recursive);
  const auto r2 = run_command(fmt::format("OMPI_MCA_mpi_yield_when_idle=1 {} '{}' run '{}' "
                                          "--output-dir '{}' --json",
                                          vsense::test::mpi_launcher(2), VSENSE_BINARY, job,
                                          two.string()));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  for (const char* dataset : {"/results/node_ids", "/results/von_mises_max", "/results/damage"}) {
    const vsense::io::hdf5::File a((one / "results.h5").string(),
                                   vsense::io::hdf5::File::Mode::read);
    const vsense::io::hdf5::File b((two / "results.h5").string(),
                                   vsense::io::hdf5::File::Mode::read);
    EXPECT_EQ(a.read_double(dataset), b.read_double(dataset)) << dataset;
  }
}

}  // namespace

namespace {

// A real kill -9 in the middle of the reconstruction (when its first checkpoint is on disk),
// then a rerun: the completed stages are skipped, the reconstruction continues from its
// checkpoint, and the results are those of an uninterrupted run, bit for bit. Slow: it needs a
// reconstruction long enough to be caught in the middle.
TEST(PipelineSlow, KilledInTheReconstructionResumesFromItsCheckpoint) {
  setenv("OMP_NUM_THREADS", "1", 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  ScratchDir dir("pipeline-slow");
  const std::string extra = fmt::format(
      "[reconstruction]\nnodes = \"FRAME_TOP\"\ncheckpoint_interval_s = 0.001\n[fatigue]\n"
      "sn_curve = \"{}/jobs/examples/sn/weld_fat90_two_slope.toml\"\n",
      VSENSE_SOURCE_DIR);
  std::string text = job_text(4, extra);
  text.replace(text.find("duration_s = 5"), 14, "duration_s = 1800");
  const auto job = write_job(dir, "job.toml", text);
  const auto clean = run_vsense(fmt::format("run '{}' --output-dir '{}' -q", job,
                                            dir.file("clean")));
  ASSERT_EQ(clean.exit_code, 0) << clean.err;

  const fs::path out = dir.path() / "killed";
  const fs::path state =
      out / ".vsense" / "stage-reconstruction" / "results.h5.checkpoint" / "rank-0-of-1.state";
  ASSERT_EQ(run_command(fmt::format("( '{}' run '{}' --output-dir '{}' -q >/dev/null 2>&1 & "
                                    "echo $! > '{}' )",
                                    VSENSE_BINARY, job, out.string(), dir.file("pid")))
                .exit_code,
            0);
  long pid = 0;
  std::ifstream(dir.file("pid")) >> pid;
  ASSERT_GT(pid, 1);
  bool caught = false;
  for (int attempt = 0; attempt < 6000 && !caught; ++attempt) {  // at most 10 minutes
    if (fs::exists(state)) {
      caught = ::kill(static_cast<pid_t>(pid), SIGKILL) == 0;
      break;
    }
    if (::kill(static_cast<pid_t>(pid), 0) != 0) break;  // finished
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Wait until it is gone (or a zombie nobody reaps).
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string pid_field, name, status;
    if (!(stat >> pid_field >> name >> status) || status == "Z") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!caught) GTEST_SKIP() << "the run finished before its first checkpoint: nothing to resume";
  EXPECT_FALSE(fs::exists(out / "results.h5"));

  const auto resumed =
      run_vsense(fmt::format("run '{}' --output-dir '{}' --json", job, out.string()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(statuses(resumed.out)["simulation"], "skipped") << resumed.out;
  EXPECT_EQ(statuses(resumed.out)["reconstruction"], "resumed") << resumed.out;
  for (const char* dataset : {"/results/von_mises_max", "/results/damage"}) {
    const vsense::io::hdf5::File a((out / "results.h5").string(),
                                   vsense::io::hdf5::File::Mode::read);
    const vsense::io::hdf5::File b((dir.path() / "clean" / "results.h5").string(),
                                   vsense::io::hdf5::File::Mode::read);
    EXPECT_EQ(a.read_double(dataset), b.read_double(dataset)) << dataset;
  }
}

}  // namespace
