#pragma once

#include <string>

#include "disque/common/status.h"
#include "disque/config/config.h"

namespace disque::server {

// Sets up the process logger (spdlog) the way Disque logs: to `logfile` (stdout when
// empty), lines "<pid>:P <dd Mon HH:MM:SS.mmm> <mark> <message>" with Disque's marks
// ". - * #" for debug, verbose, notice, warning.
Status SetupLogging(const config::Config& cfg);

// Applies a `loglevel` (startup and CONFIG SET).
void SetLogLevel(config::LogLevel level);

}  // namespace disque::server
