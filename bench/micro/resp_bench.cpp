// Micro benchmarks of the RESP layer: the parser over a pipelined buffer and over one big
// bulk (whole, and arriving in socket-sized pieces), and the reply writer.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>

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

}  // namespace
}  // namespace disque::resp
