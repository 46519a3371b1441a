#pragma once

#include <asio/error_code.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "disque/common/status.h"
#include "disque/net/connection.h"

namespace disque::net {

// What to listen on: the client port on each `bind` address (all IPv4 and IPv6
// interfaces when none), and optionally a Unix socket.
struct ListenSpec {
  std::vector<std::string> addresses;  // empty: "::" (IPv6 only) plus "0.0.0.0"
  int port = 0;                        // 0: no TCP listener
  int backlog = 511;
  std::string unix_path;               // empty: no Unix socket
  int unix_perm = 0;                   // chmod mode for the socket file; 0 leaves it as is
};

// Accepts connections on every listening socket. Each accepted socket is created on the
// io_context that `pick` returns (the shard the connection will live on) and handed to
// `on_accept` on the listener's own thread.
class Listener {
 public:
  using PickContext = std::function<asio::io_context&()>;
  using OnAccept = std::function<void(Socket socket, bool is_unix)>;

  Listener(asio::io_context& ctx, PickContext pick, OnAccept on_accept);
  ~Listener();

  // Binds every socket of `spec`. An error names the address, as Disque's startup
  // error does ("Creating Server TCP listening socket 127.0.0.1:7711: Address already
  // in use").
  Status Open(const ListenSpec& spec);
  // Starts accepting.
  void Start();
  // Closes all listening sockets and removes the Unix socket file.
  void Close();

  // The TCP port actually bound (useful with port 0 in tests of this layer).
  int bound_port() const { return bound_port_; }

 private:
  void AcceptTcp(asio::ip::tcp::acceptor& acceptor);
  void AcceptUnix();
  // After a failed accept: true when the error is a lack of resources (EMFILE, ENFILE,
  // ENOBUFS, ENOMEM). The connection stays in the backlog and accepting again at once
  // would fail the same way in a loop that starves the clients already connected, so
  // the caller waits kResourceBackoff first. Logs at most once a second.
  bool OutOfResources(const asio::error_code& ec);
  // Runs `retry` after kResourceBackoff (unless the listener closed meanwhile).
  void AfterBackoff(std::function<void()> retry);

  static constexpr std::chrono::milliseconds kResourceBackoff{100};

  asio::io_context& ctx_;
  PickContext pick_;
  OnAccept on_accept_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_;
  std::string unix_path_;
  int bound_port_ = 0;
  // False once closed or destroyed; shared with pending backoff timers.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::chrono::steady_clock::time_point last_error_log_{};
};

}  // namespace disque::net
