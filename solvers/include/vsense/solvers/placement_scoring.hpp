#pragma once
/// @file placement_scoring.hpp
/// @brief The CPU reference of the placement scoring kernel (kernels/placement.hpp) and the
/// dispatch over backends. It lives in vsense_solvers because it calls the host BLAS.
#include <cstddef>
#include <memory>

#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/placement.hpp"

namespace vsense::solvers::placement {

/// @brief CPU scorer: one BLAS dgemm per chunk, then the Grams and scores with OpenMP.
/// @param[in] offset global index of the first candidate held
/// @param[in] blocks host, [n, 3, m] row-major; borrowed: must outlive the scorer
/// @param[in] coordinates host, [n, 3] (used by the correlated error model); borrowed
/// @param[in] chunk candidates per GEMM (a multiple of it must start every partition)
std::unique_ptr<kernels::BlockScorer> make_cpu_block_scorer(std::size_t offset, std::size_t n,
                                                            std::size_t m, const double* blocks,
                                                            const double* coordinates,
                                                            std::size_t chunk);

/// @brief The scorer of the executor's backend (same arguments; CUDA copies the data).
std::unique_ptr<kernels::BlockScorer> make_block_scorer(const Executor& exec, std::size_t offset,
                                                        std::size_t n, std::size_t m,
                                                        const double* blocks,
                                                        const double* coordinates,
                                                        std::size_t chunk);

/// Candidates per chunk that suit the executor's backend (CPU: cache-sized; CUDA: large).
std::size_t default_scoring_chunk(const Executor& exec) noexcept;

/// @brief C = A B (or C += A B) for row-major A [rows, inner], B [inner, cols], C [rows, cols],
/// with the host BLAS (dgemm).
void host_gemm(std::size_t rows, std::size_t cols, std::size_t inner, const double* a,
               const double* b, double* c, bool accumulate = false);

}  // namespace vsense::solvers::placement
