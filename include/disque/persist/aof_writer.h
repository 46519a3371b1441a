#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "disque/common/status.h"
#include "disque/config/config.h"

namespace disque::persist {

// What INFO persistence reports of the writer.
struct AofWriterStats {
  bool open = false;
  uint64_t current_size = 0;          // bytes in the file
  uint64_t base_size = 0;             // size after the last rewrite or open
  uint64_t buffer_length = 0;         // appended, not written yet
  uint64_t rewrite_buffer_length = 0; // captured for a running rewrite
  bool fsync_in_progress = false;     // a background (everysec) fsync is running
  uint64_t fsyncs = 0;                // fsync calls made on the AOF
  int last_write_errno = 0;           // 0: the last write succeeded
};

// The one writer of the append-only file. Shards append framed records from their
// threads (Append, a memcpy under a mutex); the writer thread writes whatever has
// accumulated in one write() and, with `appendfsync always`, one fsync: every command
// that arrived meanwhile shares that fsync (group commit). With `everysec` a second
// thread fsyncs once a second, so a slow disk never holds up the writes; with `no` the
// kernel decides.
//
// Positions: every appended byte has a position in one stream that never restarts (it
// continues across rewrites). Append returns the position after its records;
// released() is how far the stream is safe under the policy: written for `no` and
// `everysec`, written and fsynced for `always`. A client's reply waits for its
// position to be released. The listener runs on the writer thread each time released()
// advances, and after a failed write.
//
// Write errors: the data stays buffered and the write is retried every second;
// last_write_errno() is non-zero until a write succeeds (the server answers -MISCONF
// meanwhile). With `always` an error is fatal (the process exits), as in Disque: a
// reply must never claim a write that did not happen. With the other policies the
// waiting replies are released, as Disque sends them.
//
// Rewrite: BeginCapture() makes every later Append also go to a capture buffer; the
// rewriter writes a snapshot of every job to a temporary file, then FinishRewrite()
// appends the captured records, fsyncs, renames the file over the AOF and continues
// appending there, all on the writer thread so that no record is written twice or
// lost. A snapshot taken at any time after BeginCapture, followed by the captured
// records, replays to the current state: LOADJOB of a known job and DELJOB of an
// unknown one do nothing (docs/persistence.md).
//
// States: closed (Append keeps records only while capturing) -> open (Open, or a
// FinishRewrite that adopts the new file) -> closed (Close). The threads run from
// construction to destruction.
class AofWriter {
 public:
  using Listener = std::function<void()>;
  explicit AofWriter(Listener listener);
  ~AofWriter();
  AofWriter(const AofWriter&) = delete;
  AofWriter& operator=(const AofWriter&) = delete;

  // Opens `path` for appending: an existing file must be valid up to its end (the
  // loader truncates a torn tail first); a missing or empty one gets the file header.
  Status Open(const std::string& path, config::AppendFsync policy);
  // Writes what is buffered, fsyncs and closes the file (appendonly no, shutdown).
  void Close();
  bool is_open() const { return open_.load(); }

  // Appends framed records. Returns the position to wait for, or 0 when the file is
  // not open (nothing to wait for).
  uint64_t Append(std::string_view records);
  uint64_t released() const { return released_.load(); }
  // Writes what is pending on the calling thread, unless released() already covers
  // `pos`. Under `no` and `everysec` a shard calls it before its replies, which then
  // need no round trip through the writer thread; the writer thread still handles
  // errors, rewrites and `always`.
  void WriteThrough(uint64_t pos);
  // The position after the last record appended.
  uint64_t appended() const {
    std::lock_guard lock(mu_);
    return appended_;
  }

  void set_policy(config::AppendFsync policy) { policy_.store(policy); }
  void set_no_fsync_on_rewrite(bool v) { no_fsync_on_rewrite_.store(v); }

  void BeginCapture();
  // Drops the capture (a rewrite that failed or was cancelled).
  void EndCapture();
  // Completes a rewrite: `temp_fd` (owned from here on) holds the header and the
  // snapshot. Appends the capture, fsyncs, renames `temp_path` to `path`, fsyncs the
  // directory; then appends go to the new file if the writer was open or `adopt` is
  // set (CONFIG SET appendonly yes). Blocks until done.
  Status FinishRewrite(int temp_fd, const std::string& temp_path, const std::string& path, bool adopt);

  // Fault injection (DEBUG AOF-FAULT): every write fails with `err` until set to 0.
  void InjectWriteError(int err) { injected_errno_.store(err); }
  int last_write_errno() const { return last_errno_.load(); }
  AofWriterStats stats() const;

 private:
  struct File;
  void WriterLoop();
  void SyncerLoop();
  // Writes `data` at the end of `file` (retrying short writes). Returns 0 or an errno;
  // `*written` is how much reached the file.
  int WriteAll(File& file, std::string_view data, size_t* written);
  // One write round: the pending bytes to the file, fsync under `always`. Called with
  // the lock held; releases it while writing.
  void FlushPending(std::unique_lock<std::mutex>& lock);
  void DoFinish(std::unique_lock<std::mutex>& lock);
  void DoClose(std::unique_lock<std::mutex>& lock);
  void Notify();

  const Listener listener_;
  std::atomic<config::AppendFsync> policy_{config::AppendFsync::kEverysec};
  std::atomic<bool> no_fsync_on_rewrite_{false};
  std::atomic<int> injected_errno_{0};
  std::atomic<int> last_errno_{0};
  std::atomic<bool> open_{false};
  std::atomic<uint64_t> released_{0};
  std::atomic<uint64_t> fsyncs_{0};
  std::atomic<bool> fsync_in_progress_{false};

  std::mutex io_mu_;  // held for every write to the file; taken before mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the writer thread
  std::condition_variable done_cv_;  // wakes callers of Close / FinishRewrite
  std::condition_variable sync_cv_;  // wakes the syncer thread (only to stop)
  std::shared_ptr<File> file_;       // null while closed
  std::string pending_;              // appended, not written
  uint64_t appended_ = 0;            // stream position after pending_
  uint64_t file_size_ = 0;
  uint64_t base_size_ = 0;
  bool dirty_ = false;               // written since the last fsync
  bool capturing_ = false;
  std::string capture_;
  // While a rewrite switches files, appends are kept for the new file (and waited for)
  // even if no file is open yet.
  bool switching_ = false;
  int64_t retry_at_ms_ = 0;          // after a failed write: not before this (steady ms)
  // Requests to the writer thread.
  struct FinishRequest {
    int temp_fd;
    std::string temp_path, path;
    bool adopt;
    Status result;
    bool done = false;
  };
  FinishRequest* finish_ = nullptr;
  bool close_requested_ = false;
  uint64_t close_generation_ = 0;  // completed closes
  bool stop_ = false;
  std::thread writer_;
  std::thread syncer_;
};

}  // namespace disque::persist
