// Membership (PROTOCOL.md II 2-4, 11) over a simulated network with a fake clock:
// whole clusters join, fail, recover and forget without sockets or sleeping.

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "disque/cluster/membership.h"
#include "support/fake_clock.h"

namespace disque::cluster {
namespace {

constexpr int64_t kTimeout = 1000;

class Sim;

// One node's view of the network: calls go to the simulator.
class SimTransport final : public Transport {
 public:
  SimTransport(Sim& sim, int self) : sim_(sim), self_(self) {}
  void Connect(Node& node) override;
  void DropLink(Node& node) override;
  void Send(Node& node, const Message& message) override;
  void Reply(uint64_t link, const Message& message) override;

 private:
  Sim& sim_;
  int self_;
};

// N nodes on 127.0.0.1 (client port 7000 + i, bus port 17000 + i). A connection has one
// ID at both ends. Messages travel through a FIFO queue delivered after each step, never
// from inside a Transport call. A killed node's connections close; a paused node
// (SIGSTOP) keeps them, and what is sent to it waits until it resumes.
class Sim {
 public:
  struct Conn {
    int from;
    int to;
    Node* node;  // the `from` side's record that owns this outgoing link
  };
  struct Envelope {
    int to;
    uint64_t conn;
    bool reply;  // travels back to the connection's originator
    Message message;
  };
  struct Peer {
    std::unique_ptr<SimTransport> transport;
    std::unique_ptr<Membership> membership;
    bool alive = true;
    bool paused = false;
  };

  explicit Sim(int n) {
    for (int i = 0; i < n; ++i) {
      peers_.emplace_back();
      Boot(i, "");
    }
  }

  Membership& m(int i) { return *peers_[i].membership; }
  std::string id(int i) { return m(i).myself().id; }
  static uint16_t Port(int i) { return static_cast<uint16_t>(7000 + i); }
  testing::FakeClock& clock() { return clock_; }
  int size() const { return static_cast<int>(peers_.size()); }

  // Advances time in cron periods, running every live node's cron and delivering.
  void Step(int64_t ms) {
    for (int64_t t = 0; t < ms; t += kCronPeriodMs) {
      clock_.Advance(kCronPeriodMs);
      for (auto& p : peers_) {
        if (p.alive && !p.paused) p.membership->Cron();
      }
      Deliver();
    }
  }
  // Steps until `done` holds or `limit_ms` passes; true if it held.
  template <typename F>
  bool StepUntil(F done, int64_t limit_ms) {
    for (int64_t t = 0; t <= limit_ms; t += kCronPeriodMs) {
      if (done()) return true;
      Step(kCronPeriodMs);
    }
    return done();
  }

  void MeetChain() {
    for (int i = 0; i + 1 < size(); ++i) ASSERT_TRUE(m(i).StartHandshake("127.0.0.1", Port(i + 1)));
  }
  bool FullMesh() {
    for (int i = 0; i < size(); ++i) {
      if (!peers_[i].alive) continue;
      if (m(i).known() != static_cast<size_t>(size()) || m(i).reachable().size() != static_cast<size_t>(size() - 1)) {
        return false;
      }
    }
    return true;
  }

  void Kill(int i) {
    peers_[i].alive = false;
    for (auto it = conns_.begin(); it != conns_.end();) {
      const Conn c = it->second;
      if (c.from != i && c.to != i) {
        ++it;
        continue;
      }
      it = conns_.erase(it);
      if (c.to == i && c.node->link != 0) {
        c.node->link = 0;
        m(c.from).LinkClosed(*c.node, true);
      }
    }
  }
  // Starts node i again from its nodes.conf text (same address, same identity).
  void Restart(int i) {
    const std::string conf = m(i).ConfigText();
    Boot(i, conf);
  }
  void Pause(int i) { peers_[i].paused = true; }
  void Resume(int i) {
    peers_[i].paused = false;
    std::deque<Envelope> held;
    held.swap(held_);
    for (auto& e : held) queue_.push_back(std::move(e));
    Deliver();
  }

  // Transport implementation.
  void Connect(int self, Node& node) {
    for (int i = 0; i < size(); ++i) {
      if (!peers_[i].alive || node.ip != "127.0.0.1" || node.bus_port != Port(i) + 10000) continue;
      const uint64_t id = next_conn_++;
      conns_[id] = Conn{self, i, &node};
      node.link = id;
      node.link_ctime_ms = clock_.MonotonicMs();
      return;
    }
  }
  void Drop(Node& node) {
    conns_.erase(node.link);
    node.link = 0;
  }
  void Send(Node& node, const Message& message) {
    auto it = conns_.find(node.link);
    if (it != conns_.end()) queue_.push_back({it->second.to, it->first, false, message});
    ++sent_;
    max_gossip_ = std::max(max_gossip_, message.gossip.size());
  }
  void Reply(uint64_t link, const Message& message) {
    auto it = conns_.find(link);
    if (it != conns_.end()) queue_.push_back({it->second.from, it->first, true, message});
    max_gossip_ = std::max(max_gossip_, message.gossip.size());
  }

  size_t max_gossip() const { return max_gossip_; }

 private:
  void Boot(int i, const std::string& conf) {
    Peer& p = peers_[i];
    p.transport = std::make_unique<SimTransport>(*this, i);
    p.membership = std::make_unique<Membership>(clock_, *p.transport,
                                                MembershipOptions{kTimeout, "", Port(i), 0}, 1000 + i);
    if (conf.empty()) {
      p.membership->CreateMyself();
    } else {
      ASSERT_TRUE(p.membership->Load(conf).ok());
    }
    p.alive = true;
    p.paused = false;
  }

  void Deliver() {
    while (!queue_.empty()) {
      Envelope e = std::move(queue_.front());
      queue_.pop_front();
      Peer& p = peers_[e.to];
      if (!p.alive) continue;
      if (p.paused) {
        held_.push_back(std::move(e));
        continue;
      }
      auto it = conns_.find(e.conn);
      if (it == conns_.end()) continue;  // the connection closed meanwhile
      const Conn c = it->second;
      Origin from{e.conn, e.reply ? c.node : nullptr, "127.0.0.1", "127.0.0.1"};
      p.membership->Receive(e.message, from);
    }
  }

  testing::FakeClock clock_;
  std::vector<Peer> peers_;
  std::map<uint64_t, Conn> conns_;
  std::deque<Envelope> queue_;
  std::deque<Envelope> held_;
  uint64_t next_conn_ = 1;
  uint64_t sent_ = 0;
  size_t max_gossip_ = 0;
};

void SimTransport::Connect(Node& node) { sim_.Connect(self_, node); }
void SimTransport::DropLink(Node& node) { sim_.Drop(node); }
void SimTransport::Send(Node& node, const Message& message) { sim_.Send(node, message); }
void SimTransport::Reply(uint64_t link, const Message& message) { sim_.Reply(link, message); }

// For a Membership that only loads and renders.
class NullTransport final : public Transport {
 public:
  void Connect(Node&) override {}
  void DropLink(Node& node) override { node.link = 0; }
  void Send(Node&, const Message&) override {}
  void Reply(uint64_t, const Message&) override {}
};

uint16_t FlagsOf(Membership& observer, const std::string& id) {
  const Node* n = observer.Find(id);
  return n == nullptr ? 0xffff : n->flags;
}

TEST(ClusterFailureDetectorTest, ChainOfMeetsBecomesAFullMeshThroughGossip) {
  Sim sim(7);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 10000));
  std::vector<std::string> ids;
  for (int i = 0; i < sim.size(); ++i) {
    ids.push_back(sim.id(i));
    EXPECT_EQ(sim.m(i).size(), 7);
    for (const auto& e : sim.m(i).View().nodes) EXPECT_FALSE(e.flags & kNodeHandshake);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  // PROTOCOL.md II 3.6: max(3, known/10) entries, at most known - 2.
  EXPECT_LE(sim.max_gossip(), 5u);
  EXPECT_GE(sim.max_gossip(), 1u);
}

TEST(ClusterFailureDetectorTest, KilledNodesArePfailAfterTheTimeoutThenFailThenClearedOnRestart) {
  Sim sim(7);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 10000));
  const std::string a = sim.id(5), b = sim.id(6);
  sim.Kill(5);
  sim.Kill(6);
  // Nobody flags them before one node timeout has passed without a pong.
  sim.Step(kTimeout - 2 * kCronPeriodMs);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(FlagsOf(sim.m(i), a) & (kNodePfail | kNodeFail)) << i;
  }
  // Within a few timeouts every survivor agrees on FAIL (a majority of 7 reports).
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        for (int i = 0; i < 5; ++i) {
          if (!(FlagsOf(sim.m(i), a) & kNodeFail) || !(FlagsOf(sim.m(i), b) & kNodeFail)) return false;
        }
        return true;
      },
      4 * kTimeout));
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(FlagsOf(sim.m(i), a) & kNodePfail);  // FAIL replaces PFAIL
    EXPECT_EQ(sim.m(i).reachable().size(), 4u);
    EXPECT_EQ(sim.m(i).size(), 7);  // failing nodes still count
    for (const auto& e : sim.m(i).View().nodes) {
      if (e.id == a) {
        EXPECT_EQ(ClusterView::Priority(e), 100);
      }
    }
  }
  sim.Restart(5);
  sim.Restart(6);
  EXPECT_EQ(sim.id(5), a);
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 3 * kTimeout));
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(FlagsOf(sim.m(i), a) & (kNodePfail | kNodeFail));
}

TEST(ClusterFailureDetectorTest, TwoNodesCanNeverReachTheFailQuorum) {
  Sim sim(2);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  const std::string dead = sim.id(1);
  sim.Kill(1);
  sim.Step(10 * kTimeout);
  EXPECT_EQ(FlagsOf(sim.m(0), dead), kNodePfail);
  EXPECT_TRUE(sim.m(0).reachable().empty());
}

TEST(ClusterFailureDetectorTest, PausedNodeIsFlaggedAndRecoversWhenResumed) {
  Sim sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  const std::string paused = sim.id(2);
  sim.Pause(2);
  ASSERT_TRUE(sim.StepUntil([&] { return (FlagsOf(sim.m(0), paused) & kNodeFail) && (FlagsOf(sim.m(1), paused) & kNodeFail); },
                            5 * kTimeout));
  sim.Resume(2);
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 3 * kTimeout));
  EXPECT_EQ(FlagsOf(sim.m(0), paused), 0);
}

TEST(ClusterFailureDetectorTest, ForgottenNodeIsNotReaddedByGossipUntilTheBanExpires) {
  Sim sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  EXPECT_EQ(sim.m(0).Forget("abc").message(), "Invalid node identifier");
  EXPECT_EQ(sim.m(0).Forget(std::string(40, 'f')).message(), "Unknown node " + std::string(40, 'f'));
  EXPECT_EQ(sim.m(0).Forget(sim.id(0)).message(), "I tried hard but I can't forget myself...");
  const std::string gone = sim.id(2);
  sim.m(0).TakeSave();
  ASSERT_TRUE(sim.m(0).Forget(gone).ok());
  EXPECT_TRUE(sim.m(0).TakeSave());
  EXPECT_EQ(sim.m(0).Find(gone), nullptr);
  // Node 1 keeps gossiping about it, and node 2 keeps pinging node 0: during the ban
  // node 0 does not add it back.
  sim.Step(kBlacklistTtlMs - 2000);
  EXPECT_EQ(sim.m(0).Find(gone), nullptr);
  ASSERT_TRUE(sim.StepUntil([&] { return sim.m(0).Find(gone) != nullptr; }, 10000));
}

TEST(ClusterFailureDetectorTest, LeavingSpreadsWithHeartbeatsAndClears) {
  Sim sim(4);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  EXPECT_TRUE(sim.m(3).SetLeaving(true));
  EXPECT_FALSE(sim.m(3).SetLeaving(true));
  const std::string leaving = sim.id(3);
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        for (int i = 0; i < 3; ++i) {
          if (!(FlagsOf(sim.m(i), leaving) & kNodeLeaving) || sim.m(i).reachable().size() != 2) return false;
        }
        return true;
      },
      2 * kTimeout));
  EXPECT_TRUE(sim.m(3).SetLeaving(false));
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 2 * kTimeout));
}

TEST(ClusterFailureDetectorTest, HandshakeToNobodyExpiresAndIsNotStartedTwice) {
  Sim sim(1);
  EXPECT_FALSE(sim.m(0).StartHandshake("localhost", 7777));
  EXPECT_FALSE(sim.m(0).StartHandshake("1.2.3", 7777));
  EXPECT_FALSE(sim.m(0).StartHandshake("", 7777));
  EXPECT_TRUE(sim.m(0).StartHandshake("127.0.0.1", 7777));
  EXPECT_FALSE(sim.m(0).StartHandshake("127.0.0.1", 7777));
  EXPECT_EQ(sim.m(0).known(), 2u);
  EXPECT_EQ(sim.m(0).size(), 1);  // handshakes do not count
  sim.Step(std::max<int64_t>(kTimeout, kMinHandshakeTimeoutMs) - kCronPeriodMs);
  EXPECT_EQ(sim.m(0).known(), 2u);
  sim.Step(2 * kCronPeriodMs);
  EXPECT_EQ(sim.m(0).known(), 1u);
}

TEST(ClusterFailureDetectorTest, ResetForgetsEveryoneAndHardTakesANewId) {
  Sim sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  const std::string before = sim.id(0);
  sim.m(0).Reset(false);
  EXPECT_EQ(sim.m(0).known(), 1u);
  EXPECT_EQ(sim.id(0), before);
  EXPECT_TRUE(sim.m(0).TakeSave());
  sim.m(0).Reset(true);
  EXPECT_NE(sim.id(0), before);
  EXPECT_EQ(sim.id(0).size(), 40u);
}

TEST(ClusterFailureDetectorTest, NodesConfRoundTripsAndRejectsCorruption) {
  Sim sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  sim.m(0).SetLeaving(true);
  const std::string conf = sim.m(0).ConfigText();
  EXPECT_EQ(std::count(conf.begin(), conf.end(), '\n'), 3);
  EXPECT_NE(conf.find(sim.id(0) + " 127.0.0.1:7000 myself,leaving 0 0 connected\n"), std::string::npos) << conf;

  testing::FakeClock clock;
  NullTransport none;
  Membership loaded(clock, none, MembershipOptions{kTimeout, "", 7000, 0}, 1);
  ASSERT_TRUE(loaded.Load("vars currentEpoch 0\n" + conf).ok());
  EXPECT_EQ(loaded.myself().id, sim.id(0));
  EXPECT_TRUE(loaded.leaving());
  EXPECT_EQ(loaded.known(), 3u);

  const std::string me = std::string(40, 'a') + " 127.0.0.1:7000 myself 0 0 connected\n";
  const std::string peer = std::string(40, 'b') + " 127.0.0.1:7001@9999 fail 5 6 disconnected\n";
  auto load = [&](const std::string& text) {
    Membership fresh(clock, none, MembershipOptions{kTimeout, "", 7000, 0}, 1);
    Status st = fresh.Load(text);
    std::string round = st.ok() ? fresh.ConfigText() : std::string();
    return std::make_pair(std::string(st.message()), round);
  };
  auto [ok_msg, round] = load(me + peer);
  EXPECT_EQ(ok_msg, "");
  EXPECT_NE(round.find("127.0.0.1:7001@9999 fail "), std::string::npos) << round;
  const std::string corrupted = "Unrecoverable error: corrupted cluster config file.";
  EXPECT_EQ(load(peer).first, corrupted);                                            // no myself
  EXPECT_EQ(load(me + me).first, corrupted);                                         // two myself lines
  EXPECT_EQ(load(std::string(39, 'a') + " 127.0.0.1:7000 myself 0 0 connected\n").first, corrupted);
  EXPECT_EQ(load(std::string(40, 'a') + " 127.0.0.1:7000 myself 0 0\n").first, corrupted);
  EXPECT_EQ(load(std::string(40, 'a') + " 127.0.0.1:x myself 0 0 connected\n").first, corrupted);
  EXPECT_NE(load(std::string(40, 'a') + " 127.0.0.1:7000 myself,bogus 0 0 connected\n").first, "");
}

TEST(ClusterFailureDetectorTest, NodeReplacedAtItsAddressIsMarkedNoaddr) {
  Sim sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000));
  const std::string old_id = sim.id(2);
  sim.Kill(2);
  sim.Restart(2);
  sim.m(2).Reset(true);  // a new identity at the same address, knowing nobody
  ASSERT_TRUE(sim.StepUntil([&] { return FlagsOf(sim.m(0), old_id) & kNodeNoAddr; }, 3 * kTimeout));
  const Node* old_record = sim.m(0).Find(old_id);
  ASSERT_NE(old_record, nullptr);
  EXPECT_TRUE(old_record->ip.empty());
  EXPECT_NE(sim.m(0).NodesText().find(old_id + " :0 noaddr"), std::string::npos) << sim.m(0).NodesText();
}

TEST(ClusterFailureDetectorTest, HelloPriorities) {
  ClusterView::Entry e;
  e.linked = true;
  EXPECT_EQ(ClusterView::Priority(e), 1);
  e.linked = false;
  EXPECT_EQ(ClusterView::Priority(e), 5);
  e.flags = kNodePfail;
  EXPECT_EQ(ClusterView::Priority(e), 10);
  e.flags = kNodeFail;
  EXPECT_EQ(ClusterView::Priority(e), 100);
  e.flags = kNodeLeaving;
  e.linked = true;
  EXPECT_EQ(ClusterView::Priority(e), 100);
}

}  // namespace
}  // namespace disque::cluster
