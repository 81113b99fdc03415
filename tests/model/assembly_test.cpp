// Sparse assembly against a dense reference built from the same element matrices, DOF
// elimination, and mass properties.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/elements.hpp"

namespace {

using vsense::model::ElementType;
using vsense::model::Model;
using vsense::model::Section;

std::int32_t add_node(Model& m, std::int64_t id, double x, double y, double z) {
  const auto index = static_cast<std::int32_t>(m.node_ids.size());
  m.node_ids.push_back(id);
  m.coordinates.push_back({x, y, z});
  m.node_index[id] = index;
  return index;
}

void add_element(Model& m, std::int64_t id, ElementType type, std::vector<std::int32_t> nodes,
                 std::int32_t section) {
  m.element_index[id] = static_cast<std::int32_t>(m.element_ids.size());
  m.element_ids.push_back(id);
  m.element_types.push_back(type);
  m.element_nodes.insert(m.element_nodes.end(), nodes.begin(), nodes.end());
  m.element_offsets.push_back(static_cast<std::int64_t>(m.element_nodes.size()));
  m.element_section.push_back(section);
}

std::int32_t add_section(Model& m, Section s) {
  m.sections.push_back(std::move(s));
  return static_cast<std::int32_t>(m.sections.size() - 1);
}

Eigen::MatrixXd dense_of(const vsense::model::SparseMatrix& lower) {
  Eigen::MatrixXd d = Eigen::MatrixXd(lower);
  Eigen::MatrixXd full = d + d.transpose();
  full.diagonal() = d.diagonal();
  return full;
}

/// Two hexahedra sharing a face, plus a point mass, a grounded spring, a two-node spring and an
/// axial spring; one face fixed.
Model mixed_model() {
  Model m;
  m.source_file = "in-memory";
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) {
      for (int k = 0; k < 2; ++k) {
        // mildly distorted grid so that no entry is accidentally zero
        add_node(m, 100 + 4 * i + 2 * j + k, 0.5 * i + 0.03 * j * k, 0.4 * j + 0.02 * i,
                 0.3 * k + 0.01 * i * j);
      }
    }
  }
  auto id = [](int i, int j, int k) { return static_cast<std::int32_t>(4 * i + 2 * j + k); };
  m.materials.push_back({"STEEL", 210e9, 0.3, 7850.0, {}});
  const auto solid = add_section(m, {Section::Kind::solid, "EALL", "STEEL"});
  for (int i = 0; i < 2; ++i) {
    add_element(m, 1 + i, ElementType::c3d8,
                {id(i, 0, 0), id(i + 1, 0, 0), id(i + 1, 1, 0), id(i, 1, 0), id(i, 0, 1),
                 id(i + 1, 0, 1), id(i + 1, 1, 1), id(i, 1, 1)},
                solid);
  }
  const auto far = add_node(m, 900, 2.0, 0.2, 0.15);
  Section mass{Section::Kind::mass};
  mass.mass = 125.0;
  add_element(m, 10, ElementType::mass, {far}, add_section(m, mass));
  Section axial{Section::Kind::spring};
  axial.stiffness = 3e7;
  add_element(m, 11, ElementType::springa, {id(2, 1, 1), far}, add_section(m, axial));
  Section s2{Section::Kind::spring};
  s2.stiffness = 5e6;
  s2.dof1 = 3;
  s2.dof2 = 3;
  add_element(m, 12, ElementType::spring2, {id(2, 0, 0), far}, add_section(m, s2));
  Section s1{Section::Kind::spring};
  s1.stiffness = 2e6;
  s1.dof1 = 2;
  add_element(m, 13, ElementType::spring1, {far}, add_section(m, s1));
  for (int j = 0; j < 2; ++j) {
    for (int k = 0; k < 2; ++k) {
      for (std::int8_t d = 0; d < 3; ++d) m.fixed_dofs.push_back({id(0, j, k), d});
    }
  }
  return m;
}

TEST(Assembly, SparseMatchesDenseReferenceWithFixedDofsEliminated) {
  const Model m = mixed_model();
  const auto dofs = vsense::model::build_dof_map(m);
  EXPECT_EQ(dofs.n_equations, 3 * 13 - 12);
  const auto system = vsense::model::assemble(m, dofs);

  // Dense reference over all 3*n_nodes DOFs, then rows/columns of fixed DOFs removed.
  const int n_all = 3 * static_cast<int>(m.n_nodes());
  Eigen::MatrixXd k_all = Eigen::MatrixXd::Zero(n_all, n_all);
  Eigen::MatrixXd m_all = Eigen::MatrixXd::Zero(n_all, n_all);
  for (std::size_t e = 0; e < 2; ++e) {
    double xyz[24], ke[24 * 24], me[24 * 24];
    for (int a = 0; a < 8; ++a) {
      for (int d = 0; d < 3; ++d) xyz[3 * a + d] = m.coordinates[m.nodes_of(e)[a]][d];
    }
    vsense::model::solid_matrices(ElementType::c3d8, xyz, m.materials[0], ke, me);
    for (int p = 0; p < 24; ++p) {
      for (int q = 0; q < 24; ++q) {
        const int gp = 3 * m.nodes_of(e)[p / 3] + p % 3, gq = 3 * m.nodes_of(e)[q / 3] + q % 3;
        k_all(gp, gq) += ke[24 * p + q];
        m_all(gp, gq) += me[24 * p + q];
      }
    }
  }
  const int far = m.node_index.at(900);
  for (int d = 0; d < 3; ++d) m_all(3 * far + d, 3 * far + d) += 125.0;
  {  // axial spring between node (2,1,1) and far
    const int a = m.node_index.at(100 + 4 * 2 + 2 + 1);
    Eigen::Vector3d axis;
    for (int d = 0; d < 3; ++d) axis(d) = m.coordinates[far][d] - m.coordinates[a][d];
    axis.normalize();
    const Eigen::Matrix3d kk = 3e7 * axis * axis.transpose();
    k_all.block<3, 3>(3 * a, 3 * a) += kk;
    k_all.block<3, 3>(3 * far, 3 * far) += kk;
    k_all.block<3, 3>(3 * a, 3 * far) -= kk;
    k_all.block<3, 3>(3 * far, 3 * a) -= kk;
  }
  {  // SPRING2 z-z between node (2,0,0) and far
    const int a = 3 * m.node_index.at(100 + 8) + 2, b = 3 * far + 2;
    k_all(a, a) += 5e6;
    k_all(b, b) += 5e6;
    k_all(a, b) -= 5e6;
    k_all(b, a) -= 5e6;
  }
  k_all(3 * far + 1, 3 * far + 1) += 2e6;  // SPRING1 in y

  std::vector<int> keep;
  for (int i = 0; i < n_all; ++i) {
    if (dofs.equation[i] >= 0) {
      EXPECT_EQ(dofs.equation[i], static_cast<std::int64_t>(keep.size()));
      keep.push_back(i);
    }
  }
  const int n = static_cast<int>(keep.size());
  Eigen::MatrixXd k_ref(n, n), m_ref(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      k_ref(i, j) = k_all(keep[i], keep[j]);
      m_ref(i, j) = m_all(keep[i], keep[j]);
    }
  }
  const Eigen::MatrixXd k_got = dense_of(system.stiffness);
  const Eigen::MatrixXd m_got = dense_of(system.mass);
  EXPECT_LE((k_got - k_ref).cwiseAbs().maxCoeff(), 1e-12 * k_ref.cwiseAbs().maxCoeff());
  EXPECT_LE((m_got - m_ref).cwiseAbs().maxCoeff(), 1e-12 * m_ref.cwiseAbs().maxCoeff());
  // Only the lower triangle is stored.
  for (int c = 0; c < system.stiffness.outerSize(); ++c) {
    for (vsense::model::SparseMatrix::InnerIterator it(system.stiffness, c); it; ++it) {
      EXPECT_GE(it.row(), it.col());
    }
  }
}

TEST(Assembly, MassPropertiesOfBlocksAndPointMassAreExact) {
  Model m = mixed_model();
  const auto props = vsense::model::mass_properties(m);
  double volume = 0.0;
  // The solids' mass from the element routine's volume; the centre from the mass matrix
  // identity sum_ij M_ij x_i = rho * integral of x (checked against the point-mass-only model).
  for (std::size_t e = 0; e < 2; ++e) {
    double xyz[24];
    for (int a = 0; a < 8; ++a) {
      for (int d = 0; d < 3; ++d) xyz[3 * a + d] = m.coordinates[m.nodes_of(e)[a]][d];
    }
    volume += vsense::model::solid_volume(ElementType::c3d8, xyz);
  }
  const double solid_mass = 7850.0 * volume;
  EXPECT_NEAR(props.total_mass, solid_mass + 125.0, 1e-12 * props.total_mass);

  // Remove the solids: the centre of mass is then the point mass's position.
  Model just_mass;
  const auto node = add_node(just_mass, 1, 2.0, 0.2, 0.15);
  Section s{Section::Kind::mass};
  s.mass = 3.5;
  add_element(just_mass, 1, ElementType::mass, {node}, add_section(just_mass, s));
  const auto p = vsense::model::mass_properties(just_mass);
  EXPECT_DOUBLE_EQ(p.total_mass, 3.5);
  EXPECT_DOUBLE_EQ(p.centre_of_mass[0], 2.0);
  EXPECT_DOUBLE_EQ(p.centre_of_mass[1], 0.2);
  EXPECT_DOUBLE_EQ(p.centre_of_mass[2], 0.15);
}

TEST(Assembly, CoincidentSpringaNodesAreAnInputError) {
  Model m;
  const auto a = add_node(m, 1, 0, 0, 0);
  const auto b = add_node(m, 2, 0, 0, 0);
  Section s{Section::Kind::spring};
  s.stiffness = 1.0;
  add_element(m, 7, ElementType::springa, {a, b}, add_section(m, s));
  const auto dofs = vsense::model::build_dof_map(m);
  try {
    vsense::model::assemble(m, dofs);
    FAIL() << "expected InputError";
  } catch (const vsense::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("SPRINGA element 7"), std::string::npos) << e.what();
  }
}

TEST(Assembly, UnusedNodesAndSpringDofsGetNoEquations) {
  Model m;
  add_node(m, 1, 0, 0, 0);  // in no element
  const auto b = add_node(m, 2, 1, 0, 0);
  Section s{Section::Kind::spring};
  s.stiffness = 10.0;
  s.dof1 = 2;
  add_element(m, 1, ElementType::spring1, {b}, add_section(m, s));
  const auto dofs = vsense::model::build_dof_map(m);
  EXPECT_EQ(dofs.n_equations, 1);
  EXPECT_EQ(dofs.equation[3 * 1 + 1], 0);
  const auto system = vsense::model::assemble(m, dofs);
  EXPECT_DOUBLE_EQ(system.stiffness.coeff(0, 0), 10.0);
}

}  // namespace
