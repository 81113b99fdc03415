#pragma once
/// @file calculix.hpp
/// @brief Runs CalculiX (`ccx`) on a model as an independent reference for vsense's modal
/// results, and parses what it writes.
///
/// What ccx 2.20 gives, and how precisely (this decides what the tests can ask of vsense):
/// - eigenvalues: the .dat table prints 7 significant digits (E14.7). With
///   `*FREQUENCY, STORAGE=YES` ccx also writes the binary `<job>.eig`, whose header holds the
///   eigenvalues in full double precision; the harness takes those, after checking them against
///   the .dat to its 7 digits.
/// - mode shapes and nodal stresses: the ASCII .frd, 6 significant digits (E12.5). Shapes are
///   mass-normalised (ccx scales every eigenvector to Phi^T M Phi = 1); stresses are per unit
///   modal displacement, extrapolated from the integration points and averaged at the nodes.
///   The .frd lists only nodes of elements with two or more nodes (not those carrying only
///   MASS or SPRING1 elements, nor unused ones).
/// - mass: a second, static step with `*EL PRINT, TOTALS=ONLY` of EMAS prints the mass and the
///   centre of gravity of each element set (7 digits). ccx's EMAS covers continuum elements
///   only: point masses (*MASS) are not included.
/// - the eigen-solve: ccx uses ARPACK in shift-invert mode (shift 1 (rad/s)^2) with a tolerance
///   of 1e-2 and ncv = 5 * nev hard-wired in `frequencies.f`; neither can be set from the deck.
///   The only lever is the number of modes asked for, so the harness asks for more than it is
///   told to (see Options::extra_modes): a larger Krylov space converges the low modes further.
/// - ccx returns 0 even when it stops on an input error, so failure is recognised by
///   `*ERROR` in its output or missing result files.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vsense::test::calculix {

/// @brief The ccx executable: $VSENSE_CCX if set, else `ccx` (searched on PATH).
std::string executable();

/// @brief True when the ccx executable can be found. Tests that need it call
/// `GTEST_SKIP() << calculix::unavailable_message()` otherwise.
bool available();

/// @brief "CalculiX (ccx) not found ..." with what was looked for.
std::string unavailable_message();

/// @brief What to ask ccx for.
struct Options {
  int n_modes = 12;  ///< modes wanted (all of them are returned)
  /// Extra modes requested beyond n_modes: nev = max(2 * n_modes, n_modes + extra_modes).
  /// When the model is too small for that (ARPACK needs 5 * nev <= number of equations), the
  /// harness retries with n_modes.
  int extra_modes = 12;
  double time_limit_s = 120.0;  ///< wall clock per ccx run; exceeded -> std::runtime_error
  bool nodal_stress = true;     ///< request S in the .frd (with U)
  /// Element sets whose EMAS totals are printed in a static step. Empty: every ELSET named
  /// on a *SOLID SECTION card of the model file (its *INCLUDEs are not followed). Set
  /// `mass = false` to skip the static step.
  std::vector<std::string> mass_elsets;
  bool mass = true;
};

/// @brief Mass of the continuum elements as printed by ccx (7 significant digits).
struct SolidMass {
  double total_mass = 0.0;                 ///< model units (kg in SI)
  double centre_of_mass[3] = {0, 0, 0};    ///< model units
  std::vector<std::string> elsets;         ///< the element sets summed
};

/// @brief One result block of an .frd file.
struct FrdBlock {
  std::string name;         ///< "DISP", "STRESS", ...
  int step_index = 0;       ///< the PSTEP counter
  int mode = 0;             ///< NUMSTP of the 100C record (mode number in a frequency step)
  double value = 0.0;       ///< VALUE of the 100C record (frequency in Hz in a frequency step)
  std::string analysis;     ///< "MODAL", "STATIC", ...
  int n_components = 0;     ///< values per node actually present in the records
  std::vector<std::int64_t> node_ids;  ///< [n], in file order
  std::vector<double> values;          ///< [n, n_components]
};

/// @brief Parses an ASCII .frd (long or short format; binary format is rejected).
/// @throws std::runtime_error with file:line on malformed records.
std::vector<FrdBlock> parse_frd(const std::string& path);

/// @brief One row of the .dat eigenvalue table.
struct DatEigenvalue {
  int mode = 0;
  double eigenvalue = 0.0;         ///< omega^2 (rad/s)^2, 7 digits
  double omega = 0.0;              ///< real part, rad/s
  double frequency_hz = 0.0;       ///< real part, cycles/s
  double omega_imaginary = 0.0;    ///< rad/s (nonzero for negative eigenvalues)
};

/// @brief The (last) EIGENVALUE OUTPUT table of a .dat file's text.
std::vector<DatEigenvalue> parse_dat_eigenvalues(const std::string& dat_text);

/// @brief "total mass" / "center of gravity" of each set printed by *EL PRINT EMAS.
struct DatSetMass {
  std::string elset;
  double mass = 0.0;
  double centre[3] = {0, 0, 0};
};
std::vector<DatSetMass> parse_dat_masses(const std::string& dat_text);

/// @brief Eigenvalues (omega^2) from the header of a binary .eig file (STORAGE=YES);
/// nullopt when the file is absent or its header is not the one understood here.
std::optional<std::vector<double>> read_eig_eigenvalues(const std::string& path);

/// @brief ELSET names on the *SOLID SECTION cards of an .inp file (upper-cased).
std::vector<std::string> solid_section_elsets(const std::string& inp_path);

/// @brief Everything the harness got from one ccx run.
struct Result {
  std::vector<double> eigenvalues;     ///< [m] omega^2, (rad/s)^2, ccx's order (ascending)
  std::vector<double> frequencies_hz;  ///< [m] sqrt(max(eigenvalue, 0)) / (2 pi)
  /// Significant digits of `eigenvalues`: 16 when taken from the .eig, 7 from the .dat.
  int eigenvalue_digits = 7;
  std::vector<std::int64_t> node_ids;  ///< [n_nodes] nodes of the .frd DISP blocks, in order
  std::unordered_map<std::int64_t, std::size_t> node_index;  ///< id -> position in node_ids
  std::vector<double> shapes;          ///< [m, n_nodes, 3] mass-normalised, model units
  std::vector<double> nodal_stress;    ///< [m, n_nodes, 6] xx, yy, zz, xy, yz, zx (may be empty)
  std::optional<SolidMass> solid_mass; ///< when Options::mass
  int n_modes_requested = 0;           ///< nev actually asked of ccx
  double wall_s = 0.0;                 ///< ccx run time(s), all attempts
  std::string log;                     ///< ccx's stdout and stderr of the run used

  std::size_t n_modes() const noexcept { return eigenvalues.size(); }
  std::size_t n_nodes() const noexcept { return node_ids.size(); }
};

/// @brief Writes a deck `*INCLUDE`-ing `model_inp` (absolute path; pure model data, no *STEP),
/// with a *FREQUENCY step (and a static EMAS step), runs ccx on it in a scratch directory and
/// parses the results.
/// @throws std::runtime_error when ccx is missing, fails, exceeds the time limit, or its
/// outputs are inconsistent (counts, .eig vs .dat, .frd frequencies vs eigenvalues).
Result run_frequency(const std::string& model_inp, const Options& options = {});

/// @brief A transient response by modal superposition (*MODAL DYNAMIC after *FREQUENCY),
/// with fixed increments. ccx prints with one FREQUENCY for every output of a step, so the
/// harness runs the deck twice: once printing the displacements of `print_nodes` at every
/// increment (.dat, 7 significant digits), once writing the nodal stresses of the whole model
/// every `stress_every` increments (.frd, 6 digits). The dynamics are the same in both runs.
struct ModalDynamicRequest {
  std::string model_inp;      ///< model data only (no *STEP)
  int n_modes = 6;            ///< modes of the *FREQUENCY step (all are superposed)
  double damping_ratio = 0.02;  ///< *MODAL DAMPING for every mode
  double time_step_s = 1e-4;
  int n_steps = 1000;         ///< the step lasts n_steps * time_step_s
  /// Concentrated loads: node, DOF (1..3), and the force at t = k dt, k = 0 .. n_steps
  /// (an *AMPLITUDE table; linear in between, as ccx integrates it).
  struct Load {
    std::int64_t node = 0;
    int dof = 1;
    std::vector<double> force;
  };
  std::vector<Load> loads;
  std::vector<std::int64_t> print_nodes;
  int stress_every = 10;
  double time_limit_s = 300.0;
};

struct ModalDynamicResult {
  /// [n_steps + 1, print_nodes, 3]: row k is t = k dt (row 0, at rest, is zero).
  std::vector<double> displacement;
  /// Stress frames: increment index k (t = k dt), and [n_frames, n_nodes, 6] at stress_nodes.
  std::vector<int> stress_steps;
  std::vector<std::int64_t> stress_nodes;
  std::vector<double> stress;
  std::vector<double> frequencies_hz;  ///< of the *FREQUENCY step (.dat, 7 digits)
  double wall_s = 0.0;
};

/// @throws std::runtime_error when ccx is missing or fails, or its output is incomplete.
ModalDynamicResult run_modal_dynamic(const ModalDynamicRequest& request);

}  // namespace vsense::test::calculix
