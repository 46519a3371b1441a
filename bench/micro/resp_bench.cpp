// Micro benchmarks of the RESP layer: the parser over a pipelined buffer and over one big
// bulk (whole, and arriving in socket-sized pieces), and the reply writer, for a mix of
// replies and for the two replies of the job hot path (ADDJOB's job ID, GETJOB's jobs).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "disque/resp/parser.h"
#include "disque/resp/writer.h"

namespace disque::resp {
namespace {

std::string Multibulk(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

// A buffer of range(0) pipelined small commands, parsed the way a connection does it.
void BM_ParsePipelinedMultibulk(benchmark::State& state) {
  const std::string one =
      Multibulk({"ADDJOB", "myqueue", "a small job body", "0", "REPLICATE", "1"});
  std::string buf;
  for (int64_t i = 0; i < state.range(0); ++i) buf += one;
  RequestParser parser;
  size_t args = 0;
  for (auto _ : state) {
    std::string_view rest = buf;
    while (parser.Parse(rest) == RequestParser::Result::kRequest) {
      args += parser.args().size();
      rest.remove_prefix(parser.consumed());
    }
  }
  benchmark::DoNotOptimize(args);
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_ParsePipelinedMultibulk)->Arg(1)->Arg(100)->Arg(1000);

// A producer's pipeline: range(0) ADDJOB commands with a 100-byte body in one read
// buffer, the common shape of a batched producer. Per command: the count line and four
// bulks (the body is a view, never copied here).
void BM_ParsePipelinedAddJob(benchmark::State& state) {
  const std::string body(100, 'b');
  const std::string one = Multibulk({"ADDJOB", "orders", body, "0"});
  std::string buf;
  for (int64_t i = 0; i < state.range(0); ++i) buf += one;
  RequestParser parser;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string_view rest = buf;
    while (parser.Parse(rest) == RequestParser::Result::kRequest) {
      bytes += parser.args()[2].size();
      rest.remove_prefix(parser.consumed());
    }
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_ParsePipelinedAddJob)->Arg(32);

void BM_ParsePipelinedInline(benchmark::State& state) {
  std::string buf;
  for (int64_t i = 0; i < state.range(0); ++i) buf += "GETJOB NOHANG FROM q1 q2\r\n";
  RequestParser parser;
  for (auto _ : state) {
    std::string_view rest = buf;
    while (parser.Parse(rest) == RequestParser::Result::kRequest) {
      rest.remove_prefix(parser.consumed());
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_ParsePipelinedInline)->Arg(100);

// One request with a bulk of range(0) bytes, received in range(1)-byte pieces (0: whole).
// With pieces the cost should stay linear in the size: the parser never rescans. The bulk
// itself is never read (its argument is a view), so bytes_per_second is not a copy speed.
void BM_ParseLargeBulk(benchmark::State& state) {
  const std::string body(static_cast<size_t>(state.range(0)), 'x');
  const std::string request = Multibulk({"ADDJOB", "q", body, "0"});
  const size_t piece = state.range(1) > 0 ? static_cast<size_t>(state.range(1)) : request.size();
  for (auto _ : state) {
    RequestParser parser;
    size_t have = 0;
    RequestParser::Result r = RequestParser::Result::kNeedMore;
    while (r == RequestParser::Result::kNeedMore) {
      have = std::min(request.size(), have + piece);
      r = parser.Parse(std::string_view(request).substr(0, have));
    }
    benchmark::DoNotOptimize(parser.args().data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(request.size()));
}
BENCHMARK(BM_ParseLargeBulk)
    ->Args({4 << 10, 0})
    ->Args({1 << 20, 0})
    ->Args({1 << 20, 16 << 10})
    ->Args({16 << 20, 16 << 10});

// A typical mix of replies appended to one reused output buffer.
void BM_WriteReplies(benchmark::State& state) {
  std::string out;
  ReplyWriter writer(out);
  const std::string body(64, 'b');
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < 100; ++i) {
      writer.Status("OK");
      writer.Integer(1234567890123LL + i);
      writer.ArrayHeader(3);
      writer.Bulk("myqueue");
      writer.Bulk("D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1");
      writer.Bulk(body);
      writer.NullBulk();
      writer.Error("ERR unknown command 'FOO'");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * 100 * 8);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_WriteReplies);

constexpr std::string_view kJobId = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
constexpr int kReplies = 32;  // one pipelined batch

// ADDJOB's reply, the job ID as a status (+D-...), 32 to a batch: once per job produced.
void BM_WriteJobIdStatus(benchmark::State& state) {
  std::string out;
  ReplyWriter writer(out);
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kReplies; ++i) writer.Status(kJobId);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kReplies);
}
BENCHMARK(BM_WriteJobIdStatus);

// The same replies as the ADDJOB handler wrote them until a09bdf1, Status(id.ToString()):
// a 40-byte std::string (past the small-string buffer, so a heap allocation) per reply.
// The handler now formats the ID on the stack, as BM_WriteJobIdStatus does.
void BM_WriteJobIdStatusViaString(benchmark::State& state) {
  std::string out;
  ReplyWriter writer(out);
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kReplies; ++i) {
      const std::string id(kJobId);
      writer.Status(id);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kReplies);
}
BENCHMARK(BM_WriteJobIdStatusViaString);

// The job ID as a bulk ($40), as in GETJOB's entries, JSCAN and the module's ADDJOB.
void BM_WriteJobIdBulk(benchmark::State& state) {
  std::string out;
  ReplyWriter writer(out);
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kReplies; ++i) writer.Bulk(kJobId);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kReplies);
}
BENCHMARK(BM_WriteJobIdBulk);

constexpr std::string_view kQueue = "orders";

// One job of a GETJOB reply: [queue, id, body] or, WITHCOUNTERS, the counters as well.
void WriteJob(ReplyWriter& writer, std::string_view body, bool withcounters) {
  writer.ArrayHeader(withcounters ? 7 : 3);
  writer.Bulk(kQueue);
  writer.Bulk(kJobId);
  writer.Bulk(body);
  if (withcounters) {
    writer.Bulk("nacks");
    writer.Integer(0);
    writer.Bulk("additional-deliveries");
    writer.Integer(1);
  }
}

// A GETJOB reply of range(0) jobs (COUNT) with 100-byte bodies, range(1): WITHCOUNTERS,
// written straight into the output buffer: the consumer's reply, once per job consumed.
void BM_WriteGetJobReply(benchmark::State& state) {
  const std::string body(100, 'b');
  const auto count = static_cast<size_t>(state.range(0));
  const bool withcounters = state.range(1) != 0;
  std::string out;
  ReplyWriter writer(out);
  for (auto _ : state) {
    out.clear();
    writer.ArrayHeader(count);
    for (size_t i = 0; i < count; ++i) WriteJob(writer, body, withcounters);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_WriteGetJobReply)->Args({1, 0})->Args({32, 0})->Args({32, 1});

// The same reply built the way the GETJOB handler did it until item 21 of
// docs/benchmarks.md: each job formatted into a std::string of its own, reserved to its
// size, on the queue's shard, then copied in with Raw. The difference with BM_WriteGetJobReply is the cost of that
// staging (before the reserve it was 3.7 times the direct write).
void BM_WriteGetJobReplyViaStrings(benchmark::State& state) {
  const std::string body(100, 'b');
  const auto count = static_cast<size_t>(state.range(0));
  const bool withcounters = state.range(1) != 0;
  std::string out;
  ReplyWriter writer(out);
  std::vector<std::string> jobs;
  for (auto _ : state) {
    out.clear();
    jobs.clear();
    for (size_t i = 0; i < count; ++i) {
      std::string s;
      s.reserve(kQueue.size() + body.size() + (withcounters ? 128 : 80));
      ReplyWriter w(s);
      WriteJob(w, body, withcounters);
      jobs.push_back(std::move(s));
    }
    writer.ArrayHeader(jobs.size());
    for (const std::string& job : jobs) writer.Raw(job);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_WriteGetJobReplyViaStrings)->Args({1, 0})->Args({32, 0})->Args({32, 1});

}  // namespace
}  // namespace disque::resp
