#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

namespace disque {

// Memory in whole pages straight from mmap, for buffers and arrays that should never
// sit in malloc's heap:
// - A large array that grows and shrinks (the job ID index, the schedule) would pass
//   through every size below malloc's mmap threshold on its way, and glibc raises that
//   threshold to the size of each mapped chunk it frees, so the arrays land in the
//   shard thread's arena, which they grow to several MB. What little stays allocated
//   there afterwards keeps pages of it: RSS after the ACK of every job came out 1.05x
//   to 1.14x of the empty server's (docs/benchmarks.md, item 23).
// - Input buffers, interleaved in the heap with Asio's per-socket state (which Asio
//   pools and never frees), left one pinned page per buffer after their clients went.
// `populate` maps every page at once (one system call instead of a page fault each: a
// fault costs several times more in this VM); leave it off when most of the memory may
// never be touched (a client's input buffer). The memory is zeroed. Throws
// std::bad_alloc when the system refuses. Under AddressSanitizer it comes from calloc
// instead, so that ASan sees accesses past the end (and counts it itself).
void* AllocatePages(size_t bytes, bool populate);
void FreePages(void* p, size_t bytes);
// Bytes handed out by AllocatePages and not freed (rounded to pages; part of
// used_memory), 0 under AddressSanitizer.
uint64_t PageMemoryBytes();

// An allocator for arrays that may get large: whole pages (populated) at kMinBytes and
// above, operator new below (a small array, like most queues' heaps, is not worth a
// system call).
template <typename T>
struct BigArrayAllocator {
  static constexpr size_t kMinBytes = size_t{64} << 10;
  using value_type = T;
  BigArrayAllocator() = default;
  template <typename U>
  BigArrayAllocator(const BigArrayAllocator<U>&) {}  // NOLINT: allocators convert implicitly
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return static_cast<T*>(::operator new(bytes));
    return static_cast<T*>(AllocatePages(bytes, true));
  }
  // The same, zero-filled (for a trivial T; free it with deallocate). Pages come zeroed:
  // writing them again would double the memory traffic of a large array.
  T* allocate_zeroed(size_t n) {
    T* p = allocate(n);
    if (n * sizeof(T) < kMinBytes) std::memset(static_cast<void*>(p), 0, n * sizeof(T));
    return p;
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) {
      ::operator delete(p);
    } else {
      FreePages(p, bytes);
    }
  }
  template <typename U>
  bool operator==(const BigArrayAllocator<U>&) const { return true; }
};

}  // namespace disque
