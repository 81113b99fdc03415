// The streaming modal simulation: the exact discrete oscillator against closed-form responses,
// bit-identical results whatever the blocking, reproducible seeds, bounded memory, and the
// archive and truth that run_simulate writes.
#include "vsense/solvers/simulation.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <chrono>
#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "common/test_support.hpp"
#include "vsense/io/archive.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/io/truth_file.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/simulate.hpp"

namespace vsense::solvers::simulation {
namespace {

namespace fs = std::filesystem;
using std::numbers::pi;
using vsense::test::ScratchDir;

// ---- tolerances, with their reasons ---------------------------------------------------------

/// Free and ramp responses: the step matrices come from a scaled matrix exponential accurate
/// to a few ulps, and the recursion is contractive (|eigenvalues| < 1), so rounding grows at
/// most linearly with the step count: ~1e-16 * n_steps. For the 1e4 steps used, 1e-11 of the
/// response's peak leaves two orders of margin.
constexpr double exact_response_rel = 1e-11;

/// Steady-state harmonic response fitted over whole periods after 25 time constants: the
/// transient has decayed to e^-25 ~ 1e-11, the closed form includes the force aliases (see the
/// test, truncated where they are below 1e-13), and the fit is exact over whole periods.
/// Measured: 1e-12 .. 7e-12. Allowed: 1e-10 relative in amplitude, 1e-10 rad in phase.
constexpr double harmonic_rel = 1e-10;

// ---- closed-form responses ------------------------------------------------------------------

// Free response to an initial velocity v0 (an impulse of v0 on a unit modal mass).
double impulse_response(double omega, double zeta, double v0, double t) {
  if (omega == 0.0) return v0 * t;
  if (zeta < 1.0) {
    const double wd = omega * std::sqrt(1.0 - zeta * zeta);
    return v0 / wd * std::exp(-zeta * omega * t) * std::sin(wd * t);
  }
  if (zeta == 1.0) return v0 * t * std::exp(-omega * t);
  const double root = omega * std::sqrt(zeta * zeta - 1.0);
  return v0 / root * std::exp(-zeta * omega * t) * std::sinh(root * t);
}

// Response from rest to the ramp force f = a t (under-damped).
double ramp_response(double omega, double zeta, double a, double t) {
  const double wd = omega * std::sqrt(1.0 - zeta * zeta);
  const double c1 = 2.0 * zeta * a / (omega * omega * omega);
  const double c2 = (zeta * omega * c1 - a / (omega * omega)) / wd;
  return a / (omega * omega) * (t - 2.0 * zeta / omega) +
         std::exp(-zeta * omega * t) * (c1 * std::cos(wd * t) + c2 * std::sin(wd * t));
}

// Its velocity, differentiated by hand.
double ramp_velocity(double omega, double zeta, double a, double t) {
  const double wd = omega * std::sqrt(1.0 - zeta * zeta);
  const double c1 = 2.0 * zeta * a / (omega * omega * omega);
  const double c2 = (zeta * omega * c1 - a / (omega * omega)) / wd;
  return a / (omega * omega) +
         std::exp(-zeta * omega * t) * ((-zeta * omega * c1 + wd * c2) * std::cos(wd * t) +
                                        (-zeta * omega * c2 - wd * c1) * std::sin(wd * t));
}

std::vector<double> free_run(double omega, double zeta, double dt, double v0, std::size_t n) {
  ModalOscillators oscillators({omega}, {zeta}, dt);
  oscillators.set_state({0.0}, {v0});
  const std::vector<double> forces(n, 0.0);
  std::vector<double> q(n), acc(n);
  oscillators.advance(forces.data(), n, q.data(), acc.data());
  return q;
}

TEST(ModalOscillator, ImpulseResponseMatchesClosedFormInEveryDampingRegime) {
  struct Case {
    double omega, zeta, dt;
  };
  // Under-, critically and over-damped, a rigid mode, undamped, and a step far above the
  // period (omega dt = 40): the scheme is exact, so all hold to rounding.
  for (const Case c :
       {Case{2 * pi * 10, 0.02, 1e-3}, Case{2 * pi * 10, 1.0, 1e-3}, Case{2 * pi * 10, 3.0, 1e-3},
        Case{0.0, 0.02, 1e-3}, Case{2 * pi * 3, 0.0, 1e-3}, Case{2 * pi * 50, 0.05, 0.127}}) {
    const std::size_t n = 10000;
    const auto q = free_run(c.omega, c.zeta, c.dt, 1.0, n);
    double peak = 0.0, error = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      const double exact = impulse_response(c.omega, c.zeta, 1.0, k * c.dt);
      peak = std::max(peak, std::abs(exact));
      error = std::max(error, std::abs(q[k] - exact));
    }
    EXPECT_LE(error, exact_response_rel * peak)
        << "omega " << c.omega << " zeta " << c.zeta << " dt " << c.dt << ": error " << error
        << " peak " << peak;
  }
}

TEST(ModalOscillator, RampForceIsIntegratedExactly) {
  // A force linear in time is what the first-order hold assumes: no discretisation error.
  for (const double dt : {1e-4, 1e-3, 0.05}) {
    const double omega = 2 * pi * 5, zeta = 0.05, a = 3.0;
    const std::size_t n = 10000;
    std::vector<double> forces(n), q(n), acc(n);
    for (std::size_t k = 0; k < n; ++k) forces[k] = a * k * dt;
    ModalOscillators oscillators({omega}, {zeta}, dt);
    oscillators.advance(forces.data(), n, q.data(), acc.data());
    double peak = 0.0, error = 0.0, acc_error = 0.0, acc_peak = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      const double t = k * dt;
      const double exact = ramp_response(omega, zeta, a, t);
      peak = std::max(peak, std::abs(exact));
      error = std::max(error, std::abs(q[k] - exact));
      // q'' = f - 2 zeta omega q' - omega^2 q, with the closed-form q and q'.
      const double exact_acc =
          a * t - 2 * zeta * omega * ramp_velocity(omega, zeta, a, t) - omega * omega * exact;
      acc_peak = std::max(acc_peak, std::abs(exact_acc));
      acc_error = std::max(acc_error, std::abs(acc[k] - exact_acc));
    }
    EXPECT_LE(error, exact_response_rel * peak) << "dt " << dt;
    // q'' sums terms of size omega^2 q, so its rounding is relative to omega^2 peak |q|.
    EXPECT_LE(acc_error, exact_response_rel * std::max(acc_peak, omega * omega * peak))
        << "dt " << dt;
  }
}

TEST(ModalOscillator, HarmonicSteadyStateAmplitudeAndPhaseMatchClosedForm) {
  const double f_n = 10.0, omega = 2 * pi * f_n, zeta = 0.02, f0 = 2.5;
  const double fs = 2000.0, dt = 1.0 / fs;
  // Below, at and above resonance; each a whole number of samples per period.
  for (const double f_force : {8.0, 10.0, 25.0}) {
    const double big_omega = 2 * pi * f_force;
    const auto per_period = static_cast<std::size_t>(std::llround(fs / f_force));
    const double settle_s = 25.0 / (zeta * omega);
    const std::size_t n_settle = static_cast<std::size_t>(settle_s * fs);
    const std::size_t n_fit = 10 * per_period;
    const std::size_t n = n_settle + n_fit;
    std::vector<double> forces(n), q(n), acc(n);
    for (std::size_t k = 0; k < n; ++k) forces[k] = f0 * std::cos(big_omega * k * dt);
    ModalOscillators oscillators({omega}, {zeta}, dt);
    oscillators.advance(forces.data(), n, q.data(), acc.data());
    // Fit q = a cos + b sin over whole periods (orthogonal there).
    double a = 0.0, b = 0.0;
    for (std::size_t k = n_settle; k < n; ++k) {
      a += 2.0 / n_fit * q[k] * std::cos(big_omega * k * dt);
      b += 2.0 / n_fit * q[k] * std::sin(big_omega * k * dt);
    }
    // Closed form: X = F0 H(Omega), H(w) = 1 / (omega^2 - w^2 + 2 i zeta omega w). The force
    // is held linear between samples: the interpolant of the sampled tone has components at
    // Omega + n 2 pi fs of amplitude sinc^2(x + n pi), x = Omega dt / 2 (the triangle kernel's
    // transform), and at the sample instants every one of them looks like Omega. Summed over
    // n: exact. (n = 0 alone is off by 4e-8 at 25 Hz, where |H(Omega)| is small.)
    const double x = big_omega * dt / 2.0;
    auto response = [&](double w) {
      return 1.0 / std::complex<double>(omega * omega - w * w, 2 * zeta * omega * w);
    };
    std::complex<double> expected = 0.0;
    for (int harmonic = -2000; harmonic <= 2000; ++harmonic) {
      const double shifted = x + harmonic * pi;
      expected +=
          f0 * std::pow(std::sin(x) / shifted, 2) * response(big_omega + harmonic * 2 * pi * fs);
    }
    const double hold = std::pow(std::sin(x) / x, 2);
    const std::complex<double> fitted(a, -b);  // q = Re(X e^{i Omega t})
    EXPECT_NEAR(std::abs(fitted) / std::abs(expected), 1.0, harmonic_rel) << f_force << " Hz";
    EXPECT_NEAR(std::arg(fitted / expected), 0.0, harmonic_rel) << f_force << " Hz";
    // The hold factor matters at this accuracy: without it the error is (Omega dt)^2 / 12.
    EXPECT_GT(std::abs(std::abs(fitted) * hold / std::abs(expected) - 1.0), 10 * harmonic_rel);
  }
}

TEST(ModalOscillator, RejectsNegativeOrNonFiniteParameters) {
  EXPECT_THROW(oscillator_step(-1.0, 0.02, 1e-3), InputError);
  EXPECT_THROW(oscillator_step(1.0, -0.1, 1e-3), InputError);
  EXPECT_THROW(oscillator_step(1.0, 0.02, 0.0), InputError);
  EXPECT_THROW(oscillator_step(std::nan(""), 0.02, 1e-3), InputError);
  EXPECT_THROW(ModalOscillators({1.0, 2.0}, {0.02}, 1e-3), InputError);
}

// ---- excitation pieces ----------------------------------------------------------------------

TEST(SpeedProfile, CrankAngleIsTheExactIntegralOfAPiecewiseLinearSpeed) {
  // Run-up 600 -> 1500 rpm from 2 s to 12 s.
  const SpeedProfile profile({2.0, 12.0}, {600.0, 1500.0});
  const double to_rad = 2 * pi / 60;
  EXPECT_DOUBLE_EQ(profile.rpm(-5.0), 600.0);
  EXPECT_DOUBLE_EQ(profile.rpm(7.0), 1050.0);
  EXPECT_DOUBLE_EQ(profile.rpm(100.0), 1500.0);
  EXPECT_DOUBLE_EQ(profile.crank_angle_rad(0.0), 0.0);
  EXPECT_NEAR(profile.crank_angle_rad(-1.0), -600.0 * to_rad, 1e-12);
  EXPECT_NEAR(profile.crank_angle_rad(2.0), 1200.0 * to_rad, 1e-12);
  // 2 s at 600, then the ramp's area over 5 s: 600*5 + 90*25/2.
  EXPECT_NEAR(profile.crank_angle_rad(7.0), (1200.0 + 3000.0 + 1125.0) * to_rad, 1e-9);
  EXPECT_NEAR(profile.crank_angle_rad(20.0), (1200.0 + 10500.0 + 1500.0 * 8) * to_rad, 1e-9);
  EXPECT_THROW(SpeedProfile({0.0, 0.0}, {1.0, 2.0}), InputError);
  EXPECT_THROW(SpeedProfile({0.0}, {-1.0}), InputError);
}

TEST(RandomStream, IsReproducibleAndStandardNormal) {
  RandomStream a(7, 2), b(7, 2), c(8, 2), d(7, 3);
  double sum = 0.0, sum_sq = 0.0;
  const int n = 200000;
  bool differs_seed = false, differs_stream = false;
  for (int i = 0; i < n; ++i) {
    const double x = a.normal();
    ASSERT_EQ(x, b.normal());
    differs_seed |= x != c.normal();
    differs_stream |= x != d.normal();
    sum += x;
    sum_sq += x * x;
  }
  EXPECT_TRUE(differs_seed);
  EXPECT_TRUE(differs_stream);
  // 5 standard errors: 5 / sqrt(n) for the mean, 5 sqrt(2 / n) for the variance.
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(sum_sq / n, 1.0, 5.0 * std::sqrt(2.0 / n));
}

TEST(BandNoise, HasUnitRmsAndLittlePowerOutsideItsBand) {
  const double fs = 1000.0;
  BandNoise noise(2, 20.0, 100.0, fs, 3, 1);
  const std::size_t n = 200000;
  std::vector<double> x(2 * n);
  noise.next(n, x.data());
  double sum_sq = 0.0;
  for (std::size_t k = 1000; k < n; ++k) sum_sq += x[2 * k] * x[2 * k];
  const double rms = std::sqrt(sum_sq / (n - 1000));
  // Band-limited noise of ~80 Hz bandwidth over 199 s: ~3e4 independent values, so a few
  // percent of sampling error at most.
  EXPECT_NEAR(rms, 1.0, 0.03);
  // A 2nd-order high-pass at 20 Hz keeps (2/20)^4 = 1e-4 of the power at 2 Hz: the mean of
  // blocks of 1 s (a 1 Hz average) must be tiny.
  double block_mean_sq = 0.0;
  for (std::size_t b = 1; b < 200; ++b) {
    double mean = 0.0;
    for (std::size_t k = 0; k < 1000; ++k) mean += x[2 * (b * 1000 + k)] / 1000.0;
    block_mean_sq += mean * mean / 199.0;
  }
  EXPECT_LT(std::sqrt(block_mean_sq), 0.01);
}

// ---- the streaming simulator ----------------------------------------------------------------

// Three modes, orders 0.5 .. 3, two random inputs, four noisy channels, a run-up.
SimulatorSetup small_setup(std::uint64_t seed = 11) {
  SimulatorSetup s;
  s.omega_rad_s = {2 * pi * 6, 2 * pi * 17, 2 * pi * 55};
  s.zeta = {0.02, 0.03, 0.01};
  s.sample_rate_hz = 500.0;
  s.warm_up_s = 0.3;
  s.seed = seed;
  const std::size_t m = 3;
  auto& h = s.harmonic;
  h.order_step = 0.5;
  h.n_orders = 6;
  for (std::size_t i = 0; i < m * h.n_orders; ++i) {
    h.modal_cos.push_back(std::sin(1.0 + i));
    h.modal_sin.push_back(std::cos(2.0 + 3 * i));
  }
  h.speed = SpeedProfile({0.0, 4.0}, {900.0, 1500.0});
  auto& b = s.broadband;
  b.n_inputs = 2;
  b.participation = {0.3, -0.2, 0.5, 0.1, -0.7, 0.4};
  b.rms = 2.0;
  b.low_hz = 3.0;
  b.high_hz = 150.0;
  auto& sensors = s.sensors;
  sensors.n_channels = 4;
  for (std::size_t i = 0; i < 4 * m; ++i) sensors.projection.push_back(0.1 * (i % 5) - 0.2);
  sensors.scale = {1.0, 1.0 / 9.80665, 1000.0, 1.0};
  sensors.noise_rms = 0.01;
  return s;
}

void append(const SimulationBlock& b, SimulationBlock& all) {
  auto cat = [](const std::vector<double>& from, std::vector<double>& to) {
    to.insert(to.end(), from.begin(), from.end());
  };
  cat(b.modal_force, all.modal_force);
  cat(b.q, all.q);
  cat(b.q_acc, all.q_acc);
  cat(b.channels, all.channels);
  cat(b.rpm, all.rpm);
  all.n_samples += b.n_samples;
}

TEST(ModalSimulator, AnyBlockingGivesTheSameBits) {
  const std::size_t n = 5000;
  ModalSimulator whole(small_setup());
  SimulationBlock reference;
  whole.next(n, reference);
  EXPECT_EQ(whole.position(), static_cast<std::int64_t>(n));

  ModalSimulator pieces(small_setup());
  SimulationBlock all, block;
  const std::size_t sizes[] = {1, 7, 511, 512, 513, 1000, 3, 64};
  for (std::size_t done = 0, i = 0; done < n; ++i) {
    const std::size_t take = std::min(sizes[i % 8], n - done);
    pieces.next(take, block);
    append(block, all);
    done += take;
  }
  ASSERT_EQ(all.n_samples, n);
  EXPECT_EQ(all.modal_force, reference.modal_force);
  EXPECT_EQ(all.q, reference.q);
  EXPECT_EQ(all.q_acc, reference.q_acc);
  EXPECT_EQ(all.channels, reference.channels);
  EXPECT_EQ(all.rpm, reference.rpm);
}

TEST(ModalSimulator, SeedsReproduceAndDiffer) {
  SimulationBlock a, b, c;
  ModalSimulator(small_setup(5)).next(2000, a);
  ModalSimulator(small_setup(5)).next(2000, b);
  ModalSimulator(small_setup(6)).next(2000, c);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.q, b.q);
  EXPECT_NE(a.channels, c.channels);
  EXPECT_NE(a.q, c.q);
}

TEST(ModalSimulator, ChannelsAreModalAccelerationsProjectedScaledPlusNoise) {
  SimulatorSetup setup = small_setup();
  setup.sensors.noise_rms = 0.0;
  const auto s = setup.sensors;
  ModalSimulator simulator(setup);
  SimulationBlock block;
  simulator.next(3000, block);
  double worst = 0.0, peak = 0.0;
  for (std::size_t t = 0; t < 3000; ++t) {
    for (std::size_t c = 0; c < 4; ++c) {
      double expected = 0.0;
      for (std::size_t i = 0; i < 3; ++i)
        expected += s.projection[c * 3 + i] * block.q_acc[t * 3 + i];
      expected *= s.scale[c];
      worst = std::max(worst, std::abs(block.channels[t * 4 + c] - expected));
      peak = std::max(peak, std::abs(expected));
    }
  }
  EXPECT_LE(worst, 1e-14 * peak);
  // The run-up: 900 rpm at t = 0, 1200 at 2 s, 1500 from 4 s on.
  EXPECT_DOUBLE_EQ(block.rpm[0], 900.0);
  EXPECT_DOUBLE_EQ(block.rpm[1000], 1200.0);
  EXPECT_DOUBLE_EQ(block.rpm[2999], 1500.0);
}

TEST(ModalSimulator, AnHourAtOneKilohertzRunsInConstantMemory) {
  // 20 modes, 24 orders, 36 random inputs, 30 channels: the size of a genset run.
  SimulatorSetup s;
  const std::size_t m = 20, n_orders = 24, n_inputs = 36, n_channels = 30;
  for (std::size_t i = 0; i < m; ++i) {
    s.omega_rad_s.push_back(2 * pi * (5.0 + 10.0 * i));
    s.zeta.push_back(0.02);
  }
  s.sample_rate_hz = 1000.0;
  s.harmonic.n_orders = n_orders;
  s.harmonic.modal_cos.assign(m * n_orders, 1.0);
  s.harmonic.modal_sin.assign(m * n_orders, 0.5);
  s.broadband.n_inputs = n_inputs;
  s.broadband.participation.assign(m * n_inputs, 0.1);
  s.broadband.rms = 1.0;
  s.sensors.n_channels = n_channels;
  s.sensors.projection.assign(n_channels * m, 0.2);
  s.sensors.scale.assign(n_channels, 1.0);
  s.sensors.noise_rms = 0.001;
  ModalSimulator simulator(s);
  SimulationBlock block;
  const std::size_t chunk = 4096;
  const std::int64_t total = 3600 * 1000;
  const auto start = std::chrono::steady_clock::now();
  std::size_t heap_after_first_minute = 0;
  double checksum = 0.0;
  while (simulator.position() < total) {
    const auto n =
        static_cast<std::size_t>(std::min<std::int64_t>(chunk, total - simulator.position()));
    simulator.next(n, block);
    checksum += block.channels[0];
    if (heap_after_first_minute == 0 && simulator.position() >= 60000) {
      heap_after_first_minute = mallinfo2().uordblks;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Nothing allocated after the first minute: the heap in use is what it was then.
  EXPECT_EQ(mallinfo2().uordblks, heap_after_first_minute);
  EXPECT_LE(block.q.capacity(), chunk * m);
  EXPECT_LE(block.channels.capacity(), chunk * n_channels);
  EXPECT_TRUE(std::isfinite(checksum));
  std::printf("  one hour at 1 kHz, %zu modes, %zu channels: %.2f s (%.3g channel-samples/s)\n", m,
              n_channels, seconds, 3.6e6 * n_channels / seconds);
  // Generous: ~5 s on a loaded 2-core machine in a release build.
  EXPECT_LT(seconds, 120.0);
}

// ---- run_simulate: archive and truth --------------------------------------------------------

// A synthetic modes file: 8 nodes on a line, 4 modes (one rigid), with node sets.
std::string write_small_modes(const ScratchDir& dir) {
  io::ModesData d;
  const std::size_t n = 8;
  for (std::size_t j = 0; j < n; ++j) {
    d.node_ids.push_back(static_cast<std::int64_t>(100 + j));
    d.coordinates.insert(d.coordinates.end(), {0.5 * j, 0.1 * (j % 2), 0.2 * (j % 3)});
  }
  const double freqs[] = {0.0, 7.0, 19.0, 44.0};
  for (std::size_t k = 0; k < 4; ++k) {
    const double w = 2 * pi * freqs[k];
    d.eigenvalues.push_back(w * w);
    d.frequencies_hz.push_back(freqs[k]);
    d.residuals.push_back(0.0);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t c = 0; c < 3; ++c) d.shapes.push_back(std::sin(1.0 + k + 0.7 * j + 1.9 * c));
    }
  }
  d.nodal_stress.assign(4 * n * 6, 0.0);
  d.node_sets["ENGINE_FEET"] = {100, 101, 102, 103};
  d.node_sets["MOUNT_UPPER"] = {104, 105};
  d.node_sets["FRAME_TOP"] = {106, 107};
  d.units = "SI";
  const std::string path = dir.file("modes.h5");
  io::write_modes(path, d);
  return path;
}

SimulateRequest small_request(const ScratchDir& dir) {
  SimulateRequest r;
  r.modes_path = write_small_modes(dir);
  r.out_path = dir.file("run.h5");
  r.truth_path = dir.file("truth.h5");
  r.truth_accelerations = true;
  r.sensor_set = "frame_top";
  r.channel_unit = "g";
  r.sample_type = io::SampleType::float64;
  r.sample_rate_hz = 400.0;
  r.duration_s = 10.0;
  r.start_time = "2024-03-01T10:00:00Z";
  r.warm_up_s = 1.0;
  r.speed_profile = {{0.0, 800.0}, {5.0, 1500.0}};
  r.broadband_high_hz = 150.0;
  r.chunk_samples = 300;
  return r;
}

TEST(Simulate, ArchiveChannelsArePhiTimesModalAccelerationOnTheirDirections) {
  ScratchDir dir("simulate-projection");
  const SimulateRequest request = small_request(dir);
  const SimulateSummary summary = run_simulate(request);
  // The rigid mode is left out; 2 sensor nodes x 3 axes.
  EXPECT_EQ(summary.excluded_modes, std::vector<std::int64_t>{0});
  ASSERT_EQ(summary.mode_indices, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(summary.load_set_used, "ENGINE_FEET");
  EXPECT_EQ(summary.broadband_set_used, "MOUNT_UPPER");
  EXPECT_EQ(summary.n_broadband_inputs, 6u);

  io::Archive archive({request.out_path});
  ASSERT_EQ(archive.n_channels(), 6u);
  EXPECT_EQ(archive.channels()[4].name, "N107_Y");
  EXPECT_EQ(archive.channels()[4].unit, "g");
  EXPECT_EQ(archive.segments()[0].start_time, "2024-03-01T10:00:00Z");
  const io::TruthReader truth(request.truth_path);
  ASSERT_EQ(truth.n_samples(), 4000);
  ASSERT_EQ(archive.n_samples(0), 4000);
  const auto y = archive.read_chunk(0, 0, 4000);  // m/s^2 (model units), from g
  const auto q = truth.modal_coordinates(0, 4000);
  const auto acc = truth.modal_accelerations(0, 4000);
  const io::ModesData modes = io::read_modes(request.modes_path);
  const std::size_t n_nodes = modes.n_nodes();
  double worst = 0.0, peak = 0.0;
  for (std::size_t t = 0; t < 4000; ++t) {
    for (std::size_t c = 0; c < 6; ++c) {
      const auto& channel = archive.channels()[c];
      const std::size_t node = static_cast<std::size_t>(channel.node_id - 100);
      double expected = 0.0;
      for (std::size_t i = 0; i < 3; ++i) {
        const std::size_t mode = static_cast<std::size_t>(summary.mode_indices[i]);
        for (std::size_t k = 0; k < 3; ++k) {
          expected +=
              channel.direction[k] * modes.shapes[(mode * n_nodes + node) * 3 + k] * acc[t * 3 + i];
        }
      }
      worst = std::max(worst, std::abs(y[t * 6 + c] - expected));
      peak = std::max(peak, std::abs(expected));
    }
  }
  EXPECT_GT(peak, 0.0);
  EXPECT_LE(worst, 1e-13 * peak);  // float64 archive: only the g round trip's rounding
  // q'' is the second derivative of q: central differences agree to (omega dt)^2 / 12 of the
  // highest mode (44 Hz at 400 Hz: 0.05), relative to the acceleration's peak.
  const double dt = 1.0 / 400.0;
  double diff_error = 0.0, acc_peak = 0.0;
  for (std::size_t t = 1; t + 1 < 4000; ++t) {
    for (std::size_t i = 0; i < 3; ++i) {
      const double second =
          (q[(t + 1) * 3 + i] - 2 * q[t * 3 + i] + q[(t - 1) * 3 + i]) / (dt * dt);
      diff_error = std::max(diff_error, std::abs(second - acc[t * 3 + i]));
      acc_peak = std::max(acc_peak, std::abs(acc[t * 3 + i]));
    }
  }
  EXPECT_LE(diff_error, 0.1 * acc_peak);
  const auto speed = truth.speed_rpm(0, 4000);
  EXPECT_DOUBLE_EQ(speed[0], 800.0);
  EXPECT_DOUBLE_EQ(speed[3999], 1500.0);
  EXPECT_EQ(truth.info().mode_indices, summary.mode_indices);
  EXPECT_EQ(truth.archive_files(), std::vector<std::string>{"run.h5"});
}

TEST(Simulate, SegmentFilesJoinIntoTheUnsplitRun) {
  ScratchDir dir("simulate-segments");
  SimulateRequest whole = small_request(dir);
  whole.truth_path.clear();
  run_simulate(whole);
  SimulateRequest split = small_request(dir);
  split.out_path = dir.file("part.h5");
  split.truth_path = dir.file("part-truth.h5");
  split.segment_s = 3.0;
  const SimulateSummary summary = run_simulate(split);
  ASSERT_EQ(summary.archive_files.size(), 4u);
  EXPECT_EQ(summary.archive_files[3], dir.file("part-003.h5"));
  io::Archive joined(summary.archive_files);
  ASSERT_EQ(joined.n_segments(), 1u);
  EXPECT_EQ(joined.n_samples(0), 4000);
  EXPECT_EQ(joined.files()[1].start_time, "2024-03-01T10:00:03Z");
  EXPECT_EQ(joined.files()[3].n_samples, 400);
  io::Archive reference({whole.out_path});
  EXPECT_EQ(joined.read_chunk(0, 0, 4000), reference.read_chunk(0, 0, 4000));
  const io::TruthReader truth(split.truth_path);
  EXPECT_EQ(truth.file_first_sample(), (std::vector<std::int64_t>{0, 1200, 2400, 3600}));
}

TEST(Simulate, BadRequestsAreInputErrors) {
  ScratchDir dir("simulate-bad");
  SimulateRequest r = small_request(dir);
  r.sensor_set = "NO_SUCH_SET";
  EXPECT_THROW(run_simulate(r), InputError);
  r = small_request(dir);
  r.sensors_file = dir.file("nodes.txt");
  std::ofstream(r.sensors_file) << "# sensors\n106\n999\n";
  r.sensor_set.clear();
  try {
    run_simulate(r);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
  r = small_request(dir);
  r.damping = {0.01, 0.02};  // 3 modes used
  EXPECT_THROW(run_simulate(r), InputError);
  r = small_request(dir);
  r.start_time = "2024-03-01 10:00";
  EXPECT_THROW(run_simulate(r), InputError);
  EXPECT_FALSE(fs::exists(dir.file("run.h5")));
}

TEST(Simulate, RigidLoadDistributionReproducesTheResultant) {
  const std::vector<double> points = {0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 2, 0.5, 0.3, 0.1, 1};
  const auto d = rigid_load_distribution(points);
  const std::size_t n = points.size() / 3;
  double cx = 0, cy = 0, cz = 0;
  for (std::size_t j = 0; j < n; ++j) {
    cx += points[3 * j] / n;
    cy += points[3 * j + 1] / n;
    cz += points[3 * j + 2] / n;
  }
  const double r[6] = {1.0, -2.0, 3.0, 0.5, -0.25, 4.0};
  double resultant[6] = {0, 0, 0, 0, 0, 0};
  for (std::size_t j = 0; j < n; ++j) {
    double f[3] = {0, 0, 0};
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < 6; ++k) f[c] += d[(3 * j + c) * 6 + k] * r[k];
      resultant[c] += f[c];
    }
    const double x = points[3 * j] - cx, y = points[3 * j + 1] - cy, z = points[3 * j + 2] - cz;
    resultant[3] += y * f[2] - z * f[1];
    resultant[4] += z * f[0] - x * f[2];
    resultant[5] += x * f[1] - y * f[0];
  }
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(resultant[k], r[k], 1e-12) << k;
}

}  // namespace
}  // namespace vsense::solvers::simulation
