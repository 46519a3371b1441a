#pragma once

#include <array>
#include <cstdint>
#include <string_view>

// Hash functions shared by the layers.
namespace disque {

// SipHash-2-4 (Aumasson and Bernstein): a keyed pseudo-random function. With a secret
// random key its outputs are unpredictable, which makes it both a hash table hash that
// clients cannot attack with colliding names and a generator of unguessable IDs.
using SipKey = std::array<uint64_t, 2>;
uint64_t SipHash24(const SipKey& key, std::string_view data);
// SipHash24 of the 8 little-endian bytes of `word`, straight-line: the job ID generator
// hashes a counter twice per ADDJOB, and the general function's byte loops made that
// the largest single cost of an ADDJOB (docs/benchmarks.md item 22).
uint64_t SipHash24Word(const SipKey& key, uint64_t word);

// A key from the operating system's random source (getrandom / random_device).
SipKey RandomSipKey();

// CRC16-CCITT (XMODEM), as Redis Cluster uses for key slots. Deterministic on every node,
// so the queue slot of a name is the same everywhere.
uint16_t Crc16(std::string_view data);

}  // namespace disque
