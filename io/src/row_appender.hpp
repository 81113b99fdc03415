#pragma once
// Private to vsense_io: a 2-D dataset [n_rows, n_columns] that grows by rows, written chunk by
// chunk from a buffer of one chunk, so that writers of arbitrarily long time series (archives,
// simulation truth) keep bounded memory.
#include <cstdint>
#include <string>
#include <vector>

#include "vsense/io/hdf5.hpp"

namespace vsense::io::detail {

class RowAppender {
public:
  /// Creates `dataset` (intermediate groups too) with shape [0, n_columns], unlimited rows,
  /// chunks [chunk_rows, n_columns], stored as `file_type` (H5T_IEEE_F32LE or _F64LE).
  /// With `one_dimensional` (n_columns must be 1) the dataset is [n_rows] instead. With
  /// `checksum` every chunk carries a Fletcher-32 checksum that reading verifies.
  /// @throws IoError naming file and dataset
  RowAppender(hdf5::File& file, const std::string& dataset, std::size_t n_columns, hid_t file_type,
              std::size_t chunk_rows, unsigned compression_level, bool one_dimensional = false,
              bool checksum = false);
  RowAppender(const RowAppender&) = delete;
  RowAppender& operator=(const RowAppender&) = delete;
  RowAppender(RowAppender&&) = default;
  RowAppender& operator=(RowAppender&&) = default;

  /// @param[in] rows [n_rows, n_columns] row-major; converted to the file type by HDF5.
  void append(const double* rows, std::size_t n_rows);
  /// Writes the buffered partial chunk (call before closing the file).
  void flush();
  /// Rows appended so far (written or buffered).
  std::int64_t n_rows() const noexcept { return static_cast<std::int64_t>(written_ + buffered_); }
  hid_t id() const noexcept { return dataset_.get(); }

private:
  void write_buffer();

  std::string file_path_, name_;
  hdf5::Handle dataset_;
  std::size_t n_columns_ = 0, chunk_rows_ = 0, buffered_ = 0;
  int rank_ = 2;
  hsize_t written_ = 0;
  std::vector<double> buffer_;  // [chunk_rows, n_columns]
};

/// Chunk rows for a row width: `preferred` unless a chunk would exceed about 4 MiB.
std::size_t chunk_rows_for(std::size_t n_columns, std::size_t element_bytes, std::size_t preferred);

/// The innermost message of the current HDF5 error stack, then clears it ("" when none).
std::string hdf5_error_message();

}  // namespace vsense::io::detail
