// HDF5 layer: RAII handles and checked calls over the HDF5 C API (1.10 and later).
#include "vsense/io/hdf5.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <numeric>
#include <system_error>
#include <utility>

#include "chunk_writer.hpp"
#include "row_appender.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/version.hpp"

namespace vsense::io::hdf5 {

namespace {

// Datasets larger than this are chunked and compressed; chunks aim at the same size, which
// keeps partial reads (one mode of /modes/shapes) cheap and the chunk cache effective.
constexpr std::size_t compress_threshold_bytes = std::size_t{1} << 20;
constexpr std::size_t chunk_target_bytes = std::size_t{1} << 20;
// Shuffled float64 mode shapes and stresses deflate to about 0.70 of their size at level 1 and
// 0.697 at level 4, at 1.5x the time (libdeflate; zlib's level 4 is 2.6x slower still).
constexpr unsigned deflate_level = 1;

// HDF5 prints its whole error stack to stderr by default; vsense reports errors itself, as
// one line. With a thread-safe HDF5 the setting is per thread, hence thread_local.
void silence_error_stack() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

// The innermost message of the current HDF5 error stack ("truncated file: eof = ..."), then
// clears the stack. Empty when there is none.
std::string take_error_message() { return detail::hdf5_error_message(); }

std::string dims_string(const std::vector<hsize_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

std::size_t element_count(const std::vector<hsize_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), std::size_t{1},
                         [](std::size_t a, hsize_t b) { return a * static_cast<std::size_t>(b); });
}

// Chunk shape of about chunk_target_bytes: leading dimensions are cut first, trailing ones
// (the 3 or 6 components, a node's row) stay whole while they fit.
std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& dims, std::size_t element_bytes) {
  std::vector<hsize_t> chunk = dims;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    std::size_t rest_bytes = element_bytes;
    for (std::size_t j = i + 1; j < dims.size(); ++j) rest_bytes *= dims[j];
    if (rest_bytes <= chunk_target_bytes) {
      chunk[i] = std::clamp<hsize_t>(chunk_target_bytes / rest_bytes, 1, dims[i]);
      break;
    }
    chunk[i] = 1;
  }
  return chunk;
}

Handle variable_string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    throw IoError("HDF5: cannot create a variable-length string type: " + take_error_message());
  }
  return type;
}

std::string iso8601_utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace

// ---- Handle -------------------------------------------------------------------------------

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, -1);
    closer_ = std::exchange(other.closer_, nullptr);
  }
  return *this;
}

void Handle::reset() noexcept {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);
  id_ = -1;
  closer_ = nullptr;
}

// ---- File ---------------------------------------------------------------------------------

void File::fail(const std::string& what) const {
  const std::string detail = take_error_message();
  std::string message = fmt::format("{}: {}", path_, what);
  if (!detail.empty()) message += fmt::format(" (HDF5: {})", detail);
  if (mode_ == Mode::read) throw InputError(message);
  throw IoError(message);
}

File::File(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  silence_error_stack();
  if (mode == Mode::read) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path + ": no such file");
    if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory");
    const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
    if (is_hdf5 == 0) {
      H5Eclear2(H5E_DEFAULT);
      throw InputError(path + ": not an HDF5 file");
    }
    if (is_hdf5 < 0) fail("cannot be read as HDF5");
    file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_) fail("cannot open as HDF5 (truncated or damaged file?)");
  } else if (mode == Mode::update) {
    file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    if (!file_) fail("cannot open for writing (missing, truncated or damaged file?)");
  } else {
    file_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file_) fail("cannot create the file (does the directory exist and is it writable?)");
  }
}

std::int64_t File::create_contiguous(const std::string& dataset, const std::vector<hsize_t>& dims,
                                     std::size_t element_bytes) {
  if (element_bytes != 4 && element_bytes != 8) fail("contiguous datasets are float32 or float64");
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!space || !dcpl || !lcpl || H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS) < 0 ||
      H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY) < 0 ||
      H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) < 0 ||
      H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) {
    fail(fmt::format("cannot set up dataset {}", dataset));
  }
  const hid_t type = element_bytes == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
  Handle id(H5Dcreate2(file_.get(), dataset.c_str(), type, space.get(), lcpl.get(), dcpl.get(),
                       H5P_DEFAULT),
            H5Dclose);
  if (!id) fail(fmt::format("cannot create dataset {} of shape {}", dataset, dims_string(dims)));
  const haddr_t offset = H5Dget_offset(id.get());
  if (offset == HADDR_UNDEF) {
    // An empty dataset has no storage; nothing will be written to it.
    H5Eclear2(H5E_DEFAULT);
    return -1;
  }
  return static_cast<std::int64_t>(offset);
}

void File::close() {
  if (!file_) return;
  if (mode_ != Mode::read && H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) {
    const std::string detail = take_error_message();
    file_.reset();
    throw IoError(fmt::format("{}: cannot flush the file to disk (HDF5: {})", path_, detail));
  }
  if (H5Fclose(file_.release()) < 0) fail("cannot close the file");
}

void File::create_group(const std::string& group) {
  if (exists(group)) return;
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!lcpl || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) fail("property list");
  Handle id(H5Gcreate2(file_.get(), group.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Gclose);
  if (!id) fail(fmt::format("cannot create group {}", group));
}

std::vector<std::string> File::members(const std::string& group) const {
  if (!exists(group)) {
    throw InputError(fmt::format("{}: group {} is missing", path_, group));
  }
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  if (H5Literate_by_name(file_.get(), group.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect,
                          &names, H5P_DEFAULT) < 0) {
    throw InputError(fmt::format("{}: cannot list group {}", path_, group));
  }
  return names;
}

bool File::exists(const std::string& object) const {
  if (object == "/" || object.empty()) return true;
  // Check each path component: H5Lexists fails (rather than returning false) when an
  // intermediate group is missing.
  std::size_t position = 0;
  while (true) {
    position = object.find('/', position + 1);
    const std::string prefix = object.substr(0, position);
    const htri_t found = H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT);
    if (found < 0) {
      take_error_message();
      return false;
    }
    if (found == 0) return false;
    if (position == std::string::npos) return true;
  }
}

namespace {

struct WriteTypes {
  hid_t memory;
  hid_t file;
  std::size_t bytes;
};

}  // namespace

// One implementation for the three numeric element types.
static void write_numeric(File& file, const std::string& dataset, const std::vector<hsize_t>& dims,
                          const void* data, WriteTypes types,
                          const std::function<void(const std::string&)>& fail) {
  const std::size_t count = element_count(dims);
  if (count > 0 && data == nullptr) fail(fmt::format("dataset {}: no data given", dataset));
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  if (!space) fail(fmt::format("dataset {}: cannot create dataspace {}", dataset,
                               dims_string(dims)));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!lcpl || !dcpl || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) {
    fail("cannot create property lists");
  }
  std::vector<hsize_t> chunks;  // set when the data are compressed, chunk by chunk
  if (count * types.bytes > compress_threshold_bytes && !dims.empty()) {
    const auto chunk = chunk_shape(dims, types.bytes);
    if (H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0) {
      fail(fmt::format("dataset {}: cannot set chunk shape {}", dataset, dims_string(chunk)));
    }
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
      if (H5Pset_shuffle(dcpl.get()) < 0 || H5Pset_deflate(dcpl.get(), deflate_level) < 0) {
        fail(fmt::format("dataset {}: cannot enable compression", dataset));
      }
      chunks = chunk;
    }
  }
  if (file.exists(dataset) && H5Ldelete(file.id(), dataset.c_str(), H5P_DEFAULT) < 0) {
    fail(fmt::format("dataset {}: cannot replace the existing dataset", dataset));
  }
  Handle id(H5Dcreate2(file.id(), dataset.c_str(), types.file, space.get(), lcpl.get(),
                       dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  if (!id) fail(fmt::format("cannot create dataset {} {}", dataset, dims_string(dims)));
  if (count > 0 && !chunks.empty() && H5Tequal(types.memory, types.file) > 0) {
    // Compressed: the chunks are encoded on all cores (chunk_writer.hpp).
    const std::string failure = io::detail::write_compressed_chunks(
        id.get(), dims, chunks, data, types.bytes, static_cast<int>(deflate_level));
    if (!failure.empty()) {
      fail(fmt::format("cannot write dataset {} {}: {}", dataset, dims_string(dims), failure));
    }
  } else if (count > 0 &&
             H5Dwrite(id.get(), types.memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    fail(fmt::format("cannot write dataset {} {}", dataset, dims_string(dims)));
  }
}

void File::write(const std::string& dataset, const std::vector<hsize_t>& dims,
                 const double* data) {
  write_numeric(*this, dataset, dims, data, {H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, sizeof(double)},
                [this](const std::string& what) { fail(what); });
}

void File::write(const std::string& dataset, const std::vector<hsize_t>& dims,
                 const float* data) {
  write_numeric(*this, dataset, dims, data, {H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, sizeof(float)},
                [this](const std::string& what) { fail(what); });
}

void File::write(const std::string& dataset, const std::vector<hsize_t>& dims,
                 const std::int64_t* data) {
  write_numeric(*this, dataset, dims, data,
                {H5T_NATIVE_INT64, H5T_STD_I64LE, sizeof(std::int64_t)},
                [this](const std::string& what) { fail(what); });
}

void File::write_strings(const std::string& dataset, const std::vector<std::string>& values) {
  const Handle type = variable_string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!space || !lcpl || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) {
    fail(fmt::format("dataset {}: cannot create dataspace", dataset));
  }
  if (exists(dataset) && H5Ldelete(file_.get(), dataset.c_str(), H5P_DEFAULT) < 0) {
    fail(fmt::format("dataset {}: cannot replace the existing dataset", dataset));
  }
  Handle id(H5Dcreate2(file_.get(), dataset.c_str(), type.get(), space.get(), lcpl.get(),
                       H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
  if (!id) fail(fmt::format("cannot create dataset {} [{}]", dataset, n));
  std::vector<const char*> pointers(values.size());
  std::transform(values.begin(), values.end(), pointers.begin(),
                 [](const std::string& s) { return s.c_str(); });
  if (n > 0 &&
      H5Dwrite(id.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0) {
    fail(fmt::format("cannot write dataset {} [{}]", dataset, n));
  }
}

// ---- reading ------------------------------------------------------------------------------

namespace {

struct OpenDataset {
  Handle dataset;
  Handle space;
  std::vector<hsize_t> dims;
};

}  // namespace

static OpenDataset open_dataset(const File& file, const std::string& dataset,
                                const std::function<void(const std::string&)>& fail) {
  if (!file.exists(dataset)) {
    // A missing dataset is always the input's fault, whatever the mode.
    throw InputError(fmt::format("{}: dataset {} is missing", file.path(), dataset));
  }
  OpenDataset open;
  open.dataset = Handle(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!open.dataset) fail(fmt::format("{} is not a dataset or cannot be opened", dataset));
  open.space = Handle(H5Dget_space(open.dataset.get()), H5Sclose);
  if (!open.space) fail(fmt::format("dataset {}: cannot read its shape", dataset));
  const int rank = H5Sget_simple_extent_ndims(open.space.get());
  if (rank < 0) fail(fmt::format("dataset {}: cannot read its shape", dataset));
  open.dims.resize(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(open.space.get(), open.dims.data(), nullptr) < 0) {
    fail(fmt::format("dataset {}: cannot read its shape", dataset));
  }
  return open;
}

static H5T_class_t type_class(hid_t object, bool is_attribute) {
  Handle type(is_attribute ? H5Aget_type(object) : H5Dget_type(object), H5Tclose);
  return type ? H5Tget_class(type.get()) : H5T_NO_CLASS;
}

static const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    default: return "non-numeric";
  }
}

std::vector<hsize_t> File::shape(const std::string& dataset) const {
  return open_dataset(*this, dataset, [this](const std::string& w) { fail(w); }).dims;
}

std::vector<double> File::read_double(const std::string& dataset) const {
  const OpenDataset open = open_dataset(*this, dataset, [this](const std::string& w) { fail(w); });
  const H5T_class_t c = type_class(open.dataset.get(), false);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    throw InputError(fmt::format("{}: dataset {} holds {} values but numbers were expected",
                                 path_, dataset, class_name(c)));
  }
  std::vector<double> values(element_count(open.dims));
  if (!values.empty() && H5Dread(open.dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                                 H5P_DEFAULT, values.data()) < 0) {
    fail(fmt::format("cannot read dataset {} {}", dataset, dims_string(open.dims)));
  }
  return values;
}

std::vector<std::int64_t> File::read_int64(const std::string& dataset) const {
  const OpenDataset open = open_dataset(*this, dataset, [this](const std::string& w) { fail(w); });
  const H5T_class_t c = type_class(open.dataset.get(), false);
  if (c != H5T_INTEGER) {
    // Converting floats to integers would silently round: refuse.
    throw InputError(fmt::format("{}: dataset {} holds {} values but integers were expected",
                                 path_, dataset, class_name(c)));
  }
  std::vector<std::int64_t> values(element_count(open.dims));
  if (!values.empty() && H5Dread(open.dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                                 H5P_DEFAULT, values.data()) < 0) {
    fail(fmt::format("cannot read dataset {} {}", dataset, dims_string(open.dims)));
  }
  return values;
}

// Reads `count` strings from a dataset or attribute, variable-length or fixed-length (as
// other tools such as MATLAB write them).
static std::vector<std::string> read_string_values(
    hid_t object, bool is_attribute, std::size_t count, const std::string& what,
    const std::function<void(const std::string&)>& fail) {
  Handle stored(is_attribute ? H5Aget_type(object) : H5Dget_type(object), H5Tclose);
  if (!stored || H5Tget_class(stored.get()) != H5T_STRING) {
    throw InputError(fmt::format("{} does not hold strings", what));
  }
  std::vector<std::string> values(count);
  if (count == 0) return values;
  const htri_t variable = H5Tis_variable_str(stored.get());
  if (variable < 0) fail(fmt::format("{}: cannot inspect the string type", what));
  if (variable > 0) {
    const Handle type = variable_string_type();
    std::vector<char*> pointers(count, nullptr);
    const herr_t status =
        is_attribute ? H5Aread(object, type.get(), pointers.data())
                     : H5Dread(object, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data());
    if (status < 0) fail(fmt::format("cannot read {}", what));
    for (std::size_t i = 0; i < count; ++i) {
      if (pointers[i] != nullptr) values[i] = pointers[i];
    }
    // Free the library-allocated strings.
    const hsize_t n = count;
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
#else
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
#endif
    return values;
  }
  const std::size_t width = H5Tget_size(stored.get());
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type || width == 0 || H5Tset_size(type.get(), width) < 0 ||
      H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0) {
    fail(fmt::format("{}: cannot build the string type", what));
  }
  std::vector<char> buffer(width * count, '\0');
  const herr_t status =
      is_attribute ? H5Aread(object, type.get(), buffer.data())
                   : H5Dread(object, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data());
  if (status < 0) fail(fmt::format("cannot read {}", what));
  for (std::size_t i = 0; i < count; ++i) {
    const char* begin = buffer.data() + i * width;
    values[i].assign(begin, strnlen(begin, width));
    // Space padding (Fortran style) carries no meaning either.
    while (!values[i].empty() && values[i].back() == ' ') values[i].pop_back();
  }
  return values;
}

std::vector<std::string> File::read_strings(const std::string& dataset) const {
  const OpenDataset open = open_dataset(*this, dataset, [this](const std::string& w) { fail(w); });
  try {
    return read_string_values(open.dataset.get(), false, element_count(open.dims),
                              "dataset " + dataset, [this](const std::string& w) { fail(w); });
  } catch (const InputError& e) {
    const std::string message = e.what();
    if (message.rfind(path_, 0) == 0) throw;
    throw InputError(path_ + ": " + message);
  }
}

// ---- attributes ---------------------------------------------------------------------------

namespace {

Handle open_object(const File& file, const std::string& object,
                   const std::function<void(const std::string&)>& fail) {
  if (!file.exists(object)) {
    throw InputError(fmt::format("{}: object {} is missing", file.path(), object));
  }
  Handle id(H5Oopen(file.id(), object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!id) fail(fmt::format("cannot open object {}", object));
  return id;
}

}  // namespace

static void write_attribute(File& file, const std::string& object, const std::string& name,
                            hid_t file_type, hid_t memory_type, const void* value,
                            const std::function<void(const std::string&)>& fail) {
  const Handle target = open_object(file, object, fail);
  const htri_t present = H5Aexists(target.get(), name.c_str());
  if (present < 0) fail(fmt::format("attribute {} of {}: cannot check", name, object));
  if (present > 0 && H5Adelete(target.get(), name.c_str()) < 0) {
    fail(fmt::format("attribute {} of {}: cannot replace", name, object));
  }
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (!space) fail("cannot create a scalar dataspace");
  Handle attribute(
      H5Acreate2(target.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose);
  if (!attribute) fail(fmt::format("cannot create attribute {} of {}", name, object));
  if (H5Awrite(attribute.get(), memory_type, value) < 0) {
    fail(fmt::format("cannot write attribute {} of {}", name, object));
  }
}

void File::set_attribute(const std::string& object, const std::string& name,
                         const std::string& value) {
  const Handle type = variable_string_type();
  const char* pointer = value.c_str();
  write_attribute(*this, object, name, type.get(), type.get(), &pointer,
                  [this](const std::string& w) { fail(w); });
}

void File::set_attribute(const std::string& object, const std::string& name, double value) {
  write_attribute(*this, object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value,
                  [this](const std::string& w) { fail(w); });
}

void File::set_attribute(const std::string& object, const std::string& name,
                         std::int64_t value) {
  write_attribute(*this, object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value,
                  [this](const std::string& w) { fail(w); });
}

bool File::has_attribute(const std::string& object, const std::string& name) const {
  if (!exists(object)) return false;
  const htri_t present =
      H5Aexists_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT);
  if (present < 0) fail(fmt::format("attribute {} of {}: cannot check", name, object));
  return present > 0;
}

namespace {

// Opens an attribute that must hold exactly one value.
Handle open_scalar_attribute(const File& file, const std::string& object, const std::string& name,
                             const std::function<void(const std::string&)>& fail) {
  if (!file.has_attribute(object, name)) {
    throw InputError(
        fmt::format("{}: attribute {} of {} is missing", file.path(), name, object));
  }
  Handle attribute(H5Aopen_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT,
                                   H5P_DEFAULT),
                   H5Aclose);
  if (!attribute) fail(fmt::format("cannot open attribute {} of {}", name, object));
  Handle space(H5Aget_space(attribute.get()), H5Sclose);
  const hssize_t n = space ? H5Sget_simple_extent_npoints(space.get()) : -1;
  if (n != 1) {
    throw InputError(fmt::format("{}: attribute {} of {} holds {} values but one was expected",
                                 file.path(), name, object, n));
  }
  return attribute;
}

}  // namespace

std::string File::string_attribute(const std::string& object, const std::string& name) const {
  const auto failer = [this](const std::string& w) { fail(w); };
  const Handle attribute = open_scalar_attribute(*this, object, name, failer);
  if (type_class(attribute.get(), true) != H5T_STRING) {
    throw InputError(fmt::format("{}: attribute {} of {} is not a string", path_, name, object));
  }
  return read_string_values(attribute.get(), true, 1,
                            fmt::format("attribute {} of {}", name, object), failer)
      .front();
}

double File::double_attribute(const std::string& object, const std::string& name) const {
  const auto failer = [this](const std::string& w) { fail(w); };
  const Handle attribute = open_scalar_attribute(*this, object, name, failer);
  const H5T_class_t c = type_class(attribute.get(), true);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    throw InputError(fmt::format("{}: attribute {} of {} holds a {} value but a number was "
                                 "expected",
                                 path_, name, object, class_name(c)));
  }
  double value = 0.0;
  if (H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    fail(fmt::format("cannot read attribute {} of {}", name, object));
  }
  return value;
}

std::int64_t File::int_attribute(const std::string& object, const std::string& name) const {
  const auto failer = [this](const std::string& w) { fail(w); };
  const Handle attribute = open_scalar_attribute(*this, object, name, failer);
  const H5T_class_t c = type_class(attribute.get(), true);
  if (c != H5T_INTEGER) {
    throw InputError(fmt::format("{}: attribute {} of {} holds a {} value but an integer was "
                                 "expected",
                                 path_, name, object, class_name(c)));
  }
  std::int64_t value = 0;
  if (H5Aread(attribute.get(), H5T_NATIVE_INT64, &value) < 0) {
    fail(fmt::format("cannot read attribute {} of {}", name, object));
  }
  return value;
}

void write_standard_attributes(File& file, const std::string& format, std::int64_t version,
                               const std::string& units, const std::string& source_sha256) {
  file.set_attribute("/", "format", format);
  file.set_attribute("/", "format_version", version);
  file.set_attribute("/", "units", units);
  file.set_attribute("/", "created_by", std::string("vsense ") + VSENSE_VERSION);
  file.set_attribute("/", "created_at", iso8601_utc_now());
  file.set_attribute("/", "source_sha256", source_sha256);
}

// ---- AtomicOutput -------------------------------------------------------------------------

AtomicOutput::AtomicOutput(std::string path) : path_(std::move(path)) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path target(path_);
  std::filesystem::path directory = target.parent_path();
  if (directory.empty()) directory = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw IoError(fmt::format("{}: cannot write, directory {} does not exist", path_,
                              directory.string()));
  }
  if (target.filename().empty()) throw IoError(fmt::format("{}: not a file name", path_));
  // Hidden and in the same directory, so the final rename stays within one file system.
  temporary_ = (directory / fmt::format(".{}.tmp-{}-{}", target.filename().string(), ::getpid(),
                                        counter++))
                   .string();
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }
}

void AtomicOutput::commit() {
  if (committed_) return;
  // Make the bytes durable before the name appears, so a crash cannot leave a complete-looking
  // but empty file.
  const int fd = ::open(temporary_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw IoError(fmt::format("{}: the temporary file {} has gone: {}", path_, temporary_,
                              std::strerror(errno)));
  }
  const int synced = ::fsync(fd);
  const int sync_errno = errno;
  ::close(fd);
  if (synced != 0 && sync_errno != EINVAL && sync_errno != EROFS) {
    throw IoError(fmt::format("{}: cannot flush to disk: {}", path_, std::strerror(sync_errno)));
  }
  std::error_code ec;
  std::filesystem::rename(temporary_, path_, ec);
  if (ec) throw IoError(fmt::format("{}: cannot rename {} into place: {}", path_, temporary_,
                                    ec.message()));
  committed_ = true;
}

}  // namespace vsense::io::hdf5
