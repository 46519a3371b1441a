#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "disque/common/page_memory.h"

namespace disque::engine {

// GCC and Clang's 128-bit integer (__extension__: -Wpedantic knows it is not ISO C++).
__extension__ typedef unsigned __int128 Uint128;

// An open-addressing hash set of pointers (linear probing, backward-shift deletion, so
// there are no tombstones). `Traits::Hash(const T&)` gives an element's 64-bit hash,
// which must be well mixed (random ID bits, or a keyed hash of a name). The home slot is
// the top bits of the hash scaled to the table's size (a multiplication, so the size
// need not be a power of two), so the table is ordered by hash except inside a probe
// run; that is what makes the scan cursor below exact across resizes.
//
// The table grows by half when it would pass 3/4 full, so while it grows it is 1/2 to
// 3/4 full: 10.7 to 16 bytes per element, 13 on average, where doubling (3/8 to 3/4)
// averaged 15. Below 1/16 full it shrinks to half full in one step: a drain rehashes
// 1/16 of the table, then 1/128, ..., where halving below 1/8 rehashed a quarter of it
// in all and wrote a new array at every halving (the consume benchmark spent 5 % of its
// instructions there, docs/benchmarks.md item 23). The index of every job is one of
// these.
//
// Scan cursors (QSCAN, JSCAN) are positions in a 54-bit key space (hash >> 10), not slot
// numbers: ScanBucket(cursor) reports every element whose key lies in [cursor, end of
// cursor's home bucket) and returns that end. Successive calls cover the key space
// without gaps or overlaps whatever resizes happen in between, so an element present
// for the whole iteration is reported exactly once.
//
// Each slot holds a reference to the element in its low bits (Storage::kRefBits: a
// pointer's low 48 bits, or a 32-bit job handle), then the element's displacement (how
// far past its home slot it sits, 8 bits, 255 meaning 255 or more), then 8 bits of its
// hash (the low bits, which the home slot does not use) on top. Both exist so that the
// jobs, which at a million are cache misses, are not read needlessly:
// - A probe compares the tag before it dereferences anything, so a lookup reads one
//   element, not every element of its probe run (comparing IDs along the run was 12 %
//   of ADDJOB's CPU time); 1 slot in 256 passes the tag by chance.
// - An erase's backward shift decides from the displacements which later elements move
//   into the hole; reading each one's hash to find its home was 9 % of the consume
//   benchmark's CPU time. A saturated displacement is computed from the hash instead.
// Linux gives user-space pointers below 2^47 on x86-64 and AArch64; a reference that
// does not fit turns tags and displacements off for good (`tagged_`), which costs
// speed, not correctness (handles always fit).
//
// Storage: how a slot names its element and how wide it is.
// - PointerSlots: any element; 8-byte slots holding the pointer.
// - JobHandleSlots (job.h): jobs of a JobArena; 6-byte slots holding the job's 32-bit
//   handle, so the index of a million jobs takes 8.1 MB instead of 10.8
//   (docs/benchmarks.md item 20). A 6-byte slot is read with one unaligned 8-byte load
//   (the array has 8 bytes of padding at its end) and written with a 6-byte copy.
struct PointerSlots {
  static constexpr int kRefBits = 48;
  static constexpr size_t kBytes = 8;
  template <typename T>
  static uint64_t Ref(const T* item) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(item)); }
  template <typename T>
  static T* Item(uint64_t ref) { return reinterpret_cast<T*>(static_cast<uintptr_t>(ref)); }
};

// An array of n slots of kBytes (6 or 8) bytes, zero-filled; slot values are below
// 2^(8 * kBytes). A large one is pages of its own (BigArrayAllocator).
template <size_t kBytes>
class SlotArray {
 public:
  static_assert(kBytes == 6 || kBytes == 8);
  explicit SlotArray(size_t n = 0) : n_(n), bytes_(Allocator().allocate_zeroed(Bytes(n))) {}
  ~SlotArray() { Allocator().deallocate(bytes_, Bytes(n_)); }
  SlotArray(const SlotArray&) = delete;
  SlotArray& operator=(const SlotArray&) = delete;

  size_t size() const { return n_; }
  uint64_t operator[](size_t i) const {
    uint64_t v;
    std::memcpy(&v, bytes_ + i * kBytes, sizeof v);
    return kBytes == 8 ? v : v & kMask;
  }
  void Set(size_t i, uint64_t v) { std::memcpy(bytes_ + i * kBytes, &v, kBytes); }
  const void* Address(size_t i) const { return bytes_ + i * kBytes; }
  void swap(SlotArray& other) noexcept {
    std::swap(n_, other.n_);
    std::swap(bytes_, other.bytes_);
  }

 private:
  using Allocator = BigArrayAllocator<unsigned char>;
  static constexpr size_t kPadding = kBytes == 8 ? 0 : 8 - kBytes;
  static constexpr uint64_t kMask = (uint64_t{1} << (8 * (kBytes % 8))) - 1;
  static size_t Bytes(size_t n) { return n * kBytes + kPadding; }
  size_t n_;
  unsigned char* bytes_;
};

template <typename T, typename Traits, typename Storage = PointerSlots>
class PointerTable {
 public:
  static constexpr int kKeyBits = 54;
  static constexpr uint64_t kScanEnd = uint64_t{1} << kKeyBits;

  PointerTable() : slots_(kMinSlots) {}

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  template <typename Match>
  T* Find(uint64_t hash, Match&& match) const {
    const uint64_t tag = Tag(hash);
    for (size_t i = Home(hash);; i = Next(i)) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return nullptr;
      if ((slot & kHashTagMask) != tag && tagged_) continue;
      T* item = Pointer(slot);
      if (match(*item)) return item;
    }
  }

  // Prefetching for a batch of lookups (Engine::Prefetch): first PrefetchHome for each
  // hash, then Candidate for each, which reads the home slot and returns the first
  // element of the probe run whose tag matches (most likely the one Find would return;
  // nullptr if none).
  void PrefetchHome(uint64_t hash) const { __builtin_prefetch(slots_.Address(Home(hash))); }
  T* Candidate(uint64_t hash) const {
    const uint64_t tag = Tag(hash);
    for (size_t i = Home(hash);; i = Next(i)) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return nullptr;
      if ((slot & kHashTagMask) == tag || !tagged_) return Pointer(slot);
    }
  }

  // The caller guarantees `item` is not in the table.
  void Insert(T* item) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Resize(slots_.size() + slots_.size() / 2);
    if (tagged_ && (Storage::Ref(item) & kTagMask) != 0) DropTags();
    Place(item);
    ++size_;
  }

  // Removes `item` (by identity); false if it is not in the table.
  bool Erase(const T* item) {
    size_t i = Home(Traits::Hash(*item));
    while (Pointer(slots_[i]) != item) {
      if (slots_[i] == 0) return false;
      i = Next(i);
    }
    // Backward shift: move later members of the probe run into the hole when the hole
    // lies between their home and their slot.
    size_t j = i;
    while (true) {
      j = Next(j);
      const uint64_t next = slots_[j];
      if (next == 0) break;
      const size_t displacement = DisplacementOf(next, j);
      const size_t gap = Distance(i, j);
      if (displacement >= gap) {
        slots_.Set(i, WithDisplacement(next, displacement - gap));
        i = j;
      }
    }
    slots_.Set(i, 0);
    --size_;
    if (slots_.size() > kMinSlots && size_ * 16 < slots_.size()) {
      // Shrinking is optional: without memory for the smaller array (Resize changes
      // nothing then) the table stays as it is, and the erase, done, stands.
      try {
        Resize(std::max(kMinSlots, size_ * 2));
      } catch (const std::bad_alloc&) {
      }
    }
    return true;
  }

  // Some element, chosen by `random` (roughly uniform); nullptr when empty.
  T* Random(uint64_t random) const {
    if (size_ == 0) return nullptr;
    for (size_t i = Scale(random, 64);; i = Next(i)) {
      if (slots_[i] != 0) return Pointer(slots_[i]);
    }
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const uint64_t slot = slots_[i];
      if (slot != 0) fn(Pointer(slot));
    }
  }

  // See the class comment. `cursor` < kScanEnd; returns the next cursor (kScanEnd when
  // the whole key space has been covered). `fn` must not modify the table.
  template <typename Fn>
  uint64_t ScanBucket(uint64_t cursor, Fn&& fn) const {
    const size_t bucket = Scale(cursor, kKeyBits);
    // The first key whose home is past `bucket`: ceil((bucket + 1) * 2^kKeyBits / slots).
    const auto end = static_cast<uint64_t>(((static_cast<Uint128>(bucket + 1) << kKeyBits) + slots_.size() - 1) /
                                           slots_.size());
    // Every element whose home is `bucket` sits between that home and the first empty
    // slot at or after it.
    for (size_t n = 0, i = bucket; n < slots_.size(); ++n, i = Next(i)) {
      if (slots_[i] == 0) break;
      T* item = Pointer(slots_[i]);
      const uint64_t key = Traits::Hash(*item) >> (64 - kKeyBits);
      if (key >= cursor && key < end) fn(item);
    }
    return end;
  }

  void Clear() {
    Slots(kMinSlots).swap(slots_);
    size_ = 0;
  }

 private:
  static constexpr size_t kMinSlots = 16;
  using Slots = SlotArray<Storage::kBytes>;
  static constexpr int kTagShift = Storage::kRefBits;
  static constexpr uint64_t kTagMask = ~uint64_t{0} << kTagShift;  // displacement and hash tag
  static constexpr int kHashTagShift = kTagShift + 8;
  static constexpr uint64_t kHashTagMask = ~uint64_t{0} << kHashTagShift;
  static_assert(kHashTagShift + 8 == 8 * Storage::kBytes, "the tag takes a slot's top 8 bits");
  static constexpr uint64_t kDisplacementMask = kTagMask & ~kHashTagMask;
  static constexpr size_t kMaxDisplacement = 255;  // stored as is; 255 = look it up

  // `value` (below 2^bits) scaled to a slot number: floor(value * slots / 2^bits), one
  // multiplication (Lemire's fast range), monotonic in `value`.
  size_t Scale(uint64_t value, int bits) const {
    return static_cast<size_t>((static_cast<Uint128>(value) * slots_.size()) >> bits);
  }
  size_t Home(uint64_t hash) const { return Scale(hash >> (64 - kKeyBits), kKeyBits); }
  size_t Next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
  // Steps from slot `from` forward to slot `to`, wrapping around the end.
  size_t Distance(size_t from, size_t to) const { return to >= from ? to - from : to + slots_.size() - from; }
  // The low 8 bits of the hash, in the slot's top 8 bits.
  static uint64_t Tag(uint64_t hash) { return (hash & 0xFF) << kHashTagShift; }
  static uint64_t Displacement(size_t d) { return uint64_t{std::min(d, kMaxDisplacement)} << kTagShift; }
  // How far the element in `slot`, at position `pos`, sits past its home slot.
  size_t DisplacementOf(uint64_t slot, size_t pos) const {
    if (tagged_) {
      const size_t stored = (slot & kDisplacementMask) >> kTagShift;
      if (stored < kMaxDisplacement) return stored;
    }
    return Distance(Home(Traits::Hash(*Pointer(slot))), pos);
  }
  uint64_t WithDisplacement(uint64_t slot, size_t d) const {
    return tagged_ ? (slot & ~kDisplacementMask) | Displacement(d) : slot;
  }
  T* Pointer(uint64_t slot) const {
    return Storage::template Item<T>(tagged_ ? slot & ~kTagMask : slot);
  }

  void Place(T* item) {
    const uint64_t hash = Traits::Hash(*item);
    size_t i = Home(hash);
    size_t displacement = 0;
    for (; slots_[i] != 0; i = Next(i)) ++displacement;
    const uint64_t ref = Storage::Ref(item);
    slots_.Set(i, tagged_ ? ref | Tag(hash) | Displacement(displacement) : ref);
  }

  // Rehashes every element at once. Placing one reads the element (for its hash) and
  // writes a random slot of the new array, two cache misses with a large table, so the
  // loop runs a pipeline: the element 16 slots ahead is fetched, the new home of the one
  // 8 ahead (by then in cache) is fetched, and the current one is placed. The misses
  // overlap instead of coming one after another: filling an index with 1M jobs
  // (structures_bench BM_IdIndexFill) 160-230 ms before, 105-140 after. A shrink finds
  // the old table 1/16 full: the look-ahead would test empty slots three times over, so
  // a sparse table is walked plainly (its elements are few, their misses matter less).
  void Resize(size_t slots) {
    static constexpr size_t kFetchItem = 16, kFetchHome = 8;
    Slots old(slots);
    old.swap(slots_);
    const size_t n = old.size();
    if (size_ * 4 < n) {
      for (size_t i = 0; i < n; ++i) {
        if (const uint64_t slot = old[i]; slot != 0) Place(Pointer(slot));
      }
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      if (i + kFetchItem < n && old[i + kFetchItem] != 0) __builtin_prefetch(Pointer(old[i + kFetchItem]));
      if (i + kFetchHome < n && old[i + kFetchHome] != 0) {
        PrefetchHome(Traits::Hash(*Pointer(old[i + kFetchHome])));
      }
      if (old[i] != 0) Place(Pointer(old[i]));
    }
  }

  // Every slot so far was stored tagged; from now on slots hold bare pointers.
  void DropTags() {
    for (size_t i = 0; i < slots_.size(); ++i) slots_.Set(i, slots_[i] & ~kTagMask);
    tagged_ = false;
  }

  // Slots: 0 = empty, otherwise hash tag | displacement | pointer (see the class comment).
  Slots slots_;
  bool tagged_ = true;  // false once a pointer used the top 16 bits: slots then hold bare pointers
  size_t size_ = 0;
};

}  // namespace disque::engine
