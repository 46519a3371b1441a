#include "disque/engine/job_queue.h"

#include <algorithm>
#include <queue>

namespace disque::engine {

Job* JobQueue::top() const {
  if (run_.empty()) return heap_.top();
  Job* head = JobAt(run_.front());
  if (heap_.empty()) return head;
  return JobQueueOrder()(heap_.top(), head) ? heap_.top() : head;
}

void JobQueue::Push(Job* job) {
  if (run_.empty() || JobQueueOrder()(JobAt(run_.back()), job)) {
    if (run_.empty()) run_base_ = 0;
    job->queue_pos = RunPos(run_.size());
    run_.push_back(HandleOf(job));
  } else {
    heap_.Push(job);
  }
  ++size_;
}

Job* JobQueue::Pop() {
  Job* job = top();
  Erase(job);
  return job;
}

void JobQueue::Erase(Job* job) {
  --size_;
  if ((job->queue_pos & kRunBit) == 0) {
    heap_.Erase(job);
    return;
  }
  run_[RunIndex(job->queue_pos)] = JobArena::kNoHandle;
  job->queue_pos = kNotInHeap;
  TrimRun();
  const size_t run_live = size_ - heap_.size();
  if (run_.size() > 1024 && run_.size() > 2 * run_live) CompactRun();
}

void JobQueue::TrimRun() {
  while (!run_.empty() && run_.front() == JobArena::kNoHandle) {
    run_.pop_front();
    run_base_ = (run_base_ + 1) % kSeqModulus;
  }
  while (!run_.empty() && run_.back() == JobArena::kNoHandle) run_.pop_back();
  if (run_.empty()) run_.shrink_to_fit();  // a drained queue gives its blocks back
}

void JobQueue::CompactRun() {
  std::deque<JobHandle> live;
  for (JobHandle h : run_) {
    if (h != JobArena::kNoHandle) live.push_back(h);
  }
  run_.swap(live);
  run_base_ = 0;
  for (size_t i = 0; i < run_.size(); ++i) JobAt(run_[i])->queue_pos = RunPos(i);
}

void JobQueue::Clear() {
  for (JobHandle h : run_) {
    if (h != JobArena::kNoHandle) JobAt(h)->queue_pos = kNotInHeap;
  }
  run_.clear();
  run_.shrink_to_fit();
  run_base_ = 0;
  heap_.Clear();
  size_ = 0;
}

void JobQueue::Smallest(size_t k, std::vector<const Job*>& out) const {
  // Merge the run (in order) with the heap's k smallest, found in O(k log k) by
  // expanding a frontier of heap positions, smallest first.
  const auto& heap = heap_.items();
  auto greater = [&heap](uint32_t a, uint32_t b) { return JobQueueOrder()(heap[b], heap[a]); };
  std::priority_queue<uint32_t, std::vector<uint32_t>, decltype(greater)> frontier(greater);
  if (!heap.empty()) frontier.push(0);
  auto run = run_.begin();
  for (size_t taken = 0; taken < k; ++taken) {
    while (run != run_.end() && *run == JobArena::kNoHandle) ++run;
    const bool have_run = run != run_.end();
    if (!have_run && frontier.empty()) break;
    if (have_run && (frontier.empty() || JobQueueOrder()(JobAt(*run), heap[frontier.top()]))) {
      out.push_back(JobAt(*run++));
      continue;
    }
    const uint32_t i = frontier.top();
    frontier.pop();
    out.push_back(heap[i]);
    const uint64_t first = uint64_t{JobQueueHeap::kArity} * i + 1;
    for (uint64_t c = first; c < first + JobQueueHeap::kArity && c < heap.size(); ++c) {
      frontier.push(static_cast<uint32_t>(c));
    }
  }
}

void JobQueue::Largest(size_t k, std::vector<const Job*>& out) const {
  // The run's last k live jobs and every heap job (a min-heap has no tail at hand):
  // O(n log k) in the heap's size. QPEEK with a negative count is an inspection tool.
  std::vector<const Job*> candidates;
  for (auto it = run_.rbegin(); it != run_.rend() && candidates.size() < k; ++it) {
    if (*it != JobArena::kNoHandle) candidates.push_back(JobAt(*it));
  }
  candidates.insert(candidates.end(), heap_.items().begin(), heap_.items().end());
  const size_t n = std::min(k, candidates.size());
  auto newer = [](const Job* a, const Job* b) { return JobQueueOrder()(b, a); };
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n), candidates.end(), newer);
  out.insert(out.end(), candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace disque::engine
