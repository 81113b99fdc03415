// `vsense modes` against CalculiX on the same .inp: frequencies, mode shapes (MAC, or principal
// angles for repeated eigenvalues), nodal stresses, mass properties and rigid-body modes, for
// every solid element type, springs, point masses and a free-free model.
//
// Both programs solve the same discrete problem (same element formulations by contract), so the
// tolerances (tests/common/tolerances.hpp) are set by the reference's output precision, not by
// discretisation error. Models: tests/data/ccx/*.inp, from make_models.py there.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/calculix.hpp"
#include "common/modal_compare.hpp"
#include "common/test_support.hpp"
#include "common/tolerances.hpp"
#include "vsense/io/modes_file.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"
#include "vsense/solvers/slepc.hpp"

namespace {

namespace ccx = vsense::test::calculix;
namespace modal = vsense::test::modal;
namespace tol = vsense::test::tolerance;

constexpr int kModes = 12;  // modes asked of vsense; all of them are compared

/// The `** vsense-expected:` header of a generated model (exact values, see make_models.py).
struct Expected {
  double total_mass = 0;
  std::array<double, 3> centre_of_mass{};
  double solid_mass = 0;
  std::array<double, 3> solid_centre_of_mass{};
  std::size_t rigid_body_modes = 0;
};

Expected read_expected(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::map<std::string, std::vector<double>> values;
  const std::regex pattern(R"(^\*\* vsense-expected: (\w+) = (.*)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, pattern)) continue;
    std::vector<double> numbers;
    std::stringstream ss(m[2].str());
    std::string item;
    while (std::getline(ss, item, ',')) numbers.push_back(std::stod(item));
    values[m[1].str()] = numbers;
  }
  const auto get = [&](const std::string& key, std::size_t n) {
    const auto it = values.find(key);
    if (it == values.end() || it->second.size() != n)
      throw std::runtime_error(fmt::format("{}: no 'vsense-expected: {}' with {} values", path, key, n));
    return it->second;
  };
  Expected e;
  e.total_mass = get("total_mass", 1)[0];
  e.solid_mass = get("solid_mass", 1)[0];
  const auto c = get("centre_of_mass", 3), s = get("solid_centre_of_mass", 3);
  for (int d = 0; d < 3; ++d) {
    e.centre_of_mass[d] = c[d];
    e.solid_centre_of_mass[d] = s[d];
  }
  e.rigid_body_modes = static_cast<std::size_t>(get("rigid_body_modes", 1)[0]);
  return e;
}

/// vsense and ccx on one model, computed once and shared by the tests of that model.
struct Solved {
  std::string model;        ///< path
  std::string failure;      ///< why vsense or ccx produced nothing (empty on success)
  vsense::io::ModesData vsense;
  ccx::Result ccx;
  modal::Comparison comparison;
  double vsense_wall_s = 0;
};

/// CalculiX's answer for a model, computed once per test program.
const ccx::Result& calculix_reference(const std::string& model) {
  static std::map<std::string, ccx::Result> cache;
  const auto it = cache.find(model);
  if (it != cache.end()) return it->second;
  ccx::Options options;
  options.n_modes = kModes;
  return cache.emplace(model, ccx::run_frequency(model, options)).first->second;
}

/// vsense's modes of a model on a backend, compared with CalculiX's.
const Solved& solve(const std::string& name, const std::string& backend) {
  static std::map<std::string, std::unique_ptr<Solved>> cache;
  auto& slot = cache[name + "/" + backend];
  if (slot) return *slot;
  slot = std::make_unique<Solved>();
  Solved& s = *slot;
  s.model = vsense::test::data_path("ccx/" + name + ".inp");
  vsense::test::ScratchDir dir("modes-vs-ccx");
  const std::string out = dir.file("modes.h5");
  const auto start = std::chrono::steady_clock::now();
  // cuda_block: the device block Lanczos (forced: these models are within the dense limit).
  const std::string backend_args =
      backend == "cuda_block" ? "--backend cuda --solver block" : "--backend " + backend;
  const auto run = vsense::test::run_vsense(fmt::format("modes '{}' --modes {} {} --out '{}'",
                                                        s.model, kModes, backend_args, out));
  s.vsense_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (run.exit_code != 0) {
    s.failure = fmt::format("vsense modes --backend {} failed on {} (exit code {}): {}{}", backend,
                            name, run.exit_code, run.err, run.out);
    return s;
  }
  try {
    s.vsense = vsense::io::read_modes(out);
  } catch (const std::exception& e) {
    s.failure = fmt::format("reading vsense's modes file of {}: {}", name, e.what());
    return s;
  }
  try {
    s.ccx = calculix_reference(s.model);
    modal::CompareOptions compare;
    compare.n_modes = kModes;
    s.comparison = modal::compare(modal::from_modes_file(s.vsense), modal::from_calculix(s.ccx), compare);
  } catch (const std::exception& e) {
    s.failure = fmt::format("CalculiX reference for {}: {}", name, e.what());
  }
  return s;
}

/// (model, backend): every model through every backend this build can run.
using Case = std::tuple<std::string, std::string>;

class ModesVsCalculix : public ::testing::TestWithParam<Case> {
protected:
  void SetUp() override {
    if (!ccx::available()) GTEST_SKIP() << ccx::unavailable_message();
    if (backend() == "slepc" && !vsense::solvers::slepc_compiled()) {
      GTEST_SKIP() << "this build has no SLEPc backend (VSENSE_WITH_SLEPC)";
    }
    if (backend().rfind("cuda", 0) == 0 && vsense::CudaExecutor::device_count() == 0) {
      GTEST_SKIP() << "no usable CUDA device";
    }
  }
  const std::string& model_name() const { return std::get<0>(GetParam()); }
  const std::string& backend() const { return std::get<1>(GetParam()); }
  /// The solved model, or nullptr after recording a failure.
  const Solved* solved() {
    const Solved& s = solve(model_name(), backend());
    if (!s.failure.empty()) {
      ADD_FAILURE() << s.failure;
      return nullptr;
    }
    return &s;
  }
};

TEST_P(ModesVsCalculix, ModesFileHasTheRequestedModesOnEveryNode) {
  const Solved* s = solved();
  if (!s) return;
  EXPECT_EQ(s->vsense.n_modes(), static_cast<std::size_t>(kModes));
  EXPECT_EQ(s->comparison.n_missing_nodes, 0u)
      << "nodes in ccx's results that vsense's modes file lacks\n" << s->comparison.table();
  EXPECT_EQ(s->vsense.n_nodes(), s->ccx.n_nodes());
  // the record of the agreement, also when everything passes
  std::cout << model_name() << " (" << backend() << "): vsense " << fmt::format("{:.2f}", s->vsense_wall_s) << " s, ccx "
            << fmt::format("{:.2f}", s->ccx.wall_s) << " s (" << s->ccx.n_modes_requested
            << " modes requested)\n" << s->comparison.table();
}

TEST_P(ModesVsCalculix, FrequenciesMatchCalculix) {
  const Solved* s = solved();
  if (!s) return;
  std::string failures;
  for (const auto& m : s->comparison.modes) {
    if (m.rigid) continue;  // zero frequencies: see RigidBodyModes
    if (!(m.frequency_rel_error <= tol::frequency_rel)) {
      failures += fmt::format("mode {}: vsense {:.10g} Hz, ccx {:.10g} Hz, relative error {:.3e} "
                              "> allowed {:.1e}\n",
                              m.index + 1, m.frequency_hz, m.reference_frequency_hz,
                              m.frequency_rel_error, tol::frequency_rel);
    }
  }
  EXPECT_TRUE(failures.empty()) << failures << s->comparison.table();
  // the record, also when passing
  double worst = 0;
  for (const auto& m : s->comparison.modes)
    if (!m.rigid) worst = std::max(worst, m.frequency_rel_error);
  RecordProperty("worst_frequency_rel_error", fmt::format("{:.3e}", worst));
}

TEST_P(ModesVsCalculix, ShapesMatchCalculixByMacOrSubspace) {
  const Solved* s = solved();
  if (!s) return;
  std::string failures;
  for (const auto& m : s->comparison.modes) {
    const bool repeated = m.group_size > 1;
    const double allowed = repeated ? tol::subspace_cos2_min : tol::mac_min;
    if (!(m.mac >= allowed)) {
      failures += fmt::format("mode {}: {} {:.9f} < allowed {}\n", m.index + 1,
                              repeated ? fmt::format("subspace of modes {}..{}: min cos^2", m.group + 1, m.group + m.group_size)
                                       : std::string("MAC"),
                              m.mac, allowed);
    }
    // amplitude too: both sets are mass-normalised
    if (!(m.shape_error <= tol::shape_rel_peak)) {
      failures += fmt::format("mode {}: max |phi - phi_ccx| / max |phi_ccx| = {:.3e} > allowed {:.1e}\n",
                              m.index + 1, m.shape_error, tol::shape_rel_peak);
    }
  }
  EXPECT_TRUE(failures.empty()) << failures << s->comparison.table();
}

TEST_P(ModesVsCalculix, NodalStressesMatchCalculix) {
  const Solved* s = solved();
  if (!s) return;
  ASSERT_FALSE(s->vsense.nodal_stress.empty()) << "no /modes/nodal_stress in vsense's file";
  std::string failures;
  std::size_t compared = 0;
  for (const auto& m : s->comparison.modes) {
    if (m.rigid) continue;  // no stress in rigid-body motion; round-off only
    ++compared;
    if (!(m.stress_error <= tol::stress_rel_peak)) {
      failures += fmt::format("mode {}: max |sigma - sigma_ccx| = {:.3e} of the peak {:.6g} Pa > "
                              "allowed {:.1e}\n",
                              m.index + 1, m.stress_error, m.peak_stress, tol::stress_rel_peak);
    }
  }
  EXPECT_GT(compared, 0u);
  EXPECT_TRUE(failures.empty()) << failures << s->comparison.table();
}

TEST_P(ModesVsCalculix, RigidBodyModesAsExpectedThenElasticOnes) {
  const Solved* s = solved();
  if (!s) return;
  const Expected expected = read_expected(s->model);
  EXPECT_EQ(s->comparison.n_rigid, expected.rigid_body_modes) << "ccx\n" << s->comparison.table();
  EXPECT_EQ(s->comparison.n_rigid_tested, expected.rigid_body_modes) << "vsense\n" << s->comparison.table();
  if (expected.rigid_body_modes == 0 || s->vsense.n_modes() <= expected.rigid_body_modes) return;
  const double first_elastic = modal::frequency_hz(s->vsense.eigenvalues[expected.rigid_body_modes]);
  for (std::size_t k = 0; k < expected.rigid_body_modes; ++k) {
    const double f = modal::frequency_hz(std::abs(s->vsense.eigenvalues[k]));
    EXPECT_LT(f, tol::rigid_body_frequency_ratio * first_elastic)
        << "rigid-body mode " << k + 1 << ": " << f << " Hz vs first elastic " << first_elastic
        << " Hz (allowed ratio " << tol::rigid_body_frequency_ratio << ")";
  }
  for (std::size_t k = expected.rigid_body_modes; k < s->vsense.n_modes(); ++k)
    EXPECT_GE(s->vsense.eigenvalues[k], s->vsense.eigenvalues[expected.rigid_body_modes]);
}

TEST_P(ModesVsCalculix, MassAndCentreOfMassAreExact) {
  // no vsense binary needed: the model library's own mass properties
  const std::string model = vsense::test::data_path("ccx/" + model_name() + ".inp");
  const Expected expected = read_expected(model);
  const auto inp = vsense::model::read_inp(model);
  const auto mass = vsense::model::mass_properties(inp);
  EXPECT_NEAR(mass.total_mass, expected.total_mass, tol::mass_rel * expected.total_mass)
      << "relative error " << std::abs(mass.total_mass / expected.total_mass - 1) << ", allowed "
      << tol::mass_rel;
  // centre of mass relative to the model's size (coordinates are O(1 m) here)
  for (int d = 0; d < 3; ++d) {
    EXPECT_NEAR(mass.centre_of_mass[d], expected.centre_of_mass[d], tol::mass_rel)
        << "centre of mass, axis " << d << ": vsense " << mass.centre_of_mass[d] << ", exact "
        << expected.centre_of_mass[d];
  }
  // ccx's EMAS (solids only, 7 digits) confirms the exact values the generator wrote
  const Solved& s = solve(model_name(), backend());
  if (!s.ccx.solid_mass) return;  // ccx run failed: reported by the other tests
  EXPECT_NEAR(s.ccx.solid_mass->total_mass, expected.solid_mass,
              tol::ccx_printed_mass_rel * expected.solid_mass);
  for (int d = 0; d < 3; ++d)
    EXPECT_NEAR(s.ccx.solid_mass->centre_of_mass[d], expected.solid_centre_of_mass[d],
                tol::ccx_printed_mass_rel);
}

std::string name_of(const ::testing::TestParamInfo<Case>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Models, ModesVsCalculix,
                         ::testing::Combine(::testing::Values("c3d4_cantilever", "c3d10_cantilever",
                                                              "c3d8_cantilever", "c3d20_cantilever",
                                                              "c3d20r_cantilever",
                                                              "mixed_springs_masses",
                                                              "free_free_c3d20"),
                                            // cuda: the dense device path (these models have
                                            // at most a few thousand equations); cuda_block:
                                            // the device block Lanczos
                                            ::testing::Values("cpu", "slepc", "cuda",
                                                              "cuda_block")),
                         name_of);

}  // namespace
