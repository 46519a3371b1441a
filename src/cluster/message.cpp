#include "disque/cluster/message.h"

#include <algorithm>
#include <cassert>
#include <string>

#include "disque/common/byte_cursor.h"
#include "disque/engine/job_id.h"

// The byte layout is documented in docs/cluster-bus.md; the offsets below follow it.
// Encode writes fields in order into the caller's buffer; Decode reads them back with a
// cursor and checks every length against the bytes that are left before reading.

namespace disque::cluster {
namespace {

// The frame prefix FrameLength needs: magic (4), version (2), type (1), flags (1),
// length (4).
constexpr size_t kLengthPrefixSize = 12;
constexpr size_t kVersionOffset = 4;
constexpr size_t kTypeOffset = 6;
constexpr size_t kFlagsOffset = 7;
constexpr size_t kLengthOffset = 8;
// A gossip entry without its IP: ID, IP length, port, bus port, flags, ping, pong.
constexpr size_t kGossipFixedSize = kNodeIdSize + 1 + 2 + 2 + 2 + 8 + 8;
constexpr size_t kMaxGossipEntries = 65535;
// A job ID body: the ID and aux.
constexpr size_t kJobIdBodySize = kJobIdSize + 4;
// A queue body without the name: aux and the name's length.
constexpr size_t kQueueFixedSize = 4 + 4;
static_assert(kJobIdSize == engine::kJobIdLen);

bool IsGossipType(uint8_t type) {
  return type == static_cast<uint8_t>(MessageType::kPing) ||
         type == static_cast<uint8_t>(MessageType::kPong) ||
         type == static_cast<uint8_t>(MessageType::kMeet);
}

// GOTJOB to DELJOB: a job ID and aux.
bool IsJobIdType(uint8_t type) {
  return type >= static_cast<uint8_t>(MessageType::kGotJob) &&
         type <= static_cast<uint8_t>(MessageType::kDelJob);
}

// NEEDJOBS and PAUSE: aux and a queue name.
bool IsQueueType(uint8_t type) {
  return type == static_cast<uint8_t>(MessageType::kNeedJobs) ||
         type == static_cast<uint8_t>(MessageType::kPause);
}

// REPLJOB and YOURJOBS: serialized jobs.
bool IsJobsType(uint8_t type) {
  return type == static_cast<uint8_t>(MessageType::kReplJob) ||
         type == static_cast<uint8_t>(MessageType::kYourJobs);
}

bool IsNodeId(std::string_view id) {
  return id.size() == kNodeIdSize && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Textual IPv4 or IPv6, not parsed: only the character set is checked, so that nothing
// but address characters ever reaches logs, CLUSTER NODES or nodes.conf.
bool IsIpText(std::string_view ip) {
  return ip.size() <= kMaxIpSize && std::all_of(ip.begin(), ip.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == '.' || c == ':';
         });
}

// --- Encoding -------------------------------------------------------------------------

template <typename T>
void PutBigEndian(std::string& out, T value) {
  char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) {
    bytes[i] = static_cast<char>(value >> (8 * (sizeof(T) - 1 - i)));
  }
  out.append(bytes, sizeof(T));
}

// IDs are fixed width on the wire. Encode's precondition is a valid ID; should a bug
// break it, the field is still 40 bytes (cut or padded with spaces), so the frame stays
// well formed and the receiver rejects it for its ID instead of misreading the rest.
void PutNodeId(std::string& out, const std::string& id) {
  assert(IsNodeId(id));
  const size_t n = std::min(id.size(), kNodeIdSize);
  out.append(id, 0, n);
  out.append(kNodeIdSize - n, ' ');
}

// A u8 length and the IP text, cut to kMaxIpSize (the precondition).
void PutIp(std::string& out, const std::string& ip) {
  assert(ip.size() <= kMaxIpSize);
  const size_t n = std::min(ip.size(), kMaxIpSize);
  out.push_back(static_cast<char>(n));
  out.append(ip, 0, n);
}

// Like PutNodeId, for job IDs: always 40 bytes.
void PutJobId(std::string& out, const std::string& id) {
  assert(engine::IsValidJobIdFormat(id));
  const size_t n = std::min(id.size(), kJobIdSize);
  out.append(id, 0, n);
  out.append(kJobIdSize - n, ' ');
}

// A u32 length and the bytes. Encode asserts the whole frame fits kMaxFrameSize, so the
// length fits too.
void PutBytes(std::string& out, const std::string& bytes) {
  PutBigEndian<uint32_t>(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

size_t GossipCount(const Message& message) {
  assert(message.gossip.size() <= kMaxGossipEntries);
  return std::min(message.gossip.size(), kMaxGossipEntries);
}

size_t JobCount(const Message& message) {
  assert(message.jobs.size() <= kMaxJobsPerMessage);
  return std::min(message.jobs.size(), size_t{kMaxJobsPerMessage});
}

size_t EncodedSize(const Message& message) {
  size_t size = kFixedHeaderSize + std::min(message.sender_ip.size(), kMaxIpSize);
  if (IsGossipType(message.type)) {
    size += 2;
    for (size_t i = 0; i < GossipCount(message); ++i) {
      size += kGossipFixedSize + std::min(message.gossip[i].ip.size(), kMaxIpSize);
    }
  } else if (message.type == static_cast<uint8_t>(MessageType::kFail)) {
    size += kNodeIdSize;
  } else if (IsJobIdType(message.type)) {
    size += kJobIdBodySize;
  } else if (IsQueueType(message.type)) {
    size += kQueueFixedSize + message.queue.size();
  } else if (IsJobsType(message.type)) {
    size += 4;
    for (size_t i = 0; i < JobCount(message); ++i) size += 4 + message.jobs[i].size();
  }
  return size;
}

// --- Decoding -------------------------------------------------------------------------

using Cursor = ByteCursor<std::endian::big>;

template <typename T>
T ReadAt(std::string_view data, size_t offset) {
  Cursor cursor{data, offset};
  return cursor.Read<T>();
}

Status Error(std::string what) { return Status::Error(std::move(what)); }

Status EntryError(std::string_view what, size_t index) {
  return Error(std::string(what) + " gossip entry " + std::to_string(index));
}

// One gossip entry; `index` is for the error text.
Status DecodeGossipEntry(Cursor& in, size_t index, GossipEntry& entry) {
  if (in.left() < kGossipFixedSize) return EntryError("truncated", index);
  std::string_view id = in.Bytes(kNodeIdSize);
  if (!IsNodeId(id)) return EntryError("bad node id in", index);
  const size_t ip_size = in.Read<uint8_t>();
  if (ip_size > kMaxIpSize) {
    return EntryError("ip length " + std::to_string(ip_size) + " too long in", index);
  }
  if (in.left() < ip_size + kGossipFixedSize - kNodeIdSize - 1) {
    return EntryError("truncated", index);
  }
  std::string_view ip = in.Bytes(ip_size);
  if (!IsIpText(ip)) return EntryError("bad ip in", index);
  entry.id = id;
  entry.ip = ip;
  entry.port = in.Read<uint16_t>();
  entry.bus_port = in.Read<uint16_t>();
  entry.flags = in.Read<uint16_t>();
  entry.ping_sent = in.Read<uint64_t>();
  entry.pong_received = in.Read<uint64_t>();
  return Status::Ok();
}

Status DecodeGossip(Cursor& in, std::vector<GossipEntry>& gossip) {
  if (in.left() < 2) return Error("truncated gossip count");
  const size_t count = in.Read<uint16_t>();
  // Checked before allocating, so a lying count costs nothing.
  if (count > in.left() / kGossipFixedSize) {
    return Error("gossip count " + std::to_string(count) + " too big for " +
                 std::to_string(in.left()) + " bytes");
  }
  gossip.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (Status status = DecodeGossipEntry(in, i, gossip[i]); !status.ok()) return status;
  }
  return Status::Ok();
}

Status DecodeJobIdBody(Cursor& in, Message& message) {
  if (in.left() < kJobIdBodySize) return Error("truncated job id body");
  std::string_view id = in.Bytes(kJobIdSize);
  if (!engine::IsValidJobIdFormat(id)) return Error("bad job id");
  message.job_id = id;
  message.aux = in.Read<uint32_t>();
  return Status::Ok();
}

Status DecodeQueueBody(Cursor& in, Message& message) {
  if (in.left() < kQueueFixedSize) return Error("truncated queue body");
  message.aux = in.Read<uint32_t>();
  const size_t size = in.Read<uint32_t>();
  if (size > in.left()) {
    return Error("queue length " + std::to_string(size) + " too big for " +
                 std::to_string(in.left()) + " bytes");
  }
  message.queue = in.Bytes(size);
  return Status::Ok();
}

Status DecodeJobs(Cursor& in, std::vector<std::string>& jobs) {
  if (in.left() < 4) return Error("truncated job count");
  const size_t count = in.Read<uint32_t>();
  // Checked before allocating: each job takes at least its 4-byte length.
  if (count > kMaxJobsPerMessage) return Error("job count " + std::to_string(count) + " too big");
  if (count > in.left() / 4) {
    return Error("job count " + std::to_string(count) + " too big for " +
                 std::to_string(in.left()) + " bytes");
  }
  jobs.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (in.left() < 4) return Error("truncated job " + std::to_string(i));
    const size_t size = in.Read<uint32_t>();
    if (size > in.left()) {
      return Error("job " + std::to_string(i) + " length " + std::to_string(size) +
                   " too big for " + std::to_string(in.left()) + " bytes");
    }
    jobs[i] = in.Bytes(size);
  }
  return Status::Ok();
}

}  // namespace

bool IsKnownType(uint8_t type) {
  return IsGossipType(type) || type == static_cast<uint8_t>(MessageType::kFail) ||
         IsJobIdType(type) || IsQueueType(type) || IsJobsType(type);
}

std::string_view TypeName(uint8_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kPing:
      return "ping";
    case MessageType::kPong:
      return "pong";
    case MessageType::kMeet:
      return "meet";
    case MessageType::kFail:
      return "fail";
    case MessageType::kReplJob:
      return "repljob";
    case MessageType::kGotJob:
      return "gotjob";
    case MessageType::kEnqueue:
      return "enqueue";
    case MessageType::kWillQueue:
      return "willqueue";
    case MessageType::kQueued:
      return "queued";
    case MessageType::kWorking:
      return "working";
    case MessageType::kSetAck:
      return "setack";
    case MessageType::kGotAck:
      return "gotack";
    case MessageType::kDelJob:
      return "deljob";
    case MessageType::kNeedJobs:
      return "needjobs";
    case MessageType::kYourJobs:
      return "yourjobs";
    case MessageType::kPause:
      return "pause";
  }
  return "unknown";
}

void Encode(const Message& message, std::string& out) {
  const size_t size = EncodedSize(message);
  assert(size <= kMaxFrameSize);
  const size_t start = out.size();
  out.reserve(start + size);

  out.append(kBusMagic);
  PutBigEndian<uint16_t>(out, kBusVersion);
  out.push_back(static_cast<char>(message.type));
  out.push_back(static_cast<char>(message.msg_flags));
  PutBigEndian<uint32_t>(out, static_cast<uint32_t>(size));
  PutNodeId(out, message.sender);
  PutBigEndian<uint16_t>(out, message.port);
  PutBigEndian<uint16_t>(out, message.bus_port);
  PutBigEndian<uint16_t>(out, message.sender_flags);
  PutIp(out, message.sender_ip);

  if (IsGossipType(message.type)) {
    const size_t count = GossipCount(message);
    PutBigEndian<uint16_t>(out, static_cast<uint16_t>(count));
    for (size_t i = 0; i < count; ++i) {
      const GossipEntry& entry = message.gossip[i];
      PutNodeId(out, entry.id);
      PutIp(out, entry.ip);
      PutBigEndian<uint16_t>(out, entry.port);
      PutBigEndian<uint16_t>(out, entry.bus_port);
      PutBigEndian<uint16_t>(out, entry.flags);
      PutBigEndian<uint64_t>(out, entry.ping_sent);
      PutBigEndian<uint64_t>(out, entry.pong_received);
    }
  } else if (message.type == static_cast<uint8_t>(MessageType::kFail)) {
    PutNodeId(out, message.node);
  } else if (IsJobIdType(message.type)) {
    PutJobId(out, message.job_id);
    PutBigEndian<uint32_t>(out, message.aux);
  } else if (IsQueueType(message.type)) {
    PutBigEndian<uint32_t>(out, message.aux);
    PutBytes(out, message.queue);
  } else if (IsJobsType(message.type)) {
    const size_t count = JobCount(message);
    PutBigEndian<uint32_t>(out, static_cast<uint32_t>(count));
    for (size_t i = 0; i < count; ++i) PutBytes(out, message.jobs[i]);
  }
  assert(out.size() - start == size);
}

Result<size_t> FrameLength(std::string_view buffer) {
  // Each check runs as soon as its bytes are there, so a peer speaking something else
  // (an HTTP probe, a Redis client on the wrong port) is dropped at its first bytes.
  const size_t magic_seen = std::min(buffer.size(), kBusMagic.size());
  if (buffer.substr(0, magic_seen) != kBusMagic.substr(0, magic_seen)) {
    return Error("bad magic");
  }
  if (buffer.size() < kVersionOffset + 2) return size_t{0};
  const auto version = ReadAt<uint16_t>(buffer, kVersionOffset);
  if (version != kBusVersion) return Error("unsupported version " + std::to_string(version));
  if (buffer.size() < kLengthPrefixSize) return size_t{0};
  const auto length = ReadAt<uint32_t>(buffer, kLengthOffset);
  if (length < kFixedHeaderSize || length > kMaxFrameSize) {
    return Error("frame length " + std::to_string(length) + " out of range");
  }
  return size_t{length};
}

Result<Message> Decode(std::string_view frame) {
  Result<size_t> length = FrameLength(frame);
  if (!length.ok()) return length.status();
  if (*length == 0) return Error("truncated header (" + std::to_string(frame.size()) + " bytes)");
  if (*length != frame.size()) {
    return Error("frame length " + std::to_string(*length) + " but " +
                 std::to_string(frame.size()) + " bytes");
  }

  // The fixed header is all there: the length is at least kFixedHeaderSize.
  Message message;
  message.type = static_cast<uint8_t>(frame[kTypeOffset]);
  message.msg_flags = static_cast<uint8_t>(frame[kFlagsOffset]);
  Cursor in{frame, kLengthPrefixSize};
  std::string_view sender = in.Bytes(kNodeIdSize);
  if (!IsNodeId(sender)) return Error("bad sender id");
  message.sender = sender;
  message.port = in.Read<uint16_t>();
  message.bus_port = in.Read<uint16_t>();
  message.sender_flags = in.Read<uint16_t>();
  const size_t ip_size = in.Read<uint8_t>();
  if (ip_size > kMaxIpSize)
    return Error("sender ip length " + std::to_string(ip_size) + " too long");
  if (in.left() < ip_size) return Error("truncated sender ip");
  std::string_view ip = in.Bytes(ip_size);
  if (!IsIpText(ip)) return Error("bad sender ip");
  message.sender_ip = ip;

  if (IsGossipType(message.type)) {
    if (Status status = DecodeGossip(in, message.gossip); !status.ok()) return status;
  } else if (message.type == static_cast<uint8_t>(MessageType::kFail)) {
    if (in.left() < kNodeIdSize) return Error("truncated fail body");
    std::string_view node = in.Bytes(kNodeIdSize);
    if (!IsNodeId(node)) return Error("bad node id in fail body");
    message.node = node;
  } else if (IsJobIdType(message.type)) {
    if (Status status = DecodeJobIdBody(in, message); !status.ok()) return status;
  } else if (IsQueueType(message.type)) {
    if (Status status = DecodeQueueBody(in, message); !status.ok()) return status;
  } else if (IsJobsType(message.type)) {
    if (Status status = DecodeJobs(in, message.jobs); !status.ok()) return status;
  } else {
    return message;  // A newer peer's type: the body is not ours to read.
  }
  if (in.left() != 0) return Error(std::to_string(in.left()) + " trailing bytes");
  return message;
}

}  // namespace disque::cluster
