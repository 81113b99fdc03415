#pragma once
/// @file placement.hpp
/// @brief Optimal placement of triaxial accelerometers on a modal model.
///
/// Notation (used in every comment of solvers/placement/ and in the README):
/// - candidate node i carries the block Phi_i (3 x m): rows x, y, z, columns the m modes used
///   (mass-normalised shapes, model units); the blocks of all candidates are [n, 3, m].
/// - information of a sensor set S with unit, uncorrelated sensor noise:
///   Q_S = sum_{i in S} Phi_i^T Phi_i (m x m). With the correlated error model
///   Sigma_ab = exp(-d_ab / lambda) I3: Q_S = Phi_S^T (C_S^-1 (x) I3) Phi_S.
/// - stress response information G = sum_t Psi_t^T V Psi_t over the target nodes t, Psi_t the
///   modal stresses (6 x m: xx, yy, zz, xy, yz, zx) and V the 6 x 6 quadratic form of the von
///   Mises stress, vm(s)^2 = s^T V s (exact, not linearised): tr(Cov(e) G) is the expected sum
///   over the targets of vm(e_t)^2 for a stress error e with covariance Cov(e).
/// - modal-displacement weights w_k = (omega_1 / omega_k)^p (p = 3: the modal displacement
///   variance of a mass-normalised mode under white-noise force excitation with equal damping,
///   E[q_k^2] = pi S0 / (2 zeta omega_k^3)); the prior covariance of the modal coordinates is
///   Lambda = s_q^2 diag(w) with s_q^2 chosen so that the mean sensor channel has the
///   signal-to-noise amplitude ratio `snr` (noise sigma = 1).
#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vsense/io/modes_file.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/placement.hpp"

namespace vsense::solvers::placement {

/// The placement strategies (names as on the command line).
enum class Method {
  efi,             ///< "efi": effective independence, triaxial, backward elimination
  efi_dpr,         ///< "efi-dpr": EfI3 weighted by the driving-point residue
  kinetic_energy,  ///< "kinetic-energy": largest modal kinetic energy
  qr,              ///< "qr": pivoted QR on the triaxial blocks
  minmac,          ///< "minmac": forward greedy minimising the largest off-diagonal MAC
  d_optimal,       ///< "d-optimal": forward greedy maximising log det Q
  min_variance,    ///< "min-variance": forward greedy minimising tr(Q^-1 G)
  two_phase,       ///< "two-phase": min-variance with weighting, then redundancy exchanges
};

std::string_view method_name(Method method) noexcept;
/// @throws InputError naming the known methods.
Method parse_method(std::string_view name);
/// Every method, in the order above.
const std::vector<Method>& all_methods();

/// @brief How the candidate set, targets and modes are taken from a modes file.
struct ProblemRequest {
  std::string candidates;            ///< "" = surface nodes of the mesh; else NSET or node file
  std::vector<std::string> exclude;  ///< NSET names or node files removed from the candidates
  std::string targets;               ///< stress target nodes: "" = all nodes; else NSET or file
  std::size_t max_modes = 0;         ///< use the first K modes (after rigid ones); 0 = all
  bool skip_rigid = true;            ///< leave out modes with f < rigid_hz
  double rigid_hz = 0.01;            ///< rigid-body threshold [Hz]
  bool need_stress = true;           ///< build G (stress-based methods and metrics)
  bool keep_target_stress = false;   ///< keep Psi for the metrics
};

/// @brief A placement problem: the candidates' blocks and what the criteria need.
struct Problem {
  std::size_t n_modes = 0;                    ///< m
  std::vector<std::size_t> mode_indices;      ///< [m] zero-based indices into the modes file
  std::vector<double> frequencies_hz;         ///< [m]
  std::vector<std::int64_t> node_ids;         ///< [n] candidate node ids
  std::vector<double> coordinates;            ///< [n, 3] model units
  std::vector<double> blocks;                 ///< [n, 3, m] row-major
  std::vector<double> response_information;   ///< G [m, m] row-major, stress^2 (may be empty)
  std::size_t n_targets = 0;                  ///< stress target nodes in G
  std::vector<double> target_stress;          ///< [m, n_targets, 6] (keep_target_stress only)
  std::string units = "SI";
  std::vector<std::string> notes;             ///< what was decided (rigid modes skipped, ...)
  std::size_t n_candidates() const noexcept { return node_ids.size(); }
};

/// @brief Builds the problem from a modes file.
/// @throws InputError for an empty candidate set, unknown set names or node files, no modes
/// left, or a missing mesh topology when surface candidates are asked for.
Problem make_problem(const io::ModesData& modes, const ProblemRequest& request);

/// @brief Node indices (into modes.node_ids) named by an NSET of the modes file or by a
/// node-list file (one id per line, blank lines and `#` comments allowed). A path that exists
/// is read as a file; otherwise the (case-insensitive) set name is looked up.
/// @param[in] what "candidates", "exclude", ... for the messages
/// @throws InputError naming the file:line, the unknown id, or the unknown set with the list
/// of the model's sets.
std::vector<std::size_t> resolve_node_selection(const io::ModesData& modes,
                                                const std::string& spec,
                                                const std::string& what);

/// @brief The exchanges of a placement whose candidates are shared between processes (MPI ranks;
/// the jobs layer implements it over cluster::Communicator). Process r scores only its share
/// of the candidates (chunk-aligned, so every score has the bits it has in one process); the
/// best candidate of every step is agreed by reduction with kernels::better (larger score, then
/// lower index), so every process takes the same steps and ends with the placement one
/// process finds. Everything else (m x m and |S| x |S| algebra) is repeated on every process.
class CandidateCollective {
public:
  virtual ~CandidateCollective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// The better of every process's `local`, on every process.
  virtual kernels::BestCandidate best(const kernels::BestCandidate& local) const = 0;
  /// @brief Completes `scores` [n] on every process: process r has filled [begin[r], end[r]).
  virtual void share(std::vector<double>& scores, const std::vector<std::size_t>& begin,
                     const std::vector<std::size_t>& end) const = 0;
};

/// @brief Options of one placement run.
struct Options {
  Method method = Method::d_optimal;
  std::size_t n_sensors = 0;
  double min_distance = 0.0;              ///< model length units; 0 = none
  std::optional<bool> mode_weighting;     ///< unset: on for two-phase, off otherwise
  double weight_exponent = 3.0;           ///< p of w_k = (omega_1 / omega_k)^p
  double snr = 100.0;                     ///< RMS signal / RMS noise of the mean channel
  double correlation_length = 0.0;        ///< lambda of exp(-d / lambda); 0 = uncorrelated
  double efi_fraction = -1.0;             ///< per round; < 0: 2.5/5/10 % schedule; 0: one node
  std::size_t partitions = 1;             ///< candidate partitions (ranks); same result for any
  /// Candidates shared between processes (then `partitions` is the process count); null: all
  /// candidates in this process.
  const CandidateCollective* collective = nullptr;
  std::size_t chunk = 0;                  ///< candidates per scoring GEMM; 0 = backend default
  std::size_t max_exchanges = 0;          ///< two-phase; 0 = 4 n_sensors
};

/// @brief The outcome of a placement run.
struct Result {
  Method method = Method::d_optimal;
  std::vector<std::size_t> sensors;     ///< candidate indices, in the order chosen
  std::vector<double> criterion;        ///< [s] the method's criterion after each pick
  std::vector<double> pick_scores;      ///< [s] the score each sensor was chosen with
  std::string criterion_name;           ///< what `criterion` holds
  double phase1_criterion = std::numeric_limits<double>::quiet_NaN();  ///< two-phase only
  std::size_t n_exchanges = 0;          ///< two-phase only
  std::size_t n_scoring_passes = 0;     ///< GEMM passes over the candidates
  double seconds = 0.0;
  std::vector<std::string> warnings;    ///< e.g. fewer sensor channels than modes
};

/// @brief Places options.n_sensors triaxial sensors.
/// @throws InputError for more sensors than candidates, zero sensors, sensors that do not fit
/// with the minimum distance, or options a method does not take.
Result place(const Executor& exec, const Problem& problem, const Options& options);

// ---- criteria (shared with the metrics and the tests) -------------------------------------

/// Modal-displacement weights w_k (max 1), or all ones.
std::vector<double> mode_weights(const Problem& problem, bool weighting, double exponent);

/// Prior variances Lambda_kk = s_q^2 w_k for noise sigma = 1 (see the file comment).
std::vector<double> prior_variances(const Problem& problem, const std::vector<double>& weights,
                                    double snr);

/// The ridge eps of the D-type criteria: 1e-6 x the mean information per node and mode,
/// ||Phi||_F^2 / (n m). It makes log det(eps I + Q_S) finite while 3|S| < m and changes full
/// rank values by ~eps tr(Q^-1).
double information_ridge(const Problem& problem);

/// Information Q_S (m x m) of a sensor set, from scratch (dense correlated form when
/// correlation_length > 0). O(|S|^2 m + |S| m^2).
Eigen::MatrixXd information(const Problem& problem, const std::vector<std::size_t>& sensors,
                            double correlation_length);

/// Redundancy of two triaxial sensors: rho_ab = ||Phi_a W Phi_b^T||_F^2 /
/// (||Phi_a W Phi_a^T||_F ||Phi_b W Phi_b^T||_F) in [0, 1], W = diag(weights) (the cosine between
/// the two sensors' weighted information matrices; 1 = the same information).
double redundancy(const Problem& problem, std::size_t a, std::size_t b,
                  const std::vector<double>& weights);

// ---- metrics (place-bench) -----------------------------------------------------------------

struct MetricsOptions {
  double snr = 100.0;             ///< RMS signal / RMS noise of the mean channel
  double weight_exponent = 3.0;   ///< modal amplitudes of the Monte-Carlo samples
  std::size_t samples = 200;      ///< Monte-Carlo samples
  std::uint64_t seed = 1;
};

/// Quality of a layout, for comparing methods. Sensor noise is uncorrelated with sigma = 1 and
/// the modal amplitudes are q ~ N(0, Lambda_w) (displacement-weighted prior, scaled by `snr`).
/// Two estimators: least squares (LS, the classical modal expansion q^ = Q^-1 Phi_S^T y,
/// error covariance Q^-1; infinite when Q is singular) and Bayesian (q^ = P^-1 Phi_S^T y with
/// P = Lambda_w^-1 + Q, error covariance P^-1: the estimator two-phase optimises for).
/// Stress errors are von Mises equivalents of the error tensors (see G), relative to the
/// signal: trace = tr(Cov G) / tr(Lambda_w G).
struct Metrics {
  double log_det_fim = 0.0;          ///< log det Q_S (sigma = 1); -inf when singular
  double condition_number = 0.0;     ///< of Q_S; inf when singular
  double max_offdiag_mac = 0.0;      ///< of the mode shapes restricted to the sensor DOFs
  double stress_error_trace = 0.0;   ///< LS: tr(Q^-1 G) / tr(Lambda_w G)
  double stress_error_max = 0.0;     ///< LS: max_t E[vm(e_t)^2] / max_t E[vm(sigma_t)^2]
  double monte_carlo_error = 0.0;    ///< LS: sqrt(sum vm(e)^2 / sum vm(sigma)^2), samples x targets
  double bayes_error_trace = 0.0;    ///< Bayesian: tr(P^-1 G) / tr(Lambda_w G)
  double bayes_monte_carlo_error = 0.0;  ///< Bayesian estimator, as monte_carlo_error
  double worst_failure_ratio = 0.0;  ///< LS: max over one failed sensor a of trace(S-a) / trace(S)
  std::int64_t worst_failure_node = -1;     ///< the sensor whose failure costs most
  double worst_failure_log_det_drop = 0.0;  ///< max over a of log det Q_S - log det Q_{S-a}
};

/// @throws InputError when the problem has no target stresses (ProblemRequest::keep_target_stress).
Metrics evaluate(const Problem& problem, const std::vector<std::size_t>& sensors,
                 const MetricsOptions& options);

}  // namespace vsense::solvers::placement
