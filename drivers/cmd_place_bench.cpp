// vsense place-bench modes.h5 --sensors S [--methods LIST] [--out-dir DIR] [--plots]
// Runs several placement methods on one model and compares their layouts (the stage is
// jobs::run_place_bench; metrics defined in solvers/include/vsense/solvers/placement.hpp).
#include <iostream>

#include "commands.hpp"
#include "place_options.hpp"

namespace vsense::drivers {

void register_place_bench(CLI::App& app, CommonOptions& common) {
  struct Args {
    PlaceArgs place;
    std::string methods = "all", out_dir = "place-bench", plot_script;
    std::size_t samples = 200;
    std::uint64_t seed = 1;
    bool plots = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "place-bench",
      "Compare placement methods on one model: log det FIM, condition number, largest\n"
      "off-diagonal MAC, stress-estimation error (trace and max of its covariance, Monte\n"
      "Carlo under sensor noise), worst loss from one failed sensor, run time.\n"
      "Writes DIR/place_bench.md, .csv, layouts.csv, one placement file per method and, with\n"
      "--plots, PNG plots (python3 + matplotlib).\n"
      "Example: vsense place-bench modes.h5 --sensors 12 --methods d-optimal,two-phase");
  add_place_options(*cmd, args->place);
  cmd->add_option("--methods", args->methods, "Comma-separated methods, or all")
      ->capture_default_str();
  cmd->add_option("--out-dir,-o", args->out_dir, "Where to write the report")->capture_default_str();
  cmd->add_option("--samples", args->samples, "Monte-Carlo samples")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Monte-Carlo seed")->capture_default_str();
  cmd->add_flag("--plots", args->plots, "Draw PNG plots with benchmarks/place_plots.py");
  cmd->add_option("--plot-script", args->plot_script, "Path of place_plots.py (default: found)");
  cmd->callback([args, &common] {
    jobs::PlaceBenchRequest request;
    request.settings = args->place;
    request.methods = jobs::parse_method_list(args->methods);
    request.out_dir = args->out_dir;
    request.samples = args->samples;
    request.seed = args->seed;
    request.plots = args->plots;
    request.plot_script = args->plot_script;
    const jobs::PlaceBenchSummary summary = jobs::run_place_bench(request, *common.comm);
    if (!common.comm->is_root()) return;
    if (common.json) {
      std::cout << jobs::to_json(summary) << "\n";
    } else {
      std::cout << summary.table_markdown;
    }
  });
}

}  // namespace vsense::drivers
