// Growing 2-D datasets written chunk by chunk (see row_appender.hpp).
#include "row_appender.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vsense/kernels/errors.hpp"

namespace vsense::io::detail {

std::string hdf5_error_message() {
  std::string message;
  auto walker = [](unsigned n, const H5E_error2_t* error, void* data) -> herr_t {
    auto* out = static_cast<std::string*>(data);
    if (n == 0 && error != nullptr && error->desc != nullptr) *out = error->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walker, &message);
  H5Eclear2(H5E_DEFAULT);
  return message;
}

std::size_t chunk_rows_for(std::size_t n_columns, std::size_t element_bytes,
                           std::size_t preferred) {
  constexpr std::size_t max_chunk_bytes = std::size_t{4} << 20;
  const std::size_t row_bytes = std::max<std::size_t>(1, n_columns * element_bytes);
  return std::clamp<std::size_t>(std::min(preferred, max_chunk_bytes / row_bytes), 1,
                                 std::max<std::size_t>(preferred, 1));
}

RowAppender::RowAppender(hdf5::File& file, const std::string& dataset, std::size_t n_columns,
                         hid_t file_type, std::size_t chunk_rows, unsigned compression_level,
                         bool one_dimensional, bool checksum)
    : file_path_(file.path()),
      name_(dataset),
      n_columns_(n_columns),
      chunk_rows_(std::max<std::size_t>(chunk_rows, 1)),
      rank_(one_dimensional ? 1 : 2) {
  auto fail = [&](const std::string& what) {
    const std::string detail = hdf5_error_message();
    throw IoError(fmt::format("{}: dataset {}: {}{}", file_path_, name_, what,
                              detail.empty() ? "" : " (HDF5: " + detail + ")"));
  };
  const hsize_t dims[2] = {0, static_cast<hsize_t>(n_columns)};
  const hsize_t max_dims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(n_columns)};
  // HDF5 refuses zero-sized chunk dimensions; a dataset without columns keeps a 1-wide chunk.
  const hsize_t chunk[2] = {static_cast<hsize_t>(chunk_rows_),
                            static_cast<hsize_t>(std::max<std::size_t>(n_columns, 1))};
  if (one_dimensional && n_columns != 1) fail("a one-dimensional dataset needs one column");
  hdf5::Handle space(H5Screate_simple(rank_, dims, max_dims), H5Sclose);
  hdf5::Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  hdf5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!space || !lcpl || !dcpl || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0 ||
      H5Pset_chunk(dcpl.get(), rank_, chunk) < 0) {
    fail("cannot set up an extendible chunked dataset");
  }
  if (compression_level > 0) {
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) fail("deflate compression is not available");
    if (H5Pset_shuffle(dcpl.get()) < 0 ||
        H5Pset_deflate(dcpl.get(), std::min(compression_level, 9u)) < 0) {
      fail("cannot enable compression");
    }
  }
  if (checksum && H5Pset_fletcher32(dcpl.get()) < 0) fail("cannot enable checksums");
  // Chunks are written whole from our own buffer, so a cache of one chunk is enough; it
  // avoids a read-modify-write of the last (partial) chunk.
  hdf5::Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  const std::size_t chunk_bytes = chunk_rows_ * std::max<std::size_t>(n_columns, 1) * 8;
  if (!dapl ||
      H5Pset_chunk_cache(dapl.get(), 521, std::max<std::size_t>(chunk_bytes, 1 << 20), 1.0) < 0) {
    fail("cannot set the chunk cache");
  }
  dataset_ = hdf5::Handle(H5Dcreate2(file.id(), dataset.c_str(), file_type, space.get(), lcpl.get(),
                                     dcpl.get(), dapl.get()),
                          H5Dclose);
  if (!dataset_) fail("cannot create");
  buffer_.resize(chunk_rows_ * n_columns_);
}

void RowAppender::append(const double* rows, std::size_t n_rows) {
  while (n_rows > 0) {
    const std::size_t take = std::min(n_rows, chunk_rows_ - buffered_);
    if (n_columns_ > 0) {
      std::memcpy(buffer_.data() + buffered_ * n_columns_, rows,
                  take * n_columns_ * sizeof(double));
    }
    buffered_ += take;
    rows += take * n_columns_;
    n_rows -= take;
    if (buffered_ == chunk_rows_) write_buffer();
  }
}

void RowAppender::flush() {
  if (buffered_ > 0) write_buffer();
}

void RowAppender::write_buffer() {
  auto fail = [&](const std::string& what) {
    const std::string detail = hdf5_error_message();
    throw IoError(fmt::format("{}: dataset {}: {}{}", file_path_, name_, what,
                              detail.empty() ? "" : " (HDF5: " + detail + ")"));
  };
  const hsize_t new_dims[2] = {written_ + buffered_, static_cast<hsize_t>(n_columns_)};
  if (H5Dset_extent(dataset_.get(), new_dims) < 0) {
    fail(fmt::format("cannot extend to {} rows", new_dims[0]));
  }
  if (n_columns_ > 0) {
    hdf5::Handle file_space(H5Dget_space(dataset_.get()), H5Sclose);
    const hsize_t start[2] = {written_, 0};
    const hsize_t count[2] = {static_cast<hsize_t>(buffered_), static_cast<hsize_t>(n_columns_)};
    hdf5::Handle memory_space(H5Screate_simple(rank_, count, nullptr), H5Sclose);
    if (!file_space || !memory_space ||
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dwrite(dataset_.get(), H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(),
                 H5P_DEFAULT, buffer_.data()) < 0) {
      fail(fmt::format("cannot write rows {} .. {}", written_, written_ + buffered_ - 1));
    }
  }
  written_ += buffered_;
  buffered_ = 0;
}

}  // namespace vsense::io::detail
