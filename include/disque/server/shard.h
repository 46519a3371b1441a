#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <array>
#include <atomic>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "disque/cluster/membership.h"
#include "disque/config/config.h"
#include "disque/engine/engine.h"
#include "disque/net/connection.h"
#include "disque/server/persistence.h"

namespace disque::server {

class Server;
class Client;

// Counters of one shard. Only the shard's thread writes them; INFO and CONFIG RESETSTAT
// read and reset them by running on that thread (Shard::RunOn), so they need no atomics.
struct ShardStats {
  uint64_t connections_received = 0;
  uint64_t commands_processed = 0;
  uint64_t net_input_bytes = 0;
  uint64_t net_output_bytes = 0;
  uint64_t output_limit_disconnections = 0;  // client-output-buffer-limit closes

  // Per command (indexed by Command::index): calls and total microseconds.
  struct CommandStat {
    uint64_t calls = 0;
    uint64_t usec = 0;
  };
  std::vector<CommandStat> commands;

  // Instantaneous metrics: 16 samples taken every 100 ms, as Disque's trackInstantaneousMetric.
  static constexpr int kSamples = 16;
  struct Metric {
    std::array<uint64_t, kSamples> samples{};
    int index = 0;
    int64_t last_time_ms = 0;
    uint64_t last_value = 0;
    void Track(int64_t now_ms, uint64_t value);
    uint64_t Mean() const;
  };
  Metric ops_per_sec, input_bytes_per_sec, output_bytes_per_sec;
};

// One SLOWLOG entry (PROTOCOL.md 6.10). Arguments are stored already shortened: at
// most 32, each at most 128 bytes plus a "... (<k> more bytes)" note.
struct SlowlogEntry {
  int64_t id;           // increasing across the server (Server::NextSlowlogId)
  int64_t time_s;       // unix time the command ran
  int64_t duration_us;
  std::vector<std::string> args;
};

// A shard: one thread, one io_context, and everything that thread exclusively owns:
// its client connections, their counters, its copy of the configuration, and its slice
// of the queues and jobs (the Engine: every queue whose slot % shards == id, and their
// jobs). No lock guards shard data; other
// threads reach it only by posting work to the io_context (RunOn).
//
// Lifecycle: constructed by the Server, Start() spawns the thread and the cron timer,
// BeginShutdown() closes idle clients and lets busy ones finish; when its last client is
// gone the shard reports to Server::ShardDrained(), which stops every shard once all have
// drained (or the Server's deadline passes); Join() waits for the thread.
class Shard {
 public:
  Shard(Server& server, int id);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int id() const { return id_; }
  asio::io_context& context() { return ctx_; }
  Server& server() { return server_; }

  // The shard whose thread is running the caller, or nullptr off any shard thread.
  static Shard* Current();

  // Starts the thread that runs the io_context.
  void Start();
  void Join();
  // Called on this shard's thread: closes idle clients and lets others finish; reports
  // to the Server once every client is gone.
  void BeginShutdown();
  bool shutting_down() const { return shutting_down_; }

  // The configuration as this shard sees it. Replaced (never mutated) when CONFIG SET
  // publishes a newer version; read without locks by this shard's thread only.
  const config::Config& config() const { return *config_; }
  void PublishConfig(std::shared_ptr<const config::Config> config, uint64_t version);
  // This shard's copy of the cluster's node table snapshot (Bus::set_view_listener).
  const cluster::ClusterView& cluster_view() const { return *cluster_view_; }
  // Also gives the engine the cluster in node indexes.
  void PublishClusterView(std::shared_ptr<const cluster::ClusterView> view);

  // Adopts an accepted socket: creates its Client and starts its session. Runs on this
  // shard's thread.
  void Adopt(net::Socket socket, bool is_unix);
  void Forget(Client& client);  // called by a client's session when it ends

  // Clients of this shard, by ID.
  const std::unordered_map<uint64_t, std::unique_ptr<Client>>& clients() const { return clients_; }

  // This shard's jobs and queues. After changing them, call JobsChanged(): the job timer
  // follows the engine's schedule and the messages the engine wants sent go to the bus.
  engine::Engine& engine() { return *engine_; }
  // Returns the AOF position a reply must wait for (0: none), see AwaitAof.
  uint64_t JobsChanged();

  // --- the append-only file (Persistence) ---
  // Attaches or detaches this shard's journal to its engine.
  void SetJournaling(bool on);
  // Resumes once the AOF writer released `pos` (written, or fsynced under
  // `appendfsync always`). A client awaits the largest position of its batch before
  // its replies are written.
  asio::awaitable<void> AwaitAof(uint64_t pos);
  // From the writer thread: released() advanced. Wakes this shard if it waits.
  void NotifyAofReleased();
  // Evicts up to `bytes` of this shard's evictable jobs (Server::FreeMemoryIfNeeded);
  // returns the bytes freed.
  size_t EvictForMemory(size_t bytes);

  // SLOWLOG: records the command if it ran for at least slowlog-log-slower-than µs.
  void MaybeLogSlow(std::span<const std::string_view> args, int64_t duration_us);
  // Newest first.
  const std::deque<SlowlogEntry>& slowlog() const { return slowlog_; }
  void ResetSlowlog() { slowlog_.clear(); }

  ShardStats& stats() { return stats_; }
  void ResetStats();

  // CLIENT PAUSE: commands are not processed before this monotonic time (ms).
  int64_t paused_until_ms() const { return paused_until_ms_; }
  void set_paused_until_ms(int64_t t) { paused_until_ms_ = t; }

  // Runs `fn(target)` on the target shard's thread and resumes the calling coroutine
  // (on its own shard) with the result. Straight-line cross-shard code:
  //   size_t n = co_await Shard::RunOn(other, [](Shard& s) { return s.clients().size(); });
  // Running on the caller's own shard calls fn directly.
  //
  // GCC 12 miscompiles some expressions inside a co_await expression (see "GCC 12 and
  // coroutines" in docs/architecture.md): a lambda expression there has its captures
  // destroyed twice, and a ?: there can evaluate the wrong branch. The rule in this code
  // base: co_await only a call whose arguments are named variables, and assign its
  // result to a named variable:
  //   auto publish = [snapshot](Shard& s) { ... };
  //   co_await Shard::RunOn(shard, std::move(publish));
  template <typename F>
  static auto RunOn(Shard& target, F fn) -> asio::awaitable<std::invoke_result_t<F, Shard&>> {
    using R = std::invoke_result_t<F, Shard&>;
    if (Current() == &target) co_return fn(target);
    // Named, not a temporary in the co_await expression: see the GCC 12 note above.
    asio::io_context& ctx = target.context();
    if constexpr (std::is_void_v<R>) {
      auto task = [&target, fn = std::move(fn)]() -> asio::awaitable<void> { co_return fn(target); };
      co_await asio::co_spawn(ctx, std::move(task), asio::use_awaitable);
    } else {
      // Through std::optional: co_spawn needs a default-constructible result type, and
      // Result<T> has no empty state.
      auto task = [&target, fn = std::move(fn)]() -> asio::awaitable<std::optional<R>> {
        co_return std::optional<R>(fn(target));
      };
      std::optional<R> result = co_await asio::co_spawn(ctx, std::move(task), asio::use_awaitable);
      co_return std::move(*result);
    }
  }

 private:
  void ScheduleCron();
  void ReportDrainedOnce();
  void Cron();
  // Wakes the AOF waits the writer released, and sends job messages held for them.
  void CheckAofWaits();
  // One Asio timer per shard drives the engine's schedule (delay, requeue, expiry): it
  // is armed for the engine's next wake-up time whenever that moves earlier.
  void OnJobTimer();

  Server& server_;
  const int id_;
  // Clients waiting for the AOF (AwaitAof): each entry lives in its waiting coroutine's
  // frame and removes itself. Wake-ups come through aof_wake_wanted_: set by this shard
  // while it waits (then it re-checks released()), cleared by the writer as it posts.
  // Declared before ctx_, whose destruction may destroy suspended frames.
  struct AofWait;
  std::vector<AofWait*> aof_waits_;
  asio::io_context ctx_;
  std::thread thread_;
  asio::steady_timer cron_timer_;
  asio::steady_timer job_timer_;
  int64_t job_timer_at_ms_ = INT64_MAX;  // wall ms the job timer is armed for
  std::unique_ptr<engine::Engine> engine_;
  std::shared_ptr<const config::Config> config_;
  uint64_t config_version_ = 0;
  std::shared_ptr<const cluster::ClusterView> cluster_view_;
  ShardJournal journal_;
  std::atomic<bool> aof_wake_wanted_{false};
  // With `appendfsync always`, job messages sent after this shard journaled something
  // wait for the fsync too (a replica confirms a copy only once it is on disk), in order.
  std::deque<std::pair<uint64_t, std::vector<engine::JobMessage>>> held_messages_;
  // Live clients, owned. Forget() moves a client whose session ended to graveyard_; it
  // is freed by a posted task (its coroutine frame must be gone first) or, if the shard
  // stops before that task runs, by ~Shard. Declared after ctx_: freed before it.
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<std::unique_ptr<Client>> graveyard_;
  ShardStats stats_;
  std::deque<SlowlogEntry> slowlog_;  // newest at the front
  int64_t paused_until_ms_ = 0;
  int64_t last_sample_ms_ = 0;
  int64_t last_queue_eviction_ms_ = 0;
  // Shard 0: the most memory in use since the last ReleaseFreeMemory, when that ran,
  // and the least time between two (longer after a slow one).
  static constexpr int64_t kTrimIntervalMs = 1000;
  uint64_t trim_high_water_ = 0;
  int64_t last_trim_ms_ = 0;
  int64_t trim_interval_ms_ = kTrimIntervalMs;
  bool shutting_down_ = false;
  bool drained_reported_ = false;
};

}  // namespace disque::server
