// Randomized model test of disque::engine::Engine: a long deterministic sequence of
// operations runs against the engine and against a simple reference model of the rules
// of PROTOCOL.md 3 and part II 7 (queueing, requeue scheduling, delivery, TTL), and the
// two are compared after every step.
//
// The requeue jitter is random in [-250, +249] ms and drawn from the engine's private
// generator, so the model computes the un-jittered time, checks the engine's value is
// within the jitter of it, and then adopts the engine's value.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "disque/engine/engine.h"
#include "support/fake_clock.h"

namespace disque::engine {
namespace {

constexpr std::string_view kNodeId = "feedface0123456789abcdef0123456789abcdef";
constexpr int64_t kT0 = 1767225600000;
constexpr int64_t kJitterLow = -250;
constexpr int64_t kJitterHigh = 249;
constexpr int64_t kNever = INT64_MAX;
const std::vector<std::string> kQueues = {"q0", "q1", "q2"};

// ------------------------------------------------------------------ the model

struct MJob {
  std::string id;
  JobId bin;
  std::string queue;
  uint64_t ctime = 0;
  uint32_t etime = 0;
  uint32_t retry = 0;
  JobState state = JobState::kActive;
  int64_t qtime = 0;
  bool will_queue = false;
  bool bcast_queued = false;
  bool delivered = false;
  int nacks = 0;
  int additional_deliveries = 0;

  bool live() const { return state == JobState::kActive || state == JobState::kQueued; }
  int64_t awake() const {
    int64_t wake = static_cast<int64_t>(etime) * 1000 + 1000;
    if (live() && qtime != 0) wake = std::min(wake, will_queue ? qtime - 500 : qtime);
    return wake;
  }
};

struct MQueue {
  uint8_t pause = 0;
  uint64_t jobs_in = 0;
  uint64_t jobs_out = 0;
};

class Model {
 public:
  explicit Model(const testing::FakeClock& clock) : clock_(clock) {}

  std::map<std::string, MJob> jobs;
  std::map<std::string, MQueue> queues;
  // Jobs whose qtime was set to an un-jittered base in this step.
  std::vector<std::string> jittered;

  int64_t Now() const { return clock_.NowMs(); }

  // ADDJOB validation: nullopt if accepted, else the error code.
  std::optional<Code> CheckAdd(const std::string& queue, int64_t maxlen) const {
    auto it = queues.find(queue);
    if (it == queues.end()) return std::nullopt;
    if (maxlen > 0 && static_cast<int64_t>(Length(queue)) >= maxlen) return Code::kMaxLen;
    if (it->second.pause & kPauseIn) return Code::kPaused;
    return std::nullopt;
  }

  void Add(const std::string& id, const std::string& queue, uint32_t delay, uint32_t retry, int64_t ttl) {
    const int64_t now = Now();
    MJob job;
    job.id = id;
    job.bin = *JobId::Parse(id);
    job.queue = queue;
    uint64_t ctime = static_cast<uint64_t>(now) * 1000000;
    if (ctime <= last_ctime_) ctime = last_ctime_ + 1;
    last_ctime_ = ctime;
    job.ctime = ctime;
    job.etime = static_cast<uint32_t>(now / 1000 + ttl);
    job.retry = retry;
    job.state = JobState::kActive;
    job.qtime = now + static_cast<int64_t>(delay > 0 ? delay : retry) * 1000;
    MJob& j = jobs.emplace(id, std::move(job)).first->second;
    if (delay == 0) Enqueue(j, false);
  }

  bool Enqueue(MJob& job, bool nack) {
    if (job.state == JobState::kQueued || job.qtime == 0) return false;
    if (job.retry == 0 && job.delivered) return false;
    MQueue& q = queues[job.queue];
    job.state = JobState::kQueued;
    if (job.retry > 0) {
      SetRequeue(job);
    } else {
      job.qtime = 0;
    }
    if (job.bcast_queued || nack) {
      ++(nack ? job.nacks : job.additional_deliveries);
    } else {
      job.bcast_queued = true;
    }
    ++q.jobs_in;
    return true;
  }

  void SetRequeue(MJob& job) {
    job.qtime = Now() + static_cast<int64_t>(job.retry) * 1000;  // + jitter, adopted later
    job.will_queue = true;
    jittered.push_back(job.id);
  }

  // Queued jobs of `queue` in queue order.
  std::vector<const MJob*> Queued(const std::string& queue) const {
    std::vector<const MJob*> out;
    for (const auto& [id, j] : jobs) {
      if (j.state == JobState::kQueued && j.queue == queue) out.push_back(&j);
    }
    std::sort(out.begin(), out.end(), [](const MJob* a, const MJob* b) {
      if (a->ctime != b->ctime) return a->ctime < b->ctime;
      return std::memcmp(a->bin.bytes.data(), b->bin.bytes.data(), a->bin.bytes.size()) < 0;
    });
    return out;
  }
  size_t Length(const std::string& queue) const { return Queued(queue).size(); }

  std::vector<std::string> Fetch(const std::string& queue, size_t max) {
    MQueue& q = queues[queue];
    std::vector<std::string> out;
    if (q.pause & kPauseOut) return out;
    for (const MJob* j : Queued(queue)) {
      if (out.size() == max) break;
      MJob& job = jobs.at(j->id);
      job.state = JobState::kActive;
      job.delivered = true;
      ++q.jobs_out;
      out.push_back(job.id);
    }
    return out;
  }

  bool Ack(const std::string& id) { return jobs.erase(id) == 1; }
  bool Delete(const std::string& id) { return jobs.erase(id) == 1; }

  bool Requeue(const std::string& id, bool nack) {
    auto it = jobs.find(id);
    if (it == jobs.end() || it->second.state != JobState::kActive) return false;
    return Enqueue(it->second, nack);
  }

  bool Dequeue(const std::string& id) {
    auto it = jobs.find(id);
    if (it == jobs.end() || it->second.state != JobState::kQueued) return false;
    it->second.state = JobState::kActive;
    return true;
  }

  // WORKING: the retry, or the error code.
  std::variant<int64_t, Code> Working(const std::string& id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return Code::kNoJob;
    MJob& job = it->second;
    const auto ctime_ms = static_cast<int64_t>(job.ctime / 1000000);
    const int64_t total = static_cast<int64_t>(job.etime) * 1000 - ctime_ms;
    const int64_t elapsed = Now() - ctime_ms;
    if (total > 0 && elapsed > total / 2) return Code::kTooLate;
    if (job.state == JobState::kQueued) job.state = JobState::kActive;
    if (job.retry != 0 && job.qtime != 0) SetRequeue(job);
    return static_cast<int64_t>(job.retry);
  }

  uint8_t Pause(const std::string& queue, uint8_t flags) {
    auto it = queues.find(queue);
    if (it == queues.end()) {
      if (flags == 0) return 0;
      it = queues.emplace(queue, MQueue{}).first;
    }
    it->second.pause = flags;
    return flags;
  }

  // The scheduler: every job due now, once each (the engine's order among them does not
  // matter here: with no blocked clients the jobs do not interact).
  void ProcessTimers() {
    const int64_t now = Now();
    const int64_t now_s = now / 1000;
    std::vector<std::string> due;
    for (const auto& [id, j] : jobs) {
      if (j.awake() <= now) due.push_back(id);
    }
    for (const std::string& id : due) {
      MJob& job = jobs.at(id);
      if (static_cast<int64_t>(job.etime) <= now_s) {
        jobs.erase(id);
        continue;
      }
      if (job.live() && job.will_queue && job.qtime - 500 <= now) job.will_queue = false;
      if (job.state == JobState::kActive && job.qtime != 0 && job.qtime <= now) {
        auto q = queues.find(job.queue);
        if (q != queues.end() && (q->second.pause & kPauseIn) && job.retry != 0) {
          SetRequeue(job);
        } else if (!Enqueue(job, false)) {
          job.qtime = 0;
        }
      } else if (job.state == JobState::kQueued && job.qtime != 0 && job.qtime <= now && job.retry > 0) {
        SetRequeue(job);
      }
    }
  }

  int64_t NextWake() const {
    int64_t wake = kNever;
    for (const auto& [id, j] : jobs) wake = std::min(wake, j.awake());
    return wake;
  }

 private:
  const testing::FakeClock& clock_;
  uint64_t last_ctime_ = 0;
};

// ------------------------------------------------------------------ the test

struct Stats {
  int adds = 0, refused = 0, fetched = 0, acks = 0, nacks = 0, enqueues = 0, dequeues = 0;
  int deletes = 0, working_ok = 0, too_late = 0, no_job = 0, timer_requeues = 0, expired = 0;
};

class EngineModelTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  EngineModelTest() : rng_(GetParam()), engine_(clock_, kNodeId, SipKey{GetParam(), ~GetParam()}, GetParam() * 31 + 7), model_(clock_) {}

  uint64_t Rand(uint64_t n) { return rng_() % n; }
  bool Chance(int percent) { return static_cast<int>(Rand(100)) < percent; }

  std::string PickId() {
    if (!model_.jobs.empty() && Chance(85)) {
      auto it = model_.jobs.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(Rand(model_.jobs.size())));
      return it->first;
    }
    if (!all_ids_.empty() && Chance(80)) return all_ids_[Rand(all_ids_.size())];  // probably gone
    return "D-feedface-AAAAAAAAAAAAAAAAAAAAAAAA-0001";                              // never existed
  }
  const std::string& PickQueue() { return kQueues[Rand(kQueues.size())]; }

  // One random operation; returns a description for failure messages.
  std::string Step() {
    const int op = static_cast<int>(Rand(100));
    if (op < 30) {
      const std::string& queue = PickQueue();
      const auto delay = static_cast<uint32_t>(Chance(70) ? 0 : 1 + Rand(3));
      const auto retry = static_cast<uint32_t>(Chance(30) ? 0 : 1 + Rand(5));
      const auto ttl = static_cast<int64_t>(5 + Rand(56));
      const int64_t maxlen = Chance(10) ? static_cast<int64_t>(1 + Rand(6)) : 0;
      AddJobArgs args;
      args.queue = queue;
      args.body = "b";
      args.delay = delay;
      args.retry = retry;
      args.ttl = ttl;
      args.maxlen = maxlen;
      const std::optional<Code> expected_error = model_.CheckAdd(queue, maxlen);
      Result<const Job*> r = engine_.AddJob(args);
      const std::string what = "AddJob " + queue + " delay " + std::to_string(delay) + " retry " +
                               std::to_string(retry) + " ttl " + std::to_string(ttl) + " maxlen " +
                               std::to_string(maxlen);
      if (expected_error) {
        EXPECT_FALSE(r.ok()) << what;
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), *expected_error) << what;
        }
        ++stats_.refused;
        return what;
      }
      EXPECT_TRUE(r.ok()) << what << ": " << r.status().message();
      if (!r.ok()) return what;
      const std::string id = (*r)->id.ToString();
      all_ids_.push_back(id);
      model_.Add(id, queue, delay, retry, ttl);
      ++stats_.adds;
      return what + " -> " + id;
    }
    if (op < 44) {
      const std::string& queue = PickQueue();
      const size_t max = 1 + Rand(3);
      std::vector<const Job*> out;
      engine_.Fetch(queue, max, out);
      std::vector<std::string> got;
      for (const Job* j : out) got.push_back(j->id.ToString());
      const std::vector<std::string> expected = model_.Fetch(queue, max);
      EXPECT_EQ(got, expected) << "Fetch " << queue << " " << max;
      stats_.fetched += static_cast<int>(got.size());
      return "Fetch " + queue;
    }
    if (op < 48) {
      const std::string id = PickId();
      const bool m = model_.Ack(id);
      EXPECT_EQ(engine_.Ack(id), m) << "Ack " << id;
      stats_.acks += m;
      return "Ack " + id;
    }
    if (op < 50) {
      const std::string id = PickId();
      const bool m = model_.Delete(id);
      EXPECT_EQ(engine_.Delete(id), m) << "Delete " << id;
      stats_.deletes += m;
      return "Delete " + id;
    }
    if (op < 58) {
      const std::string id = PickId();
      const bool nack = Chance(50);
      const bool m = model_.Requeue(id, nack);
      EXPECT_EQ(engine_.Requeue(id, nack), m) << (nack ? "Nack " : "Enqueue ") << id;
      (nack ? stats_.nacks : stats_.enqueues) += m;
      return std::string(nack ? "Nack " : "Enqueue ") + id;
    }
    if (op < 63) {
      const std::string id = PickId();
      const bool m = model_.Dequeue(id);
      EXPECT_EQ(engine_.Dequeue(id), m) << "Dequeue " << id;
      stats_.dequeues += m;
      return "Dequeue " + id;
    }
    if (op < 68) {
      const std::string id = PickId();
      const std::variant<int64_t, Code> m = model_.Working(id);
      Result<int64_t> r = engine_.Working(id);
      if (std::holds_alternative<int64_t>(m)) {
        EXPECT_TRUE(r.ok()) << "Working " << id;
        if (r.ok()) {
          EXPECT_EQ(*r, std::get<int64_t>(m)) << "Working " << id;
        }
        ++stats_.working_ok;
      } else {
        EXPECT_FALSE(r.ok()) << "Working " << id;
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), std::get<Code>(m)) << "Working " << id;
        }
        ++(std::get<Code>(m) == Code::kTooLate ? stats_.too_late : stats_.no_job);
      }
      return "Working " + id;
    }
    if (op < 71) {
      const std::string& queue = PickQueue();
      // Mostly "none", so that the queues are usable most of the time.
      static constexpr uint8_t kFlags[] = {0, 0, 0, 0, 0, 0, 0, kPauseIn, kPauseOut, kPauseAll};
      const uint8_t flags = kFlags[Rand(std::size(kFlags))];
      const uint8_t m = model_.Pause(queue, flags);
      EXPECT_EQ(engine_.Pause(queue, flags), m) << "Pause " << queue;
      EXPECT_EQ(engine_.Pause(queue, std::nullopt), m) << "Pause read " << queue;
      return "Pause " + queue + " " + std::to_string(flags);
    }
    const int64_t advance = static_cast<int64_t>(Rand(3001));
    clock_.Advance(advance);
    const size_t jobs_before = model_.jobs.size();
    const uint64_t in_before = TotalJobsIn();
    engine_.ProcessTimers();
    model_.ProcessTimers();
    stats_.expired += static_cast<int>(jobs_before - model_.jobs.size());
    stats_.timer_requeues += static_cast<int>(TotalJobsIn() - in_before);
    return "Advance " + std::to_string(advance) + " + ProcessTimers";
  }

  uint64_t TotalJobsIn() const {
    uint64_t n = 0;
    for (const auto& [name, q] : model_.queues) n += q.jobs_in;
    return n;
  }

  // Adopts the engine's jittered requeue times after checking them.
  void AdoptJitter(const std::string& what) {
    for (const std::string& id : model_.jittered) {
      auto it = model_.jobs.find(id);
      if (it == model_.jobs.end()) continue;
      const Job* job = engine_.Find(id);
      ASSERT_NE(job, nullptr) << what << ": " << id;
      const int64_t base = it->second.qtime;
      EXPECT_GE(job->qtime_ms(), base + kJitterLow) << what << ": " << id;
      EXPECT_LE(job->qtime_ms(), base + kJitterHigh) << what << ": " << id;
      it->second.qtime = job->qtime_ms();
    }
    model_.jittered.clear();
  }

  void Compare(const std::string& what) {
    const int64_t now = clock_.NowMs();
    ASSERT_EQ(engine_.job_count(), model_.jobs.size()) << what;
    for (const auto& [id, m] : model_.jobs) {
      const Job* job = engine_.Find(id);
      ASSERT_NE(job, nullptr) << what << ": missing " << id;
      ASSERT_EQ(job->state, m.state) << what << ": " << id;
      ASSERT_EQ(job->qtime_ms(), m.qtime) << what << ": " << id;
      ASSERT_EQ(job->ctime, m.ctime) << what << ": " << id;
      ASSERT_EQ(job->etime, m.etime) << what << ": " << id;
      ASSERT_EQ(job->nacks, m.nacks) << what << ": " << id;
      ASSERT_EQ(job->additional_deliveries, m.additional_deliveries) << what << ": " << id;
      ASSERT_EQ((job->flags & kJobDelivered) != 0, m.delivered) << what << ": " << id;
      ASSERT_EQ((job->flags & kJobWillQueue) != 0, m.will_queue) << what << ": " << id;
      ASSERT_EQ((job->flags & kJobBcastQueued) != 0, m.bcast_queued) << what << ": " << id;
      ASSERT_EQ(engine_.NextAwakeWithin(*job), std::max<int64_t>(0, m.awake() - now)) << what << ": " << id;
      const std::optional<int64_t> requeue =
          m.qtime == 0 ? std::nullopt : std::optional<int64_t>(std::max<int64_t>(0, m.qtime - now));
      ASSERT_EQ(engine_.NextRequeueWithin(*job), requeue) << what << ": " << id;
      ASSERT_EQ(engine_.TtlLeft(*job), std::max<int64_t>(0, static_cast<int64_t>(m.etime) - now / 1000))
          << what << ": " << id;
    }
    ASSERT_EQ(engine_.NextWakeMs(), model_.NextWake()) << what;
    ASSERT_EQ(engine_.queue_count(), model_.queues.size()) << what;
    for (const auto& [name, mq] : model_.queues) {
      const Queue* q = engine_.FindQueue(name);
      ASSERT_NE(q, nullptr) << what << ": missing queue " << name;
      std::vector<std::string> expected;
      for (const MJob* j : model_.Queued(name)) expected.push_back(j->id);
      ASSERT_EQ(q->length(), expected.size()) << what << ": " << name;
      ASSERT_EQ(q->pause, mq.pause) << what << ": " << name;
      ASSERT_EQ(q->jobs_in, mq.jobs_in) << what << ": " << name;
      ASSERT_EQ(q->jobs_out, mq.jobs_out) << what << ": " << name;
      std::vector<const Job*> peeked;
      engine_.Peek(name, 1000, peeked);
      std::vector<std::string> got;
      for (const Job* j : peeked) got.push_back(j->id.ToString());
      ASSERT_EQ(got, expected) << what << ": queue order of " << name;
      ASSERT_EQ(engine_.Fetchable(name), (mq.pause & kPauseOut) ? 0 : expected.size()) << what << ": " << name;
    }
  }

  void Run(int steps) {
    clock_.Set(kT0 + static_cast<int64_t>(Rand(1000)));
    for (int i = 0; i < steps; ++i) {
      const std::string what = "step " + std::to_string(i) + ": " + Step();
      AdoptJitter(what);
      Compare(what);
      if (HasFatalFailure() || HasNonfatalFailure()) {
        ADD_FAILURE() << "stopped at " << what;
        return;
      }
    }
  }

  std::mt19937_64 rng_;
  testing::FakeClock clock_;
  Engine engine_;
  Model model_;
  Stats stats_;
  std::vector<std::string> all_ids_;
};

TEST_P(EngineModelTest, RandomOperationsMatchTheModel) {
  Run(8000);
  // The sequence must have exercised every rule, or the comparison proves little.
  EXPECT_GT(stats_.adds, 500);
  EXPECT_GT(stats_.refused, 5);
  EXPECT_GT(stats_.fetched, 300);
  EXPECT_GT(stats_.acks, 50);
  EXPECT_GT(stats_.deletes, 20);
  EXPECT_GT(stats_.nacks, 20);
  EXPECT_GT(stats_.enqueues, 20);
  EXPECT_GT(stats_.dequeues, 20);
  EXPECT_GT(stats_.working_ok, 20);
  EXPECT_GT(stats_.too_late, 10);
  EXPECT_GT(stats_.no_job, 10);
  EXPECT_GT(stats_.timer_requeues, 100);
  EXPECT_GT(stats_.expired, 100);
}

INSTANTIATE_TEST_SUITE_P(Seeds, EngineModelTest, ::testing::Values(1u, 2u, 3u, 20260101u));

}  // namespace
}  // namespace disque::engine
