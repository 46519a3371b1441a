// The wire protocol and the connection-level commands, against the real binary
// (PROTOCOL.md 1.1-1.5 and 6.3-6.9): RESP multibulk and inline requests, pipelining,
// protocol errors, QUIT, PING/AUTH/TIME/INFO/COMMAND/CLIENT, idle timeouts, and the
// redis-cli and hiredis clients. Every test runs with --threads 1 and --threads 4; with
// four shards, connections land on different shards, so CLIENT LIST/KILL and INFO
// exercise the cross-shard fan-out.

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_client.h"
#include "support/reply_text.h"
#include "support/server_process.h"
#include "support/server_test.h"

namespace disque::test {
namespace {

using namespace std::chrono_literals;

using ProtocolTest = ServerTest;

// CLIENT LIST lines, each as a map of its key=value fields (and the keys in order).
struct ClientLine {
  std::map<std::string, std::string> fields;
  std::vector<std::string> keys;
};

std::vector<ClientLine> ClientList(RedisClient& c) {
  std::vector<ClientLine> out;
  for (const auto& line : Lines(c.Command({"CLIENT", "LIST"}).str)) {
    ClientLine cl;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      const size_t eq = word.find('=');
      const std::string key = word.substr(0, eq);
      cl.keys.push_back(key);
      cl.fields[key] = eq == std::string::npos ? "" : word.substr(eq + 1);
    }
    out.push_back(std::move(cl));
  }
  return out;
}

// The CLIENT LIST entry of the connection named `name`; empty fields if none.
ClientLine FindClient(RedisClient& c, const std::string& name) {
  for (auto& cl : ClientList(c)) {
    if (cl.fields["name"] == name) return cl;
  }
  return {};
}

// Sends `request` on a fresh connection and expects exactly `reply` followed by the
// server closing the connection.
void ExpectReplyThenClose(int port, const std::string& request, const std::string& reply) {
  RawConnection conn(port);
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send(request));
  bool closed = false;
  const std::string got = conn.ReadUntilClose(&closed, 5000);
  EXPECT_EQ(got, reply) << "request: " << request.substr(0, 80);
  EXPECT_TRUE(closed) << "the server must close the connection after: " << reply;
}

// ---------------------------------------------------------------------------------
// PING, command lookup, arity (PROTOCOL.md 1.2, 6.3, 6.5)

TEST_P(ProtocolTest, PingRepliesPongOrEchoesItsArgument) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  Reply r = c.Command({"PING", "hello world"});
  EXPECT_EQ(r.type, Reply::Type::kBulk);
  EXPECT_EQ(r.str, "hello world");
  r = c.Command({"PING", ""});
  EXPECT_EQ(r.type, Reply::Type::kBulk) << "an empty multibulk argument is kept";
  EXPECT_EQ(r.str, "");
  const std::string binary("a\0b\r\nc", 6);
  EXPECT_EQ(c.Command({"PING", binary}).str, binary);
  EXPECT_EQ(c.Command({"PING", "a", "b"}).ToString(),
            "-ERR wrong number of arguments for 'ping' command");
}

TEST_P(ProtocolTest, CommandNamesAreCaseInsensitive) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"ping"}).ToString(), "+PONG");
  EXPECT_EQ(c.Command({"PiNg"}).ToString(), "+PONG");
  EXPECT_EQ(c.Command({"pInG", "x"}).ToString(), "$x");
  EXPECT_EQ(c.Command({"tImE"}).elements.size(), 2u);
  EXPECT_EQ(c.Command({"config", "get", "port"}).elements.size(), 2u);
}

TEST_P(ProtocolTest, UnknownCommandErrorQuotesTheNameAsSent) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"FOO"}).ToString(), "-ERR unknown command 'FOO'");
  EXPECT_EQ(c.Command({"fOo", "bar", "baz"}).ToString(), "-ERR unknown command 'fOo'");
  // Disque has no Redis data or connection commands besides its own.
  EXPECT_EQ(c.Command({"ECHO", "hi"}).ToString(), "-ERR unknown command 'ECHO'");
  EXPECT_EQ(c.Command({"SELECT", "0"}).ToString(), "-ERR unknown command 'SELECT'");
  EXPECT_EQ(c.Command({"select", "0"}).ToString(), "-ERR unknown command 'select'");
  EXPECT_EQ(c.Command({"DBSIZE"}).ToString(), "-ERR unknown command 'DBSIZE'");
  EXPECT_EQ(c.Command({"FLUSHALL"}).ToString(), "-ERR unknown command 'FLUSHALL'");
  // The connection is still fine.
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
}

TEST_P(ProtocolTest, ArityErrorsNameTheLowercaseCommand) {
  RedisClient c(port());
  // Positive arity: exactly N words.
  EXPECT_EQ(c.Command({"TIME", "x"}).ToString(),
            "-ERR wrong number of arguments for 'time' command");
  EXPECT_EQ(c.Command({"TiMe", "x", "y"}).ToString(),
            "-ERR wrong number of arguments for 'time' command");
  EXPECT_EQ(c.Command({"AUTH"}).ToString(), "-ERR wrong number of arguments for 'auth' command");
  EXPECT_EQ(c.Command({"AUTH", "a", "b"}).ToString(),
            "-ERR wrong number of arguments for 'auth' command");
  // Negative arity: at least N words.
  EXPECT_EQ(c.Command({"CONFIG"}).ToString(),
            "-ERR wrong number of arguments for 'config' command");
  EXPECT_EQ(c.Command({"client"}).ToString(),
            "-ERR wrong number of arguments for 'client' command");
  EXPECT_EQ(c.Command({"DEBUG"}).ToString(), "-ERR wrong number of arguments for 'debug' command");
}

TEST_P(ProtocolTest, TimeRepliesSecondsAndMicroseconds) {
  RedisClient c(port());
  const int64_t before = std::time(nullptr);
  Reply r = c.Command({"TIME"});
  const int64_t after = std::time(nullptr);
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 2u);
  for (const Reply& e : r.elements) {
    EXPECT_EQ(e.type, Reply::Type::kBulk);
    ASSERT_FALSE(e.str.empty());
    for (char ch : e.str) EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(ch))) << e.str;
  }
  const int64_t seconds = std::stoll(r.elements[0].str);
  const int64_t micros = std::stoll(r.elements[1].str);
  EXPECT_GE(seconds, before - 1);
  EXPECT_LE(seconds, after + 1);
  EXPECT_GE(micros, 0);
  EXPECT_LE(micros, 999999);
}

// ---------------------------------------------------------------------------------
// Pipelining (PROTOCOL.md 1.1)

TEST_P(ProtocolTest, TenThousandPipelinedCommandsInOneSendAnswerInOrder) {
  constexpr int kCount = 10000;
  std::string request, expected;
  for (int i = 0; i < kCount; ++i) {
    if (i % 3 == 0) {
      request += Multibulk({"PING"});
      expected += "+PONG\r\n";
    } else if (i % 3 == 1) {
      const std::string msg = "msg-" + std::to_string(i);
      request += Multibulk({"PING", msg});
      expected += Bulk(msg);
    } else {
      // Inline requests mixed into the same pipeline.
      request += "PING inline-" + std::to_string(i) + "\r\n";
      expected += Bulk("inline-" + std::to_string(i));
    }
  }
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  // One send, from another thread: if the server answers while we are still sending, we
  // must read concurrently or both sides could fill their socket buffers.
  bool sent = false;
  std::thread writer([&] { sent = conn.Send(request); });
  const std::string got = conn.Read(expected.size(), 30000);
  writer.join();
  EXPECT_TRUE(sent);
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "replies differ from the expected sequence";
  // Nothing more than the 10,000 replies: the next reply is the next command's.
  ASSERT_TRUE(conn.Send("PING last\r\n"));
  EXPECT_EQ(conn.Read(Bulk("last").size()), Bulk("last"));
}

TEST_P(ProtocolTest, HiredisPipelineOfTenThousandCommands) {
  constexpr int kCount = 10000;
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < kCount; ++i) {
    if (i % 2 == 0) {
      c.Append({"PING"});
    } else {
      c.Append({"PING", std::to_string(i)});
    }
  }
  int bad = 0;
  for (int i = 0; i < kCount; ++i) {
    Reply r = c.GetReply();
    const std::string want = i % 2 == 0 ? "+PONG" : "$" + std::to_string(i);
    if (r.ToString() != want && ++bad <= 5) {
      ADD_FAILURE() << "reply " << i << ": " << r.ToString() << " != " << want;
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
}

// ---------------------------------------------------------------------------------
// Many connections

TEST_P(ProtocolTest, ThreeHundredConcurrentConnections) {
  constexpr int kClients = 300;
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  std::vector<std::unique_ptr<RedisClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RedisClient>(port()));
    ASSERT_TRUE(clients.back()->connected()) << "client " << i << ": " << clients.back()->error();
  }
  // All connections are open at once; each gets its own message back.
  for (int i = 0; i < kClients; ++i) clients[i]->Append({"PING", "client-" + std::to_string(i)});
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(clients[i]->GetReply().ToString(), "$client-" + std::to_string(i));
  }
  EXPECT_GE(InfoInt(observer, "clients", "connected_clients"), kClients + 1);
  const int64_t received = InfoInt(observer, "stats", "total_connections_received");
  EXPECT_GE(received, kClients + 1);

  clients.clear();
  int64_t connected = -1;
  EXPECT_TRUE(WaitFor([&] {
    connected = InfoInt(observer, "clients", "connected_clients");
    return connected == 1;
  })) << "connected_clients stayed at "
      << connected << " after the clients closed";
  EXPECT_EQ(observer.Command({"PING"}).ToString(), "+PONG");
}

// ---------------------------------------------------------------------------------
// Inline requests (PROTOCOL.md 1.1)

TEST_P(ProtocolTest, InlineCommands) {
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  auto roundtrip = [&conn](const std::string& request, const std::string& reply) {
    EXPECT_TRUE(conn.Send(request));
    EXPECT_EQ(conn.Read(reply.size()), reply) << "request: " << request;
  };
  roundtrip("PING\r\n", "+PONG\r\n");
  roundtrip("PING hello\n", Bulk("hello"));  // a bare LF ends the line too
  roundtrip("ping   spaced\t \r\n", Bulk("spaced"));
  roundtrip("PING \"a b\"\r\n", Bulk("a b"));
  roundtrip("PING \"\\x41\\n\"\r\n", Bulk("A\n"));
  roundtrip("PING \"\\t\\\\\\\"\"\r\n", Bulk("\t\\\""));
  roundtrip("PING 'a\\nb \"c\"'\r\n", Bulk("a\\nb \"c\""));  // single quotes are literal
  // Empty arguments are dropped: this is PING with no argument.
  roundtrip("PING \"\" ''\r\n", "+PONG\r\n");
  // Empty and blank lines are ignored: no reply at all.
  roundtrip("\r\n\n   \r\nPING after-empty\r\n", Bulk("after-empty"));
  // Several inline commands, and a multibulk one, in one send.
  roundtrip("PING a\r\nPING b\nPING\r\n" + Multibulk({"PING", "mb"}) + "PING c\r\n",
            Bulk("a") + Bulk("b") + "+PONG\r\n" + Bulk("mb") + Bulk("c"));
  // Inline errors are replies like any other.
  roundtrip("FOO bar\r\n", "-ERR unknown command 'FOO'\r\n");
  roundtrip("PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
}

// ---------------------------------------------------------------------------------
// Protocol errors: the exact reply, then the server closes the connection (PROTOCOL.md 1.1)

TEST_P(ProtocolTest, InvalidMultibulkLength) {
  ExpectReplyThenClose(port(), "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
  ExpectReplyThenClose(port(), "*1048577\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
  // The error comes after a good command of the same pipeline has been answered.
  ExpectReplyThenClose(port(), "PING\r\n*x\r\nPING\r\n",
                       "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
}

TEST_P(ProtocolTest, ExpectedDollar) {
  ExpectReplyThenClose(port(), "*1\r\n+foo\r\n", "-ERR Protocol error: expected '$', got '+'\r\n");
  ExpectReplyThenClose(port(), "*2\r\n$4\r\nPING\r\n:1\r\n",
                       "-ERR Protocol error: expected '$', got ':'\r\n");
}

TEST_P(ProtocolTest, InvalidBulkLength) {
  ExpectReplyThenClose(port(), "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n");
  ExpectReplyThenClose(port(), "*1\r\n$536870913\r\n",
                       "-ERR Protocol error: invalid bulk length\r\n");
  ExpectReplyThenClose(port(), "*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n");
}

TEST_P(ProtocolTest, UnbalancedQuotes) {
  ExpectReplyThenClose(port(), "PING \"abc\r\n",
                       "-ERR Protocol error: unbalanced quotes in request\r\n");
  ExpectReplyThenClose(port(), "PING 'abc\r\n",
                       "-ERR Protocol error: unbalanced quotes in request\r\n");
}

TEST_P(ProtocolTest, TooBigInlineRequest) {
  ExpectReplyThenClose(port(), std::string(70000, 'a'),
                       "-ERR Protocol error: too big inline request\r\n");
}

TEST_P(ProtocolTest, TooBigMultibulkCountString) {
  ExpectReplyThenClose(port(), "*" + std::string(70000, '1'),
                       "-ERR Protocol error: too big mbulk count string\r\n");
}

TEST_P(ProtocolTest, TooBigBulkCountString) {
  ExpectReplyThenClose(port(), "*1\r\n$" + std::string(70000, '1'),
                       "-ERR Protocol error: too big bulk count string\r\n");
}

TEST_P(ProtocolTest, ProtocolErrorLeavesOtherClientsAlone) {
  RedisClient bystander(port());
  ASSERT_EQ(bystander.Command({"PING"}).ToString(), "+PONG");
  ExpectReplyThenClose(port(), "*1\r\n+foo\r\n", "-ERR Protocol error: expected '$', got '+'\r\n");
  ExpectReplyThenClose(port(), std::string(70000, 'x'),
                       "-ERR Protocol error: too big inline request\r\n");
  EXPECT_EQ(bystander.Command({"PING", "still here"}).ToString(), "$still here");
  RedisClient fresh(port());
  EXPECT_EQ(fresh.Command({"PING"}).ToString(), "+PONG");
}

TEST_P(ProtocolTest, ZeroOrNegativeMultibulkCountIsSilentlyConsumed) {
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send("*0\r\n"));
  ASSERT_TRUE(conn.Send("*-1\r\n*-100\r\nPING\r\n"));
  // Only PING's reply comes back, and the connection stays usable.
  EXPECT_EQ(conn.Read(7), "+PONG\r\n");
  ASSERT_TRUE(conn.Send("*0\r\n" + Multibulk({"PING", "x"})));
  EXPECT_EQ(conn.Read(7), Bulk("x"));
}

TEST_P(ProtocolTest, RequestSplitIntoSingleBytes) {
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  const std::string request = Multibulk({"PING", "hello"}) + "PING inline\r\n";
  for (char ch : request) ASSERT_TRUE(conn.Send(std::string(1, ch)));
  const std::string expected = Bulk("hello") + Bulk("inline");
  EXPECT_EQ(conn.Read(expected.size()), expected);
}

// ---------------------------------------------------------------------------------
// QUIT (PROTOCOL.md 1.1)

TEST_P(ProtocolTest, QuitRepliesOkThenCloses) {
  ExpectReplyThenClose(port(), "QUIT\r\n", "+OK\r\n");
  ExpectReplyThenClose(port(), Multibulk({"quit", "extra", "args"}), "+OK\r\n");
  ExpectReplyThenClose(port(), "qUiT x\r\n", "+OK\r\n");
  // Commands pipelined after QUIT are not run.
  ExpectReplyThenClose(port(), "PING a\r\nQUIT\r\nPING b\r\n", Bulk("a") + "+OK\r\n");
}

// ---------------------------------------------------------------------------------
// redis-cli

TEST_P(ProtocolTest, RedisCli) {
  const std::string cli = "redis-cli -h 127.0.0.1 -p " + std::to_string(port());
  int status = -1;
  EXPECT_EQ(RunCommand(cli + " PING", "", &status), "PONG\n");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(RunCommand(cli + " PING 'hello world'"), "hello world\n");
  EXPECT_EQ(RunCommand(cli + " CONFIG GET port"), "port\n" + std::to_string(port()) + "\n");
  // Commands read from stdin, one per line.
  EXPECT_EQ(RunCommand(cli, "PING\nPING x\n"), "PONG\nx\n");
  const std::string unknown = RunCommand(cli + " FOO bar");
  EXPECT_NE(unknown.find("ERR unknown command 'FOO'"), std::string::npos) << unknown;
}

// ---------------------------------------------------------------------------------
// COMMAND (PROTOCOL.md 1.5, 6.9)

struct TableEntry {
  int arity;
  std::vector<std::string> flags;
};

// PROTOCOL.md 1.5, flags in COMMAND's order.
const std::map<std::string, TableEntry>& CommandTable() {
  static const std::map<std::string, TableEntry> table{
      {"auth", {2, {"readonly", "loading", "fast"}}},
      {"ping", {-1, {"readonly", "fast"}}},
      {"info", {-1, {"readonly", "loading"}}},
      {"shutdown", {-1, {"readonly", "admin", "loading"}}},
      {"monitor", {1, {"readonly", "admin"}}},
      {"debug", {-2, {"admin"}}},
      {"config", {-2, {"readonly", "admin"}}},
      {"cluster", {-2, {"readonly", "admin"}}},
      {"client", {-2, {"readonly", "admin"}}},
      {"slowlog", {-2, {"readonly"}}},
      {"time", {1, {"readonly", "fast"}}},
      {"command", {0, {"readonly", "loading"}}},
      {"latency", {-2, {"readonly", "admin", "loading"}}},
      {"hello", {1, {"readonly", "fast"}}},
      {"addjob", {-4, {"write", "denyoom", "fast"}}},
      {"getjob", {-2, {"write", "fast"}}},
      {"ackjob", {-1, {"write", "fast"}}},
      {"fastack", {-1, {"write", "fast"}}},
      {"deljob", {-1, {"write", "fast"}}},
      {"show", {2, {"readonly", "fast"}}},
      {"loadjob", {2, {"write"}}},
      {"bgrewriteaof", {1, {"readonly", "admin"}}},
      {"qlen", {2, {"readonly", "fast"}}},
      {"qpeek", {3, {"readonly"}}},
      {"qstat", {2, {"readonly", "fast"}}},
      {"qscan", {-1, {"readonly"}}},
      {"jscan", {-1, {"readonly"}}},
      {"enqueue", {-1, {"write", "denyoom", "fast"}}},
      {"nack", {-1, {"write", "denyoom", "fast"}}},
      {"dequeue", {-1, {"write", "fast"}}},
      {"working", {2, {"write", "fast"}}},
      {"pause", {-3, {"readonly", "fast"}}},
  };
  return table;
}

// Checks one COMMAND entry against PROTOCOL.md 1.5.
void ExpectCommandEntry(const Reply& entry) {
  ASSERT_EQ(entry.type, Reply::Type::kArray) << entry.ToString();
  ASSERT_EQ(entry.elements.size(), 6u);
  const std::string name = entry.elements[0].str;
  EXPECT_EQ(entry.elements[0].type, Reply::Type::kBulk);
  auto it = CommandTable().find(name);
  ASSERT_NE(it, CommandTable().end())
      << "COMMAND lists '" << name << "', which PROTOCOL.md 1.5 does not have";
  EXPECT_EQ(entry.elements[1].ToString(), ":" + std::to_string(it->second.arity)) << name;
  const Reply& flags = entry.elements[2];
  ASSERT_EQ(flags.type, Reply::Type::kArray) << name;
  std::vector<std::string> got;
  for (const Reply& f : flags.elements) {
    EXPECT_EQ(f.type, Reply::Type::kStatus) << name << " flag " << f.ToString();
    got.push_back(f.str);
  }
  EXPECT_EQ(got, it->second.flags) << name;
  for (size_t i = 3; i < 6; ++i) EXPECT_EQ(entry.elements[i].ToString(), ":0") << name;
}

TEST_P(ProtocolTest, CommandListsEveryCommandAsTheTableSays) {
  RedisClient c(port());
  Reply all = c.Command({"COMMAND"});
  ASSERT_EQ(all.type, Reply::Type::kArray) << all.ToString();
  Reply count = c.Command({"COMMAND", "COUNT"});
  ASSERT_EQ(count.type, Reply::Type::kInteger) << count.ToString();
  EXPECT_EQ(count.integer, static_cast<int64_t>(all.elements.size()));
  std::set<std::string> names;
  for (const Reply& entry : all.elements) {
    ExpectCommandEntry(entry);
    if (!entry.elements.empty()) {
      EXPECT_TRUE(names.insert(entry.elements[0].str).second) << "listed twice";
    }
  }
  // The commands this server answers are all there (job commands join as they land).
  for (const char* name :
       {"auth", "ping", "info", "shutdown", "debug", "config", "client", "time", "command"}) {
    EXPECT_TRUE(names.contains(name)) << name;
  }
}

TEST_P(ProtocolTest, CommandInfo) {
  RedisClient c(port());
  Reply r = c.Command({"COMMAND", "INFO", "ping"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1u);
  const Reply& ping = r.elements[0];
  ASSERT_EQ(ping.elements.size(), 6u);
  EXPECT_EQ(ping.elements[0].ToString(), "$ping");
  EXPECT_EQ(ping.elements[1].ToString(), ":-1");
  ASSERT_EQ(ping.elements[2].elements.size(), 2u);
  EXPECT_EQ(ping.elements[2].elements[0].ToString(), "+readonly");
  EXPECT_EQ(ping.elements[2].elements[1].ToString(), "+fast");
  EXPECT_EQ(ping.elements[3].ToString(), ":0");
  EXPECT_EQ(ping.elements[4].ToString(), ":0");
  EXPECT_EQ(ping.elements[5].ToString(), ":0");

  // Several names, any case; unknown ones give a nil entry in their place.
  r = c.Command({"COMMAND", "INFO", "nosuch", "TIME", "auth"});
  ASSERT_EQ(r.elements.size(), 3u) << r.ToString();
  EXPECT_EQ(r.elements[0].ToString(), "$-1");
  ExpectCommandEntry(r.elements[1]);
  EXPECT_EQ(r.elements[1].elements[0].ToString(), "$time");
  ExpectCommandEntry(r.elements[2]);
  EXPECT_EQ(c.Command({"COMMAND", "INFO"}).ToString(), "*0");
}

TEST_P(ProtocolTest, CommandErrors) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"COMMAND", "FOO"}).ToString(),
            "-ERR Unknown subcommand or wrong number of arguments.");
  EXPECT_EQ(c.Command({"COMMAND", "COUNT", "x"}).ToString(),
            "-ERR Unknown subcommand or wrong number of arguments.");
}

// ---------------------------------------------------------------------------------
// CLIENT (PROTOCOL.md 6.8)

TEST_P(ProtocolTest, ClientSetnameGetname) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"CLIENT", "GETNAME"}).ToString(), "$-1");
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", "worker-1"}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"CLIENT", "GETNAME"}).ToString(), "$worker-1");
  const std::string bad =
      "-ERR Client names cannot contain spaces, newlines or special characters.";
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", "a b"}).ToString(), bad);
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", "a\nb"}).ToString(), bad);
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", "caf\xc3\xa9"}).ToString(), bad);
  EXPECT_EQ(c.Command({"CLIENT", "GETNAME"}).ToString(), "$worker-1")
      << "a rejected name changes nothing";
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", "!~"}).ToString(), "+OK");
  // An empty name clears it.
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME", ""}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"CLIENT", "GETNAME"}).ToString(), "$-1");
}

TEST_P(ProtocolTest, ClientListShowsEveryConnectionAcrossShards) {
  constexpr int kOthers = 7;  // with --threads 4, these spread over every shard
  RedisClient me(port());
  ASSERT_EQ(me.Command({"CLIENT", "SETNAME", "me"}).ToString(), "+OK");
  std::vector<std::unique_ptr<RedisClient>> others;
  for (int i = 0; i < kOthers; ++i) {
    others.push_back(std::make_unique<RedisClient>(port()));
    ASSERT_EQ(
        others.back()->Command({"CLIENT", "SETNAME", "other-" + std::to_string(i)}).ToString(),
        "+OK");
  }
  std::vector<ClientLine> list;
  // The server's own readiness probe may not have been reaped yet: wait for it.
  EXPECT_TRUE(WaitFor([&] {
    list = ClientList(me);
    return list.size() == kOthers + 1;
  })) << "CLIENT LIST has "
      << list.size() << " lines";

  const std::vector<std::string> keys{"id",   "addr",      "fd",  "name", "age",  "idle",   "flags",
                                      "qbuf", "qbuf-free", "obl", "oll",  "omem", "events", "cmd"};
  std::set<std::string> names, ids, addrs;
  for (auto& cl : list) {
    EXPECT_EQ(cl.keys, keys);
    names.insert(cl.fields["name"]);
    ids.insert(cl.fields["id"]);
    addrs.insert(cl.fields["addr"]);
    EXPECT_EQ(cl.fields["addr"].rfind("127.0.0.1:", 0), 0u) << cl.fields["addr"];
    EXPECT_EQ(cl.fields["flags"], "N");
    EXPECT_EQ(cl.fields["cmd"], "client");  // everyone's last command was CLIENT SETNAME
  }
  EXPECT_EQ(ids.size(), list.size()) << "client ids are unique";
  EXPECT_EQ(addrs.size(), list.size()) << "addresses are unique";
  EXPECT_TRUE(names.contains("me"));
  for (int i = 0; i < kOthers; ++i) EXPECT_TRUE(names.contains("other-" + std::to_string(i))) << i;

  // The last command shows up, lowercase; a connection that ran nothing shows NULL.
  ASSERT_EQ(others[0]->Command({"PING"}).ToString(), "+PONG");
  RawConnection silent(port());
  ASSERT_TRUE(silent.connected());
  ClientLine silent_line;
  EXPECT_TRUE(WaitFor([&] {
    for (auto& cl : ClientList(me)) {
      if (cl.fields["cmd"] == "NULL") silent_line = cl;
    }
    return !silent_line.fields.empty();
  }));
  EXPECT_EQ(silent_line.fields["name"], "");
  EXPECT_EQ(FindClient(me, "other-0").fields["cmd"], "ping");
  EXPECT_EQ(FindClient(me, "me").fields["cmd"], "client");
}

TEST_P(ProtocolTest, ClientKillAcrossShards) {
  constexpr int kVictims = 6;  // with --threads 4, the victims sit on every shard
  RedisClient me(port());
  ASSERT_EQ(me.Command({"CLIENT", "SETNAME", "killer"}).ToString(), "+OK");
  std::vector<std::unique_ptr<RawConnection>> victims;
  for (int i = 0; i < kVictims; ++i) {
    victims.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(victims.back()->connected());
    ASSERT_TRUE(victims.back()->Send("CLIENT SETNAME victim-" + std::to_string(i) + "\r\n"));
    ASSERT_EQ(victims.back()->Read(5), "+OK\r\n");
  }
  std::vector<ClientLine> lines;
  for (int i = 0; i < kVictims; ++i) {
    lines.push_back(FindClient(me, "victim-" + std::to_string(i)));
    ASSERT_FALSE(lines.back().fields.empty()) << "victim-" << i << " not in CLIENT LIST";
  }
  auto expect_closed = [&](int i) {
    bool closed = false;
    EXPECT_EQ(victims[i]->ReadUntilClose(&closed, 5000), "") << "victim-" << i;
    EXPECT_TRUE(closed) << "victim-" << i << " was not disconnected";
  };

  // Old form: CLIENT KILL ip:port.
  EXPECT_EQ(me.Command({"CLIENT", "KILL", lines[0].fields["addr"]}).ToString(), "+OK");
  expect_closed(0);
  EXPECT_EQ(me.Command({"CLIENT", "KILL", lines[1].fields["addr"]}).ToString(), "+OK");
  expect_closed(1);
  EXPECT_EQ(me.Command({"CLIENT", "KILL", lines[0].fields["addr"]}).ToString(),
            "-ERR No such client");
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "1.2.3.4:5"}).ToString(), "-ERR No such client");

  // New form: the number killed.
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "ID", lines[2].fields["id"]}).ToString(), ":1");
  expect_closed(2);
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "ID", lines[2].fields["id"]}).ToString(), ":0");
  EXPECT_EQ(
      me.Command({"CLIENT", "KILL", "ADDR", lines[3].fields["addr"], "TYPE", "normal"}).ToString(),
      ":1");
  expect_closed(3);
  // Filters are AND-ed: victim 4's id with victim 5's address matches nobody.
  EXPECT_EQ(
      me.Command({"CLIENT", "KILL", "ID", lines[4].fields["id"], "ADDR", lines[5].fields["addr"]})
          .ToString(),
      ":0");
  EXPECT_EQ(
      me.Command({"CLIENT", "KILL", "ID", lines[4].fields["id"], "ADDR", lines[4].fields["addr"]})
          .ToString(),
      ":1");
  expect_closed(4);

  // SKIPME defaults to yes; the caller survives its own filter.
  const ClientLine self = FindClient(me, "killer");
  ASSERT_FALSE(self.fields.empty());
  EXPECT_EQ(
      me.Command({"CLIENT", "KILL", "ADDR", self.fields.at("addr"), "SKIPME", "yes"}).ToString(),
      ":0");
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "ID", self.fields.at("id")}).ToString(), ":0");

  // Errors.
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "TYPE", "foo"}).ToString(),
            "-ERR Unknown client type 'foo'");
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "SKIPME", "maybe"}).ToString(), "-ERR syntax error");
  EXPECT_EQ(me.Command({"CLIENT", "KILL", "FOO", "bar"}).ToString(), "-ERR syntax error");
  EXPECT_EQ(me.Command({"PING"}).ToString(), "+PONG");

  // The last victim was untouched by all of this and still works.
  ASSERT_TRUE(victims[5]->Send("PING\r\n"));
  EXPECT_EQ(victims[5]->Read(7), "+PONG\r\n");
  std::vector<ClientLine> left;
  EXPECT_TRUE(WaitFor([&] {
    left = ClientList(me);
    return left.size() == 2;
  })) << "CLIENT LIST has "
      << left.size() << " lines, want killer and victim-5";
}

TEST_P(ProtocolTest, ClientKillOldFormCanKillTheCaller) {
  RedisClient observer(port());
  RawConnection self(port());
  ASSERT_TRUE(self.Send("CLIENT SETNAME suicidal\r\n"));
  ASSERT_EQ(self.Read(5), "+OK\r\n");
  const ClientLine line = FindClient(observer, "suicidal");
  ASSERT_FALSE(line.fields.empty());
  ASSERT_TRUE(self.Send("CLIENT KILL " + line.fields.at("addr") + "\r\n"));
  bool closed = false;
  EXPECT_EQ(self.ReadUntilClose(&closed, 5000), "+OK\r\n");
  EXPECT_TRUE(closed);
  EXPECT_EQ(observer.Command({"PING"}).ToString(), "+PONG");
}

TEST_P(ProtocolTest, ClientReplyOffOnSkip) {
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  // OFF silences itself and PING; ON answers +OK; then PING is answered again.
  ASSERT_TRUE(conn.Send("CLIENT REPLY OFF\r\nPING\r\nPING quiet\r\nCLIENT REPLY ON\r\nPING\r\n"));
  EXPECT_EQ(conn.Read(12), "+OK\r\n+PONG\r\n");
  // SKIP silences itself and the next command only.
  ASSERT_TRUE(conn.Send("CLIENT REPLY SKIP\r\nPING a\r\nPING b\r\n"));
  EXPECT_EQ(conn.Read(7), Bulk("b"));
  RedisClient c(port());
  EXPECT_EQ(c.Command({"CLIENT", "REPLY", "maybe"}).ToString(), "-ERR syntax error");
}

// ADDJOB runs at once when its queue is on the client's shard (Command::now) and as a
// coroutine otherwise (with 4 shards, most of these queues): either way each call is
// counted once, CLIENT REPLY SKIP applies, a parse error is answered, and the job lands
// in its queue.
TEST_P(ProtocolTest, AddJobOnAnyShardIsCountedOnceAndHonoursReplySkip) {
  RedisClient c(port());
  const auto calls = [&c] {
    const std::string field = InfoField(c.Command({"INFO", "commandstats"}).str, "cmdstat_addjob");
    return field.empty() ? int64_t{0} : std::stoll(field.substr(6));
  };
  const int64_t before = calls();
  for (int i = 0; i < 24; ++i) {
    const Reply r = c.Command({"ADDJOB", "fastslow" + std::to_string(i), "body", "0"});
    ASSERT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
    ASSERT_EQ(r.str.size(), 40u) << r.str;
  }
  for (int i = 0; i < 24; ++i) {
    ASSERT_EQ(c.Command({"QLEN", "fastslow" + std::to_string(i)}).ToString(), ":1") << i;
  }
  EXPECT_EQ(c.Command({"ADDJOB", "fastslow0", "body", "0", "TTL", "x"}).ToString(), "-ERR TTL must be a number > 0");
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  std::string skipped;
  for (int i = 0; i < 8; ++i) {
    const std::string q = "fastslow" + std::to_string(i);
    skipped += "CLIENT REPLY SKIP\r\nADDJOB " + q + " skipped 0\r\n";
  }
  ASSERT_TRUE(conn.Send(skipped + "PING\r\n"));
  EXPECT_EQ(conn.Read(7), "+PONG\r\n");
  EXPECT_EQ(c.Command({"QLEN", "fastslow7"}).ToString(), ":2");
  EXPECT_EQ(calls() - before, 24 + 1 + 8);
}

// GETJOB and the by-ID commands also run at once when every queue or ID is on the
// client's shard, and as coroutines otherwise (with 4 shards, most of these queues): either
// way each call is counted once and CLIENT REPLY SKIP applies; a GETJOB that finds
// nothing blocks (or, with NOHANG, answers a null array) and a parse error is answered.
TEST_P(ProtocolTest, GetJobAndAckJobOnAnyShardAreCountedOnceAndBlockWhenEmpty) {
  RedisClient c(port());
  const auto calls = [&c](const std::string& name) {
    const std::string field = InfoField(c.Command({"INFO", "commandstats"}).str, "cmdstat_" + name);
    return field.empty() ? int64_t{0} : std::stoll(field.substr(6));
  };
  const int64_t getjob_before = calls("getjob"), ackjob_before = calls("ackjob");
  constexpr int kQueues = 24;
  for (int i = 0; i < kQueues; ++i) {
    ASSERT_EQ(c.Command({"ADDJOB", "gfs" + std::to_string(i), "body", "0"}).type, Reply::Type::kStatus);
  }
  std::vector<std::string> ids;
  RawConnection raw(port());
  ASSERT_TRUE(raw.connected());
  for (int i = 0; i < kQueues; ++i) {
    const std::string q = "gfs" + std::to_string(i);
    const Reply r = c.Command({"GETJOB", "NOHANG", "COUNT", "5", "FROM", q});
    ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
    ASSERT_EQ(r.elements.size(), 1u) << r.ToString();
    ASSERT_EQ(r.elements[0].elements.size(), 3u) << r.ToString();
    EXPECT_EQ(r.elements[0].elements[0].str, q);
    EXPECT_EQ(r.elements[0].elements[2].str, "body");
    ids.push_back(r.elements[0].elements[1].str);
    ASSERT_TRUE(raw.Send("GETJOB NOHANG FROM " + q + "\r\n"));
    EXPECT_EQ(raw.Read(5), "*-1\r\n") << q;  // a null array
  }
  EXPECT_EQ(c.Command({"GETJOB", "COUNT", "0", "FROM", "gfs0"}).ToString(),
            "-ERR COUNT must be a number greater than zero");
  // Half acknowledged one by one, then all of them in one ACKJOB across the shards.
  for (int i = 0; i < kQueues; i += 2) EXPECT_EQ(c.Command({"ACKJOB", ids[i]}).ToString(), ":1") << i;
  std::vector<std::string> all{"ACKJOB"};
  all.insert(all.end(), ids.begin(), ids.end());
  EXPECT_EQ(c.Command(all).ToString(), ":" + std::to_string(kQueues / 2));
  EXPECT_EQ(c.Command({"ACKJOB", "D-bad"}).ToString(), "-BADID Invalid Job ID format.");

  // Blocking: the job added afterwards by another client is delivered.
  for (int i = 0; i < 4; ++i) {
    const std::string q = "gfs" + std::to_string(i);
    RawConnection blocked(port());
    ASSERT_TRUE(blocked.connected());
    ASSERT_TRUE(blocked.Send("GETJOB TIMEOUT 20000 FROM " + q + "\r\n"));
    ASSERT_TRUE(WaitFor([&c] { return InfoField(c.Command({"INFO", "clients"}).str, "blocked_clients") == "1"; }));
    const std::string id = c.Command({"ADDJOB", q, "late", "0"}).str;
    const std::string expected = "*1\r\n*3\r\n$" + std::to_string(q.size()) + "\r\n" + q + "\r\n$40\r\n" + id +
                                 "\r\n$4\r\nlate\r\n";
    EXPECT_EQ(blocked.Read(expected.size()), expected) << q;
    EXPECT_EQ(c.Command({"FASTACK", id}).ToString(), ":1");
  }

  // A skipped GETJOB still takes its job.
  ASSERT_EQ(c.Command({"ADDJOB", "gfs5", "skipped", "0"}).type, Reply::Type::kStatus);
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send("CLIENT REPLY SKIP\r\nGETJOB NOHANG FROM gfs5\r\nPING\r\n"));
  EXPECT_EQ(conn.Read(7), "+PONG\r\n");
  EXPECT_EQ(c.Command({"QLEN", "gfs5"}).ToString(), ":0");
  EXPECT_EQ(calls("getjob") - getjob_before, 2 * kQueues + 1 + 4 + 1);
  EXPECT_EQ(calls("ackjob") - ackjob_before, kQueues / 2 + 1 + 1);
}

// As in Redis 3.2, which Disque shares: OFF suppresses every reply, errors from lookup,
// arity and AUTH included, and SKIP applies to the next request even when that request
// fails lookup.
TEST_P(ProtocolTest, ClientReplyOffSilencesErrorsToo) {
  RawConnection off(port());
  ASSERT_TRUE(off.connected());
  ASSERT_TRUE(off.Send("CLIENT REPLY OFF\r\nFOO\r\nTIME x\r\nCLIENT REPLY ON\r\n"));
  EXPECT_EQ(off.Read(5), "+OK\r\n");
  RawConnection skip(port());
  ASSERT_TRUE(skip.connected());
  ASSERT_TRUE(skip.Send("CLIENT REPLY SKIP\r\nFOO\r\nPING b\r\n"));
  EXPECT_EQ(skip.Read(7), Bulk("b"));
}

TEST_P(ProtocolTest, ClientUnknownSubcommand) {
  RedisClient c(port());
  const std::string err =
      "-ERR Syntax error, try CLIENT (LIST | KILL ip:port | GETNAME | SETNAME connection-name)";
  EXPECT_EQ(c.Command({"CLIENT", "BADSUB"}).ToString(), err);
  EXPECT_EQ(c.Command({"CLIENT", "LIST", "extra"}).ToString(), err);
  EXPECT_EQ(c.Command({"CLIENT", "GETNAME", "extra"}).ToString(), err);
  EXPECT_EQ(c.Command({"CLIENT", "SETNAME"}).ToString(), err);
}

// ---------------------------------------------------------------------------------
// AUTH (PROTOCOL.md 1.2, 6.4). ServerProcess waits for +PONG at start, so requirepass
// is set at run time.

TEST_P(ProtocolTest, AuthWithoutPasswordSet) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"AUTH", "anything"}).ToString(),
            "-ERR Client sent AUTH, but no password is set");
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
}

TEST_P(ProtocolTest, RequirepassGatesEveryCommandButAuthAndQuit) {
  {
    RedisClient admin(port());
    ASSERT_EQ(admin.Command({"CONFIG", "SET", "requirepass", "secret"}).ToString(), "+OK");
  }
  // Several clients, so that with --threads 4 every shard sees the new password.
  for (int i = 0; i < 5; ++i) {
    RedisClient c(port());
    const std::string noauth = "-NOAUTH Authentication required.";
    EXPECT_EQ(c.Command({"PING"}).ToString(), noauth) << i;
    EXPECT_EQ(c.Command({"CONFIG", "GET", "requirepass"}).ToString(), noauth) << i;
    EXPECT_EQ(c.Command({"INFO"}).ToString(), noauth) << i;
    // Lookup and arity come before the AUTH check.
    EXPECT_EQ(c.Command({"FOO"}).ToString(), "-ERR unknown command 'FOO'") << i;
    EXPECT_EQ(c.Command({"TIME", "x"}).ToString(),
              "-ERR wrong number of arguments for 'time' command")
        << i;
    EXPECT_EQ(c.Command({"AUTH", "wrong"}).ToString(), "-ERR invalid password") << i;
    EXPECT_EQ(c.Command({"PING"}).ToString(), noauth) << i;
    EXPECT_EQ(c.Command({"AUTH", "secret"}).ToString(), "+OK") << i;
    EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG") << i;
    // A failed AUTH de-authenticates.
    EXPECT_EQ(c.Command({"AUTH", "Secret"}).ToString(), "-ERR invalid password") << i;
    EXPECT_EQ(c.Command({"PING"}).ToString(), noauth) << i;
  }
  // QUIT needs no AUTH.
  ExpectReplyThenClose(port(), "QUIT\r\n", "+OK\r\n");
  ExpectReplyThenClose(port(), "PING\r\nQUIT\r\n", "-NOAUTH Authentication required.\r\n+OK\r\n");

  // Clearing the password opens the server again.
  RedisClient c(port());
  ASSERT_EQ(c.Command({"AUTH", "secret"}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "requirepass", ""}).ToString(), "+OK");
  RedisClient after(port());
  EXPECT_EQ(after.Command({"PING"}).ToString(), "+PONG");
  EXPECT_EQ(after.Command({"AUTH", "secret"}).ToString(),
            "-ERR Client sent AUTH, but no password is set");
}

// redis-cli's -a sends AUTH first; a wrong one leaves every command refused.
TEST_P(ProtocolTest, RedisCliAuthenticatesWithDashA) {
  {
    RedisClient admin(port());
    ASSERT_EQ(admin.Command({"CONFIG", "SET", "requirepass", "p4ss word"}).ToString(), "+OK");
  }
  const std::string cli = "redis-cli --no-auth-warning -h 127.0.0.1 -p " + std::to_string(port());
  EXPECT_EQ(RunCommand(cli + " -a 'p4ss word' ADDJOB authq body 0 2>&1").substr(0, 2), "D-");
  EXPECT_EQ(RunCommand(cli + " -a 'p4ss word' QLEN authq 2>&1"), "1\n");
  EXPECT_EQ(RunCommand(cli + " -a wrong QLEN authq 2>&1"),
            "AUTH failed: ERR invalid password\nNOAUTH Authentication required.\n\n");
  // (redis-cli ends an error with an empty line when not on a terminal.)
  EXPECT_EQ(RunCommand(cli + " QLEN authq 2>&1"), "NOAUTH Authentication required.\n\n");
}

// CONFIG SET publishes to every shard and only then replies. Issued from connections
// on every shard (with --threads 4), it must answer from each. A shared_ptr captured by a
// lambda inside co_await once made it hang whenever the caller was not on shard 0.
TEST_P(ProtocolTest, ConfigSetAnswersFromEveryShard) {
  std::vector<std::unique_ptr<RedisClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<RedisClient>(port(), 5000));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    const std::string value = std::to_string(100 + i);
    EXPECT_EQ(clients[i]->Command({"CONFIG", "SET", "timeout", value}).ToString(), "+OK")
        << "client " << i;
    // Every connection, on whatever shard, sees the new value at once.
    for (auto& c : clients) {
      Reply r = c->Command({"CONFIG", "GET", "timeout"});
      ASSERT_EQ(r.elements.size(), 2u) << r.ToString();
      EXPECT_EQ(r.elements[1].str, value);
    }
  }
}

// ---------------------------------------------------------------------------------
// INFO

TEST_P(ProtocolTest, InfoDefaultSections) {
  RedisClient c(port());
  Reply r = c.Command({"INFO"});
  ASSERT_EQ(r.type, Reply::Type::kBulk) << r.ToString();
  for (const char* section :
       {"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Stats\r\n", "# CPU\r\n"}) {
    EXPECT_NE(r.str.find(section), std::string::npos) << section;
  }
  EXPECT_EQ(r.str.find("# Commandstats"), std::string::npos)
      << "commandstats is not a default section";
  EXPECT_EQ(InfoField(r.str, "tcp_port"), std::to_string(port()));
  // Just this client, once the server has reaped ServerProcess's readiness probe.
  EXPECT_TRUE(WaitFor([&] { return InfoInt(c, "clients", "connected_clients") == 1; }));

  // One section, by name, any case.
  const std::string clients = c.Command({"INFO", "CLIENTS"}).str;
  EXPECT_EQ(clients.rfind("# Clients\r\n", 0), 0u) << clients;
  EXPECT_EQ(clients.find("# Server"), std::string::npos);
  EXPECT_NE(c.Command({"INFO", "all"}).str.find("# Commandstats"), std::string::npos);

  // An unknown section is an empty bulk; two arguments are a syntax error.
  r = c.Command({"INFO", "nosuch"});
  EXPECT_EQ(r.type, Reply::Type::kBulk);
  EXPECT_EQ(r.str, "");
  EXPECT_EQ(c.Command({"INFO", "a", "b"}).ToString(), "-ERR syntax error");
}

TEST_P(ProtocolTest, InfoCountsCommands) {
  RedisClient c(port());
  const int64_t before = InfoInt(c, "stats", "total_commands_processed");
  ASSERT_GE(before, 0);
  for (int i = 0; i < 25; ++i) ASSERT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  const int64_t after = InfoInt(c, "stats", "total_commands_processed");
  EXPECT_GE(after, before + 25);

  const std::string stats = c.Command({"INFO", "commandstats"}).str;
  EXPECT_EQ(stats.rfind("# Commandstats\r\n", 0), 0u) << stats;
  const std::string ping = InfoField(stats, "cmdstat_ping");
  ASSERT_EQ(ping.rfind("calls=", 0), 0u) << stats;
  EXPECT_GE(std::stoll(ping.substr(6)), 25);
  EXPECT_NE(ping.find(",usec="), std::string::npos) << ping;
  EXPECT_NE(ping.find(",usec_per_call="), std::string::npos) << ping;
  EXPECT_EQ(InfoField(stats, "cmdstat_time"), "") << "commands never called are not listed";
}

// ---------------------------------------------------------------------------------
// Idle timeout (PROTOCOL.md 1.1)

TEST_P(ProtocolTest, IdleClientsAreClosedAfterTimeout) {
  RedisClient active(port());
  ASSERT_EQ(active.Command({"CONFIG", "SET", "timeout", "1"}).ToString(), "+OK");
  // Several idle connections, so that with --threads 4 every shard's cron is involved.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 5; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // The active client keeps talking while the idle ones are cut off.
  size_t closed_count = 0;
  std::vector<bool> closed(idle.size(), false);
  int pings = 0;
  const bool all_closed = WaitFor(
      [&] {
        EXPECT_EQ(active.Command({"PING", std::to_string(pings)}).ToString(),
                  "$" + std::to_string(pings));
        ++pings;
        for (size_t i = 0; i < idle.size(); ++i) {
          if (closed[i]) continue;
          bool c = false;
          EXPECT_EQ(idle[i]->ReadUntilClose(&c, 20), "") << "an idle timeout sends no reply";
          if (c) {
            closed[i] = true;
            ++closed_count;
          }
        }
        return closed_count == idle.size();
      },
      8s);
  EXPECT_TRUE(all_closed) << closed_count << " of " << idle.size()
                          << " idle connections were closed";
  EXPECT_EQ(active.Command({"PING"}).ToString(), "+PONG");

  // timeout 0 means never.
  ASSERT_EQ(active.Command({"CONFIG", "SET", "timeout", "0"}).ToString(), "+OK");
  RawConnection kept(port());
  bool kept_closed = false;
  kept.ReadUntilClose(&kept_closed, 2000);
  EXPECT_FALSE(kept_closed) << "timeout 0 must not close idle clients";
  ASSERT_TRUE(kept.Send("PING\r\n"));
  EXPECT_EQ(kept.Read(7), "+PONG\r\n");
}

// SLOWLOG (PROTOCOL.md 6.10), with every command logged (threshold 0): entries newest
// first across all shards, argument shortening, LEN, RESET and the error text.
TEST_P(ProtocolTest, SlowlogRecordsShortensAndResets) {
  RedisClient a(port()), b(port());
  ASSERT_TRUE(a.connected() && b.connected());
  ASSERT_EQ(a.Command({"CONFIG", "SET", "slowlog-log-slower-than", "0"}).ToString(), "+OK");
  ASSERT_EQ(a.Command({"SLOWLOG", "RESET"}).ToString(), "+OK");
  const std::string long_arg(200, 'x');
  EXPECT_EQ(b.Command({"PING", long_arg}).str, long_arg);
  EXPECT_EQ(b.Command({"ADDJOB", "slowq", "body", "0"}).type, Reply::Type::kStatus);
  std::vector<std::string> args33 = {"ACKJOB"};
  for (int i = 0; i < 34; ++i) args33.push_back("D-00000000-AAAAAAAAAAAAAAAAAAAAAAAA-000" + std::to_string(i % 10));
  EXPECT_EQ(a.Command(args33).ToString(), ":0");

  const Reply log = a.Command({"SLOWLOG", "GET", "3"});
  ASSERT_EQ(log.type, Reply::Type::kArray) << log.ToString();
  ASSERT_EQ(log.elements.size(), 3u) << log.ToString();
  // Newest first: ACKJOB, ADDJOB, PING <long>.
  const Reply& ack = log.elements[0];
  ASSERT_EQ(ack.elements.size(), 4u);
  EXPECT_EQ(ack.elements[0].type, Reply::Type::kInteger);
  EXPECT_GT(ack.elements[1].integer, 1700000000);
  EXPECT_GE(ack.elements[2].integer, 0);
  ASSERT_EQ(ack.elements[3].elements.size(), 32u);
  EXPECT_EQ(ack.elements[3].elements[0].str, "ACKJOB");
  EXPECT_EQ(ack.elements[3].elements[31].str, "... (4 more arguments)");
  EXPECT_EQ(log.elements[1].elements[3].elements[0].str, "ADDJOB");
  EXPECT_GT(ack.elements[0].integer, log.elements[1].elements[0].integer);
  const Reply& ping = log.elements[2].elements[3];
  ASSERT_EQ(ping.elements.size(), 2u);
  EXPECT_EQ(ping.elements[1].str, std::string(128, 'x') + "... (72 more bytes)");

  EXPECT_GE(a.Command({"SLOWLOG", "LEN"}).integer, 4);
  EXPECT_EQ(a.Command({"SLOWLOG", "GET", "x"}).ToString(), "-ERR value is not an integer or out of range");
  EXPECT_EQ(a.Command({"SLOWLOG", "NOPE"}).ToString(),
            "-ERR Unknown SLOWLOG subcommand or wrong # of args. Try GET, RESET, LEN.");
  ASSERT_EQ(a.Command({"CONFIG", "SET", "slowlog-log-slower-than", "1000000000"}).ToString(), "+OK");
  ASSERT_EQ(a.Command({"SLOWLOG", "RESET"}).ToString(), "+OK");
  EXPECT_EQ(b.Command({"PING"}).ToString(), "+PONG");
  EXPECT_EQ(a.Command({"SLOWLOG", "LEN"}).ToString(), ":0") << "only commands over the threshold are logged";
}

INSTANTIATE_TEST_SUITE_P(Threads, ProtocolTest, ::testing::Values(1, 4));

}  // namespace
}  // namespace disque::test
