// Streaming 4-point rainflow counting; see rainflow.hpp for the conventions.
//
// The turning-point extraction needs only the last sample and the sign of the slope since the
// last turning point: a new sample that moves against that sign (or gives the first non-zero
// slope) confirms the previous sample as a turning point; equal samples change nothing, so a
// plateau is one point. Each confirmed turning point goes onto the channel's residue stack and
// the 4-point rule closes cycles off its top.
//
// Two paths compute exactly the same thing:
// - row-wise, for many channels: one pass over a time step updates the state of every channel
//   with branch-free arithmetic the compiler vectorises, marks the channels where a turning
//   point appeared, then visits only those (a few percent of them for narrow-band signals);
// - column-wise, for a few channels: a scalar loop over the samples of one channel.
#include "vsense/solvers/rainflow.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "vsense/kernels/errors.hpp"

namespace vsense::solvers {
namespace {

/// Cycles are handed to the sink in batches of about this many (bounded memory, few calls).
constexpr std::size_t kCycleBatch = 4096;
/// Below this many channels the column-wise scalar path is faster than the row-wise one.
constexpr std::int64_t kRowWiseMinChannels = 32;
/// Channels per block of the row-wise path: their state (25 bytes each) stays in L1.
constexpr std::int64_t kRowBlock = 512;

/// Pushes a confirmed turning point and closes every cycle it completes (4-point rule).
inline void push_turning_point(std::vector<double>& stack, double value, std::int64_t channel,
                               std::vector<RainflowCycle>& out) {
  stack.push_back(value);
  std::size_t n = stack.size();
  while (n >= 4) {
    const double a = stack[n - 4], b = stack[n - 3], c = stack[n - 2], d = stack[n - 1];
    const double inner_low = std::min(b, c), inner_high = std::max(b, c);
    if (inner_low < std::min(a, d) || inner_high > std::max(a, d)) break;
    out.push_back({inner_high - inner_low, 0.5 * (b + c), 1.0, channel});
    stack[n - 3] = d;
    n -= 2;
    stack.resize(n);
  }
}

/// One sample of one channel through the turning-point extraction (scalar form).
inline void step(double x, double& last, double& direction, std::vector<double>& stack,
                 std::int64_t channel, std::vector<RainflowCycle>& out) {
  if (x > last) {
    if (direction <= 0.0) {
      push_turning_point(stack, last, channel, out);
      direction = 1.0;
    }
  } else if (x < last) {
    if (direction >= 0.0) {
      push_turning_point(stack, last, channel, out);
      direction = -1.0;
    }
  }
  last = x;
}

/// Branch-free update of the extraction state of every channel for one time step.
/// row: [nc] samples; last, direction: [nc] state (updated); turning: [nc] the previous last
/// sample; reversed: [nc] 1 where that previous sample is a new turning point.
template <class T>
inline void update_row_body(const T* __restrict row, std::int64_t nc, double* __restrict last,
                            double* __restrict direction, double* __restrict turning,
                            std::uint8_t* __restrict reversed) {
  for (std::int64_t j = 0; j < nc; ++j) {
    const double x = row[j], p = last[j], d = direction[j];
    const double slope = x > p ? 1.0 : (x < p ? -1.0 : 0.0);
    reversed[j] = (slope != 0.0) & (slope != d);
    turning[j] = p;
    direction[j] = slope != 0.0 ? slope : d;
    last[j] = x;
  }
}

// The baseline x86-64 target (SSE2) cannot vectorise the mixed double/mask loop above; an AVX2
// clone, picked at load time where the CPU has it, can (4 channels per instruction). Both
// clones compute identical results: only compares, selects and copies, no rounding.
__attribute__((target_clones("avx2", "default"))) void update_row(
    const float* row, std::int64_t nc, double* last, double* direction, double* turning,
    std::uint8_t* reversed) {
  update_row_body(row, nc, last, direction, turning, reversed);
}
__attribute__((target_clones("avx2", "default"))) void update_row(
    const double* row, std::int64_t nc, double* last, double* direction, double* turning,
    std::uint8_t* reversed) {
  update_row_body(row, nc, last, direction, turning, reversed);
}

inline void flush_if_full(std::vector<RainflowCycle>& cycles, CycleSink& sink) {
  if (cycles.size() >= kCycleBatch) {
    sink.consume(cycles);
    cycles.clear();
  }
}

/// Emits the cycles that the end of one channel's history adds, per `treatment`.
/// `stack`, `last`, `direction`: the channel's state (copied: the counter is unchanged).
void finish_channel(std::vector<double> stack, double last, ResidueTreatment treatment,
                    std::int64_t channel, std::vector<RainflowCycle>& out, CycleSink& sink) {
  // The last sample is a turning point of the finished history.
  push_turning_point(stack, last, channel, out);
  const std::vector<double>& residue = stack;
  const std::size_t k = residue.size();
  switch (treatment) {
    case ResidueTreatment::discard:
      break;
    case ResidueTreatment::half_cycles:
      for (std::size_t i = 0; i + 1 < k; ++i) {
        const double b = residue[i], c = residue[i + 1];
        out.push_back({std::max(b, c) - std::min(b, c), 0.5 * (b + c), 0.5, channel});
        flush_if_full(out, sink);
      }
      break;
    case ResidueTreatment::closed: {
      // State "after counting the residue", then the residue once more, then its end point:
      // everything closed now is a cycle of the finished history residue + residue that the
      // residue alone left open. With the cycles already counted this gives, in all, the
      // cycles that one more repetition of the history adds (count(x x) - count(x)).
      if (k < 2) break;
      std::vector<double> replay(residue.begin(), residue.end() - 1);
      double replay_last = residue[k - 1];
      double replay_direction = residue[k - 1] > residue[k - 2] ? 1.0 : -1.0;
      for (const double x : residue) {
        step(x, replay_last, replay_direction, replay, channel, out);
        flush_if_full(out, sink);
      }
      push_turning_point(replay, replay_last, channel, out);
      break;
    }
  }
  flush_if_full(out, sink);
}

// ---- serialisation -----------------------------------------------------------------------
constexpr char kMagic[8] = {'V', 'S', 'R', 'F', 'L', 'O', 'W', '\0'};
constexpr std::uint32_t kVersion = 1;

template <class T>
void put(std::vector<std::byte>& out, const T& value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

class Reader {
public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  template <class T>
  T get(const char* what) {
    if (bytes_.size() - offset_ < sizeof(T))
      throw InputError("rainflow state: truncated at byte " + std::to_string(offset_) +
                       " while reading " + what + " (" + std::to_string(bytes_.size()) +
                       " bytes in all)");
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  std::size_t remaining() const noexcept { return bytes_.size() - offset_; }
  std::size_t offset() const noexcept { return offset_; }

private:
  std::span<const std::byte> bytes_;
  std::size_t offset_ = 0;
};

}  // namespace

RainflowCounter::RainflowCounter(std::int64_t n_channels) : n_channels_(n_channels) {
  if (n_channels < 1)
    throw InputError("rainflow counter: n_channels must be >= 1, got " +
                     std::to_string(n_channels));
  last_.assign(n_channels, 0.0);
  direction_.assign(n_channels, 0.0);
  stack_.resize(n_channels);
  for (auto& s : stack_) s.reserve(32);
}

bool RainflowCounter::operator==(const RainflowCounter& other) const {
  return n_channels_ == other.n_channels_ && n_samples_ == other.n_samples_ &&
         last_ == other.last_ && direction_ == other.direction_ && stack_ == other.stack_;
}

void RainflowCounter::flush(CycleSink& sink) {
  if (!scratch_.cycles.empty()) {
    sink.consume(scratch_.cycles);
    scratch_.cycles.clear();
  }
}

template <class T>
void RainflowCounter::process_columns(const T* samples, std::int64_t n_samples, CycleSink& sink) {
  auto& cycles = scratch_.cycles;
  for (std::int64_t j = 0; j < n_channels_; ++j) {
    double last = last_[j], direction = direction_[j];
    auto& stack = stack_[j];
    for (std::int64_t i = 0; i < n_samples; ++i) {
      const double x = samples[i * n_channels_ + j];
      if (x > last) {
        if (direction <= 0.0) {
          push_turning_point(stack, last, j, cycles);
          direction = 1.0;
          flush_if_full(cycles, sink);
        }
      } else if (x < last) {
        if (direction >= 0.0) {
          push_turning_point(stack, last, j, cycles);
          direction = -1.0;
          flush_if_full(cycles, sink);
        }
      }
      last = x;
    }
    last_[j] = last;
    direction_[j] = direction;
  }
}

template <class T>
void RainflowCounter::process_rows(const T* samples, std::int64_t n_samples, CycleSink& sink) {
  const std::int64_t nc = n_channels_;
  if (scratch_.reversed.size() != static_cast<std::size_t>(kRowBlock)) {
    scratch_.reversed.assign(kRowBlock, 0);
    scratch_.turning.assign(kRowBlock, 0.0);
  }
  std::uint8_t* __restrict reversed = scratch_.reversed.data();
  double* __restrict turning = scratch_.turning.data();
  auto& cycles = scratch_.cycles;
  // Blocks of channels over all the rows of the chunk: the block's state stays in L1 while the
  // rows stream through (one block row is kRowBlock contiguous samples).
  for (std::int64_t j0 = 0; j0 < nc; j0 += kRowBlock) {
    const std::int64_t nb = std::min(kRowBlock, nc - j0);
    const std::int64_t padded = (nb + 7) / 8 * 8;
    std::fill(reversed + nb, reversed + padded, std::uint8_t{0});
    double* __restrict last = last_.data() + j0;
    double* __restrict direction = direction_.data() + j0;
    for (std::int64_t i = 0; i < n_samples; ++i) {
      update_row(samples + i * nc + j0, nb, last, direction, turning, reversed);
      // Visit the channels with a new turning point, eight flags at a time.
      for (std::int64_t w = 0; w < padded; w += 8) {
        std::uint64_t word;
        std::memcpy(&word, reversed + w, 8);
        while (word != 0) {
          const std::int64_t k = w + std::countr_zero(word) / 8;
          word &= word - 1;
          push_turning_point(stack_[j0 + k], turning[k], j0 + k, cycles);
        }
      }
      flush_if_full(cycles, sink);
    }
  }
}

void RainflowCounter::process(const float* samples, std::int64_t n_samples, CycleSink& sink) {
  if (n_samples <= 0) return;
  std::int64_t first = 0;
  if (n_samples_ == 0) {
    for (std::int64_t j = 0; j < n_channels_; ++j) last_[j] = samples[j];
    first = 1;
  }
  if (n_channels_ >= kRowWiseMinChannels)
    process_rows(samples + first * n_channels_, n_samples - first, sink);
  else
    process_columns(samples + first * n_channels_, n_samples - first, sink);
  n_samples_ += n_samples;
  flush(sink);
}

void RainflowCounter::process(const double* samples, std::int64_t n_samples, CycleSink& sink) {
  if (n_samples <= 0) return;
  std::int64_t first = 0;
  if (n_samples_ == 0) {
    for (std::int64_t j = 0; j < n_channels_; ++j) last_[j] = samples[j];
    first = 1;
  }
  if (n_channels_ >= kRowWiseMinChannels)
    process_rows(samples + first * n_channels_, n_samples - first, sink);
  else
    process_columns(samples + first * n_channels_, n_samples - first, sink);
  n_samples_ += n_samples;
  flush(sink);
}

void RainflowCounter::process(std::span<const float> samples, CycleSink& sink) {
  if (samples.size() % static_cast<std::size_t>(n_channels_) != 0)
    throw InputError("rainflow counter: " + std::to_string(samples.size()) +
                     " samples is not a whole number of time steps of " +
                     std::to_string(n_channels_) + " channels");
  process(samples.data(), static_cast<std::int64_t>(samples.size()) / n_channels_, sink);
}

void RainflowCounter::process(std::span<const double> samples, CycleSink& sink) {
  if (samples.size() % static_cast<std::size_t>(n_channels_) != 0)
    throw InputError("rainflow counter: " + std::to_string(samples.size()) +
                     " samples is not a whole number of time steps of " +
                     std::to_string(n_channels_) + " channels");
  process(samples.data(), static_cast<std::int64_t>(samples.size()) / n_channels_, sink);
}

RainflowCounter::ChannelState RainflowCounter::channel_state(std::int64_t channel) const {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("rainflow counter: channel " + std::to_string(channel) + " out of range");
  return {last_[channel], direction_[channel]};
}

void RainflowCounter::push_turning_points(std::int64_t channel, std::span<const double> turning,
                                          CycleSink& sink) {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("rainflow counter: channel " + std::to_string(channel) + " out of range");
  auto& cycles = scratch_.cycles;
  for (const double x : turning) {
    push_turning_point(stack_[channel], x, channel, cycles);
    flush_if_full(cycles, sink);
  }
  flush(sink);
}

void RainflowCounter::set_channel_state(std::int64_t channel, double last, double direction) {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("rainflow counter: channel " + std::to_string(channel) + " out of range");
  last_[channel] = last;
  direction_[channel] = direction;
}

void RainflowCounter::merge(const RainflowCounter& next, CycleSink& sink) {
  if (next.n_channels_ != n_channels_)
    throw InputError("rainflow merge: this counter has " + std::to_string(n_channels_) +
                     " channels but the next one has " + std::to_string(next.n_channels_));
  if (next.n_samples_ == 0) return;
  if (n_samples_ == 0) {
    n_samples_ = next.n_samples_;
    last_ = next.last_;
    direction_ = next.direction_;
    stack_ = next.stack_;
    return;
  }
  // The next piece's residue followed by its last sample has the same turning points, and
  // leaves the same cycles to be closed, as the piece itself (its closed cycles are already
  // counted): replaying it here closes exactly the cycles that span the joint.
  auto& cycles = scratch_.cycles;
  for (std::int64_t j = 0; j < n_channels_; ++j) {
    for (const double x : next.stack_[j]) {
      step(x, last_[j], direction_[j], stack_[j], j, cycles);
      flush_if_full(cycles, sink);
    }
    step(next.last_[j], last_[j], direction_[j], stack_[j], j, cycles);
    flush_if_full(cycles, sink);
  }
  n_samples_ += next.n_samples_;
  flush(sink);
}

void RainflowCounter::finish(ResidueTreatment treatment, CycleSink& sink) const {
  if (n_samples_ == 0) return;
  std::vector<RainflowCycle> cycles;
  cycles.reserve(kCycleBatch + 64);
  for (std::int64_t j = 0; j < n_channels_; ++j)
    finish_channel(stack_[j], last_[j], treatment, j, cycles, sink);
  if (!cycles.empty()) sink.consume(cycles);
}

std::vector<double> RainflowCounter::residue(std::int64_t channel) const {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("rainflow residue: channel " + std::to_string(channel) +
                     " out of range [0, " + std::to_string(n_channels_) + ")");
  if (n_samples_ == 0) return {};
  std::vector<double> r = stack_[channel];
  r.push_back(last_[channel]);
  return r;
}

std::vector<std::byte> RainflowCounter::serialize() const {
  std::vector<std::byte> out;
  std::size_t size = sizeof(kMagic) + 2 * sizeof(std::uint32_t) + 2 * sizeof(std::int64_t);
  for (const auto& s : stack_) size += 2 * sizeof(double) + sizeof(std::int64_t) + s.size() * 8;
  out.reserve(size);
  for (const char c : kMagic) put(out, c);
  put(out, kVersion);
  put(out, std::uint32_t{0});
  put(out, n_channels_);
  put(out, n_samples_);
  for (std::int64_t j = 0; j < n_channels_; ++j) {
    put(out, last_[j]);
    put(out, direction_[j]);
    put(out, static_cast<std::int64_t>(stack_[j].size()));
    for (const double v : stack_[j]) put(out, v);
  }
  return out;
}

RainflowCounter RainflowCounter::deserialize(std::span<const std::byte> bytes) {
  Reader in(bytes);
  char magic[sizeof(kMagic)];
  for (char& c : magic) c = in.get<char>("the magic number");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    throw InputError("rainflow state: not a vsense rainflow state (bad magic number)");
  const auto version = in.get<std::uint32_t>("the version");
  if (version != kVersion)
    throw InputError("rainflow state: version " + std::to_string(version) +
                     " is not supported (this build reads version " +
                     std::to_string(kVersion) + ")");
  (void)in.get<std::uint32_t>("a reserved field");
  const auto n_channels = in.get<std::int64_t>("n_channels");
  const auto n_samples = in.get<std::int64_t>("n_samples");
  // Each channel takes at least 24 bytes: reject absurd counts before allocating.
  if (n_channels < 1 || static_cast<std::uint64_t>(n_channels) > in.remaining() / 24)
    throw InputError("rainflow state: n_channels = " + std::to_string(n_channels) +
                     " does not fit the " + std::to_string(bytes.size()) + " bytes given");
  if (n_samples < 0)
    throw InputError("rainflow state: n_samples = " + std::to_string(n_samples) + " < 0");
  RainflowCounter counter(n_channels);
  counter.n_samples_ = n_samples;
  for (std::int64_t j = 0; j < n_channels; ++j) {
    counter.last_[j] = in.get<double>("a last sample");
    counter.direction_[j] = in.get<double>("a slope direction");
    const auto n_stack = in.get<std::int64_t>("a residue length");
    const double d = counter.direction_[j];
    if (d != -1.0 && d != 0.0 && d != 1.0)
      throw InputError("rainflow state: channel " + std::to_string(j) +
                       " has slope direction " + std::to_string(d) + " (must be -1, 0 or 1)");
    if (n_stack < 0 || static_cast<std::uint64_t>(n_stack) > in.remaining() / 8)
      throw InputError("rainflow state: channel " + std::to_string(j) + " residue length " +
                       std::to_string(n_stack) + " does not fit the bytes given");
    if ((n_stack == 0) != (d == 0.0) || (n_samples == 0 && n_stack != 0))
      throw InputError("rainflow state: channel " + std::to_string(j) +
                       " has an inconsistent residue length and slope direction");
    auto& stack = counter.stack_[j];
    stack.resize(n_stack);
    for (auto& v : stack) v = in.get<double>("a residue point");
  }
  if (in.remaining() != 0)
    throw InputError("rainflow state: " + std::to_string(in.remaining()) +
                     " unexpected bytes after the state (at byte " +
                     std::to_string(in.offset()) + ")");
  return counter;
}

// ---- histogram -----------------------------------------------------------------------------
RainflowHistogram::RainflowHistogram(std::int64_t n_channels, std::int64_t n_range_bins,
                                     double range_bin_width, std::int64_t n_mean_bins,
                                     double mean_lower, double mean_bin_width)
    : n_channels_(n_channels),
      n_range_bins_(n_range_bins),
      n_mean_bins_(n_mean_bins),
      range_bin_width_(range_bin_width),
      mean_lower_(mean_lower),
      mean_bin_width_(mean_bin_width) {
  if (n_channels < 1 || n_range_bins < 1 || n_mean_bins < 1)
    throw InputError("rainflow histogram: channels, range bins and mean bins must be >= 1, got " +
                     std::to_string(n_channels) + ", " + std::to_string(n_range_bins) + ", " +
                     std::to_string(n_mean_bins));
  if (!(range_bin_width > 0.0) || (n_mean_bins > 1 && !(mean_bin_width > 0.0)))
    throw InputError("rainflow histogram: bin widths must be > 0 (range " +
                     std::to_string(range_bin_width) + ", mean " +
                     std::to_string(mean_bin_width) + ")");
  counts_.assign(n_channels * n_range_bins * n_mean_bins, 0.0);
}

void RainflowHistogram::consume(std::span<const RainflowCycle> cycles) {
  for (const auto& c : cycles) {
    if (c.channel < 0 || c.channel >= n_channels_)
      throw InputError("rainflow histogram: cycle of channel " + std::to_string(c.channel) +
                       " but the histogram has " + std::to_string(n_channels_) + " channels");
    bool clamped = false;
    double r = std::floor(c.range / range_bin_width_);
    if (r >= static_cast<double>(n_range_bins_)) {
      r = static_cast<double>(n_range_bins_ - 1);
      clamped = true;
    }
    double m = 0.0;
    if (n_mean_bins_ > 1) {
      m = std::floor((c.mean - mean_lower_) / mean_bin_width_);
      if (m < 0.0) {
        m = 0.0;
        clamped = true;
      } else if (m >= static_cast<double>(n_mean_bins_)) {
        m = static_cast<double>(n_mean_bins_ - 1);
        clamped = true;
      }
    }
    counts_[(c.channel * n_range_bins_ + static_cast<std::int64_t>(r)) * n_mean_bins_ +
            static_cast<std::int64_t>(m)] += c.count;
    if (clamped) n_clamped_ += c.count;
  }
}

double RainflowHistogram::count(std::int64_t channel, std::int64_t range_bin,
                                std::int64_t mean_bin) const {
  if (channel < 0 || channel >= n_channels_ || range_bin < 0 || range_bin >= n_range_bins_ ||
      mean_bin < 0 || mean_bin >= n_mean_bins_)
    throw InputError("rainflow histogram: bin (" + std::to_string(channel) + ", " +
                     std::to_string(range_bin) + ", " + std::to_string(mean_bin) +
                     ") out of range");
  return counts_[(channel * n_range_bins_ + range_bin) * n_mean_bins_ + mean_bin];
}

}  // namespace vsense::solvers
