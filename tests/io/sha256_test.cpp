// SHA-256 of files against the FIPS 180-2 test vectors.
#include "vsense/io/sha256.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_support.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::io {
namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Sha256, AbcMatchesKnownVector) {
  test::ScratchDir dir("sha");
  write_file(dir.file("abc"), "abc");
  EXPECT_EQ(sha256_file(dir.file("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, EmptyFileMatchesKnownVector) {
  test::ScratchDir dir("sha");
  write_file(dir.file("empty"), "");
  EXPECT_EQ(sha256_file(dir.file("empty")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, MillionAsSpanningBufferBoundariesMatchKnownVector) {
  test::ScratchDir dir("sha");
  write_file(dir.file("a"), std::string(1000000, 'a'));
  EXPECT_EQ(sha256_file(dir.file("a")),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Larger than the 1 MiB read buffer: the stream must continue across reads.
  write_file(dir.file("b"), std::string(3 * 1048576 + 17, 'b'));
  const std::string once = sha256_file(dir.file("b"));
  EXPECT_EQ(once.size(), 64u);
  EXPECT_EQ(sha256_file(dir.file("b")), once);
}

TEST(Sha256, SeveralFilesHashAsTheirConcatenation) {
  test::ScratchDir dir("sha");
  write_file(dir.file("a"), "a");
  write_file(dir.file("bc"), "bc");
  EXPECT_EQ(sha256_files({dir.file("a"), dir.file("bc")}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, MissingFileIsIoErrorNamingIt) {
  test::ScratchDir dir("sha");
  try {
    sha256_file(dir.file("missing.inp"));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.inp"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vsense::io
