// The job command family (PROTOCOL.md 3): ADDJOB, GETJOB, ACKJOB, FASTACK, DELJOB, SHOW,
// LOADJOB, ENQUEUE, NACK, DEQUEUE, WORKING, JSCAN. Each handler parses its arguments
// on the client's shard, then runs the engine operation on the shard that owns the
// queue or the job (engine_access.h); commands naming several queues or jobs fan out.

#include <sys/socket.h>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <span>
#include <unordered_set>

#include "disque/common/strings.h"
#include "disque/server/client.h"
#include "disque/server/replies.h"
#include "engine_access.h"

namespace disque::server {

namespace {

// The 3-element form of a job in a GETJOB reply, [queue, id, body], written at `out`
// (JobReplySize(job) bytes): the bytes ReplyWriter's ArrayHeader and three Bulk calls
// would append, with the ID formatted in place.
size_t JobReplySize(const engine::Job& job) {
  return resp::ArrayHeaderSize(3) + resp::BulkSize(job.queue().size()) + resp::BulkSize(engine::kJobIdLen) +
         resp::BulkSize(job.body().size());
}

char* WriteJobReply(char* out, const engine::Job& job) {
  out = resp::WriteArrayHeader(out, 3);
  out = resp::WriteBulk(out, job.queue());
  out = resp::WriteBulkHeader(out, engine::kJobIdLen);
  job.id.Format(out);
  out += engine::kJobIdLen;
  *out++ = '\r';
  *out++ = '\n';
  return resp::WriteBulk(out, job.body());
}

// Jobs of a GETJOB reply appended to `out`. Without counters the buffer grows once for
// all of them and each is written at a pointer: appending piece by piece (a capacity
// check and a call per piece, the ID formatted on the stack, then copied) was a third of
// the consume scenario's instructions.
void AppendJobs(std::string& out, std::span<const engine::Job* const> jobs, bool withcounters) {
  resp::ReplyWriter w(out);
  if (withcounters) {
    for (const engine::Job* job : jobs) AppendJob(w, *job, true);
    return;
  }
  size_t size = 0;
  for (const engine::Job* job : jobs) size += JobReplySize(*job);
  const size_t start = out.size();
  out.resize(start + size);
  char* p = out.data() + start;
  for (const engine::Job* job : jobs) p = WriteJobReply(p, *job);
}

}  // namespace

void AppendJob(resp::ReplyWriter& reply, const engine::Job& job, bool withcounters) {
  if (!withcounters) {
    const engine::Job* one = &job;
    AppendJobs(reply.buffer(), std::span<const engine::Job* const>(&one, 1), false);
    return;
  }
  char id[engine::kJobIdLen];
  job.id.Format(id);
  reply.ArrayHeader(7);
  reply.Bulk(job.queue());
  reply.Bulk(std::string_view(id, sizeof id));
  reply.Bulk(job.body());
  reply.Bulk("nacks");
  reply.Integer(job.nacks);
  reply.Bulk("additional-deliveries");
  reply.Integer(job.additional_deliveries);
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
  const bool dummy = job.flags & engine::kJobDummyAck;  // no queue, no body
  reply.Bulk("queue");
  if (dummy) {
    reply.NullBulk();
  } else {
    reply.Bulk(job.queue());
  }
  reply.Bulk("state");
  reply.Bulk(engine::JobStateName(job.state));
  reply.Bulk("repl");
  reply.Integer(job.repl);
  reply.Bulk("ttl");
  reply.Integer(engine.TtlLeft(job));
  reply.Bulk("ctime");
  reply.Integer(static_cast<int64_t>(job.ctime));
  reply.Bulk("delay");
  reply.Integer(job.delay());
  reply.Bulk("retry");
  reply.Integer(job.retry);
  reply.Bulk("nacks");
  reply.Integer(job.nacks);
  reply.Bulk("additional-deliveries");
  reply.Integer(job.additional_deliveries);
  auto nodes = [&reply, &engine](const engine::NodeSet* set) {
    reply.ArrayHeader(set != nullptr ? set->size() : 0);
    if (set == nullptr) return;
    for (uint32_t n : *set) reply.Bulk(engine.nodes().Id(n));
  };
  reply.Bulk("nodes-delivered");
  nodes(&job.delivered);
  reply.Bulk("nodes-confirmed");
  nodes(engine.Confirmed(job));
  reply.Bulk("next-requeue-within");
  optional_int(engine.NextRequeueWithin(job));
  reply.Bulk("next-awake-within");
  optional_int(engine.NextAwakeWithin(job));
  reply.Bulk("body");
  if (dummy) {
    reply.NullBulk();
  } else {
    reply.Bulk(job.body());
  }
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

  const cluster::ClusterView& view = ctx.shard.cluster_view();
  const int64_t cluster_size = view.size;
  const auto reachable = static_cast<int64_t>(view.reachable.size());
  if (repl == 0) repl = std::min<int64_t>(3, cluster_size);
  if (repl > 1 && retry == 0) {
    return Status::Error("With RETRY set to 0 please explicitly set  REPLICATE to 1 (at-most-once delivery)");
  }
  if (delay >= ttl) {
    return Status::Error("The specified DELAY is greater than TTL. Job refused since would never be delivered");
  }
  if (retry == -1) retry = std::max<int64_t>(1, std::min(ttl / 10, engine::kDefaultRetryMax));

  // Above 75 % of maxmemory, or while leaving, this node keeps no copy (external
  // replication).
  const bool external = view.leaving || ctx.server.MemoryLevel(ctx.shard.config()) >= 1;
  const int64_t needed = external ? repl : repl - 1;
  if (needed > reachable) {
    if (external && needed - 1 == reachable) {
      return Status(Code::kNoRepl,
                    std::string("Not enough reachable nodes for the requested replication level, since I'm unable to "
                                "hold a copy of the message for the following reason: ") +
                        (view.leaving ? "I'm leaving the cluster" : "I'm out of memory"));
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
  req.job.async = req.async;
  req.job.external = external;
  req.job.timeout_ms = req.timeout;
  return req;
}

// ---------------------------------------------------------------------------- parked clients

// A client parked until a shard posts its reply: a blocked GETJOB or a synchronous
// ADDJOB. Whoever answers first claims it (an atomic flag): the shard that has a job or
// a replication outcome, or the client side (timeout, disconnect). The winning shard
// formats the reply on its own thread and posts it to the client's shard, which wakes
// the session by cancelling its timer.
class Parked : public std::enable_shared_from_this<Parked> {
 public:
  explicit Parked(Shard& home) : home_(home) {}
  virtual ~Parked() = default;

  bool TryClaim() {
    bool expected = false;
    return claimed_.compare_exchange_strong(expected, true, std::memory_order_acq_rel);
  }
  bool claimed() const { return claimed_.load(std::memory_order_acquire); }

  // After a successful claim, from any thread.
  void Post(std::string reply) {
    auto self = shared_from_this();
    asio::post(home_.context(), [self, reply = std::move(reply)]() mutable {
      self->result = std::move(reply);
      if (self->timer != nullptr) self->timer->cancel();
    });
  }
  void PostError(const Status& status) {
    std::string text = "-";
    text.append(CodePrefix(status.code())).append(" ").append(status.message()).append("\r\n");
    Post(std::move(text));
  }

  // Home shard only.
  std::optional<std::string> result;
  asio::steady_timer* timer = nullptr;

 private:
  Shard& home_;
  std::atomic<bool> claimed_{false};
};

// While a client is parked: its session timer is known to the client (CLIENT KILL and
// shutdown cancel it) and the socket is watched, so a peer that hangs up is noticed at
// once, not at the timeout. If pipelined data arrives first the watch ends; the shard
// cron then looks for a hang-up (Shard::Cron). The destructor claims the parked client
// so that no shard answers it any more, and undoes the rest, whichever way the wait
// ended (even by an exception).
class ParkScope {
 public:
  ParkScope(Client& client, std::shared_ptr<Parked> parked, asio::steady_timer& timer)
      : client_(client), parked_(std::move(parked)) {
    parked_->timer = &timer;
    client_.set_block_timer(&timer);
    Client* watched = &client;
    client.connection().socket().async_wait(
        asio::socket_base::wait_read, [watching = watching_, watched](const asio::error_code& ec) {
          if (ec || !*watching) return;
          char byte;
          const ssize_t r = ::recv(watched->connection().fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) watched->Close();
        });
  }
  ParkScope(const ParkScope&) = delete;
  ParkScope& operator=(const ParkScope&) = delete;
  ~ParkScope() {
    parked_->TryClaim();
    parked_->timer = nullptr;
    client_.set_block_timer(nullptr);
    *watching_ = false;
    asio::error_code ignored;
    client_.connection().socket().cancel(ignored);
  }

 private:
  Client& client_;
  std::shared_ptr<Parked> parked_;
  std::shared_ptr<bool> watching_ = std::make_shared<bool>(true);  // shared with the watcher
};

using SteadyClock = std::chrono::steady_clock;

// Waits on `timer` until the parked client has its reply (returned), or the deadline
// passes or the client goes away (nullopt: the client side claimed it). Call inside a
// ParkScope.
asio::awaitable<std::optional<std::string>> WaitParked(CommandContext& ctx, Parked& parked, asio::steady_timer& timer,
                                                       SteadyClock::time_point deadline) {
  Client& client = ctx.client;
  Shard& home = ctx.shard;
  if (!parked.result) co_await client.FlushBeforeBlocking();
  while (!parked.result) {
    // Checked before every wait: the client may have been closed while the shards were
    // still being told about it, when cancelling the timer had no effect.
    const bool gone = client.connection().closed() || home.shutting_down();
    if (gone || SteadyClock::now() >= deadline) {
      if (parked.TryClaim()) co_return std::nullopt;
      deadline = SteadyClock::time_point::max();  // a shard claimed it: its reply is on the way
    }
    timer.expires_at(deadline);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(parked.result);
}

// A client waiting for its job to reach REPLICATE copies (engine::ReplWaiter).
class BlockedAddJob final : public engine::ReplWaiter, public Parked {
 public:
  explicit BlockedAddJob(Shard& home) : Parked(home) {}
  bool Claim() override { return TryClaim(); }
  void Replicated(const engine::JobId& id) override { Post("+" + id.ToString() + "\r\n"); }
  void Fail(const Status& status) override { PostError(status); }
};

// ADDJOB <queue> <body> <ms-timeout> [options]
// ADDJOB's reply when it did not wait for replication: the job's ID.
void ReplyJobId(CommandContext& ctx, const engine::JobId& id) {
  char text[engine::kJobIdLen];
  id.Format(text);
  ctx.reply.Status(std::string_view(text, sizeof text));
}

// Synchronous replication: the client waits for the copies (PROTOCOL.md II 6).
bool WaitsForReplication(const engine::AddJobArgs& job_args) {
  return !job_args.async && (job_args.external || job_args.repl > 1);
}

// The engine's part of ADDJOB, on the queue's shard.
Result<engine::JobId> AddOnEngine(Engine& e, const engine::AddJobArgs& job_args,
                                  std::shared_ptr<engine::ReplWaiter> waiter) {
  engine::JobId id;
  Result<const Job*> job = e.AddJob(job_args, std::move(waiter), &id);
  if (!job.ok()) return job.status();
  return id;
}

// ADDJOB's common case at once (Command::now): the queue on the client's own shard and
// no replication to wait for. Anything else is left to AddJob.
bool AddJobNow(CommandContext& ctx) {
  Result<AddJobRequest> req = ParseAddJob(ctx);
  if (!req.ok()) {
    ctx.ReplyError(req.status());
    return true;
  }
  const engine::AddJobArgs& job_args = req->job;
  Shard& owner = QueueShard(ctx.server, job_args.queue);
  if (WaitsForReplication(job_args) || &owner != Shard::Current()) return false;
  const Result<engine::JobId> id =
      OnOwnEngine(ctx, owner, [&job_args](Engine& e) { return AddOnEngine(e, job_args, nullptr); });
  if (!id.ok()) {
    ctx.ReplyError(id.status());
  } else {
    ReplyJobId(ctx, *id);
  }
  return true;
}

asio::awaitable<void> AddJob(CommandContext& ctx) {
  Result<AddJobRequest> req = ParseAddJob(ctx);
  if (!req.ok()) {
    ctx.ReplyError(req.status());
    co_return;
  }
  const engine::AddJobArgs job_args = req->job;
  const bool sync = WaitsForReplication(job_args);
  std::shared_ptr<BlockedAddJob> waiter = sync ? std::make_shared<BlockedAddJob>(ctx.shard) : nullptr;
  auto add = [job_args, waiter](Engine& e) { return AddOnEngine(e, job_args, waiter); };
  Shard& owner = QueueShard(ctx.server, job_args.queue);
  Result<engine::JobId> id = co_await OnEngine(ctx, owner, std::move(add));
  if (!id.ok()) {
    ctx.ReplyError(id.status());
    co_return;
  }
  if (!sync) {
    ReplyJobId(ctx, *id);
    co_return;
  }
  // The engine's cron times the job out (the NOREPL reply comes from there): the client
  // side only notices a disconnect, and then cancels the job cluster-wide.
  asio::steady_timer timer(ctx.shard.context());
  std::optional<std::string> reply;
  {
    ParkScope scope(ctx.client, waiter, timer);
    const auto forever = SteadyClock::time_point::max();
    reply = co_await WaitParked(ctx, *waiter, timer, forever);
  }
  if (!reply) {
    const engine::JobId job_id = *id;
    auto cancel = [job_id](Engine& e) {
      e.CancelReplication(job_id);
      return 0;
    };
    const int done = co_await OnEngine(ctx, owner, std::move(cancel));
    (void)done;
    co_return;
  }
  if (ctx.server.persistence().state() != AofState::kOff) {
    // The owner journaled the job when replication completed, just after it posted
    // this reply: once there, its writer position covers the job.
    auto appended = [](Shard& s) { return s.server().persistence().writer().appended(); };
    const uint64_t pos = co_await Shard::RunOn(owner, std::move(appended));
    ctx.client.NoteAofPosition(pos);
  }
  ctx.reply.Raw(*reply);
}

// ---------------------------------------------------------------------------- GETJOB

struct GetJobRequest {
  bool nohang = false;
  bool withcounters = false;
  int64_t timeout = 0;  // ms, 0 = forever
  int64_t count = 1;
  std::span<const std::string_view> queues;  // as given, duplicates included (the arguments)
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
  req.queues = args.subspan(i);
  return req;
}

// A client blocked in GETJOB (engine::Waiter), registered on the queues' shards.
class BlockedGetJob final : public engine::Waiter, public Parked {
 public:
  BlockedGetJob(Shard& home, bool withcounters) : Parked(home), withcounters_(withcounters) {}

  bool Claim() override { return TryClaim(); }
  bool live() const override { return !claimed(); }
  void Deliver(const Job* job) override {
    std::string reply;
    resp::ReplyWriter w(reply);
    if (job == nullptr) {
      w.NullArray();
    } else {
      w.ArrayHeader(1);  // exactly one job, whatever COUNT was
      AppendJob(w, *job, withcounters_);
    }
    Post(std::move(reply));
  }
  void Fail(const Status& status) override { PostError(status); }

 private:
  const bool withcounters_;
};

// Queue names grouped by owning shard, distinct, in first-seen order.
std::map<int, std::vector<std::string>> GroupQueuesByShard(Server& server, std::span<const std::string_view> queues) {
  std::map<int, std::vector<std::string>> groups;
  std::unordered_set<std::string_view> seen;
  for (std::string_view q : queues) {
    if (seen.insert(q).second) groups[QueueShard(server, q).id()].emplace_back(q);
  }
  return groups;
}

// The jobs a GETJOB takes: `count` reply elements, already RESP, in reply order; or,
// when `written`, the whole reply (array header and jobs) is already in the client's
// output buffer.
struct FetchedJobs {
  size_t count = 0;
  bool written = false;
  std::string resp;
};

// FetchJobs on the shard that owns every queue named: the passes, then the reply. With
// `direct` (the client's output buffer, on the client's own shard) the whole reply is
// written there; otherwise the jobs are staged in `resp`.
FetchedJobs FetchOnOwner(Engine& e, std::span<const std::string_view> queues, size_t count, bool withcounters,
                         std::string* direct) {
  std::vector<const Job*> got;
  got.reserve(std::min<size_t>(count, 256));
  if (queues.size() == 1) {
    // What the passes below, one job per queue each, amount to for one queue.
    e.Fetch(queues.front(), count, got);
    // Federation: a queue that gave nothing asks the other nodes for jobs.
    if (got.empty()) e.NeedJobs(e.GetOrCreateQueue(queues.front()), false);
  } else {
    std::unordered_set<std::string_view> gave;
    while (got.size() < count) {
      const size_t before = got.size();
      for (std::string_view q : queues) {
        if (got.size() == count) break;
        const size_t had = got.size();
        e.Fetch(q, 1, got);
        if (got.size() > had) gave.insert(q);
      }
      if (got.size() == before) break;
    }
    for (std::string_view q : queues) {
      if (!gave.contains(q)) e.NeedJobs(e.GetOrCreateQueue(q), false);
    }
  }
  // Formatted after the pops: they delete no job.
  FetchedJobs out;
  out.count = got.size();
  if (got.empty()) return out;
  if (direct != nullptr) {
    resp::ReplyWriter(*direct).ArrayHeader(got.size());
    AppendJobs(*direct, got, withcounters);
    out.written = true;
  } else {
    AppendJobs(out.resp, got, withcounters);
  }
  return out;
}

// Takes up to COUNT jobs: passes over the queues in order, at most one job per queue
// per pass, until COUNT jobs or a pass that takes nothing. Queues on several shards are
// done in two rounds: their fetchable lengths, then the pops the passes would make.
asio::awaitable<FetchedJobs> FetchJobs(CommandContext& ctx, const GetJobRequest& req) {
  const bool withcounters = req.withcounters;
  FetchedJobs jobs;
  // One shard owns every queue named (always so for one queue): one engine call. The
  // queue names are views into the client's input, which stays as it is meanwhile.
  if (Shard* owner = SoleOwner(ctx.server, req.queues, QueueShard)) {
    Shard& first = *owner;
    const std::span<const std::string_view> queues = req.queues;  // the client's arguments
    const auto count = static_cast<size_t>(req.count);
    // On the owner's own thread (OnEngine then runs the fetch at once, nothing written
    // in between) the reply goes straight into the client's output buffer: staging it
    // in a string, then copying it, was for jobs formatted on another thread.
    std::string* direct = nullptr;
    if (&first == Shard::Current()) direct = &ctx.reply.buffer();
    auto fetch = [queues, count, withcounters, direct](Engine& e) {
      return FetchOnOwner(e, queues, count, withcounters, direct);
    };
    jobs = co_await OnEngine(ctx, first, std::move(fetch));
    co_return jobs;
  }

  const auto groups = GroupQueuesByShard(ctx.server, req.queues);
  // Round 1: what each queue can give now.
  std::map<std::string, size_t, std::less<>> available;
  for (const auto& [shard_id, names] : groups) {
    auto lengths = [names](Engine& e) {
      std::vector<size_t> n;
      for (const std::string& q : names) {
        n.push_back(e.Fetchable(q));
        if (n.back() == 0) e.NeedJobs(e.GetOrCreateQueue(q), false);  // federation
      }
      return n;
    };
    Shard& owner = ctx.server.shard(shard_id);
    const std::vector<size_t> n = co_await OnEngine(ctx, owner, std::move(lengths));
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
          std::string& formatted = list.emplace_back();
          AppendJobs(formatted, std::span<const Job* const>(&job, 1), withcounters);
        }
      }
      return out;
    };
    Shard& owner = ctx.server.shard(shard_id);
    std::vector<std::vector<std::string>> out = co_await OnEngine(ctx, owner, std::move(pop));
    for (size_t i = 0; i < wanted.size(); ++i) fetched[wanted[i].first] = std::move(out[i]);
  }
  std::map<std::string, size_t, std::less<>> next;
  for (std::string_view q : order) {
    auto it = fetched.find(q);
    size_t& i = next[std::string(q)];
    if (it != fetched.end() && i < it->second.size()) {
      jobs.resp += it->second[i++];
      ++jobs.count;
    }
  }
  co_return jobs;
}

// Drops a blocked GETJOB's registrations from the queues' shards when the wait ends,
// however it ends (posted; nobody waits for that).
class Registrations {
 public:
  Registrations(Server& server, std::shared_ptr<BlockedGetJob> waiter, const std::map<int, std::vector<std::string>>& groups)
      : server_(server), waiter_(std::move(waiter)), groups_(groups) {}
  Registrations(const Registrations&) = delete;
  Registrations& operator=(const Registrations&) = delete;
  ~Registrations() {
    for (const auto& [shard_id, names] : groups_) {
      Shard& owner = server_.shard(shard_id);
      asio::post(owner.context(), [&owner, waiter = waiter_, names] {
        for (const std::string& q : names) owner.engine().Unblock(q, waiter.get());
      });
    }
  }

 private:
  Server& server_;
  std::shared_ptr<BlockedGetJob> waiter_;
  const std::map<int, std::vector<std::string>>& groups_;
};

// Blocks the client on every listed queue until a job arrives (one job), the timeout
// passes or the client goes away. Returns the reply to send.
asio::awaitable<std::string> BlockForJob(CommandContext& ctx, const GetJobRequest& req) {
  const auto groups = GroupQueuesByShard(ctx.server, req.queues);
  auto waiter = std::make_shared<BlockedGetJob>(ctx.shard, req.withcounters);
  asio::steady_timer timer(ctx.shard.context());
  Registrations registrations(ctx.server, waiter, groups);
  ParkScope scope(ctx.client, waiter, timer);
  for (const auto& [shard_id, names] : groups) {
    auto block = [waiter, names](Engine& e) {
      for (const std::string& q : names) e.Block(q, waiter);
      return 0;
    };
    Shard& owner = ctx.server.shard(shard_id);
    const int done = co_await OnEngine(ctx, owner, std::move(block));
    (void)done;
  }
  // Past about 100 years the timeout is as good as none (and steady_clock arithmetic
  // would overflow).
  constexpr int64_t kForeverMs = int64_t{100} * 365 * 86400 * 1000;
  auto deadline = SteadyClock::time_point::max();
  if (req.timeout > 0 && req.timeout < kForeverMs) deadline = SteadyClock::now() + std::chrono::milliseconds(req.timeout);
  std::optional<std::string> reply = co_await WaitParked(ctx, *waiter, timer, deadline);
  if (!reply) co_return std::string("*-1\r\n");
  co_return std::move(*reply);
}

// GETJOB's common case at once (Command::now): every queue on the client's own shard,
// and a job to take or NOHANG. One that would block is left to GetJob, declined before
// anything ran: the fetch asks other nodes for jobs (federation), which must happen once.
bool GetJobNow(CommandContext& ctx) {
  Result<GetJobRequest> parsed = ParseGetJob(ctx);
  if (!parsed.ok()) {
    ctx.ReplyError(parsed.status());
    return true;
  }
  const GetJobRequest& req = *parsed;
  Shard* here = SoleOwner(ctx.server, req.queues, QueueShard);
  if (here != Shard::Current()) return false;  // several shards (nullptr) or another
  if (!req.nohang) {
    const Engine& e = here->engine();
    if (std::none_of(req.queues.begin(), req.queues.end(), [&e](std::string_view q) { return e.CanFetch(q); })) {
      return false;
    }
  }
  std::string* direct = &ctx.reply.buffer();
  const FetchedJobs jobs = OnOwnEngine(ctx, *here, [&req, direct](Engine& e) {
    return FetchOnOwner(e, req.queues, static_cast<size_t>(req.count), req.withcounters, direct);
  });
  if (jobs.count == 0) ctx.reply.NullArray();  // NOHANG: a job to take was checked for otherwise
  return true;
}

// GETJOB [NOHANG] [TIMEOUT <ms>] [COUNT <n>] [WITHCOUNTERS] FROM <queue> ...
asio::awaitable<void> GetJob(CommandContext& ctx) {
  Result<GetJobRequest> parsed = ParseGetJob(ctx);
  if (!parsed.ok()) {
    ctx.ReplyError(parsed.status());
    co_return;
  }
  const GetJobRequest& req = *parsed;
  FetchedJobs jobs = co_await FetchJobs(ctx, req);
  if (jobs.written) co_return;
  if (jobs.count > 0) {
    ctx.reply.ArrayHeader(jobs.count);
    ctx.reply.Raw(jobs.resp);
    co_return;
  }
  if (req.nohang) {
    ctx.reply.NullArray();
    co_return;
  }
  if (ctx.shard.cluster_view().leaving) {
    ctx.reply.Error("LEAVING This node is leaving the cluster, please connect to a different one");
    co_return;
  }
  std::string reply = co_await BlockForJob(ctx, req);
  ctx.reply.Raw(reply);
}

// ---------------------------------------------------------------------------- by ID

// Applies `op` to every ID argument on the shard owning it; replies with the number of
// IDs for which it returned true.
using IdOp = bool (*)(Engine&, std::string_view);

// `op` on every ID of `ids` (all owned by e's shard); how many it returned true for.
int64_t ApplyToIds(Engine& e, IdOp op, std::span<const std::string_view> ids) {
  int64_t n = 0;
  if (ids.size() > 1) e.Prefetch(ids);
  for (std::string_view id : ids) n += op(e, id);
  return n;
}

asio::awaitable<void> CountIds(CommandContext& ctx, IdOp op) {
  if (!ValidateIds(ctx, 1)) co_return;
  // Nearly always every ID names one shard (the batch a GETJOB gave from one queue, or
  // a server of one shard): one engine call over the arguments as they are, without
  // grouping them into a map of vectors. The views point into the client's input,
  // untouched until the command returns, as the grouped ones do.
  const std::span<const std::string_view> all = ctx.args.subspan(1);
  if (all.empty()) {
    ctx.reply.Integer(0);
    co_return;
  }
  if (Shard* owner = SoleOwner(ctx.server, all, JobShard)) {
    Shard& first = *owner;
    auto apply = [op, all](Engine& e) { return ApplyToIds(e, op, all); };
    const int64_t n = co_await OnEngine(ctx, first, std::move(apply));
    ctx.reply.Integer(n);
    co_return;
  }
  std::map<int, std::vector<std::string_view>> groups;
  for (size_t i = 1; i < ctx.args.size(); ++i) groups[JobShard(ctx.server, ctx.args[i]).id()].push_back(ctx.args[i]);
  int64_t total = 0;
  for (auto& [shard_id, ids] : groups) {
    auto apply = [op, ids = std::move(ids)](Engine& e) { return ApplyToIds(e, op, ids); };
    Shard& owner = ctx.server.shard(shard_id);
    const int64_t n = co_await OnEngine(ctx, owner, std::move(apply));
    total += n;
  }
  ctx.reply.Integer(total);
}

bool AckOp(Engine& e, std::string_view id) { return e.Ack(id); }
bool FastAckOp(Engine& e, std::string_view id) { return e.FastAck(id); }
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

// Their common case at once (Command::now): every ID on the client's own shard (a
// GETJOB's batch taken from the same shard). Anything else is left to IdCommand.
template <IdOp kOp>
bool IdCommandNow(CommandContext& ctx) {
  if (!ValidateIds(ctx, 1)) return true;
  const std::span<const std::string_view> ids = ctx.args.subspan(1);
  if (ids.empty()) {
    ctx.reply.Integer(0);
    return true;
  }
  Shard* here = SoleOwner(ctx.server, ids, JobShard);
  if (here != Shard::Current()) return false;  // several shards (nullptr) or another
  ctx.reply.Integer(OnOwnEngine(ctx, *here, [ids](Engine& e) { return ApplyToIds(e, kOp, ids); }));
  return true;
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
  const std::string out = co_await OnEngine(ctx, owner, std::move(show));
  ctx.reply.Raw(out);
}

// WORKING <id>
asio::awaitable<void> Working(CommandContext& ctx) {
  if (!ValidateIds(ctx, 1)) co_return;
  const std::string_view id = ctx.args[1];
  auto working = [id](Engine& e) { return e.Working(id); };
  Shard& owner = JobShard(ctx.server, id);
  const Result<int64_t> retry = co_await OnEngine(ctx, owner, std::move(working));
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
      if (job->flags & engine::kJobDummyAck) return;  // never listed (PROTOCOL.md 3.3)
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
    Command{"addjob", -4, kWrite | kDenyOom | kFast, nullptr, AddJob, AddJobNow},
    Command{"getjob", -2, kWrite | kFast, nullptr, GetJob, GetJobNow},
    Command{"ackjob", -1, kWrite | kFast, nullptr, IdCommand<AckOp>, IdCommandNow<AckOp>},
    Command{"fastack", -1, kWrite | kFast, nullptr, IdCommand<FastAckOp>, IdCommandNow<FastAckOp>},
    Command{"deljob", -1, kWrite | kFast, nullptr, IdCommand<DeleteOp>, IdCommandNow<DeleteOp>},
    Command{"show", 2, kReadonly | kFast, nullptr, Show},
    Command{"loadjob", 2, kWrite, LoadJob},
    Command{"jscan", -1, kReadonly, nullptr, JScan},
    Command{"enqueue", -1, kWrite | kDenyOom | kFast, nullptr, IdCommand<EnqueueOp>, IdCommandNow<EnqueueOp>},
    Command{"nack", -1, kWrite | kDenyOom | kFast, nullptr, IdCommand<NackOp>, IdCommandNow<NackOp>},
    Command{"dequeue", -1, kWrite | kFast, nullptr, IdCommand<DequeueOp>, IdCommandNow<DequeueOp>},
    Command{"working", 2, kWrite | kFast, nullptr, Working},
};

}  // namespace

std::span<const Command> JobCommands() { return kJobCommands; }

}  // namespace disque::server
