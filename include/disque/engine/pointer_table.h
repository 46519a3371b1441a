#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace disque::engine {

// An open-addressing hash set of pointers (linear probing, backward-shift deletion, so
// there are no tombstones). `Traits::Hash(const T&)` gives an element's 64-bit hash,
// which must be well mixed (random ID bits, or a keyed hash of a name). The home slot is
// the top bits of the hash, so the table is ordered by hash except inside a probe run;
// that is what makes the scan cursor below exact across resizes.
//
// Scan cursors (QSCAN, JSCAN) are positions in a 54-bit key space (hash >> 10), not slot
// numbers: ScanBucket(cursor) reports every element whose key lies in [cursor, end of
// cursor's home bucket) and returns that end. Successive calls cover the key space
// without gaps or overlaps whatever resizes happen in between, so an element present
// for the whole iteration is reported exactly once.
//
// Each slot holds the pointer in its low 48 bits and 16 bits of the element's hash (the
// low bits, which the home slot does not use) in the top 16. A probe compares that tag
// before it dereferences anything, so a lookup touches one element, not every element of
// its probe run: with a million jobs the elements are cache misses, and comparing IDs
// along the run was 12 % of ADDJOB's CPU time. Linux gives user-space pointers below
// 2^47 on x86-64 and AArch64; a pointer that does not fit turns tag checks off for good
// (`tagged_`), which costs speed, not correctness.
template <typename T, typename Traits>
class PointerTable {
 public:
  static constexpr int kKeyBits = 54;
  static constexpr uint64_t kScanEnd = uint64_t{1} << kKeyBits;

  PointerTable() : slots_(size_t{1} << kMinBits, 0), bits_(kMinBits) {}

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  template <typename Match>
  T* Find(uint64_t hash, Match&& match) const {
    const uint64_t tag = Tag(hash);
    for (size_t i = Home(hash);; i = (i + 1) & Mask()) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return nullptr;
      if ((slot & kTagMask) != tag && tagged_) continue;
      T* item = Pointer(slot);
      if (match(*item)) return item;
    }
  }

  // The caller guarantees `item` is not in the table.
  void Insert(T* item) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Resize(bits_ + 1);
    if (tagged_ && (reinterpret_cast<uintptr_t>(item) & kTagMask) != 0) DropTags();
    Place(item);
    ++size_;
  }

  // Removes `item` (by identity); false if it is not in the table.
  bool Erase(const T* item) {
    size_t i = Home(Traits::Hash(*item));
    while (Pointer(slots_[i]) != item) {
      if (slots_[i] == 0) return false;
      i = (i + 1) & Mask();
    }
    // Backward shift: move later members of the probe run into the hole when the hole
    // lies between their home and their slot.
    size_t j = i;
    while (true) {
      j = (j + 1) & Mask();
      const uint64_t next = slots_[j];
      if (next == 0) break;
      const size_t home = Home(Traits::Hash(*Pointer(next)));
      if (((j - home) & Mask()) >= ((j - i) & Mask())) {
        slots_[i] = next;
        i = j;
      }
    }
    slots_[i] = 0;
    --size_;
    if (bits_ > kMinBits && size_ * 8 < slots_.size()) Resize(bits_ - 1);
    return true;
  }

  // Some element, chosen by `random` (roughly uniform); nullptr when empty.
  T* Random(uint64_t random) const {
    if (size_ == 0) return nullptr;
    for (size_t i = random & Mask();; i = (i + 1) & Mask()) {
      if (slots_[i] != 0) return Pointer(slots_[i]);
    }
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const uint64_t slot : slots_) {
      if (slot != 0) fn(Pointer(slot));
    }
  }

  // See the class comment. `cursor` < kScanEnd; returns the next cursor (kScanEnd when
  // the whole key space has been covered). `fn` must not modify the table.
  template <typename Fn>
  uint64_t ScanBucket(uint64_t cursor, Fn&& fn) const {
    const int shift = kKeyBits - bits_;
    const uint64_t bucket = cursor >> shift;
    const uint64_t end = (bucket + 1) << shift;
    // Every element whose home is `bucket` sits between that home and the first empty
    // slot at or after it.
    for (size_t n = 0, i = bucket; n < slots_.size(); ++n, i = (i + 1) & Mask()) {
      if (slots_[i] == 0) break;
      T* item = Pointer(slots_[i]);
      const uint64_t key = Traits::Hash(*item) >> (64 - kKeyBits);
      if (key >= cursor && key < end) fn(item);
    }
    return end;
  }

  void Clear() {
    slots_.assign(size_t{1} << kMinBits, 0);
    bits_ = kMinBits;
    size_ = 0;
  }

 private:
  static constexpr int kMinBits = 4;
  static constexpr int kTagShift = 48;
  static constexpr uint64_t kTagMask = ~uint64_t{0} << kTagShift;

  size_t Mask() const { return slots_.size() - 1; }
  size_t Home(uint64_t hash) const { return static_cast<size_t>(hash >> (64 - bits_)); }
  // The low 16 bits of the hash, in the slot's top 16 bits.
  static uint64_t Tag(uint64_t hash) { return hash << kTagShift; }
  T* Pointer(uint64_t slot) const {
    return reinterpret_cast<T*>(static_cast<uintptr_t>(tagged_ ? slot & ~kTagMask : slot));
  }

  void Place(T* item) {
    const uint64_t hash = Traits::Hash(*item);
    size_t i = Home(hash);
    while (slots_[i] != 0) i = (i + 1) & Mask();
    const auto bits = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(item));
    slots_[i] = tagged_ ? bits | Tag(hash) : bits;
  }

  void Resize(int bits) {
    std::vector<uint64_t> old(size_t{1} << bits, 0);
    old.swap(slots_);
    bits_ = bits;
    for (const uint64_t slot : old) {
      if (slot != 0) Place(Pointer(slot));
    }
  }

  // Every slot so far was stored tagged; from now on slots hold bare pointers.
  void DropTags() {
    for (uint64_t& slot : slots_) slot &= ~kTagMask;
    tagged_ = false;
  }

  // Slots: 0 = empty, otherwise tag | pointer (see the class comment).
  std::vector<uint64_t> slots_;
  bool tagged_ = true;  // false once a pointer used the top 16 bits: slots then hold bare pointers
  int bits_;
  size_t size_ = 0;
};

}  // namespace disque::engine
