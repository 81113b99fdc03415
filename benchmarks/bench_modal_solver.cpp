// The CPU modal solver alone on exported matrices (`vsense model export`), for profiling and
// for choosing the block size: factorisation, solves, orthogonalisation and Ritz time, solves
// per mode, peak memory. Prints one JSON line per run.
//
//   bench_modal_solver DIR N_MODES [--method block|lanczos] [--block B[,B...]]
//                      [--basis V] [--ordering auto|amd|metis|nesdis] [--sturm]
//                      [--fmax HZ] [--slice MODES_PER_SLICE] [--tol RITZ_TOLERANCE]
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <Eigen/Sparse>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <unsupported/Eigen/SparseExtra>
#include <vector>

#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/solvers/modal.hpp"
#include "vsense/solvers/sturm.hpp"

using vsense::jobs::peak_memory_bytes;

int main(int argc, char** argv) {
  // The BLAS kernels vsense itself runs with (see vsense/kernels/blas_runtime.hpp).
  vsense::restart_with_faster_blas(argv);
  if (argc < 3) {
    std::cerr << "usage: bench_modal_solver DIR N_MODES [--method block|lanczos] [--block "
                 "B[,B...]] [--basis V] [--ordering auto|amd|metis|nesdis] [--sturm] [-v]\n";
    return 2;
  }
  const std::string dir = argv[1];
  vsense::solvers::ModalOptions options;
  options.n_modes = std::atoi(argv[2]);
  std::vector<int> blocks{0};
  bool sturm = false;
  spdlog::set_level(spdlog::level::warn);
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (arg == "--method") {
      options.method = value() == "lanczos" ? vsense::solvers::EigenMethod::lanczos
                                            : vsense::solvers::EigenMethod::block;
    } else if (arg == "--block") {
      blocks.clear();
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) blocks.push_back(std::stoi(item));
    } else if (arg == "--basis") {
      options.subspace_size = std::stoi(value());
    } else if (arg == "--ordering") {
      options.ordering = value();
    } else if (arg == "--fmax") {
      options.upper = std::pow(2.0 * M_PI * std::stod(value()), 2);
    } else if (arg == "--tol") {
      options.tolerance = std::stod(value());
    } else if (arg == "--slice") {
      options.slice_modes = std::stoi(value());
    } else if (arg == "--sturm") {
      sturm = true;
    } else if (arg == "-v") {
      spdlog::set_level(spdlog::level::debug);
    } else {
      std::cerr << "bench_modal_solver: unknown argument " << arg << "\n";
      return 2;
    }
  }
  vsense::model::SparseMatrix k, m;
  if (!Eigen::loadMarket(k, dir + "/K.mtx") || !Eigen::loadMarket(m, dir + "/M.mtx")) {
    std::cerr << "bench_modal_solver: cannot read " << dir << "/K.mtx or M.mtx\n";
    return 2;
  }
  for (const int block : blocks) {
    options.block_size = block;
    const auto start = std::chrono::steady_clock::now();
    const auto result = vsense::solvers::solve_lowest_modes(k, m, options);
    double sturm_s = 0.0;
    long long below = -1;
    if (sturm) {
      const auto count = vsense::solvers::check_completeness(
          k, m, result.eigenvalues.data(), result.eigenvalues.size(),
          std::getenv("VSENSE_STURM_OWN_ORDERING") ? nullptr : &result.ordering);
      sturm_s = count.seconds;
      below = count.below;
    }
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double top = result.eigenvalues[result.eigenvalues.size() - 1];
    fmt::print("{{\"n\":{},\"n_modes\":{},\"method\":\"{}\",\"block\":{},\"ordering\":\"{}\","
               "\"nnz_l\":{},\"factor_s\":{:.3f},\"solve_s\":{:.3f},\"operator_s\":{:.3f},"
               "\"orthogonalisation_s\":{:.3f},\"ritz_s\":{:.3f},\"restarts\":{},\"solves\":{},"
               "\"sturm_s\":{:.3f},\"sturm_below\":{},\"total_s\":{:.3f},\"highest_hz\":{:.9g},"
               "\"n_found\":{},\"slices\":{},\"certified_below\":{},"
               "\"max_residual\":{:.3g},\"peak_memory_bytes\":{}}}\n",
               k.rows(), options.n_modes, result.method, result.block_size, options.ordering,
               result.factor_nonzeros, result.factor_seconds, result.solve_seconds,
               result.operator_seconds, result.orthogonalisation_seconds, result.ritz_seconds,
               result.iterations, result.solves, sturm_s, below, total,
               std::sqrt(std::max(0.0, top)) / (2 * M_PI), result.eigenvalues.size(),
               result.slices, result.certified.empty() ? -1 : result.certified.back().below,
               result.residuals.maxCoeff(),
               peak_memory_bytes());
    std::fflush(stdout);
  }
  return 0;
}
