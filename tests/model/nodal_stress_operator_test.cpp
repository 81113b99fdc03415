// The nodal-stress operator S: S x must be the nodal stress recovery of x (model::nodal_stress
// of the expanded field) on models with every element type, springs that count in the nodal
// averages, point masses and fixed DOFs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/test_support.hpp"
#include "common/tolerances.hpp"
#include "vsense/kernels/sparse.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/genset.hpp"
#include "vsense/model/inp_reader.hpp"

namespace {

namespace tol = vsense::test::tolerance;
using vsense::model::Model;

/// The built-in genset at 1e4 DOF, written to and read back from `dir`.
Model small_genset(const vsense::test::ScratchDir& dir) {
  vsense::model::GensetOptions options;
  options.target_dofs = 10000;
  vsense::model::write_genset(options, dir.file("genset.inp"));
  return vsense::model::read_inp(dir.file("genset.inp"));
}

/// max |value - reference| / max |reference| over the reference's entries (which must not all
/// be zero).
double difference_to_peak(const double* value, const std::vector<double>& reference) {
  double peak = 0.0, difference = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    peak = std::max(peak, std::abs(reference[i]));
    difference = std::max(difference, std::abs(value[i] - reference[i]));
  }
  EXPECT_GT(peak, 0.0);
  return difference / peak;
}

/// max over vectors of max |S x - nodal_stress(x)| / max |nodal_stress(x)|, for n_vectors
/// random vectors (fixed seed) applied at once.
double worst_relative_difference(const Model& model, std::size_t n_vectors) {
  const auto dofs = vsense::model::build_dof_map(model);
  const auto s = vsense::model::nodal_stress_operator(model, dofs);
  const std::size_t n_nodes = model.n_nodes();
  EXPECT_EQ(s.rows, static_cast<std::int64_t>(6 * n_nodes));
  EXPECT_EQ(s.cols, dofs.n_equations);
  const auto n = static_cast<std::size_t>(dofs.n_equations);
  std::mt19937_64 random(20240611);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> x(n * n_vectors);  // [n, n_vectors] column-major
  for (auto& value : x) value = 1e-3 * uniform(random);
  std::vector<double> y(6 * n_nodes * n_vectors);
  vsense::kernels::cpu::sparse_times_dense(vsense::CpuExecutor{}, s.view(), x.data(), n_vectors,
                                           y.data());
  double worst = 0.0;
  std::vector<double> field(3 * n_nodes), reference(6 * n_nodes);
  for (std::size_t j = 0; j < n_vectors; ++j) {
    vsense::model::expand_to_nodes(dofs, x.data() + j * n, field.data());
    vsense::model::nodal_stress(model, field.data(), reference.data());
    worst = std::max(worst, difference_to_peak(y.data() + j * 6 * n_nodes, reference));
  }
  return worst;
}

/// max over fields of max |nodal_stresses - nodal_stress| / max |nodal_stress|, for n_fields
/// random nodal fields (fixed seed) recovered at once.
double worst_many_fields_difference(const Model& model, std::size_t n_fields) {
  const std::size_t n_nodes = model.n_nodes();
  std::mt19937_64 random(20261204);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> fields(n_fields * 3 * n_nodes);
  for (auto& value : fields) value = 1e-3 * uniform(random);
  std::vector<double> stresses(n_fields * 6 * n_nodes, -1.0);  // overwritten, not added to
  vsense::model::nodal_stresses(model, fields.data(), n_fields, stresses.data());
  double worst = 0.0;
  std::vector<double> reference(6 * n_nodes);
  for (std::size_t j = 0; j < n_fields; ++j) {
    vsense::model::nodal_stress(model, fields.data() + j * 3 * n_nodes, reference.data());
    worst = std::max(worst, difference_to_peak(stresses.data() + j * 6 * n_nodes, reference));
  }
  return worst;
}

TEST(NodalStresses, ManyFieldsAtOnceEqualTheRecoveryOfEachOnAMixedModel) {
  // Every element type, springs counted in the averages, masses not; 70 fields: a full panel
  // of 64 and a partial one.
  const Model model = vsense::model::read_inp(
      vsense::test::data_path("ccx/mixed_springs_masses.inp"));
  EXPECT_LE(worst_many_fields_difference(model, 70), tol::same_sum_rel);
  EXPECT_LE(worst_many_fields_difference(model, 1), tol::same_sum_rel);
}

TEST(NodalStresses, ManyFieldsAtOnceEqualTheRecoveryOfEachOnTheGenset) {
  vsense::test::ScratchDir dir("nodal_stresses");
  EXPECT_LE(worst_many_fields_difference(small_genset(dir), 33), tol::same_sum_rel);
}

TEST(NodalStressOperator, EqualsTheStressRecoveryOnAMixedModelWithSpringsAndMasses) {
  // C3D8, C3D4, C3D20R, C3D20, C3D10 blocks sharing nodes, SPRINGA/SPRING2 (counted in the
  // averages), SPRING1 and MASS (not counted), a clamped face.
  const Model model = vsense::model::read_inp(
      vsense::test::data_path("ccx/mixed_springs_masses.inp"));
  // 40 vectors: more than one panel of the CPU product.
  const double worst = worst_relative_difference(model, 40);
  EXPECT_LE(worst, tol::same_sum_rel) << "max |S x - nodal_stress(x)| / max |nodal_stress(x)|";
}

TEST(NodalStressOperator, EqualsTheStressRecoveryOnTheGenset) {
  vsense::test::ScratchDir dir("stress_operator");
  const double worst = worst_relative_difference(small_genset(dir), 3);
  EXPECT_LE(worst, tol::same_sum_rel) << "max |S x - nodal_stress(x)| / max |nodal_stress(x)|";
}

TEST(NodalStressOperator, ColumnIsTheResponseToAUnitDisplacementEntryByEntry) {
  // A column of S, S e_c, is the recovered stress of one unit DOF: compared entry by entry
  // (each relative to itself), not only relative to the peak.
  const Model model = vsense::model::read_inp(vsense::test::data_path("ccx/c3d8_cantilever.inp"));
  const auto dofs = vsense::model::build_dof_map(model);
  const auto s = vsense::model::nodal_stress_operator(model, dofs);
  const auto n = static_cast<std::size_t>(dofs.n_equations);
  const std::size_t c = n / 2;
  std::vector<double> unit(n, 0.0), field(3 * model.n_nodes()), reference(6 * model.n_nodes());
  unit[c] = 1.0;
  vsense::model::expand_to_nodes(dofs, unit.data(), field.data());
  vsense::model::nodal_stress(model, field.data(), reference.data());
  std::vector<double> column(6 * model.n_nodes());
  vsense::kernels::cpu::sparse_times_dense(vsense::CpuExecutor{}, s.view(), unit.data(), 1,
                                           column.data());
  double peak = 0.0;
  for (std::size_t i = 0; i < column.size(); ++i) {
    peak = std::max(peak, std::abs(reference[i]));
    EXPECT_NEAR(column[i], reference[i], tol::same_sum_rel * std::abs(reference[i]) + 1e-300)
        << "row " << i;
  }
  EXPECT_GT(peak, 0.0);
}

}  // namespace
