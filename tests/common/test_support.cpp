#include "common/test_support.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace vsense::test {

std::string data_path(const std::string& relative) {
  return (std::filesystem::path(VSENSE_TEST_DATA_DIR) / relative).string();
}

ScratchDir::ScratchDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          fmt::format("vsense-{}-{}-{}", tag, ::getpid(), counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  if (!std::getenv("VSENSE_KEEP_TEST_FILES")) std::filesystem::remove_all(path_, ignored);
}

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

CommandResult run_command(const std::string& command) {
  ScratchDir dir("cmd");
  const auto out = dir.path() / "stdout";
  const auto err = dir.path() / "stderr";
  const std::string full = fmt::format("{} >'{}' 2>'{}'", command, out.string(), err.string());
  const int status = std::system(full.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

CommandResult run_vsense(const std::string& arguments) {
  return run_command(fmt::format("'{}' {}", VSENSE_BINARY, arguments));
}

}  // namespace vsense::test

namespace vsense::test {

std::string mpi_launcher(int ranks) {
  static const bool have_mpirun = run_command("command -v mpirun >/dev/null 2>&1").exit_code == 0;
  if (!have_mpirun) return {};
  // --oversubscribe: CI has 2 cores but the tests run 3 ranks; root: containers run as root.
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
         "mpirun --oversubscribe -np " +
         std::to_string(ranks);
}

}  // namespace vsense::test
