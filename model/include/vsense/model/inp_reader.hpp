#pragma once
/// @file inp_reader.hpp
/// @brief Reader for the Abaqus/CalculiX `.inp` keyword format (contract section 1).
#include <string>

#include "vsense/model/model.hpp"

namespace vsense::model {

/// @brief Reads a model, following *INCLUDE files (relative to the including file).
///
/// Step data (*STEP ... *END STEP) and output requests are skipped silently; any other
/// keyword vsense does not know is reported once per keyword as a warning with file:line.
/// Sections are resolved: every element has a section, every solid section a material with
/// E, nu and density.
/// @throws InputError with "file:line: reason" for malformed lines, unknown element types,
///         undefined nodes/sets, missing materials or sections; IoError if a file can't be read.
Model read_inp(const std::string& path);

}  // namespace vsense::model
