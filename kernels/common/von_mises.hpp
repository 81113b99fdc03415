#pragma once
/// @file von_mises.hpp
/// @brief Equivalent-stress formulas shared by the CPU and CUDA kernels. A stress tensor is
/// s = [xx, yy, zz, xy, yz, zx].
#ifdef __CUDACC__
#define VSENSE_HOST_DEVICE __host__ __device__
#else
#define VSENSE_HOST_DEVICE
#endif
#include <cmath>

namespace vsense::kernels::common {

/// von Mises stress of one tensor.
template <class T>
VSENSE_HOST_DEVICE inline T von_mises(const T* s) {
  const T dxy = s[0] - s[1], dyz = s[1] - s[2], dzx = s[2] - s[0];
  const T shear = s[3] * s[3] + s[4] * s[4] + s[5] * s[5];
  return sqrt(T(0.5) * (dxy * dxy + dyz * dyz + dzx * dzx) + T(3) * shear);
}

/// Largest principal stress (closed form: trigonometric solution of the characteristic cubic).
template <class T>
VSENSE_HOST_DEVICE inline T max_principal(const T* s) {
  const T mean = (s[0] + s[1] + s[2]) / T(3);
  const T a = s[0] - mean, b = s[1] - mean, c = s[2] - mean;
  const T off = s[3] * s[3] + s[4] * s[4] + s[5] * s[5];
  // p2 = tr(D^2) / 6 of the deviator D; q = det(D) / 2.
  const T p2 = (a * a + b * b + c * c + T(2) * off) / T(6);
  if (!(p2 > T(0))) return mean;
  const T p = sqrt(p2);
  const T det = a * (b * c - s[4] * s[4]) - s[3] * (s[3] * c - s[4] * s[5]) +
                s[5] * (s[3] * s[4] - b * s[5]);
  T r = det / (T(2) * p2 * p);
  r = r < T(-1) ? T(-1) : (r > T(1) ? T(1) : r);
  return mean + T(2) * p * cos(acos(r) / T(3));
}

/// Kinds of equivalent stress (values match kernels::EquivalentStress).
enum EquivalentKind : int { kSignedVonMises = 0, kVonMises = 1, kMaxPrincipal = 2 };

/// von Mises signed with the hydrostatic stress (sign of the trace; + for a zero trace).
template <class T>
VSENSE_HOST_DEVICE inline T signed_von_mises(const T* s) {
  const T vm = von_mises(s);
  return (s[0] + s[1] + s[2]) < T(0) ? -vm : vm;
}

template <class T>
VSENSE_HOST_DEVICE inline T equivalent_stress(int kind, const T* s) {
  switch (kind) {
    case kSignedVonMises: return signed_von_mises(s);
    case kVonMises: return von_mises(s);
    default: return max_principal(s);
  }
}

}  // namespace vsense::kernels::common
