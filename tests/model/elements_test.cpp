/// @file elements_test.cpp
/// @brief Solid elements (C3D4, C3D10, C3D8, C3D20, C3D20R): element invariants on distorted
/// single elements, CalculiX's nodal averaging, and the decisive check: natural frequencies,
/// mode shapes and nodal modal stresses of small cantilevers against ccx on the same .inp
/// (tests/data/elements/, made by make_meshes.py there).
#include "vsense/model/elements.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ccx_parse_local.hpp"
#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"

namespace {

using namespace vsense::model;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- tolerances, each with its reason -------------------------------------------------------

/// Element matrices are built from sums of O(100) products: symmetry is exact by construction,
/// K * rigid mode cancels to round-off, ~1e-16 * n_terms relative to |K| |r|.
constexpr double round_off_rel = 1e-12;

/// An eigenvalue of K counts as zero below this fraction of the largest: round-off puts the
/// rigid-body eigenvalues near 1e-16 * lambda_max, the smallest elastic ones of these
/// moderately distorted elements are above 1e-4 * lambda_max.
constexpr double zero_eigenvalue_rel = 1e-10;

/// CalculiX's extrapolation tables carry rounded coefficients, so even an exactly constant
/// stress comes out of them scaled by the table's row sum: 0.99999 for C3D10 (a4, 5 decimals),
/// 0.99996 for C3D8 and C3D20R (a8, 4 digits), within 5e-5 of 1 for C3D20 (a27, 5 decimals;
/// measured worst row). C3D4 copies its single value. vsense reproduces the tables, so the
/// patch test asks for exactness up to these factors (plus round-off).
double extrapolation_rounding(ElementType type) {
  switch (type) {
    case ElementType::c3d4:
      return 0.0;
    case ElementType::c3d10:
      return 1.0e-5;
    case ElementType::c3d8:
    case ElementType::c3d20r:
      return 4.0e-5;
    default:
      return 5.0e-5;
  }
}

// Against ccx on the same deck: two programs solving the same discrete problem.
/// ccx prints eigenvalues with 7 significant digits (.dat, E14.7): at most 5e-7 relative in the
/// eigenvalue, 2.5e-7 in the frequency; a different mass or integration rule shows at >= 1e-4.
constexpr double frequency_rel = 1e-6;
/// Shapes from the 6-digit .frd lose ~1e-10 of MAC; swapped or different modes fall far below.
constexpr double mac_min = 0.9999;
/// ccx writes stresses with 6 digits (E12.5): <= 5e-6 of the mode's peak. A different
/// extrapolation or averaging rule shows at >= 1e-2 of the peak.
constexpr double stress_rel_peak = 1e-4;
/// Modes closer than this (relative eigenvalue gap) are treated as repeated: no MAC check.
constexpr double repeated_rel_gap = 1e-4;

// ---- single distorted elements ---------------------------------------------------------------

Material steel() {
  Material m;
  m.name = "STEEL";
  m.young_modulus = 210000.0;
  m.poisson_ratio = 0.3;
  m.density = 7.85e-9;
  return m;
}

struct ElementCase {
  ElementType type;
  const char* name;
};

/// Natural coordinates of the nodes in Abaqus/CalculiX order.
std::vector<std::array<double, 3>> reference_nodes(ElementType type) {
  if (type == ElementType::c3d4 || type == ElementType::c3d10) {
    std::vector<std::array<double, 3>> p = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    if (type == ElementType::c3d10) {
      const int edges[6][2] = {{0, 1}, {1, 2}, {2, 0}, {0, 3}, {1, 3}, {2, 3}};
      for (const auto& e : edges) {
        p.push_back({0.5 * (p[e[0]][0] + p[e[1]][0]), 0.5 * (p[e[0]][1] + p[e[1]][1]),
                     0.5 * (p[e[0]][2] + p[e[1]][2])});
      }
    }
    return p;
  }
  std::vector<std::array<double, 3>> p = {{-1, -1, -1}, {1, -1, -1}, {1, 1, -1}, {-1, 1, -1},
                                          {-1, -1, 1},  {1, -1, 1},  {1, 1, 1},  {-1, 1, 1}};
  if (type != ElementType::c3d8) {
    const int edges[12][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {4, 5}, {5, 6},
                              {6, 7}, {7, 4}, {0, 4}, {1, 5}, {2, 6}, {3, 7}};
    for (const auto& e : edges) {
      p.push_back({0.5 * (p[e[0]][0] + p[e[1]][0]), 0.5 * (p[e[0]][1] + p[e[1]][1]),
                   0.5 * (p[e[0]][2] + p[e[1]][2])});
    }
  }
  return p;
}

/// A smooth non-affine map: no element below is a parallelepiped, and quadratic elements get
/// curved edges (their midside nodes are mapped too).
std::array<double, 3> distort(const std::array<double, 3>& p) {
  return {2.0 * p[0] + 0.3 * p[1] + 0.1 * std::sin(1.3 * p[1] + 0.4 * p[2]) + 0.05 * p[0] * p[1],
          0.2 * p[0] + 1.5 * p[1] + 0.12 * std::cos(0.8 * p[0]) - 0.06 * p[2] * p[2],
          0.1 * p[0] - 0.2 * p[1] + 1.2 * p[2] + 0.08 * p[0] * p[1] * p[2] + 3.0};
}

/// [n, 3] coordinates of a distorted element of the given type.
std::vector<double> distorted_element(ElementType type) {
  std::vector<double> xyz;
  for (const auto& p : reference_nodes(type)) {
    const auto x = distort(p);
    xyz.insert(xyz.end(), x.begin(), x.end());
  }
  return xyz;
}

RowMatrix stiffness_of(ElementType type, const std::vector<double>& xyz, RowMatrix* mass) {
  const int n_dofs = static_cast<int>(xyz.size());
  RowMatrix k(n_dofs, n_dofs);
  if (mass) mass->resize(n_dofs, n_dofs);
  solid_matrices(type, xyz.data(), steel(), k.data(), mass ? mass->data() : nullptr);
  return k;
}

/// The six rigid-body modes [3n, 6]: three translations, three rotations about the origin.
Eigen::MatrixXd rigid_body_modes(const std::vector<double>& xyz) {
  const int n = static_cast<int>(xyz.size()) / 3;
  Eigen::MatrixXd r = Eigen::MatrixXd::Zero(3 * n, 6);
  for (int a = 0; a < n; ++a) {
    const double x = xyz[3 * a], y = xyz[3 * a + 1], z = xyz[3 * a + 2];
    for (int d = 0; d < 3; ++d) r(3 * a + d, d) = 1.0;
    // omega x position for omega = e_x, e_y, e_z
    r(3 * a + 1, 3) = -z;
    r(3 * a + 2, 3) = y;
    r(3 * a + 0, 4) = z;
    r(3 * a + 2, 4) = -x;
    r(3 * a + 0, 5) = -y;
    r(3 * a + 1, 5) = x;
  }
  return r;
}

void check_symmetry(ElementType type) {
  const auto xyz = distorted_element(type);
  RowMatrix m;
  const RowMatrix k = stiffness_of(type, xyz, &m);
  const double k_asym = (k - k.transpose()).cwiseAbs().maxCoeff();
  const double m_asym = (m - m.transpose()).cwiseAbs().maxCoeff();
  EXPECT_LE(k_asym, round_off_rel * k.cwiseAbs().maxCoeff()) << "|K - K^T|max";
  EXPECT_LE(m_asym, round_off_rel * m.cwiseAbs().maxCoeff()) << "|M - M^T|max";
  // Mass couples only equal directions, and its diagonal is positive.
  for (int r = 0; r < m.rows(); ++r) {
    EXPECT_GT(m(r, r), 0.0) << "mass diagonal " << r;
    for (int s = 0; s < m.cols(); ++s) {
      if (r % 3 != s % 3) {
        ASSERT_EQ(m(r, s), 0.0) << "mass couples directions at " << r << "," << s;
      }
    }
  }
}

void check_rigid_body_motion(ElementType type) {
  const auto xyz = distorted_element(type);
  const RowMatrix k = stiffness_of(type, xyz, nullptr);
  const Eigen::MatrixXd r = rigid_body_modes(xyz);
  const double scale = k.cwiseAbs().maxCoeff();
  for (int mode = 0; mode < 6; ++mode) {
    const Eigen::VectorXd f = k * r.col(mode);
    const double allowed = round_off_rel * scale * r.col(mode).cwiseAbs().maxCoeff() * k.cols();
    EXPECT_LE(f.cwiseAbs().maxCoeff(), allowed) << "rigid-body mode " << mode;
  }
}

int zero_eigenvalue_count(ElementType type) {
  const auto xyz = distorted_element(type);
  const RowMatrix k = stiffness_of(type, xyz, nullptr);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(Eigen::MatrixXd(k),
                                                             Eigen::EigenvaluesOnly);
  const Eigen::VectorXd lambda = eigen.eigenvalues();
  const double largest = lambda.cwiseAbs().maxCoeff();
  int zeros = 0;
  for (int i = 0; i < lambda.size(); ++i) {
    EXPECT_GT(lambda(i), -zero_eigenvalue_rel * largest) << "K is not positive semi-definite";
    if (std::abs(lambda(i)) < zero_eigenvalue_rel * largest) ++zeros;
  }
  return zeros;
}

void check_mass_sum(ElementType type) {
  const auto xyz = distorted_element(type);
  RowMatrix m;
  stiffness_of(type, xyz, &m);
  const double volume = solid_volume(type, xyz.data());
  const double expected = *steel().density * volume;
  for (int d = 0; d < 3; ++d) {
    double sum = 0.0;
    for (int r = d; r < m.rows(); r += 3) {
      for (int s = d; s < m.cols(); s += 3) sum += m(r, s);
    }
    EXPECT_NEAR(sum, expected, round_off_rel * expected) << "direction " << d;
  }
}

/// Linear displacement u = A x + b: every node must show sigma = lambda tr(eps) I + 2 mu eps.
void check_patch_test(ElementType type) {
  const auto xyz = distorted_element(type);
  const int n = static_cast<int>(xyz.size()) / 3;
  const double a[3][3] = {
      {1.0e-3, -4.0e-4, 2.5e-4}, {6.0e-4, -2.0e-4, 3.0e-4}, {-1.5e-4, 7.0e-4, 5.0e-4}};
  const double b[3] = {0.01, -0.02, 0.03};
  std::vector<double> u(3 * n);
  for (int p = 0; p < n; ++p) {
    for (int i = 0; i < 3; ++i) {
      u[3 * p + i] =
          b[i] + a[i][0] * xyz[3 * p] + a[i][1] * xyz[3 * p + 1] + a[i][2] * xyz[3 * p + 2];
    }
  }
  const Material m = steel();
  const double e = *m.young_modulus, nu = *m.poisson_ratio;
  const double mu = e / (2.0 * (1.0 + nu)), lambda = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
  const double trace = a[0][0] + a[1][1] + a[2][2];
  const double expected[6] = {lambda * trace + 2.0 * mu * a[0][0],
                              lambda * trace + 2.0 * mu * a[1][1],
                              lambda * trace + 2.0 * mu * a[2][2],
                              mu * (a[0][1] + a[1][0]),
                              mu * (a[1][2] + a[2][1]),
                              mu * (a[2][0] + a[0][2])};
  double peak = 0.0;
  for (double s : expected) peak = std::max(peak, std::abs(s));
  std::vector<double> stress(6 * n);
  solid_nodal_stress(type, xyz.data(), m, u.data(), stress.data());
  for (int p = 0; p < n; ++p) {
    for (int k = 0; k < 6; ++k) {
      const double allowed =
          extrapolation_rounding(type) * std::abs(expected[k]) + round_off_rel * peak;
      EXPECT_NEAR(stress[6 * p + k], expected[k], allowed)
          << "node " << p + 1 << " component " << k;
    }
  }
}

/// A hexahedron with planar faces that is not a parallelepiped: rectangle a1 x b1 at z = 0,
/// rectangle a2 x b2 shifted by (sx, sy) at z = h. Its volume by the prismatoid formula is
/// h/6 (A_bottom + 4 A_middle + A_top).
void check_frustum_volume(ElementType type) {
  const double a1 = 2.0, b1 = 1.5, a2 = 1.2, b2 = 0.7, sx = 0.3, sy = -0.2, h = 1.7;
  std::vector<double> xyz;
  for (const auto& p : reference_nodes(type)) {
    const double t = 0.5 * (p[2] + 1.0);  // 0 at the bottom, 1 at the top
    const double half_a = 0.5 * ((1.0 - t) * a1 + t * a2);
    const double half_b = 0.5 * ((1.0 - t) * b1 + t * b2);
    xyz.insert(xyz.end(), {t * sx + p[0] * half_a, t * sy + p[1] * half_b, t * h});
  }
  const double expected =
      h / 6.0 * (a1 * b1 + 4.0 * (0.5 * (a1 + a2)) * (0.5 * (b1 + b2)) + a2 * b2);
  EXPECT_NEAR(solid_volume(type, xyz.data()), expected, round_off_rel * expected);
}

/// A general straight-edged tetrahedron: volume = triple product / 6.
void check_tetrahedron_volume(ElementType type) {
  const double corner[4][3] = {{0.1, 0.2, -0.3}, {2.1, 0.4, 0.1}, {0.6, 1.9, 0.2}, {0.4, 0.5, 1.7}};
  std::vector<double> xyz;
  for (const auto& p : reference_nodes(type)) {
    const double l[4] = {1.0 - p[0] - p[1] - p[2], p[0], p[1], p[2]};
    for (int d = 0; d < 3; ++d) {
      xyz.push_back(l[0] * corner[0][d] + l[1] * corner[1][d] + l[2] * corner[2][d] +
                    l[3] * corner[3][d]);
    }
  }
  Eigen::Matrix3d edges;
  for (int i = 0; i < 3; ++i) {
    for (int d = 0; d < 3; ++d) edges(d, i) = corner[i + 1][d] - corner[0][d];
  }
  const double expected = edges.determinant() / 6.0;
  EXPECT_NEAR(solid_volume(type, xyz.data()), expected, round_off_rel * expected);
}

void check_volume(ElementType type) {
  if (type == ElementType::c3d4 || type == ElementType::c3d10) {
    check_tetrahedron_volume(type);
  } else {
    check_frustum_volume(type);
  }
}

/// Mirroring an element turns its Jacobian negative; flattening it makes it zero.
void check_degenerate_element_throws(ElementType type, const char* name) {
  auto mirrored = distorted_element(type);
  for (std::size_t i = 2; i < mirrored.size(); i += 3) mirrored[i] = -mirrored[i];
  std::vector<double> k(mirrored.size() * mirrored.size()), m(k.size());
  try {
    solid_matrices(type, mirrored.data(), steel(), k.data(), m.data());
    ADD_FAILURE() << "a mirrored " << name << " was accepted";
  } catch (const vsense::InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(name), std::string::npos) << what;
    EXPECT_NE(what.find("Jacobian determinant -"), std::string::npos) << what;
  }
  auto flat = distorted_element(type);
  for (std::size_t i = 2; i < flat.size(); i += 3) flat[i] = 1.0;
  EXPECT_THROW(solid_volume(type, flat.data()), vsense::InputError);
  std::vector<double> u(flat.size(), 0.0), s(2 * flat.size());
  EXPECT_THROW(solid_nodal_stress(type, flat.data(), steel(), u.data(), s.data()),
               vsense::InputError);
}

/// The element stress matrix against solid_nodal_stress: each column is the stress of a unit
/// displacement, and the matrix times a general field is that field's stress.
void check_stress_matrix(ElementType type) {
  const auto xyz = distorted_element(type);
  const int n = static_cast<int>(xyz.size() / 3);
  std::vector<double> matrix(18 * n * n);  // [6n, 3n] row-major
  solid_nodal_stress_matrix(type, xyz.data(), steel(), matrix.data());
  std::vector<double> u(3 * n), stress(6 * n);
  for (int c = 0; c < 3 * n; ++c) {
    std::fill(u.begin(), u.end(), 0.0);
    u[c] = 1.0;
    solid_nodal_stress(type, xyz.data(), steel(), u.data(), stress.data());
    double peak = 0.0;
    for (double v : stress) peak = std::max(peak, std::abs(v));
    ASSERT_GT(peak, 0.0) << "column " << c;
    for (int r = 0; r < 6 * n; ++r) {
      ASSERT_NEAR(matrix[r * 3 * n + c], stress[r], round_off_rel * peak)
          << "row " << r << " column " << c;
    }
  }
  for (int i = 0; i < 3 * n; ++i) u[i] = 1e-4 * std::sin(1.0 + 0.7 * i);
  solid_nodal_stress(type, xyz.data(), steel(), u.data(), stress.data());
  double peak = 0.0;
  for (double v : stress) peak = std::max(peak, std::abs(v));
  for (int r = 0; r < 6 * n; ++r) {
    double product = 0.0;
    for (int c = 0; c < 3 * n; ++c) product += matrix[r * 3 * n + c] * u[c];
    EXPECT_NEAR(product, stress[r], round_off_rel * peak) << "row " << r;
  }
}

#define VSENSE_SOLID_ELEMENT_TESTS(NAME, TYPE, ZERO_MODES)                                    \
  TEST(SolidElements, NAME##StiffnessAndMassAreSymmetric) { check_symmetry(TYPE); }           \
  TEST(SolidElements, NAME##RigidBodyMotionGivesZeroForce) { check_rigid_body_motion(TYPE); } \
  TEST(SolidElements, NAME##StiffnessHasOnlyTheExpectedZeroEigenvalues) {                     \
    EXPECT_EQ(zero_eigenvalue_count(TYPE), ZERO_MODES);                                       \
  }                                                                                           \
  TEST(SolidElements, NAME##MassSumsToDensityTimesVolume) { check_mass_sum(TYPE); }           \
  TEST(SolidElements, NAME##ConstantStrainPatchGivesExactStressAtEveryNode) {                 \
    check_patch_test(TYPE);                                                                   \
  }                                                                                           \
  TEST(SolidElements, NAME##VolumeMatchesIndependentCalculation) { check_volume(TYPE); }      \
  TEST(SolidElements, NAME##StressMatrixColumnsAreUnitDisplacementStresses) {                 \
    check_stress_matrix(TYPE);                                                                \
  }                                                                                           \
  TEST(SolidElements, NAME##DegenerateElementThrowsInputError) {                              \
    check_degenerate_element_throws(TYPE, #NAME);                                             \
  }

// Six rigid-body modes only, except C3D20R: a single element under 2x2x2 integration has 48
// strain samples for 54 deformation DOFs, hence at least 6 spurious zero-energy modes on top
// of the rigid-body ones (most are not communicable, i.e. a mesh of them is stable).
VSENSE_SOLID_ELEMENT_TESTS(C3D4, ElementType::c3d4, 6)
VSENSE_SOLID_ELEMENT_TESTS(C3D10, ElementType::c3d10, 6)
VSENSE_SOLID_ELEMENT_TESTS(C3D8, ElementType::c3d8, 6)
VSENSE_SOLID_ELEMENT_TESTS(C3D20, ElementType::c3d20, 6)
VSENSE_SOLID_ELEMENT_TESTS(C3D20R, ElementType::c3d20r, 12)

TEST(SolidElements, C3D8RIsRejectedWithInputError) {
  const auto xyz = distorted_element(ElementType::c3d8);
  std::vector<double> k(24 * 24), u(24, 0.0), s(48);
  EXPECT_THROW(solid_matrices(ElementType::c3d8r, xyz.data(), steel(), k.data(), nullptr),
               vsense::InputError);
  EXPECT_THROW(solid_nodal_stress(ElementType::c3d8r, xyz.data(), steel(), u.data(), s.data()),
               vsense::InputError);
  EXPECT_THROW(solid_volume(ElementType::c3d8r, xyz.data()), vsense::InputError);
}

TEST(SolidElements, MissingElasticConstantsThrowInputError) {
  Material m = steel();
  m.young_modulus.reset();
  const auto xyz = distorted_element(ElementType::c3d8);
  std::vector<double> k(24 * 24);
  EXPECT_THROW(solid_matrices(ElementType::c3d8, xyz.data(), m, k.data(), nullptr),
               vsense::InputError);
}

// ---- models: nodal averaging -----------------------------------------------------------------

/// Builds a Model of solid elements (one material) plus optional extra elements.
struct ModelBuilder {
  Model model;
  ModelBuilder() {
    Material m = steel();
    model.materials.push_back(m);
    Section solid;
    solid.kind = Section::Kind::solid;
    solid.elset = "EALL";
    solid.material = "STEEL";
    model.sections.push_back(solid);
    Section spring;
    spring.kind = Section::Kind::spring;
    spring.stiffness = 1.0;
    spring.dof1 = spring.dof2 = 1;
    model.sections.push_back(spring);
    Section mass;
    mass.kind = Section::Kind::mass;
    mass.mass = 1.0;
    model.sections.push_back(mass);
  }
  std::int32_t node(std::int64_t id, double x, double y, double z) {
    const auto index = static_cast<std::int32_t>(model.node_ids.size());
    model.node_ids.push_back(id);
    model.coordinates.push_back({x, y, z});
    model.node_index[id] = index;
    return index;
  }
  void element(std::int64_t id, ElementType type, const std::vector<std::int64_t>& node_ids) {
    model.element_index[id] = static_cast<std::int32_t>(model.element_ids.size());
    model.element_ids.push_back(id);
    model.element_types.push_back(type);
    for (auto n : node_ids) model.element_nodes.push_back(model.node_index.at(n));
    model.element_offsets.push_back(static_cast<std::int64_t>(model.element_nodes.size()));
    const int section = is_solid(type) ? 0 : (type == ElementType::mass ? 2 : 1);
    model.element_section.push_back(section);
  }
};

/// Two distorted C3D8 sharing the face of nodes 2, 3, 6, 7 (ids), plus nodes 13, 14 for springs.
ModelBuilder two_hexahedra() {
  ModelBuilder b;
  std::int64_t id = 1;
  for (int k = 0; k < 2; ++k) {
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < 3; ++i) {
        const auto x = distort({i - 1.0, 2.0 * j - 1.0, 2.0 * k - 1.0});
        b.node(id++, x[0], x[1], x[2]);
      }
    }
  }
  // grid ids: (i, j, k) -> 1 + i + 3 j + 6 k
  b.element(1, ElementType::c3d8, {1, 2, 5, 4, 7, 8, 11, 10});
  b.element(2, ElementType::c3d8, {2, 3, 6, 5, 8, 9, 12, 11});
  b.node(13, 9.0, 9.0, 9.0);
  b.node(14, 9.0, 9.0, 10.0);
  return b;
}

/// A nodal field that is not linear, so that elements disagree at shared nodes.
std::vector<double> curved_field(const Model& model) {
  std::vector<double> u(3 * model.n_nodes());
  for (std::size_t p = 0; p < model.n_nodes(); ++p) {
    const auto& x = model.coordinates[p];
    u[3 * p] = 1e-3 * x[0] * x[1] + 2e-4 * x[2] * x[2];
    u[3 * p + 1] = -5e-4 * x[0] * x[0] + 3e-4 * x[1] * x[2];
    u[3 * p + 2] = 4e-4 * x[0] * x[2] - 1e-4 * x[1] * x[1];
  }
  return u;
}

/// Element e's extrapolated nodal stresses [n, 6].
std::vector<double> element_nodal_stress(const Model& model, std::size_t e,
                                         const std::vector<double>& u) {
  const int n = model.n_nodes_of(e);
  std::vector<double> xyz, ue, s(6 * n);
  for (int a = 0; a < n; ++a) {
    const auto p = static_cast<std::size_t>(model.nodes_of(e)[a]);
    for (int d = 0; d < 3; ++d) {
      xyz.push_back(model.coordinates[p][d]);
      ue.push_back(u[3 * p + d]);
    }
  }
  solid_nodal_stress(model.element_types[e], xyz.data(), model.material_of(e), ue.data(), s.data());
  return s;
}

TEST(NodalStress, SharedNodesTakeThePlainMeanOfTheirElements) {
  const Model model = two_hexahedra().model;
  const auto u = curved_field(model);
  std::vector<double> stress(6 * model.n_nodes());
  nodal_stress(model, u.data(), stress.data());
  const auto s1 = element_nodal_stress(model, 0, u);
  const auto s2 = element_nodal_stress(model, 1, u);
  // node id 2 is local node 2 of element 1 and local node 1 of element 2
  const std::size_t shared = model.node_index.at(2);
  const std::size_t only_first = model.node_index.at(1);
  double peak = 0.0;
  for (double s : s1) peak = std::max(peak, std::abs(s));
  for (int k = 0; k < 6; ++k) {
    EXPECT_NEAR(stress[6 * shared + k], 0.5 * (s1[6 * 1 + k] + s2[6 * 0 + k]),
                round_off_rel * peak);
    EXPECT_NEAR(stress[6 * only_first + k], s1[k], round_off_rel * peak);
    // nodes without elements stay zero
    EXPECT_EQ(stress[6 * model.node_index.at(13) + k], 0.0);
  }
  // the field is curved: the two elements really disagree at the shared node
  EXPECT_GT(std::abs(s1[6 * 1] - s2[0]), 1e-3 * peak);
}

TEST(NodalStress, AxialAndTwoNodeSpringsCountInTheMeanLikeCalculix) {
  // ccx 2.20 (extrapolate.f) counts SPRINGA and SPRING2 elements at a node without adding a
  // stress, so a node with one solid and one such spring shows half the solid's value; SPRING1
  // and MASS elements are not counted.
  ModelBuilder builder = two_hexahedra();
  builder.element(10, ElementType::springa, {1, 13});
  builder.element(11, ElementType::spring2, {3, 14});
  builder.element(12, ElementType::spring1, {4});
  builder.element(13, ElementType::mass, {10});
  const Model& model = builder.model;
  const auto u = curved_field(model);
  std::vector<double> stress(6 * model.n_nodes());
  nodal_stress(model, u.data(), stress.data());
  const auto s1 = element_nodal_stress(model, 0, u);
  const auto s2 = element_nodal_stress(model, 1, u);
  double peak = 0.0;
  for (double s : s1) peak = std::max(peak, std::abs(s));
  const auto at = [&](std::int64_t id, int k) { return stress[6 * model.node_index.at(id) + k]; };
  for (int k = 0; k < 6; ++k) {
    EXPECT_NEAR(at(1, k), 0.5 * s1[0 * 6 + k], round_off_rel * peak);  // C3D8 + SPRINGA
    EXPECT_NEAR(at(3, k), 0.5 * s2[1 * 6 + k], round_off_rel * peak);  // C3D8 + SPRING2
    EXPECT_NEAR(at(4, k), s1[3 * 6 + k], round_off_rel * peak);        // C3D8 + SPRING1
    EXPECT_NEAR(at(10, k), s1[7 * 6 + k], round_off_rel * peak);       // C3D8 + MASS
    EXPECT_EQ(at(13, k), 0.0);
  }
}

TEST(NodalStress, ManyElementsGiveTheExactPatchStressEverywhere) {
  // 20250 C3D4 (more than one of nodal_stress's parallel chunks) under a linear field: every
  // node must show the exact constant stress, whatever the number of elements sharing it.
  ModelBuilder builder;
  constexpr int cells = 15;
  const auto id = [](int i, int j, int k) { return 1 + i + (cells + 1) * (j + (cells + 1) * k); };
  for (int k = 0; k <= cells; ++k) {
    for (int j = 0; j <= cells; ++j) {
      for (int i = 0; i <= cells; ++i) {
        const auto x = distort({i / 7.5 - 1.0, j / 7.5 - 1.0, k / 7.5 - 1.0});
        builder.node(id(i, j, k), x[0], x[1], x[2]);
      }
    }
  }
  const int corner[8][3] = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0},
                            {0, 0, 1}, {1, 0, 1}, {1, 1, 1}, {0, 1, 1}};
  const int tets[6][4] = {{0, 1, 2, 6}, {0, 2, 3, 6}, {0, 3, 7, 6},
                          {0, 7, 4, 6}, {0, 4, 5, 6}, {0, 5, 1, 6}};
  std::int64_t element_id = 1;
  for (int k = 0; k < cells; ++k) {
    for (int j = 0; j < cells; ++j) {
      for (int i = 0; i < cells; ++i) {
        for (const auto& tet : tets) {
          std::vector<std::int64_t> nodes;
          for (int c : tet)
            nodes.push_back(id(i + corner[c][0], j + corner[c][1], k + corner[c][2]));
          builder.element(element_id++, ElementType::c3d4, nodes);
        }
      }
    }
  }
  const Model& model = builder.model;
  ASSERT_GT(model.n_elements(), 16384u);
  std::vector<double> u(3 * model.n_nodes());
  for (std::size_t p = 0; p < model.n_nodes(); ++p) {
    const auto& x = model.coordinates[p];
    u[3 * p] = 1e-3 * x[0] + 2e-4 * x[1];
    u[3 * p + 1] = -3e-4 * x[2];
    u[3 * p + 2] = 5e-4 * x[0] + 4e-4 * x[2];
  }
  std::vector<double> stress(6 * model.n_nodes());
  nodal_stress(model, u.data(), stress.data());
  const Material m = steel();
  const double e = *m.young_modulus, nu = *m.poisson_ratio;
  const double mu = e / (2.0 * (1.0 + nu)), lambda = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
  const double trace = 1e-3 + 4e-4;
  const double expected[6] = {lambda * trace + 2.0 * mu * 1e-3,
                              lambda * trace,
                              lambda * trace + 2.0 * mu * 4e-4,
                              mu * 2e-4,
                              mu * -3e-4,
                              mu * 5e-4};
  double worst = 0.0;
  for (std::size_t p = 0; p < model.n_nodes(); ++p) {
    for (int k = 0; k < 6; ++k) worst = std::max(worst, std::abs(stress[6 * p + k] - expected[k]));
  }
  EXPECT_LE(worst, round_off_rel * expected[0]);
}

TEST(NodalStress, C3D8RElementThrowsInputError) {
  ModelBuilder builder = two_hexahedra();
  builder.model.element_types[1] = ElementType::c3d8r;
  const auto u = curved_field(builder.model);
  std::vector<double> stress(6 * builder.model.n_nodes());
  EXPECT_THROW(nodal_stress(builder.model, u.data(), stress.data()), vsense::InputError);
}

TEST(NodalStress, C3D8RElementAmongManyFieldsThrowsInputErrorNamingIt) {
  ModelBuilder builder = two_hexahedra();
  builder.model.element_types[1] = ElementType::c3d8r;
  const auto u = curved_field(builder.model);
  std::vector<double> fields;
  for (int j = 0; j < 3; ++j) fields.insert(fields.end(), u.begin(), u.end());
  std::vector<double> stress(3 * 6 * builder.model.n_nodes());
  const std::string id = std::to_string(builder.model.element_ids[1]);
  try {
    vsense::model::nodal_stresses(builder.model, fields.data(), 3, stress.data());
    ADD_FAILURE() << "no InputError";
  } catch (const vsense::InputError& error) {
    EXPECT_NE(std::string(error.what()).find("element " + id), std::string::npos) << error.what();
  }
}

// ---- against CalculiX ------------------------------------------------------------------------

/// What the element tests need from one of their own .inp decks (written by make_meshes.py:
/// *NODE, one *ELEMENT block, *NSET CLAMPED, *BOUNDARY CLAMPED, one material).
struct Deck {
  ModelBuilder builder;
  std::vector<std::int32_t> clamped;  ///< node indices
};

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) {
    field.erase(0, field.find_first_not_of(" \t\r"));
    field.erase(field.find_last_not_of(" \t\r") + 1);
    fields.push_back(field);
  }
  return fields;
}

Deck read_deck(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Deck deck;
  Model& model = deck.builder.model;
  model.materials[0].young_modulus.reset();
  model.materials[0].poisson_ratio.reset();
  model.materials[0].density.reset();
  std::string keyword, line, pending;
  ElementType type = ElementType::c3d8;
  while (std::getline(in, line)) {
    if (line.rfind("**", 0) == 0 || line.empty()) continue;
    if (line[0] == '*') {
      const auto fields = split_fields(line.substr(1));
      keyword = fields[0];
      if (keyword == "ELEMENT") {
        for (const auto& f : fields) {
          if (f.rfind("TYPE=", 0) == 0) type = *parse_element_type(f.substr(5));
        }
      }
      if (keyword == "NSET" && line.find("CLAMPED") == std::string::npos) keyword = "";
      continue;
    }
    if (keyword == "ELEMENT") {
      pending += line;
      if (pending.find_last_not_of(" \r") != std::string::npos &&
          pending[pending.find_last_not_of(" \r")] == ',') {
        continue;  // continuation line follows
      }
      const auto fields = split_fields(pending);
      pending.clear();
      std::vector<std::int64_t> nodes;
      for (std::size_t i = 1; i < fields.size(); ++i) nodes.push_back(std::stoll(fields[i]));
      deck.builder.element(std::stoll(fields[0]), type, nodes);
      continue;
    }
    const auto fields = split_fields(line);
    if (keyword == "NODE") {
      deck.builder.node(std::stoll(fields[0]), std::stod(fields[1]), std::stod(fields[2]),
                        std::stod(fields[3]));
    } else if (keyword == "NSET") {
      for (const auto& f : fields) {
        if (!f.empty()) deck.clamped.push_back(model.node_index.at(std::stoll(f)));
      }
    } else if (keyword == "ELASTIC") {
      model.materials[0].young_modulus = std::stod(fields[0]);
      model.materials[0].poisson_ratio = std::stod(fields[1]);
    } else if (keyword == "DENSITY") {
      model.materials[0].density = std::stod(fields[0]);
    }
  }
  return deck;
}

/// The lowest modes of the clamped deck, solved densely.
struct DenseModes {
  std::vector<double> eigenvalues;      ///< [n_modes] omega^2
  std::vector<Eigen::VectorXd> shapes;  ///< [n_modes][3 * n_nodes], mass-normalised, 0 at clamps
};

DenseModes dense_modes(const Deck& deck, int n_modes) {
  const Model& model = deck.builder.model;
  const int n_dofs = 3 * static_cast<int>(model.n_nodes());
  Eigen::MatrixXd k = Eigen::MatrixXd::Zero(n_dofs, n_dofs), m = k;
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    // The springs and point masses of the springs deck are too weak to move any frequency.
    if (!is_solid(model.element_types[e])) continue;
    const int n = model.n_nodes_of(e);
    std::vector<double> xyz;
    for (int a = 0; a < n; ++a) {
      const auto& x = model.coordinates[model.nodes_of(e)[a]];
      xyz.insert(xyz.end(), x.begin(), x.end());
    }
    RowMatrix ke(3 * n, 3 * n), me(3 * n, 3 * n);
    solid_matrices(model.element_types[e], xyz.data(), model.material_of(e), ke.data(), me.data());
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < n; ++b) {
        const int p = model.nodes_of(e)[a], q = model.nodes_of(e)[b];
        k.block<3, 3>(3 * p, 3 * q) += ke.block<3, 3>(3 * a, 3 * b);
        m.block<3, 3>(3 * p, 3 * q) += me.block<3, 3>(3 * a, 3 * b);
      }
    }
  }
  std::vector<char> fixed(n_dofs, 0);
  for (auto p : deck.clamped) {
    for (int d = 0; d < 3; ++d) fixed[3 * p + d] = 1;
  }
  std::vector<int> free_dofs;
  for (int i = 0; i < n_dofs; ++i) {
    if (!fixed[i]) free_dofs.push_back(i);
  }
  const int n_free = static_cast<int>(free_dofs.size());
  Eigen::MatrixXd kf(n_free, n_free), mf(n_free, n_free);
  for (int i = 0; i < n_free; ++i) {
    for (int j = 0; j < n_free; ++j) {
      kf(i, j) = k(free_dofs[i], free_dofs[j]);
      mf(i, j) = m(free_dofs[i], free_dofs[j]);
    }
  }
  // C3D4's one-point and C3D20R's 2x2x2 mass matrices are rank deficient, so M may be singular:
  // solve M x = mu K x (K is positive definite once clamped); omega^2 = 1 / mu.
  const Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> eigen(mf, kf);
  DenseModes modes;
  for (int i = 0; i < n_modes; ++i) {
    const int column = n_free - 1 - i;
    const double mu = eigen.eigenvalues()(column);
    modes.eigenvalues.push_back(1.0 / mu);
    Eigen::VectorXd x = eigen.eigenvectors().col(column);
    x /= std::sqrt(x.dot(mf * x));
    Eigen::VectorXd full = Eigen::VectorXd::Zero(n_dofs);
    for (int j = 0; j < n_free; ++j) full(free_dofs[j]) = x(j);
    modes.shapes.push_back(full);
  }
  return modes;
}

void compare_with_calculix(const std::string& deck_name) {
  if (vsense::test::run_command("command -v ccx").exit_code != 0) {
    GTEST_SKIP() << "CalculiX (ccx) is not on PATH: the comparison with CalculiX is skipped";
  }
  const std::string source = vsense::test::data_path("elements/" + deck_name + ".inp");
  vsense::test::ScratchDir dir("elements-ccx");
  std::filesystem::copy_file(source, dir.file(deck_name + ".inp"));
  const auto run =
      vsense::test::run_command("cd '" + dir.path().string() + "' && ccx -i " + deck_name);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_EQ(run.out.find("*ERROR"), std::string::npos) << run.out;
  namespace ccx = vsense::test::ccx_local;
  const auto ccx_eigenvalues = ccx::read_dat_eigenvalues(dir.file(deck_name + ".dat"));
  const auto frd = ccx::read_frd(dir.file(deck_name + ".frd"));
  const int n_modes = static_cast<int>(ccx_eigenvalues.size());
  ASSERT_GE(n_modes, 10);
  ASSERT_EQ(static_cast<int>(frd.displacement.size()), n_modes);
  ASSERT_EQ(static_cast<int>(frd.stress.size()), n_modes);

  const Deck deck = read_deck(source);
  const Model& model = deck.builder.model;
  const DenseModes modes = dense_modes(deck, n_modes);

  double worst_frequency = 0.0, worst_mac = 1.0, worst_stress = 0.0;
  for (int i = 0; i < n_modes; ++i) {
    const double f_ccx = std::sqrt(ccx_eigenvalues[i]);
    const double f_vsense = std::sqrt(modes.eigenvalues[i]);
    const double frequency_error = std::abs(f_vsense - f_ccx) / f_ccx;
    worst_frequency = std::max(worst_frequency, frequency_error);
    EXPECT_LE(frequency_error, frequency_rel)
        << "mode " << i + 1 << ": omega vsense " << f_vsense << ", ccx " << f_ccx;

    // ccx's shape [3 * n_nodes] in vsense's node order
    Eigen::VectorXd phi_ccx = Eigen::VectorXd::Zero(3 * static_cast<int>(model.n_nodes()));
    for (const auto& [id, values] : frd.displacement[i]) {
      const auto p = model.node_index.at(id);
      for (int d = 0; d < 3; ++d) phi_ccx(3 * p + d) = values.at(d);
    }
    const Eigen::VectorXd& phi = modes.shapes[i];
    const double mac = std::pow(phi.dot(phi_ccx), 2) / (phi.dot(phi) * phi_ccx.dot(phi_ccx));
    const bool repeated =
        (i > 0 && std::abs(ccx_eigenvalues[i] - ccx_eigenvalues[i - 1]) <
                      repeated_rel_gap * ccx_eigenvalues[i]) ||
        (i + 1 < n_modes && std::abs(ccx_eigenvalues[i + 1] - ccx_eigenvalues[i]) <
                                repeated_rel_gap * ccx_eigenvalues[i]);
    if (repeated) continue;
    worst_mac = std::min(worst_mac, mac);
    EXPECT_GE(mac, mac_min) << "mode " << i + 1;

    // Nodal stresses of the mass-normalised mode, sign matched through the displacement.
    const double sign = phi.dot(phi_ccx) >= 0.0 ? 1.0 : -1.0;
    std::vector<double> u(phi.data(), phi.data() + phi.size());
    for (double& v : u) v *= sign;
    std::vector<double> stress(6 * model.n_nodes());
    nodal_stress(model, u.data(), stress.data());
    double peak = 0.0, error = 0.0;
    for (const auto& [id, values] : frd.stress[i]) {
      const auto p = model.node_index.at(id);
      for (int k = 0; k < 6; ++k) {
        peak = std::max(peak, std::abs(values.at(k)));
        error = std::max(error, std::abs(stress[6 * p + k] - values.at(k)));
      }
    }
    for (std::size_t e = 0; e < model.n_elements(); ++e) {
      if (!is_solid(model.element_types[e])) continue;
      for (int a = 0; a < model.n_nodes_of(e); ++a) {
        ASSERT_EQ(frd.stress[i].count(model.node_ids[model.nodes_of(e)[a]]), 1u)
            << "ccx gave no stress at a node of element " << model.element_ids[e];
      }
    }
    worst_stress = std::max(worst_stress, error / peak);
    EXPECT_LE(error, stress_rel_peak * peak)
        << "mode " << i + 1 << ": max stress difference " << error << ", peak " << peak;
  }
  std::cout << "[ " << deck_name << " ] " << n_modes << " modes: max frequency rel. error "
            << worst_frequency << ", 1 - min MAC " << 1.0 - worst_mac
            << ", max stress error / peak " << worst_stress << "\n";
}

TEST(SolidElementsCalculix, C3D4ModesAndStressesMatchCalculix) {
  compare_with_calculix("cantilever_c3d4");
}
TEST(SolidElementsCalculix, C3D10ModesAndStressesMatchCalculix) {
  compare_with_calculix("cantilever_c3d10");
}
TEST(SolidElementsCalculix, C3D8ModesAndStressesMatchCalculix) {
  compare_with_calculix("cantilever_c3d8");
}
TEST(SolidElementsCalculix, C3D20ModesAndStressesMatchCalculix) {
  compare_with_calculix("cantilever_c3d20");
}
TEST(SolidElementsCalculix, C3D20RModesAndStressesMatchCalculix) {
  compare_with_calculix("cantilever_c3d20r");
}
/// ccx counts SPRINGA and SPRING2 elements when it averages nodal stresses (not SPRING1, not
/// MASS): the deck has one of each at free-end nodes, so this fails unless vsense does the same.
TEST(SolidElementsCalculix, NodalAveragingCountsSpringsLikeCalculix) {
  compare_with_calculix("cantilever_c3d8_springs");
}

}  // namespace
