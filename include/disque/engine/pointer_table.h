#pragma once

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
template <typename T, typename Traits>
class PointerTable {
 public:
  static constexpr int kKeyBits = 54;
  static constexpr uint64_t kScanEnd = uint64_t{1} << kKeyBits;

  PointerTable() : slots_(size_t{1} << kMinBits, nullptr), bits_(kMinBits) {}

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  template <typename Match>
  T* Find(uint64_t hash, Match&& match) const {
    for (size_t i = Home(hash);; i = (i + 1) & Mask()) {
      T* item = slots_[i];
      if (item == nullptr) return nullptr;
      if (match(*item)) return item;
    }
  }

  // The caller guarantees `item` is not in the table.
  void Insert(T* item) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Resize(bits_ + 1);
    Place(item);
    ++size_;
  }

  // Removes `item` (by identity); false if it is not in the table.
  bool Erase(const T* item) {
    size_t i = Home(Traits::Hash(*item));
    while (slots_[i] != item) {
      if (slots_[i] == nullptr) return false;
      i = (i + 1) & Mask();
    }
    // Backward shift: move later members of the probe run into the hole when the hole
    // lies between their home and their slot.
    size_t j = i;
    while (true) {
      j = (j + 1) & Mask();
      T* next = slots_[j];
      if (next == nullptr) break;
      const size_t home = Home(Traits::Hash(*next));
      if (((j - home) & Mask()) >= ((j - i) & Mask())) {
        slots_[i] = next;
        i = j;
      }
    }
    slots_[i] = nullptr;
    --size_;
    if (bits_ > kMinBits && size_ * 8 < slots_.size()) Resize(bits_ - 1);
    return true;
  }

  // Some element, chosen by `random` (roughly uniform); nullptr when empty.
  T* Random(uint64_t random) const {
    if (size_ == 0) return nullptr;
    for (size_t i = random & Mask();; i = (i + 1) & Mask()) {
      if (slots_[i] != nullptr) return slots_[i];
    }
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (T* item : slots_) {
      if (item != nullptr) fn(item);
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
      T* item = slots_[i];
      if (item == nullptr) break;
      const uint64_t key = Traits::Hash(*item) >> (64 - kKeyBits);
      if (key >= cursor && key < end) fn(item);
    }
    return end;
  }

  void Clear() {
    slots_.assign(size_t{1} << kMinBits, nullptr);
    bits_ = kMinBits;
    size_ = 0;
  }

 private:
  static constexpr int kMinBits = 4;

  size_t Mask() const { return slots_.size() - 1; }
  size_t Home(uint64_t hash) const { return static_cast<size_t>(hash >> (64 - bits_)); }

  void Place(T* item) {
    size_t i = Home(Traits::Hash(*item));
    while (slots_[i] != nullptr) i = (i + 1) & Mask();
    slots_[i] = item;
  }

  void Resize(int bits) {
    std::vector<T*> old(size_t{1} << bits, nullptr);
    old.swap(slots_);
    bits_ = bits;
    for (T* item : old) {
      if (item != nullptr) Place(item);
    }
  }

  std::vector<T*> slots_;
  int bits_;
  size_t size_ = 0;
};

}  // namespace disque::engine
