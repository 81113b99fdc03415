// The .inp reader: every supported keyword on a small model (with *INCLUDE'd files), and one
// malformed file per error case, each of which must name its file and line.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/inp_reader.hpp"

namespace {

using vsense::model::ElementType;
using vsense::model::FixedDof;
using vsense::model::Model;
using vsense::model::read_inp;
using vsense::model::Section;
using vsense::test::data_path;
using vsense::test::ScratchDir;

/// Routes spdlog's default logger into a string for the lifetime of the object.
class CapturedLog {
public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    sink->set_pattern("%l: %v");
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }
  /// Number of warning lines containing `fragment`.
  int warnings_containing(const std::string& fragment) const {
    std::istringstream lines(stream_.str());
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      n += line.rfind("warning:", 0) == 0 && line.find(fragment) != std::string::npos;
    }
    return n;
  }

private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

std::int32_t index_of(const Model& m, std::int64_t id) { return m.node_index.at(id); }

std::vector<std::int64_t> ids_of(const Model& m, const std::vector<std::int32_t>& indices) {
  std::vector<std::int64_t> ids;
  for (auto i : indices) ids.push_back(m.node_ids[static_cast<std::size_t>(i)]);
  return ids;
}

std::vector<std::int64_t> element_ids_of(const Model& m, const std::vector<std::int32_t>& idx) {
  std::vector<std::int64_t> ids;
  for (auto i : idx) ids.push_back(m.element_ids[static_cast<std::size_t>(i)]);
  return ids;
}

const Section& section_of(const Model& m, std::int64_t element_id) {
  const auto e = static_cast<std::size_t>(m.element_index.at(element_id));
  return m.sections.at(static_cast<std::size_t>(m.element_section.at(e)));
}

class AllKeywords : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    CapturedLog log;
    model_ = new Model(read_inp(data_path("inp/all_keywords.inp")));
    log_ = new std::string(log.text());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete log_;
  }
  static Model* model_;
  static std::string* log_;
};
Model* AllKeywords::model_ = nullptr;
std::string* AllKeywords::log_ = nullptr;

TEST_F(AllKeywords, NodesInFileOrderIncludingIncludedDataLines) {
  const Model& m = *model_;
  ASSERT_EQ(m.n_nodes(), 68u);
  // 1..6 from the main file, 7..12 from include/hex_upper_nodes.inp inside the same *NODE
  for (std::int64_t id = 1; id <= 12; ++id) EXPECT_EQ(m.node_ids[id - 1], id);
  EXPECT_EQ(m.node_ids[12], 101);
  EXPECT_EQ(m.node_ids[66], 1000000000);  // sparse-id path
  EXPECT_EQ(m.node_ids[67], 500);         // defined after the element that uses it
  EXPECT_EQ(m.node_index.size(), m.n_nodes());
  const auto& x12 = m.coordinates[static_cast<std::size_t>(index_of(m, 12))];
  EXPECT_EQ(x12, (std::array<double, 3>{2.0, 1.0, 1.0}));
  const auto& x_mass = m.coordinates[static_cast<std::size_t>(index_of(m, 1000000000))];
  EXPECT_EQ(x_mass, (std::array<double, 3>{2.0, 1.0, 1.0}));  // "2.0D+00"
  const auto& x401 = m.coordinates[static_cast<std::size_t>(index_of(m, 401))];
  EXPECT_EQ(x401, (std::array<double, 3>{8.0, 0.0, 0.0}));  // tab-indented line
  EXPECT_EQ(m.coordinates[static_cast<std::size_t>(index_of(m, 500))][2], -1.0);
  EXPECT_EQ(m.source_file, data_path("inp/all_keywords.inp"));
}

TEST_F(AllKeywords, ElementsTypesAndConnectivity) {
  const Model& m = *model_;
  ASSERT_EQ(m.n_elements(), 10u);
  EXPECT_EQ(m.element_ids, (std::vector<std::int64_t>{1, 2, 10, 40, 20, 30, 50, 60, 61, 62}));
  EXPECT_EQ(m.element_types,
            (std::vector<ElementType>{ElementType::c3d8, ElementType::c3d8, ElementType::c3d20,
                                      ElementType::c3d20r, ElementType::c3d4, ElementType::c3d10,
                                      ElementType::mass, ElementType::spring1,
                                      ElementType::spring2, ElementType::springa}));
  ASSERT_EQ(m.element_offsets.size(), 11u);
  EXPECT_EQ(m.element_offsets.back(), 8 + 8 + 20 + 20 + 4 + 10 + 1 + 1 + 2 + 2);
  auto nodes = [&](std::int64_t id) {
    const auto e = static_cast<std::size_t>(m.element_index.at(id));
    std::vector<std::int32_t> v(m.nodes_of(e), m.nodes_of(e) + m.n_nodes_of(e));
    return ids_of(m, v);
  };
  EXPECT_EQ(nodes(2), (std::vector<std::int64_t>{2, 3, 6, 5, 8, 9, 12, 11}));
  // C3D20 written over two lines (continuation after a trailing comma)
  std::vector<std::int64_t> c20(20);
  for (int i = 0; i < 20; ++i) c20[i] = 101 + i;
  EXPECT_EQ(nodes(10), c20);
  for (int i = 0; i < 20; ++i) c20[i] = 401 + i;
  EXPECT_EQ(nodes(40), c20);
  EXPECT_EQ(nodes(30).size(), 10u);
  EXPECT_EQ(nodes(50), (std::vector<std::int64_t>{1000000000}));
  EXPECT_EQ(nodes(61), (std::vector<std::int64_t>{12, 101}));
  EXPECT_EQ(nodes(62), (std::vector<std::int64_t>{6, 500}));
}

TEST_F(AllKeywords, SetsGenerateNestedDeduplicatedInOrderGiven) {
  const Model& m = *model_;
  EXPECT_EQ(ids_of(m, m.node_sets.at("HEXNODES")).size(), 12u);  // include continues *NODE
  EXPECT_EQ(m.node_sets.at("C20NODES").size(), 20u);             // quoted NSET name
  EXPECT_EQ(m.node_sets.at("TETNODES").size(), 14u);
  // GENERATE 1..12 step 2, then a second *NSET GENERATE 100..102 appended (100 undefined)
  EXPECT_EQ(ids_of(m, m.node_sets.at("GEN")),
            (std::vector<std::int64_t>{1, 3, 5, 7, 9, 11, 101, 102}));
  // GEN (as it was then), LEFTFACE, 2, 1 (duplicate), LATE
  EXPECT_EQ(ids_of(m, m.node_sets.at("NESTED")),
            (std::vector<std::int64_t>{1, 3, 5, 7, 9, 11, 4, 10, 2, 500}));
  EXPECT_EQ(element_ids_of(m, m.element_sets.at("HEXES")), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(element_ids_of(m, m.element_sets.at("SOLIDS")),
            (std::vector<std::int64_t>{1, 2, 10, 40, 20, 30}));
  EXPECT_EQ(element_ids_of(m, m.element_sets.at("SPRINGS")),
            (std::vector<std::int64_t>{60, 61, 62}));
  EXPECT_EQ(element_ids_of(m, m.element_sets.at("BLOCK")), (std::vector<std::int64_t>{1, 2}));
}

TEST_F(AllKeywords, MaterialsFromIncludedFileAndSectionsResolved) {
  const Model& m = *model_;
  ASSERT_EQ(m.materials.size(), 2u);
  const auto* steel = m.find_material("STEEL");
  const auto* alu = m.find_material("ALU");
  ASSERT_TRUE(steel && alu);
  EXPECT_EQ(*steel->young_modulus, 210000.0);
  EXPECT_EQ(*steel->poisson_ratio, 0.3);
  EXPECT_EQ(*steel->density, 7.85e-9);
  EXPECT_EQ(*alu->young_modulus, 70000.0);
  EXPECT_EQ(*alu->poisson_ratio, 0.33);
  EXPECT_EQ(*alu->density, 2.7e-9);
  EXPECT_NE(steel->where.file.find("materials.inp"), std::string::npos);
  EXPECT_EQ(steel->where.line, 2);

  ASSERT_EQ(m.element_section.size(), m.n_elements());
  for (auto s : m.element_section) EXPECT_GE(s, 0);
  EXPECT_EQ(m.material_of(static_cast<std::size_t>(m.element_index.at(10))).name, "ALU");
  EXPECT_EQ(m.material_of(static_cast<std::size_t>(m.element_index.at(20))).name, "ALU");
  EXPECT_EQ(m.material_of(static_cast<std::size_t>(m.element_index.at(40))).name, "STEEL");
  EXPECT_EQ(m.material_of(static_cast<std::size_t>(m.element_index.at(30))).name, "STEEL");

  const Section& mass = section_of(m, 50);
  EXPECT_EQ(mass.kind, Section::Kind::mass);
  EXPECT_EQ(mass.mass, 0.25);
  const Section& ground = section_of(m, 60);
  EXPECT_EQ(ground.kind, Section::Kind::spring);
  EXPECT_EQ(ground.dof1, 3);
  EXPECT_EQ(ground.stiffness, 1000.0);
  const Section& link = section_of(m, 61);
  EXPECT_EQ(link.dof1, 1);
  EXPECT_EQ(link.dof2, 2);
  EXPECT_EQ(link.stiffness, 2500.0);
  const Section& axial = section_of(m, 62);  // CalculiX's blank first line
  EXPECT_EQ(axial.stiffness, 500.0);
  EXPECT_EQ(axial.elset, "AXIAL");
}

TEST_F(AllKeywords, BoundaryDeduplicatedRotationsDroppedStepBoundaryApplied) {
  const Model& m = *model_;
  std::vector<std::pair<std::int64_t, int>> fixed;
  for (const FixedDof& f : m.fixed_dofs) {
    fixed.emplace_back(m.node_ids[static_cast<std::size_t>(f.node)], f.dof);
  }
  std::vector<std::pair<std::int64_t, int>> expected;
  for (std::int64_t id : {1, 4, 7, 10}) {
    for (int d = 0; d < 3; ++d) expected.emplace_back(id, d);
  }
  expected.emplace_back(2, 2);  // "2, 3,, 0.0"
  for (int d = 0; d < 3; ++d) expected.emplace_back(3, d);  // "3, 1, 6": rotations dropped
  expected.emplace_back(101, 0);  // *BOUNDARY inside *STEP
  expected.emplace_back(101, 1);
  std::sort(expected.begin(), expected.end(), [&](const auto& a, const auto& b) {
    const auto ia = index_of(m, a.first), ib = index_of(m, b.first);
    return ia != ib ? ia < ib : a.second < b.second;
  });
  EXPECT_EQ(fixed, expected);
}

TEST_F(AllKeywords, UnknownKeywordWarnedOnceWithFileAndLineStepDataSilent) {
  const std::string& log = *log_;
  const int orientation = [&] {
    std::istringstream lines(log);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) n += line.find("*ORIENTATION") != std::string::npos;
    return n;
  }();
  EXPECT_EQ(orientation, 1) << log;
  EXPECT_NE(log.find("all_keywords.inp:117: keyword *ORIENTATION"), std::string::npos) << log;
  EXPECT_NE(log.find("rotations"), std::string::npos) << log;
  for (const char* silent : {"FREQUENCY", "NODE FILE", "EL FILE", "HEADING", "STEP"}) {
    EXPECT_EQ(log.find(std::string("*") + silent), std::string::npos) << silent << "\n" << log;
  }
}

// ---- small decks written on the fly ----

std::string write(const ScratchDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char* one_hex =
    "*NODE\n1,0,0,0\n2,1,0,0\n3,1,1,0\n4,0,1,0\n5,0,0,1\n6,1,0,1\n7,1,1,1\n8,0,1,1\n";

TEST(InpReader, KeywordsAndParametersAreCaseInsensitiveAndCrLfIsAccepted) {
  ScratchDir dir("inp-case");
  std::string text = std::string(one_hex) +
                     "*element, type=c3d8, elset=eAll\n1,1,2,3,4,5,6,7,8\n"
                     "*material, name=Mat\n*elastic, type=iso\n1e3, 0.25\n*density\n2.\n"
                     "*solid  section, elset=EALL, material=mAT\n"
                     "*nset, nset=Bottom, generate\n1,4\n*boundary\nbottom,3,3\n"
                     "*step\n*static\n*end step";  // no newline after the last line
  std::string crlf;
  for (char c : text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const Model m = read_inp(write(dir, "case.inp", crlf));
  EXPECT_EQ(m.n_nodes(), 8u);
  EXPECT_EQ(m.element_sets.at("EALL").size(), 1u);
  EXPECT_EQ(m.node_sets.at("BOTTOM").size(), 4u);
  EXPECT_EQ(m.fixed_dofs.size(), 4u);
  EXPECT_EQ(m.material_of(0).name, "MAT");
  EXPECT_EQ(*m.material_of(0).density, 2.0);
}

TEST(InpReader, BoundaryNamedTypesAndElementLinesOfSixteenEntriesContinue) {
  ScratchDir dir("inp-named");
  std::string text = "*NODE\n";
  for (int i = 1; i <= 20; ++i) text += std::to_string(i) + ", " + std::to_string(i) + ",0,0\n";
  // Sixteen entries on the first line and no trailing comma: Abaqus continues anyway.
  text += "*ELEMENT, TYPE=C3D20, ELSET=E\n1";
  for (int i = 1; i <= 15; ++i) text += ", " + std::to_string(i);
  text += "\n16, 17, 18, 19, 20\n";
  text += "*MATERIAL, NAME=M\n*ELASTIC\n1., 0.\n*DENSITY\n1.\n*SOLID SECTION, ELSET=E, "
          "MATERIAL=M\n*NSET, NSET=A\n1\n*NSET, NSET=B\n2\n"
          "*BOUNDARY\nA, ENCASTRE\nB, ZSYMM\n";
  const Model m = read_inp(write(dir, "named.inp", text));
  EXPECT_EQ(m.n_nodes_of(0), 20);
  EXPECT_EQ(m.nodes_of(0)[19], 19);
  ASSERT_EQ(m.fixed_dofs.size(), 4u);
  EXPECT_EQ(m.fixed_dofs[3].node, 1);
  EXPECT_EQ(m.fixed_dofs[3].dof, 2);
}

TEST(InpReader, ReadsAGeneratedHexBlockWithDenseAndSparseIds) {
  ScratchDir dir("inp-block");
  const int n = 12;  // n^3 hexahedra
  std::ostringstream text;
  auto id = [&](int i, int j, int k) {
    // even ids dense, a few huge ones to mix the two look-up paths
    const long long base = 1 + i + (n + 1) * (j + (n + 1) * k);
    return (i == n && j == n) ? base + 4'000'000'000LL : base;
  };
  text << "*NODE, NSET=NALL\n";
  for (int k = 0; k <= n; ++k)
    for (int j = 0; j <= n; ++j)
      for (int i = 0; i <= n; ++i) text << id(i, j, k) << "," << i << "," << j << "," << k << "\n";
  text << "*ELEMENT, TYPE=C3D8, ELSET=EALL\n";
  int e = 1;
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        text << e++ << "," << id(i, j, k) << "," << id(i + 1, j, k) << "," << id(i + 1, j + 1, k)
             << "," << id(i, j + 1, k) << "," << id(i, j, k + 1) << "," << id(i + 1, j, k + 1)
             << "," << id(i + 1, j + 1, k + 1) << "," << id(i, j + 1, k + 1) << "\n";
  text << "*MATERIAL, NAME=S\n*ELASTIC\n2e11, 0.3\n*DENSITY\n7800\n"
       << "*SOLID SECTION, ELSET=EALL, MATERIAL=S\n";
  const Model m = read_inp(write(dir, "block.inp", text.str()));
  EXPECT_EQ(m.n_nodes(), static_cast<std::size_t>((n + 1) * (n + 1) * (n + 1)));
  EXPECT_EQ(m.n_elements(), static_cast<std::size_t>(n * n * n));
  const auto last = m.n_elements() - 1;
  const auto top = static_cast<std::size_t>(m.nodes_of(last)[6]);
  EXPECT_EQ(m.node_ids[top], id(n, n, n));
  EXPECT_EQ(m.coordinates[top], (std::array<double, 3>{double(n), double(n), double(n)}));
}

TEST(InpReader, ReadsEveryCalculixReferenceDeck) {
  const auto dir = std::filesystem::path(data_path("ccx"));
  int read = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".inp") continue;
    SCOPED_TRACE(entry.path().string());
    const Model m = read_inp(entry.path().string());
    EXPECT_GT(m.n_elements(), 0u);
    ++read;
  }
  EXPECT_GT(read, 0);
}

TEST(InpReader, UnreadableFileIsAnIoError) {
  EXPECT_THROW(read_inp(data_path("inp/no_such_model.inp")), vsense::IoError);
}

// ---- one malformed file per error ----

struct BadCase {
  const char* file;   // under tests/data/inp/bad/
  int line;           // where the message must point
  const char* words;  // a fragment the reason must contain
  bool io_error = false;
};

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, ThrowsWithFileAndLine) {
  const BadCase& c = GetParam();
  const std::string path = data_path(std::string("inp/bad/") + c.file);
  std::string message;
  bool io_error = false;
  try {
    read_inp(path);
    FAIL() << c.file << " was accepted";
  } catch (const vsense::InputError& e) {
    message = e.what();
  } catch (const vsense::IoError& e) {
    message = e.what();
    io_error = true;
  }
  EXPECT_EQ(io_error, c.io_error) << message;
  const std::string place = std::string(c.file) + ":" + std::to_string(c.line) + ":";
  EXPECT_NE(message.find(place), std::string::npos) << "expected " << place << " in: " << message;
  EXPECT_NE(message.find(c.words), std::string::npos) << "expected '" << c.words
                                                      << "' in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    InpReader, BadInput,
    ::testing::Values(BadCase{"malformed_number.inp", 5, "'1.x'"},
                      BadCase{"unknown_element_type.inp", 11, "S4R"},
                      BadCase{"c3d8r.inp", 11, "hourglass"},
                      BadCase{"undefined_node.inp", 12, "node 99"},
                      BadCase{"undefined_set.inp", 20, "FIXED"},
                      BadCase{"missing_material.inp", 18, "material ALU is not defined"},
                      BadCase{"material_without_density.inp", 13, "*DENSITY"},
                      BadCase{"element_without_section.inp", 14, "element 2 (C3D4) has no section"},
                      BadCase{"nonzero_boundary.inp", 20, "0.001"},
                      BadCase{"wrong_node_count.inp", 12, "8 nodes, but 7"},
                      BadCase{"missing_include.inp", 11, "no_such_file.inp", true},
                      BadCase{"duplicate_node.inp", 7, "node 3 is defined twice"},
                      BadCase{"duplicate_element.inp", 13, "element 1 is defined twice"},
                      BadCase{"missing_parameter.inp", 11, "TYPE="},
                      BadCase{"orthotropic_material.inp", 14, "ORTHO"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.'));
      name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
      return name;
    });

}  // namespace
