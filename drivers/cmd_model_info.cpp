// `vsense model info MODEL.inp [--json]`: what a deck holds, as vsense reads it: nodes,
// elements by type, free equations, nonzeros of K, mass and centre of mass, bounding box, sets.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"

namespace vsense::drivers {

namespace {

struct InfoOptions {
  std::string model;
  bool no_matrix = false;
  int max_sets = 40;
};

/// Everything the command reports, gathered once and printed as text or JSON.
struct ModelInfo {
  std::string path;
  std::size_t n_nodes = 0, n_elements = 0;
  std::vector<std::pair<std::string, std::size_t>> type_counts;
  std::int64_t n_equations = 0;
  std::size_t n_fixed_dofs = 0;
  std::size_t n_unused_nodes = 0;  // nodes of no element: they carry no equation
  std::optional<std::int64_t> stiffness_nonzeros;
  double total_mass = 0.0;
  std::optional<std::array<double, 3>> centre_of_mass;
  std::optional<std::array<double, 3>> box_min, box_max;
  std::vector<model::Material> materials;
  std::vector<std::pair<std::string, std::size_t>> node_sets, element_sets;
  double read_s = 0.0, assemble_s = 0.0, total_s = 0.0;
  long long peak_memory_bytes = 0;
};

ModelInfo gather(const InfoOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ModelInfo info;
  info.path = options.model;
  const model::Model m = model::read_inp(options.model);
  info.read_s = seconds_since(start);

  info.n_nodes = m.n_nodes();
  info.n_elements = m.n_elements();
  constexpr std::array all_types{model::ElementType::c3d4,    model::ElementType::c3d10,
                                 model::ElementType::c3d8,    model::ElementType::c3d8r,
                                 model::ElementType::c3d20,   model::ElementType::c3d20r,
                                 model::ElementType::mass,    model::ElementType::spring1,
                                 model::ElementType::spring2, model::ElementType::springa};
  std::array<std::size_t, all_types.size()> counts{};
  for (const auto type : m.element_types) ++counts[static_cast<std::size_t>(type)];
  for (const auto type : all_types) {
    const std::size_t n = counts[static_cast<std::size_t>(type)];
    if (n > 0) info.type_counts.emplace_back(std::string(model::element_type_name(type)), n);
  }

  std::vector<char> used(m.n_nodes(), 0);
  for (const auto node : m.element_nodes) used[static_cast<std::size_t>(node)] = 1;
  info.n_unused_nodes = static_cast<std::size_t>(std::count(used.begin(), used.end(), 0));
  info.n_fixed_dofs = m.fixed_dofs.size();

  if (m.n_nodes() > 0) {
    std::array<double, 3> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (const auto& x : m.coordinates) {
      for (int d = 0; d < 3; ++d) {
        lo[d] = std::min(lo[d], x[d]);
        hi[d] = std::max(hi[d], x[d]);
      }
    }
    info.box_min = lo;
    info.box_max = hi;
  }

  const model::MassProperties mass = model::mass_properties(m);
  info.total_mass = mass.total_mass;
  if (mass.total_mass > 0.0) info.centre_of_mass = mass.centre_of_mass;

  const model::DofMap dofs = model::build_dof_map(m);
  info.n_equations = dofs.n_equations;
  if (!options.no_matrix) {
    const auto assemble_start = std::chrono::steady_clock::now();
    const model::SystemMatrices system = model::assemble(m, dofs);
    info.stiffness_nonzeros = static_cast<std::int64_t>(system.stiffness.nonZeros());
    info.assemble_s = seconds_since(assemble_start);
  }

  info.materials = m.materials;
  for (const auto& [name, members] : m.node_sets) info.node_sets.emplace_back(name, members.size());
  for (const auto& [name, members] : m.element_sets) {
    info.element_sets.emplace_back(name, members.size());
  }
  info.total_s = seconds_since(start);
  info.peak_memory_bytes = peak_memory_bytes();
  return info;
}

// ---- JSON ----

std::string json_number(double value) {
  return std::isfinite(value) ? fmt::format("{:.17g}", value) : std::string("null");
}
std::string json_number(const std::optional<double>& value) {
  return value ? json_number(*value) : std::string("null");
}
std::string json_vector(const std::optional<std::array<double, 3>>& v) {
  if (!v) return "null";
  return fmt::format("[{},{},{}]", json_number((*v)[0]), json_number((*v)[1]),
                     json_number((*v)[2]));
}
std::string json_counts(const std::vector<std::pair<std::string, std::size_t>>& counts) {
  std::string out = "{";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (i) out += ',';
    out += fmt::format("\"{}\":{}", json_escape(counts[i].first), counts[i].second);
  }
  return out + "}";
}

std::string to_json(const ModelInfo& info) {
  std::string materials = "[";
  for (std::size_t i = 0; i < info.materials.size(); ++i) {
    const auto& mat = info.materials[i];
    if (i) materials += ',';
    materials += fmt::format(
        R"({{"name":"{}","young_modulus":{},"poisson_ratio":{},"density":{}}})",
        json_escape(mat.name), json_number(mat.young_modulus), json_number(mat.poisson_ratio),
        json_number(mat.density));
  }
  materials += "]";
  return fmt::format(
      R"({{"command":"model info","model":"{}","n_nodes":{},"n_elements":{},)"
      R"("elements_by_type":{},"n_equations":{},"n_fixed_dofs":{},"n_unused_nodes":{},)"
      R"("stiffness_nonzeros":{},"total_mass":{},"centre_of_mass":{},)"
      R"("bounding_box":{{"min":{},"max":{}}},"materials":{},"node_sets":{},"element_sets":{},)"
      R"("timings_s":{{"read":{:.3f},"assemble":{:.3f},"total":{:.3f}}},"peak_memory_bytes":{}}})",
      json_escape(info.path), info.n_nodes, info.n_elements, json_counts(info.type_counts),
      info.n_equations, info.n_fixed_dofs, info.n_unused_nodes,
      info.stiffness_nonzeros ? std::to_string(*info.stiffness_nonzeros) : std::string("null"),
      json_number(info.total_mass), json_vector(info.centre_of_mass), json_vector(info.box_min),
      json_vector(info.box_max), materials, json_counts(info.node_sets),
      json_counts(info.element_sets), info.read_s, info.assemble_s, info.total_s,
      info.peak_memory_bytes);
}

// ---- text ----

std::string text_vector(const std::array<double, 3>& v) {
  return fmt::format("({:.6g}, {:.6g}, {:.6g})", v[0], v[1], v[2]);
}

std::string text_optional(const std::optional<double>& v) {
  return v ? fmt::format("{:.6g}", *v) : std::string("-");
}

void print_sets(std::string& out, const char* title,
                const std::vector<std::pair<std::string, std::size_t>>& sets, int max_sets) {
  out += fmt::format("{:<16}{}\n", title, sets.size());
  const std::size_t shown = std::min(sets.size(), static_cast<std::size_t>(std::max(max_sets, 0)));
  for (std::size_t i = 0; i < shown; ++i) {
    out += fmt::format("  {:<26} {:>10}\n", sets[i].first, sets[i].second);
  }
  if (shown < sets.size()) {
    out += fmt::format("  ... {} more (--max-sets, or --json for all)\n", sets.size() - shown);
  }
}

std::string to_text(const ModelInfo& info, int max_sets) {
  std::string out;
  out += fmt::format("{:<16}{}\n", "model", info.path);
  out += fmt::format("{:<16}{}", "nodes", info.n_nodes);
  if (info.n_unused_nodes > 0) {
    out += fmt::format("  ({} in no element, without equations)", info.n_unused_nodes);
  }
  out += '\n';
  out += fmt::format("{:<16}{}\n", "elements", info.n_elements);
  for (const auto& [type, n] : info.type_counts) out += fmt::format("  {:<26} {:>10}\n", type, n);
  out += fmt::format("{:<16}{} free equations ({} DOFs fixed by *BOUNDARY)\n", "DOFs",
                     info.n_equations, info.n_fixed_dofs);
  out += fmt::format("{:<16}{}\n", "K nonzeros",
                     info.stiffness_nonzeros
                         ? fmt::format("{} (lower triangle with diagonal)", *info.stiffness_nonzeros)
                         : std::string("not computed (--no-matrix)"));
  out += fmt::format("{:<16}{:.6g} (model units)\n", "total mass", info.total_mass);
  out += fmt::format("{:<16}{}\n", "centre of mass",
                     info.centre_of_mass ? text_vector(*info.centre_of_mass) : std::string("-"));
  if (info.box_min) {
    out += fmt::format("{:<16}{} .. {}\n", "bounding box", text_vector(*info.box_min),
                       text_vector(*info.box_max));
  }
  out += fmt::format("{:<16}{}\n", "materials", info.materials.size());
  for (const auto& mat : info.materials) {
    out += fmt::format("  {:<26} E {}, nu {}, density {}\n", mat.name,
                       text_optional(mat.young_modulus), text_optional(mat.poisson_ratio),
                       text_optional(mat.density));
  }
  print_sets(out, "node sets", info.node_sets, max_sets);
  print_sets(out, "element sets", info.element_sets, max_sets);
  out += fmt::format("{:<16}read {:.2f} s, assembly {:.2f} s, peak memory {:.0f} MB\n", "time",
                     info.read_s, info.assemble_s,
                     static_cast<double>(info.peak_memory_bytes) / (1024.0 * 1024.0));
  return out;
}

}  // namespace

void register_model_info(CLI::App& model, CommonOptions& common) {
  auto options = std::make_shared<InfoOptions>();
  auto* cmd = model.add_subcommand(
      "info",
      "Read an .inp model and summarise it as vsense sees it: nodes, elements by type, free\n"
      "equations (DOFs left after *BOUNDARY), nonzeros of K, total mass and centre of mass,\n"
      "bounding box, materials, node and element sets with their sizes.\n"
      "Use it to check a deck before a long run: every input error is reported with file:line.");
  cmd->footer(
      "\nMasses and lengths are in the units the .inp is written in. K nonzeros count the\n"
      "lower triangle with the diagonal (what the solver stores); --no-matrix skips the\n"
      "assembly, which for 1e7-DOF models takes minutes and several GB.\n\n"
      "Examples:\n"
      "  vsense model info genset.inp\n"
      "  vsense model info genset.inp --json --no-matrix");
  cmd->add_option("model", options->model, "Model file (.inp, Abaqus/CalculiX syntax)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-matrix", options->no_matrix,
                "Skip assembling K (faster; stiffness_nonzeros is then null)");
  cmd->add_option("--max-sets", options->max_sets, "Sets listed per kind in the text output")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->fallthrough();
  cmd->callback([options, &common] {
    const ModelInfo info = gather(*options);
    if (common.json) {
      std::cout << to_json(info) << "\n";
    } else {
      std::cout << to_text(info, options->max_sets);
    }
  });
}

}  // namespace vsense::drivers
