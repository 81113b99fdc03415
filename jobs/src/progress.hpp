#pragma once
// Internal to vsense_jobs: a live status line for long stages on a terminal.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace spdlog::sinks {
class sink;
}

namespace vsense::jobs {

/// @brief While alive, redraws "  STAGE: 12 s, 850 MiB" on the last line of stderr every
/// second, if stderr is a terminal, this is rank 0 and the log level shows info. Log messages
/// clear the line first (the default logger's sinks are wrapped for the ticker's lifetime). On
/// anything else (a batch log file, `-q`), it does nothing.
class ProgressTicker {
public:
  ProgressTicker(std::string stage, bool enabled);
  ~ProgressTicker();
  ProgressTicker(const ProgressTicker&) = delete;
  ProgressTicker& operator=(const ProgressTicker&) = delete;

private:
  void loop();
  std::string stage_;
  bool active_ = false;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::shared_ptr<spdlog::sinks::sink> wrapper_;
  std::shared_ptr<spdlog::sinks::sink> wrapped_;
};

}  // namespace vsense::jobs
