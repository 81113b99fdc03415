#include "vsense/solvers/modal_analysis.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <numbers>

#include "modal_internal.hpp"
#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/mesh.hpp"
#include "vsense/solvers/sturm.hpp"
#include "modal_internal.hpp"

namespace vsense::solvers {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
double frequency_hz(double eigenvalue) {
  return std::sqrt(std::max(eigenvalue, 0.0)) / (2.0 * std::numbers::pi);
}

/// Adds one sparse eigen-solve's figures to the report.
void count_solve(const ModalResult& result, ModalAnalysisReport& rep) {
  ++rep.solves;
  rep.factor_seconds += result.factor_seconds;
  rep.solve_seconds += result.solve_seconds;
  rep.factor_nonzeros = result.factor_nonzeros;
  rep.method = result.method;
  rep.block_size = result.block_size;
  rep.vectors_solved += result.solves;
  rep.restarts += result.iterations;
  rep.operator_seconds += result.operator_seconds;
  rep.orthogonalisation_seconds += result.orthogonalisation_seconds;
  rep.ritz_seconds += result.ritz_seconds;
}

/// The CUDA executor the eigen-solve runs on (nullptr for the CPU) and whether it solves densely:
/// `automatic` solves densely up to the device's limit and with the device block Lanczos above.
struct DeviceChoice {
  std::shared_ptr<const Executor> device;
  bool dense = false;
};

DeviceChoice device_for(const ModalAnalysisOptions& options, std::int64_t n_equations) {
  if (options.backend != ModalBackend::cuda) return {};
  std::shared_ptr<const Executor> device = options.executor;
  if (!device) device = CudaExecutor::create(0);
  if (device->backend() != Backend::cuda) {
    throw InputError("modal analysis: the cuda backend needs a CUDA executor");
  }
  if (options.method == EigenMethod::lanczos) {
    throw InputError("--solver lanczos runs on the CPU only (use --solver block or dense with "
                     "--backend cuda)");
  }
  if (options.device_solver == DeviceSolver::block) return {device, false};
  const std::int64_t limit =
      kernels::cuda::dense_modes_max_equations(static_cast<const CudaExecutor&>(*device));
  if (n_equations <= limit) return {device, true};
  if (options.device_solver == DeviceSolver::dense) {
    throw InputError(fmt::format("--solver dense: the model has {} equations, more than the {} "
                                 "that {} solves densely; use --solver block",
                                 n_equations, limit, device->description()));
  }
  spdlog::info("modal: the model has {} equations, more than the {} that {} solves densely: "
               "block Lanczos on the device",
               n_equations, limit, device->description());
  return {device, false};
}
}  // namespace

namespace detail {

int accepted_modes(const ModalResult& result, const ModalAnalysisOptions& options) {
  int m = static_cast<int>(result.eigenvalues.size());
  if (options.fmax_hz > 0.0) {
    int below = 0;
    while (below < m && frequency_hz(result.eigenvalues(below)) <= options.fmax_hz) ++below;
    m = below;
    if (m == 0) {
      throw InputError(fmt::format("no mode lies below --fmax {} Hz (lowest is {:.6g} Hz)",
                                   options.fmax_hz, frequency_hz(result.eigenvalues(0))));
    }
  }
  // ||K x|| of a rigid-body mode is round-off, so its relative residual measures nothing; the
  // solver's own backward-error and orthonormality checks cover those modes. Modes count as
  // rigid below 1e-6 of the highest returned eigenvalue (1e-3 of its frequency).
  const double rigid_limit = 1e-6 * std::abs(result.eigenvalues(result.eigenvalues.size() - 1));
  for (int i = 0; i < m; ++i) {
    if (std::abs(result.eigenvalues(i)) <= rigid_limit) continue;
    if (!(result.residuals(i) <= options.max_residual)) {
      throw NumericalError(fmt::format(
          "mode {} ({:.6g} Hz) has relative residual {:.3g} above the limit {:.1g}", i + 1,
          frequency_hz(result.eigenvalues(i)), result.residuals(i), options.max_residual));
    }
  }

  return m;
}

io::ModesData modes_data(const model::Model& model, const model::DofMap& dofs,
                         const ModalResult& result, int m, ModalAnalysisReport& rep,
                         const Executor* device) {
  auto start = std::chrono::steady_clock::now();
  io::ModesData data;
  const std::size_t n_nodes = model.n_nodes();
  data.node_ids = model.node_ids;
  data.coordinates.resize(3 * n_nodes);
  for (std::size_t i = 0; i < n_nodes; ++i) {
    for (int d = 0; d < 3; ++d) data.coordinates[3 * i + d] = model.coordinates[i][d];
  }
  data.topology = model::xdmf_mixed_topology(model, data.n_cells);
  for (const auto& [name, members] : model.node_sets) {
    auto& ids = data.node_sets[name];
    ids.reserve(members.size());
    for (const auto index : members) ids.push_back(model.node_ids[index]);
  }
  data.eigenvalues.resize(m);
  data.frequencies_hz.resize(m);
  data.residuals.resize(m);
  data.shapes.resize(static_cast<std::size_t>(m) * n_nodes * 3);
  data.nodal_stress.resize(static_cast<std::size_t>(m) * n_nodes * 6);
  for (int i = 0; i < m; ++i) {
    data.eigenvalues[i] = result.eigenvalues(i);
    data.frequencies_hz[i] = frequency_hz(result.eigenvalues(i));
    data.residuals[i] = result.residuals(i);
    double* shape = data.shapes.data() + static_cast<std::size_t>(i) * n_nodes * 3;
    model::expand_to_nodes(dofs, result.vectors.col(i).data(), shape);
  }
  if (!device) {
    // Each element's stress matrix once per panel of modes, applied to all of them.
    model::nodal_stresses(model, data.shapes.data(), static_cast<std::size_t>(m),
                          data.nodal_stress.data());
  }
  if (device) {
    // On the device the modal stresses of all modes are one product S Phi with the sparse
    // nodal-stress operator (the recovery is linear). Phi's first m columns are contiguous:
    // [n_equations, m] column-major; the result is [m, n_nodes, 6]. The CPU applies each
    // element's stress matrix to panels of modes instead (model::nodal_stresses): building S
    // and the CPU product cost more than that (bench_modal_stress, benchmarks/RESULTS.md).
    const model::NodalStressOperator stress_operator = model::nodal_stress_operator(model, dofs);
    kernels::sparse_times_dense(*device, stress_operator.view(), result.vectors.data(),
                                static_cast<std::size_t>(m), data.nodal_stress.data());
  }
  rep.stress_seconds = seconds_since(start);
  return data;
}

}  // namespace detail

io::ModesData modal_analysis(const model::Model& model, const ModalAnalysisOptions& options,
                             ModalAnalysisReport* report) {
  ModalAnalysisReport local;
  ModalAnalysisReport& rep = report ? *report : local;
  if (options.n_modes < 1) {
    throw InputError(fmt::format("--modes must be at least 1 (got {})", options.n_modes));
  }

  auto start = std::chrono::steady_clock::now();
  const model::DofMap dofs = model::build_dof_map(model);
  const model::SystemMatrices system = model::assemble(model, dofs);
  rep.n_equations = dofs.n_equations;
  rep.stiffness_nonzeros = system.stiffness.nonZeros();
  rep.assemble_seconds = seconds_since(start);
  spdlog::info("assembled K and M: {} equations, {} nonzeros in {:.2f} s", dofs.n_equations,
               system.stiffness.nonZeros(), rep.assemble_seconds);
  if (dofs.n_equations == 0) throw InputError("the model has no free degree of freedom");

  if (options.fmax_hz <= 0.0 && options.n_modes > dofs.n_equations) {
    throw InputError(fmt::format("{} modes requested but the model has only {} free DOFs",
                                 options.n_modes, dofs.n_equations));
  }
  ModalOptions solver_options;
  solver_options.shift = options.shift;
  solver_options.n_modes = options.n_modes;
  solver_options.method = options.method;
  solver_options.block_size = options.block_size;
  solver_options.ordering = options.ordering;
  ModalResult result;
  const DeviceChoice choice = device_for(options, dofs.n_equations);
  std::shared_ptr<const Executor> device = choice.device;
  std::string device_where = "dense cuSOLVER";
  if (device && !choice.dense) {
    // The block Lanczos on the device; with fmax the request doubles on the same factor.
    try {
      const double sigma = std::isnan(options.shift)
                               ? detail::automatic_shift(system.stiffness, system.mass)
                               : options.shift;
      solver_options.n_modes =
          static_cast<int>(std::min<std::int64_t>(solver_options.n_modes, dofs.n_equations));
      result = detail::solve_lowest_modes_block_device(
          std::static_pointer_cast<const CudaExecutor>(device), system.stiffness, system.mass,
          solver_options, sigma, options.fmax_hz, device_where);
      count_solve(result, rep);
    } catch (const DeviceResourceError& error) {
      if (!options.cpu_fallback) throw;
      spdlog::info("modal: the block solve on {} ran out of device memory ({}): solving on the "
                   "CPU",
                   device->description(), error.what());
      device.reset();  // nothing was counted into rep yet
      solver_options.n_modes = options.n_modes;
    }
  } else if (device) {
    // The dense solve on the device; with fmax the request doubles until a mode lies above it.
    try {
      for (;;) {
        solver_options.n_modes =
            static_cast<int>(std::min<std::int64_t>(solver_options.n_modes, dofs.n_equations));
        result = detail::solve_lowest_modes_dense(*device, system.stiffness, system.mass,
                                                  solver_options);
        ++rep.solves;
        rep.solve_seconds += result.solve_seconds;
        rep.factor_nonzeros = result.factor_nonzeros;
        rep.method = result.method;
        if (options.fmax_hz <= 0.0) break;
        const double highest = frequency_hz(result.eigenvalues(result.eigenvalues.size() - 1));
        if (highest > options.fmax_hz || solver_options.n_modes >= dofs.n_equations) break;
        spdlog::info("{} modes reach only {:.4g} Hz < fmax {:.4g} Hz: asking for {}",
                     solver_options.n_modes, highest, options.fmax_hz,
                     2 * solver_options.n_modes);
        solver_options.n_modes *= 2;
      }
    } catch (const Error& error) {
      // K and M sharing null vectors (K - sigma M singular, which only the CPU path
      // regularises), or out of device memory: `auto` goes on on the CPU.
      const bool recoverable = dynamic_cast<const NumericalError*>(&error) != nullptr ||
                               dynamic_cast<const DeviceResourceError*>(&error) != nullptr;
      if (!options.cpu_fallback || !recoverable) throw;
      spdlog::info("modal: the dense solve on {} failed ({}): solving on the CPU",
                   device->description(), error.what());
      device.reset();
      rep.solves = 0;
      rep.solve_seconds = 0.0;
      solver_options.n_modes = options.n_modes;
    }
  }
  rep.backend = device ? fmt::format("cuda ({}) on {}", device_where, device->description())
                       : CpuExecutor{}.description();
  if (!device && options.fmax_hz > 0.0 && options.method == EigenMethod::block) {
    // Every mode below fmax: the Sturm count at fmax says how many, spectrum slicing finds them.
    solver_options.upper = std::pow(2.0 * std::numbers::pi * options.fmax_hz, 2);
    solver_options.n_modes =
        static_cast<int>(std::min<std::int64_t>(solver_options.n_modes, dofs.n_equations));
    result = solve_lowest_modes(system.stiffness, system.mass, solver_options);
    count_solve(result, rep);
  }
  for (; !device && !(options.fmax_hz > 0.0 && options.method == EigenMethod::block);) {
    solver_options.n_modes =
        static_cast<int>(std::min<std::int64_t>(solver_options.n_modes, dofs.n_equations));
    result = solve_lowest_modes(system.stiffness, system.mass, solver_options);
    count_solve(result, rep);
    if (options.fmax_hz <= 0.0) break;
    const double highest = frequency_hz(result.eigenvalues(result.eigenvalues.size() - 1));
    if (highest > options.fmax_hz || solver_options.n_modes >= dofs.n_equations) break;
    spdlog::info("{} modes reach only {:.4g} Hz < fmax {:.4g} Hz: asking for {}",
                 solver_options.n_modes, highest, options.fmax_hz, 2 * solver_options.n_modes);
    solver_options.n_modes *= 2;
  }

  const int m = detail::accepted_modes(result, options);

  if (options.sturm_check && result.regularisation > 0.0) {
    // The inertia of a singular pencil counts its common null space with arbitrary signs.
    spdlog::warn("Sturm check skipped: K and M share null vectors (singular pencil), so the "
                 "inertia of K - sigma M does not count modes; residuals and M-orthonormality "
                 "were checked");
  } else if (!result.certified.empty()) {
    // Spectrum slicing counted every slice: the last count covers all returned modes.
    rep.sturm_count = result.certified.back().below;
    spdlog::info("Sturm check passed: exactly {} modes below {:.6g} Hz, certified slice by "
                 "slice ({} slice{})",
                 rep.sturm_count, frequency_hz(result.certified.back().sigma), result.slices,
                 result.slices == 1 ? "" : "s");
  } else if (options.sturm_check) {
    // With fmax, the first returned mode above it is checked too: the count then lies above
    // fmax, so it certifies every mode below fmax (as the sliced path's count at fmax does), not
    // only those below the highest accepted one.
    const std::int64_t checked =
        options.fmax_hz > 0.0 && m < result.eigenvalues.size() ? m + 1 : m;
    const SturmCount count =
        check_completeness(system.stiffness, system.mass, result.eigenvalues.data(), checked,
                           &result.ordering);
    rep.sturm_seconds = count.seconds;
    rep.sturm_count = count.below;
  }

  return detail::modes_data(model, dofs, result, m, rep, device.get());
}

}  // namespace vsense::solvers
