// The block products on the host
// (kernels/include/vsense/kernels/block_ops.hpp): the BLAS for the tall
// products (Eigen's own GEMM repacks the tall operand on every call, which
// costs more than the product at these shapes), plain loops for the rest.
#include <algorithm>
#include <cstring>

#include "vsense/kernels/block_ops.hpp"

extern "C" void dgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const double* alpha, const double* a, const int* lda,
                       const double* b, const int* ldb, const double* beta, double* c,
                       const int* ldc);

namespace vsense::kernels {

namespace cpu {
namespace {

void copy_block(const double* from, std::int64_t from_ld, double* to, std::int64_t to_ld,
                std::int64_t rows, std::int64_t cols) {
  for (std::int64_t j = 0; j < cols; ++j) {
    std::memcpy(to + j * to_ld, from + j * from_ld,
                static_cast<std::size_t>(rows) * sizeof(double));
  }
}

class HostBlockOps final : public BlockOps {
public:
  explicit HostBlockOps(std::shared_ptr<const CpuExecutor> exec) : exec_(std::move(exec)) {}
  std::shared_ptr<const Executor> executor() const noexcept override { return exec_; }
  bool host_memory() const noexcept override { return true; }

  void gemm_tn(double alpha, BlockView a, BlockView b, double beta, double* c,
               std::int64_t ldc) override {
    const int n = static_cast<int>(a.rows), k = static_cast<int>(a.cols),
              m = static_cast<int>(b.cols);
    if (k == 0 || m == 0) return;
    const int lda = static_cast<int>(a.ld), ldb = static_cast<int>(b.ld),
              ldc32 = static_cast<int>(ldc);
    dgemm_("T", "N", &k, &m, &n, &alpha, a.data, &lda, b.data, &ldb, &beta, c, &ldc32);
  }

  void gemm_nn(double alpha, BlockView a, const double* b, std::int64_t ldb, double beta,
               BlockView c) override {
    const int n = static_cast<int>(a.rows), k = static_cast<int>(a.cols),
              m = static_cast<int>(c.cols);
    if (n == 0 || m == 0) return;
    if (k == 0) {
      if (beta != 1.0) {
        for (std::int64_t j = 0; j < c.cols; ++j) {
          double* column = c.data + j * c.ld;
          for (std::int64_t i = 0; i < c.rows; ++i) column[i] *= beta;
        }
      }
      return;
    }
    const int lda = static_cast<int>(a.ld), ldb32 = static_cast<int>(ldb),
              ldc = static_cast<int>(c.ld);
    dgemm_("N", "N", &n, &m, &k, &alpha, a.data, &lda, b, &ldb32, &beta, c.data, &ldc);
  }

  void divide_columns(BlockView x, const double* divisors) override {
    for (std::int64_t j = 0; j < x.cols; ++j) {
      double* column = x.data + j * x.ld;
      const double d = divisors[j];
      for (std::int64_t i = 0; i < x.rows; ++i) column[i] /= d;
    }
  }

  void copy(BlockView from, BlockView to) override {
    copy_block(from.data, from.ld, to.data, to.ld, from.rows, from.cols);
  }
  void upload(const double* host, std::int64_t ld, BlockView to) override {
    copy_block(host, ld, to.data, to.ld, to.rows, to.cols);
  }
  void download(BlockView from, double* host, std::int64_t ld) override {
    copy_block(from.data, from.ld, host, ld, from.rows, from.cols);
  }
  void synchronize() override {}

private:
  std::shared_ptr<const CpuExecutor> exec_;
};

}  // namespace

std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const CpuExecutor> exec) {
  return std::make_unique<HostBlockOps>(std::move(exec));
}

}  // namespace cpu

std::unique_ptr<BlockOps> make_block_ops(std::shared_ptr<const Executor> exec) {
  switch (exec->backend()) {
    case Backend::cpu:
      return cpu::make_block_ops(std::static_pointer_cast<const CpuExecutor>(std::move(exec)));
    case Backend::cuda:
      return cuda::make_block_ops(std::static_pointer_cast<const CudaExecutor>(std::move(exec)));
  }
  return nullptr;
}

}  // namespace vsense::kernels
