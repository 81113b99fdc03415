#include "vsense/model/mesh.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "vsense/kernels/errors.hpp"

namespace vsense::model {

namespace {

std::int64_t cell_code(ElementType type) {
  switch (type) {
    case ElementType::c3d4: return xdmf_tetrahedron;
    case ElementType::c3d10: return xdmf_tetrahedron_10;
    case ElementType::c3d8:
    case ElementType::c3d8r: return xdmf_hexahedron;
    case ElementType::c3d20:
    case ElementType::c3d20r: return xdmf_hexahedron_20;
    default: return -1;
  }
}

int cell_nodes(std::int64_t code) {
  switch (code) {
    case xdmf_tetrahedron: return 4;
    case xdmf_tetrahedron_10: return 10;
    case xdmf_hexahedron: return 8;
    case xdmf_hexahedron_20: return 20;
    default: return -1;
  }
}

// Faces as local node lists (corner nodes first, then midside nodes of quadratic cells), in the
// Abaqus/CalculiX numbering.
struct FaceTable {
  int n_faces;
  int corners;                    // corner nodes per face
  std::array<std::array<int, 8>, 6> nodes;  // corners, then midside nodes (if any)
  int nodes_per_face;
};

const FaceTable& faces_of(std::int64_t code) {
  static const FaceTable tet4{4, 3, {{{0, 2, 1}, {0, 1, 3}, {1, 2, 3}, {2, 0, 3}}}, 3};
  static const FaceTable tet10{
      4, 3, {{{0, 2, 1, 6, 5, 4}, {0, 1, 3, 4, 8, 7}, {1, 2, 3, 5, 9, 8}, {2, 0, 3, 6, 7, 9}}}, 6};
  static const FaceTable hex8{6, 4,
                              {{{0, 3, 2, 1},
                                {4, 5, 6, 7},
                                {0, 1, 5, 4},
                                {1, 2, 6, 5},
                                {2, 3, 7, 6},
                                {3, 0, 4, 7}}},
                              4};
  static const FaceTable hex20{6, 4,
                               {{{0, 3, 2, 1, 11, 10, 9, 8},
                                 {4, 5, 6, 7, 12, 13, 14, 15},
                                 {0, 1, 5, 4, 8, 17, 12, 16},
                                 {1, 2, 6, 5, 9, 18, 13, 17},
                                 {2, 3, 7, 6, 10, 19, 14, 18},
                                 {3, 0, 4, 7, 11, 16, 15, 19}}},
                               8};
  switch (code) {
    case xdmf_tetrahedron: return tet4;
    case xdmf_tetrahedron_10: return tet10;
    case xdmf_hexahedron: return hex8;
    case xdmf_hexahedron_20: return hex20;
    default: throw InputError(fmt::format("mesh topology: unknown XDMF cell code {}", code));
  }
}

}  // namespace

std::vector<std::int64_t> xdmf_mixed_topology(const Model& model, std::int64_t& n_cells) {
  std::vector<std::int64_t> topology;
  n_cells = 0;
  std::size_t size = 0;
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    if (cell_code(model.element_types[e]) >= 0) size += 1 + model.n_nodes_of(e);
  }
  topology.reserve(size);
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    const std::int64_t code = cell_code(model.element_types[e]);
    if (code < 0) continue;
    topology.push_back(code);
    const auto* nodes = model.nodes_of(e);
    for (int a = 0; a < model.n_nodes_of(e); ++a) topology.push_back(nodes[a]);
    ++n_cells;
  }
  return topology;
}

std::vector<std::int32_t> surface_nodes(const std::vector<std::int64_t>& topology,
                                        std::int64_t n_cells) {
  // Every face keyed by its sorted corners (4 slots, -1 padded) with its owning cell's offset
  // and face number; sorting brings the two copies of an interior face together.
  struct Face {
    std::array<std::int64_t, 4> key;
    std::int64_t cell_offset;
    int face;
  };
  std::vector<Face> faces;
  std::size_t pos = 0;
  for (std::int64_t c = 0; c < n_cells; ++c) {
    if (pos >= topology.size()) throw InputError("mesh topology is shorter than its cell count");
    const std::int64_t code = topology[pos];
    const int n = cell_nodes(code);
    const FaceTable& table = faces_of(code);
    if (pos + 1 + static_cast<std::size_t>(n) > topology.size()) {
      throw InputError("mesh topology ends inside a cell");
    }
    for (int f = 0; f < table.n_faces; ++f) {
      Face face{{-1, -1, -1, -1}, static_cast<std::int64_t>(pos), f};
      for (int k = 0; k < table.corners; ++k) face.key[k] = topology[pos + 1 + table.nodes[f][k]];
      std::sort(face.key.begin(), face.key.begin() + table.corners);
      faces.push_back(face);
    }
    pos += 1 + static_cast<std::size_t>(n);
  }
  std::sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.key < b.key; });
  std::vector<std::int32_t> nodes;
  for (std::size_t i = 0; i < faces.size();) {
    std::size_t j = i + 1;
    while (j < faces.size() && faces[j].key == faces[i].key) ++j;
    if (j - i == 1) {
      const auto offset = static_cast<std::size_t>(faces[i].cell_offset);
      const FaceTable& table = faces_of(topology[offset]);
      for (int k = 0; k < table.nodes_per_face; ++k) {
        nodes.push_back(static_cast<std::int32_t>(topology[offset + 1 + table.nodes[faces[i].face][k]]));
      }
    }
    i = j;
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

}  // namespace vsense::model
