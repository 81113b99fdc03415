// vsense simulate modes.h5 (--placement P | --sensors FILE | --sensor-set NSET) --out A.h5
// A synthetic measurement archive of the genset in operation, and the true modal response.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/simulate.hpp"

namespace vsense::drivers {

namespace {


std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// "A:B" -> (A, B)
std::pair<double, double> parse_pair(const std::string& text, const std::string& option) {
  const auto parts = split(text, ':');
  if (parts.size() != 2) throw InputError(fmt::format("{}: \"{}\" is not A:B", option, text));
  return {parse_number(parts[0], option), parse_number(parts[1], option)};
}

std::string default_truth_path(const std::string& out) {
  std::filesystem::path p(out);
  const std::string stem = p.extension() == ".h5" ? p.stem().string() : p.filename().string();
  return (p.parent_path() / (stem + "-truth.h5")).string();
}

std::string summary_json(const solvers::SimulateSummary& s, double total_seconds) {
  std::vector<std::string> files;
  for (const auto& f : s.archive_files) files.push_back("\"" + json_escape(f) + "\"");
  // Channel RMS as min / mean / max: archives may have thousands of channels.
  double rms_min = s.channel_rms.empty() ? 0.0 : s.channel_rms.front(), rms_max = rms_min;
  double rms_mean = 0.0;
  for (const double v : s.channel_rms) {
    rms_min = std::min(rms_min, v);
    rms_max = std::max(rms_max, v);
    rms_mean += v / static_cast<double>(s.channel_rms.size());
  }
  const double values = static_cast<double>(s.n_samples) * static_cast<double>(s.channels.size());
  return fmt::format(
      R"({{"command":"simulate","archive_files":[{}],"truth":"{}","units":"{}","n_samples":{},)"
      R"("sample_rate_hz":{:.12g},"duration_s":{:.12g},"n_channels":{},"channel_unit":"{}",)"
      R"("channel_rms":{{"min":{:.6g},"mean":{:.6g},"max":{:.6g}}},)"
      R"("n_modes":{},"mode_indices":[{}],"frequencies_hz":[{:.9g}],)"
      R"("excluded_modes":[{}],"load_set":"{}","n_load_nodes":{},"n_orders":{},)"
      R"("broadband_set":"{}","n_broadband_inputs":{},"warm_up_s":{:.6g},)"
      R"("timings_s":{{"simulate":{:.3f},"total":{:.3f}}},"samples_per_s":{:.6g},)"
      R"("channel_samples_per_s":{:.6g},"peak_memory_bytes":{}}})",
      fmt::join(files, ","), json_escape(s.truth_path), s.units, s.n_samples, s.sample_rate_hz,
      static_cast<double>(s.n_samples) / s.sample_rate_hz, s.channels.size(),
      s.channels.empty() ? "" : json_escape(s.channels.front().unit), rms_min, rms_mean, rms_max,
      s.mode_indices.size(), fmt::join(s.mode_indices, ","), fmt::join(s.frequencies_hz, ","),
      fmt::join(s.excluded_modes, ","), json_escape(s.load_set_used), s.n_load_nodes, s.n_orders,
      json_escape(s.broadband_set_used), s.n_broadband_inputs, s.warm_up_s, s.simulate_seconds,
      total_seconds, static_cast<double>(s.n_samples) / s.simulate_seconds,
      values / s.simulate_seconds, peak_memory_bytes());
}

}  // namespace

void register_simulate(CLI::App& app, CommonOptions& common) {
  struct Args {
    solvers::SimulateRequest request;
    std::string dtype = "float32", damping = "0.02", run_up, speed_profile, band = "2:500";
    std::string truth;
    bool no_truth = false;
    std::string crank_axis = "x";
  };
  auto args = std::make_shared<Args>();
  auto& r = args->request;
  auto* cmd = app.add_subcommand(
      "simulate",
      "Synthetic measurement archive of a machine in operation, with the true response.\n"
      "Engine-order harmonics (a four-stroke engine: orders 0.5, 1, 1.5, ...; torque reaction,\n"
      "forces and moments at the engine feet) and band-limited random forces at the mounts,\n"
      "over the modes with modal damping, integrated exactly in discrete time and streamed:\n"
      "hours at kHz rates run in constant memory. Writes the archive (one or more files of\n"
      "format vsense-archive) and a truth file (vsense-simulation-truth: the modal\n"
      "coordinates q, u = Phi q, for checking reconstructions).\n"
      "Example: vsense simulate modes.h5 --sensor-set FRAME_TOP --duration 600 --out run.h5");
  cmd->add_option("modes", r.modes_path, "Modes file (vsense-modes)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", r.out_path,
                  "Archive file; with --segment-s the files are STEM-000.h5, STEM-001.h5, ...")
      ->required();
  cmd->add_option("--truth", args->truth, "Truth file (default: STEM-truth.h5 beside --out)");
  cmd->add_flag("--no-truth", args->no_truth, "Write no truth file");
  cmd->add_flag("--truth-accelerations", r.truth_accelerations,
                "Also store the modal accelerations in the truth file");
  auto* group = cmd->add_option_group("sensors", "Where the sensors are (exactly one)");
  group
      ->add_option("--placement", r.placement_path,
                   "Placement file: triaxial sensors at /placement/node_ids")
      ->check(CLI::ExistingFile);
  group
      ->add_option("--sensors", r.sensors_file,
                   "Node list file: one node per line (sensor on each axis of --directions), "
                   "or NODE DX DY DZ for one channel in that direction")
      ->check(CLI::ExistingFile);
  group->add_option("--sensor-set", r.sensor_set, "Node set of the model (e.g. FRAME_TOP)");
  group->require_option(1);
  cmd->add_option("--directions", r.directions, "Axes measured at each sensor node")
      ->capture_default_str();
  cmd->add_option("--unit", r.channel_unit, "Channel unit: g, m/s^2 or mm/s^2")
      ->check(CLI::IsMember({"g", "m/s^2", "mm/s^2"}))
      ->capture_default_str();
  cmd->add_option("--noise", r.noise_rms, "Sensor noise RMS, in the channel unit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "Sample type in the archive: float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  cmd->add_option("--compress", r.compression_level, "Deflate level 0 (none) .. 9")
      ->check(CLI::Range(0, 9))
      ->capture_default_str();
  cmd->add_option("--sample-rate", r.sample_rate_hz, "Samples per second [Hz]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--duration", r.duration_s, "Length of the archive [s]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--start-time", r.start_time, "Time of the first sample, ISO 8601 UTC")
      ->capture_default_str();
  cmd->add_option("--segment-s", r.segment_s, "Split into files of this many seconds (e.g. 3600)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", r.seed, "Seed of phases, random forces and noise")
      ->capture_default_str();
  cmd->add_option("--warm-up", r.warm_up_s,
                  "Seconds simulated before the first sample and not recorded (default: five "
                  "time constants of the slowest mode, at most 60 s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--modes,-m", r.n_modes, "Use the lowest M modes (default: all in the file)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--damping", args->damping,
                  "Modal damping ratio: one value, or one per mode used, comma-separated")
      ->capture_default_str();
  cmd->add_option("--min-frequency", r.min_frequency_hz,
                  "Modes below this frequency (rigid-body modes) are left out [Hz]")
      ->capture_default_str();
  cmd->add_option("--rpm", r.rpm, "Engine speed [rpm]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--run-up", args->run_up,
                  "FROM_RPM:SECONDS: ramp from FROM_RPM to --rpm over the first SECONDS");
  cmd->add_option("--speed-profile", args->speed_profile,
                  "T:RPM,T:RPM,...: piecewise-linear speed over time [s:rpm], held outside");
  cmd->add_option("--cylinders", r.cylinders,
                  "Cylinders of the four-stroke engine (firing order = cylinders / 2)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-order", r.max_order, "Highest engine order")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--engine-force", r.engine_force_n,
                  "Vertical force amplitude scale of the orders [N]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--engine-moment", r.engine_moment_nm,
                  "Roll moment amplitude scale of the orders [N m]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--firing-gain", r.firing_gain, "Roll moment gain on the firing orders")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--order-decay", r.order_decay, "Amplitudes fall as (1 + order)^-DECAY")
      ->capture_default_str();
  cmd->add_option("--crank-axis", args->crank_axis, "Model axis along the crankshaft")
      ->check(CLI::IsMember({"x", "y"}))
      ->capture_default_str();
  cmd->add_option("--load-set", r.load_set,
                  "Node set the engine loads act on (default: ENGINE_FEET, else MOUNT_UPPER, "
                  "else the 8 nodes nearest the centroid)");
  cmd->add_option("--broadband-rms", r.broadband_rms_n,
                  "Random force RMS per node and direction [N] (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--broadband-band", args->band,
                  "LO:HI band of the random forces [Hz] (HI is clipped below Nyquist)")
      ->capture_default_str();
  cmd->add_option("--broadband-set", r.broadband_set,
                  "Node set of the random forces (default: MOUNT_UPPER, else the load nodes)");

  cmd->callback([args, &common] {
    const auto start = std::chrono::steady_clock::now();
    auto& request = args->request;
    request.sample_type =
        args->dtype == "float64" ? io::SampleType::float64 : io::SampleType::float32;
    request.crank_axis = args->crank_axis.front();
    request.damping.clear();
    for (const auto& part : split(args->damping, ',')) {
      request.damping.push_back(parse_number(part, "--damping"));
    }
    std::tie(request.broadband_low_hz, request.broadband_high_hz) =
        parse_pair(args->band, "--broadband-band");
    if (!args->run_up.empty() && !args->speed_profile.empty()) {
      throw InputError("give --run-up or --speed-profile, not both");
    }
    if (!args->run_up.empty()) {
      const auto [from_rpm, seconds] = parse_pair(args->run_up, "--run-up");
      if (!(seconds > 0.0)) throw InputError("--run-up: the ramp needs a positive duration");
      request.speed_profile = {{0.0, from_rpm}, {seconds, request.rpm}};
    }
    if (!args->speed_profile.empty()) {
      for (const auto& point : split(args->speed_profile, ',')) {
        request.speed_profile.push_back(parse_pair(point, "--speed-profile"));
      }
    }
    request.truth_path = args->no_truth        ? ""
                         : args->truth.empty() ? default_truth_path(request.out_path)
                                               : args->truth;
    const solvers::SimulateSummary summary = solvers::run_simulate(request);
    const double total = seconds_since(start);
    const double values =
        static_cast<double>(summary.n_samples) * static_cast<double>(summary.channels.size());
    spdlog::info(
        "{} samples x {} channels at {} Hz in {} file(s); {} modes ({:.2f} .. {:.2f} "
        "Hz); {:.3g} channel-samples/s",
        summary.n_samples, summary.channels.size(), summary.sample_rate_hz,
        summary.archive_files.size(), summary.mode_indices.size(), summary.frequencies_hz.front(),
        summary.frequencies_hz.back(), values / summary.simulate_seconds);
    if (!summary.truth_path.empty()) spdlog::info("truth: {}", summary.truth_path);
    if (common.json) std::cout << summary_json(summary, total) << "\n";
  });
}

}  // namespace vsense::drivers
