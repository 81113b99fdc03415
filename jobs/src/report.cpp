// The report stage: numbers from the job's outputs (C++), CSVs, PNG plots (embedded matplotlib
// script), one HTML page.
#include "vsense/jobs/report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>
#include <spdlog/spdlog.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "vsense/io/hdf5.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/io/placement_file.hpp"
#include "vsense/io/truth_file.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/rainflow.hpp"
#include "vsense/solvers/sn_curve.hpp"
#include "vsense/version.hpp"

namespace vsense::jobs {

namespace fs = std::filesystem;

namespace {

constexpr const char* plot_script_text =
#include "report_plots_script.inc"
    ;

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- stress equivalents ------------------------------------------------------------------------
/// s: xx, yy, zz, xy, yz, zx
double von_mises(const double* s) {
  const double a = s[0] - s[1], b = s[1] - s[2], c = s[2] - s[0];
  return std::sqrt(0.5 * (a * a + b * b + c * c) + 3.0 * (s[3] * s[3] + s[4] * s[4] + s[5] * s[5]));
}

double max_principal(const double* s) {
  Eigen::Matrix3d t;
  t << s[0], s[3], s[5], s[3], s[1], s[4], s[5], s[4], s[2];
  return Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d>(t, Eigen::EigenvaluesOnly)
      .eigenvalues()
      .maxCoeff();
}

/// The fatigue equivalent of the job: von Mises, von Mises with the sign of the hydrostatic
/// stress (tension positive), or the largest principal stress.
enum class Equivalent { von_mises, signed_von_mises, max_principal };

Equivalent equivalent_of(const std::string& name) {
  if (name == "von-mises") return Equivalent::von_mises;
  if (name == "max-principal") return Equivalent::max_principal;
  return Equivalent::signed_von_mises;
}

/// E[vm(s)^2] = tr(V S) for the second-moment matrix S = E[s s^T] of a stress (6 x 6).
double von_mises_second_moment(const Eigen::Matrix<double, 6, 6>& s) {
  // vm^2 = s^T V s, V the von Mises quadratic form.
  static const Eigen::Matrix<double, 6, 6> v = [] {
    Eigen::Matrix<double, 6, 6> m = Eigen::Matrix<double, 6, 6>::Zero();
    m.topLeftCorner<3, 3>() << 1.0, -0.5, -0.5, -0.5, 1.0, -0.5, -0.5, -0.5, 1.0;
    m(3, 3) = m(4, 4) = m(5, 5) = 3.0;
    return m;
  }();
  return (v.cwiseProduct(s)).sum();
}

solvers::ResidueTreatment residue_of(const std::string& name) {
  if (name == "closed") return solvers::ResidueTreatment::closed;
  if (name == "discard") return solvers::ResidueTreatment::discard;
  return solvers::ResidueTreatment::half_cycles;
}

// ---- small file helpers ----------------------------------------------------------------------
std::string html(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}g}", v, digits);
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw IoError(fmt::format("{}: cannot write", path.string()));
}

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    rows.push_back(std::move(cells));
  }
  return rows;
}

/// Rows [first, first + n) of a 2-D or 3-D dataset, restricted to index `column` of dimension
/// 1 for 3-D datasets ([n_samples, p, 6] -> [n, 6]); as double.
std::vector<double> read_hyperslab(const std::string& path, const std::string& dataset,
                                   hsize_t first, hsize_t n, std::optional<hsize_t> column) {
  const io::hdf5::File file(path, io::hdf5::File::Mode::read);
  const auto shape = file.shape(dataset);
  const io::hdf5::Handle set(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set) throw InputError(fmt::format("{}: cannot open {}", path, dataset));
  const io::hdf5::Handle space(H5Dget_space(set.get()), H5Sclose);
  std::vector<hsize_t> start(shape.size(), 0), count(shape);
  start[0] = first;
  count[0] = n;
  if (column && shape.size() == 3) {
    start[1] = *column;
    count[1] = 1;
  }
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  hsize_t total = 1;
  for (const auto c : count) total *= c;
  const io::hdf5::Handle memory(H5Screate_simple(1, &total, nullptr), H5Sclose);
  std::vector<double> out(total);
  if (H5Dread(set.get(), H5T_NATIVE_DOUBLE, memory.get(), space.get(), H5P_DEFAULT, out.data()) <
      0) {
    throw InputError(fmt::format("{}: cannot read {} rows {}..{}", path, dataset, first, first + n));
  }
  return out;
}

// ---- what the report knows --------------------------------------------------------------------
struct Results {
  bool present = false;
  std::vector<std::int64_t> node_ids;
  std::vector<double> von_mises_max;
  std::vector<double> damage;  ///< empty without an S-N curve
  std::vector<double> noise;   ///< RMS von Mises of the sensor noise in the estimate (may be empty)
  double channel_noise_rms = std::numeric_limits<double>::quiet_NaN();
  double settle_s = 0.0;
  bool has_stress_history = false;
  std::int64_t history_samples = 0;
};

Results read_results(const std::string& path) {
  Results r;
  if (path.empty()) return r;
  const io::hdf5::File file(path, io::hdf5::File::Mode::read);
  r.present = true;
  r.node_ids = file.read_int64("/results/node_ids");
  r.von_mises_max = file.read_double("/results/von_mises_max");
  if (file.exists("/results/damage")) r.damage = file.read_double("/results/damage");
  if (file.exists("/results/von_mises_noise_rms")) {
    r.noise = file.read_double("/results/von_mises_noise_rms");
  }
  if (file.has_attribute("/results", "channel_noise_rms")) {
    r.channel_noise_rms = file.double_attribute("/results", "channel_noise_rms");
  }
  if (file.has_attribute("/results", "settle_s")) {
    r.settle_s = file.double_attribute("/results", "settle_s");
  }
  if (file.exists("/results/stress")) {
    r.has_stress_history = true;
    r.history_samples = static_cast<std::int64_t>(file.shape("/results/stress").front());
  }
  return r;
}

/// True stress statistics at some nodes over the simulated record.
struct TrueStress {
  std::vector<double> von_mises_max;  ///< [p]
  std::vector<double> damage;         ///< [p] (empty without a curve)
  std::vector<double> history;        ///< [n_window, k] von Mises of the first k nodes
  std::int64_t window_first = 0, window_samples = 0;
};

/// One pass over the truth: stresses at `nodes` (indices into the modes file), maxima and
/// damage between `skip` samples at each end, and the von Mises history of the first
/// `history_nodes` nodes over the window.
TrueStress true_stress(const io::ModesData& modes, const io::TruthReader& truth,
                       const std::vector<std::size_t>& nodes, const solvers::SnCurve* curve,
                       const FatigueSpec& fatigue, std::int64_t skip, std::int64_t window_first,
                       std::int64_t window_samples, std::size_t history_nodes) {
  const std::size_t p = nodes.size();
  const auto& idx = truth.info().mode_indices;
  const std::size_t m = idx.size();
  const std::size_t n_nodes = modes.n_nodes();
  // psi: [m, p * 6], the modal stresses of the truth's modes at the nodes.
  RowMatrix psi(m, p * 6);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < p; ++j) {
      for (int c = 0; c < 6; ++c) {
        psi(i, 6 * j + c) =
            modes.nodal_stress[(static_cast<std::size_t>(idx[i]) * n_nodes + nodes[j]) * 6 + c];
      }
    }
  }
  TrueStress out;
  out.von_mises_max.assign(p, 0.0);
  out.window_first = window_first;
  out.window_samples = window_samples;
  const std::size_t k = std::min(history_nodes, p);
  out.history.assign(static_cast<std::size_t>(window_samples) * k, 0.0);
  solvers::RainflowCounter counter(static_cast<std::int64_t>(std::max<std::size_t>(p, 1)));
  std::unique_ptr<solvers::MinerDamage> miner;
  if (curve != nullptr) {
    miner = std::make_unique<solvers::MinerDamage>(*curve, static_cast<std::int64_t>(p));
  }
  solvers::CycleCollector discard;  // cycles go nowhere without a curve
  solvers::CycleSink& sink = miner ? static_cast<solvers::CycleSink&>(*miner) : discard;

  const std::int64_t n = truth.n_samples();
  const std::int64_t block = 16384;
  std::vector<double> eq;
  const Equivalent kind = equivalent_of(fatigue.equivalent);
  for (std::int64_t first = 0; first < n; first += block) {
    const std::int64_t rows = std::min(block, n - first);
    const std::vector<double> q = truth.modal_coordinates(first, rows);
    const Eigen::Map<const RowMatrix> qm(q.data(), rows, static_cast<Eigen::Index>(m));
    const RowMatrix s = qm * psi;  // [rows, p * 6]
    const std::int64_t lo = std::max(first, skip) - first;
    const std::int64_t hi = std::min(first + rows, n - skip) - first;
    if (lo < hi) {
      eq.assign(static_cast<std::size_t>(hi - lo) * p, 0.0);
      for (std::int64_t r = lo; r < hi; ++r) {
        const double* row = s.data() + r * static_cast<std::int64_t>(p * 6);
        for (std::size_t j = 0; j < p; ++j) {
          const double* stress = row + 6 * j;
          const double vm = von_mises(stress);
          out.von_mises_max[j] = std::max(out.von_mises_max[j], vm);
          double e = vm;
          if (kind == Equivalent::signed_von_mises) {
            if (stress[0] + stress[1] + stress[2] < 0.0) e = -vm;
          } else if (kind == Equivalent::max_principal) {
            e = max_principal(stress);
          }
          eq[static_cast<std::size_t>(r - lo) * p + j] = e;
        }
      }
      if (p > 0) counter.process(eq.data(), hi - lo, sink);
      if (!miner) discard.clear();
    }
    for (std::int64_t r = std::max(first, window_first);
         r < std::min(first + rows, window_first + window_samples); ++r) {
      const double* row = s.data() + (r - first) * static_cast<std::int64_t>(p * 6);
      for (std::size_t j = 0; j < k; ++j) {
        out.history[static_cast<std::size_t>(r - window_first) * k + j] = von_mises(row + 6 * j);
      }
    }
  }
  if (miner) {
    counter.finish(residue_of(fatigue.residue), *miner);
    for (std::size_t j = 0; j < p; ++j) {
      out.damage.push_back(miner->damage(static_cast<std::int64_t>(j)));
    }
  }
  return out;
}

/// E[vm^2] at every node from the second moments of the truth's modal coordinates.
std::vector<double> true_von_mises_rms(const io::ModesData& modes, const io::TruthReader& truth) {
  const auto& idx = truth.info().mode_indices;
  const auto m = static_cast<Eigen::Index>(idx.size());
  Eigen::MatrixXd second = Eigen::MatrixXd::Zero(m, m);
  const std::int64_t n = truth.n_samples();
  for (std::int64_t first = 0; first < n; first += 65536) {
    const std::int64_t rows = std::min<std::int64_t>(65536, n - first);
    const std::vector<double> q = truth.modal_coordinates(first, rows);
    const Eigen::Map<const RowMatrix> qm(q.data(), rows, m);
    second.noalias() += qm.transpose() * qm;
  }
  second /= static_cast<double>(std::max<std::int64_t>(n, 1));
  const std::size_t n_nodes = modes.n_nodes();
  std::vector<double> rms(n_nodes, 0.0);
  Eigen::Matrix<double, 6, Eigen::Dynamic> psi(6, m);
  for (std::size_t t = 0; t < n_nodes; ++t) {
    for (Eigen::Index i = 0; i < m; ++i) {
      for (int c = 0; c < 6; ++c) {
        psi(c, i) = modes.nodal_stress[(static_cast<std::size_t>(idx[i]) * n_nodes + t) * 6 + c];
      }
    }
    const Eigen::Matrix<double, 6, 6> s = psi * second * psi.transpose();
    rms[t] = std::sqrt(std::max(0.0, von_mises_second_moment(s)));
  }
  return rms;
}

/// Indices of the k largest values (ties: lower index first).
std::vector<std::size_t> top_k(const std::vector<double>& values, std::size_t k) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      return values[a] > values[b] || (values[a] == values[b] && a < b);
                    });
  order.resize(k);
  return order;
}

// ---- plots ---------------------------------------------------------------------------------
}  // namespace

std::string find_report_python(const std::string& given, std::string& why) {
  std::vector<std::string> tries;
  if (!given.empty()) {
    tries.push_back(given);
  } else if (const char* env = std::getenv("VSENSE_PYTHON"); env != nullptr && *env != '\0') {
    tries.emplace_back(env);  // the user's choice, and only that
  } else {
    tries.emplace_back("python3");
    tries.emplace_back("/usr/bin/python3");  // the system's, where python3 on PATH is another
  }
  for (const auto& python : tries) {
    const std::string probe =
        fmt::format("'{}' -c 'import matplotlib' > /dev/null 2>&1", python);
    if (std::system(probe.c_str()) == 0) return python;
  }
  why = fmt::format("{} with matplotlib was not found (Debian: apt-get install "
                    "python3-matplotlib; or set VSENSE_PYTHON to an interpreter that has it)",
                    fmt::join(tries, " or "));
  return "";
}

namespace {

struct Plot {
  std::string file, title, caption;
  bool wanted = false;  ///< its data exist
};

std::string stress_unit_label(const std::string& units) { return units == "mm-t-s" ? "MPa" : "MPa"; }
double stress_scale(const std::string& units) { return units == "mm-t-s" ? 1.0 : 1e-6; }

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

}  // namespace

ReportSummary write_report(const ReportRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const JobSpec& job = *request.job;
  ReportSummary summary;
  const fs::path dir(request.report_dir);
  fs::create_directories(dir);
  const double scale = stress_scale(job.units);
  const std::string su = stress_unit_label(job.units);

  // ---- data ------------------------------------------------------------------------------------
  spdlog::info("report: reading {}", request.modes_path);
  const io::ModesData modes = io::read_modes(request.modes_path);
  {
    std::string csv = "mode,frequency_hz\n";
    for (std::size_t i = 0; i < modes.frequencies_hz.size(); ++i) {
      csv += fmt::format("{},{:.12g}\n", i + 1, modes.frequencies_hz[i]);
    }
    write_text(dir / "frequencies.csv", csv);
  }
  {
    std::string csv = "x,y,z\n";
    const std::size_t stride = std::max<std::size_t>(1, modes.n_nodes() / 20000);
    for (std::size_t i = 0; i < modes.n_nodes(); i += stride) {
      csv += fmt::format("{:.6g},{:.6g},{:.6g}\n", modes.coordinates[3 * i],
                         modes.coordinates[3 * i + 1], modes.coordinates[3 * i + 2]);
    }
    write_text(dir / "mesh_points.csv", csv);
  }
  std::map<std::int64_t, std::size_t> node_index;
  for (std::size_t i = 0; i < modes.n_nodes(); ++i) node_index[modes.node_ids[i]] = i;

  io::PlacementData placement;
  const bool have_placement = !request.placement_path.empty() && fs::exists(request.placement_path);
  if (have_placement) placement = io::read_placement(request.placement_path);
  {
    std::string csv = "method,order,node_id,x,y,z,used\n";
    const fs::path layouts = fs::path(request.comparison_dir) / "layouts.csv";
    if (!request.comparison_dir.empty() && fs::exists(layouts)) {
      const auto rows = read_csv(layouts);
      for (std::size_t r = 1; r < rows.size(); ++r) {
        if (rows[r].size() < 6) continue;
        csv += fmt::format("{},{},{},{},{},{},{}\n", rows[r][0], rows[r][1], rows[r][2],
                           rows[r][3], rows[r][4], rows[r][5],
                           rows[r][0] == job.placement.use ? 1 : 0);
      }
    } else if (have_placement) {
      for (std::size_t k = 0; k < placement.node_ids.size(); ++k) {
        const auto it = node_index.find(placement.node_ids[k]);
        if (it == node_index.end()) continue;
        const std::size_t i = it->second;
        csv += fmt::format("{},{},{},{:.9g},{:.9g},{:.9g},1\n", placement.method, k + 1,
                           placement.node_ids[k], modes.coordinates[3 * i],
                           modes.coordinates[3 * i + 1], modes.coordinates[3 * i + 2]);
      }
    }
    if (have_placement) write_text(dir / "sensors.csv", csv);
  }
  std::vector<std::vector<std::string>> comparison;
  if (!request.comparison_dir.empty()) {
    const fs::path csv = fs::path(request.comparison_dir) / "place_bench.csv";
    if (fs::exists(csv)) {
      comparison = read_csv(csv);
      fs::copy_file(csv, dir / "comparison.csv", fs::copy_options::overwrite_existing);
    }
  }

  const Results results = read_results(request.results_path);
  std::unique_ptr<io::TruthReader> truth;
  if (!request.truth_path.empty() && fs::exists(request.truth_path)) {
    truth = std::make_unique<io::TruthReader>(request.truth_path);
  }
  std::unique_ptr<solvers::SnCurve> curve;
  if (job.fatigue.enabled) {
    curve = std::make_unique<solvers::SnCurve>(
        solvers::load_sn_curve(job.fatigue.sn_curve, job.units == "mm-t-s" ? "MPa" : "Pa"));
  }

  // Worst nodes: by estimated damage (else estimated peak von Mises) when the reconstruction
  // ran; else by the true RMS von Mises of the simulation.
  const std::size_t k_worst = static_cast<std::size_t>(job.report.worst_nodes);
  std::vector<std::size_t> worst;        // indices into the modes file
  std::vector<std::size_t> worst_in_results;  // indices into the results (when present)
  std::string worst_by;
  std::vector<double> rms;
  if (results.present) {
    const bool by_damage = !results.damage.empty();
    worst_in_results = top_k(by_damage ? results.damage : results.von_mises_max, k_worst);
    worst_by = by_damage ? "estimated fatigue damage" : "estimated peak von Mises stress";
    for (const auto r : worst_in_results) {
      const auto it = node_index.find(results.node_ids[r]);
      if (it == node_index.end()) {
        throw InputError(fmt::format("{}: node {} is not in the modes file {}",
                                     request.results_path, results.node_ids[r],
                                     request.modes_path));
      }
      worst.push_back(it->second);
    }
  } else if (truth) {
    spdlog::info("report: RMS von Mises of the true response at {} nodes", modes.n_nodes());
    rms = true_von_mises_rms(modes, *truth);
    worst = top_k(rms, k_worst);
    worst_by = "true RMS von Mises stress (simulation)";
  }
  for (const auto w : worst) summary.worst_nodes.push_back(modes.node_ids[w]);

  // Scatter nodes: the worst, then about 100 of the results' nodes evenly spaced.
  std::vector<std::size_t> scatter_results = worst_in_results;
  if (results.present) {
    const std::size_t n = results.node_ids.size();
    const std::size_t stride = std::max<std::size_t>(1, n / 100);
    for (std::size_t r = 0; r < n; r += stride) {
      if (std::find(scatter_results.begin(), scatter_results.end(), r) == scatter_results.end()) {
        scatter_results.push_back(r);
      }
    }
  }
  std::vector<std::size_t> true_nodes = worst;
  for (std::size_t j = worst.size(); j < scatter_results.size(); ++j) {
    true_nodes.push_back(node_index.at(results.node_ids[scatter_results[j]]));
  }

  TrueStress truth_stats;
  std::int64_t skip = 0;
  double fs_hz = 0.0;
  if (truth && !true_nodes.empty()) {
    fs_hz = truth->info().sample_rate_hz;
    skip = static_cast<std::int64_t>(std::llround(results.settle_s * fs_hz));
    const std::int64_t n = truth->n_samples();
    if (2 * skip >= n) skip = 0;
    const std::int64_t window =
        std::min<std::int64_t>(n, std::max<std::int64_t>(1, std::llround(job.report.window_s * fs_hz)));
    const std::int64_t window_first = std::max<std::int64_t>(0, n / 2 - window / 2);
    spdlog::info("report: true stresses at {} nodes over {} samples", true_nodes.size(), n);
    truth_stats = true_stress(modes, *truth, true_nodes, curve.get(), job.fatigue, skip,
                              window_first, window, std::min<std::size_t>(worst.size(), 3));
  }

  // worst_nodes.csv: node, coordinates, true and estimated peak von Mises and damage.
  {
    std::string csv = "rank,node_id,x,y,z,true_von_mises_max,est_von_mises_max,true_damage,"
                      "est_damage,true_von_mises_rms,est_von_mises_noise_rms\n";
    for (std::size_t j = 0; j < worst.size(); ++j) {
      const std::size_t i = worst[j];
      auto value = [](const std::vector<double>& v, std::size_t at) {
        return at < v.size() ? v[at] : std::numeric_limits<double>::quiet_NaN();
      };
      const double est_vm =
          results.present ? results.von_mises_max[worst_in_results[j]] * scale : NAN;
      const double est_d = results.present ? value(results.damage, worst_in_results[j]) : NAN;
      const double est_noise =
          results.present ? value(results.noise, worst_in_results[j]) * scale : NAN;
      csv += fmt::format("{},{},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g}\n", j + 1,
                         modes.node_ids[i], modes.coordinates[3 * i],
                         modes.coordinates[3 * i + 1], modes.coordinates[3 * i + 2],
                         value(truth_stats.von_mises_max, j) * scale, est_vm,
                         value(truth_stats.damage, j), est_d, value(rms, i) * scale, est_noise);
    }
    if (!worst.empty()) write_text(dir / "worst_nodes.csv", csv);
  }
  // scatter.csv: estimated against true at the sampled output nodes.
  if (results.present && truth) {
    std::string csv = "node_id,true_von_mises_max,est_von_mises_max,true_damage,est_damage\n";
    for (std::size_t j = 0; j < scatter_results.size(); ++j) {
      const std::size_t r = scatter_results[j];
      csv += fmt::format("{},{:.9g},{:.9g},{:.9g},{:.9g}\n", results.node_ids[r],
                         truth_stats.von_mises_max[j] * scale, results.von_mises_max[r] * scale,
                         j < truth_stats.damage.size() ? truth_stats.damage[j] : NAN,
                         r < results.damage.size() ? results.damage[r] : NAN);
    }
    write_text(dir / "scatter.csv", csv);
  }
  // history.csv: von Mises over the window at the worst nodes (true; estimated with history).
  bool estimated_history = false;
  if (truth && truth_stats.window_samples > 0 && !worst.empty()) {
    const std::size_t k = std::min<std::size_t>(worst.size(), 3);
    std::vector<std::vector<double>> est(k);
    if (results.present && results.has_stress_history &&
        results.history_samples == truth->n_samples()) {
      for (std::size_t j = 0; j < k; ++j) {
        const auto s = read_hyperslab(request.results_path, "/results/stress",
                                      static_cast<hsize_t>(truth_stats.window_first),
                                      static_cast<hsize_t>(truth_stats.window_samples),
                                      static_cast<hsize_t>(worst_in_results[j]));
        est[j].resize(static_cast<std::size_t>(truth_stats.window_samples));
        for (std::int64_t r = 0; r < truth_stats.window_samples; ++r) {
          est[j][static_cast<std::size_t>(r)] = von_mises(&s[static_cast<std::size_t>(6 * r)]);
        }
      }
      estimated_history = true;
    }
    std::string csv = "t_s";
    for (std::size_t j = 0; j < k; ++j) {
      csv += fmt::format(",true_{}", modes.node_ids[worst[j]]);
      if (estimated_history) csv += fmt::format(",est_{}", modes.node_ids[worst[j]]);
    }
    csv += "\n";
    for (std::int64_t r = 0; r < truth_stats.window_samples; ++r) {
      csv += fmt::format("{:.6f}", static_cast<double>(truth_stats.window_first + r) / fs_hz);
      for (std::size_t j = 0; j < k; ++j) {
        csv += fmt::format(",{:.6g}", truth_stats.history[static_cast<std::size_t>(r) * k + j] * scale);
        if (estimated_history) csv += fmt::format(",{:.6g}", est[j][static_cast<std::size_t>(r)] * scale);
      }
      csv += "\n";
    }
    write_text(dir / "history.csv", csv);
  }

  // ---- plots -----------------------------------------------------------------------------------
  std::vector<Plot> plots = {
      {"frequencies.png", "Natural frequencies", "Frequencies of the computed modes.", true},
      {"layout.png", "Sensor layout on the model",
       "Triaxial sensors on the mesh (three views; grey: nodes of the model).", have_placement},
      {"comparison.png", "Placement comparison",
       "Metrics of the compared placement methods (lower is better except log det).",
       !comparison.empty()},
      {"stress_damage.png", "Stress and damage at the worst nodes",
       "Peak von Mises stress and Miner damage at the worst nodes (" + worst_by + ").",
       !worst.empty()},
      {"estimated_vs_true.png", "Estimated against true stress",
       "Peak von Mises stress and damage from the reconstruction against the simulation's true "
       "response at the output nodes (the line is equality).",
       results.present && truth != nullptr},
      {"stress_history.png", "Stress history at the worst nodes",
       estimated_history ? "Von Mises stress over a window in the middle of the record: true "
                           "(simulation) and estimated (reconstruction)."
                         : "True von Mises stress (simulation) over a window in the middle of the "
                           "record" +
                               std::string(results.present
                                               ? " (the reconstruction wrote no history: "
                                                 "history = true in [reconstruction] adds the "
                                                 "estimate)."
                                               : "."),
       truth != nullptr && !worst.empty()},
  };
  std::string no_plots_reason;
  if (!job.report.plots) {
    no_plots_reason = "plots are off in the job ([report] plots = false)";
  } else {
    const std::string python = find_report_python(request.python, no_plots_reason);
    if (!python.empty()) {
      const fs::path script = dir / "vsense_report_plots.py";
      write_text(script, plot_script_text);
      const std::string command =
          fmt::format("'{}' '{}' '{}' '{}' > '{}' 2>&1", python, script.string(), dir.string(), su,
                      (dir / "plots.log").string());
      spdlog::info("report: drawing the plots ({})", python);
      const int status = std::system(command.c_str());
      std::ifstream log(dir / "plots.log");
      std::string line;
      while (std::getline(log, line)) {
        if (line.rfind("error", 0) == 0) spdlog::warn("report plots: {}", line);
      }
      if (status != 0) {
        no_plots_reason.clear();
        spdlog::warn("report: the plotting script failed (status {}), see {}", status,
                     (dir / "plots.log").string());
      }
    }
  }
  for (auto& p : plots) {
    if (!p.wanted) continue;
    std::error_code ec;
    if (fs::is_regular_file(dir / p.file, ec) && fs::file_size(dir / p.file, ec) > 0) {
      summary.plots.push_back(p.file);
    } else {
      summary.missing.push_back(p.file + ": " +
                                (no_plots_reason.empty() ? "the plotting script failed (see plots.log)"
                                                         : no_plots_reason));
    }
  }
  if (!no_plots_reason.empty()) spdlog::warn("report without plots: {}", no_plots_reason);

  // ---- the page --------------------------------------------------------------------------------
  const std::string title =
      job.report.title.empty() ? fmt::format("vsense report: {}", job.name) : job.report.title;
  std::string page;
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += fmt::format("<title>{}</title>\n", html(title));
  page +=
      "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
      "color:#222}table{border-collapse:collapse;margin:1em 0;font-size:90%}"
      "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
      "td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #ddd}"
      ".note{background:#fff6d5;border:1px solid #e6c200;padding:.6em 1em}"
      "code{background:#f3f3f3;padding:0 3px}</style>\n</head>\n<body>\n";
  page += fmt::format("<h1>{}</h1>\n", html(title));
  page += fmt::format(
      "<p>Written {} by vsense {}. Job: <code>{}</code>. Output directory: <code>{}</code>. "
      "Units: {}.</p>\n",
      now_utc(), VSENSE_VERSION, html(job.path.empty() ? job.name : job.path),
      html(request.output_dir), html(job.units));

  page += "<h2>Run</h2>\n<table><tr><th class=l>stage</th><th class=l>status</th><th>time</th>"
          "<th>peak memory</th><th class=l>backend</th><th class=l>detail</th></tr>\n";
  bool unavailable = false;
  for (const auto& s : request.stages) {
    const bool ran = s.status == "ran" || s.status == "resumed";
    const bool recorded = s.status == "skipped" && !s.ran_at.empty();
    unavailable = unavailable || s.status == "not available";
    const std::string time = fmt::format("{:.1f} s", s.seconds);
    const std::string memory =
        fmt::format("{:.0f} MiB", static_cast<double>(s.peak_memory_bytes) / 1048576.0);
    page += fmt::format(
        "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td class=l>{}</td>"
        "<td class=l>{}</td></tr>\n",
        html(s.name), html(s.status),
        ran ? time : recorded ? "(" + time + ")" : "-",
        ran ? memory : recorded ? "(" + memory + ")" : "-", html(s.backend),
        html(recorded ? s.detail + " since " + s.ran_at : s.detail));
  }
  page += "</table>\n<p>Times in parentheses: stages skipped in this run because nothing they "
          "depend on changed; what their run took when it wrote the outputs.</p>\n";
  if (unavailable) {
    page += "<p class=note>A stage was not available in this build (see the table); the "
            "parts of the report that need its outputs are left out.</p>\n";
  }
  if (!summary.missing.empty()) {
    page += "<p class=note>Plots not drawn: " +
            html(no_plots_reason.empty() ? "the plotting script failed (see plots.log)"
                                         : no_plots_reason) +
            ".</p>\n";
  }
  auto image = [&](const std::string& file) {
    for (const auto& p : plots) {
      if (p.file != file || !p.wanted) continue;
      if (std::find(summary.plots.begin(), summary.plots.end(), file) == summary.plots.end()) {
        return std::string();
      }
      return fmt::format("<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                         file, html(p.title), html(p.caption));
    }
    return std::string();
  };

  page += "<h2>Model and modes</h2>\n";
  page += fmt::format("<p>{} nodes, {} modes from {:.4g} to {:.4g} Hz.{}</p>\n", modes.n_nodes(),
                      modes.n_modes(), modes.frequencies_hz.front(), modes.frequencies_hz.back(),
                      request.modes_xdmf.empty()
                          ? ""
                          : fmt::format(" Mode shapes and modal stresses for ParaView: "
                                        "<a href=\"{0}\">{0}</a>.",
                                        html(request.modes_xdmf)));
  page += image("frequencies.png");
  page += "<table><tr><th>mode</th><th>frequency [Hz]</th></tr>\n";
  for (std::size_t i = 0; i < modes.n_modes(); ++i) {
    page += fmt::format("<tr><td>{}</td><td>{:.4f}</td></tr>\n", i + 1, modes.frequencies_hz[i]);
  }
  page += "</table>\n";

  if (have_placement) {
    page += "<h2>Sensor layout</h2>\n";
    page += fmt::format("<p>{} triaxial sensors placed by <b>{}</b> (criterion {} = {}): nodes {}.</p>\n",
                        placement.node_ids.size(), html(placement.method),
                        html(placement.criterion_name),
                        placement.criterion.empty() ? "n/a" : number(placement.criterion.back()),
                        fmt::join(placement.node_ids, ", "));
    page += image("layout.png");
  }
  if (!comparison.empty()) {
    page += "<h2>Placement comparison</h2>\n";
    page += fmt::format("<p>{} methods on the same candidates and modes; the layout used "
                        "afterwards is <b>{}</b>. Full table: <code>placement-comparison/"
                        "place_bench.md</code>.</p>\n",
                        comparison.size() - 1, html(job.placement.use));
    page += image("comparison.png");
    const std::vector<std::pair<std::string, std::string>> columns = {
        {"method", "method"},
        {"seconds", "time [s]"},
        {"log_det_fim", "log det FIM"},
        {"condition_number", "cond FIM"},
        {"max_offdiag_mac", "max off-diag. MAC"},
        {"stress_error_trace", "LS stress err."},
        {"bayes_error_trace", "Bayes stress err."},
        {"worst_failure_ratio", "worst 1-failure"}};
    std::vector<std::size_t> at;
    for (const auto& [key, label] : columns) {
      const auto& header = comparison.front();
      at.push_back(static_cast<std::size_t>(
          std::find(header.begin(), header.end(), key) - header.begin()));
    }
    page += "<table><tr>";
    for (const auto& c : columns) page += fmt::format("<th>{}</th>", html(c.second));
    page += "</tr>\n";
    for (std::size_t r = 1; r < comparison.size(); ++r) {
      page += "<tr>";
      for (std::size_t c = 0; c < at.size(); ++c) {
        const std::string cell = at[c] < comparison[r].size() ? comparison[r][at[c]] : "";
        if (c == 0) {
          page += fmt::format("<td class=l>{}</td>", html(cell));
        } else {
          double v = NAN;
          try {
            v = std::stod(cell);
          } catch (const std::exception&) {
          }
          page += fmt::format("<td>{}</td>", number(v));
        }
      }
      page += "</tr>\n";
    }
    page += "</table>\n";
  }
  if (truth) {
    page += "<h2>Simulated operation</h2>\n";
    page += fmt::format(
        "<p>{} samples at {} Hz ({:.0f} s) of the simulated machine ({} modes); the archive is "
        "in <code>simulation/</code>, the true modal response in <code>simulation/truth.h5</code>."
        "</p>\n",
        truth->n_samples(), truth->info().sample_rate_hz,
        static_cast<double>(truth->n_samples()) / truth->info().sample_rate_hz,
        truth->info().n_modes());
  }
  page += "<h2>Stress and fatigue damage</h2>\n";
  if (!results.present) {
    page += "<p class=note>The reconstruction did not run or was not available, so there are "
            "no estimated stresses yet.";
    if (truth) page += " The nodes below are those with the largest true stress of the simulation.";
    page += "</p>\n";
  } else {
    page += fmt::format(
        "<p>Reconstructed at {} nodes (results: <code>results.h5</code>{}); settling intervals of "
        "{:.3g} s at the ends of each segment left out.</p>\n",
        results.node_ids.size(),
        request.results_xdmf.empty()
            ? ""
            : fmt::format(", ParaView: <a href=\"{0}\">{0}</a>", html(request.results_xdmf)),
        results.settle_s);
  }
  if (!worst.empty()) {
    page += image("stress_damage.png");
    page += fmt::format("<table><tr><th>rank</th><th>node</th><th>true peak von Mises [{0}]</th>"
                        "<th>estimated peak von Mises [{0}]</th><th>noise in the estimate, RMS "
                        "von Mises [{0}]</th><th>true damage</th><th>estimated damage</th></tr>\n",
                        su);
    const auto rows = read_csv(dir / "worst_nodes.csv");
    for (std::size_t r = 1; r < rows.size(); ++r) {
      auto v = [&](std::size_t c) {
        try {
          return number(std::stod(rows[r].at(c)));
        } catch (const std::exception&) {
          return std::string("n/a");
        }
      };
      page += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                          "<td>{}</td></tr>\n",
                          rows[r][0], rows[r][1], v(5), v(6), v(10), v(7), v(8));
    }
    page += "</table>\n";
    if (results.present && std::isfinite(results.channel_noise_rms)) {
      page += fmt::format(
          "<p>Sensor noise estimated from the residual of the modal fit: {} (model acceleration "
          "units) RMS per channel. A noisy estimate's peak sits above the true peak by a few "
          "times the noise column; damage is much less sensitive.</p>\n",
          number(results.channel_noise_rms));
    }
  }
  page += image("estimated_vs_true.png");
  page += image("stress_history.png");

  page += "<h2>Files</h2>\n<ul>\n";
  if (!request.modes_xdmf.empty()) {
    page += fmt::format("<li><a href=\"{0}\">{0}</a>: modes for ParaView (time = frequency)</li>\n",
                        html(request.modes_xdmf));
  }
  if (!request.results_xdmf.empty()) {
    page += fmt::format("<li><a href=\"{0}\">{0}</a>: results for ParaView</li>\n",
                        html(request.results_xdmf));
  }
  page += "<li>CSV files of every plot next to this page; <code>vsense_report_plots.py</code> "
          "redraws them.</li>\n</ul>\n</body>\n</html>\n";
  const fs::path index = dir / "index.html";
  const fs::path partial = dir / "index.html.partial";
  write_text(partial, page);
  fs::rename(partial, index);
  summary.index_path = index.string();
  summary.seconds = seconds_since(start);
  summary.detail = fmt::format("{} plot(s){}", summary.plots.size(),
                               summary.missing.empty()
                                   ? ""
                                   : fmt::format(", {} not drawn", summary.missing.size()));
  return summary;
}

std::string to_json(const ReportSummary& s) {
  std::vector<std::string> plots, missing;
  // fmt rather than "\"" + ...: GCC 12 warns wrongly (-Wrestrict) on that concatenation.
  for (const auto& p : s.plots) plots.push_back(fmt::format("\"{}\"", json_escape(p)));
  for (const auto& p : s.missing) missing.push_back(fmt::format("\"{}\"", json_escape(p)));
  return fmt::format(
      R"({{"command":"report","index":"{}","plots":[{}],"missing":[{}],"worst_nodes":[{}],)"
      R"("seconds":{:.3f}}})",
      json_escape(s.index_path), fmt::join(plots, ","), fmt::join(missing, ","),
      fmt::join(s.worst_nodes, ","), s.seconds);
}

}  // namespace vsense::jobs
