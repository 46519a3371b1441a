// Unit tests for the option table: config file parsing, CONFIG GET and CONFIG SET
// (PROTOCOL.md 6.6 and 9).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "disque/config/config.h"
#include "support/files.h"

namespace disque::config {
namespace {

namespace fs = std::filesystem;
using test::ReadFile;
using test::WriteFile;
using Pairs = std::vector<std::pair<std::string, std::string>>;

constexpr char kNotYesNo[] = "argument must be 'yes' or 'no'";
constexpr char kNotInteger[] = "argument couldn't be parsed into an integer";
constexpr char kNotMemory[] = "argument must be a memory value";
constexpr char kBadDirective[] = "Bad directive or wrong number of arguments";

class ConfigTest : public ::testing::Test {
 protected:

  // Loads `text` into a default Config; fails the test on error.
  Config Load(std::string_view text) {
    Config cfg;
    Status st = options_.LoadFromString(text, cfg);
    EXPECT_TRUE(st.ok()) << st.message();
    return cfg;
  }

  // The error message of loading `text` (empty if it loaded).
  std::string LoadError(std::string_view text) {
    Config cfg;
    Status st = options_.LoadFromString(text, cfg);
    return std::string(st.message());
  }

  std::string GetOne(const Config& cfg, std::string_view name) {
    Pairs pairs = options_.Get(cfg, name);
    EXPECT_EQ(pairs.size(), 1u) << name;
    return pairs.empty() ? std::string() : pairs[0].second;
  }

  Options options_;
  test::TempCwd cwd_;           // every test runs in a fresh directory: `dir` chdirs
  fs::path tmp_{cwd_.path()};
};

// ---------------------------------------------------------------------------------------
// Config file

TEST_F(ConfigTest, FatalConfigErrorFormat) {
  EXPECT_EQ(FatalConfigError(3, "port 99999", "Invalid port"),
            "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line 3\n"
            ">>> 'port 99999'\nInvalid port\n");
}

TEST_F(ConfigTest, EmptyTextKeepsDefaultsAndFillsDir) {
  Config cfg = Load("");
  EXPECT_EQ(cfg.port, 7711);
  EXPECT_EQ(cfg.maxmemory, 1073741824);
  EXPECT_EQ(cfg.dir, fs::current_path().string());
  EXPECT_EQ(cfg.dir, tmp_.string());
}

TEST_F(ConfigTest, EveryDirectiveParsesAGoodValue) {
  Config cfg = Load(
      "daemonize yes\n"
      "pidfile /tmp/x.pid\n"
      "port 7777\n"
      "tcp-backlog 128\n"
      "bind 127.0.0.1 ::1\n"
      "unixsocket /tmp/disque.sock\n"
      "unixsocketperm 755\n"
      "timeout 30\n"
      "tcp-keepalive 60\n"
      "loglevel debug\n"
      "logfile log.txt\n"
      "syslog-enabled yes\n"
      "syslog-ident myqueue\n"
      "syslog-facility local5\n"
      "databases 4\n"
      "requirepass secret\n"
      "maxclients 50\n"
      "maxmemory 2mb\n"
      "maxmemory-policy noeviction\n"
      "maxmemory-samples 7\n"
      "activerehashing no\n"
      "hz 50\n"
      "appendonly yes\n"
      "appendfilename queue.aof\n"
      "appendfsync always\n"
      "no-appendfsync-on-rewrite yes\n"
      "auto-aof-rewrite-percentage 50\n"
      "auto-aof-rewrite-min-size 32mb\n"
      "aof-rewrite-incremental-fsync no\n"
      "aof-load-truncated no\n"
      "aof-enqueue-jobs-once yes\n"
      "cluster-config-file nodes-1.conf\n"
      "cluster-node-timeout 5000\n"
      "slowlog-log-slower-than -1\n"
      "slowlog-max-len 64\n"
      "latency-monitor-threshold 100\n"
      "client-output-buffer-limit normal 1mb 512kb 60\n"
      "threads 4\n"
      "dir .\n");
  EXPECT_TRUE(cfg.daemonize);
  EXPECT_EQ(cfg.pidfile, "/tmp/x.pid");
  EXPECT_EQ(cfg.port, 7777);
  EXPECT_EQ(cfg.tcp_backlog, 128);
  EXPECT_EQ(cfg.bind, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(cfg.unixsocket, "/tmp/disque.sock");
  EXPECT_EQ(cfg.unixsocketperm, 0755);
  EXPECT_EQ(cfg.timeout, 30);
  EXPECT_EQ(cfg.tcp_keepalive, 60);
  EXPECT_EQ(cfg.loglevel, LogLevel::kDebug);
  EXPECT_EQ(cfg.logfile, "log.txt");
  EXPECT_TRUE(fs::exists(tmp_ / "log.txt"));  // opened for append when parsed
  EXPECT_TRUE(cfg.syslog_enabled);
  EXPECT_EQ(cfg.syslog_ident, "myqueue");
  EXPECT_EQ(cfg.syslog_facility, "local5");
  EXPECT_EQ(cfg.databases, 4);
  EXPECT_EQ(cfg.requirepass, "secret");
  EXPECT_EQ(cfg.maxclients, 50);
  EXPECT_EQ(cfg.maxmemory, 2 * 1024 * 1024);
  EXPECT_EQ(cfg.maxmemory_policy, MaxmemoryPolicy::kNoEviction);
  EXPECT_EQ(cfg.maxmemory_samples, 7);
  EXPECT_FALSE(cfg.activerehashing);
  EXPECT_EQ(cfg.hz, 50);
  EXPECT_TRUE(cfg.appendonly);
  EXPECT_EQ(cfg.appendfilename, "queue.aof");
  EXPECT_EQ(cfg.appendfsync, AppendFsync::kAlways);
  EXPECT_TRUE(cfg.no_appendfsync_on_rewrite);
  EXPECT_EQ(cfg.auto_aof_rewrite_percentage, 50);
  EXPECT_EQ(cfg.auto_aof_rewrite_min_size, 32 * 1024 * 1024);
  EXPECT_FALSE(cfg.aof_rewrite_incremental_fsync);
  EXPECT_FALSE(cfg.aof_load_truncated);
  EXPECT_TRUE(cfg.aof_enqueue_jobs_once);
  EXPECT_EQ(cfg.cluster_config_file, "nodes-1.conf");
  EXPECT_EQ(cfg.cluster_node_timeout, 5000);
  EXPECT_EQ(cfg.slowlog_log_slower_than, -1);  // negative allowed from the file
  EXPECT_EQ(cfg.slowlog_max_len, 64);
  EXPECT_EQ(cfg.latency_monitor_threshold, 100);
  EXPECT_EQ(cfg.client_obuf_hard, 1024 * 1024);
  EXPECT_EQ(cfg.client_obuf_soft, 512 * 1024);
  EXPECT_EQ(cfg.client_obuf_soft_seconds, 60);
  EXPECT_EQ(cfg.threads, 4);
  EXPECT_EQ(cfg.dir, tmp_.string());
}

TEST_F(ConfigTest, EnumValuesAllAccepted) {
  EXPECT_EQ(Load("loglevel verbose").loglevel, LogLevel::kVerbose);
  EXPECT_EQ(Load("loglevel notice").loglevel, LogLevel::kNotice);
  EXPECT_EQ(Load("loglevel WARNING").loglevel, LogLevel::kWarning);
  EXPECT_EQ(Load("maxmemory-policy ACKS").maxmemory_policy, MaxmemoryPolicy::kAcks);
  EXPECT_EQ(Load("appendfsync no").appendfsync, AppendFsync::kNo);
  EXPECT_EQ(Load("appendfsync EverySec").appendfsync, AppendFsync::kEverysec);
  EXPECT_EQ(Load("syslog-facility USER").syslog_facility, "user");
  for (int i = 0; i <= 7; ++i) {
    std::string name = "local" + std::to_string(i);
    EXPECT_EQ(Load("syslog-facility " + name).syslog_facility, name);
  }
}

struct BadLine {
  std::string line;
  std::string reason;
};

TEST_F(ConfigTest, EveryDirectiveRejectsBadValuesWithExactReason) {
  const std::string bind17 = [] {
    std::string s = "bind";
    for (int i = 1; i <= 17; ++i) s += " 10.0.0." + std::to_string(i);
    return s;
  }();
  const std::vector<BadLine> cases = {
      {"daemonize maybe", kNotYesNo},
      {"port 65536", "Invalid port"},
      {"port -1", "Invalid port"},
      {"port abc", "Invalid port"},
      {"tcp-backlog -1", "Invalid backlog value"},
      {bind17, "Too many bind addresses specified"},
      {"unixsocketperm 1000", "Invalid socket file permissions"},
      {"unixsocketperm 8", "Invalid socket file permissions"},
      {"unixsocketperm -1", "Invalid socket file permissions"},
      {"timeout -1", "Invalid timeout value"},
      {"timeout 1.5", "Invalid timeout value"},
      {"tcp-keepalive -1", "Invalid tcp-keepalive value"},
      {"loglevel loud", "Invalid log level. Must be one of debug, verbose, notice, warning"},
      {"logfile /nonexistent-disque-dir/log.txt",
       "Can't open the log file: No such file or directory"},
      {"syslog-enabled maybe", kNotYesNo},
      {"syslog-facility local8",
       "Invalid log facility. Must be one of USER or between LOCAL0-LOCAL7"},
      {"databases 0", "Invalid number of databases"},
      {"dir /nonexistent-disque-dir",
       "Can't chdir to '/nonexistent-disque-dir': No such file or directory"},
      {"requirepass " + std::string(513, 'p'), "Password is longer than CONFIG_AUTHPASS_MAX_LEN"},
      {"maxclients 0", "Invalid max clients limit"},
      {"maxmemory 0", "You need to specify a memory limit greater than zero"},
      {"maxmemory -1gb", "You need to specify a memory limit greater than zero"},
      {"maxmemory 10xb", "You need to specify a memory limit greater than zero"},
      {"maxmemory-policy allkeys-lru", "Invalid maxmemory policy"},
      {"maxmemory-samples 0", "maxmemory-samples must be 1 or greater"},
      {"activerehashing 1", kNotYesNo},
      {"hz fast", kNotInteger},
      {"appendonly on", kNotYesNo},
      {"appendfilename dir/q.aof", "appendfilename can't be a path, just a filename"},
      {"appendfilename dir\\q.aof", "appendfilename can't be a path, just a filename"},
      {"appendfsync sometimes", "argument must be 'no', 'always' or 'everysec'"},
      {"no-appendfsync-on-rewrite x", kNotYesNo},
      {"auto-aof-rewrite-percentage -1", "Invalid negative percentage for AOF auto rewrite"},
      {"auto-aof-rewrite-min-size 1xb", kNotMemory},
      {"aof-rewrite-incremental-fsync x", kNotYesNo},
      {"aof-load-truncated x", kNotYesNo},
      {"aof-enqueue-jobs-once x", kNotYesNo},
      {"cluster-node-timeout 0", "cluster node timeout must be 1 or greater"},
      {"slowlog-log-slower-than x", kNotInteger},
      {"latency-monitor-threshold -1", "The latency threshold can't be negative"},
      {"slowlog-max-len x", kNotInteger},
      {"client-output-buffer-limit slave 0 0 0", "Unrecognized client limit class"},
      {"client-output-buffer-limit normal 0 0 -1",
       "Negative number of seconds in soft limit is invalid"},
      {"client-output-buffer-limit normal 1x 0 0", kNotMemory},
      {"client-output-buffer-limit normal 0 1x 0", kNotMemory},
      {"client-output-buffer-limit normal 0 0 x", kNotInteger},
      {"threads 1025", "Invalid number of threads"},
      {"threads -1", "Invalid number of threads"},
      {"include /nonexistent-disque-dir/x.conf",
       "Fatal error, can't open config file '/nonexistent-disque-dir/x.conf'"},
      {"requirepass \"abc", "Unbalanced quotes in configuration line"},
      {"requirepass \"abc\"def", "Unbalanced quotes in configuration line"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(LoadError("port 1\n" + c.line + "\nport 2\n"), FatalConfigError(2, c.line, c.reason))
        << c.line;
  }
}

TEST_F(ConfigTest, WrongArgumentCountsAndUnknownDirectives) {
  for (const char* line :
       {"port", "port 1 2", "bind", "daemonize", "client-output-buffer-limit normal 0 0",
        "client-output-buffer-limit normal 0 0 0 0", "rename-command get", "rename-command a b c",
        "include", "include a b", "watchdog-period 10", "save 900 1", "slaveof 127.0.0.1 7711",
        "nosuchdirective", "\"\""}) {
    EXPECT_EQ(LoadError(line), FatalConfigError(1, line, kBadDirective)) << line;
  }
}

TEST_F(ConfigTest, ErrorReportsLineNumberAndTrimmedLine) {
  const std::string text =
      "# a comment\n"
      "\n"
      "port 1234\r\n"
      "   \t\n"
      "  # indented comment\n"
      "  bogus directive here \r\n"
      "port 1\n";
  EXPECT_EQ(LoadError(text), FatalConfigError(6, "bogus directive here", kBadDirective));
}

TEST_F(ConfigTest, ErrorStopsParsingAndLeavesEarlierLinesApplied) {
  Config cfg;
  Status st = options_.LoadFromString("port 1000\nport 70000\nhz 20\n", cfg);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(cfg.port, 1000);
  EXPECT_EQ(cfg.hz, 10);
}

TEST_F(ConfigTest, MemoryUnits) {
  EXPECT_EQ(Load("maxmemory 100").maxmemory, 100);
  EXPECT_EQ(Load("maxmemory 100b").maxmemory, 100);
  EXPECT_EQ(Load("maxmemory 1k").maxmemory, 1000);
  EXPECT_EQ(Load("maxmemory 1kb").maxmemory, 1024);
  EXPECT_EQ(Load("maxmemory 1m").maxmemory, 1000000);
  EXPECT_EQ(Load("maxmemory 1mb").maxmemory, 1048576);
  EXPECT_EQ(Load("maxmemory 1g").maxmemory, 1000000000);
  EXPECT_EQ(Load("maxmemory 1gb").maxmemory, 1073741824);
  EXPECT_EQ(Load("maxmemory 2GB").maxmemory, 2147483648);
  EXPECT_EQ(Load("maxmemory 3Mb").maxmemory, 3145728);
  EXPECT_EQ(Load("auto-aof-rewrite-min-size 1k").auto_aof_rewrite_min_size, 1000);
  EXPECT_EQ(Load("auto-aof-rewrite-min-size 0").auto_aof_rewrite_min_size, 0);
  Config cfg = Load("client-output-buffer-limit NORMAL 1gb 2k 0");
  EXPECT_EQ(cfg.client_obuf_hard, 1073741824);
  EXPECT_EQ(cfg.client_obuf_soft, 2000);
}

TEST_F(ConfigTest, YesNoIsCaseInsensitive) {
  EXPECT_TRUE(Load("daemonize YES").daemonize);
  EXPECT_TRUE(Load("appendonly Yes").appendonly);
  EXPECT_FALSE(Load("activerehashing NO").activerehashing);
  EXPECT_FALSE(Load("aof-load-truncated nO").aof_load_truncated);
}

TEST_F(ConfigTest, DirectiveNamesAreCaseInsensitive) {
  Config cfg = Load("PORT 1234\nMaxMemory 1mb\nAppendOnly yes\n");
  EXPECT_EQ(cfg.port, 1234);
  EXPECT_EQ(cfg.maxmemory, 1048576);
  EXPECT_TRUE(cfg.appendonly);
}

TEST_F(ConfigTest, LastOneWins) {
  Config cfg = Load("port 1\nmaxmemory 1mb\nport 2\nloglevel debug\nloglevel warning\n");
  EXPECT_EQ(cfg.port, 2);
  EXPECT_EQ(cfg.loglevel, LogLevel::kWarning);
}

TEST_F(ConfigTest, BindReplacesTheWholeList) {
  EXPECT_EQ(Load("bind 1.1.1.1 2.2.2.2\nbind 3.3.3.3\n").bind, std::vector<std::string>{"3.3.3.3"});
  std::string bind16 = "bind";
  for (int i = 1; i <= 16; ++i) bind16 += " 10.0.0." + std::to_string(i);
  EXPECT_EQ(Load(bind16).bind.size(), 16u);
}

TEST_F(ConfigTest, HzIsClamped) {
  EXPECT_EQ(Load("hz 0").hz, 1);
  EXPECT_EQ(Load("hz -5").hz, 1);
  EXPECT_EQ(Load("hz 1000").hz, 500);
  EXPECT_EQ(Load("hz 500").hz, 500);
  EXPECT_EQ(Load("hz 1").hz, 1);
}

TEST_F(ConfigTest, RangeEdgesAccepted) {
  EXPECT_EQ(Load("port 0").port, 0);
  EXPECT_EQ(Load("port 65535").port, 65535);
  EXPECT_EQ(Load("unixsocketperm 777").unixsocketperm, 0777);
  EXPECT_EQ(Load("unixsocketperm 0").unixsocketperm, 0);
  EXPECT_EQ(Load("threads 0").threads, 0);
  EXPECT_EQ(Load("threads 1024").threads, 1024);
  EXPECT_EQ(Load("requirepass " + std::string(512, 'p')).requirepass.size(), 512u);
  EXPECT_EQ(Load("timeout 0").timeout, 0);
  EXPECT_EQ(Load("cluster-node-timeout 1").cluster_node_timeout, 1);
  EXPECT_EQ(Load("slowlog-max-len 0").slowlog_max_len, 0);
}

TEST_F(ConfigTest, QuotingAndEscapesInValues) {
  EXPECT_EQ(Load(R"(requirepass "a b\"c\n")").requirepass, "a b\"c\n");
  EXPECT_EQ(Load(R"(requirepass 'it\'s')").requirepass, "it's");
  EXPECT_EQ(Load(R"(pidfile "/tmp/\x41.pid")").pidfile, "/tmp/A.pid");
  EXPECT_EQ(Load(R"(logfile "my log.txt")").logfile, "my log.txt");
  EXPECT_EQ(Load(R"(bind "127.0.0.1" '::1')").bind, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(Load(R"(requirepass "")").requirepass, "");
}

TEST_F(ConfigTest, IncludeParsesTheFileInPlace) {
  WriteFile(tmp_ / "inc.conf", "port 1234\nmaxmemory 2mb\n");
  Config cfg = Load("port 1\nhz 20\ninclude inc.conf\nmaxmemory 3mb\n");
  EXPECT_EQ(cfg.port, 1234);  // the include comes after `port 1`
  EXPECT_EQ(cfg.hz, 20);
  EXPECT_EQ(cfg.maxmemory, 3 * 1024 * 1024);  // and before `maxmemory 3mb`
}

TEST_F(ConfigTest, IncludeErrorsUseTheIncludedFilesLines) {
  WriteFile(tmp_ / "inc.conf", "# included\nport 1\nport nope\n");
  EXPECT_EQ(LoadError("hz 20\n\ninclude inc.conf\n"),
            FatalConfigError(3, "port nope", "Invalid port"));
}

TEST_F(ConfigTest, IncludeLoopIsAnError) {
  WriteFile(tmp_ / "loop.conf", "include loop.conf\n");
  EXPECT_EQ(LoadError("include loop.conf"),
            FatalConfigError(1, "include loop.conf", "Too many nested include directives"));
}

TEST_F(ConfigTest, RenameCommandIsKeptWithItsLine) {
  Config cfg = Load("port 1\nrename-command CONFIG \"\"\n  rename-command flushall myflush\n");
  ASSERT_EQ(cfg.renames.size(), 2u);
  EXPECT_EQ(cfg.renames[0].from, "CONFIG");
  EXPECT_EQ(cfg.renames[0].to, "");
  EXPECT_EQ(cfg.renames[0].line_no, 2);
  EXPECT_EQ(cfg.renames[0].line, "rename-command CONFIG \"\"");
  EXPECT_EQ(cfg.renames[1].from, "flushall");
  EXPECT_EQ(cfg.renames[1].to, "myflush");
  EXPECT_EQ(cfg.renames[1].line_no, 3);
  EXPECT_EQ(cfg.renames[1].line, "rename-command flushall myflush");
}

TEST_F(ConfigTest, DirChdirsImmediatelyAndLaterPathsResolveThere) {
  fs::create_directory(tmp_ / "node1");
  // What the test harness writes.
  Config cfg = Load("port 25000\ndir ./node1\nlogfile log.txt\n");
  EXPECT_EQ(cfg.dir, (tmp_ / "node1").string());
  EXPECT_EQ(fs::current_path(), tmp_ / "node1");
  EXPECT_TRUE(fs::exists(tmp_ / "node1" / "log.txt"));
  EXPECT_FALSE(fs::exists(tmp_ / "log.txt"));
}

TEST_F(ConfigTest, LoadFileAppendsExtraOptionsAfterTheFile) {
  WriteFile(tmp_ / "disque.conf", "port 1\nhz 20\n");
  Config cfg;
  ASSERT_TRUE(
      options_.LoadFile((tmp_ / "disque.conf").string(), "port 2\nmaxmemory 5mb", cfg).ok());
  EXPECT_EQ(cfg.port, 2);
  EXPECT_EQ(cfg.hz, 20);
  EXPECT_EQ(cfg.maxmemory, 5 * 1024 * 1024);
  EXPECT_EQ(cfg.dir, tmp_.string());
}

TEST_F(ConfigTest, LoadFileLineNumbersContinueIntoExtraOptions) {
  // Disque appends "\n" and the options to the file content: a file of two lines ending
  // in a newline puts the first option on line 4.
  WriteFile(tmp_ / "disque.conf", "port 1\nhz 20\n");
  Config cfg;
  Status st = options_.LoadFile((tmp_ / "disque.conf").string(), "port 3\nport x", cfg);
  EXPECT_EQ(st.message(), FatalConfigError(5, "port x", "Invalid port"));
}

TEST_F(ConfigTest, LoadFileWithoutAFile) {
  Config cfg;
  ASSERT_TRUE(options_.LoadFile("", "port 9999", cfg).ok());
  EXPECT_EQ(cfg.port, 9999);
  Config cfg2;
  EXPECT_EQ(options_.LoadFile("", "bad", cfg2).message(),
            FatalConfigError(2, "bad", kBadDirective));
}

TEST_F(ConfigTest, LoadFileMissingFile) {
  Config cfg;
  Status st = options_.LoadFile("/nonexistent-disque-dir/disque.conf", "", cfg);
  EXPECT_EQ(st.message(),
            "Fatal error, can't open config file '/nonexistent-disque-dir/disque.conf'");
}

TEST_F(ConfigTest, DirectiveNames) {
  std::vector<std::string> names = options_.DirectiveNames();
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  for (const char* n : {"daemonize",
                        "pidfile",
                        "port",
                        "tcp-backlog",
                        "bind",
                        "unixsocket",
                        "unixsocketperm",
                        "timeout",
                        "tcp-keepalive",
                        "loglevel",
                        "logfile",
                        "syslog-enabled",
                        "syslog-ident",
                        "syslog-facility",
                        "databases",
                        "dir",
                        "include",
                        "requirepass",
                        "rename-command",
                        "maxclients",
                        "maxmemory",
                        "maxmemory-policy",
                        "maxmemory-samples",
                        "activerehashing",
                        "hz",
                        "appendonly",
                        "appendfilename",
                        "appendfsync",
                        "no-appendfsync-on-rewrite",
                        "auto-aof-rewrite-percentage",
                        "auto-aof-rewrite-min-size",
                        "aof-rewrite-incremental-fsync",
                        "aof-load-truncated",
                        "aof-enqueue-jobs-once",
                        "cluster-config-file",
                        "cluster-node-timeout",
                        "slowlog-log-slower-than",
                        "slowlog-max-len",
                        "latency-monitor-threshold",
                        "client-output-buffer-limit",
                        "threads",
                        "cluster-announce-ip",
                        "cluster-announce-port",
                        "cluster-announce-bus-port",
                        "cluster-port",
                        "protected-mode"}) {
    EXPECT_TRUE(has(n)) << n;
  }
  EXPECT_EQ(names.size(), 46u);
  EXPECT_FALSE(has("watchdog-period"));
}

// --help prints these: every directive says what it takes and what it does, and shows
// its default as a config file would write it.
TEST_F(ConfigTest, EveryDirectiveIsDescribed) {
  for (const Options::Directive& d : options_.Directives()) {
    EXPECT_FALSE(d.usage.empty()) << d.name;
    EXPECT_FALSE(d.help.empty()) << d.name;
  }
  auto find = [this](std::string_view name) {
    for (const Options::Directive& d : options_.Directives()) {
      if (d.name == name) return d;
    }
    return Options::Directive{};
  };
  EXPECT_EQ(find("port").default_value, "7711");
  EXPECT_EQ(find("maxmemory").default_value, "1gb");
  EXPECT_EQ(find("appendfilename").default_value, "\"disque.aof\"");
  EXPECT_EQ(find("tcp-keepalive").default_value, "0");  // the file's form, not CONFIG GET's yes/no
  EXPECT_EQ(find("dir").default_value, "the working directory");
  EXPECT_EQ(find("include").default_value, "");
}

// ---------------------------------------------------------------------------------------
// CONFIG GET

TEST_F(ConfigTest, GetStarReturnsAll35InOrderWithDefaults) {
  Config cfg = Load("");
  const Pairs expected = {
      {"requirepass", ""},
      {"unixsocket", ""},
      {"logfile", ""},
      {"pidfile", "/var/run/disque.pid"},
      {"maxmemory", "1073741824"},
      {"maxmemory-samples", "5"},
      {"timeout", "0"},
      {"auto-aof-rewrite-percentage", "100"},
      {"auto-aof-rewrite-min-size", "67108864"},
      {"slowlog-log-slower-than", "10000"},
      {"latency-monitor-threshold", "0"},
      {"slowlog-max-len", "128"},
      {"port", "7711"},
      {"tcp-backlog", "511"},
      {"databases", "16"},
      {"maxclients", "10000"},
      {"watchdog-period", "0"},
      {"hz", "10"},
      {"cluster-node-timeout", "15000"},
      {"tcp-keepalive", "no"},
      {"no-appendfsync-on-rewrite", "no"},
      {"daemonize", "no"},
      {"activerehashing", "yes"},
      {"aof-rewrite-incremental-fsync", "yes"},
      {"aof-load-truncated", "yes"},
      {"aof-enqueue-jobs-once", "no"},
      {"maxmemory-policy", "acks"},
      {"loglevel", "notice"},
      {"appendfsync", "everysec"},
      {"syslog-facility", "local0"},
      {"appendonly", "no"},
      {"dir", tmp_.string()},
      {"client-output-buffer-limit", "normal 0 0 0"},
      {"unixsocketperm", "0"},
      {"bind", ""},
  };
  EXPECT_EQ(options_.Get(cfg, "*"), expected);
  EXPECT_EQ(expected.size(), 35u);
  // Ours, by exact name only (PROTOCOL.md's CONFIG GET * lists Disque's 35).
  EXPECT_EQ(options_.Get(cfg, "protected-mode"), (std::vector<std::pair<std::string, std::string>>{{"protected-mode", "yes"}}));
  EXPECT_TRUE(options_.Get(cfg, "protected-*").empty());
}

TEST_F(ConfigTest, GetDirFallsBackToTheProcessCwd) {
  Config cfg;  // never loaded: dir is empty
  EXPECT_EQ(GetOne(cfg, "dir"), tmp_.string());
}

TEST_F(ConfigTest, GetPatterns) {
  Config cfg = Load("");
  auto names = [&](std::string_view pattern) {
    std::vector<std::string> out;
    for (auto& [n, v] : options_.Get(cfg, pattern)) out.push_back(n);
    return out;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(names("max*"),
            (Names{"maxmemory", "maxmemory-samples", "maxclients", "maxmemory-policy"}));
  EXPECT_EQ(names("port"), Names{"port"});
  EXPECT_EQ(names("?ort"), Names{"port"});
  EXPECT_EQ(names("*-size"), Names{"auto-aof-rewrite-min-size"});
  EXPECT_EQ(names("[pd]*"), (Names{"pidfile", "port", "databases", "daemonize", "dir"}));
  EXPECT_EQ(names("aof-*"), (Names{"aof-rewrite-incremental-fsync", "aof-load-truncated",
                                   "aof-enqueue-jobs-once"}));
  // Case-sensitive.
  EXPECT_EQ(names("MAXMEMORY"), Names{});
  EXPECT_EQ(names("Port"), Names{});
  // No match, and options CONFIG GET does not show.
  EXPECT_EQ(names("nomatch"), Names{});
  EXPECT_EQ(names(""), Names{});
  for (const char* hidden : {"syslog-enabled", "syslog-ident", "appendfilename",
                             "cluster-config-file", "threads", "include", "rename-command"}) {
    EXPECT_EQ(names(hidden), Names{}) << hidden;
  }
}

TEST_F(ConfigTest, GetFormatsNonDefaultValues) {
  Config cfg = Load(
      "tcp-keepalive 60\nunixsocketperm 700\nbind 127.0.0.1 ::1\n"
      "client-output-buffer-limit normal 1mb 2mb 60\nmaxmemory 1mb\nunixsocket /tmp/s.sock\n"
      "requirepass pw\nappendonly yes\nloglevel warning\nsyslog-facility user\n"
      "maxmemory-policy noeviction\nappendfsync no\n");
  EXPECT_EQ(GetOne(cfg, "tcp-keepalive"), "yes");
  EXPECT_EQ(GetOne(cfg, "unixsocketperm"), "700");
  EXPECT_EQ(GetOne(cfg, "bind"), "127.0.0.1 ::1");
  EXPECT_EQ(GetOne(cfg, "client-output-buffer-limit"), "normal 1048576 2097152 60");
  EXPECT_EQ(GetOne(cfg, "maxmemory"), "1048576");
  EXPECT_EQ(GetOne(cfg, "unixsocket"), "/tmp/s.sock");
  EXPECT_EQ(GetOne(cfg, "requirepass"), "pw");
  EXPECT_EQ(GetOne(cfg, "appendonly"), "yes");
  EXPECT_EQ(GetOne(cfg, "loglevel"), "warning");
  EXPECT_EQ(GetOne(cfg, "syslog-facility"), "user");
  EXPECT_EQ(GetOne(cfg, "maxmemory-policy"), "noeviction");
  EXPECT_EQ(GetOne(cfg, "appendfsync"), "no");
  // Disque prints the limits unsigned.
  EXPECT_EQ(GetOne(Load("client-output-buffer-limit normal -1 0 0"), "client-output-buffer-limit"),
            "normal 18446744073709551615 0 0");
}

// ---------------------------------------------------------------------------------------
// CONFIG SET

std::string InvalidArgument(std::string_view value, std::string_view name) {
  return "ERR Invalid argument '" + std::string(value) + "' for CONFIG SET '" + std::string(name) +
         "'";
}

struct SetCase {
  std::string name;
  std::string value;
  std::string get;  // CONFIG GET afterwards
};

TEST_F(ConfigTest, SetEverySettableOptionGoodValues) {
  const std::vector<SetCase> cases = {
      {"timeout", "30", "30"},
      {"timeout", "", "0"},  // QUIRK: "" parses as 0
      {"tcp-keepalive", "yes", "yes"},
      {"tcp-keepalive", "NO", "no"},
      {"loglevel", "WARNING", "warning"},
      {"loglevel", "debug", "debug"},
      {"requirepass", "secret", "secret"},
      {"requirepass", "", ""},
      {"requirepass", std::string(512, 'p'), std::string(512, 'p')},
      {"maxclients", "100", "100"},
      {"maxmemory", "0", "0"},  // QUIRK: 0 allowed from CONFIG SET
      {"maxmemory", "1mb", "1048576"},
      {"maxmemory", "2GB", "2147483648"},
      {"maxmemory", "100", "100"},
      {"maxmemory-policy", "noeviction", "noeviction"},
      {"maxmemory-policy", "ACKS", "acks"},
      {"maxmemory-samples", "10", "10"},
      {"activerehashing", "no", "no"},
      {"hz", "100", "100"},
      {"hz", "0", "1"},
      {"hz", "1000", "500"},
      {"appendonly", "yes", "yes"},
      {"appendfsync", "always", "always"},
      {"auto-aof-rewrite-percentage", "0", "0"},
      {"auto-aof-rewrite-min-size", "1000", "1000"},
      {"aof-rewrite-incremental-fsync", "no", "no"},
      {"aof-load-truncated", "no", "no"},
      {"aof-enqueue-jobs-once", "yes", "yes"},
      {"cluster-node-timeout", "0", "0"},
      {"cluster-node-timeout", "5000", "5000"},
      {"slowlog-log-slower-than", "0", "0"},
      {"slowlog-max-len", "10", "10"},
      {"latency-monitor-threshold", "100", "100"},
      {"client-output-buffer-limit", "normal 10 20 30", "normal 10 20 30"},
      {"client-output-buffer-limit", "normal 1 2 3 NORMAL 4 5 6", "normal 4 5 6"},
      {"watchdog-period", "100", "100"},
      {"watchdog-period", "0", "0"},
  };
  for (const auto& c : cases) {
    Config cfg = Load("");
    Status st = options_.Set(cfg, c.name, c.value);
    EXPECT_TRUE(st.ok()) << c.name << " " << c.value << ": " << st.message();
    EXPECT_EQ(GetOne(cfg, c.name), c.get) << c.name << " " << c.value;
  }
}

TEST_F(ConfigTest, SetStoresTypedValues) {
  Config cfg = Load("");
  ASSERT_TRUE(options_.Set(cfg, "tcp-keepalive", "yes").ok());
  EXPECT_EQ(cfg.tcp_keepalive, 1);  // QUIRK: yes is 1 second
  ASSERT_TRUE(options_.Set(cfg, "loglevel", "verbose").ok());
  EXPECT_EQ(cfg.loglevel, LogLevel::kVerbose);
  ASSERT_TRUE(options_.Set(cfg, "appendfsync", "no").ok());
  EXPECT_EQ(cfg.appendfsync, AppendFsync::kNo);
  ASSERT_TRUE(options_.Set(cfg, "client-output-buffer-limit", "normal 7 8 9").ok());
  EXPECT_EQ(cfg.client_obuf_hard, 7);
  EXPECT_EQ(cfg.client_obuf_soft, 8);
  EXPECT_EQ(cfg.client_obuf_soft_seconds, 9);
  ASSERT_TRUE(options_.Set(cfg, "client-output-buffer-limit", "").ok());  // no groups: no change
  EXPECT_EQ(cfg.client_obuf_hard, 7);
  ASSERT_TRUE(options_.Set(cfg, "requirepass", "").ok());
  EXPECT_EQ(cfg.requirepass, "");
}

TEST_F(ConfigTest, SetEverySettableOptionBadValues) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"timeout", {"-1", "abc", "1.5", " 1", "1 "}},
      {"tcp-keepalive", {"60", "1", "-1", "on"}},
      {"loglevel", {"loud", ""}},
      {"requirepass", {std::string(513, 'p')}},
      {"maxclients", {"0", "-1", "x"}},
      {"maxmemory", {"-1", "1xb", "1 mb"}},
      {"maxmemory-policy", {"allkeys-lru"}},
      {"maxmemory-samples", {"0", "-3"}},
      {"activerehashing", {"maybe", ""}},
      {"hz", {"-1", "fast"}},
      {"appendonly", {"1", "on"}},
      {"appendfsync", {"sometimes"}},
      {"auto-aof-rewrite-percentage", {"-1"}},
      {"auto-aof-rewrite-min-size", {"1mb", "-1", "64kb"}},
      {"aof-rewrite-incremental-fsync", {"x"}},
      {"aof-load-truncated", {"x"}},
      {"aof-enqueue-jobs-once", {"x"}},
      {"cluster-node-timeout", {"-1", "x"}},
      {"slowlog-log-slower-than", {"-1"}},
      {"slowlog-max-len", {"-1"}},
      {"latency-monitor-threshold", {"-1"}},
      {"client-output-buffer-limit",
       {"normal 1 2", "slave 1 2 3", "normal -1 2 3", "normal 1mb 2 3", "normal  1 2 3",
        "normal 1 2 3 normal 4 5 x"}},
      {"watchdog-period", {"-1"}},
  };
  for (const auto& [name, values] : cases) {
    for (const auto& value : values) {
      Config cfg = Load("");
      const Config before = cfg;
      Status st = options_.Set(cfg, name, value);
      EXPECT_EQ(st.code(), Code::kErr);
      EXPECT_EQ(st.message(), InvalidArgument(value, name)) << name << " " << value;
      EXPECT_EQ(options_.Get(cfg, "*"), options_.Get(before, "*")) << name << " " << value;
    }
  }
}

TEST_F(ConfigTest, SetNameIsCaseInsensitiveAndErrorsEchoItAsTyped) {
  Config cfg = Load("");
  ASSERT_TRUE(options_.Set(cfg, "MAXMEMORY", "1mb").ok());
  EXPECT_EQ(cfg.maxmemory, 1048576);
  EXPECT_EQ(options_.Set(cfg, "MaxClients", "x").message(), InvalidArgument("x", "MaxClients"));
}

TEST_F(ConfigTest, SetUnsupportedNames) {
  for (const char* name : {"port",
                           "daemonize",
                           "pidfile",
                           "bind",
                           "unixsocket",
                           "unixsocketperm",
                           "logfile",
                           "syslog-enabled",
                           "syslog-ident",
                           "syslog-facility",
                           "databases",
                           "no-appendfsync-on-rewrite",
                           "appendfilename",
                           "cluster-config-file",
                           "threads",
                           "include",
                           "rename-command",
                           "nosuch",
                           "",
                           "Port"}) {
    Config cfg = Load("");
    Status st = options_.Set(cfg, name, "1");
    EXPECT_EQ(st.message(), "ERR Unsupported CONFIG parameter: " + std::string(name)) << name;
  }
}

TEST_F(ConfigTest, SetDirChangesDirectory) {
  fs::create_directory(tmp_ / "sub");
  Config cfg = Load("");
  ASSERT_TRUE(options_.Set(cfg, "dir", "sub").ok());
  EXPECT_EQ(cfg.dir, (tmp_ / "sub").string());
  EXPECT_EQ(fs::current_path(), tmp_ / "sub");
  EXPECT_EQ(GetOne(cfg, "dir"), (tmp_ / "sub").string());

  Status st = options_.Set(cfg, "dir", "/nonexistent-disque-dir");
  EXPECT_EQ(st.message(), "ERR Changing directory: No such file or directory");
  EXPECT_EQ(cfg.dir, (tmp_ / "sub").string());
  EXPECT_EQ(fs::current_path(), tmp_ / "sub");
}

TEST_F(ConfigTest, HookSeesOldAndNewConfig) {
  Config cfg = Load("");
  int calls = 0;
  options_.SetApplyHook("MaxClients", [&](const Config& old_cfg, const Config& new_cfg) {
    ++calls;
    EXPECT_EQ(old_cfg.maxclients, 10000);
    EXPECT_EQ(new_cfg.maxclients, 500);
    return Status::Ok();
  });
  ASSERT_TRUE(options_.Set(cfg, "maxclients", "500").ok());
  EXPECT_EQ(cfg.maxclients, 500);
  EXPECT_EQ(calls, 1);
  // Not run for other options, nor for a bad value.
  ASSERT_TRUE(options_.Set(cfg, "timeout", "5").ok());
  EXPECT_FALSE(options_.Set(cfg, "maxclients", "0").ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(ConfigTest, HookFailureRollsBack) {
  Config cfg = Load("");
  options_.SetApplyHook("appendonly", [](const Config&, const Config&) {
    return Status::Error("ERR Unable to turn on AOF. Check server logs.");
  });
  Status st = options_.Set(cfg, "appendonly", "yes");
  EXPECT_EQ(st.message(), "ERR Unable to turn on AOF. Check server logs.");
  EXPECT_FALSE(cfg.appendonly);
  EXPECT_EQ(GetOne(cfg, "appendonly"), "no");
}

TEST_F(ConfigTest, DirHookFailureRestoresTheWorkingDirectory) {
  fs::create_directory(tmp_ / "sub");
  Config cfg = Load("");
  options_.SetApplyHook("dir", [&](const Config& old_cfg, const Config& new_cfg) {
    EXPECT_EQ(old_cfg.dir, tmp_.string());
    EXPECT_EQ(new_cfg.dir, (tmp_ / "sub").string());
    EXPECT_EQ(fs::current_path(), tmp_ / "sub");
    return Status::Error("ERR no");
  });
  EXPECT_EQ(options_.Set(cfg, "dir", "sub").message(), "ERR no");
  EXPECT_EQ(cfg.dir, tmp_.string());
  EXPECT_EQ(fs::current_path(), tmp_);
}

}  // namespace
}  // namespace disque::config
