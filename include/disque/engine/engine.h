#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/clock.h"
#include "disque/common/status.h"
#include "disque/engine/job.h"
#include "disque/engine/job_id.h"
#include "disque/engine/pointer_table.h"
#include "disque/engine/queue.h"

namespace disque::engine {

// Numeric constants of PROTOCOL.md part II 12 that the engine uses.
inline constexpr int64_t kDefaultTtl = 86400;
inline constexpr int64_t kDefaultRetryMax = 300;
inline constexpr int64_t kRequeueJitterMs = 500;   // DISQUE_TIME_ERR: [-250, +249]
inline constexpr int64_t kWillQueueAdvanceMs = 500;
inline constexpr int64_t kQueueMaxIdleMs = 300'000;
inline constexpr size_t kMaxJobsPerTimerRun = 10000;

// ADDJOB after its arguments were parsed and validated (PROTOCOL.md 3.1 steps 1-7).
struct AddJobArgs {
  std::string_view queue;
  std::string_view body;
  uint16_t repl = 1;
  uint32_t delay = 0;    // seconds
  uint32_t retry = 0;    // seconds (the default already applied)
  int64_t ttl = kDefaultTtl;  // seconds, > 0
  int64_t maxlen = 0;    // 0: no MAXLEN
};

// Job creation times, strictly increasing per node (PROTOCOL.md 2.3): unix ms * 1e6, or
// the previous value + 1 within the same millisecond. Shared by the engines of all
// shards, so it is the one atomic on the ADDJOB path.
class CtimeSource {
 public:
  uint64_t Next(int64_t now_ms);

 private:
  std::atomic<uint64_t> last_{0};
};

// Memory warning levels of PROTOCOL.md 5.
int MemoryWarningLevel(uint64_t used, uint64_t maxmemory);

// The jobs and queues of one shard, and their timers: a deterministic state machine
// with no sockets, threads or Asio. Every operation is O(1) or O(log n) in the number
// of jobs; time comes from the injected Clock (wall milliseconds).
//
// Ownership: the engine owns every Job (through its ID index) and every Queue (through
// its queue table). A job is in the index and the schedule from creation to deletion,
// and in its queue's heap exactly while its state is kQueued. Pointers to jobs returned
// by the engine are valid until the next call that can delete jobs.
class Engine {
 public:
  // `node_id`: this node's 40-hex ID (its prefix starts every job ID made here).
  // `key`: secret for job IDs and table hashes. `seed`: requeue jitter. `ctimes`: the
  // node's creation-time source (null: one of its own, for a lone engine).
  Engine(const Clock& clock, std::string_view node_id, SipKey key, uint64_t seed, CtimeSource* ctimes = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- jobs ---
  // Creates the job (PROTOCOL.md 3.1 steps 8-9 and "Behaviour after validation"):
  // MAXLEN and PAUSED errors; queued at once without DELAY, serving blocked clients.
  Result<const Job*> AddJob(const AddJobArgs& args);
  // The job with this ID text, or nullptr (unknown, or not canonical).
  Job* Find(std::string_view id_text) const;
  Job* Find(const JobId& id) const;
  // ACKJOB: true if the job was known and not acked. On a single node it is then
  // garbage collected at once (deleted).
  bool Ack(std::string_view id_text);
  // FASTACK and DELJOB: true if the job was known; it is deleted whatever its state.
  bool Delete(std::string_view id_text);
  // NACK (nack = true) and ENQUEUE: true if the job went from active to queued.
  bool Requeue(std::string_view id_text, bool nack);
  // DEQUEUE: true if the job went from queued to active.
  bool Dequeue(std::string_view id_text);
  // WORKING: the job's RETRY, or NOJOB / TOOLATE.
  Result<int64_t> Working(std::string_view id_text);

  // --- queues ---
  Queue* FindQueue(std::string_view name) const;
  Queue& GetOrCreateQueue(std::string_view name);
  // GETJOB: takes up to `max` jobs from the head of `name` (none if paused in output),
  // creating the queue; each becomes active and delivered.
  void Fetch(std::string_view name, size_t max, std::vector<const Job*>& out);
  // Jobs fetchable now from `name` (0 if paused in output), creating the queue.
  size_t Fetchable(std::string_view name);
  // QPEEK: count >= 0: up to count jobs from the head; < 0: from the tail, newest first.
  void Peek(std::string_view name, int64_t count, std::vector<const Job*>& out) const;
  // PAUSE: replaces the flags when `flags` is set (creating the queue unless the new set
  // is empty); returns the resulting flags (0 for a missing queue).
  uint8_t Pause(std::string_view name, std::optional<uint8_t> flags);

  // --- blocked clients ---
  // Registers `waiter` on `name` (creating the queue), and serves it at once if a job is
  // there.
  void Block(std::string_view name, std::shared_ptr<Waiter> waiter);
  // Drops a registration (the client was served elsewhere, timed out or left).
  void Unblock(std::string_view name, const Waiter* waiter);

  // --- scans (QSCAN, JSCAN): see PointerTable; cursors are in [0, kScanEnd) ---
  static constexpr uint64_t kScanEnd = uint64_t{1} << 54;  // PointerTable::kScanEnd
  template <typename Fn>
  uint64_t ScanQueuesBucket(uint64_t cursor, Fn&& fn) const { return queues_.ScanBucket(cursor, fn); }
  template <typename Fn>
  uint64_t ScanJobsBucket(uint64_t cursor, Fn&& fn) const { return jobs_.ScanBucket(cursor, fn); }

  // --- time ---
  // Runs the scheduler (PROTOCOL.md part II 7) for every job due now, up to 10000.
  void ProcessTimers();
  // When ProcessTimers next has work (unix ms), or INT64_MAX.
  int64_t NextWakeMs() const;
  // Idle queue eviction, incremental (call every 100 ms): looks at a slice of the queue
  // table with the max idle time of the memory warning level.
  void EvictIdleQueues(int memory_level);
  // Memory eviction at warning level >= 2 (PROTOCOL.md 5): samples random jobs and
  // evicts acked ones and delivered at-most-once ones until `bytes` are freed, more
  // than 10 samples in a row free nothing or 1 ms passes; with no jobs, evicts one
  // evictable queue. Returns the bytes freed.
  size_t EvictForMemory(size_t bytes);

  // DEBUG FLUSHALL: deletes every job and queue; blocked clients get no job.
  void Flush();

  // SHOW's time fields: ms until the next requeue (nullopt: never), until the next wake.
  std::optional<int64_t> NextRequeueWithin(const Job& job) const;
  std::optional<int64_t> NextAwakeWithin(const Job& job) const;
  // Seconds until expiry, floored at 0.
  int64_t TtlLeft(const Job& job) const;

  size_t job_count() const { return jobs_.size(); }
  size_t queue_count() const { return queues_.size(); }
  // Bytes held by jobs (their allocations), for eviction estimates.
  size_t job_bytes() const { return job_bytes_; }
  const Clock& clock() const { return clock_; }
  const std::string& node_id() const { return node_id_; }
  // A new identity (CLUSTER RESET HARD, or nodes.conf loaded after construction): job
  // IDs made from now on carry its prefix. Existing jobs keep theirs.
  void SetNodeId(std::string_view node_id);

 private:
  struct JobHashTraits {
    static uint64_t Hash(const Job& job) { return job.id.hash(); }
  };
  struct QueueHashTraits {
    static uint64_t Hash(const Queue& q) { return q.hash; }
  };

  uint64_t QueueHash(std::string_view name) const;
  // Puts an active job in its queue (Disque's enqueueJob): false if it may not be
  // queued (already queued, no pending queue time, or a delivered at-most-once job).
  bool Enqueue(Job& job, bool nack);
  // Takes the head of a queue for a client.
  Job* PopForDelivery(Queue& q);
  void RemoveFromQueue(Job& job);
  void ServeWaiters(Queue& q);
  // Recomputes the schedule key and places the job in the schedule.
  void Reschedule(Job& job);
  void SetRequeueTime(Job& job, int64_t now_ms);
  void DeleteJob(Job* job);
  void DestroyQueue(Queue* q);
  // Frees every job and queue; Flush wakes the blocked clients, the destructor does not.
  void Clear(bool wake_waiters);
  bool QueueEvictable(const Queue& q, int64_t now_ms, int64_t max_idle_ms) const;
  int64_t Jitter();
  int64_t NowMs() const { return clock_.NowMs(); }

  const Clock& clock_;
  std::string node_id_;
  const SipKey key_;
  JobIdGenerator ids_;
  std::mt19937_64 rng_;
  PointerTable<Job, JobHashTraits> jobs_;
  PointerTable<Queue, QueueHashTraits> queues_;
  JobSchedule schedule_;
  CtimeSource own_ctimes_;
  CtimeSource& ctimes_;
  size_t job_bytes_ = 0;
  uint64_t evict_cursor_ = 0;  // idle queue eviction position in the queue table
};

}  // namespace disque::engine
