// The block shift-invert Lanczos on a CUDA device: the path of `vsense modes
// --backend cuda` for models above the dense limit. The iteration is the CPU
// path's own (block_lanczos.cpp, the same code on a device IterationSpace):
// only where the vectors live and who multiplies them differ.
//  - CHOLMOD factorises K - sigma M on the host (supernodal LL^T, METIS/AMD as
//  on the CPU path);
//    the factor is copied to the device once and every block solve runs there
//    (supernodal triangular solves, kernels/supernodal.hpp), so that the
//    factor, the dominant memory traffic of the iteration, is read at device
//    bandwidth.
//  - The basis V, M V, the block Gram-Schmidt products, the M-products
//  (cuSPARSE) and the restart
//    products live and run on the device (cuBLAS); the projected [m, m]
//    problems and the small coefficient matrices stay on the host.
//  - When the factor does not fit beside the basis, or was regularised (a
//  singular pencil, whose
//    solves are refined against K - sigma M), each block is solved on the host
//    instead: two copies of n x b doubles per block, the rest stays on the
//    device.
//  - The results come back to the host and go through finish_result's checks
//  (residuals,
//    backward error, M-orthonormality) computed there with the host K and M: an
//    independent check of what the device computed.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>
#include <vector>

#include "modal_internal.hpp"
#include "vsense/kernels/block_ops.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"
#include "vsense/kernels/supernodal.hpp"

namespace vsense::solvers::detail {

namespace {

using Eigen::Index;

kernels::LowerCscView lower_view(const SparseMatrix& lower) {
  if (!lower.isCompressed()) {
    throw Error("device modes: the assembled matrix is not in compressed form");
  }
  return {lower.rows(), lower.outerIndexPtr(), lower.innerIndexPtr(), lower.valuePtr()};
}

double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

/// Device bytes of the iteration itself for a request of nev pairs: V and M V
/// ([n, cap + b] each), the restart work [n, cap], two blocks of work and the
/// returned vectors [n, nev].
double iteration_bytes(Index n, const BlockLanczosSettings& settings) {
  const Index b = settings.block_size;
  const Index cap =
      settings.basis_size > 0 ? settings.basis_size : default_basis_size(settings.n_wanted, b);
  return 8.0 * static_cast<double>(n) *
         static_cast<double>(3 * cap + 2 * b + 3 * b + settings.n_wanted);
}

}  // namespace

ModalResult solve_lowest_modes_block_device(const std::shared_ptr<const CudaExecutor>& exec,
                                            const SparseMatrix& stiffness, const SparseMatrix& mass,
                                            const ModalOptions& options, double sigma,
                                            double fmax_hz, std::string& where) {
  check_request(stiffness, mass, options);
  const Index n = stiffness.rows();
  int nev = options.n_modes;
  BlockLanczosSettings settings = block_settings(n, nev, options);
  spdlog::info(
      "modal: {} lowest modes of n = {} equations, {}, block Lanczos "
      "(block {}) on {}",
      nev, n, describe_shift(sigma), settings.block_size, exec->description());

  const CholmodShiftInvert factor(stiffness, mass, sigma, options.ordering);
  const auto ops = kernels::cuda::make_block_ops(exec);
  const kernels::cuda::DeviceSymmetricMatrix mass_device(exec, lower_view(mass));

  // The factor on the device when it fits beside the iteration (with room for
  // the requests an fmax search may grow to: the basis is sized for the first
  // request, hence the margin).
  std::unique_ptr<kernels::cuda::DeviceSupernodalFactor> device_factor;
  std::string host_solves;
  // Blocks grow from 8 to 12 vectors past 60 modes (default_block_size), which
  // an fmax search may reach; a user block size stays.
  const int max_rhs =
      options.block_size > 0 ? settings.block_size : std::max(settings.block_size, 12);
  if (factor.regularisation() > 0.0) {
    host_solves =
        "the factor was regularised (singular pencil): every solve "
        "is refined against "
        "K - sigma M on the CPU";
  } else {
    const kernels::SupernodalFactorView view = factor.supernodal_view();
    const double needed =
        static_cast<double>(kernels::cuda::DeviceSupernodalFactor::bytes_needed(view, max_rhs));
    const double free_bytes = static_cast<double>(exec->free_bytes());
    const double iteration = iteration_bytes(n, settings);
    if (needed + iteration > 0.8 * free_bytes) {
      host_solves = fmt::format(
          "the factor ({:.2f} GiB) and the basis ({:.2f} GiB) do not fit in 80 "
          "% of the {:.2f} "
          "GiB free on the device: the factor solves run on the CPU",
          gib(needed), gib(iteration), gib(free_bytes));
    } else {
      const auto start = std::chrono::steady_clock::now();
      device_factor = std::make_unique<kernels::cuda::DeviceSupernodalFactor>(exec, view, max_rhs);
      spdlog::info("modal: factor copied to {} ({:.2f} GiB) in {:.3f} s", exec->description(),
                   gib(static_cast<double>(device_factor->device_bytes())), seconds_since(start));
    }
  }
  if (!host_solves.empty()) spdlog::info("modal: {}", host_solves);
  where = device_factor ? "block Lanczos on the device, factor solves on the device"
                        : "block Lanczos on the device, factor solves on the CPU";

  IterationSpace space;
  space.ops = ops.get();
  space.n = n;
  space.sigma = sigma;
  space.mass = [&mass_device](const double* in, double* out, Index ncols) {
    mass_device.apply(in, out, ncols);
  };
  std::vector<double> host_in, host_out;  // the CPU solves' copies of a block
  if (device_factor) {
    space.solve = [&](const double* in, double* out, Index ncols) {
      // In place on `out`: the supernodal solve works on its right-hand sides.
      ops->copy({const_cast<double*>(in), n, ncols, n}, {out, n, ncols, n});
      device_factor->solve(out, n, ncols);
    };
  } else {
    space.solve = [&](const double* in, double* out, Index ncols) {
      const auto count = static_cast<std::size_t>(n * ncols);
      host_in.resize(count);
      host_out.resize(count);
      ops->download({const_cast<double*>(in), n, ncols, n}, host_in.data(), n);
      factor.solve(host_in.data(), host_out.data(), ncols);
      ops->upload(host_out.data(), n, {out, n, ncols, n});
    };
  }

  // With fmax: the request doubles on the same factor until a mode lies above
  // fmax.
  ModalOptions request = options;
  for (;;) {
    ModalResult result = block_modes(space, factor, stiffness, mass, request, settings);
    if (fmax_hz <= 0.0) return result;
    const double highest =
        std::sqrt(std::max(result.eigenvalues(result.eigenvalues.size() - 1), 0.0)) /
        (2.0 * std::numbers::pi);
    if (highest > fmax_hz || nev >= n) return result;
    const int next = static_cast<int>(std::min<std::int64_t>(2 * std::int64_t{nev}, n));
    spdlog::info("{} modes reach only {:.4g} Hz < fmax {:.4g} Hz: asking for {}", nev, highest,
                 fmax_hz, next);
    nev = next;
    request.n_modes = nev;
    settings = block_settings(n, nev, request);
  }
}

}  // namespace vsense::solvers::detail
