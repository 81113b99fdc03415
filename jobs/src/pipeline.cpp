// The job runner: stages in order, change detection by content keys, staging directories,
// resume, MPI roles, the run summary.
#include "vsense/jobs/pipeline.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "progress.hpp"
#include "stamp.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/io/truth_file.hpp"
#include "vsense/jobs/modes_stage.hpp"
#include "vsense/jobs/report.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/genset.hpp"
#include "vsense/version.hpp"

namespace vsense::jobs {

namespace fs = std::filesystem;

namespace {

// ---- output layout ---------------------------------------------------------------------------
constexpr const char* model_file = "genset.inp";
constexpr const char* modes_file = "modes.h5";
constexpr const char* modes_xdmf = "modes.xdmf";
constexpr const char* placement_file = "placement.h5";
constexpr const char* comparison_dir = "placement-comparison";
constexpr const char* simulation_dir = "simulation";
constexpr const char* truth_file = "simulation/truth.h5";
constexpr const char* results_file = "results.h5";
constexpr const char* results_xdmf = "results.xdmf";
constexpr const char* report_dir = "report";
constexpr const char* staging_root = ".vsense";

/// What a stage did when it ran.
struct StageOutcome {
  std::vector<std::string> outputs;  ///< relative to the staging directory (= output dir)
  std::string backend;
  std::string json;
  std::string detail;
};

/// Where the stage works and what the runner knows so far.
struct StageContext {
  const JobSpec& job;
  const cluster::Communicator& comm;
  fs::path out;        ///< the output directory
  fs::path staging;    ///< where this stage writes (same layout as `out`)
  bool resume = false; ///< the staging directory holds a killed run of this very stage
  const std::vector<StageRecord>& done;  ///< the stages before this one
};

struct Stage {
  std::string name;
  /// Canonical text of every setting that changes the outputs.
  std::function<std::string()> settings;
  /// Input files whose content the outputs depend on (absolute; must exist).
  std::function<std::vector<std::string>()> inputs;
  /// Entries (files or directories) under `out` this stage owns and replaces.
  std::vector<std::string> owned;
  /// Files under `out` that must exist and carry the key for the stage to be up to date.
  std::function<std::vector<std::string>()> expected;
  std::function<StageOutcome(StageContext&)> run;
  /// Continues from its own checkpoint after an interruption (else it starts again).
  bool resumable = false;
};

std::string setting(const std::string& key, const std::string& value) {
  return key + " = " + value + "\n";
}
std::string setting(const std::string& key, double value) {
  return key + " = " + fmt::format("{:.17g}", value) + "\n";
}
std::string setting(const std::string& key, std::int64_t value) {
  return key + " = " + std::to_string(value) + "\n";
}
std::string setting(const std::string& key, const std::vector<std::string>& values) {
  return key + " = [" + fmt::format("{}", fmt::join(values, ", ")) + "]\n";
}
std::string setting(const std::string& key, const std::vector<double>& values) {
  std::string text;
  for (const double v : values) text += fmt::format("{}{:.17g}", text.empty() ? "" : ", ", v);
  return key + " = [" + text + "]\n";
}

/// A node selection as a setting: a file by its content, a set by its name.
std::string selection_setting(const std::string& key, const std::string& value) {
  std::error_code ec;
  if (!value.empty() && fs::is_regular_file(value, ec)) {
    return setting(key, "file sha256:" + io::sha256_file(value));
  }
  return setting(key, value);
}

/// Whether the report can draw its plots changes the report: a report written without plots
/// is drawn again once matplotlib is there.
std::string plotter_setting(const JobSpec& job) {
  if (!job.report.plots) return setting("plotter", "off");
  std::string why;
  return setting("plotter", find_report_python("", why).empty() ? "none" : "matplotlib");
}

/// The stage's key, or "" when an input does not exist yet (`missing` names it).
std::string stage_key(const Stage& stage, std::string& missing) {
  std::string text = "vsense job stage v1\nstage = " + stage.name + "\nvsense = " +
                     std::string(VSENSE_VERSION) + "\n" + stage.settings();
  for (const auto& input : stage.inputs()) {
    std::error_code ec;
    if (!fs::is_regular_file(input, ec)) {
      missing = input;
      return "";
    }
    text += "input sha256 = " + io::sha256_file(input) + "\n";
  }
  return detail::sha256_text(text);
}

/// Every expected output exists and carries `key`. Sets `why` otherwise.
bool up_to_date(const Stage& stage, const fs::path& out, const std::string& key,
                std::string& why) {
  const auto expected = stage.expected();
  for (const auto& file : expected) {
    const fs::path path = out / file;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      why = fmt::format("{} does not exist", file);
      return false;
    }
    if (!detail::stamped(path.string())) continue;
    const std::string found = detail::read_stamp(path.string());
    if (found.empty()) {
      why = fmt::format("{} was not written by this stage", file);
      return false;
    }
    if (found != key) {
      why = "inputs or settings changed";
      return false;
    }
  }
  return !expected.empty();
}

void remove_entry(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot remove: {}", path.string(), ec.message()));
}

/// Moves `relative` from `from` to `to` (replacing), creating parent directories.
void move_into_place(const fs::path& from, const fs::path& to, const std::string& relative) {
  const fs::path source = from / relative;
  const fs::path target = to / relative;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (fs::is_directory(target, ec)) remove_entry(target);  // rename cannot replace a directory
  fs::rename(source, target, ec);
  if (ec) {
    throw IoError(fmt::format("cannot move {} to {}: {}", source.string(), target.string(),
                              ec.message()));
  }
}

/// Resets the peak-RSS counter of this process (Linux >= 4.0), so that each stage's peak is
/// its own. False when the kernel does not allow it.
bool reset_peak_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.close();
  return static_cast<bool>(clear);
}

std::string mib(long long bytes) {
  return fmt::format("{:.0f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

/// Test hook: VSENSE_FAULT_INJECT=kill:STAGE makes the process kill itself (SIGKILL) after
/// STAGE wrote its outputs into the staging directory and before they are stamped and moved
/// into place; kill-moving:STAGE after the first output was moved. The worst moments for a
/// crash, which the kill-and-resume tests need to reach exactly.
void maybe_fault(const std::string& stage, const char* when = "kill") {
  const char* spec = std::getenv("VSENSE_FAULT_INJECT");
  if (spec == nullptr) return;
  if (std::string(spec) == std::string(when) + ":" + stage) {
    spdlog::warn("VSENSE_FAULT_INJECT: killing the process in stage {}", stage);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
  }
}

/// @brief An exclusive POSIX lock on OUTPUT/.vsense/lock for the length of a run (rank 0), so
/// that two runs never write the same output directory (an array whose job files share an
/// output_dir, a job resubmitted while it still runs). POSIX record locks work on NFS (lockd)
/// and on Lustre mounted with flock; the holder's host and pid are written into the file.
class OutputLock {
public:
  OutputLock() = default;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  ~OutputLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  /// @throws InputError naming the holder when another run has the directory.
  void acquire(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw IoError(fmt::format("{}: cannot open the lock file: {}", path.string(),
                                std::strerror(errno)));
    }
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    if (::fcntl(fd_, F_SETLK, &request) != 0) {
      char holder[256] = {};
      const ssize_t got = ::pread(fd_, holder, sizeof holder - 1, 0);
      std::string who = got > 0 ? std::string(holder, static_cast<std::size_t>(got)) : "";
      while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
      ::close(fd_);
      fd_ = -1;
      throw InputError(fmt::format(
          "{} is in use by another vsense run{}; wait for it to finish, or give this one "
          "another output directory",
          path.parent_path().parent_path().string(), who.empty() ? "" : " (" + who + ")"));
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string who = fmt::format("pid {} on {}", ::getpid(), host);
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, who.data(), who.size(), 0);
  }

private:
  int fd_ = -1;
};

std::vector<std::byte> to_bytes(const std::string& text) {
  std::vector<std::byte> out(text.size());
  std::transform(text.begin(), text.end(), out.begin(),
                 [](char c) { return static_cast<std::byte>(c); });
  return out;
}

std::string from_bytes(const std::vector<std::byte>& bytes) {
  std::string out(bytes.size(), '\0');
  std::transform(bytes.begin(), bytes.end(), out.begin(),
                 [](std::byte b) { return static_cast<char>(b); });
  return out;
}

/// Rank 0's string on every rank.
std::string broadcast_string(const cluster::Communicator& comm, const std::string& text) {
  auto bytes = to_bytes(text);
  comm.broadcast(bytes);
  return from_bytes(bytes);
}

// ---- the stages ------------------------------------------------------------------------------

/// The archive files written by the simulation stage (from its truth file), absolute.
std::vector<std::string> simulated_archives(const fs::path& out) {
  const io::TruthReader truth((out / truth_file).string());
  std::vector<std::string> files;
  for (const auto& name : truth.archive_files()) {
    files.push_back((out / simulation_dir / fs::path(name).filename()).string());
  }
  return files;
}

std::string model_path(const JobSpec& job, const fs::path& out) {
  return job.model.builtin.empty() ? job.model.path : (out / model_file).string();
}

std::string placement_path(const JobSpec& job, const fs::path& out) {
  if (!job.placement.enabled) return "";
  return job.placement.file.empty() ? (out / placement_file).string() : job.placement.file;
}

std::vector<std::string> measurement_files(const JobSpec& job, const fs::path& out) {
  return job.simulation.enabled ? simulated_archives(out) : job.archives.files;
}

/// A stage's backend: its section's, else the job's.
std::string backend_of(const std::string& stage_backend, const JobSpec& job) {
  return stage_backend.empty() ? job.backend : stage_backend;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return !path.empty() && fs::exists(path, ec);
}

std::vector<Stage> plan(const JobSpec& job, const fs::path& out) {
  std::vector<Stage> stages;

  if (!job.model.builtin.empty()) {
    Stage s;
    s.name = "model";
    s.settings = [&job] {
      return setting("builtin", job.model.builtin) + setting("dofs", job.model.dofs);
    };
    s.inputs = [] { return std::vector<std::string>{}; };
    s.owned = {model_file};
    s.expected = [] { return std::vector<std::string>{model_file}; };
    s.run = [&job](StageContext& c) {
      StageOutcome outcome;
      on_root(c.comm, [&] {
        model::GensetOptions options;
        options.target_dofs = job.model.dofs;
        spdlog::info("generating the genset model ({} DOF)", job.model.dofs);
        const auto g = model::write_genset(options, (c.staging / model_file).string());
        outcome.detail =
            fmt::format("{} nodes, {} elements, {} DOF", g.n_nodes, g.n_elements, g.n_dofs);
        outcome.json = fmt::format(
            R"({{"command":"model generate genset","n_nodes":{},"n_elements":{},"n_dofs":{}}})",
            g.n_nodes, g.n_elements, g.n_dofs);
      });
      outcome.outputs = {model_file};
      return outcome;
    };
    stages.push_back(std::move(s));
  }

  {
    Stage s;
    s.name = "modes";
    s.settings = [&job] {
      const auto& m = job.modes;
      return setting("units", job.units) +
             setting("backend", backend_of(job.modes_backend, job)) +
             setting("count", std::int64_t{m.n_modes}) + setting("fmax_hz", m.fmax_hz) +
             setting("shift", m.shift) + setting("sturm_check", m.sturm_check ? "true" : "false") +
             setting("max_residual", m.max_residual);
    };
    s.inputs = [&job, out] { return std::vector<std::string>{model_path(job, out)}; };
    s.owned = {modes_file, modes_xdmf};
    s.expected = [] { return std::vector<std::string>{modes_file}; };
    s.run = [&job](StageContext& c) {
      ModesRequest request;
      request.model_path = model_path(job, c.out);
      request.out_path = (c.staging / modes_file).string();
      request.xdmf_path = (c.staging / modes_xdmf).string();
      request.units = job.units;
      request.backend = backend_of(job.modes_backend, job);
      request.options = job.modes;
      const ModesSummary summary = run_modes(request, c.comm);
      StageOutcome outcome;
      outcome.outputs = {modes_file};
      if (!summary.xdmf_path.empty()) outcome.outputs.emplace_back(modes_xdmf);
      outcome.backend = summary.backend;
      outcome.json = to_json(summary);
      if (!summary.frequencies_hz.empty()) {
        outcome.detail = fmt::format("{} modes, {:.3f} .. {:.3f} Hz", summary.frequencies_hz.size(),
                                     summary.frequencies_hz.front(), summary.frequencies_hz.back());
      }
      return outcome;
    };
    stages.push_back(std::move(s));
  }

  if (job.placement.enabled && job.placement.file.empty()) {
    Stage s;
    s.name = "placement";
    s.settings = [&job] {
      const auto& p = job.placement;
      const auto& st = p.settings;
      return setting("backend", backend_of(job.placement_backend, job)) +
             setting("methods", p.methods) +
             setting("compare", p.compare ? "true" : "false") + setting("use", p.use) +
             setting("sensors", static_cast<std::int64_t>(st.sensors)) +
             selection_setting("candidates", st.candidates) + setting("exclude", st.exclude) +
             selection_setting("targets", st.targets) +
             setting("weighting", st.weighting) +
             setting("modes", static_cast<std::int64_t>(st.n_modes)) +
             setting("skip_rigid", st.skip_rigid ? "true" : "false") +
             setting("rigid_hz", st.rigid_hz) + setting("min_distance", st.min_distance) +
             setting("weight_exponent", st.weight_exponent) + setting("snr", st.snr) +
             setting("correlation_length", st.correlation_length) +
             setting("efi_fraction", st.efi_fraction) +
             setting("samples", static_cast<std::int64_t>(p.samples)) +
             setting("seed", static_cast<std::int64_t>(p.seed));
    };
    s.inputs = [out] { return std::vector<std::string>{(out / modes_file).string()}; };
    s.owned = {placement_file, comparison_dir};
    s.expected = [&job] {
      std::vector<std::string> files{placement_file};
      if (job.placement.compare) {
        for (const auto& m : job.placement.methods) {
          files.push_back(fmt::format("{}/placement_{}.h5", comparison_dir, m));
        }
        files.push_back(fmt::format("{}/place_bench.md", comparison_dir));
      }
      return files;
    };
    s.run = [&job](StageContext& c) {
      PlacementSettings settings = job.placement.settings;
      settings.modes = (c.out / modes_file).string();
      settings.backend = backend_of(job.placement_backend, job);
      StageOutcome outcome;
      if (!job.placement.compare) {
        const PlaceSummary summary = run_place(settings, job.placement.methods.front(),
                                               (c.staging / placement_file).string(), c.comm);
        outcome.outputs = {placement_file};
        outcome.backend = summary.backend;
        outcome.json = to_json(summary);
        outcome.detail = fmt::format("{}: {} sensors", summary.method, summary.n_sensors);
        return outcome;
      }
      PlaceBenchRequest request;
      request.settings = settings;
      request.methods = job.placement.methods;
      request.out_dir = (c.staging / comparison_dir).string();
      request.samples = job.placement.samples;
      request.seed = job.placement.seed;
      const PlaceBenchSummary summary = run_place_bench(request, c.comm);
      on_root(c.comm, [&] {
        // The layout that goes on is a copy of the chosen method's file.
        fs::copy_file(c.staging / comparison_dir / fmt::format("placement_{}.h5", job.placement.use),
                      c.staging / placement_file, fs::copy_options::overwrite_existing);
      });
      outcome.outputs = {placement_file, comparison_dir};
      outcome.backend = summary.backend;
      outcome.json = to_json(summary);
      outcome.detail = fmt::format("{} methods compared, {} sensors, using {}",
                                   job.placement.methods.size(), settings.sensors,
                                   job.placement.use);
      return outcome;
    };
    stages.push_back(std::move(s));
  }

  if (job.simulation.enabled) {
    Stage s;
    s.name = "simulation";
    s.settings = [&job] {
      const auto& r = job.simulation.request;
      std::string speed;
      for (const auto& [t, rpm] : r.speed_profile) speed += fmt::format("{:.17g}:{:.17g},", t, rpm);
      return setting("duration_s", r.duration_s) + setting("sample_rate_hz", r.sample_rate_hz) +
             setting("segment_s", r.segment_s) + setting("start_time", r.start_time) +
             setting("seed", static_cast<std::int64_t>(r.seed)) +
             setting("noise", r.noise_rms) + setting("unit", r.channel_unit) +
             setting("dtype", r.sample_type == io::SampleType::float64 ? "float64" : "float32") +
             setting("directions", r.directions) + setting("sensor_set", r.sensor_set) +
             setting("modes", std::int64_t{r.n_modes}) + setting("damping", r.damping) +
             setting("min_frequency_hz", r.min_frequency_hz) + setting("rpm", r.rpm) +
             setting("speed_profile", speed) + setting("cylinders", std::int64_t{r.cylinders}) +
             setting("order_step", r.order_step) + setting("max_order", r.max_order) +
             setting("engine_force_n", r.engine_force_n) +
             setting("engine_moment_nm", r.engine_moment_nm) +
             setting("firing_gain", r.firing_gain) + setting("order_decay", r.order_decay) +
             setting("crank_axis", std::string(1, r.crank_axis)) +
             setting("broadband_rms_n", r.broadband_rms_n) +
             setting("broadband_band_hz", std::vector<double>{r.broadband_low_hz,
                                                              r.broadband_high_hz}) +
             setting("load_set", r.load_set) + setting("broadband_set", r.broadband_set) +
             setting("warm_up_s", r.warm_up_s) +
             setting("compress", std::int64_t{r.compression_level});
    };
    s.inputs = [&job, out] {
      std::vector<std::string> files{(out / modes_file).string()};
      if (job.placement.enabled) files.push_back(placement_path(job, out));
      return files;
    };
    s.owned = {simulation_dir};
    s.expected = [out] {
      std::vector<std::string> files{truth_file};
      if (!exists((out / truth_file).string())) return files;
      try {
        for (const auto& f : simulated_archives(out)) {
          files.push_back(fs::relative(f, out).string());
        }
      } catch (const Error&) {
        // An unreadable truth file is out of date: it fails the key check.
      }
      return files;
    };
    s.run = [&job](StageContext& c) {
      solvers::SimulateRequest request = job.simulation.request;
      request.modes_path = (c.out / modes_file).string();
      if (job.placement.enabled) request.placement_path = placement_path(job, c.out);
      fs::create_directories(c.staging / simulation_dir);
      request.out_path = (c.staging / simulation_dir / "run.h5").string();
      request.truth_path = (c.staging / truth_file).string();
      StageOutcome outcome;
      on_root(c.comm, [&] {
        spdlog::info("simulating {} s at {} Hz", request.duration_s, request.sample_rate_hz);
        const auto summary = solvers::run_simulate(request);
        outcome.detail = fmt::format("{} samples x {} channels in {} file(s)", summary.n_samples,
                                     summary.channels.size(), summary.archive_files.size());
        outcome.json = fmt::format(
            R"({{"command":"simulate","n_samples":{},"n_channels":{},"files":{},"seconds":{:.3f}}})",
            summary.n_samples, summary.channels.size(), summary.archive_files.size(),
            summary.simulate_seconds);
      });
      outcome.outputs = {simulation_dir};
      return outcome;
    };
    stages.push_back(std::move(s));
  }

  if (job.reconstruction.enabled) {
    Stage s;
    s.name = "reconstruction";
    s.settings = [&job] {
      const auto& r = job.reconstruction.request;
      const auto& f = job.fatigue;
      return setting("backend", backend_of(job.reconstruction_backend, job)) +
             selection_setting("nodes", r.nodes) +
             setting("use_placement", job.reconstruction.use_placement ? "true" : "false") +
             setting("modes", std::int64_t{r.n_modes}) + setting("rigid_hz", r.rigid_hz) +
             setting("regularisation", r.regularisation) + setting("units", job.units) +
             setting("band_hz", std::vector<double>{r.band_low_hz, r.band_high_hz}) +
             setting("settle_s", r.settle_s) + setting("history", r.history ? "true" : "false") +
             setting("gaps", r.gaps) + setting("unobservable", r.unobservable) +
             setting("fatigue", f.enabled ? "true" : "false") +
             setting("equivalent", f.equivalent) + setting("residue", f.residue) +
             setting("equivalent_cycles", f.equivalent_cycles) +
             setting("block_samples", r.block_samples);
    };
    s.inputs = [&job, out] {
      std::vector<std::string> files{(out / modes_file).string()};
      if (job.placement.enabled && job.reconstruction.use_placement) {
        files.push_back(placement_path(job, out));
      }
      for (const auto& a : measurement_files(job, out)) files.push_back(a);
      if (job.fatigue.enabled) files.push_back(job.fatigue.sn_curve);
      return files;
    };
    s.owned = {results_file, results_xdmf};
    s.resumable = true;
    s.expected = [] { return std::vector<std::string>{results_file}; };
    s.run = [&job](StageContext& c) {
      ReconstructRequest request = job.reconstruction.request;
      request.modes_path = (c.out / modes_file).string();
      request.archive_paths = measurement_files(job, c.out);
      if (job.placement.enabled && job.reconstruction.use_placement) {
        request.placement_path = placement_path(job, c.out);
      }
      request.out_path = (c.staging / results_file).string();
      request.xdmf_path = (c.staging / results_xdmf).string();
      request.units = job.units;
      request.backend = backend_of(job.reconstruction_backend, job);
      if (job.fatigue.enabled) {
        request.sn_curve_path = job.fatigue.sn_curve;
        request.equivalent = job.fatigue.equivalent;
        request.residue = job.fatigue.residue;
        request.equivalent_cycles = job.fatigue.equivalent_cycles;
      }
      request.resume = c.resume;
      ReconstructSummary summary;
      try {
        summary = run_reconstruct(request, c.comm);
      } catch (const InputError& e) {
        if (!c.resume) throw;
        // A checkpoint of another rank count, or a partial file that is gone: start again.
        spdlog::warn("reconstruction: the interrupted run cannot be resumed ({}); starting again",
                     e.what());
        request.resume = false;
        summary = run_reconstruct(request, c.comm);
      }
      StageOutcome outcome;
      outcome.outputs = {results_file};
      if (exists((c.staging / results_xdmf).string())) outcome.outputs.emplace_back(results_xdmf);
      outcome.backend = summary.backend;
      outcome.json = to_json(summary);
      outcome.detail = fmt::format("{} samples, {} nodes, max von Mises {:.4g}, max damage {:.4g}",
                                   summary.n_samples, summary.n_nodes, summary.von_mises_max,
                                   summary.damage_max);
      return outcome;
    };
    stages.push_back(std::move(s));
  }

  if (job.report.enabled) {
    Stage s;
    s.name = "report";
    s.settings = [&job] {
      const auto& r = job.report;
      return setting("plots", r.plots ? "true" : "false") +
             setting("worst_nodes", std::int64_t{r.worst_nodes}) +
             setting("window_s", r.window_s) + setting("title", r.title) +
             setting("name", job.name) + setting("units", job.units) +
             setting("fatigue_equivalent", job.fatigue.equivalent) +
             setting("fatigue_residue", job.fatigue.residue) + plotter_setting(job);
    };
    s.inputs = [&job, out] {
      // Whatever exists of the earlier stages' outputs (a stage that was not available leaves
      // none, and the report says so; once it has run, the report is drawn again).
      std::vector<std::string> files;
      for (const auto& f : {modes_file, placement_file, truth_file, results_file}) {
        if (exists((out / f).string())) files.push_back((out / f).string());
      }
      if (job.placement.compare) {
        const auto md = out / comparison_dir / "place_bench.csv";
        if (exists(md.string())) files.push_back(md.string());
      }
      if (job.fatigue.enabled) files.push_back(job.fatigue.sn_curve);
      return files;
    };
    s.owned = {report_dir};
    s.expected = [] { return std::vector<std::string>{"report/index.html"}; };
    s.run = [&job](StageContext& c) {
      ReportRequest request;
      request.job = &job;
      request.output_dir = c.out.string();
      request.report_dir = (c.staging / report_dir).string();
      request.modes_path = (c.out / modes_file).string();
      request.modes_xdmf = exists((c.out / modes_xdmf).string()) ? "../modes.xdmf" : "";
      request.placement_path = placement_path(job, c.out);
      if (job.placement.compare) request.comparison_dir = (c.out / comparison_dir).string();
      if (job.simulation.enabled) request.truth_path = (c.out / truth_file).string();
      if (exists((c.out / results_file).string())) {
        request.results_path = (c.out / results_file).string();
        if (exists((c.out / results_xdmf).string())) request.results_xdmf = "../results.xdmf";
      }
      request.stages = c.done;
      StageOutcome outcome;
      ReportSummary summary;
      on_root(c.comm, [&] { summary = write_report(request); });
      outcome.outputs = {report_dir};
      outcome.detail = summary.detail;
      outcome.json = to_json(summary);
      return outcome;
    };
    stages.push_back(std::move(s));
  }
  return stages;
}

std::string status_word(const StageRecord& r) { return r.status; }

std::string now_utc_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

/// What a stage's run was, as stamped into its outputs ("k=v;k=v"; values without ';').
std::string encode_record(const StageRecord& r) {
  std::string backend = r.backend;
  std::replace(backend.begin(), backend.end(), ';', ',');
  return fmt::format("seconds={:.3f};peak_memory_bytes={};backend={};finished_at={}", r.seconds,
                     r.peak_memory_bytes, backend, r.ran_at);
}

/// Fills seconds, peak memory, backend and ran_at of `r` from an encoded record (what is
/// missing or malformed stays as it is).
void decode_record(const std::string& text, StageRecord& r) {
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    try {
      if (key == "seconds") r.seconds = std::stod(value);
      if (key == "peak_memory_bytes") r.peak_memory_bytes = std::stoll(value);
    } catch (const std::exception&) {
    }
    if (key == "backend") r.backend = value;
    if (key == "finished_at") r.ran_at = value;
  }
}

}  // namespace

void check_rank_layout(const cluster::Communicator& comm) {
  if (comm.size() > 1) return;
  auto value = [](const char* name) -> long {
    const char* v = std::getenv(name);
    return v != nullptr ? std::strtol(v, nullptr, 10) : 0;
  };
  long tasks = 0;
  std::string launcher;
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (value(name) > 1) {
      tasks = value(name);
      launcher = "an MPI launcher";
    }
  }
  if (tasks == 0 && std::getenv("SLURM_PROCID") != nullptr && value("SLURM_STEP_NUM_TASKS") > 1) {
    tasks = value("SLURM_STEP_NUM_TASKS");
    launcher = "srun";
  }
  if (tasks <= 1) return;
  if (!cluster::mpi_compiled()) {
    throw InputError(fmt::format(
        "this vsense was built without MPI but {} started it as {} tasks: each would run the "
        "whole job and write the same files. Run one task, or rebuild with MPI "
        "(libopenmpi-dev; cmake -DVSENSE_WITH_MPI=ON)",
        launcher, tasks));
  }
  throw InputError(fmt::format(
      "{} started {} tasks but MPI did not start in this one (no PMI/PMIx in its environment): "
      "with srun use --mpi=pmix (or pmi2), or start vsense with mpirun",
      launcher, tasks));
}

RunSummary run_job(const JobSpec& job, const RunOptions& options,
                   const cluster::Communicator& comm) {
  const auto start = std::chrono::steady_clock::now();
  check_rank_layout(comm);
  RunSummary summary;
  summary.job = job.path.empty() ? job.name : job.path;
  summary.output_dir = job.output_dir;
  summary.ranks = comm.size();
  const fs::path out(job.output_dir);
  if (job.report.enabled) summary.report_path = (out / report_dir / "index.html").string();

  OutputLock lock;
  if (!options.dry_run) {
    on_root(comm, [&] {
      fs::create_directories(out / staging_root);
      lock.acquire(out / staging_root / "lock");
    });
  }
  const std::vector<Stage> stages = plan(job, out);
  spdlog::info("job {}: {} stage(s) -> {}{}", summary.job, stages.size(), job.output_dir,
               comm.size() > 1 ? fmt::format(" on {} ranks", comm.size()) : "");

  std::size_t current = 0;
  try {
  for (std::size_t k = 0; k < stages.size(); ++k) {
    current = k;
    const Stage& stage = stages[k];
    StageRecord record;
    record.name = stage.name;
    const std::string label = fmt::format("[{}/{}] {}", k + 1, stages.size(), stage.name);
    const fs::path staging = out / staging_root / ("stage-" + stage.name);

    // Rank 0 decides: key, up to date or not, resume or not.
    std::string decision;  // "skip", "run", "resume"
    std::string why;
    on_root(comm, [&] {
      std::string missing;
      record.key = stage_key(stage, missing);
      if (record.key.empty()) {
        if (options.dry_run) {
          decision = "run";
          why = fmt::format("{} comes from an earlier stage",
                            fs::path(missing).filename().string());
          return;
        }
        throw InputError(fmt::format("stage {} needs {}, which does not exist", stage.name,
                                     missing));
      }
      // An interrupted run of this very stage (same key) comes first: killed while moving its
      // finished outputs into place (complete them), or while running (resume or redo).
      std::string previous;
      {
        std::ifstream marker(staging / "key");
        if (!(marker >> previous)) previous.clear();
      }
      std::error_code ec;
      const bool interrupted = !previous.empty() && previous == record.key && !options.dry_run;
      if (interrupted && fs::exists(staging / "complete", ec)) {
        decision = "complete";
        return;
      }
      if (!options.force && up_to_date(stage, out, record.key, why)) {
        decision = "skip";
        if (!options.dry_run && fs::exists(staging, ec)) remove_entry(staging);  // stale
        return;
      }
      if (options.force) why = "--force";
      decision = "run";
      if (interrupted) {
        if (stage.resumable) {
          decision = "resume";
        } else {
          why = "redoing an interrupted run";
        }
      }
    });
    decision = broadcast_string(comm, decision);
    record.key = broadcast_string(comm, record.key);

    if (decision == "skip") {
      record.status = "skipped";
      record.detail = "unchanged";
      if (comm.is_root()) {
        for (const auto& f : stage.expected()) record.outputs.push_back(f);
        if (!record.outputs.empty()) {
          decode_record(detail::read_record((out / record.outputs.front()).string()), record);
        }
      }
      spdlog::info("{}: up to date (inputs and settings unchanged{}), skipped", label,
                   record.ran_at.empty() ? "" : " since " + record.ran_at);
      summary.stages.push_back(std::move(record));
      continue;
    }
    if (options.dry_run) {
      record.status = "would run";
      record.detail = why;
      spdlog::info("{}: would run ({})", label, why);
      summary.stages.push_back(std::move(record));
      continue;
    }
    if (decision == "complete") {
      // The outputs were complete and stamped when the run was killed: move the rest in.
      on_root(comm, [&] {
        std::ifstream list(staging / "complete");
        std::string file;
        while (std::getline(list, file)) {
          std::error_code ec;
          if (!file.empty() && fs::exists(staging / file, ec)) {
            move_into_place(staging, out, file);
          }
          record.outputs.push_back(file);
        }
        if (!record.outputs.empty()) {
          decode_record(detail::read_record((out / record.outputs.front()).string()), record);
        }
        remove_entry(staging);
      });
      record.status = "resumed";
      record.detail = "finished moving the outputs of the interrupted run into place";
      spdlog::info("{}: {}", label, record.detail);
      summary.stages.push_back(std::move(record));
      continue;
    }
    spdlog::info("{}: {}{}", label,
                 decision == "resume" ? "resuming an interrupted run from its checkpoint"
                                      : "running",
                 why.empty() || decision == "resume" ? "" : fmt::format(" ({})", why));

    on_root(comm, [&] {
      if (decision != "resume") remove_entry(staging);
      fs::create_directories(staging);
      std::ofstream marker(staging / "key");
      marker << record.key << "\n";
      if (!marker.flush()) throw IoError(fmt::format("{}: cannot write", (staging / "key").string()));
    });

    const bool peak_reset = comm.is_root() && reset_peak_memory();
    const auto stage_start = std::chrono::steady_clock::now();
    StageContext context{job, comm, out, staging, decision == "resume", summary.stages};
    StageOutcome outcome;
    try {
      ProgressTicker ticker(stage.name, comm.is_root());
      outcome = stage.run(context);
    } catch (const NotCompiled& e) {
      if (!options.allow_unavailable && !job.skip_unavailable) throw;
      on_root(comm, [&] { remove_entry(staging); });  // nothing to resume
      record.status = "not available";
      record.detail = e.what();
      record.seconds = seconds_since(stage_start);
      spdlog::warn("{}: not available in this build: {}", label, e.what());
      summary.stages.push_back(std::move(record));
      continue;
    }
    record.seconds = seconds_since(stage_start);
    record.peak_memory_bytes = peak_memory_bytes();
    record.backend = outcome.backend;
    record.ran_at = now_utc_iso();
    on_root(comm, [&] {
      maybe_fault(stage.name);
      const std::string run_record = encode_record(record);
      for (const auto& file : outcome.outputs) {
        const fs::path path = staging / file;
        if (fs::is_directory(path)) {
          for (const auto& entry : fs::recursive_directory_iterator(path)) {
            if (entry.is_regular_file() && detail::stamped(entry.path().string())) {
              detail::stamp(entry.path().string(), stage.name, record.key, run_record);
            }
          }
        } else {
          detail::stamp(path.string(), stage.name, record.key, run_record);
        }
      }
      // Two-phase commit: the list of finished outputs first, then the moves; a run killed in
      // between finishes the moves (decision "complete") instead of redoing the stage.
      {
        std::ofstream list(staging / "complete.partial");
        for (const auto& file : outcome.outputs) list << file << "\n";
        list.close();
        if (!list) throw IoError(fmt::format("{}: cannot write", staging.string()));
        fs::rename(staging / "complete.partial", staging / "complete");
      }
      for (const auto& owned : stage.owned) {
        if (std::find(outcome.outputs.begin(), outcome.outputs.end(), owned) ==
            outcome.outputs.end()) {
          remove_entry(out / owned);  // stale: this run did not write it
        }
      }
      for (const auto& file : outcome.outputs) {
        move_into_place(staging, out, file);
        maybe_fault(stage.name, "kill-moving");
      }
      remove_entry(staging);
    });
    record.status = decision == "resume" ? "resumed" : "ran";
    if (!peak_reset && comm.is_root()) record.detail += "";
    record.backend = outcome.backend;
    record.json = outcome.json;
    record.detail = outcome.detail;
    record.outputs = outcome.outputs;
    spdlog::info("{}: done in {:.1f} s{}{}", label, record.seconds,
                 outcome.detail.empty() ? "" : ": " + outcome.detail,
                 comm.is_root() ? fmt::format(", peak memory {}", mib(record.peak_memory_bytes))
                                : "");
    summary.stages.push_back(std::move(record));
  }
  } catch (...) {
    // What completed stays in place (the next run skips it); say so before the error itself.
    if (comm.is_root() && current < stages.size()) {
      StageRecord failed;
      failed.name = stages[current].name;
      failed.status = "failed";
      try {
        throw;
      } catch (const std::exception& e) {
        failed.detail = e.what();
      } catch (...) {
        failed.detail = "unknown error";
      }
      if (const auto newline = failed.detail.find('\n'); newline != std::string::npos) {
        failed.detail.resize(newline);
      }
      summary.stages.push_back(std::move(failed));
      summary.seconds = seconds_since(start);
      summary.peak_memory_bytes = peak_memory_bytes();
      spdlog::error("the job stopped in stage {}; the stages before it are complete and a "
                    "rerun skips them:\n{}",
                    stages[current].name, summary_table(summary));
    }
    throw;
  }
  on_root(comm, [&] {
    std::error_code ec;
    // The lock file stays (removing it while held would let two later runs lock different
    // files of the same name); the staging directories are gone.
    fs::remove(out / staging_root, ec);  // only when empty, i.e. never while the lock is there
  });
  summary.seconds = seconds_since(start);
  summary.peak_memory_bytes = 0;
  for (const auto& s : summary.stages) {
    if (s.status != "ran" && s.status != "resumed") continue;  // this run's stages only
    summary.peak_memory_bytes = std::max(summary.peak_memory_bytes, s.peak_memory_bytes);
  }
  if (summary.peak_memory_bytes == 0) summary.peak_memory_bytes = peak_memory_bytes();
  return summary;
}

std::string summary_table(const RunSummary& s) {
  std::string text = fmt::format("{:<15} {:<14} {:>9} {:>10}  {}\n", "stage", "status", "time",
                                 "peak mem", "backend / detail");
  for (const auto& r : s.stages) {
    std::string what = r.backend;
    if (!r.detail.empty()) what += (what.empty() ? "" : "; ") + r.detail;
    const bool ran = r.status == "ran" || r.status == "resumed";
    // A skipped stage shows, in parentheses, what its run took when it wrote the outputs.
    const bool recorded = r.status == "skipped" && !r.ran_at.empty();
    std::string time = "-", memory = "-";
    if (ran || r.status == "not available") time = fmt::format("{:.1f} s", r.seconds);
    if (ran) memory = mib(r.peak_memory_bytes);
    if (recorded) {
      time = fmt::format("({:.1f} s)", r.seconds);
      memory = fmt::format("({})", mib(r.peak_memory_bytes));
    }
    text += fmt::format("{:<15} {:<14} {:>9} {:>10}  {}\n", r.name, status_word(r), time, memory,
                        what);
  }
  text += fmt::format("total {:.1f} s, peak memory {}, {} rank(s); results in {}\n", s.seconds,
                      mib(s.peak_memory_bytes), s.ranks, s.output_dir);
  return text;
}

std::string to_json(const RunSummary& s) {
  std::vector<std::string> stages;
  for (const auto& r : s.stages) {
    std::vector<std::string> outputs;
    for (const auto& o : r.outputs) outputs.push_back(fmt::format("\"{}\"", json_escape(o)));
    stages.push_back(fmt::format(
        R"({{"name":"{}","status":"{}","detail":"{}","backend":"{}","key":"{}","seconds":{:.3f},)"
        R"("peak_memory_bytes":{},"ran_at":"{}","outputs":[{}],"summary":{}}})",
        r.name, r.status, json_escape(r.detail), json_escape(r.backend), r.key, r.seconds,
        r.peak_memory_bytes, json_escape(r.ran_at), fmt::join(outputs, ","),
        r.json.empty() ? "null" : r.json));
  }
  return fmt::format(
      R"({{"command":"run","job":"{}","output_dir":"{}","report":"{}","ranks":{},)"
      R"("seconds":{:.3f},"peak_memory_bytes":{},"stages":[{}]}})",
      json_escape(s.job), json_escape(s.output_dir), json_escape(s.report_path), s.ranks,
      s.seconds, s.peak_memory_bytes, fmt::join(stages, ","));
}

}  // namespace vsense::jobs
