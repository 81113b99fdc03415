#pragma once
/// @file genset.hpp
/// @brief The built-in parametric engine-generator set, written as plain `.inp`.
#include <cstdint>
#include <string>

#include "vsense/model/model.hpp"

namespace vsense::model {

struct GensetOptions {
  std::int64_t target_dofs = 100000;  ///< approximate number of DOFs wanted (1e4 .. 1e7)
  ElementType element = ElementType::c3d8;  ///< solid element used for the meshed bodies
};

struct GensetSummary {
  std::int64_t n_nodes = 0;
  std::int64_t n_elements = 0;
  std::int64_t n_dofs = 0;  ///< 3 * nodes used by elements
};

/// @brief Writes the genset model to `path` (atomically: temporary file, then rename).
/// Time and memory are linear in the number of DOFs (the mesh is streamed out).
/// Units are SI (m, kg, s, N, Pa).
/// @throws InputError for an out-of-range request, IoError when the file can't be written.
GensetSummary write_genset(const GensetOptions& options, const std::string& path);

}  // namespace vsense::model
