#include "disque/engine/job_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <new>

#include "disque/common/sanitizers.h"

#ifdef DISQUE_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace disque::engine {
namespace {

// Live bytes across the process's arenas (one per shard) as last published, for
// used_memory.
std::atomic<uint64_t> process_live_bytes{0};

// Indexes handed out and given back: the last one given back first, else the next
// never used, below a limit. Give cannot throw: Take reserves room for every index it
// hands out.
struct IndexPool {
  std::vector<uint32_t> free;
  uint32_t next = 0;  // every index below it was handed out once

  bool Take(size_t limit, uint32_t& index) {
    if (!free.empty()) {
      index = free.back();
      free.pop_back();
      return true;
    }
    if (next >= limit) return false;
    free.reserve(next + 1);
    index = next++;
    return true;
  }
  void Give(uint32_t index) { free.push_back(index); }
};

// The job space's bookkeeping, shared by the arenas of every shard (they take and give
// back regions and big-chunk indexes rarely: a region holds 64 MB of jobs, and a big
// chunk already costs a trip through operator new).
struct Space {
  std::mutex mu;
  IndexPool regions;  // of the job space, kRegionSize each
  IndexPool big;      // of big_chunks_
};

Space& TheSpace() {
  static Space space;
  return space;
}

std::once_flag space_once;

void* MapAnonymous(size_t len, int prot) {
  void* p = mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

// Reserves the job space: as much of kSpaceBytes as the system grants (an address-space
// limit may refuse 16 GB), aligned to kSlabSize so that offset 0 starts a region.
void JobArena::ReserveSpace() {
  big_chunks_ = static_cast<void**>(MapAnonymous(kMaxBigChunks * sizeof(void*), PROT_READ | PROT_WRITE));
  if (big_chunks_ == nullptr) return;  // every Allocate will throw
  for (size_t bytes = kSpaceBytes; bytes >= kRegionSize; bytes /= 2) {
    void* raw = MapAnonymous(bytes + kSlabSize, PROT_NONE);
    if (raw == nullptr) continue;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + kSlabSize - 1) & ~(uintptr_t{kSlabSize} - 1);
    space_base_ = reinterpret_cast<char*>(aligned);
    space_bytes_ = bytes;
    return;
  }
}

size_t JobArena::ClassOf(size_t size) {
  if (size <= 512) return size == 0 ? 0 : (size + 7) / 8 - 1;
  // 2^k < size <= 2^(k+1), k >= 9: 32 classes of 2^(k-5) bytes each.
  const int k = static_cast<int>(std::bit_width(size - 1)) - 1;
  const size_t step = size_t{1} << (k - 5);
  return 64 + static_cast<size_t>(k - 9) * 32 + (size - (size_t{1} << k) + step - 1) / step - 1;
}

size_t JobArena::ClassSize(size_t cls) {
  if (cls < 64) return (cls + 1) * 8;
  const size_t k = 9 + (cls - 64) / 32;
  return (size_t{1} << k) + ((cls - 64) % 32 + 1) * (size_t{1} << (k - 5));
}

uint64_t JobArena::ProcessLiveBytes() { return process_live_bytes.load(std::memory_order_relaxed); }

void JobArena::Publish() {
  // Unsigned wrap-around makes a fall in use come out right in the sum.
  process_live_bytes.fetch_add(live_bytes_ - published_bytes_, std::memory_order_relaxed);
  published_bytes_ = live_bytes_;
}

void JobArena::SlabList::Push(Slab* s) {
  s->prev = nullptr;
  s->next = head;
  if (head != nullptr) head->prev = s;
  head = s;
  ++size;
}

void JobArena::SlabList::Remove(Slab* s) {
  if (s->prev != nullptr) s->prev->next = s->next;
  else head = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  --size;
}

JobArena::Slab* JobArena::SlabList::Pop() {
  Slab* s = head;
  if (s != nullptr) Remove(s);
  return s;
}

JobArena::JobArena() { std::call_once(space_once, ReserveSpace); }

JobArena::~JobArena() {
  process_live_bytes.fetch_sub(published_bytes_, std::memory_order_relaxed);
  Space& space = TheSpace();
  for (char* region : regions_) {
    ARENA_UNPOISON(region, kRegionSize);
    // A fresh inaccessible mapping in its place drops the pages and the access.
    mmap(region, kRegionSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    const std::lock_guard lock(space.mu);
    space.regions.Give(static_cast<uint32_t>((region - space_base_) / kRegionSize));
  }
}

void* JobArena::AllocateBig(size_t size) {
  Space& space = TheSpace();
  uint32_t index;
  {
    const std::lock_guard lock(space.mu);
    if (!space.big.Take(big_chunks_ != nullptr ? kMaxBigChunks : 0, index)) throw std::bad_alloc();
  }
  char* raw;
  try {
    raw = static_cast<char*>(::operator new(kBigPrefix + size));
  } catch (...) {
    const std::lock_guard lock(space.mu);
    space.big.Give(index);
    throw;
  }
  std::memcpy(raw, &index, sizeof index);
  big_chunks_[index] = raw + kBigPrefix;
  return raw + kBigPrefix;
}

void JobArena::FreeBig(void* p) {
  char* raw = static_cast<char*>(p) - kBigPrefix;
  uint32_t index;
  std::memcpy(&index, raw, sizeof index);
  big_chunks_[index] = nullptr;
  ::operator delete(raw);
  Space& space = TheSpace();
  const std::lock_guard lock(space.mu);
  space.big.Give(index);
}

void* JobArena::Allocate(size_t size) {
  if (size > kMaxSmall) return AllocateBig(size);
  const size_t cls = ClassOf(size);
  Slab* s = partial_[cls].head;
  if (s == nullptr) s = NewSlab(cls);
  char* p;
  if (s->free != nullptr) {
    p = static_cast<char*>(s->free);
    ARENA_UNPOISON(p, s->chunk);
    std::memcpy(&s->free, p, sizeof s->free);
  } else {
    p = reinterpret_cast<char*>(s) + s->bump;
    ARENA_UNPOISON(p, s->chunk);
    s->bump += s->chunk;
  }
  ++s->live;
  live_bytes_ += s->chunk;
  if (s->free == nullptr && s->bump + s->chunk > kSlabSize) {
    partial_[cls].Remove(s);
    s->state = SlabState::kFull;
  }
  return p;
}

void JobArena::Free(void* p, size_t size) {
  if (size > kMaxSmall) {
    FreeBig(p);
    return;
  }
  Slab* s = SlabOf(p);
  std::memcpy(p, &s->free, sizeof s->free);
  s->free = p;
  ARENA_POISON(p, s->chunk);
  live_bytes_ -= s->chunk;
  if (--s->live == 0) {
    if (s->state == SlabState::kPartial) partial_[s->cls].Remove(s);
    ReleaseSlab(s);
  } else if (s->state == SlabState::kFull) {
    s->state = SlabState::kPartial;
    partial_[s->cls].Push(s);
  }
}

JobArena::Slab* JobArena::NewSlab(size_t cls) {
  Slab* s = hot_.Pop();
  hot_low_water_ = std::min(hot_low_water_, hot_.size);
  if (s == nullptr && discarding_ > 0) s = discard_[--discarding_];
  if (s == nullptr) {
    if (!cold_.empty()) {
      s = cold_.back();
      cold_.pop_back();
    } else {
      if (carve_ == carve_end_) MapRegion();
      s = reinterpret_cast<Slab*>(carve_);
      carve_ += kSlabSize;
    }
    // Without pages: fault them all in with one call. Kernels before 5.14 refuse the
    // advice (EINVAL) and the pages fault in one by one as before.
    madvise(s, kSlabSize, MADV_POPULATE_WRITE);
  }
  ARENA_UNPOISON(s, sizeof(Slab));
  s->free = nullptr;
  s->bump = kFirstChunk;
  s->live = 0;
  s->chunk = static_cast<uint32_t>(ClassSize(cls));
  s->cls = static_cast<uint16_t>(cls);
  s->state = SlabState::kPartial;
  partial_[cls].Push(s);
  ++slabs_in_use_;
  return s;
}

// An empty slab is kept hot for the next NewSlab (a queue that fills and drains reuses
// it without a system call), or its pages go back to the system.
void JobArena::ReleaseSlab(Slab* s) {
  --slabs_in_use_;
  ARENA_POISON(reinterpret_cast<char*>(s) + kFirstChunk, kSlabSize - kFirstChunk);
  if (hot_.size < kHotSlabs) {
    s->state = SlabState::kHot;
    hot_.Push(s);
    return;
  }
  GoCold(s);
}

// Cold slabs are listed outside themselves: a header write would fault a page back in.
void JobArena::GoCold(Slab* s) {
  discard_[discarding_++] = s;
  if (discarding_ == kDiscardBatch) Discard();
}

void JobArena::Discard() {
  std::sort(discard_.begin(), discard_.begin() + discarding_);
  for (size_t i = 0; i < discarding_;) {
    auto* run = reinterpret_cast<char*>(discard_[i]);
    size_t j = i + 1;
    while (j < discarding_ && reinterpret_cast<char*>(discard_[j]) == run + (j - i) * kSlabSize) ++j;
    madvise(run, (j - i) * kSlabSize, MADV_DONTNEED);
    i = j;
  }
  cold_.insert(cold_.end(), discard_.begin(), discard_.begin() + discarding_);
  discarding_ = 0;
}

void JobArena::ReleaseIdleSlabs() {
  // The slabs at the tail of the hot list are the ones pushed longest ago.
  for (size_t n = std::min(hot_low_water_, hot_.size); n > 0; --n) {
    Slab* s = hot_.head;
    while (s->next != nullptr) s = s->next;
    hot_.Remove(s);
    GoCold(s);
  }
  hot_low_water_ = hot_.size;
  Discard();
}

void JobArena::MapRegion() {
  // Free must not throw (it runs in destructors): cold_ gets room now for every slab
  // there will be, and regions_ room before a region it could lose.
  constexpr size_t kSlabsPerRegion = kRegionSize / kSlabSize;
  regions_.reserve(regions_.size() + 1);
  cold_.reserve((regions_.size() + 1) * kSlabsPerRegion);
  Space& space = TheSpace();
  uint32_t index;
  {
    const std::lock_guard lock(space.mu);
    if (!space.regions.Take(space_bytes_ / kRegionSize, index)) throw std::bad_alloc();
  }
  char* region = space_base_ + size_t{index} * kRegionSize;
  if (mprotect(region, kRegionSize, PROT_READ | PROT_WRITE) != 0) {
    const std::lock_guard lock(space.mu);
    space.regions.Give(index);
    throw std::bad_alloc();
  }
  // Huge pages would make one touched job cost 2 MB of RSS and split on every discard.
  madvise(region, kRegionSize, MADV_NOHUGEPAGE);
  ARENA_POISON(region, kRegionSize);
  regions_.push_back(region);
  carve_ = region;
  carve_end_ = region + kRegionSize;
}

}  // namespace disque::engine
