#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "disque/cluster/message.h"

namespace disque::cluster {

// gtest prints a Message as raw bytes otherwise.
void PrintTo(const GossipEntry& e, std::ostream* os) {
  *os << "{" << e.id << " '" << e.ip << "' " << e.port << " " << e.bus_port << " " << e.flags << " "
      << e.ping_sent << " " << e.pong_received << "}";
}

void PrintTo(const Message& m, std::ostream* os) {
  *os << "{type " << int{m.type} << " flags " << int{m.msg_flags} << " sender " << m.sender
      << " ip '" << m.sender_ip << "' " << m.port << " " << m.bus_port << " " << m.sender_flags
      << " node '" << m.node << "' gossip [";
  for (const GossipEntry& e : m.gossip) PrintTo(e, os);
  *os << "] job_id '" << m.job_id << "' aux " << m.aux << " queue of " << m.queue.size()
      << " bytes, jobs of sizes [";
  for (const std::string& job : m.jobs) *os << " " << job.size();
  *os << " ]}";
}

namespace {

constexpr uint8_t kPing = static_cast<uint8_t>(MessageType::kPing);
constexpr uint8_t kPong = static_cast<uint8_t>(MessageType::kPong);
constexpr uint8_t kMeet = static_cast<uint8_t>(MessageType::kMeet);
constexpr uint8_t kFail = static_cast<uint8_t>(MessageType::kFail);
constexpr uint8_t kReplJob = static_cast<uint8_t>(MessageType::kReplJob);
constexpr uint8_t kGotJob = static_cast<uint8_t>(MessageType::kGotJob);
constexpr uint8_t kSetAck = static_cast<uint8_t>(MessageType::kSetAck);
constexpr uint8_t kDelJob = static_cast<uint8_t>(MessageType::kDelJob);
constexpr uint8_t kNeedJobs = static_cast<uint8_t>(MessageType::kNeedJobs);
constexpr uint8_t kYourJobs = static_cast<uint8_t>(MessageType::kYourJobs);
constexpr uint8_t kPause = static_cast<uint8_t>(MessageType::kPause);
// The body kinds of the job messages (PROTOCOL.md II 5).
constexpr uint8_t kJobIdTypes[] = {6, 7, 8, 9, 10, 11, 12, 13};  // GOTJOB to DELJOB
constexpr uint8_t kQueueTypes[] = {kNeedJobs, kPause};
constexpr uint8_t kJobsTypes[] = {kReplJob, kYourJobs};

constexpr std::string_view kSender = "0123456789abcdef0123456789abcdef01234567";
constexpr std::string_view kOther = "fedcba9876543210fedcba9876543210fedcba98";
// The longest IPv6 text: an IPv4-mapped address with every group written out.
constexpr std::string_view kLongestIp = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
static_assert(kLongestIp.size() == kMaxIpSize);
constexpr std::string_view kJobId = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";

// A distinct valid node ID per n.
std::string NodeId(unsigned n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(kNodeIdSize, 'a');
  for (size_t i = 0; i < 8; ++i) id[i] = kHex[(n >> (4 * (7 - i))) & 15];
  return id;
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

GossipEntry Entry(unsigned n, std::string ip) {
  return GossipEntry{NodeId(n),
                     std::move(ip),
                     static_cast<uint16_t>(7000 + n),
                     static_cast<uint16_t>(17000 + n),
                     kNodePfail,
                     1700000000000ull + n,
                     1700000000500ull + n};
}

Message Header(uint8_t type, std::string ip = "127.0.0.1") {
  Message m;
  m.type = type;
  m.sender = std::string(kSender);
  m.sender_ip = std::move(ip);
  m.port = 7711;
  m.bus_port = 17711;
  return m;
}

Message Ping(size_t entries, uint8_t type = kPing) {
  Message m = Header(type);
  static const char* const kIps[] = {"10.0.0.1", "", "::1", "fe80::1:2:3:4", "192.168.100.200"};
  for (size_t i = 0; i < entries; ++i) {
    m.gossip.push_back(Entry(static_cast<unsigned>(i), kIps[i % 5]));
  }
  return m;
}

Message Fail() {
  Message m = Header(kFail);
  m.node = std::string(kOther);
  return m;
}

Message JobIdMessage(uint8_t type, uint32_t aux = 0) {
  Message m = Header(type);
  m.job_id = std::string(kJobId);
  m.aux = aux;
  return m;
}

Message QueueMessage(uint8_t type, std::string queue, uint32_t aux = 1) {
  Message m = Header(type);
  m.queue = std::move(queue);
  m.aux = aux;
  return m;
}

Message JobsMessage(uint8_t type, std::vector<std::string> jobs) {
  Message m = Header(type);
  m.jobs = std::move(jobs);
  return m;
}

// Bytes that no text would hold: NUL, CR LF, high bytes.
constexpr std::string_view kBinary("\0\r\n\xff\x80 job\0", 10);

std::string Encoded(const Message& m) {
  std::string out;
  Encode(m, out);
  return out;
}

// Writes frames field by field without any checks, to build what Encode never would.
// Frame() fills in the length field from the bytes written.
class RawFrame {
 public:
  explicit RawFrame(uint8_t type, std::string_view sender = kSender, std::string_view ip = "") {
    Str(kBusMagic).U16(kBusVersion).U8(type).U8(0).U32(0).Str(sender).U16(7711).U16(17711);
    U16(0).U8(static_cast<uint8_t>(ip.size())).Str(ip);
  }
  RawFrame& U8(uint8_t v) { return Int(v, 1); }
  RawFrame& U16(uint16_t v) { return Int(v, 2); }
  RawFrame& U32(uint32_t v) { return Int(v, 4); }
  RawFrame& U64(uint64_t v) { return Int(v, 8); }
  RawFrame& Str(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  RawFrame& Entry(std::string_view id, std::string_view ip) {
    return Str(id).U8(static_cast<uint8_t>(ip.size())).Str(ip).U16(1).U16(2).U16(3).U64(4).U64(5);
  }
  std::string Frame() const {
    std::string frame = bytes_;
    for (size_t i = 0; i < 4; ++i) frame[8 + i] = static_cast<char>(frame.size() >> (24 - 8 * i));
    return frame;
  }

 private:
  RawFrame& Int(uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;) bytes_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  std::string bytes_;
};

void SetLength(std::string& frame, uint32_t length) {
  for (size_t i = 0; i < 4; ++i) frame[8 + i] = static_cast<char>(length >> (24 - 8 * i));
}

std::string ErrorOf(std::string_view frame) {
  Result<Message> r = Decode(frame);
  return r.ok() ? "(decoded)" : std::string(r.status().message());
}

std::string FrameLengthError(std::string_view buffer) {
  Result<size_t> r = FrameLength(buffer);
  return r.ok() ? "(length " + std::to_string(*r) + ")" : std::string(r.status().message());
}

// --- Encoding: the exact bytes -----------------------------------------------------------

TEST(ClusterMessage, FailEncodesToTheDocumentedBytes) {
  Message m = Fail();
  m.msg_flags = kMsgNoReply;
  m.sender_ip = "10.0.0.1";
  m.sender_flags = kNodeLeaving;
  const std::string expected =
      std::string("DQBS") + Bytes({0, 1, 4, 1, 0, 0, 0, 107}) + std::string(kSender) +
      Bytes({0x1e, 0x1f, 0x45, 0x2f, 0x00, 0x40, 8}) + "10.0.0.1" + std::string(kOther);
  EXPECT_EQ(Encoded(m), expected);
}

TEST(ClusterMessage, PingEncodesToTheDocumentedBytes) {
  Message m = Header(kPing, "");
  m.sender_flags = kNodeMyself;
  m.gossip.push_back(GossipEntry{std::string(kOther), "::1", 7712, 17712, kNodePfail,
                                 0x0102030405060708ull, 0x1122334455667788ull});
  const std::string expected =
      std::string("DQBS") + Bytes({0, 1, 1, 0, 0, 0, 0, 127}) + std::string(kSender) +
      Bytes({0x1e, 0x1f, 0x45, 0x2f, 0x00, 0x01, 0}) + Bytes({0, 1}) + std::string(kOther) +
      Bytes({3}) + "::1" + Bytes({0x1e, 0x20, 0x45, 0x30, 0x00, 0x02}) +
      Bytes({1, 2, 3, 4, 5, 6, 7, 8}) + Bytes({0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88});
  EXPECT_EQ(Encoded(m), expected);
}

TEST(ClusterMessage, EncodeAppendsToTheBuffer) {
  std::string out = "prefix";
  Encode(Fail(), out);
  EXPECT_EQ(out, "prefix" + Encoded(Fail()));
}

// --- Round trips -------------------------------------------------------------------------

void ExpectRoundTrip(const Message& m) {
  const std::string frame = Encoded(m);
  Result<size_t> length = FrameLength(frame);
  ASSERT_TRUE(length.ok()) << length.status().message();
  EXPECT_EQ(*length, frame.size());
  Result<Message> decoded = Decode(frame);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, m);
  EXPECT_EQ(Encoded(*decoded), frame);
}

TEST(ClusterMessage, GossipTypesRoundTripWithZeroOneAndManyEntries) {
  for (uint8_t type : {kPing, kPong, kMeet}) {
    for (size_t entries : {0, 1, 2, 5, 100}) {
      SCOPED_TRACE(std::string(TypeName(type)) + " with " + std::to_string(entries));
      ExpectRoundTrip(Ping(entries, type));
    }
  }
}

TEST(ClusterMessage, FailRoundTrips) { ExpectRoundTrip(Fail()); }

TEST(ClusterMessage, SenderIpsRoundTrip) {
  const std::string_view ips[] = {"",
                                  "1.2.3.4",
                                  "255.255.255.255",
                                  "::",
                                  "::1",
                                  "2001:DB8::FF00:42:8329",
                                  "::ffff:192.0.2.128",
                                  kLongestIp};
  for (std::string_view ip : ips) {
    SCOPED_TRACE(ip);
    ExpectRoundTrip(Header(kPing, std::string(ip)));
    Message fail = Fail();
    fail.sender_ip = ip;
    ExpectRoundTrip(fail);
  }
}

TEST(ClusterMessage, MaximumFieldValuesRoundTrip) {
  Message m = Header(kPong, std::string(kLongestIp));
  m.msg_flags = 0xff;
  m.port = m.bus_port = m.sender_flags = 0xffff;
  constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
  m.gossip.push_back(GossipEntry{NodeId(0xffffffff), std::string(kLongestIp), 0xffff, 0xffff,
                                 0xffff, kMax64, kMax64});
  m.gossip.push_back(GossipEntry{NodeId(0), "", 0, 0, 0, 0, 0});
  ExpectRoundTrip(m);
}

TEST(ClusterMessage, TheMostGossipEntriesAFrameCanCountRoundTrip) {
  Message m = Ping(65535);
  ExpectRoundTrip(m);
}

TEST(ClusterMessage, UnknownTypeEncodesAndDecodesTheHeaderOnly) {
  Message m = Ping(3);
  m.type = 200;
  m.node = std::string(kOther);
  m.job_id = std::string(kJobId);
  m.aux = 7;
  m.queue = "q";
  m.jobs = {"job"};
  const std::string frame = Encoded(m);
  EXPECT_EQ(frame.size(), kFixedHeaderSize + m.sender_ip.size());
  Result<Message> decoded = Decode(frame);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  Message header = Header(200);
  EXPECT_EQ(*decoded, header);
}

TEST(ClusterMessage, UnknownTypeSkipsAnyBody) {
  for (uint8_t type : {0, 17, 99, 255}) {
    const std::string frame =
        RawFrame(type, kSender, "::1").Str(std::string("\0\xff garbage \x01", 13)).Frame();
    Result<Message> decoded = Decode(frame);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(decoded->type, type);
    EXPECT_EQ(decoded->sender, kSender);
    EXPECT_EQ(decoded->sender_ip, "::1");
    EXPECT_TRUE(decoded->gossip.empty());
    EXPECT_TRUE(decoded->node.empty());
    EXPECT_TRUE(decoded->job_id.empty());
    EXPECT_TRUE(decoded->jobs.empty());
  }
}

TEST(ClusterMessage, TypeNamesAndKnownTypes) {
  EXPECT_EQ(TypeName(kPing), "ping");
  EXPECT_EQ(TypeName(kPong), "pong");
  EXPECT_EQ(TypeName(kMeet), "meet");
  EXPECT_EQ(TypeName(kFail), "fail");
  const std::string_view job_names[] = {"repljob", "gotjob",   "enqueue",  "willqueue",
                                        "queued",  "working",  "setack",   "gotack",
                                        "deljob",  "needjobs", "yourjobs", "pause"};
  for (uint8_t type = 5; type <= 16; ++type) EXPECT_EQ(TypeName(type), job_names[type - 5]);
  EXPECT_EQ(TypeName(0), "unknown");
  EXPECT_EQ(TypeName(17), "unknown");
  for (int type = 0; type < 256; ++type) {
    EXPECT_EQ(IsKnownType(static_cast<uint8_t>(type)), type >= 1 && type <= 16) << type;
  }
}

// --- Framing -----------------------------------------------------------------------------

TEST(ClusterMessage, FrameLengthOnEveryPrefixOfAFrame) {
  const std::string frame = Encoded(Ping(2));
  for (size_t n = 0; n <= frame.size(); ++n) {
    Result<size_t> length = FrameLength(std::string_view(frame).substr(0, n));
    ASSERT_TRUE(length.ok()) << n << ": " << length.status().message();
    EXPECT_EQ(*length, n < 12 ? 0 : frame.size()) << n;
  }
}

TEST(ClusterMessage, FramesBackToBackSplitAtEveryByte) {
  const std::vector<Message> sent = {Ping(3), Fail(), JobsMessage(kYourJobs, {"a", "", "bc"}),
                                     JobIdMessage(kSetAck, 2), QueueMessage(kPause, "q", 3)};
  std::string stream;
  for (const Message& m : sent) Encode(m, stream);
  // A receiver that gets the stream in two reads, split at every possible point.
  for (size_t split = 0; split <= stream.size(); ++split) {
    std::string buffer;
    std::vector<Message> received;
    for (std::string_view read :
         {std::string_view(stream).substr(0, split), std::string_view(stream).substr(split)}) {
      buffer.append(read);
      for (;;) {
        Result<size_t> length = FrameLength(buffer);
        ASSERT_TRUE(length.ok()) << length.status().message();
        if (*length == 0 || *length > buffer.size()) break;
        Result<Message> m = Decode(std::string_view(buffer).substr(0, *length));
        ASSERT_TRUE(m.ok()) << m.status().message();
        received.push_back(*m);
        buffer.erase(0, *length);
      }
    }
    EXPECT_EQ(received, sent) << split;
    EXPECT_TRUE(buffer.empty());
  }
}

TEST(ClusterMessage, BadMagicIsRejectedAtTheFirstWrongByte) {
  EXPECT_EQ(FrameLengthError(""), "(length 0)");
  EXPECT_EQ(FrameLengthError("D"), "(length 0)");
  EXPECT_EQ(FrameLengthError("DQB"), "(length 0)");
  EXPECT_EQ(FrameLengthError("X"), "bad magic");
  EXPECT_EQ(FrameLengthError("DX"), "bad magic");
  EXPECT_EQ(FrameLengthError("DQBX"), "bad magic");
  EXPECT_EQ(FrameLengthError("dqbs"), "bad magic");
  EXPECT_EQ(FrameLengthError("GET / HTTP/1.1\r\n"), "bad magic");
  EXPECT_EQ(FrameLengthError("*1\r\n$4\r\nPING\r\n"), "bad magic");
  std::string frame = Encoded(Fail());
  frame[3] = 'X';
  EXPECT_EQ(ErrorOf(frame), "bad magic");
}

TEST(ClusterMessage, BadVersionIsRejectedOnceItsBytesAreThere) {
  std::string frame = Encoded(Fail());
  frame[4] = 0;
  frame[5] = 7;
  EXPECT_EQ(FrameLengthError(std::string_view(frame).substr(0, 5)), "(length 0)");
  EXPECT_EQ(FrameLengthError(std::string_view(frame).substr(0, 6)), "unsupported version 7");
  EXPECT_EQ(FrameLengthError(frame), "unsupported version 7");
  EXPECT_EQ(ErrorOf(frame), "unsupported version 7");
  frame[5] = 0;
  EXPECT_EQ(FrameLengthError(frame), "unsupported version 0");
  frame[4] = 1;
  frame[5] = 1;
  EXPECT_EQ(FrameLengthError(frame), "unsupported version 257");
}

TEST(ClusterMessage, FrameLengthOutOfRangeIsRejected) {
  std::string frame = Encoded(Fail());
  for (uint32_t bad : {0u, 12u, 58u, kMaxFrameSize + 1, 0xffffffffu}) {
    SetLength(frame, bad);
    const std::string expected = "frame length " + std::to_string(bad) + " out of range";
    EXPECT_EQ(FrameLengthError(std::string_view(frame).substr(0, 12)), expected);
    EXPECT_EQ(ErrorOf(frame), expected);
  }
  for (uint32_t good : {59u, 1000u, kMaxFrameSize}) {
    SetLength(frame, good);
    EXPECT_EQ(FrameLengthError(frame), "(length " + std::to_string(good) + ")");
  }
}

TEST(ClusterMessage, LengthFieldMustEqualTheFrameSize) {
  const std::string frame = Encoded(Fail());
  ASSERT_EQ(frame.size(), 108u);
  std::string longer = frame;
  SetLength(longer, static_cast<uint32_t>(frame.size() + 1));
  EXPECT_EQ(ErrorOf(longer), "frame length 109 but 108 bytes");
  std::string shorter = frame;
  SetLength(shorter, static_cast<uint32_t>(frame.size() - 1));
  EXPECT_EQ(ErrorOf(shorter), "frame length 107 but 108 bytes");
  EXPECT_EQ(ErrorOf(frame + "x"), "frame length 108 but 109 bytes");
  EXPECT_EQ(ErrorOf(frame + Encoded(Fail())), "frame length 108 but 216 bytes");
  EXPECT_EQ(ErrorOf(std::string_view(frame).substr(0, 11)), "truncated header (11 bytes)");
}

// Every cut of a valid frame fails: as it is (the length disagrees), and with the length
// field rewritten to match (the body parser meets the end).
TEST(ClusterMessage, TruncationAtEveryByteIsRejected) {
  Message with_ips = Ping(3);
  with_ips.sender_ip = "fe80::1";
  for (const Message& m : {with_ips, Ping(0), Ping(1, kMeet), Fail()}) {
    const std::string frame = Encoded(m);
    for (size_t n = 0; n < frame.size(); ++n) {
      std::string cut = frame.substr(0, n);
      EXPECT_FALSE(Decode(cut).ok()) << TypeName(m.type) << " cut at " << n;
      if (n >= kFixedHeaderSize) {
        SetLength(cut, static_cast<uint32_t>(n));
        EXPECT_FALSE(Decode(cut).ok()) << TypeName(m.type) << " cut and relabelled at " << n;
      }
    }
  }
  std::string ping = Encoded(Ping(0, kPong));
  ping.resize(ping.size() - 2);
  SetLength(ping, static_cast<uint32_t>(ping.size()));
  EXPECT_EQ(ErrorOf(ping), "truncated gossip count");
}

TEST(ClusterMessage, TruncationErrorsSayWhere) {
  const std::string one = RawFrame(kPing).U16(1).Entry(kOther, "1.2.3.4").Frame();
  ASSERT_EQ(ErrorOf(one), "(decoded)");
  std::string cut = one.substr(0, one.size() - 1);
  SetLength(cut, static_cast<uint32_t>(cut.size()));
  EXPECT_EQ(ErrorOf(cut), "truncated gossip entry 0");
  EXPECT_EQ(ErrorOf(RawFrame(kFail).Str(kOther.substr(1)).Frame()), "truncated fail body");
  // The sender IP length claims more than the frame holds.
  std::string ip = RawFrame(kPing, kSender, "1.2.3.4").Frame();
  ip.resize(ip.size() - 2);
  SetLength(ip, static_cast<uint32_t>(ip.size()));
  EXPECT_EQ(ErrorOf(ip), "truncated sender ip");
}

TEST(ClusterMessage, IdsMustBeFortyLowercaseHexCharacters) {
  const std::string ping = Encoded(Ping(2));
  const std::string fail = Encoded(Fail());
  const size_t sender_at = 12;
  const size_t entry_id_at = kFixedHeaderSize + 9 + 2 + (kNodeIdSize + 1 + 8 + 22);  // entry 1
  const size_t node_at = fail.size() - kNodeIdSize;
  ASSERT_EQ(ping.substr(entry_id_at, kNodeIdSize), NodeId(1));
  struct Case {
    const std::string& frame;
    size_t at;
    std::string error;
  };
  for (const Case& c :
       {Case{ping, sender_at, "bad sender id"},
        Case{ping, entry_id_at, "bad node id in gossip entry 1"},
        Case{fail, sender_at, "bad sender id"}, Case{fail, node_at, "bad node id in fail body"}}) {
    for (size_t i = 0; i < kNodeIdSize; ++i) {
      for (char bad : {'A', 'F', 'g', 'G', 'z', ' ', '\0', '\xff', '/', ':', '`'}) {
        std::string frame = c.frame;
        frame[c.at + i] = bad;
        ASSERT_EQ(ErrorOf(frame), c.error) << "byte " << i << " = " << int{bad};
      }
    }
  }
}

TEST(ClusterMessage, IpsMustBeShortAndMadeOfAddressCharacters) {
  const std::string too_long(kMaxIpSize + 1, '1');
  EXPECT_EQ(ErrorOf(RawFrame(kPing, kSender, too_long).U16(0).Frame()),
            "sender ip length 46 too long");
  EXPECT_EQ(ErrorOf(RawFrame(kPing, kSender, std::string(255, '1')).U16(0).Frame()),
            "sender ip length 255 too long");
  EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(1).Entry(kOther, too_long).Frame()),
            "ip length 46 too long in gossip entry 0");
  const std::string_view bad_ips[] = {"1.2.3.4 ",  "localhost", "fe80::1%eth0",
                                      "1.2.3.4\n", "[::1]",     std::string_view("1.2\0.4", 6),
                                      "1.2.3.4/8", "g::1"};
  for (std::string_view bad : bad_ips) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ErrorOf(RawFrame(kPing, kSender, bad).U16(0).Frame()), "bad sender ip");
    EXPECT_EQ(ErrorOf(RawFrame(kFail, kSender, bad).Str(kOther).Frame()), "bad sender ip");
    EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(2).Entry(kOther, "::1").Entry(kOther, bad).Frame()),
              "bad ip in gossip entry 1");
  }
  EXPECT_EQ(ErrorOf(RawFrame(kPing, kSender, kLongestIp).U16(1).Entry(kOther, kLongestIp).Frame()),
            "(decoded)");
}

TEST(ClusterMessage, GossipCountMustFitTheFrame) {
  EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(1).Frame()), "gossip count 1 too big for 0 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(2).Entry(kOther, "1.2.3.4").Frame()),
            "gossip count 2 too big for 70 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kPong).U16(65535).Entry(kOther, "").Frame()),
            "gossip count 65535 too big for 63 bytes");
  // Enough bytes for two entries without IPs, but the first one's IP uses them up.
  std::string frame = RawFrame(kMeet).U16(2).Entry(kOther, kLongestIp).Frame();
  frame.append(63 - kLongestIp.size(), '0');
  SetLength(frame, static_cast<uint32_t>(frame.size()));
  EXPECT_EQ(ErrorOf(frame), "truncated gossip entry 1");
}

TEST(ClusterMessage, TrailingBytesAreRejected) {
  EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(0).U8(0).Frame()), "1 trailing bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kPing).U16(1).Entry(kOther, "").Str("abc").Frame()),
            "3 trailing bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kFail).Str(kOther).Str("0").Frame()), "1 trailing bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kFail).Str(kOther).Str(kOther).Frame()), "40 trailing bytes");
}

// --- Job messages (PROTOCOL.md II 5) -----------------------------------------------------

TEST(ClusterMessage, JobMessagesEncodeToTheDocumentedBytes) {
  const std::string header = std::string(kSender) + Bytes({0x1e, 0x1f, 0x45, 0x2f, 0x00, 0x00, 0});
  Message setack = JobIdMessage(kSetAck, 0x01020304);
  setack.sender_ip = "";
  EXPECT_EQ(Encoded(setack), std::string("DQBS") + Bytes({0, 1, 11, 0, 0, 0, 0, 103}) + header +
                                 std::string(kJobId) + Bytes({1, 2, 3, 4}));
  Message needjobs = QueueMessage(kNeedJobs, "q1", 5);
  needjobs.sender_ip = "";
  EXPECT_EQ(Encoded(needjobs), std::string("DQBS") + Bytes({0, 1, 14, 0, 0, 0, 0, 69}) + header +
                                   Bytes({0, 0, 0, 5, 0, 0, 0, 2}) + "q1");
  Message yourjobs = JobsMessage(kYourJobs, {"abc", ""});
  yourjobs.sender_ip = "";
  yourjobs.msg_flags = kMsgNoReply;
  EXPECT_EQ(Encoded(yourjobs), std::string("DQBS") + Bytes({0, 1, 15, 1, 0, 0, 0, 74}) + header +
                                   Bytes({0, 0, 0, 2, 0, 0, 0, 3}) + "abc" + Bytes({0, 0, 0, 0}));
}

TEST(ClusterMessage, JobIdTypesRoundTrip) {
  for (uint8_t type : kJobIdTypes) {
    for (uint32_t aux : {0u, 1u, 0x80000000u, 0xffffffffu}) {
      SCOPED_TRACE(std::string(TypeName(type)) + " aux " + std::to_string(aux));
      Message m = JobIdMessage(type, aux);
      m.msg_flags = kMsgIncrNacks | kMsgIncrDeliv;
      ExpectRoundTrip(m);
    }
  }
}

TEST(ClusterMessage, QueueTypesRoundTripWithAnyQueueName) {
  const std::string names[] = {"", "q", "a queue with spaces", std::string(kBinary),
                               std::string(100000, 'x')};
  for (uint8_t type : kQueueTypes) {
    for (const std::string& name : names) {
      for (uint32_t aux : {0u, 3u, 0xffffffffu}) {
        SCOPED_TRACE(std::string(TypeName(type)) + " queue of " + std::to_string(name.size()));
        ExpectRoundTrip(QueueMessage(type, name, aux));
      }
    }
  }
}

TEST(ClusterMessage, JobsTypesRoundTripWithAnyNumberOfOpaqueJobs) {
  std::string large(16u * 1024 * 1024, '\0');
  for (size_t i = 0; i < large.size(); i += 4093) large[i] = static_cast<char>(i);
  const std::vector<std::vector<std::string>> lists = {
      {}, {"one"}, {"", std::string(kBinary), "", "x", std::string(1000, 'y')}, {large}};
  for (uint8_t type : kJobsTypes) {
    for (const std::vector<std::string>& jobs : lists) {
      SCOPED_TRACE(std::string(TypeName(type)) + " with " + std::to_string(jobs.size()));
      Message m = JobsMessage(type, jobs);
      m.msg_flags = kMsgNoReply;
      ExpectRoundTrip(m);
    }
  }
}

TEST(ClusterMessage, TheMostJobsAMessageCanCountRoundTrip) {
  std::vector<std::string> jobs(kMaxJobsPerMessage);
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i] = std::to_string(i);
  ExpectRoundTrip(JobsMessage(kYourJobs, std::move(jobs)));
}

// Each type carries its own fields only; the others are not encoded and decode empty.
TEST(ClusterMessage, FieldsATypeDoesNotCarryAreNotEncoded) {
  Message everything = Ping(2);
  everything.node = std::string(kOther);
  everything.job_id = std::string(kJobId);
  everything.aux = 42;
  everything.queue = "q";
  everything.jobs = {"job 1", "job 2"};
  for (int type = 1; type <= 16; ++type) {
    SCOPED_TRACE(type);
    Message m = everything;
    m.type = static_cast<uint8_t>(type);
    Message expected = Header(m.type);
    if (type <= 3) expected.gossip = m.gossip;
    if (type == kFail) expected.node = m.node;
    if (type >= 6 && type <= 13) expected.job_id = m.job_id;
    if ((type >= 6 && type <= 13) || type == kNeedJobs || type == kPause) expected.aux = m.aux;
    if (type == kNeedJobs || type == kPause) expected.queue = m.queue;
    if (type == kReplJob || type == kYourJobs) expected.jobs = m.jobs;
    const std::string frame = Encoded(m);
    EXPECT_EQ(frame, Encoded(expected));
    Result<Message> decoded = Decode(frame);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(*decoded, expected);
  }
}

// Only the format is checked (PROTOCOL.md I 2.2): length 40, "D-" and the two dashes. The
// characters in between may be anything; such an ID names no job, and the engine says so.
TEST(ClusterMessage, JobIdsMustHaveTheJobIdFormat) {
  for (uint8_t type : kJobIdTypes) {
    SCOPED_TRACE(TypeName(type));
    const std::string frame = Encoded(JobIdMessage(type));
    const size_t at = frame.size() - kJobIdSize - 4;
    ASSERT_EQ(frame.substr(at, kJobIdSize), kJobId);
    for (size_t i : {0, 1, 10, 35}) {
      for (char bad : {'d', 'x', '_', ' ', '\0', '\xff'}) {
        std::string corrupt = frame;
        corrupt[at + i] = bad;
        ASSERT_EQ(ErrorOf(corrupt), "bad job id") << "byte " << i << " = " << int{bad};
      }
    }
    std::string odd = frame;
    for (size_t i : {2, 9, 11, 34, 36, 39}) odd[at + i] = '\0';
    EXPECT_EQ(ErrorOf(odd), "(decoded)");
  }
  EXPECT_EQ(ErrorOf(RawFrame(kGotJob).Str(std::string(kJobIdSize, '-')).U32(0).Frame()),
            "bad job id");
}

// Every cut of a valid frame fails, as it is and with the length field rewritten to match.
TEST(ClusterMessage, TruncatedJobMessagesAreRejectedAtEveryByte) {
  std::vector<Message> messages;
  for (uint8_t type : kJobIdTypes) messages.push_back(JobIdMessage(type, 9));
  for (uint8_t type : kQueueTypes) messages.push_back(QueueMessage(type, "queue"));
  for (uint8_t type : kQueueTypes) messages.push_back(QueueMessage(type, ""));
  for (uint8_t type : kJobsTypes) messages.push_back(JobsMessage(type, {"job", "", "other job"}));
  for (uint8_t type : kJobsTypes) messages.push_back(JobsMessage(type, {}));
  for (const Message& m : messages) {
    const std::string frame = Encoded(m);
    ASSERT_EQ(ErrorOf(frame), "(decoded)");
    for (size_t n = 0; n < frame.size(); ++n) {
      std::string cut = frame.substr(0, n);
      EXPECT_FALSE(Decode(cut).ok()) << TypeName(m.type) << " cut at " << n;
      if (n >= kFixedHeaderSize) {
        SetLength(cut, static_cast<uint32_t>(n));
        EXPECT_FALSE(Decode(cut).ok()) << TypeName(m.type) << " cut and relabelled at " << n;
      }
    }
  }
}

TEST(ClusterMessage, JobMessageTruncationErrorsSayWhere) {
  EXPECT_EQ(ErrorOf(RawFrame(kDelJob).Str(kJobId).U16(0).Frame()), "truncated job id body");
  EXPECT_EQ(ErrorOf(RawFrame(kPause).U32(0).Frame()), "truncated queue body");
  EXPECT_EQ(ErrorOf(RawFrame(kNeedJobs).U32(1).U32(5).Str("abcd").Frame()),
            "queue length 5 too big for 4 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kPause).U32(1).U32(0xffffffff).Frame()),
            "queue length 4294967295 too big for 0 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kReplJob).U16(0).Frame()), "truncated job count");
  EXPECT_EQ(ErrorOf(RawFrame(kYourJobs).U32(2).U32(1).Str("a").U16(0).U8(0).Frame()),
            "truncated job 1");
  EXPECT_EQ(ErrorOf(RawFrame(kYourJobs).U32(1).U32(10).Str("abc").Frame()),
            "job 0 length 10 too big for 3 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kReplJob).U32(2).U32(0).U32(0xffffffff).Frame()),
            "job 1 length 4294967295 too big for 0 bytes");
}

// The count is checked against the bytes left (4 per job at least) and the cap before
// anything is allocated.
TEST(ClusterMessage, JobCountMustFitTheFrame) {
  EXPECT_EQ(ErrorOf(RawFrame(kReplJob).U32(1).Frame()), "job count 1 too big for 0 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kYourJobs).U32(3).U32(0).U32(0).Frame()),
            "job count 3 too big for 8 bytes");
  EXPECT_EQ(ErrorOf(RawFrame(kYourJobs).U32(0xffffffff).U32(0).Frame()),
            "job count 4294967295 too big");
  // Enough bytes for the count, but over the cap.
  RawFrame over(kYourJobs);
  over.U32(kMaxJobsPerMessage + 1);
  for (uint32_t i = 0; i <= kMaxJobsPerMessage; ++i) over.U32(0);
  EXPECT_EQ(ErrorOf(over.Frame()), "job count 65536 too big");
  // Enough bytes for two empty jobs, but the first one's length uses them up.
  EXPECT_EQ(ErrorOf(RawFrame(kYourJobs).U32(2).U32(4).Str("abcd").Frame()), "truncated job 1");
}

TEST(ClusterMessage, JobMessageTrailingBytesAreRejected) {
  for (uint8_t type : kJobIdTypes) {
    EXPECT_EQ(ErrorOf(RawFrame(type).Str(kJobId).U32(0).U8(0).Frame()), "1 trailing bytes");
  }
  for (uint8_t type : kQueueTypes) {
    EXPECT_EQ(ErrorOf(RawFrame(type).U32(0).U32(1).Str("qq").Frame()), "1 trailing bytes");
    EXPECT_EQ(ErrorOf(RawFrame(type).U32(0).U32(0).Str(kJobId).Frame()), "40 trailing bytes");
  }
  for (uint8_t type : kJobsTypes) {
    EXPECT_EQ(ErrorOf(RawFrame(type).U32(0).U32(0).Frame()), "4 trailing bytes");
    EXPECT_EQ(ErrorOf(RawFrame(type).U32(1).U32(1).Str("abc").Frame()), "2 trailing bytes");
  }
}

}  // namespace
}  // namespace disque::cluster
