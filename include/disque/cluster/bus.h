#pragma once

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <functional>
#include <mutex>
#include <future>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "disque/cluster/membership.h"
#include "disque/cluster/nodes_file.h"
#include "disque/common/clock.h"
#include "disque/common/status.h"
#include "disque/engine/engine.h"
#include "disque/engine/node_set.h"

#include "disque/net/connection.h"

namespace disque::net {
class Listener;
}

namespace disque::cluster {

struct BusOptions {
  std::vector<std::string> bind;  // addresses to listen on (empty: all)
  uint16_t listen_port = 0;       // the bus port we bind (0: no bus, a node alone)
  MembershipOptions membership;   // announced address and ports, node timeout
  std::string nodes_file;         // cluster-config-file
};

// The cluster bus: its own thread and io_context, the listener on the bus port, one
// outgoing link per known node plus the incoming connections, the 100 ms cron, the
// Membership state machine, nodes.conf, and the ClusterView snapshot shards read.
//
// Threads: everything but view() and Run()'s posting happens on the bus thread. Shards
// call Run(fn) to execute fn(Membership&, Bus&) there and resume with the result.
//
// Links (docs/cluster-bus.md): an outgoing link is created by the cron for a node
// without one, connects asynchronously, and queues what is sent meanwhile; it is read
// too, for the PONGs that come back on it. Incoming connections are read; a PING or MEET
// on one is answered with a PONG on the same connection. A malformed frame closes the
// connection it came on, with a log line.
class Bus final : private Transport {
 public:
  // `nodes`: the process's node registry; job messages name nodes by its indexes.
  Bus(const Clock& clock, BusOptions options, engine::NodeRegistry& nodes);
  ~Bus() override;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Startup, before Start(): locks and loads nodes.conf (a new identity when it is
  // missing or empty), then binds the bus port. Errors are fatal to the caller.
  Status Open();
  // Starts the bus thread. It inherits the caller's signal mask.
  void Start();
  // Stops the thread and closes every connection. Idempotent.
  void Stop();

  // Every new snapshot of the node table is handed to this callback, on the bus thread
  // and in order; the server posts it to each shard, which keeps its own copy, so
  // shards read the view without a lock (as they read the configuration). Set before
  // Start().
  using ViewListener = std::function<void(std::shared_ptr<const ClusterView>)>;
  void set_view_listener(ViewListener listener) { view_listener_ = std::move(listener); }
  // The latest snapshot, for callers that are not shards (startup, CLUSTER MYID's
  // fallback); takes a mutex. Null before Open().
  std::shared_ptr<const ClusterView> view() const;

  // Job messages (PROTOCOL.md II 5). Each one received from a known node (not in
  // handshake) goes to this callback, on the bus thread, with `sender` set to the
  // sender's node index. Set before Start().
  using JobListener = std::function<void(engine::JobMessage)>;
  void set_job_listener(JobListener listener) { job_listener_ = std::move(listener); }
  // Sends job messages; callable from any thread (the work is posted to the bus
  // thread). Each goes to the recipients that have a link; the others miss it.
  void SendJobs(std::vector<engine::JobMessage> messages);

  // Fault injection (DEBUG CLUSTER-CUT): every message to or from a cut node is
  // dropped, as if the network between the two had failed. Bus-thread only.
  void Cut(const std::string& id) { cut_.insert(id); }
  void Heal(const std::string& id) { cut_.erase(id); }
  void HealAll() { cut_.clear(); }
  const std::unordered_set<std::string>& cut() const { return cut_; }

  // Runs fn(Membership&, Bus&) on the bus thread and resumes the caller with its
  // result. After a change it publishes the view and saves nodes.conf before
  // returning, so the caller's next command sees it. GCC 12: pass a named lambda (see
  // Shard::RunOn).
  template <typename F>
  auto Run(F fn) -> asio::awaitable<std::invoke_result_t<F, Membership&, Bus&>> {
    using R = std::invoke_result_t<F, Membership&, Bus&>;
    auto task = [this, fn = std::move(fn)]() -> asio::awaitable<std::optional<R>> {
      std::optional<R> result(fn(*membership_, *this));
      AfterEvent();
      co_return result;
    };
    std::optional<R> result = co_await asio::co_spawn(ctx_, std::move(task), asio::use_awaitable);
    co_return std::move(*result);
  }

  // Bus-thread only.
  // Writes nodes.conf now (CLUSTER SAVECONFIG); the error text is strerror's.
  Status SaveConfig();
  uint64_t messages_sent() const { return messages_sent_; }
  uint64_t messages_received() const { return messages_received_; }
  void set_node_timeout(int64_t ms) { membership_->set_node_timeout(ms); }

 private:
  struct Link;

  // Transport.
  void Connect(Node& node) override;
  void DropLink(Node& node) override;
  void Send(Node& node, const Message& message) override;
  void Reply(uint64_t link, const Message& message) override;

  std::shared_ptr<Link> NewLink(Node* node, net::Socket socket);
  void Queue(const std::shared_ptr<Link>& link, const Message& message);
  void QueueFrame(const std::shared_ptr<Link>& link, std::string_view frame);
  void SendJob(const engine::JobMessage& job_message);
  void StartWriter(const std::shared_ptr<Link>& link);
  void CloseLink(const std::shared_ptr<Link>& link);
  asio::awaitable<void> ConnectLink(std::shared_ptr<Link> link, asio::ip::tcp::endpoint endpoint);
  asio::awaitable<void> ReadLink(std::shared_ptr<Link> link);
  asio::awaitable<void> WriteLink(std::shared_ptr<Link> link);
  void Dispatch(const std::shared_ptr<Link>& link, const Message& message);
  void ScheduleCron();
  // After anything that may have changed the table: save nodes.conf if due (a failure
  // is fatal, PROTOCOL.md II 11), publish the view if it changed.
  void AfterEvent();
  void PublishView();

  const Clock& clock_;
  BusOptions options_;
  NodesFile nodes_file_;
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ctx_.get_executor()};
  std::thread thread_;
  std::future<void> exited_;  // ready when the thread's run() returned
  bool stopping_ = false;     // bus thread: Stop() began; no new links or cron runs
  asio::steady_timer cron_timer_{ctx_};
  std::unique_ptr<net::Listener> listener_;
  std::unique_ptr<Membership> membership_;
  std::unordered_map<uint64_t, std::shared_ptr<Link>> links_;  // every open connection
  uint64_t next_link_id_ = 1;
  uint64_t messages_sent_ = 0;
  uint64_t messages_received_ = 0;
  ViewListener view_listener_;
  JobListener job_listener_;
  engine::NodeRegistry& nodes_;
  std::unordered_set<std::string> cut_;  // node IDs cut off (fault injection)
  // Known node ID -> the incoming connection it last sent on (may name a closed link).
  std::unordered_map<std::string, uint64_t> incoming_;
  mutable std::mutex view_mu_;
  std::shared_ptr<const ClusterView> view_;  // guarded by view_mu_
};

}  // namespace disque::cluster
