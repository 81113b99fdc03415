#pragma once
/// @file assembly.hpp
/// @brief DOF numbering and sparse assembly of K and M with constrained DOFs eliminated.
#include <Eigen/Sparse>
#include <array>
#include <cstdint>
#include <vector>

#include "vsense/model/model.hpp"

namespace vsense::model {

/// Sparse symmetric matrix; vsense stores only the LOWER triangle (CHOLMOD stype = -1).
using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, std::int64_t>;

/// @brief Maps (node index, direction) to an equation number.
struct DofMap {
  /// [n_nodes * 3]: equation number of DOF 3*node+dir, or -1 when the DOF is fixed by
  /// *BOUNDARY or the node belongs to no element.
  std::vector<std::int64_t> equation;
  std::int64_t n_equations = 0;
};

/// @brief Numbers the free DOFs node by node in node-index order.
DofMap build_dof_map(const Model& model);

/// @brief K and M over the free DOFs, lower triangles only.
struct SystemMatrices {
  SparseMatrix stiffness;
  SparseMatrix mass;
};

/// @brief Assembles K and M (solids, point masses, springs), in parallel over elements.
/// Memory is proportional to the number of nonzeros.
SystemMatrices assemble(const Model& model, const DofMap& dofs);

/// @brief Total mass and centre of mass of the model (solids and point masses).
struct MassProperties {
  double total_mass = 0.0;
  std::array<double, 3> centre_of_mass{};
};
MassProperties mass_properties(const Model& model);

/// @brief Averaged nodal stresses (CalculiX convention: each solid element extrapolates its
/// integration-point stresses to its nodes; a node takes the mean over its elements, where
/// SPRINGA and SPRING2 elements count in the divisor without contributing stress, and SPRING1
/// and MASS elements do not count; checked against ccx in the tests).
/// @param[in] displacement [n_nodes, 3] full nodal field
/// @param[out] stress      [n_nodes, 6]; zero at nodes with no solid element
void nodal_stress(const Model& model, const double* displacement, double* stress);

/// @brief Expands equation-space vectors to the nodal field [n_nodes, 3], zero at fixed DOFs.
void expand_to_nodes(const DofMap& dofs, const double* equation_values, double* nodal_values);

}  // namespace vsense::model
