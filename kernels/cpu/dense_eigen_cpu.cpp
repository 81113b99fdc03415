// Dense lowest modes on the CPU (Eigen), the reference of the cuSOLVER path.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "vsense/kernels/dense_eigen.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::kernels {

namespace {
void check_pencil(const LowerCscView& stiffness, const LowerCscView& mass) {
  if (stiffness.n != mass.n || stiffness.n < 0) {
    throw InputError(fmt::format("dense modes: K is {0}x{0} but M is {1}x{1}", stiffness.n,
                                 mass.n));
  }
}

/// Both triangles of a symmetric matrix from its lower triangle: dense [n, n].
std::vector<double> densify(const LowerCscView& a) {
  const auto n = static_cast<std::size_t>(a.n);
  std::vector<double> dense(n * n, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::int64_t k = a.col_offsets[j]; k < a.col_offsets[j + 1]; ++k) {
      const auto i = static_cast<std::size_t>(a.rows[k]);
      if (i < j) continue;  // not part of the lower triangle
      dense[j * n + i] = dense[i * n + j] = a.values[k];
    }
  }
  return dense;
}
}  // namespace

namespace cpu {

void dense_lowest_modes(const CpuExecutor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors) {
  check_pencil(stiffness, mass);
  const std::vector<double> k = densify(stiffness), m = densify(mass);
  dense_lowest_modes(exec, k.data(), m.data(), static_cast<std::size_t>(stiffness.n), shift,
                     count, eigenvalues, vectors);
}

void dense_lowest_modes(const CpuExecutor&, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors) {
  if (count == 0 || count > n) {
    throw InputError(fmt::format("dense modes: {} modes of {} equations", count, n));
  }
  const auto nn = static_cast<Eigen::Index>(n);
  const Eigen::Map<const Eigen::MatrixXd> k(stiffness, nn, nn), m(mass, nn, nn);
  const Eigen::MatrixXd b = k - shift * m;
  // The generalised solver factors B without saying whether it could: check first.
  if (Eigen::LLT<Eigen::MatrixXd>(b).info() != Eigen::Success) {
    throw NumericalError("dense modes: K - sigma M is not positive definite (sigma not below "
                         "the lowest eigenvalue?)");
  }
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> solver(m, b,
                                                                   Eigen::ComputeEigenvectors |
                                                                       Eigen::Ax_lBx);
  if (solver.info() != Eigen::Success) {
    throw NumericalError("dense modes: K - sigma M is not positive definite (sigma not below "
                         "the lowest eigenvalue?)");
  }
  // Ascending mu: the largest are at the end, and the largest mu is the lowest lambda.
  for (std::size_t j = 0; j < count; ++j) {
    const Eigen::Index column = nn - 1 - static_cast<Eigen::Index>(j);
    const double mu = solver.eigenvalues()(column);
    if (!(mu > 0.0)) throw NumericalError("dense modes: fewer modes with mass than requested");
    eigenvalues[j] = shift + 1.0 / mu;
    const double scale = 1.0 / std::sqrt(mu);  // x^T B x = 1 -> x^T M x = mu
    for (std::size_t i = 0; i < n; ++i) {
      vectors[j * n + i] = scale * solver.eigenvectors()(static_cast<Eigen::Index>(i), column);
    }
  }
}

}  // namespace cpu

void dense_lowest_modes(const Executor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors) {
  switch (exec.backend()) {
    case Backend::cpu:
      return cpu::dense_lowest_modes(static_cast<const CpuExecutor&>(exec), stiffness, mass, n,
                                     shift, count, eigenvalues, vectors);
    case Backend::cuda:
      return cuda::dense_lowest_modes(static_cast<const CudaExecutor&>(exec), stiffness, mass, n,
                                      shift, count, eigenvalues, vectors);
  }
}

void dense_lowest_modes(const Executor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors) {
  switch (exec.backend()) {
    case Backend::cpu:
      return cpu::dense_lowest_modes(static_cast<const CpuExecutor&>(exec), stiffness, mass,
                                     shift, count, eigenvalues, vectors);
    case Backend::cuda:
      return cuda::dense_lowest_modes(static_cast<const CudaExecutor&>(exec), stiffness, mass,
                                      shift, count, eigenvalues, vectors);
  }
}

}  // namespace vsense::kernels
