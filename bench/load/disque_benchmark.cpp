// disque-benchmark: the end-to-end load generator. It drives disque-server and, with
// --redis, redis-server doing the nearest equivalent list work, so that both servers are
// measured by the same client and the client's own cost cancels out of the comparison.
//
//   disque-benchmark produce|consume|cycle [options]        (--help lists the options)
//
//   produce  ADDJOB q<i> <body> 0 [REPLICATE n]                 redis: LPUSH q<i> <body>
//   consume  GETJOB NOHANG COUNT k FROM q<i> + ACKJOB of the batch  redis: RPOP q<i> k
//   cycle    producers ADDJOB; consumers GETJOB TIMEOUT 1000 COUNT k FROM q<i> + ACKJOB
//            redis: LPUSH; BLMPOP 1 1 q<i> RIGHT COUNT k
//
// Threads. Each client thread (--threads) runs its own asio::io_context with its share of
// the connections, so nothing on the per-command path is shared except the job budget (one
// atomic operation per batch). The main thread runs a control io_context: SIGINT, the
// duration, progress lines, and the deadlines that keep a dead server from hanging the tool.
//
// Batches. As in redis-benchmark, a connection writes up to --pipeline commands, waits for
// all their replies, then writes the next batch. A command's latency is the time from the
// write of its batch to its reply (in cycle mode: from the timestamp the producer put in
// the body to the consumer's read). ACKs of a batch's jobs ride in front of the next batch,
// so acknowledging costs no round trip of its own.
//
// Cost. Commands are serialized once at startup and copied into a reused write buffer;
// cycle producers only overwrite the timestamp digits. Replies are parsed by hiredis'
// redisReader; its reply objects (one per reply element) are the allocations left, as in
// redis-benchmark, the usual reference point.

#include <hiredis/hiredis.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace disque::bench {
namespace {

using asio::ip::tcp;

// CLOCK_MONOTONIC in nanoseconds. Cycle-mode bodies carry this clock, so a consumer on the
// same machine can subtract the producer's reading from its own.
uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The timestamp at the start of a cycle-mode body: fixed width, so the producer patches it
// in place and the consumer knows where it ends. 20 digits hold any uint64_t.
constexpr size_t kStampDigits = 20;

void WriteStamp(char* out, uint64_t ns) {
  for (size_t i = kStampDigits; i-- > 0; ns /= 10) out[i] = static_cast<char>('0' + ns % 10);
}

// False for a body that does not start with a stamp (a job some other client queued).
bool ReadStamp(const char* in, size_t len, uint64_t* ns) {
  if (len < kStampDigits) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < kStampDigits; ++i) {
    if (in[i] < '0' || in[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(in[i] - '0');
  }
  *ns = v;
  return true;
}

// A counter written by one thread and read by the progress line on another: a relaxed
// load and store instead of fetch_add, because a locked instruction per job is pure cost
// when there is a single writer.
void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

enum class Mode { kProduce, kConsume, kCycle };

// The command line, validated (ParseOptions). Zero means "not given" for jobs, duration
// and replicate.
struct Options {
  Mode mode = Mode::kProduce;
  std::string mode_name;
  std::string host = "127.0.0.1";
  int port = 7711;
  bool redis = false;    // drive redis-server with the list equivalents
  int connections = 50;  // produce and consume
  int pipeline = 1;      // commands in flight per connection
  int body_size = 100;   // bytes; cycle mode needs room for the stamp
  int queues = 1;        // q0..q<queues-1>; connection i uses queue i % queues
  int64_t jobs = 0;      // stop after this many jobs
  double duration = 0;   // stop after this many seconds
  int count = 32;        // jobs per GETJOB / RPOP / BLMPOP
  bool fastack = false;  // FASTACK instead of ACKJOB
  int producers = 4;     // cycle mode connections
  int consumers = 4;
  int replicate = 0;      // ADDJOB ... REPLICATE n when given
  int threads = 1;        // client threads (each its own io_context)
  bool progress = false;  // a line per second on stderr
  bool json = false;      // a JSON summary as the last line of stdout
};

// ---------------------------------------------------------------------------------------
// Latency histogram

// Log-linear buckets in nanoseconds, HdrHistogram's layout: values below 2^kSubBits are
// exact; above, every power of two is cut into 2^(kSubBits-1) equal buckets, so a bucket
// is at most 1/128 of its values wide (under 1 % error) at a fixed 59 KB per histogram,
// whatever the run length. Each thread owns one; they are merged after the threads end.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t ns) {
    ++counts_[Index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }

  void Merge(const Histogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // The smallest recorded value v with at least fraction q of the samples <= v, reported as
  // its bucket's midpoint (never above the exact maximum).
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, Lowest(i) + Width(i) / 2);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 8;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // exact values below this
  static constexpr uint64_t kHalf = kSub / 2;                // buckets per power of two
  static constexpr size_t kBuckets = kSub + (64 - kSubBits) * kHalf;

  static size_t Index(uint64_t v) {
    if (v < kSub) return v;
    const int shift = std::bit_width(v) - kSubBits;  // >= 1; v >> shift is in [kHalf, kSub)
    return kSub + static_cast<size_t>(shift - 1) * kHalf + ((v >> shift) - kHalf);
  }
  static int Shift(size_t i) { return i < kSub ? 0 : static_cast<int>((i - kSub) / kHalf) + 1; }
  static uint64_t Lowest(size_t i) {
    if (i < kSub) return i;
    return ((i - kSub) % kHalf + kHalf) << Shift(i);
  }
  static uint64_t Width(size_t i) { return uint64_t{1} << Shift(i); }

  std::vector<uint64_t> counts_;  // samples per bucket, indexed by Index()
  uint64_t total_ = 0;            // samples recorded
  uint64_t max_ = 0;              // exact largest sample
};

// ---------------------------------------------------------------------------------------
// Pre-serialized commands

void AppendHeader(std::string& out, char type, size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
  out += type;
  out.append(digits, end);
  out += "\r\n";
}

// Appends one bulk string; returns where its payload starts in `out`.
size_t AppendBulk(std::string& out, std::string_view arg) {
  AppendHeader(out, '$', arg.size());
  const size_t at = out.size();
  out.append(arg);
  out += "\r\n";
  return at;
}

// Every command the run sends, serialized once at startup and shared read-only by all
// threads. Per queue, because the queue name is part of the bytes.
struct Commands {
  std::vector<std::string> queue_names;  // q0, q1, ...
  std::vector<std::string> produce;      // ADDJOB / LPUSH of an 'x' body, per queue
  std::vector<size_t> body_offset;       // where the body starts in produce[q]
  std::vector<std::string> fetch;        // GETJOB / RPOP / BLMPOP with COUNT k, per queue
  std::string ack_name;                  // "ACKJOB" or "FASTACK"

  explicit Commands(const Options& opt) : ack_name(opt.fastack ? "FASTACK" : "ACKJOB") {
    const std::string body(static_cast<size_t>(opt.body_size), 'x');
    for (int q = 0; q < opt.queues; ++q) {
      queue_names.push_back("q" + std::to_string(q));
      std::string cmd;
      if (opt.redis) {
        AppendHeader(cmd, '*', 3);
        AppendBulk(cmd, "LPUSH");
        AppendBulk(cmd, queue_names.back());
        body_offset.push_back(AppendBulk(cmd, body));
      } else {
        AppendHeader(cmd, '*', opt.replicate > 0 ? 6 : 4);
        AppendBulk(cmd, "ADDJOB");
        AppendBulk(cmd, queue_names.back());
        body_offset.push_back(AppendBulk(cmd, body));
        AppendBulk(cmd, "0");  // ms-timeout 0: wait as long as replication takes
        if (opt.replicate > 0) {
          AppendBulk(cmd, "REPLICATE");
          AppendBulk(cmd, std::to_string(opt.replicate));
        }
      }
      produce.push_back(std::move(cmd));
      fetch.emplace_back();
      BuildFetch(opt, fetch.back(), q, opt.count);
    }
  }

  // The fetch command of queue q for `count` jobs. Only the last batch before -n is
  // reached asks for fewer than --count; the others copy the prebuilt bytes.
  void AppendFetch(const Options& opt, std::string& out, int q, int count) const {
    if (count == opt.count) {
      out += fetch[static_cast<size_t>(q)];
    } else {
      BuildFetch(opt, out, q, count);
    }
  }

 private:
  void BuildFetch(const Options& opt, std::string& out, int q, int count) const {
    const std::string n = std::to_string(count);
    const std::string& queue = queue_names[static_cast<size_t>(q)];
    if (opt.redis && opt.mode == Mode::kCycle) {
      AppendHeader(out, '*', 7);
      AppendBulk(out, "BLMPOP");
      AppendBulk(out, "1");  // timeout in seconds, so that a stop is noticed
      AppendBulk(out, "1");  // numkeys
      AppendBulk(out, queue);
      AppendBulk(out, "RIGHT");
      AppendBulk(out, "COUNT");
      AppendBulk(out, n);
    } else if (opt.redis) {
      AppendHeader(out, '*', 3);
      AppendBulk(out, "RPOP");
      AppendBulk(out, queue);
      AppendBulk(out, n);
    } else if (opt.mode == Mode::kCycle) {
      AppendHeader(out, '*', 7);
      AppendBulk(out, "GETJOB");
      AppendBulk(out, "TIMEOUT");
      AppendBulk(out, "1000");  // as BLMPOP's 1 s
      AppendBulk(out, "COUNT");
      AppendBulk(out, n);
      AppendBulk(out, "FROM");
      AppendBulk(out, queue);
    } else {
      AppendHeader(out, '*', 6);
      AppendBulk(out, "GETJOB");
      AppendBulk(out, "NOHANG");
      AppendBulk(out, "COUNT");
      AppendBulk(out, n);
      AppendBulk(out, "FROM");
      AppendBulk(out, queue);
    }
  }
};

// Jobs still to claim before -n is reached (produce mode: commands). A connection claims a
// batch's worth before writing it, so the run does not overshoot, and gives back what a
// short reply did not use; a connection that finds nothing left to claim stops. One race
// remains, in consume mode with several queues: jobs given back after every connection of
// a non-empty queue has stopped go unclaimed, and the run ends a little short of -n.
// (Cycle consumers never stop on a short reply, so they claim their own give-backs.)
// Without -n the budget starts out effectively infinite.
class Budget {
 public:
  explicit Budget(int64_t n) : left_(n) {}

  int64_t Claim(int64_t want) {
    int64_t left = left_.load(std::memory_order_relaxed);
    while (left > 0) {
      const int64_t take = std::min(left, want);
      if (left_.compare_exchange_weak(left, left - take, std::memory_order_relaxed)) return take;
    }
    return 0;
  }
  void Return(int64_t n) { left_.fetch_add(n, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> left_;
};

class Bench;
class Worker;

// ---------------------------------------------------------------------------------------
// Connection

// One TCP connection and its batch state machine. It lives on one worker's thread and is
// touched by no other, so nothing here is locked.
//
//   connect -> Issue (write batch) -> replies arrive -> all replied and write done ->
//   Issue ... -> Issue finds nothing to send -> Close
//
// A read is always pending from connect to Close, so a server that hangs up is noticed at
// once, even between batches.
class Connection {
 public:
  enum class Role {
    kProducer,         // ADDJOB / LPUSH, pipelined
    kConsumer,         // consume mode: NOHANG GETJOB / RPOP, pipelined, stops on empty
    kBlockingConsumer  // cycle mode: one blocking GETJOB / BLMPOP at a time
  };

  Connection(Worker& worker, Role role, int queue);
  ~Connection() { redisReaderFree(reader_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start(const tcp::resolver::results_type& endpoints);
  void Close();

 private:
  enum class Kind : uint8_t { kProduce, kFetch, kAck };
  // One command of the batch in flight, in send order (replies come in the same order).
  struct Pending {
    Kind kind;
    int32_t claim;  // kFetch: jobs claimed from the budget for it
  };

  void Issue();
  void OnWrite(const std::error_code& ec);
  void Read();
  void OnRead(const std::error_code& ec, size_t n);
  void HandleReply(const redisReply& reply, uint64_t now);
  int64_t HandleFetch(const redisReply& reply, uint64_t now);
  void Received(uint64_t now, const redisReply& body);
  void Fail(std::string_view what);

  Worker& worker_;
  const Role role_;
  const int queue_;
  tcp::socket socket_;
  redisReader* reader_;

  std::string out_;               // the batch being written; capacity reused
  std::string acks_;              // ACKJOBs for the next batch, built as jobs arrive
  int ack_cmds_ = 0;              // commands in acks_
  std::vector<Pending> pending_;  // the batch in flight
  size_t replied_ = 0;            // replies received for it
  uint64_t sent_ns_ = 0;          // when it was written
  bool writing_ = false;          // its async_write has not completed yet
  bool done_ = false;             // send nothing new (stop, -n reached, empty, error)
  bool closed_ = false;           // Close ran; late handlers return at once
  std::unique_ptr<char[]> in_;    // socket read buffer, fed to reader_
};

constexpr size_t kReadSize = 32 * 1024;

// ---------------------------------------------------------------------------------------
// Worker

// Counters of one worker: written by its thread alone (Bump), read by the progress line.
// Cache-line aligned so workers do not share lines.
struct alignas(64) Counters {
  std::atomic<uint64_t> produced{0};  // successful ADDJOB / LPUSH replies
  std::atomic<uint64_t> consumed{0};  // jobs received by GETJOB / RPOP / BLMPOP
  std::atomic<uint64_t> errors{0};    // error replies and connection failures
};

// A client thread: one io_context and the connections assigned to it. Everything but
// `counters` is touched by this thread only while it runs, and by the main thread after
// it is joined.
class Worker {
 public:
  explicit Worker(Bench& bench) : bench_(bench) {}

  Bench& bench() { return bench_; }
  asio::io_context& io() { return io_; }
  Counters& counters() { return counters_; }
  Histogram& latency() { return latency_; }
  const std::string& first_error() const { return first_error_; }

  void Add(Connection::Role role, int queue) {
    connections_.push_back(std::make_unique<Connection>(*this, role, queue));
  }
  void Start(const tcp::resolver::results_type& endpoints) {
    for (auto& c : connections_) c->Start(endpoints);
  }
  // Posted by Bench from any thread.
  void CloseAll() {
    for (auto& c : connections_) c->Close();
  }

  // A reply that moved jobs arrived at `now` (in produce and consume mode: any reply); the
  // run's measured time ends at the latest of these, not at the drain that follows.
  void Worked(uint64_t now) { last_work_ns_ = std::max(last_work_ns_, now); }
  uint64_t last_work_ns() const { return last_work_ns_; }

  void Error(std::string_view message) {
    Bump(counters_.errors);
    if (first_error_.empty()) first_error_ = message;
  }
  void Closed(Connection::Role role);

 private:
  Bench& bench_;
  asio::io_context io_{1};  // one thread: Asio may skip its internal locking
  std::vector<std::unique_ptr<Connection>> connections_;
  Counters counters_;
  Histogram latency_;
  std::string first_error_;    // the first error this thread saw, for the report
  uint64_t last_work_ns_ = 0;  // see Worked()
};

// ---------------------------------------------------------------------------------------
// Bench

// The run: options, shared commands and budget, the workers, and the control io_context
// on the main thread. `stopping` and the role counts are the only state workers share.
class Bench {
 public:
  explicit Bench(const Options& opt)
      : opt_(opt),
        commands_(opt),
        budget_(opt.jobs > 0 ? opt.jobs : INT64_MAX / 4),
        signals_(control_, SIGINT, SIGTERM),
        duration_timer_(control_),
        progress_timer_(control_),
        deadline_timer_(control_) {}

  int Run();

  const Options& opt() const { return opt_; }
  const Commands& commands() const { return commands_; }
  Budget& budget() { return budget_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  void Connected() { connected_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t start_ns() const { return start_ns_; }  // set before the workers start

  // From any thread: stop sending new work. Each connection finishes its batch in flight
  // and sends the ACKs it owes; a consumer parked in a blocking fetch waits for it to be
  // served or to time out (1 s), because closing it could lose a job the server is
  // already sending (Redis has no redelivery). The measured time is unaffected: it ends
  // at the last reply that carried work (Worker::Worked).
  void RequestStop() {
    if (stopping_.exchange(true)) return;
    asio::post(control_, [this] { ArmDrainDeadline(); });
  }
  // From any thread, after a fatal error: close every connection now.
  void Abort() {
    stopping_.store(true);
    for (auto& w : workers_) asio::post(w->io(), [w = w.get()] { w->CloseAll(); });
  }
  // Cycle mode: with no producer left consumers would block forever, and with no consumer
  // left the -n condition can never be met, so either ends the run.
  void RoleClosed(Connection::Role role) {
    if (opt_.mode != Mode::kCycle) return;
    auto& left = role == Connection::Role::kProducer ? producers_left_ : consumers_left_;
    if (left.fetch_sub(1) == 1) RequestStop();
  }

 private:
  void Build();
  void WaitSignal();
  void Tick();
  void ArmDrainDeadline();
  void WorkerDone();
  void Fatal(std::string message);
  uint64_t JobsSoFar() const;
  int Report();

  const Options& opt_;
  const Commands commands_;
  Budget budget_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> producers_left_{0};  // cycle mode: open producer connections
  std::atomic<int> consumers_left_{0};  // cycle mode: open consumer connections
  std::atomic<int> connected_{0};
  int total_connections_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;  // fixed once threads start

  // Control thread (main) only.
  asio::io_context control_;
  asio::signal_set signals_;
  asio::steady_timer duration_timer_;
  asio::steady_timer progress_timer_;
  asio::steady_timer deadline_timer_;  // connect deadline, then drain deadline
  size_t workers_done_ = 0;
  bool interrupted_ = false;
  std::string fatal_;  // a failure the control thread detected (timeouts)
  uint64_t start_ns_ = 0;
  uint64_t end_ns_ = 0;
  uint64_t last_tick_jobs_ = 0;
};

// Deadlines that turn a dead or stuck server into a report instead of a hang.
constexpr auto kConnectDeadline = std::chrono::seconds(5);
constexpr auto kDrainDeadline = std::chrono::seconds(3);

void Worker::Closed(Connection::Role role) { bench_.RoleClosed(role); }

// ---------------------------------------------------------------------------------------
// Connection implementation

Connection::Connection(Worker& worker, Role role, int queue)
    : worker_(worker),
      role_(role),
      queue_(queue),
      socket_(worker.io()),
      reader_(redisReaderCreate()),
      in_(new char[kReadSize]) {
  // Keep the reader's buffer between replies instead of freeing it above 16 KB.
  reader_->maxbuf = 0;
  pending_.reserve(static_cast<size_t>(worker.bench().opt().pipeline) * 2);
}

void Connection::Start(const tcp::resolver::results_type& endpoints) {
  asio::async_connect(socket_, endpoints, [this](const std::error_code& ec, const tcp::endpoint&) {
    if (closed_) return;
    if (ec) return Fail("cannot connect: " + ec.message());
    std::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);  // batches are small and latency counts
    worker_.bench().Connected();
    Read();
    Issue();
  });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  socket_.close(ignored);  // cancels the pending read and write
  worker_.Closed(role_);
}

void Connection::Fail(std::string_view what) {
  const Options& opt = worker_.bench().opt();
  worker_.Error(opt.host + ":" + std::to_string(opt.port) + ": " + std::string(what));
  Close();
  worker_.bench().Abort();
}

void Connection::Issue() {
  Bench& bench = worker_.bench();
  const Options& opt = bench.opt();
  const Commands& cmds = bench.commands();
  out_.clear();
  pending_.clear();
  replied_ = 0;
  if (ack_cmds_ > 0) {
    out_.swap(acks_);  // acks_ takes over the cleared buffer
    pending_.insert(pending_.end(), static_cast<size_t>(ack_cmds_), Pending{Kind::kAck, 0});
    ack_cmds_ = 0;
  }
  if (bench.stopping()) done_ = true;
  const uint64_t now = NowNs();
  if (!done_) {
    switch (role_) {
      case Role::kProducer: {
        const int64_t n =
            opt.mode == Mode::kProduce ? bench.budget().Claim(opt.pipeline) : opt.pipeline;
        const std::string& cmd = cmds.produce[static_cast<size_t>(queue_)];
        const size_t offset = cmds.body_offset[static_cast<size_t>(queue_)];
        for (int64_t i = 0; i < n; ++i) {
          const size_t base = out_.size();
          out_ += cmd;
          if (opt.mode == Mode::kCycle) WriteStamp(out_.data() + base + offset, now);
          pending_.push_back({Kind::kProduce, 0});
        }
        if (n == 0) done_ = true;
        break;
      }
      case Role::kConsumer:
      case Role::kBlockingConsumer: {
        // A blocking fetch holds the connection until it is served, so more than one in
        // flight would only queue behind it.
        const int fetches = role_ == Role::kConsumer ? opt.pipeline : 1;
        int64_t claimed = bench.budget().Claim(int64_t{fetches} * opt.count);
        if (claimed == 0) done_ = true;
        while (claimed > 0) {
          const int n = static_cast<int>(std::min<int64_t>(claimed, opt.count));
          cmds.AppendFetch(opt, out_, queue_, n);
          pending_.push_back({Kind::kFetch, n});
          claimed -= n;
        }
        break;
      }
    }
  }
  if (pending_.empty()) return Close();
  sent_ns_ = now;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_),
                    [this](const std::error_code& ec, size_t) { OnWrite(ec); });
}

void Connection::OnWrite(const std::error_code& ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) return Fail("write failed: " + ec.message());
  // Normally the last reply comes after this; if it came first, the batch is over.
  if (replied_ == pending_.size()) Issue();
}

void Connection::Read() {
  socket_.async_read_some(asio::buffer(in_.get(), kReadSize),
                          [this](const std::error_code& ec, size_t n) { OnRead(ec, n); });
}

void Connection::OnRead(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec == asio::error::eof) return Fail("server closed the connection");
  if (ec) return Fail("read failed: " + ec.message());
  if (redisReaderFeed(reader_, in_.get(), n) != REDIS_OK) return Fail(reader_->errstr);
  // One clock reading for every reply in this read: they all arrived together.
  const uint64_t now = NowNs();
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      return Fail(std::string("protocol error: ") + reader_->errstr);
    }
    if (reply == nullptr) break;
    if (replied_ == pending_.size()) {
      freeReplyObject(reply);
      return Fail("reply to a command never sent");
    }
    HandleReply(*static_cast<redisReply*>(reply), now);
    freeReplyObject(reply);
    if (++replied_ == pending_.size() && !writing_) Issue();
    if (closed_) return;
  }
  Read();
}

void Connection::HandleReply(const redisReply& reply, uint64_t now) {
  const Pending& p = pending_[replied_];
  Counters& counters = worker_.counters();
  const bool cycle = worker_.bench().opt().mode == Mode::kCycle;
  if (reply.type == REDIS_REPLY_ERROR) {
    // Whatever the command, repeating it would most likely fail the same way: this
    // connection sends nothing new, and the run reports the error and exits 1.
    worker_.Error(std::string_view(reply.str, reply.len));
    if (p.kind == Kind::kFetch) worker_.bench().budget().Return(p.claim);
    done_ = true;
    if (!cycle) worker_.Worked(now);
    return;
  }
  switch (p.kind) {
    case Kind::kProduce:
      Bump(counters.produced);
      break;
    case Kind::kAck:
      // In cycle mode an ACK's reply is no job moved, and it may come late: it rides in
      // front of a blocking GETJOB, and disque-server holds the replies of a pipeline
      // until its blocking command is done.
      if (cycle) return;
      break;
    case Kind::kFetch: {
      const int64_t got = HandleFetch(reply, now);
      if (got < 0) {
        worker_.Error("unexpected reply type " + std::to_string(reply.type) + " to a fetch");
        worker_.bench().budget().Return(p.claim);
        done_ = true;
        return;
      }
      Bump(counters.consumed, static_cast<uint64_t>(got));
      if (got < p.claim) worker_.bench().budget().Return(p.claim - got);
      // An empty queue ends a consume-mode connection. In cycle mode it is a timeout: no
      // job moved, so it must not stretch the measured time.
      if (got == 0 && role_ == Role::kConsumer) done_ = true;
      if (got == 0 && cycle) return;
      break;
    }
  }
  worker_.Worked(now);
  // Cycle mode measures jobs end to end (in Received), not commands.
  if (!cycle) worker_.latency().Record(now - sent_ns_);
}

// Returns the number of jobs in a fetch reply (collecting their IDs for the ACK and, in
// cycle mode, their end-to-end latency), or -1 if the reply has an unexpected shape.
int64_t Connection::HandleFetch(const redisReply& reply, uint64_t now) {
  if (reply.type == REDIS_REPLY_NIL) return 0;  // NOHANG on an empty queue, or a timeout
  if (reply.type != REDIS_REPLY_ARRAY) return -1;
  const Options& opt = worker_.bench().opt();
  if (opt.redis) {
    // RPOP q k: [body, ...]. BLMPOP: [key, [body, ...]].
    const redisReply* list = &reply;
    if (opt.mode == Mode::kCycle) {
      if (reply.elements != 2 || reply.element[1]->type != REDIS_REPLY_ARRAY) return -1;
      list = reply.element[1];
    }
    for (size_t i = 0; i < list->elements; ++i) Received(now, *list->element[i]);
    return static_cast<int64_t>(list->elements);
  }
  // GETJOB: [[queue, id, body], ...]. Checked whole before any ID goes into acks_, which
  // must only ever hold complete commands. One ACKJOB per reply, as a worker would send.
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply& job = *reply.element[i];
    if (job.type != REDIS_REPLY_ARRAY || job.elements < 3 ||
        job.element[1]->type != REDIS_REPLY_STRING || job.element[2]->type != REDIS_REPLY_STRING) {
      return -1;
    }
  }
  if (reply.elements == 0) return 0;
  AppendHeader(acks_, '*', reply.elements + 1);
  AppendBulk(acks_, worker_.bench().commands().ack_name);
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply& job = *reply.element[i];
    AppendBulk(acks_, std::string_view(job.element[1]->str, job.element[1]->len));
    Received(now, *job.element[2]);
  }
  ++ack_cmds_;
  return static_cast<int64_t>(reply.elements);
}

// A job body arrived: in cycle mode, record how long ago its producer wrote it. Jobs
// stamped before this run started (left over from an earlier run, whose producers always
// overshoot) are counted but not timed: their age says nothing about this run.
void Connection::Received(uint64_t now, const redisReply& body) {
  if (worker_.bench().opt().mode != Mode::kCycle) return;
  uint64_t stamp = 0;
  if (ReadStamp(body.str, body.len, &stamp) && stamp >= worker_.bench().start_ns() &&
      stamp <= now) {
    worker_.latency().Record(now - stamp);
  }
}

// ---------------------------------------------------------------------------------------
// Bench implementation

void Bench::Build() {
  std::vector<std::pair<Connection::Role, int>> plan;  // role and queue of each connection
  if (opt_.mode == Mode::kCycle) {
    for (int i = 0; i < opt_.producers; ++i)
      plan.emplace_back(Connection::Role::kProducer, i % opt_.queues);
    for (int i = 0; i < opt_.consumers; ++i)
      plan.emplace_back(Connection::Role::kBlockingConsumer, i % opt_.queues);
    producers_left_ = opt_.producers;
    consumers_left_ = opt_.consumers;
  } else {
    const auto role =
        opt_.mode == Mode::kProduce ? Connection::Role::kProducer : Connection::Role::kConsumer;
    for (int i = 0; i < opt_.connections; ++i) plan.emplace_back(role, i % opt_.queues);
  }
  total_connections_ = static_cast<int>(plan.size());
  const size_t threads = std::min<size_t>(static_cast<size_t>(opt_.threads), plan.size());
  for (size_t t = 0; t < threads; ++t) workers_.push_back(std::make_unique<Worker>(*this));
  // Round robin, so that in cycle mode every thread gets producers and consumers alike.
  for (size_t i = 0; i < plan.size(); ++i) {
    workers_[i % threads]->Add(plan[i].first, plan[i].second);
  }
}

int Bench::Run() {
  std::error_code ec;
  tcp::resolver resolver(control_);
  const auto endpoints = resolver.resolve(opt_.host, std::to_string(opt_.port), ec);
  if (ec) {
    std::fprintf(stderr, "disque-benchmark: cannot resolve %s: %s\n", opt_.host.c_str(),
                 ec.message().c_str());
    return 1;
  }
  Build();
  start_ns_ = NowNs();
  // Connects are started before the threads run, from here: an io_context that is not
  // running yet may be given work from any thread.
  for (auto& w : workers_) w->Start(endpoints);
  std::vector<std::thread> threads;
  for (auto& w : workers_) {
    threads.emplace_back([this, w = w.get()] {
      w->io().run();  // returns once all its connections are closed
      asio::post(control_, [this] { WorkerDone(); });
    });
  }
  WaitSignal();
  if (opt_.duration > 0) {
    duration_timer_.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(opt_.duration)));
    duration_timer_.async_wait([this](const std::error_code& e) {
      if (!e) RequestStop();
    });
  }
  if (opt_.progress) {
    progress_timer_.expires_after(std::chrono::seconds(1));
    progress_timer_.async_wait([this](const std::error_code& e) {
      if (!e) Tick();
    });
  }
  deadline_timer_.expires_after(kConnectDeadline);
  deadline_timer_.async_wait([this](const std::error_code& e) {
    if (!e && connected_.load() < total_connections_ && !stopping()) {
      Fatal("timed out connecting to " + opt_.host + ":" + std::to_string(opt_.port));
    }
  });
  control_.run();  // until the last worker is done
  for (auto& t : threads) t.join();
  end_ns_ = start_ns_;
  for (const auto& w : workers_) end_ns_ = std::max(end_ns_, w->last_work_ns());
  return Report();
}

void Bench::WaitSignal() {
  signals_.async_wait([this](const std::error_code& ec, int) {
    if (ec) return;
    if (!interrupted_) {
      // First signal: stop and report what was measured. A second one skips the drain.
      interrupted_ = true;
      RequestStop();
      WaitSignal();
    } else {
      Abort();
    }
  });
}

uint64_t Bench::JobsSoFar() const {
  uint64_t jobs = 0;
  for (const auto& w : workers_) {
    const Counters& c = w->counters();
    jobs += (opt_.mode == Mode::kProduce ? c.produced : c.consumed).load(std::memory_order_relaxed);
  }
  return jobs;
}

void Bench::Tick() {
  const uint64_t jobs = JobsSoFar();
  std::fprintf(stderr, "%7.1f s  %12llu jobs  %10llu jobs/s\n",
               static_cast<double>(NowNs() - start_ns_) / 1e9,
               static_cast<unsigned long long>(jobs),
               static_cast<unsigned long long>(jobs - last_tick_jobs_));
  last_tick_jobs_ = jobs;
  progress_timer_.expires_after(std::chrono::seconds(1));
  progress_timer_.async_wait([this](const std::error_code& e) {
    if (!e) Tick();
  });
}

// After a stop every connection needs at most one round trip more; a server that does not
// answer in that time is not going to.
void Bench::ArmDrainDeadline() {
  if (workers_done_ == workers_.size()) return;
  deadline_timer_.expires_after(kDrainDeadline);
  deadline_timer_.async_wait([this](const std::error_code& e) {
    if (!e) Fatal("the server did not answer within 3 s of the stop; connections closed");
  });
}

void Bench::Fatal(std::string message) {
  if (fatal_.empty()) fatal_ = std::move(message);
  Abort();
}

void Bench::WorkerDone() {
  if (++workers_done_ < workers_.size()) return;
  // Nothing left to wait for: let control_.run() return.
  signals_.cancel();
  duration_timer_.cancel();
  progress_timer_.cancel();
  deadline_timer_.cancel();
}

// Printable in a JSON string.
std::string JsonEscape(std::string_view in) {
  std::string out;
  for (const char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

int Bench::Report() {
  Histogram latency;
  uint64_t produced = 0, consumed = 0, errors = fatal_.empty() ? 0 : 1;
  std::string first_error = fatal_;
  for (const auto& w : workers_) {
    latency.Merge(w->latency());
    produced += w->counters().produced.load();
    consumed += w->counters().consumed.load();
    errors += w->counters().errors.load();
    if (first_error.empty()) first_error = w->first_error();
  }
  const uint64_t jobs = opt_.mode == Mode::kProduce ? produced : consumed;
  const double seconds = static_cast<double>(end_ns_ - start_ns_) / 1e9;
  const double rate = seconds > 0 ? static_cast<double>(jobs) / seconds : 0;
  const auto us = [&](double q) { return static_cast<double>(latency.Quantile(q)) / 1e3; };
  const double max_us = static_cast<double>(latency.max()) / 1e3;
  const char* server = opt_.redis ? "redis" : "disque";

  if (!first_error.empty()) std::fprintf(stderr, "disque-benchmark: %s\n", first_error.c_str());
  if (interrupted_) std::fprintf(stderr, "disque-benchmark: interrupted\n");
  std::printf("mode         %s (%s %s:%d)\n", opt_.mode_name.c_str(), server, opt_.host.c_str(),
              opt_.port);
  if (opt_.mode == Mode::kCycle) {
    std::printf("connections  %d producers + %d consumers, %d thread(s)\n", opt_.producers,
                opt_.consumers, static_cast<int>(workers_.size()));
  } else {
    std::printf("connections  %d, %d thread(s)\n", opt_.connections,
                static_cast<int>(workers_.size()));
  }
  std::printf("pipeline     %d\n", opt_.pipeline);
  std::printf("body size    %d bytes, %d queue(s)\n", opt_.body_size, opt_.queues);
  std::printf("jobs         %llu (produced %llu, consumed %llu)\n",
              static_cast<unsigned long long>(jobs), static_cast<unsigned long long>(produced),
              static_cast<unsigned long long>(consumed));
  std::printf("seconds      %.3f\n", seconds);
  std::printf("jobs/s       %.1f\n", rate);
  std::printf("latency us   p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%s, %llu samples)\n",
              us(0.5), us(0.99), us(0.999), max_us,
              opt_.mode == Mode::kCycle ? "enqueue to dequeue" : "per command",
              static_cast<unsigned long long>(latency.total()));
  std::printf("errors       %llu\n", static_cast<unsigned long long>(errors));
  if (opt_.json) {
    std::printf(
        "{\"mode\":\"%s\",\"server\":\"%s\",\"connections\":%d,\"pipeline\":%d,"
        "\"body_size\":%d,\"jobs\":%llu,\"seconds\":%.3f,\"jobs_per_sec\":%.1f,"
        "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,"
        "\"produced\":%llu,\"consumed\":%llu",
        opt_.mode_name.c_str(), server,
        opt_.mode == Mode::kCycle ? opt_.producers + opt_.consumers : opt_.connections,
        opt_.pipeline, opt_.body_size, static_cast<unsigned long long>(jobs), seconds, rate,
        us(0.5), us(0.99), us(0.999), max_us, static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(produced), static_cast<unsigned long long>(consumed));
    if (!first_error.empty()) std::printf(",\"error\":\"%s\"", JsonEscape(first_error).c_str());
    std::printf("}\n");
  }
  std::fflush(stdout);
  return errors > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------
// Command line

// Returns the exit code when the process should end here (--help, a bad option), or -1.
int ParseOptions(int argc, char** argv, Options* opt) {
  CLI::App app{"Load generator for disque-server (and redis-server with --redis).",
               "disque-benchmark"};
  app.set_help_flag("--help", "Print this help and exit");  // -h is the host, as in redis-cli
  app.add_option("mode", opt->mode_name, "produce | consume | cycle")
      ->required()
      ->check(CLI::IsMember({"produce", "consume", "cycle"}));
  app.add_option("-h,--host", opt->host, "Server host")->capture_default_str();
  auto* port = app.add_option("-p,--port", opt->port, "Server port (6379 with --redis)")
                   ->check(CLI::Range(1, 65535))
                   ->capture_default_str();
  app.add_flag("--redis", opt->redis,
               "Drive redis-server: LPUSH / RPOP q k / LPUSH + BLMPOP 1 1 q RIGHT COUNT k");
  app.add_option("-c,--connections", opt->connections, "Connections (produce, consume)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-P,--pipeline", opt->pipeline, "Commands in flight per connection")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-d,--body-size", opt->body_size, "Job body bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--queues", opt->queues, "Queues q0..q<N-1>; connection i uses queue i % N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* jobs = app.add_option("-n,--jobs", opt->jobs,
                              "Stop after N jobs (produce: acknowledged ADDJOBs; consume: "
                              "consumed, or queues empty; cycle: consumed)")
                   ->check(CLI::PositiveNumber);
  auto* duration = app.add_option("-t,--duration", opt->duration, "Stop after this many seconds")
                       ->check(CLI::PositiveNumber);
  app.add_option("-k,--count", opt->count, "Jobs per GETJOB / RPOP / BLMPOP")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--fastack", opt->fastack, "FASTACK instead of ACKJOB");
  app.add_option("--producers", opt->producers, "Cycle mode producer connections")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--consumers", opt->consumers, "Cycle mode consumer connections")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--replicate", opt->replicate, "ADDJOB ... REPLICATE N")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", opt->threads, "Client threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  opt->progress = isatty(STDERR_FILENO) != 0;
  app.add_flag("--progress,!--no-progress", opt->progress,
               "A line per second on stderr (default: when stderr is a terminal)");
  app.add_flag("--json", opt->json, "Also print a JSON summary as the last line of stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }

  opt->mode = opt->mode_name == "produce"   ? Mode::kProduce
              : opt->mode_name == "consume" ? Mode::kConsume
                                            : Mode::kCycle;
  if (opt->redis && port->count() == 0) opt->port = 6379;
  if (jobs->count() == 0 && duration->count() == 0) opt->jobs = 100000;
  if (opt->mode == Mode::kCycle && opt->body_size < static_cast<int>(kStampDigits)) {
    std::fprintf(stderr, "disque-benchmark: cycle mode needs --body-size >= %zu (the timestamp)\n",
                 kStampDigits);
    return 1;
  }
  if (opt->redis && opt->replicate > 0) {
    std::fprintf(stderr, "disque-benchmark: --replicate has no Redis equivalent\n");
    return 1;
  }
  return -1;
}

}  // namespace
}  // namespace disque::bench

int main(int argc, char** argv) {
  disque::bench::Options opt;
  if (const int rc = disque::bench::ParseOptions(argc, argv, &opt); rc >= 0) return rc;
  disque::bench::Bench bench(opt);
  return bench.Run();
}
