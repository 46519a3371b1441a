#include "disque/server/server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "disque/common/clock.h"
#include "disque/common/page_memory.h"
#include "disque/common/strings.h"
#include "disque/engine/job_arena.h"
#include "disque/resp/writer.h"
#include "disque/server/replies.h"
#include "disque/server/supervisor.h"

namespace disque::server {

namespace {

// The CPU quota set on one cgroup directory, in CPUs rounded up; 0 if none. v2: cpu.max
// "<quota> <period>" (or "max <period>"); v1: cpu.cfs_quota_us (-1 for none) and
// cpu.cfs_period_us.
int QuotaCpusAt(const std::filesystem::path& dir, bool v2) {
  long long quota = 0;
  long long period = 0;
  if (v2) {
    std::ifstream max(dir / "cpu.max");
    std::string text;
    if (!(max >> text >> period) || text == "max") return 0;
    quota = std::atoll(text.c_str());
  } else {
    std::ifstream quota_file(dir / "cpu.cfs_quota_us");
    std::ifstream period_file(dir / "cpu.cfs_period_us");
    if (!(quota_file >> quota) || !(period_file >> period)) return 0;
  }
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>(std::max(1LL, (quota + period - 1) / period));
}

// The smallest CPU quota among the cgroups this process is in and their ancestors (a
// container's, a systemd unit's CPUQuota=, a pod's limit), in CPUs rounded up; 0 if
// none. cgroup v2 (the `0::<path>` line) and v1 (the line naming the cpu controller).
int CgroupCpuLimit() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  int limit = 0;
  while (std::getline(cgroups, line)) {
    // "<hierarchy id>:<controllers>:<path>"
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
    const std::filesystem::path path = std::filesystem::path(line.substr(second + 1)).relative_path();
    const bool v2 = line.compare(0, 3, "0::") == 0;
    std::vector<std::string> roots;
    if (v2) {
      roots = {"/sys/fs/cgroup"};
    } else if (controllers.find(",cpu,") != std::string::npos) {
      roots = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"};
    }
    for (const std::string& root : roots) {
      // From the process's cgroup up to the hierarchy's root, both included.
      for (std::filesystem::path dir = (root / path).lexically_normal();; dir = dir.parent_path()) {
        if (const int cpus = QuotaCpusAt(dir, v2); cpus > 0) limit = limit == 0 ? cpus : std::min(limit, cpus);
        if (dir.native().size() <= root.size()) break;
      }
    }
  }
  return limit;
}

}  // namespace

int UsableCpus() {
  int cpus = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  if (const int limit = CgroupCpuLimit(); limit > 0) cpus = std::min(cpus, limit);
  return std::min(cpus, 1024);  // the `threads` maximum
}

namespace {

// Where the bus listens and what this node advertises (PROTOCOL.md II 1, and our
// cluster-announce-* and cluster-port directives). No client port: no bus.
cluster::BusOptions BusOptionsFor(const config::Config& cfg) {
  cluster::BusOptions opts;
  opts.bind = cfg.bind;
  if (cfg.port != 0) opts.listen_port = static_cast<uint16_t>(cfg.cluster_port != 0 ? cfg.cluster_port : cfg.port + 10000);
  opts.membership.node_timeout_ms = cfg.cluster_node_timeout;
  opts.membership.announce_ip = cfg.cluster_announce_ip;
  opts.membership.port = static_cast<uint16_t>(cfg.cluster_announce_port != 0 ? cfg.cluster_announce_port : cfg.port);
  opts.membership.bus_port =
      static_cast<uint16_t>(cfg.cluster_announce_bus_port != 0 ? cfg.cluster_announce_bus_port : opts.listen_port);
  opts.nodes_file = cfg.cluster_config_file;
  return opts;
}

}  // namespace

Server::Server(config::Options& options, config::Config config, CommandTable commands, ProcessInfo info)
    : options_(options),
      commands_(std::move(commands)),
      info_(std::move(info)),
      config_(std::make_shared<const config::Config>(std::move(config))),
      run_id_(RandomHex(40)),
      start_time_ms_(SystemClock::Instance().MonotonicMs()) {
  TuneAllocator();
  used_memory.store(UsedMemory());
  cluster_ = std::make_unique<cluster::Bus>(SystemClock::Instance(), BusOptionsFor(*config_), nodes_);
  const int n = config_->threads > 0 ? static_cast<int>(config_->threads) : UsableCpus();
  for (int i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(*this, i));
  persistence_ = std::make_unique<Persistence>(*this);
}

void Server::RouteJobMessage(engine::JobMessage message) {
  auto run = [this](int shard_id, engine::JobMessage m) {
    Shard& s = *shards_[static_cast<size_t>(shard_id)];
    asio::post(s.context(), [&s, m = std::move(m)] {
      s.engine().Receive(m);
      s.JobsChanged();
    });
  };
  const int n = shard_count();
  auto shard_of_slot = [n](uint16_t slot) { return static_cast<int>(slot % static_cast<uint16_t>(n)); };
  // A serialized job starts with its length (4 bytes), then its 40-character ID.
  auto shard_of_blob = [&](const std::string& blob) {
    return blob.size() >= 4 + engine::kJobIdLen ? shard_of_slot(engine::SlotOfJobIdText(std::string_view(blob).substr(4, engine::kJobIdLen)))
                                                 : 0;
  };
  // The shard is computed before the message is moved into the call (argument order).
  int target = 0;
  switch (message.type) {
    case engine::JobMsg::kNeedJobs:
    case engine::JobMsg::kPause:
      target = shard_of_slot(engine::QueueSlot(message.queue));
      break;
    case engine::JobMsg::kReplJob:
      if (!message.jobs.empty()) target = shard_of_blob(message.jobs[0]);
      break;
    case engine::JobMsg::kYourJobs: {
      // The jobs of one queue, normally: split them by shard anyway.
      std::map<int, engine::JobMessage> parts;
      for (std::string& blob : message.jobs) {
        const int shard_id = shard_of_blob(blob);
        auto [it, fresh] = parts.try_emplace(shard_id);
        if (fresh) {
          it->second.type = message.type;
          it->second.flags = message.flags;
          it->second.sender = message.sender;
        }
        it->second.jobs.push_back(std::move(blob));
      }
      for (auto& [shard_id, part] : parts) run(shard_id, std::move(part));
      return;
    }
    default:
      target = shard_of_slot(engine::SlotOfJobIdText(message.job_id));
      break;
  }
  run(target, std::move(message));
}

std::string Server::node_id() const {
  std::shared_ptr<const cluster::ClusterView> view = cluster_->view();
  return view ? view->myself_id : std::string(cluster::kNodeIdSize, '0');
}

asio::awaitable<uint64_t> Server::FlushAll(std::string node_id) {
  uint64_t aof_pos = 0;
  for (auto& shard : shards_) {
    auto flush = [node_id](Shard& s) {
      s.engine().Flush();
      if (!node_id.empty()) s.engine().SetNodeId(node_id);
      return s.JobsChanged();
    };
    const uint64_t pos = co_await Shard::RunOn(*shard, std::move(flush));
    aof_pos = std::max(aof_pos, pos);
  }
  co_return aof_pos;
}

Server::~Server() {
  // The listener runs on shard 0's io_context: destroy it before the shards.
  listener_.reset();
  StopControlThread();
}

void Server::StopControlThread() {
  control_work_.reset();
  control_.stop();
  if (control_thread_.joinable()) control_thread_.join();
}

int Server::MemoryLevel(const config::Config& cfg) const {
  const auto maxmemory = static_cast<uint64_t>(std::max<int64_t>(0, cfg.maxmemory));
  return engine::MemoryWarningLevel(used_memory.load(std::memory_order_relaxed), maxmemory);
}

MemoryRoom Server::MemoryRoomNow(const config::Config& cfg) const {
  if (cfg.maxmemory <= 0) return MemoryRoom::kRoom;
  const uint64_t used = used_memory.load(std::memory_order_relaxed);
  if (used <= static_cast<uint64_t>(cfg.maxmemory) / 100 * 95) return MemoryRoom::kRoom;
  if (cfg.maxmemory_policy == config::MaxmemoryPolicy::kNoEviction) return MemoryRoom::kNoRoom;
  return MemoryRoom::kEvict;
}

asio::awaitable<bool> Server::FreeMemoryIfNeeded(Shard& home) {
  const config::Config& cfg = home.config();
  const MemoryRoom room = MemoryRoomNow(cfg);
  if (room != MemoryRoom::kEvict) co_return room == MemoryRoom::kRoom;
  const uint64_t used = used_memory.load(std::memory_order_relaxed);
  const uint64_t limit = static_cast<uint64_t>(cfg.maxmemory) / 100 * 95;
  if (used <= limit) co_return true;  // fell meanwhile (shard 0's cron samples it)
  size_t needed = used - limit;
  const int n = shard_count();
  for (int i = 0; i < n && needed > 0; ++i) {
    Shard& target = shard((home.id() + i) % n);
    auto evict = [needed](Shard& s) { return s.EvictForMemory(needed); };
    const size_t freed = co_await Shard::RunOn(target, std::move(evict));
    needed -= std::min(freed, needed);
  }
  co_return needed == 0;
}

std::shared_ptr<const config::Config> Server::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

Status Server::Start() {
  if (Status st = Listen(); !st.ok()) return st;
  return Run();
}

Status Server::Listen() {
  const config::Config& cfg = *config_;

  net::ListenSpec spec;
  spec.addresses = cfg.bind;
  spec.port = static_cast<int>(cfg.port);
  spec.backlog = static_cast<int>(cfg.tcp_backlog);
  spec.unix_path = cfg.unixsocket;
  spec.unix_perm = static_cast<int>(cfg.unixsocketperm);
  // Round robin over the shards: each accepted socket is born on its shard's context.
  listener_ = std::make_unique<net::Listener>(
      shards_[0]->context(),
      [this]() -> asio::io_context& {
        return shards_[next_shard_.fetch_add(1, std::memory_order_relaxed) % shards_.size()]->context();
      },
      [this](net::Socket socket, bool is_unix) { OnAccept(std::move(socket), is_unix); });
  if (Status st = listener_->Open(spec); !st.ok()) return st;
  // Then the cluster, as Disque orders it: nodes.conf gives this node its identity (a
  // second process on the same file stops here), and the bus port must be free.
  if (Status st = cluster_->Open(); !st.ok()) return st;
  // No shard thread runs yet: set their ID and view directly; later views are posted.
  const std::shared_ptr<const cluster::ClusterView> view = cluster_->view();
  for (auto& shard : shards_) {
    shard->engine().SetNodeId(view->myself_id);
    shard->PublishClusterView(view);
  }
  cluster_->set_view_listener([this](std::shared_ptr<const cluster::ClusterView> next) {
    for (auto& shard : shards_) {
      asio::post(shard->context(), [s = shard.get(), next] { s->PublishClusterView(next); });
    }
  });
  cluster_->set_job_listener([this](engine::JobMessage message) { RouteJobMessage(std::move(message)); });

  // SIGTERM and SIGINT go to the control thread only. Every thread started from here
  // on (shards, cluster bus) inherits the calling thread's blocked mask; the control
  // thread unblocks them. Otherwise the kernel may pick a shard thread parked in
  // epoll_wait, and under TSan (which defers handlers to the next interceptor) the
  // shutdown would never start. The handler is installed before the first accept, so a
  // signal sent as soon as the port answers is never lost.
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  WaitForSignal();
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  control_thread_ = std::thread([this, shutdown_signals] {
    pthread_sigmask(SIG_UNBLOCK, &shutdown_signals, nullptr);
    control_.run();
  });
  listener_->Start();
  return Status::Ok();
}

Status Server::Run() {
  for (auto& shard : shards_) shard->Start();
  // Jobs from the AOF first, then the bus: messages about them find them loaded.
  if (Status st = persistence_->Start(); !st.ok()) return st;
  cluster_->Start();
  return Status::Ok();
}

void Server::WaitForSignal() {
  signals_.async_wait([this](const asio::error_code& ec, int signo) {
    if (ec) return;
    if (shutdown_requested_.load() && signo == SIGINT) {
      spdlog::warn("You insist... exiting now.");
      std::_Exit(1);
    }
    spdlog::warn("Received {}, scheduling shutdown...", signo == SIGINT ? "SIGINT" : "SIGTERM");
    RequestShutdown();
    WaitForSignal();
  });
}

void Server::OnAccept(net::Socket socket, bool is_unix) {
  // Runs on the listener's thread (shard 0). maxclients is checked here, before the
  // connection reaches its shard, with the same reply Disque writes.
  const config::Config& cfg = shards_[0]->config();
  // Best effort and non-blocking, as Disque: the socket is closed right after.
  auto refuse = [&socket](std::string_view error) {
    std::string reply = "-";
    reply.append(error).append("\r\n");
    [[maybe_unused]] ssize_t n = ::send(socket.native_handle(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    asio::error_code ec;
    socket.close(ec);
  };
  if (connected_clients.fetch_add(1, std::memory_order_relaxed) + 1 > cfg.maxclients) {
    connected_clients.fetch_sub(1, std::memory_order_relaxed);
    rejected_connections.fetch_add(1, std::memory_order_relaxed);  // maxclients only (PROTOCOL.md 1.1)
    refuse(replies::kMaxClients);
    return;
  }
  if (!is_unix && cfg.protected_mode) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(socket.native_handle(), reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
        ProtectedModeRefuses(cfg, peer)) {
      connected_clients.fetch_sub(1, std::memory_order_relaxed);
      refuse(replies::kProtectedMode);
      return;
    }
  }
  // The socket was created on its shard's context; adopt it there.
  asio::execution_context& ctx = asio::query(socket.get_executor(), asio::execution::context);
  for (auto& shard : shards_) {
    if (static_cast<asio::execution_context*>(&shard->context()) == &ctx) {
      asio::post(shard->context(), [shard = shard.get(), s = std::make_shared<net::Socket>(std::move(socket)), is_unix]() mutable {
        shard->Adopt(std::move(*s), is_unix);
      });
      return;
    }
  }
}

void Server::RequestShutdown() {
  if (shutdown_requested_.exchange(true)) return;
  spdlog::warn("User requested shutdown...");
  NotifySupervisor("STOPPING=1");
  undrained_shards_.store(static_cast<int>(shards_.size()));
  asio::post(shards_[0]->context(), [this] {
    if (listener_) listener_->Close();
    for (auto& shard : shards_) asio::post(shard->context(), [s = shard.get()] { s->BeginShutdown(); });
  });
  asio::post(control_, [this] {
    shutdown_deadline_.expires_after(kShutdownDeadline);
    shutdown_deadline_.async_wait([this](const asio::error_code& ec) {
      if (ec) return;
      spdlog::warn("Clients did not finish within {} s: stopping anyway", kShutdownDeadline.count());
      forced_stop_.store(true);
      StopAllShards();
    });
  });
}

void Server::ShardDrained() {
  if (undrained_shards_.fetch_sub(1) == 1) {
    StopAllShards();
    asio::post(control_, [this] { shutdown_deadline_.cancel(); });
  }
}

void Server::StopAllShards() {
  for (auto& shard : shards_) shard->context().stop();  // io_context::stop is thread-safe
}

void Server::Wait() {
  for (auto& shard : shards_) shard->Join();
  // Everything the shards journaled is in the writer: write and fsync it.
  persistence_->Stop();
  cluster_->Stop();
  StopControlThread();
}

asio::awaitable<Status> Server::SetConfig(std::string name, std::string value) {
  std::shared_ptr<const config::Config> snapshot;
  uint64_t version;
  bool appendonly_before = false;
  {
    std::lock_guard lock(config_mu_);
    config::Config next = *config_;
    if (Status st = options_.Set(next, name, value); !st.ok()) co_return st;
    appendonly_before = config_->appendonly;
    config_ = std::make_shared<const config::Config>(std::move(next));
    version = ++config_version_;
    snapshot = config_;
  }
  persistence_->Configure(*snapshot);
  if (snapshot->appendonly != appendonly_before) {
    // Turning the AOF on starts a rewrite; off stops logging at once (PROTOCOL.md 8.3).
    const bool on = snapshot->appendonly;
    Status switched = co_await persistence_->SetAppendOnly(on);
    if (!switched.ok()) {
      std::string previous = on ? "no" : "yes";
      Status reverted = SetConfigNow("appendonly", previous);
      (void)reverted;
      co_return switched;
    }
  }
  for (auto& shard : shards_) {
    // A named lambda: it owns a shared_ptr (see the GCC 12 note at Shard::RunOn).
    auto publish = [snapshot, version](Shard& s) { s.PublishConfig(snapshot, version); };
    co_await Shard::RunOn(*shard, std::move(publish));
  }
  auto timeout = [ms = snapshot->cluster_node_timeout](cluster::Membership& m, cluster::Bus&) {
    m.set_node_timeout(ms);
    return 0;
  };
  const int applied = co_await cluster_->Run(std::move(timeout));
  (void)applied;
  co_return Status::Ok();
}

Status Server::SetConfigNow(std::string_view name, std::string_view value) {
  std::shared_ptr<const config::Config> snapshot;
  uint64_t version;
  {
    std::lock_guard lock(config_mu_);
    config::Config next = *config_;
    if (Status st = options_.Set(next, name, value); !st.ok()) return st;
    config_ = std::make_shared<const config::Config>(std::move(next));
    version = ++config_version_;
    snapshot = config_;
  }
  for (auto& shard : shards_) {
    asio::post(shard->context(), [s = shard.get(), snapshot, version] { s->PublishConfig(snapshot, version); });
  }
  return Status::Ok();
}

Status Server::RewriteConfig() {
  std::lock_guard lock(rewrite_mu_);
  const std::shared_ptr<const config::Config> snapshot = config();
  return options_.Rewrite(*snapshot, info_.config_file);
}

bool ProtectedModeRefuses(const config::Config& cfg, const sockaddr_storage& peer) {
  if (!cfg.protected_mode || !cfg.requirepass.empty()) return false;
  const bool everywhere =
      cfg.bind.empty() || std::any_of(cfg.bind.begin(), cfg.bind.end(), [](const std::string& a) {
        return a == "0.0.0.0" || a == "::" || a == "*";
      });
  if (!everywhere) return false;
  switch (peer.ss_family) {
    case AF_INET: {
      const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
      return (ntohl(in.sin_addr.s_addr) >> 24) != 127;
    }
    case AF_INET6: {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
      if (IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr)) return false;
      if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return in6.sin6_addr.s6_addr[12] != 127;
      return true;
    }
    default:  // a Unix socket
      return false;
  }
}

int64_t AdjustOpenFilesLimit(int64_t maxclients) {
  constexpr int64_t kReservedFds = 32;  // listeners, log, AOF, bus: as Disque reserves
  const rlim_t wanted = static_cast<rlim_t>(maxclients + kReservedFds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return maxclients;
  if (limit.rlim_cur >= wanted) return maxclients;
  rlimit raised = limit;
  raised.rlim_cur = std::min(wanted, limit.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  if (limit.rlim_cur >= wanted) return maxclients;
  return std::max<int64_t>(1, static_cast<int64_t>(limit.rlim_cur) - kReservedFds);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizer builds replace malloc: glibc's mallinfo2 would walk arenas nobody uses (and
// crashes doing so under ASan). Ask the sanitizer's allocator instead.
// Exported by libasan and libtsan (GCC ships no header for it).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
static uint64_t MallocUsedMemory() { return __sanitizer_get_current_allocated_bytes(); }
void ReleaseFreeMemory() {}
void TuneAllocator() {}
#else
static uint64_t MallocUsedMemory() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
void ReleaseFreeMemory() { malloc_trim(0); }
// Setting the thresholds turns glibc's dynamic ones off. Those rise to the size of the
// biggest mmapped block freed so far: after the job index of a million jobs (16 MB) is
// freed once, every later big table comes from a thread arena's top chunk, which neither
// free() (the trim threshold rose too) nor malloc_trim() gives back. Fixed, blocks of
// 1 MB and more (tables, heaps, big replies) are mapped and unmapped on their own.
void TuneAllocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
}
#endif

// Jobs live in the shards' arenas (mmap'd slabs), which malloc does not see.
uint64_t UsedMemory() {
  return MallocUsedMemory() + engine::JobArena::ProcessLiveBytes() + PageMemoryBytes();
}

uint64_t ResidentSetSize() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace disque::server
