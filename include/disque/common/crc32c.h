#pragma once

#include <cstdint>
#include <string_view>

namespace disque {

// CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB: the check value of
// "123456789" is 0xE3069283. `crc` continues a previous result (0 to start), so
// Crc32c(b, Crc32c(a)) == Crc32c(a + b). Uses the SSE 4.2 instruction when the CPU has
// it, a table otherwise.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// The table implementation, whatever the CPU (for tests).
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

}  // namespace disque
