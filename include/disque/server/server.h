#pragma once

#include <sys/socket.h>

#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "disque/cluster/bus.h"
#include "disque/common/status.h"
#include "disque/config/config.h"
#include "disque/engine/engine.h"
#include "disque/net/listener.h"
#include "disque/server/command.h"
#include "disque/server/persistence.h"
#include "disque/server/shard.h"

namespace disque::server {

inline constexpr std::string_view kDisqueVersion = "1.0-rc1";

// How long a shutdown waits for busy clients to finish before it stops the shards anyway.
inline constexpr std::chrono::seconds kShutdownDeadline{3};

// The shard threads `threads 0` (the default) means: the CPUs this process may run on
// (its affinity mask, as taskset or a container's cpuset set it), capped by the smallest
// CPU quota of its cgroups (v1 or v2, the process's and their ancestors') rounded up, and
// by 1024. The config keeps 0, so CONFIG REWRITE does not pin the count.
int UsableCpus();

// The commit the binary was built from (8 hex characters; "00000000" outside git).
std::string_view GitSha1();

// Where the server came from: INFO server and --version report these.
struct ProcessInfo {
  std::string executable;   // absolute path of the binary
  std::string config_file;  // absolute path, or empty
  std::vector<std::string> argv;
};

// The server: the shards, the listeners, the command table and the master copy of the
// configuration. There is one per process, but it is an ordinary object passed by
// reference (no global), so tests could run several.
//
// Threads: Run() spawns one thread per shard and the cluster bus thread; shard 0 also
// runs the client listeners. Accepted
// connections go to shards round robin. A small control thread handles signals and the
// shutdown deadline, so it answers even while a shard is busy. The calling thread
// (main) only waits in Wait() for the shutdown to complete.
//
// Shutdown: RequestShutdown() closes the listeners and asks every shard to drain (close
// idle clients, let busy ones finish). No shard stops before all have drained, because a
// draining client may still be waiting on another shard (RunOn); the last shard to drain
// stops them all. If that takes longer than kShutdownDeadline the control thread stops
// them anyway and forced_stop() is true: cross-shard work may then still be queued, and
// the process must exit without destroying the Server.
//
// Configuration: the master Config is changed only under config_mu_ (CONFIG SET, from
// any shard); each change gets a version and is published as an immutable snapshot to
// every shard, which keeps the newest version it has seen.
class Server {
 public:
  Server(config::Options& options, config::Config config, CommandTable commands, ProcessInfo info);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listeners (an error is fatal at startup); nothing is served yet.
  Status Listen();
  // Starts the shard threads (from here on connections are served; commands get
  // -LOADING until the AOF is loaded), loads the AOF, then starts the cluster bus. An
  // error (a damaged AOF) is fatal: the caller exits.
  Status Run();
  // Listen() then Run().
  Status Start();
  // Blocks until the shutdown has completed and every shard thread has exited.
  void Wait();
  // Starts the shutdown (SHUTDOWN, SIGTERM, SIGINT); callable from any thread, once.
  void RequestShutdown();
  // Called once by each shard, on its thread, when it has no client left after shutdown began.
  void ShardDrained();
  // True when the deadline, not the drain, ended the shutdown (see above).
  bool forced_stop() const { return forced_stop_.load(); }
  bool shutdown_requested() const { return shutdown_requested_.load(); }

  const CommandTable& commands() const { return commands_; }
  config::Options& options() { return options_; }
  const ProcessInfo& process_info() const { return info_; }
  int shard_count() const { return static_cast<int>(shards_.size()); }
  Shard& shard(int i) { return *shards_[i]; }

  // A copy of the current master configuration.
  std::shared_ptr<const config::Config> config() const;
  // CONFIG SET: changes the master config, then publishes it to every shard before
  // returning, so the caller's next command already sees it everywhere.
  asio::awaitable<Status> SetConfig(std::string name, std::string value);

  // Sets a directive outside CONFIG SET (the server's own changes, such as
  // aof-enqueue-jobs-once after a load); shards see it shortly after.
  Status SetConfigNow(std::string_view name, std::string_view value);

  // CONFIG REWRITE of the file the server was started with. Rewrites from different
  // shards are serialized: each rewrites the whole file in place.
  Status RewriteConfig();

  int64_t NextSlowlogId() { return next_slowlog_id_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t NextClientId() { return next_client_id_.fetch_add(1, std::memory_order_relaxed); }

  // Process-wide counters (maintained by the accepting thread and the client sessions).
  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> rejected_connections{0};

  const std::string& run_id() const { return run_id_; }
  // This node's 40-hex ID: nodes.conf's once Listen() has loaded it (CLUSTER RESET
  // HARD changes it), forty zeros before.
  std::string node_id() const;
  // The cluster bus and its node table. Shards read the table's snapshot from their
  // own copy (Shard::cluster_view()).
  cluster::Bus& cluster() { return *cluster_; }
  // Every job and queue on every shard (DEBUG FLUSHALL, CLUSTER RESET): blocked
  // clients get their null reply. `node_id`, when not empty, becomes every engine's ID.
  // Returns the AOF position of the removals (Client::NoteAofPosition).
  asio::awaitable<uint64_t> FlushAll(std::string node_id);
  // Job creation times, shared by every shard's engine.
  engine::CtimeSource& ctimes() { return ctimes_; }
  // Node IDs as indexes, shared by every shard's engine and the bus.
  engine::NodeRegistry& nodes() { return nodes_; }
  // A job message from the bus, run on the shard owning its job or queue.
  void RouteJobMessage(engine::JobMessage message);
  // Allocator bytes in use, sampled by shard 0's cron (INFO reads it fresh).
  std::atomic<uint64_t> used_memory{0};
  // The memory warning level (PROTOCOL.md 5) of the sampled usage against `cfg`.
  int MemoryLevel(const config::Config& cfg) const;
  // Eviction before a denyoom command (PROTOCOL.md 5): true when usage is at most 95 %
  // of maxmemory (or maxmemory is 0), or eviction freed enough. Jobs are sampled on
  // `home` first, then on the other shards, as Disque samples the whole node.
  asio::awaitable<bool> FreeMemoryIfNeeded(Shard& home);
  // FreeMemoryIfNeeded's answer when it needs no eviction (kRoom, kNoRoom), read
  // without suspending; kEvict when only FreeMemoryIfNeeded can tell.
  MemoryRoom MemoryRoomNow(const config::Config& cfg) const;
  int64_t start_time_ms() const { return start_time_ms_; }
  // The append-only file.
  Persistence& persistence() { return *persistence_; }
  bool loading() const { return persistence_->loading(); }
  // Peak of used memory seen by the cron (INFO used_memory_peak).
  std::atomic<uint64_t> used_memory_peak{0};

 private:
  void OnAccept(net::Socket socket, bool is_unix);
  void WaitForSignal();
  void StopAllShards();
  void StopControlThread();

  config::Options& options_;
  const CommandTable commands_;
  const ProcessInfo info_;
  mutable std::mutex config_mu_;
  std::mutex rewrite_mu_;  // held for the whole CONFIG REWRITE
  std::shared_ptr<const config::Config> config_;  // guarded by config_mu_
  uint64_t config_version_ = 1;                   // guarded by config_mu_
  engine::NodeRegistry nodes_;  // before the shards and the bus, which use it
  std::vector<std::unique_ptr<Shard>> shards_;
  // Declared after the shards so it is destroyed first: a command suspended in
  // Bus::Run resumes on its shard's context.
  std::unique_ptr<cluster::Bus> cluster_;
  // After the shards: destroyed before them (its writer thread wakes shards).
  std::unique_ptr<Persistence> persistence_;
  std::unique_ptr<net::Listener> listener_;       // runs on shard 0
  asio::io_context control_;                      // signals and the shutdown deadline
  asio::executor_work_guard<asio::io_context::executor_type> control_work_{control_.get_executor()};
  std::thread control_thread_;
  asio::signal_set signals_{control_};
  asio::steady_timer shutdown_deadline_{control_};
  std::atomic<int> undrained_shards_{0};
  std::atomic<bool> forced_stop_{false};
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<int64_t> next_slowlog_id_{0};
  std::atomic<size_t> next_shard_{0};
  std::atomic<bool> shutdown_requested_{false};
  std::string run_id_;
  engine::CtimeSource ctimes_;
  int64_t start_time_ms_;
};

// Protected mode (`protected-mode`, on by default, as in Redis since 3.2): true when a
// connection from `peer` must be refused because the server listens on every interface
// (no `bind`, or a wildcard address among them), no `requirepass` is set, and the peer
// is neither a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) nor a Unix
// socket.
bool ProtectedModeRefuses(const config::Config& cfg, const sockaddr_storage& peer);

// Sizes the process's open-file limit for `maxclients` the way Disque does: raise
// RLIMIT_NOFILE to maxclients + 32 if possible, else return the largest maxclients the
// current limit allows.
int64_t AdjustOpenFilesLimit(int64_t maxclients);

// Current allocator usage and resident set size, for INFO memory and the cron.
uint64_t UsedMemory();
// Gives the allocator's free pages back to the OS (malloc_trim: glibc keeps what a
// million acked jobs freed, 220 MB of RSS, otherwise). Walks every arena; call rarely.
void ReleaseFreeMemory();
// Fixes malloc's mmap and trim thresholds (see server.cpp); the server calls it once.
void TuneAllocator();
uint64_t ResidentSetSize();

}  // namespace disque::server
