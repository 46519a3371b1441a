#pragma once

#include <string_view>

#include "disque/common/hash.h"

namespace disque::test {

// The shard a queue lives on in a server with `shards` threads: its slot (12 bits of
// CRC16-XMODEM of the name) modulo the shard count, as the server routes it. Tests use
// it to place queues on the same or on different shards.
inline int QueueShardOf(std::string_view queue, int shards) { return (Crc16(queue) & 4095) % shards; }

}  // namespace disque::test
