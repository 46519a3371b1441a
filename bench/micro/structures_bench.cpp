// Micro benchmarks of the engine's two core structures on their own, with 1 and 1,000,000
// entries: the schedule (IndexedHeap keyed by wake-up time) and the ID index
// (PointerTable). The elements are real jobs (Job::Create, 100-byte body), so every
// comparison or match touches a job allocation as it does in the engine. Wake-ups are
// random, so the heap's order has nothing to do with the order of the allocations, as in
// a server that has run a while with mixed TTLs and RETRYs; engine_bench's timers show
// the opposite case (one RETRY, jobs created in wake-up order).
//
// Each size is built once and shared (Google Benchmark calls each function several
// times). Operations that consume their input run in batches of kBatch, prepared with the
// timer paused; pausing costs about 600 ns per batch (2-core 2.6 GHz VM), 2 to 3 ns per
// operation.

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "disque/engine/job.h"
#include "disque/engine/job_id.h"
#include "disque/engine/pointer_table.h"

namespace disque::engine {
namespace {

constexpr size_t kBatch = 256;
constexpr int64_t kSpanMs = 300'000;  // wake-ups spread over one RETRY of 300 s

const std::string kNodeId = "0123456789abcdef0123456789abcdef01234567";
const std::string kBody(100, 'x');

// Jobs outside any engine, with random IDs and random wake-ups in [0, kSpanMs).
class JobPool {
 public:
  JobPool(size_t n, JobIdGenerator& ids, std::mt19937_64& rng) {
    jobs_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Job* job = Job::Create(arena_, "resident", kBody);
      job->id = ids.Next(QueueSlot("resident"), 86400, true);
      job->set_qtime_ms(static_cast<int64_t>(rng() % kSpanMs));
      jobs_.push_back(job);
    }
  }
  ~JobPool() {
    for (Job* job : jobs_) Job::Destroy(arena_, job);
  }
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  size_t size() const { return jobs_.size(); }
  Job* operator[](size_t i) const { return jobs_[i]; }

 private:
  JobArena arena_;
  std::vector<Job*> jobs_;
};

// ---------------------------------------------------------------------------- schedule

// Outside an engine a job's qtime_ms is free: these benchmarks keep the job's wake-up
// there (small times: the schedule's base is 0), and this arms it.
void Arm(JobSchedule& schedule, Job* job) { schedule.Set(*job, job->qtime_ms()); }

// `resident` jobs in a schedule heap, and kBatch more to insert.
struct Schedule {
  JobIdGenerator ids{kNodeId, SipKey{1, 2}};
  std::mt19937_64 rng{7};
  JobPool resident;
  JobPool extra;
  JobSchedule heap;

  explicit Schedule(int64_t n)
      : resident(static_cast<size_t>(n), ids, rng), extra(kBatch, ids, rng) {
    for (size_t i = 0; i < resident.size(); ++i) Arm(heap, resident[i]);
  }
};

Schedule& GetSchedule(int64_t n) {
  static std::map<int64_t, std::unique_ptr<Schedule>> built;
  std::unique_ptr<Schedule>& s = built[n];
  if (s == nullptr) s = std::make_unique<Schedule>(n);
  return *s;
}

// A timer armed (the schedule's Push, as for every new job and every Reschedule of a job
// not in it): a wake-up at a random point among the pending ones, so the sift up is O(1)
// on average; at 1M the cost is the cache misses on the way. Erased between batches.
void BM_ScheduleInsert(benchmark::State& state) {
  Schedule& s = GetSchedule(state.range(0));
  size_t i = kBatch;
  size_t pushed = 0;
  auto erase_batch = [&] {
    for (size_t k = 0; k < pushed; ++k) s.heap.Erase(s.extra[k]);
    pushed = 0;
  };
  for (auto _ : state) {
    if (i == kBatch) {
      state.PauseTiming();
      erase_batch();
      // BM_ScheduleFire moves the pending range forward: follow it.
      const int64_t base = s.heap.top_wake_ms();
      for (size_t k = 0; k < kBatch; ++k) {
        s.extra[k]->set_qtime_ms(base + static_cast<int64_t>(s.rng() % kSpanMs));
      }
      i = 0;
      state.ResumeTiming();
    }
    Arm(s.heap, s.extra[i++]);
    ++pushed;
  }
  erase_batch();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScheduleInsert)->Arg(1)->Arg(1000000);

// A timer fired (the schedule's Pop: the earliest wake-up leaves, the last element sifts
// down from the root): O(log n) compares, each a job touched. Between batches the fired
// jobs are re-armed one span later (after every pending one, as a requeue is), so the
// heap keeps its size and shape. The kBatch extra jobs join the heap for the duration,
// so that a batch can be popped even with 1 resident.
void BM_ScheduleFire(benchmark::State& state) {
  Schedule& s = GetSchedule(state.range(0));
  for (size_t k = 0; k < kBatch; ++k) Arm(s.heap, s.extra[k]);
  std::vector<Job*> fired;
  fired.reserve(kBatch);
  auto rearm = [&] {
    for (Job* job : fired) {
      job->set_qtime_ms(job->qtime_ms() + kSpanMs);
      Arm(s.heap, job);
    }
    fired.clear();
  };
  for (auto _ : state) {
    if (fired.size() == kBatch) {
      state.PauseTiming();
      rearm();
      state.ResumeTiming();
    }
    fired.push_back(s.heap.top());
    s.heap.Erase(fired.back());
  }
  rearm();
  for (size_t k = 0; k < kBatch; ++k) s.heap.Erase(s.extra[k]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScheduleFire)->Arg(1)->Arg(1000000);

// ---------------------------------------------------------------------------- ID index

struct IdHash {
  static uint64_t Hash(const Job& job) { return job.id.hash(); }
};

// `resident` jobs in an ID index; the keys to look up sit in arrays of their own, as
// a parsed request argument would.
struct IdIndex {
  JobIdGenerator ids{kNodeId, SipKey{1, 2}};
  std::mt19937_64 rng{7};
  JobPool resident;
  PointerTable<Job, IdHash, JobHandleSlots> table;
  std::vector<JobId> present;
  std::vector<JobId> absent;  // as many, never inserted, so misses touch the whole table

  explicit IdIndex(int64_t n) : resident(static_cast<size_t>(n), ids, rng) {
    for (size_t i = 0; i < resident.size(); ++i) {
      table.Insert(resident[i]);
      present.push_back(resident[i]->id);
      absent.push_back(ids.Next(QueueSlot("resident"), 86400, true));
    }
  }
};

IdIndex& GetIdIndex(int64_t n) {
  static std::map<int64_t, std::unique_ptr<IdIndex>> built;
  std::unique_ptr<IdIndex>& x = built[n];
  if (x == nullptr) x = std::make_unique<IdIndex>(n);
  return *x;
}

void LookUp(benchmark::State& state, const std::vector<JobId>& keys) {
  const PointerTable<Job, IdHash, JobHandleSlots>& table = GetIdIndex(state.range(0)).table;
  size_t i = 0;
  for (auto _ : state) {
    const JobId& id = keys[i];
    benchmark::DoNotOptimize(table.Find(id.hash(), [&id](const Job& j) { return j.id == id; }));
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

// A known ID (every command naming a live job): probe the slot array, compare the job's
// ID. At 1M both are cache misses, which is the whole cost.
void BM_IdIndexHit(benchmark::State& state) { LookUp(state, GetIdIndex(state.range(0)).present); }
BENCHMARK(BM_IdIndexHit)->Arg(1)->Arg(1000000);

// An unknown ID (ACKJOB of a job already gone, ADDJOB's collision check of every new
// ID): the probe run ends at an empty slot; each occupied slot passed touches a job.
void BM_IdIndexMiss(benchmark::State& state) { LookUp(state, GetIdIndex(state.range(0)).absent); }
BENCHMARK(BM_IdIndexMiss)->Arg(1)->Arg(1000000);

// Filling an empty index with `n` jobs, growth included: the table grows by half 30-odd
// times on the way to a million, and each growth rehashes every element, reading its
// job for the hash (a miss per element at that size: Resize pipelines them).
void BM_IdIndexFill(benchmark::State& state) {
  const JobPool& jobs = GetIdIndex(state.range(0)).resident;
  for (auto _ : state) {
    PointerTable<Job, IdHash, JobHandleSlots> table;
    for (size_t i = 0; i < jobs.size(); ++i) table.Insert(jobs[i]);
    benchmark::DoNotOptimize(table.size());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(jobs.size()));
}
BENCHMARK(BM_IdIndexFill)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace disque::engine
