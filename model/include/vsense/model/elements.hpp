#pragma once
/// @file elements.hpp
/// @brief Element matrices and stress recovery with CalculiX's formulations
/// (integration orders, consistent mass, extrapolation of integration-point stresses to nodes).
///
/// DOF order inside an element is node-major: [u1x, u1y, u1z, u2x, ...].
#include "vsense/model/model.hpp"

namespace vsense::model {

/// @brief Stiffness and consistent mass of a solid element.
/// @param[in] coordinates [n, 3] row-major, the element's nodes in .inp order (model units)
/// @param[out] stiffness  [3n, 3n] row-major
/// @param[out] mass       [3n, 3n] row-major (may be nullptr when not wanted)
/// @throws InputError for a degenerate (non-positive Jacobian) element.
void solid_matrices(ElementType type, const double* coordinates, const Material& material,
                    double* stiffness, double* mass);

/// @brief Stresses at the element's nodes for nodal displacements u: computed at the
/// integration points and extrapolated to the nodes as CalculiX does.
/// @param[in] coordinates  [n, 3]
/// @param[in] displacement [n, 3]
/// @param[out] stress      [n, 6] xx, yy, zz, xy, yz, zx
void solid_nodal_stress(ElementType type, const double* coordinates, const Material& material,
                        const double* displacement, double* stress);

/// @brief The element's stress matrix: solid_nodal_stress is linear in the displacements, and
/// column 3 b + d of this matrix is its result for the unit displacement of node b in
/// direction d (the same arithmetic, without the zero terms).
/// @param[out] matrix [6n, 3n] row-major: row 6 a + k is component k at node a
void solid_nodal_stress_matrix(ElementType type, const double* coordinates,
                               const Material& material, double* matrix);

/// @brief Volume of a solid element (integrated with its mass rule).
double solid_volume(ElementType type, const double* coordinates);

}  // namespace vsense::model
