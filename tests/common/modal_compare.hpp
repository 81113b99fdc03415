#pragma once
/// @file modal_compare.hpp
/// @brief Compares two sets of modes of the same model (vsense's against a reference such as
/// CalculiX) by invariants: relative frequency error, MAC (sign-free), principal angles for
/// repeated eigenvalues, and stress / shape error relative to the mode's peak after matching
/// sign (or, for repeated modes, the rotation within the subspace) through the displacements.
#include <cstdint>
#include <string>
#include <vector>

#include "common/calculix.hpp"
#include "common/tolerances.hpp"
#include "vsense/io/modes_file.hpp"

namespace vsense::test::modal {

/// @brief Modes addressed by node id: what both vsense and the reference provide.
struct ModeSet {
  std::vector<std::int64_t> node_ids;  ///< [n_nodes]
  std::vector<double> eigenvalues;     ///< [m] omega^2 (rad/s)^2, ascending
  std::vector<double> shapes;          ///< [m, n_nodes, 3] mass-normalised
  std::vector<double> nodal_stress;    ///< [m, n_nodes, 6] xx..zx, or empty
  std::size_t n_modes() const noexcept { return eigenvalues.size(); }
  std::size_t n_nodes() const noexcept { return node_ids.size(); }
};

ModeSet from_modes_file(const io::ModesData& data);
ModeSet from_calculix(const calculix::Result& result);

/// @brief Frequency in Hz of an eigenvalue: sqrt(max(lambda, 0)) / (2 pi).
double frequency_hz(double eigenvalue);

/// @brief MAC of two vectors of equal length: (a.b)^2 / ((a.a)(b.b)), 0 when either is zero.
double mac(const std::vector<double>& a, const std::vector<double>& b);

/// @brief cos^2 of the principal angles between span(columns of A) and span(columns of B),
/// smallest first. A, B: [rows, k] column-major, full column rank.
std::vector<double> principal_cos2(const std::vector<double>& a, const std::vector<double>& b,
                                   std::size_t rows, std::size_t k);

/// @brief Number of leading rigid-body modes: the first r >= 1 such that every |frequency|
/// (of |eigenvalue|) before index r is below `ratio` times frequency r (0 when there is no
/// such jump).
std::size_t count_rigid_body_modes(const std::vector<double>& eigenvalues,
                                   double ratio = tolerance::rigid_body_frequency_ratio);

/// @brief How one mode of the tested set compares with the reference.
struct ModeMatch {
  std::size_t index = 0;       ///< mode index (0-based) in both sets
  std::size_t group = 0;       ///< first index of its group of repeated eigenvalues
  std::size_t group_size = 1;  ///< 1 for a non-repeated mode
  bool rigid = false;          ///< in the leading rigid-body group
  double frequency_hz = 0, reference_frequency_hz = 0;
  double frequency_rel_error = 0;  ///< |f - f_ref| / f_ref (0 for rigid modes, not compared)
  /// MAC for a non-repeated mode; for a group, the smallest principal cos^2 of the group.
  double mac = 0;
  double shape_error = 0;   ///< max |phi - phi_ref'| / max |phi_ref'| (phi_ref' sign-matched)
  double stress_error = 0;  ///< likewise for stresses; NaN when not compared (rigid, no data)
  double peak_stress = 0;   ///< max |sigma_ref'| of the mode
};

/// @brief The whole comparison.
struct Comparison {
  std::vector<ModeMatch> modes;   ///< the compared modes, in order
  std::size_t n_rigid = 0;        ///< rigid-body modes of the reference
  std::size_t n_rigid_tested = 0; ///< and of the tested set
  std::size_t n_common_nodes = 0; ///< nodes present in both sets (the comparison runs on these)
  std::size_t n_missing_nodes = 0;  ///< nodes of the reference absent from the tested set
  /// A fixed-width table of every compared mode, for failure messages.
  std::string table() const;
};

struct CompareOptions {
  std::size_t n_modes = 10;  ///< compare modes 0 .. n_modes-1 (a group cut off at the end is
                             ///< completed from the further modes when both sets have them)
  double degenerate_rel_gap = tolerance::degenerate_rel_gap;
  double rigid_ratio = tolerance::rigid_body_frequency_ratio;
};

/// @brief Compares `tested` against `reference` on their common nodes (matched by id).
/// @throws std::runtime_error when either set has fewer than n_modes modes or no common node.
Comparison compare(const ModeSet& tested, const ModeSet& reference, const CompareOptions& options);

}  // namespace vsense::test::modal
