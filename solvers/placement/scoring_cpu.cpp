// CPU reference of the placement scoring (kernels/include/vsense/kernels/placement.hpp): one BLAS
// dgemm per chunk of candidates, then the 3 x 3 Grams and scores with OpenMP. Here rather than
// in kernels/cpu because only vsense_solvers links the host BLAS.
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/kernels/placement_scores.hpp"
#include "vsense/solvers/placement_scoring.hpp"

namespace vsense::solvers::placement {

using kernels::BestCandidate;
using kernels::BlockScorer;
using kernels::ErrorCorrelation;
using kernels::ScoreRequest;

void host_gemm(std::size_t rows, std::size_t cols, std::size_t inner, const double* a,
               const double* b, double* c, bool accumulate) {
  if (rows == 0 || cols == 0) return;
  if (inner == 0) {
    if (!accumulate) std::fill(c, c + rows * cols, 0.0);
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
              static_cast<int>(cols), static_cast<int>(inner), 1.0, a, static_cast<int>(inner),
              b, static_cast<int>(cols), accumulate ? 1.0 : 0.0, c, static_cast<int>(cols));
}

namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

/// Below this conditional error variance (relative to sigma^2) a node adds no information:
/// it sits where the selected sensors' errors already determine its error.
constexpr double min_conditional_variance = 1e-10;

/// Smallest loop (in multiply-adds) worth a parallel region: below it the threads' start and
/// barrier cost more than the work (~1 ms of work), badly so on a loaded machine.
constexpr std::size_t parallel_work = std::size_t{1} << 22;

void check_request(const ScoreRequest& request, std::size_t m) {
  if (request.right == nullptr || request.k1 == 0) {
    throw Error("placement scoring: the right matrix R1 must have at least one column");
  }
  if (request.correlation && request.correlation->n_selected > 0 &&
      !(request.correlation->length > 0.0)) {
    throw Error(fmt::format("placement scoring: correlation length must be > 0, got {}",
                            request.correlation->length));
  }
  (void)m;
}

class CpuBlockScorer final : public BlockScorer {
public:
  CpuBlockScorer(std::size_t offset, std::size_t n, std::size_t m, const double* blocks,
                 const double* coordinates, std::size_t chunk)
      : BlockScorer(offset, n, m),
        blocks_(blocks),
        coordinates_(coordinates),
        chunk_(std::max<std::size_t>(chunk, 1)) {}

  BestCandidate score(const ScoreRequest& request, const std::uint8_t* eligible,
                      double* scores) override {
    check_request(request, m_);
    const std::size_t k = request.k1 + request.k2;
    const bool correlated = request.correlation && request.correlation->n_selected > 0;
    BestCandidate best;
    std::size_t global = offset_;
    const std::size_t global_end = offset_ + n_;
    while (global < global_end) {
      // Chunks begin at multiples of chunk_ counted from the global origin.
      const std::size_t chunk_end = std::min(global_end, (global / chunk_ + 1) * chunk_);
      const std::size_t first = global - offset_;
      const std::size_t count = chunk_end - global;
      global = chunk_end;
      bool any = false;
      for (std::size_t j = 0; j < count && !any; ++j) any = eligible[first + j] != 0;
      if (!any) {
        if (scores) std::fill(scores + first, scores + first + count, minus_infinity);
        continue;
      }
      // product_: [count, 3, k] = Phi_chunk R
      product_.resize(3 * count * k);
      host_gemm(3 * count, k, m_, blocks_ + 3 * m_ * first, request.right,
                product_.data());
      scale_.assign(count, 1.0);
      if (correlated) apply_correlation(*request.correlation, first, count, k);

      chunk_scores_.resize(count);
      const int kind = static_cast<int>(request.score);
      const std::size_t k1 = request.k1;
#pragma omp parallel for schedule(static) if (count * k * 6 >= parallel_work)
      for (std::ptrdiff_t jj = 0; jj < static_cast<std::ptrdiff_t>(count); ++jj) {
        const auto j = static_cast<std::size_t>(jj);
        if (!eligible[first + j]) {
          chunk_scores_[j] = minus_infinity;
          continue;
        }
        const double* p0 = product_.data() + 3 * k * j;
        const double* p1 = p0 + k;
        const double* p2 = p1 + k;
        double s[6] = {0, 0, 0, 0, 0, 0}, t[6] = {0, 0, 0, 0, 0, 0};
        for (std::size_t c = 0; c < k1; ++c) {
          s[0] += p0[c] * p0[c];
          s[1] += p1[c] * p1[c];
          s[2] += p2[c] * p2[c];
          s[3] += p0[c] * p1[c];
          s[4] += p1[c] * p2[c];
          s[5] += p0[c] * p2[c];
        }
        for (std::size_t c = k1; c < k; ++c) {
          t[0] += p0[c] * p0[c];
          t[1] += p1[c] * p1[c];
          t[2] += p2[c] * p2[c];
          t[3] += p0[c] * p1[c];
          t[4] += p1[c] * p2[c];
          t[5] += p0[c] * p2[c];
        }
        const double factor = scale_[j];
        for (int e = 0; e < 6; ++e) {
          s[e] *= factor;
          t[e] *= factor;
        }
        const double value = kernels::common::block_score(kind, s, t);
        chunk_scores_[j] = std::isnan(value) ? minus_infinity : value;
      }
      for (std::size_t j = 0; j < count; ++j) {
        if (!eligible[first + j]) continue;
        best = kernels::better(best, {chunk_scores_[j], static_cast<std::int64_t>(offset_ + first + j)});
      }
      if (scores) std::copy(chunk_scores_.begin(), chunk_scores_.end(), scores + first);
    }
    return best;
  }

private:
  // Replaces each candidate's product rows by those of its innovation r_j = Phi_j - beta_j Phi_S
  // and stores 1/s_j (the Grams' factor); see the header for the formulas.
  void apply_correlation(const ErrorCorrelation& corr, std::size_t first, std::size_t count,
                         std::size_t k) {
    const std::size_t n_sel = corr.n_selected;
    // correlation_: [count, n_sel] c_ja = exp(-d_ja / lambda)
    correlation_.resize(count * n_sel);
#pragma omp parallel for schedule(static) if (count * n_sel * 8 >= parallel_work)
    for (std::ptrdiff_t jj = 0; jj < static_cast<std::ptrdiff_t>(count); ++jj) {
      const auto j = static_cast<std::size_t>(jj);
      const double* x = coordinates_ + 3 * (first + j);
      for (std::size_t a = 0; a < n_sel; ++a) {
        const double* y = corr.selected_coordinates + 3 * a;
        const double dx = x[0] - y[0], dy = x[1] - y[1], dz = x[2] - y[2];
        correlation_[j * n_sel + a] = std::exp(-std::sqrt(dx * dx + dy * dy + dz * dz) / corr.length);
      }
    }
    // beta_: [count, n_sel] = correlation_ C_S^-1
    beta_.resize(count * n_sel);
    host_gemm(count, n_sel, n_sel, correlation_.data(), corr.selected_inverse, beta_.data());
    for (std::size_t j = 0; j < count; ++j) {
      double dot = 0.0;
      for (std::size_t a = 0; a < n_sel; ++a) dot += correlation_[j * n_sel + a] * beta_[j * n_sel + a];
      const double s = 1.0 - dot;
      scale_[j] = s > min_conditional_variance ? 1.0 / s : 0.0;
      for (std::size_t a = 0; a < n_sel; ++a) beta_[j * n_sel + a] = -beta_[j * n_sel + a];
    }
    // product_ [count, 3 k] += (-beta) [count, n_sel] * P_S [n_sel, 3 k]
    host_gemm(count, 3 * k, n_sel, beta_.data(), corr.selected_products, product_.data(), true);
  }

  const double* blocks_;       // [n, 3, m], borrowed
  const double* coordinates_;  // [n, 3], borrowed
  std::size_t chunk_;
  std::vector<double> product_;       // [chunk, 3, k]
  std::vector<double> scale_;         // [chunk] 1 / s_j
  std::vector<double> chunk_scores_;  // [chunk]
  std::vector<double> correlation_, beta_;  // [chunk, n_selected]
};

}  // namespace

std::unique_ptr<BlockScorer> make_cpu_block_scorer(std::size_t offset, std::size_t n,
                                                   std::size_t m, const double* blocks,
                                                   const double* coordinates, std::size_t chunk) {
  return std::make_unique<CpuBlockScorer>(offset, n, m, blocks, coordinates, chunk);
}

std::size_t default_scoring_chunk(const Executor& exec) noexcept {
  // CPU: 4096 candidates x 3 rows x (2 m) doubles is ~40 MB at m = 200: the product is
  // streamed once more by the Gram loop (~15 % of the dgemm time), and each chunk's parallel
  // regions carry enough work to hide their fork/join cost.
  // CUDA: large enough that one dgemm fills the device (~300 MB of product at m = 200).
  return exec.backend() == Backend::cuda ? 32768 : 4096;
}

std::unique_ptr<BlockScorer> make_block_scorer(const Executor& exec, std::size_t offset,
                                               std::size_t n, std::size_t m,
                                               const double* blocks, const double* coordinates,
                                               std::size_t chunk) {
  switch (exec.backend()) {
    case Backend::cpu:
      return make_cpu_block_scorer(offset, n, m, blocks, coordinates, chunk);
    case Backend::cuda:
      return kernels::cuda::make_block_scorer(static_cast<const CudaExecutor&>(exec), offset, n,
                                              m, blocks, coordinates, chunk);
  }
  return nullptr;
}

}  // namespace vsense::solvers::placement
