// Micro benchmarks of the engine's hot paths: ADDJOB, GETJOB + ACKJOB, NACK, job ID
// generation and parsing, ID lookups, with 1 and 1,000,000 jobs resident. Time does not
// move (a fixed clock), so no timer fires during a run.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "disque/common/clock.h"
#include "disque/engine/engine.h"

namespace disque::engine {
namespace {

class FixedClock final : public Clock {
 public:
  int64_t NowMs() const override { return 1767225600000; }
  int64_t NowUs() const override { return NowMs() * 1000; }
  int64_t MonotonicMs() const override { return NowMs(); }
};

const std::string kNodeId = "0123456789abcdef0123456789abcdef01234567";
const std::string kBody(100, 'x');

struct Fixture {
  FixedClock clock;
  Engine engine{clock, kNodeId, SipKey{1, 2}, 42};
  std::vector<std::string> ids;

  explicit Fixture(int64_t resident) {
    AddJobArgs args;
    args.queue = "resident";
    args.body = kBody;
    args.retry = 300;
    for (int64_t i = 0; i < resident; ++i) ids.push_back((*engine.AddJob(args))->id.ToString());
  }
};

AddJobArgs Args(std::string_view queue) {
  AddJobArgs args;
  args.queue = queue;
  args.body = kBody;
  args.retry = 300;
  return args;
}

// ADDJOB then GETJOB + ACKJOB of the same job: the queue stays at its resident size.
void BM_AddFetchAck(benchmark::State& state) {
  Fixture f(state.range(0));
  const AddJobArgs args = Args("work");
  std::vector<const Job*> got;
  for (auto _ : state) {
    Result<const Job*> job = f.engine.AddJob(args);
    got.clear();
    f.engine.Fetch("work", 1, got);
    const std::string id = got[0]->id.ToString();
    benchmark::DoNotOptimize(f.engine.Ack(id));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddFetchAck)->Arg(1)->Arg(1000000)->Unit(benchmark::kNanosecond);

// ADDJOB into a queue that grows by one job per iteration.
void BM_Add(benchmark::State& state) {
  Fixture f(state.range(0));
  const AddJobArgs args = Args("resident");
  for (auto _ : state) benchmark::DoNotOptimize(f.engine.AddJob(args));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Add)->Arg(1)->Arg(1000000);

// SHOW-style lookups of resident jobs by ID text.
void BM_FindById(benchmark::State& state) {
  Fixture f(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.engine.Find(f.ids[i]));
    if (++i == f.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FindById)->Arg(1)->Arg(1000000);

// Fetch then NACK: the job goes back to the head of a queue of resident jobs.
void BM_FetchNack(benchmark::State& state) {
  Fixture f(state.range(0));
  std::vector<const Job*> got;
  for (auto _ : state) {
    got.clear();
    f.engine.Fetch("resident", 1, got);
    const std::string id = got[0]->id.ToString();
    benchmark::DoNotOptimize(f.engine.Requeue(id, true));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FetchNack)->Arg(1)->Arg(1000000);

void BM_GenerateId(benchmark::State& state) {
  JobIdGenerator gen(kNodeId, SipKey{1, 2});
  for (auto _ : state) benchmark::DoNotOptimize(gen.Next(123, 86400, true));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GenerateId);

void BM_ParseId(benchmark::State& state) {
  JobIdGenerator gen(kNodeId, SipKey{1, 2});
  const std::string text = gen.Next(123, 86400, true).ToString();
  for (auto _ : state) benchmark::DoNotOptimize(JobId::Parse(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseId);

}  // namespace
}  // namespace disque::engine
