#pragma once
/// @file dense_eigen.hpp
/// @brief The lowest eigenpairs of a small dense pencil K x = lambda M x, one declaration per
/// backend: the modal path for models small enough that a dense solve wins (cuSOLVER on a GPU).
///
/// Solved as M x = mu (K - sigma M) x with B = K - sigma M positive definite (sigma < 0 below the
/// lowest eigenvalue, so free-free models work) and A = M, which may be singular (massless DOFs
/// give mu = 0): the largest mu are the lowest lambda = sigma + 1 / mu. Vectors are returned
/// mass-normalised (x^T M x = 1).
#include <cstddef>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {

namespace cpu {
/// @param[in] stiffness, mass host, [n, n] full symmetric (row- or column-major: the same)
/// @param[in] shift sigma in (rad/s)^2, below the lowest eigenvalue
/// @param[out] eigenvalues [count] ascending; vectors [n, count] column-major (column j = mode j)
/// @throws NumericalError when K - sigma M is not positive definite.
void dense_lowest_modes(const CpuExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);
}  // namespace cpu

namespace cuda {
/// As cpu::dense_lowest_modes (host pointers; the matrices are copied to the device and solved
/// with cusolverDnDsygvdx for the `count` largest mu only).
/// @throws DeviceResourceError when 2 n^2 doubles do not fit, NumericalError as the CPU.
void dense_lowest_modes(const CudaExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);
}  // namespace cuda

/// Dispatches to the executor's backend.
void dense_lowest_modes(const Executor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);

}  // namespace vsense::kernels
