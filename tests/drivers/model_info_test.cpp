// `vsense model info` end to end: the JSON summary of a good deck, the text report, and
// one-line errors naming file:line for bad decks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/test_support.hpp"

namespace {

using vsense::test::data_path;
using vsense::test::run_vsense;

int count_lines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n';
  return lines;
}

/// The number after "key": in a flat JSON text (enough for the fields checked here).
double json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const auto at = json.find(needle);
  if (at == std::string::npos) return -1.0;
  return std::strtod(json.c_str() + at + needle.size(), nullptr);
}

TEST(ModelInfoCommand, JsonSummaryOfEveryKeywordDeck) {
  const auto r = run_vsense("model info '" + data_path("inp/all_keywords.inp") + "' --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;  // one object on stdout
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '{');
  for (const char* field :
       {"\"command\":\"model info\"", "\"n_nodes\":68,", "\"n_elements\":10,",
        "\"C3D8\":2", "\"C3D20R\":1", "\"SPRINGA\":1", "\"MASS\":1",
        "\"n_equations\":186,",  // 3 * 68 - 18 fixed
        "\"n_fixed_dofs\":18,", "\"NESTED\":10", "\"SOLIDS\":6", "\"name\":\"ALU\"",
        "\"bounding_box\":{\"min\":[0,0,-1],\"max\":[9,4,1]}"}) {
    EXPECT_NE(r.out.find(field), std::string::npos) << field << "\n" << r.out;
  }
  EXPECT_GT(json_number(r.out, "stiffness_nonzeros"), 186.0) << r.out;
  EXPECT_NEAR(json_number(r.out, "total_mass"), 0.25, 1e-6) << r.out;
  // the unknown keyword is a warning on stderr, not an error
  EXPECT_NE(r.err.find("*ORIENTATION"), std::string::npos) << r.err;
}

TEST(ModelInfoCommand, MassAndCentreOfMassOfReferenceDeck) {
  // tests/data/ccx/mixed_springs_masses.inp states its total mass in a comment: 700.1
  const auto r = run_vsense("model info '" + data_path("ccx/mixed_springs_masses.inp") +
                            "' --json --no-matrix -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(json_number(r.out, "total_mass"), 700.1, 1e-9 * 700.1) << r.out;
  EXPECT_NE(r.out.find("\"stiffness_nonzeros\":null"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"centre_of_mass\":[0.858"), std::string::npos) << r.out;
}

TEST(ModelInfoCommand, TextReportByDefault) {
  const auto r = run_vsense("model info '" + data_path("inp/all_keywords.inp") + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text : {"nodes           68", "C3D10", "186 free equations",
                           "lower triangle", "centre of mass", "bounding box", "NESTED"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
}

TEST(ModelInfoCommand, BadDeckFailsWithOneLineNamingFileAndLine) {
  const auto r = run_vsense("model info '" + data_path("inp/bad/undefined_node.inp") + "' --json");
  EXPECT_EQ(r.exit_code, 2) << r.err;  // InputError
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("undefined_node.inp:12:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("node 99"), std::string::npos) << r.err;
}

TEST(ModelInfoCommand, MissingIncludeIsAnIoErrorAtTheIncludeLine) {
  const auto r = run_vsense("model info '" + data_path("inp/bad/missing_include.inp") + "'");
  EXPECT_EQ(r.exit_code, 3) << r.err;  // IoError
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("missing_include.inp:11:"), std::string::npos) << r.err;
}

TEST(ModelInfoCommand, MissingModelFileIsRejected) {
  const auto r = run_vsense("model info '" + data_path("inp/no_such_model.inp") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no_such_model.inp"), std::string::npos) << r.err;
}

}  // namespace
