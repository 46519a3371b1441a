#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace disque::engine {

// The allocator of one engine's jobs (one shard: single-threaded like the engine).
//
// Why not malloc: a job is one allocation of header + queue name + body, and glibc adds
// an 8-byte header and rounds to 16 (a 198-byte job takes 208 bytes), and grows a thread
// arena one mprotect() call at a time (about 5,300 calls per 100k ADDJOBs here). This arena
// hands out chunks of exact 8-byte classes from 64 KB slabs carved out of large
// anonymous mappings, with no per-chunk header, and touches the kernel only to map a
// region or to give an empty slab's pages back.
//
// Layout:
// - Size classes: multiples of 8 up to 512 bytes, then 32 classes per doubling up to
//   kMaxSmall (at most 1/32 of a chunk is rounding). Bigger jobs use operator new.
//   A slab's tail that no whole chunk fits is lost: under 1 % for job-sized classes,
//   up to 12 % for the largest (7 chunks of 8 KB).
// - A slab is kSlabSize bytes, aligned to kSlabSize, holding chunks of one class after
//   its header, so the slab of a chunk is its address rounded down: Free needs no
//   lookup and chunks carry nothing but the job.
// - Regions of kRegionSize come from the process's job space (below), are made
//   writable (only touched pages count) and carved into slabs in address order. An
//   arena keeps its regions until it is destroyed; their pages go back earlier.
//
// Job handles: every chunk has a 32-bit name, its handle, so that the structures that
// list every job (the schedule, a queue's run) hold 4 bytes per job instead of an
// 8-byte pointer (docs/benchmarks.md, item 20). The process reserves one range of
// address space for every arena's regions (kSpaceBytes, PROT_NONE until a region is
// handed out), so a small chunk's handle is its offset in that range divided by 8 and
// decoding it is a shift and an add. A chunk above kMaxSmall comes from operator new
// with 8 bytes in front holding its index in a process-wide table of big chunks; its
// handle is kBigHandle | that index. Handle 0 is never a chunk (offset 0 is a slab
// header): kNoHandle.
// Limits: kSpaceBytes (16 GB, or less when the system refuses the reservation) of
// small chunks and kMaxBigChunks big ones per process; past them Allocate throws
// std::bad_alloc, as when memory runs out.
//
// Slab states (Slab::state):
// - kPartial: has live chunks and room; on its class's list, where allocation looks.
// - kFull: no room; on no list (a Free moves it back to kPartial).
// - kHot: empty, pages kept, on the hot list (up to kHotSlabs), reused first. Hot slabs
//   that no allocation needed between two ReleaseIdleSlabs calls go cold there.
// - going cold: empty, pages kept, listed in discard_ (up to kDiscardBatch), reused
//   before cold ones. When the batch is full, and at every ReleaseIdleSlabs, the batch
//   gives its pages back in one madvise per run of adjacent slabs and goes cold: each
//   madvise flushes the TLB of every thread of the process, which cost 8 % of the
//   server's CPU in the consume benchmark when each slab made its own call.
// - cold: empty, pages given back with MADV_DONTNEED, listed in cold_ (not through its
//   header, which would fault a page back in). Its header is not read until NewSlab
//   rewrites it.
// NewSlab populates a slab that has no pages (fresh or cold) with one
// MADV_POPULATE_WRITE instead of 16 page faults: a fault costs several times a page's
// share of that call here (docs/benchmarks.md, item 23).
// Invariant: a slab with live chunks is kPartial or kFull; an empty one is kHot, going
// cold or cold (the last Free of a slab moves it straight there, not to a per-class
// cache, so memory after the ACK of every job returns to the system: at once, or by
// the next ReleaseIdleSlabs for the up to 16 slabs of a batch going cold).
//
// Under AddressSanitizer free chunks and unused slab space are poisoned, so a use after
// free of a job is still reported.
using JobHandle = uint32_t;

class JobArena {
 public:
  static constexpr JobHandle kNoHandle = 0;
  static constexpr JobHandle kBigHandle = 0x8000'0000;
  static constexpr size_t kSpaceBytes = size_t{8} << 31;  // 2^31 handles of 8 bytes
  static constexpr size_t kMaxBigChunks = size_t{1} << 22;
  static constexpr size_t kSlabSize = size_t{64} << 10;
  static constexpr size_t kRegionSize = size_t{64} << 20;
  static constexpr size_t kMaxSmall = 8192;
  static constexpr size_t kHotSlabs = 8;
  static constexpr size_t kDiscardBatch = 16;

  JobArena();
  ~JobArena();  // unmaps every region: every job must be freed (or abandoned) by then
  JobArena(const JobArena&) = delete;
  JobArena& operator=(const JobArena&) = delete;

  // At least `size` bytes, 8-byte aligned. Throws std::bad_alloc when no memory can be
  // mapped, as operator new does.
  void* Allocate(size_t size);
  // `size` must be the one given to Allocate.
  void Free(void* p, size_t size);

  // The handle of a chunk Allocate returned and that is not freed, and back.
  static JobHandle HandleOf(const void* p) {
    const auto offset = static_cast<size_t>(static_cast<const char*>(p) - space_base_);
    if (offset < space_bytes_) [[likely]] return static_cast<JobHandle>(offset >> 3);
    uint32_t index;
    std::memcpy(&index, static_cast<const char*>(p) - kBigPrefix, sizeof index);
    return kBigHandle | index;
  }
  static void* At(JobHandle h) {
    if (!(h & kBigHandle)) [[likely]] return space_base_ + (size_t{h} << 3);
    return big_chunks_[h & ~kBigHandle];
  }

  // Gives back the pages of the hot slabs that stayed unused since the last call and of
  // the batch going cold (the engine's cron calls it), so an idle server keeps none.
  void ReleaseIdleSlabs();

  // Bytes of the chunks handed out and not freed (class sizes; jobs above kMaxSmall
  // are malloc's and not counted here).
  size_t live_bytes() const { return live_bytes_; }
  // Bytes of the slabs that hold chunks (free chunks inside them included).
  size_t slab_bytes() const { return slabs_in_use_ * kSlabSize; }
  // used_memory's share: live bytes summed over every arena of the process, as of each
  // arena's last Publish (the engine's cron calls it), so that the hot path updates a
  // plain counter, not a shared atomic.
  void Publish();
  static uint64_t ProcessLiveBytes();
  size_t hot_slabs() const { return hot_.size; }

  // The class of `size` (1..kMaxSmall) and its chunk size; exposed for tests.
  static size_t ClassOf(size_t size);
  static size_t ClassSize(size_t cls);
  static constexpr size_t kClasses = 64 + 4 * 32;

 private:
  enum class SlabState : uint8_t { kPartial, kFull, kHot };

  // The header at the start of each slab.
  struct Slab {
    Slab* prev;      // neighbours on the list its state puts it on (class or hot)
    Slab* next;
    void* free;      // freed chunks, linked through their first word
    uint32_t bump;   // offset of the first chunk never handed out
    uint32_t live;   // chunks handed out and not freed
    uint32_t chunk;  // chunk size of its class
    uint16_t cls;
    SlabState state;
  };
  // A list of slabs through Slab::prev/next.
  struct SlabList {
    Slab* head = nullptr;
    size_t size = 0;
    void Push(Slab* s);
    void Remove(Slab* s);
    Slab* Pop();
  };

  static constexpr uint32_t kFirstChunk = 64;  // the header, rounded to a cache line
  static constexpr size_t kBigPrefix = 8;      // a big chunk's table index, 8-aligned
  static_assert(sizeof(Slab) <= kFirstChunk);

  static void ReserveSpace();
  void* AllocateBig(size_t size);
  void FreeBig(void* p);
  Slab* NewSlab(size_t cls);
  void ReleaseSlab(Slab* s);
  void GoCold(Slab* s);
  void Discard();
  void MapRegion();
  static Slab* SlabOf(void* p) {
    return reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{kSlabSize} - 1));
  }

  std::array<SlabList, kClasses> partial_;  // kPartial slabs by class
  SlabList hot_;
  size_t hot_low_water_ = 0;     // fewest hot slabs since the last ReleaseIdleSlabs
  std::array<Slab*, kDiscardBatch> discard_;  // going cold: the first discarding_
  size_t discarding_ = 0;
  std::vector<Slab*> cold_;
  // The job space, set once by the first arena of the process; big_chunks_[i] is the
  // big chunk whose prefix holds i (written only by the arena that owns it).
  static inline char* space_base_ = nullptr;
  static inline size_t space_bytes_ = 0;
  static inline void** big_chunks_ = nullptr;

  std::vector<char*> regions_;   // this arena's regions of the job space
  char* carve_ = nullptr;        // next never-used slab of the last region
  char* carve_end_ = nullptr;
  size_t slabs_in_use_ = 0;      // kPartial + kFull
  size_t live_bytes_ = 0;
  size_t published_bytes_ = 0;   // this arena's part of the process total
};

}  // namespace disque::engine
