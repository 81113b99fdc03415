#pragma once
/// @file sn_curve.hpp
/// @brief S-N (Woehler) curves for stress ranges, their TOML files, and Miner damage and
/// damage-equivalent stress ranges summed from rainflow cycles.
///
/// All stresses here are stress *ranges* (max - min of a cycle) in the model's stress unit;
/// the file loader converts from the unit the file declares.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vsense/solvers/exact_sum.hpp"
#include "vsense/solvers/rainflow.hpp"

namespace vsense::solvers {

/// Mean-stress correction of the range before the S-N curve is applied. Off by default:
/// welded details (EC3, IIW) are assessed on the range alone.
enum class MeanStressCorrection {
  none,     ///< the range is used as counted
  goodman,  ///< S' = S / (1 - mean / ultimate_strength) for mean > 0; compressive means leave
            ///< S unchanged (a conservative choice); mean >= ultimate_strength is failure
};

/// @brief A Basquin S-N curve with up to two slopes and a cut-off:
///   N(S) = N_ref (S_ref / S)^m1                      for S >= S_knee
///   N(S) = N_knee (S_knee / S)^m2, N_knee = N(S_knee) for S_cut <= S < S_knee (continuous)
///   N(S) = infinity (no damage)                       for S < S_cut or S <= 0
/// Without a knee (knee_range = 0) the first line holds down to the cut-off.
struct SnCurve {
  std::string name;
  double reference_range = 0.0;   ///< S_ref, model stress units
  double reference_cycles = 0.0;  ///< N_ref, cycles to failure at S_ref
  double slope = 3.0;             ///< m1, applies at and above the knee
  double knee_range = 0.0;        ///< S_knee, model stress units; 0 = one slope
  double slope_below_knee = 0.0;  ///< m2, applies between cut-off and knee
  double cutoff_range = 0.0;      ///< S_cut, model stress units; ranges below do no damage; 0 = none
  MeanStressCorrection mean_stress_correction = MeanStressCorrection::none;
  double ultimate_strength = 0.0;  ///< for goodman, model stress units

  /// Cycles to failure at constant range `range` (model units); +infinity below the cut-off.
  double cycles_to_failure(double range) const noexcept;
  /// N at the knee (N_ref when there is no knee).
  double knee_cycles() const noexcept;
  /// N at the cut-off (+infinity when there is none).
  double cutoff_cycles() const noexcept;
  /// The range after mean-stress correction (the range itself when the correction is off);
  /// +infinity when the mean reaches the ultimate strength.
  double corrected_range(double range, double mean) const noexcept;
  /// @throws InputError naming `where` and the offending field for an inconsistent curve.
  void validate(std::string_view where = "S-N curve") const;
};

/// @brief One-slope or two-slope Basquin curve (see SnCurve); validated.
/// @throws InputError for non-positive or inconsistent parameters.
SnCurve make_basquin_curve(double reference_range, double reference_cycles, double slope,
                           double knee_range = 0.0, double slope_below_knee = 0.0,
                           double cutoff_range = 0.0);

/// @brief EN 1993-1-9 curve for direct stress ranges of detail category `detail_category_mpa`
/// (delta_sigma_C in MPa at N_C = 2e6): m = 3 down to the constant-amplitude limit
/// delta_sigma_D = (2/5)^(1/3) delta_sigma_C (N_D = 5e6), m = 5 down to the cut-off
/// delta_sigma_L = (5/100)^(1/5) delta_sigma_D (N_L = 1e8), no damage below.
/// Partial factors: the curve's ranges are divided by gamma_Mf * gamma_Ff (equivalent to
/// checking gamma_Ff * delta_sigma against delta_sigma_R / gamma_Mf).
/// @param[in] model_units_per_mpa 1 for models in MPa (N/mm^2), 1e6 for models in Pa
/// @throws InputError for a category that is not in EN 1993-1-9 Tables 8.1-8.10
///         (160, 140, 125, 112, 100, 90, 80, 71, 63, 56, 50, 45, 40, 36) or factors <= 0.
SnCurve make_eurocode3_curve(double detail_category_mpa, double model_units_per_mpa = 1.0,
                             double partial_factor_material = 1.0,
                             double partial_factor_load = 1.0);

/// @brief Size of a stress unit in Pa: Pa, kPa, MPa, GPa, N/m2 (N/m^2), N/mm2 (N/mm^2), psi, ksi.
/// @throws InputError listing the known units.
double stress_unit_in_pa(std::string_view unit);

/// @brief Reads an S-N curve file (TOML; schema in README "Fatigue"), converting its stresses
/// to `model_stress_unit`.
/// @throws InputError with file, line and key for a missing file, a TOML syntax error, a
///         missing, unknown, mistyped or out-of-range key.
SnCurve load_sn_curve(const std::filesystem::path& file, std::string_view model_stress_unit);

/// @brief Miner damage D = sum n_i / N(S_i) and the damage-equivalent range
/// S_eq = (sum n_i S_i^m / N_eq)^(1/m) per channel, summed from cycles as they are counted
/// (a CycleSink: no cycle is stored). S_i is the mean-stress-corrected range when the curve
/// asks for a correction. m is one slope for all ranges (by default the curve's first slope
/// m1, the usual choice: m = 3 for steel details) and, unlike D, S_eq counts every cycle, also
/// those below the cut-off. Sums are exact (ExactSum: fixed point, order-independent), so the
/// result is bit-identical however the history was cut into chunks, files or MPI ranks and in
/// whatever order the cycles arrive; a day of cycles loses no digits.
class MinerDamage final : public CycleSink {
public:
  /// @param[in] equivalent_slope m of S_eq; 0 = curve.slope
  /// @throws InputError for a bad curve, n_channels < 1 or a negative slope.
  MinerDamage(SnCurve curve, std::int64_t n_channels, double equivalent_slope = 0.0);
  void consume(std::span<const RainflowCycle> cycles) override;

  std::int64_t n_channels() const noexcept { return n_channels_; }
  const SnCurve& curve() const noexcept { return curve_; }
  double equivalent_slope() const noexcept { return equivalent_slope_; }
  /// Miner sum D of one channel.
  double damage(std::int64_t channel) const;
  /// Counted cycles (half cycles count 0.5) of one channel, including non-damaging ones.
  double cycles(std::int64_t channel) const;
  /// S_eq for `n_equivalent` cycles (model stress units).
  double equivalent_range(std::int64_t channel, double n_equivalent) const;
  /// Adds another accumulator of the same curve and channels (e.g. of another MPI rank); exact.
  void add(const MinerDamage& other);

  /// The sums as bytes (native byte order, versioned), for checkpoints and MPI transfers.
  std::vector<std::byte> serialize() const;
  /// Restores the sums written by serialize() into an accumulator of the same curve.
  /// @throws InputError when `bytes` is not a complete state of this many channels and slope.
  void deserialize(std::span<const std::byte> bytes);
  bool operator==(const MinerDamage& other) const;

private:
  SnCurve curve_;
  std::int64_t n_channels_;
  double equivalent_slope_;
  std::vector<ExactSum> damage_;  ///< [n_channels] sum n_i / N_i
  std::vector<ExactSum> moment_;  ///< [n_channels] sum n_i (S_i / S_ref)^m (scaled into range)
  std::vector<ExactSum> cycles_;  ///< [n_channels] sum n_i
};

}  // namespace vsense::solvers
