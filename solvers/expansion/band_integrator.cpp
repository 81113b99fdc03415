// Band-limited double integration by an FIR of exact compact support (design in
// reconstruction.hpp), applied block by block with FFTW (overlap-save on a fixed block grid).
#include <fftw3.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numbers>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/reconstruction.hpp"

namespace vsense::solvers::reconstruction {

namespace {

/// FFTW's planner is not thread-safe; execution of distinct plans is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

struct FftwBuffer {
  explicit FftwBuffer(std::size_t bytes) : data(fftw_malloc(bytes)) {
    if (!data) throw std::bad_alloc();
  }
  ~FftwBuffer() { fftw_free(data); }
  FftwBuffer(const FftwBuffer&) = delete;
  FftwBuffer& operator=(const FftwBuffer&) = delete;
  void* data;
};

std::size_t next_power_of_two(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

/// Linear convolution of two real sequences through FFTW (sizes up to millions of taps).
std::vector<double> convolve(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n_out = a.size() + b.size() - 1;
  const std::size_t n = next_power_of_two(n_out);
  FftwBuffer xa(sizeof(double) * n), xb(sizeof(double) * n);
  FftwBuffer fa(sizeof(fftw_complex) * (n / 2 + 1)), fb(sizeof(fftw_complex) * (n / 2 + 1));
  auto* ra = static_cast<double*>(xa.data);
  auto* rb = static_cast<double*>(xb.data);
  auto* ca = static_cast<fftw_complex*>(fa.data);
  auto* cb = static_cast<fftw_complex*>(fb.data);
  fftw_plan pa, pb, pc;
  {
    std::lock_guard<std::mutex> lock(planner_mutex());
    pa = fftw_plan_dft_r2c_1d(static_cast<int>(n), ra, ca, FFTW_ESTIMATE);
    pb = fftw_plan_dft_r2c_1d(static_cast<int>(n), rb, cb, FFTW_ESTIMATE);
    pc = fftw_plan_dft_c2r_1d(static_cast<int>(n), ca, ra, FFTW_ESTIMATE);
  }
  std::fill(ra, ra + n, 0.0);
  std::fill(rb, rb + n, 0.0);
  std::copy(a.begin(), a.end(), ra);
  std::copy(b.begin(), b.end(), rb);
  fftw_execute(pa);
  fftw_execute(pb);
  for (std::size_t i = 0; i < n / 2 + 1; ++i) {
    const double re = ca[i][0] * cb[i][0] - ca[i][1] * cb[i][1];
    const double im = ca[i][0] * cb[i][1] + ca[i][1] * cb[i][0];
    ca[i][0] = re / static_cast<double>(n);
    ca[i][1] = im / static_cast<double>(n);
  }
  fftw_execute(pc);
  std::vector<double> out(ra, ra + n_out);
  {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftw_destroy_plan(pa);
    fftw_destroy_plan(pb);
    fftw_destroy_plan(pc);
  }
  return out;
}

/// beta of a Kaiser kernel whose spectrum is below eps/2 of its DC value beyond the mainlobe
/// (the continuous Kaiser spectrum is beta/sinh(beta) at the mainlobe's edge, then decays).
double kaiser_beta(double eps) {
  double lo = 1.0, hi = 60.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid / std::sinh(mid) > 0.5 * eps) lo = mid; else hi = mid;
  }
  return hi;
}

/// x with erfc(x) = eps.
double erfc_inverse(double eps) {
  double lo = 0.0, hi = 10.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (std::erfc(mid) > eps) lo = mid; else hi = mid;
  }
  return hi;
}

}  // namespace

struct BandIntegrator::Fft {
  std::size_t n = 0, group = 0;
  std::unique_ptr<FftwBuffer> real, spectrum;
  fftw_plan forward = nullptr, backward = nullptr;
  ~Fft() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    if (forward) fftw_destroy_plan(forward);
    if (backward) fftw_destroy_plan(backward);
  }
};

BandIntegrator::BandIntegrator(double sample_rate_hz, double low_hz, double high_hz,
                               std::size_t n_modes, std::size_t fft_size)
    : sample_rate_hz_(sample_rate_hz), low_hz_(low_hz), high_hz_(high_hz), n_modes_(n_modes) {
  check_band(sample_rate_hz, low_hz, high_hz);
  const double nyquist = 0.5 * sample_rate_hz;
  if (n_modes == 0) throw InputError("integration: no modes");
  const double dt = 1.0 / sample_rate_hz;
  const double eps = design_tolerance;

  // Low corner: Kaiser kernel g, then g2 = 2g - g*g; p_k = dt^2/2 (|k| - sum_j g2_j |k - j|).
  const double beta = kaiser_beta(eps);
  const double window_s = 1.02 * beta / (std::numbers::pi * low_hz);
  const auto l1 = static_cast<std::int64_t>(std::ceil(0.5 * window_s * sample_rate_hz));
  if (l1 > (std::int64_t{1} << 26)) {
    throw InputError(fmt::format("--band low corner {} Hz needs a filter of {} s at {} Hz: "
                                 "raise the low corner",
                                 low_hz, window_s, sample_rate_hz));
  }
  std::vector<double> g(static_cast<std::size_t>(2 * l1 + 1));
  const double i0_beta = std::cyl_bessel_i(0.0, beta);
  double g_sum = 0.0;
  for (std::int64_t j = -l1; j <= l1; ++j) {
    const double x = static_cast<double>(j) / static_cast<double>(l1);
    const double v = std::cyl_bessel_i(0.0, beta * std::sqrt(std::max(0.0, 1.0 - x * x))) / i0_beta;
    g[static_cast<std::size_t>(j + l1)] = v;
    g_sum += v;
  }
  for (double& v : g) v /= g_sum;
  std::vector<double> g2 = convolve(g, g);  // [4 l1 + 1], centred at 2 l1
  for (std::size_t i = 0; i < g2.size(); ++i) {
    g2[i] = -g2[i];
    const std::int64_t j = static_cast<std::int64_t>(i) - 2 * l1;
    if (j >= -l1 && j <= l1) g2[i] += 2.0 * g[static_cast<std::size_t>(j + l1)];
  }
  const std::int64_t l2p = 2 * l1;  // half-length of p
  std::vector<double> p(static_cast<std::size_t>(2 * l2p + 1), 0.0);
  {
    // Prefix sums A(k) = sum_{j<=k} g2_j, B(k) = sum_{j<=k} j g2_j; S(k) = sum_j g2_j |k - j| =
    // k (2 A(k) - A_tot) - 2 B(k) + B_tot. Computed for k >= 0 and mirrored (exact symmetry).
    double a_tot = 0.0, b_tot = 0.0;
    for (std::int64_t j = -l2p; j <= l2p; ++j) {
      a_tot += g2[static_cast<std::size_t>(j + l2p)];
      b_tot += static_cast<double>(j) * g2[static_cast<std::size_t>(j + l2p)];
    }
    double a = 0.0, b = 0.0;
    for (std::int64_t j = -l2p; j < 0; ++j) {
      a += g2[static_cast<std::size_t>(j + l2p)];
      b += static_cast<double>(j) * g2[static_cast<std::size_t>(j + l2p)];
    }
    for (std::int64_t k = 0; k <= l2p; ++k) {
      a += g2[static_cast<std::size_t>(k + l2p)];
      b += static_cast<double>(k) * g2[static_cast<std::size_t>(k + l2p)];
      const double kd = static_cast<double>(k);
      const double s = kd * (2.0 * a - a_tot) - 2.0 * b + b_tot;
      const double value = 0.5 * dt * dt * (kd - s);
      p[static_cast<std::size_t>(l2p + k)] = value;
      p[static_cast<std::size_t>(l2p - k)] = value;
    }
  }

  // High corner and the sinc^2 correction: q = IDFT(sinc^2(theta/2) T(f)), T an erf taper from
  // 1 at high_hz to eps at the stop frequency.
  const double stop_hz = std::min(nyquist, high_hz + 0.25 * nyquist);
  const double centre = 0.5 * (high_hz + stop_hz), half_width = 0.5 * (stop_hz - high_hz);
  const double sigma = half_width / (std::sqrt(2.0) * erfc_inverse(eps));
  std::vector<double> q;
  for (std::size_t nd = std::size_t{1} << 16; nd <= (std::size_t{1} << 24); nd <<= 1) {
    FftwBuffer spec(sizeof(fftw_complex) * (nd / 2 + 1)), time(sizeof(double) * nd);
    auto* c = static_cast<fftw_complex*>(spec.data);
    auto* r = static_cast<double*>(time.data);
    fftw_plan plan;
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      plan = fftw_plan_dft_c2r_1d(static_cast<int>(nd), c, r, FFTW_ESTIMATE);
    }
    for (std::size_t j = 0; j <= nd / 2; ++j) {
      const double f = static_cast<double>(j) * sample_rate_hz / static_cast<double>(nd);
      const double half_theta = std::numbers::pi * f * dt;
      const double sinc = j == 0 ? 1.0 : std::sin(half_theta) / half_theta;
      const double taper = 0.5 * std::erfc((f - centre) / (std::sqrt(2.0) * sigma));
      c[j][0] = sinc * sinc * taper / static_cast<double>(nd);
      c[j][1] = 0.0;
    }
    fftw_execute(plan);
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      fftw_destroy_plan(plan);
    }
    double peak = 0.0;
    for (std::size_t k = 0; k < nd; ++k) peak = std::max(peak, std::abs(r[k]));
    const double threshold = 1e-2 * eps * peak;
    std::size_t l2 = 0;
    for (std::size_t k = 0; k <= nd / 2; ++k) {
      if (std::abs(r[k]) > threshold) l2 = k;
    }
    if (l2 < nd / 8 || nd == (std::size_t{1} << 24)) {
      q.assign(2 * l2 + 1, 0.0);
      for (std::size_t k = 0; k <= l2; ++k) {
        q[l2 + k] = r[k];
        q[l2 - k] = r[k];
      }
      break;
    }
  }
  taps_ = convolve(p, q);  // [2 (l2p + l2) + 1], centred
  // Exactly symmetric (zero phase): the FFT convolution leaves round-off asymmetries.
  for (std::size_t k = 1, c = (taps_.size() - 1) / 2; k <= c; ++k) {
    const double mean = 0.5 * (taps_[c + k] + taps_[c - k]);
    taps_[c + k] = taps_[c - k] = mean;
  }

  // Block FFT: a power of two at least 4 times the filter, and large enough to be efficient.
  const std::size_t length = taps_.size();
  if (fft_size == 0) {
    fft_size = std::max<std::size_t>(next_power_of_two(4 * length), 1 << 14);
  } else if (fft_size <= 2 * (length - 1) + 1 || (fft_size & (fft_size - 1)) != 0) {
    throw InputError(fmt::format("integration: FFT size {} must be a power of two larger than "
                                 "{} (twice the filter's half-length {} plus one)",
                                 fft_size, 2 * (length - 1) + 1, (length - 1) / 2));
  }
  fft_size_ = fft_size;
  group_ = std::min<std::size_t>(n_modes_, 16);

  fft_ = std::make_unique<Fft>();
  fft_->n = fft_size_;
  fft_->group = group_;
  fft_->real = std::make_unique<FftwBuffer>(sizeof(double) * fft_size_ * group_);
  fft_->spectrum = std::make_unique<FftwBuffer>(sizeof(fftw_complex) * (fft_size_ / 2 + 1) * group_);
  {
    // One plan for `group` interleaved columns: element (t, c) at t * group + c.
    const int n = static_cast<int>(fft_size_);
    const int howmany = static_cast<int>(group_);
    std::lock_guard<std::mutex> lock(planner_mutex());
    fft_->forward = fftw_plan_many_dft_r2c(
        1, &n, howmany, static_cast<double*>(fft_->real->data), nullptr, howmany, 1,
        static_cast<fftw_complex*>(fft_->spectrum->data), nullptr, howmany, 1, FFTW_ESTIMATE);
    fft_->backward = fftw_plan_many_dft_c2r(
        1, &n, howmany, static_cast<fftw_complex*>(fft_->spectrum->data), nullptr, howmany, 1,
        static_cast<double*>(fft_->real->data), nullptr, howmany, 1, FFTW_ESTIMATE);
  }
  if (!fft_->forward || !fft_->backward) throw NumericalError("integration: FFTW planning failed");

  // Spectrum of the taps placed at 0 .. 2L (the output of index 2L + t is sample t0 + t).
  {
    FftwBuffer time(sizeof(double) * fft_size_), spec(sizeof(fftw_complex) * (fft_size_ / 2 + 1));
    auto* r = static_cast<double*>(time.data);
    auto* c = static_cast<fftw_complex*>(spec.data);
    fftw_plan plan;
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      plan = fftw_plan_dft_r2c_1d(static_cast<int>(fft_size_), r, c, FFTW_ESTIMATE);
    }
    std::fill(r, r + fft_size_, 0.0);
    std::copy(taps_.begin(), taps_.end(), r);
    fftw_execute(plan);
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      fftw_destroy_plan(plan);
    }
    spectrum_.resize(fft_size_ / 2 + 1);
    for (std::size_t j = 0; j < spectrum_.size(); ++j) {
      spectrum_[j] = std::complex<double>(c[j][0], c[j][1]) / static_cast<double>(fft_size_);
    }
  }
}

BandIntegrator::~BandIntegrator() = default;

void BandIntegrator::check_band(double sample_rate_hz, double low_hz, double high_hz) {
  const double nyquist = 0.5 * sample_rate_hz;
  if (!(sample_rate_hz > 0.0) || !std::isfinite(sample_rate_hz)) {
    throw InputError(fmt::format("integration: sample rate {} Hz is not positive", sample_rate_hz));
  }
  if (!(low_hz > 0.0) || !(high_hz > low_hz) || !(high_hz <= 0.9 * nyquist + 1e-9 * nyquist)) {
    throw InputError(fmt::format(
        "--band {}:{} Hz is not a band 0 < LO < HI <= {} Hz (0.9 of the Nyquist frequency "
        "{} Hz of the {} Hz archive, leaving room for the taper above HI)",
        low_hz, high_hz, 0.9 * nyquist, nyquist, sample_rate_hz));
  }
}

double BandIntegrator::ideal(double frequency_hz) noexcept {
  const double w = 2.0 * std::numbers::pi * frequency_hz;
  return -1.0 / (w * w);
}

double BandIntegrator::response(double frequency_hz) const {
  const std::size_t l = half_length();
  const double theta = 2.0 * std::numbers::pi * frequency_hz / sample_rate_hz_;
  double sum = taps_[l];
  for (std::size_t k = 1; k <= l; ++k) {
    sum += 2.0 * taps_[l + k] * std::cos(theta * static_cast<double>(k));
  }
  return sum;
}

void BandIntegrator::apply(const double* in, std::size_t n_out, double* out) {
  const std::size_t l = half_length(), n = fft_size_, m = n_modes_, group = group_;
  const std::size_t n_in = n_out + 2 * l;
  if (n_in > n) {
    throw InputError(fmt::format("integration: block of {} samples does not fit the FFT size {}",
                                 n_out, n));
  }
  auto* real = static_cast<double*>(fft_->real->data);
  auto* spec = static_cast<fftw_complex*>(fft_->spectrum->data);
  for (std::size_t c0 = 0; c0 < m; c0 += group) {
    const std::size_t cols = std::min(group, m - c0);
    for (std::size_t t = 0; t < n_in; ++t) {
      const double* src = in + t * m + c0;
      double* dst = real + t * group;
      for (std::size_t c = 0; c < cols; ++c) dst[c] = src[c];
      for (std::size_t c = cols; c < group; ++c) dst[c] = 0.0;
    }
    std::fill(real + n_in * group, real + n * group, 0.0);
    fftw_execute(fft_->forward);
    for (std::size_t j = 0; j < n / 2 + 1; ++j) {
      const double hr = spectrum_[j].real(), hi = spectrum_[j].imag();
      for (std::size_t c = 0; c < group; ++c) {
        double* x = spec[j * group + c];
        const double re = x[0] * hr - x[1] * hi;
        const double im = x[0] * hi + x[1] * hr;
        x[0] = re;
        x[1] = im;
      }
    }
    fftw_execute(fft_->backward);
    for (std::size_t t = 0; t < n_out; ++t) {
      const double* src = real + (2 * l + t) * group;
      double* dst = out + t * m + c0;
      for (std::size_t c = 0; c < cols; ++c) dst[c] = src[c];
    }
  }
}

}  // namespace vsense::solvers::reconstruction
