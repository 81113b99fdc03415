#pragma once
/// @file ccx_parse_local.hpp
/// @brief Minimal readers for what the element tests need from CalculiX: the eigenvalues of a
/// *FREQUENCY step (.dat) and the nodal DISP and STRESS blocks of each mode (.frd, ASCII).
/// Local to tests/model/elements_test.cpp; the shared harness lives in tests/common.
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace vsense::test::ccx_local {

/// Eigenvalues (omega^2, rad^2/time^2) in mode order from the "E I G E N V A L U E   O U T P U T"
/// table of a .dat file (CalculiX prints them with 8 significant digits).
inline std::vector<double> read_dat_eigenvalues(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<double> eigenvalues;
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.find("E I G E N V A L U E   O U T P U T") != std::string::npos) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.find("P A R T I C I P A T I O N") != std::string::npos) break;
    std::istringstream fields(line);
    long mode = 0;
    double eigenvalue = 0.0;
    if (fields >> mode >> eigenvalue) {
      if (mode != static_cast<long>(eigenvalues.size()) + 1) {
        throw std::runtime_error(path + ": eigenvalue table out of order at mode " +
                                 std::to_string(mode));
      }
      eigenvalues.push_back(eigenvalue);
    }
  }
  return eigenvalues;
}

/// One nodal result block of a .frd file: node id -> its values.
using FrdBlock = std::map<std::int64_t, std::vector<double>>;

/// The DISP and STRESS blocks of a .frd file, each in file (= mode) order.
struct FrdResults {
  std::vector<FrdBlock> displacement;  ///< per mode: node -> [ux, uy, uz]
  std::vector<FrdBlock> stress;        ///< per mode: node -> [xx, yy, zz, xy, yz, zx]
};

/// Reads the ASCII .frd layout: a block starts with " -4  NAME", its data records are
/// " -1" + node id (I10) + values (E12.5 each), and it ends with " -3".
inline FrdResults read_frd(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  FrdResults results;
  FrdBlock* block = nullptr;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(" -4", 0) == 0) {
      std::istringstream fields(line.substr(3));
      std::string name;
      fields >> name;
      if (name == "DISP") {
        results.displacement.emplace_back();
        block = &results.displacement.back();
      } else if (name == "STRESS") {
        results.stress.emplace_back();
        block = &results.stress.back();
      } else {
        block = nullptr;
      }
    } else if (line.rfind(" -3", 0) == 0) {
      block = nullptr;
    } else if (block && line.rfind(" -1", 0) == 0) {
      const std::int64_t node = std::stoll(line.substr(3, 10));
      std::vector<double> values;
      for (std::size_t pos = 13; pos + 12 <= line.size(); pos += 12) {
        values.push_back(std::stod(line.substr(pos, 12)));
      }
      (*block)[node] = std::move(values);
    }
  }
  return results;
}

}  // namespace vsense::test::ccx_local
