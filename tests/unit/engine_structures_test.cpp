// The engine's compact structures. PointerTable: lookups through the hash tag, deletion
// with backward shift, and the scan cursor's exactly-once guarantee across resizes.
// IndexedHeap: order, positions, and memory returned when it drains. JobQueue: the run
// and the heap together, against a sorted model. NodeSet: inline and on the heap,
// through moves.

#include "disque/engine/indexed_heap.h"
#include "disque/engine/job_queue.h"
#include "disque/engine/node_set.h"
#include "disque/engine/pointer_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

namespace disque::engine {
namespace {

struct Item {
  uint64_t hash;
  int value;
};

struct ItemTraits {
  static uint64_t Hash(const Item& item) { return item.hash; }
};

using Table = PointerTable<Item, ItemTraits>;

Item* FindIn(const Table& table, const Item& probe) {
  return table.Find(probe.hash, [&probe](const Item& item) { return item.value == probe.value; });
}

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: well-mixed test hashes
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

TEST(PointerTableTest, FindsEveryItemThroughGrowthAndShrink) {
  std::vector<std::unique_ptr<Item>> items;
  Table table;
  for (int i = 0; i < 5000; ++i) {
    items.push_back(std::make_unique<Item>(Item{Mix(i), i}));
    table.Insert(items.back().get());
  }
  EXPECT_EQ(table.size(), 5000u);
  for (const auto& item : items) EXPECT_EQ(FindIn(table, *item), item.get());
  const Item absent{Mix(99999), 99999};
  EXPECT_EQ(FindIn(table, absent), nullptr);

  const size_t grown = table.capacity();
  for (int i = 0; i < 5000; ++i) {
    if (i % 25 != 0) {
      EXPECT_TRUE(table.Erase(items[i].get()));
    }
  }
  EXPECT_FALSE(table.Erase(items[1].get()));
  EXPECT_EQ(table.size(), 200u);
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(FindIn(table, *items[i]), i % 25 ? nullptr : items[i].get()) << i;
  // Below 1/16 full it shrank, in one step, to half full.
  EXPECT_LE(table.capacity(), grown / 16 * 2);
  EXPECT_GE(table.capacity(), 2 * table.size());
  for (int i = 0; i < 5000; i += 25) EXPECT_TRUE(table.Erase(items[i].get()));
  EXPECT_EQ(table.capacity(), 16u);  // empty: the smallest table
}

// Items whose hashes share the tag bits, or the whole hash, are told apart by `match`.
TEST(PointerTableTest, SameTagOrSameHashIsResolvedByTheMatch) {
  Item a{0x1234'0000'0000'abcd, 1}, b{0x5678'0000'0000'abcd, 2}, c{0x1234'0000'0000'abcd, 3};
  Table table;
  for (Item* item : {&a, &b, &c}) table.Insert(item);
  EXPECT_EQ(FindIn(table, a), &a);
  EXPECT_EQ(FindIn(table, b), &b);
  EXPECT_EQ(FindIn(table, c), &c);
  // Same hash and tag, no such value: the probe run is walked to its end.
  EXPECT_EQ(FindIn(table, Item{a.hash, 4}), nullptr);
  EXPECT_TRUE(table.Erase(&a));
  EXPECT_EQ(FindIn(table, c), &c);
  EXPECT_EQ(FindIn(table, a), nullptr);
}

// The table grows by half: 16, 24, 36 ... slots, between 1/2 and 3/4 full as it grows.
TEST(PointerTableTest, GrowsByHalfAndStaysHalfToThreeQuartersFull) {
  std::vector<std::unique_ptr<Item>> items;
  Table table;
  size_t last_capacity = table.capacity();
  EXPECT_EQ(last_capacity, 16u);
  for (int i = 0; i < 20000; ++i) {
    items.push_back(std::make_unique<Item>(Item{Mix(i), i}));
    table.Insert(items.back().get());
    if (table.capacity() != last_capacity) {
      EXPECT_EQ(table.capacity(), last_capacity + last_capacity / 2);
      last_capacity = table.capacity();
    }
    ASSERT_LE(table.size() * 4, table.capacity() * 3);
    if (table.capacity() > 16) {
      ASSERT_GE(table.size() * 2, table.capacity());
    }
  }
  for (const auto& item : items) EXPECT_EQ(FindIn(table, *item), item.get());
}

// Hashes at the very top of the key space have their home in the last slot: their probe
// run wraps to slot 0, where the backward shift of an erasure must follow it.
TEST(PointerTableTest, ProbeRunsWrapAroundTheEnd) {
  std::vector<std::unique_ptr<Item>> items;
  Table wrap;
  for (int i = 0; i < 10; ++i) {
    items.push_back(std::make_unique<Item>(Item{~uint64_t{0} - static_cast<uint64_t>(i), i}));
    wrap.Insert(items.back().get());
  }
  ASSERT_EQ(wrap.capacity(), 16u);
  for (const auto& item : items) EXPECT_EQ(FindIn(wrap, *item), item.get());
  for (int i = 0; i < 10; i += 2) EXPECT_TRUE(wrap.Erase(items[i].get()));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(FindIn(wrap, *items[i]), i % 2 ? items[i].get() : nullptr) << i;
  uint64_t cursor = 0;
  std::set<int> seen;
  do {
    cursor = wrap.ScanBucket(cursor, [&seen](Item* item) { EXPECT_TRUE(seen.insert(item->value).second); });
  } while (cursor != Table::kScanEnd);
  EXPECT_EQ(seen, (std::set<int>{1, 3, 5, 7, 9}));
}

// A probe run longer than the stored displacement (255) is handled by reading the
// hashes: items sharing one home slot, erased from the front, middle and back of the run.
TEST(PointerTableTest, LongProbeRunsSurviveErasure) {
  std::vector<std::unique_ptr<Item>> items;
  Table table;
  for (int i = 0; i < 700; ++i) {
    // The same key (top 54 bits), different low bits: one home, one run.
    items.push_back(std::make_unique<Item>(Item{(uint64_t{0x5555} << 48) | static_cast<uint64_t>(i), i}));
    table.Insert(items.back().get());
  }
  std::set<int> erased;
  for (int i : {0, 1, 2, 300, 301, 255, 256, 257, 698, 699, 5}) {
    ASSERT_TRUE(table.Erase(items[i].get()));
    erased.insert(i);
    for (int k = 0; k < 700; ++k) {
      ASSERT_EQ(FindIn(table, *items[k]), erased.count(k) ? nullptr : items[k].get()) << "after " << i << ": " << k;
    }
  }
  // Shift everything out again, so stored displacements that were decremented are used.
  for (int k = 0; k < 700; ++k) {
    if (!erased.count(k)) {
      ASSERT_TRUE(table.Erase(items[k].get())) << k;
    }
  }
  EXPECT_EQ(table.size(), 0u);
}

TEST(PointerTableTest, ScanReportsEachItemOnceAcrossResizes) {
  std::vector<std::unique_ptr<Item>> items;
  Table table;
  for (int i = 0; i < 300; ++i) {
    items.push_back(std::make_unique<Item>(Item{Mix(i), i}));
    table.Insert(items.back().get());
  }
  std::multiset<int> seen;
  uint64_t cursor = 0;
  int calls = 0;
  int next = 300;
  do {
    cursor = table.ScanBucket(cursor, [&seen](const Item* item) { seen.insert(item->value); });
    // Grow the table between calls: the cursor stays exact.
    if (++calls % 5 == 0 && next < 1300) {
      for (int k = 0; k < 200; ++k, ++next) {
        items.push_back(std::make_unique<Item>(Item{Mix(next), next}));
        table.Insert(items.back().get());
      }
    }
  } while (cursor != Table::kScanEnd);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
}

TEST(PointerTableTest, RandomAndForEachSeeBarePointers) {
  std::vector<std::unique_ptr<Item>> items;
  Table table;
  EXPECT_EQ(table.Random(7), nullptr);
  std::set<const Item*> all;
  for (int i = 0; i < 100; ++i) {
    items.push_back(std::make_unique<Item>(Item{Mix(i), i}));
    table.Insert(items.back().get());
    all.insert(items.back().get());
  }
  std::set<const Item*> each;
  table.ForEach([&each](const Item* item) { each.insert(item); });
  EXPECT_EQ(each, all);
  for (uint64_t r = 0; r < 50; ++r) EXPECT_TRUE(all.count(table.Random(Mix(r))));
}

struct Timer {
  int64_t when;
  uint32_t pos = kNotInHeap;
};

struct TimerOrder {
  bool operator()(const Timer* a, const Timer* b) const { return a->when < b->when; }
};

// Keys in the array, as JobSchedule keeps them (with pointers here).
struct ByKey {
  struct Slot {
    int64_t key;
    Timer* item;
  };
  static Timer* Item(const Slot& slot) { return slot.item; }
  static bool Before(const Slot& a, const Slot& b) { return a.key < b.key; }
};

// The same heap both ways: ordered through the elements, and by keys in the array.
using ElementHeap = IndexedHeap<Timer, &Timer::pos, ByElement<Timer, TimerOrder>>;
using KeyedHeap = IndexedHeap<Timer, &Timer::pos, ByKey>;

ElementHeap::Slot SlotFor(ElementHeap&, Timer* t) { return t; }
KeyedHeap::Slot SlotFor(KeyedHeap&, Timer* t) { return {t->when, t}; }

template <typename Heap>
class IndexedHeapTest : public ::testing::Test {};
using HeapTypes = ::testing::Types<ElementHeap, KeyedHeap>;
TYPED_TEST_SUITE(IndexedHeapTest, HeapTypes);

TYPED_TEST(IndexedHeapTest, PopsInOrderAfterUpdatesAndErasures) {
  std::vector<Timer> timers(20000);
  TypeParam heap;
  for (size_t i = 0; i < timers.size(); ++i) {
    timers[i].when = static_cast<int64_t>(Mix(i) % 1000000);
    heap.Push(SlotFor(heap, &timers[i]));
  }
  const size_t full = heap.items().capacity();
  // Re-key a third of the elements (earlier and later), erase another third.
  for (size_t i = 1; i < timers.size(); i += 3) {
    timers[i].when = static_cast<int64_t>(Mix(i + 7) % 1000000);
    heap.Update(SlotFor(heap, &timers[i]));
  }
  for (size_t i = 0; i < timers.size(); i += 3) heap.Erase(&timers[i]);
  for (size_t i = 0; i < timers.size(); i += 3) EXPECT_FALSE(TypeParam::Contains(&timers[i]));
  int64_t last = -1;
  size_t popped = 0;
  while (!heap.empty()) {
    Timer* t = heap.Pop();
    EXPECT_GE(t->when, last);
    EXPECT_EQ(t->pos, kNotInHeap);
    last = t->when;
    ++popped;
  }
  EXPECT_EQ(popped, timers.size() - (timers.size() + 2) / 3);
  // Drained: the array's memory was given back.
  EXPECT_LT(heap.items().capacity(), full / 8);
}

TEST(IndexedHeapKeyTest, SlotOfReportsTheKeyOfAnyElement) {
  std::vector<Timer> timers(100);
  KeyedHeap heap;
  for (size_t i = 0; i < timers.size(); ++i) heap.Push({static_cast<int64_t>(Mix(i) % 1000), &timers[i]});
  for (size_t i = 0; i < timers.size(); ++i) EXPECT_EQ(heap.SlotOf(&timers[i]).key, static_cast<int64_t>(Mix(i) % 1000));
  heap.Update({-5, &timers[42]});
  EXPECT_EQ(heap.top(), &timers[42]);
  EXPECT_EQ(heap.top_slot().key, -5);
}

// Jobs with chosen ctimes (IDs break ties), owned by the test.
class TestJobs {
 public:
  ~TestJobs() {
    for (Job* job : jobs_) Job::Destroy(arena_, job);
  }
  Job* Make(uint64_t ctime) {
    Job* job = Job::Create(arena_, "q", "body");
    job->ctime = ctime;
    const uint64_t n = jobs_.size();
    std::memcpy(job->id.bytes.data() + 8, &n, sizeof n);
    jobs_.push_back(job);
    return job;
  }

 private:
  JobArena arena_;
  std::vector<Job*> jobs_;
};

std::vector<const Job*> Sorted(const std::set<Job*, JobQueueOrder>& model) { return {model.begin(), model.end()}; }

// Random pushes (mostly in order, some out of order), pops and erasures from anywhere,
// checked against a sorted set after every step; QPEEK from both ends along the way.
TEST(JobQueueTest, MatchesASortedModel) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    TestJobs arena;
    JobQueue queue;
    std::set<Job*, JobQueueOrder> model;
    std::vector<Job*> queued;  // the model's members, for picking one at random
    uint64_t clock = 1000;
    uint64_t r = seed;
    auto next = [&r] { return r = Mix(r); };
    for (int step = 0; step < 20000; ++step) {
      const uint64_t dice = next() % 100;
      if (dice < 50 || model.empty()) {
        // In order most of the time; sometimes an older ctime (a requeue), sometimes a tie.
        const uint64_t kind = next() % 10;
        const uint64_t ctime = kind < 7 ? ++clock : kind < 9 ? clock - next() % 500 : clock;
        Job* job = arena.Make(ctime);
        queue.Push(job);
        model.insert(job);
        queued.push_back(job);
      } else if (dice < 75) {
        Job* head = queue.Pop();
        ASSERT_EQ(head, *model.begin()) << "step " << step;
        EXPECT_FALSE(JobQueue::Contains(head));
        model.erase(model.begin());
        queued.erase(std::find(queued.begin(), queued.end(), head));
      } else {
        const size_t i = next() % queued.size();
        Job* job = queued[i];
        ASSERT_TRUE(JobQueue::Contains(job));
        queue.Erase(job);
        EXPECT_FALSE(JobQueue::Contains(job));
        model.erase(job);
        queued[i] = queued.back();
        queued.pop_back();
      }
      ASSERT_EQ(queue.size(), model.size());
      if (!model.empty()) {
        ASSERT_EQ(queue.top(), *model.begin()) << "step " << step;
      }
      if (step % 997 == 0) {
        const std::vector<const Job*> all = Sorted(model);
        std::vector<const Job*> head, tail;
        queue.Smallest(50, head);
        queue.Largest(50, tail);
        const size_t n = std::min<size_t>(50, all.size());
        EXPECT_EQ(head, std::vector<const Job*>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n)));
        EXPECT_EQ(tail, std::vector<const Job*>(all.rbegin(), all.rbegin() + static_cast<std::ptrdiff_t>(n)));
      }
    }
    queue.Clear();
    for (Job* job : queued) EXPECT_FALSE(JobQueue::Contains(job));
    EXPECT_TRUE(queue.empty());
  }
}

// Erasing most of a long run from the middle compacts it; the survivors keep their order
// and their positions stay valid for later erasures.
TEST(JobQueueTest, CompactsARunErasedFromTheMiddle) {
  TestJobs arena;
  JobQueue queue;
  std::vector<Job*> jobs;
  for (uint64_t i = 0; i < 10000; ++i) {
    jobs.push_back(arena.Make(i + 1));
    queue.Push(jobs.back());
  }
  for (size_t i = 1; i < jobs.size() - 1; ++i) {
    if (i % 10 != 0) queue.Erase(jobs[i]);
  }
  std::vector<const Job*> expected;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i % 10 == 0 || i == jobs.size() - 1) expected.push_back(jobs[i]);
  }
  ASSERT_EQ(queue.size(), expected.size());
  queue.Erase(jobs[5000]);
  expected.erase(std::find(expected.begin(), expected.end(), jobs[5000]));
  std::vector<const Job*> popped;
  while (!queue.empty()) popped.push_back(queue.Pop());
  EXPECT_EQ(popped, expected);
}

std::vector<uint32_t> Members(const NodeSet& set) { return {set.begin(), set.end()}; }

TEST(NodeSetTest, KeepsInsertionOrderInlineAndOnTheHeap) {
  NodeSet set;
  EXPECT_TRUE(set.empty());
  for (uint32_t n : {7u, 3u, 9u}) EXPECT_TRUE(set.Insert(n));
  EXPECT_FALSE(set.Insert(3));
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{7, 3, 9}));
  // Past three members the set moves to the heap (ASan checks the frees).
  for (uint32_t n = 100; n < 110; ++n) EXPECT_TRUE(set.Insert(n));
  EXPECT_EQ(set.size(), 13u);
  EXPECT_TRUE(set.Contains(105));
  EXPECT_TRUE(set.Erase(3));
  EXPECT_FALSE(set.Erase(3));
  EXPECT_EQ(Members(set)[1], 9u);

  NodeSet moved(std::move(set));
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(moved.size(), 12u);
  EXPECT_TRUE(moved.Contains(109));
  NodeSet small;
  small.Insert(1);
  small = std::move(moved);  // heap into inline
  EXPECT_EQ(small.size(), 12u);
  NodeSet inline_only;
  inline_only.Insert(4);
  inline_only.Insert(5);
  small = std::move(inline_only);  // inline into heap: the heap array is freed
  EXPECT_EQ(Members(small), (std::vector<uint32_t>{4, 5}));
  small.Clear();
  EXPECT_TRUE(small.empty());
  EXPECT_TRUE(small.Insert(6));
}

TEST(NodeSetTest, InlineFieldsHoldTwentyBitsAndErasureKeepsTheOrder) {
  NodeSet set;
  const uint32_t max_inline = (1u << 20) - 1;
  for (uint32_t n : {max_inline, 0u, 12345u}) EXPECT_TRUE(set.Insert(n));
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{max_inline, 0, 12345}));
  EXPECT_TRUE(set.Erase(max_inline));  // the first: the others move down
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{0, 12345}));
  EXPECT_TRUE(set.Insert(7));
  EXPECT_TRUE(set.Erase(12345));  // the middle
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{0, 7}));
  EXPECT_FALSE(set.Contains(12345));
  // An index that does not fit a field moves the set to the heap, members kept.
  EXPECT_TRUE(set.Insert(max_inline + 1));
  EXPECT_TRUE(set.Insert(UINT32_MAX - 1));
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{0, 7, max_inline + 1, UINT32_MAX - 1}));
  EXPECT_TRUE(set.Erase(0));
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{7, max_inline + 1, UINT32_MAX - 1}));
  EXPECT_TRUE(set.Contains(UINT32_MAX - 1));
  // Erasing down to nothing, then refilling.
  for (uint32_t n : {7u, max_inline + 1, UINT32_MAX - 1}) EXPECT_TRUE(set.Erase(n));
  EXPECT_TRUE(set.empty());
  EXPECT_TRUE(set.Insert(3));
  EXPECT_EQ(Members(set), (std::vector<uint32_t>{3}));
}


// ------------------------------------------------------------------ JobSchedule

// Wake-up times spread over ten days, the schedule rebased forward in steps (some keys
// fall behind the base) and once backward: every job keeps its time, or the base when
// that time is behind it, and the jobs pop in time order.
TEST(JobScheduleTest, KeepsEveryTimeAcrossRebases) {
  constexpr int64_t kBase = 1767225600000;
  constexpr int64_t kDay = int64_t{24} * 3600 * 1000;
  TestJobs jobs;
  JobSchedule schedule(kBase);
  std::vector<std::pair<Job*, int64_t>> wakes;
  for (uint64_t i = 0; i < 5000; ++i) {
    Job* job = jobs.Make(i);
    const int64_t wake = kBase + static_cast<int64_t>(Mix(i) % (10 * kDay));
    EXPECT_TRUE(schedule.Set(*job, wake));
    wakes.emplace_back(job, wake);
  }
  EXPECT_FALSE(schedule.Set(*wakes[7].first, wakes[7].second));  // the same key: no change
  int64_t base = kBase;
  for (int64_t to : {kBase + kDay / 2, kBase + 2 * kDay + 12345, kBase + kDay, kBase + 3 * kDay}) {
    EXPECT_EQ(schedule.NeedsRebase(to), to < base || to - base > JobSchedule::kRebaseAfterMs);
    schedule.Rebase(to);
    // Backward, the keys keep times from before: only a forward move loses what it passes.
    base = std::max(base, to);
    for (const auto& [job, wake] : wakes) {
      ASSERT_EQ(schedule.WakeOf(job), std::max(wake, base)) << to;
    }
    base = to;
  }
  int64_t last = INT64_MIN;
  while (!schedule.empty()) {
    const int64_t wake = schedule.top_wake_ms();
    EXPECT_GE(wake, last);
    last = wake;
    schedule.Erase(schedule.top());
  }
}

// A time more than kMaxKey ms after the base is clamped: the job wakes early, never
// late, and the clamped time survives a rebase (it is not pushed further out).
TEST(JobScheduleTest, AFarTimeIsClampedToTheKeyRange) {
  constexpr int64_t kBase = 1767225600000;
  TestJobs jobs;
  JobSchedule schedule(kBase);
  Job* far = jobs.Make(1);
  Job* near = jobs.Make(2);
  schedule.Set(*far, kBase + 100 * JobSchedule::kMaxKey);
  schedule.Set(*near, kBase + 1000);
  EXPECT_EQ(schedule.WakeOf(far), kBase + JobSchedule::kMaxKey);
  EXPECT_EQ(schedule.top(), near);
  schedule.Rebase(kBase + JobSchedule::kRebaseAfterMs);
  EXPECT_EQ(schedule.WakeOf(far), kBase + JobSchedule::kMaxKey);
  EXPECT_EQ(schedule.WakeOf(near), kBase + JobSchedule::kRebaseAfterMs);
  // Behind the base: due at the base.
  schedule.Set(*near, kBase);
  EXPECT_EQ(schedule.WakeOf(near), kBase + JobSchedule::kRebaseAfterMs);
  schedule.Clear();
  EXPECT_FALSE(JobSchedule::Contains(far));
}

// Handles name chunks both ways, small (in the job space) and big (through the table).
TEST(JobHandleTest, NamesEveryLiveJob) {
  TestJobs jobs;
  JobArena arena;
  std::vector<Job*> live;
  for (uint64_t i = 0; i < 1000; ++i) live.push_back(jobs.Make(i));
  Job* big = Job::Create(arena, "q", std::string(JobArena::kMaxSmall + 100, 'b'));
  Job* big2 = Job::Create(arena, "q", std::string(3 * JobArena::kMaxSmall, 'c'));
  live.push_back(big);
  live.push_back(big2);
  std::set<JobHandle> seen;
  for (Job* job : live) {
    const JobHandle h = HandleOf(job);
    EXPECT_NE(h, JobArena::kNoHandle);
    EXPECT_EQ(JobAt(h), job);
    seen.insert(h);
  }
  EXPECT_EQ(seen.size(), live.size());
  EXPECT_NE(HandleOf(big) & JobArena::kBigHandle, 0u);
  EXPECT_EQ(HandleOf(live[0]) & JobArena::kBigHandle, 0u);
  Job::Destroy(arena, big);
  // A freed big job's table entry is reused; the live one keeps its own.
  Job* big3 = Job::Create(arena, "q", std::string(JobArena::kMaxSmall + 1, 'd'));
  EXPECT_EQ(JobAt(HandleOf(big3)), big3);
  EXPECT_EQ(JobAt(HandleOf(big2)), big2);
  EXPECT_EQ(JobAt(HandleOf(big2))->body().size(), 3 * JobArena::kMaxSmall);
  Job::Destroy(arena, big2);
  Job::Destroy(arena, big3);
}

// The job index's storage: 32-bit handles in 6-byte slots, tags and displacements
// above them. Random inserts and erasures with many equal hashes (long probe runs,
// equal tags), checked against a set: lookups, ForEach and a full scan.
struct SharedHash {
  static uint64_t Hash(const Job& job) { return Mix(job.ctime % 5000); }
};
using JobTable = PointerTable<Job, SharedHash, JobHandleSlots>;

TEST(JobHandleTest, AnIndexOfHandlesMatchesASet) {
  TestJobs jobs;
  JobTable table;
  std::set<Job*> model;
  std::vector<Job*> all;
  uint64_t r = 11;
  auto next = [&r] { return r = Mix(r); };
  auto find = [&table](Job* job) {
    return table.Find(SharedHash::Hash(*job), [job](const Job& j) { return &j == job; });
  };
  for (int step = 0; step < 40000; ++step) {
    if (model.empty() || next() % 100 < 60) {
      Job* job = jobs.Make(static_cast<uint64_t>(step));
      table.Insert(job);
      model.insert(job);
      all.push_back(job);
    } else {
      Job* victim = all[next() % all.size()];
      EXPECT_EQ(table.Erase(victim), model.erase(victim) == 1) << step;
    }
    Job* probe = all[next() % all.size()];
    ASSERT_EQ(find(probe), model.count(probe) ? probe : nullptr) << step;
    if (step % 5000 == 4999) {
      std::set<Job*> seen;
      table.ForEach([&seen](Job* job) { seen.insert(job); });
      EXPECT_EQ(seen, model);
      std::vector<Job*> scanned;
      for (uint64_t cursor = 0; cursor != JobTable::kScanEnd;) {
        cursor = table.ScanBucket(cursor, [&scanned](Job* job) { scanned.push_back(job); });
      }
      EXPECT_EQ(scanned.size(), model.size());
      EXPECT_EQ(std::set<Job*>(scanned.begin(), scanned.end()), model);
    }
  }
  EXPECT_EQ(table.size(), model.size());
}

}  // namespace
}  // namespace disque::engine
