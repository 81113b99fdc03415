#pragma once
/// @file sha256.hpp
/// @brief Content hashes recorded in outputs (`source_sha256`).
#include <string>
#include <vector>

namespace vsense::io {

/// Hex SHA-256 of a file's bytes. @throws IoError if unreadable.
std::string sha256_file(const std::string& path);
/// Hex SHA-256 of several files taken together (in the order given).
std::string sha256_files(const std::vector<std::string>& paths);
/// Hex SHA-256 of a string's bytes (fingerprints of settings).
std::string sha256_text(const std::string& text);

}  // namespace vsense::io
