#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "disque/common/status.h"

namespace disque::config {

enum class LogLevel { kDebug, kVerbose, kNotice, kWarning };
enum class MaxmemoryPolicy { kAcks, kNoEviction };
enum class AppendFsync { kNo, kAlways, kEverysec };

// A `rename-command <from> <to>` directive. The config layer does not know the command
// table, so it keeps these for the server, which validates them when it builds its
// table and reports errors with FatalConfigError() (same format, same line).
struct RenameCommand {
  std::string from;
  std::string to;  // empty: the command is removed
  int line_no = 0;
  std::string line;  // the line as written, for the error message
};

// Every directive of PROTOCOL.md 9.3, plus our own `threads`. Plain values: a Config is
// copied and published to shards as an immutable snapshot after every change. Defaults
// here are Disque's.
struct Config {
  bool daemonize = false;
  std::string pidfile = "/var/run/disque.pid";
  int64_t port = 7711;
  int64_t tcp_backlog = 511;
  std::vector<std::string> bind;  // empty: all interfaces
  // Ours (Redis 3.2+): with no requirepass and listening on every interface, only
  // loopback and Unix-socket clients are accepted (server::ProtectedModeRefuses).
  bool protected_mode = true;
  std::string unixsocket;         // empty: none
  int64_t unixsocketperm = 0;
  int64_t timeout = 0;            // idle client timeout, seconds; 0 = never
  int64_t tcp_keepalive = 0;      // seconds; 0 = off
  LogLevel loglevel = LogLevel::kNotice;
  std::string logfile;            // empty: stdout
  bool syslog_enabled = false;
  std::string syslog_ident = "disque";
  std::string syslog_facility = "local0";  // user, local0..local7 (lowercase)
  int64_t databases = 16;
  std::string dir;                // absolute working directory; set by Options::Load*, `dir`
  std::string requirepass;        // empty: no password
  int64_t maxclients = 10000;
  int64_t maxmemory = 1073741824;
  MaxmemoryPolicy maxmemory_policy = MaxmemoryPolicy::kAcks;
  int64_t maxmemory_samples = 5;
  bool activerehashing = true;
  int64_t hz = 10;
  bool appendonly = false;
  std::string appendfilename = "disque.aof";
  AppendFsync appendfsync = AppendFsync::kEverysec;
  bool no_appendfsync_on_rewrite = false;
  int64_t auto_aof_rewrite_percentage = 100;
  int64_t auto_aof_rewrite_min_size = 67108864;
  bool aof_rewrite_incremental_fsync = true;
  bool aof_load_truncated = true;
  bool aof_enqueue_jobs_once = false;
  std::string cluster_config_file = "nodes.conf";
  int64_t cluster_node_timeout = 15000;
  // Ours, beyond Disque (containers and NAT): what this node advertises to its peers,
  // and the port its bus listens on. Empty / 0: the address peers see, the client
  // port, client port + 10000.
  std::string cluster_announce_ip;
  int64_t cluster_announce_port = 0;
  int64_t cluster_announce_bus_port = 0;
  int64_t cluster_port = 0;
  int64_t slowlog_log_slower_than = 10000;
  int64_t slowlog_max_len = 128;
  int64_t latency_monitor_threshold = 0;
  int64_t client_obuf_hard = 0;   // client-output-buffer-limit normal <hard> <soft> <secs>
  int64_t client_obuf_soft = 0;
  int64_t client_obuf_soft_seconds = 0;
  int64_t watchdog_period = 0;
  int64_t threads = 0;            // shard threads; 0 = one per usable CPU (server::UsableCpus) (ours, not Disque's)

  std::vector<RenameCommand> renames;  // in file order
};

// The text Disque prints to stderr before exiting 1 on a bad config line:
//   "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line <n>\n>>> '<line>'\n<reason>\n"
std::string FatalConfigError(int line_no, std::string_view line, std::string_view reason);

// The typed option table: one entry per directive (name, type, default, range, whether
// CONFIG GET / CONFIG SET / CONFIG REWRITE handle it, and how it is formatted). It is the
// single source of truth for the config file parser, CONFIG GET/SET/REWRITE and the
// command-line flags.
class Options {
 public:
  // Called after CONFIG SET changed an option, with the new config; an error undoes the
  // change and is the reply (for example maxclients above the OS limit).
  using ApplyHook = std::function<Status(const Config& old_config, const Config& new_config)>;

  Options();
  ~Options();
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;

  // A directive as --help describes it.
  struct Directive {
    std::string name;           // lowercase
    std::string usage;          // its arguments, e.g. "<port>" or "yes|no"
    std::string help;           // one line
    std::string default_value;  // as the file writes it, or a phrase ("none"); empty: no default
  };

  // Every directive a config file (and so the command line) accepts, in the table's
  // order, then `include` and `rename-command`.
  std::vector<Directive> Directives() const;
  std::vector<std::string> DirectiveNames() const;  // their names

  // Parses config text: the file content followed by the command-line options, one
  // `name args...` line each (PROTOCOL.md 9.1/9.2). `dir` chdirs when parsed; `include`
  // parses the named file in place. On error returns the FatalConfigError() text as the
  // Status message and leaves `cfg` partly updated (the caller exits).
  Status LoadFromString(std::string_view text, Config& cfg) const;

  // Reads and parses a file ("-" reads stdin) and then `extra` (command-line options).
  Status LoadFile(const std::string& path, std::string_view extra, Config& cfg) const;

  // CONFIG GET <pattern>: (name, value) pairs in Disque's fixed order (PROTOCOL.md 9.3),
  // matching the case-sensitive glob.
  std::vector<std::pair<std::string, std::string>> Get(const Config& cfg, std::string_view pattern) const;

  // CONFIG SET <name> <value>: validates and changes `cfg`, then runs the option's apply
  // hook if one is installed. The error text is the full reply without '-', for example
  // "ERR Unsupported CONFIG parameter: foo". On error `cfg` is unchanged.
  Status Set(Config& cfg, std::string_view name, std::string_view value) const;

  // CONFIG REWRITE: rewrites `path` in place per PROTOCOL.md 9.3 (existing lines replaced,
  // duplicates blanked, comments and unknown directives kept, non-default new options
  // appended after "# Generated by CONFIG REWRITE"). Error text is the full reply.
  Status Rewrite(const Config& cfg, const std::string& path) const;

  // Installs a hook run by Set() for option `name`.
  void SetApplyHook(std::string_view name, ApplyHook hook);

 private:
  struct Option;  // one table entry, defined in config.cpp

  // One handled option's line for CONFIG REWRITE: built from the table (config.cpp) and
  // merged into the old file (rewrite.cpp).
  struct RewriteLine {
    std::string name;
    std::optional<std::string> line;  // "name value"; nullopt: unset, its lines are removed
    bool force = false;  // non-default (or dir): appended when the file has no line for it
  };

  const Option* Find(std::string_view name) const;  // case-insensitive; nullptr if unknown
  Status LoadText(std::string_view text, Config& cfg, int include_depth) const;
  std::vector<RewriteLine> RewriteLines(const Config& cfg) const;  // in REWRITE order

  std::vector<Option> options_;
  std::vector<size_t> get_order_;      // indexes into options_, CONFIG GET order
  std::vector<size_t> rewrite_order_;  // indexes into options_, CONFIG REWRITE order
  std::map<std::string, ApplyHook, std::less<>> hooks_;  // by lowercase option name
};

}  // namespace disque::config
