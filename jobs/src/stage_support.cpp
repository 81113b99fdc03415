// Timing, memory and rank helpers shared by the stages.
#include "vsense/jobs/stage_support.hpp"

#include <cstdio>
#include <fstream>

namespace vsense::jobs {

long long peak_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

std::string json_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void on_root(const cluster::Communicator& comm, const std::function<void()>& work) {
  cluster::collectively(comm, [&] {
    if (comm.is_root()) work();
  });
}

}  // namespace vsense::jobs
