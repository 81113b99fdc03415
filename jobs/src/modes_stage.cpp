// The modes stage: model -> modes file (+ XDMF); serial on rank 0, or distributed over all
// ranks on the SLEPc backend.
#include "vsense/jobs/modes_stage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "vsense/io/modes_file.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/io/xdmf.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/model/inp_reader.hpp"
#include "vsense/solvers/slepc.hpp"

namespace vsense::jobs {

namespace {

/// Logs the modes, writes the modes file and its XDMF companion, completes the summary.
void write_outputs(const ModesRequest& request, io::ModesData& data,
                   std::chrono::steady_clock::time_point start, ModesSummary& summary) {
  data.units = request.units;
  data.source_file = request.model_path;
  data.source_sha256 = io::sha256_file(request.model_path);
  summary.frequencies_hz = data.frequencies_hz;
  summary.residuals = data.residuals;
  for (std::size_t i = 0; i < data.frequencies_hz.size(); ++i) {
    spdlog::info("mode {:4d}: {:14.6f} Hz  residual {:.2e}", i + 1, data.frequencies_hz[i],
                 data.residuals[i]);
  }

  const auto step = std::chrono::steady_clock::now();
  io::write_modes(request.out_path, data);
  if (data.n_cells > 0 && request.xdmf_path != "-") {
    summary.xdmf_path =
        request.xdmf_path.empty()
            ? std::filesystem::path(request.out_path).replace_extension(".xdmf").string()
            : request.xdmf_path;
    io::write_modes_xdmf(summary.xdmf_path, request.out_path, data);
  }
  summary.write_seconds = seconds_since(step);
  summary.total_seconds = seconds_since(start);
  summary.peak_memory_bytes = peak_memory_bytes();
  spdlog::info("wrote {} ({} modes) in {:.2f} s total, peak memory {:.0f} MiB", request.out_path,
               data.n_modes(), summary.total_seconds,
               static_cast<double>(summary.peak_memory_bytes) / (1024.0 * 1024.0));
}

void compute_modes(const ModesRequest& request, ModesSummary& summary) {
  const auto start = std::chrono::steady_clock::now();
  auto executor = make_executor(request.backend);
  solvers::ModalAnalysisOptions options = request.options;
  if (executor->backend() == Backend::cuda && request.backend == "auto" &&
      options.method == solvers::EigenMethod::lanczos) {
    spdlog::info("--solver lanczos runs on the CPU: not using {}", executor->description());
    executor = make_executor("cpu");
  }
  if (executor->backend() != Backend::cuda &&
      options.device_solver == solvers::DeviceSolver::dense) {
    throw InputError("--solver dense runs on a GPU only, and none is in use (--backend " +
                     request.backend + ")");
  }
  if (executor->backend() == Backend::cuda) {
    // Dense cuSOLVER up to the device's limit, block Lanczos on the device above it; `auto`
    // goes on on the CPU when the device runs out of memory.
    options.backend = solvers::ModalBackend::cuda;
    options.executor = executor;
    options.cpu_fallback = request.backend == "auto";
  }
  summary.backend = executor->description();
  spdlog::info("backend: {}", summary.backend);

  auto step = std::chrono::steady_clock::now();
  spdlog::info("reading {}", request.model_path);
  const model::Model model = model::read_inp(request.model_path);
  summary.read_seconds = seconds_since(step);
  summary.n_nodes = static_cast<std::int64_t>(model.n_nodes());
  summary.n_elements = static_cast<std::int64_t>(model.n_elements());
  spdlog::info("model: {} nodes, {} elements ({:.2f} s)", summary.n_nodes, summary.n_elements,
               summary.read_seconds);

  io::ModesData data = solvers::modal_analysis(model, options, &summary.report);
  if (!summary.report.backend.empty()) summary.backend = summary.report.backend;
  write_outputs(request, data, start, summary);
}

/// The SLEPc backend: every rank takes part in the factorisation and the iteration; rank 0
/// reads the model, recovers the stresses and writes.
void compute_modes_slepc(const ModesRequest& request, ModesSummary& summary,
                         const cluster::Communicator& comm) {
  const auto start = std::chrono::steady_clock::now();
  std::string description;
  cluster::collectively(comm, [&] { description = solvers::slepc_description(); });
  summary.backend = "slepc (" + description + ")";
  if (comm.is_root()) spdlog::info("backend: {}", summary.backend);

  model::Model model;
  cluster::collectively(comm, [&] {
    if (!comm.is_root()) return;
    const auto step = std::chrono::steady_clock::now();
    spdlog::info("reading {}", request.model_path);
    model = model::read_inp(request.model_path);
    summary.read_seconds = seconds_since(step);
    summary.n_nodes = static_cast<std::int64_t>(model.n_nodes());
    summary.n_elements = static_cast<std::int64_t>(model.n_elements());
    spdlog::info("model: {} nodes, {} elements ({:.2f} s)", summary.n_nodes, summary.n_elements,
                 summary.read_seconds);
  });
  solvers::Collective collective;
  collective.root = comm.is_root();
  collective.agree = [&comm](std::exception_ptr failure) { comm.agree(failure); };
  io::ModesData data = solvers::modal_analysis_slepc(comm.is_root() ? &model : nullptr,
                                                     request.options, collective,
                                                     &summary.report);
  cluster::collectively(comm, [&] {
    if (comm.is_root()) write_outputs(request, data, start, summary);
  });
}

/// Whether the request runs on the SLEPc backend: asked for, or `auto` with several ranks.
bool uses_slepc(const ModesRequest& request, const cluster::Communicator& comm) {
  if (request.backend == "slepc") return true;
  return request.backend == "auto" && comm.size() > 1 && solvers::slepc_compiled();
}

}  // namespace

ModesSummary run_modes(const ModesRequest& request, const cluster::Communicator& comm) {
  ModesSummary summary;
  summary.model_path = request.model_path;
  summary.out_path = request.out_path;
  summary.ranks = comm.size();
  if (uses_slepc(request, comm)) {
    compute_modes_slepc(request, summary, comm);
    return summary;
  }
  if (comm.size() > 1 && comm.is_root()) {
    spdlog::info("the {} modal solver runs on rank 0; the other {} rank{} wait (--backend "
                 "slepc distributes the solve)",
                 request.backend, comm.size() - 1, comm.size() == 2 ? "" : "s");
  }
  on_root(comm, [&] { compute_modes(request, summary); });
  return summary;
}

std::string to_json(const ModesSummary& s) {
  const auto& r = s.report;
  return fmt::format(
      R"({{"command":"modes","model":"{}","out":"{}","xdmf":"{}","backend":"{}","ranks":{},)"
      R"("n_nodes":{},"n_elements":{},"n_equations":{},"stiffness_nonzeros":{},)"
      R"("factor_nonzeros":{},"n_modes":{},"frequencies_hz":[{:.12g}],"residuals":[{:.3e}],)"
      R"("timings_s":{{"read":{:.3f},"assemble":{:.3f},"factor":{:.3f},"solve":{:.3f},)"
      R"("stress":{:.3f},"sturm":{:.3f},"write":{:.3f},"total":{:.3f}}},"sturm_count":{},)"
      R"("solver":{{"method":"{}","block_size":{},"solves":{},"vectors_solved":{},"restarts":{},)"
      R"("operator_s":{:.3f},"orthogonalisation_s":{:.3f},"ritz_s":{:.3f}}},)"
      R"("peak_memory_bytes":{}}})",
      json_escape(s.model_path), json_escape(s.out_path), json_escape(s.xdmf_path),
      json_escape(s.backend), s.ranks, s.n_nodes, s.n_elements, r.n_equations,
      r.stiffness_nonzeros, r.factor_nonzeros, s.frequencies_hz.size(),
      fmt::join(s.frequencies_hz, ","), fmt::join(s.residuals, ","), s.read_seconds,
      r.assemble_seconds, r.factor_seconds, r.solve_seconds, r.stress_seconds, r.sturm_seconds,
      s.write_seconds, s.total_seconds, r.sturm_count, json_escape(r.method), r.block_size,
      r.solves, r.vectors_solved, r.restarts, r.operator_seconds, r.orthogonalisation_seconds,
      r.ritz_seconds, s.peak_memory_bytes);
}

}  // namespace vsense::jobs
