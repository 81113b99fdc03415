// The demo as a built-in job: its TOML text, and the job parsed from it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "vsense/jobs/job_file.hpp"

namespace vsense::jobs {

namespace {

/// The S-N curve the demo writes next to its job (jobs/examples/sn/weld_fat90_two_slope.toml):
/// no cut-off, so that even the modest stresses of an hour of operation accumulate damage.
constexpr const char* demo_sn_curve = R"(# S-N curve of the vsense demo (schema_version 1): a two-slope curve for a
# welded detail of the IIW / DNV-RP-C203 form, 90 MPa at 2e6 cycles, m = 3 down to the knee
# at 1e7 cycles, m = 5 below, no cut-off. An example: check values against your standard.
schema_version = 1

[curve]
type = "basquin"
name = "weld FAT 90, m = 3/5, knee at 1e7"
stress_unit = "MPa"
reference_range = 90.0
reference_cycles = 2.0e6
slope = 3.0
knee_cycles = 1.0e7
slope_below_knee = 5.0
)";

}  // namespace

std::string demo_job_text(const DemoOptions& o) {
  std::vector<std::string> methods;
  for (const auto& m : o.methods) methods.push_back("\"" + m + "\"");
  const double rate = o.sample_rate_hz > 0.0 ? o.sample_rate_hz : 400.0;
  return fmt::format(
      R"(# The vsense demo as a job file: `vsense run demo-job.toml` reruns it (stages whose
# inputs and settings are unchanged are skipped), and any of it can be edited.
schema_version = 1
name = "demo"
output_dir = "."              # this directory
units = "SI"
backend = "{backend}"
unavailable_stages = "skip"   # a stage this build lacks is reported, the rest still runs

[model]
builtin = "genset"            # the built-in engine-generator set
dofs = {dofs}

[modes]
count = {modes}

[placement]
sensors = {sensors}
compare = [{methods}]
use = "{use}"                 # the layout the simulation and reconstruction use

[simulation]                  # an hour of operation, measured by the chosen sensors
duration_s = {duration}
sample_rate_hz = {rate}
unit = "g"
noise = 0.0002                # RMS sensor noise, g
rpm = 1500
seed = 1

[reconstruction]
nodes = "FRAME_TOP"           # the welded top of the base frame

[fatigue]
sn_curve = "demo-sn-curve.toml"

[report]
worst_nodes = 5
window_s = 2.0
title = "vsense demo: engine-generator set"
)",
      fmt::arg("backend", o.backend), fmt::arg("dofs", o.dofs), fmt::arg("modes", o.n_modes),
      fmt::arg("sensors", o.sensors), fmt::arg("methods", fmt::join(methods, ", ")),
      fmt::arg("use", o.methods.empty() ? "" : o.methods.back()),
      fmt::arg("duration", o.duration_s), fmt::arg("rate", rate));
}

std::string demo_sn_curve_text() { return demo_sn_curve; }

}  // namespace vsense::jobs
