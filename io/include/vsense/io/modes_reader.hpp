#pragma once
/// @file modes_reader.hpp
/// @brief Piecewise reading of a modes file: the mesh and the spectrum at once, mode shapes and
/// modal stresses of chosen modes at chosen nodes on demand, so that a stage needing a few
/// sensor nodes or one hot-spot set of a 10^7-DOF model never holds the whole file.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vsense::io {

/// @brief Node indices (sorted, unique) of a node-list file (one id per line, `#` comments) or,
/// when `spec` is not a file, of a node set: the rule every `--nodes`, `--candidates`, ... shares.
/// @param[in] index_of a node id's index, or -1 when the model has no such node
/// @param[in] set_ids the ids of the set of an upper-case name, or nullopt when there is none
/// @param[in] set_names the model's sets, for the message; `source` names the model
/// @throws InputError naming the file and line, or the set, of anything that is not a node.
std::vector<std::size_t> resolve_node_spec(
    const std::string& spec, const std::string& what,
    const std::function<std::int64_t(std::int64_t)>& index_of,
    const std::function<std::optional<std::vector<std::int64_t>>(const std::string&)>& set_ids,
    const std::vector<std::string>& set_names, const std::string& source);

class ModesReader {
public:
  /// Opens and validates the file (format, version, dataset shapes, ascending eigenvalues).
  /// @throws InputError naming the file and dataset when it is not a valid modes file.
  explicit ModesReader(const std::string& path);
  ~ModesReader();
  ModesReader(ModesReader&&) noexcept;
  ModesReader& operator=(ModesReader&&) noexcept;

  const std::string& path() const noexcept { return path_; }
  const std::string& units() const noexcept { return units_; }
  const std::string& source_sha256() const noexcept { return source_sha256_; }
  const std::string& source_file() const noexcept { return source_file_; }
  std::size_t n_nodes() const noexcept { return node_ids_.size(); }
  std::size_t n_modes() const noexcept { return eigenvalues_.size(); }
  const std::vector<std::int64_t>& node_ids() const noexcept { return node_ids_; }
  const std::vector<double>& coordinates() const noexcept { return coordinates_; }  ///< [n, 3]
  const std::vector<double>& eigenvalues() const noexcept { return eigenvalues_; }  ///< [m]
  const std::vector<double>& frequencies_hz() const noexcept { return frequencies_hz_; }

  /// Index of a node id in /mesh/node_ids, or -1.
  std::int64_t node_index(std::int64_t node_id) const;
  /// Upper-case names of /mesh/node_sets (empty without sets).
  const std::vector<std::string>& set_names() const noexcept { return set_names_; }
  /// Node ids of a set (case-insensitive). @throws InputError listing the sets.
  std::vector<std::int64_t> node_set(const std::string& name) const;
  /// @brief Node indices (sorted, unique) of a node-list file (one id per line, `#` comments) or,
  /// when `spec` is not a file, of a node set of the model.
  /// @param what what the nodes are for, used in messages ("output", "candidate")
  /// @throws InputError naming the file and line, or the set, of anything that is not a node.
  std::vector<std::size_t> resolve_nodes(const std::string& spec, const std::string& what) const;

  /// Whether /mesh/topology exists (solid cells for XDMF).
  bool has_topology() const;
  /// The XDMF "Mixed" topology and the number of cells (see modes_file.hpp).
  std::vector<std::int64_t> topology(std::int64_t* n_cells) const;

  /// @brief Mode shapes of `modes` (indices into /modes) at `nodes` (indices into /mesh).
  /// @return [modes.size(), nodes.size(), 3], mass-normalised, model length units
  /// @throws InputError for an index out of range or an unreadable (damaged) dataset.
  std::vector<double> shapes(const std::vector<std::int64_t>& modes,
                             const std::vector<std::size_t>& nodes) const;
  /// @brief Modal stresses (per unit modal displacement) of `modes` at `nodes`.
  /// @return [modes.size(), nodes.size(), 6] xx, yy, zz, xy, yz, zx, model stress units
  std::vector<double> stresses(const std::vector<std::int64_t>& modes,
                               const std::vector<std::size_t>& nodes) const;

private:
  std::vector<double> read_rows(const char* dataset, std::size_t components,
                                const std::vector<std::int64_t>& modes,
                                const std::vector<std::size_t>& nodes) const;
  struct File;
  std::unique_ptr<File> file_;
  std::string path_, units_, source_sha256_, source_file_;
  std::vector<std::int64_t> node_ids_;
  std::vector<double> coordinates_, eigenvalues_, frequencies_hz_;
  std::vector<std::string> set_names_;
  std::unordered_map<std::int64_t, std::size_t> index_of_;
};

}  // namespace vsense::io
