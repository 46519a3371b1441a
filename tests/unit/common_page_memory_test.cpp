#include "disque/common/page_memory.h"
#include "disque/common/sanitizers.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace disque {
namespace {

#ifdef DISQUE_ASAN
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

size_t ResidentPages(const void* p, size_t bytes) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((bytes + page - 1) / page);
  if (mincore(const_cast<void*>(p), bytes, in.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

TEST(PageMemoryTest, PagesComeZeroedAndAreCountedUntilFreed) {
  const uint64_t before = PageMemoryBytes();
  const size_t bytes = 10000;  // rounded up to 3 pages
  auto* p = static_cast<unsigned char*>(AllocatePages(bytes, false));
  for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(p[i], 0) << i;
  p[bytes - 1] = 7;
  EXPECT_EQ(PageMemoryBytes() - before, kAsan ? 0u : 3u * 4096);
  FreePages(p, bytes);
  EXPECT_EQ(PageMemoryBytes(), before);
}

TEST(PageMemoryTest, PopulatedPagesAreResidentAtOnce) {
  if (kAsan) GTEST_SKIP() << "operator new under AddressSanitizer";
  const size_t bytes = 64 * 4096;
  void* lazy = AllocatePages(bytes, false);
  void* eager = AllocatePages(bytes, true);
  EXPECT_EQ(ResidentPages(lazy, bytes), 0u);
  EXPECT_EQ(ResidentPages(eager, bytes), 64u);
  FreePages(lazy, bytes);
  FreePages(eager, bytes);
}

// Small arrays stay with operator new (no system call); from kMinBytes on they are
// pages of their own, zeroed when asked.
TEST(PageMemoryTest, BigArrayAllocatorMapsOnlyLargeArrays) {
  BigArrayAllocator<uint64_t> alloc;
  const uint64_t before = PageMemoryBytes();
  const size_t small = BigArrayAllocator<uint64_t>::kMinBytes / 8 - 1;
  const size_t large = BigArrayAllocator<uint64_t>::kMinBytes / 8;
  uint64_t* a = alloc.allocate_zeroed(small);
  EXPECT_EQ(PageMemoryBytes(), before);
  uint64_t* b = alloc.allocate_zeroed(large);
  EXPECT_EQ(PageMemoryBytes() - before, kAsan ? 0u : BigArrayAllocator<uint64_t>::kMinBytes);
  for (size_t i = 0; i < small; ++i) ASSERT_EQ(a[i], 0u) << i;
  for (size_t i = 0; i < large; ++i) ASSERT_EQ(b[i], 0u) << i;
  alloc.deallocate(a, small);
  alloc.deallocate(b, large);
  EXPECT_EQ(PageMemoryBytes(), before);

  std::vector<uint32_t, BigArrayAllocator<uint32_t>> v;
  for (uint32_t i = 0; i < 100000; ++i) v.push_back(i);
  EXPECT_GE(PageMemoryBytes() - before, kAsan ? 0u : v.capacity() * 4);
  for (uint32_t i = 0; i < 100000; ++i) ASSERT_EQ(v[i], i);
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(PageMemoryBytes(), before);
}

}  // namespace
}  // namespace disque
