#include "disque/cluster/nodes_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace disque::cluster {

namespace {

Status Errno(std::string_view what, const std::string& path) {
  return Status::Error(std::string(what) + " " + path + ": " + std::strerror(errno));
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

NodesFile::~NodesFile() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status NodesFile::Lock() {
  const std::string lock_path = path_ + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Errno("Can't open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Error("Sorry, the cluster configuration file " + path_ +
                           " is already used by a different Disque node. Please make sure that different nodes use "
                           "different cluster configuration files.");
    }
    return Errno("Impossible to lock", lock_path);
  }
  return Status::Ok();
}

Result<std::string> NodesFile::Read() const {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return Errno("Can't open", path_);
  }
  std::string content;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = Errno("Can't read", path_);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return content;
}

Status NodesFile::Write(std::string_view content) const {
  const std::string tmp = path_ + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(std::strerror(errno));
  if (!WriteAll(fd, content) || ::fsync(fd) != 0) {
    Status st = Status::Error(std::strerror(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    Status st = Status::Error(std::strerror(errno));
    ::unlink(tmp.c_str());
    return st;
  }
  // The rename itself is durable once the directory is.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace disque::cluster
