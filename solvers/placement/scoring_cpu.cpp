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
#include "../common/single_threaded_blas.hpp"
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

void check_request(const ScoreRequest& request) {
  if (request.right == nullptr || request.k1 == 0) {
    throw Error("placement scoring: the right matrix R1 must have at least one column");
  }
  if (request.correlation && request.correlation->n_selected > 0 &&
      !(request.correlation->length > 0.0)) {
    throw Error(fmt::format("placement scoring: correlation length must be > 0, got {}",
                            request.correlation->length));
  }
}

}  // namespace
}  // namespace vsense::solvers::placement

namespace vsense::solvers::placement {
namespace {

/// Buffers of one thread.
struct Workspace {
  std::vector<double> product;       // [chunk, 3, k]
  std::vector<double> scale;         // [chunk] 1 / s_j
  std::vector<double> correlation;   // [chunk, n_selected]
  std::vector<double> beta;          // [chunk, n_selected]
};

class CpuBlockScorer final : public BlockScorer {
public:
  CpuBlockScorer(std::size_t offset, std::size_t n, std::size_t m, const double* blocks,
                 const double* coordinates, std::size_t chunk)
      : BlockScorer(offset, n, m),
        blocks_(blocks),
        coordinates_(coordinates),
        chunk_(std::max<std::size_t>(chunk, 1)),
        scores_(n) {}

  BestCandidate score(const ScoreRequest& request, const std::uint8_t* eligible,
                      double* scores) override {
    check_request(request);
    // Chunks begin at multiples of chunk_ counted from the global origin.
    const std::size_t first_chunk = offset_ / chunk_;
    const std::size_t n_chunks = (offset_ + n_ - 1) / chunk_ - first_chunk + 1;
    std::vector<BestCandidate> chunk_best(n_chunks);
    const int threads = max_threads();
    if (workspaces_.size() < static_cast<std::size_t>(threads)) workspaces_.resize(static_cast<std::size_t>(threads));
    if (n_chunks >= 2 * static_cast<std::size_t>(threads) && threads > 1) {
      // Enough chunks: every thread runs whole chunks (single-threaded dgemm, then the Grams
      // while the product is in its cache).
      SingleThreadedBlas single;
#pragma omp parallel for schedule(dynamic, 1)
      for (std::ptrdiff_t c = 0; c < static_cast<std::ptrdiff_t>(n_chunks); ++c) {
        chunk_best[static_cast<std::size_t>(c)] =
            score_chunk(request, eligible, first_chunk + static_cast<std::size_t>(c), workspaces_[thread_id()]);
      }
    } else {
      // Few chunks: one after the other, each dgemm on all the BLAS's threads.
      for (std::size_t c = 0; c < n_chunks; ++c) {
        chunk_best[c] = score_chunk(request, eligible, first_chunk + c, workspaces_[0]);
      }
    }
    BestCandidate best;
    for (const auto& candidate : chunk_best) best = kernels::better(best, candidate);
    if (scores) std::copy(scores_.begin(), scores_.end(), scores);
    return best;
  }

private:
  /// Scores the candidates of global chunk `chunk_index` into scores_; returns their best.
  BestCandidate score_chunk(const ScoreRequest& request, const std::uint8_t* eligible,
                            std::size_t chunk_index, Workspace& work) {
    const std::size_t global = std::max(offset_, chunk_index * chunk_);
    const std::size_t global_end = std::min(offset_ + n_, (chunk_index + 1) * chunk_);
    const std::size_t first = global - offset_, count = global_end - global;
    const std::size_t k = request.k1 + request.k2, k1 = request.k1;
    BestCandidate best;
    bool any = false;
    for (std::size_t j = 0; j < count && !any; ++j) any = eligible[first + j] != 0;
    if (!any) {
      std::fill(scores_.begin() + static_cast<std::ptrdiff_t>(first),
                scores_.begin() + static_cast<std::ptrdiff_t>(first + count), minus_infinity);
      return best;
    }
    // product: [count, 3, k] = Phi_chunk R
    work.product.resize(3 * count * k);
    host_gemm(3 * count, k, m_, blocks_ + 3 * m_ * first, request.right, work.product.data());
    work.scale.assign(count, 1.0);
    if (request.correlation && request.correlation->n_selected > 0) {
      apply_correlation(*request.correlation, first, count, k, work);
    }
    const int kind = static_cast<int>(request.score);
    for (std::size_t j = 0; j < count; ++j) {
      double& out = scores_[first + j];
      if (!eligible[first + j]) {
        out = minus_infinity;
        continue;
      }
      const double* p0 = work.product.data() + 3 * k * j;
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
      const double factor = work.scale[j];
      for (int e = 0; e < 6; ++e) {
        s[e] *= factor;
        t[e] *= factor;
      }
      const double value = kernels::common::block_score(kind, s, t);
      out = std::isnan(value) ? minus_infinity : value;
      best = kernels::better(best, {out, static_cast<std::int64_t>(offset_ + first + j)});
    }
    return best;
  }

  // Replaces each candidate's product rows by those of its innovation r_j = Phi_j - beta_j Phi_S
  // and stores 1/s_j (the Grams' factor); see kernels/placement.hpp for the formulas.
  void apply_correlation(const ErrorCorrelation& corr, std::size_t first, std::size_t count,
                         std::size_t k, Workspace& work) const {
    const std::size_t n_sel = corr.n_selected;
    // correlation: [count, n_sel] c_ja = exp(-d_ja / lambda)
    work.correlation.resize(count * n_sel);
    for (std::size_t j = 0; j < count; ++j) {
      const double* x = coordinates_ + 3 * (first + j);
      for (std::size_t a = 0; a < n_sel; ++a) {
        const double* y = corr.selected_coordinates + 3 * a;
        const double dx = x[0] - y[0], dy = x[1] - y[1], dz = x[2] - y[2];
        work.correlation[j * n_sel + a] = std::exp(-std::sqrt(dx * dx + dy * dy + dz * dz) / corr.length);
      }
    }
    // beta: [count, n_sel] = correlation C_S^-1
    work.beta.resize(count * n_sel);
    host_gemm(count, n_sel, n_sel, work.correlation.data(), corr.selected_inverse, work.beta.data());
    for (std::size_t j = 0; j < count; ++j) {
      double dot = 0.0;
      for (std::size_t a = 0; a < n_sel; ++a) dot += work.correlation[j * n_sel + a] * work.beta[j * n_sel + a];
      const double s = 1.0 - dot;
      work.scale[j] = s > min_conditional_variance ? 1.0 / s : 0.0;
      for (std::size_t a = 0; a < n_sel; ++a) work.beta[j * n_sel + a] = -work.beta[j * n_sel + a];
    }
    // product [count, 3 k] += (-beta) [count, n_sel] * P_S [n_sel, 3 k]
    host_gemm(count, 3 * k, n_sel, work.beta.data(), corr.selected_products, work.product.data(), true);
  }

  const double* blocks_;       // [n, 3, m], borrowed
  const double* coordinates_;  // [n, 3], borrowed
  std::size_t chunk_;
  std::vector<double> scores_;            // [n] this pass's scores
  std::vector<Workspace> workspaces_;     // one per thread
};

}  // namespace

std::unique_ptr<BlockScorer> make_cpu_block_scorer(std::size_t offset, std::size_t n,
                                                   std::size_t m, const double* blocks,
                                                   const double* coordinates, std::size_t chunk) {
  return std::make_unique<CpuBlockScorer>(offset, n, m, blocks, coordinates, chunk);
}

std::size_t default_scoring_chunk(const Executor& exec) noexcept {
  // CPU: 2048 candidates x 3 rows x (2 m) doubles is ~20 MB per thread at m = 200, and a
  // single-threaded dgemm of [6144, m] x [m, 2 m] runs at full speed.
  // CUDA: large enough that one dgemm fills the device (~300 MB of product at m = 200).
  return exec.backend() == Backend::cuda ? 32768 : 2048;
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
