#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "disque/engine/job.h"

namespace disque::engine {

// The jobs queued in one queue, smallest (ctime, ID) first (JobQueueOrder).
//
// Nearly every job arrives in queue order: ADDJOB's ctimes grow on each node. Those go to
// the run, a FIFO in order, so popping the head touches one job. The others (a NACKed or
// requeued job, a job replicated from a node whose clock is behind, a loaded file) go to
// a heap, whose pops compare jobs level by level: ten cache misses each at a million
// jobs, and the single largest cost of GETJOB before the run existed. The head of the
// queue is the smaller of the two heads.
//
// Positions (Job::queue_pos): a heap position (< 2^31), or kRunBit | the job's sequence
// number in the run, or kNotInHeap when the job is in neither. A job erased from the
// middle of the run leaves a null slot (kNoHandle); nulls at either end are dropped at once, and the
// run is compacted when nulls outnumber jobs (each job's sequence number is rewritten).
//
// Invariants: the run's live jobs are in strictly increasing queue order; run_.front()
// and run_.back() are live (or the run is empty); size_ = live run jobs + heap size.
class JobQueue {
 public:
  static constexpr uint32_t kRunBit = 0x8000'0000;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  static bool Contains(const Job* job) { return job->queue_pos != kNotInHeap; }

  // The smallest job. Requires !empty().
  Job* top() const;
  void Push(Job* job);
  Job* Pop();
  void Erase(Job* job);
  void Clear();

  // QPEEK: the `k` smallest jobs in order, or the `k` largest from the largest down.
  void Smallest(size_t k, std::vector<const Job*>& out) const;
  void Largest(size_t k, std::vector<const Job*>& out) const;

 private:
  // Sequence numbers wrap below 2^31 - 1, so that kRunBit | seq never equals kNotInHeap.
  static constexpr uint32_t kSeqModulus = 0x7FFF'FFFF;

  size_t RunIndex(uint32_t pos) const {
    const uint32_t seq = pos & ~kRunBit;
    return seq >= run_base_ ? seq - run_base_ : seq + kSeqModulus - run_base_;
  }
  uint32_t RunPos(size_t index) const {
    return kRunBit | static_cast<uint32_t>((run_base_ + index) % kSeqModulus);
  }
  void TrimRun();
  void CompactRun();

  // In queue order, as job handles (4 bytes a job, not 8: docs/benchmarks.md item 20);
  // kNoHandle = erased from the middle.
  std::deque<JobHandle> run_;
  uint32_t run_base_ = 0;  // sequence number of run_.front()
  JobQueueHeap heap_;      // jobs that came out of order
  size_t size_ = 0;
};

}  // namespace disque::engine
