#pragma once
/// @file stress_recovery.hpp
/// @brief The device stress recovery of the reconstruction: sigma = q Psi^T at every output
/// node, fused with the von Mises maxima and the turning-point extraction of the equivalent
/// stress, so that stress histories never leave the device: only the turning points (a
/// fraction of the samples) come back, to be counted by the host's rainflow counters. The CPU
/// path (solvers/reconstruction.hpp, StressFatigue) computes the same quantities and counts
/// directly; the two agree to round-off of the products (tested where a device exists).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {


/// Per output node: extraction state and von Mises maximum (host copies, for sync).
struct RecoveryNodeState {
  double last = 0.0;        ///< last equivalent-stress sample
  double direction = 0.0;   ///< slope sign since the last turning point
  std::int32_t started = 0; ///< 0 before the node's first sample
  std::int32_t padding = 0;
  double vm_max = 0.0;      ///< largest von Mises stress so far
  std::int64_t vm_sample = -1;  ///< global sample of vm_max (-1: none yet)
};

class StressRecoveryDevice {
public:
  virtual ~StressRecoveryDevice() = default;
  /// Loads every node's state (from the host's counters and maxima) onto the device.
  virtual void set_state(const std::vector<RecoveryNodeState>& state) = 0;
  /// The device's node states.
  virtual std::vector<RecoveryNodeState> state() const = 0;
  /// Receives, for a run of consecutive rows, per node the turning points of its equivalent
  /// stress that these rows confirmed, in order: node j's are values[offsets[j] ..
  /// offsets[j + 1]) (offsets: [n_nodes + 1], host memory valid during the call).
  using TurningSink = std::function<void(const std::int64_t* offsets, const double* values)>;
  /// @brief Rows of modal displacements that enter the statistics, in time order.
  /// @param[in] q host, [n, m] row-major
  /// @param[in] samples host, [n] global sample index of each row
  /// @param[in] sink called once per run of rows (runs in time order)
  virtual void process(const double* q, std::size_t n, const std::int64_t* samples,
                       const TurningSink& sink) = 0;
  virtual std::size_t n_nodes() const noexcept = 0;
};

namespace cuda {
/// @param[in] modal_stress host, [n_nodes * 6, m] row-major (copied to the device)
/// @param[in] equivalent_kind a kernels::common::EquivalentKind
/// @throws DeviceResourceError when the modal stresses do not fit in device memory.
std::unique_ptr<StressRecoveryDevice> make_stress_recovery(const CudaExecutor& exec,
                                                           const double* modal_stress,
                                                           std::size_t n_nodes,
                                                           std::size_t n_modes,
                                                           int equivalent_kind);
}  // namespace cuda

}  // namespace vsense::kernels
