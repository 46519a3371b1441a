// The per-client limit rules that decide on their own, with times given explicitly (the
// integration side is robustness_test's Output*Limit* tests).

#include <gtest/gtest.h>

#include <cstdint>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>

#include "disque/server/client.h"
#include "disque/server/server.h"

namespace disque::server {
namespace {

constexpr int64_t kHard = 1000, kSoft = 100, kSoftSeconds = 2;

TEST(OutputLimitTest, NoLimitsNeverCloses) {
  OutputLimit limit;
  for (int64_t t = 0; t < 100000; t += 1000) EXPECT_FALSE(limit.Over(INT64_MAX / 2, 0, 0, 0, t));
}

TEST(OutputLimitTest, HardLimitClosesAtOnceAboveItOnly) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kHard, kHard, 0, 0, 0));
  EXPECT_TRUE(limit.Over(kHard + 1, kHard, 0, 0, 0));
}

TEST(OutputLimitTest, SoftLimitClosesAfterItsSecondsAboveIt) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 10'000));  // starts the count
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 12'000));  // more than 2 s, not 2 s
  EXPECT_TRUE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 12'001));
}

TEST(OutputLimitTest, DroppingToTheSoftLimitStartsTheCountAgain) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 0));
  EXPECT_FALSE(limit.Over(kSoft, kHard, kSoft, kSoftSeconds, 1'500));  // at the limit: not above
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 1'600));
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 3'600));
  EXPECT_TRUE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 3'601));
}

TEST(OutputLimitTest, ACompletedWriteStartsTheCountAgain) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 0));
  limit.Reset();  // a client that reads: each big batch is taken, then the next comes
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 5'000));
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 7'000));
  EXPECT_TRUE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 7'001));
}

TEST(OutputLimitTest, SoftLimitWithZeroSecondsClosesAtTheNextCheck) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, 0, kSoft, 0, 5));  // as in Redis: not on first sight
  EXPECT_TRUE(limit.Over(kSoft + 1, 0, kSoft, 0, 6));
}

TEST(OutputLimitTest, HugeSoftSecondsDoNotOverflow) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, 0, kSoft, INT64_MAX, 0));
  EXPECT_FALSE(limit.Over(kSoft + 1, 0, kSoft, INT64_MAX, INT64_MAX / 2));
}

sockaddr_storage Peer(const std::string& ip) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, ip.c_str(), &reinterpret_cast<sockaddr_in&>(ss).sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr), 1) << ip;
    ss.ss_family = AF_INET6;
  }
  return ss;
}

TEST(ProtectedModeTest, WithDefaultsOnlyLoopbackPeersAreAccepted) {
  const config::Config cfg;  // protected-mode yes, no bind, no requirepass
  ASSERT_TRUE(cfg.protected_mode);
  for (const char* ip : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_FALSE(ProtectedModeRefuses(cfg, Peer(ip))) << ip;
  }
  for (const char* ip : {"10.0.0.1", "192.168.1.7", "128.0.0.1", "126.255.255.255", "::2", "fe80::1",
                         "::ffff:10.0.0.1", "2001:db8::1"}) {
    EXPECT_TRUE(ProtectedModeRefuses(cfg, Peer(ip))) << ip;
  }
  sockaddr_storage unix_peer{};
  unix_peer.ss_family = AF_UNIX;
  EXPECT_FALSE(ProtectedModeRefuses(cfg, unix_peer));
}

TEST(ProtectedModeTest, APasswordABindAddressOrTurningItOffLetsEveryoneIn) {
  const sockaddr_storage remote = Peer("10.1.2.3");
  config::Config with_password;
  with_password.requirepass = "secret";
  EXPECT_FALSE(ProtectedModeRefuses(with_password, remote));
  config::Config with_bind;
  with_bind.bind = {"10.1.2.1"};
  EXPECT_FALSE(ProtectedModeRefuses(with_bind, remote));
  config::Config off;
  off.protected_mode = false;
  EXPECT_FALSE(ProtectedModeRefuses(off, remote));
}

TEST(ProtectedModeTest, AWildcardAmongTheBindAddressesCountsAsEveryInterface) {
  config::Config cfg;
  cfg.bind = {"127.0.0.1", "0.0.0.0"};
  EXPECT_TRUE(ProtectedModeRefuses(cfg, Peer("10.1.2.3")));
  cfg.bind = {"::"};
  EXPECT_TRUE(ProtectedModeRefuses(cfg, Peer("2001:db8::1")));
  EXPECT_FALSE(ProtectedModeRefuses(cfg, Peer("::1")));
}

}  // namespace
}  // namespace disque::server
