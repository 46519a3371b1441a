#pragma once

#include <algorithm>
#include <atomic>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace disque::engine {

// Node IDs as small integers. Jobs remember which nodes may hold a copy of them
// (nodes-delivered) and which confirmed something (nodes-confirmed); storing 40-byte
// IDs per job would cost more than the job itself, so every node ID the process ever
// sees is interned once here and jobs store its index. Indexes are never reused: a
// forgotten node keeps its index, so a job that still names it stays correct.
//
// Threads: Intern and Lookup take a mutex (they run when a node or a message is new to
// the process, not per job operation). Id() is lock-free: the text of an index is
// written before the index is handed out, and the index reaches other threads only
// through a synchronizing hand-off (a post to an io_context).
class NodeRegistry {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kIdLen = 40;

  NodeRegistry() = default;
  ~NodeRegistry() {
    for (auto& chunk : chunks_) delete chunk.load(std::memory_order_relaxed);
  }
  NodeRegistry(const NodeRegistry&) = delete;
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  // The index of `id` (40 characters), interning it if new.
  uint32_t Intern(std::string_view id) {
    std::lock_guard lock(mu_);
    auto it = index_.find(std::string(id));
    if (it != index_.end()) return it->second;
    const uint32_t n = size_.load(std::memory_order_relaxed);
    const size_t c = n / kChunkSize;
    if (c >= kMaxChunks) return kNone;  // 16 million distinct nodes: refuse the rest
    Chunk* chunk = chunks_[c].load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunk = new Chunk();
      chunks_[c].store(chunk, std::memory_order_release);
    }
    auto& slot = (*chunk)[n % kChunkSize];
    slot.fill('0');
    std::memcpy(slot.data(), id.data(), std::min(id.size(), kIdLen));
    size_.store(n + 1, std::memory_order_release);
    index_.emplace(std::string(id), n);
    return n;
  }

  // The index of `id`, or kNone if the process never saw it.
  uint32_t Lookup(std::string_view id) const {
    std::lock_guard lock(mu_);
    auto it = index_.find(std::string(id));
    return it == index_.end() ? kNone : it->second;
  }

  // The 40-character ID of an index returned by Intern or Lookup.
  std::string_view Id(uint32_t index) const {
    const Chunk* chunk = chunks_[index / kChunkSize].load(std::memory_order_acquire);
    return {(*chunk)[index % kChunkSize].data(), kIdLen};
  }

  uint32_t size() const { return size_.load(std::memory_order_acquire); }

 private:
  static constexpr size_t kChunkSize = 1024;
  static constexpr size_t kMaxChunks = 16384;
  using Chunk = std::array<std::array<char, kIdLen>, kChunkSize>;

  mutable std::mutex mu_;
  std::unordered_map<std::string, uint32_t> index_;  // guarded by mu_
  std::array<std::atomic<Chunk*>, kMaxChunks> chunks_{};
  std::atomic<uint32_t> size_{0};
};

// A small set of node indexes, in insertion order: one 64-bit word, because every job
// has one (nodes-delivered) and 8 bytes of it are 8 bytes per job.
//
// States of word_:
// - inline (bit 0 set): up to three members below 2^20, 20 bits each from bit 3, their
//   count in bits 1-2. The empty set is the word 1. REPLICATE 3 in a cluster of fewer
//   than a million distinct nodes seen by this process needs no allocation.
// - heap (bit 0 clear): a pointer to a Block (8-aligned), entered on the fourth member
//   or a member of 2^20 or more, and kept until Clear.
class NodeSet {
 public:
  // Iterates the members by value (inline members are not addressable).
  class Iterator {
   public:
    // Yields values, not references: an input iterator to the old rules, a forward
    // one to C++20's.
    using iterator_category = std::input_iterator_tag;
    using iterator_concept = std::forward_iterator_tag;
    using value_type = uint32_t;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = uint32_t;
    Iterator() = default;
    Iterator(const NodeSet* set, size_t i) : set_(set), i_(i) {}
    uint32_t operator*() const { return set_->At(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++i_;
      return before;
    }
    bool operator==(const Iterator& other) const { return i_ == other.i_; }

   private:
    const NodeSet* set_ = nullptr;
    size_t i_ = 0;
  };

  NodeSet() = default;
  ~NodeSet() { Release(); }
  NodeSet(const NodeSet&) = delete;
  NodeSet& operator=(const NodeSet&) = delete;
  NodeSet(NodeSet&& other) noexcept : word_(other.word_) { other.word_ = kEmpty; }
  NodeSet& operator=(NodeSet&& other) noexcept {
    if (this != &other) {
      Release();
      word_ = other.word_;
      other.word_ = kEmpty;
    }
    return *this;
  }

  size_t size() const { return is_inline() ? (word_ >> 1) & 3 : block()->size; }
  bool empty() const { return size() == 0; }
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, size()}; }
  bool Contains(uint32_t node) const { return IndexOf(node) != kAbsent; }

  // True if `node` was added (it was not there).
  bool Insert(uint32_t node) {
    const size_t n = size();
    if (n == UINT16_MAX || Contains(node)) return false;
    if (is_inline() && n < kInline && node <= kInlineMax) {
      word_ = (word_ & ~uint64_t{6}) | ((n + 1) << 1) | (uint64_t{node} << Shift(n));
      return true;
    }
    if (is_inline() || block()->size == block()->capacity) Grow();
    Block* b = block();
    b->nodes()[b->size++] = node;
    return true;
  }
  bool Erase(uint32_t node) {
    const size_t i = IndexOf(node);
    if (i == kAbsent) return false;
    if (is_inline()) {
      const size_t n = size();
      // Drop member i: the members after it move down one field.
      const uint64_t below = word_ & ((uint64_t{1} << Shift(i)) - 1);
      const uint64_t above = (word_ >> Shift(i + 1)) << Shift(i);
      word_ = ((below | above) & ~uint64_t{6}) | ((n - 1) << 1);
    } else {
      Block* b = block();
      std::copy(b->nodes() + i + 1, b->nodes() + b->size, b->nodes() + i);
      --b->size;
    }
    return true;
  }
  void Clear() {
    Release();
    word_ = kEmpty;
  }

 private:
  // Followed by `capacity` node indexes.
  struct Block {
    uint32_t size;
    uint32_t capacity;
    uint32_t* nodes() { return reinterpret_cast<uint32_t*>(this + 1); }
  };
  static constexpr uint64_t kEmpty = 1;
  static constexpr size_t kInline = 3;
  static constexpr int kBits = 20;
  static constexpr uint32_t kInlineMax = (uint32_t{1} << kBits) - 1;
  static constexpr size_t kAbsent = SIZE_MAX;

  static int Shift(size_t i) { return 3 + kBits * static_cast<int>(i); }
  bool is_inline() const { return (word_ & 1) != 0; }
  Block* block() const { return reinterpret_cast<Block*>(static_cast<uintptr_t>(word_)); }
  uint32_t At(size_t i) const {
    return is_inline() ? static_cast<uint32_t>((word_ >> Shift(i)) & kInlineMax) : block()->nodes()[i];
  }
  size_t IndexOf(uint32_t node) const {
    const size_t n = size();
    for (size_t i = 0; i < n; ++i) {
      if (At(i) == node) return i;
    }
    return kAbsent;
  }
  static Block* Allocate(uint32_t capacity) {
    void* mem = ::operator new(sizeof(Block) + capacity * sizeof(uint32_t));
    auto* b = static_cast<Block*>(mem);
    b->size = 0;
    b->capacity = capacity;
    return b;
  }
  void Grow() {
    const size_t n = size();
    Block* grown = Allocate(static_cast<uint32_t>(std::min<size_t>(UINT16_MAX, std::max<size_t>(8, n * 2))));
    for (size_t i = 0; i < n; ++i) grown->nodes()[i] = At(i);
    grown->size = static_cast<uint32_t>(n);
    Release();
    word_ = reinterpret_cast<uintptr_t>(grown);
  }
  void Release() {
    if (!is_inline()) ::operator delete(block());
  }

  uint64_t word_ = kEmpty;
};

static_assert(sizeof(NodeSet) == 8);

}  // namespace disque::engine
