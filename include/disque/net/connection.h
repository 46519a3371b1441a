#pragma once

#include <asio/awaitable.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace disque::net {

// The allocator of the connections' input buffers: whole pages (AllocatePages, not
// populated: most of a buffer may never be touched), never in malloc's heap. A buffer
// is allocated when a connection first reads and freed with it (or when a large one
// shrinks back), so the two system calls are per connection, not per read.
template <typename T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() = default;
  template <typename U>
  PageAllocator(const PageAllocator<U>&) {}  // NOLINT: allocators convert implicitly
  T* allocate(size_t n);
  void deallocate(T* p, size_t n);
  template <typename U>
  bool operator==(const PageAllocator<U>&) const { return true; }
};

// TCP and Unix-socket connections share one socket type, so everything above this layer
// handles both the same way.
using Socket = asio::generic::stream_protocol::socket;

// "ip:port" for IPv4, "[ip]:port" for IPv6 (as CLIENT LIST shows them), "<path>:0" for a
// Unix socket peer.
std::string PeerAddress(Socket& socket, std::string_view unix_path);

// Applies TCP_NODELAY and, when keepalive_seconds > 0, SO_KEEPALIVE with that idle time,
// as Disque does for client sockets. No-op on Unix sockets.
void TuneTcpSocket(Socket& socket, int64_t keepalive_seconds);

// A client connection's socket and buffers. The input buffer keeps every byte received
// and not yet consumed in one contiguous region [begin_, end_) of in_ (what the RESP
// parser wants); the output buffer accumulates all replies of one batch of commands and
// is written with one write. Owned and used by one shard thread only.
class Connection {
 public:
  Connection(Socket socket, bool is_unix);

  // Reads what is available (at least one byte) after the unconsumed input. `want` is a
  // hint of the total unconsumed size needed (a large bulk being received). Returns the
  // number of bytes read; 0 means the peer closed or the read failed or was cancelled.
  asio::awaitable<size_t> Read(size_t want = 0);

  std::string_view input() const { return {in_.data() + begin_, end_ - begin_}; }
  void Consume(size_t n);
  size_t input_capacity() const { return in_.size(); }

  std::string& output() { return out_; }
  // Writes the whole output buffer and clears it. False when the write failed.
  asio::awaitable<bool> Flush();
  bool writing() const { return writing_; }
  // Output bytes the peer has not taken yet: the part of a running Flush the socket has
  // not accepted, or the whole buffer when no write runs (client-output-buffer-limit).
  size_t pending_output() const { return out_.size() - flushed_; }

  // Cancels pending reads and writes and closes the socket. Idempotent; safe from the
  // owning shard's thread only.
  void Close();
  bool closed() const { return !socket_.is_open(); }

  bool is_unix() const { return is_unix_; }
  int fd() { return socket_.is_open() ? static_cast<int>(socket_.native_handle()) : -1; }
  Socket& socket() { return socket_; }

  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  static constexpr size_t kReadChunk = 16 * 1024;

  Socket socket_;
  bool is_unix_;
  bool writing_ = false;
  std::vector<char, PageAllocator<char>> in_;  // size() is the allocated region; bytes past end_ are free
  size_t begin_ = 0;      // first unconsumed byte
  size_t end_ = 0;        // one past the last received byte
  std::string out_;
  size_t flushed_ = 0;  // bytes of out_ already written by the running Flush (else 0)
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
};

}  // namespace disque::net
