// vsense demo: the pipeline on the built-in genset model.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "commands.hpp"
#include "vsense/jobs/modes_stage.hpp"
#include "vsense/model/genset.hpp"

namespace vsense::drivers {

void register_demo(CLI::App& app, CommonOptions& common) {
  struct Args {
    std::string out_dir = "vsense-demo";
    std::int64_t dofs = 100000;
    int n_modes = 20;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Run the pipeline on the built-in engine-generator set (genset) model:\n"
      "generate the model (.inp), compute its lowest modes (modes.h5).\n"
      "Example: vsense demo --dofs 100000 --out-dir vsense-demo");
  cmd->add_option("--out-dir,-o", args->out_dir, "Where to write the model and results")
      ->capture_default_str();
  cmd->add_option("--dofs", args->dofs, "Size of the genset model in DOFs (1e4 .. 1e7)")
      ->capture_default_str();
  cmd->add_option("--modes,-m", args->n_modes, "Number of modes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([args, &common] {
    const auto start = std::chrono::steady_clock::now();
    std::filesystem::create_directories(args->out_dir);
    const auto dir = std::filesystem::path(args->out_dir);
    const std::string model_path = (dir / "genset.inp").string();

    model::GensetOptions genset;
    genset.target_dofs = args->dofs;
    spdlog::info("[1/2] generating the genset model ({} DOF) -> {}", args->dofs, model_path);
    const auto generated = model::write_genset(genset, model_path);
    spdlog::info("      {} nodes, {} elements, {} DOFs", generated.n_nodes, generated.n_elements,
                 generated.n_dofs);

    spdlog::info("[2/2] modes -> {}", (dir / "modes.h5").string());
    jobs::ModesRequest request;
    request.model_path = model_path;
    request.out_path = (dir / "modes.h5").string();
    request.options.n_modes = args->n_modes;
    const jobs::ModesSummary summary = jobs::run_modes(request, *common.comm);
    if (!common.comm->is_root()) return;

    fmt::print(stderr, "\nvsense demo finished in {:.1f} s. Results in {}/\n",
               seconds_since(start), args->out_dir);
    fmt::print(stderr, "  genset.inp  the model ({} nodes; CalculiX reads it too)\n",
               generated.n_nodes);
    fmt::print(stderr, "  modes.h5    {} modes, {:.3f} .. {:.3f} Hz\n",
               summary.frequencies_hz.size(), summary.frequencies_hz.front(),
               summary.frequencies_hz.back());
    if (common.json) std::cout << jobs::to_json(summary) << "\n";
  });
}

}  // namespace vsense::drivers
