#pragma once

#include <algorithm>
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
// 74 bytes plus name and body: a job with a 100-byte body and a 2-byte queue name takes
// 176 bytes, the arena's 176-byte class (docs/benchmarks.md). Nodes-confirmed, needed
// only while a job waits for replication or for its ACK to be collected, lives in the
// engine's side table. body_len_, delay_stored_ and queue_len_ describe the allocation
// and are written once, by Create; after the header come, in this order:
//
//   uint32   queue name length   only if queue_len_ == kLongQueueName (255 or more)
//   bytes    queue name          queue().size() bytes
//   uint32   body length         only if body_len_ == kLongBody (65,535 or more)
//   bytes    body                body().size() bytes
//   uint32   delay               only if delay_stored_ (a delay of 0 is not stored)
//
// So a name of up to 254 bytes and a body of up to 65,534 cost their bytes, longer ones
// 4 more each (Disque accepts any bulk string as a name or a body, up to 512 MB), and a
// delay 4 bytes only when it is not 0. The optional uint32s are unaligned: read and
// written with memcpy. The delay sits after the body because it is read only by SHOW,
// replication and requeue scheduling, while queue() and body() are on every delivery.
//
// The struct is packed to 2-byte alignment so that its size is 74, not 80 (the size of
// a struct with 8-byte members is a multiple of 8). Every field still sits at a multiple
// of its own size, and a job is always at an 8-byte aligned address (arena chunks,
// operator new), so no access is misaligned; the unit tests check the offsets.
#pragma pack(push, 2)
struct Job {
  // Layout, byte offsets: id 0, ctime 24, delivered 32, etime 40, retry 44,
  // queue_pos 48, timer_pos 52, qtime_lo_ 56, qtime_hi_ 60, repl 62, nacks 64,
  // additional_deliveries 66, body_len_ 68, state 70, flags 71, gc_retry and
  // delay_stored_ 72, queue_len_ 73. No padding.
  JobId id;                // binary ID (24 bytes)
  uint64_t ctime;          // creation: origin unix ms * 1e6 (+n within a ms); queue order
  // Nodes that may hold a copy (PROTOCOL.md II 6), node indexes (NodeRegistry). Empty
  // for a dummy ACK; this node is in it unless the job came by YOURJOBS or is held
  // for external replication.
  NodeSet delivered;
  uint32_t etime;          // expiry, unix seconds (32-bit: a huge TTL wraps, as in Disque)
  uint32_t retry;          // seconds; 0 = at most once
  uint32_t queue_pos = kNotInHeap;  // position in its queue's heap (queued only)
  uint32_t timer_pos = kNotInHeap;  // position in the schedule heap

  // Active or queued: next (re)queue attempt, unix ms; 0 = never again.
  // Acked: the next garbage-collection attempt.
  // Stored in 48 bits (qtime_lo_, qtime_hi_), signed: every time set is now plus at
  // most two uint32 numbers of seconds (delay and retry), under 2^44 ms; anything
  // beyond +-2^47 ms (4,400 years) is clamped.
  int64_t qtime_ms() const {
    const uint64_t raw = uint64_t{qtime_hi_} << 32 | qtime_lo_;
    return static_cast<int64_t>(raw << 16) >> 16;  // sign-extends bit 47
  }
  void set_qtime_ms(int64_t ms) {
    const auto raw = static_cast<uint64_t>(std::clamp(ms, kMinQtimeMs, kMaxQtimeMs));
    qtime_lo_ = static_cast<uint32_t>(raw);
    qtime_hi_ = static_cast<uint16_t>(raw >> 32);
  }
  static constexpr int64_t kMaxQtimeMs = (int64_t{1} << 47) - 1;
  static constexpr int64_t kMinQtimeMs = -(int64_t{1} << 47);

 private:
  uint32_t qtime_lo_;      // qtime_ms(), bits 0-31
  uint16_t qtime_hi_;      // qtime_ms(), bits 32-47

 public:
  uint16_t repl;           // requested replication factor
  uint16_t nacks;          // NACKs seen here (saturates)
  uint16_t additional_deliveries;  // re-queues here other than the first (saturates)

 private:
  uint16_t body_len_;      // bytes of the body, or kLongBody (stored in front of it)

 public:
  JobState state;
  uint8_t flags;           // JobFlag bits
  uint8_t gc_retry : 4;    // ACK garbage-collection attempts made (capped at 10 < 16)

  // queue_len_ value for a name of 255 bytes or more: its length is stored in front.
  static constexpr uint8_t kLongQueueName = UINT8_MAX;
  // body_len_ value for a body of 65,535 bytes or more: its length is stored in front.
  static constexpr uint16_t kLongBody = UINT16_MAX;

  std::string_view queue() const {
    if (queue_len_ != kLongQueueName) [[likely]] return {Data(), queue_len_};
    return {Data() + sizeof(uint32_t), LoadU32(Data())};
  }
  std::string_view body() const {
    const char* p = Data() + QueueBytes();
    if (body_len_ != kLongBody) [[likely]] return {p, body_len_};
    return {p + sizeof(uint32_t), LoadU32(p)};
  }
  // Seconds, as given to ADDJOB (or carried by the job's record); fixed at creation.
  uint32_t delay() const {
    if (!delay_stored_) return 0;
    const std::string_view b = body();
    return LoadU32(b.data() + b.size());
  }
  bool at_most_once() const { return retry == 0; }
  // Bytes of the allocation (memory accounting): what Create allocated.
  size_t allocation_size() const {
    return AllocationSize(queue().size(), body().size(), delay_stored_);
  }
  static size_t AllocationSize(size_t queue_len, size_t body_len, bool delay_stored) {
    return sizeof(Job) + (queue_len >= kLongQueueName ? sizeof(uint32_t) : 0) + queue_len +
           (body_len >= kLongBody ? sizeof(uint32_t) : 0) + body_len +
           (delay_stored ? sizeof(uint32_t) : 0);
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
  // Bytes of the data area before the body's: the name, and its length when stored.
  size_t QueueBytes() const {
    return queue_len_ != kLongQueueName ? queue_len_ : sizeof(uint32_t) + LoadU32(Data());
  }

  bool delay_stored_ : 1;  // the delay (not 0) is the uint32 after the body
  uint8_t queue_len_;      // bytes of the queue name, or kLongQueueName (stored in front)
};
#pragma pack(pop)

// 88 before issue 7's header work, 80 after item 17 (docs/benchmarks.md), 74 now: qtime
// in 48 bits, the name's length in 8 and the body's in 16 (long forms stored in front),
// gc_retry and delay_stored_ in one byte. A change here moves every job between arena
// classes.
static_assert(sizeof(Job) == 74,
              "the job header is part of the memory per job (docs/benchmarks.md)");

// Queue order: ctime, then the ID bytes.
struct JobQueueOrder {
  bool operator()(const Job* a, const Job* b) const {
    if (a->ctime != b->ctime) return a->ctime < b->ctime;
    return std::memcmp(a->id.bytes.data(), b->id.bytes.data(), a->id.bytes.size()) < 0;
  }
};

using JobQueueHeap = IndexedHeap<Job, &Job::queue_pos, ByElement<Job, JobQueueOrder>>;

inline Job* JobAt(JobHandle h) { return static_cast<Job*>(JobArena::At(h)); }
inline JobHandle HandleOf(const Job* job) { return JobArena::HandleOf(job); }

// The ID index's storage (PointerTable): a job's handle in a 6-byte slot.
struct JobHandleSlots {
  static constexpr int kRefBits = 32;
  static constexpr size_t kBytes = 6;
  static uint64_t Ref(const Job* job) { return HandleOf(job); }
  template <typename T>
  static T* Item(uint64_t ref) { return JobAt(static_cast<JobHandle>(ref)); }
};

// One shard's jobs by wake-up time (unix ms): when the scheduler must look at each next.
// Every job is in it (every job at least expires).
//
// A slot is 8 bytes, {key, job handle}: the key is the wake-up time in ms after base_ms_,
// clamped to [0, kMaxKey], so a heap of a million jobs takes 8 MB instead of 16 (two
// 8-byte words, docs/benchmarks.md item 20). What the clamp does:
// - a wake-up time before base_ms_ becomes base_ms_: it is due as soon as the clock
//   reaches base_ms_, and Rebase keeps base_ms_ at or before now;
// - one more than kMaxKey ms (49.7 days) after base_ms_ becomes that: the job is woken
//   early and the scheduler arms it again (ProcessTimers re-arms every job it looks at).
// Rebase(now) moves base_ms_ to now and shifts every key by the difference (saturating),
// a monotone map, so the heap order holds without a sift; ProcessTimers calls it when
// the clock is behind base_ms_ or more than kRebaseAfterMs ahead of it (once a day: an
// O(n) pass, a few ms at a million jobs). A rebase keeps each key's time, so a job
// clamped high is woken no sooner than kMaxKey - kRebaseAfterMs (48.7 days) after it was
// armed, and each such early wake-up costs one re-arm.
class JobSchedule {
 public:
  static constexpr int64_t kMaxKey = UINT32_MAX;
  static constexpr int64_t kRebaseAfterMs = int64_t{24} * 3600 * 1000;

  explicit JobSchedule(int64_t base_ms = 0) : base_ms_(base_ms) {}

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  static bool Contains(const Job* job) { return Heap::Contains(job); }
  // The job due first and its wake-up time. Require !empty().
  Job* top() const { return heap_.top(); }
  int64_t top_wake_ms() const { return Decode(heap_.top_slot().key); }
  // The wake-up time of a job in the schedule (after the clamp above).
  int64_t WakeOf(const Job* job) const { return Decode(heap_.SlotOf(job).key); }
  // Starts loading a scheduled job's slot (see Engine::Prefetch).
  void Prefetch(const Job* job) const { heap_.Prefetch(job); }

  // Schedules the job at `wake_ms` (it may already be in the schedule). Returns false
  // when nothing changed: its key was already that one.
  bool Set(Job& job, int64_t wake_ms) {
    const Slot slot{Encode(wake_ms), HandleOf(&job)};
    if (!Contains(&job)) {
      heap_.Push(slot);
    } else if (heap_.SlotOf(&job).key != slot.key) {
      heap_.Update(slot);
    } else {
      return false;
    }
    return true;
  }
  void Erase(Job* job) { heap_.Erase(job); }
  void Clear() { heap_.Clear(); }

  int64_t base_ms() const { return base_ms_; }
  bool NeedsRebase(int64_t now_ms) const { return now_ms < base_ms_ || now_ms - base_ms_ > kRebaseAfterMs; }
  void Rebase(int64_t now_ms) {
    const int64_t shift = now_ms - base_ms_;
    heap_.RemapMonotone([shift](Slot slot) {
      slot.key = static_cast<uint32_t>(std::clamp(int64_t{slot.key} - shift, int64_t{0}, kMaxKey));
      return slot;
    });
    base_ms_ = now_ms;
  }

 private:
  // The key lives in the array, so a sift touches the array and the moved jobs only:
  // with the key inside the job every level of a sift was a cache miss, and firing a
  // timer cost 65 times more at 1M jobs than at 1 (bench/micro/structures_bench.cpp).
  struct Order {
    struct Slot {
      uint32_t key;  // wake-up time - base_ms_, clamped
      JobHandle job;
    };
    static Job* Item(const Slot& slot) { return JobAt(slot.job); }
    static bool Before(const Slot& a, const Slot& b) { return a.key < b.key; }
  };
  using Heap = IndexedHeap<Job, &Job::timer_pos, Order>;
  using Slot = Order::Slot;
  static_assert(sizeof(Slot) == 8);

  uint32_t Encode(int64_t wake_ms) const {
    return static_cast<uint32_t>(std::clamp(wake_ms - base_ms_, int64_t{0}, kMaxKey));
  }
  int64_t Decode(uint32_t key) const { return base_ms_ + key; }

  Heap heap_;
  int64_t base_ms_;  // wake-up time of key 0
};

}  // namespace disque::engine
