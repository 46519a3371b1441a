// The server command family: connection, introspection and administration commands
// (PROTOCOL.md 6). Handlers that need other shards (INFO, CLIENT LIST/KILL/PAUSE, CONFIG
// SET/RESETSTAT, DEBUG SHARDS) are coroutines that fan out with Shard::RunOn.

#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "disque/common/clock.h"
#include "disque/common/strings.h"
#include "disque/server/client.h"
#include "disque/server/command.h"
#include "disque/server/info.h"
#include "disque/server/replies.h"
#include "disque/server/server.h"
#include "disque/server/shard.h"

namespace disque::server {
namespace {


bool Is(std::string_view arg, std::string_view word) { return EqualsIgnoreCase(arg, word); }

int64_t MonotonicMs() { return SystemClock::Instance().MonotonicMs(); }

// PING [message]
void Ping(CommandContext& ctx) {
  if (ctx.args.size() > 2) {
    ctx.reply.Error("ERR wrong number of arguments for 'ping' command");
  } else if (ctx.args.size() == 2) {
    ctx.reply.Bulk(ctx.args[1]);
  } else {
    ctx.reply.Status(replies::kPong);
  }
}

// AUTH <password>
void Auth(CommandContext& ctx) {
  const std::string& password = ctx.shard.config().requirepass;
  if (password.empty()) {
    ctx.reply.Error(replies::kNoPasswordSet);
  } else if (SecretEquals(ctx.args[1], password)) {  // longer than kMaxPasswordLen: never
    ctx.client.set_authenticated(true);
    ctx.reply.Status(replies::kOk);
  } else {
    ctx.client.set_authenticated(false);
    ctx.reply.Error(replies::kInvalidPassword);
  }
}

// TIME
void Time(CommandContext& ctx) {
  const int64_t us = SystemClock::Instance().NowUs();
  ctx.reply.ArrayHeader(2);
  ctx.reply.Bulk(std::to_string(us / 1000000));
  ctx.reply.Bulk(std::to_string(us % 1000000));
}

// INFO [section]
asio::awaitable<void> Info(CommandContext& ctx) {
  if (ctx.args.size() > 2) {
    ctx.reply.Error(replies::kSyntaxError);
    co_return;
  }
  // Arguments computed before the co_await: see "GCC 12 and coroutines" in
  // docs/architecture.md.
  const std::string_view section = ctx.args.size() == 2 ? ctx.args[1] : std::string_view();
  std::string text = co_await GenerateInfo(ctx.server, section);
  ctx.reply.Bulk(text);
}

// COMMAND [COUNT | INFO name...]
void CommandCmd(CommandContext& ctx) {
  const CommandTable& table = ctx.server.commands();
  auto visible = [&table](const Command& cmd) { return !table.VisibleName(cmd).empty(); };
  if (ctx.args.size() == 1) {
    size_t n = 0;
    for (const Command& cmd : table.commands()) n += visible(cmd);
    ctx.reply.ArrayHeader(n);
    for (const Command& cmd : table.commands()) {
      if (visible(cmd)) table.WriteInfo(ctx.reply, cmd);
    }
  } else if (Is(ctx.args[1], "count") && ctx.args.size() == 2) {
    int64_t n = 0;
    for (const Command& cmd : table.commands()) n += visible(cmd);
    ctx.reply.Integer(n);
  } else if (Is(ctx.args[1], "info")) {
    ctx.reply.ArrayHeader(ctx.args.size() - 2);
    for (size_t i = 2; i < ctx.args.size(); ++i) {
      const Command* cmd = table.Lookup(ctx.args[i]);
      if (cmd == nullptr) {
        ctx.reply.NullBulk();
      } else {
        table.WriteInfo(ctx.reply, *cmd);
      }
    }
  } else {
    ctx.reply.Error(replies::kCommandSyntax);
  }
}

// CONFIG GET|SET|RESETSTAT|REWRITE
asio::awaitable<void> Config(CommandContext& ctx) {
  const std::string_view sub = ctx.args[1];
  const size_t argc = ctx.args.size();
  auto bad_arity = [&ctx, sub] {
    ctx.reply.Error("ERR Wrong number of arguments for CONFIG " + std::string(sub));
  };
  if (Is(sub, "get")) {
    if (argc != 3) co_return bad_arity();
    auto pairs = ctx.server.options().Get(*ctx.server.config(), ctx.args[2]);
    ctx.reply.ArrayHeader(pairs.size() * 2);
    for (const auto& [name, value] : pairs) {
      ctx.reply.Bulk(name);
      ctx.reply.Bulk(value);
    }
  } else if (Is(sub, "set")) {
    if (argc != 4) co_return bad_arity();
    std::string name(ctx.args[2]), value(ctx.args[3]);
    Status st = co_await ctx.server.SetConfig(std::move(name), std::move(value));
    if (st.ok()) {
      ctx.reply.Status(replies::kOk);
    } else {
      ctx.reply.Error(st.message());
    }
  } else if (Is(sub, "resetstat")) {
    if (argc != 2) co_return bad_arity();
    for (int i = 0; i < ctx.server.shard_count(); ++i) {
      auto reset = [](Shard& s) { s.ResetStats(); };
      co_await Shard::RunOn(ctx.server.shard(i), std::move(reset));
    }
    ctx.server.rejected_connections.store(0);
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "rewrite")) {
    if (argc != 2) co_return bad_arity();
    if (ctx.server.process_info().config_file.empty()) {
      ctx.reply.Error(replies::kConfigNoFile);
      co_return;
    }
    Status st = ctx.server.RewriteConfig();
    if (st.ok()) {
      ctx.reply.Status(replies::kOk);
    } else {
      ctx.reply.Error(st.message());
    }
  } else {
    ctx.reply.Error(replies::kConfigSubcommand);
  }
}

// Parses a timeout in milliseconds as GETJOB TIMEOUT does (CLIENT PAUSE uses it too).
std::optional<int64_t> ParseTimeout(CommandContext& ctx, std::string_view arg) {
  auto ms = ParseInt64(arg);
  if (!ms) {
    ctx.reply.Error(replies::kTimeoutNotInteger);
    return std::nullopt;
  }
  if (*ms < 0) {
    ctx.reply.Error(replies::kTimeoutNegative);
    return std::nullopt;
  }
  return ms;
}

// The filters of CLIENT KILL, AND-ed (PROTOCOL.md 6.8).
struct KillFilter {
  std::optional<uint64_t> id;
  std::optional<std::string> addr;
  bool skip_me = true;
  uint64_t me = 0;
};

// Kills the matching clients of one shard; runs on that shard's thread.
int64_t KillOnShard(Shard& shard, const KillFilter& filter) {
  int64_t killed = 0;
  for (auto& [id, client] : shard.clients()) {
    if (filter.id && *filter.id != id) continue;
    if (filter.addr && *filter.addr != client->addr()) continue;
    if (filter.skip_me && id == filter.me) continue;
    // The caller itself gets its reply first; others are closed now.
    if (id == filter.me) {
      client->CloseAfterReply();
    } else {
      client->Close();
    }
    ++killed;
  }
  return killed;
}

asio::awaitable<int64_t> KillClients(Server& server, KillFilter filter) {
  int64_t killed = 0;
  for (int i = 0; i < server.shard_count(); ++i) {
    auto kill = [&filter](Shard& s) { return KillOnShard(s, filter); };
    const int64_t n = co_await Shard::RunOn(server.shard(i), std::move(kill));
    killed += n;
  }
  co_return killed;
}

asio::awaitable<void> ClientKill(CommandContext& ctx) {
  const size_t argc = ctx.args.size();
  KillFilter filter;
  filter.me = ctx.client.id();
  if (argc == 3) {  // old form: CLIENT KILL ip:port
    filter.addr = std::string(ctx.args[2]);
    filter.skip_me = false;
    const int64_t killed = co_await KillClients(ctx.server, filter);
    if (killed == 0) {
      ctx.reply.Error(replies::kNoSuchClient);
    } else {
      ctx.reply.Status(replies::kOk);
    }
    co_return;
  }
  if (argc < 3) {
    ctx.reply.Error(replies::kSyntaxError);
    co_return;
  }
  for (size_t i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) {
      ctx.reply.Error(replies::kSyntaxError);
      co_return;
    }
    const std::string_view opt = ctx.args[i], val = ctx.args[i + 1];
    if (Is(opt, "id")) {
      auto id = ParseInt64(val);  // "" parses as 0 (PROTOCOL.md 1.4): matches no client
      if (!id) {
        ctx.reply.Error(replies::kNotInteger);
        co_return;
      }
      filter.id = static_cast<uint64_t>(*id);
    } else if (Is(opt, "type")) {
      if (!Is(val, "normal")) {
        ctx.reply.Error("ERR Unknown client type '" + std::string(val) + "'");
        co_return;
      }
    } else if (Is(opt, "addr")) {
      filter.addr = std::string(val);
    } else if (Is(opt, "skipme")) {
      auto yes = ParseYesNo(val);
      if (!yes) {
        ctx.reply.Error(replies::kSyntaxError);
        co_return;
      }
      filter.skip_me = *yes;
    } else {
      ctx.reply.Error(replies::kSyntaxError);
      co_return;
    }
  }
  const int64_t killed = co_await KillClients(ctx.server, filter);
  ctx.reply.Integer(killed);
}

// CLIENT LIST|KILL|GETNAME|SETNAME|REPLY|PAUSE
asio::awaitable<void> ClientCmd(CommandContext& ctx) {
  const std::string_view sub = ctx.args[1];
  const size_t argc = ctx.args.size();
  if (Is(sub, "list") && argc == 2) {
    std::string text;
    for (int i = 0; i < ctx.server.shard_count(); ++i) {
      auto describe = [](Shard& s) {
        std::string lines;
        const int64_t now = MonotonicMs();
        for (const auto& [id, client] : s.clients()) lines += client->Describe(now) + "\n";
        return lines;
      };
      const std::string lines = co_await Shard::RunOn(ctx.server.shard(i), std::move(describe));
      text += lines;
    }
    ctx.reply.Bulk(text);
  } else if (Is(sub, "kill")) {
    co_await ClientKill(ctx);
  } else if (Is(sub, "getname") && argc == 2) {
    if (ctx.client.name().empty()) {
      ctx.reply.NullBulk();
    } else {
      ctx.reply.Bulk(ctx.client.name());
    }
  } else if (Is(sub, "setname") && argc == 3) {
    for (char c : ctx.args[2]) {
      if (c < '!' || c > '~') {
        ctx.reply.Error(replies::kClientNameChars);
        co_return;
      }
    }
    ctx.client.set_name(std::string(ctx.args[2]));
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "reply") && argc == 3) {
    if (Is(ctx.args[2], "on")) {
      ctx.client.set_reply_mode(Client::ReplyMode::kOn);
      ctx.reply.Status(replies::kOk);
    } else if (Is(ctx.args[2], "off")) {
      ctx.client.set_reply_mode(Client::ReplyMode::kOff);
    } else if (Is(ctx.args[2], "skip")) {
      ctx.client.set_reply_mode(Client::ReplyMode::kSkipNext);
    } else {
      ctx.reply.Error(replies::kSyntaxError);
    }
  } else if (Is(sub, "pause") && argc == 3) {
    auto ms = ParseTimeout(ctx, ctx.args[2]);
    if (!ms) co_return;
    const int64_t now = MonotonicMs();
    const int64_t until = *ms > INT64_MAX - now ? INT64_MAX : now + *ms;  // saturating
    for (int i = 0; i < ctx.server.shard_count(); ++i) {
      auto pause = [until](Shard& s) {
        if (until > s.paused_until_ms()) s.set_paused_until_ms(until);
      };
      co_await Shard::RunOn(ctx.server.shard(i), std::move(pause));
    }
    ctx.reply.Status(replies::kOk);
  } else {
    ctx.reply.Error(replies::kClientSyntax);
  }
}

// SHUTDOWN [REWRITE-AOF]: no reply; the client sees the connection close. The AOF is
// written and fsynced as the server stops (Server::Wait).
asio::awaitable<void> Shutdown(CommandContext& ctx) {
  if (ctx.args.size() > 2 || (ctx.args.size() == 2 && !Is(ctx.args[1], "rewrite-aof"))) {
    co_return ctx.reply.Error(replies::kSyntaxError);
  }
  Persistence& aof = ctx.server.persistence();
  if (aof.state() == AofState::kWaitRewrite) {
    spdlog::warn("Writing initial AOF, can't exit.");
    co_return ctx.reply.Error(replies::kShutdownFailed);
  }
  if (ctx.args.size() == 2 && !aof.loading()) {
    // A synchronous rewrite, as the controlled restart needs (PROTOCOL.md 8.3).
    const bool rewritten = co_await aof.RewriteAndWait();
    if (!rewritten) co_return ctx.reply.Error(replies::kShutdownFailed);
  }
  ctx.client.CloseWithoutReply();
  ctx.server.RequestShutdown();
}

// BGREWRITEAOF (PROTOCOL.md 6.15), with appendonly yes or no.
void BgRewriteAof(CommandContext& ctx) {
  // No fork: the bare -ERR of a failed fork cannot happen.
  if (ctx.server.persistence().StartRewrite()) {
    ctx.reply.Status(replies::kRewriteStarted);
  } else {
    ctx.reply.Error(replies::kRewriteRunning);
  }
}

// DEBUG <subcommand> ...
asio::awaitable<void> Debug(CommandContext& ctx) {
  const std::string_view sub = ctx.args[1];
  const size_t argc = ctx.args.size();
  if (Is(sub, "segfault") && argc == 2) {
    std::raise(SIGSEGV);
  } else if (Is(sub, "assert") && argc == 2) {
    std::abort();
  } else if (Is(sub, "sleep") && argc == 3) {
    // Blocks this shard's thread, as DEBUG SLEEP blocks Disque's only thread.
    // Garbage parses as 0, as strtod gives it; NaN and negatives sleep 0; the cap keeps
    // the conversion to microseconds defined.
    double seconds = std::strtod(std::string(ctx.args[2]).c_str(), nullptr);
    if (!(seconds > 0)) seconds = 0;
    seconds = std::min(seconds, 1e9);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "error") && argc == 3) {
    ctx.reply.Error(ctx.args[2]);
  } else if (Is(sub, "structsize") && argc == 2) {
    std::string text;
    text += "bits:" + std::to_string(sizeof(void*) * 8) + "\r\n";
    text += "client:" + std::to_string(sizeof(Client)) + "\r\n";
    text += "shard:" + std::to_string(sizeof(Shard)) + "\r\n";
    ctx.reply.Bulk(text);
  } else if (Is(sub, "flushall") && argc == 2) {
    // Every job and queue on every shard; blocked clients get a null reply.
    std::string same_id;  // empty: the node keeps its ID
    const uint64_t aof_pos = co_await ctx.server.FlushAll(std::move(same_id));
    ctx.client.NoteAofPosition(aof_pos);
    ctx.reply.Status(replies::kOk);
  } else if ((Is(sub, "cluster-cut") && argc >= 3) || Is(sub, "cluster-heal")) {
    // Ours, fault injection for tests: drop every bus message to and from the given
    // nodes (a partition as this node sees it), or stop dropping (all when none given).
    std::vector<std::string> ids(ctx.args.begin() + 2, ctx.args.end());
    for (const std::string& id : ids) {
      if (id.size() != cluster::kNodeIdSize) co_return ctx.reply.Error("ERR Invalid node ID " + id);
    }
    const bool cut = Is(sub, "cluster-cut");
    auto apply = [ids, cut](cluster::Membership&, cluster::Bus& bus) {
      if (!cut && ids.empty()) bus.HealAll();
      for (const std::string& id : ids) {
        if (cut) {
          bus.Cut(id);
        } else {
          bus.Heal(id);
        }
      }
      return 0;
    };
    const int done = co_await ctx.server.cluster().Run(std::move(apply));
    (void)done;
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "aof-fault") && argc == 3) {
    // Ours, fault injection for tests: every AOF write fails with this error (ENOSPC
    // or EIO) until OFF, as a full or failing disk would make it.
    int err = 0;
    if (Is(ctx.args[2], "enospc")) {
      err = ENOSPC;
    } else if (Is(ctx.args[2], "eio")) {
      err = EIO;
    } else if (!Is(ctx.args[2], "off")) {
      co_return ctx.reply.Error("ERR DEBUG AOF-FAULT takes ENOSPC, EIO or OFF");
    }
    ctx.server.persistence().InjectWriteError(err);
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "aof-rewrite-delay") && argc == 3) {
    // Ours, for tests: a pause after each snapshot slice of a rewrite, so that one can
    // be caught running.
    const std::optional<int64_t> ms = ParseInt64(ctx.args[2]);
    if (!ms || *ms < 0) co_return ctx.reply.Error(replies::kNotInteger);
    ctx.server.persistence().set_rewrite_slice_delay_ms(*ms);
    ctx.reply.Status(replies::kOk);
  } else if (Is(sub, "shards") && argc == 2) {
    // Ours: one line per shard thread, gathered on each shard.
    ctx.reply.ArrayHeader(static_cast<size_t>(ctx.server.shard_count()));
    for (int i = 0; i < ctx.server.shard_count(); ++i) {
      auto describe = [](Shard& s) {
        return "shard:" + std::to_string(s.id()) + " clients:" + std::to_string(s.clients().size()) +
               " commands:" + std::to_string(s.stats().commands_processed);
      };
      const std::string line = co_await Shard::RunOn(ctx.server.shard(i), std::move(describe));
      ctx.reply.Bulk(line);
    }
  } else {
    ctx.reply.Error("ERR Unknown DEBUG subcommand or wrong number of arguments for '" + std::string(sub) + "'");
  }
}

// SLOWLOG GET [n] | LEN | RESET. Each shard keeps the entries of the commands it ran;
// GET merges them, newest (highest ID) first.
asio::awaitable<void> Slowlog(CommandContext& ctx) {
  const std::string_view sub = ctx.args[1];
  const size_t argc = ctx.args.size();
  const int shards = ctx.server.shard_count();
  if (Is(sub, "get") && (argc == 2 || argc == 3)) {
    int64_t count = 10;
    if (argc == 3) {
      const std::optional<int64_t> n = ParseInt64(ctx.args[2]);
      if (!n) co_return ctx.reply.Error(replies::kNotInteger);
      count = *n;  // negative: everything, as Redis's count-- loop gives it
    }
    // The node's log is the newest slowlog-max-len entries of all shards together.
    const auto max_len = static_cast<size_t>(std::max<int64_t>(0, ctx.shard.config().slowlog_max_len));
    const size_t limit = std::min(max_len, count < 0 ? SIZE_MAX : static_cast<size_t>(count));
    std::vector<SlowlogEntry> entries;
    for (int i = 0; i < shards; ++i) {
      auto collect = [limit](Shard& s) {
        const auto& log = s.slowlog();
        const size_t n = std::min(limit, log.size());
        return std::vector<SlowlogEntry>(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(n));
      };
      std::vector<SlowlogEntry> part = co_await Shard::RunOn(ctx.server.shard(i), std::move(collect));
      std::move(part.begin(), part.end(), std::back_inserter(entries));
    }
    std::sort(entries.begin(), entries.end(), [](const SlowlogEntry& a, const SlowlogEntry& b) { return a.id > b.id; });
    if (entries.size() > limit) entries.resize(limit);
    ctx.reply.ArrayHeader(entries.size());
    for (const SlowlogEntry& e : entries) {
      ctx.reply.ArrayHeader(4);
      ctx.reply.Integer(e.id);
      ctx.reply.Integer(e.time_s);
      ctx.reply.Integer(e.duration_us);
      ctx.reply.ArrayHeader(e.args.size());
      for (const std::string& arg : e.args) ctx.reply.Bulk(arg);
    }
  } else if (Is(sub, "len") && argc == 2) {
    int64_t total = 0;
    for (int i = 0; i < shards; ++i) {
      auto len = [](Shard& s) { return static_cast<int64_t>(s.slowlog().size()); };
      const int64_t n = co_await Shard::RunOn(ctx.server.shard(i), std::move(len));
      total += n;
    }
    ctx.reply.Integer(std::min(total, std::max<int64_t>(0, ctx.shard.config().slowlog_max_len)));
  } else if (Is(sub, "reset") && argc == 2) {
    for (int i = 0; i < shards; ++i) {
      auto reset = [](Shard& s) {
        s.ResetSlowlog();
        return 0;
      };
      const int done = co_await Shard::RunOn(ctx.server.shard(i), std::move(reset));
      (void)done;
    }
    ctx.reply.Status(replies::kOk);
  } else {
    ctx.reply.Error("ERR Unknown SLOWLOG subcommand or wrong # of args. Try GET, RESET, LEN.");
  }
}

// HELLO: the format version, this node's ID, and every known node (handshakes
// included) as [id, ip, port, priority], port and priority as bulk strings
// (PROTOCOL.md 6.1). Read from the cluster's published snapshot: no hop to the bus.
void Hello(CommandContext& ctx) {
  const cluster::ClusterView& view = ctx.shard.cluster_view();
  ctx.reply.ArrayHeader(2 + view.nodes.size());
  ctx.reply.Integer(1);
  ctx.reply.Bulk(view.myself_id);
  for (const cluster::ClusterView::Entry& node : view.nodes) {
    ctx.reply.ArrayHeader(4);
    ctx.reply.Bulk(node.id);
    ctx.reply.Bulk(node.ip);
    ctx.reply.Bulk(std::to_string(node.port));
    ctx.reply.Bulk(std::to_string(cluster::ClusterView::Priority(node)));
  }
}

// Arity and flags as PROTOCOL.md 1.5 gives them.
constexpr std::array kServerCommands{
    Command{"auth", 2, kReadonly | kLoading | kFast, Auth},
    Command{"ping", -1, kReadonly | kFast, Ping},
    Command{"info", -1, kReadonly | kLoading, nullptr, Info},
    Command{"shutdown", -1, kReadonly | kAdmin | kLoading, nullptr, Shutdown},
    Command{"bgrewriteaof", 1, kReadonly | kAdmin, BgRewriteAof},
    Command{"debug", -2, kAdmin, nullptr, Debug},
    Command{"config", -2, kReadonly | kAdmin, nullptr, Config},
    Command{"client", -2, kReadonly | kAdmin, nullptr, ClientCmd},
    Command{"time", 1, kReadonly | kFast, Time},
    Command{"command", 0, kReadonly | kLoading, CommandCmd},
    Command{"hello", 1, kReadonly | kFast, Hello},
    Command{"slowlog", -2, kReadonly, nullptr, Slowlog},
};

}  // namespace

std::span<const Command> ServerCommands() { return kServerCommands; }

}  // namespace disque::server
