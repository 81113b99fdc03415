// `vsense model generate`: writes a built-in parametric model as a plain .inp deck.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/genset.hpp"

namespace vsense::drivers {

namespace {

struct GenerateOptions {
  std::string model_name = "genset";
  std::string dofs = "1e5";  // text, so that 1e6 and 1000000 are both accepted
  std::string out;
  std::string element = "c3d8";
};

constexpr const char* kFooter = R"(
The genset: a ~1.5 MW diesel engine-generator set, the built-in test and demonstration model.
  FRAME      welded steel base frame, 6 m long: two I-section rails (300 mm deep, 180 mm
             flanges) joined by five cross-member plates; E = 210 GPa, nu = 0.3, 7850 kg/m^3.
             Held at its anchor-bolt footprints (rail undersides below the cross members).
  ENGINE     V engine block, 9 t: crankcase, oil sump, two cylinder banks, flywheel housing,
             three cast feet per side (cast-iron moduli, smeared density).
  GENERATOR  generator, 6 t: stator frame, terminal box, rear end shield, three feet per side.
  mounts     12 resilient mounts (SPRING2 per direction, 5e6 N/m vertical, 2e6 N/m shear),
             a flexible coupling (SPRINGA), turbochargers (400 kg) on SPRINGA stays, a radiator
             (900 kg) tied to the frame, ancillaries (4 x 60 kg) on the crankcase (MASS).
Units: m, kg, s, N, Pa. Axes: x along the crankshaft, y lateral, z up; z = 0 is the foundation.
Sets: NSET FRAME, ENGINE, GENERATOR, FRAME_TOP, FIXED, ENGINE_FEET, GENERATOR_FEET, SURFACE,
  MOUNT_UPPER, MOUNT_LOWER, EQUIPMENT; ELSET FRAME, ENGINE, GENERATOR, SOLIDS, MOUNTS,
  MOUNTS_X|Y|Z, ENGINE_MOUNTS, GENERATOR_MOUNTS, COUPLING, SPRINGS, POINT_MASSES.
The deck has no *STEP. Its first twelve modes are the engine and generator moving on their
mounts (about 4.5-20 Hz); flexible modes of the bodies and the frame start above 100 Hz.
Time grows linearly with --dofs (1e4 .. 1e7); memory stays at a few MB (the mesh is streamed).

Example:
  vsense model generate genset --dofs 1e6 --out genset.inp
  (to run CalculiX on it, append *STEP, *FREQUENCY, *END STEP in a file that *INCLUDEs it))";

std::int64_t parse_dofs(const std::string& text) {
  double value = 0.0;
  std::size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(value) || value <= 0.0) {
    throw InputError(fmt::format("--dofs {}: expected a positive number such as 100000 or 1e6",
                                 text));
  }
  return std::llround(value);
}

}  // namespace

void register_model_generate(CLI::App& model, CommonOptions& common) {
  auto options = std::make_shared<GenerateOptions>();
  auto* cmd = model.add_subcommand("generate", "Write a built-in parametric model (.inp)");
  cmd->footer(kFooter);
  cmd->add_option("model", options->model_name, "The model to write; `genset` is the one offered")
      ->check(CLI::IsMember({"genset"}, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--dofs", options->dofs,
                  "Approximate number of DOFs, 1e4 .. 1e7 (the mesh lands within 20%)")
      ->capture_default_str();
  cmd->add_option("-o,--out", options->out, "The .inp file to write (written atomically)")
      ->required();
  cmd->add_option("--element", options->element, "Solid element: c3d8 or c3d20r")
      ->check(CLI::IsMember({"c3d8", "c3d20r"}, CLI::ignore_case))
      ->capture_default_str();

  cmd->callback([options, &common] {
    model::GensetOptions genset;
    genset.target_dofs = parse_dofs(options->dofs);
    const auto type = model::parse_element_type(options->element);
    if (!type) throw InputError(fmt::format("--element {}: unknown element type", options->element));
    genset.element = *type;

    const auto start = std::chrono::steady_clock::now();
    const model::GensetSummary summary = model::write_genset(genset, options->out);
    const double seconds = seconds_since(start);

    if (common.json) {
      std::cout << fmt::format(
          "{{\"command\": \"model generate\", \"model\": \"{}\", \"out\": \"{}\", "
          "\"element\": \"{}\", \"target_dofs\": {}, \"nodes\": {}, \"elements\": {}, "
          "\"dofs\": {}, \"seconds\": {:.3f}, \"peak_memory_bytes\": {}}}\n",
          json_escape(options->model_name), json_escape(options->out),
          model::element_type_name(genset.element), genset.target_dofs, summary.n_nodes,
          summary.n_elements, summary.n_dofs, seconds, peak_memory_bytes());
    } else if (!common.quiet) {
      std::cout << fmt::format(
          "wrote {}: genset ({}), {} nodes, {} elements, {} DOFs (target {}) in {:.2f} "
          "s, peak memory {:.0f} MB\n",
          options->out, model::element_type_name(genset.element), summary.n_nodes,
          summary.n_elements, summary.n_dofs, genset.target_dofs, seconds,
          static_cast<double>(peak_memory_bytes()) / 1e6);
    }
  });
}

}  // namespace vsense::drivers
