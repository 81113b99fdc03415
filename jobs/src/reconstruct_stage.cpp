// The reconstruction stage: inputs, the share of time blocks of each rank, checkpoints, the
// exact merge of the ranks' fatigue states, and the results file (see reconstruct_stage.hpp).
#include "vsense/jobs/reconstruct_stage.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "vsense/io/archive.hpp"
#include "vsense/io/hdf5.hpp"
#include "vsense/io/modes_reader.hpp"
#include "vsense/io/placement_file.hpp"
#include "vsense/io/results_file.hpp"
#include "vsense/io/sha256.hpp"
#include "vsense/io/xdmf.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/solvers/reconstruction.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace vsense::jobs {

namespace {

namespace fs = std::filesystem;
namespace rc = solvers::reconstruction;

constexpr std::uint32_t kCheckpointMagic = 0x56524b31;  // "VRK1"
constexpr std::size_t kMaxLoggedChanges = 20;

using Clock = std::chrono::steady_clock;

std::string stress_unit_of(const std::string& units) { return units == "mm-t-s" ? "MPa" : "Pa"; }

/// Everything derived from the inputs before processing (identical on every rank).
struct Prepared {
  std::unique_ptr<io::Archive> archive;
  std::unique_ptr<rc::Pipeline> pipeline;
  std::vector<rc::Block> blocks;
  std::optional<solvers::SnCurve> curve;
  rc::EquivalentStress equivalent = rc::EquivalentStress::signed_von_mises;
  solvers::ResidueTreatment residue = solvers::ResidueTreatment::half_cycles;
  io::ResultsHeader header;
  std::vector<std::size_t> output_nodes;  ///< indices into the modes file
  std::string units, backend;
  double sample_rate_hz = 0.0;
  std::int64_t n_samples = 0;
  std::size_t n_modes = 0, n_channels = 0;
  std::string fingerprint;  ///< of the inputs (path, size, mtime) and every setting
  std::string partial_path, checkpoint_dir, xdmf_path;
};

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + " (missing)";
  return fmt::format("{} {} {}.{}", fs::absolute(path).string(), static_cast<long long>(st.st_size),
                     static_cast<long long>(st.st_mtim.tv_sec),
                     static_cast<long long>(st.st_mtim.tv_nsec));
}

std::string describe_sample(const io::Archive& archive, std::size_t segment, std::int64_t sample) {
  const auto& seg = archive.segments()[segment];
  std::size_t file = seg.files.front();
  for (std::size_t k = 0; k < seg.files.size(); ++k) {
    if (seg.offsets[k] <= sample) file = seg.files[k];
  }
  const auto time = io::add_seconds(seg.start, static_cast<double>(sample) / archive.sample_rate_hz());
  return fmt::format("{} at {}", archive.files()[file].path, io::format_utc_time(time));
}

void validate_request(const ReconstructRequest& r) {
  if (r.modes_path.empty()) throw InputError("reconstruct: no modes file given");
  if (r.archive_paths.empty()) throw InputError("reconstruct: no archive files given");
  if (r.out_path.empty()) throw InputError("reconstruct: no output file given (--out)");
  const fs::path out(r.out_path);
  std::error_code ec;
  const fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  if (!fs::is_directory(dir, ec)) {
    throw InputError(fmt::format("{}: the output directory {} does not exist", r.out_path,
                                 dir.string()));
  }
  for (const auto& input : r.archive_paths) {
    if (fs::exists(input, ec) && fs::exists(out, ec) && fs::equivalent(input, out, ec)) {
      throw InputError(fmt::format("{}: the output would overwrite an input archive", r.out_path));
    }
  }
  if (r.n_modes < 0) throw InputError(fmt::format("--modes {} must be >= 0", r.n_modes));
  if (!(r.rigid_hz >= 0.0)) throw InputError("--rigid-hz must be >= 0");
  if (!(r.regularisation >= 0.0) || !std::isfinite(r.regularisation)) {
    throw InputError(fmt::format("--regularisation {} must be >= 0", r.regularisation));
  }
  if (!std::isnan(r.settle_s) && !(r.settle_s >= 0.0)) {
    throw InputError(fmt::format("--settle {} s must be >= 0", r.settle_s));
  }
  if (!(r.equivalent_cycles > 0.0)) throw InputError("--equivalent-cycles must be > 0");
  if (r.gaps != "split" && r.gaps != "error") {
    throw InputError(fmt::format("--gaps '{}' is not split or error", r.gaps));
  }
  if (r.unobservable != "exclude" && r.unobservable != "error") {
    throw InputError(fmt::format("--unobservable '{}' is not exclude or error", r.unobservable));
  }
  if (r.backend != "auto" && r.backend != "cpu" && r.backend.rfind("cuda", 0) != 0) {
    throw InputError(fmt::format("--backend '{}' is not auto, cpu or cuda[:N]", r.backend));
  }
  if (!(r.checkpoint_interval_s >= 0.0)) throw InputError("--checkpoint-interval must be >= 0");
  if (r.block_samples < 0) throw InputError("--fft-size must be >= 0");
}

/// The executor of this rank: `--backend auto` takes a CUDA device when one works (rank r uses
/// device r mod count) unless histories are asked for (a CPU feature), else the CPU.
std::shared_ptr<const Executor> choose_executor(const ReconstructRequest& request, int rank) {
  if (request.backend == "cpu") return std::make_shared<CpuExecutor>();
  const int devices = CudaExecutor::device_count();
  if (request.backend == "auto") {
    if (devices == 0 || request.history) return std::make_shared<CpuExecutor>();
    return CudaExecutor::create(rank % devices);
  }
  if (request.backend == "cuda" && devices > 0) return CudaExecutor::create(rank % devices);
  return make_executor(request.backend);  // cuda:N, or the NotCompiled / DeviceUnavailable error
}

Prepared prepare(const ReconstructRequest& request, int rank) {
  validate_request(request);
  Prepared out;
  io::ModesReader modes(request.modes_path);
  out.units = modes.units();
  if (!request.units.empty() && request.units != modes.units()) {
    throw InputError(fmt::format("--units {} does not match the modes file {} (units {})",
                                 request.units, request.modes_path, modes.units()));
  }
  out.equivalent = rc::parse_equivalent_stress(request.equivalent);
  out.residue = rc::parse_residue_treatment(request.residue);

  io::ArchiveOptions archive_options;
  archive_options.model_units = out.units;
  archive_options.discontinuities =
      request.gaps == "split" ? io::DiscontinuityPolicy::split : io::DiscontinuityPolicy::error;
  out.archive = std::make_unique<io::Archive>(request.archive_paths, archive_options);
  io::Archive& archive = *out.archive;
  out.sample_rate_hz = archive.sample_rate_hz();
  out.n_samples = archive.total_samples();
  for (const auto& d : archive.discontinuities()) spdlog::warn("{}", io::describe(d));

  // Channels: all of the archive, or those on the placement's sensor nodes.
  std::vector<std::size_t> columns;
  const auto& channels = archive.channels();
  if (!request.placement_path.empty()) {
    const auto placement = io::read_placement(request.placement_path);
    std::set<std::int64_t> sensors(placement.node_ids.begin(), placement.node_ids.end());
    std::set<std::int64_t> covered;
    for (std::size_t c = 0; c < channels.size(); ++c) {
      if (sensors.count(channels[c].node_id)) {
        columns.push_back(c);
        covered.insert(channels[c].node_id);
      }
    }
    for (const std::int64_t node : placement.node_ids) {
      if (!covered.count(node)) {
        spdlog::warn("{}: sensor node {} of the placement has no channel in the archive",
                     request.placement_path, node);
      }
    }
    if (columns.empty()) {
      throw InputError(fmt::format("{}: no channel of the archive ({}) is on a sensor node of the "
                                   "placement",
                                   request.placement_path, archive.files().front().path));
    }
  } else {
    columns.resize(channels.size());
    std::iota(columns.begin(), columns.end(), std::size_t{0});
  }
  std::vector<std::size_t> channel_nodes;
  for (const std::size_t c : columns) {
    const std::int64_t index = modes.node_index(channels[c].node_id);
    if (index < 0) {
      throw InputError(fmt::format("{}: channel {} is on node {}, which is not a node of the "
                                   "model ({})",
                                   archive.files().front().path, channels[c].name,
                                   channels[c].node_id, request.modes_path));
    }
    channel_nodes.push_back(static_cast<std::size_t>(index));
  }
  out.n_channels = columns.size();

  // Modes: the lowest n (all by default); rigid-body modes take part in the expansion.
  const std::size_t file_modes = modes.n_modes();
  if (file_modes == 0) throw InputError(fmt::format("{}: the file has no modes", request.modes_path));
  if (static_cast<std::size_t>(request.n_modes) > file_modes) {
    throw InputError(fmt::format("--modes {} but {} has only {} modes", request.n_modes,
                                 request.modes_path, file_modes));
  }
  out.n_modes = request.n_modes > 0 ? static_cast<std::size_t>(request.n_modes) : file_modes;
  std::vector<std::int64_t> mode_list(out.n_modes);
  std::iota(mode_list.begin(), mode_list.end(), std::int64_t{0});
  std::vector<double> frequencies(modes.frequencies_hz().begin(),
                                  modes.frequencies_hz().begin() + static_cast<std::ptrdiff_t>(out.n_modes));
  double lowest_flexible = 0.0;
  for (const double f : frequencies) {
    if (f >= request.rigid_hz) {
      lowest_flexible = f;
      break;
    }
  }
  if (!(lowest_flexible > 0.0)) {
    throw InputError(fmt::format("{}: the {} modes used are all rigid-body modes (below {} Hz)",
                                 request.modes_path, out.n_modes, request.rigid_hz));
  }
  if (out.n_channels < out.n_modes && request.regularisation == 0.0) {
    throw InputError(fmt::format(
        "{} channels cannot identify {} modes: use --modes {} or fewer, more sensors, or "
        "--regularisation (Tikhonov)",
        out.n_channels, out.n_modes, out.n_channels));
  }

  rc::PipelineSetup setup;
  setup.channel_columns = columns;
  const auto shapes = modes.shapes(mode_list, channel_nodes);  // [m, n_channels, 3]
  setup.channel_matrix.assign(out.n_channels * out.n_modes, 0.0);
  for (std::size_t c = 0; c < out.n_channels; ++c) {
    const auto& d = channels[columns[c]].direction;
    setup.channel_names.push_back(channels[columns[c]].name);
    for (std::size_t k = 0; k < out.n_modes; ++k) {
      const double* phi = shapes.data() + (k * out.n_channels + c) * 3;
      setup.channel_matrix[c * out.n_modes + k] = d[0] * phi[0] + d[1] * phi[1] + d[2] * phi[2];
    }
  }

  // Output nodes and their modal stresses, node-major [p * 6, m].
  if (request.nodes.empty()) {
    out.output_nodes.resize(modes.n_nodes());
    std::iota(out.output_nodes.begin(), out.output_nodes.end(), std::size_t{0});
  } else {
    out.output_nodes = modes.resolve_nodes(request.nodes, "output");
  }
  const std::size_t p = out.output_nodes.size();
  {
    const auto stress = modes.stresses(mode_list, out.output_nodes);  // [m, p, 6]
    setup.modal_stress.resize(p * 6 * out.n_modes);
    for (std::size_t k = 0; k < out.n_modes; ++k) {
      for (std::size_t r = 0; r < p * 6; ++r) {
        setup.modal_stress[r * out.n_modes + k] = stress[k * p * 6 + r];
      }
    }
  }
  if (request.history) {
    const auto phi = modes.shapes(mode_list, out.output_nodes);  // [m, p, 3]
    setup.modal_shapes.resize(p * 3 * out.n_modes);
    for (std::size_t k = 0; k < out.n_modes; ++k) {
      for (std::size_t r = 0; r < p * 3; ++r) {
        setup.modal_shapes[r * out.n_modes + k] = phi[k * p * 3 + r];
      }
    }
  }
  setup.n_modes = out.n_modes;
  setup.n_nodes = p;
  setup.expansion.regularisation = request.regularisation;
  const double nyquist = 0.5 * out.sample_rate_hz;
  setup.band_low_hz = std::isnan(request.band_low_hz) ? 0.5 * lowest_flexible : request.band_low_hz;
  setup.band_high_hz = std::isnan(request.band_high_hz) ? 0.9 * nyquist : request.band_high_hz;
  rc::BandIntegrator::check_band(out.sample_rate_hz, setup.band_low_hz, setup.band_high_hz);
  if (setup.band_low_hz > lowest_flexible) {
    spdlog::warn("the band's low corner {:.4g} Hz is above the lowest flexible mode ({:.4g} Hz): "
                 "that mode's displacements below the band are not reconstructed",
                 setup.band_low_hz, lowest_flexible);
  }
  for (const double f : frequencies) {
    if (f > setup.band_high_hz) {
      spdlog::warn("modes above the band's high corner {:.4g} Hz (from {:.4g} Hz) are estimated "
                   "but their response above it is filtered out",
                   setup.band_high_hz, f);
      break;
    }
  }
  setup.settle_samples = std::isnan(request.settle_s)
                             ? -1
                             : static_cast<std::int64_t>(std::llround(request.settle_s * out.sample_rate_hz));
  setup.fft_size = static_cast<std::size_t>(request.block_samples);
  setup.equivalent = out.equivalent;
  setup.history = request.history;
  if (request.history && request.backend.rfind("cuda", 0) == 0) {
    throw InputError("--history is written by the CPU backend: use --backend cpu or auto");
  }
  setup.executor = choose_executor(request, rank);
  out.pipeline = std::make_unique<rc::Pipeline>(std::move(setup), out.sample_rate_hz);
  out.backend = out.pipeline->backend();

  if (!request.sn_curve_path.empty()) {
    out.curve = solvers::load_sn_curve(request.sn_curve_path, stress_unit_of(out.units));
  }

  std::vector<std::int64_t> segment_samples;
  for (std::size_t s = 0; s < archive.n_segments(); ++s) segment_samples.push_back(archive.n_samples(s));
  out.blocks = rc::make_blocks(segment_samples, out.pipeline->block_samples());

  // Header of the results file.
  io::ResultsHeader& h = out.header;
  h.units = out.units;
  h.modes_file = request.modes_path;
  for (const auto& f : archive.files()) h.archive_files.push_back(f.path);
  h.sample_rate_hz = out.sample_rate_hz;
  h.start_time = archive.segments().front().start_time;
  h.n_samples = out.n_samples;
  for (const std::size_t j : out.output_nodes) {
    h.node_ids.push_back(modes.node_ids()[j]);
    for (int c = 0; c < 3; ++c) h.coordinates.push_back(modes.coordinates()[3 * j + static_cast<std::size_t>(c)]);
  }
  h.mode_indices = mode_list;
  h.frequencies_hz = frequencies;
  for (const std::size_t c : columns) {
    h.channel_names.push_back(channels[c].name);
    h.channel_nodes.push_back(channels[c].node_id);
    for (const double d : channels[c].direction) h.channel_directions.push_back(d);
    h.channel_units.push_back(channels[c].unit);
  }
  std::int64_t first = 0;
  for (const auto& seg : archive.segments()) {
    h.segment_start_times.push_back(seg.start_time);
    h.segment_samples.push_back(seg.n_samples);
    h.segment_first_sample.push_back(first);
    first += seg.n_samples;
  }
  if (request.nodes.empty() && modes.has_topology()) h.topology = modes.topology(&h.n_cells);
  const rc::Pipeline& pipe = *out.pipeline;
  h.attributes["settle_s"] = static_cast<double>(pipe.settle_samples()) / out.sample_rate_hz;
  h.attributes["band_low_hz"] = pipe.integrator().low_hz();
  h.attributes["band_high_hz"] = pipe.integrator().high_hz();
  h.attributes["filter_half_length_s"] =
      static_cast<double>(pipe.integrator().half_length()) / out.sample_rate_hz;
  h.attributes["regularisation"] = request.regularisation;
  h.attributes["equivalent_cycles"] = request.equivalent_cycles;
  h.text_attributes["equivalent_stress"] = rc::to_string(out.equivalent);
  h.text_attributes["residue"] = rc::to_string(out.residue);
  h.text_attributes["gaps"] = request.gaps;
  h.text_attributes["unobservable"] = request.unobservable;
  h.text_attributes["placement_file"] = request.placement_path;
  h.text_attributes["output_nodes"] = request.nodes.empty() ? std::string("all") : request.nodes;
  if (out.curve) {
    h.text_attributes["sn_curve_file"] = request.sn_curve_path;
    h.text_attributes["sn_curve"] = out.curve->name;
  }
  h.history = request.history;

  // Fingerprint: a checkpoint is resumed only by a run of the same inputs and settings.
  std::ostringstream key;
  key << file_identity(request.modes_path) << "\n";
  for (const auto& f : archive.files()) key << file_identity(f.path) << "\n";
  if (!request.placement_path.empty()) key << file_identity(request.placement_path) << "\n";
  if (!request.sn_curve_path.empty()) key << file_identity(request.sn_curve_path) << "\n";
  if (!request.nodes.empty() && fs::is_regular_file(request.nodes)) key << file_identity(request.nodes) << "\n";
  key << fmt::format("nodes={} modes={} rigid={} reg={} band={}:{} settle={} eq={} residue={} "
                     "neq={} gaps={} unobs={} history={} fft={} p={} blocks={}",
                     request.nodes, out.n_modes, request.rigid_hz, request.regularisation,
                     pipe.integrator().low_hz(), pipe.integrator().high_hz(), pipe.settle_samples(),
                     request.equivalent, request.residue, request.equivalent_cycles, request.gaps,
                     request.unobservable, request.history, pipe.integrator().fft_size(), p,
                     out.blocks.size());
  out.fingerprint = io::sha256_text(key.str());
  out.partial_path = request.out_path + ".partial";
  out.checkpoint_dir = request.out_path + ".checkpoint";
  if (request.xdmf_path == "-") {
    out.xdmf_path.clear();
  } else if (request.xdmf_path.empty()) {
    out.xdmf_path = fs::path(request.out_path).replace_extension(".xdmf").string();
  } else {
    out.xdmf_path = request.xdmf_path;
  }
  return out;
}

// ---- checkpoints --------------------------------------------------------------------------

struct Progress {
  std::size_t next_block = 0;
  rc::BlockReport report;
};

std::string checkpoint_path(const Prepared& prepared, const cluster::Communicator& comm) {
  return (fs::path(prepared.checkpoint_dir) /
          fmt::format("rank-{}-of-{}.state", comm.rank(), comm.size()))
      .string();
}

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <class T>
T get(const std::string& in, std::size_t& at) {
  if (at + sizeof(T) > in.size()) throw InputError("checkpoint: truncated");
  T value;
  std::memcpy(&value, in.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

void put_sum(std::string& out, const solvers::ExactSum& sum) {
  for (const auto limb : sum.limbs()) put(out, limb);
  put(out, sum.flags());
}

solvers::ExactSum get_sum(const std::string& in, std::size_t& at) {
  std::array<std::uint64_t, solvers::ExactSum::kLimbs> limbs{};
  for (auto& limb : limbs) limb = get<std::uint64_t>(in, at);
  const auto flags = get<std::uint8_t>(in, at);
  return solvers::ExactSum::from_raw(limbs, flags);
}

/// The counts of a BlockReport (not its logged changes), for checkpoints and MPI transfers.
void put_report(std::string& bytes, const rc::BlockReport& r) {
  put(bytes, r.dropout_values);
  put(bytes, r.live_set_changes);
  put(bytes, r.unobservable_samples);
  put(bytes, r.excluded_samples);
  put(bytes, r.first_unobservable);
  put<std::uint64_t>(bytes, r.channel_dropouts.size());
  for (const auto v : r.channel_dropouts) put(bytes, v);
  put_sum(bytes, r.noise_sq);
  put(bytes, r.noise_dof);
}

rc::BlockReport get_report(const std::string& bytes, std::size_t& at) {
  rc::BlockReport r;
  r.dropout_values = get<std::int64_t>(bytes, at);
  r.live_set_changes = get<std::int64_t>(bytes, at);
  r.unobservable_samples = get<std::int64_t>(bytes, at);
  r.excluded_samples = get<std::int64_t>(bytes, at);
  r.first_unobservable = get<std::int64_t>(bytes, at);
  r.channel_dropouts.resize(get<std::uint64_t>(bytes, at));
  for (auto& v : r.channel_dropouts) v = get<std::int64_t>(bytes, at);
  r.noise_sq = get_sum(bytes, at);
  r.noise_dof = get<std::int64_t>(bytes, at);
  return r;
}

void write_checkpoint(const std::string& path, const std::string& fingerprint,
                      const Progress& progress, const rc::FatigueState& state) {
  std::string bytes;
  put(bytes, kCheckpointMagic);
  put<std::uint64_t>(bytes, fingerprint.size());
  bytes += fingerprint;
  put<std::uint64_t>(bytes, progress.next_block);
  put_report(bytes, progress.report);
  const auto state_bytes = state.serialize();
  put<std::uint64_t>(bytes, state_bytes.size());
  bytes.append(reinterpret_cast<const char*>(state_bytes.data()), state_bytes.size());

  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("{}: cannot write the checkpoint: {}", temporary, std::strerror(errno)));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw IoError(fmt::format("{}: cannot write the checkpoint: {}", temporary, std::strerror(e)));
    }
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot write the checkpoint: {}", path, ec.message()));
}

/// False when there is no checkpoint. @throws InputError for one of other inputs or settings.
bool read_checkpoint(const std::string& path, const std::string& fingerprint, Progress& progress,
                     rc::FatigueState& state) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t at = 0;
  if (get<std::uint32_t>(bytes, at) != kCheckpointMagic) {
    throw InputError(fmt::format("{}: not a vsense reconstruction checkpoint", path));
  }
  const auto length = get<std::uint64_t>(bytes, at);
  if (at + length > bytes.size() || bytes.compare(at, length, fingerprint) != 0) {
    throw InputError(fmt::format("{}: the checkpoint belongs to other inputs or settings (a "
                                 "changed file, option or rank count); run again without --resume",
                                 path));
  }
  at += length;
  progress.next_block = get<std::uint64_t>(bytes, at);
  progress.report = get_report(bytes, at);
  const auto state_length = get<std::uint64_t>(bytes, at);
  if (at + state_length != bytes.size()) throw InputError(fmt::format("{}: checkpoint truncated", path));
  state.deserialize(std::span(reinterpret_cast<const std::byte*>(bytes.data()) + at, state_length));
  return true;
}

// ---- history ------------------------------------------------------------------------------

class RawHistory final : public rc::HistorySink {
public:
  RawHistory(io::RawFile& file, const io::HistoryLayout& layout, std::size_t n_nodes)
      : file_(file), layout_(layout), n_nodes_(n_nodes) {}
  void write(std::int64_t global_first, std::size_t n_rows, const float* stress,
             const float* displacement) override {
    const auto p = static_cast<std::int64_t>(n_nodes_);
    file_.write(layout_.stress + global_first * p * 6 * 4, stress, n_rows * n_nodes_ * 6 * 4);
    file_.write(layout_.displacement + global_first * p * 3 * 4, displacement,
                n_rows * n_nodes_ * 3 * 4);
  }

private:
  io::RawFile& file_;
  io::HistoryLayout layout_;
  std::size_t n_nodes_;
};

std::vector<std::byte> encode_layout(const io::HistoryLayout& layout) {
  std::vector<std::byte> bytes(3 * sizeof(std::int64_t));
  const std::int64_t values[3] = {layout.modal_coordinates, layout.displacement, layout.stress};
  std::memcpy(bytes.data(), values, sizeof values);
  return bytes;
}

io::HistoryLayout decode_layout(const std::vector<std::byte>& bytes) {
  std::int64_t values[3] = {-1, -1, -1};
  if (bytes.size() == sizeof values) std::memcpy(values, bytes.data(), sizeof values);
  return {values[0], values[1], values[2]};
}

std::vector<std::byte> encode_report(const rc::BlockReport& r, const std::vector<std::byte>& state) {
  std::string bytes;
  put_report(bytes, r);
  std::vector<std::byte> out(bytes.size() + state.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  std::memcpy(out.data() + bytes.size(), state.data(), state.size());
  return out;
}

rc::BlockReport decode_report(const std::vector<std::byte>& bytes, std::size_t& state_at) {
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::size_t at = 0;
  rc::BlockReport r = get_report(text, at);
  state_at = at;
  return r;
}

void commit_file(const std::string& from, const std::string& to) {
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw IoError(fmt::format("{}: cannot move the finished results into place: {}", to, ec.message()));
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, static_cast<int>((s / 60) % 60));
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, static_cast<int>(s % 60));
  return fmt::format("{}s", s);
}

}  // namespace

ReconstructSummary run_reconstruct(const ReconstructRequest& request,
                                   const cluster::Communicator& comm) {
  const auto start = Clock::now();
  Prepared prepared;
  cluster::collectively(comm, [&] { prepared = prepare(request, comm.rank()); });
  rc::Pipeline& pipeline = *prepared.pipeline;
  const std::size_t p = prepared.output_nodes.size();
  const std::size_t n_blocks = prepared.blocks.size();

  // The CPU path is the reference; auto takes the CUDA path when a device works.
  const std::string backend_used = prepared.backend;
  if (comm.is_root()) {
    const auto& integ = pipeline.integrator();
    spdlog::info("reconstruct: {} channels, {} modes, {} output nodes, {} samples at {} Hz in {} "
                 "segment{} ({} blocks of {} samples), {} rank{}, backend {}",
                 prepared.n_channels, prepared.n_modes, p, prepared.n_samples,
                 prepared.sample_rate_hz, prepared.archive->n_segments(),
                 prepared.archive->n_segments() == 1 ? "" : "s", n_blocks,
                 pipeline.block_samples(), comm.size(), comm.size() == 1 ? "" : "s",
                 backend_used + (request.backend == "auto" && backend_used == "cpu"
                                     ? (request.history ? " (auto: histories are a CPU feature)"
                                                        : " (auto: no usable CUDA device)")
                                     : ""));
    spdlog::info("reconstruct: band {:.4g}..{:.4g} Hz (integration filter +-{:.3g} s), statistics "
                 "exclude {:.3g} s at each end of a segment and around unobservable stretches",
                 integ.low_hz(), integ.high_hz(),
                 static_cast<double>(integ.half_length()) / prepared.sample_rate_hz,
                 static_cast<double>(pipeline.settle_samples()) / prepared.sample_rate_hz);
  }

  // The hash of the inputs runs beside the work (rank 0; it reads the archive once more).
  std::future<std::string> source_hash;
  if (comm.is_root()) {
    std::vector<std::string> inputs{request.modes_path};
    for (const auto& f : prepared.archive->files()) inputs.push_back(f.path);
    source_hash = std::async(std::launch::async, [inputs] { return io::sha256_files(inputs); });
  }

  // The partial results file: created by rank 0 (fresh runs), reused by resumed runs.
  io::HistoryLayout layout;
  cluster::collectively(comm, [&] {
    if (!comm.is_root()) return;
    std::error_code ec;
    const bool have_partial = fs::exists(prepared.partial_path, ec);
    if (request.resume && request.history && !have_partial) {
      throw InputError(fmt::format("{}: --resume with --history needs the partial results file "
                                   "of the interrupted run, which is missing; run again without "
                                   "--resume",
                                   prepared.partial_path));
    }
    if (!request.resume || !have_partial) {
      fs::remove_all(prepared.checkpoint_dir, ec);
      layout = io::create_results(prepared.partial_path, prepared.header);
    } else {
      // Resumed: the history datasets of the interrupted run's file, where they are.
      io::hdf5::File file(prepared.partial_path, io::hdf5::File::Mode::read);
      if (request.history) {
        auto offset = [&](const char* dataset) {
          io::hdf5::Handle id(H5Dopen2(file.id(), dataset, H5P_DEFAULT), H5Dclose);
          const haddr_t at = id ? H5Dget_offset(id.get()) : HADDR_UNDEF;
          if (at == HADDR_UNDEF) {
            throw InputError(fmt::format("{}: dataset {} is missing or damaged; run again "
                                         "without --resume",
                                         prepared.partial_path, dataset));
          }
          return static_cast<std::int64_t>(at);
        };
        layout.modal_coordinates = offset("/results/modal_coordinates");
        layout.displacement = offset("/results/displacement");
        layout.stress = offset("/results/stress");
      }
    }
    fs::create_directories(prepared.checkpoint_dir, ec);
    if (ec) {
      throw IoError(fmt::format("{}: cannot create the checkpoint directory: {}",
                                prepared.checkpoint_dir, ec.message()));
    }
  });
  {
    auto bytes = encode_layout(layout);
    comm.broadcast(bytes);
    layout = decode_layout(bytes);
  }

  // This rank's blocks, their checkpoint, and the work.
  const cluster::Partition share{static_cast<std::int64_t>(n_blocks), 1, comm.size()};
  const auto first_block = static_cast<std::size_t>(share.begin(comm.rank()));
  const auto end_block = static_cast<std::size_t>(share.end(comm.rank()));
  const solvers::SnCurve* curve = prepared.curve ? &*prepared.curve : nullptr;
  rc::FatigueState state(p, curve);
  Progress progress;
  progress.next_block = first_block;
  progress.report.channel_dropouts.assign(prepared.n_channels, 0);
  bool resumed = false;
  double processing_seconds = 0.0;
  cluster::collectively(comm, [&] {
    const std::string checkpoint = checkpoint_path(prepared, comm);
    if (request.resume) {
      resumed = read_checkpoint(checkpoint, prepared.fingerprint, progress, state);
      if (resumed) {
        spdlog::info("reconstruct: resuming at block {} of {} (checkpoint {})",
                     progress.next_block, n_blocks, checkpoint);
      } else if (comm.is_root()) {
        spdlog::warn("reconstruct: --resume but no checkpoint {}: starting from the beginning",
                     checkpoint);
      }
    }
    std::unique_ptr<io::RawFile> raw;
    std::unique_ptr<RawHistory> history;
    if (request.history) {
      raw = std::make_unique<io::RawFile>(prepared.partial_path);
      history = std::make_unique<RawHistory>(*raw, layout, p);
    }
    std::vector<double> q;
    auto last_checkpoint = Clock::now();
    auto last_progress = Clock::now();
    const auto work_start = Clock::now();
    std::size_t logged_changes = 0;
    const std::size_t my_blocks = end_block - first_block;
    for (std::size_t b = progress.next_block; b < end_block; ++b) {
      const rc::Block& block = prepared.blocks[b];
      q.resize(static_cast<std::size_t>(block.n) * prepared.n_modes);
      const rc::BlockReport report =
          pipeline.process(*prepared.archive, block, state, history.get(),
                           request.history ? q.data() : nullptr);
      if (request.history) {
        raw->write(layout.modal_coordinates +
                       block.global_first * static_cast<std::int64_t>(prepared.n_modes) * 8,
                   q.data(), q.size() * sizeof(double));
      }
      if (report.unobservable_samples > 0 && request.unobservable == "error") {
        throw InputError(fmt::format(
            "{}: samples cannot be reconstructed: the live channels cannot identify the modes "
            "(all or too many channels dropped out); --unobservable exclude leaves such stretches "
            "out of the statistics",
            describe_sample(*prepared.archive, block.segment, report.first_unobservable)));
      }
      for (const auto& change : report.changes) {
        if (logged_changes++ >= kMaxLoggedChanges) break;
        const std::string where = describe_sample(*prepared.archive, block.segment, change.sample);
        if (change.observable) {
          spdlog::info("{}: {} of {} channels live, expansion re-derived (condition {:.3g})",
                       where, change.live, prepared.n_channels, change.condition);
        } else {
          spdlog::warn("{}: {} of {} channels live: the modes cannot be identified; samples left "
                       "out of the statistics until enough channels return",
                       where, change.live, prepared.n_channels);
        }
      }
      if (logged_changes == kMaxLoggedChanges + 1 && !report.changes.empty()) {
        spdlog::info("(further changes of the live channels are counted, not logged)");
        ++logged_changes;
      }
      progress.report.add(report);
      progress.next_block = b + 1;
      const auto now = Clock::now();
      if (request.checkpoint_interval_s > 0.0 && b + 1 < end_block &&
          std::chrono::duration<double>(now - last_checkpoint).count() >= request.checkpoint_interval_s) {
        if (raw) raw->sync();
        write_checkpoint(checkpoint, prepared.fingerprint, progress, state);
        last_checkpoint = now;
      }
      if (comm.is_root() && std::chrono::duration<double>(now - last_progress).count() >= 10.0) {
        const double elapsed = std::chrono::duration<double>(now - work_start).count();
        const std::size_t done = b + 1 - first_block;
        const double rate = static_cast<double>(done) / std::max(elapsed, 1e-9);
        spdlog::info("reconstruct: {:.0f}% ({} of {} blocks{}), ETA {}",
                     100.0 * static_cast<double>(done) / static_cast<double>(my_blocks), done,
                     my_blocks, comm.size() > 1 ? " on rank 0" : "",
                     format_duration(static_cast<double>(end_block - b - 1) / rate));
        last_progress = now;
      }
    }
    if (raw) raw->sync();
    processing_seconds = std::chrono::duration<double>(Clock::now() - work_start).count();
  });

  // Merge in rank order on rank 0 (exact), write the summary, move the file into place.
  ReconstructSummary summary;
  std::vector<std::byte> own = encode_report(progress.report, state.serialize());
  const auto pieces = comm.gather(own);
  double seconds_max[1] = {processing_seconds};
  comm.allreduce_max(seconds_max);
  cluster::collectively(comm, [&] {
    if (!comm.is_root()) return;
    rc::BlockReport total;
    total.channel_dropouts.assign(prepared.n_channels, 0);
    rc::FatigueState merged(p, curve);
    for (std::size_t r = 0; r < pieces.size(); ++r) {
      std::size_t state_at = 0;
      const rc::BlockReport report = decode_report(pieces[r], state_at);
      total.add(report);
      if (r == 0) {
        merged.deserialize(std::span(pieces[r]).subspan(state_at));
      } else {
        rc::FatigueState next(p, curve);
        next.deserialize(std::span(pieces[r]).subspan(state_at));
        merged.merge(next);
      }
    }
    merged.finish(prepared.residue);

    io::ResultsSummary results;
    results.von_mises_max = merged.von_mises_max();
    results.von_mises_max_time_s.assign(p, std::numeric_limits<double>::quiet_NaN());
    const io::Archive& archive = *prepared.archive;
    const auto& segments = archive.segments();
    std::vector<std::int64_t> segment_first;
    std::int64_t first = 0;
    for (const auto& seg : segments) {
      segment_first.push_back(first);
      first += seg.n_samples;
    }
    for (std::size_t j = 0; j < p; ++j) {
      const std::int64_t sample = merged.von_mises_max_sample()[j];
      if (sample < 0) continue;
      std::size_t s = 0;
      while (s + 1 < segments.size() && segment_first[s + 1] <= sample) ++s;
      results.von_mises_max_time_s[j] =
          io::seconds_between(segments.front().start, segments[s].start) +
          static_cast<double>(sample - segment_first[s]) / prepared.sample_rate_hz;
    }
    if (merged.has_fatigue()) {
      const auto& damage = *merged.damage();
      for (std::size_t j = 0; j < p; ++j) {
        const auto c = static_cast<std::int64_t>(j);
        results.damage.push_back(damage.damage(c));
        results.cycles.push_back(damage.cycles(c));
        results.damage_equivalent_range.push_back(
            damage.cycles(c) > 0.0 ? damage.equivalent_range(c, request.equivalent_cycles) : 0.0);
      }
      results.attributes["equivalent_slope"] = damage.equivalent_slope();
    }
    results.dropout_samples = total.channel_dropouts;
    // The channels' noise from the residual of the fit, and what it puts into each node's
    // stress (NaN when there are no more channels than modes: nothing to estimate it from).
    const double noise_variance = total.noise_dof > 0
                                      ? total.noise_sq.value() / static_cast<double>(total.noise_dof)
                                      : std::numeric_limits<double>::quiet_NaN();
    summary.channel_noise_rms = std::sqrt(noise_variance);
    results.attributes["channel_noise_rms"] = summary.channel_noise_rms;
    results.attributes["channel_noise_dof"] = static_cast<double>(total.noise_dof);
    results.von_mises_noise_rms.resize(p);
    for (std::size_t j = 0; j < p; ++j) {
      results.von_mises_noise_rms[j] = std::sqrt(noise_variance * pipeline.noise_factors()[j]);
    }
    results.attributes["counted_samples"] = static_cast<double>(merged.counted_samples());
    results.attributes["excluded_samples"] = static_cast<double>(total.excluded_samples);
    results.attributes["unobservable_samples"] = static_cast<double>(total.unobservable_samples);
    results.attributes["live_set_changes"] = static_cast<double>(total.live_set_changes);
    results.attributes["ranks"] = static_cast<double>(comm.size());
    results.text_attributes["backend"] = backend_used;
    io::complete_results(prepared.partial_path, results);
    {
      // The contract's root attribute, now that the hash of the inputs is known.
      io::hdf5::File file(prepared.partial_path, io::hdf5::File::Mode::update);
      file.set_attribute("/", "source_sha256", source_hash.get());
      file.close();
    }
    commit_file(prepared.partial_path, request.out_path);
    if (!prepared.xdmf_path.empty()) {
      io::write_results_xdmf(prepared.xdmf_path, request.out_path, p, prepared.header.n_cells,
                             prepared.header.topology.size(), merged.has_fatigue());
    }
    std::error_code ec;
    fs::remove_all(prepared.checkpoint_dir, ec);

    summary.dropout_samples = total.dropout_values;
    summary.channel_set_changes = total.live_set_changes;
    summary.excluded_samples = total.excluded_samples;
    for (std::size_t j = 0; j < p; ++j) {
      if (merged.von_mises_max_sample()[j] >= 0 &&
          (summary.von_mises_max_node < 0 || results.von_mises_max[j] > summary.von_mises_max)) {
        summary.von_mises_max = results.von_mises_max[j];
        summary.von_mises_max_node = prepared.header.node_ids[j];
      }
      if (!results.damage.empty() &&
          (summary.damage_max_node < 0 || results.damage[j] > summary.damage_max)) {
        summary.damage_max = results.damage[j];
        summary.damage_max_node = prepared.header.node_ids[j];
      }
    }
    if (total.unobservable_samples > 0) {
      spdlog::warn("reconstruct: {} samples ({:.3g} s) could not be reconstructed (too few live "
                   "channels) and were left out of the statistics with their settle intervals",
                   total.unobservable_samples,
                   static_cast<double>(total.unobservable_samples) / prepared.sample_rate_hz);
    }
  });

  summary.out_path = request.out_path;
  summary.xdmf_path = prepared.xdmf_path;
  summary.backend = backend_used;
  summary.ranks = comm.size();
  summary.n_samples = prepared.n_samples;
  summary.n_segments = static_cast<std::int64_t>(prepared.archive->n_segments());
  summary.n_channels = static_cast<std::int64_t>(prepared.n_channels);
  summary.n_modes = static_cast<std::int64_t>(prepared.n_modes);
  summary.n_nodes = static_cast<std::int64_t>(p);
  summary.sample_rate_hz = prepared.sample_rate_hz;
  summary.band_low_hz = pipeline.integrator().low_hz();
  summary.band_high_hz = pipeline.integrator().high_hz();
  summary.settle_s = static_cast<double>(pipeline.settle_samples()) / prepared.sample_rate_hz;
  summary.resumed = resumed;
  summary.seconds = seconds_since(start);
  summary.node_samples_per_second =
      seconds_max[0] > 0.0 ? static_cast<double>(p) * static_cast<double>(prepared.n_samples) / seconds_max[0]
                           : 0.0;
  summary.peak_memory_bytes = peak_memory_bytes();
  return summary;
}

std::string to_json(const ReconstructSummary& s) {
  auto number = [](double v) { return std::isfinite(v) ? fmt::format("{:.17g}", v) : std::string("null"); };
  return fmt::format(
      R"({{"command":"reconstruct","results":"{}","xdmf":"{}","backend":"{}","ranks":{},)"
      R"("n_samples":{},"n_segments":{},"n_channels":{},"n_modes":{},"n_nodes":{},)"
      R"("sample_rate_hz":{},"band_hz":[{},{}],"settle_s":{},"dropout_samples":{},)"
      R"("channel_set_changes":{},"excluded_samples":{},"channel_noise_rms":{},"von_mises_max":{},)"
      R"("von_mises_max_node":{},"damage_max":{},"damage_max_node":{},"resumed":{},)"
      R"("seconds":{},"node_samples_per_second":{},"peak_memory_bytes":{}}})",
      json_escape(s.out_path), json_escape(s.xdmf_path), json_escape(s.backend), s.ranks,
      s.n_samples, s.n_segments, s.n_channels, s.n_modes, s.n_nodes, number(s.sample_rate_hz),
      number(s.band_low_hz), number(s.band_high_hz), number(s.settle_s), s.dropout_samples,
      s.channel_set_changes, s.excluded_samples, number(s.channel_noise_rms),
      number(s.von_mises_max), s.von_mises_max_node,
      number(s.damage_max), s.damage_max_node, s.resumed ? "true" : "false", number(s.seconds),
      number(s.node_samples_per_second), s.peak_memory_bytes);
}

}  // namespace vsense::jobs
