// The live status line of long stages.
#include "progress.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "vsense/jobs/stage_support.hpp"

namespace vsense::jobs {

namespace {

/// The one mutex of stderr while a ticker runs.
std::mutex& terminal_mutex() {
  static std::mutex m;
  return m;
}

/// Forwards to the wrapped sink after clearing the status line.
class ClearLineSink final : public spdlog::sinks::sink {
public:
  explicit ClearLineSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    std::lock_guard lock(terminal_mutex());
    std::fputs("\r\033[K", stderr);
    inner_->log(msg);
    inner_->flush();
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

ProgressTicker::ProgressTicker(std::string stage, bool enabled) : stage_(std::move(stage)) {
  auto logger = spdlog::default_logger();
  active_ = enabled && ::isatty(STDERR_FILENO) == 1 && logger->should_log(spdlog::level::info) &&
            logger->sinks().size() == 1;
  if (!active_) return;
  wrapped_ = logger->sinks().front();
  wrapper_ = std::make_shared<ClearLineSink>(wrapped_);
  wrapper_->set_level(wrapped_->level());
  logger->sinks().front() = wrapper_;
  thread_ = std::thread([this] { loop(); });
}

ProgressTicker::~ProgressTicker() {
  if (!active_) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  {
    std::lock_guard lock(terminal_mutex());
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  auto logger = spdlog::default_logger();
  if (!logger->sinks().empty() && logger->sinks().front() == wrapper_) {
    logger->sinks().front() = wrapped_;
  }
}

void ProgressTicker::loop() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    const double seconds = seconds_since(start);
    const std::string line = fmt::format(
        "  {}: {:.0f} s, peak memory {:.0f} MiB", stage_, seconds,
        static_cast<double>(peak_memory_bytes()) / (1024.0 * 1024.0));
    std::lock_guard terminal(terminal_mutex());
    std::fputs(("\r\033[K" + line).c_str(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace vsense::jobs
