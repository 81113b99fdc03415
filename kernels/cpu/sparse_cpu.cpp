// Sparse times dense on the CPU, the reference of the cuSPARSE SpMM.
//
// X is copied row-major in panels of up to `panel` vectors, so that each stored entry of A
// updates a contiguous run of the panel (vectorised) and A is streamed once per panel instead of
// once per vector. Rows are independent, so the result does not depend on the thread count.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"

namespace vsense::kernels {

namespace {
constexpr std::size_t panel = 32;

void check_shapes(const CsrMatrixView& a, const double* x, const double* y) {
  if (a.rows < 0 || a.cols < 0 || (a.rows > 0 && a.row_offsets == nullptr) ||
      (a.nnz() > 0 && (a.columns == nullptr || a.values == nullptr))) {
    throw InputError(fmt::format("sparse_times_dense: malformed {}x{} matrix", a.rows, a.cols));
  }
  if ((a.cols > 0 && x == nullptr) || (a.rows > 0 && y == nullptr)) {
    throw InputError("sparse_times_dense: null block");
  }
}
}  // namespace

namespace cpu {

void sparse_times_dense(const CpuExecutor&, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y) {
  check_shapes(a, x, y);
  const auto rows = static_cast<std::size_t>(a.rows), cols = static_cast<std::size_t>(a.cols);
  std::vector<double> x_rows(cols * std::min(panel, n_vectors));  // [cols, width] row-major
  for (std::size_t first = 0; first < n_vectors; first += panel) {
    const std::size_t width = std::min(panel, n_vectors - first);
    for (std::size_t j = 0; j < width; ++j) {
      const double* column = x + (first + j) * cols;
      for (std::size_t i = 0; i < cols; ++i) x_rows[i * width + j] = column[i];
    }
    const auto n_rows = static_cast<std::int64_t>(rows);
#pragma omp parallel for schedule(static, 256)
    for (std::int64_t r = 0; r < n_rows; ++r) {
      double sum[panel] = {};
      for (std::int64_t k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k) {
        const double value = a.values[k];
        const double* xr = x_rows.data() + static_cast<std::size_t>(a.columns[k]) * width;
        for (std::size_t j = 0; j < width; ++j) sum[j] += value * xr[j];
      }
      for (std::size_t j = 0; j < width; ++j) {
        y[(first + j) * rows + static_cast<std::size_t>(r)] = sum[j];
      }
    }
  }
}

}  // namespace cpu

void sparse_times_dense(const Executor& exec, const CsrMatrixView& a, const double* x,
                        std::size_t n_vectors, double* y) {
  switch (exec.backend()) {
    case Backend::cpu:
      return cpu::sparse_times_dense(static_cast<const CpuExecutor&>(exec), a, x, n_vectors, y);
    case Backend::cuda:
      return cuda::sparse_times_dense(static_cast<const CudaExecutor&>(exec), a, x, n_vectors, y);
  }
}

}  // namespace vsense::kernels
