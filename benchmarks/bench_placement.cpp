// Sensor-placement benchmark: one greedy step (a scoring pass over all candidates) and whole
// greedy searches, CPU (BLAS) and CUDA (cuBLAS), against the BLAS GEMM roofline of the same
// step and against a NumPy implementation of the same greedy (place_reference.py), in the
// same run.
//
// The candidates are synthetic: n points of a Weyl sequence in a 6 x 2 x 2 m box with
// plane-wave "mode shapes" (the formula is shared with place_reference.py, so both pick from
// the same data). A 1e6-candidate genset would need a 3e6-DOF modal solve with 200 modes,
// which this benchmark does not depend on; the scoring cost depends only on n and m.
//
// Flags (before the Google Benchmark ones):
//   --candidates=1e5,1e6  --modes=200  --sensors=50
//   --large-steps=5       greedy steps timed when n >= --large-from (default 3e5)
//   --reference=PATH      place_reference.py (default: next to this source, found from the
//                         binary's location); --python=python3; --no-reference
//   --backends=cpu,cuda   (cuda is skipped with a message when no device is usable)
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/solvers/placement.hpp"
#include "vsense/solvers/placement_scoring.hpp"

namespace {

namespace placement = vsense::solvers::placement;

struct Config {
  std::vector<std::size_t> candidates = {100000, 1000000};
  std::size_t modes = 200, sensors = 50, large_steps = 5, large_from = 300000;
  std::string reference, python = "python3";
  bool run_reference = true, cpu = true, cuda = true;
};
Config config;

/// Must match synthetic() in place_reference.py operation for operation.
placement::Problem synthetic_problem(std::size_t n, std::size_t m) {
  placement::Problem p;
  p.n_modes = m;
  p.node_ids.resize(n);
  p.coordinates.resize(3 * n);
  p.blocks.resize(3 * n * m);
  const double alpha[3] = {std::sqrt(2.0) - 1.0, std::sqrt(3.0) - 1.0, std::sqrt(5.0) - 2.0};
  const double box[3] = {6.0, 2.0, 2.0};
  const double scale = 1.0 / std::sqrt(static_cast<double>(n));
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t ii = 0; ii < static_cast<std::ptrdiff_t>(n); ++ii) {
    const auto i = static_cast<std::size_t>(ii);
    double u[3];
    for (int d = 0; d < 3; ++d) {
      u[d] = std::fmod(static_cast<double>(i) * alpha[d], 1.0);
      p.coordinates[3 * i + d] = u[d] * box[d];
    }
    p.node_ids[i] = static_cast<std::int64_t>(i + 1);
    for (std::size_t k = 0; k < m; ++k) {
      const double a = 1.0 + static_cast<double>(k % 7), b = 1.0 + static_cast<double>((k / 7) % 5),
                   c = 1.0 + static_cast<double>(k % 3);
      const double theta = M_PI * (a * u[0] + b * u[1] + c * u[2]);
      for (int d = 0; d < 3; ++d) {
        p.blocks[(3 * i + static_cast<std::size_t>(d)) * m + k] =
            std::cos(theta + 0.7 * d + 0.3 * static_cast<double>(k)) * scale;
      }
    }
  }
  for (std::size_t k = 0; k < m; ++k) {
    p.frequencies_hz.push_back(1.0 + static_cast<double>(k));
    p.mode_indices.push_back(k);
  }
  p.response_information.assign(m * m, 0.0);
  for (std::size_t k = 0; k < m; ++k) p.response_information[k * m + k] = 1.0 / (1.0 + 0.05 * static_cast<double>(k));
  return p;
}

/// One problem in memory at a time (1e6 x 200 blocks are 4.8 GB).
const placement::Problem& problem_for(std::size_t n) {
  static std::unique_ptr<placement::Problem> problem;
  if (!problem || problem->n_candidates() != n) {
    problem.reset();
    const auto t0 = std::chrono::steady_clock::now();
    problem = std::make_unique<placement::Problem>(synthetic_problem(n, config.modes));
    fmt::print(stderr, "[bench] synthetic problem n = {}, m = {} in {:.1f} s\n", n, config.modes,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return *problem;
}

/// A right matrix of the shape of a real step (values do not change the cost).
std::vector<double> right_matrix(std::size_t m, std::size_t k) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(static_cast<double>(m)));
  std::vector<double> r(m * k);
  for (auto& v : r) v = normal(rng);
  return r;
}

double step_flops(std::size_t n, std::size_t m, std::size_t k) {
  return 2.0 * 3.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(k);
}

// Results kept for the summary.
std::map<std::string, double> seconds;          // per benchmark name, seconds per iteration
std::map<std::string, std::vector<std::size_t>> picks;
std::map<std::string, std::string> notes;

std::string key(const char* what, const std::string& backend, std::size_t n, std::size_t k) {
  return fmt::format("{}/{}/n={}/k={}", what, backend, n, k);
}

/// The roofline of one step: its dgemm flops ([3 n, m] x [m, k]) done by the BLAS alone, on
/// all threads, in large pieces (16384 candidates, ~150 MB of product at k = 400).
void roofline(benchmark::State& state, std::size_t n, std::size_t k) {
  const auto& p = problem_for(n);
  const std::size_t m = p.n_modes, chunk = 16384;
  const auto right = right_matrix(m, k);
  std::vector<double> product(3 * chunk * k);
  double best = 1e300;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t begin = 0; begin < n; begin += chunk) {
      const std::size_t count = std::min(chunk, n - begin);
      placement::host_gemm(3 * count, k, m, p.blocks.data() + 3 * m * begin, right.data(), product.data());
    }
    benchmark::DoNotOptimize(product.data());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  seconds[key("roofline_gemm", "blas", n, k)] = best;
  state.counters["GFLOP/s"] = benchmark::Counter(step_flops(n, m, k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// One scoring pass (one greedy step's candidate scoring) on a backend.
void scoring_pass(benchmark::State& state, const vsense::Executor& exec, const std::string& backend,
                  std::size_t n, std::size_t k1, std::size_t k2) {
  const auto& p = problem_for(n);
  const std::size_t m = p.n_modes;
  auto scorer = placement::make_block_scorer(exec, 0, n, m, p.blocks.data(), p.coordinates.data(),
                                             placement::default_scoring_chunk(exec));
  const auto right = right_matrix(m, k1 + k2);
  std::vector<std::uint8_t> eligible(n, 1);
  vsense::kernels::ScoreRequest request{right.data(), k1, k2,
                                        k2 > 0 ? vsense::kernels::BlockScore::trace_ratio
                                               : vsense::kernels::BlockScore::log_det_plus,
                                        nullptr};
  double best = 1e300;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(scorer->score(request, eligible.data(), nullptr));
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  seconds[key("scoring_pass", backend, n, k1 + k2)] = best;
  state.counters["GFLOP/s"] = benchmark::Counter(step_flops(n, m, k1 + k2) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["steps/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

/// A whole greedy search (or its first large_steps steps for the largest n).
void greedy(benchmark::State& state, const vsense::Executor& exec, const std::string& backend,
            placement::Method method, std::size_t n) {
  const auto& p = problem_for(n);
  placement::Options o;
  o.method = method;
  o.n_sensors = n >= config.large_from ? config.large_steps : config.sensors;
  placement::Result r;
  for (auto _ : state) r = placement::place(exec, p, o);
  const double per_step = r.seconds / static_cast<double>(r.n_scoring_passes);
  state.counters["steps/s"] = 1.0 / per_step;
  state.counters["steps"] = static_cast<double>(r.n_scoring_passes);
  state.counters["s_for_50_sensors"] = per_step * 50.0;
  const std::string name = fmt::format("greedy/{}/{}/n={}", backend, placement::method_name(method), n);
  seconds[name] = per_step;
  std::vector<std::size_t> chosen(r.sensors.begin(), r.sensors.end());
  picks[name] = chosen;
}

/// The NumPy reference of the same greedy, run as a child process; its own per-step time.
void numpy_reference(benchmark::State& state, placement::Method method, std::size_t n) {
  const std::size_t steps = n >= config.large_from ? config.large_steps : config.sensors;
  const std::string command =
      fmt::format("'{}' '{}' --candidates {} --modes {} --steps {} --method {}", config.python,
                  config.reference, n, config.modes, steps, placement::method_name(method));
  double per_step = 0.0;
  std::vector<std::size_t> chosen;
  std::string version;
  for (auto _ : state) {
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) {
      state.SkipWithError("cannot start the NumPy reference");
      return;
    }
    char line[1 << 16];
    while (std::fgets(line, sizeof line, pipe)) {
      std::string text(line);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      const auto eq = text.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = text.substr(0, eq), value = text.substr(eq + 1);
      if (name == "seconds_per_step") per_step = std::stod(value);
      if (name == "numpy") version = value;
      if (name == "picks") {
        chosen.clear();
        std::stringstream in(value);
        for (std::string item; std::getline(in, item, ',');) chosen.push_back(std::stoul(item));
      }
    }
    if (pclose(pipe) != 0 || per_step <= 0.0) {
      state.SkipWithError(("NumPy reference failed: " + command).c_str());
      return;
    }
    state.SetIterationTime(per_step);
  }
  state.counters["steps/s"] = 1.0 / per_step;
  const std::string name = fmt::format("numpy/{}/n={}", placement::method_name(method), n);
  seconds[name] = per_step;
  picks[name] = chosen;
  notes["numpy"] = version;
}

std::vector<std::size_t> parse_sizes(const std::string& list) {
  std::vector<std::size_t> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(static_cast<std::size_t>(std::stod(item)));
  return out;
}

std::string default_reference(const char* argv0) {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) exe = argv0;
  for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    const auto candidate = dir / "benchmarks" / "place_reference.py";
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
  }
  return "benchmarks/place_reference.py";
}

}  // namespace

int main(int argc, char** argv) {
  // The BLAS kernels vsense itself runs with (see vsense/kernels/blas_runtime.hpp).
  vsense::restart_with_faster_blas(argv);
  config.reference = default_reference(argv[0]);
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* flag) { return arg.substr(std::string(flag).size()); };
    if (arg.rfind("--candidates=", 0) == 0) config.candidates = parse_sizes(value("--candidates="));
    else if (arg.rfind("--modes=", 0) == 0) config.modes = std::stoul(value("--modes="));
    else if (arg.rfind("--sensors=", 0) == 0) config.sensors = std::stoul(value("--sensors="));
    else if (arg.rfind("--large-steps=", 0) == 0) config.large_steps = std::stoul(value("--large-steps="));
    else if (arg.rfind("--large-from=", 0) == 0) config.large_from = static_cast<std::size_t>(std::stod(value("--large-from=")));
    else if (arg.rfind("--reference=", 0) == 0) config.reference = value("--reference=");
    else if (arg.rfind("--python=", 0) == 0) config.python = value("--python=");
    else if (arg == "--no-reference") config.run_reference = false;
    else if (arg.rfind("--backends=", 0) == 0) {
      const std::string list = value("--backends=");
      config.cpu = list.find("cpu") != std::string::npos;
      config.cuda = list.find("cuda") != std::string::npos;
    } else rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());

  const auto cpu = std::make_shared<vsense::CpuExecutor>();
  std::shared_ptr<vsense::CudaExecutor> cuda;
  if (config.cuda && vsense::CudaExecutor::device_count() > 0) cuda = vsense::CudaExecutor::create(0);
  if (config.cuda && !cuda) {
    fmt::print(stderr, "[bench] CUDA: {} - GPU benchmarks skipped\n",
               vsense::CudaExecutor::compiled() ? "no usable device" : "not compiled in");
  }
  const std::size_t m = config.modes;
  for (const std::size_t n : config.candidates) {
    const int iterations = n >= config.large_from ? 1 : 3;
    for (const std::size_t k : {m, 2 * m}) {
      benchmark::RegisterBenchmark(key("roofline_gemm", "blas", n, k).c_str(),
                                   [n, k](benchmark::State& s) { roofline(s, n, k); })
          ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
    auto add_pass = [&](const std::string& backend, std::shared_ptr<vsense::Executor> exec) {
      benchmark::RegisterBenchmark(key("scoring_pass_d_optimal", backend, n, m).c_str(),
                                   [exec, backend, n, m](benchmark::State& s) { scoring_pass(s, *exec, backend, n, m, 0); })
          ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(key("scoring_pass_min_variance", backend, n, 2 * m).c_str(),
                                   [exec, backend, n, m](benchmark::State& s) { scoring_pass(s, *exec, backend, n, m, m); })
          ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
      for (const auto method : {placement::Method::d_optimal, placement::Method::min_variance}) {
        benchmark::RegisterBenchmark(
            fmt::format("greedy/{}/{}/n={}", backend, placement::method_name(method), n).c_str(),
            [exec, backend, method, n](benchmark::State& s) { greedy(s, *exec, backend, method, n); })
            ->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
      }
    };
    if (config.cpu) add_pass("cpu", cpu);
    if (cuda) add_pass("cuda", cuda);
    if (config.run_reference) {
      for (const auto method : {placement::Method::d_optimal, placement::Method::min_variance}) {
        benchmark::RegisterBenchmark(fmt::format("numpy/{}/n={}", placement::method_name(method), n).c_str(),
                                     [method, n](benchmark::State& s) { numpy_reference(s, method, n); })
            ->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();

  // Summary: scoring pass vs the GEMM roofline; greedy step time vs the NumPy reference, and
  // whether both picked the same nodes.
  fmt::print("\nsummary: one scoring pass (best of the iterations) vs the BLAS dgemm of the same step\n");
  for (const std::size_t n : config.candidates) {
    for (const std::size_t k : {m, 2 * m}) {
      const std::string roof = key("roofline_gemm", "blas", n, k);
      for (const std::string backend : {"cpu", "cuda"}) {
        const std::string pass = key("scoring_pass", backend, n, k);
        if (!seconds.count(pass) || !seconds.count(roof)) continue;
        fmt::print("n={:<8} k={:<4} {:<4} pass {:.4f} s, roofline {:.4f} s ({:.1f} GFLOP/s): ratio {:.2f}\n", n, k,
                   backend, seconds[pass], seconds[roof], step_flops(n, m, k) * 1e-9 / seconds[roof],
                   seconds[pass] / seconds[roof]);
      }
    }
  }
  fmt::print("\nsummary: seconds per greedy step; picks compared with the NumPy reference\n");
  for (const std::size_t n : config.candidates) {
    for (const auto method : {placement::Method::d_optimal, placement::Method::min_variance}) {
      const std::string ours = fmt::format("greedy/cpu/{}/n={}", placement::method_name(method), n);
      const std::string gpu = fmt::format("greedy/cuda/{}/n={}", placement::method_name(method), n);
      const std::string ref = fmt::format("numpy/{}/n={}", placement::method_name(method), n);
      std::string line = fmt::format("n={:<8} {:<13}", n, placement::method_name(method));
      if (seconds.count(ours)) line += fmt::format(" cpu {:.4f} s/step", seconds[ours]);
      if (seconds.count(gpu)) line += fmt::format(" | cuda {:.5f} s/step ({:.1f}x cpu)", seconds[gpu], seconds[ours] / seconds[gpu]);
      if (seconds.count(ref)) {
        line += fmt::format(" | numpy {:.4f} s/step ({:.2f}x ours)", seconds[ref], seconds[ref] / seconds[ours]);
        std::size_t same = 0;
        const auto& a = picks[ours];
        const auto& b = picks[ref];
        for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) same += a[i] == b[i];
        line += fmt::format(", same picks {}/{}", same, std::min(a.size(), b.size()));
      }
      fmt::print("{}\n", line);
    }
  }
  if (notes.count("numpy")) fmt::print("numpy {}\n", notes["numpy"]);
  benchmark::Shutdown();
  return 0;
}
