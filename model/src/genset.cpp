// The built-in parametric genset: a ~1.5 MW diesel engine-generator set on a welded steel
// base frame, written as a plain `.inp` deck that CalculiX reads as well.
//
// Design: every body (frame, engine, generator) is a union of axis-aligned boxes meshed on one
// structured, non-uniform grid whose lines include every box face and every point where a
// spring or mass must attach. A grid node exists iff it lies in the closure of some box, a cell
// is an element iff its centre lies inside some box; both tests are one AND of per-axis box
// bitmasks. Nothing is stored per node or element: nodes are numbered plane by plane (planes
// normal to x), so an element needs only the id tables of the L+1 node planes it touches
// (L = 1 for C3D8, 2 for C3D20R). Memory is O(plane) plus the node sets written at the end,
// which are surfaces: O(N^(2/3)). The element size is found by bisection on the exact node
// count, which is cheap because planes with equal x-bitmasks have equal counts.
#include "vsense/model/genset.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "vsense/kernels/errors.hpp"

namespace vsense::model {

namespace {

// ---- design data (SI units: m, kg, s, N, Pa) ------------------------------------------------
// Axes: x along the crankshaft (front of the set at x = 0), y lateral, z up; z = 0 is the top
// of the foundation, which the frame's bottom flanges sit on.

constexpr double kFrameLength = 6.0;
constexpr double kRailY = 0.75;            // rail web centre line, |y|
constexpr double kRailFlangeHalf = 0.09;   // flange half width (180 mm flanges)
constexpr double kRailWebHalf = 0.01;      // 20 mm web
constexpr double kRailFlangeT = 0.025;     // 25 mm flanges
constexpr double kFrameTopZ = 0.30;        // 300 mm deep rails
constexpr double kCrossMemberT = 0.06;  // 60 mm thick cross-member plates
// Front faces of the cross members; the inner three lie under mounts, as in a real frame.
constexpr std::array<double, 5> kCrossMemberX{0.0, 1.95, 3.1, 4.5, kFrameLength - kCrossMemberT};
constexpr double kMountY = kRailY + kRailWebHalf;  // mounts sit over the rail web's outer face
constexpr double kMountHeight = 0.12;              // rubber element height
constexpr double kFootZ = kFrameTopZ + kMountHeight;  // underside of the engine/generator feet
constexpr double kFootHalfX = 0.10;
constexpr double kFootTopZ = 0.85;
constexpr std::array<double, 3> kEngineMountX{0.8, 1.95, 3.1};
constexpr std::array<double, 3> kGeneratorMountX{3.8, 4.5, 5.2};

// Flexible coupling between the flywheel housing (x = 3.5) and the generator (x = 3.55):
// four axial springs on a square around the shaft axis (z = 1.15).
constexpr double kEngineRearX = 3.5;
constexpr double kGeneratorFrontX = 3.55;
constexpr double kCouplingY = 0.3;
constexpr std::array<double, 2> kCouplingZ{0.85, 1.45};

constexpr double kSteelE = 210e9, kSteelNu = 0.3, kSteelRho = 7850.0;
// Grey cast iron moduli; the density is the smeared value that gives the engine's dry mass
// on the simplified (solid) block geometry.
constexpr double kEngineE = 110e9, kEngineNu = 0.26, kEngineMass = 9000.0;
// Generator: laminated stator, windings and rotor smeared into one effective solid.
constexpr double kGeneratorE = 100e9, kGeneratorNu = 0.3, kGeneratorMass = 6000.0;

// Resilient mounts (per mount): vertical and shear (longitudinal, lateral) stiffness.
constexpr double kMountVertical = 5.0e6;
// Shear at 0.4 of vertical (rubber mounts range 0.3-0.5). The lowest mode, the engine's
// lateral roll on its mounts, is then 4.5 Hz (CalculiX); at 1/3 it was 4.2 Hz.
constexpr double kMountShear = 0.4 * kMountVertical;
constexpr double kCouplingAxial = 2.5e6;  // per coupling spring

// Attached equipment.
constexpr double kTurboMass = 400.0;  // turbochargers and charge-air piping, on 4 stays
constexpr std::array<double, 3> kTurboNode{2.55, 0.0, 2.40};
constexpr double kTurboStay = 5.0e7;  // SPRINGA stiffness of each stay
constexpr double kRadiatorMass = 900.0;  // radiator with coolant, at the front of the frame
constexpr std::array<double, 3> kRadiatorNode{0.25, 0.0, 1.30};
constexpr double kRadiatorTieX = kCrossMemberT;  // the front cross member's rear face
constexpr std::array<double, 3> kRadiatorTie{2.5e7, 2.5e7, 5.0e7};  // per tie, x y z
constexpr double kAncillaryMass = 60.0;  // filters, starter, pumps: 4 lumps on the crankcase
constexpr std::array<double, 2> kAncillaryX{0.8, 1.95};
constexpr double kAncillaryZ = 1.45;

/// The frame's elements are this much smaller than the bodies': it is thin-walled, and it is
/// where a digital twin wants its stresses.
constexpr double kFrameSpacingFactor = 0.7;

constexpr double kTol = 1e-9;

struct Box {
  std::array<double, 3> lo, hi;
};

/// A named node set: the body's nodes inside any of its (closed) regions.
struct Selection {
  std::string name;
  std::vector<Box> regions;
};

struct BodySpec {
  std::string name;
  std::string material;
  std::vector<Box> solids;
  std::array<std::vector<double>, 3> extra_lines;  ///< coordinates that must be grid lines
  std::vector<Selection> selections;
  double spacing_factor = 1.0;
};

Box mirror_y(const Box& b) { return {{b.lo[0], -b.hi[1], b.lo[2]}, {b.hi[0], -b.lo[1], b.hi[2]}}; }

std::vector<BodySpec> genset_bodies() {
  std::vector<BodySpec> bodies(3);

  // Welded base frame: two I-section rails and five cross-member plates between the webs.
  BodySpec& frame = bodies[0];
  frame.name = "FRAME";
  frame.material = "STEEL";
  frame.spacing_factor = kFrameSpacingFactor;
  for (double side : {1.0, -1.0}) {
    auto rail_box = [&](double y0, double y1, double z0, double z1) {
      Box b{{0.0, y0, z0}, {kFrameLength, y1, z1}};
      frame.solids.push_back(side > 0 ? b : mirror_y(b));
    };
    rail_box(kRailY - kRailFlangeHalf, kRailY + kRailFlangeHalf, 0.0, kRailFlangeT);
    rail_box(kRailY - kRailWebHalf, kRailY + kRailWebHalf, kRailFlangeT, kFrameTopZ - kRailFlangeT);
    rail_box(kRailY - kRailFlangeHalf, kRailY + kRailFlangeHalf, kFrameTopZ - kRailFlangeT,
             kFrameTopZ);
  }
  Selection fixed{"FIXED", {}};
  for (double xc : kCrossMemberX) {
    const double inner = kRailY - kRailWebHalf;
    frame.solids.push_back({{xc, -inner, kRailFlangeT},
                            {xc + kCrossMemberT, inner, kFrameTopZ - kRailFlangeT}});
    // Anchor bolts: the rails' undersides below each cross member are held by the foundation.
    fixed.regions.push_back({{xc, -10.0, 0.0}, {xc + kCrossMemberT, 10.0, 0.0}});
  }
  frame.selections.push_back(std::move(fixed));
  frame.selections.push_back({"FRAME_TOP", {{{-1.0, -10.0, kFrameTopZ}, {10.0, 10.0, kFrameTopZ}}}});
  for (double x : kEngineMountX) frame.extra_lines[0].push_back(x);
  for (double x : kGeneratorMountX) frame.extra_lines[0].push_back(x);
  frame.extra_lines[0].push_back(kRadiatorTieX);
  frame.extra_lines[1] = {kMountY, -kMountY};

  // Engine: crankcase with oil sump, two cylinder banks (a V engine), flywheel housing, and
  // three cast feet per side that rest on the mounts.
  BodySpec& engine = bodies[1];
  engine.name = "ENGINE";
  engine.material = "ENGINE_IRON";
  engine.solids = {
      {{0.7, -0.6, 0.75}, {3.3, 0.6, 1.6}},            // crankcase
      {{0.7, -0.3, kFootZ}, {3.2, 0.3, 0.75}},         // oil sump
      {{0.7, 0.3, 1.6}, {3.2, 0.6, 2.0}},              // cylinder bank B
      {{0.7, -0.6, 1.6}, {3.2, -0.3, 2.0}},            // cylinder bank A
      {{3.3, -kMountY, kFootZ}, {kEngineRearX, kMountY, 1.6}},  // flywheel housing
  };
  Selection engine_feet{"ENGINE_FEET", {}};
  for (double xm : kEngineMountX) {
    const Box foot{{xm - kFootHalfX, 0.6, kFootZ}, {xm + kFootHalfX, 0.92, kFootTopZ}};
    for (const Box& b : {foot, mirror_y(foot)}) {
      engine.solids.push_back(b);
      engine_feet.regions.push_back(b);
    }
    engine.extra_lines[0].push_back(xm);
  }
  engine.selections.push_back(std::move(engine_feet));
  engine.extra_lines[1] = {kMountY, -kMountY, kCouplingY, -kCouplingY};
  engine.extra_lines[2] = {kCouplingZ[0], kCouplingZ[1], kAncillaryZ};

  // Generator: stator frame, terminal box on top, rear bearing end shield, three feet per side.
  BodySpec& generator = bodies[2];
  generator.name = "GENERATOR";
  generator.material = "GENERATOR_EFFECTIVE";
  generator.solids = {
      {{kGeneratorFrontX, -0.6, 0.6}, {5.3, 0.6, 1.7}},  // stator frame
      {{3.9, -0.3, 1.7}, {4.6, 0.3, 2.0}},               // terminal box
      {{5.3, -0.3, 0.85}, {5.5, 0.3, 1.45}},             // rear end shield and bearing
  };
  Selection generator_feet{"GENERATOR_FEET", {}};
  for (double xm : kGeneratorMountX) {
    const Box foot{{xm - kFootHalfX, 0.6, kFootZ}, {xm + kFootHalfX, 0.92, kFootTopZ}};
    for (const Box& b : {foot, mirror_y(foot)}) {
      generator.solids.push_back(b);
      generator_feet.regions.push_back(b);
    }
    generator.extra_lines[0].push_back(xm);
  }
  generator.selections.push_back(std::move(generator_feet));
  generator.extra_lines[1] = {kMountY, -kMountY, kCouplingY, -kCouplingY};
  generator.extra_lines[2] = {kCouplingZ[0], kCouplingZ[1]};
  return bodies;
}

// ---- structured grid of one body -------------------------------------------------------------

/// One axis of a body's grid. Node lines are indexed I = 0 .. L*n_cells; cell c spans node
/// lines L*c .. L*c+L (for L = 2 the odd node lines are the cells' mid-planes).
struct Axis {
  std::vector<double> node;              // [n_node_lines] coordinates, model units
  std::vector<std::uint64_t> node_mask;  // [n_node_lines] solids whose closed extent holds it
  std::vector<std::uint64_t> cell_mask;  // [n_cells] solids whose open extent holds the centre
  std::vector<std::uint64_t> sel_mask;   // [n_node_lines] selection regions holding it
  std::vector<std::array<int, 2>> adjacent;  // [n_node_lines] cells touching it, -1 if none
  int n_node_lines() const noexcept { return static_cast<int>(node.size()); }
  int n_cells() const noexcept { return static_cast<int>(cell_mask.size()); }
};

struct BodyGrid {
  const BodySpec* spec = nullptr;
  int order = 1;  // L
  std::array<Axis, 3> axis;
  std::vector<std::uint64_t> selection_bits;  // [n_selections] region bits of each selection
  std::vector<std::int64_t> plane_start;      // [n_node_lines(x) + 1] nodes before plane I
  std::int64_t n_nodes = 0;
  std::int64_t n_elements = 0;
  std::int64_t first_node = 1;     // global id of the body's first node
  std::int64_t first_element = 1;  // global id of the body's first element
};

std::vector<double> breakpoints(const BodySpec& body, int d) {
  std::vector<double> points;
  for (const Box& b : body.solids) {
    points.push_back(b.lo[d]);
    points.push_back(b.hi[d]);
  }
  points.insert(points.end(), body.extra_lines[d].begin(), body.extra_lines[d].end());
  std::sort(points.begin(), points.end());
  std::vector<double> unique;
  for (double p : points) {
    if (unique.empty() || p - unique.back() > kTol) unique.push_back(p);
  }
  return unique;
}

std::vector<Box> all_regions(const BodySpec& body) {
  std::vector<Box> regions;
  for (const auto& s : body.selections) regions.insert(regions.end(), s.regions.begin(), s.regions.end());
  return regions;
}

Axis build_axis(const BodySpec& body, int d, double spacing, int order) {
  const std::vector<double> points = breakpoints(body, d);
  std::vector<double> lines;  // cell boundaries
  lines.push_back(points.front());
  for (std::size_t k = 0; k + 1 < points.size(); ++k) {
    const double a = points[k], b = points[k + 1];
    const long n = std::max(1L, std::lround((b - a) / spacing));
    for (long t = 1; t < n; ++t) lines.push_back(a + (b - a) * static_cast<double>(t) / n);
    lines.push_back(b);
  }
  Axis axis;
  const int n_cells = static_cast<int>(lines.size()) - 1;
  for (int c = 0; c < n_cells; ++c) {
    axis.node.push_back(lines[c]);
    if (order == 2) axis.node.push_back(0.5 * (lines[c] + lines[c + 1]));
  }
  axis.node.push_back(lines.back());

  const std::vector<Box> regions = all_regions(body);
  axis.node_mask.resize(axis.node.size());
  axis.sel_mask.resize(axis.node.size());
  axis.adjacent.resize(axis.node.size());
  for (std::size_t i = 0; i < axis.node.size(); ++i) {
    const double x = axis.node[i];
    std::uint64_t m = 0, s = 0;
    for (std::size_t b = 0; b < body.solids.size(); ++b) {
      if (x >= body.solids[b].lo[d] - kTol && x <= body.solids[b].hi[d] + kTol) m |= 1ULL << b;
    }
    for (std::size_t r = 0; r < regions.size(); ++r) {
      if (x >= regions[r].lo[d] - kTol && x <= regions[r].hi[d] + kTol) s |= 1ULL << r;
    }
    axis.node_mask[i] = m;
    axis.sel_mask[i] = s;
    const int I = static_cast<int>(i);
    if (I % order == 0) {
      const int c = I / order;
      axis.adjacent[i] = {c - 1, c < n_cells ? c : -1};
    } else {
      axis.adjacent[i] = {I / order, I / order};
    }
  }
  axis.cell_mask.resize(n_cells);
  for (int c = 0; c < n_cells; ++c) {
    const double x = 0.5 * (lines[c] + lines[c + 1]);
    std::uint64_t m = 0;
    for (std::size_t b = 0; b < body.solids.size(); ++b) {
      if (x > body.solids[b].lo[d] && x < body.solids[b].hi[d]) m |= 1ULL << b;
    }
    axis.cell_mask[c] = m;
  }
  return axis;
}

inline bool node_present(const BodyGrid& g, int I, int J, int K) noexcept {
  if (g.order == 2 && (I & 1) + (J & 1) + (K & 1) > 1) return false;  // face/volume centres
  return (g.axis[0].node_mask[I] & g.axis[1].node_mask[J] & g.axis[2].node_mask[K]) != 0;
}

inline bool cell_solid(const BodyGrid& g, int i, int j, int k) noexcept {
  return (g.axis[0].cell_mask[i] & g.axis[1].cell_mask[j] & g.axis[2].cell_mask[k]) != 0;
}

/// Builds the grid for element size `spacing` and counts its nodes and elements exactly.
BodyGrid build_grid(const BodySpec& body, double spacing, int order) {
  if (body.solids.size() > 64 || all_regions(body).size() > 64) {
    throw std::logic_error("genset: a body may have at most 64 boxes and 64 set regions");
  }
  BodyGrid g;
  g.spec = &body;
  g.order = order;
  for (int d = 0; d < 3; ++d) g.axis[d] = build_axis(body, d, spacing * body.spacing_factor, order);
  int bit = 0;
  for (const auto& s : body.selections) {
    std::uint64_t bits = 0;
    for (std::size_t r = 0; r < s.regions.size(); ++r) bits |= 1ULL << bit++;
    g.selection_bits.push_back(bits);
  }

  // Planes with the same x-mask (and parity) hold the same nodes: count each kind once.
  const Axis &ax = g.axis[0], &ay = g.axis[1], &az = g.axis[2];
  std::map<std::pair<std::uint64_t, int>, std::int64_t> plane_memo;
  g.plane_start.assign(ax.n_node_lines() + 1, 0);
  for (int I = 0; I < ax.n_node_lines(); ++I) {
    const auto key = std::make_pair(ax.node_mask[I], order == 2 ? (I & 1) : 0);
    auto it = plane_memo.find(key);
    if (it == plane_memo.end()) {
      std::int64_t count = 0;
      for (int J = 0; J < ay.n_node_lines(); ++J) {
        for (int K = 0; K < az.n_node_lines(); ++K) count += node_present(g, I, J, K);
      }
      it = plane_memo.emplace(key, count).first;
    }
    g.plane_start[I + 1] = g.plane_start[I] + it->second;
  }
  g.n_nodes = g.plane_start.back();

  std::map<std::uint64_t, std::int64_t> layer_memo;
  g.n_elements = 0;
  for (int i = 0; i < ax.n_cells(); ++i) {
    auto it = layer_memo.find(ax.cell_mask[i]);
    if (it == layer_memo.end()) {
      std::int64_t count = 0;
      for (int j = 0; j < ay.n_cells(); ++j) {
        for (int k = 0; k < az.n_cells(); ++k) count += cell_solid(g, i, j, k);
      }
      it = layer_memo.emplace(ax.cell_mask[i], count).first;
    }
    g.n_elements += it->second;
  }
  return g;
}

/// Global ids of the nodes of plane I: ids[J * n_z + K], -1 where there is no node.
void fill_plane(const BodyGrid& g, int I, std::vector<std::int64_t>& ids) {
  const int ny = g.axis[1].n_node_lines(), nz = g.axis[2].n_node_lines();
  ids.assign(static_cast<std::size_t>(ny) * nz, -1);
  std::int64_t next = g.first_node + g.plane_start[I];
  for (int J = 0; J < ny; ++J) {
    for (int K = 0; K < nz; ++K) {
      if (node_present(g, I, J, K)) ids[static_cast<std::size_t>(J) * nz + K] = next++;
    }
  }
}

int line_index(const Axis& axis, double x, const char* what) {
  const auto it = std::lower_bound(axis.node.begin(), axis.node.end(), x - 1e-7);
  if (it == axis.node.end() || std::abs(*it - x) > 1e-7) {
    throw std::logic_error(fmt::format("genset: {} at {} is not on a grid line", what, x));
  }
  return static_cast<int>(it - axis.node.begin());
}

/// Global id of the body's node at point p (which must be a node: an internal error otherwise).
std::int64_t node_at(const BodyGrid& g, const std::array<double, 3>& p) {
  const int I = line_index(g.axis[0], p[0], "x"), J = line_index(g.axis[1], p[1], "y"),
            K = line_index(g.axis[2], p[2], "z");
  if (!node_present(g, I, J, K)) {
    throw std::logic_error(fmt::format("genset: no {} node at ({}, {}, {})", g.spec->name, p[0],
                                       p[1], p[2]));
  }
  std::vector<std::int64_t> ids;
  fill_plane(g, I, ids);
  return ids[static_cast<std::size_t>(J) * g.axis[2].n_node_lines() + K];
}

/// True when every cell around the node exists and is solid.
bool node_interior(const BodyGrid& g, int I, int J, int K) noexcept {
  const auto& a = g.axis[0].adjacent[I];
  const auto& b = g.axis[1].adjacent[J];
  const auto& c = g.axis[2].adjacent[K];
  for (int i : a) {
    for (int j : b) {
      for (int k : c) {
        if (i < 0 || j < 0 || k < 0 || !cell_solid(g, i, j, k)) return false;
      }
    }
  }
  return true;
}

double union_volume(const BodySpec& body) {
  const BodyGrid g = build_grid(body, 1e9, 1);  // breakpoints only: every cell is in or out
  double volume = 0.0;
  for (int i = 0; i < g.axis[0].n_cells(); ++i) {
    for (int j = 0; j < g.axis[1].n_cells(); ++j) {
      for (int k = 0; k < g.axis[2].n_cells(); ++k) {
        if (cell_solid(g, i, j, k)) {
          volume += (g.axis[0].node[i + 1] - g.axis[0].node[i]) *
                    (g.axis[1].node[j + 1] - g.axis[1].node[j]) *
                    (g.axis[2].node[k + 1] - g.axis[2].node[k]);
        }
      }
    }
  }
  return volume;
}

// ---- buffered output -------------------------------------------------------------------------

class DeckWriter {
public:
  explicit DeckWriter(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) throw IoError(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  ~DeckWriter() {
    if (file_) std::fclose(file_);
  }
  DeckWriter(const DeckWriter&) = delete;
  DeckWriter& operator=(const DeckWriter&) = delete;

  fmt::memory_buffer& buffer() noexcept { return buffer_; }
  auto out() { return std::back_inserter(buffer_); }
  void maybe_flush() {
    if (buffer_.size() >= kFlushBytes) flush();
  }
  void flush() {
    if (buffer_.size() == 0) return;
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
      throw IoError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
    }
    buffer_.clear();
  }
  void close() {
    flush();
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) throw IoError(fmt::format("{}: close failed: {}", path_, std::strerror(errno)));
  }
  /// Writes ids, at most 10 per line (the format allows 16 fields).
  void id_list(const std::vector<std::int64_t>& ids) {
    for (std::size_t n = 0; n < ids.size(); ++n) {
      fmt::format_to(out(), FMT_COMPILE("{}"), ids[n]);
      buffer_.append(std::string_view((n + 1) % 10 == 0 || n + 1 == ids.size() ? "\n" : ", "));
      maybe_flush();
    }
  }

private:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  std::string path_;
  std::FILE* file_ = nullptr;
  fmt::memory_buffer buffer_;
};

// C3D8/C3D20 node order in (x, y, z) offsets of the doubled grid (CalculiX/Abaqus convention).
constexpr std::array<std::array<int, 3>, 20> kHexNodes{{
    {0, 0, 0}, {2, 0, 0}, {2, 2, 0}, {0, 2, 0}, {0, 0, 2}, {2, 0, 2}, {2, 2, 2}, {0, 2, 2},
    {1, 0, 0}, {2, 1, 0}, {1, 2, 0}, {0, 1, 0}, {1, 0, 2}, {2, 1, 2}, {1, 2, 2}, {0, 1, 2},
    {0, 0, 1}, {2, 0, 1}, {2, 2, 1}, {0, 2, 1},
}};

struct NodeSets {
  std::map<std::string, std::vector<std::int64_t>> by_name;
};

void write_nodes(DeckWriter& w, const BodyGrid& g, NodeSets& sets) {
  const Axis &ax = g.axis[0], &ay = g.axis[1], &az = g.axis[2];
  std::vector<std::vector<std::int64_t>*> selection_lists;
  for (const auto& s : g.spec->selections) selection_lists.push_back(&sets.by_name[s.name]);
  auto& surface = sets.by_name["SURFACE"];
  std::int64_t id = g.first_node;
  for (int I = 0; I < ax.n_node_lines(); ++I) {
    for (int J = 0; J < ay.n_node_lines(); ++J) {
      for (int K = 0; K < az.n_node_lines(); ++K) {
        if (!node_present(g, I, J, K)) continue;
        fmt::format_to(w.out(), FMT_COMPILE("{}, {:.8g}, {:.8g}, {:.8g}\n"), id, ax.node[I],
                       ay.node[J], az.node[K]);
        const std::uint64_t sel = ax.sel_mask[I] & ay.sel_mask[J] & az.sel_mask[K];
        if (sel) {
          for (std::size_t s = 0; s < selection_lists.size(); ++s) {
            if (sel & g.selection_bits[s]) selection_lists[s]->push_back(id);
          }
        }
        if (!node_interior(g, I, J, K)) surface.push_back(id);
        ++id;
        w.maybe_flush();
      }
    }
  }
  if (id != g.first_node + g.n_nodes) throw std::logic_error("genset: node count mismatch");
}

void write_elements(DeckWriter& w, const BodyGrid& g, ElementType type) {
  const int L = g.order;
  const Axis &ax = g.axis[0], &ay = g.axis[1], &az = g.axis[2];
  const int nz = az.n_node_lines();
  fmt::format_to(w.out(), "*ELEMENT, TYPE={}, ELSET={}\n", element_type_name(type), g.spec->name);
  // Ring of node-plane id tables: plane P lives in planes[P % (L + 1)].
  std::vector<std::vector<std::int64_t>> planes(L + 1);
  fill_plane(g, 0, planes[0]);
  std::int64_t id = g.first_element;
  std::array<std::int64_t, 20> n{};
  const int n_nodes = L == 1 ? 8 : 20;
  for (int i = 0; i < ax.n_cells(); ++i) {
    for (int p = 1; p <= L; ++p) fill_plane(g, L * i + p, planes[(L * i + p) % (L + 1)]);
    for (int j = 0; j < ay.n_cells(); ++j) {
      for (int k = 0; k < az.n_cells(); ++k) {
        if (!cell_solid(g, i, j, k)) continue;
        for (int a = 0; a < n_nodes; ++a) {
          const auto& o = kHexNodes[a];
          const int I = L * i + o[0] * L / 2, J = L * j + o[1] * L / 2, K = L * k + o[2] * L / 2;
          n[a] = planes[I % (L + 1)][static_cast<std::size_t>(J) * nz + K];
        }
        if (L == 1) {
          fmt::format_to(w.out(), FMT_COMPILE("{}, {}, {}, {}, {}, {}, {}, {}, {}\n"), id, n[0],
                         n[1], n[2], n[3], n[4], n[5], n[6], n[7]);
        } else {
          // 16 fields per line at most: id and 15 nodes, then the remaining 5.
          fmt::format_to(w.out(),
                         FMT_COMPILE("{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, "
                                     "{},\n{}, {}, {}, {}, {}\n"),
                         id, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9], n[10],
                         n[11], n[12], n[13], n[14], n[15], n[16], n[17], n[18], n[19]);
        }
        ++id;
        w.maybe_flush();
      }
    }
  }
  if (id != g.first_element + g.n_elements) throw std::logic_error("genset: element count mismatch");
}

std::int64_t total_nodes(const std::vector<BodySpec>& bodies, double spacing, int order) {
  std::int64_t n = 2;  // turbocharger and radiator nodes
  for (const auto& b : bodies) n += build_grid(b, spacing, order).n_nodes;
  return n;
}

/// Element size whose node count is closest to `target_nodes` (bisection on the exact count,
/// which does not increase with the size).
double choose_spacing(const std::vector<BodySpec>& bodies, double target_nodes, int order) {
  double volume = 0.0;
  for (const auto& b : bodies) volume += union_volume(b) / std::pow(b.spacing_factor, 3);
  const double per_cell = order == 1 ? 1.0 : 4.0;  // nodes per hexahedron in a large mesh
  const double guess = std::cbrt(volume * per_cell / target_nodes);
  double small = guess / 4, large = guess * 4;  // count(small) >= target >= count(large)
  while (total_nodes(bodies, small, order) < target_nodes) small /= 2;
  while (large < 100.0 && total_nodes(bodies, large, order) > target_nodes) large *= 2;
  for (int it = 0; it < 60 && large / small > 1.0 + 1e-9; ++it) {
    const double mid = std::sqrt(small * large);
    (total_nodes(bodies, mid, order) >= target_nodes ? small : large) = mid;
  }
  const double n_small = static_cast<double>(total_nodes(bodies, small, order));
  const double n_large = static_cast<double>(total_nodes(bodies, large, order));
  return std::abs(n_small - target_nodes) <= std::abs(n_large - target_nodes) ? small : large;
}

struct SpringElement {
  std::int64_t a, b;
};

void write_element_block(DeckWriter& w, std::string_view type, const std::string& elset,
                         std::int64_t& next_id, const std::vector<SpringElement>& pairs,
                         std::vector<std::int64_t>* ids = nullptr) {
  fmt::format_to(w.out(), "*ELEMENT, TYPE={}, ELSET={}\n", type, elset);
  for (const auto& e : pairs) {
    if (e.b < 0) {
      fmt::format_to(w.out(), "{}, {}\n", next_id, e.a);
    } else {
      fmt::format_to(w.out(), "{}, {}, {}\n", next_id, e.a, e.b);
    }
    if (ids) ids->push_back(next_id);
    ++next_id;
  }
}

void write_generated_set(DeckWriter& w, std::string_view kind, const std::string& name,
                         std::int64_t first, std::int64_t last) {
  fmt::format_to(w.out(), "*{}, {}={}, GENERATE\n{}, {}, 1\n", kind, kind, name, first, last);
}

}  // namespace

GensetSummary write_genset(const GensetOptions& options, const std::string& path) {
  constexpr std::int64_t kMinDofs = 10'000, kMaxDofs = 10'000'000;
  if (options.target_dofs < kMinDofs || options.target_dofs > kMaxDofs) {
    throw InputError(fmt::format("genset: {} DOFs requested; the built-in genset is offered "
                                 "from {} to {} DOFs",
                                 options.target_dofs, kMinDofs, kMaxDofs));
  }
  int order = 0;
  if (options.element == ElementType::c3d8) order = 1;
  if (options.element == ElementType::c3d20r) order = 2;
  if (order == 0) {
    throw InputError(fmt::format("genset: element type {} is not offered; use C3D8 or C3D20R",
                                 element_type_name(options.element)));
  }
  if (path.empty()) throw InputError("genset: no output path given");

  const std::vector<BodySpec> bodies = genset_bodies();
  const double spacing =
      choose_spacing(bodies, static_cast<double>(options.target_dofs) / 3.0, order);
  std::vector<BodyGrid> grids;
  std::int64_t next_node = 1, next_element = 1;
  for (const auto& b : bodies) {
    grids.push_back(build_grid(b, spacing, order));
    grids.back().first_node = next_node;
    grids.back().first_element = next_element;
    next_node += grids.back().n_nodes;
    next_element += grids.back().n_elements;
  }
  const BodyGrid &frame = grids[0], &engine = grids[1], &generator = grids[2];
  const std::int64_t turbo_node = next_node++, radiator_node = next_node++;
  const std::int64_t n_nodes = next_node - 1;

  const double frame_mass = union_volume(bodies[0]) * kSteelRho;
  const double engine_rho = kEngineMass / union_volume(bodies[1]);
  const double generator_rho = kGeneratorMass / union_volume(bodies[2]);
  const double total_mass = frame_mass + kEngineMass + kGeneratorMass + kTurboMass +
                            kRadiatorMass + 4 * kAncillaryMass;

  // Springs and masses, all between existing nodes.
  std::vector<SpringElement> mounts;  // (foot node, frame node), engine mounts first
  std::vector<std::int64_t> mount_upper, mount_lower;
  for (const BodyGrid* body : {&engine, &generator}) {
    const auto& xs = body == &engine ? std::vector<double>(kEngineMountX.begin(), kEngineMountX.end())
                                     : std::vector<double>(kGeneratorMountX.begin(), kGeneratorMountX.end());
    for (double x : xs) {
      for (double y : {-kMountY, kMountY}) {
        mounts.push_back({node_at(*body, {x, y, kFootZ}), node_at(frame, {x, y, kFrameTopZ})});
        mount_upper.push_back(mounts.back().a);
        mount_lower.push_back(mounts.back().b);
      }
    }
  }
  std::vector<SpringElement> coupling;
  for (double z : kCouplingZ) {
    for (double y : {-kCouplingY, kCouplingY}) {
      coupling.push_back({node_at(engine, {kEngineRearX, y, z}),
                          node_at(generator, {kGeneratorFrontX, y, z})});
    }
  }
  std::vector<SpringElement> turbo_stays;
  for (double x : {kEngineMountX[1], kEngineMountX[2]}) {
    for (double y : {-kCouplingY, kCouplingY}) {
      turbo_stays.push_back({turbo_node, node_at(engine, {x, y, 2.0})});
    }
  }
  std::vector<SpringElement> radiator_ties;
  for (double y : {-kMountY, kMountY}) {
    radiator_ties.push_back({radiator_node, node_at(frame, {kRadiatorTieX, y, kFrameTopZ})});
  }
  std::vector<SpringElement> ancillaries;
  for (double x : kAncillaryX) {
    for (double y : {-0.6, 0.6}) ancillaries.push_back({node_at(engine, {x, y, kAncillaryZ}), -1});
  }

  const std::string tmp_path = path + ".tmp";
  std::int64_t n_elements = 0;
  try {
    DeckWriter w(tmp_path);
    auto& out = w.buffer();
    fmt::format_to(std::back_inserter(out),
                   "** vsense built-in genset: ~1.5 MW diesel engine-generator set on a welded "
                   "steel base frame\n"
                   "** units: m, kg, s, N, Pa. Axes: x along the crankshaft (front at x = 0), y "
                   "lateral, z up; z = 0 is the foundation.\n"
                   "** element {}, element size {:.4g} m (frame {:.4g} m), {} nodes, {} DOFs\n"
                   "** design masses: frame {:.0f} kg (steel), engine {:.0f} kg, generator {:.0f} "
                   "kg, turbochargers {:.0f} kg, radiator {:.0f} kg, ancillaries {:.0f} kg; total "
                   "{:.0f} kg\n"
                   "** mounts: {} resilient mounts, {:.3g} N/m vertical, {:.3g} N/m shear each\n"
                   "** no *STEP: append the analysis steps you need.\n",
                   element_type_name(options.element), spacing, spacing * kFrameSpacingFactor,
                   n_nodes, 3 * n_nodes, frame_mass, kEngineMass, kGeneratorMass, kTurboMass,
                   kRadiatorMass, 4 * kAncillaryMass, total_mass, mounts.size(), kMountVertical,
                   kMountShear);

    NodeSets sets;
    out.append(std::string_view("*NODE\n"));
    for (const auto& g : grids) write_nodes(w, g, sets);
    fmt::format_to(w.out(), "{}, {:.8g}, {:.8g}, {:.8g}\n", turbo_node, kTurboNode[0],
                   kTurboNode[1], kTurboNode[2]);
    fmt::format_to(w.out(), "{}, {:.8g}, {:.8g}, {:.8g}\n", radiator_node, kRadiatorNode[0],
                   kRadiatorNode[1], kRadiatorNode[2]);

    for (const auto& g : grids) write_elements(w, g, options.element);
    std::int64_t next_id = next_element;
    const std::int64_t first_spring = next_id;
    std::vector<std::int64_t> engine_mounts, generator_mounts;
    const std::size_t n_engine_mounts = 2 * kEngineMountX.size();
    for (const char* dir : {"X", "Y", "Z"}) {
      std::vector<std::int64_t> ids;
      write_element_block(w, "SPRING2", fmt::format("MOUNTS_{}", dir), next_id, mounts, &ids);
      engine_mounts.insert(engine_mounts.end(), ids.begin(), ids.begin() + n_engine_mounts);
      generator_mounts.insert(generator_mounts.end(), ids.begin() + n_engine_mounts, ids.end());
    }
    const std::int64_t last_mount = next_id - 1;
    write_element_block(w, "SPRINGA", "COUPLING", next_id, coupling);
    write_element_block(w, "SPRINGA", "TURBOCHARGER_STAYS", next_id, turbo_stays);
    for (const char* dir : {"X", "Y", "Z"}) {
      write_element_block(w, "SPRING2", fmt::format("RADIATOR_TIES_{}", dir), next_id,
                          radiator_ties);
    }
    const std::int64_t last_spring = next_id - 1;
    write_element_block(w, "MASS", "TURBOCHARGER", next_id, {{turbo_node, -1}});
    write_element_block(w, "MASS", "RADIATOR", next_id, {{radiator_node, -1}});
    write_element_block(w, "MASS", "ANCILLARIES", next_id, ancillaries);
    n_elements = next_id - 1;

    // Sets.
    for (const auto& g : grids) {
      write_generated_set(w, "NSET", g.spec->name, g.first_node, g.first_node + g.n_nodes - 1);
    }
    write_generated_set(w, "ELSET", "SOLIDS", 1, next_element - 1);
    write_generated_set(w, "ELSET", "MOUNTS", first_spring, last_mount);
    write_generated_set(w, "ELSET", "SPRINGS", first_spring, last_spring);
    write_generated_set(w, "ELSET", "POINT_MASSES", last_spring + 1, n_elements);
    out.append(std::string_view("*ELSET, ELSET=ENGINE_MOUNTS\n"));
    w.id_list(engine_mounts);
    out.append(std::string_view("*ELSET, ELSET=GENERATOR_MOUNTS\n"));
    w.id_list(generator_mounts);
    sets.by_name["MOUNT_UPPER"] = mount_upper;
    sets.by_name["MOUNT_LOWER"] = mount_lower;
    sets.by_name["EQUIPMENT"] = {turbo_node, radiator_node};
    for (auto& [name, ids] : sets.by_name) {
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      fmt::format_to(w.out(), "*NSET, NSET={}\n", name);
      w.id_list(ids);
    }

    // Materials and properties. Numbers always carry a decimal point: CalculiX tells the DOF
    // line of *SPRING from the stiffness line by it.
    fmt::format_to(w.out(),
                   "*MATERIAL, NAME=STEEL\n*ELASTIC\n{:#.7g}, {:#.7g}\n*DENSITY\n{:#.7g}\n"
                   "** engine: cast-iron moduli, smeared density for {:.0f} kg on the block "
                   "geometry\n"
                   "*MATERIAL, NAME=ENGINE_IRON\n*ELASTIC\n{:#.7g}, {:#.7g}\n*DENSITY\n{:#.10g}\n"
                   "** generator: effective solid for stator, windings and rotor, {:.0f} kg\n"
                   "*MATERIAL, NAME=GENERATOR_EFFECTIVE\n*ELASTIC\n{:#.7g}, {:#.7g}\n*DENSITY\n"
                   "{:#.10g}\n",
                   kSteelE, kSteelNu, kSteelRho, kEngineMass, kEngineE, kEngineNu, engine_rho,
                   kGeneratorMass, kGeneratorE, kGeneratorNu, generator_rho);
    for (const auto& b : bodies) {
      fmt::format_to(w.out(), "*SOLID SECTION, ELSET={}, MATERIAL={}\n", b.name, b.material);
    }
    fmt::format_to(w.out(),
                   "** resilient mounts: DOF 1-1, 2-2, 3-3 between foot and frame\n"
                   "*SPRING, ELSET=MOUNTS_X\n1, 1\n{:#.7g}\n"
                   "*SPRING, ELSET=MOUNTS_Y\n2, 2\n{:#.7g}\n"
                   "*SPRING, ELSET=MOUNTS_Z\n3, 3\n{:#.7g}\n"
                   "** flexible coupling (axial) and turbocharger stays: axial springs\n"
                   "*SPRING, ELSET=COUPLING\n\n{:#.7g}\n"
                   "*SPRING, ELSET=TURBOCHARGER_STAYS\n\n{:#.7g}\n"
                   "*SPRING, ELSET=RADIATOR_TIES_X\n1, 1\n{:#.7g}\n"
                   "*SPRING, ELSET=RADIATOR_TIES_Y\n2, 2\n{:#.7g}\n"
                   "*SPRING, ELSET=RADIATOR_TIES_Z\n3, 3\n{:#.7g}\n"
                   "*MASS, ELSET=TURBOCHARGER\n{:#.7g}\n"
                   "*MASS, ELSET=RADIATOR\n{:#.7g}\n"
                   "*MASS, ELSET=ANCILLARIES\n{:#.7g}\n"
                   "** anchor bolts: rail undersides below the cross members\n"
                   "*BOUNDARY\nFIXED, 1, 3\n",
                   kMountShear, kMountShear, kMountVertical, kCouplingAxial, kTurboStay,
                   kRadiatorTie[0], kRadiatorTie[1], kRadiatorTie[2], kTurboMass, kRadiatorMass,
                   kAncillaryMass);
    w.close();
    std::error_code ec;
    std::filesystem::rename(tmp_path, path, ec);
    if (ec) throw IoError(fmt::format("{}: cannot rename to {}: {}", tmp_path, path, ec.message()));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp_path, ec);
    throw;
  }

  GensetSummary summary;
  summary.n_nodes = n_nodes;
  summary.n_elements = n_elements;
  summary.n_dofs = 3 * n_nodes;
  return summary;
}

}  // namespace vsense::model
