// vsense run JOB.toml: the whole pipeline from a job file.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "vsense/jobs/job_file.hpp"
#include "vsense/jobs/pipeline.hpp"
#include "vsense/jobs/stage_support.hpp"

namespace vsense::drivers {

void register_run(CLI::App& app, CommonOptions& common) {
  struct Args {
    std::string job, output_dir;
    bool force = false, dry_run = false, check = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "run",
      "Run a study from a job file (TOML, schema_version = 1): model, modes, sensor placement\n"
      "(one method or a comparison), simulated or measured archives, reconstruction with\n"
      "fatigue, report. The whole file is checked before anything runs (every unknown key, bad\n"
      "value and missing file is listed with its line). Stages whose inputs and settings are\n"
      "unchanged since their outputs were written are skipped, so rerunning a job, or running\n"
      "it again after it was killed, redoes only what is needed. Under mpirun/srun every stage\n"
      "runs on all ranks with one result. Schema and examples: README and jobs/examples/.\n"
      "Example: vsense run jobs/examples/genset-study.toml");
  cmd->add_option("job", args->job, "Job file (TOML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--output-dir,-o", args->output_dir,
                  "Write here instead of the job's output_dir");
  cmd->add_flag("--force", args->force, "Run every stage, changed or not");
  cmd->add_flag("--dry-run", args->dry_run, "Only say which stages would run");
  cmd->add_flag("--check", args->check, "Only check the job file");
  cmd->callback([args, &common] {
    const auto& comm = *common.comm;
    jobs::JobSpec job;
    cluster::collectively(comm, [&] { job = jobs::load_job(args->job, args->output_dir); });
    if (args->check) {
      if (comm.is_root()) {
        fmt::print(stderr, "{}: valid (schema_version {}), output in {}\n", args->job,
                   jobs::job_schema_version, job.output_dir);
        if (common.json) {
          std::cout << fmt::format(R"({{"command":"run","job":"{}","valid":true,"output_dir":"{}"}})",
                                   jobs::json_escape(job.path), jobs::json_escape(job.output_dir))
                    << "\n";
        }
      }
      return;
    }
    jobs::RunOptions options;
    options.force = args->force;
    options.dry_run = args->dry_run;
    const jobs::RunSummary summary = jobs::run_job(job, options, comm);
    if (!comm.is_root()) return;
    if (!common.quiet) fmt::print(stderr, "\n{}", jobs::summary_table(summary));
    if (!summary.report_path.empty() && !args->dry_run) {
      fmt::print(stderr, "report: {}\n", summary.report_path);
    }
    if (common.json) std::cout << jobs::to_json(summary) << "\n";
  });
}

}  // namespace vsense::drivers
