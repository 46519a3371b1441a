#pragma once

// The cluster bus wire format: framed, length-prefixed, versioned binary messages
// (docs/cluster-bus.md). Our own encoding, not Disque's: PROTOCOL.md part II fixes the
// semantics only. This file knows bytes, nothing about sockets or the node table.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/status.h"

namespace disque::cluster {

// Every frame starts with these four bytes.
inline constexpr std::string_view kBusMagic = "DQBS";
// The format version. A frame with another version is rejected.
inline constexpr uint16_t kBusVersion = 1;
// Fixed part of the header, before the sender's announced IP (see docs/cluster-bus.md).
inline constexpr size_t kFixedHeaderSize = 59;
// Largest frame accepted: room for a 512 MB job body and its metadata (issue 5).
inline constexpr uint32_t kMaxFrameSize = 600u * 1024 * 1024;
// Node IDs on the bus: 40 lowercase hex characters.
inline constexpr size_t kNodeIdSize = 40;
// Job IDs on the bus: 40 characters in Disque's job ID format (disque/engine/job_id.h).
inline constexpr size_t kJobIdSize = 40;
// Most jobs one REPLJOB or YOURJOBS may carry. Disque sends 1 and at most 100; the cap
// bounds what a lying count can make the decoder allocate.
inline constexpr uint32_t kMaxJobsPerMessage = 65535;
// Longest textual IP address (INET6_ADDRSTRLEN - 1).
inline constexpr size_t kMaxIpSize = 45;

enum class MessageType : uint8_t {
  kPing = 1,
  kPong = 2,
  kMeet = 3,
  kFail = 4,  // body: the ID of the node declared failed
  // Job messages (PROTOCOL.md II 5). The Bus routes them to the job engine.
  kReplJob = 5,    // jobs: one serialized job; msg_flags NOREPLY
  kGotJob = 6,     // job_id
  kEnqueue = 7,    // job_id, aux = delay in seconds
  kWillQueue = 8,  // job_id
  kQueued = 9,     // job_id; msg_flags INCR_NACKS, INCR_DELIV
  kWorking = 10,   // job_id
  kSetAck = 11,    // job_id, aux = may_have (the sender's nodes-delivered count)
  kGotAck = 12,    // job_id, aux = known (1 if the replier has the job)
  kDelJob = 13,    // job_id
  kNeedJobs = 14,  // queue, aux = count
  kYourJobs = 15,  // jobs: serialized jobs
  kPause = 16,     // queue, aux = pause flags (bit 0 in, bit 1 out)
};

// True for the types this version decodes a body for. Other types decode to a Message
// with the header only; the receiver logs and ignores them (PROTOCOL.md II 1).
bool IsKnownType(uint8_t type);
std::string_view TypeName(uint8_t type);  // "ping", ..., "unknown"

// The per-message flags byte (PROTOCOL.md II 1).
inline constexpr uint8_t kMsgNoReply = 1 << 0;
inline constexpr uint8_t kMsgIncrNacks = 1 << 1;
inline constexpr uint8_t kMsgIncrDeliv = 1 << 2;

// Node flags as carried in headers and gossip entries (the same bits as the node table).
inline constexpr uint16_t kNodeMyself = 1 << 0;
inline constexpr uint16_t kNodePfail = 1 << 1;
inline constexpr uint16_t kNodeFail = 1 << 2;
inline constexpr uint16_t kNodeHandshake = 1 << 3;
inline constexpr uint16_t kNodeNoAddr = 1 << 4;
inline constexpr uint16_t kNodeMeet = 1 << 5;
inline constexpr uint16_t kNodeLeaving = 1 << 6;

// What a node says about another in PING, PONG and MEET (PROTOCOL.md II 3.6). The ping
// and pong times are carried, as Disque does, but receivers do not use them.
struct GossipEntry {
  std::string id;        // 40 hex
  std::string ip;        // may be empty (unknown)
  uint16_t port = 0;     // client port
  uint16_t bus_port = 0; // bus port (client port + 10000 unless announced otherwise)
  uint16_t flags = 0;    // kNode* bits
  uint64_t ping_sent = 0;
  uint64_t pong_received = 0;

  bool operator==(const GossipEntry&) const = default;
};

struct Message {
  uint8_t type = 0;        // a MessageType value; unknown values are kept as received
  uint8_t msg_flags = 0;   // kMsg* bits
  std::string sender;      // sender's node ID, 40 hex
  std::string sender_ip;   // the sender's announced IP; empty: use the connection's peer address
  uint16_t port = 0;       // sender's client port
  uint16_t bus_port = 0;   // sender's bus port
  uint16_t sender_flags = 0;  // kNode* bits of the sender; receivers use kNodeLeaving only

  std::vector<GossipEntry> gossip;  // PING, PONG, MEET
  std::string node;                 // FAIL: the failing node's ID
  std::string job_id;               // GOTJOB..DELJOB (types 6-13): the 40-character job ID
  uint32_t aux = 0;                 // types 6-13: the aux value; NEEDJOBS: count; PAUSE: flags
  std::string queue;                // NEEDJOBS, PAUSE: queue name (any bytes)
  std::vector<std::string> jobs;    // REPLJOB, YOURJOBS: serialized jobs, opaque bytes here

  bool operator==(const Message&) const = default;
};

// Appends one encoded frame to `out`. The message must be valid (node IDs of 40 hex
// characters, a job ID in the job ID format, IPs of at most kMaxIpSize bytes, at most
// 65535 gossip entries, at most kMaxJobsPerMessage jobs, a frame of at most
// kMaxFrameSize). The body follows the type: gossip for PING, PONG and MEET, `node` for
// FAIL, `job_id` and `aux` for types 6 to 13, `aux` and `queue` for NEEDJOBS and PAUSE,
// `jobs` for REPLJOB and YOURJOBS, nothing for other types; fields the type does not
// carry are not encoded.
void Encode(const Message& message, std::string& out);

// Looks at the start of a receive buffer: 0 if more bytes are needed to know the frame
// length, the length of the first frame if known (it may be more than is buffered),
// or an error if the bytes cannot start a frame (bad magic, version or length). Each
// check runs as soon as its bytes are buffered: the magic from the first byte, the
// version from the 6th, the length from the 12th. The caller closes the link on an
// error; the message is a short reason for the log.
Result<size_t> FrameLength(std::string_view buffer);

// Decodes exactly one complete frame (as delimited by FrameLength). Rejects anything
// malformed: bad magic, version or length, node IDs that are not 40 lowercase hex
// characters, job IDs not in the job ID format, IPs that are too long or contain bytes
// other than [0-9a-fA-F.:], counts and lengths that disagree with the frame length,
// trailing bytes. Job blobs are not looked into. Unknown types decode to the header only.
Result<Message> Decode(std::string_view frame);

}  // namespace disque::cluster
