#pragma once
/// @file element_shapes.hpp
/// @brief Private to vsense_model: shape functions of the solid elements in Abaqus/CalculiX
/// node order, CalculiX's integration rules (points in CalculiX's order, which the
/// extrapolation tables rely on) and the tables built from them once per process.
///
/// Natural coordinates: hexahedra on [-1, 1]^3 with corner 1 at (-1, -1, -1); tetrahedra on
/// the unit tetrahedron with corner 1 at the origin and corners 2, 3, 4 on the xi, eta, zeta axes.
#include <array>

namespace vsense::model::detail {

/// Shape functions and their natural derivatives of an element with `NodeCount` nodes,
/// tabulated at the `PointCount` points of one integration rule.
template <int NodeCount, int PointCount>
struct IntegrationTable {
  static constexpr int n_nodes = NodeCount;
  static constexpr int n_points = PointCount;
  std::array<double, PointCount> weight{};                        ///< [Q]
  std::array<std::array<double, NodeCount>, PointCount> shape{};  ///< [Q][N]: N_a(point q)
  /// [Q][N][3]: dN_a / d(xi, eta, zeta) at point q
  std::array<std::array<std::array<double, 3>, NodeCount>, PointCount> dshape{};
};

// ---- shape functions: value n[a] and natural derivatives dn[a][k] at (xi, eta, zeta) ---------

/// 4-node tetrahedron (linear).
void shape_tet4(const double* xi, double* n, double (*dn)[3]) noexcept;
/// 10-node tetrahedron (quadratic); midside nodes 5..10 on edges 1-2, 2-3, 3-1, 1-4, 2-4, 3-4.
void shape_tet10(const double* xi, double* n, double (*dn)[3]) noexcept;
/// 8-node hexahedron (trilinear).
void shape_hex8(const double* xi, double* n, double (*dn)[3]) noexcept;
/// 20-node serendipity hexahedron; midside nodes 9..20 on edges 1-2, 2-3, 3-4, 4-1, 5-6, 6-7,
/// 7-8, 8-5, 1-5, 2-6, 3-7, 4-8.
void shape_hex20(const double* xi, double* n, double (*dn)[3]) noexcept;

// ---- CalculiX's integration rules, tabulated (built on first use, thread-safe) ---------------

using Tet4Table = IntegrationTable<4, 1>;     ///< C3D4: 1 point (CalculiX gauss3d4)
using Tet10Table = IntegrationTable<10, 4>;   ///< C3D10: 4 points (gauss3d5)
using Hex8Table = IntegrationTable<8, 8>;     ///< C3D8: 2x2x2 (gauss3d2)
using Hex20Table = IntegrationTable<20, 27>;  ///< C3D20: 3x3x3 (gauss3d3)
using Hex20rTable = IntegrationTable<20, 8>;  ///< C3D20R: 2x2x2 (gauss3d2)

const Tet4Table& tet4_table();
const Tet10Table& tet10_table();
const Hex8Table& hex8_table();
const Hex20Table& hex20_table();
const Hex20rTable& hex20r_table();

// ---- CalculiX's extrapolation from integration points to corner nodes -------------------------

/// [4][4]: corner value j of a C3D10 = sum_l tet_extrapolation()[j][l] * value at point l.
const std::array<std::array<double, 4>, 4>& tet_extrapolation();
/// [8][8]: corner j of a C3D8/C3D20R from its 2x2x2 points (trilinear extrapolation).
const std::array<std::array<double, 8>, 8>& hex8_extrapolation();
/// [20][27]: every node of a C3D20 from its 3x3x3 points.
const std::array<std::array<double, 27>, 20>& hex27_extrapolation();

/// The two corner nodes (0-based) of each midside node of the C3D10 (nodes 5..10) and of the
/// C3D20/C3D20R (nodes 9..20).
inline constexpr int tet10_edge[6][2] = {{0, 1}, {1, 2}, {2, 0}, {0, 3}, {1, 3}, {2, 3}};
inline constexpr int hex20_edge[12][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {4, 5}, {5, 6},
                                          {6, 7}, {7, 4}, {0, 4}, {1, 5}, {2, 6}, {3, 7}};

}  // namespace vsense::model::detail
