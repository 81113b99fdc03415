#pragma once
/// @file sparse.hpp
/// @brief Views of host sparse matrices for the kernels, and the sparse-times-dense product
/// Y = A X (one declaration per backend): applied to all modes at once it is the modal stress
/// recovery (A = the nodal-stress operator of model/assembly.hpp, X = the mode shapes).
#include <cstddef>
#include <cstdint>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {

/// A general sparse matrix in compressed rows (0-based), host memory, not owned.
struct CsrMatrixView {
  std::int64_t rows = 0, cols = 0;
  const std::int64_t* row_offsets = nullptr;  ///< [rows + 1]
  const std::int32_t* columns = nullptr;      ///< [nnz], ascending within a row
  const double* values = nullptr;             ///< [nnz]
  std::int64_t nnz() const noexcept { return rows > 0 ? row_offsets[rows] : 0; }
};

/// The lower triangle (diagonal included) of a symmetric matrix in compressed columns
/// (0-based), host memory, not owned: the layout of model::SparseMatrix (Eigen, CHOLMOD
/// stype -1). Entries above the diagonal, if any, are ignored.
struct LowerCscView {
  std::int64_t n = 0;
  const std::int64_t* col_offsets = nullptr;  ///< [n + 1]
  const std::int64_t* rows = nullptr;         ///< [nnz]
  const double* values = nullptr;             ///< [nnz]
  std::int64_t nnz() const noexcept { return n > 0 ? col_offsets[n] : 0; }
};

namespace cpu {
/// @brief y = A x for a block of vectors.
/// @param[in] x host, [a.cols, n_vectors] column-major (leading dimension a.cols)
/// @param[out] y host, [a.rows, n_vectors] column-major (leading dimension a.rows)
void sparse_times_dense(const CpuExecutor& exec, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y);
}  // namespace cpu

namespace cuda {
/// @brief As cpu::sparse_times_dense with host pointers: A and X are copied to the device, the
/// product is one cuSPARSE SpMM over all vectors, Y is copied back.
/// @throws DeviceResourceError when A, X and Y do not fit in device memory.
void sparse_times_dense(const CudaExecutor& exec, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y);
}  // namespace cuda

/// Dispatches to the executor's backend (host pointers on both).
void sparse_times_dense(const Executor& exec, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y);

}  // namespace vsense::kernels
