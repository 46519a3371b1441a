#include "disque/engine/job_arena.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace disque::engine {
namespace {

TEST(JobArenaTest, EverySizeGetsTheSmallestClassThatHoldsIt) {
  size_t last_class = 0;
  for (size_t n = 1; n <= JobArena::kMaxSmall; ++n) {
    const size_t cls = JobArena::ClassOf(n);
    ASSERT_LT(cls, JobArena::kClasses) << n;
    const size_t chunk = JobArena::ClassSize(cls);
    ASSERT_GE(chunk, n) << n;
    ASSERT_EQ(chunk % 8, 0u) << n;
    if (cls > 0) {
      ASSERT_LT(JobArena::ClassSize(cls - 1), n) << n;
    }
    // Rounding costs at most 7 bytes or 1/32 of the size.
    ASSERT_LE(chunk - n, std::max<size_t>(7, n / 32)) << n;
    ASSERT_GE(cls, last_class) << n;
    last_class = cls;
  }
  EXPECT_EQ(JobArena::ClassOf(JobArena::kMaxSmall), JobArena::kClasses - 1);
  EXPECT_EQ(JobArena::ClassSize(JobArena::kClasses - 1), JobArena::kMaxSmall);
}

// Random allocations and frees of random sizes, each chunk filled with a pattern of its
// own: an overlap between two live chunks, or a chunk handed out twice, breaks a pattern.
TEST(JobArenaTest, LiveChunksNeverOverlapAndSlabsGoWhenEmpty) {
  struct Live {
    unsigned char* p;
    size_t size;
    unsigned char fill;
  };
  JobArena arena;
  const uint64_t process_before = JobArena::ProcessLiveBytes();
  size_t live_bytes = 0;  // class sizes of the live small chunks
  std::mt19937_64 rng(7);
  std::vector<Live> live;
  auto check_and_free = [&](size_t i) {
    const Live l = live[i];
    for (size_t b = 0; b < l.size; ++b) ASSERT_EQ(l.p[b], l.fill) << "chunk " << i << " byte " << b;
    arena.Free(l.p, l.size);
    if (l.size <= JobArena::kMaxSmall) live_bytes -= JobArena::ClassSize(JobArena::ClassOf(l.size));
    live[i] = live.back();
    live.pop_back();
  };
  for (int step = 0; step < 60000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
      // Mostly job-like sizes, some up to the largest class, a few above it.
      const uint64_t r = rng() % 100;
      const size_t size = r < 80 ? 96 + rng() % 300 : r < 98 ? 1 + rng() % JobArena::kMaxSmall
                                                               : JobArena::kMaxSmall + 1 + rng() % 10000;
      auto* p = static_cast<unsigned char*>(arena.Allocate(size));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
      const auto fill = static_cast<unsigned char>(rng());
      std::memset(p, fill, size);
      live.push_back({p, size, fill});
      if (size <= JobArena::kMaxSmall) live_bytes += JobArena::ClassSize(JobArena::ClassOf(size));
      ASSERT_EQ(arena.live_bytes(), live_bytes);
    } else {
      check_and_free(rng() % live.size());
    }
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(arena.slab_bytes(), arena.live_bytes());
  EXPECT_EQ(JobArena::ProcessLiveBytes(), process_before) << "not published yet";
  arena.Publish();
  EXPECT_EQ(JobArena::ProcessLiveBytes() - process_before, arena.live_bytes());
  while (!live.empty()) {
    check_and_free(live.size() - 1);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(arena.slab_bytes(), 0u);
  EXPECT_EQ(arena.live_bytes(), 0u);
  arena.Publish();  // a fall in use is published too
  EXPECT_EQ(JobArena::ProcessLiveBytes(), process_before);
}

TEST(JobArenaTest, AFreedChunkIsTheNextOneOfItsClass) {
  JobArena arena;
  void* a = arena.Allocate(200);
  void* b = arena.Allocate(200);
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 200);
  arena.Free(a, 200);
  EXPECT_EQ(arena.Allocate(197), a);  // same class of 200 bytes
  void* other = arena.Allocate(208);  // another class, another slab
  EXPECT_NE(reinterpret_cast<uintptr_t>(other) / JobArena::kSlabSize,
            reinterpret_cast<uintptr_t>(a) / JobArena::kSlabSize);
  EXPECT_EQ(arena.slab_bytes(), 2 * JobArena::kSlabSize);
  arena.Free(a, 200);
  arena.Free(b, 200);
  arena.Free(other, 208);
  EXPECT_EQ(arena.slab_bytes(), 0u);
}

TEST(JobArenaTest, ChunksAboveTheLargestClassUseOperatorNew) {
  JobArena arena;
  void* p = arena.Allocate(JobArena::kMaxSmall + 1);
  std::memset(p, 1, JobArena::kMaxSmall + 1);
  EXPECT_EQ(arena.slab_bytes(), 0u);
  arena.Free(p, JobArena::kMaxSmall + 1);
}

// Fills two full regions (slabs in every state, a second mapping), frees everything in
// an order unrelated to allocation, then reuses the cold slabs.
TEST(JobArenaTest, SlabsAreReusedAfterBeingEmptied) {
  JobArena arena;
  const size_t per_slab = (JobArena::kSlabSize - 64) / 200;
  const size_t n = 2 * (JobArena::kRegionSize / JobArena::kSlabSize) * per_slab;
  std::vector<void*> chunks(n);
  for (auto& c : chunks) c = arena.Allocate(200);
  EXPECT_EQ(arena.slab_bytes(), 2 * JobArena::kRegionSize);
  std::shuffle(chunks.begin(), chunks.end(), std::mt19937_64(3));
  for (void* c : chunks) arena.Free(c, 200);
  EXPECT_EQ(arena.slab_bytes(), 0u);
  // All of them again: the emptied slabs come back, no third region is needed.
  for (auto& c : chunks) c = arena.Allocate(200);
  EXPECT_EQ(arena.slab_bytes(), 2 * JobArena::kRegionSize);
  for (void* c : chunks) std::memset(c, 0xab, 200);
  for (void* c : chunks) arena.Free(c, 200);
  EXPECT_EQ(arena.slab_bytes(), 0u);
}

TEST(JobArenaTest, HotSlabsGoColdAfterACronPeriodWithoutUse) {
  JobArena arena;
  const size_t per_slab = (JobArena::kSlabSize - 64) / 512;
  std::vector<void*> chunks(3 * per_slab);
  for (auto& c : chunks) c = arena.Allocate(512);
  for (void* c : chunks) arena.Free(c, 512);
  EXPECT_EQ(arena.hot_slabs(), 3u);
  arena.ReleaseIdleSlabs();  // the three were made hot in this period
  EXPECT_EQ(arena.hot_slabs(), 3u);
  void* p = arena.Allocate(512);  // takes one: two stayed unused
  arena.ReleaseIdleSlabs();
  EXPECT_EQ(arena.hot_slabs(), 0u);
  arena.Free(p, 512);
  EXPECT_EQ(arena.hot_slabs(), 1u);
  arena.ReleaseIdleSlabs();
  arena.ReleaseIdleSlabs();
  EXPECT_EQ(arena.hot_slabs(), 0u);
  // Cold slabs are reused like any other.
  for (auto& c : chunks) c = arena.Allocate(512);
  EXPECT_EQ(arena.slab_bytes(), 3 * JobArena::kSlabSize);
  for (void* c : chunks) arena.Free(c, 512);
}

// Pages of the slab holding `p` that are resident.
size_t ResidentPagesOfSlab(void* p) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t slab = reinterpret_cast<uintptr_t>(p) & ~(JobArena::kSlabSize - 1);
  std::vector<unsigned char> in(JobArena::kSlabSize / page);
  if (mincore(reinterpret_cast<void*>(slab), JobArena::kSlabSize, in.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

// A slab without pages gets them all at once (one MADV_POPULATE_WRITE, not a fault per
// page), and emptied slabs beyond the hot ones give their pages back in batches: by the
// first cron at the latest, while the last ones emptied stay hot until a cron period
// passes without use.
TEST(JobArenaTest, SlabsArePopulatedWholeAndEmptiedOnesGiveTheirPagesBack) {
  const size_t pages = JobArena::kSlabSize / static_cast<size_t>(sysconf(_SC_PAGESIZE));
  JobArena arena;
  const size_t per_slab = (JobArena::kSlabSize - 64) / 512;
  const size_t slabs = JobArena::kHotSlabs + JobArena::kDiscardBatch + 5;
  std::vector<void*> chunks(slabs * per_slab);
  for (auto& c : chunks) c = arena.Allocate(512);
  if (ResidentPagesOfSlab(chunks[0]) != pages) GTEST_SKIP() << "no MADV_POPULATE_WRITE here";
  for (size_t i = 0; i < slabs; ++i) {
    EXPECT_EQ(ResidentPagesOfSlab(chunks[i * per_slab]), pages) << i;
  }
  for (void* c : chunks) arena.Free(c, 512);
  // The first kDiscardBatch slabs beyond the hot ones went in one batch; 5 wait.
  size_t resident = 0;
  for (size_t i = 0; i < slabs; ++i) resident += ResidentPagesOfSlab(chunks[i * per_slab]) == pages;
  EXPECT_EQ(resident, JobArena::kHotSlabs + 5);
  arena.ReleaseIdleSlabs();
  resident = 0;
  for (size_t i = 0; i < slabs; ++i) resident += ResidentPagesOfSlab(chunks[i * per_slab]) == pages;
  EXPECT_EQ(resident, JobArena::kHotSlabs);
  arena.ReleaseIdleSlabs();
  for (size_t i = 0; i < slabs; ++i) EXPECT_EQ(ResidentPagesOfSlab(chunks[i * per_slab]), 0u) << i;
  // Reused cold slabs are populated again.
  void* p = arena.Allocate(512);
  EXPECT_EQ(ResidentPagesOfSlab(p), pages);
  arena.Free(p, 512);
}

// An arena's regions go back to the process's job space when it is destroyed: more
// arenas than the space has regions, one after another, each taking a region.
TEST(JobArenaTest, RegionsOfADestroyedArenaAreReused) {
  const size_t regions = JobArena::kSpaceBytes / JobArena::kRegionSize;
  for (size_t i = 0; i < regions + 4; ++i) {
    JobArena arena;
    void* p = arena.Allocate(100);
    std::memset(p, 1, 100);
    ASSERT_EQ(JobArena::At(JobArena::HandleOf(p)), p) << i;
    ASSERT_EQ(arena.slab_bytes(), JobArena::kSlabSize);
    arena.Free(p, 100);
  }
}

#if defined(__SANITIZE_ADDRESS__)
// Free chunks are poisoned, so AddressSanitizer still catches a job used after it went.
TEST(JobArenaDeathTest, AReadOfAFreedChunkIsReported) {
  JobArena arena;
  auto* p = static_cast<volatile char*>(arena.Allocate(100));
  p[0] = 1;
  arena.Free(const_cast<char*>(p), 100);
  EXPECT_DEATH({ (void)p[50]; }, "use-after-poison");
  // Never handed out: the rest of the slab is poisoned too.
  EXPECT_DEATH({ (void)p[200]; }, "use-after-poison");
}
#endif

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
size_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long long size = 0, resident = 0;
  if (f == nullptr || std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  if (f != nullptr) std::fclose(f);
  return resident * 4096;
}

// The pages of emptied slabs go back to the system (all but kHotSlabs of them and a
// batch still going cold, under kDiscardBatch).
TEST(JobArenaTest, EmptiedSlabsGiveTheirPagesBack) {
  JobArena arena;
  const size_t bytes = size_t{128} << 20;
  std::vector<void*> chunks(bytes / 256);
  const size_t before = ResidentBytes();
  for (auto& c : chunks) {
    c = arena.Allocate(256);
    std::memset(c, 1, 256);
  }
  const size_t full = ResidentBytes();
  ASSERT_GT(full, before + bytes * 9 / 10);
  for (void* c : chunks) arena.Free(c, 256);
  const size_t after = ResidentBytes();
  EXPECT_LT(after, before + JobArena::kHotSlabs * JobArena::kSlabSize + (size_t{4} << 20));
}
#endif

}  // namespace
}  // namespace disque::engine
