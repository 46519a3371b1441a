#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace disque::engine {

inline constexpr uint32_t kNotInHeap = UINT32_MAX;

// A binary min-heap of pointers whose elements know their own position (the member
// `Pos`), so an element is removed or re-keyed in O(log n) without a search. Used for a
// queue's jobs (ordered by ctime, then ID) and for a shard's schedule (ordered by wake-up
// time): 8 bytes per element in the array plus 4 in the element, no per-element node.
//
// Invariant: for every i, items_[i]->*Pos == i, and Less(items_[i], items_[parent(i)]) is
// false. An element not in the heap has Pos == kNotInHeap.
template <typename T, uint32_t T::*Pos, typename Less>
class IndexedHeap {
 public:
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  T* top() const { return items_.front(); }
  // The array in heap order (for peeking and scans; not sorted).
  const std::vector<T*>& items() const { return items_; }
  static bool Contains(const T* item) { return item->*Pos != kNotInHeap; }

  void Push(T* item) {
    item->*Pos = static_cast<uint32_t>(items_.size());
    items_.push_back(item);
    SiftUp(item->*Pos);
  }

  T* Pop() {
    T* item = items_.front();
    Erase(item);
    return item;
  }

  void Erase(T* item) {
    const uint32_t i = item->*Pos;
    item->*Pos = kNotInHeap;
    T* last = items_.back();
    items_.pop_back();
    if (last == item) return;
    items_[i] = last;
    last->*Pos = i;
    Fix(i);
  }

  // Restores the order after the key of `item` (in the heap) changed.
  void Update(T* item) { Fix(item->*Pos); }

  void Clear() {
    for (T* item : items_) item->*Pos = kNotInHeap;
    items_.clear();
    items_.shrink_to_fit();
  }

 private:
  void Fix(uint32_t i) {
    if (i > 0 && Less()(items_[i], items_[(i - 1) / 2])) {
      SiftUp(i);
    } else {
      SiftDown(i);
    }
  }

  void SiftUp(uint32_t i) {
    T* item = items_[i];
    while (i > 0) {
      const uint32_t parent = (i - 1) / 2;
      if (!Less()(item, items_[parent])) break;
      items_[i] = items_[parent];
      items_[i]->*Pos = i;
      i = parent;
    }
    items_[i] = item;
    item->*Pos = i;
  }

  void SiftDown(uint32_t i) {
    T* item = items_[i];
    const auto n = static_cast<uint32_t>(items_.size());
    while (true) {
      uint32_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && Less()(items_[child + 1], items_[child])) ++child;
      if (!Less()(items_[child], item)) break;
      items_[i] = items_[child];
      items_[i]->*Pos = i;
      i = child;
    }
    items_[i] = item;
    item->*Pos = i;
  }

  std::vector<T*> items_;
};

}  // namespace disque::engine
