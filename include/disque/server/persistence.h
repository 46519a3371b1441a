#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "disque/common/status.h"
#include "disque/config/config.h"
#include "disque/engine/journal.h"
#include "disque/persist/aof_writer.h"

namespace disque::server {

class Server;
class Shard;

// One shard's journal: the engine reports job creations and removals here, framed as
// AOF records in a buffer that Shard::JobsChanged hands to the writer after every
// engine operation. Shard thread only.
class ShardJournal final : public engine::Journal {
 public:
  void LoadJob(std::string_view serialized) override;
  void DelJob(const engine::JobId& id) override;
  bool empty() const { return records_.empty(); }
  std::string_view records() const { return records_; }
  void clear() { records_.clear(); }

 private:
  std::string records_;
};

// AOF states (INFO aof_state): off -> wait-rewrite (CONFIG SET appendonly yes, until its
// rewrite made the file) -> on; on -> off (appendonly no, or the rewrite failed). The
// startup opens the file directly (on). SHUTDOWN REWRITE-AOF leaves the state alone
// (RewriteKind::kShutdownFromOff).
enum class AofState { kOff, kOn, kWaitRewrite };

// The server's persistence (PROTOCOL.md 8, docs/persistence.md): the AOF writer, the
// load at startup, rewrites, and the switches of CONFIG SET appendonly.
//
// Journaling: while the state is not off, every shard's engine has its ShardJournal
// attached. Records reach the writer in the order each shard produced them; a client's
// reply waits until the position of its records is released by the writer (the Client
// collects positions per batch of commands, Shard::AwaitAof waits).
//
// Rewrites run on their own thread: capture starts, then each shard serializes its live
// jobs in slices on its own thread (Shard work never stops for longer than one slice),
// the slices go to a temporary file, and the writer finishes the switch. One rewrite at
// a time; SHUTDOWN REWRITE-AOF waits for one.
//
// Loading: Server::Run loads before the bus starts, while clients get -LOADING. Records
// are decoded on the loading thread and applied in batches on the shard owning each job.
class Persistence {
 public:
  explicit Persistence(Server& server);
  ~Persistence();
  Persistence(const Persistence&) = delete;
  Persistence& operator=(const Persistence&) = delete;

  // Startup, shards running, bus not yet: loads the AOF when appendonly or
  // aof-enqueue-jobs-once asks for it, then opens it for appending if appendonly. An
  // error is fatal (the caller exits with its message).
  Status Start();
  // Shutdown, after the shards stopped: cancels a rewrite, writes and fsyncs the rest.
  void Stop();

  bool loading() const { return loading_.load(); }
  AofState state() const { return state_.load(); }
  persist::AofWriter& writer() { return writer_; }
  // The errno of the last failed write (-MISCONF), or 0.
  int write_error() const { return state() == AofState::kOff ? 0 : writer_.last_write_errno(); }

  // BGREWRITEAOF and the automatic rewrite: false if a rewrite is already running.
  bool StartRewrite();
  // SHUTDOWN REWRITE-AOF: a complete rewrite, waited for. True on success.
  asio::awaitable<bool> RewriteAndWait();
  // CONFIG SET appendonly yes|no, called with the new value before it is published.
  asio::awaitable<Status> SetAppendOnly(bool on);
  // A configuration change (appendfsync and the rewrite options).
  void Configure(const config::Config& cfg);
  // Shard 0's cron: the automatic rewrite by growth.
  void Cron(const config::Config& cfg);

  // Appends the "# Persistence" fields of INFO.
  void AppendInfo(std::string& out) const;

  // DEBUG AOF-FAULT: fail every write with `err` (0: stop).
  void InjectWriteError(int err) { writer_.InjectWriteError(err); }
  // DEBUG AOF-REWRITE-DELAY: sleep this long after each snapshot slice (tests).
  void set_rewrite_slice_delay_ms(int64_t ms) { slice_delay_ms_.store(ms); }

 private:
  Status StartUp();
  Status Load(const std::string& path, bool enqueue);
  // Attaches (or detaches) every shard's journal; waits until each shard did it.
  bool SetJournaling(bool on);
  // What a rewrite is for. kCompact: BGREWRITEAOF, the automatic rewrite, the startup
  // conversion; appends go on to the new file only if the AOF was on. kTurnOn: CONFIG
  // SET appendonly yes (state wait-rewrite): attaches the journals, adopts the new file,
  // then the state is on. kShutdown (SHUTDOWN REWRITE-AOF): kCompact if the AOF is on;
  // if it is off, it becomes kShutdownFromOff, decided under rewrite_mu_ together with
  // the start, which attaches the journals and adopts the file as kTurnOn does but
  // leaves the state off (the server exits next): what clients change meanwhile is
  // appended after the snapshot. On failure it detaches them and closes the file again.
  enum class RewriteKind { kCompact, kTurnOn, kShutdown, kShutdownFromOff };
  bool StartRewriteThread(RewriteKind kind);
  void RewriteThread(RewriteKind kind);
  Status WriteSnapshot(int fd);
  // Runs fn on `shard`'s thread and waits; false if the server stops first.
  template <typename F>
  bool RunOnShard(Shard& shard, F fn);
  void Released();
  // The server is stopping (Stop(), or the shards stopped during the load).
  bool Interrupted() const;

  Server& server_;
  persist::AofWriter writer_;
  std::atomic<AofState> state_{AofState::kOff};
  std::atomic<bool> loading_{false};
  std::atomic<bool> stopping_{false};
  bool loaded_legacy_ = false;  // the AOF loaded at startup was in Disque's format
  bool load_interrupted_ = false;  // a shutdown stopped the startup load before the end
  std::atomic<int64_t> slice_delay_ms_{0};
  // Loading progress (INFO).
  std::atomic<int64_t> loading_start_s_{0};
  std::atomic<uint64_t> loading_total_bytes_{0};
  std::atomic<uint64_t> loading_loaded_bytes_{0};
  std::atomic<int64_t> loading_start_ms_{0};

  // The rewrite in progress, if any.
  mutable std::mutex rewrite_mu_;
  std::thread rewrite_thread_;
  std::atomic<bool> rewrite_running_{false};
  std::atomic<bool> rewrite_cancel_{false};
  std::atomic<int64_t> rewrite_start_ms_{0};
  std::atomic<int64_t> last_rewrite_time_s_{-1};
  std::atomic<bool> last_rewrite_ok_{true};
};

}  // namespace disque::server
