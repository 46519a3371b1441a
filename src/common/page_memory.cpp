#include "disque/common/page_memory.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>

#include "disque/common/sanitizers.h"

namespace disque {
namespace {

std::atomic<uint64_t> page_memory_bytes{0};

[[maybe_unused]] size_t PageRound(size_t bytes) {
  const size_t page = 4096;
  return (bytes + page - 1) & ~(page - 1);
}

}  // namespace

void* AllocatePages(size_t bytes, bool populate) {
#ifdef DISQUE_ASAN
  (void)populate;
  void* p = std::calloc(bytes, 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
#else
  bytes = PageRound(bytes);
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  page_memory_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return p;
#endif
}

void FreePages(void* p, size_t bytes) {
#ifdef DISQUE_ASAN
  (void)bytes;
  std::free(p);
#else
  bytes = PageRound(bytes);
  ::munmap(p, bytes);
  page_memory_bytes.fetch_sub(bytes, std::memory_order_relaxed);
#endif
}

uint64_t PageMemoryBytes() { return page_memory_bytes.load(std::memory_order_relaxed); }

}  // namespace disque
