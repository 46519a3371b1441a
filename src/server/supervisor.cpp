#include "disque/server/supervisor.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace disque::server {

bool NotifySupervisor(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  // A path, or '@' for Linux's abstract namespace (the '@' stands for a leading NUL).
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
    spdlog::debug("NOTIFY_SOCKET '{}' is not a socket path: not notifying", path);
    return false;
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    spdlog::debug("Can't notify the supervisor: socket: {}", std::strerror(errno));
    return false;
  }
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&addr), addr_len);
  const int err = errno;
  ::close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    spdlog::debug("Can't notify the supervisor at {}: {}", path, std::strerror(err));
    return false;
  }
  return true;
}

}  // namespace disque::server
