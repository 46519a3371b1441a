// The server as an operator runs it: config files and flags, CONFIG GET/SET/REWRITE,
// daemonize with a pidfile, signals and SHUTDOWN, maxclients, the Unix socket.
// Every test runs with --threads 1 and --threads 4.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "support/redis_client.h"
#include "support/server_process.h"

namespace disque::test {
namespace {

class ProcessTest : public ::testing::TestWithParam<int> {
 protected:
  ServerOptions Options(std::vector<std::string> lines = {}, std::vector<std::string> args = {}) {
    ServerOptions o;
    o.threads = GetParam();
    o.config_lines = std::move(lines);
    o.args = std::move(args);
    return o;
  }
};

std::string ConfigGet(RedisClient& c, const std::string& name) {
  Reply r = c.Command({"CONFIG", "GET", name});
  if (r.elements.size() != 2) return "<" + r.ToString() + ">";
  return r.elements[1].str;
}

TEST_P(ProcessTest, ConfigFileThenFlagsTheLastOneWins) {
  // The file says 200 and 300; the flag, appended after the file, says 400.
  ServerProcess server(Options({"maxclients 200", "timeout 30", "maxclients 300"}, {"--maxclients", "400"}));
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "maxclients"), "400");
  EXPECT_EQ(ConfigGet(c, "timeout"), "30");
  EXPECT_EQ(ConfigGet(c, "port"), std::to_string(server.port()));
  EXPECT_EQ(ConfigGet(c, "bind"), "127.0.0.1");
  // The working directory is the one the server was started in, as an absolute path.
  char real[PATH_MAX];
  ASSERT_NE(realpath(server.dir().c_str(), real), nullptr);
  EXPECT_EQ(ConfigGet(c, "dir"), real);
}

TEST_P(ProcessTest, FlagsWithoutConfigFile) {
  ServerOptions o = Options({}, {"--maxmemory", "2mb", "--loglevel", "warning"});
  o.no_config_file = true;
  ServerProcess server(o);
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "maxmemory"), "2097152");
  EXPECT_EQ(ConfigGet(c, "loglevel"), "warning");
  EXPECT_EQ(c.Command({"CONFIG", "REWRITE"}).ToString(), "-ERR The server is running without a config file");
}

TEST_P(ProcessTest, ConfigGetAllReturnsDisquesParameters) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  Reply r = c.Command({"CONFIG", "GET", "*"});
  ASSERT_EQ(r.elements.size(), 70u) << "35 name/value pairs";
  EXPECT_EQ(r.elements[0].str, "requirepass");
  EXPECT_EQ(r.elements[68].str, "bind");
  // Ours: by exact name only.
  const Reply pm = c.Command({"CONFIG", "GET", "protected-mode"});
  ASSERT_EQ(pm.elements.size(), 2u) << pm.ToString();
  EXPECT_EQ(pm.elements[1].str, "yes");
  EXPECT_EQ(c.Command({"CONFIG", "GET", "MAXMEMORY"}).elements.size(), 0u) << "patterns are case-sensitive";
  EXPECT_EQ(c.Command({"CONFIG", "GET", "maxmemory*"}).elements.size(), 6u);
}

TEST_P(ProcessTest, ConfigSetErrors) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(c.Command({"CONFIG", "SET", "nosuch", "1"}).ToString(), "-ERR Unsupported CONFIG parameter: nosuch");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "port", "1"}).ToString(), "-ERR Unsupported CONFIG parameter: port");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "timeout", "abc"}).ToString(),
            "-ERR Invalid argument 'abc' for CONFIG SET 'timeout'");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "timeout"}).ToString(), "-ERR Wrong number of arguments for CONFIG SET");
  EXPECT_EQ(c.Command({"CONFIG", "get"}).ToString(), "-ERR Wrong number of arguments for CONFIG get");
  EXPECT_EQ(c.Command({"CONFIG", "FOO"}).ToString(),
            "-ERR CONFIG subcommand must be one of GET, SET, RESETSTAT, REWRITE");
  EXPECT_EQ(c.Command({"CONFIG"}).ToString(), "-ERR wrong number of arguments for 'config' command");
  EXPECT_EQ(ConfigGet(c, "timeout"), "0") << "a rejected SET changes nothing";
}

TEST_P(ProcessTest, ConfigSetIsSeenByEveryShard) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient admin(server.port());
  ASSERT_EQ(admin.Command({"CONFIG", "SET", "requirepass", "s3cret"}).ToString(), "+OK");
  // With 4 shards, new connections land on every shard: all must see the password.
  for (int i = 0; i < 8; ++i) {
    RedisClient c(server.port());
    EXPECT_EQ(c.Command({"PING"}).ToString(), "-NOAUTH Authentication required.") << "connection " << i;
    EXPECT_EQ(c.Command({"AUTH", "s3cret"}).ToString(), "+OK");
    EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  }
}

TEST_P(ProcessTest, ConfigRewriteRoundTrip) {
  ServerProcess server(Options({"# a comment that must survive", "timeout 10", "maxmemory-policy acks"}));
  ASSERT_TRUE(server.Start()) << server.error();
  {
    RedisClient c(server.port());
    ASSERT_EQ(c.Command({"CONFIG", "SET", "timeout", "42"}).ToString(), "+OK");
    ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", "3mb"}).ToString(), "+OK");
    ASSERT_EQ(c.Command({"CONFIG", "SET", "loglevel", "verbose"}).ToString(), "+OK");
    ASSERT_EQ(c.Command({"CONFIG", "REWRITE"}).ToString(), "+OK");
  }
  const std::string conf = ReadFile(server.config_path());
  EXPECT_NE(conf.find("# a comment that must survive"), std::string::npos) << conf;
  EXPECT_NE(conf.find("timeout 42"), std::string::npos) << conf;
  EXPECT_EQ(conf.find("timeout 10"), std::string::npos) << conf;
  EXPECT_NE(conf.find("maxmemory 3mb"), std::string::npos) << conf;
  EXPECT_NE(conf.find("# Generated by CONFIG REWRITE"), std::string::npos) << conf;

  // The rewritten file starts a server with the same settings.
  ASSERT_NE(server.Stop(SIGTERM), -1);
  ASSERT_TRUE(server.Restart()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "timeout"), "42");
  EXPECT_EQ(ConfigGet(c, "maxmemory"), "3145728");
  EXPECT_EQ(ConfigGet(c, "loglevel"), "verbose");
  EXPECT_EQ(ConfigGet(c, "maxmemory-policy"), "acks");
}

TEST_P(ProcessTest, UnknownDirectiveIsAFatalErrorWithLine) {
  ServerProcess server(Options({"timeout 5", "no-such-directive 1"}));
  EXPECT_FALSE(server.Start());
  EXPECT_NE(server.log().find("*** FATAL CONFIG FILE ERROR ***"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find("Reading the configuration file, at line 4"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find(">>> 'no-such-directive 1'"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find("Bad directive or wrong number of arguments"), std::string::npos) << server.log();
}

TEST_P(ProcessTest, SigtermShutsDownCleanly) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient idle(server.port());
  ASSERT_TRUE(idle.connected());
  const int status = server.Stop(SIGTERM);
  ASSERT_NE(status, -1) << "did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(server.log().find("bye bye"), std::string::npos) << server.log();
}

TEST_P(ProcessTest, ShutdownCommandClosesWithoutReply) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(c.Command({"SHUTDOWN", "NOW"}).ToString(), "-ERR syntax error");
  RawConnection raw(server.port());
  ASSERT_TRUE(raw.Send("SHUTDOWN\r\n"));
  bool closed = false;
  EXPECT_EQ(raw.ReadUntilClose(&closed), "");
  EXPECT_TRUE(closed);
  const int status = server.WaitExit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_P(ProcessTest, DaemonizeWritesPidfileAndSigtermRemovesIt) {
  // The daemon forks away from the process the fixture started, so this test manages
  // it by the PID in its pidfile.
  TempDir dir;
  const int port = PickFreePort();
  const std::string pidfile = dir.File("disque.pid");
  WriteFile(dir.File("disque.conf"), "port " + std::to_string(port) + "\nbind 127.0.0.1\ndaemonize yes\n" +
                                         "pidfile " + pidfile + "\nlogfile " + dir.File("log.txt") + "\ndir " + dir.path() + "\n");
  int status = 0;
  RunCommand(std::string(DISQUE_SERVER_BINARY) + " " + dir.File("disque.conf") + " --threads " +
                 std::to_string(GetParam()),
             "", &status);
  EXPECT_EQ(status, 0) << "the launching process exits at once";
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(pidfile).empty(); })) << ReadFile(dir.File("log.txt"));
  const pid_t pid = std::stoi(ReadFile(pidfile));
  ASSERT_GT(pid, 1);
  ASSERT_TRUE(WaitFor([&] {
    RedisClient c(port, 1000);
    return c.connected() && c.Command({"PING"}).str == "PONG";
  }));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  const bool gone = WaitFor([&] { return kill(pid, 0) != 0; });
  if (!gone) kill(pid, SIGKILL);
  EXPECT_TRUE(gone);
  EXPECT_TRUE(WaitFor([&] { return access(pidfile.c_str(), F_OK) != 0; })) << "pidfile removed at exit";
  EXPECT_NE(ReadFile(dir.File("log.txt")).find("The server is now ready to accept connections on port"),
            std::string::npos);
}

// SIGPIPE is ignored: a log written to a pipe nobody reads any more is an EPIPE, not
// the end of the server. Started by hand, with stdout and stderr on such a pipe.
TEST_P(ProcessTest, LogToAClosedPipeDoesNotKillTheServer) {
  TempDir dir;
  const std::string bin = DISQUE_SERVER_BINARY, threads = std::to_string(GetParam());
  int port = 0;
  pid_t pid = -1;
  bool up = false;
  bool exited_early = false;
  int status = 0;
  // The log goes nowhere, so a port taken meanwhile by a parallel test shows only as an
  // early exit before the server answered: try another port then.
  for (int attempt = 0; attempt < 5 && !up; ++attempt) {
    port = PickFreePort();
    const std::string port_text = std::to_string(port);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    close(fds[0]);  // nobody will ever read
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      signal(SIGPIPE, SIG_DFL);  // whatever the test runner ignores, the server starts with the default
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      execl(bin.c_str(), bin.c_str(), "--port", port_text.c_str(), "--bind", "127.0.0.1", "--dir",
            dir.path().c_str(), "--threads", threads.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    up = WaitFor([&] {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited_early = true;
        return true;
      }
      RedisClient c(port, 1000);
      return c.connected() && c.Command({"PING"}).str == "PONG";
    });
    if (exited_early && WIFEXITED(status) && WEXITSTATUS(status) == 1) {  // port in use: retry
      up = exited_early = false;
      continue;
    }
    up = up && !exited_early;
    break;
  }
  if (!exited_early) {
    RedisClient c(port);
    c.Command({"SHUTDOWN"});  // logs on its way out, too
    if (!WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; })) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  EXPECT_TRUE(up) << "the server answered despite its log going nowhere";
  EXPECT_FALSE(exited_early) << "status " << status << " (a signal: " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_P(ProcessTest, MaxclientsRefusesWithDisquesError) {
  ServerProcess server(Options({"maxclients 3"}));
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient a(server.port()), b(server.port());
  auto c = std::make_unique<RedisClient>(server.port());
  ASSERT_EQ(c->Command({"PING"}).ToString(), "+PONG");
  RawConnection extra(server.port());
  ASSERT_TRUE(extra.connected());
  bool closed = false;
  EXPECT_EQ(extra.ReadUntilClose(&closed), "-ERR max number of clients reached\r\n");
  EXPECT_TRUE(closed);
  Reply info = a.Command({"INFO", "stats"});
  EXPECT_NE(info.str.find("rejected_connections:1\r\n"), std::string::npos) << info.str;
  // Once a client leaves, a new one is accepted.
  c.reset();
  EXPECT_TRUE(WaitFor([&] {
    RedisClient next(server.port());
    return next.Command({"PING"}).ToString() == "+PONG";
  }));
}

TEST_P(ProcessTest, UnixSocket) {
  TempDir dir;
  const std::string path = dir.File("disque.sock");
  ServerProcess server(Options({"unixsocket " + path, "unixsocketperm 700"}));
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(path);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  Reply list = c.Command({"CLIENT", "LIST"});
  EXPECT_NE(list.str.find("addr=" + path + ":0"), std::string::npos) << list.str;
  EXPECT_NE(list.str.find("flags=U"), std::string::npos) << list.str;
  EXPECT_EQ(ConfigGet(c, "unixsocketperm"), "700");
  const std::string out = RunCommand("redis-cli -s " + path + " PING");
  EXPECT_EQ(out, "PONG\n");
}

TEST_P(ProcessTest, BindsSeveralAddressesIpv4AndIpv6) {
  ServerProcess server(Options({"bind 127.0.0.1 ::1"}));
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient v4(server.port());
  RedisClient v6(Host{"::1"}, server.port());
  ASSERT_TRUE(v6.connected()) << v6.error();
  EXPECT_EQ(v4.Command({"PING"}).ToString(), "+PONG");
  EXPECT_EQ(v6.Command({"PING"}).ToString(), "+PONG");
  EXPECT_EQ(ConfigGet(v4, "bind"), "127.0.0.1 ::1");
  Reply list = v6.Command({"CLIENT", "LIST"});
  EXPECT_NE(list.str.find("addr=[::1]:"), std::string::npos) << "IPv6 peers are bracketed: " << list.str;
}

TEST_P(ProcessTest, BindFailureIsFatal) {
  ServerProcess holder(Options());
  ASSERT_TRUE(holder.Start()) << holder.error();
  // A second server on the same port cannot bind: it exits 1 and says why.
  int status = 0;
  const std::string out = RunCommand(std::string(DISQUE_SERVER_BINARY) + " --bind 127.0.0.1 --port " +
                                         std::to_string(holder.port()) + " --threads " + std::to_string(GetParam()),
                                     "", &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("Creating Server TCP listening socket 127.0.0.1:" + std::to_string(holder.port())),
            std::string::npos)
      << out;
}

TEST_P(ProcessTest, LogFileBannerAndFormat) {
  ServerProcess server(Options({"logfile disque.log", "loglevel notice"}));
  ASSERT_TRUE(server.Start()) << server.error();
  const std::string log = ReadFile(server.dir() + "/disque.log");
  EXPECT_NE(log.find("Port: " + std::to_string(server.port())), std::string::npos) << log;
  EXPECT_NE(log.find("PID: "), std::string::npos) << log;
  EXPECT_NE(log.find("The server is now ready to accept connections on port " + std::to_string(server.port())),
            std::string::npos)
      << log;
  // "<pid>:P <dd Mon HH:MM:SS.mmm> * <message>" for notice-level lines.
  const std::string prefix = std::to_string(server.pid()) + ":P ";
  EXPECT_EQ(log.rfind(prefix, 0), 0u) << log;
  EXPECT_NE(log.find(" * Server started"), std::string::npos) << log;
}

TEST_P(ProcessTest, SigintShutsDownCleanly) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  const int status = server.Stop(SIGINT);
  ASSERT_NE(status, -1) << "did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(server.log().find("Received SIGINT"), std::string::npos) << server.log();
}

TEST_P(ProcessTest, ConfigResetstatClearsCounters) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  {
    // The fixture's readiness PINGs count too: start from zero.
    RedisClient first(server.port());
    ASSERT_EQ(first.Command({"CONFIG", "RESETSTAT"}).ToString(), "+OK");
  }
  // Connections on several shards, so every shard has counters to reset.
  for (int i = 0; i < 8; ++i) {
    RedisClient c(server.port());
    for (int j = 0; j < 10; ++j) ASSERT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  }
  RedisClient c(server.port());
  EXPECT_NE(c.Command({"INFO", "commandstats"}).str.find("cmdstat_ping:calls=80,"), std::string::npos);
  ASSERT_EQ(c.Command({"CONFIG", "RESETSTAT"}).ToString(), "+OK");
  const std::string stats = c.Command({"INFO", "all"}).str;
  EXPECT_EQ(stats.find("cmdstat_ping"), std::string::npos) << stats;
  EXPECT_NE(stats.find("total_connections_received:0\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("rejected_connections:0\r\n"), std::string::npos) << stats;
  // Only RESETSTAT itself has been counted since the reset.
  EXPECT_NE(stats.find("total_commands_processed:1\r\n"), std::string::npos) << stats;
}

TEST_P(ProcessTest, ClientPauseHoldsCommandsOnEveryShard) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(std::make_unique<RawConnection>(server.port()));
  RedisClient admin(server.port());
  EXPECT_EQ(admin.Command({"CLIENT", "PAUSE", "abc"}).ToString(), "-ERR timeout is not an integer or out of range");
  EXPECT_EQ(admin.Command({"CLIENT", "PAUSE", "-1"}).ToString(), "-ERR timeout is negative");
  ASSERT_EQ(admin.Command({"CLIENT", "PAUSE", "1500"}).ToString(), "+OK");
  for (auto& conn : conns) ASSERT_TRUE(conn->Send("PING\r\n"));
  // Held while the pause lasts (checked well inside it), answered after it.
  for (auto& conn : conns) EXPECT_EQ(conn->Read(7, 200), "") << "answered during the pause";
  for (auto& conn : conns) EXPECT_EQ(conn->Read(7, 10000), "+PONG\r\n");
}

TEST_P(ProcessTest, DebugSubcommands) {
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(c.Command({"DEBUG", "ERROR", "FOO bar\nbaz"}).ToString(), "-FOO bar baz");
  EXPECT_EQ(c.Command({"DEBUG", "SLEEP", "0"}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"DEBUG", "SLEEP", "garbage"}).ToString(), "+OK");
  Reply shards = c.Command({"DEBUG", "SHARDS"});
  ASSERT_EQ(shards.elements.size(), static_cast<size_t>(GetParam()));
  EXPECT_EQ(shards.elements[0].str.rfind("shard:0 clients:", 0), 0u) << shards.elements[0].str;
  EXPECT_EQ(c.Command({"DEBUG", "NOSUCH"}).ToString(),
            "-ERR Unknown DEBUG subcommand or wrong number of arguments for 'NOSUCH'");
  EXPECT_EQ(c.Command({"DEBUG"}).ToString(), "-ERR wrong number of arguments for 'debug' command");
  EXPECT_NE(c.Command({"DEBUG", "STRUCTSIZE"}).str.find("bits:64"), std::string::npos);
}

TEST_P(ProcessTest, TcpKeepaliveShowsAsYesNo) {
  // QUIRK kept from Disque: CONFIG GET shows yes/no and CONFIG SET takes only yes/no.
  ServerProcess server(Options());
  ASSERT_TRUE(server.Start()) << server.error();
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "tcp-keepalive"), "no");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "tcp-keepalive", "yes"}).ToString(), "+OK");
  EXPECT_EQ(ConfigGet(c, "tcp-keepalive"), "yes");
  EXPECT_EQ(c.Command({"CONFIG", "SET", "tcp-keepalive", "60"}).ToString(),
            "-ERR Invalid argument '60' for CONFIG SET 'tcp-keepalive'");
  // New connections get keepalive; they still work.
  RedisClient after(server.port());
  EXPECT_EQ(after.Command({"PING"}).ToString(), "+PONG");
}

TEST_P(ProcessTest, VersionAndHelp) {
  int status = 0;
  std::string out = RunCommand(std::string(DISQUE_SERVER_BINARY) + " --version", "", &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out.rfind("Disque server v=1.0-rc1 sha=", 0), 0u) << out;
  out = RunCommand(std::string(DISQUE_SERVER_BINARY) + " --help", "", &status);
  EXPECT_EQ(status, 1) << "Disque's --help exits 1";
  EXPECT_NE(out.find("--maxmemory"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Threads, ProcessTest, ::testing::Values(1, 4));

}  // namespace
}  // namespace disque::test
