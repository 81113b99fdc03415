// vsense modes MODEL.inp --modes M [--fmax HZ] --out modes.h5 [--backend auto|cpu|cuda|slepc]
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "vsense/jobs/modes_stage.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::drivers {

void register_modes(CLI::App& app, CommonOptions& common) {
  struct Args {
    std::string model, out, backend = "auto", units = "SI";
    int n_modes = 0;
    double fmax_hz = 0.0;
    double shift = std::numeric_limits<double>::quiet_NaN();
    bool no_sturm = false;
    std::string solver = "auto", ordering = "auto";
    int block_size = 0;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "modes",
      "Lowest natural modes of an .inp model: K x = lambda M x.\n"
      "Writes the modes file (frequencies, mass-normalised shapes Phi^T M Phi = I, nodal modal\n"
      "stresses extrapolated and averaged as CalculiX does, residuals).\n"
      "Example: vsense modes genset.inp --modes 20 --out modes.h5");
  cmd->add_option("model", args->model, "Model file (.inp, Abaqus/CalculiX syntax)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--modes,-m", args->n_modes,
                  "Number of lowest modes (rigid-body modes of a free model included); with "
                  "--fmax the starting request")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--fmax", args->fmax_hz, "Return every mode below this frequency [Hz]")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out,-o", args->out, "Output modes file (HDF5)")->required();
  cmd->add_option("--backend", args->backend,
                  "auto|cpu|cuda[:N]|slepc. cuda: the GPU (dense cuSOLVER up to 20,000 equations,\n"
                  "block Lanczos on a CHOLMOD factor copied to the device above). auto: under\n"
                  "mpirun with several ranks, slepc; else the GPU when present; else the CPU.\n"
                  "slepc: PETSc/SLEPc Krylov-Schur on a MUMPS Cholesky factor, distributed over\n"
                  "the MPI ranks (PETSC_OPTIONS reaches its -eps_/-st_ options)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value == "auto" || value == "cpu" || value == "cuda" || value == "slepc") return {};
            if (value.rfind("cuda:", 0) == 0 && value.size() > 5 &&
                value.find_first_not_of("0123456789", 5) == std::string::npos) {
              return {};
            }
            return "must be auto, cpu, cuda, cuda:N or slepc (got '" + value + "')";
          },
          "auto|cpu|cuda[:N]|slepc"))
      ->capture_default_str();
  cmd->add_option("--units", args->units,
                  "Units the .inp is written in: SI (m, kg, s) or mm-t-s (mm, tonne, s)")
      ->check(CLI::IsMember({"SI", "mm-t-s"}))
      ->capture_default_str();
  cmd->add_option("--shift", args->shift,
                  "Spectral shift in (rad/s)^2 (default: automatic, below the lowest mode)");
  cmd->add_flag("--no-sturm-check", args->no_sturm,
               "Skip the Sturm-sequence proof that no mode is missing (an LDL^T factorisation)");
  cmd->add_option("--solver", args->solver,
                  "Eigen-solver: auto (CPU: block; GPU: dense up to its limit, else block),\n"
                  "block (block shift-invert Lanczos: solves a block of vectors per pass over\n"
                  "the factor; on the CPU or the GPU), lanczos (single-vector Spectra Lanczos,\n"
                  "CPU only, the older reference), dense (cuSOLVER on the whole pencil, GPU only)")
      ->check(CLI::IsMember({"auto", "block", "lanczos", "dense"}))
      ->capture_default_str();
  cmd->add_option("--block-size", args->block_size,
                  "Vectors per block of the block solver (default: 8 up to 60 modes, else 12)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--ordering", args->ordering,
                  "Fill-reducing ordering of the factor: auto (CHOLMOD's choice: AMD, or METIS\n"
                  "when AMD fills badly), amd, metis, nesdis")
      ->check(CLI::IsMember({"auto", "amd", "metis", "nesdis"}))
      ->capture_default_str();
  cmd->callback([args, &common] {
    if (args->n_modes == 0 && args->fmax_hz <= 0.0) {
      throw InputError("give --modes M, --fmax HZ, or both");
    }
    jobs::ModesRequest request;
    request.model_path = args->model;
    request.out_path = args->out;
    request.units = args->units;
    request.backend = args->backend;
    request.options.n_modes = args->n_modes > 0 ? args->n_modes : 20;
    request.options.fmax_hz = args->fmax_hz;
    request.options.shift = args->shift;
    request.options.sturm_check = !args->no_sturm;
    request.options.method = args->solver == "lanczos" ? solvers::EigenMethod::lanczos
                                                       : solvers::EigenMethod::block;
    request.options.device_solver = args->solver == "dense"   ? solvers::DeviceSolver::dense
                                    : args->solver == "block" ? solvers::DeviceSolver::block
                                                              : solvers::DeviceSolver::automatic;
    request.options.block_size = args->block_size;
    request.options.ordering = args->ordering;
    const jobs::ModesSummary summary = jobs::run_modes(request, *common.comm);
    if (common.json && common.comm->is_root()) std::cout << jobs::to_json(summary) << "\n";
  });
}

}  // namespace vsense::drivers
