#pragma once
/// @file block_ops.hpp
/// @brief The tall-skinny products of a block eigen-iteration, on one
/// executor's memory.
///
/// The basis V [n, m] and the blocks W [n, b] (n large, m and b small) live
/// where the executor computes: host memory for the CPU, device memory for
/// CUDA. The small coefficient matrices
/// ([m, b], [b, b]) always live on the host, where the projected eigenproblems
/// are solved: they cross the bus once per product, which is negligible against
/// the n-long operands.
#include <cstdint>
#include <memory>

#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/sparse.hpp"

namespace vsense::kernels {

/// A column-major block [rows, cols] with leading dimension ld, in an
/// executor's memory (not owned).
struct BlockView {
  double* data = nullptr;
  std::int64_t rows = 0, cols = 0, ld = 0;
  /// Columns [first, first + count).
  BlockView columns(std::int64_t first, std::int64_t count) const {
    return {data + first * ld, rows, count, ld};
  }
  /// Rows [first, first + count) of every column.
  BlockView row_block(std::int64_t first, std::int64_t count) const {
    return {data + first, count, cols, ld};
  }
};

/// @brief The block products on one executor. Every operand view lies in the
/// executor's memory except the pointers documented as host.
class BlockOps {
public:
  virtual ~BlockOps() = default;
  /// The executor whose memory the views lie in (allocate blocks with
  /// DeviceArray on it).
  virtual std::shared_ptr<const Executor> executor() const noexcept = 0;
  /// True when views point to host memory (the CPU): callers may then read and
  /// write them.
  virtual bool host_memory() const noexcept = 0;
  /// c = alpha a^T b + beta c.
  /// @param[in] a [n, k]; b [n, m]
  /// @param[in,out] c host, [k, m], leading dimension ldc
  virtual void gemm_tn(double alpha, BlockView a, BlockView b, double beta, double* c,
                       std::int64_t ldc) = 0;
  /// c = alpha a b + beta c.
  /// @param[in] a [n, k]; b host, [k, m], leading dimension ldb
  /// @param[in,out] c [n, m]; must not overlap a
  virtual void gemm_nn(double alpha, BlockView a, const double* b, std::int64_t ldb, double beta,
                       BlockView c) = 0;
  /// x[:, j] /= divisors[j] (a division, not a multiplication by the inverse:
  /// the CPU path's rounding stays that of a plain column division).
  /// @param[in] divisors host, [x.cols]
  virtual void divide_columns(BlockView x, const double* divisors) = 0;
  /// to = from (same shape, no overlap).
  virtual void copy(BlockView from, BlockView to) = 0;
  /// to = the host block at `host` ([to.rows, to.cols], leading dimension ld).
  virtual void upload(const double* host, std::int64_t ld, BlockView to) = 0;
  /// The host block at `host` ([from.rows, from.cols], leading dimension ld) =
  /// from.
  virtual void download(BlockView from, double* host, std::int64_t ld) = 0;
  /// Waits for queued work (a no-op on the CPU).
  virtual void synchronize() = 0;
};

namespace cpu {
/// The host BLAS (dgemm) on host memory.
std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const CpuExecutor> exec);
}  // namespace cpu

namespace cuda {
/// cuBLAS on the executor's device and stream.
/// @throws NotCompiled without CUDA; DeviceUnavailable when the handle cannot
/// be created.
std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const CudaExecutor> exec);

/// @brief A symmetric sparse matrix (both triangles, compressed rows) on a
/// device, for repeated products with blocks of device vectors (one cuSPARSE
/// SpMM per block).
class DeviceSymmetricMatrix {
public:
  /// Uploads the full matrix made from the lower triangle `lower` (host).
  /// @throws DeviceResourceError when it does not fit in device memory.
  DeviceSymmetricMatrix(std::shared_ptr<const CudaExecutor> exec, const LowerCscView& lower);
  ~DeviceSymmetricMatrix();
  DeviceSymmetricMatrix(const DeviceSymmetricMatrix&) = delete;
  DeviceSymmetricMatrix& operator=(const DeviceSymmetricMatrix&) = delete;
  std::int64_t rows() const noexcept;
  /// y = A x on the executor's stream.
  /// @param[in] x device, [n, ncols], leading dimension n
  /// @param[out] y device, [n, ncols], leading dimension n (must not alias x)
  void apply(const double* x, double* y, std::int64_t ncols) const;
  /// Device bytes held.
  std::size_t device_bytes() const noexcept;

private:
  struct State;
  std::unique_ptr<State> state_;
};
}  // namespace cuda

/// The block products of an executor's backend.
std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const Executor> exec);

}  // namespace vsense::kernels
