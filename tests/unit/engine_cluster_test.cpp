// Unit tests for the engine's cluster rules (PROTOCOL.md part II 5 to 10): several
// engines, one per simulated node, exchange their outboxes over an in-memory network
// under one FakeClock. Nodes can be cut off (their messages are lost, as the bus drops
// messages to unlinked nodes) to exercise retries, timeouts and ACK retention.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "disque/engine/engine.h"
#include "disque/engine/job_codec.h"
#include "support/engine_sim.h"
#include "support/fake_clock.h"

namespace disque::engine {
namespace {

TEST(EngineClusterTest, SynchronousReplicationReachesEveryCopyThenQueuesAtTheOrigin) {
  SimCluster c(5);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kWaitRepl);
  EXPECT_EQ(waiter->replicated, "");
  c.Deliver();
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c.Holders(id), 3);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kQueued);  // only the origin queues it
  EXPECT_EQ(c.CountState(id, JobState::kActive), 2);
  // Every copy knows every holder, and the confirmations were dropped.
  for (int i = 0; i < c.size(); ++i) {
    if (const Job* job = c[i].Find(id)) {
      EXPECT_EQ(job->delivered.size(), 3u) << i;
      EXPECT_EQ(c[i].Confirmed(*job), nullptr) << i;
      EXPECT_EQ(job->body(), "body");
      EXPECT_EQ(job->repl, 3);
    }
  }
}

// REPLJOB carries the job's record (PROTOCOL.md 8.5): a queue name longer than the job
// header's 8-bit length and a delay (both kept outside the header, job.h) reach every copy.
TEST(EngineClusterTest, ReplicasKeepALongQueueNameAndTheDelay) {
  SimCluster c(3);
  std::string name(70000, 'r');
  name.back() = '$';
  AddJobArgs args = Args(3);
  args.queue = name;
  args.delay = 4;
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  EXPECT_EQ(waiter->replicated, id);
  ASSERT_EQ(c.Holders(id), 3);
  for (int i = 0; i < c.size(); ++i) {
    const Job* job = c[i].Find(id);
    ASSERT_NE(job, nullptr) << i;
    EXPECT_EQ(job->queue(), name) << i;
    EXPECT_EQ(job->body(), "body") << i;
    EXPECT_EQ(job->delay(), 4u) << i;
  }
}

TEST(EngineClusterTest, AsyncReplicationQueuesAtOnceAndSendsNoReplyCopies) {
  SimCluster c(4);
  AddJobArgs args = Args(3);
  args.async = true;
  JobId id;
  Result<const Job*> job = c[0].AddJob(args, nullptr, &id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)->state, JobState::kQueued);
  c.Deliver();
  EXPECT_EQ(c.Holders(id.ToString()), 3);
  EXPECT_EQ(c.sent(JobMsg::kGotJob), 0);  // NOREPLY
}

TEST(EngineClusterTest, AnUnreachableTargetIsReplacedAfter50MsAndTheReplicationCompletes) {
  SimCluster c(4);
  auto waiter = std::make_shared<TestReplWaiter>();
  // Node 3 is "down" but still listed as a target by node 0: its copy is never confirmed.
  c.Cut(3);
  ClusterState st = c[0].cluster();
  st.reachable.push_back(c.index(3));
  st.targets = {c.index(3), c.index(1)};  // node 3 first: shuffling picks among these two
  c[0].SetCluster(st);
  AddJobArgs args = Args(3);
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  // With 2 targets both picked at once, node 1 confirms and node 3 does not: 2 of 3.
  EXPECT_EQ(waiter->replicated, "");
  st.targets.push_back(c.index(2));
  c[0].SetCluster(st);
  c.Run(200);
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c[0].Find(id)->delivered.size(), 4u);  // node 3 is still listed: it may have a copy
}

TEST(EngineClusterTest, TimeoutRepliesNoReplAndDeletesTheCopies) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(3);
  args.timeout_ms = 300;
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  EXPECT_EQ(c.Holders(id), 2);  // the origin and node 1
  c.Run(500);
  EXPECT_EQ(waiter->error, "NOREPL Timeout reached before replicating to the requested number of nodes");
  EXPECT_EQ(c.Holders(id), 0);  // DELJOB reached node 1
}

TEST(EngineClusterTest, AClientThatLeavesCancelsTheJobEverywhere) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  ASSERT_TRUE(waiter->Claim());  // the client side claims it (disconnect)
  c[0].CancelReplication(*JobId::Parse(id));
  c.Deliver();
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, ExternalReplicationKeepsNoLocalCopyAndOneHolderQueues) {
  SimCluster c(4);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.external = true;
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c[0].Find(id), nullptr);
  EXPECT_EQ(c.Holders(id), 2);
  EXPECT_EQ(c.CountState(id, JobState::kQueued), 1);  // ENQUEUE went to one of them
}

TEST(EngineClusterTest, ExternalAtMostOnceJobIsQueuedByItsHolder) {
  // Disque leaves such a job unqueued forever (QUIRK); we queue it once.
  SimCluster c(3);
  AddJobArgs args = Args(1, 0);
  args.external = true;
  args.async = true;
  JobId id;
  ASSERT_TRUE(c[0].AddJob(args, nullptr, &id).ok());
  c.Deliver();
  EXPECT_EQ(c.CountState(id.ToString(), JobState::kQueued), 1);
  EXPECT_EQ(c.Holders(id.ToString()), 1);
}

TEST(EngineClusterTest, ReplicaRefusesWhenLeavingOrUnderMemoryPressure) {
  SimCluster c(3);
  c[1].set_memory_level(1);
  ClusterState st2 = c[2].cluster();
  st2.leaving = true;
  c[2].SetCluster(st2);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.timeout_ms = 200;
  const std::string id = AddSync(c, 0, args, waiter);
  c.Run(400);
  EXPECT_EQ(waiter->error, "NOREPL Timeout reached before replicating to the requested number of nodes");
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, AckOnAReplicaIsCollectedEverywhere) {
  SimCluster c(5);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  int replica = -1;
  for (int i = 1; i < c.size(); ++i) {
    if (c[i].Find(id)) replica = i;
  }
  ASSERT_NE(replica, -1);
  EXPECT_TRUE(c[replica].Ack(id));
  EXPECT_FALSE(c[replica].Ack(id));  // already acked: not counted again
  c.Deliver();
  EXPECT_EQ(c.Holders(id), 0);
  EXPECT_GT(c.sent(JobMsg::kSetAck), 0);
  EXPECT_GT(c.sent(JobMsg::kGotAck), 0);
  EXPECT_GT(c.sent(JobMsg::kDelJob), 0);
}

TEST(EngineClusterTest, AckIsRetainedWhileAnOwnerIsDownAndCollectedWhenItReturns) {
  SimCluster c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 10, 7200), waiter);
  c.Deliver();
  c.Cut(2);
  EXPECT_TRUE(c[0].Ack(id));
  c.Run(3000);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kAcked);  // retained for node 2
  EXPECT_EQ(c[2].Find(id)->state, JobState::kActive);
  c.Heal(2);
  // GC retries back off (1, 4, 8, 16 s...): one of them reaches node 2 once it is back.
  // (Node 2 may have requeued its copy while cut off; the ACK still wins.)
  c.Run(40000, 50);
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, DummyAckReachesTheHoldersThroughANodeWithoutACopy) {
  SimCluster c(4);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(2), waiter);
  c.Deliver();
  int stranger = -1;
  for (int i = 1; i < c.size(); ++i) {
    if (!c[i].Find(id)) stranger = i;
  }
  ASSERT_NE(stranger, -1);
  EXPECT_FALSE(c[stranger].Ack(id));  // not known there: not counted, but a dummy ACK
  const Job* dummy = c[stranger].Find(id);
  ASSERT_NE(dummy, nullptr);
  EXPECT_EQ(dummy->state, JobState::kAcked);
  EXPECT_TRUE(dummy->flags & kJobDummyAck);
  c.Deliver();
  EXPECT_EQ(c.Holders(id), 0);
}

// gc_retry shares a byte of the job header with the "delay stored" bit (job.h): an ACK
// retained for a node that is down counts its GC attempts up to the cap, and the copy
// keeps its delay, long body and name; a dummy ACK (flags assigned whole) counts too.
TEST(EngineClusterTest, AckRetainedUntilTheGcRetryCapKeepsTheDelayAndTheData) {
  SimCluster c(4);
  std::string name(300, 'n');
  name.back() = '$';
  std::string body(70000, 'b');
  body.back() = '!';
  AddJobArgs args = Args(3, 10, 7200);
  args.queue = name;
  args.body = body;
  args.delay = 9;
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  ASSERT_EQ(c.Holders(id), 3);
  int holder = -1, stranger = -1;
  for (int i = 1; i < c.size(); ++i) (c[i].Find(id) ? holder : stranger) = i;
  ASSERT_NE(holder, -1);
  ASSERT_NE(stranger, -1);
  c.Cut(holder);
  EXPECT_TRUE(c[0].Ack(id));
  const std::string odd = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";  // nobody has it
  EXPECT_FALSE(c[stranger].Ack(odd));  // a dummy ACK, kept until every node answered
  c.Run(1500000, 1000);  // the backoff reaches 180 s after 8 attempts: 10 take ~20 min
  const Job* acked = c[0].Find(id);
  ASSERT_NE(acked, nullptr);
  EXPECT_EQ(acked->state, JobState::kAcked);
  EXPECT_EQ(acked->gc_retry, kGcRetryMax);
  EXPECT_EQ(acked->delay(), 9u);
  EXPECT_EQ(acked->queue(), name);
  EXPECT_EQ(acked->body(), body);
  const Job* dummy = c[stranger].Find(odd);
  ASSERT_NE(dummy, nullptr);
  EXPECT_TRUE(dummy->flags & kJobDummyAck);
  EXPECT_EQ(dummy->gc_retry, kGcRetryMax);
  EXPECT_EQ(dummy->delay(), 0u);
  EXPECT_EQ(dummy->queue(), "");
  EXPECT_EQ(dummy->body(), "");
  const Job* copy = c[holder].Find(id);  // loaded from the REPLJOB record, flags assigned
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->delay(), 9u);
  EXPECT_EQ(copy->body(), body);
  c.Heal(holder);
  c.Run(400000, 1000);
  EXPECT_EQ(c.Holders(id), 0);
  EXPECT_EQ(c[stranger].Find(odd), nullptr);
}

TEST(EngineClusterTest, NoDummyAckForAtMostOnceIdsAloneOrWhileLeaving) {
  SimCluster c(3);
  AddJobArgs args = Args(1, 0);
  JobId id;
  ASSERT_TRUE(c[0].AddJob(args, nullptr, &id).ok());
  EXPECT_FALSE(c[1].Ack(id.ToString()));
  EXPECT_EQ(c[1].Find(id.ToString()), nullptr);  // even TTL field: at most once
  const std::string odd = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
  c.SetLeaving(2);
  EXPECT_FALSE(c[2].Ack(odd));
  EXPECT_EQ(c[2].Find(odd), nullptr);
  SimCluster alone(1);
  EXPECT_FALSE(alone[0].Ack(odd));
  EXPECT_EQ(alone[0].Find(odd), nullptr);
}

TEST(EngineClusterTest, DummyAckOfAJobNobodyHasIsDroppedOnceEveryNodeAnswered) {
  SimCluster c(3);
  const std::string odd = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
  c[1].Ack(odd);
  ASSERT_NE(c[1].Find(odd), nullptr);
  c.Deliver();
  EXPECT_EQ(c[1].Find(odd), nullptr);
}

TEST(EngineClusterTest, FastAckDeletesEveryCopyFromAnOwnerOrFromANodeWithout) {
  SimCluster c(4);
  auto w1 = std::make_shared<TestReplWaiter>();
  const std::string a = AddSync(c, 0, Args(3), w1);
  c.Deliver();
  EXPECT_TRUE(c[0].FastAck(a));
  c.Deliver();
  EXPECT_EQ(c.Holders(a), 0);

  auto w2 = std::make_shared<TestReplWaiter>();
  const std::string b = AddSync(c, 0, Args(2), w2);
  c.Deliver();
  int stranger = -1;
  for (int i = 1; i < c.size(); ++i) {
    if (!c[i].Find(b)) stranger = i;
  }
  ASSERT_NE(stranger, -1);
  EXPECT_FALSE(c[stranger].FastAck(b));  // unknown here: broadcast, not counted
  c.Deliver();
  EXPECT_EQ(c.Holders(b), 0);
}

TEST(EngineClusterTest, DeletingAJobWaitingForReplicationFailsItsClientAndDeletesTheCopies) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  EXPECT_TRUE(c[0].Delete(id));
  c.Deliver();
  EXPECT_EQ(waiter->error, "NOREPL job removed (expired?) before the requested replication level was achieved");
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, DelJobFromAnotherNodeRemovesAJobWaitingForReplication) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  c[1].FastAck(id);
  c.Deliver();
  EXPECT_EQ(waiter->error, "NOREPL job removed (expired?) before the requested replication level was achieved");
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, AfterAConsumerCrashTheJobIsQueuedAgainOnExactlyOneNode) {
  for (uint64_t round = 0; round < 20; ++round) {
    SimCluster c(5);
    auto waiter = std::make_shared<TestReplWaiter>();
    const std::string id = AddSync(c, static_cast<int>(round % 5), Args(3, 5), waiter);
    c.Deliver();
    std::vector<const Job*> got;
    c[static_cast<int>(round % 5)].Fetch("q", 1, got);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(c.CountState(id, JobState::kQueued), 0);
    c.Run(7000);  // past the retry: every copy wanted to requeue
    EXPECT_EQ(c.CountState(id, JobState::kQueued), 1) << "round " << round;
    EXPECT_EQ(c.Holders(id), 3);
  }
}

TEST(EngineClusterTest, ACopyStillQueuedSomewhereKeepsTheOthersFromQueueing) {
  SimCluster c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 2), waiter);
  c.Deliver();
  // Nobody consumes it: the replicas' WILLQUEUE is answered with QUEUED by the origin,
  // so they postpone again and again and never queue (nor count a delivery).
  c.Run(10000);
  EXPECT_EQ(c.States(id), (std::vector<std::string>{"queued", "active", "active"}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c[i].Find(id)->additional_deliveries, 0) << i;
  EXPECT_GT(c.sent(JobMsg::kWillQueue), 0);
}

TEST(EngineClusterTest, WhenTwoNodesQueueConcurrentlyOneDequeues) {
  SimCluster c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 5), waiter);
  c.Deliver();
  // Node 1 and node 2 both queue it (NACK/ENQUEUE), without hearing each other first.
  std::vector<const Job*> got;
  c[0].Fetch("q", 1, got);
  EXPECT_TRUE(c[1].Requeue(id, false));
  EXPECT_TRUE(c[2].Requeue(id, false));
  c.Deliver();
  EXPECT_EQ(c.CountState(id, JobState::kQueued), 1);
  // Each ENQUEUE counted as an additional delivery and was announced.
  EXPECT_GE(c[0].Find(id)->additional_deliveries, 1);
}

TEST(EngineClusterTest, WorkingDequeuesEveryOtherCopyAndPostponesTheirRequeue) {
  SimCluster c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 5), waiter);
  c.Deliver();
  EXPECT_TRUE(c[1].Requeue(id, false));
  c.Deliver();
  const int64_t before = c[2].Find(id)->qtime_ms();
  c.clock().Advance(1000);
  ASSERT_TRUE(c[1].Working(id).ok());
  c.Deliver();
  EXPECT_EQ(c.CountState(id, JobState::kQueued), 0);
  EXPECT_GT(c[2].Find(id)->qtime_ms(), before);
}

TEST(EngineClusterTest, NackIsCountedOnEveryCopy) {
  SimCluster c(3);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 5), waiter);
  c.Deliver();
  std::vector<const Job*> got;
  c[0].Fetch("q", 1, got);
  EXPECT_TRUE(c[0].Requeue(id, true));
  c.Deliver();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c[i].Find(id)->nacks, 1) << i;
}

TEST(EngineClusterTest, FederationBringsJobsToTheNodeWithConsumers) {
  SimCluster c(3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c[0].AddJob(Args(1)).ok());
  // A consumer on node 2 finds nothing: NEEDJOBS goes to everyone, node 0 answers.
  std::vector<const Job*> got;
  c[2].Fetch("q", 1, got);
  EXPECT_TRUE(got.empty());
  c[2].NeedJobs(*c[2].FindQueue("q"), false);
  c.Deliver();
  Queue* q = c[2].FindQueue("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->length(), 1u);  // a broadcast asks for one job
  EXPECT_GT(c[2].ImportRate(*q), 0u);
  ASSERT_EQ(c[2].Responders(*q).size(), 1u);
  EXPECT_EQ(c[2].Responders(*q)[0], c.index(0));
  // Draining it asks the responder at once (reached zero with an import rate).
  c[2].Fetch("q", 1, got);
  c.Deliver();
  EXPECT_GE(c[2].FindQueue("q")->length(), 1u);
  // The sender keeps active copies (delivered there), which requeue if never acked.
  EXPECT_EQ(c[0].FindQueue("q")->length() + c[2].FindQueue("q")->length() + got.size(), 10u);
}

TEST(EngineClusterTest, AnAckOnTheImportingNodeReachesTheSendersCopy) {
  SimCluster c(2);
  JobId id;
  ASSERT_TRUE(c[0].AddJob(Args(1), nullptr, &id).ok());
  c[1].NeedJobs(c[1].GetOrCreateQueue("q"), false);
  c.Deliver();
  std::vector<const Job*> got;
  c[1].Fetch("q", 1, got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kActive);  // the sender keeps its copy
  EXPECT_TRUE(c[1].Ack(id.ToString()));
  c.Deliver();
  EXPECT_EQ(c.Holders(id.ToString()), 0);  // so it can never requeue there
}

TEST(EngineClusterTest, AckJobOfAJobWaitingForReplicationAnswersItsClient) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  auto consumer = std::make_shared<TestWaiter>();
  c[0].Block("q", consumer);
  EXPECT_TRUE(c[0].Ack(id));
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kAcked);
  EXPECT_EQ(consumer->got, "");  // an acked job is never delivered
}

TEST(EngineClusterTest, AckOfAnExternallyReplicatedJobStillWaitingReachesItsHolders) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  AddJobArgs args = Args(2);
  args.external = true;  // node 1 confirms, node 2 never does
  const std::string id = AddSync(c, 0, args, waiter);
  c.Deliver();
  ASSERT_EQ(c.States(id), (std::vector<std::string>{"wait-repl", "active", ""}));
  EXPECT_TRUE(c[0].Ack(id));
  EXPECT_EQ(waiter->replicated, id);
  c.Deliver();
  EXPECT_EQ(c[1].Find(id)->state, JobState::kAcked);  // never queued there: acked, kept for node 2
  c.Heal(2);
  c.Run(20000, 100);
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, YourJobsStaysUnderItsSizeBudget) {
  SimCluster c(2);
  const std::string big(kYourJobsMaxBytes * 3 / 4, 'x');
  for (int i = 0; i < 2; ++i) {
    AddJobArgs args = Args(1);
    args.body = big;
    ASSERT_TRUE(c[0].AddJob(args).ok());
  }
  JobMessage need;
  need.type = JobMsg::kNeedJobs;
  need.queue = "q";
  need.aux = 5;
  need.sender = c.index(1);
  c[0].Receive(need);
  std::vector<JobMessage> out = c[0].TakeOutbox();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].jobs.size(), 1u);  // the second would pass the budget
  EXPECT_EQ(c[0].FindQueue("q")->length(), 1u);  // and stays queued
}

TEST(EngineClusterTest, BlockedClientsAskForJobsFromTheCronAndALeavingNodeSendsThemAway) {
  SimCluster c(2);
  ASSERT_TRUE(c[0].AddJob(Args(1)).ok());
  auto waiter = std::make_shared<TestWaiter>();
  c[1].Block("q", waiter);
  c.Run(300);
  EXPECT_FALSE(waiter->got.empty());  // a broadcast NEEDJOBS fetched it

  auto other = std::make_shared<TestWaiter>();
  c[1].Block("empty", other);
  c.SetLeaving(1);
  c.Run(300);
  EXPECT_EQ(other->error, "This node is leaving the cluster, please connect to a different one");
}

TEST(EngineClusterTest, PauseBroadcastSetsTheSameFlagsEverywhere) {
  SimCluster c(3);
  EXPECT_EQ(c[0].Pause("q", kPauseIn, true), kPauseIn);
  c.Deliver();
  for (int i = 1; i < 3; ++i) {
    ASSERT_NE(c[i].FindQueue("q"), nullptr);
    EXPECT_EQ(c[i].FindQueue("q")->pause, kPauseIn);
  }
  EXPECT_EQ(c[0].Pause("q", kPauseOut, true), kPauseOut);  // the state, not the delta
  c.Deliver();
  EXPECT_EQ(c[2].FindQueue("q")->pause, kPauseOut);
}

TEST(EngineClusterTest, ASetAckWhileWaitingForReplicationAnswersTheClientFirst) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3), waiter);
  c.Deliver();
  EXPECT_TRUE(c[1].Ack(id));  // node 1 has a copy and a client acked it there
  c.Deliver();
  EXPECT_EQ(waiter->replicated, id);
  EXPECT_EQ(c[0].Find(id)->state, JobState::kAcked);
}

TEST(EngineClusterTest, ExpiryOfAJobWaitingForReplicationFailsItsClient) {
  SimCluster c(3);
  c.CutUnnoticed(2, 0);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(3, 1, 2), waiter);
  c.Run(4000, 100);
  EXPECT_EQ(waiter->error, "NOREPL job removed (expired?) before the requested replication level was achieved");
  EXPECT_EQ(c.Holders(id), 0);
}

TEST(EngineClusterTest, ReplicasKeepTheOriginsTtlAndCounters) {
  SimCluster c(2);
  auto waiter = std::make_shared<TestReplWaiter>();
  const std::string id = AddSync(c, 0, Args(2, 10, 100), waiter);
  c.Deliver();
  EXPECT_EQ(c[1].TtlLeft(*c[1].Find(id)), 100);
  EXPECT_EQ(c[1].Find(id)->ctime, c[0].Find(id)->ctime);
  EXPECT_EQ(c[1].Find(id)->retry, 10u);
  // A replica is due for requeue after delay + retry, with the WILLQUEUE advance.
  const std::optional<int64_t> within = c[1].NextRequeueWithin(*c[1].Find(id));
  ASSERT_TRUE(within.has_value());
  EXPECT_GE(*within, 10000 - 250);
  EXPECT_LE(*within, 10000 + 249);
}

}  // namespace
}  // namespace disque::engine
