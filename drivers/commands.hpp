#pragma once
/// @file commands.hpp
/// @brief Subcommand registration and what all subcommands share (JSON summary, timing).
#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "vsense/cluster/communicator.hpp"
#include "vsense/jobs/stage_support.hpp"

namespace vsense::drivers {

/// Options every subcommand has.
struct CommonOptions {
  bool json = false;     ///< print a one-object JSON summary on stdout
  bool verbose = false;  ///< debug logging
  bool quiet = false;    ///< warnings and errors only
  /// The ranks this process runs with (MPI_COMM_WORLD under mpirun/srun, else one rank).
  const cluster::Communicator* comm = nullptr;
};

/// Each register_* adds one subcommand whose callback does the work (throwing vsense errors).
void register_model(CLI::App& app, CommonOptions& common);  // model info|export|generate
void register_modes(CLI::App& app, CommonOptions& common);
void register_demo(CLI::App& app, CommonOptions& common);
void register_run(CLI::App& app, CommonOptions& common);  // cmd_run.cpp
void register_simulate(CLI::App& app, CommonOptions& common);
void register_place(CLI::App& app, CommonOptions& common);  // cmd_place.cpp
void register_place_bench(CLI::App& app, CommonOptions& common);  // cmd_place_bench.cpp
void register_reconstruct(CLI::App& app, CommonOptions& common);  // cmd_reconstruct.cpp

// model subcommands, one file each
void register_model_info(CLI::App& model, CommonOptions& common);
void register_model_export(CLI::App& model, CommonOptions& common);
void register_model_generate(CLI::App& model, CommonOptions& common);

/// A finite number given as an option's value. @throws InputError naming the option.
double parse_number(const std::string& text, const std::string& option);

// Timing, peak memory and JSON escaping are the stages' (vsense/jobs/stage_support.hpp).
using jobs::json_escape;
using jobs::peak_memory_bytes;
using jobs::seconds_since;

}  // namespace vsense::drivers
