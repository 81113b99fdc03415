#pragma once
/// @file von_mises.hpp
/// @brief Equivalent-stress formulas shared by the CPU and CUDA kernels.
#ifdef __CUDACC__
#define VSENSE_HOST_DEVICE __host__ __device__
#else
#define VSENSE_HOST_DEVICE
#endif
#include <cmath>

namespace vsense::kernels::common {

/// von Mises stress of one tensor s = [xx, yy, zz, xy, yz, zx].
VSENSE_HOST_DEVICE inline double von_mises(const double* s) {
  const double dxy = s[0] - s[1], dyz = s[1] - s[2], dzx = s[2] - s[0];
  const double shear = s[3] * s[3] + s[4] * s[4] + s[5] * s[5];
  return sqrt(0.5 * (dxy * dxy + dyz * dyz + dzx * dzx) + 3.0 * shear);
}

}  // namespace vsense::kernels::common
