// Unit tests for disque/engine/engine.h: the per-shard job/queue state machine with a
// FakeClock (PROTOCOL.md 2.3-2.5, 3, 4.2, 4.6, 5 and part II 7).

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "disque/engine/engine.h"
#include "support/expect_in_range.h"
#include "support/fake_clock.h"

namespace disque::engine {
namespace {

constexpr std::string_view kNodeId = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
constexpr SipKey kKey = {0x1111222233334444ULL, 0x5555666677778888ULL};
constexpr int64_t kT0 = 1767225600000;  // FakeClock's default start, a whole second
constexpr int64_t kJitterLow = -250;
constexpr int64_t kJitterHigh = 249;

constexpr std::string_view kTooLateText =
    "Half of job TTL already elapsed, you are no longer allowed to postpone the next delivery.";
constexpr std::string_view kNoJobText = "Job not known in the context of this node.";
constexpr std::string_view kMaxLenText = "Queue is already longer than the specified MAXLEN count";
constexpr std::string_view kPausedText = "Queue paused in input, try later";

// A blocked GETJOB client as the server layer would implement it.
class TestWaiter final : public Waiter {
 public:
  explicit TestWaiter(bool claimable = true) : claimable_(claimable) {}
  bool Claim() override {
    ++claims;
    if (!claimable_ || claimed_) return false;
    claimed_ = true;
    return true;
  }
  void Deliver(const Job* job) override {
    if (job == nullptr) {
      ++nulls;
      return;
    }
    delivered.push_back(job->id.ToString());
    states.push_back(job->state);
    delivered_flag.push_back((job->flags & kJobDelivered) != 0);
  }
  void Fail(const Status& status) override { errors.emplace_back(status.message()); }
  bool live() const override { return claimable_ && !claimed_; }
  // Another shard, a timeout or a disconnect took the waiter.
  void Abandon() { claimable_ = false; }

  int claims = 0;
  std::vector<std::string> errors;
  int nulls = 0;
  std::vector<std::string> delivered;
  std::vector<JobState> states;
  std::vector<bool> delivered_flag;

 private:
  bool claimable_;
  bool claimed_ = false;
};

class EngineTest : public ::testing::Test {
 protected:
  struct Opts {
    uint32_t retry = 10;
    uint32_t delay = 0;
    int64_t ttl = 3600;
    int64_t maxlen = 0;
    std::string body = "body";
  };

  Result<const Job*> TryAdd(std::string_view queue, const Opts& o) {
    AddJobArgs args;
    args.queue = queue;
    args.body = o.body;
    args.retry = o.retry;
    args.delay = o.delay;
    args.ttl = o.ttl;
    args.maxlen = o.maxlen;
    return engine_.AddJob(args);
  }
  // Adds a job that must be accepted; returns its ID text.
  std::string Add(std::string_view queue, const Opts& o) {
    Result<const Job*> r = TryAdd(queue, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)->id.ToString() : std::string();
  }
  std::string Add(std::string_view queue, uint32_t retry = 10, uint32_t delay = 0, int64_t ttl = 3600) {
    Opts o;
    o.retry = retry;
    o.delay = delay;
    o.ttl = ttl;
    return Add(queue, o);
  }

  std::vector<std::string> FetchIds(std::string_view queue, size_t max = 1) {
    std::vector<const Job*> out;
    engine_.Fetch(queue, max, out);
    std::vector<std::string> ids;
    for (const Job* j : out) ids.push_back(j->id.ToString());
    return ids;
  }
  std::vector<std::string> PeekIds(std::string_view queue, int64_t count) const {
    std::vector<const Job*> out;
    engine_.Peek(queue, count, out);
    std::vector<std::string> ids;
    for (const Job* j : out) ids.push_back(j->id.ToString());
    return ids;
  }
  const Job& JobOf(const std::string& id) const {
    const Job* job = engine_.Find(id);
    if (job == nullptr) throw std::runtime_error("no job " + id);  // fails the test
    return *job;
  }
  std::optional<JobState> StateOf(const std::string& id) const {
    const Job* job = engine_.Find(id);
    if (job == nullptr) return std::nullopt;
    return job->state;
  }
  size_t Len(std::string_view queue) const {
    const Queue* q = engine_.FindQueue(queue);
    return q == nullptr ? 0 : q->length();
  }
  int64_t QTime(const std::string& id) const { return engine_.Find(id)->qtime_ms(); }
  // Runs the scheduler at an absolute time.
  void RunAt(int64_t ms) {
    clock_.Set(ms);
    engine_.ProcessTimers();
  }
  void RunAfter(int64_t ms) {
    clock_.Advance(ms);
    engine_.ProcessTimers();
  }
  // A canonical ID that names no job here.
  static std::string UnknownId() { return "D-0a1b2c3d-AAAAAAAAAAAAAAAAAAAAAAAA-0001"; }

  testing::FakeClock clock_;
  Engine engine_{clock_, kNodeId, kKey, 42};
};

// ------------------------------------------------------------------ ADDJOB

TEST_F(EngineTest, AddJobWithoutDelayIsQueuedAtOnce) {
  const std::string id = Add("q", 5, 0, 100);
  EXPECT_EQ(engine_.job_count(), 1u);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(engine_.Fetchable("q"), 1u);
  const Job& job = JobOf(id);
  EXPECT_EQ(job.additional_deliveries, 0) << "the first queueing is not an additional delivery";
  EXPECT_EQ(job.nacks, 0);
  EXPECT_EQ(job.flags & kJobDelivered, 0);
  EXPECT_EQ(engine_.FindQueue("q")->jobs_in, 1u);

  EXPECT_EQ(FetchIds("q", 5), std::vector<std::string>{id});
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_NE(JobOf(id).flags & kJobDelivered, 0);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.FindQueue("q")->jobs_out, 1u);
  EXPECT_TRUE(FetchIds("q", 5).empty());
  EXPECT_EQ(engine_.job_count(), 1u) << "fetching does not delete";
}

TEST_F(EngineTest, AddJobSetsTheFields) {
  Opts o;
  o.retry = 7;
  o.delay = 3;
  o.ttl = 100;
  o.body = std::string("pay\0load", 8);
  Result<const Job*> r = TryAdd(std::string_view("bin\0q", 5), o);
  ASSERT_TRUE(r.ok());
  const Job* job = *r;
  EXPECT_EQ(job->queue(), std::string_view("bin\0q", 5));
  EXPECT_EQ(job->body(), std::string_view("pay\0load", 8));
  EXPECT_EQ(job->retry, 7u);
  EXPECT_EQ(job->delay(), 3u);
  EXPECT_EQ(job->repl, 1);
  EXPECT_EQ(job->etime, static_cast<uint32_t>(kT0 / 1000 + 100));
  EXPECT_EQ(job->ctime, static_cast<uint64_t>(kT0) * 1000000);
  EXPECT_EQ(job->id.ttl_field(), TtlField(100, true));
  EXPECT_EQ(job->id.ToString().substr(0, 11), "D-0a1b2c3d-");
  EXPECT_EQ(engine_.Find(job->id), job);
  EXPECT_EQ(engine_.Find(job->id.ToString()), job);
  EXPECT_EQ(engine_.job_bytes(), job->allocation_size());
  EXPECT_EQ(job->allocation_size(), sizeof(Job) + 5 + 8 + 4)
      << "a delay that is not 0 takes 4 bytes";

  o.retry = 0;
  const Job* amo = *TryAdd("q", o);
  EXPECT_EQ(amo->id.ttl_field(), TtlField(100, false));
  EXPECT_EQ(engine_.job_bytes(), job->allocation_size() + amo->allocation_size());
}

TEST_F(EngineTest, CtimeIsStrictlyIncreasingWithinAMillisecond) {
  const uint64_t base = static_cast<uint64_t>(kT0) * 1000000;
  EXPECT_EQ(JobOf(Add("q")).ctime, base);
  EXPECT_EQ(JobOf(Add("other")).ctime, base + 1);
  EXPECT_EQ(JobOf(Add("q")).ctime, base + 2);
  clock_.Advance(5);
  EXPECT_EQ(JobOf(Add("q")).ctime, base + 5 * 1000000);
}

TEST(CtimeSource, IsStrictlyIncreasing) {
  CtimeSource ctimes;
  EXPECT_EQ(ctimes.Next(kT0), static_cast<uint64_t>(kT0) * 1000000);
  EXPECT_EQ(ctimes.Next(kT0), static_cast<uint64_t>(kT0) * 1000000 + 1);
  EXPECT_EQ(ctimes.Next(kT0 - 5), static_cast<uint64_t>(kT0) * 1000000 + 2) << "the clock went back";
  EXPECT_EQ(ctimes.Next(kT0 + 1), static_cast<uint64_t>(kT0 + 1) * 1000000);
}

TEST(CtimeSource, IsUniqueAcrossThreads) {
  CtimeSource ctimes;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ctimes, &got, t] {
      for (int i = 0; i < kPerThread; ++i) got[t].push_back(ctimes.Next(kT0 + i / 1000));
    });
  }
  for (std::thread& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& v : got) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    EXPECT_EQ(std::adjacent_find(v.begin(), v.end()), v.end()) << "strictly increasing per thread";
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(CtimeSource, SharedByEnginesOfOneNode) {
  testing::FakeClock clock;
  CtimeSource ctimes;
  Engine a(clock, kNodeId, kKey, 1, &ctimes);
  Engine b(clock, kNodeId, kKey, 2, &ctimes);
  AddJobArgs args;
  args.queue = "q";
  args.retry = 1;
  const uint64_t base = static_cast<uint64_t>(clock.NowMs()) * 1000000;
  EXPECT_EQ((*a.AddJob(args))->ctime, base);
  EXPECT_EQ((*b.AddJob(args))->ctime, base + 1);
  EXPECT_EQ((*a.AddJob(args))->ctime, base + 2);
  // A lone engine has its own source.
  Engine c(clock, kNodeId, kKey, 3);
  EXPECT_EQ((*c.AddJob(args))->ctime, base);
}

TEST_F(EngineTest, FirstQueueTimeIsNowPlusRetryWithJitter) {
  const std::string id = Add("q", 4, 0, 100);
  EXPECT_IN_RANGE(QTime(id), kT0 + 4000 + kJitterLow, kT0 + 4000 + kJitterHigh);
  EXPECT_IN_RANGE(*engine_.NextRequeueWithin(JobOf(id)), 4000 + kJitterLow, 4000 + kJitterHigh);
  EXPECT_NE(JobOf(id).flags & kJobWillQueue, 0);
}

TEST_F(EngineTest, JitterCoversItsRangeAndStaysInIt) {
  std::set<int64_t> jitters;
  for (int i = 0; i < 3000; ++i) {
    const int64_t j = QTime(Add("q", 1, 0, 100)) - kT0 - 1000;
    ASSERT_GE(j, kJitterLow);
    ASSERT_LE(j, kJitterHigh);
    jitters.insert(j);
  }
  EXPECT_EQ(*jitters.begin(), kJitterLow);
  EXPECT_EQ(*jitters.rbegin(), kJitterHigh);
  EXPECT_GT(jitters.size(), 400u);
}

TEST_F(EngineTest, MaxLenError) {
  Opts o;
  o.maxlen = 2;
  Add("q", o);  // the queue does not exist yet: accepted
  Add("q", o);  // length 1 < 2: accepted
  Result<const Job*> r = TryAdd("q", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kMaxLen);
  EXPECT_EQ(r.status().message(), kMaxLenText);
  EXPECT_EQ(engine_.job_count(), 2u);
  EXPECT_EQ(Len("q"), 2u);

  o.maxlen = 3;
  EXPECT_TRUE(TryAdd("q", o).ok());
  // MAXLEN 1 means "only if the local queue is empty"; delivered jobs do not count.
  o.maxlen = 1;
  EXPECT_FALSE(TryAdd("q", o).ok());
  FetchIds("q", 3);
  EXPECT_TRUE(TryAdd("q", o).ok());
  // Delayed jobs are not in the queue either.
  Opts d;
  d.delay = 5;
  d.maxlen = 1;
  EXPECT_TRUE(TryAdd("empty", d).ok());
  EXPECT_TRUE(TryAdd("empty", d).ok());
}

TEST_F(EngineTest, PausedInputRefusesAddJob) {
  EXPECT_EQ(engine_.Pause("q", kPauseIn), kPauseIn);
  Result<const Job*> r = TryAdd("q", Opts{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPaused);
  EXPECT_EQ(r.status().message(), kPausedText);
  EXPECT_EQ(engine_.job_count(), 0u);

  engine_.Pause("q", kPauseAll);
  EXPECT_EQ(TryAdd("q", Opts{}).status().code(), Code::kPaused);
  engine_.Pause("q", kPauseOut);
  EXPECT_TRUE(TryAdd("q", Opts{}).ok()) << "an output pause does not refuse ADDJOB";
  engine_.Pause("q", 0);
  EXPECT_TRUE(TryAdd("q", Opts{}).ok());
}

TEST_F(EngineTest, MaxLenIsCheckedBeforePause) {
  Add("q");
  engine_.Pause("q", kPauseIn);
  Opts o;
  o.maxlen = 1;
  EXPECT_EQ(TryAdd("q", o).status().code(), Code::kMaxLen);
  o.maxlen = 2;
  EXPECT_EQ(TryAdd("q", o).status().code(), Code::kPaused);
}

// ------------------------------------------------------------------ DELAY

TEST_F(EngineTest, DelayedJobIsActiveUntilTheDelayPasses) {
  const std::string id = Add("q", 10, 3, 100);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_TRUE(FetchIds("q").empty());
  EXPECT_EQ(QTime(id), kT0 + 3000);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), 3000);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 3000);

  RunAt(kT0 + 2999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);

  RunAt(kT0 + 3000);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0) << "the first queueing is free";
  EXPECT_IN_RANGE(QTime(id), kT0 + 3000 + 10000 + kJitterLow, kT0 + 3000 + 10000 + kJitterHigh);
  EXPECT_EQ(FetchIds("q"), std::vector<std::string>{id});
}

TEST_F(EngineTest, DelayedJobIntoAnEvictedQueueRecreatesIt) {
  EXPECT_EQ(engine_.Fetchable("q"), 0u);  // creates the queue
  const std::string id = Add("q", 10, 400, 1000);
  clock_.Advance(kQueueMaxIdleMs);
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr) << "a delayed job does not keep its queue alive";
  RunAt(kT0 + 400000);
  ASSERT_NE(engine_.FindQueue("q"), nullptr);
  EXPECT_EQ(PeekIds("q", 10), std::vector<std::string>{id});
}

TEST_F(EngineTest, AQueueLookedUpLastIsForgottenWhenFlushedOrEvicted) {
  // FindQueue remembers the queue it found last; that memo must not outlive the queue
  // (a dangling memo is a use after free: ASan's build reports it here).
  EXPECT_EQ(engine_.Fetchable("q"), 0u);
  ASSERT_NE(engine_.FindQueue("q"), nullptr);
  engine_.Flush();
  EXPECT_EQ(engine_.FindQueue("q"), nullptr) << "after FLUSHALL";
  EXPECT_EQ(engine_.Fetchable("q"), 0u);
  ASSERT_NE(engine_.FindQueue("q"), nullptr);
  clock_.Advance(kQueueMaxIdleMs);
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr) << "after eviction";
  const std::string id = Add("q", 10, 0, 1000);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(engine_.FindQueue("q")->name, "q");
  EXPECT_EQ(engine_.FindQueue("other"), nullptr);
  EXPECT_EQ(engine_.FindQueue("q")->name, "q");
}

// ------------------------------------------------------------------ RETRY

TEST_F(EngineTest, FetchedJobIsRequeuedAfterRetry) {
  const std::string id = Add("q", 3, 0, 100);
  const int64_t qtime = QTime(id);
  ASSERT_GE(qtime, kT0 + 3000 + kJitterLow);
  ASSERT_LE(qtime, kT0 + 3000 + kJitterHigh);
  ASSERT_EQ(FetchIds("q"), std::vector<std::string>{id});
  EXPECT_EQ(QTime(id), qtime) << "fetching keeps the requeue time";
  EXPECT_EQ(engine_.NextWakeMs(), qtime - kWillQueueAdvanceMs);

  RunAt(kT0 + 3000 + kJitterLow - 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(qtime - 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0);

  RunAt(qtime);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
  EXPECT_EQ(JobOf(id).nacks, 0);
  EXPECT_EQ(Len("q"), 1u);
  const int64_t qtime2 = QTime(id);
  EXPECT_IN_RANGE(qtime2, qtime + 3000 + kJitterLow, qtime + 3000 + kJitterHigh);

  // Each later requeue counts too.
  ASSERT_EQ(FetchIds("q"), std::vector<std::string>{id});
  RunAt(qtime2);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 2);
}

TEST_F(EngineTest, FetchedJobIsRequeuedEvenWhenTheClockJumpsFarAhead) {
  const std::string id = Add("q", 2, 0, 1000);
  FetchIds("q");
  RunAt(kT0 + 100000);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1) << "one requeue, not one per missed period";
  EXPECT_IN_RANGE(QTime(id), kT0 + 100000 + 2000 + kJitterLow, kT0 + 100000 + 2000 + kJitterHigh);
}

TEST_F(EngineTest, UnconsumedQueuedJobOnlyGetsANewRequeueTime) {
  const std::string id = Add("q", 2, 0, 100);
  const int64_t qtime = QTime(id);
  RunAt(qtime);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(Len("q"), 1u);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0);
  EXPECT_EQ(engine_.FindQueue("q")->jobs_in, 1u);
  EXPECT_IN_RANGE(QTime(id), qtime + 2000 + kJitterLow, qtime + 2000 + kJitterHigh);
  EXPECT_NE(JobOf(id).flags & kJobWillQueue, 0);
}

TEST_F(EngineTest, WillQueueAdvanceIsClearedHalfASecondBeforeTheRequeue) {
  const std::string id = Add("q", 5, 0, 100);
  const int64_t qtime = QTime(id);
  FetchIds("q");
  EXPECT_EQ(engine_.NextWakeMs(), qtime - 500);
  EXPECT_EQ(*engine_.NextAwakeWithin(JobOf(id)), *engine_.NextRequeueWithin(JobOf(id)) - 500);
  RunAt(qtime - 500);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(JobOf(id).flags & kJobWillQueue, 0);
  EXPECT_EQ(engine_.NextWakeMs(), qtime);
  EXPECT_EQ(engine_.NextAwakeWithin(JobOf(id)), 500);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), 500);
}

// ------------------------------------------------------------------ NACK / ENQUEUE

TEST_F(EngineTest, NackQueuesAnActiveJobAndCountsIt) {
  const std::string id = Add("q", 10, 0, 100);
  FetchIds("q");
  clock_.Advance(1234);
  EXPECT_TRUE(engine_.Requeue(id, true));
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).nacks, 1);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0) << "NACK is not an additional delivery";
  EXPECT_IN_RANGE(QTime(id), kT0 + 1234 + 10000 + kJitterLow, kT0 + 1234 + 10000 + kJitterHigh);
  EXPECT_EQ(Len("q"), 1u);

  EXPECT_FALSE(engine_.Requeue(id, true)) << "already queued";
  EXPECT_FALSE(engine_.Requeue(id, false)) << "already queued";
  EXPECT_EQ(JobOf(id).nacks, 1);
  EXPECT_EQ(Len("q"), 1u);

  FetchIds("q");
  EXPECT_TRUE(engine_.Requeue(id, true));
  EXPECT_EQ(JobOf(id).nacks, 2);
}

TEST_F(EngineTest, RequeueOfUnknownOrNonCanonicalIdsIsFalse) {
  Add("q");
  EXPECT_FALSE(engine_.Requeue(UnknownId(), true));
  EXPECT_FALSE(engine_.Requeue(UnknownId(), false));
  EXPECT_FALSE(engine_.Requeue("not-an-id", true));
  std::string upper = Add("q");
  FetchIds("q", 2);
  std::transform(upper.begin() + 2, upper.begin() + 10, upper.begin() + 2, [](char c) {
    return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  });
  EXPECT_FALSE(engine_.Requeue(upper, true)) << "uppercase hex names no job";
  EXPECT_EQ(Len("q"), 0u);
}

TEST_F(EngineTest, EnqueueCountsAdditionalDeliveriesAfterTheFirstQueueing) {
  const std::string id = Add("q", 10, 0, 100);
  FetchIds("q");
  EXPECT_TRUE(engine_.Requeue(id, false));
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
  EXPECT_EQ(JobOf(id).nacks, 0);
  EXPECT_FALSE(engine_.Requeue(id, false));
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
}

TEST_F(EngineTest, EnqueueOfADelayedJobIsItsFirstQueueing) {
  const std::string id = Add("q", 10, 30, 100);
  EXPECT_TRUE(engine_.Requeue(id, false));
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0);
  EXPECT_IN_RANGE(QTime(id), kT0 + 10000 + kJitterLow, kT0 + 10000 + kJitterHigh);
  FetchIds("q");
  EXPECT_TRUE(engine_.Requeue(id, false));
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
}

// ------------------------------------------------------------------ at most once

TEST_F(EngineTest, AtMostOnceJobIsNeverRequeuedAfterDelivery) {
  const std::string id = Add("q", 0, 0, 100);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), std::nullopt);
  EXPECT_EQ(engine_.NextWakeMs(), (kT0 / 1000 + 100) * 1000 + 1000) << "only the expiry check";
  ASSERT_EQ(FetchIds("q"), std::vector<std::string>{id});

  EXPECT_FALSE(engine_.Requeue(id, true));
  EXPECT_FALSE(engine_.Requeue(id, false));
  EXPECT_EQ(JobOf(id).nacks, 0);
  for (int i = 1; i <= 98; ++i) {
    RunAt(kT0 + i * 1000);
    ASSERT_EQ(StateOf(id), JobState::kActive) << i;
  }
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0);
}

TEST_F(EngineTest, AtMostOnceQueuedJobCanStillBeDequeuedAndIsThenStuck) {
  const std::string id = Add("q", 0, 0, 100);
  EXPECT_TRUE(engine_.Dequeue(id));
  EXPECT_FALSE(engine_.Requeue(id, false)) << "no pending queue time";
  RunAt(kT0 + 50000);
  EXPECT_EQ(StateOf(id), JobState::kActive);
}

TEST_F(EngineTest, DelayedAtMostOnceJobIsQueuedOnceEvenWhenPausedIn) {
  const std::string id = Add("q", 0, 2, 100);
  EXPECT_EQ(engine_.Pause("q", kPauseIn), kPauseIn);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), 2000);
  RunAt(kT0 + 1999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(kT0 + 2000);
  EXPECT_EQ(StateOf(id), JobState::kQueued) << "RETRY-0 jobs with a delay are queued despite the pause";
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), std::nullopt);
  ASSERT_EQ(FetchIds("q"), std::vector<std::string>{id});
  RunAt(kT0 + 60000);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_FALSE(engine_.Requeue(id, true));
}

TEST_F(EngineTest, DelayedAtMostOnceJobCanBeEnqueuedBeforeItsDelay) {
  const std::string id = Add("q", 0, 20, 100);
  EXPECT_TRUE(engine_.Requeue(id, true));
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), std::nullopt);
  FetchIds("q");
  EXPECT_FALSE(engine_.Requeue(id, true));
  RunAt(kT0 + 20000);
  EXPECT_EQ(StateOf(id), JobState::kActive) << "the delay no longer queues it";
}

// ------------------------------------------------------------------ TTL

TEST_F(EngineTest, JobExpiresAtTheCheckOneSecondAfterEtime) {
  const std::string id = Add("q", 0, 0, 10);
  const int64_t etime = kT0 / 1000 + 10;
  EXPECT_EQ(JobOf(id).etime, etime);
  EXPECT_EQ(engine_.NextWakeMs(), etime * 1000 + 1000);
  RunAt(etime * 1000 + 999);
  EXPECT_NE(engine_.Find(id), nullptr);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 0);
  RunAt(etime * 1000 + 1000);
  EXPECT_EQ(engine_.Find(id), nullptr);
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.job_bytes(), 0u);
  EXPECT_EQ(engine_.NextWakeMs(), INT64_MAX);
}

TEST_F(EngineTest, EtimeIsInWholeSeconds) {
  clock_.Set(kT0 + 700);
  const std::string id = Add("q", 0, 0, 10);
  EXPECT_EQ(JobOf(id).etime, kT0 / 1000 + 10);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 10);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 11000);
  RunAt(kT0 + 11000);
  EXPECT_EQ(engine_.Find(id), nullptr);
}

TEST_F(EngineTest, ExpiryDeletesJobsInEveryState) {
  const std::string delivered = Add("q", 0, 0, 5);
  const std::string queued = Add("q", 0, 0, 5);
  FetchIds("q");  // the older one
  const std::string delayed = Add("q", 1, 4, 5);
  const std::string retrying = Add("r", 1, 0, 5);
  ASSERT_EQ(StateOf(delivered), JobState::kActive);
  ASSERT_EQ(StateOf(queued), JobState::kQueued);
  for (int64_t t = kT0 + 100; t < kT0 + 5000; t += 100) RunAt(t);
  EXPECT_EQ(engine_.job_count(), 4u);
  RunAt(kT0 + 6000);
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(Len("r"), 0u);
  EXPECT_EQ(engine_.job_bytes(), 0u);
}

TEST_F(EngineTest, ExpiryHappensWhenAnyWakeUpFindsEtimePassed) {
  // Woken for its requeue after etime but before the expiry check: it expires then.
  const std::string id = Add("q", 10, 10, 10);  // requeue due exactly at etime
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 10000);
  RunAt(kT0 + 9999);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(kT0 + 10000);
  EXPECT_EQ(engine_.Find(id), nullptr);
  EXPECT_EQ(Len("q"), 0u);
}

// A wake-up 40 days on (past 2^31 ms) happens on time: daily timer runs find nothing
// to do, and the expiry check comes when due.
TEST_F(EngineTest, WakeUpsWeeksAheadHappenOnTime) {
  constexpr int64_t kDay = 86'400'000;
  const std::string id = Add("q", 0, 0, 40 * 86400);
  const int64_t expiry_check = (kT0 / 1000 + 40 * 86400) * 1000 + 1000;
  EXPECT_EQ(engine_.NextWakeMs(), expiry_check);
  for (int64_t t = kT0 + kDay; t < expiry_check; t += kDay) {
    RunAt(t);
    ASSERT_EQ(StateOf(id), JobState::kQueued) << "day " << (t - kT0) / kDay;
  }
  RunAt(expiry_check - 1);
  EXPECT_NE(engine_.Find(id), nullptr);
  RunAt(expiry_check);
  EXPECT_EQ(engine_.Find(id), nullptr);
}

// Clock jumps of weeks either way: the earliest job still fires first, each when due.
// Back by 60 days, both wake-ups lie past the schedule's key range (49.7 days from its
// base, JobSchedule): they come early, never late, and an early one changes nothing.
TEST_F(EngineTest, TheScheduleSurvivesClockJumpsOfWeeks) {
  constexpr int64_t kDay = 86'400'000;
  RunAt(kT0 + 30 * kDay);
  const std::string late = Add("q", 0, 0, 20);
  const std::string early = Add("q", 0, 0, 10);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 30 * kDay + 11000);
  RunAt(kT0 - 30 * kDay);  // back: both are far in the future now
  EXPECT_NE(engine_.Find(early), nullptr);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 - 30 * kDay + JobSchedule::kMaxKey);
  RunAt(engine_.NextWakeMs());  // the early wake-up: both re-armed, on time now
  EXPECT_NE(engine_.Find(early), nullptr);
  EXPECT_NE(engine_.Find(late), nullptr);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 30 * kDay + 11000);
  RunAt(kT0 + 30 * kDay + 11000);  // forward again, just past the first expiry
  EXPECT_EQ(engine_.Find(early), nullptr);
  EXPECT_NE(engine_.Find(late), nullptr);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 30 * kDay + 21000);
  RunAt(kT0 + 30 * kDay + 21000);
  EXPECT_EQ(engine_.job_count(), 0u);
}

TEST_F(EngineTest, TtlLeftCountsWholeSecondsAndFloorsAtZero) {
  const std::string id = Add("q", 0, 0, 10);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 10);
  clock_.Set(kT0 + 4500);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 6);
  clock_.Set(kT0 + 9999);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 1);
  clock_.Set(kT0 + 10000);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 0);
  clock_.Set(kT0 + 10999);
  EXPECT_EQ(engine_.TtlLeft(JobOf(id)), 0);
}

// ------------------------------------------------------------------ WORKING

TEST_F(EngineTest, WorkingReturnsRetryAndDequeuesAQueuedJob) {
  const std::string id = Add("q", 7, 0, 100);
  clock_.Advance(1000);
  Result<int64_t> r = engine_.Working(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(JobOf(id).flags & kJobDelivered, 0) << "WORKING does not deliver";
  EXPECT_IN_RANGE(QTime(id), kT0 + 1000 + 7000 + kJitterLow, kT0 + 1000 + 7000 + kJitterHigh);
}

TEST_F(EngineTest, WorkingPostponesTheRequeue) {
  const std::string id = Add("q", 5, 0, 100);
  FetchIds("q");
  const int64_t before = QTime(id);
  clock_.Set(kT0 + 4000);
  ASSERT_TRUE(engine_.Working(id).ok());
  const int64_t after = QTime(id);
  EXPECT_IN_RANGE(after, kT0 + 4000 + 5000 + kJitterLow, kT0 + 4000 + 5000 + kJitterHigh);
  RunAt(before);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(after - 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(after);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
}

TEST_F(EngineTest, WorkingIsTooLateAfterHalfOfTheTtl) {
  const std::string id = Add("q", 5, 0, 100);
  clock_.Set(kT0 + 50000);  // elapsed == total / 2: still allowed
  Result<int64_t> ok = engine_.Working(id);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  const int64_t qtime = QTime(id);

  clock_.Set(kT0 + 50001);
  Result<int64_t> late = engine_.Working(id);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), Code::kTooLate);
  EXPECT_EQ(late.status().message(), kTooLateText);
  EXPECT_EQ(QTime(id), qtime) << "TOOLATE changes nothing";
}

TEST_F(EngineTest, TooLateLeavesAQueuedJobQueued) {
  const std::string id = Add("q", 5, 0, 10);
  clock_.Set(kT0 + 5001);
  EXPECT_EQ(engine_.Working(id).status().code(), Code::kTooLate);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(Len("q"), 1u);
}

TEST_F(EngineTest, WorkingOnAnUnknownJobIsNoJob) {
  for (const std::string& id : {UnknownId(), std::string("garbage")}) {
    Result<int64_t> r = engine_.Working(id);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kNoJob);
    EXPECT_EQ(r.status().message(), kNoJobText);
  }
}

TEST_F(EngineTest, WorkingOnAQueuedAtMostOnceJobDropsItFromTheQueueForGood) {
  const std::string id = Add("q", 0, 0, 100);
  Result<int64_t> r = engine_.Working(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(id)), std::nullopt);
  RunAt(kT0 + 60000);
  EXPECT_EQ(StateOf(id), JobState::kActive);
}

// ------------------------------------------------------------------ ACK / DELETE / DEQUEUE

TEST_F(EngineTest, AckDeletesOnASingleNode) {
  const std::string queued = Add("q");
  const std::string active = Add("q");
  EXPECT_EQ(FetchIds("q"), std::vector<std::string>{queued});  // the older one
  EXPECT_TRUE(engine_.Ack(queued));
  EXPECT_TRUE(engine_.Ack(active));
  EXPECT_EQ(engine_.Find(queued), nullptr);
  EXPECT_EQ(engine_.Find(active), nullptr);
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.job_bytes(), 0u);
  EXPECT_EQ(engine_.NextWakeMs(), INT64_MAX);
  EXPECT_FALSE(engine_.Ack(queued)) << "second ACK";
  EXPECT_FALSE(engine_.Ack(UnknownId()));
  EXPECT_FALSE(engine_.Ack("D-short"));
}

// Prefetch is only a hint: any mix of IDs (known, unknown, malformed, more than one
// batch of 64) is accepted and changes nothing.
TEST_F(EngineTest, PrefetchOfABatchOfIdsChangesNothing) {
  std::vector<std::string> ids;
  for (int i = 0; i < 150; ++i) ids.push_back(Add("q"));
  ids.push_back(UnknownId());
  ids.push_back("D-short");
  ids.push_back("");
  const std::vector<std::string_view> views(ids.begin(), ids.end());
  engine_.Prefetch(views);
  EXPECT_EQ(engine_.job_count(), 150u);
  EXPECT_EQ(Len("q"), 150u);
  size_t acked = 0;
  for (std::string_view id : views) acked += engine_.Ack(id);
  EXPECT_EQ(acked, 150u);
  EXPECT_EQ(engine_.job_count(), 0u);
}

TEST_F(EngineTest, AckOfAQueuedJobRemovesItFromTheMiddleOfTheQueue) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Add("q"));
  EXPECT_TRUE(engine_.Ack(ids[2]));
  EXPECT_EQ(PeekIds("q", 10), (std::vector<std::string>{ids[0], ids[1], ids[3], ids[4]}));
}

TEST_F(EngineTest, DeleteRemovesAJobInAnyState) {
  const std::string delivered = Add("q");
  FetchIds("q");
  const std::string queued = Add("q");
  const std::string delayed = Add("q", 5, 10, 100);
  const std::string amo = Add("q", 0, 0, 100);
  FetchIds("q", 1);  // `queued` goes first...
  engine_.Requeue(queued, true);  // ...and back
  ASSERT_EQ(StateOf(queued), JobState::kQueued);
  ASSERT_EQ(StateOf(amo), JobState::kQueued);
  for (const std::string& id : {delivered, queued, delayed, amo}) {
    EXPECT_TRUE(engine_.Delete(id)) << id;
    EXPECT_EQ(engine_.Find(id), nullptr);
    EXPECT_FALSE(engine_.Delete(id)) << id;
  }
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.NextWakeMs(), INT64_MAX);
  EXPECT_FALSE(engine_.Delete(UnknownId()));
}

TEST_F(EngineTest, DequeueKeepsTheRequeueTime) {
  const std::string id = Add("q", 5, 0, 100);
  const int64_t qtime = QTime(id);
  clock_.Advance(1000);
  EXPECT_TRUE(engine_.Dequeue(id));
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(QTime(id), qtime);
  EXPECT_EQ(JobOf(id).flags & kJobDelivered, 0);
  EXPECT_FALSE(engine_.Dequeue(id)) << "not queued any more";
  EXPECT_FALSE(engine_.Dequeue(UnknownId()));

  RunAt(qtime - 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(qtime);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
}

// ------------------------------------------------------------------ PAUSE

TEST_F(EngineTest, PauseReadsAndReplacesFlags) {
  EXPECT_EQ(engine_.Pause("q", std::nullopt), 0);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr) << "reading does not create";
  EXPECT_EQ(engine_.Pause("q", 0), 0);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr) << "PAUSE none does not create";
  EXPECT_EQ(engine_.queue_count(), 0u);

  EXPECT_EQ(engine_.Pause("q", kPauseIn), kPauseIn);
  ASSERT_NE(engine_.FindQueue("q"), nullptr);
  EXPECT_EQ(engine_.Pause("q", std::nullopt), kPauseIn);
  EXPECT_EQ(engine_.Pause("q", kPauseOut), kPauseOut) << "replaced, not or-ed";
  EXPECT_EQ(engine_.Pause("q", kPauseAll), kPauseAll);
  EXPECT_EQ(engine_.FindQueue("q")->pause, kPauseAll);
  EXPECT_EQ(engine_.Pause("q", 0), 0);
  EXPECT_NE(engine_.FindQueue("q"), nullptr) << "clearing does not destroy";
  EXPECT_EQ(engine_.Pause("q", std::nullopt), 0);

  EXPECT_EQ(engine_.Pause("r", kPauseOut), kPauseOut);
  EXPECT_EQ(engine_.queue_count(), 2u);
  EXPECT_EQ(PauseName(kPauseIn), "in");
  EXPECT_EQ(PauseName(kPauseOut), "out");
  EXPECT_EQ(PauseName(kPauseAll), "all");
  EXPECT_EQ(PauseName(0), "none");
}

TEST_F(EngineTest, PausedOutputQueueDeliversNothing) {
  const std::string a = Add("q");
  const std::string b = Add("q");
  engine_.Pause("q", kPauseOut);
  EXPECT_TRUE(FetchIds("q", 10).empty());
  EXPECT_EQ(engine_.Fetchable("q"), 0u);
  EXPECT_EQ(Len("q"), 2u);
  EXPECT_EQ(PeekIds("q", 10), (std::vector<std::string>{a, b})) << "QPEEK ignores the pause";
  engine_.Pause("q", kPauseAll);
  EXPECT_TRUE(FetchIds("q", 10).empty());
  engine_.Pause("q", kPauseIn);
  EXPECT_EQ(engine_.Fetchable("q"), 2u);
  EXPECT_EQ(FetchIds("q", 10), (std::vector<std::string>{a, b}));
}

TEST_F(EngineTest, PausedInputPostponesTheRequeueOfAtLeastOnceJobs) {
  const std::string id = Add("q", 2, 0, 100);
  FetchIds("q");
  const int64_t qtime = QTime(id);
  engine_.Pause("q", kPauseIn);
  RunAt(qtime);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(JobOf(id).additional_deliveries, 0);
  const int64_t postponed = QTime(id);
  EXPECT_IN_RANGE(postponed, qtime + 2000 + kJitterLow, qtime + 2000 + kJitterHigh);
  RunAt(postponed);
  EXPECT_EQ(StateOf(id), JobState::kActive) << "still paused";
  const int64_t postponed2 = QTime(id);
  EXPECT_GT(postponed2, postponed);

  engine_.Pause("q", kPauseOut);  // an output pause does not stop requeueing
  RunAt(postponed2);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
  EXPECT_EQ(JobOf(id).additional_deliveries, 1);
}

TEST_F(EngineTest, NackIgnoresTheInputPause) {
  // The engine's NACK queues whatever the pause (Disque's enqueueJob does not look at it).
  const std::string id = Add("q");
  FetchIds("q");
  engine_.Pause("q", kPauseIn);
  EXPECT_TRUE(engine_.Requeue(id, true));
  EXPECT_EQ(Len("q"), 1u);
}

// ------------------------------------------------------------------ queue order

TEST_F(EngineTest, QueueOrderIsCreationOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Add("q"));
    if (i % 2 == 1) clock_.Advance(3);
  }
  EXPECT_EQ(FetchIds("q", 10), ids);
}

TEST_F(EngineTest, RequeuedOlderJobGoesToTheHead) {
  const std::string a = Add("q");
  clock_.Advance(1000);
  const std::string b = Add("q");
  const std::string c = Add("q");
  ASSERT_EQ(FetchIds("q"), std::vector<std::string>{a});
  clock_.Advance(1000);
  const std::string d = Add("q");
  EXPECT_TRUE(engine_.Requeue(a, false));
  EXPECT_EQ(PeekIds("q", 10), (std::vector<std::string>{a, b, c, d}));
  EXPECT_EQ(FetchIds("q", 10), (std::vector<std::string>{a, b, c, d}));

  // Requeued in scrambled order: the queue is still in creation order.
  EXPECT_TRUE(engine_.Requeue(c, true));
  EXPECT_TRUE(engine_.Requeue(d, true));
  EXPECT_TRUE(engine_.Requeue(a, true));
  EXPECT_TRUE(engine_.Requeue(b, true));
  EXPECT_EQ(FetchIds("q", 10), (std::vector<std::string>{a, b, c, d}));
}

TEST_F(EngineTest, TimerRequeuedJobGoesBeforeNewerJobs) {
  const std::string old = Add("q", 1, 0, 100);
  FetchIds("q");
  clock_.Advance(200);
  const std::string n1 = Add("q", 30, 0, 100);
  const std::string n2 = Add("q", 30, 0, 100);
  RunAt(QTime(old));
  ASSERT_EQ(StateOf(old), JobState::kQueued);
  EXPECT_EQ(FetchIds("q", 3), (std::vector<std::string>{old, n1, n2}));
}

// ------------------------------------------------------------------ the job allocation

// The headline of the 74-byte header: a 100-byte job on a 2-byte queue takes a 176-byte
// chunk (184 with the 80-byte header, 192 with the 88-byte one).
TEST(JobLayoutTest, AHundredByteJobOnATwoByteQueueTakesA176ByteChunk) {
  EXPECT_EQ(sizeof(Job), 74u);
  EXPECT_EQ(Job::AllocationSize(2, 100, false), 176u);
  EXPECT_EQ(JobArena::ClassSize(JobArena::ClassOf(Job::AllocationSize(2, 100, false))), 176u);
  JobArena arena;
  Job* job = Job::Create(arena, "q0", std::string(100, 'x'));
  EXPECT_EQ(job->allocation_size(), 176u);
  EXPECT_EQ(arena.live_bytes(), 176u);
  Job::Destroy(arena, job);
  EXPECT_EQ(arena.live_bytes(), 0u);
}

// The header is packed to 2-byte alignment (so that its size is 74, not 80): the layout
// must keep every field at a multiple of its size, and jobs at 8-byte aligned addresses,
// or accesses become misaligned.
TEST(JobLayoutTest, EveryFieldIsNaturallyAligned) {
  JobArena arena;
  for (size_t body_len : {size_t{0}, size_t{100}, size_t{9000}}) {  // arena chunk, big job
    Job* job = Job::Create(arena, "q", std::string(body_len, 'b'));
    const auto at = [job](const void* field) {
      return static_cast<size_t>(static_cast<const char*>(field) -
                                 reinterpret_cast<const char*>(job));
    };
    EXPECT_EQ(reinterpret_cast<uintptr_t>(job) % 8, 0u);
    EXPECT_EQ(at(&job->id), 0u);
    EXPECT_EQ(at(&job->ctime), 24u);
    EXPECT_EQ(at(&job->delivered), 32u);
    EXPECT_EQ(at(&job->etime), 40u);
    EXPECT_EQ(at(&job->retry), 44u);
    EXPECT_EQ(at(&job->queue_pos), 48u);
    EXPECT_EQ(at(&job->timer_pos), 52u);
    EXPECT_EQ(at(&job->repl), 62u);
    EXPECT_EQ(at(&job->nacks), 64u);
    EXPECT_EQ(at(&job->additional_deliveries), 66u);
    EXPECT_EQ(at(&job->state), 70u);
    EXPECT_EQ(at(&job->flags), 71u);
    Job::Destroy(arena, job);
  }
}

// Names below 255 bytes keep their length in the header's 8 bits, bodies below 65,535
// bytes in its 16; longer ones (Disque takes any bulk string for either) have it stored
// in front of their bytes. The delay, when not 0, is stored after the body. Every
// combination reads back, and frees what it allocated.
TEST(JobLayoutTest, LongQueueNamesLongBodiesAndTheDelayAreStoredOutOfTheHeader) {
  const std::string big(70000, 'n');
  const size_t name_lengths[] = {0, 1, 254, 255, 256, 65534, 65535, 65536, 70000};
  const size_t body_lengths[] = {0, 5, 65534, 65535, 65536, 70000};
  for (size_t len : name_lengths) {
    std::string name = big.substr(0, len);
    if (len > 0) name[len - 1] = 'z';  // the end of the name is not the start of the body
    for (size_t body_len : body_lengths) {
      std::string body(body_len, 'b');
      if (body_len > 0) body[0] = '\0';  // nor the start of the body its end, or a length
      if (body_len > 1) body[body_len - 1] = 'e';
      for (uint32_t delay : {0u, 7u, UINT32_MAX}) {
        SCOPED_TRACE("name " + std::to_string(len) + " bytes, body " + std::to_string(body_len) +
                     " bytes, delay " + std::to_string(delay));
        JobArena arena;
        Job* job = Job::Create(arena, name, body, delay);
        EXPECT_EQ(job->queue(), name);
        EXPECT_EQ(job->body(), body);
        EXPECT_EQ(job->delay(), delay);
        const size_t expected = sizeof(Job) + len + (len >= 255 ? 4 : 0) + body_len +
                                (body_len >= 65535 ? 4 : 0) + (delay != 0 ? 4 : 0);
        EXPECT_EQ(job->allocation_size(), expected);
        EXPECT_EQ(Job::AllocationSize(len, body_len, delay != 0), expected);
        // The fields written after Create do not disturb the data area, nor the delay
        // bit that shares its byte with gc_retry.
        job->retry = UINT32_MAX;
        job->gc_retry = 10;
        job->flags = 0xff;
        job->state = JobState::kAcked;
        job->set_qtime_ms(-1);
        job->additional_deliveries = UINT16_MAX;
        EXPECT_EQ(job->queue(), name);
        EXPECT_EQ(job->body(), body);
        EXPECT_EQ(job->delay(), delay);
        EXPECT_EQ(job->gc_retry, 10);
        Job::Destroy(arena, job);
        EXPECT_EQ(arena.live_bytes(), 0u);
      }
    }
  }
}

// gc_retry is 4 bits next to the "delay stored" bit: each keeps the other's value.
TEST(JobLayoutTest, GcRetryAndTheDelayShareAByte) {
  JobArena arena;
  for (uint32_t delay : {0u, 1u, 0x80000001u}) {
    SCOPED_TRACE("delay " + std::to_string(delay));
    Job* job = Job::Create(arena, "q", "body", delay);
    for (int n = 0; n < 16; ++n) {
      job->gc_retry = static_cast<uint8_t>(n);
      EXPECT_EQ(job->gc_retry, n);
      EXPECT_EQ(job->delay(), delay);
      EXPECT_EQ(job->body(), "body");
    }
    job->gc_retry = 9;
    ++job->gc_retry;
    EXPECT_EQ(job->gc_retry, 10);
    EXPECT_EQ(job->delay(), delay);
    job->gc_retry = 0;
    EXPECT_EQ(job->delay(), delay);
    EXPECT_EQ(job->allocation_size(), sizeof(Job) + 1 + 4 + (delay != 0 ? 4 : 0));
    Job::Destroy(arena, job);
  }
}

// qtime is 48 bits, signed: every value the engine can set (now plus up to two uint32
// numbers of seconds, about 2^43 ms) reads back exactly; beyond +-2^47 it is clamped.
// The fields around it keep their values.
TEST(JobLayoutTest, QtimeKeepsFortyEightBits) {
  JobArena arena;
  Job* job = Job::Create(arena, "q", "body", 3);
  job->timer_pos = 0x11223344;
  job->repl = 0x5566;
  const int64_t now = int64_t{1796000000} * 1000;  // 2026
  const int64_t far = now + 2 * int64_t{UINT32_MAX} * 1000 + 1000;  // DELAY + RETRY maxed
  const int64_t exact[] = {0,
                           1,
                           -1,
                           now,
                           far,
                           int64_t{UINT32_MAX},
                           int64_t{UINT32_MAX} + 1,
                           (int64_t{1} << 40) + 12345,
                           Job::kMaxQtimeMs,
                           Job::kMinQtimeMs,
                           Job::kMaxQtimeMs - 1,
                           -now};
  for (int64_t ms : exact) {
    job->set_qtime_ms(ms);
    EXPECT_EQ(job->qtime_ms(), ms);
  }
  EXPECT_EQ(Job::kMaxQtimeMs, 140737488355327);
  EXPECT_GT(Job::kMaxQtimeMs, far * 10);
  job->set_qtime_ms(Job::kMaxQtimeMs + 1);
  EXPECT_EQ(job->qtime_ms(), Job::kMaxQtimeMs);
  job->set_qtime_ms(INT64_MAX);
  EXPECT_EQ(job->qtime_ms(), Job::kMaxQtimeMs);
  job->set_qtime_ms(Job::kMinQtimeMs - 1);
  EXPECT_EQ(job->qtime_ms(), Job::kMinQtimeMs);
  job->set_qtime_ms(INT64_MIN);
  EXPECT_EQ(job->qtime_ms(), Job::kMinQtimeMs);
  EXPECT_EQ(job->timer_pos, 0x11223344u);
  EXPECT_EQ(job->repl, 0x5566);
  EXPECT_EQ(job->delay(), 3u);
  EXPECT_EQ(job->body(), "body");
  Job::Destroy(arena, job);
}

// A delay of billions of seconds (any DELAY below the TTL is valid, and 32-bit etime
// reaches 2106) is kept exactly, and the job is queued at that time, not before.
TEST_F(EngineTest, AVeryLongDelayIsKeptExactly) {
  const int64_t t0 = clock_.NowMs();
  const int64_t ttl = int64_t{UINT32_MAX} - t0 / 1000 - 1;  // the last etime before the wrap
  ASSERT_GT(ttl, int64_t{1} << 31);
  Opts o;
  o.delay = static_cast<uint32_t>(ttl - 10);
  o.ttl = ttl;
  const std::string id = Add("q", o);
  const int64_t due = t0 + int64_t{o.delay} * 1000;
  EXPECT_EQ(QTime(id), due);
  EXPECT_EQ(JobOf(id).delay(), o.delay);
  RunAt(due - 1);
  EXPECT_EQ(StateOf(id), JobState::kActive);
  RunAt(due);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
}

// A body of 65,535 bytes or more has its length stored in front of it.
TEST_F(EngineTest, AddJobWithLongBodiesOnShortAndLongQueueNames) {
  for (size_t body_len : {size_t{65534}, size_t{65535}, size_t{70000}}) {
    for (size_t name_len : {size_t{2}, size_t{300}}) {
      SCOPED_TRACE("body " + std::to_string(body_len) + ", name " + std::to_string(name_len));
      const std::string name(name_len, 'x');
      Opts o;
      o.body = std::string(body_len, 'y');
      o.body.back() = '!';
      o.delay = 1;
      const Job* job = *TryAdd(name, o);
      EXPECT_EQ(job->queue(), name);
      EXPECT_EQ(job->body(), o.body);
      EXPECT_EQ(job->delay(), 1u);
      EXPECT_EQ(job->allocation_size(), sizeof(Job) + (name_len >= 255 ? 4 : 0) + name_len +
                                            (body_len >= 65535 ? 4 : 0) + body_len + 4);
    }
  }
}

TEST_F(EngineTest, AddJobOnASeventyThousandByteQueueName) {
  std::string name(70000, 'q');
  name[69999] = '!';
  Opts o;
  o.delay = 2;
  o.body = "payload";
  const Job* delayed = *TryAdd(name, o);
  EXPECT_EQ(delayed->queue(), name);
  EXPECT_EQ(delayed->body(), "payload");
  EXPECT_EQ(delayed->delay(), 2u);
  EXPECT_EQ(delayed->allocation_size(), sizeof(Job) + 4 + 70000 + 7 + 4);
  const std::string now = Add(name, 10, 0);
  EXPECT_EQ(Len(name), 1u);
  EXPECT_EQ(FetchIds(name, 5), std::vector<std::string>{now});
  const std::string later = delayed->id.ToString();
  clock_.Advance(2000);
  engine_.ProcessTimers();
  EXPECT_EQ(StateOf(later), JobState::kQueued);
  EXPECT_EQ(FetchIds(name, 5), std::vector<std::string>{later});
  EXPECT_EQ(engine_.job_bytes(), JobOf(now).allocation_size() + JobOf(later).allocation_size());
}

TEST_F(EngineTest, QueueOrderBreaksCtimeTiesByIdBytes) {
  JobArena arena;
  Job* a = Job::Create(arena, "q", "a");
  Job* b = Job::Create(arena, "q", "b");
  a->ctime = b->ctime = 5;
  a->id = *JobId::Parse("D-00000000-AAAAAAAAAAAAAAAAAAAAAAAB-0001");
  b->id = *JobId::Parse("D-00000000-AAAAAAAAAAAAAAAAAAAAAAAC-0001");
  JobQueueOrder less;
  EXPECT_TRUE(less(a, b));
  EXPECT_FALSE(less(b, a));
  EXPECT_FALSE(less(a, a));
  // The creating node's prefix comes first.
  a->id = *JobId::Parse("D-00000001-AAAAAAAAAAAAAAAAAAAAAAAA-0001");
  b->id = *JobId::Parse("D-00000000-BBBBBBBBBBBBBBBBBBBBBBBB-0001");
  EXPECT_TRUE(less(b, a));
  EXPECT_FALSE(less(a, b));
  // ctime first.
  a->ctime = 4;
  EXPECT_TRUE(less(a, b));
  Job::Destroy(arena, a);
  Job::Destroy(arena, b);
}

// ------------------------------------------------------------------ QPEEK

TEST_F(EngineTest, PeekFromTheHeadAndFromTheTail) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Add("q"));
  EXPECT_EQ(PeekIds("q", 1), (std::vector<std::string>{ids[0]}));
  EXPECT_EQ(PeekIds("q", 3), (std::vector<std::string>{ids[0], ids[1], ids[2]}));
  EXPECT_EQ(PeekIds("q", 5), ids);
  EXPECT_EQ(PeekIds("q", 100), ids);
  EXPECT_EQ(PeekIds("q", -1), (std::vector<std::string>{ids[4]}));
  EXPECT_EQ(PeekIds("q", -2), (std::vector<std::string>{ids[4], ids[3]}));
  std::vector<std::string> reversed(ids.rbegin(), ids.rend());
  EXPECT_EQ(PeekIds("q", -5), reversed);
  EXPECT_EQ(PeekIds("q", -100), reversed);
  EXPECT_EQ(PeekIds("q", INT64_MIN), reversed);
  EXPECT_EQ(PeekIds("q", INT64_MAX), ids);
  EXPECT_TRUE(PeekIds("q", 0).empty());
  EXPECT_TRUE(PeekIds("missing", 5).empty());
  EXPECT_TRUE(PeekIds("missing", -5).empty());
  EXPECT_EQ(engine_.FindQueue("missing"), nullptr) << "QPEEK does not create";
  EXPECT_EQ(Len("q"), 5u) << "QPEEK does not consume";
  EXPECT_EQ(StateOf(ids[0]), JobState::kQueued);
}

TEST_F(EngineTest, PeekIsSortedWhateverTheHeapLayout) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(Add("q"));
    clock_.Advance(1);
  }
  // Take everything, then requeue in a shuffled order so the heap array is not sorted.
  FetchIds("q", 40);
  std::vector<std::string> order = ids;
  std::mt19937 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i = 0; i < order.size(); ++i) {
    if (i % 4 != 3) {
      ASSERT_TRUE(engine_.Requeue(order[i], false));
    }
  }
  std::vector<std::string> expected;
  for (const std::string& id : ids) {
    if (StateOf(id) == JobState::kQueued) expected.push_back(id);
  }
  ASSERT_EQ(expected.size(), 30u);
  for (int64_t k = 0; k <= 32; ++k) {
    const auto n = static_cast<size_t>(std::min<int64_t>(k, 30));
    EXPECT_EQ(PeekIds("q", k), std::vector<std::string>(expected.begin(), expected.begin() + n)) << k;
    std::vector<std::string> tail(expected.rbegin(), expected.rbegin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(PeekIds("q", -k), tail) << -k;
  }
}

// ------------------------------------------------------------------ idle queue eviction

TEST_F(EngineTest, IdleQueueEvictionByMemoryLevel) {
  struct Row {
    int level;
    int64_t max_idle;
  };
  for (const Row row : {Row{0, 300000}, Row{1, 10000}, Row{2, 2000}, Row{3, 2000}}) {
    const std::string name = "q" + std::to_string(row.level);
    engine_.Fetchable(name);  // GETJOB creates the queue
    ASSERT_NE(engine_.FindQueue(name), nullptr);
    clock_.Advance(row.max_idle - 1);
    engine_.EvictIdleQueues(row.level);
    EXPECT_NE(engine_.FindQueue(name), nullptr) << row.level;
    clock_.Advance(1);
    engine_.EvictIdleQueues(row.level);
    EXPECT_EQ(engine_.FindQueue(name), nullptr) << row.level;
  }
  EXPECT_EQ(engine_.queue_count(), 0u);
}

TEST_F(EngineTest, IdleTimeRestartsOnEnqueueAndFetch) {
  Add("q", 0, 0, 10000);
  clock_.Advance(200000);
  ASSERT_EQ(FetchIds("q").size(), 1u);
  clock_.Advance(299999);
  engine_.EvictIdleQueues(0);
  EXPECT_NE(engine_.FindQueue("q"), nullptr) << "the fetch refreshed it";
  clock_.Advance(1);
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr);
}

TEST_F(EngineTest, NonEmptyPausedOrWaitedQueuesAreNotEvicted) {
  Add("full", 0, 0, 100000);
  engine_.Pause("in", kPauseIn);
  engine_.Pause("out", kPauseOut);
  auto waiter = std::make_shared<TestWaiter>();
  engine_.Block("waited", waiter);
  engine_.Fetchable("plain");
  clock_.Advance(400000);
  for (int level : {0, 1, 2}) engine_.EvictIdleQueues(level);
  EXPECT_NE(engine_.FindQueue("full"), nullptr);
  EXPECT_NE(engine_.FindQueue("in"), nullptr);
  EXPECT_NE(engine_.FindQueue("out"), nullptr);
  EXPECT_NE(engine_.FindQueue("waited"), nullptr);
  EXPECT_EQ(engine_.FindQueue("plain"), nullptr);
  EXPECT_EQ(engine_.queue_count(), 4u);

  // Once the waiter is gone elsewhere (not live), it no longer keeps the queue.
  waiter->Abandon();
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.FindQueue("waited"), nullptr);
  // Unpaused and emptied queues go too.
  engine_.Pause("in", 0);
  FetchIds("full");
  clock_.Advance(kQueueMaxIdleMs);
  engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.FindQueue("in"), nullptr);
  EXPECT_EQ(engine_.FindQueue("full"), nullptr);
  EXPECT_NE(engine_.FindQueue("out"), nullptr);
}

TEST_F(EngineTest, IdleEvictionReachesEveryQueueOfALargeTable) {
  for (int i = 0; i < 3000; ++i) engine_.Fetchable("q" + std::to_string(i));
  engine_.Pause("keep", kPauseIn);
  clock_.Advance(kQueueMaxIdleMs);
  for (int i = 0; i < 10000 && engine_.queue_count() > 1; ++i) engine_.EvictIdleQueues(0);
  EXPECT_EQ(engine_.queue_count(), 1u);
  EXPECT_NE(engine_.FindQueue("keep"), nullptr);
}

// ------------------------------------------------------------------ blocked clients

TEST_F(EngineTest, BlockedWaiterGetsTheNextAddedJob) {
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("q", w);
  ASSERT_NE(engine_.FindQueue("q"), nullptr) << "blocking creates the queue";
  EXPECT_EQ(engine_.FindQueue("q")->live_waiters(), 1u);
  EXPECT_TRUE(w->delivered.empty());
  const std::string id = Add("q");
  ASSERT_EQ(w->delivered, std::vector<std::string>{id});
  EXPECT_EQ(w->states, std::vector<JobState>{JobState::kActive});
  EXPECT_EQ(w->delivered_flag, std::vector<bool>{true});
  EXPECT_EQ(StateOf(id), JobState::kActive);
  EXPECT_EQ(Len("q"), 0u);
  EXPECT_EQ(engine_.FindQueue("q")->waiters.size(), 0u);
  EXPECT_EQ(engine_.FindQueue("q")->jobs_out, 1u);
  // Served once only.
  const std::string id2 = Add("q");
  EXPECT_EQ(w->delivered.size(), 1u);
  EXPECT_EQ(StateOf(id2), JobState::kQueued);
}

TEST_F(EngineTest, WaitersAreServedEarliestFirstOneJobEach) {
  auto w1 = std::make_shared<TestWaiter>();
  auto w2 = std::make_shared<TestWaiter>();
  engine_.Block("q", w1);
  engine_.Block("q", w2);
  const std::string a = Add("q");
  EXPECT_EQ(w1->delivered, std::vector<std::string>{a});
  EXPECT_TRUE(w2->delivered.empty());
  const std::string b = Add("q");
  EXPECT_EQ(w2->delivered, std::vector<std::string>{b});
}

TEST_F(EngineTest, BlockServesAtOnceWhenAJobIsWaiting) {
  const std::string id = Add("q");
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("q", w);
  EXPECT_EQ(w->delivered, std::vector<std::string>{id});
  EXPECT_TRUE(engine_.FindQueue("q")->waiters.empty());
}

TEST_F(EngineTest, WaiterThatCannotBeClaimedIsSkipped) {
  auto stale = std::make_shared<TestWaiter>(false);
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("q", stale);
  engine_.Block("q", w);
  EXPECT_EQ(engine_.FindQueue("q")->live_waiters(), 1u);
  const std::string id = Add("q");
  EXPECT_EQ(stale->claims, 1);
  EXPECT_TRUE(stale->delivered.empty());
  EXPECT_EQ(w->delivered, std::vector<std::string>{id});
  EXPECT_TRUE(engine_.FindQueue("q")->waiters.empty()) << "the stale registration is dropped";
}

TEST_F(EngineTest, RequeueAndTimersServeWaiters) {
  const std::string id = Add("q", 1, 0, 100);
  FetchIds("q");
  auto w1 = std::make_shared<TestWaiter>();
  engine_.Block("q", w1);
  EXPECT_TRUE(engine_.Requeue(id, true));
  EXPECT_EQ(w1->delivered, std::vector<std::string>{id});
  auto w2 = std::make_shared<TestWaiter>();
  engine_.Block("q", w2);
  RunAt(QTime(id));
  EXPECT_EQ(w2->delivered, std::vector<std::string>{id});
  EXPECT_EQ(StateOf(id), JobState::kActive);
}

TEST_F(EngineTest, ClearingAnOutputPauseServesWaiters) {
  engine_.Pause("q", kPauseOut);
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("q", w);
  const std::string id = Add("q");
  EXPECT_TRUE(w->delivered.empty());
  EXPECT_EQ(Len("q"), 1u);
  engine_.Pause("q", kPauseAll);
  EXPECT_TRUE(w->delivered.empty());
  engine_.Pause("q", kPauseIn);
  EXPECT_EQ(w->delivered, std::vector<std::string>{id});
  EXPECT_EQ(Len("q"), 0u);
}

TEST_F(EngineTest, UnblockedWaiterGetsNothing) {
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("q", w);
  engine_.Pause("q", kPauseIn);  // keep the queue alive
  engine_.Unblock("q", w.get());
  engine_.Pause("q", 0);
  Add("q");
  EXPECT_TRUE(w->delivered.empty());
  EXPECT_EQ(w->claims, 0);
  engine_.Unblock("missing", w.get());  // harmless
  EXPECT_EQ(engine_.FindQueue("missing"), nullptr);
}

TEST_F(EngineTest, UnblockingTheLastWaiterEvictsAnIdleQueueAtOnce) {
  auto w1 = std::make_shared<TestWaiter>();
  auto w2 = std::make_shared<TestWaiter>();
  engine_.Block("idle", w1);
  engine_.Block("idle", w2);
  engine_.Block("fresh", w1);
  clock_.Advance(kQueueMaxIdleMs - 1);
  engine_.Unblock("fresh", w1.get());
  EXPECT_NE(engine_.FindQueue("fresh"), nullptr) << "not idle long enough";
  clock_.Advance(1);
  engine_.Unblock("idle", w1.get());
  EXPECT_NE(engine_.FindQueue("idle"), nullptr) << "w2 is still blocked";
  engine_.Unblock("idle", w2.get());
  EXPECT_EQ(engine_.FindQueue("idle"), nullptr);
}

TEST_F(EngineTest, FlushReleasesWaitersAndDropsEverything) {
  auto w = std::make_shared<TestWaiter>();
  auto stale = std::make_shared<TestWaiter>(false);
  engine_.Block("empty", w);
  engine_.Block("empty", stale);
  Add("q");
  Add("q", 5, 10, 100);
  FetchIds("q");
  engine_.Pause("p", kPauseAll);
  ASSERT_EQ(engine_.job_count(), 2u);
  engine_.Flush();
  EXPECT_EQ(w->nulls, 1);
  EXPECT_TRUE(w->delivered.empty());
  EXPECT_EQ(stale->nulls, 0);
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(engine_.queue_count(), 0u);
  EXPECT_EQ(engine_.job_bytes(), 0u);
  EXPECT_EQ(engine_.NextWakeMs(), INT64_MAX);
  EXPECT_EQ(engine_.FindQueue("q"), nullptr);
  // The engine is usable afterwards.
  const std::string id = Add("q");
  EXPECT_EQ(FetchIds("q"), std::vector<std::string>{id});
  RunAt(kT0 + 100000);
  EXPECT_EQ(engine_.job_count(), 1u);
}

TEST_F(EngineTest, OneWaiterOnTwoQueuesIsServedOnce) {
  // GETJOB FROM a b: the same waiter is registered on both queues.
  auto w = std::make_shared<TestWaiter>();
  engine_.Block("a", w);
  engine_.Block("b", w);
  const std::string ja = Add("a");
  EXPECT_EQ(w->delivered, std::vector<std::string>{ja});
  EXPECT_EQ(engine_.FindQueue("b")->live_waiters(), 0u) << "claimed through a";
  const std::string jb = Add("b");
  EXPECT_EQ(w->delivered.size(), 1u);
  EXPECT_EQ(StateOf(jb), JobState::kQueued) << "the stale registration does not consume the job";
  EXPECT_TRUE(engine_.FindQueue("b")->waiters.empty());
}

TEST_F(EngineTest, DestroyingTheEngineDoesNotWakeWaiters) {
  auto w = std::make_shared<TestWaiter>();
  {
    Engine engine(clock_, kNodeId, kKey, 1);
    engine.Block("q", w);
    AddJobArgs args;
    args.queue = "other";
    args.retry = 1;
    ASSERT_TRUE(engine.AddJob(args).ok());
  }
  EXPECT_EQ(w->claims, 0);
  EXPECT_EQ(w->nulls, 0);
  EXPECT_TRUE(w->live());
}

TEST_F(EngineTest, TimersHandleAtMostTenThousandJobsPerRun) {
  for (size_t i = 0; i < kMaxJobsPerTimerRun + 5; ++i) Add("q", 0, 0, 1);
  RunAt(kT0 + 2000);
  EXPECT_EQ(engine_.job_count(), 5u);
  EXPECT_LE(engine_.NextWakeMs(), clock_.NowMs()) << "the rest is still due";
  engine_.ProcessTimers();
  EXPECT_EQ(engine_.job_count(), 0u);
  EXPECT_EQ(Len("q"), 0u);
}

TEST_F(EngineTest, CountersSaturate) {
  const std::string id = Add("q", 100, 0, 100000);
  for (int i = 0; i < 65540; ++i) {
    ASSERT_EQ(FetchIds("q").size(), 1u);
    ASSERT_TRUE(engine_.Requeue(id, i % 2 == 0));
  }
  EXPECT_EQ(JobOf(id).nacks, 32770);
  EXPECT_EQ(JobOf(id).additional_deliveries, 32770);
  for (int i = 0; i < 70000; ++i) {
    FetchIds("q");
    engine_.Requeue(id, true);
  }
  EXPECT_EQ(JobOf(id).nacks, UINT16_MAX);
  EXPECT_EQ(StateOf(id), JobState::kQueued);
}

TEST_F(EngineTest, HugeTtlWrapsTheThirtyTwoBitEtime) {
  Opts o;
  o.retry = 0;
  o.ttl = int64_t{1} << 32;
  const std::string id = Add("q", o);
  EXPECT_EQ(JobOf(id).etime, static_cast<uint32_t>(kT0 / 1000 + (int64_t{1} << 32)));
  EXPECT_EQ(JobOf(id).etime, static_cast<uint32_t>(kT0 / 1000));
}

TEST_F(EngineTest, StateNames) {
  EXPECT_EQ(JobStateName(JobState::kWaitRepl), "wait-repl");
  EXPECT_EQ(JobStateName(JobState::kActive), "active");
  EXPECT_EQ(JobStateName(JobState::kQueued), "queued");
  EXPECT_EQ(JobStateName(JobState::kAcked), "acked");
}

// ------------------------------------------------------------------ memory eviction

TEST_F(EngineTest, MemoryWarningLevels) {
  EXPECT_EQ(MemoryWarningLevel(750, 1000), 0);
  EXPECT_EQ(MemoryWarningLevel(751, 1000), 1);
  EXPECT_EQ(MemoryWarningLevel(950, 1000), 1);
  EXPECT_EQ(MemoryWarningLevel(951, 1000), 2);
  // Thresholds in integer arithmetic: 1099/100*75 = 750.
  EXPECT_EQ(MemoryWarningLevel(750, 1099), 0);
  EXPECT_EQ(MemoryWarningLevel(751, 1099), 1);
  EXPECT_EQ(MemoryWarningLevel(951, 1099), 2);
  EXPECT_EQ(MemoryWarningLevel(1, 0), 2) << "maxmemory 0: always above 95 %";
  EXPECT_EQ(MemoryWarningLevel(0, 1073741824), 0);
}

TEST_F(EngineTest, EvictForMemoryTakesOnlyDeliveredAtMostOnceJobs) {
  std::vector<std::string> evictable, kept;
  for (int i = 0; i < 20; ++i) {
    evictable.push_back(Add("amo", 0, 0, 1000));
    kept.push_back(Add("alo", 10, 0, 1000));       // queued at-least-once
    kept.push_back(Add("alo-out", 10, 0, 1000));   // delivered at-least-once
    kept.push_back(Add("amo-q", 0, 0, 1000));      // queued at-most-once, not delivered
    kept.push_back(Add("amo-d", 0, 60, 1000));     // delayed at-most-once
  }
  FetchIds("amo", 100);
  FetchIds("alo-out", 100);
  size_t evictable_bytes = 0;
  for (const std::string& id : evictable) evictable_bytes += JobOf(id).allocation_size();

  size_t freed = 0;
  for (int i = 0; i < 2000 && engine_.job_count() > kept.size(); ++i) freed += engine_.EvictForMemory(SIZE_MAX);
  EXPECT_EQ(engine_.job_count(), kept.size());
  EXPECT_EQ(freed, evictable_bytes);
  for (const std::string& id : evictable) EXPECT_EQ(engine_.Find(id), nullptr);
  for (const std::string& id : kept) EXPECT_NE(engine_.Find(id), nullptr);
  EXPECT_EQ(Len("alo"), 20u);
  EXPECT_EQ(Len("amo-q"), 20u);
  // Nothing left to take.
  EXPECT_EQ(engine_.EvictForMemory(SIZE_MAX), 0u);
  EXPECT_EQ(engine_.job_count(), kept.size());
}

TEST_F(EngineTest, EvictForMemoryStopsOnceEnoughIsFreed) {
  for (int i = 0; i < 50; ++i) Add("amo", 0, 0, 1000);
  FetchIds("amo", 100);
  const size_t one = engine_.job_bytes() / 50;
  const size_t freed = engine_.EvictForMemory(1);
  EXPECT_EQ(freed, one);
  EXPECT_EQ(engine_.job_count(), 49u);
}

TEST_F(EngineTest, EvictForMemoryWithNoJobsEvictsAnEmptyQueue) {
  engine_.Pause("paused", kPauseIn);
  EXPECT_EQ(engine_.EvictForMemory(1), 0u) << "a paused queue is not evictable";
  engine_.Fetchable("plain");
  EXPECT_GT(engine_.EvictForMemory(1), 0u);
  EXPECT_EQ(engine_.FindQueue("plain"), nullptr);
  EXPECT_NE(engine_.FindQueue("paused"), nullptr);
}

// ------------------------------------------------------------------ SHOW time fields

TEST_F(EngineTest, NextRequeueAndAwakeWithin) {
  const std::string queued = Add("q", 5, 0, 100);
  const Job& job = JobOf(queued);
  const int64_t requeue = *engine_.NextRequeueWithin(job);
  EXPECT_IN_RANGE(requeue, 5000 + kJitterLow, 5000 + kJitterHigh);
  EXPECT_EQ(engine_.NextAwakeWithin(job), requeue - kWillQueueAdvanceMs);
  clock_.Advance(1000);
  EXPECT_EQ(engine_.NextRequeueWithin(job), requeue - 1000);
  EXPECT_EQ(engine_.NextAwakeWithin(job), requeue - 1000 - kWillQueueAdvanceMs);
  clock_.Advance(10000);  // without running the timers: floored at 0
  EXPECT_EQ(engine_.NextRequeueWithin(job), 0);
  EXPECT_EQ(engine_.NextAwakeWithin(job), 0);

  // Delayed: the requeue is the delay, no WILLQUEUE advance.
  const std::string delayed = Add("q", 5, 8, 100);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(delayed)), 8000);
  EXPECT_EQ(engine_.NextAwakeWithin(JobOf(delayed)), 8000);

  // At most once: no requeue; the next awake is the expiry check.
  const std::string amo = Add("q", 0, 0, 100);
  EXPECT_EQ(engine_.NextRequeueWithin(JobOf(amo)), std::nullopt);
  const int64_t expiry = (clock_.NowMs() / 1000 + 100) * 1000 + 1000;
  EXPECT_EQ(engine_.NextAwakeWithin(JobOf(amo)), expiry - clock_.NowMs());
  EXPECT_EQ(engine_.TtlLeft(JobOf(amo)), 100);
}

TEST_F(EngineTest, NextAwakeIsTheExpiryCheckWhenItComesFirst) {
  const std::string id = Add("q", 50, 0, 10);
  EXPECT_EQ(engine_.NextAwakeWithin(JobOf(id)), 11000);
  EXPECT_EQ(engine_.NextWakeMs(), kT0 + 11000);
}

// ------------------------------------------------------------------ scans

template <typename ScanFn>
std::map<std::string, int> ScanAll(ScanFn&& scan, const std::function<void(int)>& between = nullptr) {
  std::map<std::string, int> seen;
  uint64_t cursor = 0;
  int calls = 0;
  do {
    const uint64_t next = scan(cursor, seen);
    EXPECT_GT(next, cursor) << "the cursor must advance";
    EXPECT_LE(next, Engine::kScanEnd);
    cursor = next;
    if (between && cursor != Engine::kScanEnd) between(calls);
    ++calls;
  } while (cursor != Engine::kScanEnd && calls < 10000000);
  EXPECT_EQ(cursor, Engine::kScanEnd);
  return seen;
}

TEST_F(EngineTest, ScanJobsReturnsEveryJobExactlyOnce) {
  std::set<std::string> ids;
  for (int i = 0; i < 500; ++i) ids.insert(Add("q" + std::to_string(i % 7), i % 3, i % 2, 1000));
  auto seen = ScanAll([this](uint64_t c, std::map<std::string, int>& s) {
    return engine_.ScanJobsBucket(c, [&s](const Job* j) { ++s[j->id.ToString()]; });
  });
  EXPECT_EQ(seen.size(), ids.size());
  for (const auto& [id, n] : seen) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_TRUE(ids.count(id)) << id;
  }
}

TEST_F(EngineTest, ScanOfAnEmptyTableEnds) {
  auto jobs = ScanAll([this](uint64_t c, std::map<std::string, int>& s) {
    return engine_.ScanJobsBucket(c, [&s](const Job* j) { ++s[j->id.ToString()]; });
  });
  EXPECT_TRUE(jobs.empty());
  auto queues = ScanAll([this](uint64_t c, std::map<std::string, int>& s) {
    return engine_.ScanQueuesBucket(c, [&s](const Queue* q) { ++s[q->name]; });
  });
  EXPECT_TRUE(queues.empty());
}

class ScanChurnTest : public EngineTest, public ::testing::WithParamInterface<int> {};

TEST_P(ScanChurnTest, JobsPresentThroughoutAreReturnedExactlyOnceDespiteInsertsAndErases) {
  std::mt19937_64 rng(static_cast<uint64_t>(GetParam()));
  std::vector<std::string> stable;
  for (int i = 0; i < 200; ++i) stable.push_back(Add("s", 10, 0, 100000));
  std::vector<std::string> churn;
  for (int i = 0; i < 1500; ++i) churn.push_back(Add("c", 0, 0, 100000));
  std::set<std::string> ever_churn(churn.begin(), churn.end());

  // Grows, then shrinks well below the start, then grows again, while the scan runs.
  auto between = [&](int call) {
    const int phase = (call / 8) % 3;
    if (phase == 0) {
      for (int i = 0; i < 150; ++i) {
        churn.push_back(Add("c", 0, 0, 100000));
        ever_churn.insert(churn.back());
      }
    } else {
      for (int i = 0; i < 200 && !churn.empty(); ++i) {
        const size_t k = rng() % churn.size();
        ASSERT_TRUE(engine_.Delete(churn[k]));
        churn[k] = churn.back();
        churn.pop_back();
      }
    }
  };
  size_t min_jobs = SIZE_MAX, max_jobs = 0;
  auto seen = ScanAll(
      [&](uint64_t c, std::map<std::string, int>& s) {
        min_jobs = std::min(min_jobs, engine_.job_count());
        max_jobs = std::max(max_jobs, engine_.job_count());
        return engine_.ScanJobsBucket(c, [&s](const Job* j) { ++s[j->id.ToString()]; });
      },
      between);
  ASSERT_LT(min_jobs, 600u) << "the table must have shrunk during the scan";
  ASSERT_GT(max_jobs, 2000u) << "the table must have grown during the scan";
  for (const std::string& id : stable) EXPECT_EQ(seen[id], 1) << id;
  for (const auto& [id, n] : seen) {
    EXPECT_EQ(n, 1) << "returned twice: " << id;
    EXPECT_TRUE(ever_churn.count(id) || std::find(stable.begin(), stable.end(), id) != stable.end());
  }
}

TEST_P(ScanChurnTest, QueuesPresentThroughoutAreReturnedExactlyOnceDespiteCreationsAndEvictions) {
  std::vector<std::string> stable;
  for (int i = 0; i < 100; ++i) {
    stable.push_back("stable-" + std::to_string(i));
    engine_.Pause(stable.back(), kPauseIn);  // paused: never evicted
  }
  int next = 0;
  std::set<std::string> ever;
  auto create = [&](int n) {
    for (int i = 0; i < n; ++i) {
      std::string name = "churn-" + std::to_string(GetParam()) + "-" + std::to_string(next++);
      engine_.Fetchable(name);
      ever.insert(std::move(name));
    }
  };
  create(1000);
  auto between = [&](int call) {
    if (call % 10 == 9) {
      // Every churn queue so far becomes idle and is evicted: the table shrinks.
      clock_.Advance(kQueueMaxIdleMs);
      for (int i = 0; i < 100000 && engine_.queue_count() > stable.size(); ++i) engine_.EvictIdleQueues(0);
      ASSERT_EQ(engine_.queue_count(), stable.size());
    } else {
      create(40 + GetParam() * 10);
    }
  };
  size_t min_queues = SIZE_MAX, max_queues = 0;
  auto seen = ScanAll(
      [&](uint64_t c, std::map<std::string, int>& s) {
        min_queues = std::min(min_queues, engine_.queue_count());
        max_queues = std::max(max_queues, engine_.queue_count());
        return engine_.ScanQueuesBucket(c, [&s](const Queue* q) { ++s[q->name]; });
      },
      between);
  ASSERT_LT(min_queues, 200u) << "the table must have shrunk during the scan";
  ASSERT_GT(max_queues, 1000u) << "the table must have held the initial queues";
  for (const std::string& name : stable) EXPECT_EQ(seen[name], 1) << name;
  for (const auto& [name, n] : seen) {
    EXPECT_EQ(n, 1) << "returned twice: " << name;
    EXPECT_TRUE(ever.count(name) || name.starts_with("stable-")) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScanChurnTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace disque::engine
