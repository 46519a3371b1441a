// CLUSTER (PROTOCOL.md 6.7): every subcommand runs on the bus thread (Bus::Run), which
// owns the node table, and resumes on the client's shard with the result.

#include <array>
#include <string>

#include "disque/cluster/bus.h"
#include "disque/common/strings.h"
#include "disque/server/client.h"
#include "disque/server/command.h"
#include "disque/server/replies.h"
#include "disque/server/server.h"

namespace disque::server {

namespace {

using cluster::Bus;
using cluster::Membership;

bool Is(std::string_view arg, std::string_view name) { return EqualsIgnoreCase(arg, name); }

// CLUSTER MEET <ip> <port>: a handshake with the node whose bus is at port + 10000. A
// node with another bus port (cluster-port, cluster-announce-bus-port) is met from its
// own side: its MEET carries its bus port, and gossip spreads it.
asio::awaitable<void> Meet(CommandContext& ctx) {
  const std::string_view ip = ctx.args[2];
  const std::string_view port_text = ctx.args[3];
  const std::optional<int64_t> port = ParseInt64(port_text);
  if (!port) {
    ctx.reply.Error("ERR Invalid TCP port specified: " + std::string(port_text));
    co_return;
  }
  const std::string canonical = cluster::CanonicalIp(ip);
  if (canonical.empty() || *port < 1 || *port > 55535) {
    ctx.reply.Error("ERR Invalid node address specified: " + std::string(ip) + ":" + std::string(port_text));
    co_return;
  }
  // A handshake already under way for this address is not an error (nothing new starts).
  auto meet = [canonical, p = static_cast<uint16_t>(*port)](Membership& m, Bus&) { return m.StartHandshake(canonical, p); };
  const bool started = co_await ctx.server.cluster().Run(std::move(meet));
  (void)started;
  ctx.reply.Status(replies::kOk);
}

asio::awaitable<void> Info(CommandContext& ctx) {
  auto info = [](Membership& m, Bus& bus) {
    std::string text = "cluster_state:ok\r\n";
    text += "cluster_known_nodes:" + std::to_string(m.known()) + "\r\n";
    text += "cluster_reachable_nodes:" + std::to_string(m.reachable().size()) + "\r\n";
    text += "cluster_size:" + std::to_string(m.size()) + "\r\n";
    text += "cluster_stats_messages_sent:" + std::to_string(bus.messages_sent()) + "\r\n";
    text += "cluster_stats_messages_received:" + std::to_string(bus.messages_received()) + "\r\n";
    return text;
  };
  const std::string text = co_await ctx.server.cluster().Run(std::move(info));
  ctx.reply.Bulk(text);
}

asio::awaitable<void> Forget(CommandContext& ctx) {
  auto forget = [id = std::string(ctx.args[2])](Membership& m, Bus&) { return m.Forget(id); };
  const Status st = co_await ctx.server.cluster().Run(std::move(forget));
  if (st.ok()) {
    ctx.reply.Status(replies::kOk);
  } else {
    ctx.ReplyError(st);
  }
}

// Forgets every other node (HARD: and takes a new ID), then flushes every job and queue
// as DEBUG FLUSHALL does. The LEAVING flag stays (PROTOCOL.md 6.7).
asio::awaitable<void> Reset(CommandContext& ctx) {
  bool hard = false;
  if (ctx.args.size() == 3) {
    if (Is(ctx.args[2], "hard")) {
      hard = true;
    } else if (!Is(ctx.args[2], "soft")) {
      ctx.reply.Error(replies::kSyntaxError);
      co_return;
    }
  }
  auto reset = [hard](Membership& m, Bus&) {
    m.Reset(hard);
    return m.myself().id;
  };
  std::string id = co_await ctx.server.cluster().Run(std::move(reset));
  if (!hard) id.clear();
  const uint64_t aof_pos = co_await ctx.server.FlushAll(std::move(id));
  ctx.client.NoteAofPosition(aof_pos);
  ctx.reply.Status(replies::kOk);
}

asio::awaitable<void> Leaving(CommandContext& ctx) {
  if (ctx.args.size() == 2) {
    auto query = [](Membership& m, Bus&) { return m.leaving(); };
    const bool leaving = co_await ctx.server.cluster().Run(std::move(query));
    ctx.reply.Status(leaving ? "yes" : "no");
    co_return;
  }
  const std::optional<bool> want = ParseYesNo(ctx.args[2]);
  if (!want) {
    ctx.reply.Error("ERR Wrong argument for CLUSTER LEAVING. Use 'yes' or 'no'");
    co_return;
  }
  auto set = [leaving = *want](Membership& m, Bus&) { return m.SetLeaving(leaving); };
  const bool changed = co_await ctx.server.cluster().Run(std::move(set));
  (void)changed;  // nodes.conf is saved by Run when it changed
  ctx.reply.Status(replies::kOk);
}

asio::awaitable<void> Cluster(CommandContext& ctx) {
  const std::string_view sub = ctx.args[1];
  const size_t argc = ctx.args.size();
  if (Is(sub, "meet") && argc == 4) {
    co_await Meet(ctx);
  } else if (Is(sub, "nodes") && argc == 2) {
    auto nodes = [](Membership& m, Bus&) { return m.NodesText(); };
    const std::string text = co_await ctx.server.cluster().Run(std::move(nodes));
    ctx.reply.Bulk(text);
  } else if (Is(sub, "myid") && argc == 2) {
    ctx.reply.Bulk(ctx.shard.cluster_view().myself_id);
  } else if (Is(sub, "info") && argc == 2) {
    co_await Info(ctx);
  } else if (Is(sub, "saveconfig") && argc == 2) {
    auto save = [](Membership&, Bus& bus) { return bus.SaveConfig(); };
    const Status st = co_await ctx.server.cluster().Run(std::move(save));
    if (st.ok()) {
      ctx.reply.Status(replies::kOk);
    } else {
      ctx.reply.Error("ERR error saving the cluster node config: " + std::string(st.message()));
    }
  } else if (Is(sub, "forget") && argc == 3) {
    co_await Forget(ctx);
  } else if (Is(sub, "reset") && (argc == 2 || argc == 3)) {
    co_await Reset(ctx);
  } else if (Is(sub, "leaving") && (argc == 2 || argc == 3)) {
    co_await Leaving(ctx);
  } else {
    ctx.reply.Error("ERR Wrong CLUSTER subcommand or number of arguments");
  }
}

constexpr std::array kClusterCommands{
    Command{"cluster", -2, kReadonly | kAdmin, nullptr, Cluster},
};

}  // namespace

std::span<const Command> ClusterCommands() { return kClusterCommands; }

}  // namespace disque::server
