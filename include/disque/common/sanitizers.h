#pragma once

// DISQUE_ASAN is defined (as 1) when AddressSanitizer is on: GCC says so with
// __SANITIZE_ADDRESS__, Clang with __has_feature(address_sanitizer). Code that hands out
// memory of its own (the job arena, page memory) behaves differently then, so that ASan
// still sees every access.
#if defined(__SANITIZE_ADDRESS__)
#define DISQUE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DISQUE_ASAN 1
#endif
#endif
