// vsense place modes.h5 --sensors S --method METHOD [--candidates NSET|FILE] --out placement.h5
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "place_options.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"

namespace vsense::drivers {

namespace placement = solvers::placement;

void register_place(CLI::App& app, CommonOptions& common) {
  struct Args {
    PlaceArgs place;
    std::string method, out;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "place",
      "Place triaxial accelerometers on the model of a modes file.\n"
      "Methods: efi, efi-dpr, kinetic-energy, qr, minmac, d-optimal, min-variance, two-phase\n"
      "(formulas in the README). Candidates: the surface nodes unless --candidates is given.\n"
      "Example: vsense place modes.h5 --sensors 12 --method two-phase --out placement.h5");
  add_place_options(*cmd, args->place);
  cmd->add_option("--method", args->method, "Placement method")->required();
  cmd->add_option("--out,-o", args->out, "Output placement file (HDF5)")->required();
  cmd->callback([args, &common] {
    const auto start = std::chrono::steady_clock::now();
    const placement::Method method = placement::parse_method(args->method);
    const auto executor = make_executor(args->place.backend);
    spdlog::info("backend: {}", executor->description());

    const io::ModesData modes = io::read_modes(args->place.modes);
    const bool need_stress =
        method == placement::Method::min_variance || method == placement::Method::two_phase;
    const placement::Problem problem =
        placement::make_problem(modes, problem_request(args->place, need_stress, false));
    for (const auto& note : problem.notes) spdlog::info("{}", note);
    spdlog::info("{} candidate nodes, {} modes ({:.3f} .. {:.3f} Hz)", problem.n_candidates(),
                 problem.n_modes, problem.frequencies_hz.front(), problem.frequencies_hz.back());

    const placement::Result result =
        placement::place(*executor, problem, placement_options(args->place, method));
    for (const auto& warning : result.warnings) spdlog::warn("{}", warning);
    const io::PlacementData data = placement_data(args->place, modes, problem, result,
                                                  io::sha256_file(args->place.modes));
    io::write_placement(args->out, data);
    const double seconds = seconds_since(start);
    spdlog::info("{}: {} sensors in {:.3f} s ({} scoring passes), criterion {:.6g} -> {}",
                 args->method, result.sensors.size(), result.seconds, result.n_scoring_passes,
                 result.criterion.back(), args->out);
    if (method == placement::Method::two_phase) {
      spdlog::info("two-phase: phase 1 criterion {:.6g}, {} exchange(s), final {:.6g}",
                   result.phase1_criterion, result.n_exchanges, result.criterion.back());
    }
    if (common.json) {
      std::string warnings;
      for (const auto& w : result.warnings) {
        warnings += (warnings.empty() ? "\"" : ",\"") + json_escape(w) + "\"";
      }
      std::cout << fmt::format(
                       "{{\"command\":\"place\",\"out\":\"{}\",\"method\":\"{}\",\"backend\":\"{}\","
                       "\"n_sensors\":{},\"n_candidates\":{},\"n_modes\":{},\"criterion\":{:.17g},"
                       "\"criterion_name\":\"{}\",\"phase1_criterion\":{},\"n_exchanges\":{},"
                       "\"node_ids\":[{}],\"scoring_passes\":{},\"placement_seconds\":{:.6f},"
                       "\"total_seconds\":{:.6f},\"peak_memory_bytes\":{},\"warnings\":[{}]}}",
                       json_escape(args->out), args->method, json_escape(executor->description()),
                       result.sensors.size(), problem.n_candidates(), problem.n_modes,
                       result.criterion.back(), json_escape(result.criterion_name),
                       std::isfinite(result.phase1_criterion)
                           ? fmt::format("{:.17g}", result.phase1_criterion)
                           : std::string("null"),
                       result.n_exchanges, fmt::join(data.node_ids, ","),
                       result.n_scoring_passes, result.seconds, seconds, peak_memory_bytes(),
                       warnings)
                << "\n";
    }
  });
}

}  // namespace vsense::drivers
