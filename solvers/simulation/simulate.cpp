// vsense simulate: a genset's operating loads over its modes, streamed to an archive and a
// truth file (see simulate.hpp for the load model).
#include "vsense/solvers/simulate.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>
#include <unordered_map>

#include "vsense/io/hdf5.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/io/truth_file.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/simulation.hpp"

namespace vsense::solvers {

namespace {

using simulation::ModalSimulator;
using simulation::SimulationBlock;
using simulation::SimulatorSetup;

constexpr std::size_t max_broadband_nodes = 32;
constexpr std::size_t fallback_load_nodes = 8;

int axis_index(char axis, const char* what) {
  switch (axis) {
    case 'x':
    case 'X':
      return 0;
    case 'y':
    case 'Y':
      return 1;
    case 'z':
    case 'Z':
      return 2;
    default:
      throw InputError(fmt::format("{} axis '{}' is not x, y or z", what, axis));
  }
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// What simulate needs of a modes file, without the shapes and stresses of every node.
struct ModesIndex {
  std::string units;
  std::vector<std::int64_t> node_ids;  // [n_nodes]
  std::vector<double> coordinates;     // [n_nodes, 3]
  std::vector<double> eigenvalues;     // [M]
  std::vector<double> frequencies_hz;  // [M]
  std::unordered_map<std::int64_t, std::size_t> index_of;
  std::vector<std::string> set_names;  // upper case, as stored
};

ModesIndex read_modes_index(const io::hdf5::File& file) {
  const std::string& path = file.path();
  const std::string format = file.string_attribute("/", "format");
  if (format != "vsense-modes") {
    throw InputError(
        fmt::format("{}: attribute format is \"{}\" but a modes file "
                    "(\"vsense-modes\") was expected",
                    path, format));
  }
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != 1) {
    throw InputError(
        fmt::format("{}: vsense-modes format_version {} is not supported", path, version));
  }
  ModesIndex index;
  index.units = file.string_attribute("/", "units");
  index.node_ids = file.read_int64("/mesh/node_ids");
  index.coordinates = file.read_double("/mesh/coordinates");
  index.eigenvalues = file.read_double("/modes/eigenvalues");
  index.frequencies_hz = file.read_double("/modes/frequencies_hz");
  const std::size_t n = index.node_ids.size();
  if (index.coordinates.size() != 3 * n ||
      index.frequencies_hz.size() != index.eigenvalues.size()) {
    throw InputError(
        fmt::format("{}: /mesh/coordinates or /modes/frequencies_hz does not match "
                    "/mesh/node_ids and /modes/eigenvalues",
                    path));
  }
  const auto shape = file.shape("/modes/shapes");
  if (shape != std::vector<hsize_t>{index.eigenvalues.size(), n, 3}) {
    throw InputError(
        fmt::format("{}: dataset /modes/shapes has shape [{}] but [{}, {}, 3] was "
                    "expected",
                    path, fmt::join(shape, ", "), index.eigenvalues.size(), n));
  }
  index.index_of.reserve(n);
  for (std::size_t i = 0; i < n; ++i) index.index_of.emplace(index.node_ids[i], i);
  if (file.exists("/mesh/node_sets")) index.set_names = file.members("/mesh/node_sets");
  return index;
}

bool has_set(const ModesIndex& index, const std::string& name) {
  return std::find(index.set_names.begin(), index.set_names.end(), upper(name)) !=
         index.set_names.end();
}

std::vector<std::int64_t> read_set(const io::hdf5::File& file, const ModesIndex& index,
                                   const std::string& name) {
  if (!has_set(index, name)) {
    throw InputError(fmt::format("{}: node set {} is not in /mesh/node_sets (sets: {})",
                                 file.path(), name, fmt::join(index.set_names, ", ")));
  }
  return file.read_int64("/mesh/node_sets/" + upper(name));
}

std::size_t node_index(const ModesIndex& index, std::int64_t node, const std::string& source) {
  const auto it = index.index_of.find(node);
  if (it == index.index_of.end()) {
    throw InputError(fmt::format("{}: node {} is not a node of the modes file", source, node));
  }
  return it->second;
}

// One sensor: a node and the directions measured there.
struct SensorSpec {
  std::int64_t node = 0;
  std::vector<std::array<double, 3>> directions;
  std::vector<std::string> suffixes;
};

std::vector<SensorSpec> triaxial(const std::vector<std::int64_t>& nodes,
                                 const std::string& directions) {
  std::vector<SensorSpec> sensors;
  for (const std::int64_t node : nodes) {
    SensorSpec s;
    s.node = node;
    for (const char axis : directions) {
      const int a = axis_index(axis, "sensor direction");
      std::array<double, 3> d{0, 0, 0};
      d[static_cast<std::size_t>(a)] = 1.0;
      s.directions.push_back(d);
      s.suffixes.push_back(std::string(1, static_cast<char>(std::toupper(axis))));
    }
    sensors.push_back(std::move(s));
  }
  return sensors;
}

// A node list file: one node per line (triaxial), or "NODE DX DY DZ" (one channel).
std::vector<SensorSpec> read_sensor_file(const std::string& path, const std::string& directions) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open the sensor list", path));
  std::vector<SensorSpec> sensors;
  std::map<std::int64_t, std::size_t> seen;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream fields(line);
    std::vector<std::string> tokens;
    for (std::string t; fields >> t;) tokens.push_back(t);
    if (tokens.empty()) continue;
    auto number = [&](const std::string& t) {
      try {
        std::size_t used = 0;
        const double v = std::stod(t, &used);
        if (used != t.size()) throw std::invalid_argument(t);
        return v;
      } catch (const std::exception&) {
        throw InputError(fmt::format("{}:{}: \"{}\" is not a number", path, line_number, t));
      }
    };
    std::int64_t node = 0;
    try {
      std::size_t used = 0;
      node = std::stoll(tokens[0], &used);
      if (used != tokens[0].size()) throw std::invalid_argument(tokens[0]);
    } catch (const std::exception&) {
      throw InputError(fmt::format("{}:{}: \"{}\" is not a node id", path, line_number, tokens[0]));
    }
    if (tokens.size() == 1) {
      if (seen.count(node) != 0) {
        throw InputError(fmt::format("{}:{}: node {} is listed twice", path, line_number, node));
      }
      auto s = triaxial({node}, directions);
      seen[node] = sensors.size();
      sensors.push_back(std::move(s.front()));
    } else if (tokens.size() == 4) {
      std::array<double, 3> d{number(tokens[1]), number(tokens[2]), number(tokens[3])};
      const double norm = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      if (!(norm > 0.0) || !std::isfinite(norm)) {
        throw InputError(fmt::format("{}:{}: direction ({}, {}, {}) has no length", path,
                                     line_number, d[0], d[1], d[2]));
      }
      for (double& v : d) v /= norm;
      auto it = seen.find(node);
      if (it == seen.end()) {
        it = seen.emplace(node, sensors.size()).first;
        sensors.push_back(SensorSpec{node, {}, {}});
      }
      SensorSpec& s = sensors[it->second];
      s.directions.push_back(d);
      s.suffixes.push_back(fmt::format("D{}", s.directions.size()));
    } else {
      throw InputError(fmt::format("{}:{}: expected NODE or NODE DX DY DZ, found {} fields", path,
                                   line_number, tokens.size()));
    }
  }
  if (sensors.empty()) throw InputError(fmt::format("{}: no sensor nodes listed", path));
  return sensors;
}

// Shapes of the chosen modes at the chosen nodes: [n_modes_used, n_nodes_used, 3]. Reads
// only those values (a point selection per mode), so memory does not grow with the mesh.
std::vector<double> read_shapes_at(const io::hdf5::File& file,
                                   const std::vector<std::int64_t>& modes,
                                   const std::vector<std::size_t>& nodes) {
  const std::size_t n = nodes.size();
  std::vector<double> out(modes.size() * n * 3);
  if (n == 0 || modes.empty()) return out;
  io::hdf5::Handle dataset(H5Dopen2(file.id(), "/modes/shapes", H5P_DEFAULT), H5Dclose);
  io::hdf5::Handle file_space(dataset ? H5Dget_space(dataset.get()) : -1, H5Sclose);
  const hsize_t count = n * 3;
  io::hdf5::Handle memory_space(H5Screate_simple(1, &count, nullptr), H5Sclose);
  if (!dataset || !file_space || !memory_space) {
    throw InputError(fmt::format("{}: dataset /modes/shapes cannot be opened", file.path()));
  }
  std::vector<hsize_t> coordinates(n * 3 * 3);
  for (std::size_t mi = 0; mi < modes.size(); ++mi) {
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t c = 0; c < 3; ++c) {
        hsize_t* point = coordinates.data() + (3 * j + c) * 3;
        point[0] = static_cast<hsize_t>(modes[mi]);
        point[1] = nodes[j];
        point[2] = c;
      }
    }
    if (H5Sselect_elements(file_space.get(), H5S_SELECT_SET, count, coordinates.data()) < 0 ||
        H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
                out.data() + mi * n * 3) < 0) {
      throw InputError(fmt::format("{}: cannot read mode {} of /modes/shapes (damaged file?)",
                                   file.path(), modes[mi]));
    }
  }
  return out;
}

std::string segment_path(const std::string& out_path, std::size_t k, std::size_t n_segments) {
  std::filesystem::path p(out_path);
  std::string stem = p.extension() == ".h5" ? p.stem().string() : p.filename().string();
  const int width = std::max<int>(3, static_cast<int>(std::to_string(n_segments - 1).size()));
  return (p.parent_path() / fmt::format("{}-{:0{}d}.h5", stem, k, width)).string();
}

}  // namespace

std::vector<double> rigid_load_distribution(const std::vector<double>& points) {
  const std::size_t n = points.size() / 3;
  if (n == 0 || points.size() != 3 * n) {
    throw InputError("rigid load distribution: no points (or not [n, 3])");
  }
  Eigen::Vector3d centroid = Eigen::Vector3d::Zero();
  for (std::size_t j = 0; j < n; ++j) {
    centroid += Eigen::Vector3d(points[3 * j], points[3 * j + 1], points[3 * j + 2]);
  }
  centroid /= static_cast<double>(n);
  // T maps nodal forces to the resultant: [F; M] = T f, T = [I ... I; [r_1]x ... [r_n]x].
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(6, 3 * static_cast<Eigen::Index>(n));
  for (std::size_t j = 0; j < n; ++j) {
    const Eigen::Vector3d r =
        Eigen::Vector3d(points[3 * j], points[3 * j + 1], points[3 * j + 2]) - centroid;
    const auto c = static_cast<Eigen::Index>(3 * j);
    t.block<3, 3>(0, c).setIdentity();
    Eigen::Matrix3d skew;
    skew << 0, -r.z(), r.y(), r.z(), 0, -r.x(), -r.y(), r.x(), 0;
    t.block<3, 3>(3, c) = skew;
  }
  // Least-norm solution f = T^T (T T^T)^+ R; the pseudo-inverse drops the moments that
  // collinear or single points cannot carry.
  const Eigen::MatrixXd gram = t * t.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram);
  const Eigen::VectorXd values = eigen.eigenvalues();
  const double cutoff = 1e-12 * values.maxCoeff();
  Eigen::VectorXd inverse = Eigen::VectorXd::Zero(6);
  for (Eigen::Index i = 0; i < 6; ++i) {
    if (values(i) > cutoff) inverse(i) = 1.0 / values(i);
  }
  const Eigen::MatrixXd pinv =
      eigen.eigenvectors() * inverse.asDiagonal() * eigen.eigenvectors().transpose();
  const Eigen::MatrixXd d = t.transpose() * pinv;  // [3n, 6]
  std::vector<double> out(3 * n * 6);
  for (Eigen::Index r = 0; r < d.rows(); ++r) {
    for (Eigen::Index c = 0; c < 6; ++c) out[static_cast<std::size_t>(r * 6 + c)] = d(r, c);
  }
  return out;
}

SimulateSummary run_simulate(const SimulateRequest& request) {
  // ---- check the request before reading anything large ----
  if (!(request.sample_rate_hz > 0.0) || !std::isfinite(request.sample_rate_hz)) {
    throw InputError(fmt::format("--sample-rate {} Hz must be positive", request.sample_rate_hz));
  }
  if (!(request.duration_s > 0.0) || !std::isfinite(request.duration_s)) {
    throw InputError(fmt::format("--duration {} s must be positive", request.duration_s));
  }
  const auto total_samples =
      static_cast<std::int64_t>(std::llround(request.duration_s * request.sample_rate_hz));
  if (total_samples < 1) {
    throw InputError(fmt::format("--duration {} s is less than one sample at {} Hz",
                                 request.duration_s, request.sample_rate_hz));
  }
  std::int64_t segment_samples = total_samples;
  if (request.segment_s > 0.0) {
    segment_samples =
        static_cast<std::int64_t>(std::llround(request.segment_s * request.sample_rate_hz));
    if (segment_samples < 1) {
      throw InputError(fmt::format("--segment-s {} s is less than one sample", request.segment_s));
    }
  }
  const io::UtcTime start = [&] {
    try {
      return io::parse_utc_time(request.start_time);
    } catch (const InputError& e) {
      throw InputError(fmt::format("--start-time: {}", e.what()));
    }
  }();
  if (!io::is_archive_unit(request.channel_unit)) {
    throw InputError(
        fmt::format("--unit \"{}\" is not one of g, m/s^2, mm/s^2", request.channel_unit));
  }
  const int n_sources =
      !request.placement_path.empty() + !request.sensors_file.empty() + !request.sensor_set.empty();
  if (n_sources != 1) {
    throw InputError("give exactly one of --placement, --sensors, --sensor-set");
  }
  if (request.directions.empty()) throw InputError("--directions: no axis given");
  for (const char axis : request.directions) axis_index(axis, "--directions");
  const int crank = axis_index(request.crank_axis, "--crank-axis");
  const int vertical = axis_index(request.vertical_axis, "vertical");
  if (crank == vertical) throw InputError("the crank axis cannot be the vertical axis");
  if (!(request.order_step > 0.0) || !(request.max_order >= 0.0) || request.cylinders < 1) {
    throw InputError(fmt::format("engine orders: step {}, max order {}, {} cylinders are invalid",
                                 request.order_step, request.max_order, request.cylinders));
  }

  // ---- the modes file: index, modes, sensors, load nodes ----
  const io::hdf5::File modes_file(request.modes_path, io::hdf5::File::Mode::read);
  const ModesIndex index = read_modes_index(modes_file);
  const double length_scale = index.units == "mm-t-s" ? 1e3 : 1.0;  // m -> model length

  SimulateSummary summary;
  summary.units = index.units;
  summary.sample_rate_hz = request.sample_rate_hz;
  const std::size_t n_available = index.eigenvalues.size();
  const std::size_t n_wanted =
      request.n_modes > 0 ? std::min<std::size_t>(request.n_modes, n_available) : n_available;
  for (std::size_t i = 0; i < n_wanted; ++i) {
    if (index.eigenvalues[i] <= 0.0 || index.frequencies_hz[i] < request.min_frequency_hz) {
      summary.excluded_modes.push_back(static_cast<std::int64_t>(i));
    } else {
      summary.mode_indices.push_back(static_cast<std::int64_t>(i));
      summary.frequencies_hz.push_back(index.frequencies_hz[i]);
    }
  }
  if (!summary.excluded_modes.empty()) {
    spdlog::warn("{} mode(s) below {} Hz left out (rigid-body modes would drift): {}",
                 summary.excluded_modes.size(), request.min_frequency_hz,
                 fmt::join(summary.excluded_modes, ", "));
  }
  const std::size_t m = summary.mode_indices.size();
  if (m == 0) throw InputError(fmt::format("{}: no mode to simulate", request.modes_path));
  std::vector<double> zeta(m);
  if (request.damping.size() == 1) {
    std::fill(zeta.begin(), zeta.end(), request.damping.front());
  } else if (request.damping.size() == m) {
    zeta = request.damping;
  } else {
    throw InputError(
        fmt::format("--damping gives {} ratios for {} modes (give one, or one per "
                    "mode)",
                    request.damping.size(), m));
  }
  for (const double z : zeta) {
    if (!(z >= 0.0) || !std::isfinite(z)) {
      throw InputError(fmt::format("--damping {} is not a ratio >= 0", z));
    }
  }
  std::vector<double> omega(m);
  for (std::size_t i = 0; i < m; ++i) {
    omega[i] = std::sqrt(index.eigenvalues[static_cast<std::size_t>(summary.mode_indices[i])]);
  }

  // Sensors.
  std::vector<SensorSpec> sensors;
  if (!request.placement_path.empty()) {
    const io::hdf5::File placement(request.placement_path, io::hdf5::File::Mode::read);
    const std::string format = placement.string_attribute("/", "format");
    if (format != "vsense-placement") {
      throw InputError(
          fmt::format("{}: attribute format is \"{}\" but a placement file was "
                      "expected",
                      request.placement_path, format));
    }
    sensors = triaxial(placement.read_int64("/placement/node_ids"), request.directions);
  } else if (!request.sensors_file.empty()) {
    sensors = read_sensor_file(request.sensors_file, request.directions);
  } else {
    sensors = triaxial(read_set(modes_file, index, request.sensor_set), request.directions);
  }
  const std::string sensor_source = !request.placement_path.empty() ? request.placement_path
                                    : !request.sensors_file.empty()
                                        ? request.sensors_file
                                        : "node set " + request.sensor_set;
  if (sensors.empty()) throw InputError(fmt::format("{}: no sensor nodes", sensor_source));

  // Load nodes.
  std::vector<std::int64_t> load_nodes;
  if (!request.load_set.empty()) {
    load_nodes = read_set(modes_file, index, request.load_set);
    summary.load_set_used = upper(request.load_set);
  } else {
    for (const char* name : {"ENGINE_FEET", "MOUNT_UPPER"}) {
      if (has_set(index, name)) {
        load_nodes = read_set(modes_file, index, name);
        summary.load_set_used = name;
        break;
      }
    }
    if (load_nodes.empty()) {
      // The nodes nearest the model's centroid stand in for an engine.
      Eigen::Vector3d centroid = Eigen::Vector3d::Zero();
      const std::size_t n = index.node_ids.size();
      for (std::size_t j = 0; j < n; ++j) {
        centroid += Eigen::Vector3d(index.coordinates[3 * j], index.coordinates[3 * j + 1],
                                    index.coordinates[3 * j + 2]);
      }
      centroid /= static_cast<double>(n);
      std::vector<std::pair<double, std::size_t>> distance(n);
      for (std::size_t j = 0; j < n; ++j) {
        distance[j] = {(Eigen::Vector3d(index.coordinates[3 * j], index.coordinates[3 * j + 1],
                                        index.coordinates[3 * j + 2]) -
                        centroid)
                           .squaredNorm(),
                       j};
      }
      const std::size_t k = std::min(fallback_load_nodes, n);
      std::partial_sort(distance.begin(), distance.begin() + static_cast<std::ptrdiff_t>(k),
                        distance.end());
      for (std::size_t j = 0; j < k; ++j) load_nodes.push_back(index.node_ids[distance[j].second]);
      summary.load_set_used = fmt::format("the {} nodes nearest the centroid", k);
    }
  }
  if (load_nodes.empty()) throw InputError("the load node set is empty");
  std::vector<std::int64_t> broadband_nodes;
  if (request.broadband_rms_n > 0.0) {
    if (!request.broadband_set.empty()) {
      broadband_nodes = read_set(modes_file, index, request.broadband_set);
      summary.broadband_set_used = upper(request.broadband_set);
    } else if (has_set(index, "MOUNT_UPPER")) {
      broadband_nodes = read_set(modes_file, index, "MOUNT_UPPER");
      summary.broadband_set_used = "MOUNT_UPPER";
    } else {
      // Every k-th load node, so that a large set gives a bounded number of random inputs.
      const std::size_t stride =
          (load_nodes.size() + max_broadband_nodes - 1) / max_broadband_nodes;
      for (std::size_t j = 0; j < load_nodes.size(); j += stride) {
        broadband_nodes.push_back(load_nodes[j]);
      }
      summary.broadband_set_used = summary.load_set_used;
    }
  }

  // Node indices to read, each once.
  std::vector<std::size_t> needed;
  for (const auto& s : sensors) needed.push_back(node_index(index, s.node, sensor_source));
  for (const auto node : load_nodes) needed.push_back(node_index(index, node, "load nodes"));
  for (const auto node : broadband_nodes) {
    needed.push_back(node_index(index, node, "broadband nodes"));
  }
  std::sort(needed.begin(), needed.end());
  needed.erase(std::unique(needed.begin(), needed.end()), needed.end());
  const std::vector<double> shapes = read_shapes_at(modes_file, summary.mode_indices, needed);
  const std::size_t n_needed = needed.size();
  auto slot = [&](std::int64_t node) {
    const std::size_t j = index.index_of.at(node);
    return static_cast<std::size_t>(std::lower_bound(needed.begin(), needed.end(), j) -
                                    needed.begin());
  };
  // phi_i(node)[c]
  auto phi = [&](std::size_t mode, std::size_t s, std::size_t c) {
    return shapes[(mode * n_needed + s) * 3 + c];
  };

  SimulatorSetup setup;
  setup.omega_rad_s = omega;
  setup.zeta = zeta;
  setup.sample_rate_hz = request.sample_rate_hz;
  setup.seed = request.seed;

  // Engine harmonics: resultant per order, spread rigidly, projected on the modes.
  {
    std::vector<double> points;
    std::vector<std::size_t> slots;
    for (const auto node : load_nodes) {
      const std::size_t j = index.index_of.at(node);
      for (int c = 0; c < 3; ++c) points.push_back(index.coordinates[3 * j + c]);
      slots.push_back(slot(node));
    }
    const std::vector<double> distribution = rigid_load_distribution(points);
    const std::size_t n_load = load_nodes.size();
    // modal[i, r]: modal force of mode i per unit resultant component r (F then M).
    std::vector<double> modal(m * 6, 0.0);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n_load; ++j) {
        for (std::size_t c = 0; c < 3; ++c) {
          const double p = phi(i, slots[j], c);
          for (std::size_t r = 0; r < 6; ++r)
            modal[i * 6 + r] += p * distribution[(3 * j + c) * 6 + r];
        }
      }
    }
    const auto n_orders =
        static_cast<std::size_t>(std::floor(request.max_order / request.order_step + 1e-9));
    const int lateral = 3 - crank - vertical;
    const double firing_order = request.cylinders / 2.0;  // four-stroke
    simulation::RandomStream phases(request.seed, 1);
    auto& h = setup.harmonic;
    h.order_step = request.order_step;
    h.n_orders = n_orders;
    h.modal_cos.assign(m * n_orders, 0.0);
    h.modal_sin.assign(m * n_orders, 0.0);
    for (std::size_t k = 0; k < n_orders; ++k) {
      const double order = static_cast<double>(k + 1) * request.order_step;
      const double weight = std::pow(1.0 + order, -request.order_decay);
      const double ratio = order / firing_order;
      const bool firing = std::abs(ratio - std::round(ratio)) < 1e-9;
      const double force = request.engine_force_n * weight;
      const double moment = request.engine_moment_nm * weight * length_scale;
      std::array<double, 6> amplitude{};
      amplitude[static_cast<std::size_t>(vertical)] = force;
      amplitude[static_cast<std::size_t>(lateral)] = 0.5 * force;
      amplitude[static_cast<std::size_t>(crank)] = 0.2 * force;
      amplitude[3 + static_cast<std::size_t>(crank)] =
          moment * (firing ? request.firing_gain : 1.0);
      amplitude[3 + static_cast<std::size_t>(lateral)] = 0.3 * moment;
      amplitude[3 + static_cast<std::size_t>(vertical)] = 0.3 * moment;
      for (std::size_t r = 0; r < 6; ++r) {
        const double phase = 2.0 * std::numbers::pi * phases.uniform();
        // Re(A e^{i(phase + k s theta)}) = A cos(phase) cos(.) - A sin(phase) sin(.)
        const double a_cos = amplitude[r] * std::cos(phase);
        const double a_sin = -amplitude[r] * std::sin(phase);
        for (std::size_t i = 0; i < m; ++i) {
          h.modal_cos[i * n_orders + k] += modal[i * 6 + r] * a_cos;
          h.modal_sin[i * n_orders + k] += modal[i * 6 + r] * a_sin;
        }
      }
    }
    if (!request.speed_profile.empty()) {
      std::vector<double> times, speeds;
      for (const auto& [t, rpm] : request.speed_profile) {
        times.push_back(t);
        speeds.push_back(rpm);
      }
      h.speed = simulation::SpeedProfile(times, speeds);
    } else {
      h.speed = simulation::SpeedProfile(request.rpm);
    }
    summary.n_load_nodes = n_load;
    summary.n_orders = n_orders;
  }

  // Broadband random forces: one input per node and direction.
  {
    auto& b = setup.broadband;
    b.n_inputs = 3 * broadband_nodes.size();
    b.rms = request.broadband_rms_n;
    b.low_hz = request.broadband_low_hz;
    b.high_hz = request.broadband_high_hz;
    b.participation.assign(m * b.n_inputs, 0.0);
    for (std::size_t j = 0; j < broadband_nodes.size(); ++j) {
      const std::size_t s = slot(broadband_nodes[j]);
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t c = 0; c < 3; ++c)
          b.participation[i * b.n_inputs + 3 * j + c] = phi(i, s, c);
      }
    }
    summary.n_broadband_inputs = b.n_inputs;
  }

  // Sensors: channels and their projection on the modes.
  {
    auto& sm = setup.sensors;
    const double to_channel = 1.0 / io::acceleration_factor(request.channel_unit, index.units);
    for (const auto& s : sensors) {
      const std::size_t sl = slot(s.node);
      for (std::size_t d = 0; d < s.directions.size(); ++d) {
        io::ArchiveChannel channel;
        channel.name = fmt::format("N{}_{}", s.node, s.suffixes[d]);
        channel.node_id = s.node;
        channel.direction = s.directions[d];
        channel.unit = request.channel_unit;
        summary.channels.push_back(channel);
        for (std::size_t i = 0; i < m; ++i) {
          double p = 0.0;
          for (std::size_t c = 0; c < 3; ++c) p += s.directions[d][c] * phi(i, sl, c);
          sm.projection.push_back(p);
        }
        sm.scale.push_back(to_channel);
      }
    }
    sm.n_channels = summary.channels.size();
    sm.noise_rms = request.noise_rms;
  }

  // Warm-up: five time constants of the slowest-decaying mode (and of the noise filter).
  if (request.warm_up_s >= 0.0) {
    setup.warm_up_s = request.warm_up_s;
  } else {
    double slowest = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
      slowest = std::max(slowest, zeta[i] > 0.0 ? 1.0 / (zeta[i] * omega[i]) : 1e9);
    }
    if (setup.broadband.n_inputs > 0 && request.broadband_low_hz > 0.0) {
      slowest = std::max(slowest,
                         1.0 / (std::numbers::sqrt2 * std::numbers::pi * request.broadband_low_hz));
    }
    setup.warm_up_s = std::min(5.0 * slowest, 60.0);
  }
  summary.warm_up_s = setup.warm_up_s;
  const std::string modes_sha256 = io::sha256_file(request.modes_path);

  // ---- stream ----
  const auto started = std::chrono::steady_clock::now();
  ModalSimulator simulator(setup);
  const auto n_segments =
      static_cast<std::size_t>((total_samples + segment_samples - 1) / segment_samples);
  std::unique_ptr<io::TruthWriter> truth;
  if (!request.truth_path.empty()) {
    io::TruthInfo info;
    info.sample_rate_hz = request.sample_rate_hz;
    info.start_time = request.start_time;
    info.units = index.units;
    info.source_sha256 = modes_sha256;
    info.mode_indices = summary.mode_indices;
    info.frequencies_hz = summary.frequencies_hz;
    info.damping_ratios = zeta;
    info.with_accelerations = request.truth_accelerations;
    info.parameters = {
        {"seed", static_cast<double>(request.seed)},
        {"warm_up_s", setup.warm_up_s},
        {"rpm", request.rpm},
        {"cylinders", static_cast<double>(request.cylinders)},
        {"order_step", request.order_step},
        {"max_order", request.max_order},
        {"engine_force_n", request.engine_force_n},
        {"engine_moment_nm", request.engine_moment_nm},
        {"firing_gain", request.firing_gain},
        {"order_decay", request.order_decay},
        {"broadband_rms_n", request.broadband_rms_n},
        {"broadband_low_hz", request.broadband_low_hz},
        {"broadband_high_hz", std::min(request.broadband_high_hz, 0.49 * request.sample_rate_hz)},
        {"noise_rms", request.noise_rms}};
    info.text_parameters = {{"load_set", summary.load_set_used},
                            {"broadband_set", summary.broadband_set_used},
                            {"crank_axis", std::string(1, request.crank_axis)},
                            {"channel_unit", request.channel_unit},
                            {"modes_file", request.modes_path}};
    truth = std::make_unique<io::TruthWriter>(request.truth_path, std::move(info),
                                              request.chunk_samples);
  }

  SimulationBlock block;
  std::vector<double> sum_squares(summary.channels.size(), 0.0);
  std::vector<std::string> file_names;
  std::vector<std::int64_t> first_samples;
  const std::size_t chunk = std::max<std::size_t>(request.chunk_samples, 1);
  for (std::size_t k = 0; k < n_segments; ++k) {
    const std::int64_t first = static_cast<std::int64_t>(k) * segment_samples;
    const std::int64_t length = std::min(segment_samples, total_samples - first);
    const std::string path =
        request.segment_s > 0.0 ? segment_path(request.out_path, k, n_segments) : request.out_path;
    io::ArchiveWriterOptions options;
    options.sample_rate_hz = request.sample_rate_hz;
    options.start_time = io::format_utc_time(
        io::add_seconds(start, static_cast<double>(first) / request.sample_rate_hz));
    options.channels = summary.channels;
    options.sample_type = request.sample_type;
    options.units = index.units;
    options.source_sha256 = modes_sha256;
    options.chunk_samples = chunk;
    options.compression_level = request.compression_level;
    io::ArchiveWriter writer(path, options);
    for (std::int64_t done = 0; done < length;) {
      const auto n = static_cast<std::size_t>(
          std::min<std::int64_t>(length - done, static_cast<std::int64_t>(chunk)));
      simulator.next(n, block);
      writer.append(block.channels.data(), n);
      if (truth) truth->append(block.q.data(), block.q_acc.data(), block.rpm.data(), n);
      const std::size_t n_channels = summary.channels.size();
      for (std::size_t t = 0; t < n; ++t) {
        for (std::size_t c = 0; c < n_channels; ++c) {
          const double y = block.channels[t * n_channels + c];
          sum_squares[c] += y * y;
        }
      }
      done += static_cast<std::int64_t>(n);
    }
    writer.commit();
    spdlog::info("wrote {} ({} samples from {})", path, length, options.start_time);
    summary.archive_files.push_back(path);
    file_names.push_back(std::filesystem::path(path).filename().string());
    first_samples.push_back(first);
  }
  if (truth) {
    truth->set_archive_files(file_names, first_samples);
    truth->commit();
    summary.truth_path = request.truth_path;
  }
  summary.n_samples = total_samples;
  summary.channel_rms.resize(sum_squares.size());
  for (std::size_t c = 0; c < sum_squares.size(); ++c) {
    summary.channel_rms[c] = std::sqrt(sum_squares[c] / static_cast<double>(total_samples));
  }
  summary.simulate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace vsense::solvers
