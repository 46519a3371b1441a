#include "disque/engine/engine.h"
#include "disque/engine/job_codec.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <new>
#include <queue>

namespace disque::engine {
namespace {

constexpr uint16_t kCounterMax = UINT16_MAX;

void Saturating(uint16_t& counter) {
  if (counter < kCounterMax) ++counter;
}

}  // namespace

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kWaitRepl: return "wait-repl";
    case JobState::kActive: return "active";
    case JobState::kQueued: return "queued";
    case JobState::kAcked: return "acked";
  }
  return "unknown";
}

std::string_view PauseName(uint8_t flags) {
  switch (flags & kPauseAll) {
    case kPauseIn: return "in";
    case kPauseOut: return "out";
    case kPauseAll: return "all";
    default: return "none";
  }
}

size_t Queue::live_waiters() const {
  size_t n = 0;
  for (const auto& w : waiters) n += w->live();
  return n;
}

Job* Job::Create(JobArena& arena, std::string_view queue, std::string_view body, uint32_t delay) {
  assert(queue.size() <= UINT32_MAX && body.size() <= UINT32_MAX);
  const bool delay_stored = delay != 0;
  void* mem = arena.Allocate(AllocationSize(queue.size(), body.size(), delay_stored));
  Job* job = new (mem) Job();
  char* p = job->Data();
  // A length too long for its header field is stored in front of its bytes.
  const auto put_long_len = [&p](size_t len) {
    const auto len32 = static_cast<uint32_t>(len);
    std::memcpy(p, &len32, sizeof len32);
    p += sizeof len32;
  };
  if (queue.size() < kLongQueueName) {
    job->queue_len_ = static_cast<uint8_t>(queue.size());
  } else {
    job->queue_len_ = kLongQueueName;
    put_long_len(queue.size());
  }
  if (!queue.empty()) std::memcpy(p, queue.data(), queue.size());
  p += queue.size();
  if (body.size() < kLongBody) {
    job->body_len_ = static_cast<uint16_t>(body.size());
  } else {
    job->body_len_ = kLongBody;
    put_long_len(body.size());
  }
  job->delay_stored_ = delay_stored;
  if (!body.empty()) std::memcpy(p, body.data(), body.size());
  p += body.size();
  if (delay_stored) std::memcpy(p, &delay, sizeof delay);
  return job;
}

void Job::Destroy(JobArena& arena, Job* job) {
  const size_t size = job->allocation_size();
  job->~Job();
  arena.Free(job, size);
}

int MemoryWarningLevel(uint64_t used, uint64_t maxmemory) {
  // Integer thresholds as Disque computes them: maxmemory/100*75 and maxmemory/100*95.
  if (used > maxmemory / 100 * 95) return 2;
  if (used > maxmemory / 100 * 75) return 1;
  return 0;
}

uint64_t CtimeSource::Next(int64_t now_ms) {
  const uint64_t candidate = static_cast<uint64_t>(now_ms) * 1000000;
  uint64_t last = last_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    next = std::max(candidate, last + 1);
  } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

Engine::Engine(const Clock& clock, std::string_view node_id, SipKey key, uint64_t seed, CtimeSource* ctimes,
               NodeRegistry* nodes)
    : clock_(clock),
      node_id_(node_id),
      key_(key),
      ids_(node_id, key),
      rng_(seed),
      ctimes_(ctimes != nullptr ? *ctimes : own_ctimes_),
      own_nodes_(nodes != nullptr ? nullptr : std::make_unique<NodeRegistry>()),
      nodes_(nodes != nullptr ? nodes : own_nodes_.get()) {
  cluster_.self = nodes_->Intern(node_id_);
  cluster_.members = {cluster_.self};
  schedule_.Rebase(NowMs());
}

void Engine::SetNodeId(std::string_view node_id) {
  node_id_ = node_id;
  ids_ = JobIdGenerator(node_id, key_);
  ClusterState alone;
  alone.self = nodes_->Intern(node_id_);
  alone.members = {alone.self};
  SetCluster(std::move(alone));
}

// Blocked clients are not woken: the engine goes away with its shard.
Engine::~Engine() { Clear(false); }

// ---------------------------------------------------------------------------- jobs

Result<const Job*> Engine::AddJob(const AddJobArgs& args, std::shared_ptr<ReplWaiter> waiter, JobId* id) {
  if (Queue* q = FindQueue(args.queue)) {
    if (args.maxlen > 0 && static_cast<int64_t>(q->length()) >= args.maxlen) {
      return Status(Code::kMaxLen, "Queue is already longer than the specified MAXLEN count");
    }
    if (q->pause & kPauseIn) return Status(Code::kPaused, "Queue paused in input, try later");
  }
  const int64_t now = NowMs();
  // The ID first: its index slot is a cache miss with many jobs resident (about a tenth
  // of ADDJOB's CPU time at pipeline 32), so it is fetched while the job is allocated and
  // filled. A generated ID that is already taken (never seen; 144 random bits) is drawn
  // again.
  const uint16_t slot = QueueSlot(args.queue);
  JobId new_id = ids_.Next(slot, args.ttl, args.retry > 0);
  jobs_.PrefetchHome(new_id.hash());
  Job* job = Job::Create(arena_, args.queue, args.body, args.delay);
  job->ctime = ctimes_.Next(now);
  // 32-bit unix seconds: a huge TTL wraps, as in Disque (unsigned arithmetic: no overflow).
  job->etime = static_cast<uint32_t>(static_cast<uint64_t>(now / 1000) + static_cast<uint64_t>(args.ttl));
  job->retry = args.retry;
  job->repl = args.repl;
  job->state = JobState::kActive;
  job->set_qtime_ms(now + static_cast<int64_t>(args.delay > 0 ? args.delay : args.retry) * 1000);
  while (Find(new_id) != nullptr) new_id = ids_.Next(slot, args.ttl, args.retry > 0);
  job->id = new_id;
  jobs_.Insert(job);
  job_bytes_ += job->allocation_size();
  if (id != nullptr) *id = job->id;
  if (!args.external) job->delivered.Insert(cluster_.self);
  // PROTOCOL.md II 6: copies on other nodes are needed for REPLICATE > 1, and for every
  // copy when this node keeps none (external replication).
  const int needed = args.external ? args.repl : args.repl - 1;
  if (needed > 0 && !args.async && waiter != nullptr) {
    job->state = JobState::kWaitRepl;
    replicating_.insert(job);
    JobExtra& extra = Extra(*job);
    if (!args.external) extra.confirmed.Insert(cluster_.self);
    extra.waiter = std::move(waiter);
    // Past about 100 years a timeout is as good as none (and the sum would overflow).
    constexpr int64_t kForeverMs = int64_t{100} * 365 * 86400 * 1000;
    extra.deadline_ms = args.timeout_ms > 0 && args.timeout_ms < kForeverMs ? now + args.timeout_ms : 0;
    extra.added_node_ms = now;
    Reschedule(*job);
    ReplicateJob(*job, needed, false);
    return static_cast<const Job*>(job);
  }
  if (needed > 0) ReplicateJob(*job, needed, true);  // ASYNC: one NOREPLY REPLJOB each
  if (args.external) {
    // Nothing is kept here: one of the copies is told to queue the job.
    std::vector<uint32_t> holders = Others(job->delivered);
    if (!holders.empty()) Send(JobMsg::kEnqueue, *job, job->delay(), {holders[rng_() % holders.size()]});
    UnlinkJob(job);  // never journaled: the copies are elsewhere
    return static_cast<const Job*>(nullptr);
  }
  if (args.delay == 0) {
    Enqueue(*job, false, now);  // schedules it too
  } else {
    Reschedule(*job);
  }
  JournalLoad(*job);
  return static_cast<const Job*>(job);
}

Job* Engine::Find(const JobId& id) const {
  return jobs_.Find(id.hash(), [&id](const Job& j) { return j.id == id; });
}

void Engine::Prefetch(std::span<const std::string_view> id_texts) const {
  constexpr size_t kBatch = 64;
  uint64_t hashes[kBatch];
  const Job* jobs[kBatch];
  for (size_t start = 0; start < id_texts.size(); start += kBatch) {
    const size_t end = std::min(id_texts.size(), start + kBatch);
    size_t n = 0;
    for (size_t i = start; i < end; ++i) {
      const std::optional<uint64_t> hash = JobIdHashOfText(id_texts[i]);  // Find parses it whole
      if (!hash) continue;
      hashes[n++] = *hash;
      jobs_.PrefetchHome(hashes[n - 1]);
    }
    size_t found = 0;
    for (size_t i = 0; i < n; ++i) {
      if (const Job* job = jobs_.Candidate(hashes[i])) {
        __builtin_prefetch(job);
        jobs[found++] = job;
      }
    }
    for (size_t i = 0; i < found; ++i) {
      if (JobSchedule::Contains(jobs[i])) schedule_.Prefetch(jobs[i]);
    }
  }
}

Job* Engine::Find(std::string_view id_text) const {
  const std::optional<JobId> id = JobId::Parse(id_text);
  return id ? Find(*id) : nullptr;
}

bool Engine::Delete(std::string_view id_text) {
  Job* job = Find(id_text);
  if (job == nullptr) return false;
  if (job->state == JobState::kWaitRepl) {
    DeleteEverywhere(job, Status(Code::kNoRepl, "job removed (expired?) before the requested replication level was achieved"));
  } else {
    DeleteJob(job);
  }
  return true;
}

bool Engine::Requeue(std::string_view id_text, bool nack) {
  Job* job = Find(id_text);
  if (job == nullptr || job->state != JobState::kActive) return false;
  return Enqueue(*job, nack);
}

bool Engine::Dequeue(std::string_view id_text) {
  Job* job = Find(id_text);
  if (job == nullptr || job->state != JobState::kQueued) return false;
  RemoveFromQueue(*job);  // qtime is kept: requeued later unless acked
  return true;
}

Result<int64_t> Engine::Working(std::string_view id_text) {
  Job* job = Find(id_text);
  if (job == nullptr) return Status(Code::kNoJob, "Job not known in the context of this node.");
  const int64_t now = NowMs();
  const auto ctime_ms = static_cast<int64_t>(job->ctime / 1000000);
  const int64_t total = static_cast<int64_t>(job->etime) * 1000 - ctime_ms;
  const int64_t elapsed = now - ctime_ms;
  if (total > 0 && elapsed > total / 2) {
    return Status(Code::kTooLate,
                  "Half of job TTL already elapsed, you are no longer allowed to postpone the next delivery.");
  }
  if (job->state == JobState::kQueued) RemoveFromQueue(*job);
  if (job->retry != 0 && job->qtime_ms() != 0 && job->state != JobState::kAcked) SetRequeueTime(*job, now);
  // The other copies leave their queues too and postpone their requeue.
  if (job->state != JobState::kAcked) SendToDelivered(JobMsg::kWorking, *job);
  return static_cast<int64_t>(job->retry);
}

void Engine::DeleteJob(Job* job) {
  if (job->state == JobState::kActive || job->state == JobState::kQueued) JournalDel(*job);
  UnlinkJob(job);
}

void Engine::UnlinkJob(Job* job) {
  if (job->state == JobState::kWaitRepl) replicating_.erase(job);
  if (job->flags & kJobHasExtra) DropExtra(*job);
  if (job->state == JobState::kQueued) DetachFromQueue(*job);  // not rescheduled: erased next
  if (JobSchedule::Contains(job)) schedule_.Erase(job);
  jobs_.Erase(job);
  job_bytes_ -= job->allocation_size();
  Job::Destroy(arena_, job);
}

bool Engine::Enqueue(Job& job, bool nack, int64_t now) {
  if (job.state != JobState::kActive || job.qtime_ms() == 0) return false;
  if (job.retry == 0 && (job.flags & kJobDelivered)) return false;
  Queue& q = GetOrCreateQueue(job.queue());
  job.state = JobState::kQueued;
  if (job.retry > 0) {
    job.flags |= kJobWillQueue;
    job.set_qtime_ms(now + static_cast<int64_t>(job.retry) * 1000 + Jitter());
  } else {
    job.set_qtime_ms(0);
  }
  // The first queueing here is free; every later one counts and is announced with
  // QUEUED, which also makes the other copies postpone their own requeue.
  if ((job.flags & kJobBcastQueued) || nack) {
    Saturating(nack ? job.nacks : job.additional_deliveries);
    SendToDelivered(JobMsg::kQueued, job, 0, nack ? kJobMsgIncrNacks : kJobMsgIncrDeliv);
  } else {
    job.flags |= kJobBcastQueued;
  }
  q.jobs.Push(&job);
  ++q.jobs_in;
  q.atime_ms = now;
  Reschedule(job);
  ServeWaiters(q);
  return true;
}

void Engine::RemoveFromQueue(Job& job) {
  DetachFromQueue(job);
  job.state = JobState::kActive;
  Reschedule(job);
}

void Engine::DetachFromQueue(Job& job) {
  if (Queue* q = FindQueue(job.queue())) {
    if (JobQueue::Contains(&job)) q->jobs.Erase(&job);
  }
}

Job* Engine::PopForDelivery(Queue& q) {
  Job* job = q.jobs.Pop();
  job->state = JobState::kActive;
  job->flags |= kJobDelivered;
  ++q.jobs_out;
  q.atime_ms = NowMs();
  Reschedule(*job);
  return job;
}

void Engine::ServeWaiters(Queue& q) {
  bool served = false;
  while (!q.jobs.empty() && !(q.pause & kPauseOut) && !q.waiters.empty()) {
    std::shared_ptr<Waiter> waiter = std::move(q.waiters.front());
    q.waiters.pop_front();
    if (!waiter->Claim()) continue;  // served elsewhere, timed out or gone
    waiter->Deliver(PopForDelivery(q));
    served = true;
  }
  if (served && q.jobs.empty()) NeedJobs(q, true);
}

void Engine::SetRequeueTime(Job& job, int64_t now_ms) {
  job.set_qtime_ms(now_ms + static_cast<int64_t>(job.retry) * 1000 + Jitter());
  job.flags |= kJobWillQueue;
  Reschedule(job);
}

void Engine::Reschedule(Job& job) {
  int64_t wake = static_cast<int64_t>(job.etime) * 1000 + 1000;  // expiry check
  const bool live = job.state == JobState::kActive || job.state == JobState::kQueued;
  if (live && job.qtime_ms() != 0) {
    const int64_t t = (job.flags & kJobWillQueue) ? job.qtime_ms() - kWillQueueAdvanceMs : job.qtime_ms();
    wake = std::min(wake, t);
  }
  if (job.state == JobState::kAcked && job.qtime_ms() != 0) wake = std::min(wake, job.qtime_ms());  // next GC
  SetWake(job, wake);
}

void Engine::SetWake(Job& job, int64_t wake_ms) {
  // Set leaves the heap alone when the key is unchanged: delivering a queued job keeps
  // its wake-up (both wait for the same requeue time), and an update would still read
  // the parent's and the children's slots, cache misses at a million jobs.
  schedule_.Set(job, wake_ms);
}

int64_t Engine::Jitter() {
  // rand() % 500 - 250 in Disque: uniform in [-250, +249] ms.
  return static_cast<int64_t>(rng_() % kRequeueJitterMs) - kRequeueJitterMs / 2;
}

// ---------------------------------------------------------------------------- queues

uint64_t Engine::QueueHash(std::string_view name) const { return SipHash24(key_, name); }

Queue* Engine::FindQueue(std::string_view name) const {
  if (last_queue_ != nullptr && last_queue_->name == name) return last_queue_;
  Queue* q = queues_.Find(QueueHash(name), [name](const Queue& q2) { return q2.name == name; });
  if (q != nullptr) last_queue_ = q;
  return q;
}

Queue& Engine::GetOrCreateQueue(std::string_view name) {
  if (Queue* q = FindQueue(name)) return *q;
  auto* q = new Queue();
  q->name.assign(name);
  q->hash = QueueHash(name);
  q->ctime_ms = q->atime_ms = NowMs();
  queues_.Insert(q);
  last_queue_ = q;
  return *q;
}

void Engine::DestroyQueue(Queue* q) {
  if (last_queue_ == q) last_queue_ = nullptr;
  if (q->waited) std::erase(waited_, q);
  queues_.Erase(q);
  delete q;
}

void Engine::Fetch(std::string_view name, size_t max, std::vector<const Job*>& out) {
  Queue& q = GetOrCreateQueue(name);
  if (q.pause & kPauseOut) return;
  const size_t before = out.size();
  for (size_t i = 0; i < max && !q.jobs.empty(); ++i) out.push_back(PopForDelivery(q));
  if (out.size() > before && q.jobs.empty()) NeedJobs(q, true);
}

size_t Engine::Fetchable(std::string_view name) {
  Queue& q = GetOrCreateQueue(name);
  return (q.pause & kPauseOut) ? 0 : q.length();
}

bool Engine::CanFetch(std::string_view name) const {
  const Queue* q = FindQueue(name);
  return q != nullptr && !(q->pause & kPauseOut) && !q->jobs.empty();
}

void Engine::Peek(std::string_view name, int64_t count, std::vector<const Job*>& out) const {
  const Queue* q = FindQueue(name);
  if (q == nullptr || count == 0 || q->jobs.empty()) return;
  if (count > 0) {
    q->jobs.Smallest(static_cast<size_t>(count), out);
  } else {
    q->jobs.Largest(static_cast<size_t>(-(count + 1)) + 1, out);  // newest first
  }
}

uint8_t Engine::Pause(std::string_view name, std::optional<uint8_t> flags, bool bcast) {
  Queue* q = FindQueue(name);
  uint8_t result = q ? q->pause : 0;
  if (flags) {
    if (q == nullptr && *flags != 0) q = &GetOrCreateQueue(name);
    if (q != nullptr) {
      q->pause = *flags;
      ServeWaiters(*q);  // clearing an output pause serves the waiting clients
      result = q->pause;
    }
  }
  if (bcast && cluster_.size > 1) {
    // The resulting state, not the delta; receivers adopt it and do not forward it.
    JobMessage m;
    m.type = JobMsg::kPause;
    m.aux = result;
    m.queue.assign(name);
    m.to_all = true;
    outbox_.push_back(std::move(m));
  }
  return result;
}

// ---------------------------------------------------------------------------- blocking

void Engine::Block(std::string_view name, std::shared_ptr<Waiter> waiter) {
  Queue& q = GetOrCreateQueue(name);
  q.waiters.push_back(std::move(waiter));
  if (!q.waited) {
    q.waited = true;
    waited_.push_back(&q);
  }
  ServeWaiters(q);
}

void Engine::Unblock(std::string_view name, const Waiter* waiter) {
  Queue* q = FindQueue(name);
  if (q == nullptr) return;
  std::erase_if(q->waiters, [waiter](const std::shared_ptr<Waiter>& w) { return w.get() == waiter; });
  // A queue whose last blocked client leaves is checked at once against the normal rule.
  if (q->waiters.empty() && QueueEvictable(*q, NowMs(), kQueueMaxIdleMs)) DestroyQueue(q);
}

// ---------------------------------------------------------------------------- time

void Engine::ProcessTimers() {
  const int64_t now = NowMs();
  const int64_t now_s = now / 1000;
  if (schedule_.NeedsRebase(now)) schedule_.Rebase(now);
  for (size_t n = 0; n < kMaxJobsPerTimerRun && !schedule_.empty(); ++n) {
    if (schedule_.top_wake_ms() > now) break;
    Job* job = schedule_.top();
    if (static_cast<int64_t>(job->etime) <= now_s) {
      // Expired: every node expires its own copy, so nothing is sent, except for a job
      // still waiting for replication (its client is told, the copies deleted).
      if (job->state == JobState::kWaitRepl) {
        DeleteEverywhere(job, Status(Code::kNoRepl, "job removed (expired?) before the requested replication level was achieved"));
      } else {
        DeleteJob(job);
      }
      continue;
    }
    if (job->state == JobState::kAcked) {
      if (job->qtime_ms() != 0 && job->qtime_ms() <= now) {
        if (TryGc(*job)) continue;  // collected
        ScheduleGc(*job, now);
      }
      continue;
    }
    const bool live = job->state == JobState::kActive || job->state == JobState::kQueued;
    if (live && (job->flags & kJobWillQueue) && job->qtime_ms() - kWillQueueAdvanceMs <= now) {
      // Warn the other copies 500 ms ahead, so that one holding it queued answers with
      // QUEUED and nobody queues it twice (PROTOCOL.md II 7).
      if (job->state == JobState::kActive) SendToDelivered(JobMsg::kWillQueue, *job);
      job->flags &= static_cast<uint8_t>(~kJobWillQueue);
    }
    if (job->state == JobState::kActive && job->qtime_ms() != 0 && job->qtime_ms() <= now) {
      const Queue* q = FindQueue(job->queue());
      if (q != nullptr && (q->pause & kPauseIn) && job->retry != 0) {
        SetRequeueTime(*job, now);  // postponed while the queue is paused in input
      } else if (!Enqueue(*job, false)) {
        job->set_qtime_ms(0);  // a delivered at-most-once job: never queued again
      }
    } else if (job->state == JobState::kQueued && job->qtime_ms() != 0 && job->qtime_ms() <= now &&
               job->retry > 0) {
      SetRequeueTime(*job, now);  // still unconsumed here: nothing to requeue yet
    }
    // Whatever happened, the job must leave the due part of the schedule.
    if (Find(job->id) == job) {
      Reschedule(*job);
      if (schedule_.WakeOf(job) <= now) SetWake(*job, now + 1);
    }
  }
}

int64_t Engine::NextWakeMs() const { return schedule_.empty() ? INT64_MAX : schedule_.top_wake_ms(); }

bool Engine::QueueEvictable(const Queue& q, int64_t now_ms, int64_t max_idle_ms) const {
  return q.jobs.empty() && q.waiters.empty() && q.pause == 0 && now_ms - q.atime_ms >= max_idle_ms;
}

void Engine::EvictIdleQueues(int memory_level) {
  const int64_t max_idle = memory_level >= 2 ? 2000 : memory_level == 1 ? kQueueMaxIdleMs / 30 : kQueueMaxIdleMs;
  const int64_t now = NowMs();
  // A slice of the table per call, resuming where the last call stopped: a sixteenth of
  // the buckets, so called every 100 ms a sweep takes 1.6 s whatever the queue count.
  std::vector<Queue*> victims;
  const size_t slice = std::max<size_t>(64, queues_.capacity() / 16);
  for (size_t steps = 0; steps < slice; ++steps) {
    evict_cursor_ = queues_.ScanBucket(evict_cursor_, [&](Queue* q) {
      // Stale waiters (claimed elsewhere) do not keep a queue alive.
      std::erase_if(q->waiters, [](const std::shared_ptr<Waiter>& w) { return !w->live(); });
      if (QueueEvictable(*q, now, max_idle)) victims.push_back(q);
    });
    if (evict_cursor_ == kScanEnd) {
      evict_cursor_ = 0;
      break;
    }
  }
  for (Queue* q : victims) DestroyQueue(q);
}

size_t Engine::EvictForMemory(size_t bytes) {
  const auto start = std::chrono::steady_clock::now();
  size_t freed = 0;
  int fruitless = 0;
  while (freed < bytes && jobs_.size() > 0) {
    Job* job = jobs_.Random(rng_());
    const bool evictable = job->state == JobState::kAcked ||
                           (job->retry == 0 && (job->flags & kJobDelivered) && job->state != JobState::kQueued);
    if (evictable) {
      freed += job->allocation_size();
      DeleteJob(job);
      fruitless = 0;
    } else if (++fruitless > 10) {
      break;
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(1)) break;
  }
  if (jobs_.size() == 0 && freed < bytes) {
    Queue* victim = nullptr;
    const int64_t now = NowMs();
    queues_.ForEach([&](Queue* q) {
      if (victim == nullptr && QueueEvictable(*q, now, 0)) victim = q;
    });
    if (victim != nullptr) {
      freed += sizeof(Queue) + victim->name.size();
      DestroyQueue(victim);
    }
  }
  return freed;
}

void Engine::Flush() { Clear(true); }

// ---------------------------------------------------------------------------- AOF load

bool Engine::LoadJob(const JobRecord& r, bool enqueue) {
  const int64_t now = NowMs();
  if (static_cast<int64_t>(r.etime) <= now / 1000) return false;  // expired meanwhile
  // Acked jobs are garbage (their DELJOB may have been lost with the tail); a job in
  // wait-repl was never confirmed to its client.
  if (r.state != JobState::kActive && r.state != JobState::kQueued) return false;
  if (Find(r.id) != nullptr) return false;  // a duplicate LOADJOB
  Job* job = Register(r, r.etime, kJobSerializedFlags);
  if (job == nullptr) return false;
  if (r.state == JobState::kQueued && enqueue) {
    // The controlled restart (aof-enqueue-jobs-once): back in the queue as it was,
    // counters unchanged and nothing announced. Disque counts this queueing as a new
    // delivery and cannot queue an at-most-once job here (its queue time is 0 after
    // loading): we restore the queue exactly, at-most-once jobs included.
    const auto counted = static_cast<uint8_t>(job->flags & kJobBcastQueued);
    job->flags &= static_cast<uint8_t>(~kJobBcastQueued);
    job->set_qtime_ms(now);
    const bool queued = Enqueue(*job, false);
    job->flags = static_cast<uint8_t>((job->flags & ~kJobBcastQueued) | counted);
    if (queued) return true;
  }
  // Active: an unacknowledged at-least-once job comes back about RETRY seconds after
  // the restart (after its DELAY too, which may not have passed).
  ScheduleHeldRequeue(*job, now);
  return true;
}

void Engine::UnloadJob(std::string_view id_text) {
  if (Job* job = Find(id_text)) UnlinkJob(job);
}

void Engine::Clear(bool wake_waiters) {
  // Clients waiting for replication: their jobs are going (FLUSHALL, CLUSTER RESET).
  const std::vector<Job*> waiting(replicating_.begin(), replicating_.end());
  if (wake_waiters) {
    for (Job* job : waiting) {
      DeleteEverywhere(job, Status(Code::kNoRepl, "job removed (expired?) before the requested replication level was achieved"));
    }
  }
  extras_.clear();
  replicating_.clear();
  waited_.clear();
  std::vector<Queue*> queues;
  queues_.ForEach([&queues](Queue* q) { queues.push_back(q); });
  queues_.Clear();
  last_queue_ = nullptr;
  for (Queue* q : queues) q->jobs.Clear();  // before the jobs are freed
  std::vector<Job*> jobs;
  jobs.reserve(jobs_.size());
  jobs_.ForEach([&jobs](Job* j) { jobs.push_back(j); });
  // FLUSHALL removes live jobs like any other deletion (PROTOCOL.md 8.1); the
  // destructor (no waking) must not touch a journal that may be gone.
  if (wake_waiters) {
    for (Job* job : jobs) {
      if (job->state == JobState::kActive || job->state == JobState::kQueued) JournalDel(*job);
    }
  }
  schedule_.Clear();
  jobs_.Clear();
  for (Job* job : jobs) Job::Destroy(arena_, job);
  job_bytes_ = 0;
  for (Queue* q : queues) {
    if (wake_waiters) {
      for (auto& waiter : q->waiters) {
        if (waiter->Claim()) waiter->Deliver(nullptr);
      }
    }
    delete q;
  }
  evict_cursor_ = 0;
}

std::optional<int64_t> Engine::NextRequeueWithin(const Job& job) const {
  if (job.qtime_ms() == 0) return std::nullopt;
  return std::max<int64_t>(0, job.qtime_ms() - NowMs());
}

std::optional<int64_t> Engine::NextAwakeWithin(const Job& job) const {
  if (!JobSchedule::Contains(&job)) return std::nullopt;
  return std::max<int64_t>(0, schedule_.WakeOf(&job) - NowMs());
}

int64_t Engine::TtlLeft(const Job& job) const {
  return std::max<int64_t>(0, static_cast<int64_t>(job.etime) - NowMs() / 1000);
}

}  // namespace disque::engine

static_assert(disque::engine::Engine::kScanEnd == disque::engine::PointerTable<disque::engine::Job, int>::kScanEnd);
