#pragma once
/// @file simulation.hpp
/// @brief Streaming modal simulation of a machine's operating response: engine-order
/// harmonics and band-limited random forces, superposed over damped modes, integrated exactly
/// in discrete time, observed by accelerometers. Everything here works block by block with
/// state carried between blocks, so memory does not depend on the simulated duration, and a
/// run split into blocks gives bit-for-bit the samples of an unsplit run.
///
/// Model: u(t) = Phi q(t) with Phi mass-normalised, and per mode i
///   q_i'' + 2 zeta_i omega_i q_i' + omega_i^2 q_i = f_i(t),  f_i = phi_i^T F(t).
#include <array>
#include <cstdint>
#include <vector>

namespace vsense::solvers::simulation {

// ---- the modal oscillator -------------------------------------------------------------------

/// @brief The exact discrete-time step of q'' + 2 zeta omega q' + omega^2 q = f(t) over dt,
/// for a force linear between samples (first-order hold):
///   [q, v]_{k+1} = A [q, v]_k + b0 f_k + b1 f_{k+1}.
/// Exact for any dt (stable however large omega dt is), for rigid (omega = 0), under-,
/// critically and over-damped modes.
struct OscillatorStep {
  std::array<double, 4> a{};    ///< A row-major: a[0] a[1]; a[2] a[3]
  std::array<double, 2> b0{};   ///< weight of f_k
  std::array<double, 2> b1{};   ///< weight of f_{k+1}
  double omega_sq = 0.0;        ///< omega^2, for the acceleration
  double two_zeta_omega = 0.0;  ///< 2 zeta omega
};

/// @param omega_rad_s natural circular frequency >= 0 [rad/s]; zeta damping ratio >= 0;
/// dt_s time step > 0 [s]. @throws InputError for negative or non-finite values.
OscillatorStep oscillator_step(double omega_rad_s, double zeta, double dt_s);

/// @brief m independent modal oscillators stepped together; state (q, q', last force) is
/// carried from one call to the next. Starts at rest unless set_state() says otherwise.
class ModalOscillators {
public:
  ModalOscillators(const std::vector<double>& omega_rad_s, const std::vector<double>& zeta,
                   double dt_s);
  std::size_t n_modes() const noexcept { return steps_.size(); }

  /// State at the next sample to be produced (before any advance). [m] each.
  void set_state(const std::vector<double>& q, const std::vector<double>& velocity);

  /// @brief Advances over n samples.
  /// @param[in] forces [n, m] modal forces at the samples (row-major)
  /// @param[out] q [n, m] modal displacements; q_acc [n, m] modal accelerations
  ///             q'' = f - 2 zeta omega q' - omega^2 q (exact at the samples); q_vel [n, m]
  ///             velocities, optional (nullptr)
  void advance(const double* forces, std::size_t n, double* q, double* q_acc,
               double* q_vel = nullptr);

private:
  std::vector<OscillatorStep> steps_;
  std::vector<double> q_, v_, f_prev_;
  bool started_ = false;  ///< whether a previous sample (and its force) exists
};

// ---- excitation building blocks -------------------------------------------------------------

/// @brief Engine speed over time, piecewise linear through (time, rpm) points and held
/// constant before the first and after the last one; crank angle is its exact integral.
class SpeedProfile {
public:
  /// Constant speed.
  explicit SpeedProfile(double rpm = 1500.0);
  /// @param time_s strictly increasing; rpm >= 0, same length (>= 1). @throws InputError
  SpeedProfile(std::vector<double> time_s, std::vector<double> rpm);
  double rpm(double t_s) const;
  /// Crank angle [rad] at t, zero at t = 0 (negative before).
  double crank_angle_rad(double t_s) const;
  const std::vector<double>& times() const noexcept { return time_s_; }
  const std::vector<double>& speeds() const noexcept { return rpm_; }

private:
  double integral_from_first(double t_s) const;  // revolutions * 2 pi from time_s_[0]
  std::vector<double> time_s_, rpm_;
  std::vector<double> angle_at_point_;  // crank angle at each point, from time_s_[0]
  double angle_at_zero_ = 0.0;
};

/// @brief Reproducible pseudo-random numbers (xoshiro256**, seeded through splitmix64 from a
/// seed and a stream number, so that independent streams of one seed do not overlap). The
/// same on every platform.
class RandomStream {
public:
  RandomStream(std::uint64_t seed, std::uint64_t stream);
  std::uint64_t next_u64() noexcept;
  /// Uniform in [0, 1).
  double uniform() noexcept;
  /// Standard normal (polar method; the second value of each pair is kept for the next call).
  double normal() noexcept;

private:
  std::array<std::uint64_t, 4> s_{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// @brief Independent channels of Gaussian noise band-limited to [low_hz, high_hz] (2nd-order
/// Butterworth high-pass and low-pass sections, bilinear with pre-warping), scaled to unit
/// RMS in steady state. low_hz <= 0 leaves out the high-pass, high_hz >= 0.49 fs the
/// low-pass.
class BandNoise {
public:
  BandNoise(std::size_t n_channels, double low_hz, double high_hz, double sample_rate_hz,
            std::uint64_t seed, std::uint64_t stream);
  /// @param[out] out [n, n_channels] row-major
  void next(std::size_t n, double* out);
  std::size_t n_channels() const noexcept { return n_channels_; }
  /// RMS of the filter output for unit white input (the normalisation divides by it).
  double filter_gain() const noexcept { return gain_; }

private:
  struct Biquad {
    double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
  };
  std::size_t n_channels_;
  std::vector<Biquad> sections_;
  std::vector<double> state_;  // [n_channels, sections, 2] transposed direct form II
  RandomStream random_;
  double gain_ = 1.0;
};

// ---- the streaming simulator ----------------------------------------------------------------

/// @brief Engine-order harmonics in modal space:
///   f_i(t) = sum_k modal_cos[i, k] cos(k s theta(t)) + modal_sin[i, k] sin(k s theta(t)),
/// k = 1..n_orders, s = order_step, theta the crank angle.
struct HarmonicExcitation {
  double order_step = 0.5;
  std::size_t n_orders = 0;
  std::vector<double> modal_cos;  ///< [m, n_orders] model force units x mode shape
  std::vector<double> modal_sin;  ///< [m, n_orders]
  SpeedProfile speed;
};

/// @brief Band-limited random forces: f_i(t) += sum_j participation[i, j] rms w_j(t), w unit
/// RMS band noise, one per input (a node and direction).
struct BroadbandExcitation {
  std::size_t n_inputs = 0;
  std::vector<double> participation;  ///< [m, n_inputs] phi_i at the input's node and direction
  double rms = 0.0;                   ///< force RMS per input, model force units
  double low_hz = 2.0, high_hz = 500.0;
};

/// @brief Accelerometer channels: a_c = scale_c (sum_i projection[c, i] q_i'') + noise.
struct SensorModel {
  std::size_t n_channels = 0;
  std::vector<double> projection;  ///< [n_channels, m] direction . phi_i(node), model units
  std::vector<double> scale;       ///< [n_channels] model acceleration unit -> channel unit
  double noise_rms = 0.0;          ///< white noise, channel units
};

struct SimulatorSetup {
  std::vector<double> omega_rad_s;  ///< [m] natural frequencies
  std::vector<double> zeta;         ///< [m] modal damping ratios
  double sample_rate_hz = 1000.0;
  /// Simulated before sample 0 and discarded, so that the archive starts in steady operation
  /// rather than from rest.
  double warm_up_s = 0.0;
  HarmonicExcitation harmonic;
  BroadbandExcitation broadband;
  SensorModel sensors;
  std::uint64_t seed = 1;
};

/// @brief One block of simulated samples; every array is row-major [n_samples, .].
/// Buffers are reused from block to block (they grow only to the largest block asked for).
struct SimulationBlock {
  std::size_t n_samples = 0;
  std::vector<double> modal_force;  ///< [n, m]
  std::vector<double> q;            ///< [n, m] modal displacements
  std::vector<double> q_acc;        ///< [n, m] modal accelerations
  std::vector<double> channels;     ///< [n, n_channels] channel units, noise included
  std::vector<double> rpm;          ///< [n] engine speed
};

/// @brief Produces the response sample block by block. Sample k is at t = k / sample_rate.
///
/// Internally the work is done in fixed blocks of `internal_block` samples aligned to the
/// first (warm-up) sample, with matrix products (GEMM) for the modal forces and the channels;
/// next() copies out of them. The arithmetic therefore never depends on how the caller cuts
/// the run, which makes any blocking give the same bits as one call.
class ModalSimulator {
public:
  static constexpr std::size_t internal_block = 512;

  /// @throws InputError for inconsistent sizes or invalid values.
  explicit ModalSimulator(SimulatorSetup setup);
  std::size_t n_modes() const noexcept { return setup_.omega_rad_s.size(); }
  std::size_t n_channels() const noexcept { return setup_.sensors.n_channels; }
  /// Index of the next sample next() produces.
  std::int64_t position() const noexcept { return position_; }

  /// Simulates samples [position(), position() + n).
  void next(std::size_t n, SimulationBlock& block);

private:
  void compute_block();  // the next internal block, from sample block_start_ + internal_block

  SimulatorSetup setup_;
  ModalOscillators oscillators_;
  BandNoise broadband_noise_;
  RandomStream sensor_noise_;
  std::int64_t position_ = 0;     // next sample to hand out (negative during warm-up)
  std::int64_t block_start_ = 0;  // first sample of the internal block
  bool have_block_ = false;
  SimulationBlock current_;             // the internal block
  std::vector<double> harmonic_basis_;  // [B, 2 n_orders] cos | sin
  std::vector<double> random_inputs_;   // [B, n_inputs]
  std::vector<double> harmonic_gain_;   // [2 n_orders, m] (modal_cos | modal_sin) transposed
  std::vector<double> broadband_gain_;  // [n_inputs, m] participation transposed, times rms
  std::vector<double> projection_t_;    // [m, n_channels], times the channel scale
};

}  // namespace vsense::solvers::simulation
