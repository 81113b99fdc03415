// Job files: TOML (schema_version 1) read with every problem collected, then the built-in demo
// job.
#include "vsense/jobs/job_file.hpp"

#include <fmt/format.h>
#include <glob.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/placement.hpp"
#include "vsense/solvers/sn_curve.hpp"

namespace vsense::jobs {

namespace fs = std::filesystem;

namespace {

/// Every problem found in a job file, in file order.
class Diagnostics {
public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void add(std::int64_t line, const std::string& key, const std::string& message) {
    const std::string place = line > 0 ? fmt::format("{}:{}", file_, line) : file_;
    entries_.push_back({line, key.empty() ? fmt::format("{}: {}", place, message)
                                          : fmt::format("{}: {}: {}", place, key, message)});
  }
  bool empty() const noexcept { return entries_.empty(); }
  /// @throws InputError with every problem, in line order.
  void throw_if_any() const {
    if (entries_.empty()) return;
    auto sorted = entries_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Entry& a, const Entry& b) { return a.line < b.line; });
    if (sorted.size() == 1) throw InputError(sorted.front().text);
    std::string text =
        fmt::format("{}: {} problems, nothing was run:", file_, sorted.size());
    for (const auto& e : sorted) text += "\n  " + e.text;
    throw InputError(text);
  }
  const std::string& file() const noexcept { return file_; }

private:
  struct Entry {
    std::int64_t line;
    std::string text;
  };
  std::string file_;
  std::vector<Entry> entries_;
};

std::int64_t line_of(const toml::node* node) {
  return node != nullptr && node->source().begin ? node->source().begin.line : 0;
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "floating-point number";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    default: return "date/time";
  }
}

std::string format_number(double v) { return fmt::format("{:.12g}", v); }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

/// Typed reads of one table; remembers the keys read so that the rest are reported unknown.
class Section {
public:
  Section(const toml::table* table, std::string name, Diagnostics& diagnostics)
      : table_(table), name_(std::move(name)), d_(diagnostics) {}

  bool present() const noexcept { return table_ != nullptr; }
  std::int64_t line() const { return line_of(table_); }
  std::string key(const std::string& k) const { return name_.empty() ? k : name_ + "." + k; }

  const toml::node* node(const std::string& k) {
    known_.push_back(k);
    return table_ != nullptr ? table_->get(k) : nullptr;
  }
  bool has(const std::string& k) const { return table_ != nullptr && table_->get(k) != nullptr; }

  void error(const std::string& k, const std::string& message) {
    const toml::node* n = table_ != nullptr ? table_->get(k) : nullptr;
    d_.add(n != nullptr ? line_of(n) : line(), key(k), message);
  }

  std::optional<std::string> string(const std::string& k) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    if (const auto* s = n->as_string()) return s->get();
    error(k, fmt::format("expected a string, got a {}", type_name(*n)));
    return std::nullopt;
  }

  /// A string that must be one of `choices`.
  std::optional<std::string> choice(const std::string& k, const std::vector<std::string>& choices) {
    auto v = string(k);
    if (v && std::find(choices.begin(), choices.end(), *v) == choices.end()) {
      error(k, fmt::format("\"{}\" is not one of {}", *v, join(choices)));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const std::string& k) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    if (const auto* b = n->as_boolean()) return b->get();
    error(k, fmt::format("expected true or false, got a {}", type_name(*n)));
    return std::nullopt;
  }

  /// A number in [lo, hi] (either end may be open: lo_open / hi_open).
  std::optional<double> number(const std::string& k, double lo = -HUGE_VAL, double hi = HUGE_VAL,
                               bool lo_open = false) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    return number_of(k, *n, lo, hi, lo_open);
  }

  std::optional<double> number_of(const std::string& k, const toml::node& n, double lo, double hi,
                                  bool lo_open) {
    double v;
    if (const auto* i = n.as_integer()) {
      v = static_cast<double>(i->get());
    } else if (const auto* f = n.as_floating_point()) {
      v = f->get();
    } else {
      error(k, fmt::format("expected a number, got a {}", type_name(n)));
      return std::nullopt;
    }
    if (!std::isfinite(v)) {
      error(k, fmt::format("expected a finite number, got {}", format_number(v)));
      return std::nullopt;
    }
    if ((lo_open ? !(v > lo) : v < lo) || v > hi) {
      std::string range;
      if (std::isfinite(lo) && std::isfinite(hi)) {
        range = fmt::format("in {}{}, {}]", lo_open ? "(" : "[", format_number(lo),
                            format_number(hi));
      } else if (std::isfinite(lo)) {
        range = fmt::format("{} {}", lo_open ? ">" : ">=", format_number(lo));
      } else {
        range = fmt::format("<= {}", format_number(hi));
      }
      error(k, fmt::format("must be {}, got {}", range, format_number(v)));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::int64_t> integer(const std::string& k, std::int64_t lo, std::int64_t hi) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    const auto* i = n->as_integer();
    if (i == nullptr) {
      error(k, fmt::format("expected an integer, got a {}", type_name(*n)));
      return std::nullopt;
    }
    const std::int64_t v = i->get();
    if (v < lo || v > hi) {
      error(k, hi == std::numeric_limits<std::int64_t>::max()
                   ? fmt::format("must be >= {}, got {}", lo, v)
                   : fmt::format("must be in [{}, {}], got {}", lo, hi, v));
      return std::nullopt;
    }
    return v;
  }

  /// A string or an array of strings.
  std::optional<std::vector<std::string>> strings(const std::string& k) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    if (const auto* s = n->as_string()) return std::vector<std::string>{s->get()};
    const auto* a = n->as_array();
    if (a == nullptr) {
      error(k, fmt::format("expected a string or an array of strings, got a {}", type_name(*n)));
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : *a) {
      const auto* s = item.as_string();
      if (s == nullptr) {
        error(k, fmt::format("expected an array of strings, found a {}", type_name(item)));
        return std::nullopt;
      }
      out.push_back(s->get());
    }
    return out;
  }

  /// A number or an array of numbers (>= lo each).
  std::optional<std::vector<double>> numbers(const std::string& k, double lo) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    std::vector<double> out;
    if (const auto* a = n->as_array()) {
      for (const auto& item : *a) {
        const auto v = number_of(k, item, lo, HUGE_VAL, false);
        if (!v) return std::nullopt;
        out.push_back(*v);
      }
      if (out.empty()) {
        error(k, "the array is empty");
        return std::nullopt;
      }
      return out;
    }
    const auto v = number_of(k, *n, lo, HUGE_VAL, false);
    if (!v) return std::nullopt;
    return std::vector<double>{*v};
  }

  /// [LO, HI] with 0 <= LO < HI.
  std::optional<std::pair<double, double>> band(const std::string& k) {
    const toml::node* n = node(k);
    if (n == nullptr) return std::nullopt;
    const auto* a = n->as_array();
    if (a == nullptr || a->size() != 2) {
      error(k, "expected [LO, HI] in Hz");
      return std::nullopt;
    }
    const auto lo = number_of(k, *a->get(0), 0.0, HUGE_VAL, false);
    const auto hi = number_of(k, *a->get(1), 0.0, HUGE_VAL, true);
    if (!lo || !hi) return std::nullopt;
    if (!(*lo < *hi)) {
      error(k, fmt::format("LO {} must be below HI {}", format_number(*lo), format_number(*hi)));
      return std::nullopt;
    }
    return std::pair{*lo, *hi};
  }

  /// A sub-table (present or not); a key that is not a table is an error.
  const toml::table* table(const std::string& k) {
    const toml::node* n = node(k);
    if (n == nullptr) return nullptr;
    if (const auto* t = n->as_table()) return t;
    error(k, fmt::format("expected a table [{}], got a {}", key(k), type_name(*n)));
    return nullptr;
  }

  /// Reports every key that was not read.
  void reject_unknown_keys() {
    if (table_ == nullptr) return;
    for (const auto& [k, n] : *table_) {
      const std::string name(k.str());
      if (std::find(known_.begin(), known_.end(), name) == known_.end()) {
        d_.add(line_of(&n), key(name), fmt::format("unknown key (known here: {})", join(known_)));
      }
    }
  }

private:
  const toml::table* table_;
  std::string name_;
  Diagnostics& d_;
  std::vector<std::string> known_;
};

/// `path` relative to `directory` (absolute, normalised).
std::string resolve(const std::string& directory, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(directory) / p;
  return fs::absolute(p).lexically_normal().string();
}

/// The files a pattern matches (glob(3); a plain path must exist), sorted.
std::vector<std::string> expand(const std::string& pattern) {
  glob_t matches{};
  std::vector<std::string> out;
  if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches) == 0) {
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) {
      std::error_code ec;
      if (fs::is_regular_file(matches.gl_pathv[i], ec)) out.emplace_back(matches.gl_pathv[i]);
    }
  }
  ::globfree(&matches);
  std::sort(out.begin(), out.end());
  return out;
}

/// A node selection: an NSET name, or a node-list file (when the string names a file; a name
/// with a slash or a dot-extension that does not exist is reported as a missing file).
std::string node_selection(Section& s, const std::string& k, const std::string& directory) {
  const auto v = s.string(k);
  if (!v || v->empty()) return "";
  const std::string path = resolve(directory, *v);
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (v->find('/') != std::string::npos || fs::path(*v).has_extension()) {
    s.error(k, fmt::format("{} is neither a file nor a node set name (no such file: {})", *v,
                           path));
    return "";
  }
  return *v;  // an NSET, checked when the stage reads the model
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto m : solvers::placement::all_methods()) {
      out.emplace_back(solvers::placement::method_name(m));
    }
    return out;
  }();
  return names;
}

void read_model(Section& s, JobSpec& job) {
  if (!s.present()) {
    s.error("path", "the job has no [model] section (path = \"MODEL.inp\" or builtin = "
                    "\"genset\")");
    return;
  }
  const auto path = s.string("path");
  const auto builtin = s.choice("builtin", {"genset"});
  const auto dofs = s.integer("dofs", 10000, 10000000);
  if (s.has("path") && s.has("builtin")) {
    s.error("builtin", "give path or builtin, not both");
  } else if (path) {
    job.model.path = resolve(job.directory, *path);
    std::error_code ec;
    if (!fs::is_regular_file(job.model.path, ec)) {
      s.error("path", fmt::format("no such model file: {}", job.model.path));
    }
    if (dofs) s.error("dofs", "only the built-in model has a size (dofs)");
  } else if (builtin) {
    job.model.builtin = *builtin;
    if (dofs) job.model.dofs = *dofs;
  } else if (!s.has("path") && !s.has("builtin")) {
    s.error("path", "missing (path = \"MODEL.inp\" or builtin = \"genset\")");
  }
  s.reject_unknown_keys();
}

void read_modes(Section& s, JobSpec& job) {
  auto& m = job.modes;
  m.n_modes = 20;
  if (const auto v = s.integer("count", 1, 100000)) m.n_modes = static_cast<int>(*v);
  if (const auto v = s.number("fmax_hz", 0.0, HUGE_VAL, true)) m.fmax_hz = *v;
  if (const auto v = s.number("shift")) m.shift = *v;
  if (const auto v = s.boolean("sturm_check")) m.sturm_check = *v;
  if (const auto v = s.choice("backend", {"auto", "cpu", "cuda", "slepc"})) {
    job.modes_backend = *v;
  }
  s.reject_unknown_keys();
}

void read_placement(Section& s, JobSpec& job) {
  auto& p = job.placement;
  if (!s.present()) return;
  p.enabled = true;
  auto& st = p.settings;
  const auto file = s.string("file");
  const auto sensors = s.integer("sensors", 1, 1000000);
  const auto method = s.choice("method", method_names());
  const auto compare = s.strings("compare");
  const auto use = s.string("use");
  if (file) {
    p.file = resolve(job.directory, *file);
    std::error_code ec;
    if (!fs::is_regular_file(p.file, ec)) {
      s.error("file", fmt::format("no such placement file: {}", p.file));
    }
    for (const char* k : {"sensors", "method", "compare", "use"}) {
      if (s.has(k)) s.error(k, "not used with file = (an existing placement)");
    }
  } else {
    if (!s.has("sensors")) s.error("sensors", "missing (the number of triaxial sensors)");
    if (sensors) st.sensors = static_cast<std::size_t>(*sensors);
    if (s.has("method") && s.has("compare")) {
      s.error("compare", "give method (one) or compare (several), not both");
    } else if (method) {
      p.methods = {*method};
    } else if (compare) {
      p.compare = true;
      std::vector<std::string> list = *compare;
      if (list.size() == 1 && list.front() == "all") list = method_names();
      for (const auto& name : list) {
        if (std::find(method_names().begin(), method_names().end(), name) ==
            method_names().end()) {
          s.error("compare", fmt::format("\"{}\" is not one of {}", name, join(method_names())));
        } else if (std::find(p.methods.begin(), p.methods.end(), name) != p.methods.end()) {
          s.error("compare", fmt::format("\"{}\" is listed twice", name));
        } else {
          p.methods.push_back(name);
        }
      }
      if (list.empty()) s.error("compare", "the list is empty");
      p.use = use ? *use : (p.methods.empty() ? "" : p.methods.front());
      if (use && std::find(p.methods.begin(), p.methods.end(), *use) == p.methods.end()) {
        s.error("use", fmt::format("\"{}\" is not one of the compared methods ({})", *use,
                                   join(p.methods)));
      }
    } else if (!s.has("method") && !s.has("compare")) {
      s.error("method", fmt::format("missing (method = one of {}; or compare = [...])",
                                    join(method_names())));
    }
    if (use && !s.has("compare")) s.error("use", "only a comparison (compare = [...]) has a use");
  }
  st.candidates = node_selection(s, "candidates", job.directory);
  if (const auto v = s.strings("exclude")) {
    for (const auto& e : *v) {
      const std::string path = resolve(job.directory, e);
      std::error_code ec;
      st.exclude.push_back(fs::is_regular_file(path, ec) ? path : e);
    }
  }
  st.targets = node_selection(s, "targets", job.directory);
  if (const auto v = s.number("min_distance", 0.0)) st.min_distance = *v;
  if (const auto v = s.integer("modes", 0, 1000000)) st.n_modes = static_cast<std::size_t>(*v);
  if (const auto v = s.boolean("keep_rigid")) st.skip_rigid = !*v;
  if (const auto v = s.number("rigid_hz", 0.0)) st.rigid_hz = *v;
  if (const auto v = s.choice("mode_weighting", {"auto", "none", "displacement"})) {
    st.weighting = *v;
  }
  if (const auto v = s.number("weight_exponent")) st.weight_exponent = *v;
  if (const auto v = s.number("snr", 0.0, HUGE_VAL, true)) st.snr = *v;
  if (const auto v = s.number("correlation_length", 0.0)) st.correlation_length = *v;
  if (const auto v = s.number("efi_fraction", 0.0, 1.0)) st.efi_fraction = *v;
  if (const auto v = s.choice("backend", {"auto", "cpu", "cuda"})) job.placement_backend = *v;
  if (const auto v = s.integer("samples", 1, 100000000)) p.samples = static_cast<std::size_t>(*v);
  if (const auto v = s.integer("seed", 0, std::numeric_limits<std::int64_t>::max())) {
    p.seed = static_cast<std::uint64_t>(*v);
  }
  s.reject_unknown_keys();
}

void read_simulation(Section& s, JobSpec& job) {
  if (!s.present()) return;
  auto& sim = job.simulation;
  sim.enabled = true;
  auto& r = sim.request;
  if (const auto v = s.number("duration_s", 0.0, HUGE_VAL, true)) r.duration_s = *v;
  if (const auto v = s.number("sample_rate_hz", 0.0, HUGE_VAL, true)) r.sample_rate_hz = *v;
  if (const auto v = s.number("segment_s", 0.0, HUGE_VAL, true)) r.segment_s = *v;
  if (const auto v = s.string("start_time")) r.start_time = *v;
  if (const auto v = s.integer("seed", 0, std::numeric_limits<std::int64_t>::max())) {
    r.seed = static_cast<std::uint64_t>(*v);
  }
  if (const auto v = s.number("noise", 0.0)) r.noise_rms = *v;
  if (const auto v = s.choice("unit", {"g", "m/s^2", "mm/s^2"})) r.channel_unit = *v;
  if (const auto v = s.choice("dtype", {"float32", "float64"})) {
    r.sample_type = *v == "float64" ? io::SampleType::float64 : io::SampleType::float32;
  }
  if (const auto v = s.string("directions")) {
    if (v->empty() || v->find_first_not_of("xyz") != std::string::npos) {
      s.error("directions", fmt::format("\"{}\" is not a set of axes x, y, z", *v));
    } else {
      r.directions = *v;
    }
  }
  if (const auto v = s.string("sensor_set")) r.sensor_set = *v;
  if (const auto v = s.integer("modes", 1, 1000000)) r.n_modes = static_cast<int>(*v);
  if (const auto v = s.numbers("damping", 0.0)) r.damping = *v;
  if (const auto v = s.number("min_frequency_hz", 0.0)) r.min_frequency_hz = *v;
  if (const auto v = s.number("rpm", 0.0)) r.rpm = *v;
  if (const auto v = s.integer("cylinders", 1, 64)) r.cylinders = static_cast<int>(*v);
  if (const auto v = s.number("max_order", 0.0)) r.max_order = *v;
  if (const auto v = s.number("engine_force_n", 0.0)) r.engine_force_n = *v;
  if (const auto v = s.number("engine_moment_nm", 0.0)) r.engine_moment_nm = *v;
  if (const auto v = s.number("firing_gain", 0.0)) r.firing_gain = *v;
  if (const auto v = s.number("order_decay")) r.order_decay = *v;
  if (const auto v = s.number("broadband_rms_n", 0.0)) r.broadband_rms_n = *v;
  if (const auto v = s.band("broadband_band_hz")) {
    r.broadband_low_hz = v->first;
    r.broadband_high_hz = v->second;
  }
  if (const auto v = s.string("load_set")) r.load_set = *v;
  if (const auto v = s.string("broadband_set")) r.broadband_set = *v;
  if (const auto v = s.number("warm_up_s", 0.0)) r.warm_up_s = *v;
  if (const auto v = s.integer("compress", 0, 9)) r.compression_level = static_cast<unsigned>(*v);
  if (const auto v = s.choice("crank_axis", {"x", "y"})) r.crank_axis = v->front();
  if (r.segment_s > 0.0 && r.segment_s * r.sample_rate_hz < 1.0) {
    s.error("segment_s", "is less than one sample");
  }
  if (r.duration_s * r.sample_rate_hz < 1.0) s.error("duration_s", "is less than one sample");
  if (!r.sensor_set.empty() && job.placement.enabled) {
    s.error("sensor_set", "the sensors are those of [placement]; give one or the other");
  }
  if (r.sensor_set.empty() && !job.placement.enabled) {
    s.error("sensor_set", "missing: without [placement] the simulation needs sensor_set = NSET");
  }
  s.reject_unknown_keys();
}

void read_archives(Section& s, JobSpec& job) {
  if (!s.present()) return;
  auto& a = job.archives;
  a.enabled = true;
  const auto files = s.strings("files");
  if (!s.has("files")) s.error("files", "missing (paths or globs of vsense-archive files)");
  if (files) {
    a.patterns = *files;
    std::set<std::string> all;
    for (const auto& pattern : *files) {
      const auto matched = expand(resolve(job.directory, pattern));
      if (matched.empty()) {
        s.error("files", fmt::format("\"{}\" matches no file ({})", pattern,
                                     resolve(job.directory, pattern)));
      }
      all.insert(matched.begin(), matched.end());
    }
    a.files.assign(all.begin(), all.end());
  }
  if (const auto v = s.choice("gaps", {"split", "error"})) {
    job.reconstruction.request.gaps = *v;
  }
  s.reject_unknown_keys();
}

void read_reconstruction(Section& s, JobSpec& job) {
  if (!s.present()) return;
  auto& rec = job.reconstruction;
  rec.enabled = true;
  auto& r = rec.request;
  r.nodes = node_selection(s, "nodes", job.directory);
  if (const auto v = s.integer("modes", 0, 1000000)) r.n_modes = static_cast<int>(*v);
  if (const auto v = s.number("rigid_hz", 0.0)) r.rigid_hz = *v;
  if (const auto v = s.number("regularisation", 0.0)) r.regularisation = *v;
  if (const auto v = s.band("band_hz")) {
    r.band_low_hz = v->first;
    r.band_high_hz = v->second;
  }
  if (const auto v = s.number("settle_s", 0.0)) r.settle_s = *v;
  if (const auto v = s.boolean("history")) r.history = *v;
  if (const auto v = s.choice("unobservable", {"exclude", "error"})) r.unobservable = *v;
  if (const auto v = s.number("checkpoint_interval_s", 0.0)) r.checkpoint_interval_s = *v;
  if (const auto v = s.integer("block_samples", 0, std::numeric_limits<std::int64_t>::max())) {
    r.block_samples = *v;
  }
  if (const auto v = s.boolean("use_placement")) rec.use_placement = *v;
  if (const auto v = s.choice("backend", {"auto", "cpu", "cuda"})) job.reconstruction_backend = *v;
  if (!job.simulation.enabled && !job.archives.enabled) {
    s.error("nodes", "the reconstruction needs measurements: an [archives] section (files = "
                     "[...]) or a [simulation]");
  }
  s.reject_unknown_keys();
}

void read_fatigue(Section& s, JobSpec& job) {
  if (!s.present()) return;
  auto& f = job.fatigue;
  f.enabled = true;
  const auto curve = s.string("sn_curve");
  if (!s.has("sn_curve")) s.error("sn_curve", "missing (an S-N curve file, TOML)");
  if (curve) {
    f.sn_curve = resolve(job.directory, *curve);
    std::error_code ec;
    if (!fs::is_regular_file(f.sn_curve, ec)) {
      s.error("sn_curve", fmt::format("no such S-N curve file: {}", f.sn_curve));
    } else {
      try {
        (void)solvers::load_sn_curve(f.sn_curve, job.units == "mm-t-s" ? "MPa" : "Pa");
      } catch (const InputError& e) {
        s.error("sn_curve", e.what());
      }
    }
  }
  if (const auto v = s.choice("equivalent", {"signed-von-mises", "von-mises", "max-principal"})) {
    f.equivalent = *v;
  }
  if (const auto v = s.choice("residue", {"half-cycles", "closed", "discard"})) f.residue = *v;
  if (const auto v = s.number("equivalent_cycles", 0.0, HUGE_VAL, true)) f.equivalent_cycles = *v;
  if (!job.reconstruction.enabled) {
    s.error("sn_curve", "fatigue is part of the reconstruction: the job has no [reconstruction]");
  }
  s.reject_unknown_keys();
}

void read_report(Section& s, JobSpec& job) {
  if (!s.present()) return;
  auto& r = job.report;
  r.enabled = true;
  if (const auto v = s.boolean("enabled")) r.enabled = *v;
  if (const auto v = s.boolean("plots")) r.plots = *v;
  if (const auto v = s.integer("worst_nodes", 1, 100)) r.worst_nodes = static_cast<int>(*v);
  if (const auto v = s.number("window_s", 0.0, HUGE_VAL, true)) r.window_s = *v;
  if (const auto v = s.string("title")) r.title = *v;
  s.reject_unknown_keys();
}

}  // namespace

JobSpec parse_job(const std::string& text, const std::string& name, const std::string& directory,
                  const std::string& output_dir_override) {
  Diagnostics d(name);
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    throw InputError(fmt::format("{}:{}:{}: TOML syntax error: {}", name, e.source().begin.line,
                                 e.source().begin.column, e.description()));
  }
  JobSpec job;
  job.directory = fs::absolute(directory).lexically_normal().string();
  job.name = fs::path(name).stem().string();

  Section top(&root, "", d);
  if (const auto v = top.integer("schema_version", 0, std::numeric_limits<std::int64_t>::max())) {
    if (*v != job_schema_version) {
      top.error("schema_version", fmt::format("this vsense reads schema_version {}, the file "
                                              "has {}",
                                              job_schema_version, *v));
    }
  } else if (!top.has("schema_version")) {
    d.add(1, "schema_version", fmt::format("missing (schema_version = {} on the first line)",
                                           job_schema_version));
  }
  if (const auto v = top.string("name")) job.name = *v;
  const auto output_dir = top.string("output_dir");
  if (const auto v = top.choice("units", {"SI", "mm-t-s"})) job.units = *v;
  if (const auto v = top.choice("backend", {"auto", "cpu", "cuda"})) job.backend = *v;
  if (const auto v = top.choice("unavailable_stages", {"fail", "skip"})) {
    job.skip_unavailable = *v == "skip";
  }
  (void)top.string("description");

  // Sections in pipeline order (later ones look at earlier ones).
  Section model(top.table("model"), "model", d);
  Section modes(top.table("modes"), "modes", d);
  Section placement(top.table("placement"), "placement", d);
  Section simulation(top.table("simulation"), "simulation", d);
  Section archives(top.table("archives"), "archives", d);
  Section reconstruction(top.table("reconstruction"), "reconstruction", d);
  Section fatigue(top.table("fatigue"), "fatigue", d);
  Section report(top.table("report"), "report", d);
  top.reject_unknown_keys();

  read_model(model, job);
  read_modes(modes, job);
  read_placement(placement, job);
  read_simulation(simulation, job);
  read_archives(archives, job);
  if (job.simulation.enabled && job.archives.enabled) {
    archives.error("files", "the job has a [simulation] too: its archive is the measurement; "
                            "give one or the other");
  }
  read_reconstruction(reconstruction, job);
  read_fatigue(fatigue, job);
  read_report(report, job);

  if (!output_dir_override.empty()) {
    job.output_dir = fs::absolute(output_dir_override).lexically_normal().string();
  } else if (output_dir) {
    job.output_dir = resolve(job.directory, *output_dir);
  } else {
    job.output_dir = resolve(job.directory, fs::path(name).stem().string() + "-results");
  }
  std::error_code ec;
  if (fs::exists(job.output_dir, ec) && !fs::is_directory(job.output_dir, ec)) {
    top.error("output_dir", fmt::format("{} exists and is not a directory", job.output_dir));
  }
  d.throw_if_any();
  return job;
}

JobSpec load_job(const std::string& path, const std::string& output_dir_override) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the job file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const fs::path absolute = fs::absolute(path).lexically_normal();
  JobSpec job = parse_job(buffer.str(), path, absolute.parent_path().string(),
                          output_dir_override);
  job.path = absolute.string();
  return job;
}

}  // namespace vsense::jobs
