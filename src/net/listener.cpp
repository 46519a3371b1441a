#include "disque/net/listener.h"

#include <sys/stat.h>
#include <unistd.h>

#include <asio/ip/address.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>

#include <spdlog/spdlog.h>

namespace disque::net {

Listener::Listener(asio::io_context& ctx, PickContext pick, OnAccept on_accept)
    : ctx_(ctx), pick_(std::move(pick)), on_accept_(std::move(on_accept)) {}

Listener::~Listener() { Close(); }

Status Listener::Open(const ListenSpec& spec) {
  if (spec.port > 0) {
    // Without bind addresses Disque listens on every IPv6 and IPv4 interface; a machine
    // without IPv6 is not an error then.
    const bool wildcard = spec.addresses.empty();
    std::vector<std::string> addresses = spec.addresses;
    if (wildcard) addresses = {"::", "0.0.0.0"};
    for (const std::string& text : addresses) {
      asio::error_code ec;
      auto addr = asio::ip::make_address(text, ec);
      const std::string where = text + ":" + std::to_string(spec.port);
      if (ec) return Status::Error("Creating Server TCP listening socket " + where + ": Invalid address");
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(ctx_);
      asio::ip::tcp::endpoint endpoint(addr, static_cast<uint16_t>(spec.port));
      acceptor->open(endpoint.protocol(), ec);
      if (!ec && addr.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
      if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor->bind(endpoint, ec);
      if (!ec) acceptor->listen(spec.backlog, ec);
      if (ec) {
        if (wildcard && addr.is_v6()) continue;  // no IPv6 here: IPv4 alone is fine
        return Status::Error("Creating Server TCP listening socket " + where + ": " + ec.message());
      }
      bound_port_ = acceptor->local_endpoint().port();
      tcp_.push_back(std::move(acceptor));
    }
    if (tcp_.empty()) return Status::Error("Configured to not listen anywhere");
  }
  if (!spec.unix_path.empty()) {
    ::unlink(spec.unix_path.c_str());  // a stale socket file from an earlier run
    asio::error_code ec;
    unix_ = std::make_unique<asio::local::stream_protocol::acceptor>(ctx_);
    asio::local::stream_protocol::endpoint endpoint(spec.unix_path);
    unix_->open(endpoint.protocol(), ec);
    if (!ec) unix_->bind(endpoint, ec);
    if (!ec) unix_->listen(spec.backlog, ec);
    if (ec) return Status::Error("Opening Unix socket: " + ec.message());
    unix_path_ = spec.unix_path;
    if (spec.unix_perm != 0) ::chmod(spec.unix_path.c_str(), static_cast<mode_t>(spec.unix_perm));
  }
  return Status::Ok();
}

void Listener::Start() {
  for (auto& acceptor : tcp_) AcceptTcp(*acceptor);
  if (unix_) AcceptUnix();
}

void Listener::AcceptTcp(asio::ip::tcp::acceptor& acceptor) {
  // The socket is created on the shard's io_context that will own the connection, so it
  // never has to be moved between contexts.
  auto socket = std::make_shared<Socket>(pick_());
  acceptor.async_accept(*socket, [this, &acceptor, socket](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) on_accept_(std::move(*socket), false);
    if (ec && OutOfResources(ec)) {
      AfterBackoff([this, &acceptor] { AcceptTcp(acceptor); });
      return;
    }
    // Other errors (ECONNABORTED, a peer gone before the accept) concern one connection.
    AcceptTcp(acceptor);
  });
}

void Listener::AcceptUnix() {
  auto socket = std::make_shared<Socket>(pick_());
  unix_->async_accept(*socket, [this, socket](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted || !unix_ || !unix_->is_open()) return;
    if (!ec) on_accept_(std::move(*socket), true);
    if (ec && OutOfResources(ec)) {
      AfterBackoff([this] { AcceptUnix(); });
      return;
    }
    AcceptUnix();
  });
}

bool Listener::OutOfResources(const asio::error_code& ec) {
  const bool resources = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                         ec == asio::error::no_memory ||
                         (ec.category() == asio::system_category() && ec.value() == ENFILE);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_error_log_ >= std::chrono::seconds(1)) {
    last_error_log_ = now;
    spdlog::warn("Error accepting a client connection: {}{}", ec.message(),
                 resources ? " (accepting again in 100 ms; existing clients are still served)" : "");
  }
  return resources;
}

void Listener::AfterBackoff(std::function<void()> retry) {
  // The timer may fire after the listener is gone (destroyed while its io_context still
  // runs): `alive_` says whether `this` may be touched.
  auto timer = std::make_shared<asio::steady_timer>(ctx_, kResourceBackoff);
  timer->async_wait([alive = alive_, timer, retry = std::move(retry)](const asio::error_code& ec) {
    if (!ec && *alive) retry();
  });
}

void Listener::Close() {
  *alive_ = false;  // no accept is started again
  asio::error_code ec;
  for (auto& acceptor : tcp_) acceptor->close(ec);
  if (unix_) {
    unix_->close(ec);
    ::unlink(unix_path_.c_str());
  }
}

}  // namespace disque::net
