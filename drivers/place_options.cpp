// Options shared by `vsense place` and `vsense place-bench`.
#include "place_options.hpp"

#include "vsense/kernels/errors.hpp"

namespace vsense::drivers {

namespace placement = solvers::placement;

void add_place_options(CLI::App& cmd, PlaceArgs& args) {
  cmd.add_option("modes", args.modes, "Modes file (vsense modes output)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--sensors,-s", args.sensors, "Number of triaxial sensors")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--candidates", args.candidates,
                 "Candidate nodes: an NSET of the model or a node-list file (default: the "
                 "surface nodes of the mesh)");
  cmd.add_option("--exclude", args.exclude,
                 "Remove these nodes (NSET or node-list file) from the candidates; repeatable");
  cmd.add_option("--targets", args.targets,
                 "Stress target nodes of min-variance/two-phase (NSET or file; default: all "
                 "nodes)");
  cmd.add_option("--min-distance", args.min_distance,
                 "Smallest distance between two sensors [model length units]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--modes,-m", args.n_modes,
                 "Use the first K modes (counted after the rigid-body modes are left out)");
  cmd.add_flag("--skip-rigid,!--keep-rigid", args.skip_rigid,
               "Leave out rigid-body modes, f < --rigid-hz (default: on)");
  cmd.add_option("--rigid-hz", args.rigid_hz, "Rigid-body mode threshold [Hz]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--mode-weighting", args.weighting,
                 "Modal-displacement weighting of min-variance: none|displacement|auto "
                 "(auto: on for two-phase only)")
      ->check(CLI::IsMember({"auto", "none", "displacement"}))
      ->capture_default_str();
  cmd.add_option("--weight-exponent", args.weight_exponent,
                 "p of the weights w_k = (omega_1/omega_k)^p (3: white-noise force excitation)")
      ->capture_default_str();
  cmd.add_option("--snr", args.snr,
                 "RMS signal / RMS noise of the mean channel (scales the modal prior)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--correlation-length", args.correlation_length,
                 "lambda of the correlated prediction error exp(-d/lambda) between sensors "
                 "(d-optimal, min-variance, two-phase; 0 = uncorrelated) [model length units]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--efi-fraction", args.efi_fraction,
                 "efi/efi-dpr: fraction of the nodes removed per round (default: 2.5/5/10 % "
                 "for <=1000/<=5000/more nodes; 0: one node per round)");
  cmd.add_option("--backend", args.backend, "auto|cpu|cuda (auto: GPU when present)")
      ->capture_default_str();
}

placement::ProblemRequest problem_request(const PlaceArgs& args, bool need_stress,
                                          bool keep_target_stress) {
  placement::ProblemRequest request;
  request.candidates = args.candidates;
  request.exclude = args.exclude;
  request.targets = args.targets;
  request.max_modes = args.n_modes;
  request.skip_rigid = args.skip_rigid;
  request.rigid_hz = args.rigid_hz;
  request.need_stress = need_stress;
  request.keep_target_stress = keep_target_stress;
  return request;
}

placement::Options placement_options(const PlaceArgs& args, placement::Method method) {
  placement::Options options;
  options.method = method;
  options.n_sensors = args.sensors;
  options.min_distance = args.min_distance;
  if (args.weighting != "auto") options.mode_weighting = args.weighting == "displacement";
  options.weight_exponent = args.weight_exponent;
  options.snr = args.snr;
  options.correlation_length = args.correlation_length;
  options.efi_fraction = args.efi_fraction;
  return options;
}

io::PlacementData placement_data(const PlaceArgs& args, const io::ModesData& modes,
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
  data.options["min_distance"] = args.min_distance;
  data.options["snr"] = args.snr;
  data.options["correlation_length"] = args.correlation_length;
  data.options["weight_exponent"] = args.weight_exponent;
  data.options["rigid_hz"] = args.skip_rigid ? args.rigid_hz : 0.0;
  if (result.method == placement::Method::two_phase) {
    data.options["phase1_criterion"] = result.phase1_criterion;
    data.options["n_exchanges"] = static_cast<double>(result.n_exchanges);
  }
  data.text_options["mode_weighting"] = args.weighting;
  data.text_options["candidates"] = args.candidates.empty() ? "surface" : args.candidates;
  data.text_options["targets"] = args.targets.empty() ? "all" : args.targets;
  data.text_options["source_file"] = args.modes;
  return data;
}

}  // namespace vsense::drivers
