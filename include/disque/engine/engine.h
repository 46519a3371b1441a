#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/clock.h"
#include "disque/common/status.h"
#include "disque/engine/job.h"
#include "disque/engine/job_id.h"
#include "disque/engine/journal.h"
#include "disque/engine/node_set.h"
#include "disque/engine/pointer_table.h"
#include "disque/engine/queue.h"
#include <unordered_map>
#include <unordered_set>

namespace disque::engine {

struct JobRecord;

// Numeric constants of PROTOCOL.md part II 12 that the engine uses.
inline constexpr int64_t kDefaultTtl = 86400;
inline constexpr int64_t kDefaultRetryMax = 300;
inline constexpr int64_t kRequeueJitterMs = 500;   // DISQUE_TIME_ERR: [-250, +249]
inline constexpr int64_t kWillQueueAdvanceMs = 500;
inline constexpr int64_t kQueueMaxIdleMs = 300'000;
inline constexpr size_t kMaxJobsPerTimerRun = 10000;
inline constexpr int64_t kAddNodeMinPeriodMs = 50;      // DELAYED_JOB_ADD_NODE_MIN_PERIOD
inline constexpr int64_t kGcRetryMinPeriodMs = 1000;
inline constexpr int64_t kGcRetryMaxPeriodMs = 180000;
inline constexpr uint8_t kGcRetryMax = 10;
inline constexpr uint32_t kNeedJobsMinRequest = 5;
inline constexpr uint32_t kNeedJobsMaxRequest = 100;
inline constexpr int64_t kNeedJobsBcastMinDelayMs = 2000;
inline constexpr int64_t kNeedJobsBcastMaxDelayMs = 30000;
inline constexpr int64_t kNeedJobsAdhocMinDelayMs = 25;
inline constexpr int64_t kNeedJobsAdhocMaxDelayMs = 2000;
inline constexpr int64_t kImportRateWindowMs = 5000;
inline constexpr int64_t kResponderValidityMs = 5000;
// Ours: the most job bytes one YOURJOBS carries (a bus frame is at most 600 MB).
inline constexpr size_t kYourJobsMaxBytes = 64 * 1024 * 1024;

// The job messages of the cluster bus (PROTOCOL.md part II 5). The values are the bus's
// message types (cluster/message.h asserts that they agree).
enum class JobMsg : uint8_t {
  kReplJob = 5,
  kGotJob = 6,
  kEnqueue = 7,
  kWillQueue = 8,
  kQueued = 9,
  kWorking = 10,
  kSetAck = 11,
  kGotAck = 12,
  kDelJob = 13,
  kNeedJobs = 14,
  kYourJobs = 15,
  kPause = 16,
};
// Per-message flags (the bus's kMsg* bits).
inline constexpr uint8_t kJobMsgNoReply = 1 << 0;
inline constexpr uint8_t kJobMsgIncrNacks = 1 << 1;
inline constexpr uint8_t kJobMsgIncrDeliv = 1 << 2;

// A job message, in either direction. Outgoing ones name their recipients by node
// index; the bus sends each to the recipients it has a link to and drops the rest
// (best effort, PROTOCOL.md part II). Incoming ones carry the sender's index.
struct JobMessage {
  JobMsg type = JobMsg::kGotJob;
  uint8_t flags = 0;              // kJobMsg* bits
  std::string job_id;             // GOTJOB..DELJOB: the 40-character job ID
  uint32_t aux = 0;               // GOTJOB..DELJOB: aux; NEEDJOBS: count; PAUSE: flags
  std::string queue;              // NEEDJOBS, PAUSE
  std::vector<std::string> jobs;  // REPLJOB, YOURJOBS: serialized jobs (job_codec.h)
  // Outgoing: the recipients; `to_all` means every known node not in handshake, except
  // this one, and `to` is then empty. Incoming: `sender`.
  std::vector<uint32_t> to;
  bool to_all = false;
  uint32_t sender = 0;
};

// What the engine needs to know of the cluster, in node indexes. The shard rebuilds it
// from each new snapshot of the node table.
struct ClusterState {
  uint32_t self = 0;
  int size = 1;    // records not in handshake, this node included (default REPLICATE)
  int known = 1;   // every record, handshakes included (dummy ACK collection)
  bool leaving = false;                 // this node is leaving
  std::vector<uint32_t> reachable;      // other nodes not handshake/PFAIL/FAIL/LEAVING
  std::vector<uint32_t> targets;        // the reachable ones with a link: replica targets
  std::vector<uint32_t> members;        // every record not in handshake (job node lists)
  bool Member(uint32_t node) const;
};

// A client blocked in a synchronous ADDJOB. Claim() as for Waiter; then exactly one of
// Replicated (the job reached REPLICATE copies: reply its ID) or Fail (NOREPL, LEAVING).
class ReplWaiter {
 public:
  virtual ~ReplWaiter() = default;
  virtual bool Claim() = 0;
  virtual void Replicated(const JobId& id) = 0;
  virtual void Fail(const Status& status) = 0;
};

// ADDJOB after its arguments were parsed and validated (PROTOCOL.md 3.1 steps 1-7).
struct AddJobArgs {
  std::string_view queue;
  std::string_view body;
  uint16_t repl = 1;
  uint32_t delay = 0;    // seconds
  uint32_t retry = 0;    // seconds (the default already applied)
  int64_t ttl = kDefaultTtl;  // seconds, > 0
  int64_t maxlen = 0;    // 0: no MAXLEN
  bool async = false;    // ASYNC: reply at once, replicate in the background
  bool external = false; // keep no copy here (memory above 75 %, or leaving)
  int64_t timeout_ms = 0;  // synchronous replication deadline; 0: none
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
  // node's creation-time source (null: one of its own, for a lone engine). `nodes`: the
  // process's node registry (null: one of its own).
  Engine(const Clock& clock, std::string_view node_id, SipKey key, uint64_t seed, CtimeSource* ctimes = nullptr,
         NodeRegistry* nodes = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- jobs ---
  // Creates the job (PROTOCOL.md 3.1 steps 8-9 and "Behaviour after validation"):
  // MAXLEN and PAUSED errors. A job that needs no confirmation from other nodes (REPLICATE
  // 1, or ASYNC) is ready when this returns: queued at once without DELAY, replicas sent.
  // Otherwise it waits in wait-repl and `waiter` gets the outcome (PROTOCOL.md II 6).
  // With external ASYNC replication the job is not kept here: the result is then null.
  // `id`, if given, receives the new job's ID in every case.
  Result<const Job*> AddJob(const AddJobArgs& args, std::shared_ptr<ReplWaiter> waiter = nullptr,
                            JobId* id = nullptr);
  // The client of a synchronous ADDJOB went away: the job is deleted here and on the
  // nodes that may have it (best effort), unless replication already completed.
  void CancelReplication(const JobId& id);
  // The job with this ID text, or nullptr (unknown, or not canonical).
  Job* Find(std::string_view id_text) const;
  Job* Find(const JobId& id) const;
  // Before a batch of operations by ID (ACKJOB of a GETJOB's batch): starts loading, for
  // every ID, its index slot, then its job, then its schedule slot, so that the batch's
  // cache misses overlap instead of coming one after another (at a million jobs each is
  // a trip to memory). Only a hint: IDs that do not parse or name no job are skipped.
  void Prefetch(std::span<const std::string_view> id_texts) const;
  // ACKJOB: true if the job was known and not acked. Acked jobs are garbage collected
  // across the cluster (PROTOCOL.md II 8); an unknown at-least-once ID in a cluster
  // becomes a dummy ACK.
  bool Ack(std::string_view id_text);
  // FASTACK: true if the job was known. DELJOB goes to the nodes that may have it (to
  // every node for an unknown ID) and the local copy is deleted.
  bool FastAck(std::string_view id_text);
  // DELJOB: true if the job was known; it is deleted whatever its state. Only a job
  // waiting for replication is deleted cluster-wide (its client gets NOREPL).
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
  // Whether Fetch(name, ...) would give a job now; creates nothing.
  bool CanFetch(std::string_view name) const;
  // QPEEK: count >= 0: up to count jobs from the head; < 0: from the tail, newest first.
  void Peek(std::string_view name, int64_t count, std::vector<const Job*>& out) const;
  // PAUSE: replaces the flags when `flags` is set (creating the queue unless the new set
  // is empty); returns the resulting flags (0 for a missing queue). `bcast` sends the
  // result to every node.
  uint8_t Pause(std::string_view name, std::optional<uint8_t> flags, bool bcast = false);
  // Federation (PROTOCOL.md II 9): asks other nodes for jobs of `name`. GETJOB calls it
  // for each queue that gave nothing (`reached_zero` false); fetches that empty a queue
  // call it themselves.
  void NeedJobs(Queue& q, bool reached_zero);
  // QSTAT import-rate and the responders (import-from), node indexes.
  uint32_t ImportRate(const Queue& q) const;
  std::vector<uint32_t> Responders(Queue& q);

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

  // --- cluster ---
  void SetCluster(ClusterState state);
  const ClusterState& cluster() const { return cluster_; }
  // The memory warning level (PROTOCOL.md 5): above 0 this node refuses replicas.
  void set_memory_level(int level) { memory_level_ = level; }
  // A job message from another node (PROTOCOL.md II 5).
  void Receive(const JobMessage& message);
  // Messages to send, oldest first; the caller hands them to the bus.
  bool has_outbox() const { return !outbox_.empty(); }
  std::vector<JobMessage> TakeOutbox() { return std::exchange(outbox_, {}); }
  // The periodic part of the cluster rules, at the server cron's pace: synchronous
  // replication retries and timeouts, blocked clients of a leaving node, NEEDJOBS for
  // blocked clients.
  void Cron();
  // Nodes-confirmed of a job (SHOW).
  const NodeSet* Confirmed(const Job& job) const;
  const NodeRegistry& nodes() const { return *nodes_; }
  NodeRegistry& nodes() { return *nodes_; }

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

  // --- persistence (PROTOCOL.md 8) ---
  // Where job creations and removals are reported; null (the default): nowhere. The
  // journal must outlive its use here.
  void set_journal(Journal* journal) { journal_ = journal; }
  Journal* journal() const { return journal_; }
  // Appends the job's serialization as the AOF stores it (absolute etime, every flag).
  void SerializeForAof(const Job& job, std::string& out) const;
  // A LOADJOB read back from the AOF (PROTOCOL.md 8.2): skipped (false) when expired,
  // acked or already known; otherwise registered active, or back in its queue when it
  // was queued and `enqueue` (aof-enqueue-jobs-once) is set, with its counters kept.
  // An active at-least-once job is due for requeue DELAY + RETRY seconds from now.
  bool LoadJob(const JobRecord& record, bool enqueue);
  // A DELJOB read back from the AOF: forgets the job, if known.
  void UnloadJob(std::string_view id_text);

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
  bool Enqueue(Job& job, bool nack) { return Enqueue(job, nack, NowMs()); }
  // The same at `now` (ADDJOB has read the clock already: a read is a vDSO call, several
  // percent of ADDJOB's time in this VM).
  bool Enqueue(Job& job, bool nack, int64_t now);
  // Takes the head of a queue for a client.
  Job* PopForDelivery(Queue& q);
  // Takes a queued job out of its queue: it becomes active and is rescheduled.
  void RemoveFromQueue(Job& job);
  // Only the queue's part of RemoveFromQueue, for a job about to be deleted.
  void DetachFromQueue(Job& job);
  void ServeWaiters(Queue& q);
  // Recomputes the schedule key and places the job in the schedule.
  void Reschedule(Job& job);
  // Puts the job in the schedule, or moves it there, at `wake_ms`.
  void SetWake(Job& job, int64_t wake_ms);
  void SetRequeueTime(Job& job, int64_t now_ms);
  // Deletes a job; an active or queued one is reported to the journal (DelJob).
  void DeleteJob(Job* job);
  // Deletes a job without telling the journal: one that was never reported (an
  // external replication's transient copy), or during AOF load.
  void UnlinkJob(Job* job);
  void JournalLoad(const Job& job);
  void JournalDel(const Job& job) {
    if (journal_ != nullptr) journal_->DelJob(job.id);
  }

  // The cluster rules (engine_cluster.cpp).
  // Per-job state kept off the job (kJobHasExtra): nodes-confirmed and, while in
  // wait-repl, the blocked client and the replication pace.
  struct JobExtra {
    NodeSet confirmed;
    std::shared_ptr<ReplWaiter> waiter;  // null: ASYNC or nobody waits
    int64_t deadline_ms = 0;             // 0: no timeout
    int64_t added_node_ms = 0;           // the last time a node was added
  };
  JobExtra& Extra(Job& job);
  void LeaveWaitRepl(Job& job);
  JobExtra* FindExtra(const Job& job);
  void DropExtra(Job& job);
  // Creates an active job from a record (REPLJOB, YOURJOBS, AOF) expiring at `etime`
  // (unix seconds); flags outside `kept_flags` are dropped.
  Job* Register(const JobRecord& record, uint32_t etime, uint8_t kept_flags);
  // Adds to nodes-delivered the nodes of a received list that this node knows.
  void AddKnownNodes(Job& job, const std::vector<std::string>& nodes);
  // A copy held here and not queued (a replica, a job loaded from the AOF): due for
  // requeue DELAY + RETRY seconds from now (with jitter), with a WILLQUEUE first;
  // at-most-once copies are never queued here.
  void ScheduleHeldRequeue(Job& job, int64_t now_ms);
  // Picks up to `n` new reachable targets and (re)sends REPLJOB; returns the number added.
  int ReplicateJob(Job& job, int n, bool noreply);
  void ReplicationAchieved(Job& job);
  void AckedWhileReplicating(Job& job);
  // Deletes a job here and sends DELJOB to the nodes that may have it; a waiting ADDJOB
  // client gets `reason`.
  void DeleteEverywhere(Job* job, const Status& reason);
  void AckLocal(Job& job);
  // One GC attempt (PROTOCOL.md II 8); true if the job was deleted.
  bool TryGc(Job& job);
  // No other node may hold a copy (nor was told of it), so an ACK deletes it at once:
  // the common case of a single node or of REPLICATE 1.
  bool OnlyCopyHere(const Job& job);
  void ScheduleGc(Job& job, int64_t now_ms);
  void Send(JobMsg type, const Job& job, uint32_t aux, std::vector<uint32_t> to, uint8_t flags = 0);
  void SendToDelivered(JobMsg type, const Job& job, uint32_t aux = 0, uint8_t flags = 0);
  std::vector<uint32_t> Others(const NodeSet& set) const;
  std::string Serialize(const Job& job) const;
  bool SenderWins(uint32_t sender, const Job& job) const;
  void NoteImport(Queue& q, uint32_t sender, int64_t now_ms);
  void OnReplJob(const JobMessage& m);
  void OnGotJob(const JobMessage& m, Job& job);
  void OnEnqueue(const JobMessage& m, Job& job);
  void OnWillQueue(const JobMessage& m, Job& job);
  void OnQueued(const JobMessage& m, Job& job);
  void OnSetAck(const JobMessage& m, Job* job);
  void OnGotAck(const JobMessage& m, Job& job);
  void OnNeedJobs(const JobMessage& m);
  void OnYourJobs(const JobMessage& m);
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
  // Every job's memory. Declared before everything that points at jobs; the destructor
  // frees the jobs before the members go.
  JobArena arena_;
  PointerTable<Job, JobHashTraits, JobHandleSlots> jobs_;
  PointerTable<Queue, QueueHashTraits> queues_;
  // The queue FindQueue returned last (or nullptr): commands name the same queue over
  // and over (an ADDJOB looks its queue up twice, a GETJOB once per call), and comparing
  // the name costs far less than hashing it. Cleared when that queue is destroyed.
  mutable Queue* last_queue_ = nullptr;
  JobSchedule schedule_;
  CtimeSource own_ctimes_;
  CtimeSource& ctimes_;
  size_t job_bytes_ = 0;
  uint64_t evict_cursor_ = 0;  // idle queue eviction position in the queue table
  std::unique_ptr<NodeRegistry> own_nodes_;
  NodeRegistry* nodes_;
  ClusterState cluster_;
  int memory_level_ = 0;
  std::vector<JobMessage> outbox_;
  Journal* journal_ = nullptr;
  std::string journal_scratch_;  // reused serialization buffer for JournalLoad
  std::unordered_map<const Job*, JobExtra> extras_;
  // The jobs in wait-repl (all have an extra): what Cron visits for retries and
  // timeouts. A job leaves it when it leaves that state (LeaveWaitRepl) or is deleted.
  std::unordered_set<Job*> replicating_;
  // Queues with blocked clients (NEEDJOBS for them, LEAVING errors). May hold queues
  // whose waiters are all stale; Cron drops those.
  std::vector<Queue*> waited_;
};

}  // namespace disque::engine
