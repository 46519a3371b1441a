#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "disque/engine/indexed_heap.h"
#include "disque/engine/job_arena.h"
#include "disque/engine/job_id.h"
#include "disque/engine/node_set.h"

namespace disque::engine {

// Job states (PROTOCOL.md 2.4). The numbers are those of the LOADJOB serialization.
enum class JobState : uint8_t {
  kWaitRepl = 0,  // created, waiting for synchronous replication (cluster only)
  kActive = 1,    // held here, not in a queue: delivered, delayed, or a replica
  kQueued = 2,    // in this shard's queue, deliverable by GETJOB
  kAcked = 3,     // acknowledged, waiting for garbage collection
};

std::string_view JobStateName(JobState state);

// Job flags. The low three are the LOADJOB flag bits (PROTOCOL.md 8.5) and travel with
// the job; the others are this node's bookkeeping.
enum JobFlag : uint8_t {
  kJobBcastQueued = 1 << 0,  // queued once already (or a replica): the next queueing counts
  kJobWillQueue = 1 << 1,    // a WILLQUEUE is due 500 ms before qtime
  kJobDelivered = 1 << 2,    // handed to a client by this node
  kJobSerializedFlags = 0x07,
  kJobHasExtra = 1 << 6,     // has an entry in the engine's side table (Engine::JobExtra)
  kJobDummyAck = 1 << 7,     // a dummy ACK: an ACKJOB for a job this node never had
};

// One job: a single allocation holding the fixed fields below followed by the queue
// name and the body (Job::Create/Destroy). Its ID is stored binary; the 40-character
// text exists only on the wire. A job is in up to three intrusive structures of its
// shard's Engine at once: the ID index (always), the schedule heap (always: every job at
// least expires; the heap holds the job's wake-up time) and its queue (JobQueue, only
// while queued).
//
// 88 bytes plus name and body. Nodes-confirmed, needed only while a job waits for
// replication or for its ACK to be collected, lives in the engine's side table.
struct Job {
  JobId id;                // binary ID (24 bytes)
  uint64_t ctime;          // creation: origin unix ms * 1e6 (+n within a ms); queue order
  // Active or queued: next (re)queue attempt, unix ms; 0 = never again.
  // Acked: the next garbage-collection attempt.
  int64_t qtime_ms;
  uint32_t etime;          // expiry, unix seconds (32-bit: a huge TTL wraps, as in Disque)
  uint32_t delay;          // seconds, as given to ADDJOB
  uint32_t retry;          // seconds; 0 = at most once
  uint32_t queue_pos = kNotInHeap;  // position in its queue's heap (queued only)
  uint32_t timer_pos = kNotInHeap;  // position in the schedule heap
  uint32_t queue_len;      // bytes of the queue name
  uint32_t body_len;       // bytes of the body
  uint16_t repl;           // requested replication factor
  uint16_t nacks;          // NACKs seen here (saturates)
  uint16_t additional_deliveries;  // re-queues here other than the first (saturates)
  JobState state;
  uint8_t flags;           // JobFlag bits
  uint8_t gc_retry;        // ACK garbage-collection attempts made (capped at 10)
  // Nodes that may hold a copy (PROTOCOL.md II 6), node indexes (NodeRegistry). Empty
  // for a dummy ACK; this node is in it unless the job came by YOURJOBS or is held
  // for external replication.
  NodeSet delivered;

  std::string_view queue() const { return {Data(), queue_len}; }
  std::string_view body() const { return {Data() + queue_len, body_len}; }
  bool at_most_once() const { return retry == 0; }
  // Bytes of the allocation (memory accounting).
  size_t allocation_size() const { return sizeof(Job) + queue_len + body_len; }

  // Allocates a job with a copy of `queue` and `body`; every other field is zero.
  static Job* Create(JobArena& arena, std::string_view queue, std::string_view body);
  static void Destroy(JobArena& arena, Job* job);

 private:
  Job() = default;
  const char* Data() const { return reinterpret_cast<const char*>(this + 1); }
  char* Data() { return reinterpret_cast<char*>(this + 1); }
};

static_assert(sizeof(Job) == 88, "the job header is part of the memory per job (docs/benchmarks.md)");

// Queue order: ctime, then the ID bytes.
struct JobQueueOrder {
  bool operator()(const Job* a, const Job* b) const {
    if (a->ctime != b->ctime) return a->ctime < b->ctime;
    return std::memcmp(a->id.bytes.data(), b->id.bytes.data(), a->id.bytes.size()) < 0;
  }
};

using JobQueueHeap = IndexedHeap<Job, &Job::queue_pos, ByElement<Job, JobQueueOrder>>;
// Keyed by wake-up time, unix ms: when the scheduler must look at the job next.
using JobSchedule = IndexedHeap<Job, &Job::timer_pos, ByKey<Job>>;

}  // namespace disque::engine
