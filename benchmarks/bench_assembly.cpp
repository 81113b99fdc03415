// Read + assembly benchmark: for each .inp given, the time and peak memory of
//   1. reading the deck (vsense::model::read_inp), against a plain read of the same bytes
//      measured in the same run (the I/O roofline of the parser), and
//   2. numbering the DOFs and assembling K and M (build_dof_map + assemble).
// Peak memory is the process's VmHWM, reset before each phase through /proc/self/clear_refs
// (Linux >= 4.0), so each phase's figure is its own peak (including what earlier phases left
// resident: the model stays in memory during assembly). Run one model per process for clean
// figures (benchmarks/run_assembly.sh does).
//
// Usage: bench_assembly [--repeat N] [--json] [--read-only] MODEL.inp...
// --read-only skips phase 2 (for decks whose K and M would not fit in memory).
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using vsense::jobs::seconds_since;

/// A field of /proc/self/status in bytes (VmHWM, VmRSS), 0 when unavailable.
long long status_bytes(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;
  }
  return 0;
}

/// Resets VmHWM to the current RSS; false when the kernel does not allow it.
bool reset_peak_memory() {
  malloc_trim(0);
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && ok;
}

/// Seconds to read the file's bytes into memory (no parsing): the parser's I/O roofline.
double plain_read_seconds(const std::string& path, long long& bytes) {
  const auto start = clock_type::now();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw vsense::IoError(path + ": cannot open");
  std::vector<char> buffer(1 << 22);
  bytes = 0;
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) bytes += static_cast<long long>(got);
  std::fclose(f);
  return seconds_since(start);
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string json_string(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

struct Result {
  std::string path;
  long long file_bytes = 0;
  long long n_nodes = 0, n_elements = 0, n_dofs = 0, n_equations = 0, nnz_k = 0, nnz_m = 0;
  double plain_read_s = 0, read_s = 0, assembly_s = 0;
  long long baseline_rss = 0, read_peak = 0, read_rss_after = 0, assembly_peak = 0;
};

Result run(const std::string& path, int repeat, bool read_only) {
  Result r;
  r.path = path;
  r.plain_read_s = 1e300;
  r.read_s = 1e300;
  r.assembly_s = 1e300;
  for (int rep = 0; rep < repeat; ++rep) {
    long long bytes = 0;
    r.plain_read_s = std::min(r.plain_read_s, plain_read_seconds(path, bytes));
    r.file_bytes = bytes;
  }
  for (int rep = 0; rep < repeat; ++rep) {
    reset_peak_memory();
    r.baseline_rss = status_bytes("VmRSS");
    auto start = clock_type::now();
    const vsense::model::Model model = vsense::model::read_inp(path);
    r.read_s = std::min(r.read_s, seconds_since(start));
    r.read_peak = status_bytes("VmHWM");
    r.read_rss_after = status_bytes("VmRSS");
    r.n_nodes = static_cast<long long>(model.n_nodes());
    r.n_elements = static_cast<long long>(model.n_elements());
    r.n_dofs = 3 * r.n_nodes;
    if (read_only) continue;

    reset_peak_memory();
    start = clock_type::now();
    const vsense::model::DofMap dofs = vsense::model::build_dof_map(model);
    const vsense::model::SystemMatrices system = vsense::model::assemble(model, dofs);
    r.assembly_s = std::min(r.assembly_s, seconds_since(start));
    r.assembly_peak = status_bytes("VmHWM");
    r.n_equations = dofs.n_equations;
    r.nnz_k = system.stiffness.nonZeros();
    r.nnz_m = system.mass.nonZeros();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 1;
  bool json = false;
  bool read_only = false;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--read-only") {
      read_only = true;
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: bench_assembly [--repeat N] [--json] [--read-only] MODEL.inp...\n"
                   "Times read_inp and build_dof_map + assemble on each deck (best of N) and "
                   "reports DOF/s and peak memory (VmHWM) per phase.\n";
      return 0;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::cerr << "bench_assembly: no model given (try --help)\n";
    return 2;
  }
  const bool peak_reset = reset_peak_memory();
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (!json) {
    fmt::print("# bench_assembly: cpu \"{}\", {} hardware threads, OMP_NUM_THREADS={}, best of "
               "{}, per-phase peak memory {}\n",
               cpu_model(), std::thread::hardware_concurrency(), omp ? omp : "(unset)", repeat,
               peak_reset ? "(VmHWM reset per phase)" : "NOT reset (cumulative VmHWM)");
    fmt::print("{:>10} {:>9} {:>8} | {:>8} {:>10} {:>8} {:>9} | {:>8} {:>10} {:>9} {:>11}\n",
               "DOFs", "elements", "file MB", "read s", "DOF/s", "raw x", "peak MB", "asm s",
               "DOF/s", "peak MB", "nnz(K)");
  }
  int status = 0;
  for (const auto& path : paths) {
    try {
      const Result r = run(path, repeat, read_only);
      const double mb = 1e-6;
      const bool assembled = !read_only;
      const std::string assembly_json =
          assembled ? fmt::format("\"equations\": {}, \"nnz_stiffness\": {}, \"nnz_mass\": {}, "
                                  "\"assembly_s\": {:.6f}, \"assembly_dofs_per_s\": {:.6g}, "
                                  "\"assembly_peak_bytes\": {}",
                                  r.n_equations, r.nnz_k, r.nnz_m, r.assembly_s,
                                  r.n_dofs / r.assembly_s, r.assembly_peak)
                    : std::string("\"assembly_s\": null");
      if (json) {
        fmt::print(
            "{{\"benchmark\": \"assembly\", \"model\": \"{}\", \"file_bytes\": {}, "
            "\"nodes\": {}, \"elements\": {}, \"dofs\": {}, \"plain_read_s\": {:.6f}, "
            "\"read_s\": {:.6f}, \"read_dofs_per_s\": {:.6g}, \"read_peak_bytes\": {}, "
            "\"read_rss_after_bytes\": {}, {}, \"baseline_rss_bytes\": {}, \"repeat\": {}, "
            "\"peak_reset\": {}}}\n",
            json_string(r.path), r.file_bytes, r.n_nodes, r.n_elements, r.n_dofs,
            r.plain_read_s, r.read_s, r.n_dofs / r.read_s, r.read_peak, r.read_rss_after,
            assembly_json, r.baseline_rss, repeat, peak_reset);
      } else {
        fmt::print("{:>10} {:>9} {:>8.1f} | {:>8.3f} {:>10.3g} {:>8.1f} {:>9.0f} | ", r.n_dofs,
                   r.n_elements, r.file_bytes * mb, r.read_s, r.n_dofs / r.read_s,
                   r.read_s / r.plain_read_s, r.read_peak * mb);
        if (assembled) {
          fmt::print("{:>8.3f} {:>10.3g} {:>9.0f} {:>11}\n", r.assembly_s,
                     r.n_dofs / r.assembly_s, r.assembly_peak * mb, r.nnz_k);
        } else {
          fmt::print("{:>8} {:>10} {:>9} {:>11}\n", "-", "-", "-", "(read only)");
        }
      }
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::cerr << "bench_assembly: " << path << ": " << e.what() << "\n";
      status = 1;
    }
  }
  return status;
}
