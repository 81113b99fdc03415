#include "chunk_writer.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

namespace vsense::io::detail {

namespace {

/// Copies the chunk at `offset` out of the row-major array into `plain` (edge chunks padded
/// with zeros, as HDF5 stores them).
void gather(const unsigned char* data, const std::vector<hsize_t>& dims,
            const std::vector<hsize_t>& chunk, const std::vector<hsize_t>& offset,
            std::size_t element_bytes, std::vector<unsigned char>& plain) {
  const std::size_t rank = dims.size();
  std::size_t chunk_elements = 1;
  for (const auto c : chunk) chunk_elements *= static_cast<std::size_t>(c);
  plain.assign(chunk_elements * element_bytes, 0);
  const auto run = static_cast<std::size_t>(
      std::min<hsize_t>(chunk[rank - 1], dims[rank - 1] - offset[rank - 1]));
  std::vector<hsize_t> index(rank, 0);  // chunk-local start of a run along the last dimension
  for (;;) {
    bool inside = true;
    std::size_t source = 0, target = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      const hsize_t global = offset[d] + index[d];
      inside = inside && global < dims[d];
      source = source * static_cast<std::size_t>(dims[d]) + static_cast<std::size_t>(global);
      target = target * static_cast<std::size_t>(chunk[d]) + static_cast<std::size_t>(index[d]);
    }
    if (inside) {
      std::memcpy(plain.data() + target * element_bytes, data + source * element_bytes,
                  run * element_bytes);
    }
    std::size_t d = rank - 1;  // advance over all but the last dimension
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < chunk[d]) break;
      index[d] = 0;
    }
  }
}

/// HDF5's shuffle filter: byte 0 of every element, then byte 1, ...
void shuffle(const std::vector<unsigned char>& plain, std::size_t element_bytes,
             std::vector<unsigned char>& out) {
  const std::size_t n = plain.size() / element_bytes;
  out.resize(plain.size());
  for (std::size_t b = 0; b < element_bytes; ++b) {
    unsigned char* column = out.data() + b * n;
    for (std::size_t i = 0; i < n; ++i) column[i] = plain[i * element_bytes + b];
  }
}

}  // namespace

std::string write_compressed_chunks(hid_t dataset, const std::vector<hsize_t>& dims,
                                    const std::vector<hsize_t>& chunk, const void* data,
                                    std::size_t element_bytes, int level) {
  const std::size_t rank = dims.size();
  if (rank == 0 || chunk.size() != rank) return "chunk shape does not match the dataset";
  // The chunk grid, row-major.
  std::vector<hsize_t> grid(rank);
  std::size_t n_chunks = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    grid[d] = (dims[d] + chunk[d] - 1) / chunk[d];
    n_chunks *= static_cast<std::size_t>(grid[d]);
  }
  const auto offset_of = [&](std::size_t k) {
    std::vector<hsize_t> offset(rank);
    for (std::size_t d = rank; d-- > 0;) {
      offset[d] = (k % grid[d]) * chunk[d];
      k /= grid[d];
    }
    return offset;
  };
  const unsigned threads =
      std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 32);
  // Batches of a few chunks per thread: encoded in parallel, written in order by this thread
  // (HDF5 calls stay on one thread); memory stays at a few chunks per thread.
  const std::size_t batch = 4 * static_cast<std::size_t>(threads);
  std::vector<std::vector<unsigned char>> encoded(std::min(batch, n_chunks));
  std::vector<int> failed(encoded.size(), 0);
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t first = 0; first < n_chunks; first += batch) {
    const std::size_t count = std::min(batch, n_chunks - first);
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
      std::vector<unsigned char> plain, shuffled;
      const std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)>
          compressor(libdeflate_alloc_compressor(level), libdeflate_free_compressor);
      for (std::size_t i = next++; i < count; i = next++) {
        if (!compressor) {
          failed[i] = 1;
          continue;
        }
        gather(bytes, dims, chunk, offset_of(first + i), element_bytes, plain);
        shuffle(plain, element_bytes, shuffled);
        encoded[i].resize(libdeflate_zlib_compress_bound(compressor.get(), shuffled.size()));
        const std::size_t size = libdeflate_zlib_compress(
            compressor.get(), shuffled.data(), shuffled.size(), encoded[i].data(),
            encoded[i].size());
        failed[i] = size == 0;
        encoded[i].resize(size);
      }
    };
    std::vector<std::thread> pool;
    const unsigned helpers = static_cast<unsigned>(std::min<std::size_t>(threads, count)) - 1;
    for (unsigned t = 0; t < helpers; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (std::size_t i = 0; i < count; ++i) {
      if (failed[i]) return "libdeflate could not compress a chunk";
      const auto offset = offset_of(first + i);
      if (H5Dwrite_chunk(dataset, H5P_DEFAULT, 0, offset.data(), encoded[i].size(),
                         encoded[i].data()) < 0) {
        return "H5Dwrite_chunk failed";
      }
    }
  }
  return {};
}

}  // namespace vsense::io::detail
