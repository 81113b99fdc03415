// Rainflow counting throughput of the multi-channel API on [chunk, n_nodes] float chunks, as
// in the reconstruction stage (one stress history per node), with and without Miner damage,
// against a read-only pass over the same chunk (the memory roofline) measured in the same run.
//
// Counters: samples_per_second (all nodes), node_samples_per_second (samples/s per node, i.e.
// time steps per second), turning_fraction (2 x cycles per sample: about the fraction of samples
// that are turning points; 2/3 for white noise).
//
// Also a counting mode for benchmarks/rainflow_reference.py:
//   bench_rainflow --count=HISTORY.f64 [--residue=half|closed|discard]
// reads one channel of little-endian float64 samples, counts it, prints one line per cycle
// "range mean count" (%.17g), then "# seconds S" on stderr.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "vsense/solvers/rainflow.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace {

using vsense::solvers::CycleSink;
using vsense::solvers::MinerDamage;
using vsense::solvers::RainflowCounter;
using vsense::solvers::RainflowCycle;
using vsense::solvers::ResidueTreatment;

/// Counts cycles and nothing else (the cost of the counting alone).
class CountingSink final : public CycleSink {
public:
  void consume(std::span<const RainflowCycle> cycles) override {
    for (const auto& c : cycles) total += c.count;
  }
  double total = 0.0;
};

enum Signal { narrowband = 0, white = 1 };

/// [n_rows, n_nodes] row-major: per node a noise-driven resonator at 0.05 of the sample rate
/// (damping 0.02 per sample: a machine's response), or white noise (the worst case: every other
/// sample a turning point). Stress units arbitrary (~100).
std::vector<float> make_chunk(std::int64_t n_rows, std::int64_t n_nodes, Signal signal) {
  std::vector<float> data(n_rows * n_nodes);
  std::mt19937_64 rng(1234);
  std::normal_distribution<double> normal;
  const double r = 0.98, w = 2.0 * 3.141592653589793 * 0.05;
  for (std::int64_t j = 0; j < n_nodes; ++j) {
    double y1 = 0.0, y2 = 0.0;
    for (std::int64_t i = 0; i < n_rows; ++i) {
      double y;
      if (signal == narrowband) {
        y = 2.0 * r * std::cos(w) * y1 - r * r * y2 + normal(rng);
        y2 = y1;
        y1 = y;
      } else {
        y = normal(rng);
      }
      data[i * n_nodes + j] = static_cast<float>(10.0 * y);
    }
  }
  return data;
}

void set_counters(benchmark::State& state, std::int64_t n_rows, std::int64_t n_nodes,
                  double cycles) {
  const double samples = static_cast<double>(state.iterations()) * n_rows * n_nodes;
  state.counters["samples_per_second"] = benchmark::Counter(samples, benchmark::Counter::kIsRate);
  state.counters["node_samples_per_second"] =
      benchmark::Counter(samples / n_nodes, benchmark::Counter::kIsRate);
  state.counters["turning_fraction"] = 2.0 * cycles / samples;
  state.SetBytesProcessed(static_cast<std::int64_t>(samples * sizeof(float)));
}

// Args: rows per chunk, nodes, signal. The chunk is fed again and again (the history is the
// chunk repeated, a stationary signal); the first pass warms the residue stacks.
void BM_Rainflow(benchmark::State& state) {
  const std::int64_t n_rows = state.range(0), n_nodes = state.range(1);
  const auto data = make_chunk(n_rows, n_nodes, static_cast<Signal>(state.range(2)));
  RainflowCounter counter(n_nodes);
  CountingSink sink;
  counter.process(data.data(), n_rows, sink);
  sink.total = 0.0;
  for (auto _ : state) {
    counter.process(data.data(), n_rows, sink);
    benchmark::ClobberMemory();
  }
  set_counters(state, n_rows, n_nodes, sink.total);
}

void BM_RainflowMinerDamage(benchmark::State& state) {
  const std::int64_t n_rows = state.range(0), n_nodes = state.range(1);
  const auto data = make_chunk(n_rows, n_nodes, static_cast<Signal>(state.range(2)));
  RainflowCounter counter(n_nodes);
  MinerDamage damage(vsense::solvers::make_eurocode3_curve(71.0), n_nodes);
  counter.process(data.data(), n_rows, damage);
  double cycles_before = 0.0;
  for (std::int64_t j = 0; j < n_nodes; ++j) cycles_before += damage.cycles(j);
  for (auto _ : state) {
    counter.process(data.data(), n_rows, damage);
    benchmark::ClobberMemory();
  }
  double cycles = -cycles_before;
  for (std::int64_t j = 0; j < n_nodes; ++j) cycles += damage.cycles(j);
  set_counters(state, n_rows, n_nodes, cycles);
}

/// Reference: one vectorised read of the chunk (an OR of the bit patterns, so no floating-point
/// dependency chain limits it), the floor of any streaming pass over the same data.
void BM_ReadChunk(benchmark::State& state) {
  const std::int64_t n_rows = state.range(0), n_nodes = state.range(1);
  const auto data = make_chunk(n_rows, n_nodes, static_cast<Signal>(state.range(2)));
  std::vector<std::uint32_t> bits(data.size());
  std::memcpy(bits.data(), data.data(), data.size() * sizeof(float));
  for (auto _ : state) {
    std::uint32_t s = 0;
    for (const std::uint32_t v : bits) s |= v;
    benchmark::DoNotOptimize(s);
  }
  set_counters(state, n_rows, n_nodes, 0.0);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int signal : {narrowband, white}) {
    b->Args({1 << 20, 1, signal});
    b->Args({1 << 18, 4, signal});
    b->Args({1 << 17, 8, signal});
    b->Args({16384, 64, signal});
    b->Args({4096, 1024, signal});
    b->Args({256, 16384, signal});
  }
  b->ArgNames({"rows", "nodes", "white"})->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Rainflow)->Apply(shapes);
BENCHMARK(BM_RainflowMinerDamage)->Apply(shapes);
BENCHMARK(BM_ReadChunk)->Apply(shapes);

/// --count mode (see the file comment).
int count_file(const std::string& path, const std::string& residue) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fmt::print(stderr, "bench_rainflow: cannot open {}\n", path);
    return 2;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<double> x(bytes.size() / sizeof(double));
  std::memcpy(x.data(), bytes.data(), x.size() * sizeof(double));
  ResidueTreatment treatment = ResidueTreatment::half_cycles;
  if (residue == "closed") treatment = ResidueTreatment::closed;
  else if (residue == "discard") treatment = ResidueTreatment::discard;
  else if (residue != "half") {
    fmt::print(stderr, "bench_rainflow: --residue must be half, closed or discard\n");
    return 2;
  }
  class Collector final : public CycleSink {
  public:
    void consume(std::span<const RainflowCycle> c) override {
      cycles.insert(cycles.end(), c.begin(), c.end());
    }
    std::vector<RainflowCycle> cycles;
  } sink;
  sink.cycles.reserve(x.size() / 2 + 16);
  const auto start = std::chrono::steady_clock::now();
  RainflowCounter counter;
  counter.process(std::span<const double>(x), sink);
  counter.finish(treatment, sink);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string out;
  out.reserve(sink.cycles.size() * 48);
  for (const auto& c : sink.cycles) out += fmt::format("{:.17g} {:.17g} {:g}\n", c.range, c.mean, c.count);
  std::fwrite(out.data(), 1, out.size(), stdout);
  fmt::print(stderr, "# seconds {:.6f}\n", seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string count_path, residue = "half";
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--count=", 0) == 0) count_path = a.substr(8);
    else if (a.rfind("--residue=", 0) == 0) residue = a.substr(10);
    else rest.push_back(argv[i]);
  }
  if (!count_path.empty()) return count_file(count_path, residue);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::AddCustomContext("vsense_benchmark", "rainflow");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
