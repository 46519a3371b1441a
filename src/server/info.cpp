#include "disque/server/info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>

#include "disque/common/clock.h"
#include "disque/common/strings.h"
#include "disque/server/client.h"
#include "disque/server/server.h"

#ifndef DISQUE_GIT_SHA1
#define DISQUE_GIT_SHA1 "00000000"
#endif

namespace disque::server {

std::string_view GitSha1() { return DISQUE_GIT_SHA1; }

namespace {

// What INFO needs from one shard, copied on that shard's thread.
struct ShardSnapshot {
  size_t clients = 0;
  size_t biggest_input = 0;
  size_t blocked = 0;
  size_t jobs = 0;
  size_t queues = 0;
  ShardStats stats;
  uint64_t ops_per_sec = 0, input_bps = 0, output_bps = 0;
};

ShardSnapshot Snapshot(Shard& shard) {
  ShardSnapshot snap;
  snap.clients = shard.clients().size();
  for (const auto& [id, client] : shard.clients()) {
    snap.biggest_input = std::max(snap.biggest_input, client->connection().input().size());
    if (client->blocked()) ++snap.blocked;
  }
  snap.jobs = shard.engine().job_count();
  snap.queues = shard.engine().queue_count();
  snap.stats = shard.stats();
  snap.ops_per_sec = snap.stats.ops_per_sec.Mean();
  snap.input_bps = snap.stats.input_bytes_per_sec.Mean();
  snap.output_bps = snap.stats.output_bytes_per_sec.Mean();
  return snap;
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

void AppendServer(std::string& out, Server& server) {
  const auto& cfg = *server.config();
  utsname name{};
  uname(&name);
  const int64_t uptime = (SystemClock::Instance().MonotonicMs() - server.start_time_ms()) / 1000;
#ifdef __GNUC__
  const std::string gcc = fmt::format("{}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  const std::string gcc = "0.0.0";
#endif
  out += "# Server\r\n";
  out += fmt::format("disque_version:{}\r\n", kDisqueVersion);
  out += fmt::format("disque_git_sha1:{}\r\n", DISQUE_GIT_SHA1);
  out += "disque_git_dirty:0\r\n";
  out += fmt::format("disque_build_id:{}\r\n", DISQUE_GIT_SHA1);
  out += fmt::format("os:{} {} {}\r\n", name.sysname, name.release, name.machine);
  out += fmt::format("arch_bits:{}\r\n", sizeof(void*) * 8);
  out += "multiplexing_api:epoll\r\n";
  out += fmt::format("gcc_version:{}\r\n", gcc);
  out += fmt::format("process_id:{}\r\n", getpid());
  out += fmt::format("run_id:{}\r\n", server.run_id());
  out += fmt::format("tcp_port:{}\r\n", cfg.port);
  out += fmt::format("uptime_in_seconds:{}\r\n", uptime);
  out += fmt::format("uptime_in_days:{}\r\n", uptime / 86400);
  out += fmt::format("hz:{}\r\n", cfg.hz);
  out += fmt::format("executable:{}\r\n", server.process_info().executable);
  out += fmt::format("config_file:{}\r\n", server.process_info().config_file);
  out += fmt::format("threads:{}\r\n", server.shard_count());  // ours: shard threads
}

}  // namespace

asio::awaitable<std::string> GenerateInfo(Server& server, std::string_view section_arg) {
  const std::string section = section_arg.empty() ? "default" : ToLower(section_arg);
  const bool all = section == "all";
  const bool dflt = all || section == "default";
  auto want = [&](std::string_view name) { return dflt || section == name; };

  // Gather every shard's counters (each on its own thread) and add them up.
  std::vector<ShardSnapshot> shards;
  for (int i = 0; i < server.shard_count(); ++i) {
    ShardSnapshot snap = co_await Shard::RunOn(server.shard(i), Snapshot);
    shards.push_back(std::move(snap));
  }
  ShardSnapshot total;
  total.stats.commands.resize(server.commands().commands().size());
  for (const ShardSnapshot& s : shards) {
    total.clients += s.clients;
    total.biggest_input = std::max(total.biggest_input, s.biggest_input);
    total.blocked += s.blocked;
    total.jobs += s.jobs;
    total.queues += s.queues;
    total.stats.connections_received += s.stats.connections_received;
    total.stats.commands_processed += s.stats.commands_processed;
    total.stats.net_input_bytes += s.stats.net_input_bytes;
    total.stats.net_output_bytes += s.stats.net_output_bytes;
    total.stats.output_limit_disconnections += s.stats.output_limit_disconnections;
    for (size_t i = 0; i < total.stats.commands.size(); ++i) {
      total.stats.commands[i].calls += s.stats.commands[i].calls;
      total.stats.commands[i].usec += s.stats.commands[i].usec;
    }
    total.ops_per_sec += s.ops_per_sec;
    total.input_bps += s.input_bps;
    total.output_bps += s.output_bps;
  }

  std::string out;
  auto begin_section = [&out]() {
    if (!out.empty()) out += "\r\n";
  };
  if (want("server")) {
    begin_section();
    AppendServer(out, server);
  }
  if (want("clients")) {
    begin_section();
    out += "# Clients\r\n";
    out += fmt::format("connected_clients:{}\r\n", total.clients);
    // Replies go to one flat output buffer per client: there is never a reply list.
    out += "client_longest_output_list:0\r\n";
    out += fmt::format("client_biggest_input_buf:{}\r\n", total.biggest_input);
    out += fmt::format("blocked_clients:{}\r\n", total.blocked);
  }
  if (want("memory")) {
    begin_section();
    const uint64_t used = UsedMemory();
    const uint64_t rss = ResidentSetSize();
    const uint64_t peak = std::max(used, server.used_memory_peak.load(std::memory_order_relaxed));
    out += "# Memory\r\n";
    out += fmt::format("used_memory:{}\r\n", used);
    out += fmt::format("used_memory_human:{}\r\n", HumanBytes(used));
    out += fmt::format("used_memory_rss:{}\r\n", rss);
    out += fmt::format("used_memory_peak:{}\r\n", peak);
    out += fmt::format("used_memory_peak_human:{}\r\n", HumanBytes(peak));
    out += fmt::format("mem_fragmentation_ratio:{:.2f}\r\n", used ? static_cast<double>(rss) / used : 0.0);
    out += "mem_allocator:libc\r\n";
  }
  if (want("jobs")) {
    begin_section();
    out += "# Jobs\r\n";
    out += fmt::format("registered_jobs:{}\r\n", total.jobs);
  }
  if (want("queues")) {
    begin_section();
    out += "# Queues\r\n";
    out += fmt::format("registered_queues:{}\r\n", total.queues);
  }
  if (want("persistence")) {
    begin_section();
    out += "# Persistence\r\n";
    server.persistence().AppendInfo(out);
  }
  if (want("stats")) {
    begin_section();
    out += "# Stats\r\n";
    out += fmt::format("total_connections_received:{}\r\n", total.stats.connections_received);
    out += fmt::format("total_commands_processed:{}\r\n", total.stats.commands_processed);
    out += fmt::format("instantaneous_ops_per_sec:{}\r\n", total.ops_per_sec);
    out += fmt::format("total_net_input_bytes:{}\r\n", total.stats.net_input_bytes);
    out += fmt::format("total_net_output_bytes:{}\r\n", total.stats.net_output_bytes);
    out += fmt::format("instantaneous_input_kbps:{:.2f}\r\n", total.input_bps / 1024.0);
    out += fmt::format("instantaneous_output_kbps:{:.2f}\r\n", total.output_bps / 1024.0);
    out += fmt::format("rejected_connections:{}\r\n", server.rejected_connections.load());
    // Beyond Disque, as Redis 7.2 names it.
    out += fmt::format("client_output_buffer_limit_disconnections:{}\r\n",
                       total.stats.output_limit_disconnections);
    out += "latest_fork_usec:0\r\n";
  }
  if (want("cpu")) {
    begin_section();
    rusage self{}, children{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    out += "# CPU\r\n";
    out += fmt::format("used_cpu_sys:{:.2f}\r\n", Seconds(self.ru_stime));
    out += fmt::format("used_cpu_user:{:.2f}\r\n", Seconds(self.ru_utime));
    out += fmt::format("used_cpu_sys_children:{:.2f}\r\n", Seconds(children.ru_stime));
    out += fmt::format("used_cpu_user_children:{:.2f}\r\n", Seconds(children.ru_utime));
  }
  if (all || section == "commandstats") {
    begin_section();
    out += "# Commandstats\r\n";
    for (const Command& cmd : server.commands().commands()) {
      const auto& st = total.stats.commands[cmd.index];
      if (st.calls == 0) continue;
      out += fmt::format("cmdstat_{}:calls={},usec={},usec_per_call={:.2f}\r\n", cmd.name, st.calls, st.usec,
                         static_cast<double>(st.usec) / st.calls);
    }
  }
  co_return out;
}

}  // namespace disque::server
