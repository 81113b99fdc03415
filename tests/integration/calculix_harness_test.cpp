// The CalculiX harness itself: its parsers on hand-written records, and a real ccx run on
// models whose modes are known in closed form, so that the reference the modal tests rely on
// is checked before it is trusted.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "common/calculix.hpp"
#include "common/modal_compare.hpp"
#include "common/test_support.hpp"
#include "common/tolerances.hpp"

namespace {

namespace ccx = vsense::test::calculix;
using vsense::test::ScratchDir;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// ---- parsers on hand-written records (no ccx needed) ---------------------------------------

TEST(CalculixParsers, FrdFixedWidthRecordsWithAdjacentNegativeValuesAndContinuations) {
  ScratchDir dir("frd");
  // long format (I10 node numbers, E12.5 values, no separators between negative values),
  // a node block that must not be taken for results, and a -2 continuation record
  const std::string frd =
      "    1C\n"
      "    2C                             2                                     1\n"
      " -1         1 0.00000E+00 0.00000E+00 0.00000E+00\n"
      " -1        12 1.00000E+00 0.00000E+00 0.00000E+00\n"
      " -3\n"
      "    1PSTEP                         1           1           1\n"
      "  100CL  101 171.3423771           2                     2    1MODAL      1\n"
      " -4  DISP        4    1\n"
      " -5  D1          1    2    1    0\n"
      " -5  ALL         1    2    0    0    1ALL\n"
      " -1         1 5.54869E-03-1.12283E-02-4.50310E-03\n"
      " -1        12-6.02718E-03-1.96000E+02 8.70481E-13\n"
      " -3\n"
      "    1PSTEP                         2           1           1\n"
      "  100CL  102 1.23457E-05           2                     2    2MODAL      1\n"
      " -4  STRESS      6    1\n"
      " -1         1 1.00000E+00 2.00000E+00 3.00000E+00-4.00000E+00 5.00000E+00-6.00000E+00\n"
      " -1        12 1.10000E+00 2.10000E+00 3.10000E+00\n"
      " -2           4.10000E+00 5.10000E+00-6.10000E+00\n"
      " -3\n"
      " 9999\n";
  write_file(dir.file("t.frd"), frd);
  const auto blocks = ccx::parse_frd(dir.file("t.frd"));
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].name, "DISP");
  EXPECT_EQ(blocks[0].analysis, "MODAL");
  EXPECT_EQ(blocks[0].mode, 1);
  EXPECT_DOUBLE_EQ(blocks[0].value, 171.3423771);
  EXPECT_EQ(blocks[0].n_components, 3);
  ASSERT_EQ(blocks[0].node_ids, (std::vector<std::int64_t>{1, 12}));
  EXPECT_DOUBLE_EQ(blocks[0].values[1], -1.12283e-2);
  EXPECT_DOUBLE_EQ(blocks[0].values[3], -6.02718e-3);
  EXPECT_DOUBLE_EQ(blocks[0].values[4], -1.96e2);
  EXPECT_DOUBLE_EQ(blocks[0].values[5], 8.70481e-13);
  EXPECT_EQ(blocks[1].name, "STRESS");
  EXPECT_EQ(blocks[1].mode, 2);
  EXPECT_DOUBLE_EQ(blocks[1].value, 1.23457e-5);
  EXPECT_EQ(blocks[1].n_components, 6);
  ASSERT_EQ(blocks[1].values.size(), 12u);
  EXPECT_DOUBLE_EQ(blocks[1].values[5], -6.0);
  EXPECT_DOUBLE_EQ(blocks[1].values[9], 4.1);
  EXPECT_DOUBLE_EQ(blocks[1].values[11], -6.1);
}

TEST(CalculixParsers, FrdRejectsAMalformedValue) {
  ScratchDir dir("frd");
  write_file(dir.file("t.frd"),
             "  100CL  101 1.000000000           1                     2    1MODAL      1\n"
             " -4  DISP        4    1\n"
             " -1         1 5.54869E-03-1.1x283E-0-4.50310E-03\n"
             " -3\n");
  EXPECT_THROW(ccx::parse_frd(dir.file("t.frd")), std::runtime_error);
}

TEST(CalculixParsers, DatEigenvalueTableAndEmasTotals) {
  const std::string dat =
      "\n     E I G E N V A L U E   O U T P U T\n\n"
      " MODE NO    EIGENVALUE                       FREQUENCY   \n"
      "                                     REAL PART            IMAGINARY PART\n"
      "                           (RAD/TIME)      (CYCLES/TIME     (RAD/TIME)\n\n"
      "      1  -0.6184227E-08   0.0000000E+00   0.0000000E+00   0.7863986E-04\n"
      "      2   0.1159016E+07   0.1076576E+04   0.1713424E+03   0.0000000E+00\n"
      "\n     P A R T I C I P A T I O N   F A C T O R S\n\n"
      "      1  -0.4084872E+00  -0.3885892E+02  -0.3044539E+02   0.3928748E+01   "
      "0.4437587E+02  -0.5738899E+02\n"
      "\n total mass for set EALL and time  0.1000000E+01\n\n        3.925000E+03\n\n"
      " center of gravity for set EALL and time  0.1000000E+01\n\n"
      "        1.000000E+00  2.500000E-01 -2.500000E-01\n";
  const auto rows = ccx::parse_dat_eigenvalues(dat);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].mode, 1);
  EXPECT_DOUBLE_EQ(rows[0].eigenvalue, -0.6184227e-8);
  EXPECT_DOUBLE_EQ(rows[0].omega_imaginary, 0.7863986e-4);
  EXPECT_DOUBLE_EQ(rows[1].frequency_hz, 0.1713424e3);
  const auto masses = ccx::parse_dat_masses(dat);
  ASSERT_EQ(masses.size(), 1u);
  EXPECT_EQ(masses[0].elset, "EALL");
  EXPECT_DOUBLE_EQ(masses[0].mass, 3925.0);
  EXPECT_DOUBLE_EQ(masses[0].centre[2], -0.25);
}

TEST(CalculixParsers, SolidSectionElsetsAreFoundCaseInsensitively) {
  ScratchDir dir("inp");
  write_file(dir.file("m.inp"),
             "** *SOLID SECTION, ELSET=COMMENTED, MATERIAL=X\n"
             "*Solid Section, elset=Eall, material=Steel\n"
             "*SOLID SECTION,MATERIAL=AL,ELSET=EB\n");
  EXPECT_EQ(ccx::solid_section_elsets(dir.file("m.inp")),
            (std::vector<std::string>{"EALL", "EB"}));
}

TEST(ModalCompare, MacPrincipalAnglesAndRigidBodyCount) {
  EXPECT_DOUBLE_EQ(vsense::test::modal::mac({1, 2, 3}, {-2, -4, -6}), 1.0);
  EXPECT_NEAR(vsense::test::modal::mac({1, 0, 0}, {1, 1, 0}), 0.5, 1e-15);
  // span{e1, e2} vs span{e1+e2, e1-e2}: the same plane
  const auto same = vsense::test::modal::principal_cos2({1, 0, 0, 0, 1, 0}, {1, 1, 0, 1, -1, 0}, 3, 2);
  EXPECT_NEAR(same[0], 1.0, 1e-14);
  // span{e1, e2} vs span{e1, e3}: one common direction, one orthogonal
  const auto half = vsense::test::modal::principal_cos2({1, 0, 0, 0, 1, 0}, {1, 0, 0, 0, 0, 1}, 3, 2);
  EXPECT_NEAR(half[0], 0.0, 1e-14);
  EXPECT_NEAR(half[1], 1.0, 1e-14);
  EXPECT_EQ(vsense::test::modal::count_rigid_body_modes({1e-7, -2e-8, 3e-7, 1e-8, 2e-7, 5e-8, 4e8, 6e8}), 6u);
  EXPECT_EQ(vsense::test::modal::count_rigid_body_modes({1e6, 2e6, 3e8}), 0u);
  // negative round-off eigenvalues are rigid too, and don't end the group early
  EXPECT_EQ(vsense::test::modal::count_rigid_body_modes({-3e-6, -2e-6, -1e-6, 4e-8, 2e-7, 8e-7, 6e7}), 6u);
}

TEST(ModalCompare, RepeatedModesAreComparedAsSubspacesAndStressesRotatedWithThem) {
  // 3 nodes; modes 2 and 3 repeated. The tested set holds a rotated basis of that subspace and
  // a flipped mode 1: everything must match.
  using vsense::test::modal::ModeSet;
  ModeSet reference, tested;
  reference.node_ids = {10, 20, 30};
  tested.node_ids = {30, 10, 20};  // another node order
  reference.eigenvalues = {1.0e4, 4.0e6, 4.0e6 * (1 + 1e-9)};
  tested.eigenvalues = {1.0e4 * (1 + 1e-8), 4.0e6, 4.0e6};
  const std::vector<std::vector<double>> ref_modes = {
      {1, 0, 0, 2, 0, 0, 3, 0, 0}, {0, 1, 0, 0, 1, 0, 0, 1, 0}, {0, 0, 1, 0, 0, -1, 0, 0, 2}};
  const double c = std::cos(0.3), s = std::sin(0.3);
  std::vector<std::vector<double>> tst_modes(3, std::vector<double>(9));
  for (int i = 0; i < 9; ++i) {
    tst_modes[0][i] = -ref_modes[0][i];
    tst_modes[1][i] = c * ref_modes[1][i] + s * ref_modes[2][i];
    tst_modes[2][i] = -s * ref_modes[1][i] + c * ref_modes[2][i];
  }
  // stress = a fixed linear map of the displacement, so it rotates with the modes
  const auto stress_of = [](const std::vector<double>& u) {
    std::vector<double> out(18);
    for (int n = 0; n < 3; ++n)
      for (int k = 0; k < 6; ++k) out[n * 6 + k] = (k + 1) * u[n * 3 + k % 3] + u[n * 3 + (k + 1) % 3];
    return out;
  };
  const int perm[3] = {2, 0, 1};  // tested node n is reference node perm[n]
  for (int m = 0; m < 3; ++m) {
    const auto sr = stress_of(ref_modes[m]), st = stress_of(tst_modes[m]);
    reference.shapes.insert(reference.shapes.end(), ref_modes[m].begin(), ref_modes[m].end());
    reference.nodal_stress.insert(reference.nodal_stress.end(), sr.begin(), sr.end());
    for (int n = 0; n < 3; ++n) {
      for (int d = 0; d < 3; ++d) tested.shapes.push_back(tst_modes[m][perm[n] * 3 + d]);
      for (int k = 0; k < 6; ++k) tested.nodal_stress.push_back(st[perm[n] * 6 + k]);
    }
  }
  const auto result = vsense::test::modal::compare(tested, reference, {.n_modes = 3});
  ASSERT_EQ(result.modes.size(), 3u) << result.table();
  EXPECT_EQ(result.n_common_nodes, 3u);
  EXPECT_EQ(result.modes[0].group_size, 1u);
  EXPECT_EQ(result.modes[1].group_size, 2u);
  EXPECT_NEAR(result.modes[0].frequency_rel_error, 0.5e-8, 1e-12);
  for (const auto& m : result.modes) {
    EXPECT_GT(m.mac, 1 - 1e-12) << result.table();
    EXPECT_LT(m.shape_error, 1e-12) << result.table();
    EXPECT_LT(m.stress_error, 1e-12) << result.table();
  }
}

// ---- real ccx runs ---------------------------------------------------------------------------

class CalculixHarness : public ::testing::Test {
protected:
  void SetUp() override {
    if (!ccx::available()) GTEST_SKIP() << ccx::unavailable_message();
  }
};

/// Ten point masses, each held by three SPRINGA elements of different stiffness running along
/// x, y and z to fixed anchor nodes: 30 uncoupled oscillators (an axial spring has no linear
/// stiffness across its axis) with omega^2 = k / m and mass-normalised shapes of amplitude
/// 1 / sqrt(m) along one axis. Exact reference values for the whole pipeline.
/// (Grounded SPRING1 elements would do the same, but ccx's .frd lists no node that carries
/// only one-node elements, so there would be no shapes to check.)
std::string write_oscillators(const ScratchDir& dir, std::vector<double>& eigenvalues,
                              std::vector<std::pair<std::int64_t, int>>& dof_of_mode,
                              std::vector<double>& masses) {
  std::string nodes = "*NODE, NSET=NALL\n", elements, anchors = "*NSET, NSET=NANCHOR\n";
  std::vector<std::tuple<double, std::int64_t, int>> modes;
  for (int i = 0; i < 10; ++i) {
    const std::int64_t node = 100 + 7 * i;
    const double x = 0.5 * i, y = -0.25 * i, z = 0.125;
    nodes += fmt::format("{}, {}, {}, {}\n", node, x, y, z);
    const double mass = 1.5 + 0.25 * i;
    masses.push_back(mass);
    elements += fmt::format("*ELEMENT, TYPE=MASS, ELSET=M{}\n{}, {}\n*MASS, ELSET=M{}\n{}\n", i,
                            1000 + i, node, i, mass);
    for (int dof = 0; dof < 3; ++dof) {
      const std::int64_t anchor = 5000 + 10 * i + dof;
      const double length = 0.1 * (dof + 1);  // any length: the stiffness is given directly
      nodes += fmt::format("{}, {}, {}, {}\n", anchor, x + (dof == 0 ? length : 0),
                           y + (dof == 1 ? -length : 0), z + (dof == 2 ? length : 0));
      anchors += fmt::format("{}\n", anchor);
      // k is a multiple of 50: "{:.1f}" is exact, has the decimal point ccx needs to tell a
      // stiffness from a DOF line, and fits ccx's 20-character fields
      const double k = 1.0e4 * (1 + i + 10.5 * dof) * (1 + 0.01 * (dof + 1));
      elements += fmt::format("*ELEMENT, TYPE=SPRINGA, ELSET=S{}{}\n{}, {}, {}\n*SPRING, ELSET=S{}{}\n{:.1f}\n",
                              i, dof, 2000 + 10 * i + dof, node, anchor, i, dof, k);
      modes.emplace_back(k / mass, node, dof);
    }
  }
  std::sort(modes.begin(), modes.end());
  for (const auto& [lambda, node, dof] : modes) {
    eigenvalues.push_back(lambda);
    dof_of_mode.emplace_back(node, dof);
  }
  const std::string path = dir.file("oscillators.inp");
  std::ofstream(path) << nodes << elements << anchors << "*BOUNDARY\nNANCHOR, 1, 3\n";
  return path;
}

TEST_F(CalculixHarness, UncoupledOscillatorsGiveExactEigenvaluesAndMassNormalisedShapes) {
  ScratchDir dir("osc");
  std::vector<double> exact;
  std::vector<std::pair<std::int64_t, int>> dof_of_mode;
  std::vector<double> masses;
  const std::string model = write_oscillators(dir, exact, dof_of_mode, masses);

  ccx::Options options;
  options.n_modes = 6;
  options.nodal_stress = false;
  options.mass = false;
  const auto result = ccx::run_frequency(model, options);

  // 30 equations allow nev = 6 at most (ncv = 5 nev): the harness retried with n_modes
  ASSERT_EQ(result.n_modes(), 6u) << result.log;
  EXPECT_EQ(result.n_modes_requested, 6);
  EXPECT_EQ(result.eigenvalue_digits, 16) << "the .eig eigenvalues were not used";
  EXPECT_EQ(result.n_nodes(), 40u);  // mass nodes and anchors
  for (std::size_t k = 0; k < result.n_modes(); ++k) {
    // full precision from the .eig: a diagonal problem is solved to round-off
    EXPECT_NEAR(result.eigenvalues[k], exact[k], 1e-12 * exact[k]) << "mode " << k + 1;
    EXPECT_DOUBLE_EQ(result.frequencies_hz[k],
                     std::sqrt(result.eigenvalues[k]) / (2 * std::numbers::pi));
    // shape: 1/sqrt(m) on one DOF (6 printed digits), zero elsewhere
    const auto [node, dof] = dof_of_mode[k];
    const std::size_t at = result.node_index.at(node);
    const double m = masses[static_cast<std::size_t>((node - 100) / 7)];
    for (std::size_t n = 0; n < result.n_nodes(); ++n) {
      for (int d = 0; d < 3; ++d) {
        const double value = result.shapes[(k * result.n_nodes() + n) * 3 + d];
        if (n == at && d == dof) {
          EXPECT_NEAR(std::abs(value), 1 / std::sqrt(m), 6e-6 / std::sqrt(m)) << "mode " << k + 1;
        } else {
          EXPECT_NEAR(value, 0.0, 1e-9) << "mode " << k + 1 << " node " << result.node_ids[n];
        }
      }
    }
  }
}

TEST_F(CalculixHarness, SolidModelParsesConsistentlyAcrossDatFrdAndEig) {
  const std::string model = vsense::test::data_path("ccx/c3d8_cantilever.inp");
  ccx::Options options;
  options.n_modes = 8;
  const auto result = ccx::run_frequency(model, options);

  EXPECT_EQ(result.n_modes_requested, 20);  // max(2 * 8, 8 + 12)
  ASSERT_EQ(result.n_modes(), 20u);
  EXPECT_EQ(result.eigenvalue_digits, 16);
  EXPECT_EQ(result.n_nodes(), 260u);  // every node of the model
  ASSERT_EQ(result.shapes.size(), 20u * 260u * 3u);
  ASSERT_EQ(result.nodal_stress.size(), 20u * 260u * 6u);
  for (std::size_t k = 0; k < result.n_modes(); ++k) {
    EXPECT_GT(result.eigenvalues[k], 0.0);
    if (k > 0) {
      EXPECT_GE(result.eigenvalues[k], result.eigenvalues[k - 1]);
    }
    EXPECT_DOUBLE_EQ(result.frequencies_hz[k],
                     std::sqrt(result.eigenvalues[k]) / (2 * std::numbers::pi));
  }
  // the clamped nodes (the face x = 0 before the shear map: first nodes of each grid row)
  // don't move; everything else does in the first mode
  const auto fixed_node = result.node_index.at(1001);
  double peak = 0, peak_stress = 0;
  for (std::size_t n = 0; n < result.n_nodes(); ++n) {
    for (int d = 0; d < 3; ++d) peak = std::max(peak, std::abs(result.shapes[n * 3 + d]));
    for (int c = 0; c < 6; ++c) peak_stress = std::max(peak_stress, std::abs(result.nodal_stress[n * 6 + c]));
  }
  for (int d = 0; d < 3; ++d) EXPECT_EQ(result.shapes[fixed_node * 3 + d], 0.0);
  // Mass-normalised first mode of a 471 kg block: amplitude of order 1/sqrt(471 kg) at the tip
  EXPECT_GT(peak, 0.5 / std::sqrt(471.0));
  EXPECT_LT(peak, 5.0 / std::sqrt(471.0));
  EXPECT_GT(peak_stress, 0.0);

  // EMAS mass of the block: 7 printed digits of the exact 471 kg and centre
  ASSERT_TRUE(result.solid_mass.has_value());
  EXPECT_EQ(result.solid_mass->elsets, (std::vector<std::string>{"EBLOCK"}));
  EXPECT_NEAR(result.solid_mass->total_mass, 471.0, vsense::test::tolerance::ccx_printed_mass_rel * 471.0);
  EXPECT_NEAR(result.solid_mass->centre_of_mass[0], 0.761, 1e-6);
  EXPECT_NEAR(result.solid_mass->centre_of_mass[1], 0.059, 1e-6);
  EXPECT_NEAR(result.solid_mass->centre_of_mass[2], 0.15, 1e-6);

  // comparing a result with itself is exact
  const auto set = vsense::test::modal::from_calculix(result);
  const auto self = vsense::test::modal::compare(set, set, {.n_modes = 8});
  for (const auto& m : self.modes) {
    EXPECT_EQ(m.frequency_rel_error, 0.0);
    EXPECT_NEAR(m.mac, 1.0, 1e-14);
    EXPECT_EQ(m.stress_error, 0.0);
  }
}

TEST_F(CalculixHarness, FreeFreeRigidBodySubspaceAgreesBetweenTwoKrylovSpaceSizes) {
  // ccx against itself with 12 and 36 requested modes: the six rigid-body modes are an
  // arbitrary basis of one subspace (compared by principal angles), the elastic ones must
  // agree to the reference's own accuracy. This is the comparison the free-free vsense test
  // relies on, run on real data.
  const std::string model = vsense::test::data_path("ccx/free_free_c3d20.inp");
  ccx::Options small, large;
  small.n_modes = large.n_modes = 12;
  small.extra_modes = 0;  // nev = 24
  large.extra_modes = 24; // nev = 36
  small.mass = large.mass = false;
  const auto a = ccx::run_frequency(model, small);
  const auto b = ccx::run_frequency(model, large);
  const auto cmp = vsense::test::modal::compare(vsense::test::modal::from_calculix(a),
                                                vsense::test::modal::from_calculix(b), {.n_modes = 12});
  EXPECT_EQ(cmp.n_rigid, 6u) << cmp.table();
  EXPECT_EQ(cmp.n_rigid_tested, 6u) << cmp.table();
  ASSERT_EQ(cmp.modes.size(), 12u) << cmp.table();
  for (const auto& m : cmp.modes) {
    if (m.rigid) {
      EXPECT_EQ(m.group_size, 6u);
      EXPECT_GE(m.mac, vsense::test::tolerance::subspace_cos2_min) << cmp.table();
      continue;
    }
    EXPECT_LE(m.frequency_rel_error, vsense::test::tolerance::frequency_rel) << cmp.table();
    EXPECT_GE(m.mac, vsense::test::tolerance::mac_min) << cmp.table();
    EXPECT_LE(m.stress_error, vsense::test::tolerance::stress_rel_peak) << cmp.table();
    EXPECT_LE(m.shape_error, vsense::test::tolerance::shape_rel_peak) << cmp.table();
  }
}

TEST_F(CalculixHarness, InputErrorIsReportedNotParsed) {
  ScratchDir dir("bad");
  // ccx exits 0 after an input error: the harness must notice from its output
  write_file(dir.file("bad.inp"),
             "*NODE\n1, 0, 0, 0\n2, 1, 0, 0\n*ELEMENT, TYPE=SPRINGA, ELSET=E\n1, 1, 2\n"
             "*SPRING, ELSET=E\n2e9\n");  // no decimal point: read as a DOF line by ccx
  try {
    ccx::run_frequency(dir.file("bad.inp"), {});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("*ERROR"), std::string::npos) << e.what();
  }
}

}  // namespace
