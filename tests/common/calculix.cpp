#include "common/calculix.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>
#include <stdexcept>

#include "common/test_support.hpp"

namespace vsense::test::calculix {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

/// Fixed-width field [begin, begin+width) of a line, trimmed ("" when the line is shorter).
std::string field(const std::string& line, std::size_t begin, std::size_t width) {
  if (begin >= line.size()) return {};
  return trim(std::string_view(line).substr(begin, width));
}

bool parse_double(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

bool parse_int(const std::string& text, long long& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtoll(text.c_str(), &end, 10);
  return end == text.c_str() + text.size();
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string token;
  while (in >> token) out.push_back(token);
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

/// The lines of ccx's output that report errors, for exception messages.
std::string error_lines(const std::string& log) {
  std::istringstream in(log);
  std::string line, out;
  int following = 0;
  while (std::getline(in, line)) {
    if (line.find("*ERROR") != std::string::npos) following = 4;
    if (following > 0) {
      out += line + "\n";
      --following;
    }
  }
  return out;
}

}  // namespace

std::string executable() {
  const char* env = std::getenv("VSENSE_CCX");
  return (env && *env) ? std::string(env) : std::string("ccx");
}

bool available() {
  static const bool found = [] {
    const std::string exe = executable();
    if (exe.find('/') != std::string::npos) return ::access(exe.c_str(), X_OK) == 0;
    return run_command("command -v " + shell_quote(exe)).exit_code == 0;
  }();
  return found;
}

std::string unavailable_message() {
  return fmt::format(
      "CalculiX (ccx) not found: looked for '{}' (set VSENSE_CCX to the ccx executable, or "
      "install CalculiX 2.20, e.g. the Debian package calculix-ccx)",
      executable());
}

// ---- parsers ---------------------------------------------------------------------------------

std::vector<FrdBlock> parse_frd(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}'", path));
  std::vector<FrdBlock> blocks;
  std::string line;
  int line_no = 0;
  int step_index = 0;
  // The header of the result block being read: set by PSTEP / 100C, used at -4.
  FrdBlock header;
  bool long_format = true;
  bool in_results = false;  // between a -4 record and its -3
  FrdBlock current;
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error(fmt::format("{}:{}: {}: '{}'", path, line_no, why, line));
  };
  const auto read_values = [&](std::size_t start, std::vector<double>& values) {
    int count = 0;
    for (std::size_t pos = start; pos + 12 <= line.size() + 0; pos += 12) {
      double v = 0;
      if (!parse_double(field(line, pos, 12), v)) fail("bad value");
      values.push_back(v);
      ++count;
    }
    return count;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() < 3) continue;
    if (!in_results) {
      if (line.compare(0, 10, "    1PSTEP") == 0) {
        const auto tokens = split_ws(line.substr(10));
        long long v = 0;
        if (tokens.empty() || !parse_int(tokens[0], v)) fail("bad PSTEP record");
        step_index = static_cast<int>(v);
        continue;
      }
      if (line.compare(0, 6, "  100C") == 0) {
        // (1X,' 100','C',6A1,E12.5,I12,20A1,I2,I5,10A1,I2)
        header = FrdBlock{};
        header.step_index = step_index;
        double value = 0;
        long long mode = 0, format = 1;
        if (!parse_double(field(line, 12, 12), value)) fail("bad 100C value");
        header.value = value;
        if (!parse_int(field(line, 58, 5), mode)) mode = 0;
        header.mode = static_cast<int>(mode);
        header.analysis = field(line, 63, 10);
        if (!parse_int(field(line, 73, 2), format)) format = 1;
        if (format == 2) fail("binary .frd results are not supported (use ASCII output)");
        long_format = format == 1;
        continue;
      }
      if (line.compare(0, 3, " -4") == 0) {
        current = header;
        current.name = field(line, 5, 8);
        current.n_components = 0;
        in_results = true;
        continue;
      }
      continue;  // node/element definitions, user headers, 9999
    }
    // inside a result block
    const std::string key = line.substr(0, 3);
    const std::size_t node_width = long_format ? 10 : 5;
    if (key == " -5") continue;
    if (key == " -1") {
      long long node = 0;
      if (!parse_int(field(line, 3, node_width), node)) fail("bad node number");
      current.node_ids.push_back(node);
      const int count = read_values(3 + node_width, current.values);
      if (current.node_ids.size() == 1) {
        current.n_components = count;
      } else if (count != current.n_components) {
        // a record continued on -2 lines counts the same in the end; checked at -3
      }
    } else if (key == " -2") {
      if (current.node_ids.empty()) fail("-2 record before any -1 record");
      const int count = read_values(3 + node_width, current.values);
      if (current.node_ids.size() == 1) current.n_components += count;
    } else if (key == " -3") {
      if (current.n_components > 0 &&
          current.values.size() != current.node_ids.size() * current.n_components) {
        fail(fmt::format("block {} has {} values for {} nodes x {} components", current.name,
                         current.values.size(), current.node_ids.size(),
                         current.n_components));
      }
      blocks.push_back(std::move(current));
      current = FrdBlock{};
      in_results = false;
    } else {
      fail("unexpected record in a result block");
    }
  }
  if (in_results) throw std::runtime_error(fmt::format("{}: truncated result block", path));
  return blocks;
}

std::vector<DatEigenvalue> parse_dat_eigenvalues(const std::string& dat_text) {
  const std::string marker = "E I G E N V A L U E   O U T P U T";
  const auto at = dat_text.rfind(marker);
  std::vector<DatEigenvalue> rows;
  if (at == std::string::npos) return rows;
  std::istringstream in(dat_text.substr(at + marker.size()));
  std::string line;
  bool started = false;
  while (std::getline(in, line)) {
    const auto tokens = split_ws(line);
    DatEigenvalue row;
    long long mode = 0;
    const bool numeric = tokens.size() == 5 && parse_int(tokens[0], mode) &&
                         parse_double(tokens[1], row.eigenvalue) &&
                         parse_double(tokens[2], row.omega) &&
                         parse_double(tokens[3], row.frequency_hz) &&
                         parse_double(tokens[4], row.omega_imaginary);
    if (numeric) {
      row.mode = static_cast<int>(mode);
      rows.push_back(row);
      started = true;
    } else if (started) {
      break;
    }
  }
  return rows;
}

std::vector<DatSetMass> parse_dat_masses(const std::string& dat_text) {
  // " total mass for set EALL and time  0.1000000E+01\n\n        3.925000E+03"
  // " center of gravity for set EALL and time  0.1000000E+01\n\n   x  y  z"
  std::vector<DatSetMass> out;
  std::istringstream in(dat_text);
  std::string line;
  const auto next_data_line = [&]() {
    std::string data;
    while (std::getline(in, data)) {
      if (!trim(data).empty()) return data;
    }
    return std::string();
  };
  const auto set_name = [](const std::string& l) {
    const auto tokens = split_ws(l);
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i)
      if (tokens[i] == "set") return tokens[i + 1];
    return std::string();
  };
  while (std::getline(in, line)) {
    const auto text = trim(line);
    if (text.rfind("total mass for set", 0) == 0) {
      DatSetMass entry;
      entry.elset = set_name(text);
      const auto tokens = split_ws(next_data_line());
      if (tokens.empty() || !parse_double(tokens[0], entry.mass))
        throw std::runtime_error("ccx .dat: unreadable total mass of set " + entry.elset);
      out.push_back(entry);
    } else if (text.rfind("center of gravity for set", 0) == 0) {
      const std::string name = set_name(text);
      const auto tokens = split_ws(next_data_line());
      auto it = std::find_if(out.rbegin(), out.rend(),
                             [&](const DatSetMass& m) { return m.elset == name; });
      if (it == out.rend() || tokens.size() != 3)
        throw std::runtime_error("ccx .dat: centre of gravity of set " + name +
                                 " without its mass, or not 3 values");
      for (int d = 0; d < 3; ++d) {
        // NaN is printed for an empty set (mass 0); keep it, the caller decides
        if (!parse_double(tokens[d], it->centre[d])) it->centre[d] = std::nan("");
      }
    }
  }
  return out;
}

std::optional<std::vector<double>> read_eig_eigenvalues(const std::string& path) {
  // ccx 2.20, arpack.c with STORAGE=YES: int cyclic flag (0), int Hermitian flag (1), one more
  // int, int nev, then nev doubles (the eigenvalues omega^2), then K, M and the eigenvectors.
  // ITG is a 4-byte int in the Debian build. Anything else: not understood, return nullopt.
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::int32_t header[4] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (!in || header[0] != 0 || header[1] != 1 || header[3] <= 0 || header[3] > 1000000)
    return std::nullopt;
  std::vector<double> values(static_cast<std::size_t>(header[3]));
  in.read(reinterpret_cast<char*>(values.data()),
          static_cast<std::streamsize>(values.size() * sizeof(double)));
  if (!in) return std::nullopt;
  return values;
}

std::vector<std::string> solid_section_elsets(const std::string& inp_path) {
  std::ifstream in(inp_path);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}'", inp_path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const std::string u = upper(trim(line));
    if (u.rfind("**", 0) == 0 || u.rfind("*SOLID SECTION", 0) != 0) continue;
    std::string compact;
    for (char c : u)
      if (c != ' ' && c != '\t') compact += c;
    const auto at = compact.find(",ELSET=");
    if (at == std::string::npos) continue;
    const auto begin = at + 7;
    const auto end = compact.find(',', begin);
    out.push_back(compact.substr(begin, end == std::string::npos ? end : end - begin));
  }
  return out;
}

// ---- the run ---------------------------------------------------------------------------------

namespace {

struct Attempt {
  CommandResult command;
  double wall_s = 0;
  bool timed_out = false;
};

Attempt run_ccx(const ScratchDir& dir, const std::string& job, double time_limit_s) {
  // One thread: the test machines are shared, and ccx's results don't depend on it.
  const std::string command = fmt::format(
      "cd {} && OMP_NUM_THREADS=1 CCX_NPROC_STIFFNESS=1 CCX_NPROC_EQUATION_SOLVER=1 "
      "CCX_NPROC_RESULTS=1 timeout -k 5 {} {} -i {} 2>&1",
      shell_quote(dir.path().string()), static_cast<long long>(std::ceil(time_limit_s)),
      shell_quote(executable()), job);
  const auto start = std::chrono::steady_clock::now();
  Attempt attempt;
  attempt.command = run_command(command);
  attempt.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  attempt.timed_out = attempt.command.exit_code == 124 || attempt.command.exit_code == 137;
  return attempt;
}

std::string write_deck(const ScratchDir& dir, const std::string& model, int nev,
                       const Options& options, const std::vector<std::string>& elsets) {
  std::string include = model;
  // ccx reads at most 132 characters per card: fall back to a link in the scratch directory.
  if (include.size() + 20 > 132) {
    std::filesystem::create_symlink(model, dir.path() / "model.inp");
    include = "model.inp";
  }
  std::ofstream out(dir.file("job.inp"));
  out << "** vsense test harness: modes of the included model\n";
  out << "*INCLUDE, INPUT=" << include << "\n";
  out << "*STEP\n*FREQUENCY, STORAGE=YES\n" << nev << "\n";
  out << "*NODE FILE\nU\n";
  if (options.nodal_stress) out << "*EL FILE\nS\n";
  out << "*END STEP\n";
  if (options.mass && !elsets.empty()) {
    // A static step with no load only to have ccx print the mass of each element set.
    out << "*STEP\n*STATIC\n";
    for (const auto& elset : elsets) out << "*EL PRINT, ELSET=" << elset << ", TOTALS=ONLY\nEMAS\n";
    out << "*END STEP\n";
  }
  if (!out) throw std::runtime_error("cannot write the ccx deck in " + dir.path().string());
  return "job";
}

}  // namespace

Result run_frequency(const std::string& model_inp, const Options& options) {
  if (!available()) throw std::runtime_error(unavailable_message());
  if (options.n_modes <= 0) throw std::runtime_error("calculix::run_frequency: n_modes <= 0");
  const std::string model = std::filesystem::absolute(model_inp).lexically_normal().string();
  if (!std::filesystem::exists(model))
    throw std::runtime_error(fmt::format("model '{}' does not exist", model));
  const std::vector<std::string> elsets =
      options.mass_elsets.empty() ? solid_section_elsets(model) : options.mass_elsets;

  Result result;
  int nev = std::max(2 * options.n_modes, options.n_modes + std::max(options.extra_modes, 0));
  ScratchDir dir("ccx");
  Attempt attempt;
  for (int tries = 0;; ++tries) {
    const std::string job = write_deck(dir, model, nev, options, elsets);
    attempt = run_ccx(dir, job, options.time_limit_s);
    result.wall_s += attempt.wall_s;
    if (attempt.timed_out) {
      throw std::runtime_error(fmt::format("ccx on '{}' exceeded the time limit of {} s", model,
                                           options.time_limit_s));
    }
    const std::string& log = attempt.command.out;
    // ARPACK info=-3: ncv = 5 * nev exceeds the number of equations. Retry with fewer modes.
    if (log.find("info=-3") != std::string::npos && nev > options.n_modes && tries == 0) {
      nev = options.n_modes;
      std::filesystem::remove(dir.file("model.inp"));
      continue;
    }
    if (attempt.command.exit_code != 0 || log.find("*ERROR") != std::string::npos) {
      throw std::runtime_error(fmt::format("ccx failed on '{}' (exit code {}):\n{}", model,
                                           attempt.command.exit_code,
                                           error_lines(log).empty() ? log : error_lines(log)));
    }
    break;
  }
  result.log = attempt.command.out;
  result.n_modes_requested = nev;

  // eigenvalues: .dat (7 digits), then the .eig (full precision) when it agrees with it
  const std::string dat = read_text(dir.file("job.dat"));
  const auto table = parse_dat_eigenvalues(dat);
  if (static_cast<int>(table.size()) != nev) {
    throw std::runtime_error(fmt::format("ccx .dat of '{}' lists {} eigenvalues, {} requested",
                                         model, table.size(), nev));
  }
  result.eigenvalues.resize(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) result.eigenvalues[i] = table[i].eigenvalue;
  result.eigenvalue_digits = 7;
  if (const auto eig = read_eig_eigenvalues(dir.file("job.eig")); eig && eig->size() == table.size()) {
    bool consistent = true;
    double largest = 0;
    for (double v : result.eigenvalues) largest = std::max(largest, std::abs(v));
    for (std::size_t i = 0; i < table.size(); ++i) {
      // E14.7 rounds to 7 significant digits: |error| <= 5e-7 relative; near-zero eigenvalues
      // (rigid-body modes) are noise, compared against the largest instead.
      const double allowed = 6e-7 * std::abs(table[i].eigenvalue) + 1e-14 * largest;
      if (std::abs((*eig)[i] - table[i].eigenvalue) > allowed) consistent = false;
    }
    if (consistent) {
      result.eigenvalues = *eig;
      result.eigenvalue_digits = 16;
    }
  }
  result.frequencies_hz.resize(result.eigenvalues.size());
  for (std::size_t i = 0; i < result.eigenvalues.size(); ++i) {
    result.frequencies_hz[i] =
        std::sqrt(std::max(result.eigenvalues[i], 0.0)) / (2.0 * std::numbers::pi);
  }

  // shapes and stresses from the .frd
  const auto blocks = parse_frd(dir.file("job.frd"));
  std::vector<const FrdBlock*> disp(nev, nullptr), stress(nev, nullptr);
  for (const auto& block : blocks) {
    if (block.analysis != "MODAL" || block.mode < 1 || block.mode > nev) continue;
    if (block.name == "DISP") disp[block.mode - 1] = &block;
    if (block.name == "STRESS") stress[block.mode - 1] = &block;
  }
  for (int k = 0; k < nev; ++k) {
    if (!disp[k]) throw std::runtime_error(fmt::format("ccx .frd of '{}' has no DISP block for mode {}", model, k + 1));
    if (options.nodal_stress && !stress[k])
      throw std::runtime_error(fmt::format("ccx .frd of '{}' has no STRESS block for mode {}", model, k + 1));
    if (disp[k]->node_ids.empty())
      throw std::runtime_error(fmt::format(
          "ccx .frd of '{}' has no nodal results for mode {} (ccx lists only nodes of elements "
          "with two or more nodes: a model of MASS/SPRING1 alone has none)", model, k + 1));
    if (disp[k]->n_components != 3)
      throw std::runtime_error(fmt::format("ccx .frd DISP of mode {} has {} components", k + 1, disp[k]->n_components));
    // 100C VALUE is the frequency, printed with >= 6 digits: a check on the pairing.
    const double f = result.frequencies_hz[k];
    if (std::abs(disp[k]->value - f) > 1e-5 * f + 1e-300) {
      throw std::runtime_error(fmt::format(
          "ccx .frd mode {} frequency {} Hz disagrees with the eigenvalue's {} Hz", k + 1,
          disp[k]->value, f));
    }
  }
  result.node_ids = disp[0]->node_ids;
  const std::size_t n_nodes = result.node_ids.size();
  for (std::size_t i = 0; i < n_nodes; ++i) result.node_index[result.node_ids[i]] = i;
  if (result.node_index.size() != n_nodes)
    throw std::runtime_error("ccx .frd DISP block lists a node twice");
  result.shapes.assign(static_cast<std::size_t>(nev) * n_nodes * 3, 0.0);
  if (options.nodal_stress) result.nodal_stress.assign(static_cast<std::size_t>(nev) * n_nodes * 6, 0.0);
  for (int k = 0; k < nev; ++k) {
    const auto fill = [&](const FrdBlock& block, int width, std::vector<double>& into) {
      if (block.n_components != width)
        throw std::runtime_error(fmt::format("ccx .frd {} of mode {} has {} components, expected {}",
                                             block.name, k + 1, block.n_components, width));
      for (std::size_t r = 0; r < block.node_ids.size(); ++r) {
        const auto it = result.node_index.find(block.node_ids[r]);
        if (it == result.node_index.end())
          throw std::runtime_error(fmt::format("ccx .frd {} of mode {}: node {} not in DISP",
                                               block.name, k + 1, block.node_ids[r]));
        std::copy_n(&block.values[r * width], width,
                    &into[(static_cast<std::size_t>(k) * n_nodes + it->second) * width]);
      }
    };
    fill(*disp[k], 3, result.shapes);
    if (options.nodal_stress) fill(*stress[k], 6, result.nodal_stress);
  }

  // mass of the continuum elements, from the static step
  if (options.mass && !elsets.empty()) {
    const auto sets = parse_dat_masses(dat);
    SolidMass mass;
    double first[3] = {0, 0, 0};
    for (const auto& name : elsets) {
      const auto it = std::find_if(sets.begin(), sets.end(),
                                   [&](const DatSetMass& m) { return upper(m.elset) == upper(name); });
      if (it == sets.end())
        throw std::runtime_error(fmt::format("ccx .dat of '{}' has no EMAS total for set {}", model, name));
      mass.total_mass += it->mass;
      mass.elsets.push_back(name);
      if (it->mass != 0.0)
        for (int d = 0; d < 3; ++d) first[d] += it->mass * it->centre[d];
    }
    for (int d = 0; d < 3; ++d)
      mass.centre_of_mass[d] = mass.total_mass != 0.0 ? first[d] / mass.total_mass : 0.0;
    result.solid_mass = mass;
  }
  return result;
}

namespace {

std::string write_dynamic_deck(const ScratchDir& dir, const std::string& job,
                               const ModalDynamicRequest& r, bool print_displacements) {
  std::string include = std::filesystem::absolute(r.model_inp).lexically_normal().string();
  if (include.size() + 20 > 132) {
    const auto link = dir.path() / "model.inp";
    if (!std::filesystem::exists(link)) std::filesystem::create_symlink(include, link);
    include = "model.inp";
  }
  std::ofstream out(dir.file(job + ".inp"));
  out << "** vsense test harness: transient response by modal superposition\n";
  out << "*INCLUDE, INPUT=" << include << "\n";
  out << "*NSET, NSET=VSPRINT\n";
  for (std::size_t i = 0; i < r.print_nodes.size(); ++i) {
    out << r.print_nodes[i] << (i + 1 == r.print_nodes.size() || i % 8 == 7 ? "\n" : ", ");
  }
  for (std::size_t l = 0; l < r.loads.size(); ++l) {
    out << "*AMPLITUDE, NAME=VSLOAD" << l << "\n";
    const auto& f = r.loads[l].force;
    for (std::size_t k = 0; k < f.size(); ++k) {
      // ccx reads at most 20 characters per number: 14 significant digits.
      out << fmt::format("{:.13e}, {:.13e}", static_cast<double>(k) * r.time_step_s, f[k])
          << (k % 2 == 1 || k + 1 == f.size() ? "\n" : ", ");  // cards <= 132 chars
    }
  }
  out << "*STEP\n*FREQUENCY, STORAGE=YES\n" << r.n_modes << "\n*END STEP\n";
  out << "*STEP, INC=" << r.n_steps + 10 << "\n*MODAL DYNAMIC\n"
      << fmt::format("{:.13e}, {:.13e}\n", r.time_step_s, r.time_step_s * r.n_steps);
  out << "*MODAL DAMPING\n1, " << r.n_modes << ", " << fmt::format("{:.13e}", r.damping_ratio) << "\n";
  for (std::size_t l = 0; l < r.loads.size(); ++l) {
    out << "*CLOAD, AMPLITUDE=VSLOAD" << l << "\n" << r.loads[l].node << ", " << r.loads[l].dof
        << ", 1.0\n";
  }
  if (print_displacements) {
    out << "*NODE PRINT, NSET=VSPRINT\nU\n";
  } else {
    out << "*EL FILE, FREQUENCY=" << r.stress_every << "\nS\n";
  }
  out << "*END STEP\n";
  if (!out) throw std::runtime_error("cannot write the ccx deck in " + dir.path().string());
  return job;
}

void check_attempt(const Attempt& attempt, const std::string& what) {
  if (attempt.timed_out) throw std::runtime_error("ccx exceeded the time limit (" + what + ")");
  const std::string& log = attempt.command.out;
  if (attempt.command.exit_code != 0 || log.find("*ERROR") != std::string::npos) {
    // The error lines, or else the end of the log (where ccx says why it stopped).
    const std::string tail = log.size() > 2000 ? log.substr(log.size() - 2000) : log;
    throw std::runtime_error(fmt::format("ccx failed ({}, exit code {}):\n{}", what,
                                         attempt.command.exit_code,
                                         error_lines(log).empty() ? tail : error_lines(log)));
  }
}

}  // namespace

ModalDynamicResult run_modal_dynamic(const ModalDynamicRequest& r) {
  if (!available()) throw std::runtime_error(unavailable_message());
  for (const auto& load : r.loads) {
    if (load.force.size() != static_cast<std::size_t>(r.n_steps) + 1) {
      throw std::runtime_error("run_modal_dynamic: a load needs n_steps + 1 values");
    }
  }
  ScratchDir dir("ccx-dynamic");
  ModalDynamicResult result;

  // Run 1: displacements of the print nodes at every increment.
  const std::string first = write_dynamic_deck(dir, "displacements", r, true);
  Attempt attempt = run_ccx(dir, first, r.time_limit_s);
  check_attempt(attempt, "modal dynamic, displacements");
  result.wall_s += attempt.wall_s;
  const std::string dat = read_text(dir.file(first + ".dat"));
  for (const auto& e : parse_dat_eigenvalues(dat)) result.frequencies_hz.push_back(e.frequency_hz);
  const std::size_t np = r.print_nodes.size();
  std::unordered_map<std::int64_t, std::size_t> slot;
  for (std::size_t i = 0; i < np; ++i) slot[r.print_nodes[i]] = i;
  result.displacement.assign((static_cast<std::size_t>(r.n_steps) + 1) * np * 3, 0.0);
  std::vector<int> seen(static_cast<std::size_t>(r.n_steps) + 1, 0);
  {
    std::istringstream in(dat);
    std::string line;
    long long step = -1;
    while (std::getline(in, line)) {
      const auto at = line.find("displacements (vx,vy,vz) for set VSPRINT and time");
      if (at != std::string::npos) {
        double time = 0.0;
        if (!parse_double(trim(line.substr(line.rfind(' ') + 1)), time)) {
          throw std::runtime_error("ccx .dat: unreadable time in: " + line);
        }
        step = std::llround(time / r.time_step_s);
        if (step < 1 || step > r.n_steps || std::abs(time - step * r.time_step_s) > 1e-3 * r.time_step_s) {
          throw std::runtime_error("ccx .dat: time " + std::to_string(time) + " is not an increment");
        }
        continue;
      }
      const auto fields = split_ws(line);
      if (step < 0 || fields.size() != 4) {
        if (fields.empty()) continue;
        step = -1;
        continue;
      }
      long long node = 0;
      double u[3];
      if (!parse_int(fields[0], node) || !parse_double(fields[1], u[0]) ||
          !parse_double(fields[2], u[1]) || !parse_double(fields[3], u[2])) {
        step = -1;
        continue;
      }
      const auto it = slot.find(node);
      if (it == slot.end()) continue;
      for (int c = 0; c < 3; ++c) {
        result.displacement[(static_cast<std::size_t>(step) * np + it->second) * 3 + static_cast<std::size_t>(c)] = u[c];
      }
      seen[static_cast<std::size_t>(step)] += 1;
    }
  }
  for (int k = 1; k <= r.n_steps; ++k) {
    if (seen[static_cast<std::size_t>(k)] != static_cast<int>(np)) {
      throw std::runtime_error(fmt::format("ccx .dat: increment {} has {} of {} print nodes", k,
                                           seen[static_cast<std::size_t>(k)], np));
    }
  }

  // Run 2: nodal stresses of the whole model every stress_every increments.
  const std::string second = write_dynamic_deck(dir, "stresses", r, false);
  attempt = run_ccx(dir, second, r.time_limit_s);
  check_attempt(attempt, "modal dynamic, stresses");
  result.wall_s += attempt.wall_s;
  for (const auto& block : parse_frd(dir.file(second + ".frd"))) {
    if (block.name != "STRESS" || block.analysis == "MODAL") continue;
    const long long step = std::llround(block.value / r.time_step_s);
    if (step < 1 || step > r.n_steps) continue;
    if (result.stress_nodes.empty()) result.stress_nodes = block.node_ids;
    if (block.node_ids != result.stress_nodes || block.n_components < 6) {
      throw std::runtime_error("ccx .frd: stress blocks of different nodes");
    }
    result.stress_steps.push_back(static_cast<int>(step));
    for (std::size_t j = 0; j < block.node_ids.size(); ++j) {
      for (int c = 0; c < 6; ++c) {
        result.stress.push_back(block.values[j * static_cast<std::size_t>(block.n_components) + static_cast<std::size_t>(c)]);
      }
    }
  }
  if (result.stress_steps.empty()) throw std::runtime_error("ccx .frd: no stress frames");
  return result;
}

}  // namespace vsense::test::calculix
