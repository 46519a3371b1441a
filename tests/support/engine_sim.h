#pragma once

// A simulated cluster of engines for unit tests: N engines on one FakeClock and one
// NodeRegistry, exchanging their outboxes over an in-memory network, plus the test
// doubles of the clients the server layer would park (engine_cluster_test,
// engine_journal_test).

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "disque/engine/engine.h"
#include "support/expect_in_range.h"
#include "support/fake_clock.h"

namespace disque::engine {

inline constexpr SipKey kKey = {0x1111222233334444ULL, 0x5555666677778888ULL};

inline std::string NodeName(int i) {
  std::string id(40, '0');
  const std::string hex = "0123456789abcdef";
  for (int k = 0; k < 40; ++k) id[k] = hex[(i * 7 + k * 13 + 5) % 16];
  return id;
}

class TestReplWaiter final : public ReplWaiter {
 public:
  bool Claim() override {
    if (claimed) return false;
    claimed = true;
    return true;
  }
  void Replicated(const JobId& id) override { replicated = id.ToString(); }
  void Fail(const Status& status) override { error = std::string(CodePrefix(status.code())) + " " + std::string(status.message()); }

  bool claimed = false;
  std::string replicated;
  std::string error;
};

class TestWaiter final : public Waiter {
 public:
  bool Claim() override {
    if (claimed) return false;
    claimed = true;
    return true;
  }
  void Deliver(const Job* job) override { got = job ? job->id.ToString() : "(null)"; }
  void Fail(const Status& status) override { error = std::string(status.message()); }
  bool live() const override { return !claimed; }

  bool claimed = false;
  std::string got;
  std::string error;
};

// N engines on one clock. Deliver() moves every outbox message to its recipients until
// the network is quiet; messages to or from a cut node are dropped.
class SimCluster {
 public:
  explicit SimCluster(int n) {
    for (int i = 0; i < n; ++i) {
      engines_.push_back(std::make_unique<Engine>(clock_, NodeName(i), kKey, 1000 + i, nullptr, &registry_));
      index_.push_back(registry_.Intern(NodeName(i)));
    }
    Publish();
  }

  // Rebuilds every node's ClusterState: a node that is cut is unreachable for the others
  // (it is still a member), and it sees nobody.
  void Publish() {
    const int n = size();
    for (int i = 0; i < n; ++i) {
      ClusterState st;
      st.self = index_[i];
      st.size = n;
      st.known = n;
      st.leaving = leaving_.contains(i);
      for (int j = 0; j < n; ++j) {
        st.members.push_back(index_[j]);
        if (j == i || cut_.contains(i) || cut_.contains(j) || leaving_.contains(j)) continue;
        st.reachable.push_back(index_[j]);
        st.targets.push_back(index_[j]);
      }
      engines_[i]->SetCluster(st);
    }
  }

  int size() const { return static_cast<int>(engines_.size()); }
  Engine& operator[](int i) { return *engines_[i]; }
  testing::FakeClock& clock() { return clock_; }
  uint32_t index(int i) const { return index_[i]; }

  void Cut(int i) {
    cut_.insert(i);
    Publish();
  }
  void Heal(int i) {
    cut_.erase(i);
    Publish();
  }
  // Node i is cut off, but node `observer` has not noticed yet (no failure detected):
  // it still counts i as reachable and picks it as a replica target.
  void CutUnnoticed(int i, int observer) {
    Cut(i);
    ClusterState st = engines_[observer]->cluster();
    st.targets.push_back(index_[i]);
    st.reachable.push_back(index_[i]);
    engines_[observer]->SetCluster(st);
  }
  void SetLeaving(int i) {
    leaving_.insert(i);
    Publish();
  }

  // Node i's outbox, taken (to inspect, replay or drop).
  std::vector<JobMessage> Take(int i) { return engines_[i]->TakeOutbox(); }
  // Delivers one message sent by node `from` to its recipients, except to or from a
  // cut node (the message is lost); returns how many received it.
  int Send(int from, const JobMessage& m) {
    ++sent_[m.type];
    if (cut_.contains(from)) return 0;
    int delivered = 0;
    for (int j = 0; j < size(); ++j) {
      if (j == from || cut_.contains(j)) continue;
      const bool named = std::find(m.to.begin(), m.to.end(), index_[j]) != m.to.end();
      if (!m.to_all && !named) continue;
      JobMessage in = m;
      in.to.clear();
      in.to_all = false;
      in.sender = index_[from];
      engines_[j]->Receive(in);
      ++delivered;
    }
    return delivered;
  }
  // Delivers node i's outbox; returns the messages it had.
  std::vector<JobMessage> Step(int i) {
    std::vector<JobMessage> out = Take(i);
    for (const JobMessage& m : out) Send(i, m);
    return out;
  }
  // Delivers messages until none is left; returns how many were delivered.
  int Deliver() {
    int delivered = 0;
    for (int round = 0; round < 1000; ++round) {
      bool any = false;
      for (int i = 0; i < size(); ++i) {
        for (const JobMessage& m : Take(i)) {
          any = true;
          delivered += Send(i, m);
        }
      }
      if (!any) break;
    }
    return delivered;
  }

  // Advances time in steps, running every engine's timers and cron, delivering as it goes.
  void Run(int64_t ms, int64_t step = 10) {
    for (int64_t t = 0; t < ms; t += step) {
      clock_.Advance(step);
      for (auto& e : engines_) {
        e->ProcessTimers();
        if ((clock_.NowMs() / step) % 10 == 0) e->Cron();  // about every 100 ms
      }
      Deliver();
    }
  }

  // Where the job is, by state ("" when the node does not have it).
  std::vector<std::string> States(const std::string& id) {
    std::vector<std::string> out;
    for (auto& e : engines_) {
      const Job* job = e->Find(id);
      out.emplace_back(job ? std::string(JobStateName(job->state)) : "");
    }
    return out;
  }
  int CountState(const std::string& id, JobState state) {
    int n = 0;
    for (auto& e : engines_) {
      const Job* job = e->Find(id);
      n += job != nullptr && job->state == state;
    }
    return n;
  }
  int Holders(const std::string& id) {
    int n = 0;
    for (auto& e : engines_) n += e->Find(id) != nullptr;
    return n;
  }
  int sent(JobMsg type) { return sent_[type]; }

 private:
  testing::FakeClock clock_;
  NodeRegistry registry_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<uint32_t> index_;
  std::set<int> cut_;
  std::set<int> leaving_;
  std::map<JobMsg, int> sent_;
};

// ADDJOB arguments for queue "q", body "body".
inline AddJobArgs Args(uint16_t repl, uint32_t retry = 10, int64_t ttl = 3600) {
  AddJobArgs a;
  a.queue = "q";
  a.body = "body";
  a.repl = repl;
  a.retry = retry;
  a.ttl = ttl;
  return a;
}

// Adds a synchronous job on node `at` and returns its ID.
inline std::string AddSync(SimCluster& c, int at, const AddJobArgs& args, std::shared_ptr<TestReplWaiter> waiter) {
  JobId id;
  Result<const Job*> job = c[at].AddJob(args, std::move(waiter), &id);
  EXPECT_TRUE(job.ok());
  return id.ToString();
}

}  // namespace disque::engine
