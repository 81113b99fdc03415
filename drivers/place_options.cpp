// Options shared by `vsense place` and `vsense place-bench`.
#include "place_options.hpp"

#include "vsense/kernels/errors.hpp"

namespace vsense::drivers {

void add_place_options(CLI::App& cmd, PlaceArgs& args) {
  cmd.add_option("modes", args.modes, "Modes file (vsense modes output)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--sensors,-s", args.sensors, "Number of triaxial sensors")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--candidates", args.candidates,
                 "Candidate nodes: an NSET of the model or a node-list file (default: the "
                 "surface nodes of the mesh)");
  cmd.add_option("--exclude", args.exclude,
                 "Remove these nodes (NSET or node-list file) from the candidates; repeatable");
  cmd.add_option("--targets", args.targets,
                 "Stress target nodes of min-variance/two-phase (NSET or file; default: all "
                 "nodes)");
  cmd.add_option("--min-distance", args.min_distance,
                 "Smallest distance between two sensors [model length units]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--modes,-m", args.n_modes,
                 "Use the first K modes (counted after the rigid-body modes are left out)");
  cmd.add_flag("--skip-rigid,!--keep-rigid", args.skip_rigid,
               "Leave out rigid-body modes, f < --rigid-hz (default: on)");
  cmd.add_option("--rigid-hz", args.rigid_hz, "Rigid-body mode threshold [Hz]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--mode-weighting", args.weighting,
                 "Modal-displacement weighting of min-variance: none|displacement|auto "
                 "(auto: on for two-phase only)")
      ->check(CLI::IsMember({"auto", "none", "displacement"}))
      ->capture_default_str();
  cmd.add_option("--weight-exponent", args.weight_exponent,
                 "p of the weights w_k = (omega_1/omega_k)^p (3: white-noise force excitation)")
      ->capture_default_str();
  cmd.add_option("--snr", args.snr,
                 "RMS signal / RMS noise of the mean channel (scales the modal prior)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--correlation-length", args.correlation_length,
                 "lambda of the correlated prediction error exp(-d/lambda) between sensors "
                 "(d-optimal, min-variance, two-phase; 0 = uncorrelated) [model length units]")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--efi-fraction", args.efi_fraction,
                 "efi/efi-dpr: fraction of the nodes removed per round (default: 2.5/5/10 % "
                 "for <=1000/<=5000/more nodes; 0: one node per round)");
  cmd.add_option("--scoring-chunk", args.scoring_chunk,
                 "Candidates per scoring GEMM (default: 2048 on the CPU, 32768 on CUDA). Under "
                 "mpirun the candidates are shared between the ranks in whole chunks; the "
                 "placement does not depend on the chunk or the rank count");
  cmd.add_option("--backend", args.backend, "auto|cpu|cuda (auto: GPU when present)")
      ->capture_default_str();
}

}  // namespace vsense::drivers
