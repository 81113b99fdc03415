// Reader for the Abaqus/CalculiX `.inp` keyword format (contract section 1).
//
// Design: one pass over the text with a hand-rolled line splitter over a large read buffer
// (no regex, no per-line allocation on the hot paths *NODE and *ELEMENT), numbers parsed with
// std::from_chars. *INCLUDE is handled at the line level, as CalculiX does, so an included
// file may hold nothing but data lines of the keyword that includes it. Whatever may be
// defined after its first use (nodes of elements, materials of sections, sets of sections,
// element types of *SPRING sets) is resolved after the whole deck has been read.
#include "vsense/model/inp_reader.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vsense/kernels/errors.hpp"

namespace vsense::model {

namespace {

// ---- small text helpers ---------------------------------------------------------------------

constexpr bool is_blank_char(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank_char(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank_char(s.back())) s.remove_suffix(1);
  return s;
}

char to_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

/// Removes one pair of surrounding double or single quotes.
std::string_view unquote(std::string_view s) noexcept {
  s = trim(s);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    s = trim(s.substr(1, s.size() - 2));
  }
  return s;
}

/// Splits a data line at commas, trimming each field. Does not allocate.
class FieldCursor {
public:
  explicit FieldCursor(std::string_view line) noexcept : line_(line) {}
  /// Next field (possibly empty); false when the line is exhausted.
  bool next(std::string_view& field) noexcept {
    if (done_) return false;
    const std::size_t comma = line_.find(',', pos_);
    if (comma == std::string_view::npos) {
      field = trim(line_.substr(pos_));
      done_ = true;
    } else {
      field = trim(line_.substr(pos_, comma - pos_));
      pos_ = comma + 1;
    }
    return true;
  }

private:
  std::string_view line_;
  std::size_t pos_ = 0;
  bool done_ = false;
};

bool parse_int(std::string_view s, std::int64_t& value) noexcept {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_double(std::string_view s, double& value) noexcept {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc() && end == s.data() + s.size()) return true;
  // Slow path for Fortran exponents ("1.0D+03"), which some older decks still contain.
  if (s.size() >= 64) return false;
  char buffer[64];
  bool changed = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    buffer[i] = s[i];
    if (s[i] == 'd' || s[i] == 'D') {
      buffer[i] = 'e';
      changed = true;
    }
  }
  if (!changed) return false;
  const auto [end2, ec2] = std::from_chars(buffer, buffer + s.size(), value);
  return ec2 == std::errc() && end2 == buffer + s.size();
}

std::string_view shorten(std::string_view s) noexcept {
  return s.size() > 40 ? s.substr(0, 40) : s;
}

// ---- id -> index lookup -----------------------------------------------------------------------

/// Maps user ids to indices. Ids of real meshes are nearly dense, so a flat table answers most
/// look-ups without hashing; ids far beyond the count go to a hash map.
class IdIndex {
public:
  std::int32_t find(std::int64_t id) const noexcept {
    if (id >= 0 && static_cast<std::uint64_t>(id) < dense_.size()) {
      const std::int32_t index = dense_[static_cast<std::size_t>(id)];
      if (index >= 0 || sparse_.empty()) return index;
    }
    if (sparse_.empty()) return -1;
    const auto it = sparse_.find(id);
    return it == sparse_.end() ? -1 : it->second;
  }
  /// False when `id` is already present.
  bool insert(std::int64_t id, std::int32_t index) {
    if (find(id) >= 0) return false;
    ++count_;
    if (id >= 0) {
      const auto uid = static_cast<std::uint64_t>(id);
      if (uid >= dense_.size() && uid < dense_limit()) {
        dense_.resize(std::max<std::size_t>(uid + 1, dense_.size() + dense_.size() / 2), -1);
      }
      if (uid < dense_.size()) {
        dense_[uid] = index;
        return true;
      }
    }
    sparse_.emplace(id, index);
    return true;
  }

private:
  // The flat table may reach a few times the number of ids (4 bytes each).
  std::uint64_t dense_limit() const noexcept {
    return 4 * static_cast<std::uint64_t>(count_) + (1u << 20);
  }
  std::vector<std::int32_t> dense_;
  std::unordered_map<std::int64_t, std::int32_t> sparse_;
  std::int64_t count_ = 0;
};

// ---- reading lines -----------------------------------------------------------------------------

/// Reads one file line by line through a large buffer. A returned line stays valid until the
/// next call. Line ends "\n" and "\r\n" are both accepted.
class LineReader {
public:
  LineReader(std::string path, int file_index) : path_(std::move(path)), file_index_(file_index) {
    file_ = std::fopen(path_.c_str(), "rb");
    if (!file_) {
      throw IoError(fmt::format("{}: cannot open: {}", path_, std::strerror(errno)));
    }
    // Not value-initialised: pages of a large buffer are touched only as data arrive, so that
    // small (included) files cost no more than their size.
    buffer_.reset(new char[initial_buffer_bytes]);
    capacity_ = initial_buffer_bytes;
  }
  ~LineReader() {
    if (file_) std::fclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool next(std::string_view& line) {
    std::size_t searched = begin_;
    for (;;) {
      const char* base = buffer_.get();
      const void* newline = std::memchr(base + searched, '\n', end_ - searched);
      if (newline) {
        const char* nl = static_cast<const char*>(newline);
        line = std::string_view(base + begin_, static_cast<std::size_t>(nl - (base + begin_)));
        begin_ = static_cast<std::size_t>(nl - base) + 1;
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return true;
      }
      if (eof_) {
        if (begin_ == end_) return false;
        line = std::string_view(base + begin_, end_ - begin_);
        begin_ = end_;
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return true;
      }
      // Keep the partial line, make room, read more.
      const std::size_t remaining = end_ - begin_;
      if (begin_ > 0) {
        std::memmove(buffer_.get(), buffer_.get() + begin_, remaining);
        begin_ = 0;
        end_ = remaining;
      }
      if (end_ == capacity_) {  // one line longer than the buffer
        std::unique_ptr<char[]> larger(new char[2 * capacity_]);
        std::memcpy(larger.get(), buffer_.get(), end_);
        buffer_ = std::move(larger);
        capacity_ *= 2;
      }
      searched = end_;
      const std::size_t got = std::fread(buffer_.get() + end_, 1, capacity_ - end_, file_);
      if (got == 0) {
        if (std::ferror(file_)) {
          throw IoError(fmt::format("{}: read error after line {}", path_, line_number_));
        }
        eof_ = true;
      }
      end_ += got;
    }
  }

  const std::string& path() const noexcept { return path_; }
  int line_number() const noexcept { return line_number_; }
  int file_index() const noexcept { return file_index_; }

private:
  static constexpr std::size_t initial_buffer_bytes = std::size_t{8} << 20;
  std::string path_;
  int file_index_ = 0;
  std::FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  int line_number_ = 0;
};

enum class LineKind { blank, comment, keyword, data };

LineKind classify(std::string_view line) noexcept {
  std::size_t i = 0;
  while (i < line.size() && is_blank_char(line[i])) ++i;
  if (i == line.size()) return LineKind::blank;
  if (line[i] != '*') return LineKind::data;
  if (i + 1 < line.size() && line[i + 1] == '*') return LineKind::comment;
  return LineKind::keyword;
}

/// A keyword line split into its name (upper-cased, single spaces) and parameters.
struct Keyword {
  std::string name;
  std::vector<std::pair<std::string, std::string>> parameters;  // KEY (upper), value (raw)
  int file = 0;
  int line = 0;

  const std::string* find(std::string_view key) const noexcept {
    for (const auto& [k, v] : parameters) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  bool has(std::string_view key) const noexcept { return find(key) != nullptr; }
};

std::string normalise_keyword_name(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (is_blank_char(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += to_upper(c);
  }
  return out;
}

Keyword parse_keyword_line(std::string_view line, int file, int line_number) {
  Keyword keyword;
  keyword.file = file;
  keyword.line = line_number;
  line = trim(line);
  line.remove_prefix(1);  // '*'
  // Split at commas outside quotes.
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == ',') {
      pieces.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  pieces.push_back(line.substr(start));
  keyword.name = normalise_keyword_name(pieces.front());
  for (std::size_t i = 1; i < pieces.size(); ++i) {
    const std::string_view piece = trim(pieces[i]);
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos) {
      keyword.parameters.emplace_back(normalise_keyword_name(piece), std::string());
    } else {
      keyword.parameters.emplace_back(normalise_keyword_name(piece.substr(0, eq)),
                                      std::string(unquote(piece.substr(eq + 1))));
    }
  }
  return keyword;
}

/// The stack of open files. *INCLUDE lines are followed here, transparently to the keyword
/// handlers: an included file continues the data of the keyword that includes it.
class InputStack {
public:
  explicit InputStack(std::vector<std::string>& file_names) : file_names_(file_names) {}

  void open(const std::string& path) {
    if (readers_.size() >= max_include_depth) {
      throw InputError(fmt::format("{}: *INCLUDE nested more than {} deep (a cycle?)",
                                   location(), max_include_depth));
    }
    file_names_.push_back(path);
    readers_.push_back(
        std::make_unique<LineReader>(path, static_cast<int>(file_names_.size()) - 1));
  }

  /// The next data line of the current keyword; false at the next keyword or the end.
  /// Blank lines are returned (as empty views) only when `keep_blank`.
  bool next_data(std::string_view& line, bool keep_blank = false) {
    if (has_pending_) return false;
    for (;;) {
      if (readers_.empty()) return false;
      LineReader& reader = *readers_.back();
      if (!reader.next(line)) {
        readers_.pop_back();
        continue;
      }
      switch (classify(line)) {
        case LineKind::blank:
          if (keep_blank) {
            line = std::string_view();
            return true;
          }
          continue;
        case LineKind::comment:
          continue;
        case LineKind::data:
          return true;
        case LineKind::keyword: {
          Keyword keyword = parse_keyword_line(line, reader.file_index(), reader.line_number());
          if (keyword.name == "INCLUDE") {
            follow_include(keyword);
            continue;
          }
          pending_ = std::move(keyword);
          has_pending_ = true;
          return false;
        }
      }
    }
  }

  /// Moves to the next keyword. Handlers consume their data lines, so a data line met here
  /// stands before the first keyword of the deck.
  bool next_keyword(Keyword& keyword) {
    std::string_view line;
    if (next_data(line)) {
      throw InputError(fmt::format("{}: data line outside of any keyword: '{}'", location(),
                                   shorten(trim(line))));
    }
    if (!has_pending_) return false;
    keyword = std::move(pending_);
    has_pending_ = false;
    return true;
  }

  /// Skips the data lines of the current keyword.
  void skip_data() {
    std::string_view line;
    while (next_data(line)) {
    }
  }

  /// "file:line" of the line read last.
  std::string location() const {
    if (readers_.empty()) return "?";
    return fmt::format("{}:{}", readers_.back()->path(), readers_.back()->line_number());
  }
  int file_index() const noexcept { return readers_.empty() ? 0 : readers_.back()->file_index(); }
  int line_number() const noexcept {
    return readers_.empty() ? 0 : readers_.back()->line_number();
  }

private:
  static constexpr std::size_t max_include_depth = 32;

  void follow_include(const Keyword& keyword) {
    const std::string* input = keyword.find("INPUT");
    if (!input || input->empty()) {
      throw InputError(fmt::format("{}: *INCLUDE needs INPUT=FILE", location()));
    }
    std::filesystem::path path(*input);
    if (path.is_relative()) {
      path = std::filesystem::path(readers_.back()->path()).parent_path() / path;
    }
    const std::string where = location();
    try {
      open(path.string());
    } catch (const IoError& e) {
      throw IoError(fmt::format("{}: *INCLUDE, INPUT={}: {}", where, *input, e.what()));
    }
  }

  std::vector<std::string>& file_names_;
  std::vector<std::unique_ptr<LineReader>> readers_;
  Keyword pending_;
  bool has_pending_ = false;
};

// ---- the parser ----------------------------------------------------------------------------------

/// A *SPRING card: its data lines are interpreted once the element types of its set are known.
struct SpringCard {
  std::size_t section = 0;
  std::vector<std::pair<int, std::string>> lines;  // (line number, text); blank lines kept
};

/// A node reference of an element to a node not (yet) defined when the element was read.
struct PendingNode {
  std::int64_t position = 0;  // into element_nodes
  std::int64_t node_id = 0;
  std::int32_t element = 0;
};

class Parser {
public:
  explicit Parser(Model& model) : model_(model), input_(file_names_) {}

  void read(const std::string& path) {
    model_.source_file = path;
    input_.open(path);
    reserve_for(path);
    Keyword keyword;
    while (input_.next_keyword(keyword)) dispatch(keyword);
    finish();
  }

private:
  /// Reserves room for the model a file of this size typically holds, so that the big arrays
  /// are rarely copied while growing. Reserved capacity that is never used is never touched
  /// either, so it costs address space, not memory; the guess stays well below the file size.
  void reserve_for(const std::string& path) {
    std::error_code error;
    const auto bytes = std::filesystem::file_size(path, error);
    if (error) return;
    // A node line takes >= ~40 bytes, a C3D8 line ~60; a deck holds about as many of each.
    const std::size_t guess = static_cast<std::size_t>(bytes / 128);
    model_.node_ids.reserve(guess);
    model_.coordinates.reserve(guess);
    model_.element_ids.reserve(guess);
    model_.element_types.reserve(guess);
    model_.element_offsets.reserve(guess + 1);
    model_.element_nodes.reserve(8 * guess);
    element_line_.reserve(guess);
    element_file_.reserve(guess);
  }

  // ---- errors and warnings ----
  std::string where(int file, int line) const {
    return fmt::format("{}:{}", file_names_[static_cast<std::size_t>(file)], line);
  }
  [[noreturn]] void fail(std::string_view reason) const {
    throw InputError(fmt::format("{}: {}", input_.location(), reason));
  }
  [[noreturn]] void fail_at(const Keyword& keyword, std::string_view reason) const {
    throw InputError(fmt::format("{}: {}", where(keyword.file, keyword.line), reason));
  }
  [[noreturn]] void fail_at(const SourceLocation& at, std::string_view reason) const {
    throw InputError(fmt::format("{}: {}", at.str(), reason));
  }
  SourceLocation location_of(const Keyword& keyword) const {
    return SourceLocation{file_names_[static_cast<std::size_t>(keyword.file)], keyword.line};
  }

  const std::string& required(const Keyword& keyword, std::string_view key) const {
    const std::string* value = keyword.find(key);
    if (!value || value->empty()) {
      fail_at(keyword, fmt::format("*{} needs the parameter {}=", keyword.name, key));
    }
    return *value;
  }

  std::int64_t int_field(std::string_view field, std::string_view what) const {
    std::int64_t value = 0;
    if (!parse_int(field, value)) {
      fail(fmt::format("expected an integer {}, got '{}'", what, shorten(field)));
    }
    return value;
  }
  double double_field(std::string_view field, std::string_view what) const {
    double value = 0.0;
    if (!parse_double(field, value)) {
      fail(fmt::format("expected a number for {}, got '{}'", what, shorten(field)));
    }
    return value;
  }

  // ---- dispatch ----
  void dispatch(const Keyword& keyword) {
    const std::string& name = keyword.name;
    if (in_step_) {
      // Step data: output requests, procedures, loads. Boundary conditions given inside the
      // step also hold for CalculiX's *FREQUENCY step, so they are applied; the rest is skipped.
      if (name == "END STEP") {
        in_step_ = false;
        input_.skip_data();
      } else if (name == "BOUNDARY") {
        read_boundary(true);
      } else {
        input_.skip_data();
      }
      return;
    }
    const bool material_option = name == "ELASTIC" || name == "DENSITY";
    const bool known_model_keyword =
        name == "NODE" || name == "ELEMENT" || name == "NSET" || name == "ELSET" ||
        name == "MATERIAL" || name == "SOLID SECTION" || name == "MASS" || name == "SPRING" ||
        name == "BOUNDARY" || name == "STEP" || name == "HEADING";
    // A material's options follow its *MATERIAL line; any other known keyword ends them.
    if (known_model_keyword) current_material_ = -1;

    if (name == "NODE") {
      read_nodes(keyword);
    } else if (name == "ELEMENT") {
      read_elements(keyword);
    } else if (name == "NSET") {
      read_set(keyword, true);
    } else if (name == "ELSET") {
      read_set(keyword, false);
    } else if (name == "MATERIAL") {
      read_material(keyword);
    } else if (material_option) {
      read_material_option(keyword);
    } else if (name == "SOLID SECTION") {
      read_solid_section(keyword);
    } else if (name == "MASS") {
      read_mass(keyword);
    } else if (name == "SPRING") {
      read_spring(keyword);
    } else if (name == "BOUNDARY") {
      read_boundary(false);
    } else if (name == "STEP") {
      in_step_ = true;
      input_.skip_data();
    } else if (name == "HEADING") {
      input_.skip_data();
    } else {
      if (warned_keywords_.insert(name).second) {
        spdlog::warn("{}: keyword *{} is not supported by vsense and is ignored",
                     where(keyword.file, keyword.line), name);
      }
      input_.skip_data();
    }
  }

  // ---- *NODE ----
  void read_nodes(const Keyword& keyword) {
    if (const std::string* system = keyword.find("SYSTEM")) {
      if (upper(*system) != "R") {
        fail_at(keyword, fmt::format("*NODE, SYSTEM={} is not supported (only rectangular "
                                     "coordinates, SYSTEM=R)",
                                     *system));
      }
    }
    std::vector<std::int32_t>* nset = nullptr;
    if (const std::string* name = keyword.find("NSET")) nset = &model_.node_sets[upper(*name)];
    std::string_view line;
    while (input_.next_data(line)) {
      FieldCursor fields(line);
      std::string_view field;
      fields.next(field);
      const std::int64_t id = int_field(field, "node id");
      std::array<double, 3> x{0.0, 0.0, 0.0};
      for (int d = 0; d < 3 && fields.next(field); ++d) {
        if (!field.empty()) x[static_cast<std::size_t>(d)] = double_field(field, "a coordinate");
      }
      const auto index = static_cast<std::int32_t>(model_.node_ids.size());
      if (!node_lookup_.insert(id, index)) fail(fmt::format("node {} is defined twice", id));
      model_.node_ids.push_back(id);
      model_.coordinates.push_back(x);
      if (nset) nset->push_back(index);
    }
  }

  // ---- *ELEMENT ----
  void read_elements(const Keyword& keyword) {
    const std::string type_name = upper(required(keyword, "TYPE"));
    const std::optional<ElementType> parsed = parse_element_type(type_name);
    if (!parsed) {
      fail_at(keyword, fmt::format("element type {} is not supported (vsense knows C3D4, C3D10, "
                                   "C3D8, C3D20, C3D20R, MASS, SPRING1, SPRING2, SPRINGA)",
                                   type_name));
    }
    const ElementType type = *parsed;
    if (type == ElementType::c3d8r) {
      fail_at(keyword,
              "element type C3D8R is not supported: its reduced integration needs CalculiX's "
              "hourglass control, which vsense does not reproduce, so frequencies would differ; "
              "use C3D8 (full integration) or C3D20R");
    }
    std::vector<std::int32_t>* elset = nullptr;
    if (const std::string* name = keyword.find("ELSET")) {
      elset = &model_.element_sets[upper(*name)];
    }
    const int n_nodes = nodes_per_element(type);
    const int n_entries = n_nodes + 1;
    constexpr int max_entries = 32;
    std::int64_t entries[max_entries];
    std::string_view line;
    while (input_.next_data(line)) {
      const int first_file = input_.file_index();
      const int first_line = input_.line_number();
      int count = 0;
      for (;;) {
        // One physical line: its fields, then whether the element continues on the next.
        FieldCursor fields(line);
        std::string_view field;
        int on_line = 0;
        while (fields.next(field)) {
          if (field.empty()) continue;
          ++on_line;
          if (count == max_entries || count >= n_entries) {
            fail(fmt::format("{} element has {} nodes, but this line gives more", type_name,
                             n_nodes));
          }
          entries[count] = int_field(field, count == 0 ? "element id" : "node id");
          ++count;
        }
        if (count >= n_entries) break;
        const std::string_view trimmed = trim(line);
        const bool continues = (!trimmed.empty() && trimmed.back() == ',') || on_line >= 16;
        if (!continues || !input_.next_data(line)) {
          throw InputError(fmt::format("{}: {} element has {} nodes, but {} given",
                                       where(first_file, first_line), type_name, n_nodes,
                                       std::max(count - 1, 0)));
        }
      }
      const std::int64_t id = entries[0];
      const auto index = static_cast<std::int32_t>(model_.element_ids.size());
      if (!element_lookup_.insert(id, index)) {
        throw InputError(fmt::format("{}: element {} is defined twice",
                                     where(first_file, first_line), id));
      }
      model_.element_ids.push_back(id);
      model_.element_types.push_back(type);
      for (int i = 1; i < n_entries; ++i) {
        const std::int32_t node = node_lookup_.find(entries[i]);
        if (node < 0) {
          pending_nodes_.push_back(PendingNode{static_cast<std::int64_t>(model_.element_nodes.size()),
                                               entries[i], index});
        }
        model_.element_nodes.push_back(node);
      }
      model_.element_offsets.push_back(static_cast<std::int64_t>(model_.element_nodes.size()));
      element_file_.push_back(static_cast<std::uint16_t>(first_file));
      element_line_.push_back(first_line);
      if (elset) elset->push_back(index);
    }
  }

  // ---- *NSET, *ELSET ----
  void read_set(const Keyword& keyword, bool nodes) {
    const std::string name = upper(required(keyword, nodes ? "NSET" : "ELSET"));
    auto& sets = nodes ? model_.node_sets : model_.element_sets;
    std::vector<std::int32_t>& members = sets[name];
    const IdIndex& lookup = nodes ? node_lookup_ : element_lookup_;
    const char* what = nodes ? "node" : "element";
    const bool generate = keyword.has("GENERATE");
    // *NSET, NSET=N, ELSET=E: the nodes of the elements of E.
    if (nodes) {
      if (const std::string* elset_name = keyword.find("ELSET")) {
        const auto it = model_.element_sets.find(upper(*elset_name));
        if (it == model_.element_sets.end()) {
          fail_at(keyword, fmt::format("element set {} is not defined", upper(*elset_name)));
        }
        for (const std::int32_t e : it->second) {
          for (int k = 0; k < model_.n_nodes_of(static_cast<std::size_t>(e)); ++k) {
            const std::int32_t node = model_.nodes_of(static_cast<std::size_t>(e))[k];
            if (node < 0) {
              fail_at(keyword, fmt::format("element {} refers to a node not yet defined",
                                           model_.element_ids[static_cast<std::size_t>(e)]));
            }
            members.push_back(node);
          }
        }
      }
    }
    std::string_view line;
    while (input_.next_data(line)) {
      FieldCursor fields(line);
      std::string_view field;
      if (generate) {
        std::int64_t range[3] = {0, 0, 1};
        int count = 0;
        while (fields.next(field)) {
          if (field.empty()) continue;
          if (count == 3) fail("GENERATE takes first, last[, increment]");
          range[count++] = int_field(field, "in GENERATE");
        }
        if (count < 2) fail("GENERATE takes first, last[, increment]");
        if (range[2] <= 0 || range[1] < range[0]) {
          fail(fmt::format("GENERATE range {}, {}, {} is empty or has a non-positive increment",
                           range[0], range[1], range[2]));
        }
        // Ids missing from a generated range are skipped, as CalculiX does.
        std::size_t added = 0;
        for (std::int64_t id = range[0]; id <= range[1]; id += range[2]) {
          const std::int32_t index = lookup.find(id);
          if (index >= 0) {
            members.push_back(index);
            ++added;
          }
        }
        if (added == 0) {
          spdlog::warn("{}: GENERATE {}..{} matches no defined {}", input_.location(), range[0],
                       range[1], what);
        }
        continue;
      }
      while (fields.next(field)) {
        if (field.empty()) continue;
        std::int64_t id = 0;
        if (parse_int(field, id)) {
          const std::int32_t index = lookup.find(id);
          if (index < 0) fail(fmt::format("{} {} is not defined", what, id));
          members.push_back(index);
        } else {
          const std::string other_name = upper(unquote(field));
          const auto it = sets.find(other_name);
          if (it == sets.end()) {
            fail(fmt::format("{} set {} is not defined", what, other_name));
          }
          if (&it->second == &members) continue;  // a set including itself adds nothing
          members.insert(members.end(), it->second.begin(), it->second.end());
        }
      }
    }
  }

  // ---- materials ----
  void read_material(const Keyword& keyword) {
    const std::string name = upper(required(keyword, "NAME"));
    if (model_.find_material(name)) {
      fail_at(keyword, fmt::format("material {} is defined twice", name));
    }
    Material material;
    material.name = name;
    material.where = location_of(keyword);
    model_.materials.push_back(std::move(material));
    current_material_ = static_cast<int>(model_.materials.size()) - 1;
    input_.skip_data();
  }

  void read_material_option(const Keyword& keyword) {
    if (current_material_ < 0) {
      fail_at(keyword, fmt::format("*{} must follow a *MATERIAL line", keyword.name));
    }
    Material& material = model_.materials[static_cast<std::size_t>(current_material_)];
    const bool elastic = keyword.name == "ELASTIC";
    if (elastic) {
      if (const std::string* type = keyword.find("TYPE")) {
        const std::string t = upper(*type);
        if (t != "ISO" && t != "ISOTROPIC") {
          fail_at(keyword, fmt::format("*ELASTIC, TYPE={} is not supported: vsense handles "
                                       "isotropic materials only (TYPE=ISO)",
                                       t));
        }
      }
    }
    std::string_view line;
    int n_lines = 0;
    while (input_.next_data(line)) {
      if (++n_lines > 1) {
        if (!warned_temperature_) {
          spdlog::warn("{}: temperature-dependent *{} data: only the first line is used",
                       input_.location(), keyword.name);
          warned_temperature_ = true;
        }
        continue;
      }
      FieldCursor fields(line);
      std::string_view field;
      fields.next(field);
      if (elastic) {
        const double young = double_field(field, "Young's modulus");
        if (!fields.next(field) || field.empty()) fail("*ELASTIC needs E, nu");
        const double poisson = double_field(field, "Poisson's ratio");
        if (!(young > 0.0)) fail(fmt::format("Young's modulus must be positive, got {}", young));
        if (!(poisson > -1.0 && poisson < 0.5)) {
          fail(fmt::format("Poisson's ratio must lie in (-1, 0.5), got {}", poisson));
        }
        material.young_modulus = young;
        material.poisson_ratio = poisson;
      } else {
        const double density = double_field(field, "the density");
        if (!(density > 0.0)) fail(fmt::format("density must be positive, got {}", density));
        material.density = density;
      }
    }
    if (n_lines == 0) fail_at(keyword, fmt::format("*{} has no data line", keyword.name));
  }

  // ---- sections ----
  std::size_t add_section(Section::Kind kind, const Keyword& keyword) {
    Section section;
    section.kind = kind;
    section.elset = upper(required(keyword, "ELSET"));
    section.where = location_of(keyword);
    model_.sections.push_back(std::move(section));
    return model_.sections.size() - 1;
  }

  void read_solid_section(const Keyword& keyword) {
    const std::string material = upper(required(keyword, "MATERIAL"));
    const std::size_t s = add_section(Section::Kind::solid, keyword);
    model_.sections[s].material = material;
    input_.skip_data();  // a thickness line, meaningful for plane elements only
  }

  void read_mass(const Keyword& keyword) {
    const std::size_t s = add_section(Section::Kind::mass, keyword);
    std::string_view line;
    int n_lines = 0;
    while (input_.next_data(line)) {
      if (++n_lines > 1) continue;
      FieldCursor fields(line);
      std::string_view field;
      fields.next(field);
      const double mass = double_field(field, "the mass");
      if (mass < 0.0) fail(fmt::format("mass must not be negative, got {}", mass));
      model_.sections[s].mass = mass;
    }
    if (n_lines == 0) fail_at(keyword, "*MASS needs a data line with the mass");
  }

  void read_spring(const Keyword& keyword) {
    if (keyword.has("NONLINEAR")) {
      fail_at(keyword, "*SPRING, NONLINEAR is not supported: modal analysis needs linear springs");
    }
    if (keyword.has("ORIENTATION")) {
      fail_at(keyword, "*SPRING, ORIENTATION= is not supported: give the DOFs in global axes");
    }
    SpringCard card;
    card.section = add_section(Section::Kind::spring, keyword);
    std::string_view line;
    while (input_.next_data(line, true)) {
      card.lines.emplace_back(input_.line_number(), std::string(trim(line)));
    }
    while (!card.lines.empty() && card.lines.back().second.empty()) card.lines.pop_back();
    spring_cards_.push_back(std::move(card));
  }

  // ---- *BOUNDARY ----
  void read_boundary(bool in_step) {
    std::string_view line;
    while (input_.next_data(line)) {
      FieldCursor fields(line);
      std::string_view target;
      fields.next(target);
      if (target.empty()) fail("*BOUNDARY line needs a node or node set");
      std::string_view field;
      if (!fields.next(field) || field.empty()) fail("*BOUNDARY line needs a first DOF");
      int first = 0, last = 0;
      std::int64_t value = 0;
      if (parse_int(field, value)) {
        first = static_cast<int>(value);
        last = first;
        if (fields.next(field) && !field.empty()) last = static_cast<int>(int_field(field, "last DOF"));
        if (fields.next(field) && !field.empty()) {
          const double prescribed = double_field(field, "the prescribed value");
          if (prescribed != 0.0) {
            if (!in_step) {
              fail(fmt::format("*BOUNDARY prescribes {} but vsense handles only fixed DOFs "
                               "(value 0)", prescribed));
            }
            if (!warned_step_value_) {
              spdlog::warn("{}: nonzero *BOUNDARY value {} inside *STEP is taken as a fixed DOF "
                           "(modes are homogeneous)", input_.location(), prescribed);
              warned_step_value_ = true;
            }
          }
        }
        if (first < 1 || first > 6 || last < first || last > 6) {
          fail(fmt::format("*BOUNDARY DOFs {}..{}: expected 1 <= first <= last <= 6", first, last));
        }
      } else {
        // Abaqus' named boundary types.
        const std::string kind = upper(field);
        if (kind == "ENCASTRE" || kind == "PINNED") {
          first = 1;
          last = 3;
        } else if (kind == "XSYMM") {
          first = last = 1;
        } else if (kind == "YSYMM") {
          first = last = 2;
        } else if (kind == "ZSYMM") {
          first = last = 3;
        } else {
          fail(fmt::format("*BOUNDARY: expected a DOF number, got '{}'", shorten(field)));
        }
      }
      if (last > 3 && !warned_rotations_) {
        spdlog::warn("{}: *BOUNDARY on DOFs 4-6 (rotations) is ignored: solid elements have "
                     "translations only",
                     input_.location());
        warned_rotations_ = true;
      }
      last = std::min(last, 3);
      if (first > last) continue;
      std::int64_t id = 0;
      if (parse_int(target, id)) {
        const std::int32_t node = node_lookup_.find(id);
        if (node < 0) fail(fmt::format("node {} is not defined", id));
        add_fixed(node, first, last);
      } else {
        const std::string set_name = upper(unquote(target));
        const auto it = model_.node_sets.find(set_name);
        if (it == model_.node_sets.end()) fail(fmt::format("node set {} is not defined", set_name));
        for (const std::int32_t node : it->second) add_fixed(node, first, last);
      }
    }
  }

  void add_fixed(std::int32_t node, int first, int last) {
    for (int d = first; d <= last; ++d) {
      model_.fixed_dofs.push_back(FixedDof{node, static_cast<std::int8_t>(d - 1)});
    }
  }

  // ---- after the last line ----
  std::string element_where(std::size_t e) const {
    return where(element_file_[e], element_line_[e]);
  }

  void finish() {
    resolve_pending_nodes();
    // The id -> index hash maps cost one allocation per entry; they are filled on their own
    // threads while the sets and sections are resolved (which use the flat look-up tables).
    std::exception_ptr map_failure[2];
    {
      std::jthread node_map([&] {
        try {
          fill_index_map(model_.node_index, model_.node_ids);
        } catch (...) {
          map_failure[0] = std::current_exception();
        }
      });
      std::jthread element_map([&] {
        try {
          fill_index_map(model_.element_index, model_.element_ids);
        } catch (...) {
          map_failure[1] = std::current_exception();
        }
      });
      finish_sets_and_sections();
    }
    for (const auto& failure : map_failure) {
      if (failure) std::rethrow_exception(failure);
    }
  }

  void finish_sets_and_sections() {
    deduplicate_sets();
    resolve_sections();
    check_every_element_has_a_section();
    auto& fixed = model_.fixed_dofs;
    std::sort(fixed.begin(), fixed.end(), [](const FixedDof& a, const FixedDof& b) {
      return a.node != b.node ? a.node < b.node : a.dof < b.dof;
    });
    fixed.erase(std::unique(fixed.begin(), fixed.end(),
                            [](const FixedDof& a, const FixedDof& b) {
                              return a.node == b.node && a.dof == b.dof;
                            }),
                fixed.end());
  }

  void resolve_pending_nodes() {
    for (const PendingNode& p : pending_nodes_) {
      const std::int32_t node = node_lookup_.find(p.node_id);
      const auto e = static_cast<std::size_t>(p.element);
      if (node < 0) {
        throw InputError(fmt::format("{}: element {} refers to node {}, which is not defined",
                                     element_where(e), model_.element_ids[e], p.node_id));
      }
      model_.element_nodes[static_cast<std::size_t>(p.position)] = node;
    }
    pending_nodes_.clear();
    pending_nodes_.shrink_to_fit();
  }

  static void fill_index_map(std::unordered_map<std::int64_t, std::int32_t>& map,
                             const std::vector<std::int64_t>& ids) {
    map.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      map.emplace(ids[i], static_cast<std::int32_t>(i));
    }
  }

  /// Keeps the first occurrence of every member, in the order given.
  void deduplicate_sets() {
    std::vector<std::uint32_t> stamp;
    std::uint32_t generation = 0;
    auto dedupe = [&](std::vector<std::int32_t>& members, std::size_t universe) {
      if (members.size() < 2) return;
      if (stamp.size() < universe) stamp.resize(universe, 0);
      ++generation;
      std::size_t kept = 0;
      for (const std::int32_t m : members) {
        auto& s = stamp[static_cast<std::size_t>(m)];
        if (s == generation) continue;
        s = generation;
        members[kept++] = m;
      }
      members.resize(kept);
    };
    for (auto& [name, members] : model_.node_sets) dedupe(members, model_.n_nodes());
    for (auto& [name, members] : model_.element_sets) dedupe(members, model_.n_elements());
  }

  void resolve_sections() {
    model_.element_section.assign(model_.n_elements(), -1);
    std::vector<const SpringCard*> spring_card_of(model_.sections.size(), nullptr);
    for (const SpringCard& card : spring_cards_) spring_card_of[card.section] = &card;

    for (std::size_t s = 0; s < model_.sections.size(); ++s) {
      Section& section = model_.sections[s];
      const auto it = model_.element_sets.find(section.elset);
      if (it == model_.element_sets.end()) {
        fail_at(section.where, fmt::format("element set {} is not defined", section.elset));
      }
      const std::vector<std::int32_t>& members = it->second;
      const char* keyword = section.kind == Section::Kind::solid  ? "*SOLID SECTION"
                            : section.kind == Section::Kind::mass ? "*MASS"
                                                                  : "*SPRING";
      if (section.kind == Section::Kind::solid) check_material(section);
      std::optional<ElementType> spring_type;
      for (const std::int32_t member : members) {
        const auto e = static_cast<std::size_t>(member);
        const ElementType type = model_.element_types[e];
        const bool fits = section.kind == Section::Kind::solid  ? is_solid(type)
                          : section.kind == Section::Kind::mass ? type == ElementType::mass
                                                                : (type == ElementType::spring1 ||
                                                                   type == ElementType::spring2 ||
                                                                   type == ElementType::springa);
        if (!fits) {
          fail_at(section.where,
                  fmt::format("{} for element set {} contains element {} of type {}", keyword,
                              section.elset, model_.element_ids[e], element_type_name(type)));
        }
        if (section.kind == Section::Kind::spring) {
          if (spring_type && *spring_type != type) {
            fail_at(section.where, fmt::format("*SPRING for element set {} mixes {} and {} "
                                               "elements; give each type its own set",
                                               section.elset, element_type_name(*spring_type),
                                               element_type_name(type)));
          }
          spring_type = type;
        }
        auto& assigned = model_.element_section[e];
        if (assigned >= 0 && static_cast<std::size_t>(assigned) != s) {
          fail_at(section.where,
                  fmt::format("element {} already has a section (from {})", model_.element_ids[e],
                              model_.sections[static_cast<std::size_t>(assigned)].where.str()));
        }
        assigned = static_cast<std::int32_t>(s);
      }
      if (members.empty()) {
        spdlog::warn("{}: {} applies to element set {}, which is empty", section.where.str(),
                     keyword, section.elset);
      }
      if (section.kind == Section::Kind::spring && spring_card_of[s]) {
        interpret_spring(section, *spring_card_of[s], spring_type.value_or(ElementType::springa));
      }
    }
  }

  void check_material(const Section& section) const {
    const Material* material = model_.find_material(section.material);
    if (!material) {
      fail_at(section.where, fmt::format("material {} is not defined", section.material));
    }
    const char* missing = !material->young_modulus ? "*ELASTIC"
                          : !material->density     ? "*DENSITY"
                                                   : nullptr;
    if (missing) {
      fail_at(material->where,
              fmt::format("material {} has no {} (it is used by the *SOLID SECTION at {})",
                          material->name, missing, section.where.str()));
    }
  }

  void interpret_spring(Section& section, const SpringCard& card, ElementType type) const {
    auto fail_card = [&](int line, std::string_view reason) {
      throw InputError(fmt::format("{}:{}: {}", section.where.file, line, reason));
    };
    auto number = [&](const std::pair<int, std::string>& entry, std::string_view what) {
      FieldCursor fields(entry.second);
      std::string_view field;
      fields.next(field);
      double value = 0.0;
      if (!parse_double(field, value)) {
        fail_card(entry.first, fmt::format("expected a number for {}, got '{}'", what,
                                           shorten(field)));
      }
      return value;
    };
    std::size_t stiffness_line = 0;
    if (type == ElementType::springa) {
      // CalculiX: an arbitrary (usually empty) line, then the spring constant. A card with a
      // single line holds just the constant.
      stiffness_line = card.lines.size() == 1 ? 0 : 1;
    } else {
      std::vector<std::pair<int, std::string>> lines;
      for (const auto& entry : card.lines) {
        if (!entry.second.empty()) lines.push_back(entry);
      }
      if (lines.empty()) fail_at(section.where, "*SPRING needs a DOF line and a stiffness line");
      FieldCursor fields(lines[0].second);
      std::string_view field;
      int dofs[2] = {0, 0};
      int count = 0;
      while (fields.next(field) && count < 2) {
        if (field.empty()) continue;
        std::int64_t dof = 0;
        if (!parse_int(field, dof) || dof < 1 || dof > 3) {
          fail_card(lines[0].first, fmt::format("expected a translational DOF 1..3, got '{}'",
                                                shorten(field)));
        }
        dofs[count++] = static_cast<int>(dof);
      }
      const int needed = type == ElementType::spring1 ? 1 : 2;
      if (count < needed) {
        fail_card(lines[0].first, fmt::format("{} needs {} DOF(s) on this line",
                                              element_type_name(type), needed));
      }
      section.dof1 = dofs[0];
      section.dof2 = type == ElementType::spring2 ? dofs[1] : 0;
      if (lines.size() < 2) fail_at(section.where, "*SPRING needs a stiffness line after the DOFs");
      const double k = number(lines[1], "the spring constant");
      if (k < 0.0) fail_card(lines[1].first, fmt::format("spring constant {} is negative", k));
      section.stiffness = k;
      return;
    }
    if (card.lines.size() <= stiffness_line || card.lines[stiffness_line].second.empty()) {
      fail_at(section.where, "*SPRING needs a line with the spring constant");
    }
    const double k = number(card.lines[stiffness_line], "the spring constant");
    if (k < 0.0) {
      fail_card(card.lines[stiffness_line].first, fmt::format("spring constant {} is negative", k));
    }
    section.stiffness = k;
  }

  void check_every_element_has_a_section() const {
    std::size_t missing = 0;
    std::size_t first = 0;
    for (std::size_t e = 0; e < model_.n_elements(); ++e) {
      if (model_.element_section[e] >= 0) continue;
      if (missing++ == 0) first = e;
    }
    if (missing == 0) return;
    const ElementType type = model_.element_types[first];
    const char* needed = is_solid(type)                 ? "*SOLID SECTION"
                         : type == ElementType::mass    ? "*MASS"
                                                        : "*SPRING";
    throw InputError(fmt::format(
        "{}: element {} ({}) has no section: no {} names an element set containing it{}",
        element_where(first), model_.element_ids[first], element_type_name(type), needed,
        missing > 1 ? fmt::format(" ({} elements lack one)", missing) : std::string()));
  }

  Model& model_;
  std::vector<std::string> file_names_;  // index -> path, for locations
  InputStack input_;
  IdIndex node_lookup_, element_lookup_;
  std::vector<std::int32_t> element_line_;   // [n_elements] line of each element's first line
  std::vector<std::uint16_t> element_file_;  // [n_elements] index into file_names_
  std::vector<PendingNode> pending_nodes_;
  std::vector<SpringCard> spring_cards_;
  std::set<std::string> warned_keywords_;
  int current_material_ = -1;
  bool in_step_ = false;
  bool warned_rotations_ = false;
  bool warned_temperature_ = false;
  bool warned_step_value_ = false;
};

}  // namespace

Model read_inp(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  Model model;
  Parser(model).read(path);
  spdlog::debug("read {}: {} nodes, {} elements in {:.2f} s", path, model.n_nodes(),
                model.n_elements(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return model;
}

}  // namespace vsense::model
