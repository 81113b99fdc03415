// Rainflow counting: the ASTM E1049-85 worked example; agreement with a slow three-point ASTM
// reference on random histories; chunked, multi-channel, merged and checkpointed counting equal
// to counting the whole history at once; residue treatments; histogram; errors.
//
// All comparisons here are exact (==): the counter and the reference take ranges and means
// from the same pairs of sample values with the same operations (|b - c| and (b + c) / 2), so
// any difference, even of one ulp, is a real difference in what was counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "../../kernels/common/turning_points.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/rainflow.hpp"

namespace {

using vsense::InputError;
using vsense::solvers::CycleCollector;
using vsense::solvers::RainflowCounter;
using vsense::solvers::RainflowCycle;
using vsense::solvers::RainflowHistogram;
using vsense::solvers::ResidueTreatment;

// ---- the reference: obviously correct, slow ------------------------------------------------

/// Turning points of a whole history: drop repeated values, keep the ends and every point where
/// the slope changes sign.
std::vector<double> reference_turning_points(const std::vector<double>& x) {
  std::vector<double> y;
  for (double v : x)
    if (y.empty() || v != y.back()) y.push_back(v);
  if (y.size() <= 2) return y;
  std::vector<double> tp = {y.front()};
  for (std::size_t i = 1; i + 1 < y.size(); ++i)
    if ((y[i] > y[i - 1]) != (y[i + 1] > y[i])) tp.push_back(y[i]);
  tp.push_back(y.back());
  return tp;
}

/// ASTM E1049-85 section 5.4.4 (three-point rainflow), with the residue as half cycles:
/// X = the latest range, Y = the one before; while X >= Y: if Y contains the starting point,
/// count Y as 1/2 cycle and discard its first point, else count Y as 1 cycle and discard both
/// of its points. At the end every remaining range is 1/2 cycle.
std::vector<RainflowCycle> reference_astm(const std::vector<double>& history) {
  std::vector<RainflowCycle> cycles;
  std::vector<double> s;
  for (double p : reference_turning_points(history)) {
    s.push_back(p);
    while (s.size() >= 3) {
      const std::size_t n = s.size();
      const double x = std::abs(s[n - 1] - s[n - 2]), y = std::abs(s[n - 2] - s[n - 3]);
      if (x < y) break;
      const double a = s[n - 3], b = s[n - 2];
      if (n == 3) {
        cycles.push_back({std::abs(a - b), (a + b) / 2, 0.5, 0});
        s.erase(s.begin());
      } else {
        cycles.push_back({std::abs(a - b), (a + b) / 2, 1.0, 0});
        s.erase(s.end() - 3, s.end() - 1);
      }
    }
  }
  for (std::size_t i = 0; i + 1 < s.size(); ++i)
    cycles.push_back({std::abs(s[i + 1] - s[i]), (s[i] + s[i + 1]) / 2, 0.5, 0});
  return cycles;
}

/// The 4-point rule applied by its definition, in no particular order: anywhere in the turning
/// points of the whole history, four consecutive points A B C D with B, C inside [A, D] make
/// (B, C) a cycle; remove B and C and look again until nothing closes. What is left is the
/// residue. O(n^2): for histories up to ~1e4 samples.
struct FourPointReference {
  std::vector<RainflowCycle> cycles;  ///< full cycles
  std::vector<double> residue;
};
FourPointReference reference_four_point(const std::vector<double>& history) {
  FourPointReference r;
  auto& p = r.residue;
  p = reference_turning_points(history);
  std::size_t i = 0;
  while (i + 3 < p.size()) {
    const double a = p[i], b = p[i + 1], c = p[i + 2], d = p[i + 3];
    if (std::min(b, c) >= std::min(a, d) && std::max(b, c) <= std::max(a, d)) {
      r.cycles.push_back({std::abs(b - c), (b + c) / 2, 1.0, 0});
      p.erase(p.begin() + static_cast<std::ptrdiff_t>(i) + 1,
              p.begin() + static_cast<std::ptrdiff_t>(i) + 3);
      i = i >= 3 ? i - 3 : 0;  // the removal may let an earlier quadruple close
    } else {
      ++i;
    }
  }
  return r;
}

/// Total count per (range, mean): what damage depends on.
std::map<std::pair<double, double>, double> totals(const std::vector<RainflowCycle>& cycles) {
  std::map<std::pair<double, double>, double> t;
  for (const auto& c : cycles) t[{c.range, c.mean}] += c.count;
  return t;
}

std::vector<RainflowCycle> only_count(std::vector<RainflowCycle> cycles, double count) {
  std::erase_if(cycles, [&](const RainflowCycle& c) { return c.count != count; });
  return cycles;
}

// ---- comparison helpers -----------------------------------------------------------------------

using Key = std::tuple<std::int64_t, double, double, double>;  // channel, range, mean, count

std::vector<Key> sorted(const std::vector<RainflowCycle>& cycles) {
  std::vector<Key> k;
  k.reserve(cycles.size());
  for (const auto& c : cycles) k.emplace_back(c.channel, c.range, c.mean, c.count);
  std::sort(k.begin(), k.end());
  return k;
}

/// Multiset difference a - b (b must be contained in a).
std::vector<Key> minus(std::vector<Key> a, const std::vector<Key>& b) {
  for (const auto& k : b) {
    const auto it = std::find(a.begin(), a.end(), k);
    EXPECT_NE(it, a.end()) << "cycle (" << std::get<1>(k) << ", " << std::get<2>(k)
                           << ") missing";
    if (it != a.end()) a.erase(it);
  }
  return a;
}

void expect_same_cycles(const std::vector<RainflowCycle>& actual,
                        const std::vector<RainflowCycle>& expected, const std::string& what) {
  const auto a = sorted(actual), e = sorted(expected);
  ASSERT_EQ(a.size(), e.size()) << what << ": number of cycles";
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(a[i], e[i]) << what << ": cycle " << i << " of " << a.size() << " (range "
                          << std::get<1>(a[i]) << " vs " << std::get<1>(e[i]) << ", mean "
                          << std::get<2>(a[i]) << " vs " << std::get<2>(e[i]) << ", count "
                          << std::get<3>(a[i]) << " vs " << std::get<3>(e[i]) << ")";
}

/// Streams `history` (one channel) in one piece, then finishes it.
std::vector<RainflowCycle> count_whole(const std::vector<double>& history,
                                       ResidueTreatment treatment) {
  RainflowCounter counter;
  CycleCollector sink;
  counter.process(std::span<const double>(history), sink);
  counter.finish(treatment, sink);
  return sink.cycles();
}

// ---- random histories ---------------------------------------------------------------------

enum class Kind { white, integers, walk, narrowband };

/// White noise (nearly every sample a turning point), small integers (plateaus and equal
/// turning points: tests every tie), a random walk, and a lightly damped resonator driven by
/// noise (the narrow-band signals of a machine), all with fixed seeds.
std::vector<double> random_history(Kind kind, std::size_t n, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> x(n);
  switch (kind) {
    case Kind::white:
      for (auto& v : x) v = normal(rng);
      break;
    case Kind::integers: {
      std::uniform_int_distribution<int> level(-3, 3);
      for (auto& v : x) v = level(rng);
      break;
    }
    case Kind::walk: {
      double s = 0.0;
      std::uniform_int_distribution<int> step(-2, 2);
      for (auto& v : x) v = s += 0.25 * step(rng);
      break;
    }
    case Kind::narrowband: {
      const double r = 0.98, w = 2.0 * 3.141592653589793 * 0.05;
      double y1 = 0.0, y2 = 0.0;
      for (auto& v : x) {
        const double y = 2.0 * r * std::cos(w) * y1 - r * r * y2 + normal(rng);
        y2 = y1;
        y1 = y;
        v = y;
      }
      break;
    }
  }
  return x;
}

const Kind kKinds[] = {Kind::white, Kind::integers, Kind::walk, Kind::narrowband};
const std::size_t kLengths[] = {0, 1, 2, 3, 4, 5, 9, 17, 100, 1000, 10007, 100000};

// ---- ASTM E1049 worked example -------------------------------------------------------------

const std::vector<double> kAstmExample = {-2, 1, -3, 5, -1, 3, -4, 4, -2};

TEST(Rainflow, AstmE1049ExampleCycleTable) {
  // ASTM E1049-85 (2017) 5.4.4, Fig. 6 and its table: range -> cycles counted.
  const std::map<double, double> expected = {{3, 0.5}, {4, 1.5}, {6, 0.5}, {8, 1.0}, {9, 0.5}};
  std::map<double, double> actual;
  for (const auto& c : count_whole(kAstmExample, ResidueTreatment::half_cycles))
    actual[c.range] += c.count;
  EXPECT_EQ(actual, expected);
}

TEST(Rainflow, AstmE1049ExampleCyclesWithMeans) {
  // The individual cycles of the example: (-1, 3) closes; the rest is the residue
  // -2, 1, -3, 5, -4, 4, -2 counted as half cycles.
  const std::vector<RainflowCycle> expected = {
      {4, 1.0, 1.0, 0},  {3, -0.5, 0.5, 0}, {4, -1.0, 0.5, 0}, {8, 1.0, 0.5, 0},
      {9, 0.5, 0.5, 0},  {8, 0.0, 0.5, 0},  {6, 1.0, 0.5, 0}};
  expect_same_cycles(count_whole(kAstmExample, ResidueTreatment::half_cycles), expected,
                     "ASTM example");
  expect_same_cycles(reference_astm(kAstmExample), expected, "reference on the ASTM example");
  RainflowCounter counter;
  CycleCollector sink;
  counter.process(std::span<const double>(kAstmExample), sink);
  EXPECT_EQ(counter.residue(0), (std::vector<double>{-2, 1, -3, 5, -4, 4, -2}));
}

TEST(Rainflow, AstmExampleSampledWithPlateausAndRampsGivesTheSameCycles) {
  // Linear ramps between the turning points, each point held for a few samples.
  std::vector<double> sampled;
  for (std::size_t i = 0; i + 1 < kAstmExample.size(); ++i) {
    const double a = kAstmExample[i], b = kAstmExample[i + 1];
    for (int hold = 0; hold < 3; ++hold) sampled.push_back(a);
    for (int k = 1; k < 8; ++k) sampled.push_back(a + (b - a) * k / 8.0);
  }
  for (int hold = 0; hold < 3; ++hold) sampled.push_back(kAstmExample.back());
  expect_same_cycles(count_whole(sampled, ResidueTreatment::half_cycles),
                     count_whole(kAstmExample, ResidueTreatment::half_cycles), "sampled");
}

TEST(Rainflow, AstmExampleClosedResidueGivesFullCycles) {
  // Residue -2 1 -3 5 -4 4 -2 followed by itself (the joint -2, -2 is a plateau) closes
  // (-2, 1) range 3, (4, -3) range 7 and (-4, 5) range 9; with the (-1, 3) cycle of the
  // history itself: four full cycles, no half cycle.
  const std::vector<RainflowCycle> expected = {
      {4, 1.0, 1.0, 0}, {3, -0.5, 1.0, 0}, {7, 0.5, 1.0, 0}, {9, 0.5, 1.0, 0}};
  expect_same_cycles(count_whole(kAstmExample, ResidueTreatment::closed), expected, "closed");
  expect_same_cycles(count_whole(kAstmExample, ResidueTreatment::discard),
                     {{4, 1.0, 1.0, 0}}, "discard");
}

// ---- against the reference -------------------------------------------------------------

TEST(Rainflow, MatchesAstmThreePointReferenceOnRandomHistories) {
  // Without ties (real-valued noise, the resonator) the cycles are identical one by one. With
  // equal turning points (small integers, the walk on a 0.25 grid) ASTM's "X >= Y" counts a
  // range that touches the starting point as two half cycles where the 4-point rule closes one
  // full cycle: the total count of every (range, mean) must still be identical.
  std::uint32_t seed = 1;
  for (Kind kind : kKinds)
    for (std::size_t n : kLengths) {
      const auto x = random_history(kind, n, seed++);
      const auto counted = count_whole(x, ResidueTreatment::half_cycles);
      const auto reference = reference_astm(x);
      const std::string what = "kind " + std::to_string(int(kind)) + ", n = " + std::to_string(n);
      if (kind == Kind::white || kind == Kind::narrowband)
        expect_same_cycles(counted, reference, what);
      ASSERT_EQ(totals(counted), totals(reference)) << what;
    }
}

TEST(Rainflow, MatchesFourPointDefinitionAppliedInAnyOrder) {
  // Identical full cycles and residue, ties included.
  std::uint32_t seed = 50;
  for (Kind kind : kKinds)
    for (std::size_t n : kLengths) {
      if (n > 20000) continue;
      const auto x = random_history(kind, n, seed++);
      const auto reference = reference_four_point(x);
      const std::string what = "kind " + std::to_string(int(kind)) + ", n = " + std::to_string(n);
      expect_same_cycles(count_whole(x, ResidueTreatment::discard), reference.cycles, what);
      std::vector<RainflowCycle> halves;
      for (std::size_t i = 0; i + 1 < reference.residue.size(); ++i) {
        const double b = reference.residue[i], c = reference.residue[i + 1];
        halves.push_back({std::abs(b - c), (b + c) / 2, 0.5, 0});
      }
      expect_same_cycles(only_count(count_whole(x, ResidueTreatment::half_cycles), 0.5), halves,
                         what + " (residue)");
    }
}

TEST(Rainflow, ClosedResidueEqualsCountingTheHistoryTwiceMinusOnce) {
  // closed(x) = cycles closed in x followed by x, minus those closed in x alone.
  std::uint32_t seed = 100;
  for (Kind kind : kKinds)
    for (std::size_t n : kLengths) {
      if (n > 20000) continue;
      const auto x = random_history(kind, n, seed++);
      auto xx = x;
      xx.insert(xx.end(), x.begin(), x.end());
      const auto closed = count_whole(x, ResidueTreatment::closed);
      for (const auto& c : closed) ASSERT_EQ(c.count, 1.0);
      const auto expected =
          minus(sorted(reference_four_point(xx).cycles), sorted(reference_four_point(x).cycles));
      ASSERT_EQ(sorted(closed), expected) << "kind " << int(kind) << ", n = " << n;
    }
}

TEST(Rainflow, ResidueTreatmentsShareTheClosedCyclesAndDifferOnlyInTheResidue) {
  const auto x = random_history(Kind::narrowband, 20000, 7);
  const auto half = count_whole(x, ResidueTreatment::half_cycles);
  const auto closed = count_whole(x, ResidueTreatment::closed);
  const auto discard = count_whole(x, ResidueTreatment::discard);
  RainflowCounter counter;
  CycleCollector sink;
  counter.process(std::span<const double>(x), sink);
  const auto residue = counter.residue(0);
  ASSERT_GE(residue.size(), 3u);
  // Half cycles: one per residue range (the last sample, an end point, can close cycles, so
  // the residue after finishing may be shorter than residue()).
  const auto halves = only_count(half, 0.5);
  EXPECT_LE(halves.size(), residue.size() - 1);
  EXPECT_EQ(sorted(only_count(half, 1.0)), sorted(discard));
  EXPECT_TRUE(only_count(closed, 0.5).empty());
  // The closed treatment turns n residue ranges into about n / 2 full cycles.
  const double extra = static_cast<double>(closed.size() - discard.size());
  EXPECT_NEAR(extra, 0.5 * static_cast<double>(halves.size()), 0.5);
  // Its largest cycle spans the whole history.
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  double largest = 0.0;
  for (const auto& c : closed) largest = std::max(largest, c.range);
  EXPECT_EQ(largest, *hi - *lo);
}

TEST(Rainflow, ShortAndConstantHistories) {
  EXPECT_TRUE(count_whole({}, ResidueTreatment::half_cycles).empty());
  EXPECT_TRUE(count_whole({}, ResidueTreatment::closed).empty());
  EXPECT_TRUE(count_whole({3.0}, ResidueTreatment::half_cycles).empty());
  EXPECT_TRUE(count_whole({3.0, 3.0, 3.0}, ResidueTreatment::closed).empty());
  expect_same_cycles(count_whole({1.0, 4.0}, ResidueTreatment::half_cycles),
                     {{3.0, 2.5, 0.5, 0}}, "two samples");
  // One range, repeated: 1 4 1 4 ... closes into one full cycle.
  expect_same_cycles(count_whole({1.0, 4.0}, ResidueTreatment::closed), {{3.0, 2.5, 1.0, 0}},
                     "two samples closed");
  EXPECT_TRUE(count_whole({1.0, 4.0}, ResidueTreatment::discard).empty());
}

// ---- streaming -----------------------------------------------------------------------------

/// Counts `x` fed in chunks whose sizes are drawn by `next_size`; returns cycles in emission
/// order (closed ones, then the finish) and the final state.
template <class NextSize>
std::pair<std::vector<RainflowCycle>, RainflowCounter> count_chunked(
    const std::vector<double>& x, NextSize next_size, ResidueTreatment treatment) {
  RainflowCounter counter;
  CycleCollector sink;
  std::size_t at = 0;
  while (at < x.size()) {
    const std::size_t n = std::min<std::size_t>(next_size(), x.size() - at);
    counter.process(x.data() + at, static_cast<std::int64_t>(n), sink);
    at += n;
  }
  counter.finish(treatment, sink);
  return {sink.cycles(), counter};
}

TEST(Rainflow, ChunkedEqualsWholeForAnyChunkSizes) {
  std::mt19937 rng(42);
  std::uint32_t seed = 200;
  for (Kind kind : kKinds)
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{1000},
                          std::size_t{30011}}) {
      const auto x = random_history(kind, n, seed++);
      const auto [whole, whole_state] =
          count_chunked(x, [&] { return x.size() + 1; }, ResidueTreatment::half_cycles);
      std::uniform_int_distribution<std::size_t> random_size(1, 50);
      for (std::size_t fixed : {std::size_t{1}, std::size_t{2}, std::size_t{7},
                                std::size_t{1000}, std::size_t{0}}) {
        auto next = [&]() { return fixed > 0 ? fixed : random_size(rng); };
        const auto [chunked, state] = count_chunked(x, next, ResidueTreatment::half_cycles);
        // The same cycles in the same order, and the same state.
        ASSERT_EQ(chunked.size(), whole.size()) << "chunk " << fixed << ", n = " << n;
        for (std::size_t i = 0; i < whole.size(); ++i) {
          ASSERT_EQ(chunked[i].range, whole[i].range);
          ASSERT_EQ(chunked[i].mean, whole[i].mean);
          ASSERT_EQ(chunked[i].count, whole[i].count);
        }
        ASSERT_TRUE(state == whole_state);
        ASSERT_EQ(state.n_samples(), static_cast<std::int64_t>(n));
      }
    }
}

TEST(Rainflow, FloatSamplesCountLikeTheSameValuesInDouble) {
  auto x = random_history(Kind::narrowband, 5000, 3);
  std::vector<float> xf(x.begin(), x.end());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = xf[i];
  RainflowCounter a, b;
  CycleCollector sa, sb;
  a.process(std::span<const float>(xf), sa);
  b.process(std::span<const double>(x), sb);
  a.finish(ResidueTreatment::half_cycles, sa);
  b.finish(ResidueTreatment::half_cycles, sb);
  expect_same_cycles(sa.cycles(), sb.cycles(), "float vs double");
  EXPECT_TRUE(a == b);
}

TEST(Rainflow, ManyChannelsEqualOneCounterPerChannel) {
  // Up to 31 channels take the scalar column path, 32 and more the vectorised row path (in
  // blocks of 512 channels: 600 has a partial second block); every channel must count exactly
  // like a single-channel counter of its column, whatever the chunking.
  std::mt19937 rng(5);
  for (std::int64_t n_channels : {1, 3, 8, 31, 32, 64, 600}) {
    const std::int64_t n_samples = 4099;
    std::vector<std::vector<double>> columns;
    std::vector<float> data(n_samples * n_channels);
    for (std::int64_t j = 0; j < n_channels; ++j) {
      auto c = random_history(kKinds[j % 4], n_samples, 300 + static_cast<std::uint32_t>(j));
      for (std::int64_t i = 0; i < n_samples; ++i) {
        data[i * n_channels + j] = static_cast<float>(c[i]);
        c[i] = static_cast<float>(c[i]);
      }
      columns.push_back(c);
    }
    RainflowCounter batch(n_channels);
    CycleCollector sink;
    std::uniform_int_distribution<std::int64_t> random_rows(1, 700);
    for (std::int64_t at = 0; at < n_samples;) {
      const std::int64_t rows = std::min(random_rows(rng), n_samples - at);
      batch.process(data.data() + at * n_channels, rows, sink);
      at += rows;
    }
    batch.finish(ResidueTreatment::half_cycles, sink);
    ASSERT_EQ(batch.n_samples(), n_samples);
    for (std::int64_t j = 0; j < n_channels; ++j) {
      std::vector<RainflowCycle> of_channel;
      for (const auto& c : sink.cycles())
        if (c.channel == j) of_channel.push_back({c.range, c.mean, c.count, 0});
      // Same order as well: the row path visits a channel's turning points in time order.
      const auto expected = count_whole(columns[j], ResidueTreatment::half_cycles);
      ASSERT_EQ(of_channel.size(), expected.size()) << n_channels << " channels, channel " << j;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(of_channel[i].range, expected[i].range);
        ASSERT_EQ(of_channel[i].mean, expected[i].mean);
        ASSERT_EQ(of_channel[i].count, expected[i].count);
      }
      EXPECT_EQ(batch.residue(j), [&] {
        RainflowCounter one;
        CycleCollector ignore;
        one.process(std::span<const double>(columns[j]), ignore);
        return one.residue(0);
      }());
    }
  }
}

// ---- merging -------------------------------------------------------------------------------

/// Cuts [0, n) at `n_pieces - 1` random points (pieces may be empty or a single sample).
std::vector<std::size_t> random_cuts(std::size_t n, int n_pieces, std::mt19937& rng) {
  std::uniform_int_distribution<std::size_t> at(0, n);
  std::vector<std::size_t> cuts = {0, n};
  for (int i = 1; i < n_pieces; ++i) cuts.push_back(at(rng));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

TEST(Rainflow, MergeOfPiecesEqualsWholeHistory) {
  std::mt19937 rng(11);
  std::uint32_t seed = 400;
  for (Kind kind : kKinds)
    for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{50}, std::size_t{5000},
                          std::size_t{40000}})
      for (int n_pieces : {2, 3, 8, 16}) {
        const auto x = random_history(kind, n, seed++);
        RainflowCounter whole_counter;
        CycleCollector whole;
        whole_counter.process(std::span<const double>(x), whole);
        whole_counter.finish(ResidueTreatment::half_cycles, whole);

        const auto cuts = random_cuts(n, n_pieces, rng);
        CycleCollector merged;  // every cycle from every piece and every merge
        std::vector<RainflowCounter> pieces;
        for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
          pieces.emplace_back();
          pieces.back().process(x.data() + cuts[p], static_cast<std::int64_t>(cuts[p + 1] - cuts[p]),
                                merged);
        }
        // Left fold, as a reducer receiving the ranks' states in time order.
        RainflowCounter total = pieces.front();
        for (std::size_t p = 1; p < pieces.size(); ++p) total.merge(pieces[p], merged);
        ASSERT_TRUE(total == whole_counter) << "n = " << n << ", pieces = " << n_pieces;
        total.finish(ResidueTreatment::half_cycles, merged);
        expect_same_cycles(merged.cycles(), whole.cycles(),
                           "merge of " + std::to_string(n_pieces) + " pieces, n = " +
                               std::to_string(n));
      }
}

TEST(Rainflow, TreeMergeEqualsSequentialMerge) {
  // Merging is associative: pairwise (tree) reduction as over MPI ranks gives the same.
  std::mt19937 rng(12);
  const auto x = random_history(Kind::walk, 60000, 13);
  const auto cuts = random_cuts(x.size(), 8, rng);
  CycleCollector tree_cycles;
  std::vector<RainflowCounter> level;
  for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
    level.emplace_back();
    level.back().process(x.data() + cuts[p], static_cast<std::int64_t>(cuts[p + 1] - cuts[p]),
                         tree_cycles);
  }
  while (level.size() > 1) {
    std::vector<RainflowCounter> next;
    for (std::size_t p = 0; p < level.size(); p += 2) {
      next.push_back(level[p]);
      if (p + 1 < level.size()) next.back().merge(level[p + 1], tree_cycles);
    }
    level = next;
  }
  level[0].finish(ResidueTreatment::closed, tree_cycles);
  expect_same_cycles(tree_cycles.cycles(), count_whole(x, ResidueTreatment::closed), "tree");
}

TEST(Rainflow, MergeOfManyChannelPieces) {
  const std::int64_t n_channels = 40, n_samples = 3000;  // the row-wise path
  std::vector<double> data(n_samples * n_channels);
  for (std::int64_t j = 0; j < n_channels; ++j) {
    const auto c = random_history(kKinds[j % 4], n_samples, 500 + static_cast<std::uint32_t>(j));
    for (std::int64_t i = 0; i < n_samples; ++i) data[i * n_channels + j] = c[i];
  }
  RainflowCounter whole(n_channels), a(n_channels), b(n_channels);
  CycleCollector whole_cycles, merged_cycles;
  whole.process(data.data(), n_samples, whole_cycles);
  whole.finish(ResidueTreatment::half_cycles, whole_cycles);
  a.process(data.data(), 1234, merged_cycles);
  b.process(data.data() + 1234 * n_channels, n_samples - 1234, merged_cycles);
  a.merge(b, merged_cycles);
  EXPECT_TRUE(a == whole);
  a.finish(ResidueTreatment::half_cycles, merged_cycles);
  expect_same_cycles(merged_cycles.cycles(), whole_cycles.cycles(), "40 channels");
}

// ---- checkpoints ------------------------------------------------------------------------

TEST(Rainflow, SerializeRestoreContinuesUnchanged) {
  const std::int64_t n_channels = 9, n_samples = 6000;
  std::vector<double> data(n_samples * n_channels);
  for (std::int64_t j = 0; j < n_channels; ++j) {
    const auto c = random_history(kKinds[j % 4], n_samples, 600 + static_cast<std::uint32_t>(j));
    for (std::int64_t i = 0; i < n_samples; ++i) data[i * n_channels + j] = c[i];
  }
  RainflowCounter original(n_channels);
  CycleCollector first;
  original.process(data.data(), 2500, first);
  const auto bytes = original.serialize();
  RainflowCounter restored = RainflowCounter::deserialize(bytes);
  EXPECT_TRUE(restored == original);
  EXPECT_EQ(restored.serialize(), bytes);

  CycleCollector a, b;
  original.process(data.data() + 2500 * n_channels, n_samples - 2500, a);
  restored.process(data.data() + 2500 * n_channels, n_samples - 2500, b);
  original.finish(ResidueTreatment::closed, a);
  restored.finish(ResidueTreatment::closed, b);
  EXPECT_TRUE(restored == original);
  ASSERT_EQ(a.cycles().size(), b.cycles().size());
  for (std::size_t i = 0; i < a.cycles().size(); ++i) {
    EXPECT_EQ(a.cycles()[i].range, b.cycles()[i].range);
    EXPECT_EQ(a.cycles()[i].mean, b.cycles()[i].mean);
    EXPECT_EQ(a.cycles()[i].channel, b.cycles()[i].channel);
  }
  // An empty counter round-trips too.
  EXPECT_TRUE(RainflowCounter::deserialize(RainflowCounter(4).serialize()) == RainflowCounter(4));
}

TEST(Rainflow, DamagedStateIsAnInputError) {
  RainflowCounter counter(2);
  CycleCollector sink;
  const std::vector<double> x = {0, 1, 0, 2, 0, 3, -1, 4, -2, 1, 0, 2};
  counter.process(std::span<const double>(x), sink);
  const auto bytes = counter.serialize();
  auto truncated = bytes;
  truncated.resize(bytes.size() - 3);
  EXPECT_THROW(RainflowCounter::deserialize(truncated), InputError);
  auto bad_magic = bytes;
  bad_magic[0] = std::byte{'X'};
  EXPECT_THROW(RainflowCounter::deserialize(bad_magic), InputError);
  auto bad_version = bytes;
  bad_version[8] = std::byte{99};
  EXPECT_THROW(RainflowCounter::deserialize(bad_version), InputError);
  auto trailing = bytes;
  trailing.push_back(std::byte{0});
  EXPECT_THROW(RainflowCounter::deserialize(trailing), InputError);
  EXPECT_THROW(RainflowCounter::deserialize({}), InputError);
  try {
    RainflowCounter::deserialize(truncated);
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("rainflow state"), std::string::npos) << e.what();
  }
}

// ---- histogram and errors --------------------------------------------------------------------

TEST(Rainflow, HistogramBinsRangesAndMeansAndCountsClamped) {
  RainflowHistogram histogram(1, 5, 2.0, 4, -4.0, 2.0);  // ranges [0, 10), means [-4, 4)
  CycleCollector cycles;
  RainflowCounter counter;
  counter.process(std::span<const double>(kAstmExample), cycles);
  counter.finish(ResidueTreatment::half_cycles, cycles);
  histogram.consume(cycles.cycles());
  // range 4 mean 1 (1 cycle) -> range bin 2, mean bin 2; range 3 mean -0.5 -> (1, 1);
  // range 4 mean -1 -> (2, 1); ranges 8, 8 means 1, 0 -> (4, 2) twice; range 9 -> (4, 2);
  // range 6 mean 1 -> (3, 2).
  EXPECT_EQ(histogram.count(0, 2, 2), 1.0);
  EXPECT_EQ(histogram.count(0, 1, 1), 0.5);
  EXPECT_EQ(histogram.count(0, 2, 1), 0.5);
  EXPECT_EQ(histogram.count(0, 4, 2), 1.5);
  EXPECT_EQ(histogram.count(0, 3, 2), 0.5);
  EXPECT_EQ(histogram.n_clamped(), 0.0);
  double total = 0.0;
  for (double c : histogram.counts()) total += c;
  EXPECT_EQ(total, 4.0);
  const RainflowCycle outside[] = {{25.0, 9.0, 1.0, 0}};
  histogram.consume(outside);
  EXPECT_EQ(histogram.count(0, 4, 3), 1.0);
  EXPECT_EQ(histogram.n_clamped(), 1.0);
  EXPECT_THROW(RainflowHistogram(1, 0, 1.0), InputError);
  EXPECT_THROW(RainflowHistogram(1, 4, 0.0), InputError);
}

TEST(Rainflow, BadRequestsAreInputErrors) {
  EXPECT_THROW(RainflowCounter(0), InputError);
  RainflowCounter three(3), two(2);
  CycleCollector sink;
  const std::vector<double> seven(7, 1.0);
  EXPECT_THROW(three.process(std::span<const double>(seven), sink), InputError);
  EXPECT_THROW(three.merge(two, sink), InputError);
  EXPECT_THROW((void)three.residue(3), InputError);
}

}  // namespace

// The CUDA stress recovery extracts turning points on the device with the rule of
// kernels/common/turning_points.hpp and pushes them into host counters: run here on the CPU,
// that must give exactly the counter (and the cycles) of process() on the samples.

namespace {

TEST(Rainflow, TurningPointsExtractedElsewhereCountLikeTheSamples) {
  const std::int64_t nc = 5;
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> level(-6, 6);  // coarse values: plateaus and repeats
  vsense::solvers::RainflowCounter direct(nc), fed(nc);
  vsense::solvers::CycleCollector direct_cycles, fed_cycles;
  for (int chunk = 0; chunk < 7; ++chunk) {
    const std::int64_t n = 1 + chunk * 37;
    std::vector<double> samples(static_cast<std::size_t>(n * nc));
    for (double& v : samples) v = level(rng);
    direct.process(std::span<const double>(samples), direct_cycles);
    for (std::int64_t c = 0; c < nc; ++c) {
      const auto start = fed.channel_state(c);
      vsense::kernels::common::TurningState state;
      state.last = start.last;
      state.direction = start.direction;
      state.started = fed.n_samples() > 0 ? 1 : 0;
      std::vector<double> turning;
      for (std::int64_t i = 0; i < n; ++i) {
        double t;
        if (vsense::kernels::common::turning_step(samples[static_cast<std::size_t>(i * nc + c)], state, &t)) {
          turning.push_back(t);
        }
      }
      fed.push_turning_points(c, turning, fed_cycles);
      fed.set_channel_state(c, state.last, state.direction);
    }
    fed.add_samples(n);
    ASSERT_TRUE(fed == direct) << "after chunk " << chunk;
  }
  direct.finish(vsense::solvers::ResidueTreatment::half_cycles, direct_cycles);
  fed.finish(vsense::solvers::ResidueTreatment::half_cycles, fed_cycles);
  auto key = [](const vsense::solvers::RainflowCycle& c) {
    return std::make_tuple(c.channel, c.range, c.mean, c.count);
  };
  auto sorted = [&](std::vector<vsense::solvers::RainflowCycle> v) {
    std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    return v;
  };
  const auto a = sorted(direct_cycles.cycles()), b = sorted(fed_cycles.cycles());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 50u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(key(a[i]), key(b[i])) << i;
}

}  // namespace
