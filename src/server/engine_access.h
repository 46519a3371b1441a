#pragma once

// What the job and queue command families share: routing a queue or a job ID to the
// shard that owns it, running an engine operation there, the reply shapes of jobs, and
// the QSCAN/JSCAN cursor. Private to the server layer.

#include <asio/awaitable.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "disque/engine/engine.h"
#include "disque/server/client.h"
#include "disque/server/command.h"
#include "disque/server/server.h"
#include "disque/server/shard.h"

namespace disque::server {

// The shard owning a queue, and the shard owning a job (the slot in its ID).
inline Shard& QueueShard(Server& server, std::string_view queue) {
  return server.shard(engine::QueueSlot(queue) % server.shard_count());
}
inline Shard& JobShard(Server& server, std::string_view id_text) {
  return server.shard(engine::SlotOfJobIdText(id_text) % server.shard_count());
}

// The shard owning every name in `names` (at least one), routed by QueueShard or
// JobShard; nullptr when they belong to several.
inline Shard* SoleOwner(Server& server, std::span<const std::string_view> names,
                        Shard& (*route)(Server&, std::string_view)) {
  Shard& first = route(server, names.front());
  if (server.shard_count() > 1) {
    for (std::string_view name : names) {
      if (&route(server, name) != &first) return nullptr;
    }
  }
  return &first;
}

// OnEngine on the caller's own shard (`here` is Shard::Current()), where it needs no
// coroutine: fn(engine) runs at once, then the same bookkeeping as OnEngine.
template <typename F>
std::invoke_result_t<F, engine::Engine&> OnOwnEngine(CommandContext& ctx, Shard& here, F&& fn) {
  std::invoke_result_t<F, engine::Engine&> result = fn(here.engine());
  ctx.client.NoteAofPosition(here.JobsChanged());
  return result;
}

// Runs fn(engine) on `target`'s thread, then lets the shard re-arm its job timer and
// hand what the engine journaled to the AOF; the client's reply will wait for that.
template <typename F>
auto OnEngine(CommandContext& ctx, Shard& target, F fn) -> asio::awaitable<std::invoke_result_t<F, engine::Engine&>> {
  using R = std::invoke_result_t<F, engine::Engine&>;
  if (&target == Shard::Current()) {
    // What RunOn does on its own shard, without its coroutine frame.
    R result = OnOwnEngine(ctx, target, fn);
    co_return result;
  }
  auto task = [fn = std::move(fn)](Shard& s) {
    R result = fn(s.engine());
    const uint64_t aof_pos = s.JobsChanged();
    return std::pair<R, uint64_t>(std::move(result), aof_pos);
  };
  std::pair<R, uint64_t> out = co_await Shard::RunOn(target, std::move(task));
  ctx.client.NoteAofPosition(out.second);
  co_return std::move(out.first);
}

// [queue, id, body], or with counters the 7-element form of GETJOB WITHCOUNTERS.
void AppendJob(resp::ReplyWriter& reply, const engine::Job& job, bool withcounters);
// The 30-element SHOW array.
void AppendShow(resp::ReplyWriter& reply, const engine::Engine& engine, const engine::Job& job);

// QSCAN / JSCAN cursors: the shard in the top 10 bits, a position in that shard's
// 54-bit key space below (engine::PointerTable). Iteration runs shard by shard.
struct ScanCursor {
  int shard = 0;
  uint64_t key = 0;
  uint64_t Encode() const { return (static_cast<uint64_t>(shard) << 54) | key; }
  static ScanCursor Decode(uint64_t cursor) {
    return {static_cast<int>(cursor >> 54), cursor & (engine::Engine::kScanEnd - 1)};
  }
};

// A SCAN cursor argument: strtoul semantics as Redis parses cursors (a sign is allowed
// and -1 wraps around; "" is 0), no whitespace, no trailing characters, no overflow.
std::optional<uint64_t> ParseCursor(std::string_view s);

// How far one QSCAN/JSCAN call goes (PROTOCOL.md 4.4): until the iteration ends, COUNT*10
// bucket steps were made, or COUNT items were collected. BUSYLOOP or a negative COUNT
// removes both limits; COUNT 0 makes exactly one step.
struct ScanBudget {
  int64_t count = 100;
  bool unlimited = false;
  int64_t steps = 0;
  size_t items = 0;
  bool Done() const {
    if (unlimited) return false;
    const int64_t max_steps = count > INT64_MAX / 10 ? INT64_MAX : std::max<int64_t>(1, count * 10);
    return steps >= max_steps || static_cast<int64_t>(items) >= count;
  }
};

// Drives a scan across shards. `bucket(engine, key, out)` scans one bucket of one
// shard's table from `key`, appends the formatted items to `out` and returns the next
// key (Engine::kScanEnd at the end of the table). Replies [cursor, items].
template <typename BucketFn>
asio::awaitable<void> RunScan(CommandContext& ctx, uint64_t cursor_arg, ScanBudget budget, BucketFn bucket) {
  ScanCursor cursor = ScanCursor::Decode(cursor_arg);
  std::string items;
  size_t n_items = 0;
  const int shards = ctx.server.shard_count();
  bool finished = cursor.shard >= shards;
  while (!finished) {
    struct Slice {
      uint64_t key;
      std::string items;
      size_t n;
      int64_t steps;
    };
    auto scan_shard = [bucket, key = cursor.key, budget](Shard& s) {
      Slice slice{key, {}, 0, 0};
      ScanBudget b = budget;
      resp::ReplyWriter w(slice.items);
      do {
        size_t added = 0;
        slice.key = bucket(s.engine(), slice.key, w, added);
        slice.n += added;
        b.items += added;
        ++b.steps;
        ++slice.steps;
      } while (slice.key != engine::Engine::kScanEnd && !b.Done());
      return slice;
    };
    Slice slice = co_await Shard::RunOn(ctx.server.shard(cursor.shard), std::move(scan_shard));
    items += slice.items;
    n_items += slice.n;
    budget.items += slice.n;
    budget.steps += slice.steps;
    if (slice.key == engine::Engine::kScanEnd) {
      cursor = {cursor.shard + 1, 0};
      finished = cursor.shard >= shards;
    } else {
      cursor.key = slice.key;
    }
    if (budget.Done()) break;
  }
  ctx.reply.ArrayHeader(2);
  ctx.reply.Bulk(std::to_string(finished ? 0 : cursor.Encode()));
  ctx.reply.ArrayHeader(n_items);
  ctx.reply.Raw(items);
}

}  // namespace disque::server
