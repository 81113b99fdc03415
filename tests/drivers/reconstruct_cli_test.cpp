// `vsense reconstruct` end to end on the built-in genset: simulated archives (with the true modal
// response) in, stresses at unmeasured nodes out and compared with the truth; identical results
// for any FFT blocking of the files, any MPI rank count and after a kill and --resume; dropouts
// re-derive the expansion; bad inputs give one-line errors and leave no output behind.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "common/test_support.hpp"
#include "vsense/io/archive.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/io/modes_reader.hpp"
#include "vsense/io/truth_file.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::test::run_command;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

std::string q(const std::string& path) { return "'" + path + "'"; }

// The genset (1e4 DOF, 14 modes), a d-optimal placement of 8 triaxial sensors, and a simulated
// 30 s at 1 kHz in three files, made once for the whole file.
class ReconstructCommand : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ScratchDir>("reconstruct-cli");
    const auto model = dir_->file("genset.inp");
    auto r = run_vsense("model generate genset --dofs 1e4 --out " + q(model) + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_vsense("modes " + q(model) + " --modes 14 --out " + q(modes()) + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_vsense("place " + q(modes()) + " --sensors 8 --method d-optimal --out " +
                   q(placement()) + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_vsense("simulate " + q(modes()) + " --placement " + q(placement()) +
                   " --unit g --dtype float64 --sample-rate 1000 --duration 30 --segment-s 12 "
                   "--broadband-band 5:300 --seed 5 --out " +
                   q(dir_->file("run.h5")) + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream(curve()) << "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\n"
                              "reference_range = 1.0\nreference_cycles = 1.0e6\nslope = 3.0\n";
    // Output nodes: every 40th node of the model.
    const vsense::io::ModesReader reader(modes());
    std::ofstream list(nodes());
    list << "# output nodes\n";
    for (std::size_t j = 3; j < reader.n_nodes(); j += 40) list << reader.node_ids()[j] << "\n";
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string modes() { return dir_->file("modes.h5"); }
  static std::string placement() { return dir_->file("placement.h5"); }
  static std::string nodes() { return dir_->file("nodes.txt"); }
  static std::string truth() { return dir_->file("run-truth.h5"); }
  static std::string archives() {
    return q(dir_->file("run-002.h5")) + " " + q(dir_->file("run-000.h5")) + " " +
           q(dir_->file("run-001.h5"));
  }
  /// A Basquin curve without a cut-off, low enough that every cycle of the simulation damages.
  static std::string curve() { return dir_->file("curve.toml"); }
  static std::unique_ptr<ScratchDir> dir_;
};

std::unique_ptr<ScratchDir> ReconstructCommand::dir_;

struct Results {
  std::vector<std::int64_t> node_ids;
  std::vector<double> vm_max, vm_time, damage, cycles;
  double settle_s = 0.0;
};

Results read_results(const std::string& path) {
  const vsense::io::hdf5::File file(path, vsense::io::hdf5::File::Mode::read);
  Results r;
  EXPECT_EQ(file.string_attribute("/", "format"), "vsense-results");
  r.node_ids = file.read_int64("/results/node_ids");
  r.vm_max = file.read_double("/results/von_mises_max");
  r.vm_time = file.read_double("/results/von_mises_max_time_s");
  if (file.exists("/results/damage")) {
    r.damage = file.read_double("/results/damage");
    r.cycles = file.read_double("/results/cycles");
  }
  r.settle_s = file.double_attribute("/results", "settle_s");
  return r;
}

TEST_F(ReconstructCommand, RecoversTheSimulatedStressesAtUnmeasuredNodes) {
  ScratchDir out("reconstruct-truth");
  const auto results = out.file("results.h5");
  const auto r = run_vsense("reconstruct " + q(modes()) + " " + archives() + " --nodes " +
                            q(nodes()) + " --history --sn-curve " + q(curve()) + " --out " +
                            q(results) + " --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"command\":\"reconstruct\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"n_channels\":24"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"n_segments\":1"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(out.file("results.xdmf")));
  EXPECT_FALSE(fs::exists(results + ".partial"));
  EXPECT_FALSE(fs::exists(results + ".checkpoint"));

  const vsense::io::hdf5::File file(results, vsense::io::hdf5::File::Mode::read);
  const auto node_ids = file.read_int64("/results/node_ids");
  const auto p = node_ids.size();
  const auto n = static_cast<std::size_t>(file.int_attribute("/results", "n_samples"));
  ASSERT_EQ(n, 30000u);
  const double settle = file.double_attribute("/results", "settle_s");
  const auto settle_samples = static_cast<std::size_t>(std::llround(settle * 1000.0));
  ASSERT_LT(2 * settle_samples, n / 2);
  EXPECT_EQ(file.shape("/results/stress"), (std::vector<hsize_t>{n, p, 6}));
  const auto stress = file.read_double("/results/stress");  // float32 on disk

  // The truth: sigma = Psi q with the simulated q and the modal stresses of the modes file.
  const vsense::io::TruthReader truth_file(truth());
  const auto true_q = truth_file.modal_coordinates(0, static_cast<std::int64_t>(n));
  const auto m = truth_file.info().n_modes();
  const vsense::io::ModesReader reader(modes());
  std::vector<std::size_t> indices;
  for (const auto id : node_ids) indices.push_back(static_cast<std::size_t>(reader.node_index(id)));
  const auto psi = reader.stresses(truth_file.info().mode_indices, indices);  // [m, p, 6]
  double worst = 0.0, error_sq_all = 0.0, truth_sq_all = 0.0;
  for (std::size_t j = 0; j < p; ++j) {
    double error_sq = 0.0, truth_sq = 0.0;
    for (std::size_t t = settle_samples; t < n - settle_samples; ++t) {
      for (int c = 0; c < 6; ++c) {
        double expected = 0.0;
        for (std::size_t k = 0; k < m; ++k) expected += psi[(k * p + j) * 6 + static_cast<std::size_t>(c)] * true_q[t * m + k];
        const double got = stress[(t * p + j) * 6 + static_cast<std::size_t>(c)];
        error_sq += (got - expected) * (got - expected);
        truth_sq += expected * expected;
      }
    }
    worst = std::max(worst, std::sqrt(error_sq / truth_sq));
    error_sq_all += error_sq;
    truth_sq_all += truth_sq;
  }
  const double overall = std::sqrt(error_sq_all / truth_sq_all);
  std::printf("stress error vs truth: overall %.3e, worst node %.3e (RMS over time and "
              "components)\n",
              overall, worst);
  // Noise-free float64 channels and the simulated modes: what is left is the response outside
  // the integration band (the broadband forces' skirt below 5 Hz, the quasi-static response
  // below the band's low corner of 2.2 Hz) and the filter's 1e-5 in-band accuracy. Measured:
  // 2.6e-4 overall, 9.3e-4 at the worst node.
  EXPECT_LT(overall, 1e-3);
  EXPECT_LT(worst, 3e-3);

  // The von Mises maxima are those of the history's counted samples.
  const auto res = read_results(results);
  for (std::size_t j = 0; j < p; ++j) {
    double vm = 0.0;
    for (std::size_t t = settle_samples; t < n - settle_samples; ++t) {
      const double* s = stress.data() + (t * p + j) * 6;
      const double v = std::sqrt(0.5 * ((s[0] - s[1]) * (s[0] - s[1]) + (s[1] - s[2]) * (s[1] - s[2]) +
                                        (s[2] - s[0]) * (s[2] - s[0])) +
                                 3.0 * (s[3] * s[3] + s[4] * s[4] + s[5] * s[5]));
      vm = std::max(vm, v);
    }
    EXPECT_NEAR(res.vm_max[j], vm, 1e-6 * vm) << "node " << node_ids[j];
  }
  ASSERT_EQ(res.cycles.size(), p);
  for (const double c : res.cycles) EXPECT_GT(c, 0.0);
}

TEST_F(ReconstructCommand, BlockingAndRankCountDoNotChangeTheResults) {
  ScratchDir out("reconstruct-ranks");
  const std::string common = " --sn-curve " + q(curve()) + " --nodes " + q(nodes()) + " -q";
  auto r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " --out " +
                      q(out.file("one.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto one = read_results(out.file("one.h5"));
  // Another FFT length: other block boundaries, the same filter: equal to round-off.
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common +
                 " --fft-size 65536 --out " + q(out.file("fft.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto fft = read_results(out.file("fft.h5"));
  for (std::size_t j = 0; j < one.vm_max.size(); ++j) {
    EXPECT_NEAR(fft.vm_max[j], one.vm_max[j], 1e-9 * one.vm_max[j]);
    EXPECT_NEAR(fft.cycles[j], one.cycles[j], 0.01 * one.cycles[j] + 2.0);
  }
  if (vsense::test::mpi_launcher(1).empty()) GTEST_SKIP() << "no mpirun: rank counts not checked";
  for (int ranks : {2, 3}) {
    const auto path = out.file(fmt::format("ranks{}.h5", ranks));
    r = run_command(vsense::test::mpi_launcher(ranks) + " " + VSENSE_BINARY + " reconstruct " +
                    q(modes()) + " " + archives() + common + " --out " + q(path));
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto many = read_results(path);
    // Bit for bit: the same block grid, exact fatigue sums, an exact rainflow merge.
    EXPECT_EQ(many.vm_max, one.vm_max) << ranks << " ranks";
    EXPECT_EQ(many.vm_time, one.vm_time) << ranks << " ranks";
    EXPECT_EQ(many.damage, one.damage) << ranks << " ranks";
    EXPECT_EQ(many.cycles, one.cycles) << ranks << " ranks";
  }
  // Histories: every rank writes its own rows of the same file; the bytes equal one rank's.
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " --history --out " +
                 q(out.file("history1.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_command(vsense::test::mpi_launcher(3) + " " + VSENSE_BINARY + " reconstruct " +
                  q(modes()) + " " + archives() + common + " --history --out " +
                  q(out.file("history3.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const vsense::io::hdf5::File h1(out.file("history1.h5"), vsense::io::hdf5::File::Mode::read);
  const vsense::io::hdf5::File h3(out.file("history3.h5"), vsense::io::hdf5::File::Mode::read);
  for (const char* dataset : {"/results/modal_coordinates", "/results/displacement", "/results/stress"}) {
    EXPECT_EQ(h3.read_double(dataset), h1.read_double(dataset)) << dataset;
  }
}

TEST_F(ReconstructCommand, KilledRunResumesToTheSameResults) {
  ScratchDir out("reconstruct-resume");
  const std::string common = " --sn-curve " + q(curve()) + " --nodes " + q(nodes()) +
                             " --history --fft-size 16384 -q";
  auto r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " --out " +
                      q(out.file("whole.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = out.file("killed.h5");
  // Checkpoint after every block, kill -9 once a checkpoint exists, then resume.
  const pid_t child = fork();
  if (child == 0) {
    const std::string command = std::string(VSENSE_BINARY) + " reconstruct " + q(modes()) + " " +
                                archives() + common + " --checkpoint-interval 0.000001 --out " +
                                q(results) + " 2>/dev/null";
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto checkpoint = fs::path(results + ".checkpoint") / "rank-0-of-1.state";
  bool killed = false;
  for (int i = 0; i < 60000 && !killed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (fs::exists(checkpoint)) {
      kill(child, SIGKILL);
      killed = true;
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(killed) << "no checkpoint appeared";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  EXPECT_FALSE(fs::exists(results));
  EXPECT_TRUE(fs::exists(results + ".partial"));
  // A resume with other settings is refused, and leaves the checkpoint for the right one.
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common +
                 " --equivalent von-mises --resume --out " + q(results));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("belongs to other inputs or settings"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(results));
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " --resume --json --out " +
                 q(results));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"resumed\":true"), std::string::npos) << r.out;
  const auto whole = read_results(out.file("whole.h5"));
  const auto resumed = read_results(results);
  EXPECT_EQ(resumed.vm_max, whole.vm_max);
  EXPECT_EQ(resumed.damage, whole.damage);
  EXPECT_EQ(resumed.cycles, whole.cycles);
  const vsense::io::hdf5::File a(out.file("whole.h5"), vsense::io::hdf5::File::Mode::read);
  const vsense::io::hdf5::File b(results, vsense::io::hdf5::File::Mode::read);
  EXPECT_EQ(a.read_double("/results/stress"), b.read_double("/results/stress"));
  EXPECT_EQ(a.read_double("/results/modal_coordinates"), b.read_double("/results/modal_coordinates"));
  EXPECT_FALSE(fs::exists(results + ".checkpoint"));
}

// Writes a copy of the simulated archive with NaN dropouts: channels 0-2 (one sensor) from 5 s
// to 8 s, and every channel from 20 s to 20.5 s.
std::string write_dropout_archive(const std::string& dir, const std::string& modes_path,
                                  const std::vector<std::string>& sources) {
  vsense::io::Archive source(sources);
  vsense::io::ArchiveWriterOptions options;
  options.sample_rate_hz = source.sample_rate_hz();
  options.start_time = source.segments()[0].start_time;
  options.channels = source.channels();
  for (auto& c : options.channels) c.unit = "m/s^2";
  options.sample_type = vsense::io::SampleType::float64;
  const auto path = (fs::path(dir) / "dropouts.h5").string();
  vsense::io::ArchiveWriter writer(path, options);
  const std::int64_t n = source.n_samples(0);
  const std::size_t nc = source.n_channels();
  for (std::int64_t t0 = 0; t0 < n; t0 += 1000) {
    auto block = source.read_chunk(0, t0, 1000);
    for (std::int64_t i = 0; i < 1000; ++i) {
      const std::int64_t t = t0 + i;
      for (std::size_t c = 0; c < nc; ++c) {
        if ((t >= 5000 && t < 8000 && c < 3) || (t >= 20000 && t < 20500)) {
          block[static_cast<std::size_t>(i) * nc + c] = std::nan("");
        }
      }
    }
    writer.append(block.data(), 1000);
  }
  writer.commit();
  (void)modes_path;
  return path;
}

TEST_F(ReconstructCommand, DropoutsReDeriveTheExpansionAndUnobservableStretchesAreExcluded) {
  ScratchDir out("reconstruct-dropouts");
  const auto archive = write_dropout_archive(
      out.path().string(), modes(),
      {dir_->file("run-000.h5"), dir_->file("run-001.h5"), dir_->file("run-002.h5")});
  const std::string common = " --nodes " + q(nodes()) + " --history";
  auto r = run_vsense("reconstruct " + q(modes()) + " " + q(archive) + common + " --json --out " +
                      q(out.file("dropouts-results.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Both changes of the live set are logged, with the live count; the all-dropped stretch warns.
  EXPECT_NE(r.err.find("21 of 24 channels live"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0 of 24 channels live"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("could not be reconstructed"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"dropout_samples\":" + std::to_string(3000 * 3 + 500 * 24)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"channel_set_changes\":4"), std::string::npos) << r.out;
  // Where 21 channels are left the 14 modes are still identified: the stresses there equal
  // those of the complete archive (noise-free data) to round-off of the expansion.
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " -q --out " +
                 q(out.file("full.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const vsense::io::hdf5::File with(out.file("dropouts-results.h5"), vsense::io::hdf5::File::Mode::read);
  const vsense::io::hdf5::File full(out.file("full.h5"), vsense::io::hdf5::File::Mode::read);
  const auto qa = with.read_double("/results/modal_coordinates");
  const auto qb = full.read_double("/results/modal_coordinates");
  ASSERT_EQ(qa.size(), qb.size());
  const std::size_t m = 14;
  double scale = 0.0;
  for (const double v : qb) scale = std::max(scale, std::abs(v));
  for (std::size_t t = 6000; t < 7000; ++t) {
    for (std::size_t k = 0; k < m; ++k) {
      ASSERT_NEAR(qa[t * m + k], qb[t * m + k], 1e-7 * scale) << "sample " << t;
    }
  }
  // The counted samples leave out the unobservable half second and a settle time on each side.
  const double settle = with.double_attribute("/results", "settle_s");
  const double excluded = with.double_attribute("/results", "excluded_samples");
  const double expected = 2 * std::llround(settle * 1000) + 500 + 2 * std::llround(settle * 1000);
  EXPECT_NEAR(excluded, expected, 2.0);
  const auto dropouts = with.read_int64("/results/channels/dropout_samples");
  EXPECT_EQ(dropouts[0], 3500);
  EXPECT_EQ(dropouts[5], 500);
  // The same archive with --unobservable error: one line naming the file and the time.
  r = run_vsense("reconstruct " + q(modes()) + " " + q(archive) +
                 " --unobservable error -q --out " + q(out.file("refused.h5")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("dropouts.h5 at 2024-01-01T00:00:20Z"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out.file("refused.h5")));
}

// One-line errors, exit code 2, no output file.
void expect_refused(const std::string& arguments, const std::string& fragment,
                    const std::string& out_path) {
  const auto r = run_vsense(arguments + " --out " + q(out_path));
  EXPECT_EQ(r.exit_code, 2) << arguments << "\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  int lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1) << r.err;
  EXPECT_FALSE(fs::exists(out_path));
}

TEST_F(ReconstructCommand, BadInputsAreOneLineErrorsWithoutOutput) {
  ScratchDir out("reconstruct-errors");
  const auto o = out.file("results.h5");
  const std::string base = "reconstruct -q " + q(modes()) + " ";
  // A truncated archive file.
  {
    const auto source = dir_->file("run-000.h5");
    const auto truncated = out.file("truncated.h5");
    fs::copy_file(source, truncated);
    fs::resize_file(truncated, fs::file_size(source) / 2);
    expect_refused(base + q(truncated), "truncated.h5", o);
  }
  // Not an HDF5 file at all.
  {
    std::ofstream(out.file("text.h5")) << "not hdf5\n";
    expect_refused(base + q(out.file("text.h5")), "not an HDF5 file", o);
  }
  // A channel on a node that is not in the model.
  {
    vsense::io::ArchiveWriterOptions options;
    options.sample_rate_hz = 1000.0;
    options.start_time = "2024-01-01T00:00:00Z";
    options.channels = {{"ghost", 99999999, {1.0, 0.0, 0.0}, "m/s^2"}};
    vsense::io::ArchiveWriter writer(out.file("ghost.h5"), options);
    std::vector<double> zeros(1000, 0.0);
    writer.append(zeros.data(), 1000);
    writer.commit();
    expect_refused(base + q(out.file("ghost.h5")), "node 99999999, which is not a node of the model", o);
  }
  // A wrong unit string in the channel table.
  {
    const auto bad = out.file("unit.h5");
    fs::copy_file(dir_->file("run-000.h5"), bad);
    {
      vsense::io::hdf5::File file(bad, vsense::io::hdf5::File::Mode::update);
      std::vector<std::string> units(24, "g");
      units[4] = "furlongs/fortnight^2";
      H5Ldelete(file.id(), "/channels/unit", H5P_DEFAULT);
      file.write_strings("/channels/unit", units);
      file.close();
    }
    expect_refused(base + q(bad), "furlongs/fortnight^2", o);
  }
  // Sample-rate mismatch between files.
  {
    const auto other = out.file("rate.h5");
    fs::copy_file(dir_->file("run-001.h5"), other);
    {
      vsense::io::hdf5::File file(other, vsense::io::hdf5::File::Mode::update);
      H5Adelete(file.id(), "sample_rate_hz");
      file.set_attribute("/", "sample_rate_hz", 999.0);
      file.close();
    }
    expect_refused(base + q(dir_->file("run-000.h5")) + " " + q(other), "rate.h5", o);
  }
  // A gap with --gaps error names both files.
  expect_refused(base + q(dir_->file("run-000.h5")) + " " + q(dir_->file("run-002.h5")) +
                     " --gaps error",
                 "run-002.h5", o);
  // Impossible requests.
  expect_refused(base + archives() + " --modes 30", "has only 14 modes", o);
  expect_refused(base + archives() + " --band 10:900", "--band 10:900", o);
  expect_refused(base + archives() + " --nodes NO_SUCH_SET", "NO_SUCH_SET", o);
  expect_refused(base + archives() + " --sn-curve " + q(out.file("missing.toml")), "missing.toml", o);
  expect_refused(base + archives() + " --equivalent tresca", "tresca", o);
}

TEST_F(ReconstructCommand, CudaBackendAgreesWithTheCpuOrSaysWhyNot) {
  ScratchDir out("reconstruct-cuda");
  const std::string common = " --sn-curve " + q(curve()) + " --nodes " + q(nodes()) + " -q";
  auto r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common +
                      " --backend cuda --out " + q(out.file("cuda.h5")));
  if (r.exit_code == 5 || r.exit_code == 6) {
    // No CUDA in this build (5) or no usable device (6): one line saying so, no output.
    EXPECT_NE(r.err.find("CUDA"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out.file("cuda.h5")));
    GTEST_SKIP() << "no usable CUDA device: " << r.err;
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vsense("reconstruct " + q(modes()) + " " + archives() + common + " --backend cpu --out " +
                 q(out.file("cpu.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto gpu = read_results(out.file("cuda.h5"));
  const auto cpu = read_results(out.file("cpu.h5"));
  for (std::size_t j = 0; j < cpu.vm_max.size(); ++j) {
    EXPECT_NEAR(gpu.vm_max[j], cpu.vm_max[j], 1e-11 * cpu.vm_max[j]) << j;
    EXPECT_NEAR(gpu.damage[j], cpu.damage[j], 1e-9 * cpu.damage[j]) << j;
  }
}

// Placement under mpirun (candidates shared between the ranks in chunks of 256): the same
// sensors, in the same order, with the same criterion, as one process.
TEST_F(ReconstructCommand, PlacementUnderMpiEqualsOneProcess) {
  if (vsense::test::mpi_launcher(1).empty()) GTEST_SKIP() << "no mpirun";
  ScratchDir out("place-mpi");
  for (const std::string method : {"d-optimal", "two-phase", "efi"}) {
    const std::string common = " place " + q(modes()) + " --sensors 6 --method " + method +
                               " --scoring-chunk 256 -q --out ";
    auto r = run_vsense(common + q(out.file(method + "-1.h5")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_command(vsense::test::mpi_launcher(3) + " " + VSENSE_BINARY + common +
                    q(out.file(method + "-3.h5")));
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const vsense::io::hdf5::File one(out.file(method + "-1.h5"), vsense::io::hdf5::File::Mode::read);
    const vsense::io::hdf5::File three(out.file(method + "-3.h5"), vsense::io::hdf5::File::Mode::read);
    EXPECT_EQ(three.read_int64("/placement/node_ids"), one.read_int64("/placement/node_ids")) << method;
    EXPECT_EQ(three.read_double("/placement/criterion"), one.read_double("/placement/criterion")) << method;
    EXPECT_GT(one.int_attribute("/placement", "n_candidates"), 3 * 256) << "too few chunks to share";
  }
}

// Sensor noise: estimated from the residual of the fit (24 channels, 14 modes: 10 degrees of
// freedom per sample), and predicted per node as the RMS von Mises of the noise in the
// estimated stress, which must be what the noise actually puts there (noisy minus clean
// reconstruction, the same loads: the simulator's noise has a stream of its own).
TEST_F(ReconstructCommand, EstimatesTheSensorNoiseAndTheNoiseInTheStresses) {
  ScratchDir out("reconstruct-noise");
  const double noise_g = 0.002;
  auto r = run_vsense("simulate " + q(modes()) + " --placement " + q(placement()) +
                      fmt::format(" --unit g --noise {} ", noise_g) +
                      "--dtype float64 --sample-rate 1000 --duration 120 --broadband-band 5:300 "
                      "--seed 5 --no-truth --out " + q(out.file("noisy.h5")) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string common = " --nodes " + q(nodes()) + " --history -q --out ";
  r = run_vsense("reconstruct " + q(modes()) + " " + q(out.file("noisy.h5")) + common +
                 q(out.file("noisy-results.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vsense("simulate " + q(modes()) + " --placement " + q(placement()) +
                 " --unit g --dtype float64 --sample-rate 1000 --duration 120 --broadband-band "
                 "5:300 --seed 5 --no-truth --out " + q(out.file("clean.h5")) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vsense("reconstruct " + q(modes()) + " " + q(out.file("clean.h5")) + common +
                 q(out.file("clean-results.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const vsense::io::hdf5::File noisy(out.file("noisy-results.h5"), vsense::io::hdf5::File::Mode::read);
  const vsense::io::hdf5::File clean(out.file("clean-results.h5"), vsense::io::hdf5::File::Mode::read);
  const double estimated = noisy.double_attribute("/results", "channel_noise_rms");
  EXPECT_NEAR(estimated, noise_g * 9.80665, 0.02 * noise_g * 9.80665);
  EXPECT_LT(clean.double_attribute("/results", "channel_noise_rms"), 1e-6 * estimated);
  const auto predicted = noisy.read_double("/results/von_mises_noise_rms");
  const auto a = noisy.read_double("/results/stress"), b = clean.read_double("/results/stress");
  const std::size_t p = predicted.size(), n = a.size() / (6 * p);
  const auto settle = static_cast<std::size_t>(std::llround(noisy.double_attribute("/results", "settle_s") * 1000));
  double predicted_sq = 0.0, actual_sq = 0.0;
  for (std::size_t j = 0; j < p; ++j) {
    double sum = 0.0;
    std::size_t count = 0;
    for (std::size_t t = settle; t < n - settle; ++t) {
      double e[6];
      for (int c = 0; c < 6; ++c) e[c] = a[(t * p + j) * 6 + static_cast<std::size_t>(c)] - b[(t * p + j) * 6 + static_cast<std::size_t>(c)];
      sum += 0.5 * ((e[0] - e[1]) * (e[0] - e[1]) + (e[1] - e[2]) * (e[1] - e[2]) + (e[2] - e[0]) * (e[2] - e[0])) +
             3.0 * (e[3] * e[3] + e[4] * e[4] + e[5] * e[5]);
      ++count;
    }
    const double actual = std::sqrt(sum / static_cast<double>(count));
    predicted_sq += predicted[j] * predicted[j];
    actual_sq += actual * actual;
    // The integration makes the noise low-pass (most of it near the band's low corner, 2.2 Hz):
    // ~0.5 s correlation over 115 s leaves a sampling spread of ~5 % per node.
    EXPECT_NEAR(predicted[j], actual, 0.2 * actual) << "node " << j;
  }
  EXPECT_NEAR(std::sqrt(predicted_sq), std::sqrt(actual_sq), 0.05 * std::sqrt(actual_sq));
}

TEST_F(ReconstructCommand, GapsSplitTheArchiveIntoSegmentsWithTheirOwnSettling) {
  ScratchDir out("reconstruct-gaps");
  const auto r = run_vsense("reconstruct " + q(modes()) + " " + q(dir_->file("run-000.h5")) + " " +
                            q(dir_->file("run-002.h5")) + " --nodes " + q(nodes()) +
                            " --json --out " + q(out.file("gap.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("gap"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"n_segments\":2"), std::string::npos) << r.out;
  const vsense::io::hdf5::File file(out.file("gap.h5"), vsense::io::hdf5::File::Mode::read);
  EXPECT_EQ(file.read_int64("/results/segments/n_samples"), (std::vector<std::int64_t>{12000, 6000}));
  const double settle = file.double_attribute("/results", "settle_s");
  EXPECT_NEAR(file.double_attribute("/results", "excluded_samples"), 4 * std::llround(settle * 1000), 1.0);
}

}  // namespace
