#pragma once
/// @file place_options.hpp
/// @brief Options shared by `vsense place` and `vsense place-bench`.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "vsense/io/modes_file.hpp"
#include "vsense/io/placement_file.hpp"
#include "vsense/solvers/placement.hpp"

namespace vsense::drivers {

struct PlaceArgs {
  std::string modes;                  ///< modes file
  std::string backend = "auto";
  std::string candidates, targets;    ///< "" = surface nodes / all nodes
  std::vector<std::string> exclude;
  std::string weighting = "auto";     ///< auto|none|displacement
  std::size_t sensors = 0;
  std::size_t n_modes = 0;            ///< --modes K (0 = all)
  bool skip_rigid = true;
  double rigid_hz = 0.01;
  double min_distance = 0.0;
  double weight_exponent = 3.0;
  double snr = 100.0;
  double correlation_length = 0.0;
  double efi_fraction = -1.0;
};

/// Adds the modes file, --sensors and every problem/criterion option (not --method, --out).
void add_place_options(CLI::App& cmd, PlaceArgs& args);

solvers::placement::ProblemRequest problem_request(const PlaceArgs& args, bool need_stress,
                                                   bool keep_target_stress);

solvers::placement::Options placement_options(const PlaceArgs& args,
                                              solvers::placement::Method method);

/// The placement file content of a result (node ids, coordinates, options as attributes).
io::PlacementData placement_data(const PlaceArgs& args, const io::ModesData& modes,
                                 const solvers::placement::Problem& problem,
                                 const solvers::placement::Result& result,
                                 const std::string& modes_sha256);

}  // namespace vsense::drivers
