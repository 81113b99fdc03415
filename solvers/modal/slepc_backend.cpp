// The SLEPc modal backend, host side: loads the plugin (solvers/slepc/plugin), hands it the
// pencil on rank 0, and runs the same checks and outputs as the CPU path around its results.
#include "vsense/solvers/slepc.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <numbers>
#include <vector>

#include "modal_internal.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/solvers/sturm.hpp"
#include "vsense_slepc_api.h"

namespace vsense::solvers {

namespace {

struct Plugin {
  decltype(&vsense_slepc_api_version) api_version = nullptr;
  decltype(&vsense_slepc_create) create = nullptr;
  decltype(&vsense_slepc_solve) solve = nullptr;
  decltype(&vsense_slepc_inertia) inertia = nullptr;
  decltype(&vsense_slepc_size) size = nullptr;
  decltype(&vsense_slepc_destroy) destroy = nullptr;
  decltype(&vsense_slepc_describe) describe = nullptr;
};

std::vector<std::string> plugin_candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("VSENSE_SLEPC_PLUGIN"); env && *env) {
    paths.emplace_back(env);
    return paths;  // an explicit choice is not second-guessed
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path().parent_path() / "lib" / "libvsense_slepc.so").string());
#ifdef VSENSE_SLEPC_PLUGIN_PATH
  paths.emplace_back(VSENSE_SLEPC_PLUGIN_PATH);
#endif
  return paths;
}

/// The plugin, loaded once; throws NotCompiled with the reason when it cannot be.
const Plugin& plugin() {
  static std::once_flag once;
  static Plugin loaded;
  static std::string failure;
  std::call_once(once, [] {
#ifndef VSENSE_HAVE_SLEPC
    if (std::getenv("VSENSE_SLEPC_PLUGIN") == nullptr) {
      failure = "the SLEPc backend is not in this build (configure with PETSc/SLEPc: Debian "
                "libslepc-real-dev, VSENSE_WITH_SLEPC=ON)";
      return;
    }
#endif
    std::string tried;
    void* handle = nullptr;
    for (const auto& path : plugin_candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += (tried.empty() ? "" : "; ") + path + ": no such file";
        continue;
      }
      // Local: nothing of PETSc's enters the program's global scope. (The sequential MUMPS is
      // deep-bound on its side, see sequential_mumps.hpp, so PETSc finds its own MUMPS.)
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
      tried += (tried.empty() ? "" : "; ") + std::string(dlerror());
    }
    if (!handle) {
      failure = "the SLEPc backend could not be loaded (" + tried + ")";
      return;
    }
    const auto symbol = [&](const char* name) {
      void* address = dlsym(handle, name);
      if (!address && failure.empty()) {
        failure = fmt::format("the SLEPc plugin lacks {}: rebuild vsense", name);
      }
      return address;
    };
    loaded.api_version = reinterpret_cast<decltype(loaded.api_version)>(symbol("vsense_slepc_api_version"));
    loaded.create = reinterpret_cast<decltype(loaded.create)>(symbol("vsense_slepc_create"));
    loaded.solve = reinterpret_cast<decltype(loaded.solve)>(symbol("vsense_slepc_solve"));
    loaded.inertia = reinterpret_cast<decltype(loaded.inertia)>(symbol("vsense_slepc_inertia"));
    loaded.size = reinterpret_cast<decltype(loaded.size)>(symbol("vsense_slepc_size"));
    loaded.destroy = reinterpret_cast<decltype(loaded.destroy)>(symbol("vsense_slepc_destroy"));
    loaded.describe = reinterpret_cast<decltype(loaded.describe)>(symbol("vsense_slepc_describe"));
    if (failure.empty() && loaded.api_version() != VSENSE_SLEPC_API_VERSION) {
      failure = fmt::format("the SLEPc plugin speaks interface {} but vsense needs {}: rebuild",
                            loaded.api_version(), VSENSE_SLEPC_API_VERSION);
    }
  });
  if (!failure.empty()) throw NotCompiled(failure);
  return loaded;
}

void log_line(int level, const char* message, void*) {
  if (level <= 0) {
    spdlog::debug("{}", message);
  } else if (level == 1) {
    spdlog::info("{}", message);
  } else {
    spdlog::warn("{}", message);
  }
}

/// K and M (lower triangles, column-major) on the union of their patterns. A column-major lower
/// triangle read by rows is the upper triangle: exactly the plugin's input.
struct Pencil {
  std::vector<std::int64_t> row_ptr, columns;
  std::vector<double> stiffness, mass;
};

Pencil common_pattern(const model::SparseMatrix& k, const model::SparseMatrix& m) {
  model::SparseMatrix k_union = k + 0.0 * m;
  model::SparseMatrix m_union = m + 0.0 * k;
  k_union.makeCompressed();
  m_union.makeCompressed();
  const auto n = k_union.outerSize();
  const auto nnz = k_union.nonZeros();
  if (m_union.nonZeros() != nnz ||
      !std::equal(k_union.outerIndexPtr(), k_union.outerIndexPtr() + n + 1,
                  m_union.outerIndexPtr()) ||
      !std::equal(k_union.innerIndexPtr(), k_union.innerIndexPtr() + nnz,
                  m_union.innerIndexPtr())) {
    throw NumericalError("SLEPc backend: K and M did not come out on one sparsity pattern");
  }
  Pencil p;
  p.row_ptr.assign(k_union.outerIndexPtr(), k_union.outerIndexPtr() + n + 1);
  p.columns.assign(k_union.innerIndexPtr(), k_union.innerIndexPtr() + nnz);
  p.stiffness.assign(k_union.valuePtr(), k_union.valuePtr() + nnz);
  p.mass.assign(m_union.valuePtr(), m_union.valuePtr() + nnz);
  return p;
}

struct StoreTarget {
  Eigen::VectorXd* eigenvalues;
  Eigen::MatrixXd* vectors;  // root only
  Eigen::Index n;
};

void store_pair(int index, double eigenvalue, const double* vector, void* context) {
  auto* target = static_cast<StoreTarget*>(context);
  (*target->eigenvalues)(index) = eigenvalue;
  if (vector && target->vectors) {
    target->vectors->col(index) = Eigen::Map<const Eigen::VectorXd>(vector, target->n);
  }
}

}  // namespace

bool slepc_compiled() noexcept {
#ifdef VSENSE_HAVE_SLEPC
  return true;
#else
  return false;
#endif
}

std::string slepc_description() {
  const Plugin& api = plugin();
  char text[512] = "";
  if (api.describe(text, sizeof text) != 0) {
    throw NotCompiled(fmt::format("the SLEPc backend could not start: {}", text));
  }
  return text;
}

namespace {

/// Runs `step` on this rank and agrees on its outcome with all ranks.
template <class Step>
void agree_on(const Collective& collective, Step&& step) {
  std::exception_ptr failure;
  try {
    step();
  } catch (...) {
    failure = std::current_exception();
  }
  collective.agree(failure);
}

}  // namespace

ModalResult solve_lowest_modes_slepc(const model::SparseMatrix* stiffness,
                                     const model::SparseMatrix* mass, const ModalOptions& options,
                                     bool certify, const Collective& collective) {
  const Plugin* api = nullptr;
  agree_on(collective, [&] { api = &plugin(); });

  Pencil pencil;
  double target = 0.0;
  std::int64_t n = -1;
  agree_on(collective, [&] {
    if (!collective.root) return;
    n = stiffness->rows();
    if (n == 0) throw InputError("the model has no free degree of freedom");
    if (!std::isfinite(options.upper) && (options.n_modes < 1 || options.n_modes >= n)) {
      throw InputError(fmt::format("{} modes requested from {} equations: the SLEPc backend "
                                   "returns at least 1 and fewer than all",
                                   options.n_modes, n));
    }
    if (std::isinf(options.shift)) throw InputError("modal solver: the shift must be finite");
    target = std::isnan(options.shift) ? detail::automatic_shift(*stiffness, *mass)
                                       : options.shift;
    pencil = common_pattern(*stiffness, *mass);
  });

  char error[2048] = "";
  vsense_slepc_pencil input{};
  input.n = collective.root ? n : -1;
  input.row_ptr = pencil.row_ptr.data();
  input.columns = pencil.columns.data();
  input.stiffness = pencil.stiffness.data();
  input.mass = pencil.mass.data();
  input.log = log_line;
  vsense_slepc_problem* raw = nullptr;
  agree_on(collective, [&] {
    if (api->create(&input, &raw, error, sizeof error) != 0) {
      throw NumericalError(fmt::format("SLEPc backend: {}", error));
    }
  });
  const std::unique_ptr<vsense_slepc_problem, decltype(api->destroy)> problem(raw, api->destroy);
  pencil = Pencil{};  // the ranks hold their rows now
  n = api->size(problem.get());

  ModalResult result;
  result.method = "krylov-schur";
  double counting_seconds = 0.0;
  // The Sturm count of the distributed pencil. The counts are global (the same on all ranks),
  // so a zero pivot throws on every rank alike and check_completeness moves sigma everywhere.
  const auto count_below = [&](double sigma) {
    SturmCount count;
    std::int64_t zero = 0;
    agree_on(collective, [&] {
      if (api->inertia(problem.get(), sigma, &count.below, &zero, &count.seconds, error,
                       sizeof error) != 0) {
        throw NumericalError(fmt::format("SLEPc backend: Sturm count: {}", error));
      }
    });
    counting_seconds += count.seconds;
    if (zero > 0) {
      throw NumericalError(fmt::format(
          "Sturm count: K - sigma M is singular at sigma = {:.10g} (rad/s)^2 ({} null pivots)",
          sigma, zero));
    }
    count.sigma = sigma;
    return count;
  };

  // Every mode below `upper`: the count there says how many to ask for.
  int n_modes = options.n_modes;
  if (std::isfinite(options.upper)) {
    double upper = options.upper;
    SturmCount count;
    try {
      count = count_below(upper);
    } catch (const NumericalError&) {
      upper *= 1.0 + 1e-9;  // on an eigenvalue: count it as below
      count = count_below(upper);
    }
    if (count.below == 0) {
      throw InputError(fmt::format("no mode lies below {:.6g} Hz (the Sturm count there is 0)",
                                   std::sqrt(std::max(upper, 0.0)) / (2.0 * std::numbers::pi)));
    }
    agree_on(collective, [&] {
      if (collective.root && count.below >= n) {
        throw InputError(fmt::format("all {} modes lie below the bound: the SLEPc backend "
                                     "returns fewer than all; lower it",
                                     count.below));
      }
    });
    n_modes = static_cast<int>(count.below);
    spdlog::info("Sturm count: {} modes below {:.6g} Hz", n_modes,
                 std::sqrt(std::max(upper, 0.0)) / (2.0 * std::numbers::pi));
  }

  // Krylov-Schur finds further copies of a repeated eigenvalue only through round-off, so a
  // cluster can cost copies: the counts judge, and a missed copy sends the search out again for
  // more pairs (the lowest are kept), at most twice.
  const bool below_mode = std::isfinite(options.upper);
  const std::int64_t wanted = n_modes;
  std::int64_t asked = wanted;
  vsense_slepc_report solved{};
  for (int attempt = 0;; ++attempt) {
    vsense_slepc_request request{};
    request.n_modes = static_cast<int>(asked);
    request.target = target;
    request.tolerance = options.tolerance;
    request.max_iterations = options.max_iterations;
    request.subspace_size = attempt == 0 ? options.subspace_size : 0;
    Eigen::VectorXd values(asked);
    Eigen::MatrixXd vectors;
    if (collective.root) vectors.resize(n, asked);
    StoreTarget store{&values, collective.root ? &vectors : nullptr,
                      static_cast<Eigen::Index>(std::max<std::int64_t>(n, 0))};
    agree_on(collective, [&] {
      if (api->solve(problem.get(), &request, store_pair, &store, &solved, error,
                     sizeof error) != 0) {
        throw NumericalError(fmt::format("SLEPc backend: {}", error));
      }
    });
    result.factor_seconds += solved.factor_seconds;
    result.solve_seconds += solved.solve_seconds;
    result.iterations += solved.iterations;
    spdlog::info("SLEPc Krylov-Schur on {} rank{}: {} modes, {} restarts, factor {:.2f} s, "
                 "solve {:.2f} s",
                 solved.ranks, solved.ranks == 1 ? "" : "s", asked, solved.iterations,
                 solved.factor_seconds, solved.solve_seconds);
    // The lowest `wanted` (ascending already), or those below the bound.
    std::int64_t kept = std::min(wanted, asked);
    if (below_mode) {
      kept = 0;
      while (kept < asked && values[kept] < options.upper) ++kept;
    }
    result.eigenvalues = values.head(kept);
    if (collective.root) result.vectors = vectors.leftCols(kept);
    bool complete = kept == wanted;
    std::string why;
    if (complete && certify) {
      try {
        const SturmCount count =
            check_completeness(result.eigenvalues.data(), kept, count_below);
        result.certified.assign(1, {count.sigma, count.below});
      } catch (const NumericalError& e) {
        complete = false;
        why = e.what();
      }
    } else if (!complete) {
      why = fmt::format("{} modes lie below the bound but {} were found there", wanted, kept);
    }
    if (complete) break;
    const std::int64_t more = std::min<std::int64_t>(n - 1, asked + std::max<std::int64_t>(8, asked / 2));
    if (attempt == 2 || more <= asked) throw NumericalError(why);
    spdlog::warn("{} (a repeated eigenvalue missed): searching again for {} pairs", why, more);
    asked = more;
  }
  result.factor_nonzeros = static_cast<std::int64_t>(solved.factor_nonzeros);
  result.block_size = 1;

  result.sturm_seconds = counting_seconds;

  agree_on(collective, [&] {
    if (!collective.root) return;
    detail::finish_result(*stiffness, *mass, target, options, result);
  });
  return result;
}

io::ModesData modal_analysis_slepc(const model::Model* model,
                                   const ModalAnalysisOptions& options,
                                   const Collective& collective, ModalAnalysisReport* report) {
  ModalAnalysisReport local_report;
  ModalAnalysisReport& rep = report ? *report : local_report;

  // Rank 0 assembles the pencil.
  model::DofMap dofs;
  model::SystemMatrices system;
  agree_on(collective, [&] {
    if (!collective.root) return;
    if (options.n_modes < 1) {
      throw InputError(fmt::format("--modes must be at least 1 (got {})", options.n_modes));
    }
    const auto start = std::chrono::steady_clock::now();
    dofs = model::build_dof_map(*model);
    system = model::assemble(*model, dofs);
    rep.n_equations = dofs.n_equations;
    rep.stiffness_nonzeros = system.stiffness.nonZeros();
    rep.assemble_seconds = detail::seconds_since(start);
    spdlog::info("assembled K and M: {} equations, {} nonzeros in {:.2f} s", dofs.n_equations,
                 system.stiffness.nonZeros(), rep.assemble_seconds);
  });

  ModalOptions solver;
  solver.n_modes = options.n_modes;
  solver.shift = options.shift;
  if (options.fmax_hz > 0.0) solver.upper = std::pow(2.0 * std::numbers::pi * options.fmax_hz, 2);
  ModalResult result =
      solve_lowest_modes_slepc(collective.root ? &system.stiffness : nullptr,
                               collective.root ? &system.mass : nullptr, solver,
                               options.sturm_check, collective);
  if (!result.certified.empty()) rep.sturm_count = result.certified.back().below;

  io::ModesData data;
  agree_on(collective, [&] {
    if (!collective.root) return;
    const int m = detail::accepted_modes(result, options);
    data = detail::modes_data(*model, dofs, result, m, rep);
  });
  rep.solves = 1;
  rep.sturm_seconds = result.sturm_seconds;
  rep.factor_seconds = result.factor_seconds;
  rep.solve_seconds = result.solve_seconds;
  rep.factor_nonzeros = result.factor_nonzeros;
  rep.method = "krylov-schur (SLEPc)";
  rep.block_size = 1;
  rep.restarts = result.iterations;
  return data;
}

}  // namespace vsense::solvers
