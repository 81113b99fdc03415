#pragma once
/// @file matrix_market.hpp
/// @brief Matrix Market export of the assembled matrices, so other tools can solve them too.
#include <string>

#include "vsense/model/assembly.hpp"

namespace vsense::io {

/// @brief Writes a symmetric matrix stored as its lower triangle in Matrix Market
/// `coordinate real symmetric` format (1-based), atomically.
void write_matrix_market(const std::string& path, const model::SparseMatrix& lower);

}  // namespace vsense::io
