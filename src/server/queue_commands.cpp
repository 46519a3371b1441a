// The queue command family (PROTOCOL.md 4): QLEN, QPEEK, QSTAT, QSCAN, PAUSE. Each runs
// on the shard that owns the queue; QSCAN walks every shard.

#include "disque/common/strings.h"
#include "disque/server/replies.h"
#include "engine_access.h"

namespace disque::server {
namespace {

using engine::Engine;
using engine::Job;
using engine::Queue;

bool Is(std::string_view arg, std::string_view word) { return EqualsIgnoreCase(arg, word); }

// QLEN <queue>
asio::awaitable<void> QLen(CommandContext& ctx) {
  const std::string_view name = ctx.args[1];
  auto qlen = [name](Engine& e) {
    const Queue* q = e.FindQueue(name);
    return static_cast<int64_t>(q ? q->length() : 0);
  };
  Shard& owner = QueueShard(ctx.server, name);
  const int64_t n = co_await OnEngine(ctx, owner, std::move(qlen));
  ctx.reply.Integer(n);
}

// QPEEK <queue> <count>
asio::awaitable<void> QPeek(CommandContext& ctx) {
  const std::optional<int64_t> count = ParseInt64(ctx.args[2]);
  if (!count) co_return ctx.reply.Error(replies::kNotInteger);
  const std::string_view name = ctx.args[1];
  const int64_t n = *count;
  auto peek = [name, n](Engine& e) {
    std::vector<const Job*> jobs;
    e.Peek(name, n, jobs);
    std::string out;
    resp::ReplyWriter w(out);
    w.ArrayHeader(jobs.size());
    for (const Job* job : jobs) AppendJob(w, *job, false);
    return out;
  };
  Shard& owner = QueueShard(ctx.server, name);
  const std::string out = co_await OnEngine(ctx, owner, std::move(peek));
  ctx.reply.Raw(out);
}

// QSTAT <queue>
asio::awaitable<void> QStat(CommandContext& ctx) {
  const std::string_view name = ctx.args[1];
  auto stat = [name](Engine& e) {
    std::string out;
    resp::ReplyWriter w(out);
    Queue* q = e.FindQueue(name);
    if (q == nullptr) {
      w.NullArray();
      return out;
    }
    const int64_t now = e.clock().NowMs();
    w.ArrayHeader(20);
    w.Bulk("name");
    w.Bulk(q->name);
    w.Bulk("len");
    w.Integer(static_cast<int64_t>(q->length()));
    w.Bulk("age");
    w.Integer((now - q->ctime_ms) / 1000);
    w.Bulk("idle");
    w.Integer((now - q->atime_ms) / 1000);
    w.Bulk("blocked");
    w.Integer(static_cast<int64_t>(q->live_waiters()));
    // Federation (PROTOCOL.md II 9): the nodes that sent jobs in the last 5 s.
    const std::vector<uint32_t> responders = e.Responders(*q);
    w.Bulk("import-from");
    w.ArrayHeader(responders.size());
    for (uint32_t n : responders) w.Bulk(e.nodes().Id(n));
    w.Bulk("import-rate");
    w.Integer(e.ImportRate(*q));
    w.Bulk("jobs-in");
    w.Integer(static_cast<int64_t>(q->jobs_in));
    w.Bulk("jobs-out");
    w.Integer(static_cast<int64_t>(q->jobs_out));
    w.Bulk("pause");
    w.Bulk(engine::PauseName(q->pause));
    return out;
  };
  Shard& owner = QueueShard(ctx.server, name);
  const std::string out = co_await OnEngine(ctx, owner, std::move(stat));
  ctx.reply.Raw(out);
}

// QSCAN [<cursor>] [COUNT <n>] [BUSYLOOP] [MINLEN <n>] [MAXLEN <n>] [IMPORTRATE <n>]
asio::awaitable<void> QScan(CommandContext& ctx) {
  const auto& args = ctx.args;
  std::optional<uint64_t> cursor;
  ScanBudget budget;
  int64_t minlen = -1, maxlen = -1, importrate = -1;  // -1: unset
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view opt = args[i];
    const bool has_value = i + 1 < args.size();
    int64_t* target = nullptr;
    if (Is(opt, "count")) target = &budget.count;
    if (Is(opt, "minlen")) target = &minlen;
    if (Is(opt, "maxlen")) target = &maxlen;
    if (Is(opt, "importrate")) target = &importrate;
    if (target != nullptr && has_value) {
      const std::optional<int64_t> v = ParseInt64(args[++i]);
      if (!v) co_return ctx.reply.Error(replies::kNotInteger);
      *target = *v;
    } else if (Is(opt, "busyloop")) {
      budget.unlimited = true;
    } else {
      // Anything else is the cursor, including a keyword with no value after it.
      if (cursor) co_return ctx.reply.Error(replies::kSyntaxError);
      cursor = ParseCursor(opt);
      if (!cursor) co_return ctx.reply.Error(replies::kInvalidCursor);
    }
  }
  if (budget.count < 0) budget.unlimited = true;
  auto bucket = [minlen, maxlen, importrate](Engine& e, uint64_t key, resp::ReplyWriter& w, size_t& added) {
    return e.ScanQueuesBucket(key, [&](const Queue* q) {
      const auto len = static_cast<int64_t>(q->length());
      const int64_t rate = e.ImportRate(*q);
      if (minlen >= 0 && len < minlen) return;
      if (maxlen != -1 && len > maxlen) return;  // any other negative MAXLEN excludes all (QUIRK)
      if (importrate >= 0 && rate < importrate) return;
      w.Bulk(q->name);
      ++added;
    });
  };
  const uint64_t start = cursor.value_or(0);
  co_await RunScan(ctx, start, budget, std::move(bucket));
}

// PAUSE <queue> <option> ...
asio::awaitable<void> Pause(CommandContext& ctx) {
  uint8_t flags = 0;
  bool set = false;
  bool bcast = false;
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    const std::string_view opt = ctx.args[i];
    if (Is(opt, "in")) {
      flags |= engine::kPauseIn;
      set = true;
    } else if (Is(opt, "out")) {
      flags |= engine::kPauseOut;
      set = true;
    } else if (Is(opt, "all")) {
      flags |= engine::kPauseAll;
      set = true;
    } else if (Is(opt, "none")) {
      flags = 0;  // resets what was accumulated so far
      set = true;
    } else if (Is(opt, "bcast")) {
      bcast = true;
    } else if (Is(opt, "state")) {
      // only the reply
    } else {
      co_return ctx.reply.Error(replies::kSyntaxError);
    }
  }
  const std::string_view name = ctx.args[1];
  const std::optional<uint8_t> new_flags = set ? std::optional<uint8_t>(flags) : std::nullopt;
  auto pause = [name, new_flags, bcast](Engine& e) { return e.Pause(name, new_flags, bcast); };
  Shard& owner = QueueShard(ctx.server, name);
  const uint8_t result = co_await OnEngine(ctx, owner, std::move(pause));
  ctx.reply.Status(engine::PauseName(result));
}

// Arity and flags as PROTOCOL.md 1.5 gives them.
constexpr std::array kQueueCommands{
    Command{"qlen", 2, kReadonly | kFast, nullptr, QLen},
    Command{"qpeek", 3, kReadonly, nullptr, QPeek},
    Command{"qstat", 2, kReadonly | kFast, nullptr, QStat},
    Command{"qscan", -1, kReadonly, nullptr, QScan},
    Command{"pause", -3, kReadonly | kFast, nullptr, Pause},
};

}  // namespace

std::span<const Command> QueueCommands() { return kQueueCommands; }

}  // namespace disque::server
