#include "disque/cluster/membership.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "disque/common/strings.h"

namespace disque::cluster {

namespace {

bool IsHandshake(const Node& n) { return (n.flags & kNodeHandshake) != 0; }
bool IsFailing(const Node& n) { return (n.flags & (kNodePfail | kNodeFail)) != 0; }

// CLUSTER NODES flag names, in PROTOCOL.md 6.7's order.
constexpr std::pair<uint16_t, std::string_view> kFlagNames[] = {
    {kNodeMyself, "myself"},       {kNodePfail, "fail?"},    {kNodeFail, "fail"},
    {kNodeHandshake, "handshake"}, {kNodeNoAddr, "noaddr"}, {kNodeLeaving, "leaving"},
};

bool ParsePort(std::string_view text, uint16_t& out) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  out = static_cast<uint16_t>(value);
  return true;
}

uint16_t DefaultBusPort(uint16_t port) { return static_cast<uint16_t>(port + 10000); }

// `text` cut at every `sep`, empty pieces dropped unless `keep_empty`.
std::vector<std::string_view> Split(std::string_view text, char sep, bool keep_empty = false) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (keep_empty || end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string CanonicalIp(std::string_view ip) {
  if (ip.empty() || ip.size() > kMaxIpSize) return {};
  const std::string text(ip);
  char out[INET6_ADDRSTRLEN];
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, out, sizeof out) ? std::string(out) : std::string();
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return {};
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], 4);
    return inet_ntop(AF_INET, &v4, out, sizeof out) ? std::string(out) : std::string();
  }
  return inet_ntop(AF_INET6, &v6, out, sizeof out) ? std::string(out) : std::string();
}

int ClusterView::Priority(const Entry& e) {
  int priority = 1;
  if (!e.linked) priority = 5;
  if (e.flags & kNodePfail) priority = 10;
  if (e.flags & (kNodeFail | kNodeLeaving)) priority = 100;
  return priority;
}

Membership::Membership(const Clock& clock, Transport& transport, MembershipOptions options, uint64_t seed)
    : clock_(clock), transport_(transport), options_(std::move(options)), rng_(seed) {
  if (options_.bus_port == 0) options_.bus_port = DefaultBusPort(options_.port);
}

Membership::~Membership() = default;

// ------------------------------------------------------------------------ identity

void Membership::CreateMyself(std::string id) {
  if (id.empty()) id = RandomHex(kNodeIdSize);
  Node& me = AddNode(std::move(id), kNodeMyself);
  me.ip = options_.announce_ip;
  me.port = options_.port;
  me.bus_port = options_.bus_port;
  myself_ = &me;
  Changed(true);
}

Status Membership::Load(std::string_view text) {
  const Status corrupted = Status::Error("Unrecoverable error: corrupted cluster config file.");
  const int64_t now = clock_.MonotonicMs();
  std::vector<std::unique_ptr<Node>> loaded;
  Node* me = nullptr;
  for (std::string_view line : Split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.starts_with("vars")) continue;
    std::vector<std::string_view> f = Split(line, ' ');
    if (f.size() != 6 || f[0].size() != kNodeIdSize) return corrupted;
    auto node = std::make_unique<Node>();
    node->id = std::string(f[0]);
    // ip:port, split at the last ':' (IPv6 addresses are not bracketed); ours may add
    // "@busport" when the bus port is not port + 10000.
    const size_t colon = f[1].rfind(':');
    if (colon == std::string_view::npos) return corrupted;
    node->ip = std::string(f[1].substr(0, colon));
    std::string_view ports = f[1].substr(colon + 1);
    std::string_view bus;
    if (size_t at = ports.find('@'); at != std::string_view::npos) {
      bus = ports.substr(at + 1);
      ports = ports.substr(0, at);
    }
    if (!ParsePort(ports, node->port)) return corrupted;
    node->bus_port = DefaultBusPort(node->port);
    if (!bus.empty() && !ParsePort(bus, node->bus_port)) return corrupted;
    for (std::string_view name : Split(f[2], ',')) {
      if (name == "noflags") continue;
      auto it = std::find_if(std::begin(kFlagNames), std::end(kFlagNames), [&](auto& p) { return p.second == name; });
      if (it == std::end(kFlagNames)) return Status::Error("Unknown flag in cluster config file: " + std::string(name));
      node->flags |= it->first;
    }
    const std::optional<int64_t> ping = ParseInt64(f[3]);
    const std::optional<int64_t> pong = ParseInt64(f[4]);
    if (!ping || !pong) return corrupted;
    node->ping_sent_ms = *ping != 0 ? now : 0;
    node->pong_received_ms = *pong != 0 ? now : 0;
    node->ctime_ms = now;
    if (node->flags & kNodeMyself) {
      if (me != nullptr) return corrupted;
      me = node.get();
      me->ping_sent_ms = me->pong_received_ms = 0;
    }
    if (std::any_of(loaded.begin(), loaded.end(), [&](auto& n) { return n->id == node->id; })) return corrupted;
    loaded.push_back(std::move(node));
  }
  if (me == nullptr) return corrupted;
  // Only a file that parsed completely replaces the table.
  nodes_.clear();
  by_id_.clear();
  for (auto& node : loaded) {
    by_id_.emplace(node->id, node.get());
    nodes_.push_back(std::move(node));
  }
  myself_ = me;
  // Our ports are this run's configuration, not the file's; an announced IP wins too.
  myself_->port = options_.port;
  myself_->bus_port = options_.bus_port;
  if (!options_.announce_ip.empty()) myself_->ip = options_.announce_ip;
  UpdateReachable();
  Changed(true);
  return Status::Ok();
}

std::string Membership::ConfigText() const {
  std::string text;
  for (const auto& n : nodes_) {
    if (!IsHandshake(*n)) text += Line(*n);
  }
  return text;
}

// ------------------------------------------------------------------------ the table

Node* Membership::Lookup(std::string_view id) {
  auto it = by_id_.find(std::string(id));
  return it == by_id_.end() ? nullptr : it->second;
}

const Node* Membership::Find(std::string_view id) const {
  auto it = by_id_.find(std::string(id));
  return it == by_id_.end() ? nullptr : it->second;
}

Node& Membership::AddNode(std::string id, uint16_t flags) {
  auto node = std::make_unique<Node>();
  node->id = std::move(id);
  node->flags = flags;
  node->ctime_ms = clock_.MonotonicMs();
  Node& ref = *node;
  by_id_.emplace(ref.id, &ref);
  nodes_.push_back(std::move(node));
  Changed(false);
  return ref;
}

void Membership::DeleteNode(Node& node) {
  transport_.DropLink(node);
  // Its reports about others go with it.
  for (auto& other : nodes_) {
    std::erase_if(other->fail_reports, [&](const FailureReport& r) { return r.reporter == node.id; });
  }
  std::erase(reachable_, &node);
  by_id_.erase(node.id);
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](auto& p) { return p.get() == &node; });
  nodes_.erase(it);
  Changed(true);
}

void Membership::Rename(Node& node, std::string id) {
  by_id_.erase(node.id);
  node.id = std::move(id);
  by_id_.emplace(node.id, &node);
  Changed(true);
}

int Membership::size() const {
  int n = 0;
  for (const auto& node : nodes_) n += IsHandshake(*node) ? 0 : 1;
  return n;
}

void Membership::UpdateReachable() {
  std::vector<Node*> next;
  for (const auto& n : nodes_) {
    if (n.get() == myself_) continue;
    if (n->flags & (kNodeHandshake | kNodePfail | kNodeFail | kNodeLeaving)) continue;
    next.push_back(n.get());
  }
  if (next != reachable_) {
    reachable_ = std::move(next);
    Changed(false);
  }
}

bool Membership::Blacklisted(std::string_view id) {
  auto it = blacklist_.find(std::string(id));
  if (it == blacklist_.end()) return false;
  if (it->second > clock_.MonotonicMs()) return true;
  blacklist_.erase(it);
  return false;
}

bool Membership::TakeSave() { return std::exchange(save_pending_, false); }
bool Membership::TakeViewChange() { return std::exchange(view_changed_, false); }

// ------------------------------------------------------------------------ messages

const Node* Membership::KnownSender(std::string_view id) const {
  const Node* n = Find(id);
  return n != nullptr && !(n->flags & kNodeHandshake) && n != myself_ ? n : nullptr;
}

Message Membership::Header(MessageType type) const {
  Message m;
  m.type = static_cast<uint8_t>(type);
  m.sender = myself_->id;
  m.sender_ip = options_.announce_ip;
  m.port = options_.port;
  m.bus_port = options_.bus_port;
  m.sender_flags = myself_->flags & kNodeLeaving;
  return m;
}

// PROTOCOL.md II 3.6: max(3, known/10) entries, capped at known - 2, picked at random
// with failing nodes preferred in the first third of the attempts. Handshakes, NOADDR
// nodes and nodes without a link are left out; unlike Disque we keep failing nodes
// without a link, whose reports are what the FAIL quorum needs (Disque includes them
// only while a reconnect attempt happens to be in flight).
void Membership::AppendGossip(Message& m) {
  const int known = static_cast<int>(nodes_.size());
  int fresh = known - 2;
  int wanted = std::min(std::max(3, known / 10), fresh);
  int iterations = wanted * 3;
  std::uniform_int_distribution<size_t> pick(0, nodes_.size() - 1);
  while (fresh > 0 && static_cast<int>(m.gossip.size()) < wanted && iterations-- > 0) {
    Node& n = *nodes_[pick(rng_)];
    if (&n == myself_) continue;
    if (iterations > wanted * 2 && !IsFailing(n)) continue;
    if ((n.flags & (kNodeHandshake | kNodeNoAddr)) || (n.link == 0 && !IsFailing(n))) {
      --fresh;
      continue;
    }
    if (std::any_of(m.gossip.begin(), m.gossip.end(), [&](const GossipEntry& g) { return g.id == n.id; })) continue;
    m.gossip.push_back(GossipEntry{n.id, n.ip, n.port, n.bus_port, n.flags, static_cast<uint64_t>(ToUnixMs(n.ping_sent_ms)),
                                   static_cast<uint64_t>(ToUnixMs(n.pong_received_ms))});
    --fresh;
  }
}

void Membership::SendPing(Node& node, MessageType type) {
  Message m = Header(type);
  AppendGossip(m);
  // The outstanding ping keeps its first timestamp until a pong answers it.
  if (type == MessageType::kPing && node.ping_sent_ms == 0) node.ping_sent_ms = clock_.MonotonicMs();
  transport_.Send(node, m);
}

void Membership::Broadcast(const Message& m) {
  for (const auto& n : nodes_) {
    if (n.get() == myself_ || IsHandshake(*n) || n->link == 0) continue;
    transport_.Send(*n, m);
  }
}

std::string Membership::AdvertisedIp(const Message& m, const Origin& from) const {
  std::string ip = m.sender_ip.empty() ? from.peer_ip : m.sender_ip;
  std::string canonical = CanonicalIp(ip);
  return canonical.empty() ? ip : canonical;
}

void Membership::Receive(const Message& m, const Origin& from) {
  const auto type = static_cast<MessageType>(m.type);
  const bool heartbeat = type == MessageType::kPing || type == MessageType::kPong || type == MessageType::kMeet;
  const int64_t now = clock_.MonotonicMs();
  Node* sender = m.sender == myself_->id ? nullptr : Lookup(m.sender);
  if (sender != nullptr && IsHandshake(*sender)) sender = nullptr;

  if (sender != nullptr && heartbeat) {
    const uint16_t leaving = m.sender_flags & kNodeLeaving;
    if ((sender->flags & kNodeLeaving) != leaving) {
      spdlog::info("Node {} {} the cluster", sender->id, leaving ? "is leaving" : "is no longer leaving");
      sender->flags = static_cast<uint16_t>((sender->flags & ~kNodeLeaving) | leaving);
      UpdateReachable();
      Changed(true);
    }
  }

  if (type == MessageType::kPing || type == MessageType::kMeet) {
    // Our own IP, from the address a peer reached us at (unless announced).
    if (options_.announce_ip.empty() && (type == MessageType::kMeet || myself_->ip.empty()) && !from.local_ip.empty()) {
      std::string ip = CanonicalIp(from.local_ip);
      if (!ip.empty() && ip != myself_->ip) {
        myself_->ip = std::move(ip);
        Changed(true);
      }
    }
    if (sender == nullptr && type == MessageType::kMeet && m.sender != myself_->id && Lookup(m.sender) == nullptr) {
      Node& n = AddNode(RandomHex(kNodeIdSize), kNodeHandshake);
      n.ip = AdvertisedIp(m, from);
      n.port = m.port;
      n.bus_port = m.bus_port;
      ProcessGossip(m, nullptr);
      Changed(true);
    }
    Message pong = Header(MessageType::kPong);
    AppendGossip(pong);
    transport_.Reply(from.link, pong);
  }

  if (heartbeat) {
    Node* link_node = from.node;
    if (link_node != nullptr) {
      if (IsHandshake(*link_node)) {
        Node* known = m.sender == myself_->id ? myself_ : Lookup(m.sender);
        if (known != nullptr) {
          // Someone we already know answered at this address: keep the known record
          // (with this address) and drop the handshake (PROTOCOL.md II 3.4).
          if (known != myself_ && (known->ip != link_node->ip || known->port != m.port)) {
            known->ip = link_node->ip;
            known->port = m.port;
            known->bus_port = m.bus_port;
            transport_.DropLink(*known);
            known->flags &= static_cast<uint16_t>(~kNodeNoAddr);
          }
          DeleteNode(*link_node);
          UpdateReachable();
          return;
        }
        spdlog::info("Node {} at {}:{} joined the cluster (handshake done)", m.sender, link_node->ip, m.port);
        Rename(*link_node, m.sender);
        link_node->flags &= static_cast<uint16_t>(~(kNodeHandshake | kNodeMeet));
        link_node->flags |= m.sender_flags & kNodeLeaving;
        link_node->port = m.port;
        link_node->bus_port = m.bus_port;
        sender = link_node;
        Changed(true);
      } else if (link_node->id != m.sender) {
        // The address now belongs to another node (PROTOCOL.md II 3.9).
        spdlog::info("Node {}: its address {}:{} now belongs to node {}; address forgotten", link_node->id,
                     link_node->ip, link_node->port, m.sender);
        link_node->flags |= kNodeNoAddr;
        link_node->ip.clear();
        link_node->port = 0;
        link_node->bus_port = 0;
        transport_.DropLink(*link_node);
        Changed(true);
        return;
      }
    }

    // A known node pinging from another address than we have (PROTOCOL.md II 3.8).
    if (sender != nullptr && type == MessageType::kPing && from.node == nullptr) {
      std::string ip = AdvertisedIp(m, from);
      if (ip != sender->ip || m.port != sender->port || m.bus_port != sender->bus_port) {
        spdlog::info("Node {} moved from {}:{} to {}:{}", sender->id, sender->ip, sender->port, ip, m.port);
        sender->ip = std::move(ip);
        sender->port = m.port;
        sender->bus_port = m.bus_port;
        sender->flags &= static_cast<uint16_t>(~kNodeNoAddr);
        transport_.DropLink(*sender);
        Changed(true);
      }
    }

    if (link_node != nullptr && type == MessageType::kPong) {
      link_node->pong_received_ms = now;
      link_node->ping_sent_ms = 0;
      link_node->connect_failures = 0;
      if (link_node->flags & kNodePfail) {
        spdlog::debug("Node {} answers again: no longer possibly failing", link_node->id);
        link_node->flags &= static_cast<uint16_t>(~kNodePfail);
        Changed(true);
      } else if (link_node->flags & kNodeFail) {
        spdlog::info("Clear FAIL state for node {}: it is reachable again", link_node->id);
        link_node->flags &= static_cast<uint16_t>(~kNodeFail);
        Changed(true);
      }
    }
    if (sender != nullptr) ProcessGossip(m, sender);
    UpdateReachable();
  } else if (type == MessageType::kFail) {
    if (sender == nullptr) return;
    Node* failing = Lookup(m.node);
    if (failing != nullptr && !(failing->flags & (kNodeFail | kNodeMyself))) {
      spdlog::info("FAIL message received from {} about {}", sender->id, failing->id);
      failing->flags = static_cast<uint16_t>((failing->flags | kNodeFail) & ~kNodePfail);
      failing->fail_time_ms = now;
      UpdateReachable();
      Changed(true);
    }
  }
  // Every other type is ignored here, the job messages (types 5 to 16) included: they
  // are not heartbeats (no LEAVING copy, no PONG, no failure-state change), and the Bus
  // routes them to the job engine.
}

// PROTOCOL.md II 3.7.
void Membership::ProcessGossip(const Message& m, Node* sender) {
  for (const GossipEntry& g : m.gossip) {
    Node* node = Lookup(g.id);
    if (node != nullptr) {
      if (sender != nullptr && node != myself_) {
        if (g.flags & (kNodePfail | kNodeFail)) {
          auto it = std::find_if(node->fail_reports.begin(), node->fail_reports.end(),
                                 [&](const FailureReport& r) { return r.reporter == sender->id; });
          if (it != node->fail_reports.end()) {
            it->time_ms = clock_.MonotonicMs();
          } else {
            node->fail_reports.push_back({sender->id, clock_.MonotonicMs()});
          }
          MarkFailingIfNeeded(*node);
        } else {
          std::erase_if(node->fail_reports, [&](const FailureReport& r) { return r.reporter == sender->id; });
        }
      }
      // A node we cannot reach, seen elsewhere at another address: try that one.
      if (node != myself_ && IsFailing(*node) && !(g.flags & kNodeNoAddr) && !g.ip.empty() &&
          (g.ip != node->ip || g.port != node->port)) {
        StartHandshake(g.ip, g.port, g.bus_port);
      }
    } else if (sender != nullptr && !(g.flags & kNodeNoAddr) && !Blacklisted(g.id)) {
      StartHandshake(g.ip, g.port, g.bus_port);
    }
  }
}

size_t Membership::CountFailureReports(Node& node) {
  const int64_t oldest = clock_.MonotonicMs() - 2 * options_.node_timeout_ms;
  std::erase_if(node.fail_reports, [&](const FailureReport& r) { return r.time_ms < oldest; });
  return node.fail_reports.size();
}

// PROTOCOL.md II 4: PFAIL here plus reports from a majority (counting ourselves) → FAIL.
void Membership::MarkFailingIfNeeded(Node& node) {
  if (!(node.flags & kNodePfail) || (node.flags & kNodeFail)) return;
  const size_t quorum = static_cast<size_t>(size() / 2 + 1);
  if (CountFailureReports(node) + 1 < quorum) return;
  spdlog::warn("Marking node {} as failing (quorum reached: {} of {} nodes)", node.id, node.fail_reports.size() + 1,
               size());
  node.flags = static_cast<uint16_t>((node.flags | kNodeFail) & ~kNodePfail);
  node.fail_time_ms = clock_.MonotonicMs();
  Message fail = Header(MessageType::kFail);
  fail.node = node.id;
  Broadcast(fail);
  UpdateReachable();
  Changed(true);
}

// ------------------------------------------------------------------------ the cron

void Membership::Cron() {
  ++cron_runs_;
  const int64_t now = clock_.MonotonicMs();
  const int64_t timeout = options_.node_timeout_ms;
  const int64_t handshake_timeout = std::max(timeout, kMinHandshakeTimeoutMs);

  // Expire handshakes, (re)connect. Iterate over a copy: records may be deleted.
  std::vector<Node*> all;
  for (auto& n : nodes_) all.push_back(n.get());
  for (Node* n : all) {
    if (n == myself_ || (n->flags & kNodeNoAddr)) continue;
    if (IsHandshake(*n) && now - n->ctime_ms > handshake_timeout) {
      spdlog::debug("Handshake with {}:{} timed out: forgotten", n->ip, n->port);
      DeleteNode(*n);
      continue;
    }
    if (n->link != 0 || now < n->next_connect_ms) continue;
    const int64_t old_ping = n->ping_sent_ms;
    transport_.Connect(*n);
    if (n->link == 0) {
      if (n->ping_sent_ms == 0) n->ping_sent_ms = now;
      LinkClosed(*n, false);
      continue;
    }
    SendPing(*n, (n->flags & kNodeMeet) ? MessageType::kMeet : MessageType::kPing);
    if (old_ping != 0) n->ping_sent_ms = old_ping;
    n->flags &= static_cast<uint16_t>(~kNodeMeet);
    Changed(false);
  }

  // Once a second, ping the node with the oldest pong among 5 random ones.
  if (cron_runs_ % 10 == 0 && nodes_.size() > 1) {
    std::uniform_int_distribution<size_t> pick(0, nodes_.size() - 1);
    Node* oldest = nullptr;
    for (int i = 0; i < 5; ++i) {
      Node* n = nodes_[pick(rng_)].get();
      if (n == myself_ || IsHandshake(*n) || n->link == 0 || n->ping_sent_ms != 0) continue;
      if (oldest == nullptr || n->pong_received_ms < oldest->pong_received_ms) oldest = n;
    }
    if (oldest != nullptr) SendPing(*oldest, MessageType::kPing);
  }

  for (auto& p : nodes_) {
    Node& n = *p;
    if (&n == myself_ || (n.flags & (kNodeNoAddr | kNodeHandshake))) continue;
    // A link that stopped answering: drop it, the next run reconnects.
    if (n.link != 0 && now - n.link_ctime_ms > timeout && n.ping_sent_ms != 0 && now - n.ping_sent_ms > timeout / 2 &&
        now - n.pong_received_ms > timeout / 2) {
      transport_.DropLink(n);
      Changed(false);
    }
    if (n.link != 0 && n.ping_sent_ms == 0 && now - n.pong_received_ms > timeout / 2) {
      SendPing(n, MessageType::kPing);
      continue;
    }
    if (n.ping_sent_ms != 0 && now - n.ping_sent_ms > timeout && !IsFailing(n)) {
      spdlog::debug("Node {} has not answered for {} ms: possibly failing", n.id, now - n.ping_sent_ms);
      n.flags |= kNodePfail;
      Changed(false);
    }
  }
  UpdateReachable();
}

void Membership::LinkClosed(Node& node, bool established) {
  const int64_t now = clock_.MonotonicMs();
  Changed(false);  // the view shows whether a link exists (HELLO priority 5)
  if (established) {
    node.connect_failures = 0;
    node.next_connect_ms = 0;
    return;
  }
  node.connect_failures = std::min(node.connect_failures + 1, 10);
  const int64_t cap = std::max<int64_t>(kCronPeriodMs, std::min(kMaxReconnectDelayMs, options_.node_timeout_ms / 2));
  node.next_connect_ms = now + std::min(cap, kCronPeriodMs << (node.connect_failures - 1));
}

// ------------------------------------------------------------------------ commands

bool Membership::StartHandshake(std::string_view ip_text, uint16_t port, uint16_t bus_port) {
  const std::string ip = CanonicalIp(ip_text);
  if (ip.empty() || port == 0) return false;
  if (bus_port == 0) bus_port = DefaultBusPort(port);
  for (const auto& n : nodes_) {
    if (IsHandshake(*n) && n->ip == ip && n->port == port) return false;
  }
  Node& n = AddNode(RandomHex(kNodeIdSize), kNodeHandshake | kNodeMeet);
  n.ip = ip;
  n.port = port;
  n.bus_port = bus_port;
  Changed(true);
  return true;
}

Status Membership::Forget(std::string_view id) {
  if (id.size() != kNodeIdSize) return Status::Error("Invalid node identifier");
  Node* n = Lookup(id);
  if (n == nullptr) return Status::Error("Unknown node " + std::string(id));
  if (n == myself_) return Status::Error("I tried hard but I can't forget myself...");
  blacklist_[std::string(id)] = clock_.MonotonicMs() + kBlacklistTtlMs;
  spdlog::info("Forgetting node {} at {}:{} (CLUSTER FORGET; gossip about it is ignored for {} s)", n->id, n->ip,
               n->port, kBlacklistTtlMs / 1000);
  DeleteNode(*n);
  UpdateReachable();
  return Status::Ok();
}

void Membership::Reset(bool hard) {
  std::vector<Node*> others;
  for (auto& n : nodes_) {
    if (n.get() != myself_) others.push_back(n.get());
  }
  for (Node* n : others) DeleteNode(*n);
  if (hard) Rename(*myself_, RandomHex(kNodeIdSize));
  spdlog::info("Cluster reset ({}): {} other nodes forgotten{}", hard ? "hard" : "soft", others.size(),
               hard ? ", I'm now " + myself_->id : "");
  UpdateReachable();
  Changed(true);
}

bool Membership::SetLeaving(bool leaving) {
  const uint16_t flags = leaving ? (myself_->flags | kNodeLeaving) : (myself_->flags & ~kNodeLeaving);
  if (flags == myself_->flags) return false;
  spdlog::info(leaving ? "This node is now leaving the cluster (CLUSTER LEAVING yes)"
                       : "This node is no longer leaving the cluster (CLUSTER LEAVING no)");
  myself_->flags = static_cast<uint16_t>(flags);
  Changed(true);
  return true;
}

bool Membership::leaving() const { return (myself_->flags & kNodeLeaving) != 0; }

// ------------------------------------------------------------------------ rendering

int64_t Membership::ToUnixMs(int64_t monotonic_ms) const {
  if (monotonic_ms == 0) return 0;
  return monotonic_ms + (clock_.NowMs() - clock_.MonotonicMs());
}

std::string Membership::Line(const Node& n) const {
  std::string line = n.id;
  line += ' ';
  line += n.ip;
  line += ':';
  line += std::to_string(n.port);
  if (n.bus_port != 0 && n.bus_port != DefaultBusPort(n.port)) line += "@" + std::to_string(n.bus_port);
  line += ' ';
  bool any = false;
  for (const auto& [bit, name] : kFlagNames) {
    if (!(n.flags & bit)) continue;
    if (any) line += ',';
    line += name;
    any = true;
  }
  if (!any) line += "noflags";
  const bool self = &n == myself_;
  line += ' ';
  line += std::to_string(self ? 0 : ToUnixMs(n.ping_sent_ms));
  line += ' ';
  line += std::to_string(self ? 0 : ToUnixMs(n.pong_received_ms));
  line += (self || n.link != 0) ? " connected\n" : " disconnected\n";
  return line;
}

std::string Membership::NodesText() const {
  std::string text;
  for (const auto& n : nodes_) text += Line(*n);
  return text;
}

ClusterView Membership::View() const {
  ClusterView view;
  view.myself_id = myself_->id;
  view.leaving = leaving();
  view.size = size();
  for (const auto& n : nodes_) {
    view.nodes.push_back({n->id, n->ip, n->port, n->flags, n.get() == myself_ || n->link != 0});
  }
  for (const Node* n : reachable_) view.reachable.push_back(n->id);
  return view;
}

}  // namespace disque::cluster
