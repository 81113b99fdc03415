// vsense reconstruct modes.h5 ARCHIVE.h5... --out results.h5: stresses, displacements and
// fatigue damage at every output node from a few measured accelerations.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "vsense/jobs/reconstruct_stage.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::drivers {

void register_reconstruct(CLI::App& app, CommonOptions& common) {
  auto request = std::make_shared<jobs::ReconstructRequest>();
  auto band = std::make_shared<std::string>();
  auto settle = std::make_shared<double>(std::nan(""));
  auto positional = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "reconstruct",
      "Reconstruct displacements, stresses and fatigue damage at every output node from the\n"
      "measured accelerations of an archive (modal expansion, band-limited integration, modal\n"
      "stress superposition, streaming rainflow and Miner's rule). The archive is streamed\n"
      "block by block, so its length does not matter; under mpirun the ranks share its time\n"
      "blocks and the result is the same for any rank count.\n"
      "\n"
      "Chain: q''(t) = least squares (or Tikhonov) fit of the modes to the live channels, re-\n"
      "derived when channels drop out (NaN samples); q(t) = -q''/omega^2 inside --band, by a\n"
      "zero-phase filter of +-L samples; sigma(t) = modal stresses x q(t) at each output node;\n"
      "rainflow on the --equivalent stress; damage with the --sn-curve. Statistics (von Mises\n"
      "maxima, cycles, damage) leave out --settle seconds at the ends of every continuous\n"
      "segment and around stretches the live channels cannot reconstruct.\n"
      "\n"
      "Examples:\n"
      "  vsense reconstruct modes.h5 run-*.h5 --out results.h5 --sn-curve fat71.toml\n"
      "  vsense reconstruct modes.h5 day.h5 --placement placement.h5 --nodes HOTSPOTS \\\n"
      "      --band 2:400 --history --out hotspots.h5\n"
      "  mpirun -np 8 vsense reconstruct modes.h5 week/*.h5 --out week.h5 --sn-curve fat71.toml");
  cmd->add_option("modes", request->modes_path, "Modes file (vsense modes)")->required();
  cmd->add_option("archives", *positional, "Archive files (vsense-archive), any order")
      ->required();
  cmd->add_option("--out,-o", request->out_path, "Results file (vsense-results)")->required();
  cmd->add_option("--placement", request->placement_path,
                  "Use only the channels on the sensor nodes of this placement file");
  cmd->add_option("--nodes", request->nodes,
                  "Output nodes: a node set of the model or a file of node ids (default: all)");
  cmd->add_option("--band", *band,
                  "LO:HI in Hz: the band integrated to displacements (default: LO = half the "
                  "lowest flexible mode, HI = 0.9 x Nyquist)");
  cmd->add_option("--settle", *settle,
                  "Seconds left out of the statistics at segment ends and around unobservable "
                  "stretches (default: the integration filter's half-length)");
  cmd->add_option("--sn-curve", request->sn_curve_path,
                  "S-N curve file (TOML; see README): rainflow counting and Miner damage");
  cmd->add_option("--equivalent", request->equivalent,
                  "Stress counted by the rainflow: signed-von-mises (sign of the hydrostatic "
                  "stress), von-mises or max-principal")
      ->capture_default_str();
  cmd->add_option("--residue", request->residue,
                  "Rainflow residue at the end: half-cycles (ASTM E1049), closed (repeated "
                  "history) or discard")
      ->capture_default_str();
  cmd->add_option("--equivalent-cycles", request->equivalent_cycles,
                  "N_eq of the damage-equivalent stress range")
      ->capture_default_str();
  cmd->add_flag("--history", request->history,
                "Also write q(t), u(t) and sigma(t) at the output nodes (large: n_samples x "
                "nodes x 9 floats)");
  cmd->add_option("--modes,-m", request->n_modes,
                  "Use the lowest M modes of the modes file (default: all)");
  cmd->add_option("--rigid-hz", request->rigid_hz,
                  "Modes below this are rigid-body modes (estimated, not used for the band)")
      ->capture_default_str();
  cmd->add_option("--regularisation", request->regularisation,
                  "Tikhonov weight alpha (0: least squares; needed when channels < modes)")
      ->capture_default_str();
  cmd->add_option("--gaps", request->gaps,
                  "Gap or overlap between archive files: split (separate segments) or error")
      ->capture_default_str();
  cmd->add_option("--unobservable", request->unobservable,
                  "Samples whose live channels cannot identify the modes: exclude (from the "
                  "statistics, with a warning) or error")
      ->capture_default_str();
  cmd->add_option("--units", request->units,
                  "Model units (SI or mm-t-s); must match the modes file (default: its units)");
  cmd->add_option("--backend", request->backend, "auto, cpu or cuda")->capture_default_str();
  cmd->add_flag("--resume", request->resume,
                "Continue an interrupted run from its checkpoint (OUT.checkpoint/)");
  cmd->add_option("--checkpoint-interval", request->checkpoint_interval_s,
                  "Seconds between checkpoints (0: none)")
      ->capture_default_str();
  cmd->add_option("--fft-size", request->block_samples,
                  "FFT length of a processing block, a power of two (default: automatic)");
  cmd->add_option("--xdmf", request->xdmf_path,
                  "XDMF file for ParaView (default: OUT with .xdmf; '-' for none)");
  cmd->callback([request, band, settle, positional, &common] {
    request->archive_paths = *positional;
    if (!band->empty()) {
      const auto colon = band->find(':');
      if (colon == std::string::npos) {
        throw InputError(fmt::format("--band \"{}\" is not LO:HI (Hz)", *band));
      }
      request->band_low_hz = parse_number(band->substr(0, colon), "--band");
      request->band_high_hz = parse_number(band->substr(colon + 1), "--band");
    }
    request->settle_s = *settle;
    const jobs::ReconstructSummary summary = jobs::run_reconstruct(*request, *common.comm);
    if (common.comm->is_root()) {
      fmt::print(stderr,
                 "reconstructed {} samples at {} nodes in {:.1f} s ({:.3g} node-samples/s): max "
                 "von Mises {:.4g} at node {}{}\nresults: {}{}\n",
                 summary.n_samples, summary.n_nodes, summary.seconds,
                 summary.node_samples_per_second, summary.von_mises_max,
                 summary.von_mises_max_node,
                 summary.damage_max_node >= 0
                     ? fmt::format(", max damage {:.4g} at node {}", summary.damage_max,
                                   summary.damage_max_node)
                     : std::string(),
                 summary.out_path,
                 summary.xdmf_path.empty() ? std::string() : "  (ParaView: " + summary.xdmf_path + ")");
      if (common.json) std::cout << jobs::to_json(summary) << "\n";
    }
  });
}

}  // namespace vsense::drivers
