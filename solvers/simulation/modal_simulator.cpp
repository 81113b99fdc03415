// Streaming modal simulation: exact discrete-time modal oscillators, engine-order harmonics,
// band-limited random forces and sensor noise (see simulation.hpp).
#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numbers>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/simulation.hpp"

namespace vsense::solvers::simulation {

namespace {

using Matrix4 = std::array<double, 16>;  // row-major 4 x 4

Matrix4 multiply(const Matrix4& x, const Matrix4& y) {
  Matrix4 z{};
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 4; ++k) {
      const double xik = x[4 * i + k];
      for (int j = 0; j < 4; ++j) z[4 * i + j] += xik * y[4 * k + j];
    }
  }
  return z;
}

// exp(X) by scaling and squaring with a Taylor series: after scaling, ||X||_inf <= 1/2, where
// 20 terms are below double rounding (0.5^20 / 20! ~ 4e-25).
Matrix4 exponential(Matrix4 x) {
  double norm = 0.0;
  for (int i = 0; i < 4; ++i) {
    double row = 0.0;
    for (int j = 0; j < 4; ++j) row += std::abs(x[4 * i + j]);
    norm = std::max(norm, row);
  }
  int squarings = 0;
  if (norm > 0.5) squarings = static_cast<int>(std::ceil(std::log2(norm / 0.5)));
  const double scale = std::ldexp(1.0, -squarings);
  for (double& v : x) v *= scale;
  Matrix4 result{};
  Matrix4 term{};
  for (int i = 0; i < 4; ++i) result[5 * i] = term[5 * i] = 1.0;
  for (int j = 1; j <= 20; ++j) {
    term = multiply(term, x);
    for (double& v : term) v /= j;
    for (int k = 0; k < 16; ++k) result[k] += term[k];
  }
  for (int s = 0; s < squarings; ++s) result = multiply(result, result);
  return result;
}

}  // namespace

OscillatorStep oscillator_step(double omega_rad_s, double zeta, double dt_s) {
  if (!(omega_rad_s >= 0.0) || !std::isfinite(omega_rad_s) || !(zeta >= 0.0) ||
      !std::isfinite(zeta) || !(dt_s > 0.0) || !std::isfinite(dt_s)) {
    throw InputError(
        fmt::format("modal oscillator: omega {} rad/s, zeta {}, dt {} s: need "
                    "omega >= 0, zeta >= 0, dt > 0",
                    omega_rad_s, zeta, dt_s));
  }
  // Van Loan: the state [q, v, u, w] with u the force and w = du/dt constant over the step
  // (first-order hold) obeys a linear ODE whose exponential holds A, b0 and b1. It is scaled
  // to the rate Omega = max(omega, 1/dt) (q, v / Omega, u / Omega^2, w / Omega^3, time
  // Omega t) so that every entry is O(1): without it the omega^2 entry makes the squarings
  // lose the small force weights of low modes.
  const double rate = std::max(omega_rad_s, 1.0 / dt_s);
  const double r = omega_rad_s / rate;
  const double horizon = rate * dt_s;
  Matrix4 m{};
  m[1] = 1.0;     // dQ/dtau = V
  m[4] = -r * r;  // dV/dtau = -r^2 Q - 2 zeta r V + U
  m[5] = -2.0 * zeta * r;
  m[6] = 1.0;
  m[11] = 1.0;  // dU/dtau = W
  for (double& v : m) v *= horizon;
  const Matrix4 e = exponential(m);

  OscillatorStep step;
  step.a = {e[0], e[1] / rate, e[4] * rate, e[5]};
  const double w_q = e[3] / (rate * rate * rate * dt_s);  // weight of (f_{k+1} - f_k) in q
  const double w_v = e[7] / (rate * rate * dt_s);
  step.b1 = {w_q, w_v};
  step.b0 = {e[2] / (rate * rate) - w_q, e[6] / rate - w_v};
  step.omega_sq = omega_rad_s * omega_rad_s;
  step.two_zeta_omega = 2.0 * zeta * omega_rad_s;
  return step;
}

// ---- ModalOscillators -----------------------------------------------------------------------

ModalOscillators::ModalOscillators(const std::vector<double>& omega_rad_s,
                                   const std::vector<double>& zeta, double dt_s) {
  if (omega_rad_s.size() != zeta.size()) {
    throw InputError(fmt::format("modal oscillators: {} frequencies but {} damping ratios",
                                 omega_rad_s.size(), zeta.size()));
  }
  steps_.reserve(omega_rad_s.size());
  for (std::size_t i = 0; i < omega_rad_s.size(); ++i) {
    steps_.push_back(oscillator_step(omega_rad_s[i], zeta[i], dt_s));
  }
  q_.assign(steps_.size(), 0.0);
  v_.assign(steps_.size(), 0.0);
  f_prev_.assign(steps_.size(), 0.0);
}

void ModalOscillators::set_state(const std::vector<double>& q,
                                 const std::vector<double>& velocity) {
  if (q.size() != steps_.size() || velocity.size() != steps_.size()) {
    throw InputError(fmt::format("modal oscillators: state of size {}/{} for {} modes", q.size(),
                                 velocity.size(), steps_.size()));
  }
  q_ = q;
  v_ = velocity;
  started_ = false;
}

void ModalOscillators::advance(const double* forces, std::size_t n, double* q, double* q_acc,
                               double* q_vel) {
  const std::size_t m = steps_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const double* f = forces + k * m;
    if (started_) {
      for (std::size_t i = 0; i < m; ++i) {
        const OscillatorStep& s = steps_[i];
        const double q1 = s.a[0] * q_[i] + s.a[1] * v_[i] + s.b0[0] * f_prev_[i] + s.b1[0] * f[i];
        const double v1 = s.a[2] * q_[i] + s.a[3] * v_[i] + s.b0[1] * f_prev_[i] + s.b1[1] * f[i];
        q_[i] = q1;
        v_[i] = v1;
      }
    }
    started_ = true;
    for (std::size_t i = 0; i < m; ++i) {
      const OscillatorStep& s = steps_[i];
      f_prev_[i] = f[i];
      q[k * m + i] = q_[i];
      q_acc[k * m + i] = f[i] - s.two_zeta_omega * v_[i] - s.omega_sq * q_[i];
      if (q_vel != nullptr) q_vel[k * m + i] = v_[i];
    }
  }
}

// ---- SpeedProfile ---------------------------------------------------------------------------

namespace {
constexpr double rpm_to_rad_s = 2.0 * std::numbers::pi / 60.0;
}

SpeedProfile::SpeedProfile(double rpm) : SpeedProfile(std::vector<double>{0.0}, {rpm}) {}

SpeedProfile::SpeedProfile(std::vector<double> time_s, std::vector<double> rpm)
    : time_s_(std::move(time_s)), rpm_(std::move(rpm)) {
  if (time_s_.empty() || time_s_.size() != rpm_.size()) {
    throw InputError(
        fmt::format("speed profile: {} times and {} speeds (need the same number, "
                    "at least one)",
                    time_s_.size(), rpm_.size()));
  }
  for (std::size_t j = 0; j < time_s_.size(); ++j) {
    if (!std::isfinite(time_s_[j]) || !(rpm_[j] >= 0.0) || !std::isfinite(rpm_[j])) {
      throw InputError(
          fmt::format("speed profile: point {} ({} s, {} rpm) is invalid", j, time_s_[j], rpm_[j]));
    }
    if (j > 0 && !(time_s_[j] > time_s_[j - 1])) {
      throw InputError(fmt::format("speed profile: times must increase ({} s follows {} s)",
                                   time_s_[j], time_s_[j - 1]));
    }
  }
  angle_at_point_.assign(time_s_.size(), 0.0);
  for (std::size_t j = 1; j < time_s_.size(); ++j) {
    angle_at_point_[j] = angle_at_point_[j - 1] + 0.5 * (rpm_[j - 1] + rpm_[j]) *
                                                      (time_s_[j] - time_s_[j - 1]) * rpm_to_rad_s;
  }
  angle_at_zero_ = integral_from_first(0.0);
}

double SpeedProfile::rpm(double t) const {
  if (t <= time_s_.front()) return rpm_.front();
  if (t >= time_s_.back()) return rpm_.back();
  const std::size_t j = static_cast<std::size_t>(
      std::upper_bound(time_s_.begin(), time_s_.end(), t) - time_s_.begin() - 1);
  const double x = (t - time_s_[j]) / (time_s_[j + 1] - time_s_[j]);
  return rpm_[j] + (rpm_[j + 1] - rpm_[j]) * x;
}

double SpeedProfile::integral_from_first(double t) const {
  if (t <= time_s_.front()) return rpm_.front() * (t - time_s_.front()) * rpm_to_rad_s;
  if (t >= time_s_.back()) {
    return angle_at_point_.back() + rpm_.back() * (t - time_s_.back()) * rpm_to_rad_s;
  }
  const std::size_t j = static_cast<std::size_t>(
      std::upper_bound(time_s_.begin(), time_s_.end(), t) - time_s_.begin() - 1);
  const double d = t - time_s_[j];
  const double slope = (rpm_[j + 1] - rpm_[j]) / (time_s_[j + 1] - time_s_[j]);
  return angle_at_point_[j] + (rpm_[j] * d + 0.5 * slope * d * d) * rpm_to_rad_s;
}

double SpeedProfile::crank_angle_rad(double t) const {
  return integral_from_first(t) - angle_at_zero_;
}

// ---- RandomStream ---------------------------------------------------------------------------

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

RandomStream::RandomStream(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
  for (auto& s : s_) s = splitmix64(x);
}

std::uint64_t RandomStream::next_u64() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double RandomStream::uniform() noexcept {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double RandomStream::normal() noexcept {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Marsaglia's polar method: no trigonometric functions, 27% of pairs rejected.
  double u = 0.0, v = 0.0, s = 0.0;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double factor = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * factor;
  has_spare_ = true;
  return u * factor;
}

// ---- BandNoise ------------------------------------------------------------------------------

BandNoise::BandNoise(std::size_t n_channels, double low_hz, double high_hz, double sample_rate_hz,
                     std::uint64_t seed, std::uint64_t stream)
    : n_channels_(n_channels), random_(seed, stream) {
  if (n_channels_ == 0) return;  // nothing to filter: the band is not used
  if (!(sample_rate_hz > 0.0) || !(low_hz >= 0.0) || !(high_hz > low_hz)) {
    throw InputError(
        fmt::format("band noise: band {} .. {} Hz at {} Hz sampling is invalid "
                    "(need 0 <= low < high)",
                    low_hz, high_hz, sample_rate_hz));
  }
  const double nyquist = 0.5 * sample_rate_hz;
  if (low_hz >= 0.98 * nyquist) {
    throw InputError(
        fmt::format("band noise: lower edge {} Hz is not below the Nyquist "
                    "frequency {} Hz",
                    low_hz, nyquist));
  }
  const double sqrt2 = std::numbers::sqrt2;
  if (low_hz > 0.0) {
    const double k = std::tan(std::numbers::pi * low_hz / sample_rate_hz);
    const double norm = 1.0 / (1.0 + sqrt2 * k + k * k);
    sections_.push_back(
        {norm, -2.0 * norm, norm, 2.0 * (k * k - 1.0) * norm, (1.0 - sqrt2 * k + k * k) * norm});
  }
  if (high_hz < 0.98 * nyquist) {
    const double k = std::tan(std::numbers::pi * high_hz / sample_rate_hz);
    const double norm = 1.0 / (1.0 + sqrt2 * k + k * k);
    sections_.push_back({k * k * norm, 2.0 * k * k * norm, k * k * norm, 2.0 * (k * k - 1.0) * norm,
                         (1.0 - sqrt2 * k + k * k) * norm});
  }
  // Steady-state RMS for unit white input = sqrt(sum of the squared impulse response), summed
  // until the slowest pole (Butterworth damping 1/sqrt(2)) has decayed below rounding.
  double slowest_samples = 1.0;
  if (low_hz > 0.0)
    slowest_samples = sample_rate_hz / (std::numbers::sqrt2 * std::numbers::pi * low_hz);
  const auto n_terms = static_cast<std::size_t>(std::min(50.0 * slowest_samples + 64.0, 1e8));
  std::vector<double> state(2 * sections_.size(), 0.0);
  double energy = 0.0;
  for (std::size_t k = 0; k < n_terms; ++k) {
    double x = k == 0 ? 1.0 : 0.0;
    for (std::size_t s = 0; s < sections_.size(); ++s) {
      const Biquad& b = sections_[s];
      const double y = b.b0 * x + state[2 * s];
      state[2 * s] = b.b1 * x - b.a1 * y + state[2 * s + 1];
      state[2 * s + 1] = b.b2 * x - b.a2 * y;
      x = y;
    }
    energy += x * x;
  }
  gain_ = std::sqrt(energy);
  state_.assign(n_channels_ * sections_.size() * 2, 0.0);
}

void BandNoise::next(std::size_t n, double* out) {
  const std::size_t n_sections = sections_.size();
  const double inverse_gain = 1.0 / gain_;
  for (std::size_t k = 0; k < n; ++k) {
    for (std::size_t c = 0; c < n_channels_; ++c) {
      double x = random_.normal();
      double* state = state_.data() + c * n_sections * 2;
      for (std::size_t s = 0; s < n_sections; ++s) {
        const Biquad& b = sections_[s];
        const double y = b.b0 * x + state[2 * s];
        state[2 * s] = b.b1 * x - b.a1 * y + state[2 * s + 1];
        state[2 * s + 1] = b.b2 * x - b.a2 * y;
        x = y;
      }
      out[k * n_channels_ + c] = x * inverse_gain;
    }
  }
}

// ---- ModalSimulator -------------------------------------------------------------------------

namespace {

constexpr std::uint64_t broadband_stream = 2;
constexpr std::uint64_t sensor_noise_stream = 3;

void check_size(const char* what, std::size_t actual, std::size_t expected) {
  if (actual != expected) {
    throw InputError(
        fmt::format("simulation: {} has {} values but {} were expected", what, actual, expected));
  }
}

// Band edges clipped to what the sampling can represent (the noise's own checks then apply).
double clipped_high(const BroadbandExcitation& b, double sample_rate_hz) {
  return std::min(b.high_hz, 0.49 * sample_rate_hz);
}

}  // namespace

ModalSimulator::ModalSimulator(SimulatorSetup setup)
    : setup_(std::move(setup)),
      oscillators_(setup_.omega_rad_s, setup_.zeta, 1.0 / setup_.sample_rate_hz),
      broadband_noise_(setup_.broadband.n_inputs, setup_.broadband.low_hz,
                       clipped_high(setup_.broadband, setup_.sample_rate_hz), setup_.sample_rate_hz,
                       setup_.seed, broadband_stream),
      sensor_noise_(setup_.seed, sensor_noise_stream) {
  const std::size_t m = setup_.omega_rad_s.size();
  const auto& h = setup_.harmonic;
  const auto& b = setup_.broadband;
  const auto& s = setup_.sensors;
  if (!(setup_.sample_rate_hz > 0.0) || !std::isfinite(setup_.sample_rate_hz)) {
    throw InputError(
        fmt::format("simulation: sample rate {} Hz is not positive", setup_.sample_rate_hz));
  }
  if (!(setup_.warm_up_s >= 0.0)) {
    throw InputError(fmt::format("simulation: warm-up {} s is negative", setup_.warm_up_s));
  }
  check_size("harmonic modal_cos", h.modal_cos.size(), m * h.n_orders);
  check_size("harmonic modal_sin", h.modal_sin.size(), m * h.n_orders);
  check_size("broadband participation", b.participation.size(), m * b.n_inputs);
  check_size("sensor projection", s.projection.size(), s.n_channels * m);
  check_size("sensor scale", s.scale.size(), s.n_channels);
  if (!(s.noise_rms >= 0.0) || !(b.rms >= 0.0)) {
    throw InputError("simulation: noise and force RMS must not be negative");
  }

  // Transposed copies, so that the inner loops run over contiguous modes or channels.
  const std::size_t k_orders = h.n_orders;
  harmonic_gain_.assign(2 * k_orders * m, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t k = 0; k < k_orders; ++k) {
      harmonic_gain_[k * m + i] = h.modal_cos[i * k_orders + k];
      harmonic_gain_[(k_orders + k) * m + i] = h.modal_sin[i * k_orders + k];
    }
  }
  broadband_gain_.assign(b.n_inputs * m, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < b.n_inputs; ++j) {
      broadband_gain_[j * m + i] = b.participation[i * b.n_inputs + j] * b.rms;
    }
  }
  projection_t_.assign(m * s.n_channels, 0.0);
  for (std::size_t c = 0; c < s.n_channels; ++c) {
    for (std::size_t i = 0; i < m; ++i) {
      projection_t_[i * s.n_channels + c] = s.projection[c * m + i] * s.scale[c];
    }
  }
  position_ = -static_cast<std::int64_t>(std::llround(setup_.warm_up_s * setup_.sample_rate_hz));
  block_start_ = position_;
}

void ModalSimulator::next(std::size_t n, SimulationBlock& block) {
  const std::size_t m = n_modes();
  const std::size_t n_channels = setup_.sensors.n_channels;
  block.n_samples = n;
  // resize() keeps the capacity, so the caller's buffers are allocated once.
  block.modal_force.resize(n * m);
  block.q.resize(n * m);
  block.q_acc.resize(n * m);
  block.channels.resize(n * n_channels);
  block.rpm.resize(n);
  std::size_t done = 0;
  while (done < n) {
    const auto block_end = block_start_ + static_cast<std::int64_t>(internal_block);
    if (!have_block_ || position_ >= block_end) {
      if (have_block_) block_start_ = block_end;
      compute_block();
      have_block_ = true;
      continue;
    }
    // Warm-up samples (negative positions) are skipped, not handed out.
    if (position_ < 0) {
      position_ = std::min<std::int64_t>(0, block_end);
      continue;
    }
    const auto offset = static_cast<std::size_t>(position_ - block_start_);
    const std::size_t take = std::min(n - done, internal_block - offset);
    auto copy = [&](const std::vector<double>& from, std::vector<double>& to, std::size_t width) {
      std::copy_n(from.data() + offset * width, take * width, to.data() + done * width);
    };
    copy(current_.modal_force, block.modal_force, m);
    copy(current_.q, block.q, m);
    copy(current_.q_acc, block.q_acc, m);
    copy(current_.channels, block.channels, n_channels);
    copy(current_.rpm, block.rpm, 1);
    done += take;
    position_ += static_cast<std::int64_t>(take);
  }
}

namespace {

// Eigen parallelises products of this size with OpenMP. For blocks this small the thread
// start-up and spinning cost more than they save (10x slower on a loaded 2-core machine), and
// the simulation is one sequential stream anyway: run its products on one thread.
class SingleThreadedEigen {
public:
  SingleThreadedEigen() : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~SingleThreadedEigen() { Eigen::setNbThreads(saved_); }
  SingleThreadedEigen(const SingleThreadedEigen&) = delete;
  SingleThreadedEigen& operator=(const SingleThreadedEigen&) = delete;

private:
  int saved_;
};

}  // namespace

void ModalSimulator::compute_block() {
  const SingleThreadedEigen single_threaded;
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Map = Eigen::Map<RowMajor>;
  using ConstMap = Eigen::Map<const RowMajor>;
  const std::size_t n = internal_block;
  const auto ni = static_cast<Eigen::Index>(n);
  const std::size_t m = n_modes();
  const auto mi = static_cast<Eigen::Index>(m);
  const std::size_t k_orders = setup_.harmonic.n_orders;
  const std::size_t n_basis = 2 * k_orders;
  const std::size_t n_inputs = setup_.broadband.n_inputs;
  const std::size_t n_channels = setup_.sensors.n_channels;
  const auto ci = static_cast<Eigen::Index>(n_channels);
  SimulationBlock& b = current_;
  b.n_samples = n;
  b.modal_force.resize(n * m);
  b.q.resize(n * m);
  b.q_acc.resize(n * m);
  b.rpm.resize(n);
  b.channels.resize(n * n_channels);
  harmonic_basis_.resize(n * n_basis);
  random_inputs_.resize(n * n_inputs);

  // Harmonics: cos/sin of k s theta by the angle-addition recurrence (error ~ k eps).
  const auto& speed = setup_.harmonic.speed;
  const double order_step = setup_.harmonic.order_step;
  for (std::size_t t = 0; t < n; ++t) {
    const double time_s =
        static_cast<double>(block_start_ + static_cast<std::int64_t>(t)) / setup_.sample_rate_hz;
    b.rpm[t] = speed.rpm(time_s);
    if (k_orders == 0) continue;
    const double base = order_step * speed.crank_angle_rad(time_s);
    const double c1 = std::cos(base), s1 = std::sin(base);
    double ck = c1, sk = s1;
    double* row = harmonic_basis_.data() + t * n_basis;
    for (std::size_t k = 0; k < k_orders; ++k) {
      row[k] = ck;
      row[k_orders + k] = sk;
      const double c_next = ck * c1 - sk * s1;
      sk = sk * c1 + ck * s1;
      ck = c_next;
    }
  }
  if (n_inputs > 0) broadband_noise_.next(n, random_inputs_.data());

  Map force(b.modal_force.data(), ni, mi);
  force.setZero();
  if (n_basis > 0) {
    force.noalias() += ConstMap(harmonic_basis_.data(), ni, static_cast<Eigen::Index>(n_basis)) *
                       ConstMap(harmonic_gain_.data(), static_cast<Eigen::Index>(n_basis), mi);
  }
  if (n_inputs > 0) {
    force.noalias() += ConstMap(random_inputs_.data(), ni, static_cast<Eigen::Index>(n_inputs)) *
                       ConstMap(broadband_gain_.data(), static_cast<Eigen::Index>(n_inputs), mi);
  }
  oscillators_.advance(b.modal_force.data(), n, b.q.data(), b.q_acc.data());

  if (n_channels > 0) {
    Map channels(b.channels.data(), ni, ci);
    channels.noalias() = ConstMap(b.q_acc.data(), ni, mi) * ConstMap(projection_t_.data(), mi, ci);
    const double noise = setup_.sensors.noise_rms;
    if (noise > 0.0) {
      for (double& y : b.channels) y += noise * sensor_noise_.normal();
    }
  }
}

}  // namespace vsense::solvers::simulation
