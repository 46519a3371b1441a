#include "disque/server/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace disque::server {
namespace {

// Disque's level marks. Its four levels map onto spdlog's trace, debug, info and warn.
class LevelMark final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    char mark = '#';
    switch (msg.level) {
      case spdlog::level::trace: mark = '.'; break;
      case spdlog::level::debug: mark = '-'; break;
      case spdlog::level::info: mark = '*'; break;
      default: mark = '#'; break;
    }
    dest.push_back(mark);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LevelMark>(); }
};

}  // namespace

void SetLogLevel(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kDebug: spdlog::set_level(spdlog::level::trace); break;
    case config::LogLevel::kVerbose: spdlog::set_level(spdlog::level::debug); break;
    case config::LogLevel::kNotice: spdlog::set_level(spdlog::level::info); break;
    case config::LogLevel::kWarning: spdlog::set_level(spdlog::level::warn); break;
  }
}

Status SetupLogging(const config::Config& cfg) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (cfg.logfile.empty()) {
      logger = std::make_shared<spdlog::logger>("disque", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "disque", std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.logfile, /*truncate=*/false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::Error(std::string("Can't open the log file: ") + e.what());
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelMark>('*').set_pattern("%P:P %d %b %H:%M:%S.%e %* %v");
  logger->set_formatter(std::move(formatter));
  logger->flush_on(spdlog::level::trace);  // a log line is on disk when the event happened
  spdlog::set_default_logger(logger);
  SetLogLevel(cfg.loglevel);
  return Status::Ok();
}

}  // namespace disque::server
