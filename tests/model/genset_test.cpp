// The built-in genset: DOF count against the request, masses against the design, a deck that
// reads back whole (every element node defined, sets present, nothing floating), and errors.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/elements.hpp"
#include "vsense/model/genset.hpp"
#include "vsense/model/inp_reader.hpp"

namespace {

using vsense::model::ElementType;
using vsense::model::GensetOptions;
using vsense::model::GensetSummary;
using vsense::model::Model;

// Design masses (kg) the generator is built to. The frame is steel (7850 kg/m^3) on its
// drawn geometry: two I-rails 6 m x (2 x 180 x 25 + 20 x 250 mm^2) and five 60 x 1480 x 250 mm
// cross-member plates.
constexpr double kFrameMass = 7850.0 * (2 * 6.0 * (2 * 0.18 * 0.025 + 0.02 * 0.25) +
                                        5 * 0.06 * 1.48 * 0.25);
constexpr double kEngineMass = 9000.0;
constexpr double kGeneratorMass = 6000.0;
constexpr double kPointMasses = 400.0 + 900.0 + 4 * 60.0;  // turbochargers, radiator, ancillaries
constexpr double kTotalMass = kFrameMass + kEngineMass + kGeneratorMass + kPointMasses;

/// Relative tolerance of masses: hexahedra on box geometry integrate the volume exactly, so
/// only the 10 significant digits of the written densities and rounding remain.
constexpr double kMassRel = 1e-6;
/// The generator promises the DOF count within 20% of the request.
constexpr double kDofRel = 0.20;

std::string write(const vsense::test::ScratchDir& dir, std::int64_t dofs,
                  ElementType element = ElementType::c3d8, GensetSummary* summary = nullptr) {
  GensetOptions options;
  options.target_dofs = dofs;
  options.element = element;
  const std::string path = dir.file("genset_" + std::to_string(dofs) + ".inp");
  const GensetSummary s = vsense::model::write_genset(options, path);
  if (summary) *summary = s;
  return path;
}

double solid_mass_of_set(const Model& model, const std::string& elset) {
  double mass = 0.0;
  std::vector<double> xyz;
  for (const std::int32_t e : model.element_sets.at(elset)) {
    const auto n = model.n_nodes_of(e);
    xyz.resize(3 * static_cast<std::size_t>(n));
    for (int a = 0; a < n; ++a) {
      const auto& c = model.coordinates[model.nodes_of(e)[a]];
      for (int d = 0; d < 3; ++d) xyz[3 * a + d] = c[d];
    }
    mass += vsense::model::solid_volume(model.element_types[e], xyz.data()) *
            model.material_of(e).density.value();
  }
  return mass;
}

/// Index of the connected component of every node, joining the nodes of each element.
std::vector<std::int32_t> components(const Model& model) {
  std::vector<std::int32_t> parent(model.n_nodes());
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](std::int32_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    const std::int32_t* nodes = model.nodes_of(e);
    for (int a = 1; a < model.n_nodes_of(e); ++a) parent[find(nodes[a])] = find(nodes[0]);
  }
  std::vector<std::int32_t> root(model.n_nodes());
  for (std::size_t i = 0; i < root.size(); ++i) root[i] = find(static_cast<std::int32_t>(i));
  return root;
}

class GensetDofs : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(GensetDofs, DofCountWithinTwentyPercentOfTarget) {
  vsense::test::ScratchDir dir("genset_dofs");
  for (const ElementType element : {ElementType::c3d8, ElementType::c3d20r}) {
    GensetSummary summary;
    const std::string path = write(dir, GetParam(), element, &summary);
    const double ratio = static_cast<double>(summary.n_dofs) / static_cast<double>(GetParam());
    EXPECT_LE(std::abs(ratio - 1.0), kDofRel)
        << vsense::model::element_type_name(element) << ": " << summary.n_dofs
        << " DOFs for a target of " << GetParam();
    EXPECT_EQ(summary.n_dofs, 3 * summary.n_nodes);

    const Model model = vsense::model::read_inp(path);
    EXPECT_EQ(static_cast<std::int64_t>(model.n_nodes()), summary.n_nodes);
    EXPECT_EQ(static_cast<std::int64_t>(model.n_elements()), summary.n_elements);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, GensetDofs, ::testing::Values(10'000, 30'000, 100'000));

TEST(Genset, BodyMassesMatchTheDesign) {
  vsense::test::ScratchDir dir("genset_mass");
  const Model model = vsense::model::read_inp(write(dir, 30'000));
  const auto properties = vsense::model::mass_properties(model);

  EXPECT_NEAR(solid_mass_of_set(model, "FRAME"), kFrameMass, kMassRel * kFrameMass);
  EXPECT_NEAR(solid_mass_of_set(model, "ENGINE"), kEngineMass, kMassRel * kEngineMass);
  EXPECT_NEAR(solid_mass_of_set(model, "GENERATOR"), kGeneratorMass, kMassRel * kGeneratorMass);
  EXPECT_NEAR(properties.total_mass, kTotalMass, kMassRel * kTotalMass);
  // The set is symmetric about y = 0; its centre of mass lies between engine and generator
  // and about a metre above the foundation.
  EXPECT_NEAR(properties.centre_of_mass[1], 0.0, 1e-6);
  EXPECT_GT(properties.centre_of_mass[0], 2.0);
  EXPECT_LT(properties.centre_of_mass[0], 4.0);
  EXPECT_GT(properties.centre_of_mass[2], 0.7);
  EXPECT_LT(properties.centre_of_mass[2], 1.4);
}

TEST(Genset, QuadraticElementsCarryTheSameMass) {
  vsense::test::ScratchDir dir("genset_c3d20r");
  const Model model = vsense::model::read_inp(write(dir, 30'000, ElementType::c3d20r));
  for (const std::int32_t e : model.element_sets.at("SOLIDS")) {
    ASSERT_EQ(model.element_types[e], ElementType::c3d20r);
    ASSERT_EQ(model.n_nodes_of(e), 20);
  }
  EXPECT_NEAR(vsense::model::mass_properties(model).total_mass, kTotalMass,
              kMassRel * kTotalMass);
}

TEST(Genset, EveryNodeBelongsToAnElementAndNothingFloats) {
  vsense::test::ScratchDir dir("genset_connect");
  for (const ElementType element : {ElementType::c3d8, ElementType::c3d20r}) {
    const Model model = vsense::model::read_inp(write(dir, 10'000, element));
    std::vector<char> used(model.n_nodes(), 0);
    for (const std::int32_t n : model.element_nodes) {
      ASSERT_GE(n, 0);
      ASSERT_LT(static_cast<std::size_t>(n), model.n_nodes());
      used[n] = 1;
    }
    EXPECT_EQ(std::count(used.begin(), used.end(), 0), 0) << "nodes used by no element";

    // One connected component, held by the anchor bolts.
    const auto root = components(model);
    const auto& fixed = model.node_sets.at("FIXED");
    ASSERT_FALSE(fixed.empty());
    for (std::size_t i = 0; i < root.size(); ++i) {
      ASSERT_EQ(root[i], root[fixed.front()])
          << "node " << model.node_ids[i] << " is not connected to the frame";
    }
  }
}

TEST(Genset, MountsJoinFeetToTheFrameTop) {
  vsense::test::ScratchDir dir("genset_mounts");
  const Model model = vsense::model::read_inp(write(dir, 30'000));
  std::vector<char> in_frame(model.n_nodes(), 0), in_body(model.n_nodes(), 0);
  for (const auto n : model.node_sets.at("FRAME_TOP")) in_frame[n] = 1;
  for (const auto n : model.node_sets.at("ENGINE_FEET")) in_body[n] = 1;
  for (const auto n : model.node_sets.at("GENERATOR_FEET")) in_body[n] = 1;

  std::size_t n_mounts = 0;
  for (const char* direction : {"MOUNTS_X", "MOUNTS_Y", "MOUNTS_Z"}) {
    const auto& elements = model.element_sets.at(direction);
    ASSERT_EQ(elements.size(), 12u) << direction;
    for (const std::int32_t e : elements) {
      ASSERT_EQ(model.element_types[e], ElementType::spring2);
      const auto& section = model.sections[model.element_section[e]];
      EXPECT_EQ(section.dof1, section.dof2);
      EXPECT_GT(section.stiffness, 1e6);
      EXPECT_LT(section.stiffness, 1e7);
      const std::int32_t upper = model.nodes_of(e)[0], lower = model.nodes_of(e)[1];
      EXPECT_TRUE(in_body[upper]) << "mount " << model.element_ids[e];
      EXPECT_TRUE(in_frame[lower]) << "mount " << model.element_ids[e];
      // directly above the frame node, 120 mm higher (the rubber element's height)
      const auto& a = model.coordinates[upper];
      const auto& b = model.coordinates[lower];
      EXPECT_NEAR(a[0], b[0], 1e-9);
      EXPECT_NEAR(a[1], b[1], 1e-9);
      EXPECT_NEAR(a[2] - b[2], 0.12, 1e-9);
    }
    n_mounts += elements.size();
  }
  EXPECT_EQ(model.element_sets.at("MOUNTS").size(), n_mounts);
  EXPECT_FALSE(model.element_sets.at("COUPLING").empty());
  for (const std::int32_t e : model.element_sets.at("COUPLING")) {
    EXPECT_EQ(model.element_types[e], ElementType::springa);
  }
}

TEST(Genset, NamedSetsArePresentAndPlaced) {
  vsense::test::ScratchDir dir("genset_sets");
  const std::string path = write(dir, 10'000);
  const Model model = vsense::model::read_inp(path);
  for (const char* name : {"FRAME", "ENGINE", "GENERATOR", "FRAME_TOP", "FIXED", "ENGINE_FEET",
                           "GENERATOR_FEET", "SURFACE", "MOUNT_UPPER", "MOUNT_LOWER",
                           "EQUIPMENT"}) {
    ASSERT_TRUE(model.node_sets.count(name)) << "NSET " << name;
    EXPECT_FALSE(model.node_sets.at(name).empty()) << "NSET " << name;
  }
  for (const char* name : {"FRAME", "ENGINE", "GENERATOR", "SOLIDS", "MOUNTS", "MOUNTS_X",
                           "MOUNTS_Y", "MOUNTS_Z", "ENGINE_MOUNTS", "GENERATOR_MOUNTS",
                           "COUPLING", "SPRINGS", "POINT_MASSES"}) {
    ASSERT_TRUE(model.element_sets.count(name)) << "ELSET " << name;
    EXPECT_FALSE(model.element_sets.at(name).empty()) << "ELSET " << name;
  }
  for (const auto n : model.node_sets.at("FRAME_TOP")) {
    EXPECT_NEAR(model.coordinates[n][2], 0.30, 1e-9);
  }
  // The anchor bolts hold all three translations of the FIXED nodes, and only those.
  const auto& fixed = model.node_sets.at("FIXED");
  for (const auto n : fixed) EXPECT_NEAR(model.coordinates[n][2], 0.0, 1e-9);
  EXPECT_EQ(model.fixed_dofs.size(), 3 * fixed.size());
  EXPECT_EQ(model.element_sets.at("SOLIDS").size(),
            model.element_sets.at("FRAME").size() + model.element_sets.at("ENGINE").size() +
                model.element_sets.at("GENERATOR").size());

  // Pure model data: the tests and users append their own steps.
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::string keyword = line.substr(0, 5);
    for (char& c : keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_NE(keyword, "*STEP") << line;
  }
}

TEST(Genset, AssemblesWithPositiveDiagonal) {
  vsense::test::ScratchDir dir("genset_assemble");
  const Model model = vsense::model::read_inp(write(dir, 10'000));
  const auto dofs = vsense::model::build_dof_map(model);
  EXPECT_EQ(dofs.n_equations,
            static_cast<std::int64_t>(3 * model.n_nodes() - model.fixed_dofs.size()));
  const auto system = vsense::model::assemble(model, dofs);
  ASSERT_EQ(system.stiffness.rows(), dofs.n_equations);
  for (Eigen::Index i = 0; i < system.stiffness.rows(); ++i) {
    ASSERT_GT(system.stiffness.coeff(i, i), 0.0) << "equation " << i;
    ASSERT_GT(system.mass.coeff(i, i), 0.0) << "equation " << i;
  }
}

TEST(Genset, OutOfRangeRequestsAreInputErrors) {
  vsense::test::ScratchDir dir("genset_errors");
  for (const std::int64_t dofs : {std::int64_t{-1}, std::int64_t{0}, std::int64_t{9'999},
                                  std::int64_t{10'000'001}, std::int64_t{1'000'000'000}}) {
    GensetOptions options;
    options.target_dofs = dofs;
    EXPECT_THROW(vsense::model::write_genset(options, dir.file("bad.inp")), vsense::InputError)
        << dofs;
  }
  for (const ElementType element : {ElementType::c3d4, ElementType::c3d10, ElementType::c3d8r,
                                    ElementType::c3d20, ElementType::mass}) {
    GensetOptions options;
    options.element = element;
    EXPECT_THROW(vsense::model::write_genset(options, dir.file("bad.inp")), vsense::InputError)
        << vsense::model::element_type_name(element);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.inp")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.inp.tmp")));
}

TEST(Genset, UnwritablePathIsAnIoErrorAndLeavesNoFile) {
  vsense::test::ScratchDir dir("genset_io");
  GensetOptions options;
  options.target_dofs = 10'000;
  const std::string path = dir.file("no_such_dir/genset.inp");
  EXPECT_THROW(vsense::model::write_genset(options, path), vsense::IoError);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Genset, ReplacesAnExistingFileWhole) {
  vsense::test::ScratchDir dir("genset_replace");
  const std::string path = dir.file("genset.inp");
  { std::ofstream(path) << "old contents\n"; }
  GensetOptions options;
  options.target_dofs = 10'000;
  const auto summary = vsense::model::write_genset(options, path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(static_cast<std::int64_t>(vsense::model::read_inp(path).n_nodes()), summary.n_nodes);
}

TEST(Genset, SlowMillionDofsAreGeneratedQuickly) {
  vsense::test::ScratchDir dir("genset_large");
  const auto start = std::chrono::steady_clock::now();
  GensetSummary summary;
  write(dir, 1'000'000, ElementType::c3d8, &summary);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(std::abs(summary.n_dofs / 1e6 - 1.0), kDofRel);
  // ~0.4 s on a 2-core CI machine; the bound only catches a lost linear-time property.
  EXPECT_LT(seconds, 10.0);
}

}  // namespace
