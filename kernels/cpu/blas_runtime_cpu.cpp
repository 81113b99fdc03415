// Which kernels OpenBLAS loaded, and the restart onto faster ones when it fell back to generic
// kernels on a CPU model it does not know.
#include "vsense/kernels/blas_runtime.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

// OpenBLAS's own queries and thread control (weak: absent with another BLAS).
extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
}

namespace vsense {

namespace {

constexpr const char* kCoreEnv = "OPENBLAS_CORETYPE";
constexpr const char* kKeepEnv = "VSENSE_KEEP_BLAS_CORE";
// Set by the restart for the restarted program: the core OpenBLAS chose before it.
constexpr const char* kFromEnv = "VSENSE_BLAS_CORE_BEFORE_RESTART";

// Kernels of the first x86-64 generations (SSE2/SSE3 only): what OpenBLAS falls back to.
constexpr std::array<std::string_view, 17> kGenericCores = {
    "Unknown", "Katmai",       "Coppermine", "Northwood",  "Prescott", "Banias",
    "Atom",    "Core2",        "Penryn",     "Dunnington", "Nehalem",  "Athlon",
    "Opteron", "Opteron_SSE3", "Barcelona",  "Bobcat",     "Nano"};

bool is_generic(std::string_view core) {
  for (const auto name : kGenericCores) {
    if (core == name) return true;
  }
  return false;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures features;
#if defined(__x86_64__) && defined(__GNUC__)
  // libgcc checks the OS state too (XGETBV): a feature the OS does not save reads as absent.
  __builtin_cpu_init();
  features.avx = __builtin_cpu_supports("avx");
  features.avx2 = __builtin_cpu_supports("avx2");
  features.fma = __builtin_cpu_supports("fma");
  features.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl");
#endif
  return features;
}

std::string blas_core() {
  if (openblas_get_corename == nullptr) return {};
  const char* name = openblas_get_corename();
  return name != nullptr ? std::string(name) : std::string();
}

int blas_threads() {
  return openblas_get_num_threads != nullptr ? openblas_get_num_threads() : 0;
}

void set_blas_threads(int threads) {
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
}

std::optional<std::string> faster_blas_core(std::string_view current,
                                            const CpuFeatures& features) {
  if (current.empty()) return std::nullopt;
  const bool generic = is_generic(current);
  if (!generic && current != "Sandybridge") return std::nullopt;
  if (features.avx512 && features.avx2 && features.fma) return std::string("SkylakeX");
  if (features.avx2 && features.fma) return std::string("Haswell");
  if (features.avx && generic) return std::string("Sandybridge");
  return std::nullopt;
}

void restart_with_faster_blas(char** argv) {
  if (std::getenv(kCoreEnv) != nullptr || std::getenv(kKeepEnv) != nullptr) return;
  const std::string current = blas_core();
  const auto faster = faster_blas_core(current, cpu_features());
  if (!faster) return;
  if (setenv(kCoreEnv, faster->c_str(), 1) != 0 || setenv(kFromEnv, current.c_str(), 1) != 0) {
    return;
  }
  execv("/proc/self/exe", argv);
  // Not restarted (no /proc, say): go on with the kernels loaded, and say nothing false.
  unsetenv(kCoreEnv);
  unsetenv(kFromEnv);
}

std::string blas_restart_note() {
  const char* before = std::getenv(kFromEnv);
  const char* now = std::getenv(kCoreEnv);
  if (before == nullptr || now == nullptr) return {};
  return fmt::format(
      "OpenBLAS chose its {} kernels for this CPU (a model it does not know); restarted with "
      "{}={} (now: {}; set {}=1 to keep the first choice)",
      before, kCoreEnv, now, blas_core(), kKeepEnv);
}

}  // namespace vsense
