#pragma once
/// @file rainflow.hpp
/// @brief Streaming 4-point rainflow counting of many channels at once, with exact merging of
/// counters that saw consecutive pieces of a history, checkpointable state, and the residue
/// treatments of ASTM E1049 (half cycles) and of repeated load blocks (closed residue).
///
/// Conventions (used by every function here and by the tests):
/// - A history is the sequence of samples of one channel. Its turning points are its first
///   sample, every sample where the slope changes sign (runs of equal values count once: a
///   plateau is one point), and its last sample. Input must be NaN-free.
/// - A cycle (B, C) closes when four consecutive turning points A, B, C, D of the residue
///   satisfy min(A, D) <= min(B, C) and max(B, C) <= max(A, D) (DIN 45667, ISO 12110-2; the
///   inclusive comparisons give the same counts as the ASTM E1049 three-point procedure).
///   range = |B - C|, mean = (B + C) / 2, count 1.
/// - The residue is what is left: a short sequence of turning points, first diverging then
///   converging. It is carried from chunk to chunk; at the end it is either counted as half
///   cycles (ASTM E1049 5.4.4), closed by repeating it once (the result of counting the history
///   followed by itself, minus the cycles of the history alone: full cycles only), or dropped.
/// - The set of closed cycles depends only on the history, not on the order in which its
///   pieces were counted: for consecutive pieces x1, x2,
///   cycles(x1 x2) = cycles(x1) + cycles(x2) + cycles(residue(x1) residue(x2)), and the final
///   residue is the same. `merge` relies on this, so chunked, merged and whole-history counts
///   are identical multisets of (range, mean, count) (only the order of emission differs).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vsense::solvers {

/// One counted cycle or half cycle of one channel.
struct RainflowCycle {
  double range = 0.0;         ///< |B - C|, >= 0, sample units
  double mean = 0.0;          ///< (B + C) / 2, sample units
  double count = 0.0;         ///< 1 for a closed cycle, 0.5 for a residue half cycle
  std::int64_t channel = 0;   ///< index of the channel (column of the sample chunks)
};

/// Receives cycles as they are counted, in batches (so that damage can be summed without
/// storing cycles). The span is valid only during the call.
class CycleSink {
public:
  virtual ~CycleSink() = default;
  virtual void consume(std::span<const RainflowCycle> cycles) = 0;
};

/// A sink that keeps every cycle (tests, small histories, exports).
class CycleCollector final : public CycleSink {
public:
  void consume(std::span<const RainflowCycle> cycles) override {
    cycles_.insert(cycles_.end(), cycles.begin(), cycles.end());
  }
  const std::vector<RainflowCycle>& cycles() const noexcept { return cycles_; }
  void clear() noexcept { cycles_.clear(); }

private:
  std::vector<RainflowCycle> cycles_;
};

/// Forwards every batch to two sinks (e.g. a damage accumulator and a histogram).
class CycleTee final : public CycleSink {
public:
  CycleTee(CycleSink& first, CycleSink& second) : first_(first), second_(second) {}
  void consume(std::span<const RainflowCycle> cycles) override {
    first_.consume(cycles);
    second_.consume(cycles);
  }

private:
  CycleSink& first_;
  CycleSink& second_;
};

/// What to do with the residue at the end of a history.
enum class ResidueTreatment {
  half_cycles,  ///< ASTM E1049: each range between consecutive residue points is 0.5 cycle
  closed,       ///< count residue + residue as a finished history: full cycles only. With the
                ///< cycles already counted, the total is what one more repetition of the
                ///< history adds, count(x x) - count(x) (ISO 12110-2, DIN 45667 "repeated")
  discard,      ///< closed cycles only (e.g. to inspect what the history itself closed)
};

/// @brief Rainflow counter for `n_channels` independent histories sampled together.
///
/// Feed chunks of any number of samples with `process` (shape [n_samples, n_channels],
/// row-major: the samples of one time step are contiguous). Closed cycles are sent to the sink
/// as soon as they appear; the state kept per channel is the residue stack and the last sample
/// with its slope direction. No allocation per sample: the residue stacks grow only when a
/// residue gets longer than ever before (its length is bounded by the number of distinct
/// values, in practice tens of points).
///
/// State is checkpointed with `serialize`/`deserialize`; two counters that saw consecutive
/// pieces of the same channels are combined exactly with `merge` (time-split files, MPI
/// ranks); `finish` emits the residue without changing the state, so counting can go on.
class RainflowCounter {
public:
  /// @throws InputError when n_channels < 1.
  explicit RainflowCounter(std::int64_t n_channels = 1);

  std::int64_t n_channels() const noexcept { return n_channels_; }
  /// Samples per channel seen so far (including those of merged counters).
  std::int64_t n_samples() const noexcept { return n_samples_; }

  /// @brief Counts the next `n_samples` time steps of every channel.
  /// @param[in] samples [n_samples, n_channels] row-major, NaN-free, sample units
  /// @param[out] sink receives the cycles closed by these samples (count 1 each)
  void process(const float* samples, std::int64_t n_samples, CycleSink& sink);
  void process(const double* samples, std::int64_t n_samples, CycleSink& sink);
  /// Span form: samples.size() must be a multiple of n_channels (InputError otherwise).
  void process(std::span<const float> samples, CycleSink& sink);
  void process(std::span<const double> samples, CycleSink& sink);

  /// @brief Appends the history seen by `next` (which must follow this one's in time and have
  /// the same channels): afterwards this counter is exactly the counter of the whole history,
  /// and `sink` has received the cycles that close only across the joint. Cost: O(residue).
  /// @throws InputError when the channel counts differ.
  void merge(const RainflowCounter& next, CycleSink& sink);

  /// @brief Emits, for every channel, the cycles closed by the last sample (an end point is a
  /// turning point) and the residue treated as asked. The counter is not changed.
  void finish(ResidueTreatment treatment, CycleSink& sink) const;

  /// Turning points of the residue of `channel` if the history ended now: the residue stack
  /// followed by the last sample (sample units). Empty before the first sample.
  std::vector<double> residue(std::int64_t channel) const;

  /// Extraction state of one channel: its last sample and the sign of the slope since its last
  /// turning point (-1, 0 before the first non-zero slope, +1).
  struct ChannelState {
    double last = 0.0;
    double direction = 0.0;
  };
  ChannelState channel_state(std::int64_t channel) const;
  /// @brief Continues a channel with turning points extracted elsewhere (the CUDA stress
  /// recovery): `turning` are, in order, the samples that the extraction rule of
  /// kernels/common/turning_points.hpp, started from channel_state(channel) (and from nothing
  /// when n_samples() == 0), confirmed as turning points. With set_channel_state(the extractor's
  /// final state) and add_samples(samples taken) the counter is then exactly what process()
  /// on the samples themselves makes of it, cycles included.
  void push_turning_points(std::int64_t channel, std::span<const double> turning,
                           CycleSink& sink);
  void set_channel_state(std::int64_t channel, double last, double direction);
  /// Counts `n` more samples per channel as taken (see push_turning_points).
  void add_samples(std::int64_t n) noexcept { n_samples_ += n; }

  /// @brief The complete state as bytes (native byte order, versioned), for checkpoints and for
  /// sending to another MPI rank.
  std::vector<std::byte> serialize() const;
  /// @throws InputError when `bytes` is not a complete state written by `serialize`.
  static RainflowCounter deserialize(std::span<const std::byte> bytes);

  /// Same channels, sample count, residues and last samples (the scratch buffers are ignored).
  bool operator==(const RainflowCounter& other) const;

private:
  template <class T>
  void process_rows(const T* samples, std::int64_t n_samples, CycleSink& sink);
  template <class T>
  void process_columns(const T* samples, std::int64_t n_samples, CycleSink& sink);
  void flush(CycleSink& sink);

  std::int64_t n_channels_ = 1;
  std::int64_t n_samples_ = 0;
  std::vector<double> last_;               ///< [n_channels] last sample, sample units
  std::vector<double> direction_;          ///< [n_channels] slope sign after the last turning point: -1, 0 (none yet), +1
  std::vector<std::vector<double>> stack_; ///< [n_channels][*] confirmed turning points of the residue
  // Scratch for the row-wise path and the cycle batches; not part of the state.
  struct Scratch {
    std::vector<std::uint8_t> reversed;  ///< [n_channels padded to 8] 1 where a turning point appeared
    std::vector<double> turning;         ///< [n_channels] value of that turning point
    std::vector<RainflowCycle> cycles;   ///< batch for the sink
  };
  Scratch scratch_;
};

/// @brief Counts of cycles in [range bins] x [mean bins] per channel (cycles may be half).
/// Range bin i covers [i w, (i + 1) w); mean bin k covers [lower + k w_m, lower + (k + 1) w_m).
/// Values beyond the first or last bin are put in it and counted in `n_clamped`.
class RainflowHistogram final : public CycleSink {
public:
  /// @throws InputError for non-positive bin counts or widths.
  RainflowHistogram(std::int64_t n_channels, std::int64_t n_range_bins, double range_bin_width,
                    std::int64_t n_mean_bins = 1, double mean_lower = 0.0,
                    double mean_bin_width = 0.0);
  void consume(std::span<const RainflowCycle> cycles) override;

  /// Cycles counted in one bin.
  double count(std::int64_t channel, std::int64_t range_bin, std::int64_t mean_bin = 0) const;
  /// [n_channels, n_range_bins, n_mean_bins] row-major
  const std::vector<double>& counts() const noexcept { return counts_; }
  std::int64_t n_range_bins() const noexcept { return n_range_bins_; }
  std::int64_t n_mean_bins() const noexcept { return n_mean_bins_; }
  double range_bin_width() const noexcept { return range_bin_width_; }
  /// Cycles (weighted by count) that fell outside the binned ranges or means.
  double n_clamped() const noexcept { return n_clamped_; }

private:
  std::int64_t n_channels_, n_range_bins_, n_mean_bins_;
  double range_bin_width_, mean_lower_, mean_bin_width_;
  std::vector<double> counts_;
  double n_clamped_ = 0.0;
};

}  // namespace vsense::solvers
