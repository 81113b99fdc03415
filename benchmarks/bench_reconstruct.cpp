// Reconstruction throughput end to end (archive read, expansion, integration, stress recovery,
// von Mises maxima, rainflow and Miner damage at every output node) against a plain BLAS dgemm
// of the same shape measured in the same run (the roofline: sigma = q Psi^T, [samples, m] x
// [m, 6 p], on all threads), with peak memory.
//
// Synthetic data: 32 channels at 4096 Hz, y = A q'' with q the response of m damped modes
// (20 .. 400 Hz) to white noise, random modal stresses (tens of MPa), the EC3
// category 71 curve without its cut-off, so that every cycle is counted and damages.
//
// Counters: node_samples_per_second (output nodes x samples / wall second), roofline_ratio
// (ours / the dgemm's), peak_memory_mib.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "vsense/io/archive.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/solvers/reconstruction.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace {

namespace rc = vsense::solvers::reconstruction;
namespace fs = std::filesystem;

constexpr double kSampleRate = 4096.0;
constexpr std::size_t kChannels = 32;

/// Resets the process's peak resident memory (Linux: "5" to /proc/self/clear_refs), so that each
/// case reports its own peak.
void reset_peak_memory() { std::ofstream("/proc/self/clear_refs") << "5"; }

using vsense::jobs::peak_memory_bytes;

struct Fixture {
  std::string archive_path;
  std::vector<double> channel_matrix;  // [32, m]
  std::vector<double> frequencies;
};

/// Writes (once per m and length) an archive of y = A q'' for m noise-driven modes.
Fixture make_fixture(std::size_t m, std::int64_t n_samples) {
  Fixture f;
  const auto dir = fs::temp_directory_path() / "vsense-bench-reconstruct";
  fs::create_directories(dir);
  f.archive_path = (dir / fmt::format("archive-m{}-n{}.h5", m, n_samples)).string();
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal;
  f.channel_matrix.resize(kChannels * m);
  for (double& v : f.channel_matrix) v = normal(rng);
  for (std::size_t k = 0; k < m; ++k) {
    f.frequencies.push_back(20.0 * std::pow(20.0, static_cast<double>(k) / static_cast<double>(std::max<std::size_t>(m - 1, 1))));
  }
  if (fs::exists(f.archive_path)) return f;
  vsense::io::ArchiveWriterOptions options;
  options.sample_rate_hz = kSampleRate;
  options.start_time = "2026-01-01T00:00:00Z";
  for (std::size_t c = 0; c < kChannels; ++c) {
    options.channels.push_back({fmt::format("C{}", c), static_cast<std::int64_t>(c + 1), {1, 0, 0}, "m/s^2"});
  }
  vsense::io::ArchiveWriter writer(f.archive_path + ".tmp", options);
  // Each mode: y'' = -omega^2 y - 2 zeta omega y' + noise, explicit and stable at this rate.
  std::vector<double> y(m, 0.0), v(m, 0.0), acc(m);
  const double dt = 1.0 / kSampleRate;
  std::vector<double> row(kChannels);
  for (std::int64_t t = 0; t < n_samples; ++t) {
    for (std::size_t k = 0; k < m; ++k) {
      const double w = 2.0 * std::numbers::pi * f.frequencies[k];
      acc[k] = -w * w * y[k] - 2.0 * 0.02 * w * v[k] + 1e3 * normal(rng);
      v[k] += dt * acc[k];
      y[k] += dt * v[k];
    }
    for (std::size_t c = 0; c < kChannels; ++c) {
      double s = 0.0;
      for (std::size_t k = 0; k < m; ++k) s += f.channel_matrix[c * m + k] * acc[k];
      row[c] = s;
    }
    writer.append(row.data(), 1);
  }
  writer.commit();
  fs::rename(f.archive_path + ".tmp", f.archive_path);
  return f;
}

std::vector<double> random_stresses(std::size_t p, std::size_t m) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> psi(p * 6 * m);
  for (double& v : psi) v = 1e9 * normal(rng);  // Pa per unit modal displacement
  return psi;
}

/// Node-samples per second of sigma = q Psi^T on [1024, m] x [m, 6 p] blocks, all threads (the
/// whole [n_samples, 6 p] product would not fit in memory; 1024 rows keep dgemm at full speed).
double gemm_rate(std::size_t p, std::size_t m, std::int64_t n_samples) {
  const std::size_t rows = 1024;
  std::vector<double> q(rows * m, 1.0), psi = random_stresses(p, m), c(rows * 6 * p);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t done = 0;
  while (done < n_samples) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(6 * p), static_cast<int>(m), 1.0, q.data(), static_cast<int>(m),
                psi.data(), static_cast<int>(m), 0.0, c.data(), static_cast<int>(6 * p));
    done += static_cast<std::int64_t>(rows);
    benchmark::DoNotOptimize(c.data());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(p) * static_cast<double>(done) / seconds;
}

void BM_Reconstruct(benchmark::State& state) {
  const auto p = static_cast<std::size_t>(state.range(0));
  const auto m = static_cast<std::size_t>(state.range(1));
  const std::int64_t n_samples = state.range(2);
  const Fixture fixture = make_fixture(m, n_samples);
  const auto curve = vsense::solvers::make_basquin_curve(71e6, 2e6, 3.0);
  double rate = 0.0;
  reset_peak_memory();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    vsense::io::Archive archive({fixture.archive_path});
    rc::PipelineSetup setup;
    for (std::size_t c = 0; c < kChannels; ++c) {
      setup.channel_columns.push_back(c);
      setup.channel_names.push_back(fmt::format("C{}", c));
    }
    setup.channel_matrix = fixture.channel_matrix;
    setup.modal_stress = random_stresses(p, m);
    setup.n_modes = m;
    setup.n_nodes = p;
    setup.band_low_hz = 0.5 * fixture.frequencies.front();
    setup.band_high_hz = 0.8 * 0.5 * kSampleRate;
    rc::Pipeline pipeline(std::move(setup), kSampleRate);
    rc::FatigueState fatigue(p, &curve);
    const auto blocks = rc::make_blocks({archive.n_samples(0)}, pipeline.block_samples());
    for (const auto& block : blocks) pipeline.process(archive, block, fatigue, nullptr);
    fatigue.finish(vsense::solvers::ResidueTreatment::half_cycles);
    benchmark::DoNotOptimize(fatigue.damage()->damage(0));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
    rate = static_cast<double>(p) * static_cast<double>(n_samples) / seconds;
  }
  const double peak = static_cast<double>(peak_memory_bytes());  // before the roofline's buffers
  const double roofline = gemm_rate(p, m, n_samples);
  state.counters["node_samples_per_second"] = rate;
  state.counters["gemm_node_samples_per_second"] = roofline;
  state.counters["roofline_ratio"] = rate / roofline;
  state.counters["gemm_gflops"] = roofline * 12.0 * static_cast<double>(m) * 1e-9;
  state.counters["peak_memory_mib"] = peak / (1 << 20);
}

// p nodes, m modes (at most the 32 channels), samples (10 s at 4096 Hz: the statistics leave
// out the filter's settle time, 0.5 s here, at both ends).
BENCHMARK(BM_Reconstruct)
    ->Args({10000, 20, 40960})
    ->Args({10000, 30, 40960})
    ->Args({100000, 20, 40960})
    ->Args({100000, 30, 40960})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  // The BLAS kernels vsense itself runs with (see vsense/kernels/blas_runtime.hpp): the roofline
  // is the GEMM of the same kernels.
  vsense::restart_with_faster_blas(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
