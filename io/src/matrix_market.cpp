// Matrix Market export. Eigen's saveMarket writes `general` with both triangles expected; vsense
// stores the lower triangle of a symmetric matrix, which is exactly Matrix Market's `symmetric`.
#include "vsense/io/matrix_market.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/version.hpp"

namespace vsense::io {

namespace {

constexpr std::size_t flush_bytes = std::size_t{1} << 20;

struct FileCloser {
  void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

}  // namespace

void write_matrix_market(const std::string& path, const model::SparseMatrix& lower) {
  if (lower.rows() != lower.cols()) {
    throw InputError(fmt::format("{}: a symmetric Matrix Market file needs a square matrix, "
                                 "got {}x{}",
                                 path, lower.rows(), lower.cols()));
  }
  // Entries above the diagonal are not part of the matrix in vsense's convention (the lower
  // triangle is), so they are left out, as selfadjointView<Lower> and CHOLMOD stype=-1 do.
  std::int64_t entries = 0;
  for (Eigen::Index col = 0; col < lower.outerSize(); ++col) {
    for (model::SparseMatrix::InnerIterator it(lower, col); it; ++it) {
      if (it.row() >= it.col()) ++entries;
    }
  }

  hdf5::AtomicOutput output(path);
  {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(output.temporary_path().c_str(), "wb"));
    if (!file) throw IoError(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
    std::string buffer;
    buffer.reserve(flush_bytes + 256);
    const auto flush = [&] {
      if (!buffer.empty() && std::fwrite(buffer.data(), 1, buffer.size(), file.get()) != buffer.size()) {
        throw IoError(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
      }
      buffer.clear();
    };
    auto out = std::back_inserter(buffer);
    fmt::format_to(out, "%%MatrixMarket matrix coordinate real symmetric\n");
    fmt::format_to(out, "% written by vsense {}: lower triangle, 1-based indices\n", VSENSE_VERSION);
    fmt::format_to(out, "{} {} {}\n", lower.rows(), lower.cols(), entries);
    for (Eigen::Index col = 0; col < lower.outerSize(); ++col) {
      for (model::SparseMatrix::InnerIterator it(lower, col); it; ++it) {
        if (it.row() < it.col()) continue;
        // 17 significant digits round-trip every double exactly.
        fmt::format_to(out, "{} {} {:.17g}\n", it.row() + 1, it.col() + 1, it.value());
      }
      if (buffer.size() >= flush_bytes) flush();
    }
    flush();
    std::FILE* raw = file.release();
    if (std::fclose(raw) != 0) {
      throw IoError(fmt::format("{}: write failed on close: {}", path, std::strerror(errno)));
    }
  }
  output.commit();
}

}  // namespace vsense::io
