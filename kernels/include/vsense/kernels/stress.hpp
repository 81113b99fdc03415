#pragma once
/// @file stress.hpp
/// @brief Equivalent-stress kernels, one declaration per backend.
#include <cstddef>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {

namespace cpu {
/// @brief von Mises stress of n stress tensors.
/// @param[in] stress   [n, 6] row-major, components xx, yy, zz, xy, yz, zx (model units)
/// @param[out] von_mises [n]
void von_mises(const CpuExecutor& exec, const double* stress, std::size_t n, double* von_mises);
}  // namespace cpu

namespace cuda {
/// @brief As cpu::von_mises; both pointers are device pointers.
void von_mises(const CudaExecutor& exec, const double* stress, std::size_t n, double* von_mises);
}  // namespace cuda

/// @brief Dispatches to the executor's backend; pointers live on that backend.
void von_mises(const Executor& exec, const double* stress, std::size_t n, double* von_mises);

}  // namespace vsense::kernels
