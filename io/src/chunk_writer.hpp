#pragma once
// Parallel compression of chunked datasets (not a public header).
//
// HDF5 runs its filters (shuffle + deflate) in the calling thread, one chunk after the other:
// writing the shapes and stresses of a 1e7-DOF model's modes (tens of GB) would take longer than
// the eigen-solve. Here the chunks are shuffled and deflated as HDF5's own filters do (zlib
// streams, from libdeflate: 2.6x zlib's speed on shuffled float64 at the same ratio), on all
// cores, and stored with H5Dwrite_chunk; any HDF5 reader decodes them through the filter pipeline
// the dataset declares.
#include <hdf5.h>

#include <cstddef>
#include <string>
#include <vector>

namespace vsense::io::detail {

/// Writes the row-major array `data` [dims] into the chunked dataset `dataset` (chunk shape
/// `chunk`, filters shuffle then deflate at libdeflate's `level` (1-12), element size `element_bytes`). Returns an
/// empty string, or what failed.
std::string write_compressed_chunks(hid_t dataset, const std::vector<hsize_t>& dims,
                                    const std::vector<hsize_t>& chunk, const void* data,
                                    std::size_t element_bytes, int level);

}  // namespace vsense::io::detail
