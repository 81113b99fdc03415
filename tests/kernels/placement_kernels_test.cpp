// The placement scoring kernels: the CUDA scorer against the CPU reference on awkward sizes
// (n = 597 candidates, m = 37 modes, chunks that do not divide n, correlated errors), and
// whole placements on both backends. Skipped without a usable CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/solvers/placement.hpp"
#include "vsense/solvers/placement_scoring.hpp"

namespace {

using vsense::kernels::BlockScore;

/// Scores are sums of ~3 m products of O(1) values then a 3 x 3 determinant or solve; the
/// two backends sum in different orders (cuBLAS tiles, warp reductions), so they agree to a
/// few hundred ulps of the largest term: 1e-11 relative to the largest score.
constexpr double backend_rel = 1e-11;

struct Data {
  std::size_t n, m;
  std::vector<double> blocks, coordinates, right;  // right: [m, k1 + k2]
};

Data random_data(std::size_t n, std::size_t m, std::size_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Data d{n, m, {}, {}, {}};
  d.blocks.resize(3 * n * m);
  for (auto& v : d.blocks) v = normal(rng) / std::sqrt(double(m));
  d.coordinates.resize(3 * n);
  for (auto& v : d.coordinates) v = u(rng);
  d.right.resize(m * k);
  for (auto& v : d.right) v = normal(rng) / std::sqrt(double(m));
  return d;
}

std::shared_ptr<vsense::CudaExecutor> cuda_or_skip() {
  if (vsense::CudaExecutor::device_count() == 0) return nullptr;
  return vsense::CudaExecutor::create(0);
}

#define VSENSE_SKIP_WITHOUT_CUDA(exec)                                               \
  auto exec = cuda_or_skip();                                                        \
  if (!exec) GTEST_SKIP() << "no usable CUDA device (CudaExecutor::device_count() == 0)"

TEST(PlacementKernelsCuda, ScoresMatchTheCpuReference) {
  VSENSE_SKIP_WITHOUT_CUDA(cuda);
  const vsense::CpuExecutor cpu;
  const std::size_t n = 597, m = 37;
  for (const BlockScore kind : {BlockScore::log_det_plus, BlockScore::trace_ratio, BlockScore::efi_removal,
                                BlockScore::trace}) {
    for (const bool correlated : {false, true}) {
      const std::size_t k1 = kind == BlockScore::efi_removal ? m : 29, k2 = kind == BlockScore::trace_ratio ? 11 : 0;
      Data d = random_data(n, m, k1 + k2, 7);
      if (kind == BlockScore::efi_removal) {
        for (auto& v : d.right) v *= 0.05;  // keep 1 - det(I - S) in its meaningful range
      }
      std::vector<std::uint8_t> eligible(n, 1);
      for (std::size_t i = 0; i < n; i += 5) eligible[i] = 0;
      // Correlated errors with 4 selected nodes.
      const std::size_t n_sel = 4;
      std::vector<double> sel_coords(d.coordinates.begin(), d.coordinates.begin() + 3 * n_sel);
      std::vector<double> sel_inverse(n_sel * n_sel, 0.0);
      for (std::size_t a = 0; a < n_sel; ++a) sel_inverse[a * n_sel + a] = 1.0;  // well separated nodes: C ~ I
      std::vector<double> sel_products(3 * n_sel * (k1 + k2));
      vsense::solvers::placement::host_gemm(3 * n_sel, k1 + k2, m, d.blocks.data(), d.right.data(), sel_products.data());
      vsense::kernels::ErrorCorrelation corr{0.05, n_sel, sel_coords.data(), sel_inverse.data(), sel_products.data()};
      vsense::kernels::ScoreRequest request{d.right.data(), k1, k2, kind, correlated ? &corr : nullptr};

      auto reference = vsense::solvers::placement::make_cpu_block_scorer(0, n, m, d.blocks.data(), d.coordinates.data(), 100);
      auto device = vsense::kernels::cuda::make_block_scorer(*cuda, 0, n, m, d.blocks.data(), d.coordinates.data(), 128);
      std::vector<double> expected(n), got(n);
      const auto best_cpu = reference->score(request, eligible.data(), expected.data());
      const auto best_gpu = device->score(request, eligible.data(), got.data());
      double scale = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        if (eligible[i]) scale = std::max(scale, std::abs(expected[i]));
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (!eligible[i]) {
          EXPECT_EQ(got[i], -std::numeric_limits<double>::infinity());
          continue;
        }
        EXPECT_NEAR(got[i], expected[i], backend_rel * scale)
            << "kind " << int(kind) << " correlated " << correlated << " candidate " << i;
      }
      EXPECT_EQ(best_gpu.index, best_cpu.index) << "kind " << int(kind);
    }
  }
}

TEST(PlacementKernelsCuda, PlacementsMatchTheCpu) {
  VSENSE_SKIP_WITHOUT_CUDA(cuda);
  namespace placement = vsense::solvers::placement;
  const vsense::CpuExecutor cpu;
  const std::size_t n = 1501, m = 23;
  Data d = random_data(n, m, 1, 11);
  placement::Problem p;
  p.n_modes = m;
  p.blocks = d.blocks;
  p.coordinates = d.coordinates;
  for (std::size_t i = 0; i < n; ++i) p.node_ids.push_back(static_cast<std::int64_t>(i + 1));
  for (std::size_t k = 0; k < m; ++k) p.frequencies_hz.push_back(3.0 + 2.0 * double(k));
  std::vector<double> g(m * m, 0.0);
  for (std::size_t k = 0; k < m; ++k) g[k * m + k] = 1.0 + double(k % 5);
  p.response_information = g;
  for (const auto method : {placement::Method::d_optimal, placement::Method::min_variance,
                            placement::Method::two_phase, placement::Method::efi, placement::Method::qr}) {
    placement::Options o;
    o.method = method;
    o.n_sensors = 12;
    o.correlation_length = method == placement::Method::min_variance ? 0.2 : 0.0;
    const auto on_cpu = placement::place(cpu, p, o);
    const auto on_gpu = placement::place(*cuda, p, o);
    ASSERT_EQ(on_gpu.criterion.size(), on_cpu.criterion.size());
    EXPECT_NEAR(on_gpu.criterion.back(), on_cpu.criterion.back(), 1e-9 * std::abs(on_cpu.criterion.back()))
        << placement::method_name(method);
    EXPECT_EQ(on_gpu.sensors, on_cpu.sensors) << placement::method_name(method)
                                              << " (random data has no near-ties)";
  }
}

TEST(PlacementKernels, TiesGoToTheLowestIndexAcrossChunks) {
  const vsense::CpuExecutor cpu;
  const std::size_t n = 300, m = 9;
  Data d = random_data(n, m, m, 3);
  // Candidates 250 and 40 get the same, largest block: equal scores in different chunks.
  for (std::size_t e = 0; e < 3 * m; ++e) {
    d.blocks[3 * m * 250 + e] = 10.0 * d.blocks[3 * m * 17 + e];
    d.blocks[3 * m * 40 + e] = d.blocks[3 * m * 250 + e];
  }
  std::vector<std::uint8_t> eligible(n, 1);
  vsense::kernels::ScoreRequest request{d.right.data(), m, 0, BlockScore::log_det_plus, nullptr};
  for (std::size_t chunk : {7u, 64u, 1000u}) {
    auto scorer = vsense::solvers::placement::make_cpu_block_scorer(0, n, m, d.blocks.data(), d.coordinates.data(), chunk);
    std::vector<double> scores(n);
    const auto best = scorer->score(request, eligible.data(), scores.data());
    EXPECT_EQ(best.index, 40) << "chunk " << chunk;
    EXPECT_EQ(scores[40], scores[250]);
    EXPECT_EQ(best.score, *std::max_element(scores.begin(), scores.end()));
    eligible[40] = 0;
    EXPECT_EQ(scorer->score(request, eligible.data(), nullptr).index, 250);
    eligible[40] = 1;
  }
  std::vector<std::uint8_t> none(n, 0);
  auto scorer = vsense::solvers::placement::make_cpu_block_scorer(0, n, m, d.blocks.data(), d.coordinates.data(), 64);
  EXPECT_EQ(scorer->score(request, none.data(), nullptr).index, -1);
}

TEST(PlacementKernels, CudaScorerWithoutCudaSaysWhy) {
  if (vsense::CudaExecutor::compiled()) GTEST_SKIP() << "this build has the CUDA backend";
  EXPECT_THROW(vsense::make_executor("cuda"), vsense::NotCompiled);
}

}  // namespace
