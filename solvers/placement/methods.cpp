// The placement methods (formulas in solvers/include/vsense/solvers/placement.hpp and README).
//
// Every method works on triaxial nodes: a node is chosen or dropped with its three rows.
// The GEMM-shaped part of each step (scoring all candidates against the current information)
// goes through kernels::BlockScorer, partitioned into chunk-aligned ranges so that the result
// is the same for any number of partitions (ranks); everything of size m x m or |S| x |S| is
// done here on the host.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/placement.hpp"
#include "vsense/solvers/placement.hpp"
#include "vsense/solvers/placement_scoring.hpp"

namespace vsense::solvers::placement {

namespace {

using kernels::BestCandidate;
using kernels::BlockScore;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowBlock = Eigen::Map<const Eigen::Matrix<double, 3, Eigen::Dynamic, Eigen::RowMajor>>;

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();
/// Conditional error variance (relative to sigma^2) below which a node adds nothing; the same
/// rule as the scoring kernels.
constexpr double min_conditional_variance = 1e-10;
/// Smallest loop (in flops) worth a parallel region (thread start and barrier cost more below).
constexpr std::size_t parallel_work = std::size_t{1} << 22;

RowBlock block_of(const Problem& problem, std::size_t i) {
  return RowBlock(problem.blocks.data() + 3 * problem.n_modes * i, 3,
                  static_cast<Eigen::Index>(problem.n_modes));
}

double distance(const Problem& problem, std::size_t a, std::size_t b) {
  const double* x = problem.coordinates.data() + 3 * a;
  const double* y = problem.coordinates.data() + 3 * b;
  return std::sqrt((x[0] - y[0]) * (x[0] - y[0]) + (x[1] - y[1]) * (x[1] - y[1]) +
                   (x[2] - y[2]) * (x[2] - y[2]));
}

/// The candidates split into chunk-aligned partitions, one scorer each; with a collective, one
/// partition per process, of which this process holds only its own.
class PartitionedScorer {
public:
  /// @param blocks [n, 3, m], coordinates [n, 3]: host arrays that outlive the scorer
  PartitionedScorer(const Executor& exec, const double* blocks, const double* coordinates,
                    std::size_t n, std::size_t m, std::size_t partitions, std::size_t chunk,
                    const CandidateCollective* collective)
      : collective_(collective) {
    chunk = chunk > 0 ? chunk : default_scoring_chunk(exec);
    const std::size_t n_chunks = (n + chunk - 1) / chunk;
    if (collective_) partitions = static_cast<std::size_t>(collective_->size());
    partitions = std::max<std::size_t>(partitions, 1);
    const std::size_t per = (n_chunks + partitions - 1) / partitions;
    for (std::size_t p = 0; p < partitions; ++p) {
      const std::size_t begin = std::min(n, p * per * chunk);
      const std::size_t end = std::min(n, (p + 1) * per * chunk);
      begin_.push_back(begin);
      end_.push_back(end);
      if (begin >= end) continue;
      if (collective_ && p != static_cast<std::size_t>(collective_->rank())) continue;
      parts_.push_back(make_block_scorer(exec, begin, end - begin, m, blocks + 3 * m * begin,
                                         coordinates + 3 * begin, chunk));
    }
  }
  PartitionedScorer(const Executor& exec, const Problem& problem, const Options& options)
      : PartitionedScorer(exec, problem.blocks.data(), problem.coordinates.data(),
                          problem.n_candidates(), problem.n_modes, options.partitions,
                          options.chunk, options.collective) {}
  /// The best eligible candidate over all partitions (reduced over the processes).
  BestCandidate best(const kernels::ScoreRequest& request, const std::vector<std::uint8_t>& eligible) {
    ++passes_;
    BestCandidate best;
    for (auto& part : parts_) {
      best = kernels::better(best, part->score(request, eligible.data() + part->offset(), nullptr));
    }
    return collective_ ? collective_->best(best) : best;
  }
  /// Every candidate's score (ineligible: -inf), on every process.
  void all(const kernels::ScoreRequest& request, const std::vector<std::uint8_t>& eligible,
           std::vector<double>& scores) {
    ++passes_;
    for (auto& part : parts_) {
      part->score(request, eligible.data() + part->offset(), scores.data() + part->offset());
    }
    if (collective_) collective_->share(scores, begin_, end_);
  }
  std::size_t passes() const noexcept { return passes_; }

private:
  const CandidateCollective* collective_ = nullptr;
  std::vector<std::unique_ptr<kernels::BlockScorer>> parts_;
  std::vector<std::size_t> begin_, end_;  ///< every partition's range (all processes)
  std::size_t passes_ = 0;
};

/// Eligibility of the candidates: not chosen and not within the minimum distance of a sensor.
class Eligibility {
public:
  Eligibility(const Problem& problem, double min_distance)
      : problem_(problem), min_distance_(min_distance), chosen_(problem.n_candidates(), 0),
        blocked_(problem.n_candidates(), 0) {}
  void add(std::size_t a) {
    chosen_[a] = 1;
    if (min_distance_ > 0.0) update_block(a, +1);
  }
  void remove(std::size_t a) {
    chosen_[a] = 0;
    if (min_distance_ > 0.0) update_block(a, -1);
  }
  bool eligible(std::size_t i) const { return !chosen_[i] && blocked_[i] == 0; }
  std::vector<std::uint8_t> mask() const {
    std::vector<std::uint8_t> out(chosen_.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = eligible(i) ? 1 : 0;
    return out;
  }

private:
  void update_block(std::size_t a, int delta) {
    const std::size_t n = chosen_.size();
#pragma omp parallel for schedule(static) if (n * 8 >= parallel_work)
    for (std::ptrdiff_t ii = 0; ii < static_cast<std::ptrdiff_t>(n); ++ii) {
      const auto i = static_cast<std::size_t>(ii);
      if (distance(problem_, i, a) < min_distance_) blocked_[i] += delta;
    }
  }
  const Problem& problem_;
  double min_distance_;
  std::vector<std::uint8_t> chosen_;
  std::vector<int> blocked_;
};

[[noreturn]] void out_of_candidates(std::size_t placed, const Options& options) {
  throw InputError(fmt::format(
      "only {} of {} sensors could be placed: no eligible candidate is left{}", placed,
      options.n_sensors,
      options.min_distance > 0.0
          ? fmt::format(" (every remaining node is within --min-distance {} of a sensor)",
                        options.min_distance)
          : std::string()));
}

// ---- the forward information engine (d-optimal, min-variance, two-phase) ------------------

/// Criterion model of the forward greedy methods.
///   d-optimal:    maximise  log det(Q0 + Q_S),   Q0 = eps I (the ridge)
///   min-variance: minimise  tr((Q0 + Q_S)^-1 G) / tr(Q0^-1 G),   Q0 = Lambda^-1 (the prior)
struct ForwardModel {
  const Problem* problem = nullptr;
  bool variance = false;
  Eigen::VectorXd prior_information;  ///< [m] diagonal of Q0
  Eigen::MatrixXd g_factor;           ///< [m, r] C with G = C C^T (min-variance)
  double correlation_length = 0.0;
  double variance_scale = 1.0;        ///< tr(Q0^-1 G), so that the criterion starts at 1
};

ForwardModel make_forward_model(const Problem& problem, bool variance,
                                const std::vector<double>& weights, const Options& options) {
  ForwardModel model;
  model.problem = &problem;
  model.variance = variance;
  model.correlation_length = options.correlation_length;
  const std::size_t m = problem.n_modes;
  if (!variance) {
    model.prior_information = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(m),
                                                        information_ridge(problem));
    return model;
  }
  if (problem.response_information.size() != m * m) {
    throw InputError("this method needs the modal stresses (/modes/nodal_stress) of the targets");
  }
  const auto lambda = prior_variances(problem, weights, options.snr);
  model.prior_information.resize(static_cast<Eigen::Index>(m));
  for (std::size_t k = 0; k < m; ++k) model.prior_information[static_cast<Eigen::Index>(k)] = 1.0 / lambda[k];
  const Eigen::Map<const RowMatrix> g(problem.response_information.data(),
                                      static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  const Eigen::MatrixXd g_dense = g;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(g_dense);
  const Eigen::VectorXd values = eig.eigenvalues();
  const double top = values.size() > 0 ? values.maxCoeff() : 0.0;
  if (!(top > 0.0)) {
    throw InputError("the targets' modal stresses are all zero: the stress variance criterion "
                     "is empty (choose other --targets)");
  }
  std::vector<Eigen::Index> kept;
  for (Eigen::Index k = 0; k < values.size(); ++k) {
    if (values[k] > 1e-14 * top) kept.push_back(k);
  }
  model.g_factor.resize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(kept.size()));
  for (std::size_t c = 0; c < kept.size(); ++c) {
    model.g_factor.col(static_cast<Eigen::Index>(c)) =
        eig.eigenvectors().col(kept[c]) * std::sqrt(values[kept[c]]);
  }
  double scale = 0.0;
  for (std::size_t k = 0; k < m; ++k) scale += lambda[k] * g(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k));
  model.variance_scale = scale;
  return model;
}

/// The information of a growing sensor set with exact rank-3 updates.
class ForwardState {
public:
  explicit ForwardState(const ForwardModel& model) : model_(model) { reset({}); }

  /// Q = Q0 + Q_S from scratch (exchanges remove sensors this way).
  void reset(const std::vector<std::size_t>& sensors) {
    selected_ = sensors;
    q_ = information(*model_.problem, sensors, model_.correlation_length);
    q_.diagonal() += model_.prior_information;
    rebuild_correlation();
  }

  const std::vector<std::size_t>& selected() const noexcept { return selected_; }
  const Eigen::MatrixXd& information_matrix() const noexcept { return q_; }

  /// The criterion of the current set (d-optimal: log det; min-variance: relative variance).
  double criterion() const {
    Eigen::LLT<Eigen::MatrixXd> llt(q_);
    if (llt.info() != Eigen::Success) {
      throw NumericalError("placement: the information matrix lost positive definiteness");
    }
    if (!model_.variance) return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    const Eigen::MatrixXd y = llt.matrixL().solve(model_.g_factor);
    return y.squaredNorm() / model_.variance_scale;
  }

  /// Fills the right matrix R = [L^-T | Q^-1 C] (row-major) and, with correlated errors, the
  /// selected nodes' products Phi_a R; returns the request for the scorer.
  kernels::ScoreRequest prepare() {
    const std::size_t m = model_.problem->n_modes;
    Eigen::LLT<Eigen::MatrixXd> llt(q_);
    if (llt.info() != Eigen::Success) {
      throw NumericalError("placement: the information matrix lost positive definiteness");
    }
    const Eigen::MatrixXd l_inv =
        llt.matrixL().solve(Eigen::MatrixXd::Identity(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m)));
    const Eigen::Index k1 = static_cast<Eigen::Index>(m);
    const Eigen::Index k2 = model_.variance ? model_.g_factor.cols() : 0;
    right_.resize(static_cast<Eigen::Index>(m), k1 + k2);
    right_.leftCols(k1) = l_inv.transpose();
    if (k2 > 0) right_.rightCols(k2) = l_inv.transpose() * (l_inv * model_.g_factor);
    kernels::ScoreRequest request;
    request.right = right_.data();
    request.k1 = static_cast<std::size_t>(k1);
    request.k2 = static_cast<std::size_t>(k2);
    request.score = model_.variance ? BlockScore::trace_ratio : BlockScore::log_det_plus;
    if (model_.correlation_length > 0.0 && !selected_.empty()) {
      const std::size_t s = selected_.size(), k = static_cast<std::size_t>(k1 + k2);
      gathered_.resize(3 * s * m);
      selected_coordinates_.resize(3 * s);
      for (std::size_t a = 0; a < s; ++a) {
        const double* src = model_.problem->blocks.data() + 3 * m * selected_[a];
        std::copy(src, src + 3 * m, gathered_.begin() + static_cast<std::ptrdiff_t>(3 * m * a));
        const double* x = model_.problem->coordinates.data() + 3 * selected_[a];
        std::copy(x, x + 3, selected_coordinates_.begin() + static_cast<std::ptrdiff_t>(3 * a));
      }
      selected_products_.resize(3 * s * k);
      host_gemm(3 * s, k, m, gathered_.data(), right_.data(), selected_products_.data());
      correlation_.length = model_.correlation_length;
      correlation_.n_selected = s;
      correlation_.selected_coordinates = selected_coordinates_.data();
      correlation_.selected_inverse = c_inverse_.data();
      correlation_.selected_products = selected_products_.data();
      request.correlation = &correlation_;
    }
    return request;
  }

  /// Adds node j: Q += r_j^T r_j / s_j (r_j = Phi_j, s_j = 1 without correlation).
  void add(std::size_t j) {
    const Problem& problem = *model_.problem;
    Eigen::MatrixXd r = block_of(problem, j);
    double s = 1.0;
    if (model_.correlation_length > 0.0 && !selected_.empty()) {
      const std::size_t n_sel = selected_.size();
      Eigen::VectorXd c(static_cast<Eigen::Index>(n_sel));
      for (std::size_t a = 0; a < n_sel; ++a) {
        c[static_cast<Eigen::Index>(a)] = std::exp(-distance(problem, j, selected_[a]) / model_.correlation_length);
      }
      const Eigen::Map<const RowMatrix> c_inv(c_inverse_.data(), static_cast<Eigen::Index>(n_sel),
                                              static_cast<Eigen::Index>(n_sel));
      const Eigen::VectorXd beta = c_inv * c;
      s = 1.0 - c.dot(beta);
      for (std::size_t a = 0; a < n_sel; ++a) r -= beta[static_cast<Eigen::Index>(a)] * block_of(problem, selected_[a]);
    }
    if (s > min_conditional_variance) q_.noalias() += r.transpose() * r / s;
    q_ = 0.5 * (q_ + q_.transpose()).eval();
    selected_.push_back(j);
    rebuild_correlation();
  }

private:
  void rebuild_correlation() {
    if (model_.correlation_length <= 0.0) return;
    const std::size_t s = selected_.size();
    c_inverse_.resize(s * s);
    if (s == 0) return;  // (Eigen's pseudo-inverse does not take 0 x 0)
    Eigen::MatrixXd c(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(s));
    for (std::size_t a = 0; a < s; ++a) {
      for (std::size_t b = 0; b < s; ++b) {
        c(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b)) =
            std::exp(-distance(*model_.problem, selected_[a], selected_[b]) / model_.correlation_length);
      }
    }
    const Eigen::MatrixXd inverse = c.completeOrthogonalDecomposition().pseudoInverse();
    Eigen::Map<RowMatrix>(c_inverse_.data(), static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(s)) = inverse;
  }

  const ForwardModel& model_;
  std::vector<std::size_t> selected_;
  Eigen::MatrixXd q_;
  RowMatrix right_;
  std::vector<double> c_inverse_;  // [s, s] C_S^-1 (pseudo-inverse)
  std::vector<double> gathered_, selected_coordinates_, selected_products_;
  kernels::ErrorCorrelation correlation_;
};

/// One greedy pick: the best eligible candidate for the current state, added to it.
BestCandidate forward_step(ForwardState& state, PartitionedScorer& scorer, Eligibility& eligibility) {
  const auto request = state.prepare();
  const BestCandidate best = scorer.best(request, eligibility.mask());
  if (best.index < 0) return best;
  const auto j = static_cast<std::size_t>(best.index);
  state.add(j);
  eligibility.add(j);
  return best;
}

void run_forward(const ForwardModel& model, PartitionedScorer& scorer, const Options& options,
                 Result& result) {
  ForwardState state(model);
  Eligibility eligibility(*model.problem, options.min_distance);
  for (std::size_t step = 0; step < options.n_sensors; ++step) {
    const BestCandidate best = forward_step(state, scorer, eligibility);
    if (best.index < 0) out_of_candidates(step, options);
    result.sensors.push_back(static_cast<std::size_t>(best.index));
    result.pick_scores.push_back(best.score);
    result.criterion.push_back(state.criterion());
  }
}

/// The criterion of every prefix of `sensors` (for layouts not built in pick order).
std::vector<double> prefix_criteria(const ForwardModel& model, const std::vector<std::size_t>& sensors) {
  ForwardState state(model);
  std::vector<double> out;
  for (const std::size_t a : sensors) {
    state.add(a);
    out.push_back(state.criterion());
  }
  return out;
}

// ---- backward effective independence ---------------------------------------------------------

/// Nodes removed in one round: the fraction schedule of commercial tools (2.5 % of the nodes
/// up to 1000, 5 % up to 5000, 10 % above) or a fixed fraction; at least one.
std::size_t removal_count(std::size_t alive, std::size_t target, double fraction) {
  double f = fraction;
  if (f < 0.0) f = alive <= 1000 ? 0.025 : (alive <= 5000 ? 0.05 : 0.10);
  const auto k = static_cast<std::size_t>(std::floor(f * static_cast<double>(alive)));
  return std::min(std::max<std::size_t>(k, 1), alive - target);
}

Eigen::MatrixXd gram_of(const Problem& problem, const std::vector<std::uint8_t>& alive) {
  const std::size_t m = problem.n_modes;
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  for (std::size_t i = 0; i < alive.size(); ++i) {
    if (alive[i]) q.noalias() += block_of(problem, i).transpose() * block_of(problem, i);
  }
  return q;
}

/// R = L^-T of Q (row-major) for the EfI scores S_i = Phi_i Q^-1 Phi_i^T.
RowMatrix inverse_factor(const Eigen::MatrixXd& q) {
  Eigen::LLT<Eigen::MatrixXd> llt(q);
  if (llt.info() != Eigen::Success) {
    throw NumericalError("effective independence: the information matrix is not positive definite");
  }
  const Eigen::MatrixXd l_inv = llt.matrixL().solve(Eigen::MatrixXd::Identity(q.rows(), q.cols()));
  return l_inv.transpose();
}

void run_efi(const Executor& exec, const Problem& problem, PartitionedScorer& scorer,
             const Options& options, bool dpr, Result& result) {
  if (options.correlation_length > 0.0) {
    throw InputError("--correlation-length applies to d-optimal, min-variance and two-phase");
  }
  const std::size_t n = problem.n_candidates(), m = problem.n_modes, s = options.n_sensors;
  const double ridge = information_ridge(problem);
  // Driving-point residue DPR_i = sum_k sum_d phi_idk^2 / omega_k (omega clamped as the weights).
  std::vector<double> residue(n, 1.0);
  if (dpr) {
    const auto inv = mode_weights(problem, true, 1.0);  // (omega_1 / omega_k): 1/omega_k up to a constant
    for (std::size_t i = 0; i < n; ++i) {
      double sum = 0.0;
      for (std::size_t row = 0; row < 3; ++row) {
        const double* phi = problem.blocks.data() + (3 * i + row) * m;
        for (std::size_t k = 0; k < m; ++k) sum += phi[k] * phi[k] * inv[k];
      }
      residue[i] = sum;
    }
  }
  // The scorer works on the `active` nodes (problem indices, ascending); when fewer than half
  // of them are alive, the survivors are compacted into a new scorer so that the passes shrink
  // with the candidate set (total work O(n m^2) instead of O(rounds n m^2)).
  std::vector<std::size_t> active(n);
  std::iota(active.begin(), active.end(), std::size_t{0});
  std::vector<double> active_blocks, active_coordinates;
  std::unique_ptr<PartitionedScorer> compacted;
  PartitionedScorer* current = &scorer;
  std::vector<std::uint8_t> alive(n, 1);  // per active node
  std::size_t n_alive = n, n_at_rebuild = n;
  std::vector<std::uint8_t> alive_all(n, 1);  // per problem node
  Eigen::MatrixXd q = gram_of(problem, alive_all);
  std::vector<double> scores(n);
  std::vector<std::size_t> order;
  auto score_alive = [&] {
    Eigen::MatrixXd q_ridge = q;
    q_ridge.diagonal().array() += ridge;
    const RowMatrix right = inverse_factor(q_ridge);
    kernels::ScoreRequest request;
    request.right = right.data();
    request.k1 = m;
    request.score = BlockScore::efi_removal;
    scores.resize(active.size());
    current->all(request, alive, scores);
    if (dpr) {
      for (std::size_t a = 0; a < active.size(); ++a) {
        if (alive[a]) scores[a] *= residue[active[a]];
      }
    }
  };
  while (n_alive > s) {
    score_alive();
    order.clear();
    for (std::size_t a = 0; a < active.size(); ++a) {
      if (alive[a]) order.push_back(a);
    }
    const std::size_t k = removal_count(n_alive, s, options.efi_fraction);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](std::size_t a, std::size_t b) {
                        return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
                      });
    for (std::size_t r = 0; r < k; ++r) {
      alive[order[r]] = 0;
      alive_all[active[order[r]]] = 0;
      q.noalias() -= block_of(problem, active[order[r]]).transpose() * block_of(problem, active[order[r]]);
    }
    n_alive -= k;
    // Downdates lose accuracy as the information shrinks: rebuild from the survivors whenever
    // half of them have gone since the last rebuild (total cost stays O(n m^2)).
    if (2 * n_alive < n_at_rebuild) {
      q = gram_of(problem, alive_all);
      n_at_rebuild = n_alive;
    }
    if (2 * n_alive < active.size() && n_alive > s) {
      std::vector<std::size_t> kept;
      for (std::size_t a = 0; a < active.size(); ++a) {
        if (alive[a]) kept.push_back(active[a]);
      }
      active.swap(kept);
      active_blocks.resize(3 * m * active.size());
      active_coordinates.resize(3 * active.size());
      for (std::size_t a = 0; a < active.size(); ++a) {
        const double* b = problem.blocks.data() + 3 * m * active[a];
        std::copy(b, b + 3 * m, active_blocks.begin() + static_cast<std::ptrdiff_t>(3 * m * a));
        const double* x = problem.coordinates.data() + 3 * active[a];
        std::copy(x, x + 3, active_coordinates.begin() + static_cast<std::ptrdiff_t>(3 * a));
      }
      if (compacted) result.n_scoring_passes += compacted->passes();
      compacted.reset();  // (it borrows the arrays just rewritten)
      compacted = std::make_unique<PartitionedScorer>(exec, active_blocks.data(), active_coordinates.data(),
                                                      active.size(), m, options.partitions, options.chunk,
                                                      options.collective);
      current = compacted.get();
      alive.assign(active.size(), 1);
    }
  }
  // The survivors, best EfI first.
  score_alive();
  std::vector<std::size_t> survivors;
  std::vector<double> survivor_score(n, 0.0);
  for (std::size_t a = 0; a < active.size(); ++a) {
    if (alive[a]) {
      survivors.push_back(active[a]);
      survivor_score[active[a]] = scores[a];
    }
  }
  if (compacted) result.n_scoring_passes += compacted->passes();
  std::stable_sort(survivors.begin(), survivors.end(), [&](std::size_t a, std::size_t b) {
    return survivor_score[a] > survivor_score[b];
  });
  // Minimum distance: keep survivors in that order while they respect it, then fill the gaps
  // with d-optimal additions (the best gain of log det among the allowed nodes).
  Eligibility eligibility(problem, options.min_distance);
  ForwardModel model = make_forward_model(problem, false, {}, options);
  ForwardState state(model);
  for (const std::size_t a : survivors) {
    if (!eligibility.eligible(a)) continue;
    state.add(a);
    eligibility.add(a);
    result.sensors.push_back(a);
    result.pick_scores.push_back(survivor_score[a]);
  }
  while (result.sensors.size() < s) {
    const BestCandidate best = forward_step(state, scorer, eligibility);
    if (best.index < 0) out_of_candidates(result.sensors.size(), options);
    result.sensors.push_back(static_cast<std::size_t>(best.index));
    result.pick_scores.push_back(best.score);
  }
  result.criterion = prefix_criteria(model, result.sensors);
}

// ---- kinetic energy ---------------------------------------------------------------------------

std::vector<double> kinetic_energy(const Problem& problem) {
  const std::size_t n = problem.n_candidates(), m = problem.n_modes;
  std::vector<double> energy(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double* phi = problem.blocks.data() + 3 * m * i;
    double sum = 0.0;
    for (std::size_t e = 0; e < 3 * m; ++e) sum += phi[e] * phi[e];
    energy[i] = sum;
  }
  return energy;
}

void run_kinetic_energy(const Problem& problem, const Options& options, Result& result) {
  const auto energy = kinetic_energy(problem);
  const double total = std::accumulate(energy.begin(), energy.end(), 0.0);
  std::vector<std::size_t> order(energy.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return energy[a] > energy[b]; });
  Eligibility eligibility(problem, options.min_distance);
  double captured = 0.0;
  for (const std::size_t i : order) {
    if (result.sensors.size() == options.n_sensors) break;
    if (!eligibility.eligible(i)) continue;
    eligibility.add(i);
    captured += energy[i];
    result.sensors.push_back(i);
    result.pick_scores.push_back(energy[i]);
    result.criterion.push_back(total > 0.0 ? captured / total : 0.0);
  }
  if (result.sensors.size() < options.n_sensors) out_of_candidates(result.sensors.size(), options);
}

// ---- pivoted QR on triaxial blocks -----------------------------------------------------------

void run_qr(const Problem& problem, PartitionedScorer& scorer, const Options& options,
            Result& result) {
  const std::size_t n = problem.n_candidates(), m = problem.n_modes;
  const auto energy = kinetic_energy(problem);  // ||Phi_i||_F^2
  const double top = *std::max_element(energy.begin(), energy.end());
  std::vector<double> residual = energy;
  Eigen::MatrixXd basis(static_cast<Eigen::Index>(m), 0);
  Eligibility eligibility(problem, options.min_distance);
  std::vector<double> scores(n);
  bool restarted = false;
  while (result.sensors.size() < options.n_sensors) {
    // Pivot: the node whose block has the largest residual (Frobenius) after projecting out
    // the span of the blocks already chosen in this pass.
    std::int64_t pivot = -1;
    for (std::size_t i = 0; i < n; ++i) {
      if (!eligibility.eligible(i)) continue;
      if (pivot < 0 || residual[i] > residual[static_cast<std::size_t>(pivot)]) pivot = static_cast<std::int64_t>(i);
    }
    if (pivot < 0) out_of_candidates(result.sensors.size(), options);
    const auto j = static_cast<std::size_t>(pivot);
    if (residual[j] <= 1e-12 * top || basis.cols() >= static_cast<Eigen::Index>(m)) {
      // The chosen blocks span every mode: start a new pass over the remaining nodes
      // (oversampling, more than m / 3 nodes).
      if (restarted && basis.cols() == 0) out_of_candidates(result.sensors.size(), options);
      basis.resize(static_cast<Eigen::Index>(m), 0);
      residual = energy;
      restarted = true;
      continue;
    }
    restarted = false;
    // New orthonormal directions from the pivot's residual rows (Gram-Schmidt, twice).
    Eigen::MatrixXd rows = block_of(problem, j).transpose();  // m x 3
    Eigen::MatrixXd fresh(static_cast<Eigen::Index>(m), 0);
    const double scale = std::sqrt(energy[j]);
    for (int c = 0; c < 3; ++c) {
      Eigen::VectorXd v = rows.col(c);
      for (int pass = 0; pass < 2; ++pass) {
        if (basis.cols() > 0) v -= basis * (basis.transpose() * v);
        if (fresh.cols() > 0) v -= fresh * (fresh.transpose() * v);
      }
      const double norm = v.norm();
      if (norm > 1e-10 * scale && basis.cols() + fresh.cols() < static_cast<Eigen::Index>(m)) {
        fresh.conservativeResize(Eigen::NoChange, fresh.cols() + 1);
        fresh.col(fresh.cols() - 1) = v / norm;
      }
    }
    result.sensors.push_back(j);
    result.pick_scores.push_back(residual[j]);
    result.criterion.push_back(residual[j]);
    eligibility.add(j);
    if (fresh.cols() == 0) continue;
    // residual_i -= ||Phi_i V_new||_F^2 for every candidate (one GEMM pass, k = new directions).
    const RowMatrix right = fresh;
    kernels::ScoreRequest request;
    request.right = right.data();
    request.k1 = static_cast<std::size_t>(fresh.cols());
    request.score = BlockScore::trace;
    std::vector<std::uint8_t> everyone(n, 1);
    scorer.all(request, everyone, scores);
    for (std::size_t i = 0; i < n; ++i) residual[i] = std::max(0.0, residual[i] - scores[i]);
    basis.conservativeResize(Eigen::NoChange, basis.cols() + fresh.cols());
    basis.rightCols(fresh.cols()) = fresh;
  }
}

// ---- MinMAC -----------------------------------------------------------------------------------

/// Largest and mean off-diagonal MAC of the Gram q (MAC_kl = q_kl^2 / (q_kk q_ll); a mode not
/// seen at all counts as MAC 1 with every other).
std::pair<double, double> mac_of(const Eigen::MatrixXd& q) {
  const Eigen::Index m = q.rows();
  double worst = 0.0, sum = 0.0;
  for (Eigen::Index k = 0; k < m; ++k) {
    for (Eigen::Index l = k + 1; l < m; ++l) {
      const double d = q(k, k) * q(l, l);
      const double mac = d > 0.0 ? q(k, l) * q(k, l) / d : 1.0;
      worst = std::max(worst, mac);
      sum += mac;
    }
  }
  const double pairs = static_cast<double>(m) * static_cast<double>(m - 1) / 2.0;
  return {worst, pairs > 0 ? sum / pairs : 0.0};
}

void run_minmac(const Problem& problem, const Options& options, Result& result) {
  const std::size_t n = problem.n_candidates(), m = problem.n_modes;
  const auto energy = kinetic_energy(problem);
  Eligibility eligibility(problem, options.min_distance);
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  std::vector<double> worst(n), mean(n);
  for (std::size_t step = 0; step < options.n_sensors; ++step) {
    std::int64_t pick = -1;
    if (step == 0) {
      // Seed: the node with the largest kinetic energy (MAC is undefined without sensors).
      for (std::size_t i = 0; i < n; ++i) {
        if (eligibility.eligible(i) && (pick < 0 || energy[i] > energy[static_cast<std::size_t>(pick)])) {
          pick = static_cast<std::int64_t>(i);
        }
      }
    } else {
#pragma omp parallel for schedule(dynamic, 64) if (n * m * m >= parallel_work)
      for (std::ptrdiff_t ii = 0; ii < static_cast<std::ptrdiff_t>(n); ++ii) {
        const auto i = static_cast<std::size_t>(ii);
        if (!eligibility.eligible(i)) continue;
        const double* phi = problem.blocks.data() + 3 * m * i;
        double w = 0.0, sum = 0.0;
        for (std::size_t k = 0; k < m; ++k) {
          const double qkk = q(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k)) +
                             phi[k] * phi[k] + phi[m + k] * phi[m + k] + phi[2 * m + k] * phi[2 * m + k];
          for (std::size_t l = k + 1; l < m; ++l) {
            const double qll = q(static_cast<Eigen::Index>(l), static_cast<Eigen::Index>(l)) +
                               phi[l] * phi[l] + phi[m + l] * phi[m + l] + phi[2 * m + l] * phi[2 * m + l];
            const double qkl = q(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(l)) +
                               phi[k] * phi[l] + phi[m + k] * phi[m + l] + phi[2 * m + k] * phi[2 * m + l];
            const double d = qkk * qll;
            const double mac = d > 0.0 ? qkl * qkl / d : 1.0;
            w = std::max(w, mac);
            sum += mac;
          }
        }
        worst[i] = w;
        mean[i] = sum;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (!eligibility.eligible(i)) continue;
        if (pick < 0) {
          pick = static_cast<std::int64_t>(i);
          continue;
        }
        const auto p = static_cast<std::size_t>(pick);
        if (worst[i] < worst[p] || (worst[i] == worst[p] && mean[i] < mean[p])) pick = static_cast<std::int64_t>(i);
      }
    }
    if (pick < 0) out_of_candidates(step, options);
    const auto j = static_cast<std::size_t>(pick);
    q.noalias() += block_of(problem, j).transpose() * block_of(problem, j);
    eligibility.add(j);
    const double value = mac_of(q).first;
    result.sensors.push_back(j);
    result.pick_scores.push_back(value);
    result.criterion.push_back(value);
  }
}

// ---- two-phase ---------------------------------------------------------------------------------

/// Per candidate, its largest and second largest redundancy with the sensors, and which
/// sensor gives the largest: rho_jb = ||Phi_j W Phi_b^T||_F^2 / (n_j n_b), n_i = ||Phi_i W Phi_i^T||_F.
struct RedundancyTable {
  std::vector<double> first, second;
  std::vector<std::size_t> first_sensor;
};

RedundancyTable redundancy_table(const Problem& problem, const std::vector<std::size_t>& sensors,
                                 const std::vector<double>& weights) {
  const std::size_t n = problem.n_candidates(), m = problem.n_modes, s = sensors.size();
  // right [m, 3 s] = W Phi_S^T
  RowMatrix right(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(3 * s));
  for (std::size_t b = 0; b < s; ++b) {
    for (std::size_t r = 0; r < 3; ++r) {
      const double* phi = problem.blocks.data() + (3 * sensors[b] + r) * m;
      for (std::size_t k = 0; k < m; ++k) right(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(3 * b + r)) = weights[k] * phi[k];
    }
  }
  auto self_norm = [&](std::size_t i) {
    const RowBlock p = block_of(problem, i);
    const Eigen::Map<const Eigen::VectorXd> w(weights.data(), static_cast<Eigen::Index>(m));
    return (p * w.asDiagonal() * p.transpose()).norm();
  };
  std::vector<double> sensor_norm(s);
  for (std::size_t b = 0; b < s; ++b) sensor_norm[b] = self_norm(sensors[b]);
  RedundancyTable table;
  table.first.assign(n, 0.0);
  table.second.assign(n, 0.0);
  table.first_sensor.assign(n, s);
  constexpr std::size_t chunk = 1024;
  std::vector<double> product;
  for (std::size_t begin = 0; begin < n; begin += chunk) {
    const std::size_t count = std::min(chunk, n - begin);
    product.resize(3 * count * 3 * s);
    host_gemm(3 * count, 3 * s, m, problem.blocks.data() + 3 * m * begin, right.data(), product.data());
#pragma omp parallel for schedule(static) if (count * 9 * (m + s) >= parallel_work)
    for (std::ptrdiff_t jj = 0; jj < static_cast<std::ptrdiff_t>(count); ++jj) {
      const auto j = static_cast<std::size_t>(jj);
      const double nj = self_norm(begin + j);
      for (std::size_t b = 0; b < s; ++b) {
        double sq = 0.0;
        for (std::size_t r = 0; r < 3; ++r) {
          for (std::size_t c = 0; c < 3; ++c) {
            const double v = product[(3 * j + r) * 3 * s + 3 * b + c];
            sq += v * v;
          }
        }
        const double d = nj * sensor_norm[b];
        const double rho = d > 0.0 ? sq / d : 0.0;
        const std::size_t i = begin + j;
        if (rho > table.first[i]) {
          table.second[i] = table.first[i];
          table.first[i] = rho;
          table.first_sensor[i] = b;
        } else if (rho > table.second[i]) {
          table.second[i] = rho;
        }
      }
    }
  }
  return table;
}

void run_two_phase(const Problem& problem, PartitionedScorer& scorer, const Options& options,
                   Result& result) {
  const bool weighting = options.mode_weighting.value_or(true);
  const auto weights = mode_weights(problem, weighting, options.weight_exponent);
  const ForwardModel model = make_forward_model(problem, true, weights, options);
  // Phase 1: minimum-variance greedy.
  run_forward(model, scorer, options, result);
  result.phase1_criterion = result.criterion.back();
  std::vector<std::size_t> sensors = result.sensors;
  std::vector<double> pick_scores = result.pick_scores;
  double current = result.phase1_criterion;
  const std::size_t s = sensors.size();
  if (s < 2) return;
  const std::size_t max_exchanges = options.max_exchanges > 0 ? options.max_exchanges : 4 * s;

  // Phase 2: exchanges driven by redundancy. Sensors are tried from the most redundant
  // (largest rho with another sensor) down; sensor a may be replaced by the best node (by the
  // exact min-variance gain for S - a) among those less redundant with S - a than a was; the
  // first exchange that lowers the criterion is kept and the sweep restarts. It ends when no
  // sensor's exchange improves the criterion, so the result is never worse than phase 1.
  ForwardState state(model);
  while (result.n_exchanges < max_exchanges) {
    const auto table = redundancy_table(problem, sensors, weights);
    std::vector<double> own(s);  // max_b rho_ab of each sensor with the other sensors
    for (std::size_t a = 0; a < s; ++a) {
      const std::size_t i = sensors[a];
      own[a] = table.first_sensor[i] == a ? table.second[i] : table.first[i];
    }
    std::vector<std::size_t> order(s);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return own[a] > own[b]; });
    bool improved = false;
    for (const std::size_t a : order) {
      std::vector<std::size_t> rest;
      for (std::size_t b = 0; b < s; ++b) {
        if (b != a) rest.push_back(sensors[b]);
      }
      state.reset(rest);
      Eligibility eligibility(problem, options.min_distance);
      for (const std::size_t b : rest) eligibility.add(b);
      auto mask = eligibility.mask();
      mask[sensors[a]] = 0;
      for (std::size_t i = 0; i < mask.size(); ++i) {
        if (!mask[i]) continue;
        const double rho = table.first_sensor[i] == a ? table.second[i] : table.first[i];
        if (!(rho < own[a])) mask[i] = 0;
      }
      const auto request = state.prepare();
      const BestCandidate best = scorer.best(request, mask);
      if (best.index < 0) continue;
      const auto j = static_cast<std::size_t>(best.index);
      state.add(j);
      const double trial = state.criterion();
      if (trial < current * (1.0 - 1e-12)) {
        spdlog::debug("two-phase: exchange {} -> {} (redundancy {:.3f}), criterion {:.6g} -> {:.6g}",
                      problem.node_ids[sensors[a]], problem.node_ids[j], own[a], current, trial);
        sensors[a] = j;
        pick_scores[a] = best.score;
        current = trial;
        ++result.n_exchanges;
        improved = true;
        break;
      }
    }
    if (!improved) break;
  }
  result.sensors = sensors;
  result.pick_scores = pick_scores;
  result.criterion = prefix_criteria(model, sensors);
}

}  // namespace

Result place(const Executor& exec, const Problem& problem, const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  const std::size_t n = problem.n_candidates(), m = problem.n_modes;
  if (options.n_sensors == 0) throw InputError("--sensors must be at least 1");
  if (n == 0) throw InputError("the candidate set is empty");
  if (options.n_sensors > n) {
    throw InputError(fmt::format("{} sensors requested but there are only {} candidate nodes",
                                 options.n_sensors, n));
  }
  if (options.snr <= 0.0) throw InputError(fmt::format("--snr must be > 0, got {}", options.snr));
  if (options.correlation_length < 0.0 || options.min_distance < 0.0) {
    throw InputError("--correlation-length and --min-distance must not be negative");
  }
  Result result;
  result.method = options.method;
  if (3 * options.n_sensors < m) {
    result.warnings.push_back(fmt::format(
        "{} triaxial sensors give {} channels for {} modes: the modal coordinates are not "
        "identifiable from the sensors alone",
        options.n_sensors, 3 * options.n_sensors, m));
  }
  PartitionedScorer scorer(exec, problem, options);
  switch (options.method) {
    case Method::efi:
    case Method::efi_dpr:
      result.criterion_name = "log det(eps I + Q) of the first k sensors (best EfI first)";
      run_efi(exec, problem, scorer, options, options.method == Method::efi_dpr, result);
      break;
    case Method::kinetic_energy:
      result.criterion_name = "fraction of the candidates' kinetic energy captured";
      run_kinetic_energy(problem, options, result);
      break;
    case Method::qr:
      result.criterion_name = "residual ||Phi_i (I - V V^T)||_F^2 of each pivot";
      run_qr(problem, scorer, options, result);
      break;
    case Method::minmac:
      result.criterion_name = "largest off-diagonal MAC";
      run_minmac(problem, options, result);
      break;
    case Method::d_optimal: {
      result.criterion_name = "log det(eps I + Q)";
      const ForwardModel model = make_forward_model(problem, false, {}, options);
      run_forward(model, scorer, options, result);
      break;
    }
    case Method::min_variance: {
      result.criterion_name = "tr((Lambda^-1 + Q)^-1 G) / tr(Lambda G)";
      const auto weights =
          mode_weights(problem, options.mode_weighting.value_or(false), options.weight_exponent);
      const ForwardModel model = make_forward_model(problem, true, weights, options);
      run_forward(model, scorer, options, result);
      break;
    }
    case Method::two_phase:
      result.criterion_name = "tr((Lambda^-1 + Q)^-1 G) / tr(Lambda G), Lambda weighted";
      run_two_phase(problem, scorer, options, result);
      break;
  }
  result.n_scoring_passes += scorer.passes();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace vsense::solvers::placement
