#pragma once
/// @file reconstruction.hpp
/// @brief The numerics of `vsense reconstruct`: measured accelerations to modal accelerations
/// (modal expansion), to modal displacements (band-limited frequency-domain integration), to
/// stresses at the output nodes and their fatigue (rainflow + Miner), block by block.
///
/// Signal chain, per continuous segment of the archive (samples t = 0 .. n - 1):
///   y(t)  [n_channels]  accelerations in model units, NaN where a channel dropped out
///   q''(t) = E_live y_live(t)                  (ModalExpansion; E re-derived per live set)
///   q(t)   = sum_k h_k q''(t - k), |k| <= L    (BandIntegrator: one FIR, applied by FFT)
///   sigma_j(t) = Psi_j q(t)                    (StressFatigue: Psi_j the 6 x m modal stresses)
///   s_j(t) = equivalent stress of sigma_j(t)  -> rainflow (4-point) -> Miner damage
/// Because q is a fixed linear filter of q'' and every other step is per sample, the result
/// at a sample does not depend on where blocks, files or MPI ranks begin: there are no seams.
/// The block grid (BlockGrid) is fixed by the request alone, so any number of ranks computes
/// the same bits.
#include <complex>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vsense/io/archive.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/solvers/exact_sum.hpp"
#include "vsense/solvers/rainflow.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace vsense::solvers::reconstruction {

// ---- modal expansion --------------------------------------------------------------------

struct ExpansionOptions {
  /// Tikhonov weight alpha: alpha^2 ||A||_F^2 / m is added to A_live^T A_live (0: least squares).
  double regularisation = 0.0;
  /// Without regularisation, a live channel set whose A_live has a 2-norm condition number above
  /// this cannot identify the modes (its samples are unobservable).
  double condition_limit = 1e8;
};

/// @brief The estimator of the modal accelerations for one set of live channels.
struct ExpansionOperator {
  std::vector<std::uint32_t> live;  ///< indices of the live channels, ascending
  std::vector<double> matrix;       ///< [n_live, m] row-major: q''^T = y_live^T matrix
  double condition = 0.0;           ///< 2-norm condition number of A_live (inf if rank < m)
  bool observable = false;          ///< the live channels identify the modes
  /// [m, m] covariance of q''^ per unit channel-noise variance (white, equal on every channel):
  /// V diag(w^2) V^T with w = s / (s^2 + gamma).
  std::vector<double> covariance;
};

/// @brief Weighted least-squares / Tikhonov modal expansion with re-derivation for the channels
/// left when some drop out (NaN samples).
///
/// A [n_channels, m] holds row c = d_c^T Phi(node_c): channel c's acceleration per unit modal
/// acceleration. For the live set l: q''^ = (A_l^T A_l + gamma I)^-1 A_l^T y_l, computed through
/// the SVD A_l = U S V^T as V diag(s / (s^2 + gamma)) U^T (gamma = alpha^2 ||A||_F^2 / m).
/// Operators are cached per live set (the 64 most recent), so a dropout costs one SVD.
class ModalExpansion {
public:
  /// @param[in] channel_matrix [n_channels, n_modes] row-major, model units
  /// @throws InputError for inconsistent sizes or a non-finite entry.
  ModalExpansion(std::vector<double> channel_matrix, std::size_t n_channels,
                 std::size_t n_modes, ExpansionOptions options = {});
  std::size_t n_channels() const noexcept { return n_channels_; }
  std::size_t n_modes() const noexcept { return n_modes_; }
  /// The operator for `mask` ([n_channels], 1 = live).
  const ExpansionOperator& get(const std::uint8_t* mask);
  /// The operator of all channels.
  const ExpansionOperator& full() { return get(all_live_.data()); }

  /// @brief Expands rows of accelerations.
  /// @param[in] y [n, n_channels] row-major, model units; NaN (or inf) = dropout
  /// @param[out] q_acc [n, n_modes] row-major modal accelerations; 0 in unobservable rows
  /// @param[out] observable [n] 1 where the row's live channels identify the modes
  /// @param[out] live_count [n] live channels per row (may be null)
  /// @param[out] residual_sq [n] ||y_l - A_l q''^||^2 per row, and residual_dof [n] its degrees
  ///             of freedom n_live - m (0 where n_live <= m or unobservable); may be null. Their
  ///             ratio estimates the channels' noise variance (model error counts as noise).
  void expand(const double* y, std::size_t n, double* q_acc, std::uint8_t* observable,
              std::uint32_t* live_count = nullptr, double* residual_sq = nullptr,
              std::uint32_t* residual_dof = nullptr);

private:
  ExpansionOperator derive(const std::uint8_t* mask) const;
  std::vector<double> a_;  ///< [n_channels, n_modes]
  std::size_t n_channels_, n_modes_;
  ExpansionOptions options_;
  double gamma_ = 0.0;
  std::vector<std::uint8_t> all_live_;
  std::map<std::vector<std::uint8_t>, ExpansionOperator> cache_;
  std::vector<std::vector<std::uint8_t>> cache_order_;  ///< oldest first
  std::vector<double> gathered_, fitted_;               ///< scratch [run, n_live]
  std::vector<double> a_live_;                          ///< [m, n_live] A_l^T of a_live_key_
  std::vector<std::uint32_t> a_live_key_;
};

// ---- integration ------------------------------------------------------------------------

/// @brief Accelerations to displacements by a zero-phase FIR that integrates twice within a band.
///
/// Design (exact compact support, no windowing of a 1/omega^2 response, hence no leakage of the
/// huge low-frequency gain into the band): with g a Kaiser kernel of unit sum and half-length
/// L1, g2 = 2g - g*g (unit sum, even, half-length 2 L1) and
///   p_k = dt^2 / 2 (|k| - sum_j g2_j |k - j|),
/// p is exactly zero for |k| > 2 L1 and its response is -(1 - G(theta))^2 / omega_d^2, with
/// omega_d = 2/dt sin(theta/2) (the discrete double sum) and G the low-pass response of g:
/// zero at DC with a zero slope (offsets and drifts do not pass), -1/omega_d^2 above the low
/// corner to within 2|G| <= eps. A second short filter q (length 2 L2 + 1) multiplies by
/// (omega_d / omega)^2 = sinc^2(theta / 2 pi) and tapers above the high corner (erf taper to
/// the stop frequency), so h = p * q responds as -1/omega^2 within [low, high] to a relative
/// error of about eps (design: eps = 1e-5, measured in the tests) and rolls off outside: below
/// the low corner the gain stays under 3.3 times its value at the corner (the most, near 0.4 x
/// low, is half of the ideal 1/omega^2 there) and vanishes as f^2 at DC, so offsets, drifts and
/// slow content are not amplified; above the high corner it tapers to zero at the stop
/// frequency min(Nyquist, high + 0.25 Nyquist).
/// Half-length L = 2 L1 + L2 with L1 ~ 2.5 fs / low: the settle time at segment ends.
class BandIntegrator {
public:
  /// @param[in] fft_size FFT length per block (a power of two > 4 L); 0 = automatic
  /// @param[in] n_modes columns of every block (FFTW plans are made for it)
  /// @throws InputError for a band outside (0, 0.9 Nyquist] or low >= high.
  BandIntegrator(double sample_rate_hz, double low_hz, double high_hz, std::size_t n_modes,
                 std::size_t fft_size = 0);
  ~BandIntegrator();
  BandIntegrator(const BandIntegrator&) = delete;
  BandIntegrator& operator=(const BandIntegrator&) = delete;

  double sample_rate_hz() const noexcept { return sample_rate_hz_; }
  double low_hz() const noexcept { return low_hz_; }
  double high_hz() const noexcept { return high_hz_; }
  /// L: the filter spans samples t - L .. t + L.
  std::size_t half_length() const noexcept { return (taps_.size() - 1) / 2; }
  std::size_t fft_size() const noexcept { return fft_size_; }
  /// Output samples per block: fft_size - 2 L.
  std::size_t block_samples() const noexcept { return fft_size_ - 2 * half_length(); }
  /// [2 L + 1]: taps()[L + k] = h_k (model length per acceleration unit: s^2).
  const std::vector<double>& taps() const noexcept { return taps_; }
  /// The designed response at f (real: the filter is zero-phase).
  double response(double frequency_hz) const;
  /// The response asked for: -1/(2 pi f)^2 inside [low, high].
  static double ideal(double frequency_hz) noexcept;
  /// @throws InputError unless 0 < low < high <= 0.9 Nyquist (room for the taper above high).
  static void check_band(double sample_rate_hz, double low_hz, double high_hz);
  /// Relative accuracy the design aims at inside the band.
  static constexpr double design_tolerance = 1e-5;

  /// @brief Filters one block.
  /// @param[in] in [n_in, n_modes] row-major, n_in = n_out + 2L <= fft_size: modal
  ///            accelerations of samples t0 - L .. t0 + n_out + L - 1 (zeros outside the segment)
  /// @param[out] out [n_out, n_modes] modal displacements of samples t0 .. t0 + n_out - 1
  void apply(const double* in, std::size_t n_out, double* out);

private:
  double sample_rate_hz_, low_hz_, high_hz_;
  std::size_t n_modes_, fft_size_ = 0, group_ = 0;
  std::vector<double> taps_;
  std::vector<std::complex<double>> spectrum_;  ///< [fft_size/2 + 1] of the shifted taps / N
  struct Fft;
  std::unique_ptr<Fft> fft_;
};

// ---- stresses and fatigue ---------------------------------------------------------------

enum class EquivalentStress { signed_von_mises = 0, von_mises = 1, max_principal = 2 };
/// "signed-von-mises", "von-mises", "max-principal". @throws InputError listing them.
EquivalentStress parse_equivalent_stress(const std::string& name);
std::string to_string(EquivalentStress kind);
/// "half-cycles", "closed", "discard". @throws InputError listing them.
ResidueTreatment parse_residue_treatment(const std::string& name);
std::string to_string(ResidueTreatment treatment);

/// Output nodes per rainflow counter (fixed, so that states are the same for any thread count).
inline constexpr std::size_t kTileNodes = 128;

/// @brief What the statistics have accumulated: per output node the largest von Mises stress
/// (and the global sample where it first occurred), and, with an S-N curve, the rainflow state
/// of the equivalent stress and the Miner sums. Exact: serialise/deserialise restores the same
/// bits, and merge(next) of the states of two consecutive pieces of history gives the state of
/// the whole (so time-split MPI ranks and resumed runs agree with one run, bit for bit).
class FatigueState {
public:
  /// @param[in] curve null: no rainflow or damage, only the von Mises maxima
  FatigueState(std::size_t n_nodes, const SnCurve* curve, double equivalent_slope = 0.0);
  std::size_t n_nodes() const noexcept { return n_nodes_; }
  std::size_t n_tiles() const noexcept { return counters_.size(); }
  bool has_fatigue() const noexcept { return damage_ != nullptr; }

  std::vector<RainflowCounter>& counters() noexcept { return counters_; }
  MinerDamage* damage() noexcept { return damage_.get(); }
  const MinerDamage* damage() const noexcept { return damage_.get(); }
  std::vector<double>& von_mises_max() noexcept { return vm_max_; }
  const std::vector<double>& von_mises_max() const noexcept { return vm_max_; }
  std::vector<std::int64_t>& von_mises_max_sample() noexcept { return vm_max_sample_; }
  const std::vector<std::int64_t>& von_mises_max_sample() const noexcept { return vm_max_sample_; }
  std::int64_t counted_samples() const noexcept { return counted_samples_; }
  void add_counted_samples(std::int64_t n) noexcept { counted_samples_ += n; }

  std::vector<std::byte> serialize() const;
  /// @throws InputError when `bytes` is not a state of this shape.
  void deserialize(std::span<const std::byte> bytes);
  /// Appends `next`, the state of the piece of history that follows this one's.
  void merge(const FatigueState& next);
  /// Ends the history: counts the residue of every node as asked (into the damage sums).
  void finish(ResidueTreatment treatment);
  bool operator==(const FatigueState& other) const;

private:
  std::size_t n_nodes_;
  std::vector<RainflowCounter> counters_;  ///< [n_tiles], kTileNodes channels each (last: rest)
  std::unique_ptr<MinerDamage> damage_;
  std::vector<double> vm_max_;                ///< [n_nodes]
  std::vector<std::int64_t> vm_max_sample_;   ///< [n_nodes] -1 before the first counted sample
  std::int64_t counted_samples_ = 0;
};

/// Receives the stress and displacement histories, a few rows at a time.
class HistorySink {
public:
  virtual ~HistorySink() = default;
  /// @param[in] global_first the global sample index of the first row
  /// @param[in] stress [n_rows, n_nodes, 6]; displacement [n_rows, n_nodes, 3]
  virtual void write(std::int64_t global_first, std::size_t n_rows, const float* stress,
                     const float* displacement) = 0;
};

/// @brief The stress recovery and its statistics.
/// CPU: per tile of output nodes one single-threaded dgemm sigma = q Psi^T ([rows, m] x
/// [m, 6 tile]), then, while the product is in cache, the equivalent stress, the von Mises
/// maxima and the rainflow counting of counted rows; OpenMP over tiles.
/// CUDA (kernels/stress_recovery.hpp): the products, maxima and turning points on the device,
/// only the turning points come back and are pushed into the same host counters (OpenMP over
/// tiles); the node states are synchronised with the FatigueState around every call, so that
/// checkpoints, merges and the end are the CPU's. Histories are a CPU feature.
class StressFatigue {
public:
  /// @param[in] modal_stress [n_nodes * 6, m] row-major (node j, component c in row 6 j + c)
  /// @param[in] modal_shapes [n_nodes * 3, m] (only with histories; else empty)
  /// @param[in] executor null or CPU: the CPU path; CUDA: the device path
  StressFatigue(std::vector<double> modal_stress, std::vector<double> modal_shapes,
                std::size_t n_nodes, std::size_t n_modes, EquivalentStress kind,
                std::shared_ptr<const Executor> executor = nullptr);
  ~StressFatigue();
  std::size_t n_nodes() const noexcept { return n_nodes_; }
  /// "cpu" or the device's description.
  std::string backend() const;

  /// @brief One block of modal displacements.
  /// @param[in] q [n, m] row-major modal displacements of global samples first .. first + n - 1
  /// @param[in] counted [n] 1 = the sample enters the statistics
  /// @param[in,out] state accumulates maxima, cycles and damage
  /// @param[in] history null: no histories
  void process(const double* q, std::size_t n, std::int64_t first, const std::uint8_t* counted,
               FatigueState& state, HistorySink* history);

private:
  void process_device(const double* q, std::size_t n, std::int64_t first,
                      const std::uint8_t* counted, FatigueState& state);
  std::vector<double> stress_, shapes_;
  std::size_t n_nodes_, n_modes_;
  EquivalentStress kind_;
  std::shared_ptr<const Executor> executor_;
  std::unique_ptr<class DeviceRecovery> device_;
};

// ---- the block pipeline -----------------------------------------------------------------

/// @brief Blocks of the archive in time order: block b of segment s covers the segment's samples
/// [first, first + n). All blocks of a segment have the integrator's block length but the last.
struct Block {
  std::size_t segment = 0;
  std::int64_t first = 0;         ///< in the segment
  std::int64_t n = 0;
  std::int64_t global_first = 0;  ///< sample index over all segments in time order
};
std::vector<Block> make_blocks(const std::vector<std::int64_t>& segment_samples,
                               std::int64_t block_samples);

/// What the pipeline needs, derived once from the inputs (identical on every rank).
struct PipelineSetup {
  std::vector<std::size_t> channel_columns;  ///< [n_channels] columns of the archive used
  std::vector<std::string> channel_names;    ///< [n_channels] for messages
  std::vector<double> channel_matrix;        ///< [n_channels, m]
  std::vector<double> modal_stress;          ///< [p * 6, m]
  std::vector<double> modal_shapes;          ///< [p * 3, m] (history only)
  std::size_t n_modes = 0, n_nodes = 0;
  ExpansionOptions expansion;
  double band_low_hz = 0.0, band_high_hz = 0.0;
  std::int64_t settle_samples = -1;  ///< < 0: the integrator's half-length
  std::size_t fft_size = 0;          ///< 0: automatic
  EquivalentStress equivalent = EquivalentStress::signed_von_mises;
  bool history = false;
  std::shared_ptr<const Executor> executor;  ///< null or CPU: CPU; CUDA: the device path
};

/// Counts a block reports (over the samples it owns).
struct BlockReport {
  std::int64_t dropout_values = 0;      ///< NaN channel samples
  std::vector<std::int64_t> channel_dropouts;  ///< [n_channels] NaN samples per channel
  /// Sum of the squared residuals of the fit over the owned samples, and its degrees of freedom:
  /// their ratio is the estimated noise variance of a channel (model units).
  ExactSum noise_sq;
  std::int64_t noise_dof = 0;
  std::int64_t live_set_changes = 0;    ///< samples whose live channel set differs from the previous
  std::int64_t unobservable_samples = 0;
  std::int64_t excluded_samples = 0;    ///< not counted in the statistics
  /// The first unobservable sample of the block (in its segment), -1 if none.
  std::int64_t first_unobservable = -1;
  /// The first changes of the live channel set (sample in the segment, live channels, condition
  /// number), for the log.
  struct Change {
    std::int64_t sample = 0;
    std::uint32_t live = 0;
    double condition = 0.0;
    bool observable = true;
  };
  std::vector<Change> changes;  ///< at most 8
  void add(const BlockReport& other);
};

/// @brief Runs blocks through expansion, integration and stress recovery.
class Pipeline {
public:
  Pipeline(PipelineSetup setup, double sample_rate_hz);
  const BandIntegrator& integrator() const noexcept { return *integrator_; }
  std::int64_t settle_samples() const noexcept { return settle_; }
  /// @brief Per output node, E[vm(e)^2] of the stress error e per unit channel-noise variance:
  /// ||h||^2 tr(V Psi_j C Psi_j^T) with C the expansion's covariance (all channels live), h the
  /// integration filter (white noise through it) and V the von Mises quadratic form. Times an
  /// estimated noise variance, its square root is the RMS von Mises of the noise in the
  /// reconstructed stress.
  const std::vector<double>& noise_factors() const noexcept { return noise_factors_; }
  std::int64_t block_samples() const noexcept {
    return static_cast<std::int64_t>(integrator_->block_samples());
  }
  const PipelineSetup& setup() const noexcept { return setup_; }
  ModalExpansion& expansion() noexcept { return *expansion_; }
  /// "cpu" or the CUDA device that recovers the stresses.
  std::string backend() const { return stress_->backend(); }

  /// @brief Processes one block: reads the archive around it (the filter's reach and the
  /// settle distance on both sides), expands, integrates and feeds the stress recovery.
  /// @param[out] modal_displacement [block.n, m] q of the block, or null
  BlockReport process(io::Archive& archive, const Block& block, FatigueState& state,
                      HistorySink* history, double* modal_displacement = nullptr);

private:
  PipelineSetup setup_;
  double sample_rate_hz_;
  std::unique_ptr<ModalExpansion> expansion_;
  std::unique_ptr<BandIntegrator> integrator_;
  std::unique_ptr<StressFatigue> stress_;
  std::int64_t settle_ = 0;
  std::vector<double> noise_factors_;
  // scratch
  std::vector<double> raw_, y_, q_acc_, q_;
  std::vector<std::uint8_t> observable_, counted_;
  std::vector<std::uint32_t> live_, residual_dof_;
  std::vector<double> residual_sq_;
};

}  // namespace vsense::solvers::reconstruction
