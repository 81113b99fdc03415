// The `vsense` executable: parses the command line, runs one subcommand, and turns every error
// into one line on stderr and a distinct exit code.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>

#include "commands.hpp"
#include "vsense/cluster/communicator.hpp"
#include "vsense/jobs/pipeline.hpp"
#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/version.hpp"

namespace vsense::drivers {

double parse_number(const std::string& text, const std::string& option) {
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(value)) {
    throw vsense::InputError(fmt::format("{}: \"{}\" is not a number", option, text));
  }
  return value;
}

void register_model(CLI::App& app, CommonOptions& common) {
  auto* model = app.add_subcommand("model", "Inspect, export and generate FE models");
  model->require_subcommand(1);
  register_model_info(*model, common);
  register_model_export(*model, common);
  register_model_generate(*model, common);
}

}  // namespace vsense::drivers

int main(int argc, char** argv) {
  using namespace vsense::drivers;
  // Before anything else: OpenBLAS's generic kernels on a CPU model it does not know are 3-4x
  // slower than the ones the CPU can run; this starts the program again with the faster ones.
  vsense::restart_with_faster_blas(argv);
  // MPI only when an MPI launcher started us (mpirun, srun); otherwise one rank.
  vsense::cluster::MpiSession mpi(argc, argv);
  const int rank = mpi.world().rank();
  // Log to stderr so that --json output on stdout stays machine-readable. Ranks other than 0
  // say only what goes wrong, with their rank.
  auto logger = spdlog::stderr_color_mt("vsense");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(rank == 0 ? "[%H:%M:%S] %^%l%$: %v"
                                : fmt::format("[%H:%M:%S] [rank {}] %^%l%$: %v", rank));
  if (rank != 0) spdlog::set_level(spdlog::level::warn);

  CLI::App app{
      "vsense: modes, sensor placement and stress reconstruction for digital twins of large "
      "machines.\nRun `vsense SUBCOMMAND --help` for the options of each step."};
  app.set_version_flag("--version", std::string("vsense ") + VSENSE_VERSION);
  app.require_subcommand(1);
  CommonOptions common;
  common.comm = &mpi.world();
  app.add_flag("--json", common.json, "Print a one-object JSON summary on stdout");
  app.add_flag("-v,--verbose", common.verbose, "Debug logging");
  app.add_flag("-q,--quiet", common.quiet, "Only warnings and errors");
  app.parse_complete_callback([&] {
    if (common.verbose) spdlog::set_level(spdlog::level::debug);
    if (common.quiet || (rank != 0 && !common.verbose)) spdlog::set_level(spdlog::level::warn);
    if (mpi.active()) spdlog::debug("{}", mpi.description());
    if (const std::string note = vsense::blas_restart_note(); !note.empty()) {
      spdlog::debug("{}", note);
    }
    // Several tasks that are one rank each would all do the whole work: refuse, say why.
    vsense::jobs::check_rank_layout(mpi.world());
  });
  register_model(app, common);
  register_modes(app, common);
  register_demo(app, common);
  register_run(app, common);
  register_simulate(app, common);
  register_place(app, common);
  register_place_bench(app, common);
  register_reconstruct(app, common);
  // Every subcommand, nested ones too, accepts --json/-v/-q after its name as well.
  std::function<void(CLI::App&)> fall_through = [&](CLI::App& parent) {
    for (auto* sub : parent.get_subcommands({})) {
      sub->fallthrough();
      fall_through(*sub);
    }
  };
  fall_through(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other command-line error is a bad request (exit 2, as
    // documented), not CLI11's own codes (105 for a failed validator, ...).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const vsense::Error& e) {
    // An error every rank agreed on is printed once, by rank 0.
    if (rank == 0 || !vsense::cluster::failure_was_agreed()) {
      std::cerr << "vsense: error: " << (rank == 0 ? "" : fmt::format("rank {}: ", rank))
                << e.what() << "\n";
    }
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::cerr << "vsense: error: out of memory\n";
    return 8;
  } catch (const std::exception& e) {
    std::cerr << "vsense: internal error: " << e.what() << "\n";
    return 9;
  }
  return 0;
}
