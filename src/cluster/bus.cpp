#include "disque/cluster/bus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <chrono>
#include <future>
#include <random>

#include "disque/net/connection.h"
#include "disque/net/listener.h"

namespace disque::cluster {

namespace {

// The IP of a socket's local (`local`) or remote end, canonical; empty if unknown.
std::string SocketIp(int fd, bool local) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int rc = local ? ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                       : ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return {};
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, text, sizeof text);
  } else {
    return {};
  }
  return CanonicalIp(text);
}

}  // namespace

// One bus connection. Outgoing links belong to a node record (`node`, cleared when the
// record lets go of it); incoming ones have none. States: connecting (outgoing, before
// the connect completes: frames queue in `pending`), open, closed (socket closed, no
// longer in Bus::links_; the coroutines still holding it exit at their next step).
struct Bus::Link {
  Link(uint64_t link_id, Node* owner, net::Socket socket) : id(link_id), node(owner), conn(std::move(socket), false) {}

  const uint64_t id;
  Node* node;
  net::Connection conn;
  std::string pending;     // encoded frames not yet handed to the writer
  bool connected = false;  // the connect completed (always true for incoming links)
  bool writing = false;    // a WriteLink coroutine is running
  bool closed = false;
  std::string peer_ip;     // remote end, canonical
  std::string local_ip;    // our end
  std::string peer;        // "ip:port" for log lines
};

Bus::Bus(const Clock& clock, BusOptions options, engine::NodeRegistry& nodes)
    : clock_(clock), options_(std::move(options)), nodes_file_(options_.nodes_file), nodes_(nodes) {}

Bus::~Bus() { Stop(); }

Status Bus::Open() {
  if (Status st = nodes_file_.Lock(); !st.ok()) return st;
  Result<std::string> text = nodes_file_.Read();
  if (!text.ok()) return text.status();
  std::random_device random;
  const uint64_t seed = (static_cast<uint64_t>(random()) << 32) ^ random();
  Transport& transport = *this;
  membership_ = std::make_unique<Membership>(clock_, transport, options_.membership, seed);
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
    membership_->CreateMyself();
    spdlog::info("No cluster configuration found, I'm {}", membership_->myself().id);
  } else {
    if (Status st = membership_->Load(*text); !st.ok()) return st;
    spdlog::info("Node configuration loaded, I'm {}", membership_->myself().id);
  }
  if (Status st = SaveConfig(); !st.ok()) {
    return Status::Error("Can't write the cluster config file " + nodes_file_.path() + ": " + std::string(st.message()));
  }
  membership_->TakeSave();
  if (options_.listen_port != 0) {
    listener_ = std::make_unique<net::Listener>(
        ctx_, [this]() -> asio::io_context& { return ctx_; },
        [this](net::Socket socket, bool) {
          auto link = NewLink(nullptr, std::move(socket));
          link->connected = true;
          net::TuneTcpSocket(link->conn.socket(), 0);
          const int fd = link->conn.fd();
          link->peer_ip = SocketIp(fd, false);
          link->local_ip = SocketIp(fd, true);
          link->peer = net::PeerAddress(link->conn.socket(), "");
          asio::co_spawn(ctx_, ReadLink(link), asio::detached);
        });
    net::ListenSpec spec;
    spec.addresses = options_.bind;
    spec.port = options_.listen_port;
    if (Status st = listener_->Open(spec); !st.ok()) return Status::Error("Cluster bus: " + std::string(st.message()));
  }
  PublishView();
  membership_->TakeViewChange();
  return Status::Ok();
}

void Bus::Start() {
  if (listener_) listener_->Start();
  ScheduleCron();
  std::promise<void> exited;
  exited_ = exited.get_future();
  thread_ = std::thread([this, exited = std::move(exited)]() mutable {
    ctx_.run();
    exited.set_value();
  });
}

void Bus::Stop() {
  if (!thread_.joinable()) return;
  // Close everything on the bus thread; run() returns once the coroutines have seen it.
  asio::post(ctx_, [this] {
    stopping_ = true;
    cron_timer_.cancel();
    if (listener_) listener_->Close();
    std::vector<std::shared_ptr<Link>> all;
    for (auto& [id, link] : links_) all.push_back(link);
    for (auto& link : all) CloseLink(link);
  });
  work_.reset();
  if (exited_.wait_for(std::chrono::seconds(2)) != std::future_status::ready) ctx_.stop();
  thread_.join();
}

Status Bus::SaveConfig() { return nodes_file_.Write(membership_->ConfigText()); }

// ------------------------------------------------------------------------ events

void Bus::ScheduleCron() {
  cron_timer_.expires_after(std::chrono::milliseconds(kCronPeriodMs));
  cron_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    membership_->Cron();
    AfterEvent();
    // Link states change asynchronously (connects, closes): republish every run.
    PublishView();
    ScheduleCron();
  });
}

void Bus::AfterEvent() {
  if (membership_->TakeSave()) {
    if (Status st = SaveConfig(); !st.ok()) {
      // PROTOCOL.md II 11: a node that cannot record its membership stops.
      spdlog::critical("Can't save the cluster config file {}: {}. Exiting.", nodes_file_.path(), st.message());
      spdlog::default_logger()->flush();
      std::_Exit(1);
    }
  }
  if (membership_->TakeViewChange()) PublishView();
}

void Bus::PublishView() {
  auto view = std::make_shared<const ClusterView>(membership_->View());
  {
    std::lock_guard lock(view_mu_);
    view_ = view;
  }
  if (view_listener_) view_listener_(std::move(view));
}

std::shared_ptr<const ClusterView> Bus::view() const {
  std::lock_guard lock(view_mu_);
  return view_;
}

void Bus::Dispatch(const std::shared_ptr<Link>& link, const Message& message) {
  ++messages_received_;
  if (!IsKnownType(message.type)) {
    spdlog::warn("Cluster bus: ignoring a message of unknown type {} from {}", message.type, link->peer);
    return;
  }
  if (!cut_.empty() && (cut_.contains(message.sender) || (link->node != nullptr && cut_.contains(link->node->id)))) {
    return;  // fault injection: the network to that node is down
  }
  // The latest connection each node talks to us on: job messages go back on it while
  // our own link to that node is not connected (it restarted: our reconnect may lag).
  if (link->node == nullptr && membership_->Find(message.sender) != nullptr) {
    incoming_[message.sender] = link->id;
  }
  if (message.type >= static_cast<uint8_t>(MessageType::kReplJob)) {
    // A job message: only from a node we know (PROTOCOL.md II 5), then to the engine.
    if (membership_->KnownSender(message.sender) == nullptr || !job_listener_) return;
    engine::JobMessage m;
    m.type = static_cast<engine::JobMsg>(message.type);
    m.flags = message.msg_flags;
    m.job_id = message.job_id;
    m.aux = message.aux;
    m.queue = message.queue;
    m.jobs = message.jobs;
    m.sender = nodes_.Intern(message.sender);
    job_listener_(std::move(m));
    return;
  }
  const Origin from{link->id, link->node, link->peer_ip, link->local_ip};
  membership_->Receive(message, from);
  AfterEvent();
}

void Bus::SendJobs(std::vector<engine::JobMessage> messages) {
  asio::post(ctx_, [this, messages = std::move(messages)] {
    if (stopping_ || !membership_) return;
    for (const engine::JobMessage& m : messages) SendJob(m);
  });
}

void Bus::SendJob(const engine::JobMessage& job_message) {
  Message m = membership_->Header(static_cast<MessageType>(job_message.type));
  m.msg_flags = job_message.flags;
  m.job_id = job_message.job_id;
  m.aux = job_message.aux;
  m.queue = job_message.queue;
  m.jobs = job_message.jobs;
  std::string frame;
  Encode(m, frame);  // once, whatever the number of recipients
  auto send = [&](const Node& node) {
    if (cut_.contains(node.id)) return;
    auto it = links_.find(node.link);
    if (it == links_.end() || !it->second->connected) {
      // No usable link of ours: the connection the node opened to us, if any.
      auto in = incoming_.find(node.id);
      auto other = in != incoming_.end() ? links_.find(in->second) : links_.end();
      if (other != links_.end()) it = other;
    }
    if (it != links_.end()) QueueFrame(it->second, frame);
  };
  if (job_message.to_all) {
    membership_->ForEachPeer(send);
    return;
  }
  for (uint32_t index : job_message.to) {
    if (const Node* node = membership_->Find(nodes_.Id(index)); node != nullptr && node != &membership_->myself()) {
      send(*node);
    }
  }
}

// ------------------------------------------------------------------------ links

std::shared_ptr<Bus::Link> Bus::NewLink(Node* node, net::Socket socket) {
  auto link = std::make_shared<Link>(next_link_id_++, node, std::move(socket));
  links_.emplace(link->id, link);
  return link;
}

void Bus::CloseLink(const std::shared_ptr<Link>& link) {
  if (link->closed) return;
  link->closed = true;
  link->conn.Close();
  links_.erase(link->id);
  if (Node* node = std::exchange(link->node, nullptr); node != nullptr && node->link == link->id) {
    node->link = 0;
    membership_->LinkClosed(*node, link->connected);
  }
}

void Bus::Connect(Node& node) {
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(node.ip, ec);
  if (ec || node.bus_port == 0 || stopping_) return;
  const asio::ip::tcp::endpoint endpoint(address, node.bus_port);
  net::Socket socket(ctx_);
  const asio::generic::stream_protocol protocol(endpoint.protocol());
  socket.open(protocol, ec);
  if (ec) return;
  auto link = NewLink(&node, std::move(socket));
  link->peer = node.ip + ":" + std::to_string(node.bus_port);
  node.link = link->id;
  node.link_ctime_ms = clock_.MonotonicMs();
  asio::co_spawn(ctx_, ConnectLink(link, endpoint), asio::detached);
}

void Bus::DropLink(Node& node) {
  if (node.link == 0) return;
  auto it = links_.find(node.link);
  node.link = 0;
  if (it == links_.end()) return;
  std::shared_ptr<Link> link = it->second;
  link->node = nullptr;
  CloseLink(link);
}

void Bus::Send(Node& node, const Message& message) {
  if (node.link == 0 || (!cut_.empty() && cut_.contains(node.id))) return;
  auto it = links_.find(node.link);
  if (it != links_.end()) Queue(it->second, message);
}

void Bus::Reply(uint64_t link, const Message& message) {
  auto it = links_.find(link);
  if (it != links_.end()) Queue(it->second, message);
}

void Bus::Queue(const std::shared_ptr<Link>& link, const Message& message) {
  if (link->closed) return;
  Encode(message, link->pending);
  ++messages_sent_;
  if (link->connected && !link->writing) StartWriter(link);
}

void Bus::QueueFrame(const std::shared_ptr<Link>& link, std::string_view frame) {
  if (link->closed) return;
  link->pending.append(frame);
  ++messages_sent_;
  if (link->connected && !link->writing) StartWriter(link);
}

void Bus::StartWriter(const std::shared_ptr<Link>& link) {
  link->writing = true;
  asio::co_spawn(ctx_, WriteLink(link), asio::detached);
}

asio::awaitable<void> Bus::ConnectLink(std::shared_ptr<Link> link, asio::ip::tcp::endpoint endpoint) {
  asio::error_code ec;
  const asio::generic::stream_protocol::endpoint target(endpoint);
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  co_await link->conn.socket().async_connect(target, token);
  if (link->closed) co_return;
  if (ec) {
    spdlog::debug("Cluster bus: connecting to {}: {}", link->peer, ec.message());
    CloseLink(link);
    AfterEvent();
    co_return;
  }
  link->connected = true;
  net::TuneTcpSocket(link->conn.socket(), 0);
  link->peer_ip = SocketIp(link->conn.fd(), false);
  link->local_ip = SocketIp(link->conn.fd(), true);
  if (!link->pending.empty() && !link->writing) StartWriter(link);
  co_await ReadLink(link);
}

asio::awaitable<void> Bus::ReadLink(std::shared_ptr<Link> link) {
  size_t want = 0;
  while (!link->closed) {
    const size_t n = co_await link->conn.Read(want);
    if (n == 0 || link->closed) break;
    want = 0;
    for (;;) {
      const std::string_view input = link->conn.input();
      Result<size_t> length = FrameLength(input);
      if (!length.ok()) {
        spdlog::warn("Cluster bus: closing the connection with {}: {}", link->peer, length.status().message());
        CloseLink(link);
        AfterEvent();
        co_return;
      }
      if (*length == 0 || *length > input.size()) {
        want = *length;
        break;
      }
      Result<Message> message = Decode(input.substr(0, *length));
      link->conn.Consume(*length);
      if (!message.ok()) {
        spdlog::warn("Cluster bus: closing the connection with {}: malformed frame: {}", link->peer,
                     message.status().message());
        CloseLink(link);
        AfterEvent();
        co_return;
      }
      Dispatch(link, *message);
      if (link->closed) co_return;
    }
  }
  CloseLink(link);
  AfterEvent();
}

asio::awaitable<void> Bus::WriteLink(std::shared_ptr<Link> link) {
  while (!link->closed && !link->pending.empty()) {
    std::swap(link->conn.output(), link->pending);
    const bool ok = co_await link->conn.Flush();
    if (!ok) {
      CloseLink(link);
      AfterEvent();
      break;
    }
  }
  link->writing = false;
}

}  // namespace disque::cluster
