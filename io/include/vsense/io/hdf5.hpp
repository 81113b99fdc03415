#pragma once
/// @file hdf5.hpp
/// @brief Thin RAII layer over the HDF5 C API: every call is checked and errors name the
/// file and dataset.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vsense::io::hdf5 {

/// Owns one hid_t and closes it with the right H5*close.
class Handle {
public:
  Handle() = default;
  Handle(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept { *this = std::move(other); }
  Handle& operator=(Handle&& other) noexcept;
  ~Handle() { reset(); }
  void reset() noexcept;
  /// Gives up ownership without closing (for a checked close by the caller).
  hid_t release() noexcept {
    const hid_t id = id_;
    id_ = -1;
    closer_ = nullptr;
    return id;
  }
  hid_t get() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ >= 0; }

private:
  hid_t id_ = -1;
  herr_t (*closer_)(hid_t) = nullptr;
};

/// @brief An open HDF5 file; paths inside are absolute ("/modes/shapes").
class File {
public:
  /// read: existing file, read only; create: new file (truncating); update: existing file,
  /// read and write (errors are IoError).
  enum class Mode { read, create, update };
  /// @throws InputError (read: missing, not HDF5, truncated) or IoError (create, update) naming
  /// the file.
  File(const std::string& path, Mode mode);
  const std::string& path() const noexcept { return path_; }
  /// Flushes and closes the file, checked (the destructor closes too but cannot report a
  /// failed final flush, so writers call close() before committing). @throws IoError
  void close();
  hid_t id() const noexcept { return file_.get(); }

  void create_group(const std::string& group);
  bool exists(const std::string& object) const;
  /// Names of the members of a group, in name order. @throws InputError when missing.
  std::vector<std::string> members(const std::string& group) const;

  /// Writes a dataset of the given shape (row-major), chunked and compressed when large.
  void write(const std::string& dataset, const std::vector<hsize_t>& dims, const double* data);
  void write(const std::string& dataset, const std::vector<hsize_t>& dims, const float* data);
  void write(const std::string& dataset, const std::vector<hsize_t>& dims,
             const std::int64_t* data);
  void write_strings(const std::string& dataset, const std::vector<std::string>& values);
  /// @brief Creates a contiguous (unchunked, uncompressed) dataset of float32 or float64 whose
  /// storage is allocated at once and never filled, and returns the byte offset of its data in
  /// the file: rows can then be written with plain pwrite() by any process, without HDF5 and
  /// without touching the file's metadata (so a killed writer cannot damage the file).
  /// @param[in] element_bytes 4 (IEEE float32, little-endian) or 8 (float64)
  std::int64_t create_contiguous(const std::string& dataset, const std::vector<hsize_t>& dims,
                                 std::size_t element_bytes);

  /// Shape of a dataset. @throws InputError when missing.
  std::vector<hsize_t> shape(const std::string& dataset) const;
  std::vector<double> read_double(const std::string& dataset) const;
  std::vector<std::int64_t> read_int64(const std::string& dataset) const;
  std::vector<std::string> read_strings(const std::string& dataset) const;

  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object, const std::string& name, double value);
  void set_attribute(const std::string& object, const std::string& name, std::int64_t value);
  bool has_attribute(const std::string& object, const std::string& name) const;
  std::string string_attribute(const std::string& object, const std::string& name) const;
  double double_attribute(const std::string& object, const std::string& name) const;
  std::int64_t int_attribute(const std::string& object, const std::string& name) const;

private:
  /// Throws the error class of this file's mode (InputError reading, IoError writing) with
  /// "PATH: what" and the innermost HDF5 message.
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  Mode mode_;
  Handle file_;
};

/// Writes the root attributes every output file carries: format, format_version, units,
/// created_by, created_at, source_sha256.
void write_standard_attributes(File& file, const std::string& format, std::int64_t version,
                               const std::string& units, const std::string& source_sha256);

/// Writes through a temporary file next to `path` and renames it into place on success, so
/// that an output appears only when complete.
class AtomicOutput {
public:
  explicit AtomicOutput(std::string path);
  ~AtomicOutput();  ///< removes the temporary file unless commit() was called
  const std::string& temporary_path() const noexcept { return temporary_; }
  void commit();

private:
  std::string path_, temporary_;
  bool committed_ = false;
};

}  // namespace vsense::io::hdf5
