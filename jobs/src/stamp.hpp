#pragma once
// Internal to vsense_jobs: the stage key recorded in outputs, and hashes of text.
#include <string>
#include <vector>

namespace vsense::jobs::detail {

/// The root attribute (HDF5) / trailing comment key (text) holding a stage's key.
inline constexpr const char* stage_key_attribute = "job_stage_sha256";

/// Hex SHA-256 of a string.
std::string sha256_text(const std::string& text);

/// @brief Records `key` of stage `stage` in an output, and `record` (what the run of the stage
/// was: "seconds=...;peak_memory_bytes=...;backend=...;finished_at=..."): HDF5 files (.h5) get
/// the root attributes job_stage_sha256, job_stage and job_stage_record; .inp, .xdmf, .html and
/// .md files a trailing comment; other files (CSV, PNG) nothing (stamped() says whether a file
/// can carry a key). @throws IoError when the file cannot be updated.
void stamp(const std::string& path, const std::string& stage, const std::string& key,
           const std::string& record);

/// True when files of this name carry a key (see stamp).
bool stamped(const std::string& path);

/// The key recorded in an output ("" when the file is missing, unreadable or carries none).
std::string read_stamp(const std::string& path);

/// The run record of an output's stage ("" when there is none).
std::string read_record(const std::string& path);

}  // namespace vsense::jobs::detail
