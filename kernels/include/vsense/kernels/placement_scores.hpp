#pragma once
/// @file placement_scores.hpp
/// @brief The 3 x 3 block algebra of the placement scores, shared by the CPU and CUDA kernels.
/// A symmetric 3 x 3 matrix is stored as 6 values [00, 11, 22, 01, 12, 02].
#ifndef VSENSE_HOST_DEVICE
#ifdef __CUDACC__
#define VSENSE_HOST_DEVICE __host__ __device__
#else
#define VSENSE_HOST_DEVICE
#endif
#endif
#include <cmath>

namespace vsense::kernels::common {

/// det of the symmetric matrix a.
VSENSE_HOST_DEVICE inline double sym3_det(const double* a) {
  return a[0] * (a[1] * a[2] - a[4] * a[4]) - a[3] * (a[3] * a[2] - a[4] * a[5]) +
         a[5] * (a[3] * a[4] - a[1] * a[5]);
}

/// log det(I + s) for s positive semi-definite (det >= 1, so the log is finite).
VSENSE_HOST_DEVICE inline double log_det_plus(const double* s) {
  const double a[6] = {1.0 + s[0], 1.0 + s[1], 1.0 + s[2], s[3], s[4], s[5]};
  const double d = sym3_det(a);
  return d > 0.0 ? log(d) : 0.0;
}

/// 1 - det(I - s): the EfI3 removal score (s = Phi_i Q^-1 Phi_i^T with i inside Q).
VSENSE_HOST_DEVICE inline double efi_removal(const double* s) {
  const double a[6] = {1.0 - s[0], 1.0 - s[1], 1.0 - s[2], -s[3], -s[4], -s[5]};
  return 1.0 - sym3_det(a);
}

/// tr((I + s)^-1 t) through the adjugate of I + s (symmetric positive definite, det >= 1).
VSENSE_HOST_DEVICE inline double trace_ratio(const double* s, const double* t) {
  const double a00 = 1.0 + s[0], a11 = 1.0 + s[1], a22 = 1.0 + s[2];
  const double a01 = s[3], a12 = s[4], a02 = s[5];
  // Adjugate (symmetric): c = adj(A).
  const double c00 = a11 * a22 - a12 * a12;
  const double c11 = a00 * a22 - a02 * a02;
  const double c22 = a00 * a11 - a01 * a01;
  const double c01 = a02 * a12 - a01 * a22;
  const double c12 = a01 * a02 - a00 * a12;
  const double c02 = a01 * a12 - a02 * a11;
  const double det = a00 * c00 + a01 * c01 + a02 * c02;
  const double tr = c00 * t[0] + c11 * t[1] + c22 * t[2] + 2.0 * (c01 * t[3] + c12 * t[4] + c02 * t[5]);
  return det > 0.0 ? tr / det : 0.0;
}

/// The score of kind `kind` (values of kernels::BlockScore) from the Grams s and t.
VSENSE_HOST_DEVICE inline double block_score(int kind, const double* s, const double* t) {
  switch (kind) {
    case 0: return log_det_plus(s);
    case 1: return trace_ratio(s, t);
    case 2: return efi_removal(s);
    default: return s[0] + s[1] + s[2];
  }
}

}  // namespace vsense::kernels::common
