// Content hashes of input files (OpenSSL EVP, streamed so that multi-GB models cost 1 MiB).
#include "vsense/io/sha256.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "vsense/kernels/errors.hpp"

namespace vsense::io {

namespace {

constexpr std::size_t read_buffer_bytes = std::size_t{1} << 20;

struct ContextDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};
struct FileCloser {
  void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};
using Context = std::unique_ptr<EVP_MD_CTX, ContextDeleter>;

Context new_context() {
  Context context(EVP_MD_CTX_new());
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    throw IoError("SHA-256: OpenSSL could not initialise a digest");
  }
  return context;
}

void hash_file_into(EVP_MD_CTX* context, const std::string& path, std::vector<unsigned char>& buffer) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw IoError(fmt::format("{}: cannot open for hashing: {}", path, std::strerror(errno)));
  while (true) {
    const std::size_t got = std::fread(buffer.data(), 1, buffer.size(), file.get());
    if (got > 0 && EVP_DigestUpdate(context, buffer.data(), got) != 1) {
      throw IoError(fmt::format("{}: SHA-256 update failed", path));
    }
    if (got < buffer.size()) {
      if (std::ferror(file.get())) {
        throw IoError(fmt::format("{}: read error while hashing: {}", path, std::strerror(errno)));
      }
      break;
    }
  }
}

std::string finish(EVP_MD_CTX* context) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context, digest, &length) != 1) {
    throw IoError("SHA-256: OpenSSL could not finalise the digest");
  }
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace

std::string sha256_file(const std::string& path) { return sha256_files({path}); }

// The files' bytes are hashed as one stream (the same as `cat A B | sha256sum`).
std::string sha256_files(const std::vector<std::string>& paths) {
  const Context context = new_context();
  std::vector<unsigned char> buffer(read_buffer_bytes);
  for (const auto& path : paths) hash_file_into(context.get(), path, buffer);
  return finish(context.get());
}

std::string sha256_text(const std::string& text) {
  Context context = new_context();
  if (!text.empty() && EVP_DigestUpdate(context.get(), text.data(), text.size()) != 1) {
    throw IoError("SHA-256 update failed");
  }
  return finish(context.get());
}

}  // namespace vsense::io
