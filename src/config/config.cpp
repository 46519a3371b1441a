// The option table: every directive of PROTOCOL.md 9.3 (plus our `threads`) described
// once, with how the config file, CONFIG GET, CONFIG SET and CONFIG REWRITE see it.
// Typed helpers (Bool, Int, Memory, Octal, String, Enum) cover almost every option;
// the few that Disque treats specially (bind, dir, tcp-keepalive, client-output-buffer-
// limit, hz) are spelled out next to their entry.

#include "disque/config/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "disque/common/strings.h"

namespace disque::config {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxBindAddresses = 16;  // CONFIG_BINDADDR_MAX
constexpr int kMaxIncludeDepth = 16;      // ours: Disque recurses until the stack runs out

constexpr char kBadDirective[] = "Bad directive or wrong number of arguments";
constexpr char kUnbalancedQuotes[] = "Unbalanced quotes in configuration line";
constexpr char kNotYesNo[] = "argument must be 'yes' or 'no'";
// Disque reads numbers with atoi()/memtoll() and takes garbage as 0; we refuse it, with the
// option's own reason when it has one and these otherwise.
constexpr char kNotInteger[] = "argument couldn't be parsed into an integer";
constexpr char kNotMemory[] = "argument must be a memory value";

using Args = std::vector<std::string>;

std::string ErrnoText() { return std::strerror(errno); }

// The process working directory, or "" if it cannot be read.
std::string CurrentDir() {
  std::error_code ec;
  auto path = std::filesystem::current_path(ec);
  return ec ? std::string() : path.string();
}

std::string YesNo(bool value) { return value ? "yes" : "no"; }

std::string Quoted(std::string_view s) {
  std::string out;
  AppendQuoted(out, s);
  return out;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

std::string Octal(int64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llo", static_cast<unsigned long long>(value));
  return buf;
}

// Memory as CONFIG REWRITE writes it (rewriteConfigFormatMemory): with a gb, mb or kb
// suffix when it divides evenly, else plain bytes.
std::string FormatMemory(int64_t bytes) {
  constexpr int64_t kKb = 1024, kMb = 1024 * kKb, kGb = 1024 * kMb;
  if (bytes != 0 && bytes % kGb == 0) return std::to_string(bytes / kGb) + "gb";
  if (bytes != 0 && bytes % kMb == 0) return std::to_string(bytes / kMb) + "mb";
  if (bytes != 0 && bytes % kKb == 0) return std::to_string(bytes / kKb) + "kb";
  return std::to_string(bytes);
}

// Reads a whole file ("-" is stdin). nullopt with errno set on failure.
std::optional<std::string> ReadAll(const std::string& path) {
  FILE* fp = path == "-" ? stdin : std::fopen(path.c_str(), "r");
  if (fp == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) out.append(buf, n);
  const bool failed = std::ferror(fp) != 0;
  const int saved_errno = errno;
  if (fp != stdin) std::fclose(fp);
  if (failed) {
    errno = saved_errno;
    return std::nullopt;
  }
  return out;
}

std::string CantOpenConfig(std::string_view path) {
  return "Fatal error, can't open config file '" + std::string(path) + "'";
}

// A CONFIG SET value that does not parse or is out of range. Options::Set() turns the
// empty message into "ERR Invalid argument '<value>' for CONFIG SET '<name>'".
Status BadValue() { return Status::Error(std::string()); }

// Value checks for string options: "" or the fatal config error reason. CONFIG SET turns a
// failed check into BadValue().
using StringCheck = std::string (*)(const std::string& value);

std::string CheckPassword(const std::string& value) {
  return value.size() > kMaxPasswordLen ? "Password is longer than CONFIG_AUTHPASS_MAX_LEN" : "";
}

std::string CheckNumericIp(const std::string& value) {
  unsigned char buf[sizeof(in6_addr)];
  if (value.empty() || inet_pton(AF_INET, value.c_str(), buf) == 1 ||
      inet_pton(AF_INET6, value.c_str(), buf) == 1) {
    return "";
  }
  return "Invalid IP address (a numeric IPv4 or IPv6 address is needed)";
}

std::string CheckBaseName(const std::string& value) {
  return value.find_first_of("/\\") != std::string::npos
             ? "appendfilename can't be a path, just a filename"
             : "";
}

// The server would not be able to exit for this later, so the file is tried now (and
// created if missing), relative to the current `dir`.
std::string CheckLogfile(const std::string& value) {
  if (value.empty()) return "";
  FILE* fp = std::fopen(value.c_str(), "a");
  if (fp == nullptr) return "Can't open the log file: " + ErrnoText();
  std::fclose(fp);
  return "";
}

// Integer rules of the config file: values outside [min, max], and words that are not
// numbers, fail with `reason`. Without a reason the range must be the full one.
struct IntRule {
  int64_t min = kMin;
  int64_t max = kMax;
  const char* reason = nullptr;  // nullptr: kNotInteger / kNotMemory for non-numbers
};

}  // namespace

// One directive. The four functions say how the config file, CONFIG GET, CONFIG SET and
// CONFIG REWRITE read or show it; the positions say whether and where GET and REWRITE list
// it. Built with the typed helpers below and chained modifiers, for example
//   Option::Int("timeout", &Config::timeout, {0, kMax, "Invalid timeout value"})
//       .SetInt(0).Get(7).Rewrite(8)
struct Options::Option {
  // Parses the words after the directive name into `cfg`: "" or the fatal error reason.
  using LoadFn = std::function<std::string(const Args& args, Config& cfg)>;
  // The value as CONFIG GET shows it.
  using GetFn = std::function<std::string(const Config& cfg)>;
  // CONFIG SET: validates `value` and stores it in `cfg`. BadValue() for a bad value;
  // any other error is the reply as is.
  using SetFn = std::function<Status(std::string_view value, Config& cfg)>;
  // The value as CONFIG REWRITE writes it after the name; nullopt: unset, no line at all.
  using RewriteFn = std::function<std::optional<std::string>(const Config& cfg)>;
  // Undoes the side effect of a CONFIG SET whose apply hook failed (dir's chdir).
  using UndoFn = std::function<void(const Config& old_cfg)>;

  std::string name;
  std::string_view usage;         // --help: the arguments, e.g. "<port>" or "yes|no"
  std::string_view help;          // --help: one line
  std::string_view default_text;  // --help: shown instead of the default value, if set
  size_t min_args = 1;            // words after the name in the file
  size_t max_args = 1;
  int get_pos = 0;  // 1-based position in CONFIG GET order; 0: CONFIG GET ignores it
  // Ours, beyond Disque: CONFIG GET answers it when asked by its exact name only, so
  // that every pattern (`*` above all) lists Disque's parameters and nothing more.
  bool get_by_name = false;
  int rewrite_pos = 0;          // 1-based position in CONFIG REWRITE order; 0: not rewritten
  bool always_rewrite = false;  // written even at its default value (dir)
  bool settable = false;        // CONFIG SET accepts it (then `set` is not null)
  int64_t Config::*int_field = nullptr;  // for the SetInt/SetMemory/Clamp modifiers

  LoadFn load;  // null: not a config file directive (watchdog-period)
  GetFn get;
  SetFn set;
  RewriteFn rewrite;
  UndoFn undo;

  explicit Option(std::string option_name) : name(std::move(option_name)) {}

  // ---- modifiers ----

  Option Get(int pos) && {
    get_pos = pos;
    return std::move(*this);
  }
  // What --help says (and so what the man page and the sample config are checked
  // against, tests/ops): the arguments, one line, and the default when its value would
  // not read well ("every interface").
  Option Help(std::string_view arg_usage, std::string_view text,
              std::string_view shown_default = {}) && {
    usage = arg_usage;
    help = text;
    default_text = shown_default;
    return std::move(*this);
  }
  Option GetByName() && {
    get_by_name = true;
    return std::move(*this);
  }
  Option Rewrite(int pos) && {
    rewrite_pos = pos;
    return std::move(*this);
  }
  // CONFIG SET takes the same values as the file.
  Option Settable() && {
    assert(set);
    settable = true;
    return std::move(*this);
  }
  // CONFIG SET takes a plain integer (strtoll rules, PROTOCOL.md 1.4) in [min, max].
  Option SetInt(int64_t min, int64_t max = kMax) && {
    set = [f = int_field, min, max](std::string_view value, Config& cfg) -> Status {
      auto v = ParseInt64(value);
      if (!v || *v < min || *v > max) return BadValue();
      cfg.*f = *v;
      return Status::Ok();
    };
    settable = true;
    return std::move(*this);
  }
  // CONFIG SET takes a memory value with units, >= min.
  Option SetMemory(int64_t min) && {
    set = [f = int_field, min](std::string_view value, Config& cfg) -> Status {
      auto v = ParseMemory(value);
      if (!v || *v < min) return BadValue();
      cfg.*f = *v;
      return Status::Ok();
    };
    settable = true;
    return std::move(*this);
  }
  // Out-of-range values are clamped rather than refused, from the file and CONFIG SET
  // alike. Apply after SetInt().
  Option Clamp(int64_t lo, int64_t hi) && {
    auto f = int_field;
    load = [inner = std::move(load), f, lo, hi](const Args& args, Config& cfg) {
      std::string err = inner(args, cfg);
      if (err.empty()) cfg.*f = std::clamp(cfg.*f, lo, hi);
      return err;
    };
    if (set) {
      set = [inner = std::move(set), f, lo, hi](std::string_view value, Config& cfg) {
        Status st = inner(value, cfg);
        if (st.ok()) cfg.*f = std::clamp(cfg.*f, lo, hi);
        return st;
      };
    }
    return std::move(*this);
  }
  // Runtime only: the config file does not know it.
  Option NotInFile() && {
    load = nullptr;
    return std::move(*this);
  }

  // ---- typed helpers ----

  // yes/no, case-insensitive everywhere.
  static Option Bool(std::string name, bool Config::*field) {
    Option o(std::move(name));
    o.load = [field](const Args& args, Config& cfg) -> std::string {
      auto v = ParseYesNo(args[0]);
      if (!v) return kNotYesNo;
      cfg.*field = *v;
      return "";
    };
    o.get = [field](const Config& cfg) { return YesNo(cfg.*field); };
    o.set = [field](std::string_view value, Config& cfg) -> Status {
      auto v = ParseYesNo(value);
      if (!v) return BadValue();
      cfg.*field = *v;
      return Status::Ok();
    };
    o.rewrite = [field](const Config& cfg) { return YesNo(cfg.*field); };
    return o;
  }

  // A number parsed with `parse` (decimal, octal or memory) and checked against `rule`.
  static LoadFn NumberLoader(int64_t Config::*field, IntRule rule,
                             std::optional<int64_t> (*parse)(std::string_view),
                             const char* not_a_number) {
    assert(rule.reason != nullptr || (rule.min == kMin && rule.max == kMax));
    return [=](const Args& args, Config& cfg) -> std::string {
      auto v = parse(args[0]);
      if (!v) return rule.reason != nullptr ? rule.reason : not_a_number;
      if (*v < rule.min || *v > rule.max) return rule.reason;
      cfg.*field = *v;
      return "";
    };
  }

  static Option Int(std::string name, int64_t Config::*field, IntRule rule = {}) {
    Option o(std::move(name));
    o.int_field = field;
    o.load = NumberLoader(field, rule, ParseInt64, kNotInteger);
    o.get = [field](const Config& cfg) { return std::to_string(cfg.*field); };
    o.rewrite = [field](const Config& cfg) { return std::to_string(cfg.*field); };
    return o;
  }

  // Bytes: units in the file, plain bytes in CONFIG GET, gb/mb/kb in CONFIG REWRITE.
  static Option Memory(std::string name, int64_t Config::*field, IntRule rule = {}) {
    Option o(std::move(name));
    o.int_field = field;
    o.load = NumberLoader(field, rule, ParseMemory, kNotMemory);
    o.get = [field](const Config& cfg) { return std::to_string(cfg.*field); };
    o.rewrite = [field](const Config& cfg) { return FormatMemory(cfg.*field); };
    return o;
  }

  // Base 8 in the file, CONFIG GET and CONFIG REWRITE (printf "%o", no leading 0).
  static Option OctalInt(std::string name, int64_t Config::*field, IntRule rule) {
    Option o(std::move(name));
    o.int_field = field;
    o.load = NumberLoader(field, rule, ParseOctal, kNotInteger);
    o.get = [field](const Config& cfg) { return Octal(cfg.*field); };
    o.rewrite = [field](const Config& cfg) { return Octal(cfg.*field); };
    return o;
  }

  // Any string, quoted and escaped by CONFIG REWRITE. With `remove_when_empty` the empty
  // string means "unset" (Disque's NULL): CONFIG REWRITE removes the option's lines.
  static Option String(std::string name, std::string Config::*field, StringCheck check = nullptr,
                       bool remove_when_empty = false) {
    Option o(std::move(name));
    o.load = [field, check](const Args& args, Config& cfg) -> std::string {
      if (check != nullptr) {
        std::string err = check(args[0]);
        if (!err.empty()) return err;
      }
      cfg.*field = args[0];
      return "";
    };
    o.get = [field](const Config& cfg) { return cfg.*field; };
    o.set = [field, check](std::string_view value, Config& cfg) -> Status {
      std::string v(value);
      if (check != nullptr && !check(v).empty()) return BadValue();
      cfg.*field = std::move(v);
      return Status::Ok();
    };
    o.rewrite = [field, remove_when_empty](const Config& cfg) -> std::optional<std::string> {
      if (remove_when_empty && (cfg.*field).empty()) return std::nullopt;
      return Quoted(cfg.*field);
    };
    return o;
  }

  // One of a fixed set of names, case-insensitive on input, shown by name.
  template <typename E>
  static Option Enum(std::string name, E Config::*field,
                     std::vector<std::pair<std::string_view, E>> names, const char* reason) {
    Option o(std::move(name));
    auto parse = [names](std::string_view word) -> std::optional<E> {
      for (const auto& [n, v] : names) {
        if (EqualsIgnoreCase(n, word)) return v;
      }
      return std::nullopt;
    };
    auto show = [names, field](const Config& cfg) -> std::string {
      for (const auto& [n, v] : names) {
        if (v == cfg.*field) return std::string(n);
      }
      return "unknown";
    };
    o.load = [parse, field, reason](const Args& args, Config& cfg) -> std::string {
      auto v = parse(args[0]);
      if (!v) return reason;
      cfg.*field = *v;
      return "";
    };
    o.get = show;
    o.set = [parse, field](std::string_view value, Config& cfg) -> Status {
      auto v = parse(value);
      if (!v) return BadValue();
      cfg.*field = *v;
      return Status::Ok();
    };
    o.rewrite = show;
    return o;
  }

  // ---- the special cases ----

  // `bind a [b ...]`: a later line replaces the whole list. Written only when set.
  static Option Bind() {
    Option o("bind");
    o.max_args = std::numeric_limits<size_t>::max();
    o.load = [](const Args& args, Config& cfg) -> std::string {
      if (args.size() > kMaxBindAddresses) return "Too many bind addresses specified";
      cfg.bind = args;
      return "";
    };
    o.get = [](const Config& cfg) { return Join(cfg.bind); };
    o.rewrite = [](const Config& cfg) -> std::optional<std::string> {
      if (cfg.bind.empty()) return std::nullopt;
      return Join(cfg.bind);  // unquoted, as Disque writes it
    };
    return o;
  }

  // `dir` changes the process working directory as soon as it is parsed or set;
  // Config::dir keeps the resulting absolute path. Always rewritten, absolute and quoted.
  static Option Dir() {
    Option o("dir");
    o.load = [](const Args& args, Config& cfg) -> std::string {
      if (chdir(args[0].c_str()) == -1) return "Can't chdir to '" + args[0] + "': " + ErrnoText();
      cfg.dir = CurrentDir();
      return "";
    };
    o.get = [](const Config& cfg) { return cfg.dir.empty() ? CurrentDir() : cfg.dir; };
    o.set = [](std::string_view value, Config& cfg) -> Status {
      if (chdir(std::string(value).c_str()) == -1) {
        return Status::Error("ERR Changing directory: " + ErrnoText());
      }
      cfg.dir = CurrentDir();
      return Status::Ok();
    };
    o.settable = true;
    o.undo = [](const Config& old_cfg) {
      if (!old_cfg.dir.empty()) {
        [[maybe_unused]] int rc = chdir(old_cfg.dir.c_str());
      }
    };
    o.rewrite = [get = o.get](const Config& cfg) -> std::optional<std::string> {
      std::string dir = get(cfg);
      if (dir.empty()) return std::nullopt;  // getcwd failed: Disque drops the line
      return Quoted(dir);
    };
    o.always_rewrite = true;
    return o;
  }

  // QUIRK: Disque lists tcp-keepalive among its boolean fields for CONFIG GET and SET:
  // GET shows yes/no (nonzero is yes) and SET accepts only yes/no, storing 1 or 0. The
  // file and CONFIG REWRITE use the number of seconds.
  static Option TcpKeepalive() {
    Option o =
        Int("tcp-keepalive", &Config::tcp_keepalive, {0, kMax, "Invalid tcp-keepalive value"});
    o.get = [](const Config& cfg) { return YesNo(cfg.tcp_keepalive != 0); };
    o.set = [](std::string_view value, Config& cfg) -> Status {
      auto v = ParseYesNo(value);
      if (!v) return BadValue();
      cfg.tcp_keepalive = *v ? 1 : 0;
      return Status::Ok();
    };
    o.settable = true;
    return o;
  }

  // `client-output-buffer-limit normal <hard> <soft> <seconds>`: Disque has one client
  // class. The file takes memory units; CONFIG SET takes groups of four space-separated
  // words with plain non-negative integers, all checked before any is applied.
  static Option ClientOutputBufferLimit() {
    Option o("client-output-buffer-limit");
    o.min_args = o.max_args = 4;
    o.load = [](const Args& args, Config& cfg) -> std::string {
      if (!EqualsIgnoreCase(args[0], "normal")) return "Unrecognized client limit class";
      auto hard = ParseMemory(args[1]);
      auto soft = ParseMemory(args[2]);
      if (!hard || !soft) return kNotMemory;
      auto seconds = ParseInt64(args[3]);
      if (!seconds) return kNotInteger;
      if (*seconds < 0) return "Negative number of seconds in soft limit is invalid";
      cfg.client_obuf_hard = *hard;
      cfg.client_obuf_soft = *soft;
      cfg.client_obuf_soft_seconds = *seconds;
      return "";
    };
    o.get = [](const Config& cfg) {
      // Disque prints the limits as unsigned long long.
      return "normal " + std::to_string(static_cast<uint64_t>(cfg.client_obuf_hard)) + " " +
             std::to_string(static_cast<uint64_t>(cfg.client_obuf_soft)) + " " +
             std::to_string(cfg.client_obuf_soft_seconds);
    };
    o.set = [](std::string_view value, Config& cfg) -> Status {
      std::vector<std::string_view> words;  // split on single spaces, empty words kept
      for (size_t start = 0; !value.empty();) {
        size_t end = value.find(' ', start);
        words.push_back(value.substr(start, end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
      }
      if (words.size() % 4 != 0) return BadValue();
      std::vector<int64_t> numbers;
      for (size_t i = 0; i < words.size(); ++i) {
        if (i % 4 == 0) {
          if (!EqualsIgnoreCase(words[i], "normal")) return BadValue();
          continue;
        }
        auto v = ParseInt64(words[i]);
        if (!v || *v < 0) return BadValue();
        numbers.push_back(*v);
      }
      for (size_t i = 0; i < numbers.size(); i += 3) {
        cfg.client_obuf_hard = numbers[i];
        cfg.client_obuf_soft = numbers[i + 1];
        cfg.client_obuf_soft_seconds = numbers[i + 2];
      }
      return Status::Ok();
    };
    o.settable = true;
    o.rewrite = [](const Config& cfg) -> std::optional<std::string> {
      return "normal " + FormatMemory(cfg.client_obuf_hard) + " " +
             FormatMemory(cfg.client_obuf_soft) + " " +
             std::to_string(cfg.client_obuf_soft_seconds);
    };
    return o;
  }
};

std::string FatalConfigError(int line_no, std::string_view line, std::string_view reason) {
  std::string out = "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line ";
  out += std::to_string(line_no);
  out += "\n>>> '";
  out += line;
  out += "'\n";
  out += reason;
  out += "\n";
  return out;
}

Options::Options() {
  using O = Option;
  const std::vector<std::pair<std::string_view, LogLevel>> log_levels = {
      {"debug", LogLevel::kDebug},
      {"verbose", LogLevel::kVerbose},
      {"notice", LogLevel::kNotice},
      {"warning", LogLevel::kWarning}};
  const std::vector<std::pair<std::string_view, std::string>> facilities = {
      {"user", "user"},     {"local0", "local0"}, {"local1", "local1"},
      {"local2", "local2"}, {"local3", "local3"}, {"local4", "local4"},
      {"local5", "local5"}, {"local6", "local6"}, {"local7", "local7"}};
  const std::vector<std::pair<std::string_view, MaxmemoryPolicy>> policies = {
      {"acks", MaxmemoryPolicy::kAcks}, {"noeviction", MaxmemoryPolicy::kNoEviction}};
  const std::vector<std::pair<std::string_view, AppendFsync>> fsyncs = {
      {"everysec", AppendFsync::kEverysec},
      {"always", AppendFsync::kAlways},
      {"no", AppendFsync::kNo}};

  // In CONFIG REWRITE order; Get(n) and Rewrite(n) are the positions of PROTOCOL.md 9.3,
  // Help() what --help prints. Defaults are those of Config; --help prints each one as
  // the config file would (Options::Directives).
  options_ = {
      O::Bool("daemonize", &Config::daemonize)
          .Get(22)
          .Rewrite(1)
          .Help("yes|no", "run in the background (writes pidfile)"),
      O::String("pidfile", &Config::pidfile)
          .Get(4)
          .Rewrite(2)
          .Help("<path>", "where a daemonized server writes its PID"),
      O::Int("port", &Config::port, {0, 65535, "Invalid port"})
          .Get(13)
          .Rewrite(3)
          .Help("<port>", "TCP port for clients, 0: none; the cluster bus uses port + 10000"),
      O::Int("tcp-backlog", &Config::tcp_backlog, {0, kMax, "Invalid backlog value"})
          .Get(14)
          .Rewrite(4)
          .Help("<n>", "listen(2) backlog"),
      O::Bind().Get(35).Rewrite(5).Help(
          "<addr>...", "addresses to listen on (a later bind line replaces the list)",
          "every interface"),
      O::String("unixsocket", &Config::unixsocket, nullptr, /*remove_when_empty=*/true)
          .Get(2)
          .Rewrite(6)
          .Help("<path>", "also listen on this Unix socket", "none"),
      O::OctalInt("unixsocketperm", &Config::unixsocketperm,
                  {0, 0777, "Invalid socket file permissions"})
          .Get(34)
          .Rewrite(7)
          .Help("<octal>", "permissions of the Unix socket"),
      O::Int("timeout", &Config::timeout, {0, kMax, "Invalid timeout value"})
          .SetInt(0)
          .Get(7)
          .Rewrite(8)
          .Help("<seconds>", "close clients idle this long, 0: never"),
      O::TcpKeepalive().Get(20).Rewrite(9).Help("<seconds>", "TCP keepalive interval, 0: off"),
      O::Enum("loglevel", &Config::loglevel, log_levels,
              "Invalid log level. Must be one of debug, verbose, notice, warning")
          .Settable()
          .Get(28)
          .Rewrite(10)
          .Help("debug|verbose|notice|warning", "log verbosity"),
      O::String("logfile", &Config::logfile, CheckLogfile)
          .Get(3)
          .Rewrite(11)
          .Help("<path>", "log file, \"\": standard output", "standard output"),
      O::Bool("syslog-enabled", &Config::syslog_enabled)
          .Rewrite(12)
          .Help("yes|no", "also log to syslog"),
      O::String("syslog-ident", &Config::syslog_ident)
          .Rewrite(13)
          .Help("<name>", "syslog identity"),
      O::Enum("syslog-facility", &Config::syslog_facility, facilities,
              "Invalid log facility. Must be one of USER or between LOCAL0-LOCAL7")
          .Get(30)
          .Rewrite(14)
          .Help("user|local0..local7", "syslog facility"),
      O::Dir().Get(32).Rewrite(15).Help(
          "<path>", "working directory: the AOF and nodes.conf live here (chdir when read)",
          "the working directory"),
      O::String("requirepass", &Config::requirepass, CheckPassword, /*remove_when_empty=*/true)
          .Settable()
          .Get(1)
          .Rewrite(16)
          .Help("<password>", "clients must AUTH with this password", "none"),
      // The apply hook checks the OS limit on CONFIG SET.
      O::Int("maxclients", &Config::maxclients, {1, kMax, "Invalid max clients limit"})
          .SetInt(1)
          .Get(16)
          .Rewrite(17)
          .Help("<n>", "maximum connected clients"),
      // QUIRK: CONFIG SET allows 0, the file does not (PROTOCOL.md 5).
      O::Memory("maxmemory", &Config::maxmemory,
                {1, kMax, "You need to specify a memory limit greater than zero"})
          .SetMemory(0)
          .Get(5)
          .Rewrite(18)
          .Help("<bytes>",
                "memory limit (units: kb, mb, gb...); above 75 % ADDJOB replicates elsewhere"),
      O::Enum("maxmemory-policy", &Config::maxmemory_policy, policies, "Invalid maxmemory policy")
          .Settable()
          .Get(27)
          .Rewrite(19)
          .Help("acks|noeviction", "above 95 % of maxmemory: evict acked jobs, or nothing"),
      O::Int("maxmemory-samples", &Config::maxmemory_samples,
             {1, kMax, "maxmemory-samples must be 1 or greater"})
          .SetInt(1)
          .Get(6)
          .Rewrite(20)
          .Help("<n>", "accepted for compatibility"),
      // The apply hook starts or stops the AOF on CONFIG SET.
      O::Bool("appendonly", &Config::appendonly)
          .Settable()
          .Get(31)
          .Rewrite(21)
          .Help("yes|no", "log every change to the append-only file (AOF)"),
      O::String("appendfilename", &Config::appendfilename, CheckBaseName)
          .Rewrite(22)
          .Help("<name>", "AOF file name, in dir"),
      O::Enum("appendfsync", &Config::appendfsync, fsyncs,
              "argument must be 'no', 'always' or 'everysec'")
          .Settable()
          .Get(29)
          .Rewrite(23)
          .Help("always|everysec|no", "when the AOF is fsynced"),
      O::Bool("no-appendfsync-on-rewrite", &Config::no_appendfsync_on_rewrite)
          .Get(21)
          .Rewrite(24)
          .Help("yes|no", "skip fsync while an AOF rewrite runs"),
      O::Int("auto-aof-rewrite-percentage", &Config::auto_aof_rewrite_percentage,
             {0, kMax, "Invalid negative percentage for AOF auto rewrite"})
          .SetInt(0)
          .Get(8)
          .Rewrite(25)
          .Help("<percent>", "rewrite the AOF when it grew this much, 0: never"),
      // Units in the file, a plain integer in CONFIG SET.
      O::Memory("auto-aof-rewrite-min-size", &Config::auto_aof_rewrite_min_size)
          .SetInt(0)
          .Get(9)
          .Rewrite(26)
          .Help("<bytes>", "but not below this size"),
      O::String("cluster-config-file", &Config::cluster_config_file)
          .Rewrite(27)
          .Help("<name>", "where the node saves its cluster state, in dir"),
      O::Int("cluster-node-timeout", &Config::cluster_node_timeout,
             {1, kMax, "cluster node timeout must be 1 or greater"})
          .SetInt(0)
          .Get(19)
          .Rewrite(28)
          .Help("<ms>", "a node silent this long is considered failing"),
      // Negative disables it, from the file only.
      O::Int("slowlog-log-slower-than", &Config::slowlog_log_slower_than)
          .SetInt(0)
          .Get(10)
          .Rewrite(29)
          .Help("<us>", "log commands slower than this, negative: never"),
      O::Int("latency-monitor-threshold", &Config::latency_monitor_threshold,
             {0, kMax, "The latency threshold can't be negative"})
          .SetInt(0)
          .Get(11)
          .Rewrite(30)
          .Help("<ms>", "latency monitor threshold, 0: off (accepted, not used)"),
      O::Int("slowlog-max-len", &Config::slowlog_max_len)
          .SetInt(0)
          .Get(12)
          .Rewrite(31)
          .Help("<n>", "slow log entries kept"),
      O::Bool("activerehashing", &Config::activerehashing)
          .Settable()
          .Get(23)
          .Rewrite(32)
          .Help("yes|no", "accepted for compatibility"),
      O::ClientOutputBufferLimit().Get(33).Rewrite(33).Help(
          "normal <hard> <soft> <seconds>",
          "close clients whose pending replies pass hard, or soft for seconds; 0: no limit"),
      // A hint: clamped to 1..500, never refused (CONFIG SET refuses negatives first).
      O::Int("hz", &Config::hz)
          .SetInt(0)
          .Clamp(1, 500)
          .Get(18)
          .Rewrite(34)
          .Help("<1-500>", "background task frequency"),
      O::Bool("aof-rewrite-incremental-fsync", &Config::aof_rewrite_incremental_fsync)
          .Settable()
          .Get(24)
          .Rewrite(35)
          .Help("yes|no", "fsync the rewritten AOF as it is written"),
      O::Bool("aof-load-truncated", &Config::aof_load_truncated)
          .Settable()
          .Get(25)
          .Rewrite(36)
          .Help("yes|no", "load an AOF with a torn last record (and truncate it)"),
      O::Bool("aof-enqueue-jobs-once", &Config::aof_enqueue_jobs_once)
          .Settable()
          .Get(26)
          .Rewrite(37)
          .Help("yes|no",
                "load the AOF once, putting its queued jobs back in their queues (then off)"),
      // Ours: shard threads, 0 = one per usable CPU (server::UsableCpus). File and command line
      // only.
      O::Int("threads", &Config::threads, {0, 1024, "Invalid number of threads"})
          .Rewrite(38)
          .Help("<n>", "shard threads; 0: one per CPU the process may use (ours)"),
      // Ours: the cluster's advertised address and bus port. File and command line only.
      O::String("cluster-announce-ip", &Config::cluster_announce_ip, CheckNumericIp,
                /*remove_when_empty=*/true)
          .Rewrite(39)
          .Help("<ip>", "address this node advertises to its peers (ours)",
                "the address peers see"),
      O::Int("cluster-announce-port", &Config::cluster_announce_port, {0, 65535, "Invalid port"})
          .Rewrite(40)
          .Help("<port>", "client port advertised to peers, 0: port (ours)"),
      O::Int("cluster-announce-bus-port", &Config::cluster_announce_bus_port,
             {0, 65535, "Invalid port"})
          .Rewrite(41)
          .Help("<port>", "bus port advertised to peers, 0: the bus port (ours)"),
      O::Int("cluster-port", &Config::cluster_port, {0, 65535, "Invalid port"})
          .Rewrite(42)
          .Help("<port>", "port the cluster bus listens on, 0: port + 10000 (ours)"),
      // Not rewritten, as in Disque.
      O::Int("databases", &Config::databases, {1, kMax, "Invalid number of databases"})
          .Get(15)
          .Help("<n>", "accepted for compatibility"),
      O::Int("watchdog-period", &Config::watchdog_period).NotInFile().SetInt(0).Get(17),
      // Ours: rewritten after Disque's parameters; CONFIG GET by exact name only.
      O::Bool("protected-mode", &Config::protected_mode)
          .Settable()
          .GetByName()
          .Rewrite(43)
          .Help("yes|no",
                "with no requirepass, listening on every interface: only loopback and Unix-socket "
                "clients (ours)"),
  };

  for (size_t i = 0; i < options_.size(); ++i) {
    if (options_[i].get_pos > 0) get_order_.push_back(i);
    if (options_[i].rewrite_pos > 0) rewrite_order_.push_back(i);
  }
  std::sort(get_order_.begin(), get_order_.end(),
            [this](size_t a, size_t b) { return options_[a].get_pos < options_[b].get_pos; });
  std::sort(rewrite_order_.begin(), rewrite_order_.end(), [this](size_t a, size_t b) {
    return options_[a].rewrite_pos < options_[b].rewrite_pos;
  });
}

Options::~Options() = default;

const Options::Option* Options::Find(std::string_view name) const {
  for (const auto& o : options_) {
    if (EqualsIgnoreCase(o.name, name)) return &o;
  }
  return nullptr;
}

std::vector<std::string> Options::DirectiveNames() const {
  std::vector<std::string> names;
  for (const Directive& d : Directives()) names.push_back(d.name);
  return names;
}

std::vector<Options::Directive> Options::Directives() const {
  const Config defaults;
  std::vector<Directive> directives;
  for (const auto& o : options_) {
    if (!o.load) continue;
    std::string value(o.default_text);
    if (value.empty()) {
      std::optional<std::string> written = o.rewrite ? o.rewrite(defaults) : std::nullopt;
      value = written ? *written : o.get(defaults);
    }
    directives.push_back({o.name, std::string(o.usage), std::string(o.help), std::move(value)});
  }
  directives.push_back({"include", "<path>", "read another config file here", ""});
  directives.push_back(
      {"rename-command", "<command> <new-name|\"\">", "rename or (\"\") remove a command", ""});
  return directives;
}

Status Options::LoadText(std::string_view text, Config& cfg, int include_depth) const {
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = Trim(text.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;

    auto fail = [&](std::string_view reason) {
      return Status::Error(FatalConfigError(line_no, line, reason));
    };
    auto words = SplitArgs(line);
    if (!words) return fail(kUnbalancedQuotes);
    if (words->empty()) continue;
    const std::string name = ToLower(words->front());
    const Args args(words->begin() + 1, words->end());

    if (name == "include" && args.size() == 1) {
      // The included file is parsed on its own: its errors give its own line numbers.
      if (include_depth >= kMaxIncludeDepth) return fail("Too many nested include directives");
      auto content = ReadAll(args[0]);
      if (!content) return fail(CantOpenConfig(args[0]));
      Status st = LoadText(*content, cfg, include_depth + 1);
      if (!st.ok()) return st;
    } else if (name == "rename-command" && args.size() == 2) {
      // Validated by the server against its command table.
      cfg.renames.push_back({args[0], args[1], line_no, std::string(line)});
    } else {
      const Option* opt = Find(name);
      if (opt == nullptr || !opt->load || args.size() < opt->min_args ||
          args.size() > opt->max_args) {
        return fail(kBadDirective);
      }
      std::string reason = opt->load(args, cfg);
      if (!reason.empty()) return fail(reason);
    }
  }
  return Status::Ok();
}

Status Options::LoadFromString(std::string_view text, Config& cfg) const {
  Status st = LoadText(text, cfg, 0);
  if (cfg.dir.empty()) cfg.dir = CurrentDir();
  return st;
}

Status Options::LoadFile(const std::string& path, std::string_view extra, Config& cfg) const {
  std::string text;
  if (!path.empty()) {
    auto content = ReadAll(path);
    if (!content) return Status::Error(CantOpenConfig(path));
    text = std::move(*content);
  }
  // As Disque does, the command-line options follow the file after a newline.
  if (!extra.empty()) {
    text += '\n';
    text += extra;
  }
  return LoadFromString(text, cfg);
}

std::vector<std::pair<std::string, std::string>> Options::Get(const Config& cfg,
                                                              std::string_view pattern) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i : get_order_) {
    const Option& o = options_[i];
    if (GlobMatch(pattern, o.name)) out.emplace_back(o.name, o.get(cfg));
  }
  if (const Option* o = Find(pattern); o != nullptr && o->get_by_name && o->name == pattern) {
    out.emplace_back(o->name, o->get(cfg));
  }
  return out;
}

Status Options::Set(Config& cfg, std::string_view name, std::string_view value) const {
  const Option* opt = Find(name);
  if (opt == nullptr || !opt->settable) {
    return Status::Error("ERR Unsupported CONFIG parameter: " + std::string(name));
  }
  Config updated = cfg;
  Status st = opt->set(value, updated);
  if (!st.ok()) {
    if (!st.message().empty()) return st;
    return Status::Error("ERR Invalid argument '" + std::string(value) + "' for CONFIG SET '" +
                         std::string(name) + "'");
  }
  auto hook = hooks_.find(opt->name);
  if (hook != hooks_.end() && hook->second) {
    st = hook->second(cfg, updated);
    if (!st.ok()) {
      if (opt->undo) opt->undo(cfg);
      return st;
    }
  }
  cfg = std::move(updated);
  return Status::Ok();
}

void Options::SetApplyHook(std::string_view name, ApplyHook hook) {
  hooks_[ToLower(name)] = std::move(hook);
}

std::vector<Options::RewriteLine> Options::RewriteLines(const Config& cfg) const {
  static const Config kDefaults;
  std::vector<RewriteLine> lines;
  for (size_t i : rewrite_order_) {
    const Option& o = options_[i];
    RewriteLine r{o.name, std::nullopt, false};
    if (auto value = o.rewrite(cfg)) {
      r.line = o.name + " " + *value;
      r.force = o.always_rewrite || value != o.rewrite(kDefaults);
    }
    lines.push_back(std::move(r));
  }
  return lines;
}

}  // namespace disque::config
