// Stress recovery at the output nodes and the fatigue state (see reconstruction.hpp).
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "../../kernels/common/von_mises.hpp"
#include "../common/single_threaded_blas.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/stress_recovery.hpp"
#include "vsense/solvers/reconstruction.hpp"

namespace vsense::solvers::reconstruction {

EquivalentStress parse_equivalent_stress(const std::string& name) {
  if (name == "signed-von-mises") return EquivalentStress::signed_von_mises;
  if (name == "von-mises") return EquivalentStress::von_mises;
  if (name == "max-principal") return EquivalentStress::max_principal;
  throw InputError(fmt::format("unknown equivalent stress '{}' (known: signed-von-mises, "
                               "von-mises, max-principal)",
                               name));
}

std::string to_string(EquivalentStress kind) {
  switch (kind) {
    case EquivalentStress::signed_von_mises: return "signed-von-mises";
    case EquivalentStress::von_mises: return "von-mises";
    case EquivalentStress::max_principal: return "max-principal";
  }
  return "?";
}

ResidueTreatment parse_residue_treatment(const std::string& name) {
  if (name == "half-cycles") return ResidueTreatment::half_cycles;
  if (name == "closed") return ResidueTreatment::closed;
  if (name == "discard") return ResidueTreatment::discard;
  throw InputError(fmt::format("unknown residue treatment '{}' (known: half-cycles, closed, "
                               "discard)",
                               name));
}

std::string to_string(ResidueTreatment treatment) {
  switch (treatment) {
    case ResidueTreatment::half_cycles: return "half-cycles";
    case ResidueTreatment::closed: return "closed";
    case ResidueTreatment::discard: return "discard";
  }
  return "?";
}

namespace {

/// Forwards the cycles of one tile's counter (channels 0 .. tile width) to the damage sums of all
/// nodes (channels offset ..).
class OffsetSink final : public CycleSink {
public:
  OffsetSink(MinerDamage& damage, std::int64_t offset) : damage_(damage), offset_(offset) {}
  void consume(std::span<const RainflowCycle> cycles) override {
    buffer_.assign(cycles.begin(), cycles.end());
    for (auto& c : buffer_) c.channel += offset_;
    damage_.consume(buffer_);
  }

private:
  MinerDamage& damage_;
  std::int64_t offset_;
  std::vector<RainflowCycle> buffer_;
};

std::size_t tile_width(std::size_t n_nodes, std::size_t tile) {
  return std::min(kTileNodes, n_nodes - tile * kTileNodes);
}

// Serialisation helpers.
template <class T>
void put(std::vector<std::byte>& out, const T& value) {
  const auto at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}
template <class T>
void put_array(std::vector<std::byte>& out, const std::vector<T>& values) {
  put<std::uint64_t>(out, values.size());
  const auto at = out.size();
  out.resize(at + values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data() + at, values.data(), values.size() * sizeof(T));
}
void put_bytes(std::vector<std::byte>& out, const std::vector<std::byte>& bytes) {
  put<std::uint64_t>(out, bytes.size());
  out.insert(out.end(), bytes.begin(), bytes.end());
}

class Reader {
public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  template <class T>
  std::vector<T> get_array() {
    const auto n = get<std::uint64_t>();
    need(n * sizeof(T));
    std::vector<T> values(n);
    if (n) std::memcpy(values.data(), bytes_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return values;
  }
  std::span<const std::byte> get_bytes() {
    const auto n = get<std::uint64_t>();
    need(n);
    const auto span = bytes_.subspan(at_, n);
    at_ += n;
    return span;
  }
  bool done() const noexcept { return at_ == bytes_.size(); }

private:
  void need(std::size_t n) const {
    if (at_ + n > bytes_.size()) throw InputError("fatigue state: truncated");
  }
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
};

constexpr std::uint32_t kStateMagic = 0x56465331;  // "VFS1"

}  // namespace

FatigueState::FatigueState(std::size_t n_nodes, const SnCurve* curve, double equivalent_slope)
    : n_nodes_(n_nodes),
      vm_max_(n_nodes, 0.0),
      vm_max_sample_(n_nodes, -1) {
  if (n_nodes == 0) throw InputError("fatigue state: no output nodes");
  if (curve) {
    damage_ = std::make_unique<MinerDamage>(*curve, static_cast<std::int64_t>(n_nodes),
                                            equivalent_slope);
    const std::size_t tiles = (n_nodes + kTileNodes - 1) / kTileNodes;
    counters_.reserve(tiles);
    for (std::size_t t = 0; t < tiles; ++t) {
      counters_.emplace_back(static_cast<std::int64_t>(tile_width(n_nodes, t)));
    }
  }
}

std::vector<std::byte> FatigueState::serialize() const {
  std::vector<std::byte> out;
  put(out, kStateMagic);
  put<std::uint64_t>(out, n_nodes_);
  put<std::uint8_t>(out, damage_ ? 1 : 0);
  put<std::int64_t>(out, counted_samples_);
  put_array(out, vm_max_);
  put_array(out, vm_max_sample_);
  if (damage_) {
    put<std::uint64_t>(out, counters_.size());
    for (const auto& counter : counters_) put_bytes(out, counter.serialize());
    put_bytes(out, damage_->serialize());
  }
  return out;
}

void FatigueState::deserialize(std::span<const std::byte> bytes) {
  Reader in(bytes);
  const auto magic = in.get<std::uint32_t>();
  const auto n = in.get<std::uint64_t>();
  const auto fatigue = in.get<std::uint8_t>();
  if (magic != kStateMagic || n != n_nodes_ || (fatigue != 0) != (damage_ != nullptr)) {
    throw InputError(fmt::format("fatigue state: saved for {} nodes{} but this run has {} nodes{}",
                                 n, fatigue ? " with fatigue" : "", n_nodes_,
                                 damage_ ? " with fatigue" : ""));
  }
  counted_samples_ = in.get<std::int64_t>();
  auto vm = in.get_array<double>();
  auto vm_sample = in.get_array<std::int64_t>();
  if (vm.size() != n_nodes_ || vm_sample.size() != n_nodes_) {
    throw InputError("fatigue state: von Mises maxima of the wrong size");
  }
  vm_max_ = std::move(vm);
  vm_max_sample_ = std::move(vm_sample);
  if (damage_) {
    const auto tiles = in.get<std::uint64_t>();
    if (tiles != counters_.size()) throw InputError("fatigue state: wrong number of counters");
    for (auto& counter : counters_) counter = RainflowCounter::deserialize(in.get_bytes());
    damage_->deserialize(in.get_bytes());
  }
  if (!in.done()) throw InputError("fatigue state: trailing bytes");
}

void FatigueState::merge(const FatigueState& next) {
  if (next.n_nodes_ != n_nodes_ || (next.damage_ == nullptr) != (damage_ == nullptr)) {
    throw InputError("fatigue state: cannot merge states of different shapes");
  }
  for (std::size_t j = 0; j < n_nodes_; ++j) {
    const bool take = next.vm_max_sample_[j] >= 0 &&
                      (vm_max_sample_[j] < 0 || next.vm_max_[j] > vm_max_[j] ||
                       (next.vm_max_[j] == vm_max_[j] && next.vm_max_sample_[j] < vm_max_sample_[j]));
    if (take) {
      vm_max_[j] = next.vm_max_[j];
      vm_max_sample_[j] = next.vm_max_sample_[j];
    }
  }
  counted_samples_ += next.counted_samples_;
  if (damage_) {
    for (std::size_t t = 0; t < counters_.size(); ++t) {
      OffsetSink sink(*damage_, static_cast<std::int64_t>(t * kTileNodes));
      counters_[t].merge(next.counters_[t], sink);
    }
    damage_->add(*next.damage_);
  }
}

void FatigueState::finish(ResidueTreatment treatment) {
  if (!damage_) return;
  for (std::size_t t = 0; t < counters_.size(); ++t) {
    OffsetSink sink(*damage_, static_cast<std::int64_t>(t * kTileNodes));
    counters_[t].finish(treatment, sink);
  }
}

bool FatigueState::operator==(const FatigueState& other) const {
  if (n_nodes_ != other.n_nodes_ || counted_samples_ != other.counted_samples_ ||
      vm_max_ != other.vm_max_ || vm_max_sample_ != other.vm_max_sample_ ||
      (damage_ == nullptr) != (other.damage_ == nullptr)) {
    return false;
  }
  if (!damage_) return true;
  return counters_ == other.counters_ && *damage_ == *other.damage_;
}

// ---- stress recovery ----------------------------------------------------------------------

class DeviceRecovery {
public:
  std::unique_ptr<kernels::StressRecoveryDevice> device;
};

StressFatigue::~StressFatigue() = default;

std::string StressFatigue::backend() const {
  return device_ ? executor_->description() : std::string("cpu");
}

StressFatigue::StressFatigue(std::vector<double> modal_stress, std::vector<double> modal_shapes,
                             std::size_t n_nodes, std::size_t n_modes, EquivalentStress kind,
                             std::shared_ptr<const Executor> executor)
    : stress_(std::move(modal_stress)),
      shapes_(std::move(modal_shapes)),
      n_nodes_(n_nodes),
      n_modes_(n_modes),
      kind_(kind),
      executor_(std::move(executor)) {
  if (stress_.size() != n_nodes * 6 * n_modes) {
    throw InputError(fmt::format("stress recovery: {} modal stress values, expected {} nodes x 6 "
                                 "x {} modes",
                                 stress_.size(), n_nodes, n_modes));
  }
  if (!shapes_.empty() && shapes_.size() != n_nodes * 3 * n_modes) {
    throw InputError("stress recovery: modal shapes of the wrong size");
  }
  if (executor_ && executor_->backend() == Backend::cuda) {
    if (!shapes_.empty()) {
      throw InputError("histories (--history) are written by the CPU backend: use --backend cpu");
    }
    device_ = std::make_unique<DeviceRecovery>();
    device_->device = kernels::cuda::make_stress_recovery(
        static_cast<const CudaExecutor&>(*executor_), stress_.data(), n_nodes_, n_modes_,
        static_cast<int>(kind_));
    stress_.clear();  // the device holds them
    stress_.shrink_to_fit();
  }
}

void StressFatigue::process_device(const double* q, std::size_t n, std::int64_t first,
                                   const std::uint8_t* counted, FatigueState& state) {
  const std::size_t p = n_nodes_, m = n_modes_;
  std::vector<double> rows;
  std::vector<std::int64_t> samples;
  for (std::size_t r = 0; r < n; ++r) {
    if (!counted[r]) continue;
    rows.insert(rows.end(), q + r * m, q + (r + 1) * m);
    samples.push_back(first + static_cast<std::int64_t>(r));
  }
  if (samples.empty()) return;
  auto& vm_max = state.von_mises_max();
  auto& vm_sample = state.von_mises_max_sample();
  const bool fatigue = state.has_fatigue();
  // The host's state onto the device ...
  std::vector<kernels::RecoveryNodeState> nodes(p);
  for (std::size_t j = 0; j < p; ++j) {
    nodes[j].vm_max = vm_max[j];
    nodes[j].vm_sample = vm_sample[j];
    if (fatigue) {
      const auto& counter = state.counters()[j / kTileNodes];
      const auto channel = counter.channel_state(static_cast<std::int64_t>(j % kTileNodes));
      nodes[j].last = channel.last;
      nodes[j].direction = channel.direction;
      nodes[j].started = counter.n_samples() > 0 ? 1 : 0;
    }
  }
  device_->device->set_state(nodes);
  // ... the turning points into the host's counters, run by run ...
  const std::size_t tiles = state.n_tiles();
  device_->device->process(
      rows.data(), samples.size(), samples.data(),
      [&](const std::int64_t* offsets, const double* values) {
        if (!fatigue) return;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
        for (std::ptrdiff_t ti = 0; ti < static_cast<std::ptrdiff_t>(tiles); ++ti) {
          const auto t = static_cast<std::size_t>(ti);
          OffsetSink sink(*state.damage(), static_cast<std::int64_t>(t * kTileNodes));
          auto& counter = state.counters()[t];
          for (std::size_t k = 0; k < tile_width(p, t); ++k) {
            const std::size_t j = t * kTileNodes + k;
            counter.push_turning_points(
                static_cast<std::int64_t>(k),
                std::span<const double>(values + offsets[j],
                                        static_cast<std::size_t>(offsets[j + 1] - offsets[j])),
                sink);
          }
        }
      });
  // ... and the device's state back.
  nodes = device_->device->state();
  for (std::size_t j = 0; j < p; ++j) {
    vm_max[j] = nodes[j].vm_max;
    vm_sample[j] = nodes[j].vm_sample;
    if (fatigue) {
      state.counters()[j / kTileNodes].set_channel_state(static_cast<std::int64_t>(j % kTileNodes),
                                                         nodes[j].last, nodes[j].direction);
    }
  }
  if (fatigue) {
    for (auto& counter : state.counters()) counter.add_samples(static_cast<std::int64_t>(samples.size()));
  }
  state.add_counted_samples(static_cast<std::int64_t>(samples.size()));
}

namespace {
/// C [rows, n] = A [rows, k] B^T, B [n, k], row-major.
void gemm_abt(std::size_t rows, std::size_t n, std::size_t k, const double* a, const double* b,
              double* c) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(k), b,
              static_cast<int>(k), 0.0, c, static_cast<int>(n));
}

struct TileWork {
  std::vector<double> product;     // [rows, 6 w] stresses
  std::vector<double> equivalent;  // [counted rows, w]
  std::vector<double> displacement;  // [rows, 3 w]
};
}  // namespace

void StressFatigue::process(const double* q, std::size_t n, std::int64_t first,
                            const std::uint8_t* counted, FatigueState& state,
                            HistorySink* history) {
  if (state.n_nodes() != n_nodes_) {
    throw InputError("stress recovery: the fatigue state has another number of nodes");
  }
  if (history && shapes_.empty()) {
    throw InputError("stress recovery: histories asked for but no modal shapes given");
  }
  if (device_) {
    process_device(q, n, first, counted, state);
    return;
  }
  const std::size_t p = n_nodes_, m = n_modes_;
  const std::size_t tiles = (p + kTileNodes - 1) / kTileNodes;
  // Rows per pass: the products of a tile stay in cache (256 x 768 doubles = 1.5 MB), and with
  // histories the pass's float buffers stay below ~64 MB.
  std::size_t pass_rows = 256;
  if (history) pass_rows = std::clamp<std::size_t>((64u << 20) / (p * 9 * sizeof(float)), 1, 256);
  std::vector<float> stress_history, displacement_history;
  if (history) {
    stress_history.resize(pass_rows * p * 6);
    displacement_history.resize(pass_rows * p * 3);
  }
  const int threads = max_threads();
  std::vector<TileWork> work(static_cast<std::size_t>(threads));
  std::vector<std::uint32_t> counted_rows;
  const bool fatigue = state.has_fatigue();
  auto& vm_max = state.von_mises_max();
  auto& vm_sample = state.von_mises_max_sample();
  const int kind = static_cast<int>(kind_);

  SingleThreadedBlas single;
  for (std::size_t r0 = 0; r0 < n; r0 += pass_rows) {
    const std::size_t rows = std::min(pass_rows, n - r0);
    counted_rows.clear();
    for (std::size_t r = 0; r < rows; ++r) {
      if (counted[r0 + r]) counted_rows.push_back(static_cast<std::uint32_t>(r));
    }
    const double* q_pass = q + r0 * m;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
    for (std::ptrdiff_t ti = 0; ti < static_cast<std::ptrdiff_t>(tiles); ++ti) {
      const auto t = static_cast<std::size_t>(ti);
      TileWork& w = work[static_cast<std::size_t>(thread_id())];
      const std::size_t a = t * kTileNodes, width = tile_width(p, t);
      w.product.resize(rows * 6 * width);
      gemm_abt(rows, 6 * width, m, q_pass, stress_.data() + a * 6 * m, w.product.data());
      if (fatigue) w.equivalent.resize(counted_rows.size() * width);
      std::size_t next_counted = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const double* row = w.product.data() + r * 6 * width;
        const bool in_statistics = next_counted < counted_rows.size() && counted_rows[next_counted] == r;
        if (in_statistics) {
          const std::int64_t sample = first + static_cast<std::int64_t>(r0 + r);
          double* eq = fatigue ? w.equivalent.data() + next_counted * width : nullptr;
          for (std::size_t j = 0; j < width; ++j) {
            const double* s = row + 6 * j;
            const double vm = kernels::common::von_mises(s);
            if (vm > vm_max[a + j] || vm_sample[a + j] < 0) {
              vm_max[a + j] = vm;
              vm_sample[a + j] = sample;
            }
            if (eq) {
              eq[j] = kind == kernels::common::kVonMises ? vm
                      : kind == kernels::common::kSignedVonMises
                          ? ((s[0] + s[1] + s[2]) < 0.0 ? -vm : vm)
                          : kernels::common::max_principal(s);
            }
          }
          ++next_counted;
        }
        if (history) {
          float* dst = stress_history.data() + (r * p + a) * 6;
          for (std::size_t i = 0; i < 6 * width; ++i) dst[i] = static_cast<float>(row[i]);
        }
      }
      if (fatigue && !counted_rows.empty()) {
        OffsetSink sink(*state.damage(), static_cast<std::int64_t>(a));
        state.counters()[t].process(w.equivalent.data(),
                                    static_cast<std::int64_t>(counted_rows.size()), sink);
      }
      if (history) {
        w.displacement.resize(rows * 3 * width);
        gemm_abt(rows, 3 * width, m, q_pass, shapes_.data() + a * 3 * m, w.displacement.data());
        for (std::size_t r = 0; r < rows; ++r) {
          const double* src = w.displacement.data() + r * 3 * width;
          float* dst = displacement_history.data() + (r * p + a) * 3;
          for (std::size_t i = 0; i < 3 * width; ++i) dst[i] = static_cast<float>(src[i]);
        }
      }
    }
    state.add_counted_samples(static_cast<std::int64_t>(counted_rows.size()));
    if (history) {
      history->write(first + static_cast<std::int64_t>(r0), rows, stress_history.data(),
                     displacement_history.data());
    }
  }
}

}  // namespace vsense::solvers::reconstruction
