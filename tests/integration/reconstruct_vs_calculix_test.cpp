// vsense reconstruct against CalculiX: ccx computes the transient response of a clamped steel
// block to tip forces by modal superposition (*MODAL DYNAMIC); the accelerations at four
// triaxial sensor nodes (chosen by vsense place) become an archive; vsense reconstruct must
// recover ccx's nodal stresses at every other node.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <algorithm>
#include <set>
#include <unordered_map>

#include "common/calculix.hpp"
#include "common/test_support.hpp"
#include "vsense/io/archive.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/io/modes_reader.hpp"
#include "vsense/io/placement_file.hpp"

namespace {

namespace ccx = vsense::test::calculix;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

std::string q(const std::string& path) { return "'" + path + "'"; }

TEST(ReconstructVsCalculix, StressesAtUnmeasuredNodesMatchCalculixModalDynamics) {
  if (!ccx::available()) GTEST_SKIP() << ccx::unavailable_message();
  ScratchDir dir("reconstruct-ccx");
  const std::string model = vsense::test::data_path("ccx/c3d8_cantilever.inp");
  constexpr int n_modes = 6;
  auto r = run_vsense("modes " + q(model) + " --modes 6 --out " + q(dir.file("modes.h5")) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vsense("place " + q(dir.file("modes.h5")) +
                 " --sensors 4 --method d-optimal --out " + q(dir.file("placement.h5")) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto sensors = vsense::io::read_placement(dir.file("placement.h5")).node_ids;
  ASSERT_EQ(sensors.size(), 4u);

  // Tip loads: the two nodes farthest from the clamp, forces in y and z: a 20 ms cosine ramp,
  // then two sines each near and between the first modes (173 and 246 Hz).
  const vsense::io::ModesReader modes(dir.file("modes.h5"));
  std::vector<std::size_t> order(modes.n_nodes());
  for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return modes.coordinates()[3 * a] > modes.coordinates()[3 * b];
  });
  ccx::ModalDynamicRequest request;
  request.model_inp = model;
  request.n_modes = n_modes;
  request.damping_ratio = 0.02;
  request.time_step_s = 5e-5;  // 20 kHz
  request.n_steps = 6000;      // 0.3 s
  request.stress_every = 10;
  const double pi = std::numbers::pi;
  auto force = [&](double f1, double f2, double phase, double amplitude) {
    std::vector<double> values(static_cast<std::size_t>(request.n_steps) + 1);
    for (std::size_t k = 0; k < values.size(); ++k) {
      const double t = static_cast<double>(k) * request.time_step_s;
      const double ramp = t < 0.02 ? 0.5 * (1.0 - std::cos(pi * t / 0.02)) : 1.0;
      values[k] = amplitude * ramp *
                  (std::sin(2 * pi * f1 * t + phase) + 0.6 * std::sin(2 * pi * f2 * t + 2 * phase));
    }
    return values;
  };
  request.loads = {{modes.node_ids()[order[0]], 2, force(150.0, 230.0, 0.3, 2000.0)},
                   {modes.node_ids()[order[1]], 3, force(190.0, 310.0, 1.1, 1500.0)}};
  request.print_nodes = sensors;
  const ccx::ModalDynamicResult truth = ccx::run_modal_dynamic(request);
  ASSERT_EQ(truth.frequencies_hz.size(), static_cast<std::size_t>(n_modes));
  for (int k = 0; k < n_modes; ++k) {
    EXPECT_NEAR(truth.frequencies_hz[k], modes.frequencies_hz()[k], 1e-6 * truth.frequencies_hz[k]);
  }

  // Accelerations at the sensors by the fourth-order central difference of ccx's displacements
  // (truncation (omega dt)^4 / 90: 5e-8 at 300 Hz), at rest before t = 0.
  const std::size_t ns = sensors.size();
  const auto n_samples = static_cast<std::size_t>(request.n_steps) - 1;  // t = 0 .. (n - 2) dt
  auto u = [&](std::ptrdiff_t k, std::size_t s, int c) {
    return k < 0 ? 0.0 : truth.displacement[(static_cast<std::size_t>(k) * ns + s) * 3 + static_cast<std::size_t>(c)];
  };
  vsense::io::ArchiveWriterOptions options;
  options.sample_rate_hz = 1.0 / request.time_step_s;
  options.start_time = "2025-03-01T12:00:00Z";
  options.sample_type = vsense::io::SampleType::float64;
  for (const auto node : sensors) {
    options.channels.push_back({fmt::format("N{}_X", node), node, {1, 0, 0}, "m/s^2"});
    options.channels.push_back({fmt::format("N{}_Y", node), node, {0, 1, 0}, "m/s^2"});
    options.channels.push_back({fmt::format("N{}_Z", node), node, {0, 0, 1}, "m/s^2"});
  }
  {
    vsense::io::ArchiveWriter writer(dir.file("archive.h5"), options);
    const double dt2 = request.time_step_s * request.time_step_s;
    std::vector<double> row(ns * 3);
    for (std::size_t k = 0; k < n_samples; ++k) {
      const auto kk = static_cast<std::ptrdiff_t>(k);
      for (std::size_t s = 0; s < ns; ++s) {
        for (int c = 0; c < 3; ++c) {
          row[s * 3 + static_cast<std::size_t>(c)] =
              (-u(kk + 2, s, c) + 16 * u(kk + 1, s, c) - 30 * u(kk, s, c) + 16 * u(kk - 1, s, c) -
               u(kk - 2, s, c)) /
              (12 * dt2);
        }
      }
      writer.append(row.data(), 1);
    }
    writer.commit();
  }

  r = run_vsense("reconstruct " + q(dir.file("modes.h5")) + " " + q(dir.file("archive.h5")) +
                 " --history --out " + q(dir.file("results.h5")) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const vsense::io::hdf5::File results(dir.file("results.h5"), vsense::io::hdf5::File::Mode::read);
  const auto node_ids = results.read_int64("/results/node_ids");
  const auto stress = results.read_double("/results/stress");  // [n, p, 6] float32 on disk
  const std::size_t p = node_ids.size();
  const auto settle = static_cast<std::size_t>(
      std::llround(results.double_attribute("/results", "settle_s") / request.time_step_s));
  ASSERT_LT(2 * settle + 1000, n_samples);

  // Compare at every stress frame inside the counted window, at every node that is no sensor.
  std::unordered_map<std::int64_t, std::size_t> column;
  for (std::size_t j = 0; j < p; ++j) column[node_ids[j]] = j;
  const std::set<std::int64_t> sensor_set(sensors.begin(), sensors.end());
  const std::size_t nodes_ccx = truth.stress_nodes.size();
  std::vector<double> error_sq(nodes_ccx, 0.0), truth_sq(nodes_ccx, 0.0);
  double error_all = 0.0, truth_all = 0.0;
  int frames = 0;
  for (std::size_t f = 0; f < truth.stress_steps.size(); ++f) {
    const auto k = static_cast<std::size_t>(truth.stress_steps[f]);
    if (k < settle || k >= n_samples - settle) continue;
    ++frames;
    for (std::size_t j = 0; j < nodes_ccx; ++j) {
      const auto id = truth.stress_nodes[j];
      if (sensor_set.count(id)) continue;
      const std::size_t col = column.at(id);
      for (int c = 0; c < 6; ++c) {
        const double expected = truth.stress[(f * nodes_ccx + j) * 6 + static_cast<std::size_t>(c)];
        const double got = stress[(k * p + col) * 6 + static_cast<std::size_t>(c)];
        error_sq[j] += (got - expected) * (got - expected);
        truth_sq[j] += expected * expected;
      }
    }
  }
  for (std::size_t j = 0; j < nodes_ccx; ++j) {
    error_all += error_sq[j];
    truth_all += truth_sq[j];
  }
  ASSERT_GT(frames, 300);
  const double overall = std::sqrt(error_all / truth_all);
  // Per node, the RMS error relative to the RMS stress of all nodes (nodes near the free end
  // carry almost no stress, so their own RMS would be a meaningless yardstick).
  const double samples_per_node = 6.0 * frames;
  const double rms_all =
      std::sqrt(truth_all / (samples_per_node * static_cast<double>(nodes_ccx - ns)));
  double worst = 0.0;
  std::int64_t worst_node = 0;
  for (std::size_t j = 0; j < nodes_ccx; ++j) {
    if (sensor_set.count(truth.stress_nodes[j])) continue;
    const double node_error = std::sqrt(error_sq[j] / samples_per_node) / rms_all;
    if (node_error > worst) {
      worst = node_error;
      worst_node = truth.stress_nodes[j];
    }
  }
  std::printf("stresses vs CalculiX at %zu unmeasured nodes, %d frames: relative RMS error %.3e "
              "overall, worst node %lld %.3e\n",
              nodes_ccx - ns, frames, overall, static_cast<long long>(worst_node), worst);
  // Budget: ccx prints stresses to 6 significant digits (5e-6 of each value) and displacements
  // to 7 (the difference stencil turns that into acceleration noise, mostly far above the
  // modes, where the integration divides it by omega^2); the history is float32 (6e-8); the
  // band filter is exact to 1e-5 and the tip loads lie inside its band. Measured: 1.2e-6
  // overall, 4.2e-6 at the worst node.
  EXPECT_LT(overall, 1e-5);
  EXPECT_LT(worst, 2e-5);
}

}  // namespace
