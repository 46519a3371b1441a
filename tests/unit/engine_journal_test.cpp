// Unit tests for the engine's journal hooks (engine/journal.h) and the AOF load rules of
// Engine::LoadJob / UnloadJob (PROTOCOL.md 8.1 and 8.2), with a FakeClock. A recording
// Journal decodes what the engine reports; a small simulated network of engines covers
// REPLJOB / GOTJOB / SETACK / DELJOB / YOURJOBS.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "disque/engine/engine.h"
#include "disque/engine/job_codec.h"
#include "support/engine_sim.h"
#include "support/fake_clock.h"

namespace disque::engine {
namespace {

constexpr std::string_view kNodeId = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
constexpr std::string_view kOtherNodeId = "ffeeddccbbaa99887766554433221100ffeeddcc";
constexpr int64_t kT0 = 1767225600000;  // FakeClock's default start, a whole second
constexpr int64_t kJitterLow = -250;
constexpr int64_t kJitterHigh = 249;

// ------------------------------------------------------------------ the recording journal

struct JournalEvent {
  enum Kind { kLoad, kDel } kind;
  std::string id;
  JobRecord record;         // kLoad: the decoded payload
  std::string serialized;   // kLoad: the payload as given
};

class RecordingJournal final : public Journal {
 public:
  void LoadJob(std::string_view serialized) override {
    size_t consumed = 0;
    Result<JobRecord> r = ParseJobRecord(serialized, &consumed);
    if (!r.ok()) {
      ADD_FAILURE() << "LoadJob payload does not parse: " << r.status().message();
      return;
    }
    EXPECT_EQ(consumed, serialized.size()) << "LoadJob payload has trailing bytes";
    JournalEvent e{JournalEvent::kLoad, r->id, *r, std::string(serialized)};
    events.push_back(std::move(e));
  }
  void DelJob(const JobId& id) override { events.push_back({JournalEvent::kDel, id.ToString(), {}, {}}); }

  std::vector<JournalEvent> events;

  size_t loads() const {
    return static_cast<size_t>(std::count_if(events.begin(), events.end(), [](const auto& e) { return e.kind == JournalEvent::kLoad; }));
  }
  size_t dels() const { return events.size() - loads(); }
  // The kinds in order, as "L:<id>" / "D:<id>".
  std::vector<std::string> Trace() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back((e.kind == JournalEvent::kLoad ? "L:" : "D:") + e.id);
    return out;
  }
  void Clear() { events.clear(); }
};

std::string L(const std::string& id) { return "L:" + id; }
std::string D(const std::string& id) { return "D:" + id; }

// ------------------------------------------------------------------ one engine

class JournalTest : public ::testing::Test {
 protected:
  JournalTest() { engine_.set_journal(&journal_); }

  std::string Add(std::string_view queue, uint32_t retry = 10, uint32_t delay = 0, int64_t ttl = 3600,
                  std::string_view body = "body") {
    AddJobArgs args;
    args.queue = queue;
    args.body = body;
    args.retry = retry;
    args.delay = delay;
    args.ttl = ttl;
    Result<const Job*> r = engine_.AddJob(args);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() && *r != nullptr ? (*r)->id.ToString() : std::string();
  }
  std::vector<std::string> Fetch(std::string_view queue, size_t max = 1) {
    std::vector<const Job*> out;
    engine_.Fetch(queue, max, out);
    std::vector<std::string> ids;
    for (const Job* j : out) ids.push_back(j->id.ToString());
    return ids;
  }
  std::optional<JobState> StateOf(const std::string& id) const {
    const Job* job = engine_.Find(id);
    if (job == nullptr) return std::nullopt;
    return job->state;
  }

  testing::FakeClock clock_;
  RecordingJournal journal_;
  Engine engine_{clock_, kNodeId, kKey, 42};
};

TEST_F(JournalTest, AddJobJournalsOneLoadJobInItsQueuedState) {
  const std::string id = Add("q", 10, 0, 100, "hello");
  ASSERT_EQ(journal_.Trace(), std::vector<std::string>{L(id)});
  const JobRecord& r = journal_.events[0].record;
  const Job& job = *engine_.Find(id);
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.state, JobState::kQueued);
  EXPECT_EQ(r.etime, static_cast<uint32_t>(kT0 / 1000 + 100)) << "absolute unix seconds";
  EXPECT_EQ(r.etime, job.etime);
  EXPECT_EQ(r.ctime, job.ctime);
  EXPECT_EQ(r.flags, job.flags & kJobSerializedFlags);
  EXPECT_EQ(r.flags, kJobBcastQueued | kJobWillQueue) << "queued once, WILLQUEUE pending, not delivered";
  EXPECT_EQ(r.repl, 1);
  EXPECT_EQ(r.delay, 0u);
  EXPECT_EQ(r.retry, 10u);
  EXPECT_EQ(r.nacks, 0);
  EXPECT_EQ(r.additional_deliveries, 0);
  EXPECT_EQ(r.queue, "q");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.nodes, std::vector<std::string>{std::string(kNodeId)});
  EXPECT_EQ(r.gc_retry, 0);
  // The payload is exactly what SerializeForAof gives for the job as it is.
  std::string again;
  engine_.SerializeForAof(job, again);
  EXPECT_EQ(journal_.events[0].serialized, again);
}

TEST_F(JournalTest, AddJobWithDelayJournalsAnActiveJobAndItsLaterQueueingNothing) {
  const std::string id = Add("q", 10, 5, 100);
  ASSERT_EQ(journal_.Trace(), std::vector<std::string>{L(id)});
  const JobRecord& r = journal_.events[0].record;
  EXPECT_EQ(r.state, JobState::kActive);
  EXPECT_EQ(r.flags, 0) << "not queued yet, nothing delivered";
  EXPECT_EQ(r.delay, 5u);
  EXPECT_EQ(r.etime, static_cast<uint32_t>(kT0 / 1000 + 100));
  clock_.Advance(5000);
  engine_.ProcessTimers();
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(journal_.events.size(), 1u) << "queueing is not journaled";
}

// A queue name too long for the job header's 16-bit length (job.h) and a delay (kept
// after the body) reach the LOADJOB record as they were given, and a job loaded from that
// record serializes to the same bytes.
TEST_F(JournalTest, ALongQueueNameAndADelayRoundTripThroughTheRecord) {
  std::string name(70000, 'x');
  name.front() = 'A';
  name.back() = 'Z';
  const std::string queued = Add(name, 10, 0, 100, "queued body");
  const std::string delayed = Add(name, 10, 5, 100, "delayed body");
  ASSERT_EQ(journal_.Trace(), (std::vector<std::string>{L(queued), L(delayed)}));
  const JournalEvent& q = journal_.events[0];
  const JournalEvent& d = journal_.events[1];
  EXPECT_EQ(q.record.queue, name);
  EXPECT_EQ(q.record.body, "queued body");
  EXPECT_EQ(q.record.delay, 0u);
  EXPECT_EQ(d.record.queue, name);
  EXPECT_EQ(d.record.body, "delayed body");
  EXPECT_EQ(d.record.delay, 5u);
  std::string again;
  engine_.SerializeForAof(*engine_.Find(delayed), again);
  EXPECT_EQ(again, d.serialized);

  Engine loaded{clock_, kNodeId, kKey, 7};
  ASSERT_TRUE(loaded.LoadJob(q.record, true));
  ASSERT_TRUE(loaded.LoadJob(d.record, true));
  for (const JournalEvent* e : {&q, &d}) {
    const Job* job = loaded.Find(e->id);
    ASSERT_NE(job, nullptr);
    EXPECT_EQ(job->queue(), name);
    EXPECT_EQ(job->body(), e->record.body);
    EXPECT_EQ(job->delay(), e->record.delay);
  }
  again.clear();
  loaded.SerializeForAof(*loaded.Find(queued), again);
  EXPECT_EQ(again, q.serialized) << "restored into its queue as it was";
  // The delayed job is active: loading schedules its requeue (WILLQUEUE), the one
  // difference from its record.
  again.clear();
  loaded.SerializeForAof(*loaded.Find(delayed), again);
  Result<JobRecord> parsed = ParseJobRecord(again);
  ASSERT_TRUE(parsed.ok());
  JobRecord r = *parsed;
  EXPECT_EQ(r.flags, kJobWillQueue);
  r.flags = d.record.flags;
  EXPECT_EQ(r, d.record);
}

TEST_F(JournalTest, AtMostOnceAddJobJournalsItsFlags) {
  const std::string id = Add("q", 0, 0, 60);
  ASSERT_EQ(journal_.events.size(), 1u);
  const JobRecord& r = journal_.events[0].record;
  EXPECT_EQ(r.state, JobState::kQueued);
  EXPECT_EQ(r.retry, 0u);
  EXPECT_EQ(r.flags, kJobBcastQueued);
  EXPECT_EQ(r.id, id);
}

TEST_F(JournalTest, AddJobServedAtOnceToABlockedClientJournalsItActiveAndDelivered) {
  auto waiter = std::make_shared<TestWaiter>();
  engine_.Block("q", waiter);
  const std::string id = Add("q");
  EXPECT_EQ(waiter->got, id);
  ASSERT_EQ(journal_.Trace(), std::vector<std::string>{L(id)});
  const JobRecord& r = journal_.events[0].record;
  EXPECT_EQ(r.state, JobState::kActive);
  EXPECT_TRUE(r.flags & kJobDelivered) << "the delivered bit is journaled as the job has it";
  EXPECT_EQ(r.flags, engine_.Find(id)->flags & kJobSerializedFlags);
}

TEST_F(JournalTest, AckJournalsOneDelJob) {
  const std::string id = Add("q");
  journal_.Clear();
  EXPECT_TRUE(engine_.Ack(id));
  EXPECT_EQ(journal_.Trace(), std::vector<std::string>{D(id)});
  EXPECT_FALSE(engine_.Ack(id));
  EXPECT_EQ(journal_.events.size(), 1u) << "an unknown or acked job journals nothing more";
}

TEST_F(JournalTest, AckOfADeliveredJobJournalsOneDelJob) {
  const std::string id = Add("q");
  ASSERT_EQ(Fetch("q"), std::vector<std::string>{id});
  journal_.Clear();
  EXPECT_TRUE(engine_.Ack(id));
  EXPECT_EQ(journal_.Trace(), std::vector<std::string>{D(id)});
}

TEST_F(JournalTest, DeleteOfAQueuedOrActiveJobJournalsDelJob) {
  const std::string queued = Add("q");
  const std::string delayed = Add("q", 10, 30);
  const std::string fetched = Add("q2");
  ASSERT_EQ(Fetch("q2"), std::vector<std::string>{fetched});
  ASSERT_EQ(StateOf(delayed), JobState::kActive);
  journal_.Clear();
  EXPECT_TRUE(engine_.Delete(queued));
  EXPECT_TRUE(engine_.Delete(delayed));
  EXPECT_TRUE(engine_.Delete(fetched));
  EXPECT_EQ(journal_.Trace(), (std::vector<std::string>{D(queued), D(delayed), D(fetched)}));
  EXPECT_FALSE(engine_.Delete(queued));
  EXPECT_EQ(journal_.events.size(), 3u);
}

TEST_F(JournalTest, FastAckJournalsDelJob) {
  const std::string id = Add("q");
  journal_.Clear();
  EXPECT_TRUE(engine_.FastAck(id));
  EXPECT_EQ(journal_.Trace(), std::vector<std::string>{D(id)});
  EXPECT_FALSE(engine_.FastAck(id));
  EXPECT_EQ(journal_.events.size(), 1u);
}

TEST_F(JournalTest, TtlExpiryJournalsDelJob) {
  const std::string queued = Add("q", 2, 0, 5);
  const std::string fetched = Add("q2", 2, 0, 5);
  ASSERT_EQ(Fetch("q2"), std::vector<std::string>{fetched});
  const std::string later = Add("q3", 10, 0, 100);
  journal_.Clear();
  clock_.Advance(4000);
  engine_.ProcessTimers();
  EXPECT_TRUE(journal_.events.empty()) << "requeues are not journaled";
  clock_.Advance(2001);
  engine_.ProcessTimers();
  std::set<std::string> got;
  for (const auto& e : journal_.events) {
    EXPECT_EQ(e.kind, JournalEvent::kDel);
    got.insert(e.id);
  }
  EXPECT_EQ(journal_.events.size(), 2u);
  EXPECT_EQ(got, (std::set<std::string>{queued, fetched}));
  EXPECT_NE(engine_.Find(later), nullptr);
}

TEST_F(JournalTest, FlushJournalsDelJobForEachLiveJobOnly) {
  const std::string a = Add("q");
  const std::string b = Add("q", 10, 20);
  const std::string c = Add("q2");
  ASSERT_EQ(Fetch("q2"), std::vector<std::string>{c});
  // A job in wait-repl (REPLICATE 2 with no other node): not live, not journaled.
  AddJobArgs args;
  args.queue = "q";
  args.body = "w";
  args.repl = 2;
  args.retry = 10;
  auto repl_waiter = std::make_shared<TestReplWaiter>();
  JobId wid;
  ASSERT_TRUE(engine_.AddJob(args, repl_waiter, &wid).ok());
  ASSERT_EQ(StateOf(wid.ToString()), JobState::kWaitRepl);
  journal_.Clear();
  engine_.Flush();
  std::multiset<std::string> got;
  for (const auto& e : journal_.events) {
    EXPECT_EQ(e.kind, JournalEvent::kDel);
    got.insert(e.id);
  }
  EXPECT_EQ(got, (std::multiset<std::string>{a, b, c}));
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_NE(repl_waiter->error, "");
}

TEST_F(JournalTest, ReadsRequeuesAndCounterChangesJournalNothing) {
  const std::string a = Add("q", 5);
  const std::string b = Add("q", 5);
  journal_.Clear();
  ASSERT_EQ(Fetch("q"), std::vector<std::string>{a});         // GETJOB
  EXPECT_TRUE(engine_.Requeue(a, true));                       // NACK
  ASSERT_EQ(Fetch("q"), std::vector<std::string>{a});
  EXPECT_TRUE(engine_.Requeue(a, false));                      // ENQUEUE
  EXPECT_TRUE(engine_.Dequeue(b));                             // DEQUEUE
  EXPECT_TRUE(engine_.Working(b).ok());                        // WORKING
  std::vector<const Job*> peek;
  engine_.Peek("q", 10, peek);                                 // QPEEK
  engine_.Pause("q", kPauseIn);                                // PAUSE
  engine_.Pause("q", 0);
  for (int i = 0; i < 30; ++i) {                               // requeues by the scheduler
    clock_.Advance(1000);
    engine_.ProcessTimers();
  }
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.Find(a)->nacks, 1);
  EXPECT_TRUE(journal_.events.empty()) << journal_.Trace().size() << " events";
}

TEST_F(JournalTest, MemoryEvictionJournalsDelJob) {
  const std::string id = Add("q", 0);  // at most once, delivered: evictable
  ASSERT_EQ(Fetch("q"), std::vector<std::string>{id});
  journal_.Clear();
  EXPECT_GT(engine_.EvictForMemory(1 << 20), 0u);
  EXPECT_EQ(engine_.Find(id), nullptr);
  EXPECT_EQ(journal_.Trace(), std::vector<std::string>{D(id)});
}

TEST_F(JournalTest, WaitReplJobDeletedOrExpiredJournalsNothing) {
  AddJobArgs args;
  args.queue = "q";
  args.body = "w";
  args.repl = 2;
  args.retry = 10;
  args.ttl = 5;
  auto w1 = std::make_shared<TestReplWaiter>();
  auto w2 = std::make_shared<TestReplWaiter>();
  JobId id1, id2;
  ASSERT_TRUE(engine_.AddJob(args, w1, &id1).ok());
  ASSERT_TRUE(engine_.AddJob(args, w2, &id2).ok());
  EXPECT_TRUE(journal_.events.empty()) << "nothing before replication is achieved";
  EXPECT_TRUE(engine_.Delete(id1.ToString()));
  EXPECT_EQ(w1->error.rfind("NOREPL", 0), 0u) << w1->error;
  clock_.Advance(6001);
  engine_.ProcessTimers();
  EXPECT_EQ(engine_.Find(id2), nullptr);
  EXPECT_EQ(w2->error.rfind("NOREPL", 0), 0u) << w2->error;
  EXPECT_TRUE(journal_.events.empty());
}

TEST_F(JournalTest, DestructionJournalsNothing) {
  testing::FakeClock clock;
  RecordingJournal journal;
  {
    Engine engine(clock, kNodeId, kKey, 7);
    engine.set_journal(&journal);
    AddJobArgs args;
    args.queue = "q";
    args.body = "b";
    args.retry = 5;
    ASSERT_TRUE(engine.AddJob(args).ok());
    ASSERT_EQ(journal.events.size(), 1u);
  }
  EXPECT_EQ(journal.events.size(), 1u) << "the destructor is not a deletion";
}

TEST_F(JournalTest, NoJournalNothingCrashes) {
  testing::FakeClock clock;
  Engine engine(clock, kNodeId, kKey, 7);
  EXPECT_EQ(engine.journal(), nullptr);
  AddJobArgs args;
  args.queue = "q";
  args.body = "b";
  args.retry = 1;
  args.ttl = 10;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    args.delay = i == 5 ? 2 : 0;
    JobId id;
    ASSERT_TRUE(engine.AddJob(args, nullptr, &id).ok());
    ids.push_back(id.ToString());
  }
  std::vector<const Job*> out;
  engine.Fetch("q", 1, out);
  EXPECT_TRUE(engine.Ack(ids[0]));
  EXPECT_TRUE(engine.FastAck(ids[1]));
  EXPECT_TRUE(engine.Delete(ids[2]));
  (void)engine.Requeue(ids[3], true);
  args.repl = 2;
  args.delay = 0;
  ASSERT_TRUE(engine.AddJob(args, std::make_shared<TestReplWaiter>()).ok());
  for (int i = 0; i < 12; ++i) {
    clock.Advance(1000);
    engine.ProcessTimers();
  }
  ASSERT_TRUE(engine.AddJob(args, std::make_shared<TestReplWaiter>()).ok());
  args.repl = 1;
  ASSERT_TRUE(engine.AddJob(args).ok());
  engine.Flush();
  EXPECT_EQ(engine.job_count(), 0u);
  // A journal can be removed again.
  RecordingJournal journal;
  engine.set_journal(&journal);
  ASSERT_TRUE(engine.AddJob(args).ok());
  engine.set_journal(nullptr);
  engine.Flush();
  EXPECT_EQ(journal.events.size(), 1u);
}

// ------------------------------------------------------------------ a simulated cluster

// The shared simulated cluster, with a recording journal per engine.
class Sim : public SimCluster {
 public:
  explicit Sim(int n) : SimCluster(n), journals_(static_cast<size_t>(n)) {
    for (int i = 0; i < n; ++i) (*this)[i].set_journal(&journals_[static_cast<size_t>(i)]);
  }
  ~Sim() {
    for (int i = 0; i < size(); ++i) (*this)[i].set_journal(nullptr);
  }
  RecordingJournal& journal(int i) { return journals_[static_cast<size_t>(i)]; }
  void DeliverAll() { Deliver(); }
  // A REPLICATE 2 job added on node 0 and replicated, with every journal cleared after.
  std::string ReplicatedJob() {
    const std::string id = AddSync(*this, 0, Args(2), std::make_shared<TestReplWaiter>());
    DeliverAll();
    for (RecordingJournal& j : journals_) j.Clear();
    return id;
  }

 private:
  std::vector<RecordingJournal> journals_;
};

size_t CountType(const std::vector<JobMessage>& ms, JobMsg type) {
  return static_cast<size_t>(std::count_if(ms.begin(), ms.end(), [type](const JobMessage& m) { return m.type == type; }));
}

TEST(JournalClusterTest, SynchronousAddJobIsJournaledWhenReplicatedAndByTheReplicaOnRegistration) {
  Sim c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(2, 10, 100), waiter);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kWaitRepl);
  EXPECT_TRUE(c.journal(0).events.empty()) << "nothing while in wait-repl";

  // REPLJOB reaches node 1: it registers the replica and journals it.
  const std::vector<JobMessage> repl = c.Take(0);
  ASSERT_EQ(CountType(repl, JobMsg::kReplJob), 1u);
  for (const JobMessage& m : repl) c.Send(0, m);
  ASSERT_EQ(c.journal(1).Trace(), std::vector<std::string>{L(id)});
  const JobRecord& rr = c.journal(1).events[0].record;
  EXPECT_EQ(rr.state, JobState::kActive);
  EXPECT_EQ(rr.etime, static_cast<uint32_t>(c.clock().NowMs() / 1000 + 100)) << "absolute etime on the replica";
  EXPECT_TRUE(rr.flags & kJobBcastQueued) << "a replica's first queueing counts";
  EXPECT_FALSE(rr.flags & kJobDelivered);
  EXPECT_EQ(rr.flags, c[1].Find(id)->flags & kJobSerializedFlags);
  EXPECT_EQ(rr.repl, 2);
  EXPECT_EQ(rr.nodes.size(), 2u);
  EXPECT_TRUE(c.journal(0).events.empty()) << "the origin waits for GOTJOB";
  EXPECT_EQ(waiter->replicated, "");

  // A duplicate REPLJOB journals nothing (it is answered again).
  for (const JobMessage& m : repl) c.Send(0, m);
  EXPECT_EQ(c.journal(1).events.size(), 1u);

  // GOTJOB reaches the origin: replication achieved, the job queued and journaled.
  const std::vector<JobMessage> got = c.Take(1);
  ASSERT_EQ(CountType(got, JobMsg::kGotJob), 2u);
  c.Send(1, got[0]);
  EXPECT_EQ(waiter->replicated, id);
  ASSERT_EQ(c.journal(0).Trace(), std::vector<std::string>{L(id)});
  const JobRecord& ro = c.journal(0).events[0].record;
  EXPECT_EQ(ro.state, JobState::kQueued);
  EXPECT_EQ(ro.etime, rr.etime);
  EXPECT_EQ(ro.ctime, rr.ctime);
  EXPECT_EQ(ro.flags, c[0].Find(id)->flags & kJobSerializedFlags);
  EXPECT_EQ(ro.nodes.size(), 2u);
  EXPECT_EQ(std::set<std::string>(ro.nodes.begin(), ro.nodes.end()), std::set<std::string>(rr.nodes.begin(), rr.nodes.end()));
  // The second GOTJOB changes nothing.
  c.Send(1, got[1]);
  c.DeliverAll();
  EXPECT_EQ(c.journal(0).events.size(), 1u);
  EXPECT_EQ(c.journal(1).events.size(), 1u);
}

TEST(JournalClusterTest, SynchronousAddJobWithDelayIsJournaledActive) {
  Sim c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.delay = 7;
  const std::string id = AddSync(c, 0, args, waiter);
  c.DeliverAll();
  EXPECT_EQ(waiter->replicated, id);
  ASSERT_EQ(c.journal(0).Trace(), std::vector<std::string>{L(id)});
  EXPECT_EQ(c.journal(0).events[0].record.state, JobState::kActive);
  EXPECT_EQ(c.journal(0).events[0].record.delay, 7u);
}

TEST(JournalClusterTest, AsyncAddJobIsJournaledAtOnceOnTheOrigin) {
  Sim c(2);
  AddJobArgs args = Args(2);
  args.async = true;
  JobId id;
  ASSERT_TRUE(c[0].AddJob(args, nullptr, &id).ok());
  ASSERT_EQ(c.journal(0).Trace(), std::vector<std::string>{L(id.ToString())});
  EXPECT_EQ(c.journal(0).events[0].record.state, JobState::kQueued);
  c.DeliverAll();
  EXPECT_EQ(c.journal(1).Trace(), std::vector<std::string>{L(id.ToString())});
  EXPECT_EQ(c.journal(0).events.size(), 1u);
}

TEST(JournalClusterTest, JobDeletedInWaitReplJournalsNothingOnTheOrigin) {
  Sim c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(2), waiter);
  EXPECT_TRUE(c[0].Delete(id));
  EXPECT_EQ(waiter->error.rfind("NOREPL", 0), 0u) << waiter->error;
  c.DeliverAll();  // REPLJOB then DELJOB reach node 1, its GOTJOB finds nothing
  EXPECT_TRUE(c.journal(0).events.empty());
  EXPECT_EQ(c.Holders(id), 0);
  // The replica did exist for a moment: it journaled its creation and its removal.
  EXPECT_EQ(c.journal(1).Trace(), (std::vector<std::string>{L(id), D(id)}));
}

TEST(JournalClusterTest, ReplicationTimeoutJournalsNothingOnTheOrigin) {
  Sim c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.timeout_ms = 100;
  const std::string id = AddSync(c, 0, args, waiter);
  c.Take(0);  // the REPLJOB is lost
  c.clock().Advance(200);
  c[0].Cron();
  EXPECT_EQ(waiter->error.rfind("NOREPL", 0), 0u) << waiter->error;
  EXPECT_EQ(c[0].Find(id), nullptr);
  c.DeliverAll();
  EXPECT_TRUE(c.journal(0).events.empty());
  EXPECT_TRUE(c.journal(1).events.empty());
}

TEST(JournalClusterTest, GotJobAfterTheClientLeftJournalsNothingOnTheOrigin) {
  Sim c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(2), waiter);
  c.Step(0);  // REPLJOB: the replica registers it
  ASSERT_TRUE(waiter->Claim());  // the client went away
  c.DeliverAll();  // GOTJOB: the origin deletes it everywhere
  EXPECT_EQ(c.Holders(id), 0);
  EXPECT_TRUE(c.journal(0).events.empty());
  EXPECT_EQ(c.journal(1).Trace(), (std::vector<std::string>{L(id), D(id)}));
}

TEST(JournalClusterTest, ExternalReplicationJournalsNothingOnTheOrigin) {
  Sim c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.external = true;
  const std::string id = AddSync(c, 0, args, waiter);
  c.DeliverAll();
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c[0].Find(id), nullptr);
  EXPECT_TRUE(c.journal(0).events.empty());
  EXPECT_EQ(c.journal(1).Trace(), std::vector<std::string>{L(id)});
  EXPECT_EQ(c.journal(2).Trace(), std::vector<std::string>{L(id)});

  // Asynchronous external replication too.
  Sim d(2);
  args = Args(1);
  args.external = true;
  args.async = true;
  JobId aid;
  ASSERT_TRUE(d[0].AddJob(args, nullptr, &aid).ok());
  d.DeliverAll();
  EXPECT_TRUE(d.journal(0).events.empty());
  EXPECT_EQ(d.journal(1).Trace(), std::vector<std::string>{L(aid.ToString())});
  EXPECT_EQ(d[1].Find(aid)->state, JobState::kQueued) << "ENQUEUE is not journaled either";
}

TEST(JournalClusterTest, AckJournalsDelJobOnEveryNodeOnce) {
  Sim c(2);
  const std::string id = c.ReplicatedJob();
  EXPECT_TRUE(c[0].Ack(id));
  EXPECT_EQ(c.journal(0).Trace(), std::vector<std::string>{D(id)});
  EXPECT_TRUE(c.journal(1).events.empty());
  c.DeliverAll();  // SETACK: the replica acks (DelJob), then the GC deletes acked jobs silently
  EXPECT_EQ(c.Holders(id), 0);
  EXPECT_EQ(c.journal(0).Trace(), std::vector<std::string>{D(id)});
  EXPECT_EQ(c.journal(1).Trace(), std::vector<std::string>{D(id)});
}

TEST(JournalClusterTest, FastAckJournalsDelJobHereAndOnThePeerThatGetsDelJob) {
  Sim c(2);
  const std::string id = c.ReplicatedJob();
  EXPECT_TRUE(c[1].FastAck(id));
  EXPECT_EQ(c.journal(1).Trace(), std::vector<std::string>{D(id)});
  c.DeliverAll();
  EXPECT_EQ(c.Holders(id), 0);
  EXPECT_EQ(c.journal(0).Trace(), std::vector<std::string>{D(id)});
  EXPECT_EQ(c.journal(1).events.size(), 1u);
}

TEST(JournalClusterTest, JobsImportedByFederationAreNotJournaled) {
  Sim c(2);
  AddJobArgs args = Args(1);
  JobId id;
  ASSERT_TRUE(c[0].AddJob(args, nullptr, &id).ok());
  c.journal(0).Clear();
  auto waiter = std::make_shared<TestWaiter>();
  c[1].Block("q", waiter);
  c.clock().Advance(100);
  c[1].Cron();     // NEEDJOBS
  c.DeliverAll();  // YOURJOBS: node 1 imports the job and serves its client
  EXPECT_EQ(waiter->got, id.ToString());
  EXPECT_NE(c[1].Find(id), nullptr);
  EXPECT_TRUE(c.journal(1).events.empty()) << "YOURJOBS imports are not journaled";
  EXPECT_TRUE(c.journal(0).events.empty()) << "the sender keeps its active at-least-once copy";
}

TEST(JournalClusterTest, DummyAckJournalsNothing) {
  Sim c(2);
  // An at-least-once ID (odd TTL field) that no node has: a dummy ACK is created and
  // collected, none of it journaled.
  JobIdGenerator gen(NodeName(0), SipKey{3, 4});
  const std::string id = gen.Next(QueueSlot("q"), 3600, true).ToString();
  EXPECT_FALSE(c[0].Ack(id));
  ASSERT_NE(c[0].Find(id), nullptr);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kAcked);
  c.DeliverAll();
  c.clock().Advance(2000);
  c[0].ProcessTimers();
  c.DeliverAll();
  EXPECT_TRUE(c.journal(0).events.empty());
  EXPECT_TRUE(c.journal(1).events.empty());
}

// ------------------------------------------------------------------ the load rules

class LoadTest : public ::testing::Test {
 protected:
  LoadTest() { engine_.set_journal(&journal_); }

  // A valid record for queue `queue`, as the AOF would hold it.
  JobRecord Record(std::string_view queue = "q", uint32_t retry = 10, JobState state = JobState::kQueued) {
    JobRecord r;
    r.id = gen_.Next(QueueSlot(queue), 3600, retry > 0).ToString();
    r.state = state;
    r.flags = state == JobState::kQueued ? (retry > 0 ? kJobBcastQueued | kJobWillQueue : kJobBcastQueued) : 0;
    r.repl = 1;
    r.etime = static_cast<uint32_t>(clock_.NowMs() / 1000 + 3600);
    r.ctime = static_cast<uint64_t>(clock_.NowMs() - 60000) * 1000000 + static_cast<uint64_t>(++ctime_seq_);
    r.delay = 0;
    r.retry = retry;
    r.queue.assign(queue);
    r.body = "body-" + std::to_string(ctime_seq_);
    r.nodes = {std::string(kNodeId)};
    return r;
  }
  size_t Len(std::string_view queue) const {
    const Queue* q = engine_.FindQueue(queue);
    return q == nullptr ? 0 : q->length();
  }
  std::vector<std::string> PeekIds(std::string_view queue) const {
    std::vector<const Job*> out;
    engine_.Peek(queue, 100, out);
    std::vector<std::string> ids;
    for (const Job* j : out) ids.push_back(j->id.ToString());
    return ids;
  }

  testing::FakeClock clock_;
  RecordingJournal journal_;
  Engine engine_{clock_, kNodeId, kKey, 42};
  JobIdGenerator gen_{kNodeId, SipKey{1, 2}};
  int ctime_seq_ = 0;
};

TEST_F(LoadTest, ExpiredRecordIsSkipped) {
  JobRecord r = Record();
  r.etime = static_cast<uint32_t>(clock_.NowMs() / 1000);
  EXPECT_FALSE(engine_.LoadJob(r, false));
  r.etime -= 100;
  EXPECT_FALSE(engine_.LoadJob(r, true));
  EXPECT_EQ(engine_.job_count(), 0u);
  r.etime = static_cast<uint32_t>(clock_.NowMs() / 1000 + 1);
  EXPECT_TRUE(engine_.LoadJob(r, false)) << "one second left is enough";
  EXPECT_EQ(engine_.job_count(), 1u);
}

TEST_F(LoadTest, AckedAndWaitReplRecordsAreSkipped) {
  JobRecord acked = Record("q", 10, JobState::kAcked);
  JobRecord waiting = Record("q", 10, JobState::kWaitRepl);
  EXPECT_FALSE(engine_.LoadJob(acked, false));
  EXPECT_FALSE(engine_.LoadJob(acked, true));
  EXPECT_FALSE(engine_.LoadJob(waiting, false));
  EXPECT_FALSE(engine_.LoadJob(waiting, true));
  EXPECT_EQ(engine_.job_count(), 0u);
}

TEST_F(LoadTest, DuplicateIdIsIgnored) {
  JobRecord r = Record();
  EXPECT_TRUE(engine_.LoadJob(r, true));
  JobRecord dup = r;
  dup.body = "other";
  dup.queue = "other-queue";
  EXPECT_FALSE(engine_.LoadJob(dup, true));
  EXPECT_FALSE(engine_.LoadJob(r, false));
  EXPECT_EQ(engine_.job_count(), 1u);
  EXPECT_EQ(engine_.Find(r.id)->body(), r.body);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(Len("other-queue"), 0u);
}

TEST_F(LoadTest, LoadingJournalsNothing) {
  JobRecord a = Record();
  JobRecord b = Record("q", 0);
  EXPECT_TRUE(engine_.LoadJob(a, true));
  EXPECT_TRUE(engine_.LoadJob(b, false));
  engine_.UnloadJob(a.id);
  EXPECT_TRUE(journal_.events.empty());
  EXPECT_FALSE(engine_.has_outbox());
}

TEST_F(LoadTest, QueuedRecordWithoutEnqueueBecomesActiveAndIsRequeuedAfterRetry) {
  JobRecord r = Record("q", 10);
  const int64_t t0 = clock_.NowMs();
  ASSERT_TRUE(engine_.LoadJob(r, false));
  const Job* job = engine_.Find(r.id);
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->state, JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_IN_RANGE(job->qtime_ms(), t0 + 10000 + kJitterLow, t0 + 10000 + kJitterHigh);
  clock_.Set(t0 + 10000 + kJitterLow - 1);
  engine_.ProcessTimers();
  EXPECT_EQ(engine_.Find(r.id)->state, JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  clock_.Set(t0 + 10000 + kJitterHigh + 1);
  engine_.ProcessTimers();
  EXPECT_EQ(engine_.Find(r.id)->state, JobState::kQueued);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_TRUE(journal_.events.empty());
}

TEST_F(LoadTest, RequeueAfterLoadWaitsForDelayPlusRetry) {
  JobRecord queued = Record("q", 10, JobState::kQueued);
  queued.delay = 5;
  JobRecord active = Record("q2", 10, JobState::kActive);
  active.delay = 5;
  const int64_t t0 = clock_.NowMs();
  ASSERT_TRUE(engine_.LoadJob(queued, false));
  ASSERT_TRUE(engine_.LoadJob(active, true));  // an active record stays active whatever `enqueue`
  for (const JobRecord* r : {&queued, &active}) {
    EXPECT_EQ(engine_.Find(r->id)->state, JobState::kActive);
    EXPECT_IN_RANGE(engine_.Find(r->id)->qtime_ms(), t0 + 15000 + kJitterLow, t0 + 15000 + kJitterHigh);
  }
  clock_.Set(t0 + 15000 + kJitterLow - 1);
  engine_.ProcessTimers();
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(Len("q2"), 0u);
  clock_.Set(t0 + 15000 + kJitterHigh + 1);
  engine_.ProcessTimers();
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(Len("q2"), 1u);
  EXPECT_TRUE(journal_.events.empty());
}

TEST_F(LoadTest, AtMostOnceRecordWithoutEnqueueIsNeverQueued) {
  JobRecord r = Record("q", 0);
  ASSERT_TRUE(engine_.LoadJob(r, false));
  const Job* job = engine_.Find(r.id);
  EXPECT_EQ(job->state, JobState::kActive);
  EXPECT_EQ(job->qtime_ms(), 0);
  EXPECT_EQ(engine_.NextRequeueWithin(*job), std::nullopt);
  for (int i = 0; i < 60; ++i) {
    clock_.Advance(1000);
    engine_.ProcessTimers();
  }
  EXPECT_EQ(engine_.Find(r.id)->state, JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
}

TEST_F(LoadTest, EnqueueRestoresQueuesInCtimeOrderWithCountersUnchanged) {
  JobRecord first = Record("q", 10);
  JobRecord second = Record("q", 0);  // RETRY 0: queued too (Disque's quirk is not kept)
  JobRecord third = Record("q", 10);
  JobRecord other = Record("q2", 10);
  JobRecord active = Record("q", 10, JobState::kActive);
  first.nacks = 2;
  first.additional_deliveries = 3;
  second.additional_deliveries = 1;
  third.nacks = 7;
  // Loaded out of order.
  for (const JobRecord* r : {&third, &active, &first, &other, &second}) ASSERT_TRUE(engine_.LoadJob(*r, true)) << r->id;
  EXPECT_EQ(PeekIds("q"), (std::vector<std::string>{first.id, second.id, third.id}));
  EXPECT_EQ(PeekIds("q2"), std::vector<std::string>{other.id});
  EXPECT_EQ(engine_.Find(active.id)->state, JobState::kActive);
  for (const JobRecord* r : {&first, &second, &third, &other}) {
    const Job* job = engine_.Find(r->id);
    ASSERT_NE(job, nullptr);
    EXPECT_EQ(job->state, JobState::kQueued) << r->id;
    EXPECT_EQ(job->nacks, r->nacks) << r->id;
    EXPECT_EQ(job->additional_deliveries, r->additional_deliveries) << r->id;
    EXPECT_EQ(job->flags & kJobBcastQueued, r->flags & kJobBcastQueued) << r->id;
  }
  EXPECT_EQ(engine_.Find(second.id)->qtime_ms(), 0) << "an at-most-once job is queued once only";
  EXPECT_FALSE(engine_.has_outbox()) << "nothing announced";
  // A queued at-least-once job keeps being requeued as before (RETRY after the load).
  EXPECT_IN_RANGE(engine_.Find(first.id)->qtime_ms(), clock_.NowMs() + 10000 + kJitterLow,
                  clock_.NowMs() + 10000 + kJitterHigh);
}

TEST_F(LoadTest, UnknownNodesAreDroppedFromNodesDelivered) {
  JobRecord r = Record();
  r.nodes = {std::string(kNodeId), std::string(kOtherNodeId)};
  ASSERT_TRUE(engine_.LoadJob(r, false));
  const Job* job = engine_.Find(r.id);
  EXPECT_EQ(job->delivered.size(), 1u);
  EXPECT_TRUE(job->delivered.Contains(engine_.cluster().self));
}

TEST_F(LoadTest, UnloadJobRemovesAJob) {
  JobRecord queued = Record();
  JobRecord active = Record("q", 10, JobState::kActive);
  ASSERT_TRUE(engine_.LoadJob(queued, true));
  ASSERT_TRUE(engine_.LoadJob(active, true));
  ASSERT_EQ(Len("q"), 1u);
  engine_.UnloadJob(queued.id);
  engine_.UnloadJob(active.id);
  engine_.UnloadJob(Record().id);  // unknown: nothing
  engine_.UnloadJob("not an id");
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.NextWakeMs(), INT64_MAX) << "nothing left in the schedule";
  EXPECT_TRUE(journal_.events.empty());
  // The ID can be loaded again afterwards.
  EXPECT_TRUE(engine_.LoadJob(queued, false));
}

void ExpectSameJob(const Job& a, const Job& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.queue(), b.queue());
  EXPECT_EQ(a.body(), b.body());
  EXPECT_EQ(a.ctime, b.ctime);
  EXPECT_EQ(a.etime, b.etime);
  EXPECT_EQ(a.retry, b.retry);
  EXPECT_EQ(a.delay(), b.delay());
  EXPECT_EQ(a.repl, b.repl);
  EXPECT_EQ(a.nacks, b.nacks);
  EXPECT_EQ(a.additional_deliveries, b.additional_deliveries);
}

TEST(LoadRoundTripTest, JournaledJobsReloadIntoAFreshEngine) {
  testing::FakeClock clock;
  RecordingJournal journal;
  Engine a(clock, kNodeId, kKey, 1);
  a.set_journal(&journal);
  struct Spec {
    std::string queue;
    uint32_t retry, delay;
    int64_t ttl;
    std::string body;
  };
  const std::vector<Spec> specs = {
      {"q1", 10, 0, 3600, "plain"},
      {"q1", 0, 0, 600, std::string("bin\0ary\r\n", 10)},
      {"q2", 30, 20, 7200, std::string(5000, 'x')},
      {"q2", 5, 0, 100, ""},
      {"q3", 60, 0, 86400, "to be deleted"},
      {"q1", 10, 0, 3600, "last"},
  };
  std::vector<std::string> ids;
  for (const Spec& s : specs) {
    AddJobArgs args;
    args.queue = s.queue;
    args.body = s.body;
    args.retry = s.retry;
    args.delay = s.delay;
    args.ttl = s.ttl;
    JobId id;
    ASSERT_TRUE(a.AddJob(args, nullptr, &id).ok());
    ids.push_back(id.ToString());
    clock.Advance(3);
  }
  ASSERT_TRUE(a.Delete(ids[4]));
  clock.Advance(1000);

  // Replay the journal into a fresh engine, as the loader does (enqueue: the restart recipe).
  Engine b(clock, kNodeId, kKey, 2);
  for (const JournalEvent& e : journal.events) {
    if (e.kind == JournalEvent::kLoad) {
      Result<JobRecord> r = ParseJobRecord(e.serialized);
      ASSERT_TRUE(r.ok());
      EXPECT_TRUE(b.LoadJob(*r, true));
    } else {
      b.UnloadJob(e.id);
    }
  }
  EXPECT_EQ(b.job_count(), a.job_count());
  EXPECT_EQ(b.job_count(), 5u);
  EXPECT_EQ(b.Find(ids[4]), nullptr);
  for (const std::string& id : ids) {
    const Job* ja = a.Find(id);
    const Job* jb = b.Find(id);
    ASSERT_EQ(ja == nullptr, jb == nullptr) << id;
    if (ja == nullptr) continue;
    ExpectSameJob(*ja, *jb);
    EXPECT_EQ(jb->state, ja->state) << id << " (queued ones back in their queue, the delayed one active)";
  }
  // Queues in the same order.
  for (std::string_view q : {"q1", "q2"}) {
    std::vector<const Job*> pa, pb;
    a.Peek(q, 100, pa);
    b.Peek(q, 100, pb);
    ASSERT_EQ(pa.size(), pb.size()) << q;
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i]->id, pb[i]->id) << q;
  }
}

TEST(LoadRoundTripTest, SerializeForAofCarriesTheCurrentStateAndCounters) {
  // The rewrite path: SerializeForAof of jobs in their current state, loaded elsewhere.
  testing::FakeClock clock;
  Engine a(clock, kNodeId, kKey, 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    AddJobArgs args;
    args.queue = "q";
    std::string body = "job" + std::to_string(i);
    args.body = body;
    args.retry = i == 3 ? 0 : 10;
    args.delay = 0;
    args.ttl = 1000 + i;
    JobId id;
    ASSERT_TRUE(a.AddJob(args, nullptr, &id).ok());
    ids.push_back(id.ToString());
    clock.Advance(1);
  }
  std::vector<const Job*> out;
  a.Fetch("q", 1, out);  // ids[0]: active, delivered
  ASSERT_TRUE(a.Requeue(ids[0], true));  // NACK: nacks 1, queued again
  out.clear();
  a.Fetch("q", 2, out);  // ids[0], ids[1] active
  ASSERT_TRUE(a.Requeue(ids[1], false));  // ENQUEUE: additional deliveries 1
  ASSERT_EQ(a.Find(ids[0])->nacks, 1);
  ASSERT_EQ(a.Find(ids[1])->additional_deliveries, 1);

  Engine b(clock, kNodeId, kKey, 2);
  Engine c(clock, kNodeId, kKey, 3);
  for (const std::string& id : ids) {
    std::string blob;
    a.SerializeForAof(*a.Find(id), blob);
    Result<JobRecord> r = ParseJobRecord(blob);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->etime, a.Find(id)->etime) << "absolute etime";
    EXPECT_EQ(r->flags, a.Find(id)->flags & kJobSerializedFlags);
    EXPECT_TRUE(b.LoadJob(*r, true));
    EXPECT_TRUE(c.LoadJob(*r, false));
  }
  for (const std::string& id : ids) {
    ExpectSameJob(*a.Find(id), *b.Find(id));
    ExpectSameJob(*a.Find(id), *c.Find(id));
    EXPECT_EQ(b.Find(id)->state, a.Find(id)->state) << id;
    EXPECT_EQ(c.Find(id)->state, JobState::kActive) << id;
    EXPECT_EQ(b.Find(id)->flags & kJobSerializedFlags & ~kJobWillQueue,
              a.Find(id)->flags & kJobSerializedFlags & ~kJobWillQueue)
        << id;
  }
  std::vector<const Job*> pa, pb;
  a.Peek("q", 10, pa);
  b.Peek("q", 10, pb);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i]->id, pb[i]->id);
}

}  // namespace
}  // namespace disque::engine
