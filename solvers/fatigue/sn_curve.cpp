// S-N curves, their TOML files, and Miner damage / damage-equivalent range accumulation.
#include "vsense/solvers/sn_curve.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

#include "vsense/kernels/errors.hpp"

namespace vsense::solvers {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

std::string number(double x) {
  std::ostringstream s;
  s.precision(17);
  s << x;
  return s.str();
}

}  // namespace

// ---- the curve -------------------------------------------------------------------------------
double SnCurve::cycles_to_failure(double range) const noexcept {
  if (!(range > 0.0) || range < cutoff_range) return kInfinity;
  if (knee_range <= 0.0 || range >= knee_range)
    return reference_cycles * std::pow(reference_range / range, slope);
  return knee_cycles() * std::pow(knee_range / range, slope_below_knee);
}

double SnCurve::knee_cycles() const noexcept {
  if (knee_range <= 0.0) return reference_cycles;
  return reference_cycles * std::pow(reference_range / knee_range, slope);
}

double SnCurve::cutoff_cycles() const noexcept {
  if (cutoff_range <= 0.0) return kInfinity;
  return cycles_to_failure(cutoff_range);
}

double SnCurve::corrected_range(double range, double mean) const noexcept {
  switch (mean_stress_correction) {
    case MeanStressCorrection::none:
      return range;
    case MeanStressCorrection::goodman:
      if (mean <= 0.0) return range;
      if (mean >= ultimate_strength) return kInfinity;
      return range / (1.0 - mean / ultimate_strength);
  }
  return range;
}

void SnCurve::validate(std::string_view where) const {
  const std::string at(where);
  auto positive = [&](double v, const char* field) {
    if (!(v > 0.0) || !std::isfinite(v))
      throw InputError(at + ": " + field + " must be a positive finite number, got " + number(v));
  };
  positive(reference_range, "reference_range");
  positive(reference_cycles, "reference_cycles");
  positive(slope, "slope");
  if (knee_range != 0.0) {
    positive(knee_range, "knee_range");
    positive(slope_below_knee, "slope_below_knee");
  }
  if (cutoff_range != 0.0) {
    positive(cutoff_range, "cutoff_range");
    if (knee_range > 0.0 && cutoff_range > knee_range)
      throw InputError(at + ": cutoff_range " + number(cutoff_range) + " is above knee_range " +
                       number(knee_range) + " (the cut-off must lie below the knee)");
  }
  if (mean_stress_correction == MeanStressCorrection::goodman)
    positive(ultimate_strength, "ultimate_strength (needed by the goodman correction)");
}

SnCurve make_basquin_curve(double reference_range, double reference_cycles, double slope,
                           double knee_range, double slope_below_knee, double cutoff_range) {
  SnCurve c;
  c.name = "basquin";
  c.reference_range = reference_range;
  c.reference_cycles = reference_cycles;
  c.slope = slope;
  c.knee_range = knee_range;
  c.slope_below_knee = slope_below_knee;
  c.cutoff_range = cutoff_range;
  c.validate("basquin S-N curve");
  return c;
}

SnCurve make_eurocode3_curve(double detail_category_mpa, double model_units_per_mpa,
                             double partial_factor_material, double partial_factor_load) {
  static constexpr std::array<double, 14> kCategories = {160, 140, 125, 112, 100, 90, 80,
                                                         71,  63,  56,  50,  45,  40, 36};
  if (std::find(kCategories.begin(), kCategories.end(), detail_category_mpa) ==
      kCategories.end())
    throw InputError("eurocode3 S-N curve: detail category " + number(detail_category_mpa) +
                     " is not one of EN 1993-1-9's (160, 140, 125, 112, 100, 90, 80, 71, 63, "
                     "56, 50, 45, 40, 36)");
  if (!(model_units_per_mpa > 0.0) || !(partial_factor_material > 0.0) ||
      !(partial_factor_load > 0.0))
    throw InputError("eurocode3 S-N curve: unit factor and partial factors must be > 0 (got " +
                     number(model_units_per_mpa) + ", " + number(partial_factor_material) +
                     ", " + number(partial_factor_load) + ")");
  const double scale = model_units_per_mpa / (partial_factor_material * partial_factor_load);
  const double sigma_c = detail_category_mpa * scale;
  // EN 1993-1-9 eq. (7.1)-(7.2): N_C = 2e6, N_D = 5e6, N_L = 1e8.
  const double sigma_d = std::cbrt(2.0 / 5.0) * sigma_c;
  const double sigma_l = std::pow(5.0 / 100.0, 1.0 / 5.0) * sigma_d;
  SnCurve c = make_basquin_curve(sigma_c, 2.0e6, 3.0, sigma_d, 5.0, sigma_l);
  c.name = "EN 1993-1-9 detail category " + number(detail_category_mpa);
  return c;
}

double stress_unit_in_pa(std::string_view unit) {
  static const std::map<std::string, double, std::less<>> kUnits = {
      {"Pa", 1.0},       {"N/m2", 1.0},    {"N/m^2", 1.0},
      {"kPa", 1e3},      {"MPa", 1e6},     {"N/mm2", 1e6},
      {"N/mm^2", 1e6},   {"GPa", 1e9},
      // 1 lbf = 4.4482216152605 N, 1 in = 0.0254 m (exact definitions)
      {"psi", 4.4482216152605 / (0.0254 * 0.0254)},
      {"ksi", 1e3 * 4.4482216152605 / (0.0254 * 0.0254)},
  };
  const auto it = kUnits.find(unit);
  if (it == kUnits.end())
    throw InputError("unknown stress unit '" + std::string(unit) +
                     "' (known: Pa, kPa, MPa, GPa, N/m2, N/m^2, N/mm2, N/mm^2, psi, ksi)");
  return it->second;
}

// ---- the file ----------------------------------------------------------------------------------
namespace {

/// Reads typed keys of one table, remembering which were used, with errors naming the place.
class TableReader {
public:
  TableReader(const toml::table& table, std::string file, std::string table_name)
      : table_(table), file_(std::move(file)), name_(std::move(table_name)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& key,
                         const std::string& message) const {
    std::string place = file_;
    if (node != nullptr && node->source().begin)
      place += ":" + std::to_string(node->source().begin.line);
    throw InputError(place + ": " + (name_.empty() ? key : "[" + name_ + "]." + key) + ": " +
                     message);
  }

  const toml::node* find(const std::string& key) {
    used_.push_back(key);
    return table_.get(key);
  }

  std::optional<double> number(const std::string& key) {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    double v;
    if (const auto* i = node->as_integer())
      v = static_cast<double>(i->get());
    else if (const auto* f = node->as_floating_point())
      v = f->get();
    else
      fail(node, key, std::string("expected a number, got a ") + type_name(*node));
    if (!std::isfinite(v)) fail(node, key, "expected a finite number, got " + solvers::number(v));
    return v;
  }

  double positive(const std::string& key, const char* meaning) {
    const auto v = number(key);
    if (!v) fail(nullptr, key, std::string("missing (") + meaning + ")");
    if (!(*v > 0.0))
      fail(table_.get(key), key, "must be > 0, got " + solvers::number(*v));
    return *v;
  }

  std::optional<double> optional_positive(const std::string& key) {
    const auto v = number(key);
    if (v && !(*v > 0.0)) fail(table_.get(key), key, "must be > 0, got " + solvers::number(*v));
    return v;
  }

  std::optional<std::string> string(const std::string& key) {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    const auto* s = node->as_string();
    if (s == nullptr) fail(node, key, std::string("expected a string, got a ") + type_name(*node));
    return s->get();
  }

  /// Every key of the table must have been asked for.
  void reject_unknown_keys() const {
    for (const auto& [key, node] : table_) {
      const std::string k(key.str());
      if (std::find(used_.begin(), used_.end(), k) == used_.end()) {
        std::string known;
        for (const auto& u : used_) known += (known.empty() ? "" : ", ") + u;
        fail(&node, k, "unknown key (known here: " + known + ")");
      }
    }
  }

  const toml::node* node(const std::string& key) const { return table_.get(key); }

private:
  static const char* type_name(const toml::node& node) {
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

  const toml::table& table_;
  std::string file_, name_;
  std::vector<std::string> used_;
};

}  // namespace

SnCurve load_sn_curve(const std::filesystem::path& file, std::string_view model_stress_unit) {
  const std::string path = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the S-N curve file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw InputError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                     std::to_string(e.source().begin.column) + ": TOML syntax error: " +
                     std::string(e.description()));
  }
  const double model_pa = stress_unit_in_pa(model_stress_unit);

  // Top level: optional schema_version, the [curve] table, the optional [mean_stress] table.
  TableReader top(root, path, "");
  if (const auto version = top.number("schema_version"); version && *version != 1.0)
    top.fail(root.get("schema_version"), "schema_version",
             "this build reads schema_version 1, the file has " + number(*version));
  const toml::node* curve_node = top.find("curve");
  if (curve_node == nullptr || !curve_node->is_table())
    throw InputError(path + ": missing the [curve] table (with type = \"basquin\" or "
                            "\"eurocode3\")");
  const toml::node* mean_node = top.find("mean_stress");
  if (mean_node != nullptr && !mean_node->is_table())
    top.fail(mean_node, "mean_stress", "expected a table [mean_stress]");
  top.reject_unknown_keys();

  TableReader curve(*curve_node->as_table(), path, "curve");
  const auto type = curve.string("type");
  if (!type) curve.fail(nullptr, "type", "missing (\"basquin\" or \"eurocode3\")");
  const auto name = curve.string("name");
  const double gamma_mf = curve.optional_positive("partial_factor_material").value_or(1.0);
  const double gamma_ff = curve.optional_positive("partial_factor_load").value_or(1.0);
  const auto unit = curve.string("stress_unit");
  double file_pa = 0.0;  // size of the file's stress unit in Pa
  if (unit) {
    try {
      file_pa = stress_unit_in_pa(*unit);
    } catch (const InputError& e) {
      curve.fail(curve.node("stress_unit"), "stress_unit", e.what());
    }
  }

  SnCurve result;
  if (*type == "eurocode3") {
    // EN 1993-1-9 defines the categories in N/mm^2; a stress_unit, if given, must say so.
    if (unit && file_pa != 1e6)
      curve.fail(curve.node("stress_unit"), "stress_unit",
                 "a eurocode3 detail category is in MPa (N/mm^2); got '" + *unit + "'");
    file_pa = 1e6;
    const double category = curve.positive("detail_category", "delta_sigma_C in MPa at 2e6 cycles");
    try {
      result = make_eurocode3_curve(category, file_pa / model_pa, gamma_mf, gamma_ff);
    } catch (const InputError& e) {
      curve.fail(curve.node("detail_category"), "detail_category", e.what());
    }
  } else if (*type == "basquin") {
    if (!unit) curve.fail(nullptr, "stress_unit", "missing (e.g. \"MPa\" or \"Pa\")");
    const double to_model = file_pa / model_pa / (gamma_mf * gamma_ff);
    SnCurve c;
    c.reference_range = curve.positive("reference_range", "S_ref, in stress_unit") * to_model;
    c.reference_cycles = curve.positive("reference_cycles", "N_ref, cycles at S_ref");
    c.slope = curve.positive("slope", "m1, the slope above the knee");
    const auto knee_range = curve.optional_positive("knee_range");
    const auto knee_cycles = curve.optional_positive("knee_cycles");
    const auto slope2 = curve.optional_positive("slope_below_knee");
    if (knee_range && knee_cycles)
      curve.fail(curve.node("knee_cycles"), "knee_cycles",
                 "give either knee_range or knee_cycles, not both");
    if ((knee_range || knee_cycles) && !slope2)
      curve.fail(nullptr, "slope_below_knee", "missing (m2, needed when a knee is given)");
    if (slope2 && !(knee_range || knee_cycles))
      curve.fail(curve.node("slope_below_knee"), "slope_below_knee",
                 "given without knee_range or knee_cycles");
    if (knee_range) c.knee_range = *knee_range * to_model;
    if (knee_cycles)
      c.knee_range = c.reference_range * std::pow(c.reference_cycles / *knee_cycles, 1.0 / c.slope);
    if (slope2) c.slope_below_knee = *slope2;
    const auto cutoff_range = curve.optional_positive("cutoff_range");
    const auto cutoff_cycles = curve.optional_positive("cutoff_cycles");
    if (cutoff_range && cutoff_cycles)
      curve.fail(curve.node("cutoff_cycles"), "cutoff_cycles",
                 "give either cutoff_range or cutoff_cycles, not both");
    if (cutoff_range) c.cutoff_range = *cutoff_range * to_model;
    if (cutoff_cycles) {
      // Invert N(S) on the segment that holds N = cutoff_cycles.
      if (c.knee_range <= 0.0 || *cutoff_cycles <= c.knee_cycles())
        c.cutoff_range =
            c.reference_range * std::pow(c.reference_cycles / *cutoff_cycles, 1.0 / c.slope);
      else
        c.cutoff_range = c.knee_range * std::pow(c.knee_cycles() / *cutoff_cycles,
                                                 1.0 / c.slope_below_knee);
    }
    if (c.knee_range > 0.0 && c.cutoff_range > c.knee_range) {
      const std::string key = cutoff_range ? "cutoff_range" : "cutoff_cycles";
      curve.fail(curve.node(key), key,
                 "the cut-off must lie below the knee (cut-off range " +
                     number(c.cutoff_range / to_model) + " > knee range " +
                     number(c.knee_range / to_model) + ", in " + *unit + ")");
    }
    c.name = "basquin";
    result = c;
  } else {
    curve.fail(curve.node("type"), "type",
               "unknown curve type '" + *type + "' (known: \"basquin\", \"eurocode3\")");
  }
  if (name) result.name = *name;
  curve.reject_unknown_keys();

  if (mean_node != nullptr) {
    TableReader mean(*mean_node->as_table(), path, "mean_stress");
    const auto correction = mean.string("correction").value_or("none");
    if (correction == "goodman") {
      result.mean_stress_correction = MeanStressCorrection::goodman;
      result.ultimate_strength =
          mean.positive("ultimate_strength", "in the curve's stress_unit") * file_pa / model_pa;
    } else if (correction == "none") {
      (void)mean.number("ultimate_strength");
    } else {
      mean.fail(mean.node("correction"), "correction",
                "unknown correction '" + correction + "' (known: \"none\", \"goodman\")");
    }
    mean.reject_unknown_keys();
  }
  try {
    result.validate(path);
  } catch (const InputError& e) {
    throw InputError(std::string(e.what()) + " (in [curve])");
  }
  return result;
}

// ---- damage ------------------------------------------------------------------------------
MinerDamage::MinerDamage(SnCurve curve, std::int64_t n_channels, double equivalent_slope)
    : curve_(std::move(curve)), n_channels_(n_channels) {
  curve_.validate(curve_.name.empty() ? "S-N curve" : curve_.name);
  if (n_channels < 1)
    throw InputError("Miner damage: n_channels must be >= 1, got " + std::to_string(n_channels));
  if (equivalent_slope < 0.0 || !std::isfinite(equivalent_slope))
    throw InputError("Miner damage: equivalent slope must be > 0 (or 0 for the curve's), got " +
                     number(equivalent_slope));
  equivalent_slope_ = equivalent_slope > 0.0 ? equivalent_slope : curve_.slope;
  damage_.resize(n_channels);
  moment_.resize(n_channels);
  cycles_.resize(n_channels);
}

void MinerDamage::consume(std::span<const RainflowCycle> cycles) {
  for (const auto& c : cycles) {
    if (c.channel < 0 || c.channel >= n_channels_)
      throw InputError("Miner damage: cycle of channel " + std::to_string(c.channel) +
                       " but the accumulator has " + std::to_string(n_channels_) + " channels");
    const double range = curve_.corrected_range(c.range, c.mean);
    const double n = curve_.cycles_to_failure(range);
    if (n < kInfinity) damage_[c.channel].add(c.count / n);
    if (range > 0.0) {
      moment_[c.channel].add(c.count *
                             std::pow(range / curve_.reference_range, equivalent_slope_));
    }
    cycles_[c.channel].add(c.count);
  }
}

double MinerDamage::damage(std::int64_t channel) const {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("Miner damage: channel " + std::to_string(channel) + " out of range");
  return damage_[channel].value();
}

double MinerDamage::cycles(std::int64_t channel) const {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("Miner damage: channel " + std::to_string(channel) + " out of range");
  return cycles_[channel].value();
}

double MinerDamage::equivalent_range(std::int64_t channel, double n_equivalent) const {
  if (channel < 0 || channel >= n_channels_)
    throw InputError("Miner damage: channel " + std::to_string(channel) + " out of range");
  if (!(n_equivalent > 0.0))
    throw InputError("Miner damage: N_eq must be > 0, got " + number(n_equivalent));
  return curve_.reference_range *
         std::pow(moment_[channel].value() / n_equivalent, 1.0 / equivalent_slope_);
}

void MinerDamage::add(const MinerDamage& other) {
  if (other.n_channels_ != n_channels_ || other.equivalent_slope_ != equivalent_slope_)
    throw InputError("Miner damage: cannot add an accumulator of " +
                     std::to_string(other.n_channels_) + " channels and slope " +
                     number(other.equivalent_slope_) + " to one of " +
                     std::to_string(n_channels_) + " channels and slope " +
                     number(equivalent_slope_));
  if (other.curve_.reference_range != curve_.reference_range)
    throw InputError("Miner damage: cannot add an accumulator of another S-N curve");
  for (std::int64_t j = 0; j < n_channels_; ++j) {
    damage_[j].add(other.damage_[j]);
    moment_[j].add(other.moment_[j]);
    cycles_[j].add(other.cycles_[j]);
  }
}

namespace {
constexpr std::uint32_t kMinerStateMagic = 0x564d4431;  // "VMD1"
constexpr std::size_t kSumBytes = ExactSum::kLimbs * sizeof(std::uint64_t) + 1;

void put_sum(std::vector<std::byte>& out, const ExactSum& sum) {
  const auto& limbs = sum.limbs();
  const std::size_t at = out.size();
  out.resize(at + kSumBytes);
  std::memcpy(out.data() + at, limbs.data(), ExactSum::kLimbs * sizeof(std::uint64_t));
  out[at + kSumBytes - 1] = std::byte{sum.flags()};
}

ExactSum get_sum(const std::byte* in) {
  std::array<std::uint64_t, ExactSum::kLimbs> limbs{};
  std::memcpy(limbs.data(), in, ExactSum::kLimbs * sizeof(std::uint64_t));
  return ExactSum::from_raw(limbs, static_cast<std::uint8_t>(in[kSumBytes - 1]));
}
}  // namespace

std::vector<std::byte> MinerDamage::serialize() const {
  std::vector<std::byte> out(sizeof(std::uint32_t) + sizeof(std::int64_t) + sizeof(double));
  std::memcpy(out.data(), &kMinerStateMagic, sizeof(std::uint32_t));
  std::memcpy(out.data() + 4, &n_channels_, sizeof(std::int64_t));
  std::memcpy(out.data() + 12, &equivalent_slope_, sizeof(double));
  out.reserve(out.size() + 3 * kSumBytes * static_cast<std::size_t>(n_channels_));
  for (std::int64_t j = 0; j < n_channels_; ++j) {
    put_sum(out, damage_[j]);
    put_sum(out, moment_[j]);
    put_sum(out, cycles_[j]);
  }
  return out;
}

void MinerDamage::deserialize(std::span<const std::byte> bytes) {
  const std::size_t header = sizeof(std::uint32_t) + sizeof(std::int64_t) + sizeof(double);
  std::uint32_t magic = 0;
  std::int64_t n = 0;
  double slope = 0.0;
  if (bytes.size() >= header) {
    std::memcpy(&magic, bytes.data(), sizeof magic);
    std::memcpy(&n, bytes.data() + 4, sizeof n);
    std::memcpy(&slope, bytes.data() + 12, sizeof slope);
  }
  if (bytes.size() < header || magic != kMinerStateMagic || n != n_channels_ ||
      slope != equivalent_slope_ ||
      bytes.size() != header + 3 * kSumBytes * static_cast<std::size_t>(n)) {
    throw InputError("Miner damage: the saved state does not belong to this accumulator (" +
                     std::to_string(n_channels_) + " channels, slope " +
                     number(equivalent_slope_) + ")");
  }
  const std::byte* p = bytes.data() + header;
  for (std::int64_t j = 0; j < n_channels_; ++j, p += 3 * kSumBytes) {
    damage_[j] = get_sum(p);
    moment_[j] = get_sum(p + kSumBytes);
    cycles_[j] = get_sum(p + 2 * kSumBytes);
  }
}

bool MinerDamage::operator==(const MinerDamage& other) const {
  return n_channels_ == other.n_channels_ && equivalent_slope_ == other.equivalent_slope_ &&
         damage_ == other.damage_ && moment_ == other.moment_ && cycles_ == other.cycles_;
}

}  // namespace vsense::solvers
