// The placement stages: one method, or a comparison of several (moved here from the drivers so
// that jobs and `vsense place`/`place-bench` run the same code).
#include "vsense/jobs/place_stage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <span>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "vsense/io/sha256.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense::jobs {

namespace placement = solvers::placement;

namespace {

placement::ProblemRequest problem_request(const PlacementSettings& s, bool need_stress,
                                          bool keep_target_stress) {
  placement::ProblemRequest request;
  request.candidates = s.candidates;
  request.exclude = s.exclude;
  request.targets = s.targets;
  request.max_modes = s.n_modes;
  request.skip_rigid = s.skip_rigid;
  request.rigid_hz = s.rigid_hz;
  request.need_stress = need_stress;
  request.keep_target_stress = keep_target_stress;
  return request;
}

placement::Options placement_options(const PlacementSettings& s, placement::Method method) {
  placement::Options options;
  options.method = method;
  options.n_sensors = s.sensors;
  options.min_distance = s.min_distance;
  if (s.weighting != "auto") options.mode_weighting = s.weighting == "displacement";
  options.weight_exponent = s.weight_exponent;
  options.snr = s.snr;
  options.correlation_length = s.correlation_length;
  options.efi_fraction = s.efi_fraction;
  options.chunk = s.scoring_chunk;
  return options;
}

io::PlacementData placement_data(const PlacementSettings& s, const io::ModesData& modes,
                                 const placement::Problem& problem,
                                 const placement::Result& result,
                                 const std::string& modes_sha256) {
  io::PlacementData data;
  data.method = std::string(placement::method_name(result.method));
  data.criterion_name = result.criterion_name;
  data.n_modes = static_cast<std::int64_t>(problem.n_modes);
  data.n_candidates = static_cast<std::int64_t>(problem.n_candidates());
  data.units = modes.units;
  data.source_sha256 = modes_sha256;
  for (std::size_t k = 0; k < result.sensors.size(); ++k) {
    const std::size_t i = result.sensors[k];
    data.node_ids.push_back(problem.node_ids[i]);
    for (int d = 0; d < 3; ++d) data.coordinates.push_back(problem.coordinates[3 * i + d]);
  }
  data.criterion = result.criterion;
  data.scores = result.pick_scores;
  for (const std::size_t k : problem.mode_indices) {
    data.mode_indices.push_back(static_cast<std::int64_t>(k));
  }
  data.frequencies_hz = problem.frequencies_hz;
  data.options["min_distance"] = s.min_distance;
  data.options["snr"] = s.snr;
  data.options["correlation_length"] = s.correlation_length;
  data.options["weight_exponent"] = s.weight_exponent;
  data.options["rigid_hz"] = s.skip_rigid ? s.rigid_hz : 0.0;
  if (result.method == placement::Method::two_phase) {
    data.options["phase1_criterion"] = result.phase1_criterion;
    data.options["n_exchanges"] = static_cast<double>(result.n_exchanges);
  }
  data.text_options["mode_weighting"] = s.weighting;
  data.text_options["candidates"] = s.candidates.empty() ? "surface" : s.candidates;
  data.text_options["targets"] = s.targets.empty() ? "all" : s.targets;
  data.text_options["source_file"] = s.modes;
  return data;
}

/// A number for the tables: inf/-inf/nan spelled out, others with 4 significant digits.
std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.4g}", v);
}

std::string json_number(double v) {
  return std::isfinite(v) ? fmt::format("{:.10g}", v) : std::string("null");
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
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> tries;
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      tries.push_back(dir / "benchmarks" / "place_plots.py");
    }
  }
  tries.emplace_back(std::filesystem::current_path() / "benchmarks" / "place_plots.py");
  for (const auto& path : tries) {
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
  }
  return "";
}

/// The placement's exchanges over the ranks of a communicator: allgathers in rank order, reduced
/// the same way on every rank, so that every rank takes the same steps.
class CommunicatorCollective final : public placement::CandidateCollective {
public:
  explicit CommunicatorCollective(const cluster::Communicator& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  kernels::BestCandidate best(const kernels::BestCandidate& local) const override {
    const auto pieces = comm_.allgather(std::as_bytes(std::span(&local, 1)));
    kernels::BestCandidate best;
    for (const auto& piece : pieces) {
      kernels::BestCandidate candidate;
      std::memcpy(&candidate, piece.data(), sizeof candidate);
      best = kernels::better(best, candidate);
    }
    return best;
  }
  void share(std::vector<double>& scores, const std::vector<std::size_t>& begin,
             const std::vector<std::size_t>& end) const override {
    const auto r = static_cast<std::size_t>(comm_.rank());
    const auto mine = std::span<const double>(scores).subspan(begin[r], end[r] - begin[r]);
    const auto pieces = comm_.allgather(std::as_bytes(mine));
    for (std::size_t k = 0; k < pieces.size(); ++k) {
      std::memcpy(scores.data() + begin[k], pieces[k].data(), pieces[k].size());
    }
  }

private:
  const cluster::Communicator& comm_;
};

/// One placement on every rank (each scores its share of the candidates); rank 0 writes.
void place_shared(const PlacementSettings& settings, const std::string& method_name,
                  const std::string& out_path, PlaceSummary& summary,
                  const cluster::Communicator& comm) {
  const auto start = std::chrono::steady_clock::now();
  const placement::Method method = placement::parse_method(method_name);
  const auto executor = make_executor(settings.backend);
  summary.backend = executor->description();
  spdlog::info("backend: {}", summary.backend);

  const io::ModesData modes = io::read_modes(settings.modes);
  const bool need_stress =
      method == placement::Method::min_variance || method == placement::Method::two_phase;
  const placement::Problem problem =
      placement::make_problem(modes, problem_request(settings, need_stress, false));
  for (const auto& note : problem.notes) spdlog::info("{}", note);
  spdlog::info("{} candidate nodes, {} modes ({:.3f} .. {:.3f} Hz)", problem.n_candidates(),
               problem.n_modes, problem.frequencies_hz.front(), problem.frequencies_hz.back());

  auto options = placement_options(settings, method);
  const CommunicatorCollective collective(comm);
  if (comm.size() > 1) {
    options.collective = &collective;
    spdlog::info("candidates shared between {} ranks", comm.size());
  }
  const placement::Result result = placement::place(*executor, problem, options);
  if (comm.is_root()) {
    for (const auto& warning : result.warnings) spdlog::warn("{}", warning);
  }
  const io::PlacementData data = placement_data(
      settings, modes, problem, result, comm.is_root() ? io::sha256_file(settings.modes) : "");
  if (comm.is_root()) io::write_placement(out_path, data);
  summary.method = std::string(placement::method_name(method));
  summary.criterion_name = result.criterion_name;
  summary.n_sensors = result.sensors.size();
  summary.n_candidates = problem.n_candidates();
  summary.n_modes = problem.n_modes;
  summary.criterion = result.criterion.back();
  summary.phase1_criterion = result.phase1_criterion;
  summary.n_exchanges = result.n_exchanges;
  summary.scoring_passes = result.n_scoring_passes;
  summary.node_ids = data.node_ids;
  summary.warnings = result.warnings;
  summary.placement_seconds = result.seconds;
  summary.total_seconds = seconds_since(start);
  summary.peak_memory_bytes = peak_memory_bytes();
  spdlog::info("{}: {} sensors in {:.3f} s ({} scoring passes), criterion {:.6g} -> {}",
               summary.method, summary.n_sensors, result.seconds, result.n_scoring_passes,
               summary.criterion, out_path);
  if (method == placement::Method::two_phase) {
    spdlog::info("two-phase: phase 1 criterion {:.6g}, {} exchange(s), final {:.6g}",
                 result.phase1_criterion, result.n_exchanges, summary.criterion);
  }
}

void bench_on_root(const PlaceBenchRequest& request, PlaceBenchSummary& summary) {
  const auto start = std::chrono::steady_clock::now();
  const auto& settings = request.settings;
  std::vector<placement::Method> methods;
  for (const auto& name : request.methods) {
    if (name == "all") {
      methods = placement::all_methods();
      break;
    }
    methods.push_back(placement::parse_method(name));
  }
  if (methods.empty()) throw InputError("the placement comparison names no method");
  const auto executor = make_executor(settings.backend);
  summary.backend = executor->description();
  spdlog::info("backend: {}", summary.backend);
  std::filesystem::create_directories(request.out_dir);
  const std::filesystem::path dir(request.out_dir);

  const io::ModesData modes = io::read_modes(settings.modes);
  const std::string sha = io::sha256_file(settings.modes);
  const placement::Problem problem =
      placement::make_problem(modes, problem_request(settings, true, true));
  for (const auto& note : problem.notes) spdlog::info("{}", note);
  spdlog::info("{} candidate nodes, {} modes ({:.3f} .. {:.3f} Hz), {} stress targets",
               problem.n_candidates(), problem.n_modes, problem.frequencies_hz.front(),
               problem.frequencies_hz.back(), problem.n_targets);
  summary.n_candidates = problem.n_candidates();
  summary.n_modes = problem.n_modes;
  summary.n_sensors = settings.sensors;

  placement::MetricsOptions metric_options;
  metric_options.snr = settings.snr;
  metric_options.weight_exponent = settings.weight_exponent;
  metric_options.samples = request.samples;
  metric_options.seed = request.seed;

  std::vector<placement::Result> results;
  for (const auto method : methods) {
    PlaceBenchRow row;
    row.method = std::string(placement::method_name(method));
    placement::Result result =
        placement::place(*executor, problem, placement_options(settings, method));
    for (const auto& warning : result.warnings) spdlog::warn("{}", warning);
    row.metrics = placement::evaluate(problem, result.sensors, metric_options);
    row.seconds = result.seconds;
    row.scoring_passes = result.n_scoring_passes;
    row.criterion = result.criterion.back();
    const std::string file = fmt::format("placement_{}.h5", row.method);
    const io::PlacementData data = placement_data(settings, modes, problem, result, sha);
    row.node_ids = data.node_ids;
    io::write_placement((dir / file).string(), data);
    summary.files.push_back(file);
    spdlog::info("{:>15}: {:.3f} s, log det {}, cond {}, MAC {}, stress error {}", row.method,
                 result.seconds, number(row.metrics.log_det_fim),
                 number(row.metrics.condition_number), number(row.metrics.max_offdiag_mac),
                 number(row.metrics.stress_error_trace));
    summary.rows.push_back(std::move(row));
    results.push_back(std::move(result));
  }

  // ---- CSV, Markdown, layouts ---------------------------------------------------------------
  {
    std::ofstream csv(dir / "place_bench.csv");
    csv << "method,seconds,scoring_passes,log_det_fim,condition_number,max_offdiag_mac,"
           "stress_error_trace,stress_error_max,monte_carlo_error,bayes_error_trace,"
           "bayes_monte_carlo_error,worst_failure_ratio,worst_failure_node,"
           "worst_failure_log_det_drop,criterion\n";
    for (const auto& r : summary.rows) {
      const auto& m = r.metrics;
      csv << fmt::format(
          "{},{:.6g},{},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},"
          "{:.10g},{},{:.10g},{:.10g}\n",
          r.method, r.seconds, r.scoring_passes, m.log_det_fim, m.condition_number,
          m.max_offdiag_mac, m.stress_error_trace, m.stress_error_max, m.monte_carlo_error,
          m.bayes_error_trace, m.bayes_monte_carlo_error, m.worst_failure_ratio,
          m.worst_failure_node, m.worst_failure_log_det_drop, r.criterion);
    }
  }
  {
    std::ofstream layouts(dir / "layouts.csv");
    layouts << "method,order,node_id,x,y,z\n";
    for (std::size_t r = 0; r < results.size(); ++r) {
      const auto& sensors = results[r].sensors;
      for (std::size_t k = 0; k < sensors.size(); ++k) {
        const std::size_t i = sensors[k];
        layouts << fmt::format("{},{},{},{:.9g},{:.9g},{:.9g}\n", summary.rows[r].method, k + 1,
                               problem.node_ids[i], problem.coordinates[3 * i],
                               problem.coordinates[3 * i + 1], problem.coordinates[3 * i + 2]);
      }
    }
    std::ofstream candidates(dir / "candidates.csv");
    candidates << "node_id,x,y,z\n";
    // At most ~50000 points for the plots.
    const std::size_t stride = std::max<std::size_t>(1, problem.n_candidates() / 50000);
    for (std::size_t i = 0; i < problem.n_candidates(); i += stride) {
      candidates << fmt::format("{},{:.9g},{:.9g},{:.9g}\n", problem.node_ids[i],
                                problem.coordinates[3 * i], problem.coordinates[3 * i + 1],
                                problem.coordinates[3 * i + 2]);
    }
  }
  std::string table =
      "| method | time [s] | log det FIM | cond FIM | max off-diag MAC | LS stress err. trace | "
      "LS stress err. max | LS Monte-Carlo err. | Bayes stress err. trace | Bayes Monte-Carlo "
      "err. | worst 1-failure trace ratio | worst 1-failure log det drop |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : summary.rows) {
    const auto& m = r.metrics;
    const std::string failure =
        m.worst_failure_node >= 0
            ? fmt::format("{} (node {})", number(m.worst_failure_ratio), m.worst_failure_node)
            : number(m.worst_failure_ratio);
    table += fmt::format("| {} | {:.3f} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                         r.method, r.seconds, number(m.log_det_fim), number(m.condition_number),
                         number(m.max_offdiag_mac), number(m.stress_error_trace),
                         number(m.stress_error_max), number(m.monte_carlo_error),
                         number(m.bayes_error_trace), number(m.bayes_monte_carlo_error), failure,
                         number(m.worst_failure_log_det_drop));
  }
  summary.table_markdown = table;
  {
    std::ofstream md(dir / "place_bench.md");
    md << fmt::format(
        "# vsense place-bench\n\nModes file `{}` ({} nodes), {} candidate nodes, {} modes "
        "({:.3f} .. {:.3f} Hz), {} stress targets, {} triaxial sensors, SNR {}, "
        "{} Monte-Carlo samples, backend {}.\n\n",
        settings.modes, modes.n_nodes(), problem.n_candidates(), problem.n_modes,
        problem.frequencies_hz.front(), problem.frequencies_hz.back(), problem.n_targets,
        settings.sensors, settings.snr, request.samples, summary.backend);
    md << table;
    md << "\nDefinitions (unit sensor noise; modal amplitudes q ~ N(0, Lambda_w), the "
          "modal-displacement\nweighted prior scaled to the SNR): log det and condition number "
          "of Q = sum Phi_i^T Phi_i;\nlargest off-diagonal MAC of the mode shapes at the sensor "
          "DOFs. Stress errors are von Mises\nequivalents of the error tensors relative to the "
          "signal, for the least-squares expansion\n(LS, q^ = Q^-1 Phi_S^T y; inf when Q is "
          "singular) and the Bayesian one (q^ = (Lambda_w^-1 + Q)^-1\nPhi_S^T y): trace = "
          "tr(Cov G) / tr(Lambda_w G) (G: von Mises quadratic form summed over the\ntargets); "
          "max = max_t E[vm(e_t)^2] / max_t E[vm(sigma_t)^2]; Monte-Carlo = sqrt(sum vm(e)^2 "
          "/\nsum vm(sigma)^2) over samples and targets. Worst 1-failure (LS): the largest "
          "increase of the\ntrace (ratio) and drop of log det Q when any one sensor fails.\n";
  }
  for (const char* file : {"place_bench.csv", "layouts.csv", "candidates.csv", "place_bench.md"}) {
    summary.files.emplace_back(file);
  }

  // ---- plots -------------------------------------------------------------------------------
  if (request.plots) {
    const std::string script = find_plot_script(request.plot_script);
    const std::string python = script.empty() ? std::string() : find_python();
    if (script.empty()) {
      spdlog::warn("no plots: benchmarks/place_plots.py not found (give --plot-script PATH)");
    } else if (python.empty()) {
      spdlog::warn(
          "no plots: python3 with matplotlib is needed (Debian: apt-get install "
          "python3-matplotlib; or set VSENSE_PYTHON)");
    } else {
      const std::string command = fmt::format("'{}' '{}' '{}'", python, script, dir.string());
      const int status = std::system(command.c_str());
      if (status != 0) {
        spdlog::warn("no plots: {} failed (status {})", command, status);
      } else {
        summary.plotted = true;
        summary.files.emplace_back("layouts.png");
        summary.files.emplace_back("metrics.png");
        spdlog::info("plots: {}/layouts.png, {}/metrics.png", dir.string(), dir.string());
      }
    }
  }
  summary.total_seconds = seconds_since(start);
  summary.peak_memory_bytes = peak_memory_bytes();
  spdlog::info("report: {}/place_bench.md and .csv ({:.1f} s)", dir.string(),
               summary.total_seconds);
}

}  // namespace

std::vector<std::string> parse_method_list(const std::string& list) {
  if (list == "all") return {"all"};
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (name.empty()) continue;
    out.emplace_back(placement::method_name(placement::parse_method(name)));
  }
  if (out.empty()) throw InputError("--methods names no method");
  return out;
}

PlaceSummary run_place(const PlacementSettings& settings, const std::string& method,
                       const std::string& out_path, const cluster::Communicator& comm) {
  PlaceSummary summary;
  summary.out_path = out_path;
  summary.method = method;
  summary.phase1_criterion = std::numeric_limits<double>::quiet_NaN();
  cluster::collectively(comm, [&] { place_shared(settings, method, out_path, summary, comm); });
  return summary;
}

PlaceBenchSummary run_place_bench(const PlaceBenchRequest& request,
                                  const cluster::Communicator& comm) {
  PlaceBenchSummary summary;
  summary.out_dir = request.out_dir;
  on_root(comm, [&] { bench_on_root(request, summary); });
  return summary;
}

std::string to_json(const PlaceSummary& s) {
  std::string warnings;
  for (const auto& w : s.warnings) {
    warnings += (warnings.empty() ? "\"" : ",\"") + json_escape(w) + "\"";
  }
  return fmt::format(
      "{{\"command\":\"place\",\"out\":\"{}\",\"method\":\"{}\",\"backend\":\"{}\","
      "\"n_sensors\":{},\"n_candidates\":{},\"n_modes\":{},\"criterion\":{:.17g},"
      "\"criterion_name\":\"{}\",\"phase1_criterion\":{},\"n_exchanges\":{},"
      "\"node_ids\":[{}],\"scoring_passes\":{},\"placement_seconds\":{:.6f},"
      "\"total_seconds\":{:.6f},\"peak_memory_bytes\":{},\"warnings\":[{}]}}",
      json_escape(s.out_path), s.method, json_escape(s.backend), s.n_sensors, s.n_candidates,
      s.n_modes, s.criterion, json_escape(s.criterion_name),
      std::isfinite(s.phase1_criterion) ? fmt::format("{:.17g}", s.phase1_criterion)
                                        : std::string("null"),
      s.n_exchanges, fmt::join(s.node_ids, ","), s.scoring_passes, s.placement_seconds,
      s.total_seconds, s.peak_memory_bytes, warnings);
}

std::string to_json(const PlaceBenchSummary& s) {
  std::vector<std::string> entries;
  for (const auto& r : s.rows) {
    const auto& m = r.metrics;
    entries.push_back(fmt::format(
        "{{\"method\":\"{}\",\"seconds\":{:.6f},\"log_det_fim\":{},\"condition_number\":{},"
        "\"max_offdiag_mac\":{},\"stress_error_trace\":{},\"stress_error_max\":{},"
        "\"monte_carlo_error\":{},\"bayes_error_trace\":{},\"bayes_monte_carlo_error\":{},"
        "\"worst_failure_ratio\":{},\"worst_failure_log_det_drop\":{},\"node_ids\":[{}]}}",
        r.method, r.seconds, json_number(m.log_det_fim), json_number(m.condition_number),
        json_number(m.max_offdiag_mac), json_number(m.stress_error_trace),
        json_number(m.stress_error_max), json_number(m.monte_carlo_error),
        json_number(m.bayes_error_trace), json_number(m.bayes_monte_carlo_error),
        json_number(m.worst_failure_ratio), json_number(m.worst_failure_log_det_drop),
        fmt::join(r.node_ids, ",")));
  }
  return fmt::format(
      "{{\"command\":\"place-bench\",\"out_dir\":\"{}\",\"backend\":\"{}\",\"n_candidates\":{},"
      "\"n_modes\":{},\"n_sensors\":{},\"plots\":{},\"total_seconds\":{:.3f},"
      "\"peak_memory_bytes\":{},\"methods\":[{}]}}",
      json_escape(s.out_dir), json_escape(s.backend), s.n_candidates, s.n_modes, s.n_sensors,
      s.plotted ? "true" : "false", s.total_seconds, s.peak_memory_bytes,
      fmt::join(entries, ","));
}

}  // namespace vsense::jobs
