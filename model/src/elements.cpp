/// @file elements.cpp
/// @brief Solid element matrices and stress recovery with CalculiX's formulations.
///
/// What "CalculiX's formulation" means here (CalculiX 2.20, e_c3d.f, results and extrapolate.f;
/// checked against ccx in tests/model/elements_test.cpp):
/// - one integration rule per element type, used for the stiffness, the consistent mass
///   (same loop, same points: CalculiX's frequency step calls e_c3d with intscheme = 0) and
///   the stresses:
///     C3D4   1 point          (so its mass matrix is rho*V/16 in every entry of a direction)
///     C3D10  4 points         (exact to degree 2 only: the degree-4 mass integrand is not
///                              integrated exactly, in CalculiX neither)
///     C3D8   2x2x2 Gauss
///     C3D20  3x3x3 Gauss
///     C3D20R 2x2x2 Gauss      (stiffness *and* mass: the mass matrix is rank deficient)
/// - stresses at the integration points from the small-strain gradient, isotropic Hooke's law,
///   shear components as tensor components (sigma_xy = G * gamma_xy);
/// - extrapolation to the nodes with CalculiX's tables (their rounded coefficients included):
///     C3D4   the single point value at every node
///     C3D10  linear extrapolation from the 4 points to the corners, midside = mean of its corners
///     C3D8   trilinear extrapolation from the 2x2x2 points to the corners
///     C3D20R as C3D8 for the corners, midside = mean of its corners
///     C3D20  least-squares fit of the 20 serendipity functions to the 27 points, all nodes.
///   The rounding matters at the level the tests look at: with exact coefficients the nodal
///   stresses of the test cantilevers differ from ccx's by up to 4e-5 of the peak, with
///   CalculiX's by < 5e-6 (ccx's 6-digit output).
/// Cost: fixed-size arrays only, shape-function tables built once; stiffness and mass are a few
/// small sums of products over the points (see integrate_matrices).
#include "vsense/model/elements.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "element_shapes.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::model {
namespace detail {

// ---- shape functions -------------------------------------------------------------------------

void shape_tet4(const double* xi, double* n, double (*dn)[3]) noexcept {
  n[0] = 1.0 - xi[0] - xi[1] - xi[2];
  n[1] = xi[0];
  n[2] = xi[1];
  n[3] = xi[2];
  const double d[4][3] = {{-1, -1, -1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int a = 0; a < 4; ++a) {
    for (int k = 0; k < 3; ++k) dn[a][k] = d[a][k];
  }
}

void shape_tet10(const double* xi, double* n, double (*dn)[3]) noexcept {
  // Volume coordinates L1..L4 and their (constant) natural derivatives.
  const double l[4] = {1.0 - xi[0] - xi[1] - xi[2], xi[0], xi[1], xi[2]};
  const double dl[4][3] = {{-1, -1, -1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int a = 0; a < 4; ++a) {
    n[a] = l[a] * (2.0 * l[a] - 1.0);
    for (int k = 0; k < 3; ++k) dn[a][k] = (4.0 * l[a] - 1.0) * dl[a][k];
  }
  for (int m = 0; m < 6; ++m) {
    const int p = tet10_edge[m][0], q = tet10_edge[m][1];
    n[4 + m] = 4.0 * l[p] * l[q];
    for (int k = 0; k < 3; ++k) dn[4 + m][k] = 4.0 * (l[p] * dl[q][k] + l[q] * dl[p][k]);
  }
}

namespace {
/// Natural coordinates of the 20 hexahedron nodes (the first 8 are the C3D8 corners).
constexpr double hex_node[20][3] = {{-1, -1, -1}, {1, -1, -1}, {1, 1, -1}, {-1, 1, -1}, {-1, -1, 1},
                                    {1, -1, 1},   {1, 1, 1},   {-1, 1, 1}, {0, -1, -1}, {1, 0, -1},
                                    {0, 1, -1},   {-1, 0, -1}, {0, -1, 1}, {1, 0, 1},   {0, 1, 1},
                                    {-1, 0, 1},   {-1, -1, 0}, {1, -1, 0}, {1, 1, 0},   {-1, 1, 0}};
}  // namespace

void shape_hex8(const double* xi, double* n, double (*dn)[3]) noexcept {
  for (int a = 0; a < 8; ++a) {
    const double f[3] = {1.0 + hex_node[a][0] * xi[0], 1.0 + hex_node[a][1] * xi[1],
                         1.0 + hex_node[a][2] * xi[2]};
    n[a] = 0.125 * f[0] * f[1] * f[2];
    dn[a][0] = 0.125 * hex_node[a][0] * f[1] * f[2];
    dn[a][1] = 0.125 * hex_node[a][1] * f[0] * f[2];
    dn[a][2] = 0.125 * hex_node[a][2] * f[0] * f[1];
  }
}

void shape_hex20(const double* xi, double* n, double (*dn)[3]) noexcept {
  for (int a = 0; a < 8; ++a) {
    const double* c = hex_node[a];
    const double f[3] = {1.0 + c[0] * xi[0], 1.0 + c[1] * xi[1], 1.0 + c[2] * xi[2]};
    const double s = c[0] * xi[0] + c[1] * xi[1] + c[2] * xi[2] - 2.0;
    n[a] = 0.125 * f[0] * f[1] * f[2] * s;
    // d/dxi_k of f0 f1 f2 s = c_k * (prod of the other two f) * (s + f_k)
    dn[a][0] = 0.125 * c[0] * f[1] * f[2] * (s + f[0]);
    dn[a][1] = 0.125 * c[1] * f[0] * f[2] * (s + f[1]);
    dn[a][2] = 0.125 * c[2] * f[0] * f[1] * (s + f[2]);
  }
  for (int a = 8; a < 20; ++a) {
    const double* c = hex_node[a];
    // The midside node lies at c[k] = 0 along its edge direction k.
    const int k = c[0] == 0.0 ? 0 : (c[1] == 0.0 ? 1 : 2);
    const int i = (k + 1) % 3, j = (k + 2) % 3;
    const double bubble = 1.0 - xi[k] * xi[k];
    const double fi = 1.0 + c[i] * xi[i], fj = 1.0 + c[j] * xi[j];
    n[a] = 0.25 * bubble * fi * fj;
    dn[a][k] = -0.5 * xi[k] * fi * fj;
    dn[a][i] = 0.25 * bubble * c[i] * fj;
    dn[a][j] = 0.25 * bubble * fi * c[j];
  }
}

// ---- integration rules -----------------------------------------------------------------------

namespace {

template <int N, int Q, class ShapeFunction>
IntegrationTable<N, Q> tabulate(const double (*points)[3], const double* weights,
                                ShapeFunction shape) {
  IntegrationTable<N, Q> table;
  for (int q = 0; q < Q; ++q) {
    double n[N];
    double dn[N][3];
    shape(points[q], n, dn);
    table.weight[q] = weights[q];
    for (int a = 0; a < N; ++a) {
      table.shape[q][a] = n[a];
      for (int k = 0; k < 3; ++k) table.dshape[q][a][k] = dn[a][k];
    }
  }
  return table;
}

/// Gauss-Legendre points per direction, in CalculiX's order (xi fastest, then eta, then zeta).
/// CalculiX stores them with 15 digits; the exact values differ from those by < 1e-15.
template <int P>
void hex_gauss_rule(double (*points)[3], double* weights) {
  static_assert(P == 2 || P == 3);
  const double g2 = 1.0 / std::sqrt(3.0), g3 = std::sqrt(0.6);
  const double x2[2] = {-g2, g2}, w2[2] = {1.0, 1.0};
  const double x3[3] = {-g3, 0.0, g3}, w3[3] = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
  const double* x = P == 2 ? x2 : x3;
  const double* w = P == 2 ? w2 : w3;
  int q = 0;
  for (int k = 0; k < P; ++k) {
    for (int j = 0; j < P; ++j) {
      for (int i = 0; i < P; ++i, ++q) {
        points[q][0] = x[i];
        points[q][1] = x[j];
        points[q][2] = x[k];
        weights[q] = w[i] * w[j] * w[k];
      }
    }
  }
}

}  // namespace

const Tet4Table& tet4_table() {
  static const Tet4Table table = [] {
    const double points[1][3] = {{0.25, 0.25, 0.25}};
    const double weights[1] = {1.0 / 6.0};
    return tabulate<4, 1>(points, weights, shape_tet4);
  }();
  return table;
}

const Tet10Table& tet10_table() {
  static const Tet10Table table = [] {
    // Point q (q >= 2) sits near corner q; point 1 near corner 1 (the origin).
    const double a = (5.0 + 3.0 * std::sqrt(5.0)) / 20.0, b = (5.0 - std::sqrt(5.0)) / 20.0;
    const double points[4][3] = {{b, b, b}, {a, b, b}, {b, a, b}, {b, b, a}};
    const double weights[4] = {1.0 / 24.0, 1.0 / 24.0, 1.0 / 24.0, 1.0 / 24.0};
    return tabulate<10, 4>(points, weights, shape_tet10);
  }();
  return table;
}

const Hex8Table& hex8_table() {
  static const Hex8Table table = [] {
    double points[8][3], weights[8];
    hex_gauss_rule<2>(points, weights);
    return tabulate<8, 8>(points, weights, shape_hex8);
  }();
  return table;
}

const Hex20Table& hex20_table() {
  static const Hex20Table table = [] {
    double points[27][3], weights[27];
    hex_gauss_rule<3>(points, weights);
    return tabulate<20, 27>(points, weights, shape_hex20);
  }();
  return table;
}

const Hex20rTable& hex20r_table() {
  static const Hex20rTable table = [] {
    double points[8][3], weights[8];
    hex_gauss_rule<2>(points, weights);
    return tabulate<20, 8>(points, weights, shape_hex20);
  }();
  return table;
}

// ---- extrapolation tables --------------------------------------------------------------------

const std::array<std::array<double, 4>, 4>& tet_extrapolation() {
  // CalculiX's a4: the inverse of the linear interpolation matrix at the 4 points, with
  // CalculiX's 5-decimal coefficients (exactly (1-b)/(a-b) = 1.927051 and -b/(a-b) = -0.309017).
  static const std::array<std::array<double, 4>, 4> table = [] {
    std::array<std::array<double, 4>, 4> t{};
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 4; ++l) t[j][l] = j == l ? 1.92705 : -0.30902;
    }
    return t;
  }();
  return table;
}

const std::array<std::array<double, 8>, 8>& hex8_extrapolation() {
  // CalculiX's a8: trilinear extrapolation; the coefficient only depends on in how many
  // directions corner j and point l lie on opposite sides. CalculiX rounds the exact values
  // ((1 + s*sqrt(3)) / 2 products: 2.549038, -0.683013, 0.183013, -0.049038) to 4 digits.
  static const std::array<std::array<double, 8>, 8> table = [] {
    constexpr double by_opposite_sides[4] = {2.549, -0.683, 0.183, -0.04904};
    std::array<std::array<double, 8>, 8> t{};
    for (int j = 0; j < 8; ++j) {
      for (int l = 0; l < 8; ++l) {
        // Point l of the 2x2x2 rule (xi fastest) has coordinate sign + in direction d when bit d
        // of l is set.
        int opposite = 0;
        for (int d = 0; d < 3; ++d) {
          const double point_sign = ((l >> d) & 1) ? 1.0 : -1.0;
          if (point_sign != hex_node[j][d]) ++opposite;
        }
        t[j][l] = by_opposite_sides[opposite];
      }
    }
    return t;
  }();
  return table;
}

const std::array<std::array<double, 27>, 20>& hex27_extrapolation() {
  // CalculiX's a27 is the least-squares fit of the 20 serendipity functions to the 27 point
  // values, E = (N^T N)^-1 N^T with N [27, 20] the shape functions at the points, printed with
  // 5 decimals. We compute E and round it the same way, which reproduces CalculiX's table.
  static const std::array<std::array<double, 27>, 20> table = [] {
    const Hex20Table& rule = hex20_table();
    Eigen::Matrix<double, 27, 20> n;
    for (int q = 0; q < 27; ++q) {
      for (int a = 0; a < 20; ++a) n(q, a) = rule.shape[q][a];
    }
    const Eigen::Matrix<double, 20, 20> normal = n.transpose() * n;
    const Eigen::Matrix<double, 20, 27> fit = normal.ldlt().solve(n.transpose());
    std::array<std::array<double, 27>, 20> t{};
    for (int j = 0; j < 20; ++j) {
      for (int l = 0; l < 27; ++l) t[j][l] = std::round(fit(j, l) * 1e5) / 1e5;
    }
    return t;
  }();
  return table;
}

}  // namespace detail

// ---- element routines ------------------------------------------------------------------------

namespace {

using detail::IntegrationTable;

/// Lame constants and density of an isotropic material (CalculiX's al, um, rho).
struct Elastic {
  double lambda = 0.0;
  double mu = 0.0;
  double density = 0.0;
};

Elastic elastic_constants(const Material& material, bool need_density) {
  if (!material.young_modulus || !material.poisson_ratio) {
    throw InputError(fmt::format("material {} ({}) has no *ELASTIC constants", material.name,
                                 material.where.str()));
  }
  if (need_density && !material.density) {
    throw InputError(
        fmt::format("material {} ({}) has no *DENSITY", material.name, material.where.str()));
  }
  const double e = *material.young_modulus, nu = *material.poisson_ratio;
  if (!(e > 0.0) || !(nu > -1.0 && nu < 0.5)) {
    throw InputError(fmt::format(
        "material {} ({}): E = {} and nu = {} do not give a positive definite elasticity tensor",
        material.name, material.where.str(), e, nu));
  }
  Elastic c;
  c.mu = e / (2.0 * (1.0 + nu));
  c.lambda = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
  c.density = material.density.value_or(0.0);
  return c;
}

[[noreturn]] void throw_degenerate(ElementType type, double det, int point) {
  throw InputError(
      fmt::format("{} element: Jacobian determinant {:.6g} at integration point {} is not positive "
                  "(degenerate element or wrong node order)",
                  element_type_name(type), det, point + 1));
}

/// Jacobian determinant at point q and the Cartesian shape derivatives dndx [N][3] there.
/// @throws InputError when the determinant is not positive.
template <int N, int Q>
double point_geometry(const IntegrationTable<N, Q>& table, int q, const double* xyz,
                      ElementType type, double (*dndx)[3]) {
  // j[i][k] = d x_i / d xi_k
  double j[3][3] = {};
  for (int a = 0; a < N; ++a) {
    const auto& d = table.dshape[q][a];
    for (int i = 0; i < 3; ++i) {
      const double x = xyz[3 * a + i];
      j[i][0] += x * d[0];
      j[i][1] += x * d[1];
      j[i][2] += x * d[2];
    }
  }
  const double c00 = j[1][1] * j[2][2] - j[1][2] * j[2][1];
  const double c01 = j[1][2] * j[2][0] - j[1][0] * j[2][2];
  const double c02 = j[1][0] * j[2][1] - j[1][1] * j[2][0];
  const double det = j[0][0] * c00 + j[0][1] * c01 + j[0][2] * c02;
  if (!(det > 0.0)) throw_degenerate(type, det, q);
  const double r = 1.0 / det;
  // inv[k][i] = d xi_k / d x_i
  const double inv[3][3] = {{c00 * r, (j[0][2] * j[2][1] - j[0][1] * j[2][2]) * r,
                             (j[0][1] * j[1][2] - j[0][2] * j[1][1]) * r},
                            {c01 * r, (j[0][0] * j[2][2] - j[0][2] * j[2][0]) * r,
                             (j[0][2] * j[1][0] - j[0][0] * j[1][2]) * r},
                            {c02 * r, (j[0][1] * j[2][0] - j[0][0] * j[2][1]) * r,
                             (j[0][0] * j[1][1] - j[0][1] * j[1][0]) * r}};
  for (int a = 0; a < N; ++a) {
    const auto& d = table.dshape[q][a];
    for (int i = 0; i < 3; ++i) {
      dndx[a][i] = d[0] * inv[0][i] + d[1] * inv[1][i] + d[2] * inv[2][i];
    }
  }
  return det;
}

/// K = sum_q w_q det_q B_q^T D B_q and M = rho sum_q w_q det_q N_q^T N_q, computed as sums of
/// outer products over the points: with A_i(q, a) = sqrt(w_q det_q) dN_a/dx_i at point q and
/// P_ik = A_i^T A_k (6 distinct pairs), the 3x3 block of nodes (a, b) is
///   K_ab(i, k) = lambda P_ik(a, b) + mu P_ki(a, b) + mu delta_ik (P_00 + P_11 + P_22)(a, b).
/// Both matrices come out exactly symmetric (the same products are summed in the same order).
template <int N, int Q>
void integrate_matrices(const IntegrationTable<N, Q>& table, ElementType type, const double* xyz,
                        const Elastic& c, double* stiffness, double* mass) {
  constexpr int n_dofs = 3 * N;
  // a[q][i][b] = sqrt(w_q det_q) dN_b/dx_i at point q (i < 3); a[q][3][b] = sqrt(w_q det_q) N_b
  double a[Q][4][N];
  for (int q = 0; q < Q; ++q) {
    double g[N][3];
    const double root = std::sqrt(table.weight[q] * point_geometry(table, q, xyz, type, g));
    for (int b = 0; b < N; ++b) {
      for (int i = 0; i < 3; ++i) a[q][i][b] = root * g[b][i];
      a[q][3][b] = root * table.shape[q][b];
    }
  }
  // p[r][a][b] = sum_q a[q][i][a] a[q][k][b] for pair r = (i, k): the 6 pairs i <= k of the
  // stiffness, then (3, 3) for the mass
  constexpr int pairs[7][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}, {3, 3}};
  double p[7][N][N] = {};
  const int n_pairs = mass ? 7 : 6;
  for (int q = 0; q < Q; ++q) {
    for (int r = 0; r < n_pairs; ++r) {
      const double* left = a[q][pairs[r][0]];
      const double* right = a[q][pairs[r][1]];
      for (int i = 0; i < N; ++i) {
        const double t = left[i];
        for (int j = 0; j < N; ++j) p[r][i][j] += t * right[j];
      }
    }
  }
  constexpr int pair_index[3][3] = {{0, 1, 2}, {1, 3, 4}, {2, 4, 5}};
  for (int na = 0; na < N; ++na) {
    for (int i = 0; i < 3; ++i) {
      double* row = stiffness + (3 * na + i) * n_dofs;
      for (int nb = 0; nb < N; ++nb) {
        const double trace = p[0][na][nb] + p[3][na][nb] + p[5][na][nb];
        for (int k = 0; k < 3; ++k) {
          const int r = pair_index[i][k];
          // P_ik(a, b) and P_ki(a, b) = P_ik(b, a); stored for i <= k only
          const double pik = i <= k ? p[r][na][nb] : p[r][nb][na];
          const double pki = i <= k ? p[r][nb][na] : p[r][na][nb];
          row[3 * nb + k] = c.lambda * pik + c.mu * pki;
        }
        row[3 * nb + i] += c.mu * trace;
      }
    }
  }
  if (mass) {
    std::fill(mass, mass + n_dofs * n_dofs, 0.0);
    for (int na = 0; na < N; ++na) {
      for (int nb = 0; nb < N; ++nb) {
        const double m = c.density * p[6][na][nb];
        for (int i = 0; i < 3; ++i) mass[(3 * na + i) * n_dofs + 3 * nb + i] = m;
      }
    }
  }
}

/// Isotropic Hooke's law on a displacement gradient grad[i][k] = d u_i / d x_k: stress
/// (xx, yy, zz, xy, yz, zx), shear as tensor components.
inline void hooke(const Elastic& c, const double (&grad)[3][3], double* stress) {
  const double trace = grad[0][0] + grad[1][1] + grad[2][2];
  stress[0] = c.lambda * trace + 2.0 * c.mu * grad[0][0];
  stress[1] = c.lambda * trace + 2.0 * c.mu * grad[1][1];
  stress[2] = c.lambda * trace + 2.0 * c.mu * grad[2][2];
  stress[3] = c.mu * (grad[0][1] + grad[1][0]);
  stress[4] = c.mu * (grad[1][2] + grad[2][1]);
  stress[5] = c.mu * (grad[2][0] + grad[0][2]);
}

/// Stresses [Q][6] (xx, yy, zz, xy, yz, zx) at the integration points.
template <int N, int Q>
void point_stresses(const IntegrationTable<N, Q>& table, ElementType type, const double* xyz,
                    const Elastic& c, const double* displacement, double (*stress)[6]) {
  for (int q = 0; q < Q; ++q) {
    double g[N][3];
    point_geometry(table, q, xyz, type, g);
    // grad[i][k] = d u_i / d x_k
    double grad[3][3] = {};
    for (int a = 0; a < N; ++a) {
      for (int i = 0; i < 3; ++i) {
        const double u = displacement[3 * a + i];
        grad[i][0] += u * g[a][0];
        grad[i][1] += u * g[a][1];
        grad[i][2] += u * g[a][2];
      }
    }
    hooke(c, grad, stress[q]);
  }
}

/// The stresses at the integration points per unit displacement: point[q][k][3 b + d] is
/// component k at point q for u = e_(b, d) ([Q, 6, 3N]). Entry for entry what point_stresses
/// gives for that unit field (its gradient sums have a single nonzero term).
template <int N, int Q>
void point_stress_matrices(const IntegrationTable<N, Q>& table, ElementType type,
                           const double* xyz, const Elastic& c, double* point) {
  constexpr int n_dofs = 3 * N;
  for (int q = 0; q < Q; ++q) {
    double g[N][3];
    point_geometry(table, q, xyz, type, g);
    for (int b = 0; b < N; ++b) {
      for (int d = 0; d < 3; ++d) {
        double grad[3][3] = {};
        for (int k = 0; k < 3; ++k) grad[d][k] = g[b][k];
        double stress[6];
        hooke(c, grad, stress);
        for (int k = 0; k < 6; ++k) point[(q * 6 + k) * n_dofs + 3 * b + d] = stress[k];
      }
    }
  }
}

/// As extrapolate for values of any width: nodal[j][w] = sum_l table[j][l] * point[l][w].
template <std::size_t J, std::size_t Q>
void extrapolate_wide(const std::array<std::array<double, Q>, J>& table, const double* point,
                      int width, double* nodal) {
  for (std::size_t j = 0; j < J; ++j) {
    double* out = nodal + j * static_cast<std::size_t>(width);
    std::fill(out, out + width, 0.0);
    for (std::size_t l = 0; l < Q; ++l) {
      const double t = table[j][l];
      const double* in = point + l * static_cast<std::size_t>(width);
      for (int w = 0; w < width; ++w) out[w] += t * in[w];
    }
  }
}

/// As midside_means for values of any width.
template <int M>
void midside_means_wide(const int (&edges)[M][2], int first_midside, int width, double* nodal) {
  for (int m = 0; m < M; ++m) {
    const double* p = nodal + static_cast<std::size_t>(width) * edges[m][0];
    const double* r = nodal + static_cast<std::size_t>(width) * edges[m][1];
    double* s = nodal + static_cast<std::size_t>(width) * (first_midside + m);
    for (int w = 0; w < width; ++w) s[w] = 0.5 * (p[w] + r[w]);
  }
}

/// nodal[j] = sum_l table[j][l] * point[l] for the first J nodes.
template <std::size_t J, std::size_t Q>
void extrapolate(const std::array<std::array<double, Q>, J>& table, const double (*point)[6],
                 double* nodal) {
  for (std::size_t j = 0; j < J; ++j) {
    double s[6] = {};
    for (std::size_t l = 0; l < Q; ++l) {
      for (int k = 0; k < 6; ++k) s[k] += table[j][l] * point[l][k];
    }
    for (int k = 0; k < 6; ++k) nodal[6 * j + k] = s[k];
  }
}

/// Midside nodes take the mean of the two corner nodes of their edge (CalculiX's nonei10/20).
template <int M>
void midside_means(const int (&edges)[M][2], int first_midside, double* nodal) {
  for (int m = 0; m < M; ++m) {
    const double* p = nodal + 6 * edges[m][0];
    const double* r = nodal + 6 * edges[m][1];
    double* s = nodal + 6 * (first_midside + m);
    for (int k = 0; k < 6; ++k) s[k] = 0.5 * (p[k] + r[k]);
  }
}

template <int N, int Q>
double integrate_volume(const IntegrationTable<N, Q>& table, ElementType type, const double* xyz) {
  double volume = 0.0;
  for (int q = 0; q < Q; ++q) {
    double g[N][3];
    volume += table.weight[q] * point_geometry(table, q, xyz, type, g);
  }
  return volume;
}

[[noreturn]] void throw_unsupported(ElementType type) {
  if (type == ElementType::c3d8r) {
    throw InputError(
        "C3D8R elements are not supported: CalculiX's hourglass control is not reproduced; "
        "use C3D8 or C3D20R");
  }
  throw InputError(fmt::format("{} is not a solid element", element_type_name(type)));
}

}  // namespace

void solid_matrices(ElementType type, const double* coordinates, const Material& material,
                    double* stiffness, double* mass) {
  const Elastic c = elastic_constants(material, mass != nullptr);
  switch (type) {
    case ElementType::c3d4:
      return integrate_matrices(detail::tet4_table(), type, coordinates, c, stiffness, mass);
    case ElementType::c3d10:
      return integrate_matrices(detail::tet10_table(), type, coordinates, c, stiffness, mass);
    case ElementType::c3d8:
      return integrate_matrices(detail::hex8_table(), type, coordinates, c, stiffness, mass);
    case ElementType::c3d20:
      return integrate_matrices(detail::hex20_table(), type, coordinates, c, stiffness, mass);
    case ElementType::c3d20r:
      return integrate_matrices(detail::hex20r_table(), type, coordinates, c, stiffness, mass);
    default:
      throw_unsupported(type);
  }
}

void solid_nodal_stress(ElementType type, const double* coordinates, const Material& material,
                        const double* displacement, double* stress) {
  const Elastic c = elastic_constants(material, false);
  double point[27][6];
  switch (type) {
    case ElementType::c3d4: {
      point_stresses(detail::tet4_table(), type, coordinates, c, displacement, point);
      for (int j = 0; j < 4; ++j) {
        for (int k = 0; k < 6; ++k) stress[6 * j + k] = point[0][k];
      }
      return;
    }
    case ElementType::c3d10:
      point_stresses(detail::tet10_table(), type, coordinates, c, displacement, point);
      extrapolate(detail::tet_extrapolation(), point, stress);
      midside_means(detail::tet10_edge, 4, stress);
      return;
    case ElementType::c3d8:
      point_stresses(detail::hex8_table(), type, coordinates, c, displacement, point);
      extrapolate(detail::hex8_extrapolation(), point, stress);
      return;
    case ElementType::c3d20:
      point_stresses(detail::hex20_table(), type, coordinates, c, displacement, point);
      extrapolate(detail::hex27_extrapolation(), point, stress);
      return;
    case ElementType::c3d20r:
      point_stresses(detail::hex20r_table(), type, coordinates, c, displacement, point);
      extrapolate(detail::hex8_extrapolation(), point, stress);
      midside_means(detail::hex20_edge, 8, stress);
      return;
    default:
      throw_unsupported(type);
  }
}

void solid_nodal_stress_matrix(ElementType type, const double* coordinates,
                               const Material& material, double* matrix) {
  const Elastic c = elastic_constants(material, false);
  // point: [Q, 6, 3N] for the largest element (C3D20, 27 points), 78 kB
  constexpr int max_points = 27, max_dofs = 60;
  double point[max_points * 6 * max_dofs];
  switch (type) {
    case ElementType::c3d4: {
      point_stress_matrices(detail::tet4_table(), type, coordinates, c, point);
      const int width = 6 * 12;
      for (int j = 0; j < 4; ++j) std::copy(point, point + width, matrix + j * width);
      return;
    }
    case ElementType::c3d10:
      point_stress_matrices(detail::tet10_table(), type, coordinates, c, point);
      extrapolate_wide(detail::tet_extrapolation(), point, 6 * 30, matrix);
      midside_means_wide(detail::tet10_edge, 4, 6 * 30, matrix);
      return;
    case ElementType::c3d8:
      point_stress_matrices(detail::hex8_table(), type, coordinates, c, point);
      extrapolate_wide(detail::hex8_extrapolation(), point, 6 * 24, matrix);
      return;
    case ElementType::c3d20:
      point_stress_matrices(detail::hex20_table(), type, coordinates, c, point);
      extrapolate_wide(detail::hex27_extrapolation(), point, 6 * 60, matrix);
      return;
    case ElementType::c3d20r:
      point_stress_matrices(detail::hex20r_table(), type, coordinates, c, point);
      extrapolate_wide(detail::hex8_extrapolation(), point, 6 * 60, matrix);
      midside_means_wide(detail::hex20_edge, 8, 6 * 60, matrix);
      return;
    default:
      throw_unsupported(type);
  }
}

double solid_volume(ElementType type, const double* coordinates) {
  switch (type) {
    case ElementType::c3d4:
      return integrate_volume(detail::tet4_table(), type, coordinates);
    case ElementType::c3d10:
      return integrate_volume(detail::tet10_table(), type, coordinates);
    case ElementType::c3d8:
      return integrate_volume(detail::hex8_table(), type, coordinates);
    case ElementType::c3d20:
      return integrate_volume(detail::hex20_table(), type, coordinates);
    case ElementType::c3d20r:
      return integrate_volume(detail::hex20r_table(), type, coordinates);
    default:
      throw_unsupported(type);
  }
}

}  // namespace vsense::model
