#pragma once
/// @file blas_runtime.hpp
/// @brief Which kernels the BLAS runs with, and a restart onto faster ones.
///
/// OpenBLAS picks its kernels at load time from the CPU model. On a CPU model it does not know
/// (common in virtual machines, whose CPUID names a generic "Intel(R) Xeon(R) Processor") it
/// falls back to its Prescott (SSE3) kernels: measured on such a 2-core VM with AVX-512, dgemm
/// ran at 31 GFlop/s against 140 GFlop/s with its SkylakeX kernels, and the CHOLMOD
/// factorisations and MUMPS counts of `vsense modes` run on that dgemm. OpenBLAS reads
/// OPENBLAS_CORETYPE only when it is loaded, so the fix is to set it and start the program again.
#include <optional>
#include <string>
#include <string_view>

namespace vsense {

/// What the CPU can run, as far as the BLAS kernels care (each feature also enabled by the OS).
struct CpuFeatures {
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512 = false;  ///< AVX-512 F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
};

/// The features of the CPU this process runs on (all false off x86-64).
CpuFeatures cpu_features();

/// OpenBLAS's name for the kernels it loaded ("SkylakeX", "Haswell", "Prescott", ...); empty
/// when the BLAS is not OpenBLAS.
std::string blas_core();

/// OpenBLAS's thread count; 0 when the BLAS is not OpenBLAS.
int blas_threads();

/// Sets OpenBLAS's thread count (nothing when the BLAS is not OpenBLAS).
void set_blas_threads(int threads);

/// @brief The OpenBLAS core type to ask for when OpenBLAS loaded slower kernels than `features`
/// allow: "SkylakeX" (AVX-512), "Haswell" (AVX2 + FMA) or "Sandybridge" (AVX). Only a generic
/// choice is overridden (Prescott, Core2, Penryn, Dunnington, Nehalem, Atom, and Sandybridge on
/// a CPU with AVX2); a core OpenBLAS named deliberately (Zen, SkylakeX, Neoverse, ...) and an
/// unknown name are left alone (nullopt), as is an empty `current` (not OpenBLAS).
std::optional<std::string> faster_blas_core(std::string_view current, const CpuFeatures& features);

/// @brief Starts this program again (execv of /proc/self/exe with the same arguments) with
/// OPENBLAS_CORETYPE set, when faster_blas_core() names faster kernels and neither
/// OPENBLAS_CORETYPE nor VSENSE_KEEP_BLAS_CORE is set. Returns when no restart is wanted or the
/// restart failed (the program then goes on with the kernels it has). Call it first in main,
/// before any thread, MPI or file is opened.
void restart_with_faster_blas(char** argv);

/// After such a restart: "OpenBLAS chose Prescott kernels for this CPU; restarted with
/// OPENBLAS_CORETYPE=SkylakeX" (for the log); empty otherwise.
std::string blas_restart_note();

}  // namespace vsense
