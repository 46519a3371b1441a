#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "disque/common/page_memory.h"

namespace disque::engine {

inline constexpr uint32_t kNotInHeap = UINT32_MAX;

// Heap orders: what the heap array holds and how two of its slots compare.
//
// ByElement<T, Less>: the slot is the pointer and Less compares the elements themselves.
// Every compare dereferences two elements, which is fine for a small heap or one whose
// key cannot live in the array (a queue's out-of-order jobs, ordered by ctime then ID).
template <typename T, typename Less>
struct ByElement {
  using Slot = T*;
  static T* Item(Slot slot) { return slot; }
  static bool Before(Slot a, Slot b) { return Less()(a, b); }
};

// A 4-ary min-heap whose elements know their own position (the member `Pos`), so an
// element is removed or re-keyed in O(log n) without a search. Used for a queue's
// out-of-order jobs (JobQueue; ByElement: 8 bytes per element in the array) and for a
// shard's schedule (JobSchedule, job.h: slots of {key, job handle}, 8 bytes, compared by
// key), plus 4 bytes in the element; no per-element node. Four children per node halve
// the depth of a binary heap: a sift moves half as many elements, and each move writes
// the moved element's position (a cache miss when elements are scattered); the four
// slots compared at each level of a keyed heap are adjacent (32 bytes, one cache line
// or two).
//
// An order is a struct with `Slot` (what the array holds), `Item(slot)` (the element)
// and `Before(a, b)`.
//
// Invariant: for every i, Item(slots_[i])->*Pos == i, and Before(slots_[i],
// slots_[(i - 1) / 4]) is false. An element not in the heap has Pos == kNotInHeap.
template <typename T, uint32_t T::*Pos, typename Order>
class IndexedHeap {
 public:
  using Slot = typename Order::Slot;
  using Slots = std::vector<Slot, BigArrayAllocator<Slot>>;  // a large one is pages of its own
  // Children of position i: kArity * i + 1 ... kArity * i + kArity.
  static constexpr uint32_t kArity = 4;

  bool empty() const { return slots_.empty(); }
  size_t size() const { return slots_.size(); }
  T* top() const { return Order::Item(slots_.front()); }
  const Slot& top_slot() const { return slots_.front(); }
  // The array in heap order (for peeking and scans; not sorted).
  const Slots& items() const { return slots_; }
  static bool Contains(const T* item) { return item->*Pos != kNotInHeap; }
  // The slot of an element in the heap (its key, for a keyed order).
  const Slot& SlotOf(const T* item) const { return slots_[item->*Pos]; }

  // Starts loading the slot of an element in the heap (see Engine::Prefetch).
  void Prefetch(const T* item) const { __builtin_prefetch(&slots_[item->*Pos]); }

  void Push(Slot slot) {
    T* item = Order::Item(slot);
    item->*Pos = static_cast<uint32_t>(slots_.size());
    slots_.push_back(slot);
    SiftUp(item->*Pos);
  }

  T* Pop() {
    T* item = top();
    Erase(item);
    return item;
  }

  void Erase(T* item) {
    const uint32_t i = item->*Pos;
    item->*Pos = kNotInHeap;
    const Slot last = slots_.back();
    slots_.pop_back();
    // Memory comes back when a big heap drains (a million acked jobs leave 16 MB of
    // schedule capacity otherwise); a quarter keeps push/erase near the boundary
    // amortized O(1).
    if (slots_.capacity() > kShrinkAbove && slots_.size() < slots_.capacity() / 4) slots_.shrink_to_fit();
    if (Order::Item(last) == item) return;
    slots_[i] = last;
    Order::Item(last)->*Pos = i;
    Fix(i);
  }

  // Restores the order after an element's key changed: ByElement, the element itself
  // changed (pass the pointer); a keyed order, the new key comes in the slot.
  void Update(Slot slot) {
    const uint32_t i = Order::Item(slot)->*Pos;
    slots_[i] = slot;
    Fix(i);
  }

  // Rewrites every slot with `f`, which must be monotone (Before(a, b) implies
  // !Before(f(b), f(a))) and keep each slot's element: the order holds without a sift.
  template <typename F>
  void RemapMonotone(F&& f) {
    for (Slot& slot : slots_) slot = f(slot);
  }

  void Clear() {
    for (const Slot& slot : slots_) Order::Item(slot)->*Pos = kNotInHeap;
    slots_.clear();
    slots_.shrink_to_fit();
  }

 private:
  static constexpr size_t kShrinkAbove = 1024;

  void Fix(uint32_t i) {
    if (i > 0 && Order::Before(slots_[i], slots_[(i - 1) / kArity])) {
      SiftUp(i);
    } else {
      SiftDown(i);
    }
  }

  void Place(uint32_t i, const Slot& slot) {
    slots_[i] = slot;
    Order::Item(slot)->*Pos = i;
  }

  void SiftUp(uint32_t i) {
    const Slot slot = slots_[i];
    while (i > 0) {
      const uint32_t parent = (i - 1) / kArity;
      if (!Order::Before(slot, slots_[parent])) break;
      Place(i, slots_[parent]);
      i = parent;
    }
    Place(i, slot);
  }

  void SiftDown(uint32_t i) {
    const Slot slot = slots_[i];
    const auto n = static_cast<uint32_t>(slots_.size());
    while (true) {
      const uint64_t first = uint64_t{kArity} * i + 1;
      if (first >= n) break;
      auto child = static_cast<uint32_t>(first);
      const auto last = static_cast<uint32_t>(std::min<uint64_t>(first + kArity, n));
      for (uint32_t c = child + 1; c < last; ++c) {
        if (Order::Before(slots_[c], slots_[child])) child = c;
      }
      if (!Order::Before(slots_[child], slot)) break;
      Place(i, slots_[child]);
      i = child;
    }
    Place(i, slot);
  }

  Slots slots_;
};

}  // namespace disque::engine
