#pragma once
/// @file exact_sum.hpp
/// @brief An exact, order-independent accumulator of non-negative doubles (fixed point).
///
/// Damage sums are taken over cycles that reach the accumulator in an order that depends on how
/// the history was cut (chunks, files, MPI ranks, a resumed run). A floating-point sum, even a
/// compensated one, can differ in the last bits between orders. This accumulator adds every
/// value exactly into a fixed-point integer of 320 bits whose least significant bit is 2^-256
/// (about 8.6e-78) and whose range ends at 2^64 (about 1.8e19): integer addition is associative,
/// so any order gives the same bits. Each addend is truncated to the grid on its own (values
/// below 2^-256 count as 0), which is deterministic too. A sum that would reach 2^64 saturates
/// to +infinity.
#include <array>
#include <cstdint>

namespace vsense::solvers {

class ExactSum {
public:
  static constexpr int kLimbs = 5;
  static constexpr int kLowestExponent = -256;  ///< weight of bit 0 of limb 0

  /// Adds x >= 0 (finite). A negative or NaN x sets the accumulator to NaN; +inf saturates.
  void add(double x) noexcept;
  /// Adds another accumulator exactly.
  void add(const ExactSum& other) noexcept;
  /// The sum as a double (a fixed function of the exact integer, so identical for equal sums).
  double value() const noexcept;
  bool operator==(const ExactSum&) const = default;

  /// Raw state for serialisation: limbs then the flags.
  const std::array<std::uint64_t, kLimbs>& limbs() const noexcept { return limbs_; }
  std::uint8_t flags() const noexcept { return flags_; }
  static ExactSum from_raw(const std::array<std::uint64_t, kLimbs>& limbs,
                           std::uint8_t flags) noexcept;

private:
  void add_at(std::uint64_t bits, int position) noexcept;
  enum : std::uint8_t { kInfinite = 1, kInvalid = 2 };
  std::array<std::uint64_t, kLimbs> limbs_{};  ///< little-endian: limbs_[0] least significant
  std::uint8_t flags_ = 0;
};

}  // namespace vsense::solvers
