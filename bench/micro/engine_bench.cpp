// Micro benchmarks of the engine's hot paths, with 1 and 1,000,000 jobs resident: ADDJOB,
// GETJOB's pop, ACKJOB, NACK, each alone and as full cycles, lookups by ID, job ID
// generation and parsing, and the schedule firing DELAY and RETRY timers.
//
// Resident jobs: one engine per size, built once and shared by every benchmark (building a
// million jobs takes about a second, and Google Benchmark calls each function several
// times). Every benchmark leaves it as it found it. The resident jobs sit queued in
// "resident" with RETRY 1800 s, created evenly over the 500 s before kT0 as a steady
// producer would, so their wake-ups are spread over 500 s (a few per millisecond) from
// kT0 + 1299 s: none fires here. The clock stays at kT0 except in the timer benchmarks,
// which move it and put it back.
//
// Operations that consume their own input (ACK needs a fetched job, a pop needs a queued
// one) run in batches of kBatch: the batch is prepared with the timer paused, so up to
// kBatch jobs are in flight on top of the resident ones. Pausing costs about 600 ns per
// batch (2-core 2.6 GHz VM), which adds 2 to 3 ns to each operation.

#include <benchmark/benchmark.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/clock.h"
#include "disque/engine/engine.h"

namespace disque::engine {
namespace {

constexpr int64_t kT0 = 1767225600000;  // 2026-01-01, unix ms
constexpr uint32_t kResidentRetry = 1800;
constexpr int64_t kResidentSpreadMs = 500'000;
constexpr size_t kBatch = 256;

// A wall clock that only moves when told to.
class ManualClock final : public Clock {
 public:
  int64_t NowMs() const override { return now_ms_; }
  int64_t NowUs() const override { return now_ms_ * 1000; }
  int64_t MonotonicMs() const override { return now_ms_; }
  void Set(int64_t now_ms) { now_ms_ = now_ms; }

 private:
  int64_t now_ms_ = kT0;
};

const std::string kNodeId = "0123456789abcdef0123456789abcdef01234567";
const std::string kBody(100, 'x');

using IdText = std::array<char, kJobIdLen>;

IdText TextOf(const JobId& id) {
  IdText text;
  id.Format(text.data());
  return text;
}

std::string_view View(const IdText& text) { return {text.data(), text.size()}; }

AddJobArgs Args(std::string_view queue, uint32_t retry = kResidentRetry, uint32_t delay = 0) {
  AddJobArgs args;
  args.queue = queue;
  args.body = kBody;
  args.retry = retry;
  args.delay = delay;
  return args;
}

// ADDJOB, which cannot fail here (no MAXLEN, no PAUSE, a single node).
const Job* Add(Engine& engine, const AddJobArgs& args) { return *engine.AddJob(args); }

// An engine holding `resident` queued jobs in the queue "resident".
struct Resident {
  ManualClock clock;
  Engine engine{clock, kNodeId, SipKey{1, 2}, 42};
  std::vector<IdText> ids;  // of the resident jobs, in creation order

  explicit Resident(int64_t resident) {
    const AddJobArgs args = Args("resident");
    ids.reserve(static_cast<size_t>(resident));
    for (int64_t i = 0; i < resident; ++i) {
      clock.Set(kT0 - kResidentSpreadMs + i * kResidentSpreadMs / resident);
      ids.push_back(TextOf(Add(engine, args)->id));
    }
    clock.Set(kT0);
  }
};

Resident& GetResident(int64_t resident) {
  static std::map<int64_t, std::unique_ptr<Resident>> built;
  std::unique_ptr<Resident>& r = built[resident];
  if (r == nullptr) r = std::make_unique<Resident>(resident);
  return *r;
}

// Runs `op(i)` once per iteration, i cycling through [0, kBatch). Before each group of
// kBatch iterations `refill()` runs with the timer stopped. Returns the number of
// operations of the last group, which the caller finishes or undoes.
template <typename Refill, typename Op>
size_t RunBatched(benchmark::State& state, Refill&& refill, Op&& op) {
  size_t i = kBatch;
  for (auto _ : state) {
    if (i == kBatch) {
      state.PauseTiming();
      refill();
      i = 0;
      state.ResumeTiming();
    }
    op(i++);
  }
  return i;
}

// ---------------------------------------------------------------------------- jobs

// ADDJOB alone (ID, allocation, index, queue and schedule inserts): the producer's cost,
// and whether a big index or schedule slows it. Added jobs are deleted between batches.
void BM_Add(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  const AddJobArgs args = Args("resident");
  std::vector<JobId> added;
  added.reserve(kBatch);
  auto delete_added = [&] {
    for (const JobId& id : added) r.engine.Delete(View(TextOf(id)));
    added.clear();
  };
  RunBatched(state, delete_added, [&](size_t) { added.push_back(Add(r.engine, args)->id); });
  delete_added();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Add)->Arg(1)->Arg(1000000);

// GETJOB's pop alone: the head of a queue of `resident` jobs (plus kBatch in flight)
// becomes active. Queue heap pop and schedule update, O(log n) in the queue length.
void BM_Pop(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  std::vector<JobId> extra;  // so that there is always a batch to pop, even with 1 resident
  for (size_t i = 0; i < kBatch; ++i) extra.push_back(Add(r.engine, Args("resident"))->id);
  std::vector<const Job*> got;
  got.reserve(kBatch);
  auto put_back = [&] {
    for (const Job* job : got) r.engine.Requeue(View(TextOf(job->id)), false);
    got.clear();
  };
  RunBatched(state, put_back, [&](size_t) { r.engine.Fetch("resident", 1, got); });
  put_back();
  for (const JobId& id : extra) r.engine.Delete(View(TextOf(id)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Pop)->Arg(1)->Arg(1000000);

// ACKJOB of a fetched job (single node: the job is deleted at once). Lookup, index and
// schedule removal, free: the consumer's cost once per job.
void BM_Ack(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  const AddJobArgs args = Args("work");
  std::vector<IdText> fetched;
  std::vector<const Job*> got;
  auto fetch_batch = [&] {
    fetched.clear();
    got.clear();
    for (size_t i = 0; i < kBatch; ++i) Add(r.engine, args);
    r.engine.Fetch("work", kBatch, got);
    for (const Job* job : got) fetched.push_back(TextOf(job->id));
  };
  const size_t done = RunBatched(state, fetch_batch, [&](size_t i) {
    benchmark::DoNotOptimize(r.engine.Ack(View(fetched[i])));
  });
  for (size_t i = done; i < fetched.size(); ++i) r.engine.Ack(View(fetched[i]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ack)->Arg(1)->Arg(1000000);

// NACK of a fetched job: back to the head of its queue (its ctime is the oldest), so the
// queue heap sift goes all the way up: O(log n) in the queue length.
void BM_Nack(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  std::vector<JobId> extra;
  for (size_t i = 0; i < kBatch; ++i) extra.push_back(Add(r.engine, Args("resident"))->id);
  std::vector<IdText> fetched;
  std::vector<const Job*> got;
  auto fetch_batch = [&] {
    fetched.clear();
    got.clear();
    r.engine.Fetch("resident", kBatch, got);
    for (const Job* job : got) fetched.push_back(TextOf(job->id));
  };
  const size_t done = RunBatched(state, fetch_batch, [&](size_t i) {
    benchmark::DoNotOptimize(r.engine.Requeue(View(fetched[i]), true));
  });
  for (size_t i = done; i < fetched.size(); ++i) r.engine.Requeue(View(fetched[i]), true);
  for (const JobId& id : extra) r.engine.Delete(View(TextOf(id)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Nack)->Arg(1)->Arg(1000000);

// A job's whole life at steady state: ADDJOB, GETJOB, ACKJOB (ID text as a client sends
// it back). The queue "work" stays empty between iterations.
void BM_AddFetchAck(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  const AddJobArgs args = Args("work");
  std::vector<const Job*> got;
  IdText id;
  for (auto _ : state) {
    Add(r.engine, args);
    got.clear();
    r.engine.Fetch("work", 1, got);
    got[0]->id.Format(id.data());
    benchmark::DoNotOptimize(r.engine.Ack(View(id)));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddFetchAck)->Arg(1)->Arg(1000000);

// GETJOB then NACK at steady state: a consumer that keeps giving the head job back.
void BM_FetchNack(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  std::vector<const Job*> got;
  IdText id;
  for (auto _ : state) {
    got.clear();
    r.engine.Fetch("resident", 1, got);
    got[0]->id.Format(id.data());
    benchmark::DoNotOptimize(r.engine.Requeue(View(id), true));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FetchNack)->Arg(1)->Arg(1000000);

// SHOW / ACKJOB / WORKING-style lookup of a resident job by ID text (parse + ID index):
// every command naming a job pays it, and at 1M it is a cache miss or two.
void BM_FindById(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(r.engine.Find(View(r.ids[i])));
    if (++i == r.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FindById)->Arg(1)->Arg(1000000);

// ---------------------------------------------------------------------------- job IDs

// A new job ID (SipHash of a counter): once per ADDJOB.
void BM_GenerateId(benchmark::State& state) {
  JobIdGenerator gen(kNodeId, SipKey{1, 2});
  for (auto _ : state) benchmark::DoNotOptimize(gen.Next(123, 86400, true));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GenerateId);

// ID text to binary: once per job named by ACKJOB, NACK, SHOW, ... range(0) distinct IDs
// are cycled: with 1 the branch predictor learns the text, with 4096 (in cache) it
// cannot, as with real traffic where every ID differs.
void BM_ParseId(benchmark::State& state) {
  JobIdGenerator gen(kNodeId, SipKey{1, 2});
  std::vector<IdText> texts;
  for (int64_t i = 0; i < state.range(0); ++i) texts.push_back(TextOf(gen.Next(123, 86400, true)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(JobId::Parse(View(texts[i])));
    if (++i == texts.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseId)->Arg(1)->Arg(4096);

// ---------------------------------------------------------------------------- timers

// Runs the engine's timers the way a shard does (clock to the next wake-up, then
// ProcessTimers), one fired timer per iteration. `prepare()` (timer stopped) creates jobs
// whose timers are due at distinct milliseconds before the resident ones, `fires` in
// all; `cleanup()` deletes them and the clock goes back to kT0.
template <typename Prepare, typename Cleanup>
void RunTimers(benchmark::State& state, Resident& r, size_t fires, Prepare&& prepare,
               Cleanup&& cleanup) {
  const int64_t resident_wake = r.engine.NextWakeMs();
  bool drained = true;
  auto next_batch = [&] {
    drained = drained && r.engine.NextWakeMs() == resident_wake;
    cleanup();
    r.clock.Set(kT0);
    prepare();
  };
  size_t i = fires;
  for (auto _ : state) {
    if (i == fires) {
      state.PauseTiming();
      next_batch();
      i = 0;
      state.ResumeTiming();
    }
    r.clock.Set(r.engine.NextWakeMs());
    r.engine.ProcessTimers();
    ++i;
  }
  // A partial batch is simply deleted; a full one must have fired exactly `fires` times.
  if (i == fires) drained = drained && r.engine.NextWakeMs() == resident_wake;
  cleanup();
  r.clock.Set(kT0);
  if (!drained) state.SkipWithError("a batch did not fire exactly as planned");
  state.SetItemsProcessed(state.iterations());
}

// A DELAY elapsing: the job is queued (queue push, new RETRY timer). Its new wake-up is
// (kT0 + 1 s + RETRY) is later than every resident one, so at 1M the schedule sift goes
// all the way down: the O(log n) cost of every fired timer in a big schedule. The
// resident timers never fire, so the top of the schedule stays in cache; when all the
// pending timers keep firing, each level is a cache miss (structures_bench's
// BM_ScheduleFire).
void BM_TimerFireDelay(benchmark::State& state) {
  Resident& r = GetResident(state.range(0));
  std::vector<JobId> jobs;
  auto prepare = [&] {
    const AddJobArgs args = Args("delayed", kResidentRetry, 1);
    for (size_t i = 0; i < kBatch; ++i) {
      r.clock.Set(kT0 + static_cast<int64_t>(i));  // due at kT0 + 1 s + i ms
      jobs.push_back(Add(r.engine, args)->id);
    }
  };
  auto cleanup = [&] {
    for (const JobId& id : jobs) r.engine.Delete(View(TextOf(id)));
    jobs.clear();
  };
  RunTimers(state, r, kBatch, prepare, cleanup);
}
BENCHMARK(BM_TimerFireDelay)->Arg(1)->Arg(1000000);

// RETRY elapsing for a delivered, unacknowledged job: two timers per job, WILLQUEUE
// 500 ms ahead (re-key by +500 ms: a short sift) and the requeue (queue push, next RETRY
// later than every resident wake-up: a full sift down at 1M). Jobs are a second apart so
// that jitter (+-250 ms) never makes two due in the same millisecond.
void BM_TimerFireRetry(benchmark::State& state) {
  // Fires end by kT0 + 1257 s, before the first resident wake-up (kT0 + 1299 s); requeued
  // jobs are due again after kT0 + 1999 s, after the last one (kT0 + 1800 s).
  constexpr uint32_t kRetry = 1000;
  Resident& r = GetResident(state.range(0));
  std::vector<JobId> jobs;
  std::vector<const Job*> got;
  auto prepare = [&] {
    const AddJobArgs args = Args("retry", kRetry);
    for (size_t i = 0; i < kBatch; ++i) {
      r.clock.Set(kT0 + static_cast<int64_t>(i) * 1000);
      Add(r.engine, args);
      got.clear();
      r.engine.Fetch("retry", 1, got);
      jobs.push_back(got[0]->id);
    }
  };
  auto cleanup = [&] {
    for (const JobId& id : jobs) r.engine.Delete(View(TextOf(id)));
    jobs.clear();
  };
  RunTimers(state, r, 2 * kBatch, prepare, cleanup);
}
BENCHMARK(BM_TimerFireRetry)->Arg(1)->Arg(1000000);

}  // namespace
}  // namespace disque::engine
