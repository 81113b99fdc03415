// vsense place-bench modes.h5 --sensors S [--methods LIST] [--out-dir DIR] [--plots]
// Runs several placement methods on one model and compares their layouts (metrics defined in
// solvers/include/vsense/solvers/placement.hpp, Metrics).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "place_options.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense::drivers {

namespace placement = solvers::placement;

namespace {

struct BenchRow {
  placement::Method method;
  placement::Result result;
  placement::Metrics metrics;
  double metrics_seconds = 0.0;
};

std::vector<placement::Method> parse_methods(const std::string& list) {
  if (list == "all") return placement::all_methods();
  std::vector<placement::Method> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (!name.empty()) out.push_back(placement::parse_method(name));
  }
  if (out.empty()) throw InputError("--methods names no method");
  return out;
}

/// A number for the tables: inf/-inf/nan spelled out, others with 4 significant digits.
std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.4g}", v);
}

/// A python3 that has matplotlib: $VSENSE_PYTHON, python3 on the PATH, or the system's.
std::string find_python() {
  std::vector<std::string> tries;
  if (const char* env = std::getenv("VSENSE_PYTHON")) tries.emplace_back(env);
  tries.emplace_back("python3");
  tries.emplace_back("/usr/bin/python3");
  for (const auto& python : tries) {
    const std::string probe = fmt::format("'{}' -c 'import matplotlib' > /dev/null 2>&1", python);
    if (std::system(probe.c_str()) == 0) return python;
  }
  return "";
}

/// benchmarks/place_plots.py next to the source tree the binary was built from, or as given.
std::string find_plot_script(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> tries;
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      tries.push_back(dir / "benchmarks" / "place_plots.py");
    }
  }
  tries.emplace_back(std::filesystem::current_path() / "benchmarks" / "place_plots.py");
  for (const auto& path : tries) {
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
  }
  return "";
}

}  // namespace

void register_place_bench(CLI::App& app, CommonOptions& common) {
  struct Args {
    PlaceArgs place;
    std::string methods = "all", out_dir = "place-bench", plot_script;
    std::size_t samples = 200;
    std::uint64_t seed = 1;
    bool plots = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "place-bench",
      "Compare placement methods on one model: log det FIM, condition number, largest\n"
      "off-diagonal MAC, stress-estimation error (trace and max of its covariance, Monte\n"
      "Carlo under sensor noise), worst loss from one failed sensor, run time.\n"
      "Writes DIR/place_bench.md, .csv, layouts.csv, one placement file per method and, with\n"
      "--plots, PNG plots (python3 + matplotlib).\n"
      "Example: vsense place-bench modes.h5 --sensors 12 --methods d-optimal,two-phase");
  add_place_options(*cmd, args->place);
  cmd->add_option("--methods", args->methods, "Comma-separated methods, or all")
      ->capture_default_str();
  cmd->add_option("--out-dir,-o", args->out_dir, "Where to write the report")->capture_default_str();
  cmd->add_option("--samples", args->samples, "Monte-Carlo samples")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Monte-Carlo seed")->capture_default_str();
  cmd->add_flag("--plots", args->plots, "Draw PNG plots with benchmarks/place_plots.py");
  cmd->add_option("--plot-script", args->plot_script, "Path of place_plots.py (default: found)");
  cmd->callback([args, &common] {
    const auto start = std::chrono::steady_clock::now();
    const auto methods = parse_methods(args->methods);
    const auto executor = make_executor(args->place.backend);
    spdlog::info("backend: {}", executor->description());
    std::filesystem::create_directories(args->out_dir);
    const std::filesystem::path dir(args->out_dir);

    const io::ModesData modes = io::read_modes(args->place.modes);
    const std::string sha = io::sha256_file(args->place.modes);
    const placement::Problem problem =
        placement::make_problem(modes, problem_request(args->place, true, true));
    for (const auto& note : problem.notes) spdlog::info("{}", note);
    spdlog::info("{} candidate nodes, {} modes ({:.3f} .. {:.3f} Hz), {} stress targets",
                 problem.n_candidates(), problem.n_modes, problem.frequencies_hz.front(),
                 problem.frequencies_hz.back(), problem.n_targets);

    placement::MetricsOptions metric_options;
    metric_options.snr = args->place.snr;
    metric_options.weight_exponent = args->place.weight_exponent;
    metric_options.samples = args->samples;
    metric_options.seed = args->seed;

    std::vector<BenchRow> rows;
    for (const auto method : methods) {
      BenchRow row;
      row.method = method;
      row.result = placement::place(*executor, problem, placement_options(args->place, method));
      for (const auto& warning : row.result.warnings) spdlog::warn("{}", warning);
      const auto t0 = std::chrono::steady_clock::now();
      row.metrics = placement::evaluate(problem, row.result.sensors, metric_options);
      row.metrics_seconds = seconds_since(t0);
      io::write_placement((dir / fmt::format("placement_{}.h5", placement::method_name(method))).string(),
                          placement_data(args->place, modes, problem, row.result, sha));
      spdlog::info("{:>15}: {:.3f} s, log det {}, cond {}, MAC {}, stress error {}", placement::method_name(method),
                   row.result.seconds, number(row.metrics.log_det_fim), number(row.metrics.condition_number),
                   number(row.metrics.max_offdiag_mac), number(row.metrics.stress_error_trace));
      rows.push_back(std::move(row));
    }

    // ---- CSV, Markdown, layouts ----------------------------------------------------------------
    {
      std::ofstream csv(dir / "place_bench.csv");
      csv << "method,seconds,scoring_passes,log_det_fim,condition_number,max_offdiag_mac,"
             "stress_error_trace,stress_error_max,monte_carlo_error,bayes_error_trace,"
             "bayes_monte_carlo_error,worst_failure_ratio,worst_failure_node,"
             "worst_failure_log_det_drop,criterion\n";
      for (const auto& r : rows) {
        csv << fmt::format("{},{:.6g},{},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{},{:.10g},{:.10g}\n",
                           placement::method_name(r.method), r.result.seconds, r.result.n_scoring_passes,
                           r.metrics.log_det_fim, r.metrics.condition_number, r.metrics.max_offdiag_mac,
                           r.metrics.stress_error_trace, r.metrics.stress_error_max, r.metrics.monte_carlo_error,
                           r.metrics.bayes_error_trace, r.metrics.bayes_monte_carlo_error,
                           r.metrics.worst_failure_ratio, r.metrics.worst_failure_node,
                           r.metrics.worst_failure_log_det_drop, r.result.criterion.back());
      }
    }
    {
      std::ofstream layouts(dir / "layouts.csv");
      layouts << "method,order,node_id,x,y,z\n";
      for (const auto& r : rows) {
        for (std::size_t k = 0; k < r.result.sensors.size(); ++k) {
          const std::size_t i = r.result.sensors[k];
          layouts << fmt::format("{},{},{},{:.9g},{:.9g},{:.9g}\n", placement::method_name(r.method), k + 1,
                                 problem.node_ids[i], problem.coordinates[3 * i],
                                 problem.coordinates[3 * i + 1], problem.coordinates[3 * i + 2]);
        }
      }
      std::ofstream candidates(dir / "candidates.csv");
      candidates << "node_id,x,y,z\n";
      // At most ~50000 points for the plots.
      const std::size_t stride = std::max<std::size_t>(1, problem.n_candidates() / 50000);
      for (std::size_t i = 0; i < problem.n_candidates(); i += stride) {
        candidates << fmt::format("{},{:.9g},{:.9g},{:.9g}\n", problem.node_ids[i], problem.coordinates[3 * i],
                                  problem.coordinates[3 * i + 1], problem.coordinates[3 * i + 2]);
      }
    }
    std::string table =
        "| method | time [s] | log det FIM | cond FIM | max off-diag MAC | LS stress err. trace | "
        "LS stress err. max | LS Monte-Carlo err. | Bayes stress err. trace | Bayes Monte-Carlo err. | "
        "worst 1-failure trace ratio | worst 1-failure log det drop |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& r : rows) {
      const std::string failure =
          r.metrics.worst_failure_node >= 0
              ? fmt::format("{} (node {})", number(r.metrics.worst_failure_ratio), r.metrics.worst_failure_node)
              : number(r.metrics.worst_failure_ratio);
      table += fmt::format("| {} | {:.3f} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                           placement::method_name(r.method), r.result.seconds, number(r.metrics.log_det_fim),
                           number(r.metrics.condition_number), number(r.metrics.max_offdiag_mac),
                           number(r.metrics.stress_error_trace), number(r.metrics.stress_error_max),
                           number(r.metrics.monte_carlo_error), number(r.metrics.bayes_error_trace),
                           number(r.metrics.bayes_monte_carlo_error), failure,
                           number(r.metrics.worst_failure_log_det_drop));
    }
    {
      std::ofstream md(dir / "place_bench.md");
      md << fmt::format("# vsense place-bench\n\nModes file `{}` ({} nodes), {} candidate nodes, {} modes "
                        "({:.3f} .. {:.3f} Hz), {} stress targets, {} triaxial sensors, SNR {}, "
                        "{} Monte-Carlo samples, backend {}.\n\n",
                        args->place.modes, modes.n_nodes(), problem.n_candidates(), problem.n_modes,
                        problem.frequencies_hz.front(), problem.frequencies_hz.back(), problem.n_targets,
                        args->place.sensors, args->place.snr, args->samples, executor->description());
      md << table;
      md << "\nDefinitions (unit sensor noise; modal amplitudes q ~ N(0, Lambda_w), the modal-displacement\n"
            "weighted prior scaled to the SNR): log det and condition number of Q = sum Phi_i^T Phi_i;\n"
            "largest off-diagonal MAC of the mode shapes at the sensor DOFs. Stress errors are von Mises\n"
            "equivalents of the error tensors relative to the signal, for the least-squares expansion\n"
            "(LS, q^ = Q^-1 Phi_S^T y; inf when Q is singular) and the Bayesian one (q^ = (Lambda_w^-1 + Q)^-1\n"
            "Phi_S^T y): trace = tr(Cov G) / tr(Lambda_w G) (G: von Mises quadratic form summed over the\n"
            "targets); max = max_t E[vm(e_t)^2] / max_t E[vm(sigma_t)^2]; Monte-Carlo = sqrt(sum vm(e)^2 /\n"
            "sum vm(sigma)^2) over samples and targets. Worst 1-failure (LS): the largest increase of the\n"
            "trace (ratio) and drop of log det Q when any one sensor fails.\n";
    }
    if (!common.json) std::cout << table;

    // ---- plots ------------------------------------------------------------------------------------
    bool plotted = false;
    if (args->plots) {
      const std::string script = find_plot_script(args->plot_script);
      const std::string python = script.empty() ? std::string() : find_python();
      if (script.empty()) {
        spdlog::warn("no plots: benchmarks/place_plots.py not found (give --plot-script PATH)");
      } else if (python.empty()) {
        spdlog::warn("no plots: python3 with matplotlib is needed (Debian: apt-get install "
                     "python3-matplotlib; or set VSENSE_PYTHON)");
      } else {
        const std::string command = fmt::format("'{}' '{}' '{}'", python, script, dir.string());
        const int status = std::system(command.c_str());
        if (status != 0) {
          spdlog::warn("no plots: {} failed (status {})", command, status);
        } else {
          plotted = true;
          spdlog::info("plots: {}/layouts.png, {}/metrics.png", dir.string(), dir.string());
        }
      }
    }
    spdlog::info("report: {}/place_bench.md and .csv ({:.1f} s)", dir.string(), seconds_since(start));
    if (common.json) {
      std::vector<std::string> entries;
      for (const auto& r : rows) {
        auto js = [](double v) { return std::isfinite(v) ? fmt::format("{:.10g}", v) : std::string("null"); };
        entries.push_back(fmt::format(
            "{{\"method\":\"{}\",\"seconds\":{:.6f},\"log_det_fim\":{},\"condition_number\":{},"
            "\"max_offdiag_mac\":{},\"stress_error_trace\":{},\"stress_error_max\":{},"
            "\"monte_carlo_error\":{},\"bayes_error_trace\":{},\"bayes_monte_carlo_error\":{},"
            "\"worst_failure_ratio\":{},\"worst_failure_log_det_drop\":{}}}",
            placement::method_name(r.method), r.result.seconds, js(r.metrics.log_det_fim),
            js(r.metrics.condition_number), js(r.metrics.max_offdiag_mac), js(r.metrics.stress_error_trace),
            js(r.metrics.stress_error_max), js(r.metrics.monte_carlo_error), js(r.metrics.bayes_error_trace),
            js(r.metrics.bayes_monte_carlo_error), js(r.metrics.worst_failure_ratio),
            js(r.metrics.worst_failure_log_det_drop)));
      }
      std::cout << fmt::format(
                       "{{\"command\":\"place-bench\",\"out_dir\":\"{}\",\"n_candidates\":{},\"n_modes\":{},"
                       "\"n_sensors\":{},\"plots\":{},\"total_seconds\":{:.3f},\"methods\":[{}]}}\n",
                       json_escape(args->out_dir), problem.n_candidates(), problem.n_modes, args->place.sensors,
                       plotted ? "true" : "false", seconds_since(start), fmt::join(entries, ","));
    }
  });
}

}  // namespace vsense::drivers
