#include "support/redis_client.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace disque::test {
namespace {

Reply Convert(const redisReply* r) {
  Reply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STATUS: out.type = Reply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::kError; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::kInteger; break;
    case REDIS_REPLY_STRING: out.type = Reply::Type::kBulk; break;
    case REDIS_REPLY_NIL: out.type = Reply::Type::kNil; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::kArray; break;
    default: out.type = Reply::Type::kNone; break;
  }
  if (r->str != nullptr) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
  }
  return out;
}

timeval Timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

}  // namespace

std::string Reply::ToString() const {
  switch (type) {
    case Type::kStatus: return "+" + str;
    case Type::kError: return "-" + str;
    case Type::kInteger: return ":" + std::to_string(integer);
    case Type::kBulk: return "$" + str;
    case Type::kNil: return "$-1";
    case Type::kArray: return "*" + std::to_string(elements.size());
    case Type::kNone: return "(no reply)";
  }
  return "?";
}

RedisClient::RedisClient(int port, int timeout_ms) : RedisClient(Host{"127.0.0.1"}, port, timeout_ms) {}

namespace {

// A TCP connection to a port nobody listens on, from the same port (the kernel picked it
// as the ephemeral port), connects to itself (simultaneous open) and holds the port:
// a client retrying while its server restarts can then keep the server from binding.
bool SelfConnected(int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 || local.ss_family != peer.ss_family) {
    return false;
  }
  if (local.ss_family == AF_INET) {
    const auto& l = reinterpret_cast<const sockaddr_in&>(local);
    const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
    return l.sin_port == p.sin_port && l.sin_addr.s_addr == p.sin_addr.s_addr;
  }
  return false;
}

}  // namespace

RedisClient::RedisClient(const Host& host, int port, int timeout_ms) {
  ctx_ = redisConnectWithTimeout(host.ip.c_str(), port, Timeval(timeout_ms));
  if (ctx_ != nullptr && ctx_->err == 0 && SelfConnected(ctx_->fd)) {
    redisFree(ctx_);  // frees the port at once; not a server
    ctx_ = nullptr;
  }
  if (ctx_ != nullptr && ctx_->err == 0) redisSetTimeout(ctx_, Timeval(timeout_ms));
}

RedisClient::RedisClient(const std::string& unix_path, int timeout_ms) {
  ctx_ = redisConnectUnixWithTimeout(unix_path.c_str(), Timeval(timeout_ms));
  if (ctx_ != nullptr && ctx_->err == 0) redisSetTimeout(ctx_, Timeval(timeout_ms));
}

RedisClient::~RedisClient() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

bool RedisClient::connected() const { return ctx_ != nullptr && ctx_->err == 0; }

void RedisClient::Append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data());
}

Reply RedisClient::GetReply() {
  void* raw = nullptr;
  if (!connected() || redisGetReply(ctx_, &raw) != REDIS_OK) {
    error_ = ctx_ != nullptr ? ctx_->errstr : "no context";
    return {};
  }
  Reply out = Convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

Reply RedisClient::Command(const std::vector<std::string>& args) {
  if (!connected()) {
    error_ = ctx_ != nullptr ? ctx_->errstr : "no context";
    return {};
  }
  Append(args);
  return GetReply();
}

RawConnection::RawConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

namespace {

// Reads once, waiting at most until `deadline`. Returns bytes read, 0 on close, -1 on
// timeout or error.
ssize_t ReadSome(int fd, char* buf, size_t len, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  errno = ETIMEDOUT;
  if (left.count() <= 0) return -1;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
  return recv(fd, buf, len, 0);
}

}  // namespace

std::string RawConnection::Read(size_t n, int timeout_ms) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = ReadSome(fd_, buf, std::min(sizeof buf, n - out.size()), deadline);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

std::string RawConnection::ReadUntilClose(bool* closed, int timeout_ms) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  *closed = false;
  while (true) {
    ssize_t r = ReadSome(fd_, buf, sizeof buf, deadline);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) {
      *closed = true;
      break;
    }
    if (r < 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

}  // namespace disque::test
