#pragma once
/// @file pipeline.hpp
/// @brief The job runner (`vsense run`, `vsense demo`): the stages of a job in order, each
/// skipped when its inputs and settings are unchanged since its outputs were written.
///
/// Stages and what they write under the job's output directory:
///   model           genset.inp                      (built-in model only)
///   modes           modes.h5, modes.xdmf
///   placement       placement.h5 (+ placement-comparison/ for a comparison)
///   simulation      simulation/run.h5 (or run-000.h5, ...), simulation/truth.h5
///   reconstruction  results.h5, results.xdmf
///   report          report/index.html, report/*.png, report/*.csv
///
/// Change detection: a stage's key is the SHA-256 of its name, the vsense version, its settings
/// (canonical text) and the content hashes of its input files. Every HDF5 output carries it as
/// the root attribute `job_stage_sha256` (text outputs as a trailing comment); a stage whose
/// outputs all exist and carry the key it would have now is skipped.
///
/// Crash safety and resume: a stage writes into `.vsense/stage-NAME/` under the output
/// directory, its outputs are stamped there and only then moved into place, so an output that
/// is in place is complete. A run that is killed leaves its completed stages in place (the next
/// run skips them) and the staging directory of the stage it was in: the next run with the same
/// key resumes it (the reconstruction continues from its checkpoint), any other key clears it.
///
/// MPI: every rank calls run_job. Rank 0 decides, stamps and moves; serial stages run on rank 0
/// while the others wait; the reconstruction shares its time blocks between ranks. Failures are
/// agreed, so all ranks return or all throw.
#include <string>
#include <vector>

#include "vsense/cluster/communicator.hpp"
#include "vsense/jobs/job_file.hpp"

namespace vsense::jobs {

struct RunOptions {
  bool force = false;              ///< run every stage, changed or not
  bool dry_run = false;            ///< only say which stages would run
  /// A stage this build cannot run (NotCompiled: an implementation or backend missing) is
  /// reported as not available and the later stages run without its outputs (the demo).
  bool allow_unavailable = false;
};

struct StageRecord {
  std::string name;
  std::string status;    ///< ran | resumed | skipped | would run | not available | failed
  std::string detail;    ///< why (skipped: unchanged; not available: the error), what ran
  std::string backend;   ///< what the stage ran on ("" for stages without numerics)
  std::string key;       ///< the stage's key (job_stage_sha256)
  /// Wall time and peak memory (rank 0) of the stage's run; for a skipped stage those of the
  /// run that wrote its outputs (recorded in them), with `ran_at` saying when that was.
  double seconds = 0.0;
  long long peak_memory_bytes = 0;
  std::string ran_at;    ///< UTC time the stage finished (ISO 8601)
  std::vector<std::string> outputs;  ///< relative to the output directory
  std::string json;      ///< the stage's own summary (one JSON object), when it ran
};

struct RunSummary {
  std::string job;            ///< job file, or "demo"
  std::string output_dir;
  std::string report_path;    ///< report/index.html when the job has a report
  int ranks = 1;
  std::vector<StageRecord> stages;
  double seconds = 0.0;
  long long peak_memory_bytes = 0;  ///< of rank 0, whole run
};

/// @brief Runs the job's stages in order (collective over `comm`). Returns the summary on every
/// rank (complete on rank 0).
/// @throws InputError, IoError, NumericalError, NotCompiled, ... of the first stage that failed
///         (after logging what completed), on every rank.
RunSummary run_job(const JobSpec& job, const RunOptions& options,
                   const cluster::Communicator& comm);

/// One-object JSON of a run (`"command":"run"`).
std::string to_json(const RunSummary& summary);

/// The end-of-run table: stage, status, time, peak memory, backend.
std::string summary_table(const RunSummary& summary);

/// @brief Refuses to run when the process was started as several tasks but is one rank (this
/// vsense has no MPI, or MPI could not be initialised): each task would otherwise run the
/// whole job and write the same files.
/// @throws InputError saying how many tasks were started and what to do.
void check_rank_layout(const cluster::Communicator& comm);

}  // namespace vsense::jobs
