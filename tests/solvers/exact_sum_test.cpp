// ExactSum: exact, order-independent sums; MinerDamage built on it: serialisation and order
// independence of damage sums (the property reconstruction relies on for identical results
// across chunkings, MPI rank counts and resumed runs).
#include "vsense/solvers/exact_sum.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace {

using vsense::solvers::ExactSum;

TEST(ExactSum, SumsOfRepresentableValuesAreExact) {
  ExactSum s;
  s.add(0.5);
  s.add(0.25);
  s.add(std::ldexp(1.0, -200));
  s.add(std::ldexp(1.0, 60));
  ExactSum expected;
  expected.add(std::ldexp(1.0, 60));
  expected.add(0.75);
  expected.add(std::ldexp(1.0, -200));
  EXPECT_TRUE(s == expected);
  // 2^60 + 0.75 is not a double, but the accumulator holds it: subtracting is impossible, so
  // check through a second sum that only the large part differs.
  EXPECT_EQ(s.value(), std::ldexp(1.0, 60));
}

TEST(ExactSum, CarriesAcrossLimbs) {
  ExactSum s;
  // 2^-193 .. 2^-129 straddles limb boundaries; adding 2^k many times must carry.
  for (int i = 0; i < 1 << 12; ++i) s.add(std::ldexp(1.0, -129));
  EXPECT_EQ(s.value(), std::ldexp(1.0, -117));
  ExactSum t;
  for (int i = 0; i < 3; ++i) t.add(std::ldexp(0x1.fffffffffffffp0, 63));  // near the top
  EXPECT_TRUE(std::isinf(t.value()));
}

TEST(ExactSum, AnyOrderGivesTheSameBits) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(-20.0, 8.0);
  std::vector<double> values(20000);
  for (double& v : values) v = dist(rng);
  ExactSum forward;
  for (double v : values) forward.add(v);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(values.begin(), values.end(), rng);
    ExactSum a, b;
    for (std::size_t i = 0; i < values.size(); ++i) (i % 3 == 0 ? a : b).add(values[i]);
    a.add(b);
    EXPECT_TRUE(a == forward) << "trial " << trial;
    EXPECT_EQ(a.value(), forward.value());
  }
  // And it is accurate: against a sum in long double of the sorted values (smallest first).
  std::sort(values.begin(), values.end());
  long double reference = 0.0L;
  for (double v : values) reference += v;
  EXPECT_NEAR(forward.value(), static_cast<double>(reference),
              1e-15 * static_cast<double>(reference));
}

TEST(ExactSum, TinyValuesBelowTheGridCountAsZero) {
  ExactSum s;
  s.add(std::ldexp(1.0, -300));
  EXPECT_EQ(s.value(), 0.0);
  s.add(-1.0);
  EXPECT_TRUE(std::isnan(s.value()));
}

TEST(MinerDamage, SumsDoNotDependOnTheOrderOfCycles) {
  const auto curve = vsense::solvers::make_eurocode3_curve(71.0);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> range(5.0, 200.0);
  std::vector<vsense::solvers::RainflowCycle> cycles(5000);
  for (std::size_t i = 0; i < cycles.size(); ++i) {
    cycles[i] = {range(rng), 0.0, i % 7 == 0 ? 0.5 : 1.0, static_cast<std::int64_t>(i % 3)};
  }
  vsense::solvers::MinerDamage whole(curve, 3);
  whole.consume(cycles);
  std::shuffle(cycles.begin(), cycles.end(), rng);
  vsense::solvers::MinerDamage first(curve, 3), second(curve, 3);
  first.consume(std::span(cycles).first(1234));
  second.consume(std::span(cycles).subspan(1234));
  first.add(second);
  EXPECT_TRUE(first == whole);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(first.damage(c), whole.damage(c));
    EXPECT_EQ(first.equivalent_range(c, 2e6), whole.equivalent_range(c, 2e6));
    EXPECT_GT(whole.damage(c), 0.0);
  }
}

TEST(MinerDamage, SerialisedStateRestoresExactly) {
  const auto curve = vsense::solvers::make_basquin_curve(100.0, 2e6, 3.0, 50.0, 5.0, 20.0);
  vsense::solvers::MinerDamage damage(curve, 2, 4.0);
  const std::vector<vsense::solvers::RainflowCycle> cycles{
      {120.0, 10.0, 1.0, 0}, {60.0, 0.0, 0.5, 1}, {30.0, -5.0, 1.0, 1}, {10.0, 0.0, 1.0, 0}};
  damage.consume(cycles);
  const auto bytes = damage.serialize();
  vsense::solvers::MinerDamage restored(curve, 2, 4.0);
  restored.deserialize(bytes);
  EXPECT_TRUE(restored == damage);
  EXPECT_EQ(restored.damage(1), damage.damage(1));
  vsense::solvers::MinerDamage other_slope(curve, 2, 3.0);
  EXPECT_THROW(other_slope.deserialize(bytes), vsense::InputError);
  EXPECT_THROW(restored.deserialize(std::span(bytes).first(bytes.size() - 1)), vsense::InputError);
}

}  // namespace
