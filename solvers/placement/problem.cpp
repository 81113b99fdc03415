// Placement problem from a modes file: candidate sets, modes used, the stress information G,
// and the criteria shared by the methods, metrics and tests (formulas in placement.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <unordered_map>

#include "vsense/kernels/errors.hpp"
#include "vsense/model/mesh.hpp"
#include "vsense/io/modes_reader.hpp"
#include "vsense/solvers/placement.hpp"

namespace vsense::solvers::placement {

namespace {

struct MethodName {
  Method method;
  std::string_view name;
};
constexpr MethodName method_names[] = {
    {Method::efi, "efi"},
    {Method::efi_dpr, "efi-dpr"},
    {Method::kinetic_energy, "kinetic-energy"},
    {Method::qr, "qr"},
    {Method::minmac, "minmac"},
    {Method::d_optimal, "d-optimal"},
    {Method::min_variance, "min-variance"},
    {Method::two_phase, "two-phase"},
};

}  // namespace

std::string_view method_name(Method method) noexcept {
  for (const auto& entry : method_names) {
    if (entry.method == method) return entry.name;
  }
  return "?";
}

Method parse_method(std::string_view name) {
  for (const auto& entry : method_names) {
    if (entry.name == name) return entry.method;
  }
  std::vector<std::string> names;
  for (const auto& entry : method_names) names.emplace_back(entry.name);
  throw InputError(fmt::format("unknown placement method '{}' (known: {})", name,
                               fmt::join(names, ", ")));
}

const std::vector<Method>& all_methods() {
  static const std::vector<Method> methods = [] {
    std::vector<Method> out;
    for (const auto& entry : method_names) out.push_back(entry.method);
    return out;
  }();
  return methods;
}

std::vector<std::size_t> resolve_node_selection(const io::ModesData& modes,
                                                const std::string& spec,
                                                const std::string& what) {
  std::unordered_map<std::int64_t, std::size_t> index_of;
  index_of.reserve(modes.n_nodes());
  for (std::size_t i = 0; i < modes.n_nodes(); ++i) index_of.emplace(modes.node_ids[i], i);
  std::vector<std::string> names;
  for (const auto& [name, ids] : modes.node_sets) names.push_back(name);
  return io::resolve_node_spec(
      spec, what,
      [&](std::int64_t id) {
        const auto it = index_of.find(id);
        return it == index_of.end() ? std::int64_t{-1} : static_cast<std::int64_t>(it->second);
      },
      [&](const std::string& name) -> std::optional<std::vector<std::int64_t>> {
        const auto set = modes.node_sets.find(name);
        if (set == modes.node_sets.end()) return std::nullopt;
        return set->second;
      },
      names, modes.source_file.empty() ? std::string("the modes file") : modes.source_file);
}

Problem make_problem(const io::ModesData& modes, const ProblemRequest& request) {
  Problem problem;
  problem.units = modes.units;
  const std::size_t n_nodes = modes.n_nodes();
  const std::size_t n_file_modes = modes.n_modes();

  // ---- modes: rigid-body ones out (they carry no stress), then the first K -----------------
  std::size_t n_rigid = 0;
  for (std::size_t k = 0; k < n_file_modes; ++k) {
    if (request.skip_rigid && modes.frequencies_hz[k] < request.rigid_hz) {
      ++n_rigid;
      continue;
    }
    if (request.max_modes > 0 && problem.mode_indices.size() >= request.max_modes) break;
    problem.mode_indices.push_back(k);
  }
  if (n_rigid > 0) {
    problem.notes.push_back(fmt::format("left out {} rigid-body mode(s) below {} Hz", n_rigid,
                                        request.rigid_hz));
  }
  if (problem.mode_indices.empty()) {
    throw InputError(fmt::format("no modes left to place sensors for ({} in the file, {} below "
                                 "the rigid-body threshold {} Hz)",
                                 n_file_modes, n_rigid, request.rigid_hz));
  }
  const std::size_t m = problem.mode_indices.size();
  problem.n_modes = m;
  for (const std::size_t k : problem.mode_indices) {
    problem.frequencies_hz.push_back(modes.frequencies_hz[k]);
  }

  // ---- candidates ----------------------------------------------------------------------------
  std::vector<std::size_t> candidates;
  if (request.candidates.empty()) {
    if (modes.topology.empty() || modes.n_cells == 0) {
      throw InputError(
          "the modes file has no mesh topology (/mesh/topology) to find the surface nodes: give "
          "--candidates NSET|FILE");
    }
    for (const std::int32_t node : model::surface_nodes(modes.topology, modes.n_cells)) {
      candidates.push_back(static_cast<std::size_t>(node));
    }
    problem.notes.push_back(
        fmt::format("{} surface nodes of {} are candidates", candidates.size(), n_nodes));
  } else {
    candidates = resolve_node_selection(modes, request.candidates, "candidates");
  }
  const std::size_t n_before = candidates.size();
  for (const auto& spec : request.exclude) {
    const auto excluded = resolve_node_selection(modes, spec, "exclude");
    std::vector<std::size_t> kept;
    std::set_difference(candidates.begin(), candidates.end(), excluded.begin(), excluded.end(),
                        std::back_inserter(kept));
    candidates.swap(kept);
  }
  if (candidates.empty()) {
    throw InputError(fmt::format("the candidate set is empty ({} node(s) before the exclusions)",
                                 n_before));
  }
  const std::size_t n = candidates.size();
  problem.node_ids.resize(n);
  problem.coordinates.resize(3 * n);
  problem.blocks.resize(3 * n * m);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t p = candidates[i];
    problem.node_ids[i] = modes.node_ids[p];
    for (int d = 0; d < 3; ++d) problem.coordinates[3 * i + d] = modes.coordinates[3 * p + d];
  }
  // blocks [n, 3, m] from shapes [m_file, n_nodes, 3]
  for (std::size_t kk = 0; kk < m; ++kk) {
    const double* shape = modes.shapes.data() + problem.mode_indices[kk] * n_nodes * 3;
#pragma omp parallel for schedule(static) if (n >= (1u << 15))
    for (std::ptrdiff_t ii = 0; ii < static_cast<std::ptrdiff_t>(n); ++ii) {
      const auto i = static_cast<std::size_t>(ii);
      for (int d = 0; d < 3; ++d) {
        problem.blocks[(3 * i + d) * m + kk] = shape[3 * candidates[i] + d];
      }
    }
  }

  // ---- stress information G = sum_t (E Psi_t)^T (E Psi_t), ||E s||^2 = vm(s)^2 ------------
  if (request.need_stress) {
    std::vector<std::size_t> targets;
    if (request.targets.empty()) {
      targets.resize(n_nodes);
      std::iota(targets.begin(), targets.end(), std::size_t{0});
    } else {
      targets = resolve_node_selection(modes, request.targets, "targets");
      if (targets.empty()) throw InputError(fmt::format("target set '{}' is empty", request.targets));
    }
    const std::size_t nt = targets.size();
    problem.n_targets = nt;
    // equivalent_: [m, nt * 6] rows E Psi per mode: (sxx-syy)/sqrt2, (syy-szz)/sqrt2,
    // (szz-sxx)/sqrt2, sqrt3 sxy, sqrt3 syz, sqrt3 szx.
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> equivalent(m, 6 * nt);
    if (request.keep_target_stress) problem.target_stress.resize(m * nt * 6);
    const double r2 = std::sqrt(0.5), r3 = std::sqrt(3.0);
    for (std::size_t kk = 0; kk < m; ++kk) {
      const double* stress = modes.nodal_stress.data() + problem.mode_indices[kk] * n_nodes * 6;
      double* row = equivalent.data() + kk * 6 * nt;
      double* kept = request.keep_target_stress ? problem.target_stress.data() + kk * nt * 6 : nullptr;
#pragma omp parallel for schedule(static) if (nt >= (1u << 14))
      for (std::ptrdiff_t tt = 0; tt < static_cast<std::ptrdiff_t>(nt); ++tt) {
        const auto t = static_cast<std::size_t>(tt);
        const double* s = stress + 6 * targets[t];
        double* e = row + 6 * t;
        e[0] = r2 * (s[0] - s[1]);
        e[1] = r2 * (s[1] - s[2]);
        e[2] = r2 * (s[2] - s[0]);
        e[3] = r3 * s[3];
        e[4] = r3 * s[4];
        e[5] = r3 * s[5];
        if (kept) std::copy(s, s + 6, kept + 6 * t);
      }
    }
    Eigen::MatrixXd g = equivalent * equivalent.transpose();
    problem.response_information.resize(m * m);
    for (std::size_t r = 0; r < m; ++r) {
      for (std::size_t c = 0; c < m; ++c) {
        problem.response_information[r * m + c] = 0.5 * (g(r, c) + g(c, r));
      }
    }
  }
  return problem;
}

std::vector<double> mode_weights(const Problem& problem, bool weighting, double exponent) {
  std::vector<double> w(problem.n_modes, 1.0);
  if (!weighting) return w;
  // The lowest mode used sets the scale; frequencies at or below zero (rigid modes kept on
  // purpose) are clamped to the smallest positive one so that the weights stay finite.
  double f_min = std::numeric_limits<double>::infinity();
  for (const double f : problem.frequencies_hz) {
    if (f > 0.0) f_min = std::min(f_min, f);
  }
  if (!std::isfinite(f_min)) return w;
  for (std::size_t k = 0; k < problem.n_modes; ++k) {
    const double f = std::max(problem.frequencies_hz[k], f_min);
    w[k] = std::pow(f_min / f, exponent);
  }
  return w;
}

std::vector<double> prior_variances(const Problem& problem, const std::vector<double>& weights,
                                    double snr) {
  const std::size_t m = problem.n_modes, n = problem.n_candidates();
  // Mean channel power per unit modal variance: (1 / 3n) sum_k w_k ||Phi_{:,k}||^2.
  std::vector<double> column_power(m, 0.0);
  for (std::size_t row = 0; row < 3 * n; ++row) {
    const double* phi = problem.blocks.data() + row * m;
    for (std::size_t k = 0; k < m; ++k) column_power[k] += phi[k] * phi[k];
  }
  double power = 0.0;
  for (std::size_t k = 0; k < m; ++k) power += weights[k] * column_power[k];
  power /= static_cast<double>(3 * n);
  if (!(power > 0.0)) {
    throw InputError("the mode shapes are zero at every candidate node: nothing to measure");
  }
  const double scale = snr * snr / power;
  std::vector<double> lambda(m);
  for (std::size_t k = 0; k < m; ++k) lambda[k] = scale * weights[k];
  return lambda;
}

double information_ridge(const Problem& problem) {
  double total = 0.0;
  for (const double v : problem.blocks) total += v * v;
  const double mean = total / static_cast<double>(problem.n_candidates() * problem.n_modes);
  return mean > 0.0 ? 1e-6 * mean : 1e-300;
}

Eigen::MatrixXd information(const Problem& problem, const std::vector<std::size_t>& sensors,
                            double correlation_length) {
  const std::size_t m = problem.n_modes, s = sensors.size();
  using RowBlock = Eigen::Map<const Eigen::Matrix<double, 3, Eigen::Dynamic, Eigen::RowMajor>>;
  auto block = [&](std::size_t i) { return RowBlock(problem.blocks.data() + 3 * m * i, 3, m); };
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(m, m);
  if (correlation_length <= 0.0 || s < 2) {
    for (const std::size_t i : sensors) q.noalias() += block(i).transpose() * block(i);
    return q;
  }
  Eigen::MatrixXd c(s, s);
  for (std::size_t a = 0; a < s; ++a) {
    for (std::size_t b = 0; b < s; ++b) {
      const double* x = problem.coordinates.data() + 3 * sensors[a];
      const double* y = problem.coordinates.data() + 3 * sensors[b];
      const double d = std::sqrt((x[0] - y[0]) * (x[0] - y[0]) + (x[1] - y[1]) * (x[1] - y[1]) +
                                 (x[2] - y[2]) * (x[2] - y[2]));
      c(a, b) = std::exp(-d / correlation_length);
    }
  }
  // The full-rank pseudo-inverse keeps coincident sensors (singular C) meaningful: they count once.
  Eigen::MatrixXd c_inv = c.completeOrthogonalDecomposition().pseudoInverse();
  for (std::size_t a = 0; a < s; ++a) {
    Eigen::MatrixXd z = Eigen::MatrixXd::Zero(3, m);
    for (std::size_t b = 0; b < s; ++b) z += c_inv(a, b) * block(sensors[b]);
    q.noalias() += block(sensors[a]).transpose() * z;
  }
  return 0.5 * (q + q.transpose());
}

double redundancy(const Problem& problem, std::size_t a, std::size_t b,
                  const std::vector<double>& weights) {
  const std::size_t m = problem.n_modes;
  using RowBlock = Eigen::Map<const Eigen::Matrix<double, 3, Eigen::Dynamic, Eigen::RowMajor>>;
  const RowBlock pa(problem.blocks.data() + 3 * m * a, 3, m);
  const RowBlock pb(problem.blocks.data() + 3 * m * b, 3, m);
  const Eigen::Map<const Eigen::VectorXd> w(weights.data(), static_cast<Eigen::Index>(m));
  const Eigen::Matrix3d ab = pa * w.asDiagonal() * pb.transpose();
  const Eigen::Matrix3d aa = pa * w.asDiagonal() * pa.transpose();
  const Eigen::Matrix3d bb = pb * w.asDiagonal() * pb.transpose();
  const double denominator = aa.norm() * bb.norm();
  return denominator > 0.0 ? ab.squaredNorm() / denominator : 0.0;
}

}  // namespace vsense::solvers::placement
