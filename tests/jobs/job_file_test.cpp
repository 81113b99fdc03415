// Job files: what a valid file sets, and every kind of problem reported with file, line and key
// (unknown keys, wrong types, bad values, missing files, conflicting sections, syntax errors),
// all of them at once; `vsense run` refuses a bad file before creating anything; the example
// jobs of jobs/examples are valid.
#include "vsense/jobs/job_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::InputError;
using vsense::jobs::JobSpec;
using vsense::jobs::parse_job;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

/// The message of the InputError parse_job throws (fails the test when it does not throw).
std::string problems(const std::string& text, const std::string& directory = "/tmp") {
  try {
    parse_job(text, "job.toml", directory);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError for:\n" << text;
  return "";
}

constexpr const char* minimal = R"(schema_version = 1
[model]
builtin = "genset"
dofs = 20000
)";

TEST(JobFile, MinimalJobGetsTheDefaults) {
  const JobSpec job = parse_job(minimal, "study.toml", "/data/jobs");
  EXPECT_EQ(job.model.builtin, "genset");
  EXPECT_EQ(job.model.dofs, 20000);
  EXPECT_EQ(job.units, "SI");
  EXPECT_EQ(job.backend, "auto");
  EXPECT_EQ(job.modes.n_modes, 20);
  EXPECT_TRUE(job.modes.sturm_check);
  EXPECT_FALSE(job.placement.enabled);
  EXPECT_FALSE(job.simulation.enabled);
  EXPECT_FALSE(job.reconstruction.enabled);
  EXPECT_FALSE(job.report.enabled);
  EXPECT_EQ(job.output_dir, "/data/jobs/study-results");
}

TEST(JobFile, FullJobSetsEverySection) {
  ScratchDir dir("jobfile-full");
  std::ofstream(dir.file("a.h5")) << "x";
  std::ofstream(dir.file("b.h5")) << "x";
  std::ofstream(dir.file("welds.txt")) << "1\n2\n";
  fs::copy_file(vsense::test::data_path("../../jobs/examples/sn/ec3_71.toml"), dir.file("sn.toml"));
  const JobSpec job = parse_job(R"(schema_version = 1
name = "frame study"
output_dir = "out"
units = "SI"
backend = "cuda"
[model]
builtin = "genset"
[modes]
backend = "cpu"
count = 30
fmax_hz = 200.0
sturm_check = false
[placement]
sensors = 16
compare = ["efi", "d-optimal", "two-phase"]
use = "d-optimal"
min_distance = 0.25
exclude = ["FIXED"]
[archives]
files = ["*.h5"]
gaps = "error"
[reconstruction]
nodes = "welds.txt"
band_hz = [2.0, 150.0]
history = true
[fatigue]
sn_curve = "sn.toml"
equivalent = "max-principal"
[report]
worst_nodes = 8
)",
                                "job.toml", dir.path().string());
  EXPECT_EQ(job.name, "frame study");
  EXPECT_EQ(job.output_dir, (dir.path() / "out").string());
  EXPECT_EQ(job.backend, "cuda");
  EXPECT_EQ(job.modes_backend, "cpu");
  EXPECT_EQ(job.placement_backend, "");
  EXPECT_EQ(job.modes.n_modes, 30);
  EXPECT_DOUBLE_EQ(job.modes.fmax_hz, 200.0);
  EXPECT_FALSE(job.modes.sturm_check);
  EXPECT_TRUE(job.placement.compare);
  EXPECT_EQ(job.placement.methods, (std::vector<std::string>{"efi", "d-optimal", "two-phase"}));
  EXPECT_EQ(job.placement.use, "d-optimal");
  EXPECT_EQ(job.placement.settings.sensors, 16u);
  EXPECT_DOUBLE_EQ(job.placement.settings.min_distance, 0.25);
  EXPECT_EQ(job.placement.settings.exclude, std::vector<std::string>{"FIXED"});
  ASSERT_EQ(job.archives.files.size(), 2u);
  EXPECT_EQ(job.archives.files[0], dir.file("a.h5"));
  EXPECT_EQ(job.reconstruction.request.gaps, "error");
  EXPECT_EQ(job.reconstruction.request.nodes, dir.file("welds.txt"));
  EXPECT_DOUBLE_EQ(job.reconstruction.request.band_high_hz, 150.0);
  EXPECT_TRUE(job.reconstruction.request.history);
  EXPECT_EQ(job.fatigue.sn_curve, dir.file("sn.toml"));
  EXPECT_EQ(job.fatigue.equivalent, "max-principal");
  EXPECT_EQ(job.report.worst_nodes, 8);
}

TEST(JobFile, UnknownKeysNameFileLineAndKey) {
  const std::string e = problems(R"(schema_version = 1
[model]
builtin = "genset"
[modes]
cuont = 12
[placment]
sensors = 4
)");
  EXPECT_NE(e.find("job.toml:5: modes.cuont: unknown key (known here: count"), std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:6: placment: unknown key"), std::string::npos) << e;
}

TEST(JobFile, WrongTypesAndBadValuesAreNamed) {
  const std::string e = problems(R"(schema_version = 1
units = "imperial"
[model]
builtin = "genset"
dofs = 10
[modes]
count = 0
sturm_check = "yes"
[placement]
sensors = "12"
method = "best"
)");
  EXPECT_NE(e.find("job.toml:2: units: \"imperial\" is not one of SI, mm-t-s"), std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:5: model.dofs: must be in [10000, 10000000], got 10"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:7: modes.count: must be in [1, 100000], got 0"), std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:8: modes.sturm_check: expected true or false, got a string"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:10: placement.sensors: expected an integer, got a string"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:11: placement.method: \"best\" is not one of efi, efi-dpr"),
            std::string::npos)
      << e;
  // All of them at once, counted, in line order.
  EXPECT_NE(e.find("job.toml: 6 problems, nothing was run:"), std::string::npos) << e;
  EXPECT_LT(e.find("job.toml:2:"), e.find("job.toml:11:")) << e;
}

TEST(JobFile, MissingFilesAreNamedWithTheirResolvedPath) {
  ScratchDir dir("jobfile-missing");
  const std::string e = problems(R"(schema_version = 1
[model]
path = "models/frame.inp"
[archives]
files = ["data/2024-05-*.h5"]
[reconstruction]
nodes = "hotspots.txt"
[fatigue]
sn_curve = "curves/fat90.toml"
)",
                                 dir.path().string());
  EXPECT_NE(e.find("job.toml:3: model.path: no such model file: " + dir.file("models/frame.inp")),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:5: archives.files: \"data/2024-05-*.h5\" matches no file"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:7: reconstruction.nodes: hotspots.txt is neither a file nor a node "
                   "set name"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("job.toml:9: fatigue.sn_curve: no such S-N curve file: " +
                   dir.file("curves/fat90.toml")),
            std::string::npos)
      << e;
}

TEST(JobFile, ABadSnCurveIsReportedWithItsOwnPlace) {
  ScratchDir dir("jobfile-sn");
  std::ofstream(dir.file("bad.toml")) << "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\n";
  const std::string e = problems(R"(schema_version = 1
[model]
builtin = "genset"
[simulation]
sensor_set = "FRAME_TOP"
[reconstruction]
[fatigue]
sn_curve = "bad.toml"
)",
                                 dir.path().string());
  EXPECT_NE(e.find("job.toml:8: fatigue.sn_curve: " + dir.file("bad.toml")), std::string::npos)
      << e;
  EXPECT_NE(e.find("reference_range: missing"), std::string::npos) << e;
}

TEST(JobFile, ConflictingAndIncompleteSectionsAreReported) {
  ScratchDir dir("jobfile-conflict");
  std::ofstream(dir.file("a.h5")) << "x";
  std::ofstream(dir.file("m.inp")) << "*NODE\n";
  const std::string e = problems(R"(schema_version = 1
[model]
path = "m.inp"
builtin = "genset"
[placement]
method = "efi"
compare = ["efi", "qr"]
[simulation]
duration_s = 10
[archives]
files = ["a.h5"]
[fatigue]
sn_curve = "a.h5"
)",
                                 dir.path().string());
  EXPECT_NE(e.find("model.builtin: give path or builtin, not both"), std::string::npos) << e;
  EXPECT_NE(e.find("placement.sensors: missing"), std::string::npos) << e;
  EXPECT_NE(e.find("placement.compare: give method (one) or compare (several), not both"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("archives.files: the job has a [simulation] too"), std::string::npos) << e;
  EXPECT_NE(e.find("fatigue.sn_curve: fatigue is part of the reconstruction"), std::string::npos)
      << e;
}

TEST(JobFile, SchemaVersionIsRequiredAndChecked) {
  EXPECT_NE(problems("[model]\nbuiltin = \"genset\"\n")
                .find("job.toml:1: schema_version: missing (schema_version = 1"),
            std::string::npos);
  EXPECT_NE(problems("schema_version = 2\n[model]\nbuiltin = \"genset\"\n")
                .find("job.toml:1: schema_version: this vsense reads schema_version 1, the file "
                      "has 2"),
            std::string::npos);
}

TEST(JobFile, SyntaxErrorsNameLineAndColumn) {
  const std::string e = problems("schema_version = 1\n[model]\nbuiltin = genset\n");
  EXPECT_NE(e.find("job.toml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
}

TEST(JobFile, CompareAllMeansEveryMethodAndUseMustBeCompared) {
  const JobSpec job = parse_job(R"(schema_version = 1
[model]
builtin = "genset"
[placement]
sensors = 4
compare = "all"
)",
                                "job.toml", "/tmp");
  EXPECT_EQ(job.placement.methods.size(), 8u);
  EXPECT_EQ(job.placement.use, job.placement.methods.front());
  const std::string e = problems(R"(schema_version = 1
[model]
builtin = "genset"
[placement]
sensors = 4
compare = ["efi", "qr"]
use = "two-phase"
)");
  EXPECT_NE(e.find("job.toml:7: placement.use: \"two-phase\" is not one of the compared methods "
                   "(efi, qr)"),
            std::string::npos)
      << e;
}

TEST(JobFile, RunRefusesABadFileBeforeCreatingAnything) {
  ScratchDir dir("jobfile-cli");
  const std::string job = dir.file("bad.toml");
  std::ofstream(job) << "schema_version = 1\noutput_dir = \"out\"\n[model]\nbuiltin = \"genset\"\n"
                        "[modes]\ncount = -3\nfmax = 100\n";
  const auto r = run_vsense("run '" + job + "'");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.toml:6: modes.count: must be in [1, 100000], got -3"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.toml:7: modes.fmax: unknown key"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

TEST(JobFile, ExampleJobsAreValid) {
  const fs::path examples = fs::path(VSENSE_SOURCE_DIR) / "jobs" / "examples";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".toml") continue;
    const auto r = run_vsense("run --check '" + entry.path().string() + "'");
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.err;
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

}  // namespace
