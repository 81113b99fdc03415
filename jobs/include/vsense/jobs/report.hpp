#pragma once
/// @file report.hpp
/// @brief The report stage: an HTML page (report/index.html) with PNG plots of what a job did:
/// run summary, frequencies, sensor layout on the model, placement comparison, stress and
/// fatigue damage at the worst nodes, estimated against true stress (when the archive was
/// simulated), and links to the XDMF files for ParaView.
///
/// The numbers are computed here (C++) and written as CSV files next to the page; the plots
/// are drawn from those CSVs by a matplotlib script compiled into vsense (jobs/report/
/// vsense_report_plots.py), run with python3 ($VSENSE_PYTHON to choose). Without python3 and
/// matplotlib the page is written without plots and says why; the page never shows a plot
/// that was not drawn.
///
/// True stress (simulated archives): sigma_t(k) = sum_i Psi_i(t) q_i(k) from the modal stresses
/// of the modes file and the truth file's modal coordinates, with the settling intervals of the
/// results left out as the reconstruction leaves them out. True damage: the same rainflow and
/// S-N curve as the reconstruction, on the true equivalent stress.
#include <string>
#include <vector>

#include "vsense/jobs/job_file.hpp"
#include "vsense/jobs/pipeline.hpp"

namespace vsense::jobs {

struct ReportRequest {
  const JobSpec* job = nullptr;
  std::string output_dir;       ///< the job's output directory (links are relative to it)
  std::string report_dir;       ///< where index.html, the PNGs and CSVs go
  std::string modes_path;
  std::string modes_xdmf;       ///< link target relative to report_dir ("" = none)
  std::string placement_path;   ///< "" = none
  std::string comparison_dir;   ///< the placement comparison (place_bench.csv); "" = none
  std::string truth_path;       ///< simulation truth; "" = none (measured archives)
  std::string results_path;     ///< reconstruction results; "" = none (not run/not available)
  std::string results_xdmf;     ///< link target relative to report_dir
  std::vector<StageRecord> stages;  ///< the stages before the report
  std::string python;           ///< interpreter; "" = $VSENSE_PYTHON, python3
};

struct ReportSummary {
  std::string index_path;
  std::vector<std::string> plots;    ///< PNG files drawn
  std::vector<std::string> missing;  ///< plots that could not be drawn, with the reason
  std::vector<std::int64_t> worst_nodes;
  std::string detail;                ///< one line for the run summary
  double seconds = 0.0;
};

/// @brief Writes the report (rank 0 only; not collective).
/// @throws InputError for unreadable inputs, IoError when the page cannot be written. Missing
///         plotting tools are not an error (the page says so).
ReportSummary write_report(const ReportRequest& request);

/// @brief A python3 that has matplotlib: `given`, $VSENSE_PYTHON, python3 on the PATH,
/// /usr/bin/python3; "" when there is none (and `why` says what to install).
std::string find_report_python(const std::string& given, std::string& why);

/// One-object JSON of a report (`"command":"report"`).
std::string to_json(const ReportSummary& summary);

}  // namespace vsense::jobs
