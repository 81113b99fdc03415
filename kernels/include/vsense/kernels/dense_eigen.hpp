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
#include <cstdint>

#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/sparse.hpp"

namespace vsense::kernels {

namespace cpu {
/// @param[in] stiffness, mass host, [n, n] full symmetric (row- or column-major: the same)
/// @param[in] shift sigma in (rad/s)^2, below the lowest eigenvalue
/// @param[out] eigenvalues [count] ascending; vectors [n, count] column-major (column j = mode j)
/// @throws NumericalError when K - sigma M is not positive definite.
void dense_lowest_modes(const CpuExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);
/// As above from the sparse lower triangles of K and M (densified here, n x n each).
/// @throws InputError when K is n x n and M is not.
void dense_lowest_modes(const CpuExecutor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors);
}  // namespace cpu

namespace cuda {
/// As cpu::dense_lowest_modes (host pointers; the matrices are copied to the device and solved
/// with cusolverDnDsygvdx for the `count` largest mu only).
/// @throws DeviceResourceError when 2 n^2 doubles do not fit, NumericalError as the CPU.
void dense_lowest_modes(const CudaExecutor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);
/// As above from the sparse lower triangles of K and M: only the sparse arrays cross the bus
/// and the dense n x n matrices exist on the device alone (no 2 n^2 doubles on the host).
void dense_lowest_modes(const CudaExecutor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors);

/// @brief The largest n this device solves densely: the smaller of dense_modes_equation_cap and
/// the n whose dense_modes_bytes_per_entry * n^2 bytes fit in 80 % of the free device memory.
/// @throws NotCompiled without CUDA.
std::int64_t dense_modes_max_equations(const CudaExecutor& exec);
}  // namespace cuda

/// Device bytes per entry of an n x n matrix that the dense solve needs: A = M and B = K - sigma
/// M (2 doubles), and cusolverDnDsygvdx's workspace, bounded by 2 more (LAPACK's dsyevd bound,
/// 1 + 6 n + 2 n^2 doubles, for all vectors; the range-I variant needs less).
constexpr std::size_t dense_modes_bytes_per_entry = 4 * sizeof(double);

/// The size cap of the dense path, from its O(n^3) cost: cusolverDnDsygvdx does about 4 n^3
/// flops (Cholesky of B n^3/3, reduction to standard form n^3, tridiagonalisation 4/3 n^3 of
/// which half is matrix-vector, memory-bound, the back-transformation of `count` vectors). At
/// 20,000 equations that is 3e13 flops, ~5-10 s on a data-centre GPU (the memory-bound half at
/// ~1 TFLOP/s dominates), where the sparse shift-invert solver on CHOLMOD takes a few seconds on
/// a workstation: beyond it the dense path stops paying, and its n^2 memory (3.2 GB per matrix)
/// grows past smaller devices.
constexpr std::int64_t dense_modes_equation_cap = 20000;

/// Dispatches to the executor's backend.
void dense_lowest_modes(const Executor& exec, const double* stiffness, const double* mass,
                        std::size_t n, double shift, std::size_t count, double* eigenvalues,
                        double* vectors);
void dense_lowest_modes(const Executor& exec, const LowerCscView& stiffness,
                        const LowerCscView& mass, double shift, std::size_t count,
                        double* eigenvalues, double* vectors);

}  // namespace vsense::kernels
