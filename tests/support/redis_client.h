#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct redisContext;

namespace disque::test {

// A decoded reply: the RESP2 type and its value.
struct Reply {
  enum class Type { kStatus, kError, kInteger, kBulk, kNil, kArray, kNone };
  Type type = Type::kNone;
  std::string str;          // status, error or bulk text
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
  // "+OK", "-ERR ...", ":1", "$text", "$-1", "*2", for compact assertions and messages.
  std::string ToString() const;
};

// An explicit host for RedisClient (the default is 127.0.0.1).
struct Host {
  std::string ip;
};

// A blocking hiredis connection to 127.0.0.1:port (or another host, or a Unix socket).
class RedisClient {
 public:
  explicit RedisClient(int port, int timeout_ms = 10000);
  RedisClient(const Host& host, int port, int timeout_ms = 10000);
  explicit RedisClient(const std::string& unix_path, int timeout_ms = 10000);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  bool connected() const;
  const std::string& error() const { return error_; }

  // Sends one command (binary-safe arguments) and reads its reply. A connection error
  // gives a Reply of type kNone with `error()` set.
  Reply Command(const std::vector<std::string>& args);
  // Queues a command without reading (pipelining); read with GetReply().
  void Append(const std::vector<std::string>& args);
  Reply GetReply();

 private:
  redisContext* ctx_ = nullptr;
  std::string error_;
};

// A raw TCP connection for protocol-level tests: send bytes, read bytes.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // Reads until `n` bytes arrived, the peer closed, or the timeout; returns what came.
  std::string Read(size_t n, int timeout_ms = 5000);
  // Reads until the peer closes (or the timeout); returns everything read. `closed` tells
  // whether the close was seen.
  std::string ReadUntilClose(bool* closed, int timeout_ms = 5000);

 private:
  int fd_ = -1;
};

}  // namespace disque::test
