// S-N curves (Basquin knee and cut-off, EN 1993-1-9 values), their TOML files and errors, and
// Miner damage / damage-equivalent ranges summed from rainflow cycles.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/rainflow.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace {

using vsense::InputError;
using vsense::solvers::CycleCollector;
using vsense::solvers::load_sn_curve;
using vsense::solvers::make_basquin_curve;
using vsense::solvers::make_eurocode3_curve;
using vsense::solvers::MeanStressCorrection;
using vsense::solvers::MinerDamage;
using vsense::solvers::RainflowCounter;
using vsense::solvers::RainflowCycle;
using vsense::solvers::ResidueTreatment;
using vsense::solvers::SnCurve;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();

/// Relative tolerance of N(S) evaluated through pow(): the curve's points are computed from
/// cube and fifth roots and raised back to the powers 3 and 5, each step good to ~1 ulp, and
/// the error of a root is multiplied by the exponent: 32 eps covers the chain with margin.
constexpr double kCurveRel = 32 * kEps;

void expect_rel(double actual, double expected, double rel, const std::string& what) {
  EXPECT_LE(std::abs(actual - expected), rel * std::abs(expected))
      << what << ": " << actual << " vs " << expected << ", relative error "
      << std::abs(actual - expected) / std::abs(expected) << " > " << rel;
}

// ---- curves ------------------------------------------------------------------------------

TEST(SnCurve, BasquinOneSlopeFollowsThePowerLaw) {
  const SnCurve c = make_basquin_curve(100.0, 1e6, 4.0);
  EXPECT_EQ(c.cycles_to_failure(100.0), 1e6);
  expect_rel(c.cycles_to_failure(50.0), 16e6, kCurveRel, "N(S_ref / 2)");
  expect_rel(c.cycles_to_failure(200.0), 1e6 / 16, kCurveRel, "N(2 S_ref)");
  EXPECT_EQ(c.cycles_to_failure(0.0), kInf);
  EXPECT_EQ(c.cycles_to_failure(-1.0), kInf);
  EXPECT_EQ(c.cutoff_cycles(), kInf);
}

TEST(SnCurve, KneeChangesTheSlopeContinuouslyAndCutOffStopsDamage) {
  // 100 at 1e6, m1 = 3 to the knee at 50 (N = 8e6), m2 = 5 to the cut-off at 25 (N = 2.56e8).
  const SnCurve c = make_basquin_curve(100.0, 1e6, 3.0, 50.0, 5.0, 25.0);
  expect_rel(c.knee_cycles(), 8e6, kCurveRel, "N at the knee");
  expect_rel(c.cycles_to_failure(50.0), 8e6, kCurveRel, "N(knee)");
  // Just above and below the knee: continuous.
  expect_rel(c.cycles_to_failure(std::nextafter(50.0, 0.0)), 8e6, 1e-14, "N(knee-)");
  expect_rel(c.cycles_to_failure(std::nextafter(50.0, 100.0)), 8e6, 1e-14, "N(knee+)");
  // Below the knee the slope is 5: halving the range multiplies N by 32.
  expect_rel(c.cycles_to_failure(60.0) / c.cycles_to_failure(120.0), 8.0, kCurveRel, "m1");
  expect_rel(c.cycles_to_failure(30.0) / c.cycles_to_failure(45.0), std::pow(1.5, 5.0),
             kCurveRel, "m2");
  expect_rel(c.cycles_to_failure(25.0), 8e6 * 32, kCurveRel, "N(cut-off)");
  expect_rel(c.cutoff_cycles(), 8e6 * 32, kCurveRel, "cut-off cycles");
  EXPECT_EQ(c.cycles_to_failure(std::nextafter(25.0, 0.0)), kInf);
  EXPECT_EQ(c.cycles_to_failure(1.0), kInf);
}

TEST(SnCurve, Eurocode3CategoryValuesAt2e6And5e6And1e8Cycles) {
  const SnCurve c = make_eurocode3_curve(71.0);
  EXPECT_EQ(c.reference_range, 71.0);
  EXPECT_EQ(c.cycles_to_failure(71.0), 2e6);
  // EN 1993-1-9 (7.1)-(7.2): delta_sigma_D = (2/5)^(1/3) delta_sigma_C = 0.737 delta_sigma_C,
  // delta_sigma_L = (5/100)^(1/5) delta_sigma_D = 0.549 delta_sigma_D = 0.405 delta_sigma_C;
  // the standard's table for category 71 rounds them to 52 and 29.
  EXPECT_NEAR(c.knee_range / 71.0, 0.737, 0.0005);
  EXPECT_NEAR(c.cutoff_range / c.knee_range, 0.549, 0.0005);
  EXPECT_NEAR(c.cutoff_range / 71.0, 0.405, 0.0005);
  EXPECT_EQ(std::round(c.knee_range), 52.0);
  EXPECT_EQ(std::round(c.cutoff_range), 29.0);
  expect_rel(c.cycles_to_failure(c.knee_range), 5e6, kCurveRel, "N_D");
  expect_rel(c.cycles_to_failure(c.cutoff_range), 1e8, kCurveRel, "N_L");
  EXPECT_EQ(c.cycles_to_failure(c.cutoff_range * (1 - 1e-12)), kInf);
  expect_rel(c.cycles_to_failure(142.0), 2e6 / 8, kCurveRel, "m = 3 above 2e6");
  expect_rel(c.cycles_to_failure(0.9 * c.knee_range), 5e6 / std::pow(0.9, 5.0), kCurveRel,
             "m = 5 below N_D");
}

TEST(SnCurve, Eurocode3InPascalAndWithPartialFactors) {
  const SnCurve pa = make_eurocode3_curve(90.0, 1e6);
  EXPECT_EQ(pa.reference_range, 90e6);
  expect_rel(pa.cycles_to_failure(90e6), 2e6, kCurveRel, "N(90 MPa) in Pa");
  // gamma_Mf = 1.35: the design curve passes through 90 / 1.35 at 2e6 cycles.
  const SnCurve design = make_eurocode3_curve(90.0, 1.0, 1.35, 1.0);
  expect_rel(design.cycles_to_failure(90.0 / 1.35), 2e6, kCurveRel, "gamma_Mf");
  const SnCurve loads = make_eurocode3_curve(90.0, 1.0, 1.0, 1.2);
  expect_rel(loads.cycles_to_failure(90.0 / 1.2), 2e6, kCurveRel, "gamma_Ff");
  EXPECT_THROW(make_eurocode3_curve(70.0), InputError);
  EXPECT_THROW(make_eurocode3_curve(71.0, 1.0, 0.0), InputError);
}

TEST(SnCurve, InconsistentParametersAreInputErrors) {
  EXPECT_THROW(make_basquin_curve(-1.0, 1e6, 3.0), InputError);
  EXPECT_THROW(make_basquin_curve(100.0, 0.0, 3.0), InputError);
  EXPECT_THROW(make_basquin_curve(100.0, 1e6, 0.0), InputError);
  EXPECT_THROW(make_basquin_curve(100.0, 1e6, 3.0, 50.0, 0.0), InputError);
  EXPECT_THROW(make_basquin_curve(100.0, 1e6, 3.0, 50.0, 5.0, 60.0), InputError);
  EXPECT_THROW(make_basquin_curve(std::nan(""), 1e6, 3.0), InputError);
}

TEST(SnCurve, GoodmanCorrectionOnlyWhenAskedAndOnlyForTensileMeans) {
  SnCurve c = make_basquin_curve(100.0, 1e6, 3.0);
  EXPECT_EQ(c.corrected_range(80.0, 200.0), 80.0);  // off by default
  c.mean_stress_correction = MeanStressCorrection::goodman;
  c.ultimate_strength = 400.0;
  EXPECT_EQ(c.corrected_range(80.0, 200.0), 160.0);
  EXPECT_EQ(c.corrected_range(80.0, -200.0), 80.0);
  EXPECT_EQ(c.corrected_range(80.0, 400.0), kInf);
}

// ---- damage ------------------------------------------------------------------------------

/// n full cycles of range `range` about `mean`: mean - r/2, mean + r/2, ..., back to the start.
std::vector<double> constant_amplitude(int n, double range, double mean = 0.0) {
  std::vector<double> x;
  for (int i = 0; i < n; ++i) {
    x.push_back(mean - range / 2);
    x.push_back(mean + range / 2);
  }
  x.push_back(mean - range / 2);
  return x;
}

MinerDamage damage_of(const std::vector<double>& x, const SnCurve& curve,
                      double equivalent_slope = 0.0) {
  MinerDamage damage(curve, 1, equivalent_slope);
  RainflowCounter counter;
  counter.process(std::span<const double>(x), damage);
  counter.finish(ResidueTreatment::half_cycles, damage);
  return damage;
}

TEST(MinerDamage, ConstantAmplitudeHistoryGivesNOverNExactly) {
  // N_ref = 2^21 at S_ref: each cycle adds exactly 2^-21, so the sum is exact: D = n / N.
  const SnCurve c = make_basquin_curve(50.0, 2097152.0, 3.0);
  for (int n : {1, 2, 10, 1000, 100000}) {
    const MinerDamage d = damage_of(constant_amplitude(n, 50.0, 12.5), c);
    EXPECT_EQ(d.damage(0), n / 2097152.0) << n << " cycles";
    EXPECT_EQ(d.cycles(0), n);
  }
}

TEST(MinerDamage, ConstantAmplitudeOnEurocodeCurve) {
  // 1/N is not a binary fraction here; the compensated sum keeps D within 2 ulp of n / N.
  const SnCurve c = make_eurocode3_curve(71.0);
  for (double range : {100.0, 71.0, 60.0, 40.0}) {
    const int n = 250000;
    const MinerDamage d = damage_of(constant_amplitude(n, range), c);
    expect_rel(d.damage(0), n / c.cycles_to_failure(range), 2 * kEps,
               "D at range " + std::to_string(range));
  }
  EXPECT_EQ(damage_of(constant_amplitude(1000, 20.0), c).damage(0), 0.0);  // below the cut-off
}

TEST(MinerDamage, EquivalentRangeOfConstantAmplitudeIsTheRange) {
  const SnCurve c = make_eurocode3_curve(71.0);
  const MinerDamage d = damage_of(constant_amplitude(5000, 40.0), c);
  EXPECT_EQ(d.equivalent_slope(), 3.0);
  expect_rel(d.equivalent_range(0, 5000.0), 40.0, 4 * kEps, "S_eq at N_eq = n");
  expect_rel(d.equivalent_range(0, 40000.0), 20.0, 4 * kEps, "S_eq at N_eq = 8 n");
  // Cycles below the cut-off do no damage but do count in S_eq.
  const MinerDamage low = damage_of(constant_amplitude(100, 10.0), c, 5.0);
  EXPECT_EQ(low.damage(0), 0.0);
  expect_rel(low.equivalent_range(0, 100.0), 10.0, 4 * kEps, "S_eq below the cut-off");
}

TEST(MinerDamage, MixedRangesByHand) {
  // Cycles given directly: 2 x 100, 0.5 x 200, 10 x 50 on N = 1e6 (100 / S)^3.
  const SnCurve c = make_basquin_curve(100.0, 1e6, 3.0);
  MinerDamage d(c, 2);
  const RainflowCycle cycles[] = {{100, 0, 1.0, 1}, {200, 0, 0.5, 1}, {100, 0, 1.0, 1},
                                  {50, 0, 10.0, 1}, {1, 0, 1.0, 0}};
  d.consume(cycles);
  const double expected = 2 / 1e6 + 0.5 / (1e6 / 8) + 10 / (1e6 * 8);
  expect_rel(d.damage(1), expected, 4 * kEps, "Miner sum");
  // With the curve's slope, S_eq at N_ref is the range that alone does the same damage.
  expect_rel(d.equivalent_range(1, 1e6), 100 * std::cbrt(expected), 8 * kEps, "S_eq");
  EXPECT_EQ(d.cycles(1), 12.5);
  EXPECT_THROW(d.damage(2), InputError);
  const RainflowCycle stray[] = {{1, 0, 1.0, 5}};
  EXPECT_THROW(d.consume(stray), InputError);
}

TEST(MinerDamage, AddingPartialAccumulatorsEqualsOneAccumulator) {
  const SnCurve c = make_eurocode3_curve(80.0);
  MinerDamage all(c, 1), first(c, 1), second(c, 1);
  const RainflowCycle a[] = {{120, 0, 1, 0}, {60, 0, 0.5, 0}}, b[] = {{90, 3, 1, 0}};
  all.consume(a);
  all.consume(b);
  first.consume(a);
  second.consume(b);
  first.add(second);
  EXPECT_EQ(first.damage(0), all.damage(0));
  EXPECT_EQ(first.equivalent_range(0, 1e6), all.equivalent_range(0, 1e6));
}

// ---- files -------------------------------------------------------------------------------

std::string source_path(const std::string& relative) {
  return vsense::test::data_path("../../" + relative);
}

TEST(SnCurveFile, ExampleFilesLoad) {
  const SnCurve ec3 = load_sn_curve(source_path("jobs/examples/sn/ec3_71.toml"), "MPa");
  EXPECT_EQ(ec3.cycles_to_failure(71.0), 2e6);
  expect_rel(ec3.cycles_to_failure(ec3.cutoff_range), 1e8, kCurveRel, "EC3 file N_L");
  EXPECT_EQ(ec3.name, "EC3 detail category 71");

  const SnCurve weld =
      load_sn_curve(source_path("jobs/examples/sn/weld_fat90_two_slope.toml"), "Pa");
  expect_rel(weld.reference_range, 90e6, 0.0, "S_ref converted to Pa");
  expect_rel(weld.knee_cycles(), 1e7, kCurveRel, "knee at 1e7");
  expect_rel(weld.cycles_to_failure(weld.knee_range / 2), 1e7 * 32, kCurveRel, "m2 = 5");
  EXPECT_EQ(weld.cutoff_range, 0.0);
  EXPECT_EQ(weld.mean_stress_correction, MeanStressCorrection::none);
}

class SnCurveFileTest : public ::testing::Test {
protected:
  vsense::test::ScratchDir dir_{"sn-curve"};
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_.file(name);
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(SnCurveFileTest, UnitsAreConvertedToTheModelUnit) {
  const std::string path = write("psi.toml", R"(
[curve]
type = "basquin"
stress_unit = "ksi"
reference_range = 10
reference_cycles = 1e6
slope = 3
cutoff_cycles = 1e8
[mean_stress]
correction = "goodman"
ultimate_strength = 60
)");
  const SnCurve c = load_sn_curve(path, "MPa");
  const double ksi_in_mpa = 6.894757293168361;
  expect_rel(c.reference_range, 10 * ksi_in_mpa, 1e-15, "S_ref");
  expect_rel(c.ultimate_strength, 60 * ksi_in_mpa, 1e-15, "ultimate strength");
  expect_rel(c.cutoff_cycles(), 1e8, kCurveRel, "cut-off from cycles");
  EXPECT_EQ(c.mean_stress_correction, MeanStressCorrection::goodman);
  const SnCurve in_pa = load_sn_curve(path, "Pa");
  expect_rel(in_pa.reference_range, 1e6 * c.reference_range, 1e-15, "same curve in Pa");
}

TEST_F(SnCurveFileTest, KneeGivenByRangeOrByCycles) {
  const SnCurve by_range = load_sn_curve(write("a.toml", R"(
[curve]
type = "basquin"
stress_unit = "MPa"
reference_range = 100
reference_cycles = 1e6
slope = 3
knee_range = 50
slope_below_knee = 5
cutoff_range = 25
)"),
                                         "MPa");
  const SnCurve by_cycles = load_sn_curve(write("b.toml", R"(
[curve]
type = "basquin"
stress_unit = "MPa"
reference_range = 100
reference_cycles = 1e6
slope = 3
knee_cycles = 8e6
slope_below_knee = 5
cutoff_cycles = 2.56e8
)"),
                                          "MPa");
  expect_rel(by_cycles.knee_range, by_range.knee_range, kCurveRel, "knee");
  expect_rel(by_cycles.cutoff_range, by_range.cutoff_range, kCurveRel, "cut-off");
}

/// Each bad file must raise an InputError whose message names the file and the key (and, for
/// keys present in the file, the line).
struct BadFile {
  const char* name;
  const char* text;
  const char* must_mention;  ///< key or phrase
  const char* line;          ///< ":<line>:" expected in the message, or ""
};

TEST_F(SnCurveFileTest, BadFilesNameFileAndKey) {
  const std::vector<BadFile> cases = {
      {"no_curve.toml", "schema_version = 1\n", "[curve]", ""},
      {"schema.toml", "schema_version = 2\n[curve]\ntype = \"eurocode3\"\ndetail_category = 71\n",
       "schema_version", ":1:"},
      {"syntax.toml", "[curve]\ntype = \"eurocode3\"\ndetail_category = = 71\n", "syntax", ":3:"},
      {"no_type.toml", "[curve]\ndetail_category = 71\n", "[curve].type", ""},
      {"bad_type.toml", "[curve]\ntype = \"wohler\"\n", "[curve].type", ":2:"},
      {"category.toml", "[curve]\ntype = \"eurocode3\"\ndetail_category = 70\n",
       "[curve].detail_category", ":3:"},
      {"category_type.toml", "[curve]\ntype = \"eurocode3\"\ndetail_category = \"71\"\n",
       "[curve].detail_category", ":3:"},
      {"ec3_unit.toml", "[curve]\ntype = \"eurocode3\"\nstress_unit = \"Pa\"\ndetail_category = 71\n",
       "[curve].stress_unit", ":3:"},
      {"no_unit.toml", "[curve]\ntype = \"basquin\"\nreference_range = 1\n",
       "[curve].stress_unit", ""},
      {"bad_unit.toml", "[curve]\ntype = \"basquin\"\nstress_unit = \"bar\"\n",
       "[curve].stress_unit", ":3:"},
      {"missing.toml", "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nslope = 3\n",
       "[curve].reference_range", ""},
      {"negative.toml", "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nreference_range = -90\n",
       "[curve].reference_range", ":4:"},
      {"typo.toml",
       "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nreference_range = 90\n"
       "reference_cycles = 2e6\nslope = 3\nslop_below_knee = 5\n",
       "[curve].slop_below_knee", ":7:"},
      {"two_knees.toml",
       "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nreference_range = 90\n"
       "reference_cycles = 2e6\nslope = 3\nknee_range = 60\nknee_cycles = 1e7\n"
       "slope_below_knee = 5\n",
       "[curve].knee_cycles", ":8:"},
      {"knee_no_slope.toml",
       "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nreference_range = 90\n"
       "reference_cycles = 2e6\nslope = 3\nknee_cycles = 1e7\n",
       "[curve].slope_below_knee", ""},
      {"cutoff_above_knee.toml",
       "[curve]\ntype = \"basquin\"\nstress_unit = \"MPa\"\nreference_range = 90\n"
       "reference_cycles = 2e6\nslope = 3\nknee_range = 60\nslope_below_knee = 5\n"
       "cutoff_range = 70\n",
       "[curve].cutoff_range", ":9:"},
      {"goodman.toml",
       "[curve]\ntype = \"eurocode3\"\ndetail_category = 71\n[mean_stress]\n"
       "correction = \"goodman\"\n",
       "[mean_stress].ultimate_strength", ""},
      {"correction.toml",
       "[curve]\ntype = \"eurocode3\"\ndetail_category = 71\n[mean_stress]\n"
       "correction = \"gerber\"\n",
       "[mean_stress].correction", ":5:"},
      {"stray_table.toml", "[curve]\ntype = \"eurocode3\"\ndetail_category = 71\n[extra]\n",
       "extra", ""},
  };
  for (const auto& bad : cases) {
    const std::string path = write(bad.name, bad.text);
    try {
      (void)load_sn_curve(path, "MPa");
      ADD_FAILURE() << bad.name << ": no error";
    } catch (const InputError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << bad.name << ": " << message;
      EXPECT_NE(message.find(bad.must_mention), std::string::npos) << bad.name << ": " << message;
      if (*bad.line != '\0') {
        EXPECT_NE(message.find(path + bad.line), std::string::npos)
            << bad.name << ": expected line " << bad.line << " in: " << message;
      }
    }
  }
  EXPECT_THROW(load_sn_curve(dir_.file("absent.toml"), "MPa"), InputError);
  EXPECT_THROW(load_sn_curve(write("ok.toml", "[curve]\ntype = \"eurocode3\"\ndetail_category = 71\n"),
                             "furlongs"),
               InputError);
}

}  // namespace
