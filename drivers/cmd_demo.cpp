// vsense demo: the whole pipeline on the built-in genset model, as a built-in job.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "vsense/jobs/job_file.hpp"
#include "vsense/jobs/pipeline.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::drivers {

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  const auto partial = path.string() + ".partial";
  std::ofstream out(partial, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw IoError(fmt::format("{}: cannot write", partial));
  std::filesystem::rename(partial, path);
}

}  // namespace

void register_demo(CLI::App& app, CommonOptions& common) {
  struct Args {
    jobs::DemoOptions demo;
    std::string methods = "d-optimal,efi,two-phase";
    bool no_plots = false, force = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "demo",
      "The whole pipeline on the built-in engine-generator set (genset): generate the model,\n"
      "compute its modes, compare three sensor placements, simulate an hour of operation\n"
      "measured by the chosen sensors, reconstruct stresses and fatigue damage at the top of\n"
      "the base frame, and write a report (HTML with plots, XDMF files for ParaView).\n"
      "The demo is a job: OUT-DIR/demo-job.toml is written first and run as `vsense run` runs\n"
      "it, so a second `vsense demo` (or `vsense run OUT-DIR/demo-job.toml`) redoes only what\n"
      "changed. A few minutes on 2 cores at the default size.\n"
      "Example: vsense demo --dofs 100000 --out-dir vsense-demo");
  auto& d = args->demo;
  cmd->add_option("--out-dir,-o", d.output_dir, "Where to write the model, results and report")
      ->capture_default_str();
  cmd->add_option("--dofs", d.dofs, "Size of the genset model in DOFs (1e4 .. 1e7)")
      ->check(CLI::Range(std::int64_t{10000}, std::int64_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--modes,-m", d.n_modes, "Number of modes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--sensors,-s", d.sensors, "Triaxial sensors to place")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--methods", args->methods,
                  "Placement methods to compare (comma-separated; the last is used)")
      ->capture_default_str();
  cmd->add_option("--duration", d.duration_s, "Seconds of simulated operation")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--sample-rate", d.sample_rate_hz,
                  "Sample rate of the simulated archive [Hz] (default 400: above 2.5 times the "
                  "20th mode of the default genset)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--backend", d.backend, "auto|cpu|cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--no-plots", args->no_plots, "Write the report without plots");
  cmd->add_flag("--force", args->force, "Run every stage again");
  cmd->callback([args, &common] {
    const auto& comm = *common.comm;
    auto& demo = args->demo;
    demo.methods = jobs::parse_method_list(args->methods);
    if (demo.methods.size() == 1 && demo.methods.front() == "all") demo.methods.clear();
    demo.plots = !args->no_plots;
    const std::filesystem::path dir = std::filesystem::absolute(demo.output_dir);
    const auto job_path = dir / "demo-job.toml";
    std::string text = jobs::demo_job_text(demo);
    if (!demo.plots) text += "plots = false\n";  // the [report] section is last
    cluster::collectively(comm, [&] {
      if (!comm.is_root()) return;
      std::filesystem::create_directories(dir);
      write_file(dir / "demo-sn-curve.toml", jobs::demo_sn_curve_text());
      write_file(job_path, text);
    });
    jobs::JobSpec job;
    cluster::collectively(comm, [&] { job = jobs::load_job(job_path.string()); });
    jobs::RunOptions options;
    options.force = args->force;
    options.allow_unavailable = true;  // the demo finishes and says what this build lacks
    const jobs::RunSummary summary = jobs::run_job(job, options, comm);
    if (!comm.is_root()) return;
    if (!common.quiet) fmt::print(stderr, "\n{}", jobs::summary_table(summary));
    for (const auto& stage : summary.stages) {
      if (stage.status == "not available") {
        fmt::print(stderr, "note: the {} stage is not available in this build: {}\n", stage.name,
                   stage.detail);
      }
    }
    fmt::print(stderr,
               "\nvsense demo finished in {:.1f} s.\n"
               "  report:   {}\n"
               "  ParaView: {}/modes.xdmf{}\n"
               "  job file: {} (rerun or edit with vsense run)\n",
               summary.seconds, summary.report_path, dir.string(),
               std::filesystem::exists(dir / "results.xdmf")
                   ? fmt::format(", {}/results.xdmf", dir.string())
                   : "",
               job_path.string());
    if (common.json) std::cout << jobs::to_json(summary) << "\n";
  });
}

}  // namespace vsense::drivers
