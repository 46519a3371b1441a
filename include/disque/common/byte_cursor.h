#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <string_view>

namespace disque {

// Reads fixed-width unsigned integers and byte runs from a buffer, in order, in one
// byte order: the cluster bus is big-endian, the job serialization (PROTOCOL.md 8.5)
// little-endian. The caller checks left() before each read.
template <std::endian kOrder>
struct ByteCursor {
  std::string_view data;
  size_t pos = 0;

  size_t left() const { return data.size() - pos; }

  template <typename T>
  T Read() {
    assert(left() >= sizeof(T));
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      const T byte = static_cast<unsigned char>(data[pos + i]);
      if constexpr (kOrder == std::endian::big) {
        value = static_cast<T>((value << 8) | byte);
      } else {
        value = static_cast<T>(value | static_cast<T>(byte << (8 * i)));
      }
    }
    pos += sizeof(T);
    return value;
  }

  std::string_view Bytes(size_t n) {
    assert(left() >= n);
    std::string_view bytes = data.substr(pos, n);
    pos += n;
    return bytes;
  }
};

}  // namespace disque
