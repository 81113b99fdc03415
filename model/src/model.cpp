#include "vsense/model/model.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "vsense/kernels/errors.hpp"

namespace vsense::model {

namespace {
struct TypeInfo {
  ElementType type;
  std::string_view name;
  int n_nodes;
};
constexpr std::array<TypeInfo, 10> type_table{{
    {ElementType::c3d4, "C3D4", 4},
    {ElementType::c3d10, "C3D10", 10},
    {ElementType::c3d8, "C3D8", 8},
    {ElementType::c3d8r, "C3D8R", 8},
    {ElementType::c3d20, "C3D20", 20},
    {ElementType::c3d20r, "C3D20R", 20},
    {ElementType::mass, "MASS", 1},
    {ElementType::spring1, "SPRING1", 1},
    {ElementType::spring2, "SPRING2", 2},
    {ElementType::springa, "SPRINGA", 2},
}};
const TypeInfo& info(ElementType type) noexcept {
  return type_table[static_cast<std::size_t>(type)];
}
}  // namespace

int nodes_per_element(ElementType type) noexcept { return info(type).n_nodes; }
std::string_view element_type_name(ElementType type) noexcept { return info(type).name; }

std::optional<ElementType> parse_element_type(std::string_view name) noexcept {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (const auto& entry : type_table) {
    if (entry.name == upper) return entry.type;
  }
  return std::nullopt;
}

bool is_solid(ElementType type) noexcept {
  switch (type) {
    case ElementType::c3d4:
    case ElementType::c3d10:
    case ElementType::c3d8:
    case ElementType::c3d8r:
    case ElementType::c3d20:
    case ElementType::c3d20r:
      return true;
    default:
      return false;
  }
}

const Material* Model::find_material(std::string_view upper_name) const noexcept {
  for (const auto& m : materials) {
    if (m.name == upper_name) return &m;
  }
  return nullptr;
}

const Material& Model::material_of(std::size_t e) const {
  const auto s = element_section.at(e);
  if (s < 0 || sections[s].kind != Section::Kind::solid) {
    throw InputError("element " + std::to_string(element_ids[e]) + " has no solid section");
  }
  const Material* m = find_material(sections[s].material);
  if (!m) throw InputError("material " + sections[s].material + " is not defined");
  return *m;
}

}  // namespace vsense::model
