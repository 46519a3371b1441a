#pragma once

#include <string>
#include <string_view>

#include "disque/common/status.h"

namespace disque::cluster {

// nodes.conf on disk (PROTOCOL.md II 11). One process owns a file: Lock() takes an
// exclusive flock for the life of this object. The lock is on a companion file,
// `<path>.lock`, not on nodes.conf itself, because Write() replaces nodes.conf by
// rename (a crash mid-write leaves the old or the new file, never a torn one; Disque
// overwrites in place) and a lock on the replaced inode would no longer exclude anyone.
class NodesFile {
 public:
  explicit NodesFile(std::string path) : path_(std::move(path)) {}
  ~NodesFile();
  NodesFile(const NodesFile&) = delete;
  NodesFile& operator=(const NodesFile&) = delete;

  // Fails with Disque's "Sorry, the cluster configuration file ... is already used by
  // a different Disque node ..." when another process holds the lock.
  Status Lock();
  // The file's content; empty when it does not exist.
  Result<std::string> Read() const;
  // Replaces the file atomically (temporary file, fsync, rename, fsync of the directory).
  Status Write(std::string_view content) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int lock_fd_ = -1;
};

}  // namespace disque::cluster
