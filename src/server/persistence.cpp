#include "disque/server/persistence.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <spdlog/spdlog.h>

#include "disque/common/clock.h"
#include "disque/engine/job_codec.h"
#include "disque/persist/aof_format.h"
#include "disque/server/server.h"
#include "disque/server/shard.h"

namespace disque::server {
namespace {

int64_t NowMs() { return SystemClock::Instance().MonotonicMs(); }

// A snapshot slice: at most this many jobs or bytes per visit to a shard, so a rewrite
// never holds a shard for long.
constexpr size_t kSliceJobs = 1000;
constexpr size_t kSliceBytes = 1 << 20;
// aof-rewrite-incremental-fsync: fsync the new file every 32 MB.
constexpr uint64_t kIncrementalFsyncBytes = 32 << 20;
// Load batches per shard, and how many may wait to be applied at once.
constexpr size_t kLoadBatch = 512;
constexpr int kMaxBatchesInFlight = 16;

std::string ErrnoText(int err) { return std::strerror(err); }

Status WriteFully(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Error(ErrnoText(n < 0 ? errno : ENOSPC));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

void ShardJournal::LoadJob(std::string_view serialized) {
  persist::AppendRecord(persist::RecordType::kLoadJob, serialized, records_);
}

void ShardJournal::DelJob(const engine::JobId& id) {
  char text[engine::kJobIdLen];
  id.Format(text);
  persist::AppendRecord(persist::RecordType::kDelJob, std::string_view(text, sizeof text), records_);
}

Persistence::Persistence(Server& server) : server_(server), writer_([this] { Released(); }) {
  // Loading from the first command on: the shards serve before Start() runs.
  const std::shared_ptr<const config::Config> cfg = server_.config();
  loading_.store(cfg->appendonly || cfg->aof_enqueue_jobs_once);
}

Persistence::~Persistence() { Stop(); }

void Persistence::Released() {
  for (int i = 0; i < server_.shard_count(); ++i) server_.shard(i).NotifyAofReleased();
}

bool Persistence::Interrupted() const {
  if (stopping_.load()) return true;
  // A SHUTDOWN during the load stops the shards before Server::Wait stops us.
  for (int i = 0; i < server_.shard_count(); ++i) {
    if (server_.shard(i).context().stopped()) return true;
  }
  return false;
}

template <typename F>
bool Persistence::RunOnShard(Shard& shard, F fn) {
  // The task owns everything it touches (captured by value or shared_ptr): if the
  // server stops first, this returns and the task may still run (or be destroyed).
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> ran = done->get_future();
  asio::post(shard.context(), [done, fn = std::move(fn), &shard]() mutable {
    fn(shard);
    done->set_value();
  });
  while (ran.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (Interrupted()) return false;
  }
  return true;
}

bool Persistence::SetJournaling(bool on) {
  bool ok = true;
  for (int i = 0; i < server_.shard_count(); ++i) {
    ok = RunOnShard(server_.shard(i), [on](Shard& s) { s.SetJournaling(on); }) && ok;
  }
  return ok;
}

void Persistence::Configure(const config::Config& cfg) {
  writer_.set_policy(cfg.appendfsync);
  writer_.set_no_fsync_on_rewrite(cfg.no_appendfsync_on_rewrite);
}

// ---------------------------------------------------------------------------- startup

Status Persistence::Start() {
  Status started = StartUp();
  loading_.store(false);
  return started;
}

Status Persistence::StartUp() {
  const std::shared_ptr<const config::Config> cfg = server_.config();
  Configure(*cfg);
  const std::string& path = cfg->appendfilename;
  if (cfg->appendonly || cfg->aof_enqueue_jobs_once) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      if (Status loaded = Load(path, cfg->aof_enqueue_jobs_once); !loaded.ok()) return loaded;
      // Stopped halfway: the server is exiting. Nothing more, above all not the reset
      // of aof-enqueue-jobs-once, which would strand the controlled restart's jobs.
      if (load_interrupted_) return Status::Ok();
    } else if (!cfg->appendonly) {
      return Status::Error("Fatal error: can't open the append log file for reading: " + ErrnoText(errno));
    }
  }
  if (cfg->appendonly) {
    if (loaded_legacy_) {
      // Our records cannot be appended to Disque's RESP stream: convert it first.
      spdlog::warn("The AOF is in Disque's format: rewriting it in disque-server's format");
      if (!StartRewriteThread(RewriteKind::kCompact)) return Status::Error("Could not start the AOF conversion");
      while (rewrite_running_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (!last_rewrite_ok_.load()) return Status::Error("Could not convert the AOF from Disque's format");
    }
    if (Status opened = writer_.Open(path, cfg->appendfsync); !opened.ok()) return opened;
    SetJournaling(true);
    state_.store(AofState::kOn);
  }
  if (cfg->aof_enqueue_jobs_once) {
    // The controlled restart is done: the option turns itself off, in the file too.
    Status reset = server_.SetConfigNow("aof-enqueue-jobs-once", "no");
    (void)reset;  // a valid value of a known directive
    if (!server_.process_info().config_file.empty()) {
      if (Status st = server_.RewriteConfig(); !st.ok()) {
        spdlog::warn("Could not rewrite the config file after loading with aof-enqueue-jobs-once: {}", st.message());
      }
    }
  }
  return Status::Ok();
}

Status Persistence::Load(const std::string& path, bool enqueue) {
  Result<persist::AofReader> opened = persist::AofReader::Open(path);
  if (!opened.ok()) {
    return Status::Error("Fatal error: can't open the append log file for reading: " + std::string(opened.status().message()));
  }
  persist::AofReader reader = std::move(opened).value();
  loading_start_s_.store(SystemClock::Instance().NowMs() / 1000);
  loading_start_ms_.store(NowMs());
  loading_total_bytes_.store(reader.size());
  loading_loaded_bytes_.store(0);
  loading_.store(true);
  const int64_t start = NowMs();

  // One operation of the file, applied on the shard owning its job, in file order.
  struct Op {
    bool del;
    engine::JobRecord record;  // LOADJOB: the job; DELJOB: record.id only
  };
  const int shards = server_.shard_count();
  std::vector<std::vector<Op>> batches(static_cast<size_t>(shards));
  auto in_flight = std::make_shared<std::atomic<int>>(0);
  auto loaded = std::make_shared<std::atomic<uint64_t>>(0);
  auto flush = [&](int shard_id) {
    std::vector<Op>& batch = batches[static_cast<size_t>(shard_id)];
    if (batch.empty()) return;
    while (in_flight->load() >= kMaxBatchesInFlight && !Interrupted()) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    in_flight->fetch_add(1);
    Shard& shard = server_.shard(shard_id);
    asio::post(shard.context(), [&shard, ops = std::move(batch), enqueue, in_flight, loaded] {
      uint64_t n = 0;
      for (const Op& op : ops) {
        if (op.del) {
          shard.engine().UnloadJob(op.record.id);
        } else {
          n += shard.engine().LoadJob(op.record, enqueue);
        }
      }
      shard.JobsChanged();
      loaded->fetch_add(n);
      in_flight->fetch_sub(1);
    });
    batch = {};
  };

  Status result = Status::Ok();
  uint64_t records = 0;
  bool done = false;
  while (!done) {
    switch (reader.Next()) {
      case persist::AofReader::Outcome::kRecord: {
        ++records;
        Op op{reader.type() == persist::RecordType::kDelJob, {}};
        if (op.del) {
          op.record.id.assign(reader.payload());
          if (!engine::IsValidJobIdFormat(op.record.id)) {
            result = Status::Error("Bad file format reading the append only file at offset " +
                                   std::to_string(reader.offset()) + ": bad DELJOB job ID");
            done = true;
            break;
          }
        } else {
          Result<engine::JobRecord> job = engine::ParseJobRecord(reader.payload());
          if (!job.ok()) {
            result = Status::Error("Bad file format reading the append only file at offset " +
                                   std::to_string(reader.offset()) + ": bad LOADJOB (" +
                                   std::string(job.status().message()) + ")");
            done = true;
            break;
          }
          op.record = std::move(job).value();
        }
        const int shard_id = engine::SlotOfJobIdText(op.record.id) % shards;
        batches[static_cast<size_t>(shard_id)].push_back(std::move(op));
        if (batches[static_cast<size_t>(shard_id)].size() >= kLoadBatch) flush(shard_id);
        if ((records & 1023) == 0) {
          // Progress for INFO, and a SHUTDOWN meanwhile (not per record: each check
          // locks every shard's scheduler).
          loading_loaded_bytes_.store(reader.valid_end());
          load_interrupted_ = Interrupted();
          done = load_interrupted_;
        }
        break;
      }
      case persist::AofReader::Outcome::kEnd:
        done = true;
        break;
      case persist::AofReader::Outcome::kTorn:
        done = true;
        if (!server_.config()->aof_load_truncated) {
          result = Status::Error(
              "Unexpected end of file reading the append only file at offset " + std::to_string(reader.offset()) +
              ". You can: 1) Make a backup of your AOF file, then use disque-server --check-aof --fix <filename>. "
              "2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the "
              "server.");
          break;
        }
        spdlog::warn("!!! Warning: short read while loading the AOF file {} !!!", path);
        spdlog::warn("!!! Truncating the AOF at offset {} (a write cut by a crash: {} bytes dropped) !!!",
                     reader.offset(), reader.size() - reader.offset());
        if (::truncate(path.c_str(), static_cast<off_t>(reader.offset())) != 0) {
          result = Status::Error("Error truncating the AOF file: " + ErrnoText(errno));
        } else {
          spdlog::warn("AOF loaded anyway because aof-load-truncated is enabled");
        }
        break;
      case persist::AofReader::Outcome::kCorrupt:
        done = true;
        result = Status::Error("Bad file format reading the append only file at offset " +
                               std::to_string(reader.offset()) + ": " + reader.error() +
                               ". Make a backup of your AOF file, then use disque-server --check-aof --fix <filename>");
        break;
    }
  }
  loaded_legacy_ = reader.legacy();
  for (int i = 0; i < shards; ++i) flush(i);
  while (in_flight->load() > 0 && !Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  loading_loaded_bytes_.store(reader.size());
  if (load_interrupted_) {
    spdlog::warn("AOF loading interrupted by the shutdown after {} records: the file is unchanged", records);
  } else if (result.ok()) {
    spdlog::info("DB loaded from append only file: {:.3f} seconds ({} records, {} jobs)",
                 static_cast<double>(NowMs() - start) / 1000.0, records, loaded->load());
  }
  return result;
}

void Persistence::Stop() {
  stopping_.store(true);
  rewrite_cancel_.store(true);
  {
    std::lock_guard lock(rewrite_mu_);
    if (rewrite_thread_.joinable()) rewrite_thread_.join();
  }
  writer_.Close();
}

// ---------------------------------------------------------------------------- rewrite

bool Persistence::StartRewrite() { return StartRewriteThread(RewriteKind::kCompact); }

bool Persistence::StartRewriteThread(RewriteKind kind) {
  std::lock_guard lock(rewrite_mu_);
  if (rewrite_running_.load() || stopping_.load()) return false;
  if (rewrite_thread_.joinable()) rewrite_thread_.join();  // finished: running_ is false
  if (kind == RewriteKind::kShutdown) {
    // CONFIG SET appendonly yes needs a rewrite of its own (kTurnOn), refused while this
    // one runs, so the AOF cannot come on before ours ends. wait-rewrite with no rewrite
    // running is such a CONFIG SET about to be refused: the AOF is off.
    kind = state_.load() == AofState::kOn ? RewriteKind::kCompact : RewriteKind::kShutdownFromOff;
  }
  rewrite_running_.store(true);
  rewrite_cancel_.store(false);
  rewrite_start_ms_.store(NowMs());
  rewrite_thread_ = std::thread([this, kind] { RewriteThread(kind); });
  return true;
}

Status Persistence::WriteSnapshot(int fd) {
  const bool incremental = server_.config()->aof_rewrite_incremental_fsync;
  uint64_t unsynced = 0;
  struct Slice {
    uint64_t cursor = 0;
    std::string out;
  };
  for (int i = 0; i < server_.shard_count(); ++i) {
    auto slice = std::make_shared<Slice>();
    do {
      if (rewrite_cancel_.load()) return Status::Error("cancelled");
      const bool ran = RunOnShard(server_.shard(i), [slice](Shard& s) {
        engine::Engine& e = s.engine();
        std::string payload;
        size_t jobs = 0;
        do {
          slice->cursor = e.ScanJobsBucket(slice->cursor, [&](const engine::Job* job) {
            if (job->state != engine::JobState::kActive && job->state != engine::JobState::kQueued) return;
            payload.clear();
            e.SerializeForAof(*job, payload);
            persist::AppendRecord(persist::RecordType::kLoadJob, payload, slice->out);
            ++jobs;
          });
        } while (slice->cursor != engine::Engine::kScanEnd && jobs < kSliceJobs && slice->out.size() < kSliceBytes);
      });
      if (!ran) return Status::Error("cancelled");
      if (Status st = WriteFully(fd, slice->out); !st.ok()) return st;
      unsynced += slice->out.size();
      slice->out.clear();
      if (incremental && unsynced >= kIncrementalFsyncBytes) {
        ::fdatasync(fd);
        unsynced = 0;
      }
      if (const int64_t delay = slice_delay_ms_.load(); delay > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      }
    } while (slice->cursor != engine::Engine::kScanEnd);
  }
  return Status::Ok();
}

void Persistence::RewriteThread(RewriteKind kind) {
  const bool turning_on = kind == RewriteKind::kTurnOn;
  const bool attach = turning_on || kind == RewriteKind::kShutdownFromOff;  // journals and file
  const std::shared_ptr<const config::Config> cfg = server_.config();
  const std::string path = cfg->appendfilename;
  const std::string temp = "temp-rewriteaof-bg-" + std::to_string(::getpid()) + ".aof";
  spdlog::info("Background append only file rewriting started");
  Status result = Status::Ok();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    result = Status::Error("Opening the temp file for AOF rewrite: " + ErrnoText(errno));
  } else {
    // Capture first: whatever happens after this is either in the snapshot or captured.
    writer_.BeginCapture();
    if (attach && !SetJournaling(true)) result = Status::Error("cancelled");
    if (result.ok()) result = WriteFully(fd, persist::FileHeader());
    if (result.ok()) result = WriteSnapshot(fd);
    if (result.ok() && rewrite_cancel_.load()) result = Status::Error("cancelled");
    if (result.ok()) {
      result = writer_.FinishRewrite(fd, temp, path, attach);  // owns fd now
    } else {
      ::close(fd);
      ::unlink(temp.c_str());
      writer_.EndCapture();
    }
  }
  const int64_t elapsed_ms = NowMs() - rewrite_start_ms_.load();
  last_rewrite_time_s_.store(elapsed_ms / 1000);
  last_rewrite_ok_.store(result.ok());
  if (result.ok()) {
    spdlog::info("Background AOF rewrite finished successfully ({} ms)", elapsed_ms);
  } else {
    spdlog::warn("Background AOF rewrite failed: {}", result.message());
  }
  if (turning_on) {
    AofState expected = AofState::kWaitRewrite;
    if (result.ok() && state_.compare_exchange_strong(expected, AofState::kOn)) {
      spdlog::info("Background AOF rewrite: the append only file is now on");
    } else {
      // Failed, or appendonly no arrived meanwhile.
      AofState waiting = AofState::kWaitRewrite;
      state_.compare_exchange_strong(waiting, AofState::kOff);
      if (state_.load() == AofState::kOff) {
        SetJournaling(false);
        writer_.Close();
      }
    }
  } else if (attach && !result.ok()) {
    SetJournaling(false);  // a failed shutdown rewrite: the AOF is off again, as it was
    writer_.Close();
  }
  rewrite_running_.store(false);
}

asio::awaitable<bool> Persistence::RewriteAndWait() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // One rewrite at a time: wait for a running one, then run ours (kShutdown: with the
  // AOF off it journals what clients change meanwhile; Disque blocks the whole server
  // instead). A job confirmed during the rewrite is in the file when the server exits.
  while (!StartRewriteThread(RewriteKind::kShutdown)) {
    if (stopping_.load()) co_return false;
    timer.expires_after(std::chrono::milliseconds(20));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  while (rewrite_running_.load()) {
    timer.expires_after(std::chrono::milliseconds(10));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return last_rewrite_ok_.load();
}

asio::awaitable<Status> Persistence::SetAppendOnly(bool on) {
  static const Status kUnable = Status::Error("Unable to turn on AOF. Check server logs.");
  if (on) {
    if (state_.load() != AofState::kOff) co_return Status::Ok();
    state_.store(AofState::kWaitRewrite);
    if (!StartRewriteThread(RewriteKind::kTurnOn)) {
      state_.store(AofState::kOff);
      spdlog::warn("AOF was enabled but a rewrite is in progress: try again when it finishes");
      co_return kUnable;
    }
    co_return Status::Ok();
  }
  const AofState was = state_.exchange(AofState::kOff);
  if (was == AofState::kOff) co_return Status::Ok();
  if (was == AofState::kWaitRewrite) rewrite_cancel_.store(true);
  for (int i = 0; i < server_.shard_count(); ++i) {
    auto detach = [](Shard& s) { s.SetJournaling(false); };
    co_await Shard::RunOn(server_.shard(i), std::move(detach));
  }
  writer_.Close();
  co_return Status::Ok();
}

void Persistence::Cron(const config::Config& cfg) {
  if (state_.load() != AofState::kOn || rewrite_running_.load() || cfg.auto_aof_rewrite_percentage <= 0) return;
  const persist::AofWriterStats s = writer_.stats();
  if (s.current_size <= static_cast<uint64_t>(cfg.auto_aof_rewrite_min_size)) return;
  const uint64_t base = std::max<uint64_t>(1, s.base_size);
  const uint64_t growth = s.current_size > base ? (s.current_size - base) * 100 / base : 0;
  if (growth < static_cast<uint64_t>(cfg.auto_aof_rewrite_percentage)) return;
  spdlog::info("Starting automatic rewriting of AOF on {}% growth", growth);
  StartRewriteThread(RewriteKind::kCompact);
}

void Persistence::AppendInfo(std::string& out) const {
  const AofState state = state_.load();
  const persist::AofWriterStats s = writer_.stats();
  const bool rewriting = rewrite_running_.load();
  auto line = [&out](std::string_view key, const auto& value) {
    out += key;
    out += ':';
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(value)>>) {
      out += std::to_string(value);
    } else {
      out += value;
    }
    out += "\r\n";
  };
  line("loading", loading() ? 1 : 0);
  line("aof_enabled", state != AofState::kOff ? 1 : 0);
  line("aof_state", state == AofState::kOff ? "off" : state == AofState::kOn ? "on" : "wait-rewrite");
  line("aof_rewrite_in_progress", rewriting ? 1 : 0);
  line("aof_rewrite_scheduled", 0);
  line("aof_last_rewrite_time_sec", last_rewrite_time_s_.load());
  line("aof_current_rewrite_time_sec", rewriting ? (NowMs() - rewrite_start_ms_.load()) / 1000 : int64_t{-1});
  line("aof_last_bgrewrite_status", last_rewrite_ok_.load() ? "ok" : "err");
  line("aof_last_write_status", s.last_write_errno == 0 ? "ok" : "err");
  if (state != AofState::kOff) {
    line("aof_current_size", s.current_size);
    line("aof_base_size", s.base_size);
    line("aof_pending_rewrite", 0);
    line("aof_buffer_length", s.buffer_length);
    line("aof_rewrite_buffer_length", s.rewrite_buffer_length);
    line("aof_pending_bio_fsync", s.fsync_in_progress ? 1 : 0);
    line("aof_delayed_fsync", 0);
  }
  if (loading()) {
    const uint64_t total = loading_total_bytes_.load();
    const uint64_t done = loading_loaded_bytes_.load();
    const int64_t elapsed_ms = NowMs() - loading_start_ms_.load();
    line("loading_start_time", loading_start_s_.load());
    line("loading_total_bytes", total);
    line("loading_loaded_bytes", done);
    line("loading_loaded_perc", fmt::format("{:.2f}", total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0));
    const int64_t eta = done > 0 ? static_cast<int64_t>(static_cast<double>(elapsed_ms) * static_cast<double>(total - done) /
                                                        static_cast<double>(done) / 1000.0)
                                 : 1;
    line("loading_eta_seconds", eta);
  }
}

}  // namespace disque::server
