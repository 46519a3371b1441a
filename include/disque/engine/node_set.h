#pragma once

#include <algorithm>
#include <atomic>
#include <array>
#include <cstdint>
#include <cstring>
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

// A small set of node indexes: up to three inline (REPLICATE 3 needs no allocation),
// more on the heap. Insertion order is kept. 16 bytes, 4-aligned: the heap pointer is
// kept in the inline words (memcpy), so a union with an 8-aligned pointer does not pad
// every job by 8 bytes.
class NodeSet {
 public:
  NodeSet() = default;
  ~NodeSet() { Release(); }
  NodeSet(const NodeSet&) = delete;
  NodeSet& operator=(const NodeSet&) = delete;
  NodeSet(NodeSet&& other) noexcept { MoveFrom(other); }
  NodeSet& operator=(NodeSet&& other) noexcept {
    if (this != &other) {
      Release();
      MoveFrom(other);
    }
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint32_t* begin() const { return data(); }
  const uint32_t* end() const { return data() + size_; }
  bool Contains(uint32_t node) const { return std::find(begin(), end(), node) != end(); }

  // True if `node` was added (it was not there).
  bool Insert(uint32_t node) {
    if (Contains(node) || size_ == UINT16_MAX) return false;
    if (size_ == capacity_) Grow();
    data()[size_++] = node;
    return true;
  }
  bool Erase(uint32_t node) {
    uint32_t* d = data();
    uint32_t* it = std::find(d, d + size_, node);
    if (it == d + size_) return false;
    std::copy(it + 1, d + size_, it);
    --size_;
    return true;
  }
  void Clear() {
    Release();
    size_ = 0;
  }

 private:
  static constexpr uint16_t kInline = 3;

  static_assert(sizeof(uint32_t*) <= kInline * sizeof(uint32_t));

  uint32_t* heap() const {
    uint32_t* p;
    std::memcpy(&p, words_, sizeof p);
    return p;
  }
  void set_heap(uint32_t* p) { std::memcpy(words_, &p, sizeof p); }
  uint32_t* data() { return capacity_ > kInline ? heap() : words_; }
  const uint32_t* data() const { return capacity_ > kInline ? heap() : words_; }
  void Grow() {
    const auto capacity = static_cast<uint16_t>(std::min<uint32_t>(UINT16_MAX, capacity_ * 2u));
    auto* grown = new uint32_t[capacity];
    std::copy(begin(), end(), grown);
    if (capacity_ > kInline) delete[] heap();
    set_heap(grown);
    capacity_ = capacity;
  }
  void Release() {
    if (capacity_ > kInline) delete[] heap();
    capacity_ = kInline;
  }
  void MoveFrom(NodeSet& other) {
    size_ = other.size_;
    capacity_ = other.capacity_;
    std::copy(other.words_, other.words_ + kInline, words_);  // the members or the pointer
    other.size_ = 0;
    other.capacity_ = kInline;
  }

  // Inline: the members (capacity_ == kInline). On the heap: the array's pointer.
  uint32_t words_[kInline] = {};
  uint16_t size_ = 0;
  uint16_t capacity_ = kInline;
};

static_assert(sizeof(NodeSet) == 16);

}  // namespace disque::engine
