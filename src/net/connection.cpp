#include "disque/net/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <cstring>
#include <new>

#include "disque/common/page_memory.h"

namespace disque::net {

template <typename T>
T* PageAllocator<T>::allocate(size_t n) {
  return static_cast<T*>(AllocatePages(n * sizeof(T), false));
}

template <typename T>
void PageAllocator<T>::deallocate(T* p, size_t n) {
  FreePages(p, n * sizeof(T));
}

template struct PageAllocator<char>;

std::string PeerAddress(Socket& socket, std::string_view unix_path) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(socket.native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "?:0";
  }
  char ip[INET6_ADDRSTRLEN] = "?";
  switch (ss.ss_family) {
    case AF_INET: {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
      return std::string(ip) + ":" + std::to_string(ntohs(sin->sin_port));
    }
    case AF_INET6: {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
      return "[" + std::string(ip) + "]:" + std::to_string(ntohs(sin6->sin6_port));
    }
    case AF_UNIX:
      return std::string(unix_path) + ":0";
    default:
      return "?:0";
  }
}

void TuneTcpSocket(Socket& socket, int64_t keepalive_seconds) {
  const int fd = socket.native_handle();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || ss.ss_family == AF_UNIX) return;
  int yes = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  if (keepalive_seconds > 0) {
    // The same settings as Redis's anetKeepAlive: probe after `interval` idle seconds,
    // then every interval/3 seconds, 3 probes.
    int interval = static_cast<int>(keepalive_seconds);
    int probe_interval = interval / 3 > 0 ? interval / 3 : 1;
    int probes = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof yes);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &interval, sizeof interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &probe_interval, sizeof probe_interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  }
}

Connection::Connection(Socket socket, bool is_unix) : socket_(std::move(socket)), is_unix_(is_unix) {}

asio::awaitable<size_t> Connection::Read(size_t want) {
  // Make room: compact consumed bytes away, then grow so that at least one chunk fits
  // after the unconsumed bytes. An announced bulk (`want`) is grown toward by doubling,
  // never all at once: a 30-byte header must not commit 512 MB before any data came.
  if (begin_ == end_) {
    begin_ = end_ = 0;
  }
  const size_t pending = end_ - begin_;
  const size_t needed = std::max(pending + kReadChunk, std::min(want, 2 * in_.size()));
  if (in_.size() - end_ < kReadChunk || in_.size() < needed) {
    if (begin_ > 0) {
      std::memmove(in_.data(), in_.data() + begin_, pending);
      begin_ = 0;
      end_ = pending;
    }
    if (in_.size() < needed) {
      // Out of memory (or of mappings) for this buffer: this connection ends, the
      // server goes on. (Nothing may throw across the event loop: the bus's readers
      // run detached.)
      try {
        in_.resize(needed);
      } catch (const std::bad_alloc&) {
        co_return 0;
      }
    }
  }
  asio::error_code ec;
  size_t n = co_await socket_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_),
                                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return 0;
  end_ += n;
  bytes_read_ += n;
  co_return n;
}

void Connection::Consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
  // Give back a large buffer once it is drained (a big bulk was received).
  if (begin_ == 0 && end_ == 0 && in_.size() > 4 * kReadChunk) {
    in_.resize(kReadChunk);
    in_.shrink_to_fit();
  }
}

asio::awaitable<bool> Connection::Flush() {
  if (out_.empty()) co_return true;
  writing_ = true;
  // Written piece by piece rather than with asio::async_write so that pending_output()
  // shows the progress of a slow reader.
  asio::error_code ec;
  while (flushed_ < out_.size() && !ec) {
    const asio::const_buffer rest = asio::buffer(out_.data() + flushed_, out_.size() - flushed_);
    const size_t n = co_await socket_.async_write_some(rest, asio::redirect_error(asio::use_awaitable, ec));
    flushed_ += n;
  }
  writing_ = false;
  bytes_written_ += flushed_;
  flushed_ = 0;
  out_.clear();
  if (out_.capacity() > 1024 * 1024) out_.shrink_to_fit();
  co_return !ec;
}

void Connection::Close() {
  if (!socket_.is_open()) return;
  asio::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace disque::net
