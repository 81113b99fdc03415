// Exact fixed-point accumulation (see exact_sum.hpp).
#include "vsense/solvers/exact_sum.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace vsense::solvers {

void ExactSum::add_at(std::uint64_t bits, int position) noexcept {
  // bits * 2^position, position counted in bits from the grid's bit 0 (position >= 0).
  const int limb = position / 64;
  const int shift = position % 64;
  if (limb >= kLimbs) {
    flags_ |= kInfinite;
    return;
  }
  const std::uint64_t low = bits << shift;
  const std::uint64_t high = shift == 0 ? 0 : bits >> (64 - shift);
  std::uint64_t carry = 0;
  {
    const std::uint64_t before = limbs_[limb];
    limbs_[limb] = before + low;
    carry = limbs_[limb] < before ? 1 : 0;
  }
  // high < 2^52, so high + carry cannot overflow.
  std::uint64_t increment = high + carry;
  for (int i = limb + 1; i < kLimbs && increment != 0; ++i) {
    const std::uint64_t before = limbs_[i];
    limbs_[i] = before + increment;
    increment = limbs_[i] < before ? 1 : 0;
  }
  if (increment != 0) flags_ |= kInfinite;
}

void ExactSum::add(double x) noexcept {
  if (!(x >= 0.0)) {  // negative or NaN
    flags_ |= kInvalid;
    return;
  }
  if (x == 0.0) return;
  if (std::isinf(x)) {
    flags_ |= kInfinite;
    return;
  }
  int exponent = 0;
  const double fraction = std::frexp(x, &exponent);  // x = fraction 2^exponent, [0.5, 1)
  // 53-bit integer mantissa: x = mantissa 2^(exponent - 53).
  std::uint64_t mantissa = static_cast<std::uint64_t>(std::ldexp(fraction, 53));
  int position = exponent - 53 - kLowestExponent;
  if (position < 0) {
    if (position <= -64) return;  // below the grid: counts as 0
    mantissa >>= -position;       // truncated to the grid
    position = 0;
    if (mantissa == 0) return;
  }
  add_at(mantissa, position);
}

void ExactSum::add(const ExactSum& other) noexcept {
  flags_ |= other.flags_;
  std::uint64_t carry = 0;
  for (int i = 0; i < kLimbs; ++i) {
    const std::uint64_t a = limbs_[i], b = other.limbs_[i];
    const std::uint64_t sum = a + b;
    const std::uint64_t c1 = sum < a ? 1 : 0;
    const std::uint64_t total = sum + carry;
    const std::uint64_t c2 = total < sum ? 1 : 0;
    limbs_[i] = total;
    carry = c1 | c2;
  }
  if (carry) flags_ |= kInfinite;
}

double ExactSum::value() const noexcept {
  if (flags_ & kInvalid) return std::numeric_limits<double>::quiet_NaN();
  if (flags_ & kInfinite) return std::numeric_limits<double>::infinity();
  // Top non-zero limb and the next two give more than 53 significant bits; the rest can only
  // matter through rounding, which a fixed procedure settles the same way for equal integers.
  double value = 0.0;
  for (int i = kLimbs - 1; i >= 0; --i) {
    if (limbs_[i] == 0) continue;
    value += std::ldexp(static_cast<double>(limbs_[i]), 64 * i + kLowestExponent);
  }
  return value;
}

ExactSum ExactSum::from_raw(const std::array<std::uint64_t, kLimbs>& limbs,
                            std::uint8_t flags) noexcept {
  ExactSum s;
  s.limbs_ = limbs;
  s.flags_ = flags;
  return s;
}

}  // namespace vsense::solvers
