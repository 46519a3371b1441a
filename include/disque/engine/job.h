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
// 80 bytes plus name and body: a job with a 100-byte body and a 2-byte queue name takes
// 182 bytes, the arena's 184-byte class (docs/benchmarks.md). Nodes-confirmed, needed
// only while a job waits for replication or for its ACK to be collected, lives in the
// engine's side table. The fields after `gc_retry` describe the allocation and are
// written once, by Create; after the header come, in this order:
//
//   uint32   queue name length   only if queue_len_ == kLongQueueName (65,535 or more)
//   bytes    queue name          queue().size() bytes
//   bytes    body                body_len_ bytes
//   uint32   delay               only if delay_stored_ (a delay of 0 is not stored)
//
// So a name of up to 65,534 bytes costs its bytes, a longer one 4 more (Disque accepts
// any name a bulk string can carry, up to 512 MB), and a delay 4 bytes only when it is
// not 0. The optional uint32s are unaligned: read and written with memcpy. The delay
// sits after the body because it is read only by SHOW, replication and requeue
// scheduling, while queue() and body() are on every delivery.
struct Job {
  // Layout, byte offsets: id 0, ctime 24, qtime_ms 32, delivered 40, etime 48, retry 52,
  // queue_pos 56, timer_pos 60, repl 64, nacks 66, additional_deliveries 68, state 70,
  // flags 71, gc_retry 72, delay_stored_ 73, queue_len_ 74, body_len_ 76. No padding.
  JobId id;                // binary ID (24 bytes)
  uint64_t ctime;          // creation: origin unix ms * 1e6 (+n within a ms); queue order
  // Active or queued: next (re)queue attempt, unix ms; 0 = never again.
  // Acked: the next garbage-collection attempt.
  int64_t qtime_ms;
  // Nodes that may hold a copy (PROTOCOL.md II 6), node indexes (NodeRegistry). Empty
  // for a dummy ACK; this node is in it unless the job came by YOURJOBS or is held
  // for external replication.
  NodeSet delivered;
  uint32_t etime;          // expiry, unix seconds (32-bit: a huge TTL wraps, as in Disque)
  uint32_t retry;          // seconds; 0 = at most once
  uint32_t queue_pos = kNotInHeap;  // position in its queue's heap (queued only)
  uint32_t timer_pos = kNotInHeap;  // position in the schedule heap
  uint16_t repl;           // requested replication factor
  uint16_t nacks;          // NACKs seen here (saturates)
  uint16_t additional_deliveries;  // re-queues here other than the first (saturates)
  JobState state;
  uint8_t flags;           // JobFlag bits
  uint8_t gc_retry;        // ACK garbage-collection attempts made (capped at 10)

  // queue_len_ value for a name of 65,535 bytes or more: its length is stored in front.
  static constexpr uint16_t kLongQueueName = UINT16_MAX;

  std::string_view queue() const {
    if (queue_len_ != kLongQueueName) [[likely]] return {Data(), queue_len_};
    return {Data() + sizeof(uint32_t), LoadU32(Data())};
  }
  std::string_view body() const { return {Data() + QueueBytes(), body_len_}; }
  // Seconds, as given to ADDJOB (or carried by the job's record); fixed at creation.
  uint32_t delay() const {
    return delay_stored_ ? LoadU32(Data() + QueueBytes() + body_len_) : 0;
  }
  bool at_most_once() const { return retry == 0; }
  // Bytes of the allocation (memory accounting): what Create allocated.
  size_t allocation_size() const {
    return AllocationSize(queue().size(), body_len_, delay_stored_);
  }
  static size_t AllocationSize(size_t queue_len, size_t body_len, bool delay_stored) {
    return sizeof(Job) + (queue_len >= kLongQueueName ? sizeof(uint32_t) : 0) + queue_len +
           body_len + (delay_stored ? sizeof(uint32_t) : 0);
  }

  // Allocates a job with a copy of `queue` and `body` and the given delay; every other
  // field is zero. The name and body are each under 4 GiB (the protocol caps a bulk
  // string at 512 MB).
  static Job* Create(JobArena& arena, std::string_view queue, std::string_view body,
                     uint32_t delay = 0);
  static void Destroy(JobArena& arena, Job* job);

 private:
  Job() = default;
  const char* Data() const { return reinterpret_cast<const char*>(this + 1); }
  char* Data() { return reinterpret_cast<char*>(this + 1); }
  static uint32_t LoadU32(const char* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  // Bytes of the data area before the body: the name, and its length when stored.
  size_t QueueBytes() const {
    return queue_len_ != kLongQueueName ? queue_len_ : sizeof(uint32_t) + LoadU32(Data());
  }

  bool delay_stored_;      // the delay (not 0) is the uint32 after the body
  uint16_t queue_len_;     // bytes of the queue name, or kLongQueueName (stored in front)
  uint32_t body_len_;      // bytes of the body
};

// 88 before issue 7's header work: queue_len was 32 bits and delay a field (see the
// layout comment above). A change here moves every job between arena classes.
static_assert(sizeof(Job) == 80,
              "the job header is part of the memory per job (docs/benchmarks.md)");

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
