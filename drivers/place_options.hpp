#pragma once
/// @file place_options.hpp
/// @brief Command-line options shared by `vsense place` and `vsense place-bench`.
#include <CLI/CLI.hpp>

#include "vsense/jobs/place_stage.hpp"

namespace vsense::drivers {

using PlaceArgs = jobs::PlacementSettings;

/// Adds the modes file, --sensors and every problem/criterion option (not --method, --out).
void add_place_options(CLI::App& cmd, PlaceArgs& args);

}  // namespace vsense::drivers
