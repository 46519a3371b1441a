#pragma once

#include <string_view>

namespace disque::server {

// systemd's readiness protocol (sd_notify(3)), without libsystemd: when the service
// manager started us with Type=notify it puts a datagram socket's path in $NOTIFY_SOCKET,
// and we send it "READY=1" once clients are accepted and "STOPPING=1" when shutdown
// begins. Without $NOTIFY_SOCKET this does nothing. Best effort: a failure is logged at
// verbose level and otherwise ignored, as a supervisor that went away changes nothing
// for clients. Returns whether the message was sent.
bool NotifySupervisor(std::string_view state);

}  // namespace disque::server
