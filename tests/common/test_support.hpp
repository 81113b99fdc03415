#pragma once
/// @file test_support.hpp
/// @brief Shared test helpers: data paths, scratch directories, running the vsense binary.
#include <filesystem>
#include <string>

namespace vsense::test {

/// tests/data/<relative>
std::string data_path(const std::string& relative);

/// A fresh directory under the system temp dir, removed when the object dies.
class ScratchDir {
public:
  explicit ScratchDir(const std::string& tag);
  ~ScratchDir();
  const std::filesystem::path& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

/// Result of running a command through the shell.
struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// Runs `command` with /bin/sh, capturing stdout and stderr.
CommandResult run_command(const std::string& command);

/// Runs the built `vsense` binary with the given arguments (a shell-quoted string).
CommandResult run_vsense(const std::string& arguments);

}  // namespace vsense::test

namespace vsense::test {

/// The command prefix that starts `ranks` MPI processes on this machine ("mpirun -np N" with
/// the options a container or CI user needs: running as root, more ranks than cores), or an
/// empty string when no mpirun is installed.
std::string mpi_launcher(int ranks);

}  // namespace vsense::test
