// The engine's part of the cluster (PROTOCOL.md part II 5 to 10): synchronous
// replication, requeue de-duplication, ACK garbage collection, federation and the job
// messages that carry them. Like the rest of the engine this is a state machine: what
// it wants sent goes to the outbox, in node indexes, and the shard hands it to the bus.

#include <algorithm>
#include <cmath>

#include "disque/engine/engine.h"
#include "disque/engine/job_codec.h"

namespace disque::engine {
namespace {

constexpr uint16_t kCounterMax = UINT16_MAX;

void Saturating(uint16_t& counter) {
  if (counter < kCounterMax) ++counter;
}

// min(base * 2^attempt, cap), without overflowing the shift.
int64_t Backoff(int64_t base, int attempt, int64_t cap) {
  if (attempt >= 30) return cap;
  return std::min(cap, base << attempt);
}

// Every node of `delivered` is in `confirmed`.
bool AllConfirmed(const NodeSet& delivered, const NodeSet& confirmed) {
  return std::all_of(delivered.begin(), delivered.end(), [&confirmed](uint32_t n) { return confirmed.Contains(n); });
}

const char* const kJobRemoved = "job removed (expired?) before the requested replication level was achieved";

}  // namespace

bool ClusterState::Member(uint32_t node) const {
  return std::find(members.begin(), members.end(), node) != members.end();
}

void Engine::SetCluster(ClusterState state) { cluster_ = std::move(state); }

// ---------------------------------------------------------------------------- helpers

Engine::JobExtra& Engine::Extra(Job& job) {
  job.flags |= kJobHasExtra;
  return extras_[&job];
}

Engine::JobExtra* Engine::FindExtra(const Job& job) {
  if (!(job.flags & kJobHasExtra)) return nullptr;
  auto it = extras_.find(&job);
  return it == extras_.end() ? nullptr : &it->second;
}

const NodeSet* Engine::Confirmed(const Job& job) const {
  if (!(job.flags & kJobHasExtra)) return nullptr;
  auto it = extras_.find(&job);
  return it == extras_.end() ? nullptr : &it->second.confirmed;
}

void Engine::LeaveWaitRepl(Job& job) {
  replicating_.erase(&job);
  job.state = JobState::kActive;
}

void Engine::DropExtra(Job& job) {
  extras_.erase(&job);
  job.flags &= static_cast<uint8_t>(~kJobHasExtra);
}

std::vector<uint32_t> Engine::Others(const NodeSet& set) const {
  std::vector<uint32_t> out;
  out.reserve(set.size());
  for (uint32_t n : set) {
    if (n != cluster_.self) out.push_back(n);
  }
  return out;
}

void Engine::Send(JobMsg type, const Job& job, uint32_t aux, std::vector<uint32_t> to, uint8_t flags) {
  if (to.empty()) return;
  JobMessage m;
  m.type = type;
  m.flags = flags;
  m.job_id = job.id.ToString();
  m.aux = aux;
  m.to = std::move(to);
  outbox_.push_back(std::move(m));
}

void Engine::SendToDelivered(JobMsg type, const Job& job, uint32_t aux, uint8_t flags) {
  Send(type, job, aux, Others(job.delivered), flags);
}

namespace {

// Every field of a job as the serialization carries it; etime and flags are the
// caller's (they differ between the bus and the AOF).
JobRecord ToRecord(const Job& job, const NodeRegistry& nodes, uint32_t etime, uint8_t flags) {
  JobRecord r;
  r.id = job.id.ToString();
  r.state = job.state;
  r.flags = flags;
  r.repl = job.repl;
  r.etime = etime;
  r.ctime = job.ctime;
  r.delay = job.delay();
  r.retry = job.retry;
  r.nacks = job.nacks;
  r.additional_deliveries = job.additional_deliveries;
  r.queue.assign(job.queue());
  r.body.assign(job.body());
  for (uint32_t n : job.delivered) r.nodes.emplace_back(nodes.Id(n));
  return r;
}

// The flags a job keeps when it arrives by the bus: "delivered by this node" was the
// sender's.
constexpr auto kBusFlags = static_cast<uint8_t>(kJobSerializedFlags & ~kJobDelivered);

// A bus etime (remaining seconds + 1) as an absolute expiry here.
uint32_t EtimeFromBus(uint32_t etime, int64_t now_ms) {
  return static_cast<uint32_t>(now_ms / 1000 + static_cast<int64_t>(etime) - 1);
}

}  // namespace

std::string Engine::Serialize(const Job& job) const {
  // On the bus the expiry travels as the remaining seconds + 1 (PROTOCOL.md II 5), so
  // that nodes with different clocks agree on the TTL left; "delivered by this node"
  // means nothing elsewhere.
  const int64_t left = static_cast<int64_t>(job.etime) - NowMs() / 1000;
  const auto etime = static_cast<uint32_t>(std::max<int64_t>(0, left) + 1);
  const auto flags = static_cast<uint8_t>(job.flags & kBusFlags);
  std::string out;
  AppendJobRecord(ToRecord(job, *nodes_, etime, flags), out);
  return out;
}

void Engine::SerializeForAof(const Job& job, std::string& out) const {
  AppendJobRecord(ToRecord(job, *nodes_, job.etime, static_cast<uint8_t>(job.flags & kJobSerializedFlags)), out);
}

void Engine::JournalLoad(const Job& job) {
  if (journal_ == nullptr) return;
  journal_scratch_.clear();
  SerializeForAof(job, journal_scratch_);
  journal_->LoadJob(journal_scratch_);
}

// A job received from another node (REPLJOB, YOURJOBS) or read from the AOF,
// registered active with its node list filtered to the nodes this one knows.
Job* Engine::Register(const JobRecord& r, uint32_t etime, uint8_t kept_flags) {
  const std::optional<JobId> id = JobId::Parse(r.id);
  if (!id) return nullptr;  // not canonical: no job can have it
  Job* job = Job::Create(arena_, r.queue, r.body, r.delay);
  job->id = *id;
  job->ctime = r.ctime;
  job->etime = etime;
  job->retry = r.retry;
  job->repl = r.repl;
  job->nacks = r.nacks;
  job->additional_deliveries = r.additional_deliveries;
  job->state = JobState::kActive;
  job->flags = static_cast<uint8_t>(r.flags & kept_flags);
  AddKnownNodes(*job, r.nodes);
  jobs_.Insert(job);
  job_bytes_ += job->allocation_size();
  return job;
}

void Engine::AddKnownNodes(Job& job, const std::vector<std::string>& nodes) {
  for (const std::string& node : nodes) {
    const uint32_t n = nodes_->Lookup(node);
    if (n != NodeRegistry::kNone && (n == cluster_.self || cluster_.Member(n))) job.delivered.Insert(n);
  }
}

void Engine::ScheduleHeldRequeue(Job& job, int64_t now_ms) {
  if (job.retry > 0) {
    job.set_qtime_ms(now_ms + (static_cast<int64_t>(job.delay()) + job.retry) * 1000 + Jitter());
    job.flags |= kJobWillQueue;
  } else {
    job.set_qtime_ms(0);
  }
  Reschedule(job);
}

// The XOR-mixed comparison of PROTOCOL.md II 7: byte i of each node ID is mixed with
// byte 11 + (i mod 24) of the job ID text (its random part), so the winner varies from
// job to job. The sender wins when its mixed ID is greater.
bool Engine::SenderWins(uint32_t sender, const Job& job) const {
  char id[kJobIdLen];
  job.id.Format(id);
  const std::string_view a = nodes_->Id(sender);
  const std::string_view b = nodes_->Id(cluster_.self);
  for (size_t i = 0; i < NodeRegistry::kIdLen; ++i) {
    const auto x = static_cast<uint8_t>(static_cast<uint8_t>(a[i]) ^ static_cast<uint8_t>(id[11 + i % 24]));
    const auto y = static_cast<uint8_t>(static_cast<uint8_t>(b[i]) ^ static_cast<uint8_t>(id[11 + i % 24]));
    if (x != y) return x > y;
  }
  return false;
}

// ---------------------------------------------------------------------------- replication

int Engine::ReplicateJob(Job& job, int n, bool noreply) {
  // New targets: reachable nodes with a link, in random order, not holding it yet.
  std::vector<uint32_t> candidates = cluster_.targets;
  std::shuffle(candidates.begin(), candidates.end(), rng_);
  int added = 0;
  for (uint32_t node : candidates) {
    if (added >= n) break;
    if (node != cluster_.self && job.delivered.Insert(node)) ++added;
  }
  // Every holder gets the whole list. Those that confirmed already are sent it again
  // only when it grew (NOREPLY then), so that they learn the new holders.
  const JobExtra* extra = FindExtra(job);
  const std::string blob = Serialize(job);
  std::vector<uint32_t> ask, tell;
  for (uint32_t node : job.delivered) {
    if (node == cluster_.self) continue;
    const bool confirmed = extra != nullptr && extra->confirmed.Contains(node);
    if (confirmed && added == 0) continue;
    (noreply || confirmed ? tell : ask).push_back(node);
  }
  for (auto* group : {&ask, &tell}) {
    if (group->empty()) continue;
    JobMessage m;
    m.type = JobMsg::kReplJob;
    m.flags = group == &tell ? kJobMsgNoReply : 0;
    m.jobs.push_back(blob);
    m.to = std::move(*group);
    outbox_.push_back(std::move(m));
  }
  return added;
}

void Engine::ReplicationAchieved(Job& job) {
  JobExtra* extra = FindExtra(job);
  std::shared_ptr<ReplWaiter> waiter = extra ? extra->waiter : nullptr;
  if (waiter != nullptr && !waiter->Claim()) {
    // The client already had its answer (timeout) or left: for it the job was never
    // added, so it goes everywhere.
    DeleteEverywhere(&job, Status());
    return;
  }
  const bool external = !job.delivered.Contains(cluster_.self);
  LeaveWaitRepl(job);
  if (waiter != nullptr) waiter->Replicated(job.id);
  if (external) {
    // This node keeps no copy: one confirming node queues it.
    std::vector<uint32_t> holders = extra ? Others(extra->confirmed) : std::vector<uint32_t>{};
    if (!holders.empty()) Send(JobMsg::kEnqueue, job, job.delay(), {holders[rng_() % holders.size()]});
    UnlinkJob(&job);  // never journaled: the copies are elsewhere
    return;
  }
  DropExtra(job);
  if (job.delay() == 0) {
    Enqueue(job, false);
  } else {
    Reschedule(job);
  }
  JournalLoad(job);
}

void Engine::AckedWhileReplicating(Job& job) {
  // Someone acked it, so enough copies exist: the client gets its ID, but the job is
  // neither queued here (a blocked consumer would receive an acked job) nor handed to a
  // holder in external mode (the ACK's garbage collection reaches the holders instead).
  JobExtra* extra = FindExtra(job);
  if (extra != nullptr && extra->waiter != nullptr && extra->waiter->Claim()) extra->waiter->Replicated(job.id);
  LeaveWaitRepl(job);
  DropExtra(job);
}

void Engine::DeleteEverywhere(Job* job, const Status& reason) {
  if (JobExtra* extra = FindExtra(*job); extra != nullptr && job->state == JobState::kWaitRepl) {
    if (extra->waiter != nullptr && !reason.ok() && extra->waiter->Claim()) extra->waiter->Fail(reason);
  }
  SendToDelivered(JobMsg::kDelJob, *job);
  DeleteJob(job);
}

void Engine::CancelReplication(const JobId& id) {
  Job* job = Find(id);
  if (job != nullptr && job->state == JobState::kWaitRepl) DeleteEverywhere(job, Status());
}

void Engine::Cron() {
  const int64_t now = NowMs();
  arena_.ReleaseIdleSlabs();
  arena_.Publish();
  // Synchronous replication (PROTOCOL.md II 6): timeouts, the LEAVING error, and one
  // more node at least 50 ms after the last one was added, re-sending to the rest.
  const std::vector<Job*> waiting(replicating_.begin(), replicating_.end());
  for (Job* job : waiting) {
    JobExtra& extra = *FindExtra(*job);
    if (extra.deadline_ms != 0 && now >= extra.deadline_ms) {
      DeleteEverywhere(job, Status(Code::kNoRepl, "Timeout reached before replicating to the requested number of nodes"));
      continue;
    }
    if (cluster_.leaving) {
      DeleteEverywhere(job, Status(Code::kLeaving, "This node is leaving the cluster, please connect to a different one"));
      continue;
    }
    if (now - extra.added_node_ms >= kAddNodeMinPeriodMs) {
      if (ReplicateJob(*job, 1, false) > 0) extra.added_node_ms = now;
    }
  }
  // Blocked GETJOB clients: a leaving node sends them away; otherwise ask for jobs.
  std::vector<Queue*> waited = waited_;
  for (Queue* q : waited) {
    std::erase_if(q->waiters, [](const std::shared_ptr<Waiter>& w) { return !w->live(); });
    if (q->waiters.empty()) {
      q->waited = false;
      std::erase(waited_, q);
      continue;
    }
    if (cluster_.leaving) {
      for (auto& w : q->waiters) {
        if (w->Claim()) w->Fail(Status(Code::kLeaving, "This node is leaving the cluster, please connect to a different one"));
      }
      q->waiters.clear();
      continue;
    }
    NeedJobs(*q, false);
  }
}

// ---------------------------------------------------------------------------- acks

void Engine::AckLocal(Job& job) {
  JournalDel(job);
  if (job.state == JobState::kQueued) RemoveFromQueue(job);
  job.state = JobState::kAcked;
  if (JobExtra* extra = FindExtra(job)) extra->confirmed.Clear();  // reused for ACK confirmations
  job.gc_retry = 0;
  ScheduleGc(job, NowMs());
}

void Engine::ScheduleGc(Job& job, int64_t now_ms) {
  job.set_qtime_ms(now_ms + Backoff(kGcRetryMinPeriodMs, job.gc_retry, kGcRetryMaxPeriodMs) + Jitter());
  Reschedule(job);
}

bool Engine::Ack(std::string_view id_text) {
  Job* job = Find(id_text);
  bool counted = false;
  if (job == nullptr) {
    // A dummy ACK (PROTOCOL.md II 8): remembers the ACK of an at-least-once job this
    // node never had, so that it reaches the holders once they can be told.
    if (cluster_.size <= 1 || cluster_.leaving || (ReadTtlField(id_text) & 1) == 0) return false;
    const std::optional<JobId> id = JobId::Parse(id_text);
    if (!id) return false;
    job = Job::Create(arena_, {}, {});
    job->id = *id;
    job->state = JobState::kAcked;
    job->flags = kJobDummyAck;
    job->etime = static_cast<uint32_t>(NowMs() / 1000 + int64_t{ReadTtlField(id_text)} * 60);
    jobs_.Insert(job);
    job_bytes_ += job->allocation_size();
    ScheduleGc(*job, NowMs());
  } else if (job->state != JobState::kAcked) {
    if (job->state != JobState::kWaitRepl && OnlyCopyHere(*job)) {
      // What AckLocal then TryGc would do, without first moving the job to its GC time
      // in the schedule: a sift toward the root, then the erase's sift back down, each
      // level a cache miss at a million jobs.
      DeleteJob(job);  // journals the DEL, as AckLocal
      return true;
    }
    if (job->state == JobState::kWaitRepl) AckedWhileReplicating(*job);
    AckLocal(*job);
    counted = true;
  }
  TryGc(*job);
  return counted;
}

bool Engine::OnlyCopyHere(const Job& job) {
  return !(job.flags & kJobDummyAck) && FindExtra(job) == nullptr && job.delivered.size() == 1 &&
         job.delivered.Contains(cluster_.self);
}

bool Engine::TryGc(Job& job) {
  if (job.gc_retry < kGcRetryMax) ++job.gc_retry;
  const bool dummy = job.flags & kJobDummyAck;
  // The common case first, without touching the side table: only this node had it.
  if (OnlyCopyHere(job)) {
    DeleteJob(&job);
    return true;
  }
  JobExtra& extra = Extra(job);
  if (extra.confirmed.empty()) extra.confirmed.Insert(cluster_.self);
  // PROTOCOL.md II 8 compares the sizes of the two sets; we check that every possible
  // holder confirmed. The same in every case but one: a job received by YOURJOBS, whose
  // list does not name this node, would be deleted here with the sender's copy never
  // told (it would requeue: a duplicate delivery).
  if (!dummy && AllConfirmed(job.delivered, extra.confirmed)) {
    DeleteJob(&job);  // nobody else has a copy
    return true;
  }
  if (dummy && cluster_.size <= 1) {
    DeleteJob(&job);
    return true;
  }
  JobMessage m;
  m.type = JobMsg::kSetAck;
  m.job_id = job.id.ToString();
  m.aux = static_cast<uint32_t>(job.delivered.size());
  if (dummy) {
    m.to_all = true;
  } else {
    for (uint32_t n : job.delivered) {
      if (!extra.confirmed.Contains(n)) m.to.push_back(n);
    }
    if (m.to.empty()) return false;
  }
  outbox_.push_back(std::move(m));
  return false;
}

bool Engine::FastAck(std::string_view id_text) {
  Job* job = Find(id_text);
  if (job == nullptr) {
    if (cluster_.size <= 1) return false;
    JobMessage m;
    m.type = JobMsg::kDelJob;
    m.job_id.assign(id_text);
    m.to_all = true;
    outbox_.push_back(std::move(m));
    return false;
  }
  DeleteEverywhere(job, Status(Code::kNoRepl, kJobRemoved));
  return true;
}

// ---------------------------------------------------------------------------- federation

uint32_t Engine::ImportRate(const Queue& q) const {
  const int64_t now = NowMs();
  if (now - q.import_current_ms > kImportRateWindowMs) return 0;
  const int64_t elapsed = std::max<int64_t>(50, now - q.import_prev_ms);
  const double jobs = static_cast<double>(q.import_prev_count) + q.import_current_count;
  return static_cast<uint32_t>(std::ceil(jobs * 1000 / static_cast<double>(elapsed)));
}

std::vector<uint32_t> Engine::Responders(Queue& q) {
  const int64_t now = NowMs();
  std::erase_if(q.responders, [now](const auto& r) { return now - r.second > kResponderValidityMs; });
  std::vector<uint32_t> out;
  for (const auto& r : q.responders) out.push_back(r.first);
  return out;
}

void Engine::NeedJobs(Queue& q, bool reached_zero) {
  if (cluster_.leaving || cluster_.size <= 1) return;
  const uint32_t rate = ImportRate(q);
  if (reached_zero && rate == 0) return;
  const std::vector<uint32_t> responders = Responders(q);
  uint32_t to_fetch = kNeedJobsMinRequest;
  if (!responders.empty()) {
    to_fetch = std::clamp<uint32_t>(rate / static_cast<uint32_t>(responders.size()), kNeedJobsMinRequest,
                                    kNeedJobsMaxRequest);
  }
  const int64_t now = NowMs();
  auto need = [&q](uint32_t count) {
    JobMessage m;
    m.type = JobMsg::kNeedJobs;
    m.queue = q.name;
    m.aux = count;
    return m;
  };
  if (now - q.needjobs_bcast_ms >
      Backoff(kNeedJobsBcastMinDelayMs, q.needjobs_bcast_attempt, kNeedJobsBcastMaxDelayMs)) {
    q.needjobs_bcast_ms = now;
    if (q.needjobs_bcast_attempt < UINT8_MAX) ++q.needjobs_bcast_attempt;
    JobMessage m = need(1);
    m.to_all = true;
    outbox_.push_back(std::move(m));
  }
  if (!responders.empty() &&
      (reached_zero ||
       now - q.needjobs_adhoc_ms > Backoff(kNeedJobsAdhocMinDelayMs, q.needjobs_adhoc_attempt, kNeedJobsAdhocMaxDelayMs))) {
    q.needjobs_adhoc_ms = now;
    if (q.needjobs_adhoc_attempt < UINT8_MAX) ++q.needjobs_adhoc_attempt;
    JobMessage m = need(to_fetch);
    m.to = responders;
    outbox_.push_back(std::move(m));
  }
}

void Engine::NoteImport(Queue& q, uint32_t sender, int64_t now_ms) {
  auto it = std::find_if(q.responders.begin(), q.responders.end(), [sender](const auto& r) { return r.first == sender; });
  if (it == q.responders.end()) {
    q.responders.emplace_back(sender, now_ms);
    q.needjobs_bcast_attempt = 0;
  } else {
    it->second = now_ms;
  }
  if (now_ms - q.import_current_ms > 1000) {
    q.import_prev_ms = q.import_current_ms;
    q.import_prev_count = q.import_current_count;
    q.import_current_ms = now_ms;
    q.import_current_count = 0;
  }
  ++q.import_current_count;
  q.needjobs_adhoc_attempt = 0;
}

// ---------------------------------------------------------------------------- receiving

void Engine::Receive(const JobMessage& m) {
  switch (m.type) {
    case JobMsg::kReplJob: return OnReplJob(m);
    case JobMsg::kNeedJobs: return OnNeedJobs(m);
    case JobMsg::kYourJobs: return OnYourJobs(m);
    case JobMsg::kPause:
      Pause(m.queue, static_cast<uint8_t>(m.aux & kPauseAll));
      return;
    default: break;
  }
  Job* job = Find(m.job_id);
  switch (m.type) {
    case JobMsg::kSetAck: return OnSetAck(m, job);
    case JobMsg::kDelJob:
      // Deleted here in any state; a client waiting for its replication gets NOREPL.
      if (job != nullptr) {
        if (job->state == JobState::kWaitRepl) {
          DeleteEverywhere(job, Status(Code::kNoRepl, kJobRemoved));
        } else {
          DeleteJob(job);
        }
      }
      return;
    default: break;
  }
  if (job == nullptr) return;
  switch (m.type) {
    case JobMsg::kGotJob: return OnGotJob(m, *job);
    case JobMsg::kEnqueue: return OnEnqueue(m, *job);
    case JobMsg::kWillQueue: return OnWillQueue(m, *job);
    case JobMsg::kQueued:
    case JobMsg::kWorking: return OnQueued(m, *job);
    case JobMsg::kGotAck: return OnGotAck(m, *job);
    default: return;
  }
}

void Engine::OnReplJob(const JobMessage& m) {
  // Refused silently: the origin retries elsewhere or times out.
  if (memory_level_ > 0 || cluster_.leaving || m.jobs.size() != 1) return;
  Result<JobRecord> record = ParseJobRecord(m.jobs[0]);
  if (!record.ok()) return;
  if (const Queue* q = FindQueue(record->queue); q != nullptr && (q->pause & kPauseIn)) return;
  const int64_t now = NowMs();
  Job* job = Find(record->id);
  if (job == nullptr) {
    job = Register(*record, EtimeFromBus(record->etime, now), kBusFlags);
    if (job == nullptr) return;
    job->flags |= kJobBcastQueued;  // a replica: its first queueing here counts
    ScheduleHeldRequeue(*job, now);
    JournalLoad(*job);
  } else {
    AddKnownNodes(*job, record->nodes);
  }
  if (!(m.flags & kJobMsgNoReply)) Send(JobMsg::kGotJob, *job, 0, {m.sender});
}

void Engine::OnGotJob(const JobMessage& m, Job& job) {
  if (job.state != JobState::kWaitRepl) return;
  JobExtra& extra = Extra(job);
  extra.confirmed.Insert(m.sender);
  if (extra.confirmed.size() >= job.repl) ReplicationAchieved(job);
}

void Engine::OnEnqueue(const JobMessage& m, Job& job) {
  // Only the origin has a job in wait-repl, and nobody else may tell it to queue it.
  if (job.state != JobState::kActive) return;
  if (const Queue* q = FindQueue(job.queue()); q != nullptr && (q->pause & kPauseIn)) return;
  job.flags &= static_cast<uint8_t>(~kJobBcastQueued);  // this node is the first to queue it
  // Disque leaves an at-most-once job that was replicated here with no queue time, so
  // it would never be queued (a QUIRK that loses the job): give it one.
  const int64_t now = NowMs();
  if (m.aux == 0) {
    if (job.qtime_ms() == 0 && job.retry == 0) job.set_qtime_ms(now);
    Enqueue(job, false);
  } else {
    job.set_qtime_ms(now + static_cast<int64_t>(m.aux) * 1000);
    Reschedule(job);
  }
}

void Engine::OnWillQueue(const JobMessage& m, Job& job) {
  if (job.state == JobState::kAcked) {
    Send(JobMsg::kSetAck, job, static_cast<uint32_t>(job.delivered.size()), {m.sender});
    return;
  }
  if (job.state == JobState::kActive || job.state == JobState::kQueued) job.delivered.Insert(m.sender);
  if (job.state == JobState::kQueued) SendToDelivered(JobMsg::kQueued, job);
}

// QUEUED and WORKING: another node queued the job (or a client works on it there).
void Engine::OnQueued(const JobMessage& m, Job& job) {
  if (job.state == JobState::kAcked) {
    Send(JobMsg::kSetAck, job, static_cast<uint32_t>(job.delivered.size()), {m.sender});
    return;
  }
  const bool working = m.type == JobMsg::kWorking;
  if (job.state == JobState::kQueued && (working || SenderWins(m.sender, job))) RemoveFromQueue(job);
  if (job.retry > 0) SetRequeueTime(job, NowMs());
  if (!working) {
    if (m.flags & kJobMsgIncrNacks) Saturating(job.nacks);
    if (m.flags & kJobMsgIncrDeliv) Saturating(job.additional_deliveries);
  }
}

void Engine::OnSetAck(const JobMessage& m, Job* job) {
  if (job != nullptr) {
    if (job->state == JobState::kWaitRepl) AckedWhileReplicating(*job);
    if (job->state != JobState::kAcked) AckLocal(*job);
  }
  if (job == nullptr || job->delivered.size() <= m.aux) {
    JobMessage reply;
    reply.type = JobMsg::kGotAck;
    reply.job_id = m.job_id;
    reply.aux = job != nullptr ? 1 : 0;
    reply.to = {m.sender};
    outbox_.push_back(std::move(reply));
    return;
  }
  // We know of more holders than the sender: we take over the cluster-wide GC.
  if (m.aux == 0) Send(JobMsg::kGotAck, *job, 1, {m.sender});
  TryGc(*job);
}

void Engine::OnGotAck(const JobMessage& m, Job& job) {
  if (job.state != JobState::kAcked) return;
  const bool dummy = job.flags & kJobDummyAck;
  const bool known = m.aux != 0;
  if (dummy && known) {
    DeleteJob(&job);  // a real holder exists and will collect it
    return;
  }
  JobExtra* extra = FindExtra(job);
  if (known || job.delivered.Contains(m.sender)) {
    job.delivered.Insert(m.sender);
    if (extra != nullptr) extra->confirmed.Insert(m.sender);
  }
  if (dummy) {
    // Nobody had it: once every known node said so, the dummy is dropped.
    extra = &Extra(job);
    extra->confirmed.Insert(m.sender);
    if (static_cast<int>(extra->confirmed.size()) >= cluster_.known) DeleteJob(&job);
    return;
  }
  if (extra != nullptr && AllConfirmed(job.delivered, extra->confirmed)) {
    SendToDelivered(JobMsg::kDelJob, job);
    DeleteJob(&job);
  }
}

void Engine::OnNeedJobs(const JobMessage& m) {
  Queue* q = FindQueue(m.queue);
  if (q == nullptr || q->jobs.empty() || (q->pause & kPauseOut) || ImportRate(*q) > 0) return;
  size_t n = m.aux;
  if (q->length() < 2 * n) n = q->length() / 2;
  n = std::clamp<size_t>(n, 1, kNeedJobsMaxRequest);
  JobMessage reply;
  reply.type = JobMsg::kYourJobs;
  reply.to = {m.sender};
  std::vector<Job*> at_most_once;
  // One message must stay well under the bus's frame limit: jobs are taken while they
  // fit in kYourJobsMaxBytes (at least one, which fits alone: bodies are at most 512 MB).
  size_t bytes = 0;
  for (size_t i = 0; i < n && !q->jobs.empty(); ++i) {
    const size_t size = q->jobs.top()->allocation_size();
    if (i > 0 && bytes + size > kYourJobsMaxBytes) break;
    bytes += size;
    Job* job = PopForDelivery(*q);
    reply.jobs.push_back(Serialize(*job));
    if (job->retry == 0) at_most_once.push_back(job);
  }
  // The sender keeps its active copies of at-least-once jobs: they requeue here after
  // their retry time unless acked.
  for (Job* job : at_most_once) DeleteJob(job);
  outbox_.push_back(std::move(reply));
}

void Engine::OnYourJobs(const JobMessage& m) {
  const int64_t now = NowMs();
  for (const std::string& blob : m.jobs) {
    Result<JobRecord> record = ParseJobRecord(blob);
    if (!record.ok()) break;  // stop at the first corrupt one
    Job* job = Find(record->id);
    if (job == nullptr) {
      job = Register(*record, EtimeFromBus(record->etime, now), kBusFlags);
      if (job == nullptr) continue;
      job->set_qtime_ms(now);
      Reschedule(*job);
    }
    if (job->state != JobState::kActive) continue;
    job->flags &= static_cast<uint8_t>(~kJobBcastQueued);  // no QUEUED, no counter
    if (job->retry == 0) job->set_qtime_ms(now);  // so that it can be queued once
    if (!Enqueue(*job, false)) continue;
    NoteImport(GetOrCreateQueue(job->queue()), m.sender, now);
  }
}

}  // namespace disque::engine
