#include "disque/server/shard.h"

#include <poll.h>

#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "disque/common/clock.h"
#include "disque/server/client.h"
#include "disque/server/server.h"

namespace disque::server {
namespace {

thread_local Shard* current_shard = nullptr;

}  // namespace

void ShardStats::Metric::Track(int64_t now_ms, uint64_t value) {
  const int64_t elapsed = now_ms - last_time_ms;
  if (last_time_ms != 0 && elapsed > 0) {
    samples[index] = (value - last_value) * 1000 / static_cast<uint64_t>(elapsed);
    index = (index + 1) % kSamples;
  }
  last_time_ms = now_ms;
  last_value = value;
}

uint64_t ShardStats::Metric::Mean() const {
  uint64_t sum = 0;
  for (uint64_t s : samples) sum += s;
  return sum / kSamples;
}

Shard::Shard(Server& server, int id)
    : server_(server),
      id_(id),
      cron_timer_(ctx_),
      job_timer_(ctx_),
      engine_(std::make_unique<engine::Engine>(SystemClock::Instance(), server.node_id(), RandomSipKey(),
                                               RandomSipKey()[0], &server.ctimes(), &server.nodes())),
      config_(server.config()) {
  stats_.commands.resize(server.commands().commands().size());
}

void Shard::PublishClusterView(std::shared_ptr<const cluster::ClusterView> view) {
  cluster_view_ = std::move(view);
  const cluster::ClusterView& v = *cluster_view_;
  engine::NodeRegistry& nodes = server_.nodes();
  engine::ClusterState state;
  state.self = nodes.Intern(v.myself_id);
  state.size = v.size;
  state.known = static_cast<int>(v.nodes.size());
  state.leaving = v.leaving;
  for (const std::string& id : v.reachable) state.reachable.push_back(nodes.Intern(id));
  for (const auto& e : v.nodes) {
    if (e.flags & cluster::kNodeHandshake) continue;
    const uint32_t n = nodes.Intern(e.id);
    state.members.push_back(n);
    if (e.linked && std::find(state.reachable.begin(), state.reachable.end(), n) != state.reachable.end()) {
      state.targets.push_back(n);
    }
  }
  engine_->SetCluster(std::move(state));
}

uint64_t Shard::JobsChanged() {
  uint64_t aof_pos = 0;
  if (!journal_.empty()) {
    aof_pos = server_.persistence().writer().Append(journal_.records());
    journal_.clear();
  }
  if (engine_->has_outbox()) {
    const bool hold = (aof_pos != 0 && config().appendfsync == config::AppendFsync::kAlways) || !held_messages_.empty();
    // Under `no` and `everysec` the records are written before any message that
    // depends on them leaves (a replica's GOTJOB follows the write() of its copy, as in
    // Disque); under `always` the messages wait for the fsync.
    if (aof_pos != 0 && !hold) server_.persistence().writer().WriteThrough(aof_pos);
    if (hold) {
      held_messages_.emplace_back(std::max(aof_pos, held_messages_.empty() ? 0 : held_messages_.back().first),
                                  engine_->TakeOutbox());
      aof_wake_wanted_.store(true);
      CheckAofWaits();
    } else {
      server_.cluster().SendJobs(engine_->TakeOutbox());
    }
  }
  const int64_t next = engine_->NextWakeMs();
  if (next >= job_timer_at_ms_ || shutting_down_) return aof_pos;
  job_timer_at_ms_ = next;
  const int64_t delay = std::max<int64_t>(0, next - SystemClock::Instance().NowMs());
  job_timer_.expires_after(std::chrono::milliseconds(delay));
  job_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) OnJobTimer();
  });
  return aof_pos;
}

void Shard::SetJournaling(bool on) {
  engine_->set_journal(on ? &journal_ : nullptr);
  if (!on) journal_.clear();
}

// One waiting client (AwaitAof), in its coroutine frame.
struct Shard::AofWait {
  Shard& shard;
  uint64_t pos;
  asio::steady_timer timer;
  bool done = false;
  AofWait(Shard& s, uint64_t p) : shard(s), pos(p), timer(s.context(), asio::steady_timer::time_point::max()) {
    shard.aof_waits_.push_back(this);
  }
  ~AofWait() { std::erase(shard.aof_waits_, this); }
  AofWait(const AofWait&) = delete;
  AofWait& operator=(const AofWait&) = delete;
};

asio::awaitable<void> Shard::AwaitAof(uint64_t pos) {
  persist::AofWriter& writer = server_.persistence().writer();
  if (pos == 0 || writer.released() >= pos) co_return;
  // Without an fsync to share, writing here beats a round trip to the writer thread.
  if (config().appendfsync != config::AppendFsync::kAlways) writer.WriteThrough(pos);
  if (writer.released() >= pos) co_return;
  AofWait wait(*this, pos);
  aof_wake_wanted_.store(true);
  CheckAofWaits();  // released() may have passed pos before the flag was seen
  while (!wait.done) {
    asio::error_code ec;
    co_await wait.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void Shard::NotifyAofReleased() {
  if (aof_wake_wanted_.exchange(false)) asio::post(ctx_, [this] { CheckAofWaits(); });
}

void Shard::CheckAofWaits() {
  const uint64_t released = server_.persistence().writer().released();
  for (AofWait* w : aof_waits_) {
    if (!w->done && w->pos <= released) {
      w->done = true;
      w->timer.cancel();
    }
  }
  while (!held_messages_.empty() && held_messages_.front().first <= released) {
    server_.cluster().SendJobs(std::move(held_messages_.front().second));
    held_messages_.pop_front();
  }
  const bool waiting = !held_messages_.empty() ||
                       std::any_of(aof_waits_.begin(), aof_waits_.end(), [](const AofWait* w) { return !w->done; });
  if (waiting) {
    aof_wake_wanted_.store(true);
    // Released meanwhile, before the flag was set: nobody would post again.
    if (server_.persistence().writer().released() != released) asio::post(ctx_, [this] { CheckAofWaits(); });
  }
}

size_t Shard::EvictForMemory(size_t bytes) {
  const size_t freed = engine_->EvictForMemory(bytes);
  JobsChanged();
  // The cron samples the allocator again soon; until then, count what was freed.
  uint64_t current = server_.used_memory.load(std::memory_order_relaxed);
  while (!server_.used_memory.compare_exchange_weak(current, current - std::min<uint64_t>(freed, current),
                                                   std::memory_order_relaxed)) {
  }
  return freed;
}

void Shard::OnJobTimer() {
  job_timer_at_ms_ = INT64_MAX;
  engine_->ProcessTimers();
  JobsChanged();
}

Shard::~Shard() { Join(); }

Shard* Shard::Current() { return current_shard; }

void Shard::Start() {
  ScheduleCron();
  thread_ = std::thread([this] {
    current_shard = this;
    ctx_.run();
    current_shard = nullptr;
  });
}

void Shard::Join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::PublishConfig(std::shared_ptr<const config::Config> config, uint64_t version) {
  // Two CONFIG SETs on different shards may publish out of order: keep the newest.
  if (version <= config_version_) return;
  config_ = std::move(config);
  config_version_ = version;
}

void Shard::Adopt(net::Socket socket, bool is_unix) {
  if (shutting_down_) {
    server_.connected_clients.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  net::TuneTcpSocket(socket, config().tcp_keepalive);
  auto client = std::make_unique<Client>(*this, server_.NextClientId(), std::move(socket), is_unix);
  Client& c = *client;
  clients_.emplace(c.id(), std::move(client));
  ++stats_.connections_received;
  asio::co_spawn(ctx_, c.Run(), asio::detached);
}

void Shard::Forget(Client& client) {
  auto it = clients_.find(client.id());
  if (it == clients_.end()) return;
  // The session coroutine that called us still runs inside the client: free it only
  // after that coroutine has returned.
  graveyard_.push_back(std::move(it->second));
  clients_.erase(it);
  server_.connected_clients.fetch_sub(1, std::memory_order_relaxed);
  asio::post(ctx_, [this] { graveyard_.clear(); });
  if (shutting_down_ && clients_.empty()) ReportDrainedOnce();
}

void Shard::ReportDrainedOnce() {
  if (drained_reported_) return;
  drained_reported_ = true;
  server_.ShardDrained();
}

void Shard::MaybeLogSlow(std::span<const std::string_view> args, int64_t duration_us) {
  const config::Config& cfg = config();
  if (cfg.slowlog_log_slower_than < 0 || duration_us < cfg.slowlog_log_slower_than) return;
  constexpr size_t kMaxArgs = 32, kMaxArgLen = 128;
  SlowlogEntry entry{server_.NextSlowlogId(), SystemClock::Instance().NowMs() / 1000, duration_us, {}};
  const size_t kept = args.size() > kMaxArgs ? kMaxArgs - 1 : args.size();
  for (size_t i = 0; i < kept; ++i) {
    std::string_view arg = args[i];
    if (arg.size() > kMaxArgLen) {
      entry.args.push_back(std::string(arg.substr(0, kMaxArgLen)) + "... (" +
                           std::to_string(arg.size() - kMaxArgLen) + " more bytes)");
    } else {
      entry.args.emplace_back(arg);
    }
  }
  if (kept < args.size()) entry.args.push_back("... (" + std::to_string(args.size() - kept) + " more arguments)");
  slowlog_.push_front(std::move(entry));
  while (static_cast<int64_t>(slowlog_.size()) > std::max<int64_t>(0, cfg.slowlog_max_len)) slowlog_.pop_back();
}

void Shard::ResetStats() {
  const size_t n = stats_.commands.size();
  stats_ = ShardStats{};
  stats_.commands.resize(n);
}

void Shard::ScheduleCron() {
  const int64_t hz = std::clamp<int64_t>(config().hz, 1, 500);
  cron_timer_.expires_after(std::chrono::milliseconds(1000 / hz));
  cron_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    Cron();
    ScheduleCron();
  });
}

// Periodic work of the shard, the per-shard part of Disque's serverCron/clientsCron:
// instantaneous metrics every 100 ms and idle-client timeouts.
void Shard::Cron() {
  const auto& clock = SystemClock::Instance();
  const int64_t now = clock.MonotonicMs();
  if (now - last_sample_ms_ >= 100) {
    last_sample_ms_ = now;
    stats_.ops_per_sec.Track(now, stats_.commands_processed);
    stats_.input_bytes_per_sec.Track(now, stats_.net_input_bytes);
    stats_.output_bytes_per_sec.Track(now, stats_.net_output_bytes);
  }
  if (id_ == 0) {
    server_.persistence().Cron(config());
    const uint64_t used = UsedMemory();
    server_.used_memory.store(used, std::memory_order_relaxed);
    if (used > server_.used_memory_peak.load(std::memory_order_relaxed)) {
      server_.used_memory_peak.store(used, std::memory_order_relaxed);
    }
    // Pages the allocator keeps after a large drop in use (jobs acked, queues drained)
    // go back to the OS, so memory after the ACK of every job returns to that of an
    // empty server: when use fell below half of its high-water mark since the last trim,
    // by kTrimMinDrop or more. The trim locks each arena in turn and walks its free
    // chunks (17 ms for 200 MB here, more on a fragmented heap), so a slow one doubles
    // the wait before the next, up to a minute.
    constexpr uint64_t kTrimMinDrop = 4 << 20;
    constexpr int64_t kSlowTrimUs = 5000;
    trim_high_water_ = std::max(trim_high_water_, used);
    if (trim_high_water_ - used >= kTrimMinDrop && used < trim_high_water_ / 2 &&
        now - last_trim_ms_ >= trim_interval_ms_) {
      const auto start = std::chrono::steady_clock::now();
      ReleaseFreeMemory();
      const auto took_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
      trim_interval_ms_ = took_us > kSlowTrimUs ? std::min<int64_t>(trim_interval_ms_ * 2, 60000) : kTrimIntervalMs;
      trim_high_water_ = used;
      last_trim_ms_ = now;
    }
  }
  const int memory_level = server_.MemoryLevel(config());
  if (now - last_queue_eviction_ms_ >= 100) {
    last_queue_eviction_ms_ = now;
    engine_->EvictIdleQueues(memory_level);
  }
  // The cluster's periodic rules: replication retries and timeouts, NEEDJOBS.
  engine_->set_memory_level(memory_level);
  engine_->Cron();
  JobsChanged();
  // A blocked client whose peer hung up after sending more commands: its socket watch
  // ended at the first pipelined byte, so look for the hang-up here (POLLRDHUP is
  // reported even with unread data before it).
  for (auto& [id, client] : clients_) {
    if (!client->blocked() || client->connection().closed()) continue;
    pollfd p{client->connection().fd(), POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) client->Close();
  }
  const config::Config& cfg = config();
  if (cfg.client_obuf_hard > 0 || cfg.client_obuf_soft > 0) {
    for (auto& [id, client] : clients_) {
      client->EnforceOutputLimits(cfg.client_obuf_hard, cfg.client_obuf_soft, cfg.client_obuf_soft_seconds, now);
    }
  }
  if (cfg.timeout > 0) {
    const int64_t timeout_ms = SecondsToMsSaturating(cfg.timeout);
    for (auto& [id, client] : clients_) {
      // Blocked clients are never idle; neither is one still receiving a reply.
      if (client->blocked() || client->connection().writing()) continue;
      if (now - client->last_interaction_ms() > timeout_ms) client->Close();
    }
  }
}

void Shard::BeginShutdown() {
  shutting_down_ = true;
  cron_timer_.cancel();
  job_timer_.cancel();
  // Every client not in the middle of a write is closed now (one suspended in a command
  // still finishes it, then fails to write); a writing client finishes its batch, then
  // sees shutting_down() and ends its session.
  for (auto& [id, client] : clients_) {
    if (!client->connection().writing()) client->Close();
  }
  if (clients_.empty()) ReportDrainedOnce();
}

}  // namespace disque::server
