// The job command family (PROTOCOL.md 3): ADDJOB, GETJOB, ACKJOB, FASTACK, DELJOB, SHOW,
// LOADJOB, ENQUEUE, NACK, DEQUEUE, WORKING, JSCAN. Each handler parses its arguments
// on the client's shard, then runs the engine operation on the shard that owns the
// queue or the job (engine_access.h); commands naming several queues or jobs fan out.

#include <sys/socket.h>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <unordered_set>

#include "disque/common/strings.h"
#include "disque/server/client.h"
#include "disque/server/replies.h"
#include "engine_access.h"

namespace disque::server {

void AppendJob(resp::ReplyWriter& reply, const engine::Job& job, bool withcounters) {
  char id[engine::kJobIdLen];
  job.id.Format(id);
  reply.ArrayHeader(withcounters ? 7 : 3);
  reply.Bulk(job.queue());
  reply.Bulk(std::string_view(id, sizeof id));
  reply.Bulk(job.body());
  if (withcounters) {
    reply.Bulk("nacks");
    reply.Integer(job.nacks);
    reply.Bulk("additional-deliveries");
    reply.Integer(job.additional_deliveries);
  }
}

void AppendShow(resp::ReplyWriter& reply, const engine::Engine& engine, const engine::Job& job) {
  char id[engine::kJobIdLen];
  job.id.Format(id);
  auto optional_int = [&reply](std::optional<int64_t> v) {
    if (v) {
      reply.Integer(*v);
    } else {
      reply.NullBulk();
    }
  };
  reply.ArrayHeader(30);
  reply.Bulk("id");
  reply.Bulk(std::string_view(id, sizeof id));
  reply.Bulk("queue");
  reply.Bulk(job.queue());
  reply.Bulk("state");
  reply.Bulk(engine::JobStateName(job.state));
  reply.Bulk("repl");
  reply.Integer(job.repl);
  reply.Bulk("ttl");
  reply.Integer(engine.TtlLeft(job));
  reply.Bulk("ctime");
  reply.Integer(static_cast<int64_t>(job.ctime));
  reply.Bulk("delay");
  reply.Integer(job.delay);
  reply.Bulk("retry");
  reply.Integer(job.retry);
  reply.Bulk("nacks");
  reply.Integer(job.nacks);
  reply.Bulk("additional-deliveries");
  reply.Integer(job.additional_deliveries);
  // A single node: the only node that may hold a copy is this one, and nothing is
  // waiting for confirmations.
  reply.Bulk("nodes-delivered");
  reply.ArrayHeader(1);
  reply.Bulk(engine.node_id());
  reply.Bulk("nodes-confirmed");
  reply.ArrayHeader(0);
  reply.Bulk("next-requeue-within");
  optional_int(engine.NextRequeueWithin(job));
  reply.Bulk("next-awake-within");
  optional_int(engine.NextAwakeWithin(job));
  reply.Bulk("body");
  reply.Bulk(job.body());
}

std::optional<uint64_t> ParseCursor(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = 0;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return negative ? 0 - v : v;
}

namespace {

using engine::Engine;
using engine::Job;

bool Is(std::string_view arg, std::string_view word) { return EqualsIgnoreCase(arg, word); }

// Validates every ID argument from args[first] on (PROTOCOL.md 2.2): one bad ID means
// nothing is done.
bool ValidateIds(CommandContext& ctx, size_t first) {
  for (size_t i = first; i < ctx.args.size(); ++i) {
    if (!engine::IsValidJobIdFormat(ctx.args[i])) {
      ctx.reply.Error(replies::kBadId);
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------- ADDJOB

struct AddJobRequest {
  engine::AddJobArgs job;
  int64_t timeout = 0;
  bool async = false;
};

// Parses and validates ADDJOB in the exact order of PROTOCOL.md 3.1 (steps 2-7).
Result<AddJobRequest> ParseAddJob(CommandContext& ctx) {
  AddJobRequest req;
  const auto& args = ctx.args;
  int64_t repl = 0, delay = 0, retry = -1, ttl = engine::kDefaultTtl, maxlen = 0;
  for (size_t i = 4; i < args.size(); ++i) {
    const std::string_view opt = args[i];
    const bool has_value = i + 1 < args.size();
    std::optional<int64_t> v;
    if (Is(opt, "async")) {
      req.async = true;
      continue;
    }
    if (!has_value) return Status::Error("syntax error");
    v = ParseInt64(args[i + 1]);
    if (Is(opt, "replicate")) {
      if (!v || *v <= 0 || *v > 65535) return Status::Error("REPLICATE must be between 1 and 65535");
      repl = *v;
    } else if (Is(opt, "delay")) {
      if (!v || *v < 0) return Status::Error("DELAY time must be a non negative number");
      delay = *v;
    } else if (Is(opt, "retry")) {
      if (!v || *v < 0) return Status::Error("RETRY time must be a non negative number");
      retry = *v;
    } else if (Is(opt, "ttl")) {
      if (!v || *v <= 0) return Status::Error("TTL must be a number > 0");
      ttl = *v;
    } else if (Is(opt, "maxlen")) {
      if (!v || *v <= 0) return Status::Error("MAXLEN must be a positive number");
      maxlen = *v;
    } else {
      return Status::Error("syntax error");
    }
    ++i;
  }
  const std::optional<int64_t> timeout = ParseInt64(args[3]);
  if (!timeout) return Status::Error("timeout is not an integer or out of range");
  if (*timeout < 0) return Status::Error("timeout is negative");
  req.timeout = *timeout;

  // A single node: the cluster has one member and no other reachable node.
  const int64_t cluster_size = 1, reachable = 0;
  if (repl == 0) repl = std::min<int64_t>(3, cluster_size);
  if (repl > 1 && retry == 0) {
    return Status::Error("With RETRY set to 0 please explicitly set  REPLICATE to 1 (at-most-once delivery)");
  }
  if (delay >= ttl) {
    return Status::Error("The specified DELAY is greater than TTL. Job refused since would never be delivered");
  }
  if (retry == -1) retry = std::max<int64_t>(1, std::min(ttl / 10, engine::kDefaultRetryMax));

  // Above 75 % of maxmemory this node keeps no copy (external replication).
  const bool external = ctx.server.MemoryLevel(ctx.shard.config()) >= 1;
  const int64_t needed = external ? repl : repl - 1;
  if (needed > reachable) {
    if (external && needed - 1 == reachable) {
      return Status(Code::kNoRepl,
                    "Not enough reachable nodes for the requested replication level, since I'm unable to hold a "
                    "copy of the message for the following reason: I'm out of memory");
    }
    return Status(Code::kNoRepl, "Not enough reachable nodes for the requested replication level");
  }
  req.job.queue = args[1];
  req.job.body = args[2];
  req.job.repl = static_cast<uint16_t>(repl);
  req.job.delay = static_cast<uint32_t>(std::min<int64_t>(delay, UINT32_MAX));
  req.job.retry = static_cast<uint32_t>(std::min<int64_t>(retry, UINT32_MAX));
  req.job.ttl = ttl;
  req.job.maxlen = maxlen;
  return req;
}

// ADDJOB <queue> <body> <ms-timeout> [options]
asio::awaitable<void> AddJob(CommandContext& ctx) {
  Result<AddJobRequest> req = ParseAddJob(ctx);
  if (!req.ok()) {
    ctx.ReplyError(req.status());
    co_return;
  }
  const engine::AddJobArgs job_args = req->job;
  auto add = [job_args](Engine& e) -> Result<std::string> {
    Result<const Job*> job = e.AddJob(job_args);
    if (!job.ok()) return job.status();
    return (*job)->id.ToString();
  };
  Shard& owner = QueueShard(ctx.server, job_args.queue);
  Result<std::string> id = co_await OnEngine(owner, std::move(add));
  if (id.ok()) {
    ctx.reply.Status(*id);
  } else {
    ctx.ReplyError(id.status());
  }
}

// ---------------------------------------------------------------------------- GETJOB

struct GetJobRequest {
  bool nohang = false;
  bool withcounters = false;
  int64_t timeout = 0;  // ms, 0 = forever
  int64_t count = 1;
  std::vector<std::string_view> queues;  // as given, duplicates included
};

Result<GetJobRequest> ParseGetJob(CommandContext& ctx) {
  GetJobRequest req;
  const auto& args = ctx.args;
  size_t i = 1;
  bool from = false;
  for (; i < args.size(); ++i) {
    const std::string_view opt = args[i];
    const bool has_value = i + 1 < args.size();
    if (Is(opt, "nohang")) {
      req.nohang = true;
    } else if (Is(opt, "withcounters")) {
      req.withcounters = true;
    } else if (Is(opt, "timeout") && has_value) {
      const std::optional<int64_t> v = ParseInt64(args[++i]);
      if (!v) return Status::Error("timeout is not an integer or out of range");
      if (*v < 0) return Status::Error("timeout is negative");
      req.timeout = *v;
    } else if (Is(opt, "count") && has_value) {
      const std::optional<int64_t> v = ParseInt64(args[++i]);
      if (!v || *v <= 0) return Status::Error("COUNT must be a number greater than zero");
      req.count = *v;
    } else if (Is(opt, "from")) {
      from = true;
      ++i;
      break;
    } else {
      return Status::Error("syntax error");
    }
  }
  if (!from || i >= args.size()) return Status::Error("syntax error");
  req.queues.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return req;
}

// A client blocked in GETJOB (engine::Waiter). Registered on the queues' shards; the
// first shard with a job claims it, formats the reply there and posts it to the
// client's shard, which wakes the session by cancelling its timer.
class BlockedGetJob final : public engine::Waiter, public std::enable_shared_from_this<BlockedGetJob> {
 public:
  BlockedGetJob(Shard& home, bool withcounters) : home_(home), withcounters_(withcounters) {}

  bool Claim() override {
    bool expected = false;
    return claimed_.compare_exchange_strong(expected, true, std::memory_order_acq_rel);
  }
  bool live() const override { return !claimed_.load(std::memory_order_acquire); }

  void Deliver(const Job* job) override {
    std::string reply;
    resp::ReplyWriter w(reply);
    if (job == nullptr) {
      w.NullArray();
    } else {
      w.ArrayHeader(1);  // exactly one job, whatever COUNT was
      AppendJob(w, *job, withcounters_);
    }
    auto self = shared_from_this();
    asio::post(home_.context(), [self, reply = std::move(reply)]() mutable {
      self->result = std::move(reply);
      if (self->timer != nullptr) self->timer->cancel();
    });
  }

  // Home shard only.
  std::optional<std::string> result;
  asio::steady_timer* timer = nullptr;

 private:
  Shard& home_;
  const bool withcounters_;
  std::atomic<bool> claimed_{false};
};

// Queue names grouped by owning shard, distinct, in first-seen order.
std::map<int, std::vector<std::string>> GroupQueuesByShard(Server& server, const std::vector<std::string_view>& queues) {
  std::map<int, std::vector<std::string>> groups;
  std::unordered_set<std::string_view> seen;
  for (std::string_view q : queues) {
    if (seen.insert(q).second) groups[QueueShard(server, q).id()].emplace_back(q);
  }
  return groups;
}

// Takes up to COUNT jobs: passes over the queues in order, at most one job per queue
// per pass, until COUNT jobs or a pass that takes nothing. Queues on several shards are
// done in two rounds: their fetchable lengths, then the pops the passes would make.
asio::awaitable<std::vector<std::string>> FetchJobs(CommandContext& ctx, const GetJobRequest& req) {
  const auto groups = GroupQueuesByShard(ctx.server, req.queues);
  const bool withcounters = req.withcounters;
  std::vector<std::string> jobs;  // one formatted job each, in reply order
  if (groups.size() == 1) {
    const std::vector<std::string_view> queues = req.queues;
    const auto count = static_cast<size_t>(req.count);
    auto fetch = [queues, count, withcounters](Engine& e) {
      std::vector<std::string> out;
      std::vector<const Job*> got;
      while (out.size() < count) {
        const size_t before = out.size();
        for (std::string_view q : queues) {
          if (out.size() == count) break;
          got.clear();
          e.Fetch(q, 1, got);
          for (const Job* job : got) {
            std::string s;
            resp::ReplyWriter w(s);
            AppendJob(w, *job, withcounters);
            out.push_back(std::move(s));
          }
        }
        if (out.size() == before) break;
      }
      return out;
    };
    Shard& owner = ctx.server.shard(groups.begin()->first);
    jobs = co_await OnEngine(owner, std::move(fetch));
    co_return jobs;
  }

  // Round 1: what each queue can give now.
  std::map<std::string, size_t, std::less<>> available;
  for (const auto& [shard_id, names] : groups) {
    auto lengths = [names](Engine& e) {
      std::vector<size_t> n;
      for (const std::string& q : names) n.push_back(e.Fetchable(q));
      return n;
    };
    Shard& owner = ctx.server.shard(shard_id);
    const std::vector<size_t> n = co_await OnEngine(owner, std::move(lengths));
    for (size_t i = 0; i < names.size(); ++i) available[names[i]] = n[i];
  }
  // The passes, simulated on those lengths.
  std::vector<std::string_view> order;
  std::map<std::string, size_t, std::less<>> take;
  while (static_cast<int64_t>(order.size()) < req.count) {
    const size_t before = order.size();
    for (std::string_view q : req.queues) {
      if (static_cast<int64_t>(order.size()) == req.count) break;
      auto it = available.find(q);
      if (it->second == 0) continue;
      --it->second;
      ++take[it->first];
      order.push_back(q);
    }
    if (order.size() == before) break;
  }
  if (order.empty()) co_return jobs;
  // Round 2: the pops (a concurrent consumer may leave fewer).
  std::map<std::string, std::vector<std::string>, std::less<>> fetched;
  for (const auto& [shard_id, names] : groups) {
    std::vector<std::pair<std::string, size_t>> wanted;
    for (const std::string& q : names) {
      auto it = take.find(q);
      if (it != take.end()) wanted.emplace_back(q, it->second);
    }
    if (wanted.empty()) continue;
    auto pop = [wanted, withcounters](Engine& e) {
      std::vector<std::vector<std::string>> out;
      std::vector<const Job*> got;
      for (const auto& [q, n] : wanted) {
        got.clear();
        e.Fetch(q, n, got);
        auto& list = out.emplace_back();
        for (const Job* job : got) {
          std::string s;
          resp::ReplyWriter w(s);
          AppendJob(w, *job, withcounters);
          list.push_back(std::move(s));
        }
      }
      return out;
    };
    Shard& owner = ctx.server.shard(shard_id);
    std::vector<std::vector<std::string>> out = co_await OnEngine(owner, std::move(pop));
    for (size_t i = 0; i < wanted.size(); ++i) fetched[wanted[i].first] = std::move(out[i]);
  }
  std::map<std::string, size_t, std::less<>> next;
  for (std::string_view q : order) {
    auto it = fetched.find(q);
    size_t& i = next[std::string(q)];
    if (it != fetched.end() && i < it->second.size()) jobs.push_back(std::move(it->second[i++]));
  }
  co_return jobs;
}

// Everything a blocked GETJOB must undo, whichever way it ends (served, timed out, the
// client gone, or an exception from a shard while registering): the waiter is claimed
// so no shard delivers to it any more, the pointers to the session's timer are
// cleared, the socket watch ends, and the registrations are dropped (posted; nobody
// waits for that).
class BlockScope {
 public:
  BlockScope(Server& server, Client& client, std::shared_ptr<BlockedGetJob> waiter, asio::steady_timer& timer,
             const std::map<int, std::vector<std::string>>& groups)
      : server_(server), client_(client), waiter_(std::move(waiter)), groups_(groups) {
    waiter_->timer = &timer;
    client_.set_block_timer(&timer);
  }
  BlockScope(const BlockScope&) = delete;
  BlockScope& operator=(const BlockScope&) = delete;
  ~BlockScope() {
    waiter_->Claim();
    waiter_->timer = nullptr;
    client_.set_block_timer(nullptr);
    *watching = false;
    asio::error_code ignored;
    client_.connection().socket().cancel(ignored);
    for (const auto& [shard_id, names] : groups_) {
      Shard& owner = server_.shard(shard_id);
      asio::post(owner.context(), [&owner, waiter = waiter_, names] {
        for (const std::string& q : names) owner.engine().Unblock(q, waiter.get());
      });
    }
  }

  // Shared with the socket watcher, which must not act once the scope ended.
  std::shared_ptr<bool> watching = std::make_shared<bool>(true);

 private:
  Server& server_;
  Client& client_;
  std::shared_ptr<BlockedGetJob> waiter_;
  const std::map<int, std::vector<std::string>>& groups_;
};

// Blocks the client on every listed queue until a job arrives (one job), the timeout
// passes or the client goes away. Returns the reply to send.
asio::awaitable<std::string> BlockForJob(CommandContext& ctx, const GetJobRequest& req) {
  Client& client = ctx.client;
  Shard& home = ctx.shard;
  const auto groups = GroupQueuesByShard(ctx.server, req.queues);
  auto waiter = std::make_shared<BlockedGetJob>(home, req.withcounters);
  asio::steady_timer timer(home.context());
  BlockScope scope(ctx.server, client, waiter, timer, groups);

  // A peer that disconnects while blocked is noticed at once, not at the timeout: watch
  // the socket and close the client on EOF. If pipelined data arrives first the watch
  // ends; the shard cron then looks for a hang-up (Shard::Cron).
  Client* watched = &client;
  client.connection().socket().async_wait(
      asio::socket_base::wait_read, [watching = scope.watching, watched](const asio::error_code& ec) {
        if (ec || !*watching) return;
        char byte;
        const ssize_t r = ::recv(watched->connection().fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) watched->Close();
      });

  for (const auto& [shard_id, names] : groups) {
    auto block = [waiter, names](Engine& e) {
      for (const std::string& q : names) e.Block(q, waiter);
      return 0;
    };
    Shard& owner = ctx.server.shard(shard_id);
    const int done = co_await OnEngine(owner, std::move(block));
    (void)done;
  }

  using Clock = std::chrono::steady_clock;
  // Past about 100 years the timeout is as good as none (and steady_clock arithmetic
  // would overflow).
  constexpr int64_t kForeverMs = int64_t{100} * 365 * 86400 * 1000;
  auto deadline = Clock::time_point::max();
  if (req.timeout > 0 && req.timeout < kForeverMs) deadline = Clock::now() + std::chrono::milliseconds(req.timeout);
  bool timed_out = false;
  while (!waiter->result) {
    // Checked before every wait: the client may have been closed while registrations
    // were still in flight, when cancelling the timer had no effect.
    const bool gone = client.connection().closed() || home.shutting_down();
    if (gone || Clock::now() >= deadline) {
      if (waiter->Claim()) {
        timed_out = true;
        break;
      }
      deadline = Clock::time_point::max();  // a shard claimed it: its reply is on the way
    }
    timer.expires_at(deadline);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (timed_out) co_return std::string("*-1\r\n");
  co_return std::move(*waiter->result);
}

// GETJOB [NOHANG] [TIMEOUT <ms>] [COUNT <n>] [WITHCOUNTERS] FROM <queue> ...
asio::awaitable<void> GetJob(CommandContext& ctx) {
  Result<GetJobRequest> parsed = ParseGetJob(ctx);
  if (!parsed.ok()) {
    ctx.ReplyError(parsed.status());
    co_return;
  }
  const GetJobRequest& req = *parsed;
  std::vector<std::string> jobs = co_await FetchJobs(ctx, req);
  if (!jobs.empty()) {
    ctx.reply.ArrayHeader(jobs.size());
    for (const std::string& job : jobs) ctx.reply.Raw(job);
    co_return;
  }
  if (req.nohang) {
    ctx.reply.NullArray();
    co_return;
  }
  std::string reply = co_await BlockForJob(ctx, req);
  ctx.reply.Raw(reply);
}

// ---------------------------------------------------------------------------- by ID

// Applies `op` to every ID argument on the shard owning it; replies with the number of
// IDs for which it returned true.
using IdOp = bool (*)(Engine&, std::string_view);

asio::awaitable<void> CountIds(CommandContext& ctx, IdOp op) {
  if (!ValidateIds(ctx, 1)) co_return;
  std::map<int, std::vector<std::string_view>> groups;
  for (size_t i = 1; i < ctx.args.size(); ++i) groups[JobShard(ctx.server, ctx.args[i]).id()].push_back(ctx.args[i]);
  int64_t total = 0;
  for (auto& [shard_id, ids] : groups) {
    auto apply = [op, ids = std::move(ids)](Engine& e) {
      int64_t n = 0;
      for (std::string_view id : ids) n += op(e, id);
      return n;
    };
    Shard& owner = ctx.server.shard(shard_id);
    const int64_t n = co_await OnEngine(owner, std::move(apply));
    total += n;
  }
  ctx.reply.Integer(total);
}

bool AckOp(Engine& e, std::string_view id) { return e.Ack(id); }
// Single node: FASTACK and DELJOB both delete the local copy (there is no one to tell).
bool DeleteOp(Engine& e, std::string_view id) { return e.Delete(id); }
bool EnqueueOp(Engine& e, std::string_view id) { return e.Requeue(id, false); }
bool NackOp(Engine& e, std::string_view id) { return e.Requeue(id, true); }
bool DequeueOp(Engine& e, std::string_view id) { return e.Dequeue(id); }

// ACKJOB, FASTACK, DELJOB, ENQUEUE, NACK, DEQUEUE <id> ...: one handler per operation.
template <IdOp kOp>
asio::awaitable<void> IdCommand(CommandContext& ctx) {
  IdOp op = kOp;  // a named argument for co_await (GCC 12)
  co_await CountIds(ctx, op);
}

// SHOW <id>
asio::awaitable<void> Show(CommandContext& ctx) {
  if (!ValidateIds(ctx, 1)) co_return;
  const std::string_view id = ctx.args[1];
  auto show = [id](Engine& e) {
    std::string out;
    resp::ReplyWriter w(out);
    if (const Job* job = e.Find(id)) {
      AppendShow(w, e, *job);
    } else {
      w.NullBulk();
    }
    return out;
  };
  Shard& owner = JobShard(ctx.server, id);
  const std::string out = co_await OnEngine(owner, std::move(show));
  ctx.reply.Raw(out);
}

// WORKING <id>
asio::awaitable<void> Working(CommandContext& ctx) {
  if (!ValidateIds(ctx, 1)) co_return;
  const std::string_view id = ctx.args[1];
  auto working = [id](Engine& e) { return e.Working(id); };
  Shard& owner = JobShard(ctx.server, id);
  const Result<int64_t> retry = co_await OnEngine(owner, std::move(working));
  if (retry.ok()) {
    ctx.reply.Integer(*retry);
  } else {
    ctx.ReplyError(retry.status());
  }
}

// LOADJOB <serialized>: only the AOF loader may run it.
void LoadJob(CommandContext& ctx) { ctx.reply.Error(replies::kLoadJobRefused); }

// JSCAN [<cursor>] [COUNT <n>] [BUSYLOOP] [QUEUE <q>] [STATE <s>]... [REPLY all|id]
asio::awaitable<void> JScan(CommandContext& ctx) {
  const auto& args = ctx.args;
  std::optional<uint64_t> cursor;
  ScanBudget budget;
  std::optional<std::string> queue;
  uint8_t states = 0;  // bit per engine::JobState; 0 = any
  bool reply_all = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view opt = args[i];
    const bool has_value = i + 1 < args.size();
    if (Is(opt, "count") && has_value) {
      const std::optional<int64_t> v = ParseInt64(args[++i]);
      if (!v) co_return ctx.reply.Error(replies::kNotInteger);
      budget.count = *v;
    } else if (Is(opt, "busyloop")) {
      budget.unlimited = true;
    } else if (Is(opt, "queue") && has_value) {
      queue.emplace(args[++i]);
    } else if (Is(opt, "state") && has_value) {
      const std::string_view name = args[++i];
      bool known = false;
      for (auto s : {engine::JobState::kWaitRepl, engine::JobState::kActive, engine::JobState::kQueued,
                     engine::JobState::kAcked}) {
        if (Is(name, engine::JobStateName(s))) {
          states |= static_cast<uint8_t>(1 << static_cast<int>(s));
          known = true;
        }
      }
      if (!known) co_return ctx.reply.Error("ERR Invalid job state name");
    } else if (Is(opt, "reply") && has_value) {
      const std::string_view type = args[++i];
      if (Is(type, "all")) {
        reply_all = true;
      } else if (Is(type, "id")) {
        reply_all = false;
      } else {
        co_return ctx.reply.Error("ERR Invalid REPLY type, try ID or ALL");
      }
    } else {
      if (cursor) co_return ctx.reply.Error(replies::kSyntaxError);
      cursor = ParseCursor(opt);
      if (!cursor) co_return ctx.reply.Error(replies::kInvalidCursor);
    }
  }
  if (budget.count < 0) budget.unlimited = true;
  auto bucket = [queue, states, reply_all](Engine& e, uint64_t key, resp::ReplyWriter& w, size_t& added) {
    return e.ScanJobsBucket(key, [&](const Job* job) {
      if (queue && job->queue() != *queue) return;
      if (states != 0 && !(states & (1 << static_cast<int>(job->state)))) return;
      if (reply_all) {
        AppendShow(w, e, *job);
      } else {
        char id[engine::kJobIdLen];
        job->id.Format(id);
        w.Status(std::string_view(id, sizeof id));  // a status reply, as Disque sends it
      }
      ++added;
    });
  };
  const uint64_t start = cursor.value_or(0);
  co_await RunScan(ctx, start, budget, std::move(bucket));
}

// Arity and flags as PROTOCOL.md 1.5 gives them.
constexpr std::array kJobCommands{
    Command{"addjob", -4, kWrite | kDenyOom | kFast, nullptr, AddJob},
    Command{"getjob", -2, kWrite | kFast, nullptr, GetJob},
    Command{"ackjob", -1, kWrite | kFast, nullptr, IdCommand<AckOp>},
    Command{"fastack", -1, kWrite | kFast, nullptr, IdCommand<DeleteOp>},
    Command{"deljob", -1, kWrite | kFast, nullptr, IdCommand<DeleteOp>},
    Command{"show", 2, kReadonly | kFast, nullptr, Show},
    Command{"loadjob", 2, kWrite, LoadJob},
    Command{"jscan", -1, kReadonly, nullptr, JScan},
    Command{"enqueue", -1, kWrite | kDenyOom | kFast, nullptr, IdCommand<EnqueueOp>},
    Command{"nack", -1, kWrite | kDenyOom | kFast, nullptr, IdCommand<NackOp>},
    Command{"dequeue", -1, kWrite | kFast, nullptr, IdCommand<DequeueOp>},
    Command{"working", 2, kWrite | kFast, nullptr, Working},
};

}  // namespace

std::span<const Command> JobCommands() { return kJobCommands; }

}  // namespace disque::server
