#pragma once
/// @file assembly.hpp
/// @brief DOF numbering and sparse assembly of K and M with constrained DOFs eliminated.
#include <Eigen/Sparse>
#include <array>
#include <cstdint>
#include <vector>

#include "vsense/kernels/sparse.hpp"
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

/// @brief nodal_stress of many displacement fields at once (mode shapes): each element's stress
/// matrix (solid_nodal_stress_matrix) is formed once per panel of fields and applied to all of
/// them, instead of the element routine running once per field. Equal to nodal_stress of each
/// field to round-off; sums run in element order, so the result does not depend on the number
/// of threads. Memory beside the arguments: 9 doubles per node and field of a panel (64 fields).
/// @param[in] displacements [n_fields, n_nodes, 3]
/// @param[out] stresses     [n_fields, n_nodes, 6]
/// @throws InputError for a degenerate element, naming it.
void nodal_stresses(const Model& model, const double* displacements, std::size_t n_fields,
                    double* stresses);

/// @brief The nodal stress recovery as a sparse linear map from the free DOFs: for x over the
/// equations, S x is nodal_stress of expand_to_nodes(x) (to round-off), so the modal stresses of
/// all modes are one sparse-times-dense product (kernels::sparse_times_dense, on any backend).
/// Rows are node-major: row 6 p + k is component k (xx, yy, zz, xy, yz, zx) of node p; node p's
/// six rows share one pattern, the free DOFs of the nodes that share a solid element with p.
struct NodalStressOperator {
  std::int64_t rows = 0;                  ///< 6 n_nodes
  std::int64_t cols = 0;                  ///< n_equations
  std::vector<std::int64_t> row_offsets;  ///< [rows + 1]
  std::vector<std::int32_t> columns;      ///< [nnz], ascending within a row
  std::vector<double> values;             ///< [nnz], stress per unit displacement
  kernels::CsrMatrixView view() const noexcept {
    return {rows, cols, row_offsets.data(), columns.data(), values.data()};
  }
};

/// @brief Builds S with the element routine of nodal_stress (solid_nodal_stress), which is
/// linear in the element's displacements: its response to each unit displacement is a column
/// of the element's stress matrix; the columns are summed over the elements at a node in
/// element order and divided by the same count as nodal_stress.
/// @throws InputError for a degenerate element (naming it), or when n_equations >= 2^31.
NodalStressOperator nodal_stress_operator(const Model& model, const DofMap& dofs);

/// @brief Expands equation-space vectors to the nodal field [n_nodes, 3], zero at fixed DOFs.
void expand_to_nodes(const DofMap& dofs, const double* equation_values, double* nodal_values);

}  // namespace vsense::model
