// Stage keys in outputs: HDF5 root attributes or trailing comments; SHA-256 of text.
#include "stamp.hpp"

#include <fmt/format.h>
#include <hdf5.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "vsense/io/hdf5.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::jobs::detail {

namespace fs = std::filesystem;

namespace {

std::string extension(const std::string& path) { return fs::path(path).extension().string(); }

/// The comment syntax of a text format ("" when it has none we use).
std::pair<std::string, std::string> comment_syntax(const std::string& path) {
  const std::string ext = extension(path);
  if (ext == ".inp") return {"** ", ""};
  if (ext == ".xdmf" || ext == ".html" || ext == ".md") return {"<!-- ", " -->"};
  return {"", ""};
}

void set_string_attribute(hid_t file, const char* name, const std::string& value,
                          const std::string& path) {
  const io::hdf5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    throw IoError(fmt::format("{}: cannot build a string type for {}", path, name));
  }
  const io::hdf5::Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(file, name) > 0) H5Adelete(file, name);
  const io::hdf5::Handle attribute(
      H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* pointer = value.c_str();
  if (!attribute || H5Awrite(attribute.get(), type.get(), &pointer) < 0) {
    throw IoError(fmt::format("{}: cannot write the attribute {}", path, name));
  }
}

}  // namespace

std::string sha256_text(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw IoError("SHA-256: OpenSSL digest failed");
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

bool stamped(const std::string& path) {
  return extension(path) == ".h5" || !comment_syntax(path).first.empty();
}

void stamp(const std::string& path, const std::string& stage, const std::string& key,
           const std::string& record) {
  if (extension(path) == ".h5") {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) throw IoError(fmt::format("{}: cannot open to record the stage key", path));
    try {
      set_string_attribute(file, stage_key_attribute, key, path);
      set_string_attribute(file, "job_stage", stage, path);
      set_string_attribute(file, "job_stage_record", record, path);
    } catch (...) {
      H5Fclose(file);
      throw;
    }
    if (H5Fclose(file) < 0) throw IoError(fmt::format("{}: closing after the stage key failed", path));
    return;
  }
  const auto [open, close] = comment_syntax(path);
  if (open.empty()) return;
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << open << "vsense job stage " << stage << ", " << stage_key_attribute << " = " << key
      << ", job_stage_record = " << record << close << "\n";
  out.close();
  if (!out) throw IoError(fmt::format("{}: cannot append the stage key", path));
}

namespace {

/// An HDF5 string attribute of the root, "" when missing or unreadable (errors not printed).
std::string root_attribute(const std::string& path, const char* name) {
  H5E_auto2_t handler = nullptr;
  void* data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &handler, &data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::string value;
  try {
    const io::hdf5::File file(path, io::hdf5::File::Mode::read);
    if (file.has_attribute("/", name)) value = file.string_attribute("/", name);
  } catch (const std::exception&) {
    value.clear();
  }
  H5Eset_auto2(H5E_DEFAULT, handler, data);
  return value;
}

/// The last 1 KiB of a file.
std::string tail_of(const std::string& path) {
  std::error_code ec;
  const auto size = static_cast<std::streamoff>(fs::file_size(path, ec));
  if (ec) return "";
  std::ifstream in(path, std::ios::binary);
  const std::streamoff tail = std::min<std::streamoff>(size, 1024);
  in.seekg(size - tail);
  std::string text(static_cast<std::size_t>(tail), '\0');
  in.read(text.data(), tail);
  return text;
}

}  // namespace

std::string read_record(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  if (extension(path) == ".h5") return root_attribute(path, "job_stage_record");
  const auto [open, close] = comment_syntax(path);
  if (open.empty()) return "";
  const std::string text = tail_of(path);
  const std::string marker = "job_stage_record = ";
  const auto at = text.rfind(marker);
  if (at == std::string::npos) return "";
  auto end = text.find('\n', at);
  if (end == std::string::npos) end = text.size();
  std::string record = text.substr(at + marker.size(), end - at - marker.size());
  if (!close.empty() && record.size() >= close.size() &&
      record.compare(record.size() - close.size(), close.size(), close) == 0) {
    record.resize(record.size() - close.size());
  }
  return record;
}

std::string read_stamp(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  // A damaged or foreign file simply has no key: the stage runs again and replaces it.
  if (extension(path) == ".h5") return root_attribute(path, stage_key_attribute);
  if (comment_syntax(path).first.empty()) return "";
  const std::string text = tail_of(path);
  const std::string marker = std::string(stage_key_attribute) + " = ";
  const auto at = text.rfind(marker);
  if (at == std::string::npos || at + marker.size() + 64 > text.size()) return "";
  return text.substr(at + marker.size(), 64);
}

}  // namespace vsense::jobs::detail
