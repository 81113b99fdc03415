#pragma once
/// @file model.hpp
/// @brief The finite-element model as read from an Abaqus/CalculiX `.inp` file.
///
/// Storage is flat (structure of arrays) so that a 10^7-DOF model costs a few hundred MB:
/// nodes are addressed by their *index* (0..n_nodes-1) everywhere inside vsense; the user's
/// node ids appear only at input and output.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vsense::model {

/// Element types understood by vsense, with CalculiX's formulations.
enum class ElementType : std::uint8_t {
  c3d4,    ///< 4-node tetrahedron, 1 integration point
  c3d10,   ///< 10-node tetrahedron, 4 integration points
  c3d8,    ///< 8-node hexahedron, 2x2x2 integration
  c3d8r,   ///< 8-node hexahedron, 1 point + hourglass control (rejected: see elements.hpp)
  c3d20,   ///< 20-node hexahedron, 3x3x3 integration
  c3d20r,  ///< 20-node hexahedron, 2x2x2 integration
  mass,    ///< point mass on one node (*MASS)
  spring1, ///< grounded spring on one node, one DOF (*SPRING)
  spring2, ///< spring between one DOF of each of two nodes (*SPRING)
  springa, ///< axial spring between two nodes, along the line joining them (*SPRING)
};

/// Number of nodes of an element type.
int nodes_per_element(ElementType type) noexcept;
/// The `.inp` name ("C3D8", "SPRINGA", ...).
std::string_view element_type_name(ElementType type) noexcept;
/// Parses an `.inp` element type name (case-insensitive); nullopt when unknown.
std::optional<ElementType> parse_element_type(std::string_view name) noexcept;
/// True for continuum elements (C3D*), which carry a material and produce stresses.
bool is_solid(ElementType type) noexcept;

/// Where something came from, for error messages: "genset.inp:123".
struct SourceLocation {
  std::string file;
  int line = 0;
  std::string str() const { return file + ":" + std::to_string(line); }
};

/// Isotropic linear elastic material (*MATERIAL, *ELASTIC, *DENSITY). Model units.
struct Material {
  std::string name;  ///< upper-cased, as keys are case-insensitive
  std::optional<double> young_modulus;
  std::optional<double> poisson_ratio;
  std::optional<double> density;
  SourceLocation where;
};

/// One element property card: *SOLID SECTION, *MASS or *SPRING, applying to an ELSET.
struct Section {
  enum class Kind : std::uint8_t { solid, mass, spring } kind = Kind::solid;
  std::string elset;     ///< upper-cased
  std::string material;  ///< solid only, upper-cased
  double mass = 0.0;     ///< *MASS: the point mass
  double stiffness = 0.0;  ///< *SPRING: spring constant (force/length)
  int dof1 = 0, dof2 = 0;  ///< *SPRING for SPRING1/SPRING2: DOFs 1..3 at node 1 / node 2
  SourceLocation where;
};

/// A homogeneous single-point constraint: DOF `dof` (0, 1 or 2) of node index `node` is fixed.
struct FixedDof {
  std::int32_t node = 0;
  std::int8_t dof = 0;
};

/// @brief The whole model. All node references are node indices (not ids).
struct Model {
  std::string source_file;  ///< the main .inp path as given

  // nodes
  std::vector<std::int64_t> node_ids;            ///< [n_nodes] ids as in the .inp
  std::vector<std::array<double, 3>> coordinates;  ///< [n_nodes] model units
  std::unordered_map<std::int64_t, std::int32_t> node_index;  ///< id -> index

  // elements, connectivity in CSR form
  std::vector<std::int64_t> element_ids;         ///< [n_elements]
  std::vector<ElementType> element_types;        ///< [n_elements]
  std::vector<std::int64_t> element_offsets{0};  ///< [n_elements + 1] into element_nodes
  std::vector<std::int32_t> element_nodes;       ///< node indices, .inp node order
  /// [n_elements] index into `sections` of the property that applies (-1 until resolved)
  std::vector<std::int32_t> element_section;
  std::unordered_map<std::int64_t, std::int32_t> element_index;  ///< id -> index

  // sets (names upper-cased), members are indices, in the order given, without duplicates
  std::map<std::string, std::vector<std::int32_t>> node_sets;
  std::map<std::string, std::vector<std::int32_t>> element_sets;

  std::vector<Material> materials;  ///< sections refer to these by name
  std::vector<Section> sections;
  std::vector<FixedDof> fixed_dofs;  ///< from *BOUNDARY (homogeneous only), deduplicated

  std::size_t n_nodes() const noexcept { return node_ids.size(); }
  std::size_t n_elements() const noexcept { return element_ids.size(); }
  /// Node indices of element e.
  const std::int32_t* nodes_of(std::size_t e) const noexcept {
    return element_nodes.data() + element_offsets[e];
  }
  int n_nodes_of(std::size_t e) const noexcept {
    return static_cast<int>(element_offsets[e + 1] - element_offsets[e]);
  }
  /// The material of a solid element (resolved through its section).
  const Material& material_of(std::size_t e) const;
  const Material* find_material(std::string_view upper_name) const noexcept;
};

}  // namespace vsense::model
