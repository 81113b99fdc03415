#pragma once
/// @file simulate.hpp
/// @brief Synthetic measurement archives of a machine in operation, with the true response:
/// the work behind `vsense simulate`.
///
/// Loads (all synthetic, documented so that results can be reasoned about):
/// - engine orders k * order_step (k = 1 .. max_order / order_step) of the crank speed, each
///   a resultant force and moment at the centroid of the load nodes, with random phases:
///   roll moment about the crank axis (times firing_gain on multiples of the firing order
///   cylinders / 2 of a four-stroke engine), vertical and lateral forces, smaller axial force,
///   pitch and yaw moments; amplitudes scale as (1 + order)^-order_decay. The resultant is
///   spread over the load nodes as the least-norm nodal forces with that resultant (a rigid,
///   RBE3-like distribution);
/// - band-limited random forces, independent per broadband node and direction;
/// - the speed is constant, or follows a piecewise-linear profile (run-ups).
/// The response is modal superposition over the chosen modes with modal damping, integrated
/// exactly for forces linear between samples, after a warm-up that is not recorded.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vsense/io/archive.hpp"

namespace vsense::solvers {

struct SimulateRequest {
  std::string modes_path;  ///< vsense-modes file
  /// Archive path; with segment_s > 0 the files are OUT-STEM-000.h5, OUT-STEM-001.h5, ...
  std::string out_path;
  std::string truth_path;  ///< empty: no truth file
  bool truth_accelerations = false;

  // Sensors: exactly one of the three sources.
  std::string placement_path;      ///< vsense-placement file (/placement/node_ids)
  std::string sensors_file;        ///< one node per line, or "NODE DX DY DZ" for one channel
  std::string sensor_set;          ///< node set of the modes file
  std::string directions = "xyz";  ///< model axes measured at each sensor node (triaxial: xyz)
  std::string channel_unit = "m/s^2";
  double noise_rms = 0.0;  ///< sensor noise, channel units
  io::SampleType sample_type = io::SampleType::float32;
  unsigned compression_level = 0;
  std::size_t chunk_samples = 4096;

  // Time.
  double sample_rate_hz = 1000.0;
  double duration_s = 60.0;
  std::string start_time = "2024-01-01T00:00:00Z";
  double segment_s = 0.0;   ///< > 0: one file per this many seconds
  double warm_up_s = -1.0;  ///< < 0: automatic (5 time constants of the slowest mode, <= 60 s)
  std::uint64_t seed = 1;

  // Modes.
  int n_modes = 0;                    ///< use the lowest n (0: all)
  std::vector<double> damping{0.02};  ///< one value for all modes, or one per mode used
  double min_frequency_hz = 0.1;      ///< modes below (rigid-body modes) are left out

  // Engine.
  double rpm = 1500.0;
  std::vector<std::pair<double, double>> speed_profile;  ///< (t [s], rpm); empty: constant
  int cylinders = 12;
  double order_step = 0.5;
  double max_order = 12.0;
  double engine_force_n = 2000.0;    ///< vertical force amplitude scale, N
  double engine_moment_nm = 5000.0;  ///< roll moment amplitude scale, N m
  double firing_gain = 4.0;
  double order_decay = 1.0;
  char crank_axis = 'x';  ///< 'x', 'y' or 'z'
  char vertical_axis = 'z';
  std::string load_set;  ///< empty: ENGINE_FEET, MOUNT_UPPER, or near the centre

  // Broadband.
  double broadband_rms_n = 200.0;  ///< per node and direction, N
  double broadband_low_hz = 2.0, broadband_high_hz = 500.0;
  std::string broadband_set;  ///< empty: MOUNT_UPPER, else the load nodes
};

struct SimulateSummary {
  std::vector<std::string> archive_files;
  std::string truth_path;
  std::string units;
  std::int64_t n_samples = 0;
  double sample_rate_hz = 0.0;
  double warm_up_s = 0.0;
  std::vector<io::ArchiveChannel> channels;
  std::vector<std::int64_t> mode_indices;    ///< modes simulated, into the modes file
  std::vector<double> frequencies_hz;        ///< of those modes
  std::vector<std::int64_t> excluded_modes;  ///< below min_frequency_hz
  std::string load_set_used, broadband_set_used;
  std::size_t n_load_nodes = 0, n_broadband_inputs = 0, n_orders = 0;
  std::vector<double> channel_rms;  ///< [n_channels] over the whole run, channel units
  double simulate_seconds = 0.0;    ///< simulating and writing, without reading the modes
};

/// @brief Reads what it needs of the modes file (the shapes at the sensor and load nodes
/// only), simulates and writes the archive and the truth, streaming.
/// @throws InputError for a bad request or input file, IoError when writing fails.
SimulateSummary run_simulate(const SimulateRequest& request);

/// @brief Nodal forces with a given resultant: for points r_j about their centroid, the
/// least-norm forces f (3 per point) with sum f = F and sum (r_j - c) x f_j = M.
/// @param points [n, 3]; @return D [3n, 6] row-major, f = D [F; M].
std::vector<double> rigid_load_distribution(const std::vector<double>& points);

}  // namespace vsense::solvers
