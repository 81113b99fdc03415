#pragma once
/// @file turning_points.hpp
/// @brief The turning-point extraction of one history, sample by sample, shared by the CUDA
/// stress recovery and its CPU check. It is the rule of solvers::RainflowCounter (first sample,
/// then every sample where the slope changes sign; equal samples change nothing), so that
/// confirmed turning points pushed into a counter give the cycles of the whole history.
#ifndef VSENSE_HOST_DEVICE
#ifdef __CUDACC__
#define VSENSE_HOST_DEVICE __host__ __device__
#else
#define VSENSE_HOST_DEVICE
#endif
#endif
#include <cstdint>

namespace vsense::kernels::common {

/// Extraction state of one history: its last sample and the sign of the slope since the last
/// turning point (-1, 0 before the first non-zero slope, +1).
struct TurningState {
  double last = 0.0;
  double direction = 0.0;
  std::int32_t started = 0;  ///< 0 before the first sample
  std::int32_t padding = 0;
};

/// Takes sample x; returns true and the confirmed turning point in *turning when x shows that
/// the previous sample was one.
VSENSE_HOST_DEVICE inline bool turning_step(double x, TurningState& s, double* turning) {
  if (!s.started) {
    s.last = x;
    s.started = 1;
    return false;
  }
  bool confirmed = false;
  if (x > s.last) {
    if (s.direction <= 0.0) {
      *turning = s.last;
      s.direction = 1.0;
      confirmed = true;
    }
  } else if (x < s.last) {
    if (s.direction >= 0.0) {
      *turning = s.last;
      s.direction = -1.0;
      confirmed = true;
    }
  }
  s.last = x;
  return confirmed;
}

}  // namespace vsense::kernels::common
