#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "disque/common/status.h"
#include "disque/engine/job.h"
#include "disque/engine/job_queue.h"

namespace disque::engine {

// PAUSE flags of a queue (PROTOCOL.md 4.6).
enum PauseFlag : uint8_t {
  kPauseIn = 1 << 0,
  kPauseOut = 1 << 1,
  kPauseAll = kPauseIn | kPauseOut,
};

// "none", "in", "out" or "all".
std::string_view PauseName(uint8_t flags);

// A client blocked in GETJOB, as the engine sees it. The same waiter may be registered
// on queues of several shards at once (GETJOB FROM q1 q2): whichever shard has a job
// first must win it, so delivery is a two-step protocol:
//   Claim()   atomically takes the waiter (false when another shard, the timeout or a
//             disconnect got it first; the stale registration is then dropped);
//   Deliver() called once after a successful Claim, with the job just fetched for it,
//             or nullptr when the waiter is released without a job (DEBUG FLUSHALL);
//   Fail()    instead of Deliver: the client gets an error (-LEAVING).
// Implementations live in the server layer (they post the reply to the client's shard).
class Waiter {
 public:
  virtual ~Waiter() = default;
  virtual bool Claim() = 0;
  virtual void Deliver(const Job* job) = 0;
  virtual void Fail(const Status& status) = 0;
  // False once the waiter was claimed or abandoned (QSTAT counts only live waiters).
  virtual bool live() const = 0;
};

// A queue (PROTOCOL.md 2.5). Created implicitly, destroyed by idle eviction or FLUSHALL.
struct Queue {
  std::string name;
  uint64_t hash = 0;            // keyed hash of the name (queue table and QSCAN order)
  JobQueue jobs;                // queued jobs, smallest (ctime, ID) on top
  int64_t ctime_ms = 0;         // creation (QSTAT age)
  int64_t atime_ms = 0;         // last enqueue or fetch, or creation (QSTAT idle, eviction)
  uint64_t jobs_in = 0;         // jobs enqueued
  uint64_t jobs_out = 0;        // jobs fetched
  uint8_t pause = 0;            // PauseFlag bits
  // Blocked GETJOB clients, earliest first. May hold waiters already claimed elsewhere;
  // those are dropped when met.
  std::deque<std::shared_ptr<Waiter>> waiters;
  bool waited = false;          // listed in the engine's queues-with-waiters

  // Federation (PROTOCOL.md II 9): NEEDJOBS pacing, who sent us jobs, the import rate.
  int64_t needjobs_bcast_ms = 0;
  int64_t needjobs_adhoc_ms = 0;
  uint8_t needjobs_bcast_attempt = 0;
  uint8_t needjobs_adhoc_attempt = 0;
  std::vector<std::pair<uint32_t, int64_t>> responders;  // node index, last delivery (ms)
  int64_t import_prev_ms = 0;     // start of the previous 1 s import bucket
  int64_t import_current_ms = 0;  // start of the current one
  uint32_t import_prev_count = 0;
  uint32_t import_current_count = 0;

  size_t length() const { return jobs.size(); }
  size_t live_waiters() const;
};

}  // namespace disque::engine
