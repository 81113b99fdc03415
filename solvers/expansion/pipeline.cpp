// One block of the reconstruction: archive rows -> expansion -> integration -> stresses and
// fatigue (see reconstruction.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../common/single_threaded_blas.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/reconstruction.hpp"

namespace vsense::solvers::reconstruction {

std::vector<Block> make_blocks(const std::vector<std::int64_t>& segment_samples,
                               std::int64_t block_samples) {
  if (block_samples <= 0) throw InputError("reconstruction: block length must be positive");
  std::vector<Block> blocks;
  std::int64_t global = 0;
  for (std::size_t s = 0; s < segment_samples.size(); ++s) {
    for (std::int64_t first = 0; first < segment_samples[s]; first += block_samples) {
      Block b;
      b.segment = s;
      b.first = first;
      b.n = std::min(block_samples, segment_samples[s] - first);
      b.global_first = global + first;
      blocks.push_back(b);
    }
    global += segment_samples[s];
  }
  return blocks;
}

void BlockReport::add(const BlockReport& other) {
  dropout_values += other.dropout_values;
  if (channel_dropouts.size() < other.channel_dropouts.size()) {
    channel_dropouts.resize(other.channel_dropouts.size(), 0);
  }
  for (std::size_t c = 0; c < other.channel_dropouts.size(); ++c) {
    channel_dropouts[c] += other.channel_dropouts[c];
  }
  if (first_unobservable < 0) first_unobservable = other.first_unobservable;
  noise_sq.add(other.noise_sq);
  noise_dof += other.noise_dof;
  live_set_changes += other.live_set_changes;
  unobservable_samples += other.unobservable_samples;
  excluded_samples += other.excluded_samples;
  for (const auto& c : other.changes) {
    if (changes.size() < 8) changes.push_back(c);
  }
}

Pipeline::Pipeline(PipelineSetup setup, double sample_rate_hz)
    : setup_(std::move(setup)), sample_rate_hz_(sample_rate_hz) {
  const std::size_t n_channels = setup_.channel_columns.size();
  if (setup_.channel_names.size() != n_channels) {
    throw InputError("reconstruction: channel names and columns differ in number");
  }
  expansion_ = std::make_unique<ModalExpansion>(setup_.channel_matrix, n_channels,
                                                setup_.n_modes, setup_.expansion);
  const ExpansionOperator& full = expansion_->full();
  if (!full.observable) {
    throw InputError(fmt::format(
        "the {} channels cannot identify the {} modes (condition number of the channel "
        "matrix {:.3g}{}): use fewer modes (--modes), more or better placed sensors, or "
        "--regularisation",
        n_channels, setup_.n_modes, full.condition,
        n_channels < setup_.n_modes ? ", fewer channels than modes" : ""));
  }
  integrator_ = std::make_unique<BandIntegrator>(sample_rate_hz_, setup_.band_low_hz,
                                                 setup_.band_high_hz, setup_.n_modes,
                                                 setup_.fft_size);
  settle_ = setup_.settle_samples >= 0 ? setup_.settle_samples
                                       : static_cast<std::int64_t>(integrator_->half_length());
  // Noise factors of the output nodes (see noise_factors()), before the stresses move.
  {
    const std::size_t m = setup_.n_modes, p = setup_.n_nodes;
    double h2 = 0.0;
    for (const double h : integrator_->taps()) h2 += h * h;
    const std::vector<double>& c = full.covariance;  // [m, m]
    noise_factors_.assign(p, 0.0);
    static constexpr double v[6][6] = {{1, -0.5, -0.5, 0, 0, 0}, {-0.5, 1, -0.5, 0, 0, 0},
                                       {-0.5, -0.5, 1, 0, 0, 0}, {0, 0, 0, 3, 0, 0},
                                       {0, 0, 0, 0, 3, 0},       {0, 0, 0, 0, 0, 3}};
#pragma omp parallel for schedule(static) if (p * m * m > (1u << 20))
    for (std::ptrdiff_t jj = 0; jj < static_cast<std::ptrdiff_t>(p); ++jj) {
      const auto j = static_cast<std::size_t>(jj);
      const double* psi = setup_.modal_stress.data() + j * 6 * m;  // [6, m]
      std::vector<double> t(6 * m, 0.0);                            // Psi_j C
      for (std::size_t a = 0; a < 6; ++a) {
        for (std::size_t k = 0; k < m; ++k) {
          const double pa = psi[a * m + k];
          if (pa == 0.0) continue;
          for (std::size_t l = 0; l < m; ++l) t[a * m + l] += pa * c[k * m + l];
        }
      }
      double trace = 0.0;
      for (std::size_t a = 0; a < 6; ++a) {
        for (std::size_t b = 0; b < 6; ++b) {
          if (v[a][b] == 0.0) continue;
          double mab = 0.0;
          for (std::size_t l = 0; l < m; ++l) mab += t[a * m + l] * psi[b * m + l];
          trace += v[a][b] * mab;
        }
      }
      noise_factors_[j] = h2 * std::max(trace, 0.0);
    }
  }
  stress_ = std::make_unique<StressFatigue>(setup_.modal_stress, setup_.modal_shapes,
                                            setup_.n_nodes, setup_.n_modes, setup_.equivalent,
                                            setup_.executor);
  // The pipeline keeps its own copies; the setup's big arrays are no longer needed.
  setup_.modal_stress.clear();
  setup_.modal_stress.shrink_to_fit();
  setup_.modal_shapes.clear();
  setup_.modal_shapes.shrink_to_fit();
}

BlockReport Pipeline::process(io::Archive& archive, const Block& block, FatigueState& state,
                              HistorySink* history, double* modal_displacement) {
  // Every product of the block on a single-threaded BLAS (parallelism comes from OpenMP over
  // node tiles): OpenBLAS's threaded kernels give other last bits for other thread counts, and
  // the result must not depend on how many threads or MPI ranks share the machine.
  SingleThreadedBlas single;
  BlockReport report;
  const std::size_t nc = setup_.channel_columns.size(), m = setup_.n_modes;
  const std::size_t archive_channels = archive.n_channels();
  const std::int64_t n_segment = archive.n_samples(block.segment);
  const auto half = static_cast<std::int64_t>(integrator_->half_length());
  const std::int64_t reach = std::max(half, settle_);
  const std::int64_t read_first = std::max<std::int64_t>(0, block.first - reach);
  const std::int64_t read_end = std::min(n_segment, block.first + block.n + reach);
  const auto rows = static_cast<std::size_t>(read_end - read_first);

  raw_.resize(rows * archive_channels);
  archive.read_chunk(block.segment, read_first, read_end - read_first, raw_.data());
  y_.resize(rows * nc);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < nc; ++c) {
      y_[r * nc + c] = raw_[r * archive_channels + setup_.channel_columns[c]];
    }
  }
  q_acc_.resize(rows * m);
  observable_.resize(rows);
  live_.resize(rows);
  residual_sq_.resize(rows);
  residual_dof_.resize(rows);
  expansion_->expand(y_.data(), rows, q_acc_.data(), observable_.data(), live_.data(),
                     residual_sq_.data(), residual_dof_.data());

  // Dropouts and changes of the live set over the samples this block owns.
  report.channel_dropouts.assign(nc, 0);
  std::vector<std::uint8_t> mask(nc), previous(nc, 1);
  const auto own_first = static_cast<std::size_t>(block.first - read_first);
  if (block.first > 0) {
    for (std::size_t c = 0; c < nc; ++c) previous[c] = std::isfinite(y_[(own_first - 1) * nc + c]);
  }
  for (std::int64_t i = 0; i < block.n; ++i) {
    const std::size_t r = own_first + static_cast<std::size_t>(i);
    for (std::size_t c = 0; c < nc; ++c) {
      mask[c] = std::isfinite(y_[r * nc + c]) ? 1 : 0;
      if (!mask[c]) ++report.channel_dropouts[c];
    }
    report.dropout_values += static_cast<std::int64_t>(nc - live_[r]);
    report.noise_sq.add(residual_sq_[r]);
    report.noise_dof += residual_dof_[r];
    if (!observable_[r]) {
      ++report.unobservable_samples;
      if (report.first_unobservable < 0) report.first_unobservable = block.first + i;
    }
    if (mask != previous) {
      ++report.live_set_changes;
      if (report.changes.size() < 8) {
        const ExpansionOperator& op = expansion_->get(mask.data());
        report.changes.push_back({block.first + i, live_[r], op.condition, op.observable});
      }
      previous = mask;
    }
  }

  // Integration input: samples block.first - L .. block.first + n + L - 1, zero outside.
  const auto n_in = static_cast<std::size_t>(block.n + 2 * half);
  std::vector<double>& in = raw_;  // reused as the integrator's input
  in.assign(n_in * m, 0.0);
  for (std::size_t k = 0; k < n_in; ++k) {
    const std::int64_t t = block.first - half + static_cast<std::int64_t>(k);
    if (t < read_first || t >= read_end) continue;
    const auto r = static_cast<std::size_t>(t - read_first);
    std::copy_n(q_acc_.data() + r * m, m, in.data() + k * m);
  }
  q_.resize(static_cast<std::size_t>(block.n) * m);
  integrator_->apply(in.data(), static_cast<std::size_t>(block.n), q_.data());

  // Samples in the statistics: at least `settle` from the segment's ends and from every
  // unobservable sample.
  std::vector<std::int64_t> unobservable_before(rows + 1, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    unobservable_before[r + 1] = unobservable_before[r] + (observable_[r] ? 0 : 1);
  }
  counted_.assign(static_cast<std::size_t>(block.n), 0);
  for (std::int64_t i = 0; i < block.n; ++i) {
    const std::int64_t t = block.first + i;
    bool in_statistics = t >= settle_ && t < n_segment - settle_;
    if (in_statistics) {
      const auto lo = static_cast<std::size_t>(std::max(read_first, t - settle_) - read_first);
      const auto hi = static_cast<std::size_t>(std::min(read_end, t + settle_ + 1) - read_first);
      in_statistics = unobservable_before[hi] == unobservable_before[lo];
    }
    counted_[static_cast<std::size_t>(i)] = in_statistics ? 1 : 0;
    if (!in_statistics) ++report.excluded_samples;
  }

  stress_->process(q_.data(), static_cast<std::size_t>(block.n), block.global_first,
                   counted_.data(), state, history);
  if (modal_displacement) std::copy(q_.begin(), q_.end(), modal_displacement);
  return report;
}

}  // namespace vsense::solvers::reconstruction
