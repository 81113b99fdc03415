#include "common/modal_compare.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <unordered_map>

namespace vsense::test::modal {

ModeSet from_modes_file(const io::ModesData& data) {
  ModeSet set;
  set.node_ids = data.node_ids;
  set.eigenvalues = data.eigenvalues;
  set.shapes = data.shapes;
  set.nodal_stress = data.nodal_stress;
  return set;
}

ModeSet from_calculix(const calculix::Result& result) {
  ModeSet set;
  set.node_ids = result.node_ids;
  set.eigenvalues = result.eigenvalues;
  set.shapes = result.shapes;
  set.nodal_stress = result.nodal_stress;
  return set;
}

double frequency_hz(double eigenvalue) {
  return std::sqrt(std::max(eigenvalue, 0.0)) / (2.0 * std::numbers::pi);
}

double mac(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::runtime_error("mac: vectors of different length");
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return (aa > 0 && bb > 0) ? (ab * ab) / (aa * bb) : 0.0;
}

std::vector<double> principal_cos2(const std::vector<double>& a, const std::vector<double>& b,
                                   std::size_t rows, std::size_t k) {
  if (a.size() != rows * k || b.size() != rows * k)
    throw std::runtime_error("principal_cos2: sizes don't match rows x k");
  const Eigen::Map<const Eigen::MatrixXd> ma(a.data(), rows, k), mb(b.data(), rows, k);
  const Eigen::MatrixXd qa = Eigen::HouseholderQR<Eigen::MatrixXd>(ma).householderQ() *
                             Eigen::MatrixXd::Identity(rows, k);
  const Eigen::MatrixXd qb = Eigen::HouseholderQR<Eigen::MatrixXd>(mb).householderQ() *
                             Eigen::MatrixXd::Identity(rows, k);
  const Eigen::VectorXd s = Eigen::JacobiSVD<Eigen::MatrixXd>(qa.transpose() * qb).singularValues();
  std::vector<double> out(k);
  for (std::size_t i = 0; i < k; ++i) out[i] = std::min(1.0, s[i] * s[i]);
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t count_rigid_body_modes(const std::vector<double>& eigenvalues, double ratio) {
  // by |lambda|: rigid-body eigenvalues come out as round-off of either sign
  double largest_before = 0;
  for (std::size_t r = 0; r < eigenvalues.size(); ++r) {
    const double f = frequency_hz(std::abs(eigenvalues[r]));
    if (r > 0 && largest_before < ratio * f) return r;
    largest_before = std::max(largest_before, f);
  }
  return 0;
}

std::string Comparison::table() const {
  std::string out = fmt::format(
      "{} common nodes ({} reference nodes missing), rigid-body modes: reference {}, tested "
      "{}\n{:>4} {:>5} {:>16} {:>16} {:>10} {:>12} {:>10} {:>10}\n",
      n_common_nodes, n_missing_nodes, n_rigid, n_rigid_tested, "mode", "group", "f [Hz]",
      "f_ref [Hz]", "rel err", "MAC/cos2", "shape err", "stress err");
  for (const auto& m : modes) {
    out += fmt::format("{:>4} {:>5} {:>16.9g} {:>16.9g} {:>10.2e} {:>12.9f} {:>10.2e} {:>10.2e}{}\n",
                       m.index + 1,
                       m.group_size > 1 ? fmt::format("{}x{}", m.group + 1, m.group_size) : "",
                       m.frequency_hz, m.reference_frequency_hz, m.frequency_rel_error, m.mac,
                       m.shape_error, m.stress_error, m.rigid ? "  rigid" : "");
  }
  return out;
}

namespace {

/// Columns [first, first+k) of a [m, n_nodes, width] array, restricted to `rows` node indices,
/// as a column-major [rows.size()*width, k] matrix.
Eigen::MatrixXd gather(const std::vector<double>& data, std::size_t n_nodes, std::size_t width,
                       const std::vector<std::size_t>& rows, std::size_t first, std::size_t k) {
  Eigen::MatrixXd out(rows.size() * width, k);
  for (std::size_t j = 0; j < k; ++j) {
    const double* mode = data.data() + (first + j) * n_nodes * width;
    for (std::size_t r = 0; r < rows.size(); ++r)
      for (std::size_t c = 0; c < width; ++c) out(r * width + c, j) = mode[rows[r] * width + c];
  }
  return out;
}

/// max |a - b| / max |b| over a column (NaN when b is zero).
double peak_relative_error(const Eigen::VectorXd& a, const Eigen::VectorXd& b, double* peak) {
  const double p = b.cwiseAbs().maxCoeff();
  if (peak) *peak = p;
  if (!(p > 0)) return std::numeric_limits<double>::quiet_NaN();
  return (a - b).cwiseAbs().maxCoeff() / p;
}

}  // namespace

Comparison compare(const ModeSet& tested, const ModeSet& reference, const CompareOptions& options) {
  const std::size_t m_avail = std::min(tested.n_modes(), reference.n_modes());
  if (m_avail < options.n_modes) {
    throw std::runtime_error(fmt::format("compare: {} modes wanted, tested set has {}, reference {}",
                                         options.n_modes, tested.n_modes(), reference.n_modes()));
  }
  const auto check_sizes = [](const ModeSet& s, const char* what) {
    if (s.shapes.size() != s.n_modes() * s.n_nodes() * 3)
      throw std::runtime_error(fmt::format("compare: {} shapes are not [m, n_nodes, 3]", what));
    if (!s.nodal_stress.empty() && s.nodal_stress.size() != s.n_modes() * s.n_nodes() * 6)
      throw std::runtime_error(fmt::format("compare: {} stresses are not [m, n_nodes, 6]", what));
  };
  check_sizes(tested, "tested");
  check_sizes(reference, "reference");

  // common nodes, in the reference's order
  std::unordered_map<std::int64_t, std::size_t> tested_index;
  for (std::size_t i = 0; i < tested.n_nodes(); ++i) tested_index[tested.node_ids[i]] = i;
  std::vector<std::size_t> rows_t, rows_r;
  Comparison out;
  for (std::size_t i = 0; i < reference.n_nodes(); ++i) {
    const auto it = tested_index.find(reference.node_ids[i]);
    if (it == tested_index.end()) {
      ++out.n_missing_nodes;
      continue;
    }
    rows_t.push_back(it->second);
    rows_r.push_back(i);
  }
  out.n_common_nodes = rows_t.size();
  if (rows_t.empty()) throw std::runtime_error("compare: no node id in common");
  const bool with_stress = !tested.nodal_stress.empty() && !reference.nodal_stress.empty();

  std::vector<double> ref_values(reference.eigenvalues.begin(),
                                 reference.eigenvalues.begin() + static_cast<long>(m_avail));
  std::vector<double> tested_values(tested.eigenvalues.begin(),
                                    tested.eigenvalues.begin() + static_cast<long>(m_avail));
  out.n_rigid = count_rigid_body_modes(ref_values, options.rigid_ratio);
  out.n_rigid_tested = count_rigid_body_modes(tested_values, options.rigid_ratio);

  // groups of repeated eigenvalues of the reference: [start, end)
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  std::size_t start = 0;
  if (out.n_rigid > 0) {
    groups.emplace_back(0, out.n_rigid);
    start = out.n_rigid;
  }
  while (start < m_avail) {
    std::size_t end = start + 1;
    while (end < m_avail && std::abs(ref_values[end] - ref_values[end - 1]) <=
                                options.degenerate_rel_gap * std::abs(ref_values[end]))
      ++end;
    groups.emplace_back(start, end);
    start = end;
  }

  for (const auto& [first, last] : groups) {
    if (first >= options.n_modes) break;
    const std::size_t k = last - first;
    const bool rigid = out.n_rigid > 0 && first == 0;
    const Eigen::MatrixXd phi_t = gather(tested.shapes, tested.n_nodes(), 3, rows_t, first, k);
    const Eigen::MatrixXd phi_r = gather(reference.shapes, reference.n_nodes(), 3, rows_r, first, k);
    // the reference expressed in the tested modes' basis: a sign for one mode, the least-squares
    // rotation within the subspace for a group
    Eigen::MatrixXd transform(k, k);
    double group_mac = 0;
    if (k == 1) {
      const double ab = phi_t.col(0).dot(phi_r.col(0));
      const double aa = phi_t.col(0).squaredNorm(), bb = phi_r.col(0).squaredNorm();
      group_mac = (aa > 0 && bb > 0) ? ab * ab / (aa * bb) : 0.0;
      transform(0, 0) = ab < 0 ? -1.0 : 1.0;
    } else {
      std::vector<double> a(phi_t.data(), phi_t.data() + phi_t.size());
      std::vector<double> b(phi_r.data(), phi_r.data() + phi_r.size());
      group_mac = principal_cos2(a, b, static_cast<std::size_t>(phi_t.rows()), k).front();
      transform = phi_r.colPivHouseholderQr().solve(phi_t);
    }
    const Eigen::MatrixXd phi_r_aligned = phi_r * transform;
    Eigen::MatrixXd sigma_t, sigma_r_aligned;
    if (with_stress && !rigid) {
      sigma_t = gather(tested.nodal_stress, tested.n_nodes(), 6, rows_t, first, k);
      sigma_r_aligned =
          gather(reference.nodal_stress, reference.n_nodes(), 6, rows_r, first, k) * transform;
    }
    for (std::size_t j = 0; j < k; ++j) {
      ModeMatch m;
      m.index = first + j;
      m.group = first;
      m.group_size = k;
      m.rigid = rigid;
      m.frequency_hz = frequency_hz(tested.eigenvalues[m.index]);
      m.reference_frequency_hz = frequency_hz(reference.eigenvalues[m.index]);
      m.frequency_rel_error =
          rigid ? 0.0
                : std::abs(m.frequency_hz - m.reference_frequency_hz) / m.reference_frequency_hz;
      m.mac = group_mac;
      m.shape_error = peak_relative_error(phi_t.col(j), phi_r_aligned.col(j), nullptr);
      if (with_stress && !rigid) {
        m.stress_error = peak_relative_error(sigma_t.col(j), sigma_r_aligned.col(j), &m.peak_stress);
      } else {
        m.stress_error = std::numeric_limits<double>::quiet_NaN();
      }
      out.modes.push_back(m);
    }
  }
  return out;
}

}  // namespace vsense::test::modal
