#pragma once

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>

#include "disque/common/clock.h"
#include "disque/net/connection.h"
#include "disque/resp/parser.h"
#include "disque/server/command.h"

namespace disque::server {

class Shard;
struct Command;

// The client-output-buffer-limit rule for one client (Redis's, with Disque's single
// "normal" class): over when the pending output is above `hard`, or has been above
// `soft` for more than `soft_seconds` as seen by successive checks (so with 0 seconds,
// at the second check that finds it above). A check at or below `soft`, or Reset() (a
// write completed: nothing is pending), starts the count again. 0 is no limit.
class OutputLimit {
 public:
  bool Over(int64_t pending, int64_t hard, int64_t soft, int64_t soft_seconds, int64_t now_ms) {
    if (soft > 0 && pending > soft) {
      if (soft_since_ms_ < 0) {
        soft_since_ms_ = now_ms;
      } else if (now_ms - soft_since_ms_ > SecondsToMsSaturating(soft_seconds)) {
        return true;
      }
    } else {
      soft_since_ms_ = -1;
    }
    return hard > 0 && pending > hard;
  }
  void Reset() { soft_since_ms_ = -1; }

 private:
  int64_t soft_since_ms_ = -1;  // the first check that saw the soft limit passed; -1 = below
};

// One client connection and its session state. Owned by its shard and touched only by
// the shard's thread.
//
// The session (Run) loops: read -> parse and execute every complete command in the
// buffer, in order, appending all replies to one output buffer -> one write. A command
// whose handler awaits (a cross-shard operation) suspends the session; later pipelined
// commands wait, so replies stay in command order.
//
// States: running (reading or executing) -> closing (close_after_reply: a protocol
// error, QUIT, SHUTDOWN, CLIENT KILL of itself; the pending replies are written, then
// the session ends) -> gone (Shard::Forget deletes it). Close() from elsewhere on the
// shard (CLIENT KILL, idle timeout, shutdown) cancels the socket and the session ends at
// its next await.
class Client {
 public:
  Client(Shard& shard, uint64_t id, net::Socket socket, bool is_unix);

  asio::awaitable<void> Run();
  // Closes the socket. Never frees or unregisters the client synchronously (its session
  // notices at its next await, and Asio runs no handler inline), so callers may close
  // clients while iterating over Shard::clients().
  void Close();

  uint64_t id() const { return id_; }
  Shard& shard() { return shard_; }
  net::Connection& connection() { return conn_; }

  const std::string& addr() const { return addr_; }
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  bool authenticated() const { return authenticated_; }
  void set_authenticated(bool v) { authenticated_ = v; }

  // Ends the session after the replies already produced are written.
  void CloseAfterReply() { close_after_reply_ = true; }
  bool closing() const { return close_after_reply_; }
  // Like CloseAfterReply, but the reply of the current command is dropped too (SHUTDOWN
  // closes with no reply).
  void CloseWithoutReply() {
    close_after_reply_ = true;
    drop_reply_ = true;
  }

  // CLIENT REPLY ON|OFF|SKIP.
  enum class ReplyMode { kOn, kOff, kSkipNext };
  void set_reply_mode(ReplyMode mode);

  int64_t created_ms() const { return created_ms_; }
  int64_t last_interaction_ms() const { return last_interaction_ms_; }
  const char* last_command() const { return last_command_; }
  // A client blocked in GETJOB waits on a timer of its own session; Close() cancels it
  // so that a killed or shut-down client wakes at once.
  bool blocked() const { return block_timer_ != nullptr; }
  void set_block_timer(asio::steady_timer* timer) { block_timer_ = timer; }

  // A command of this batch journaled records up to `pos`: the batch's replies are
  // written only once the AOF writer released it (Shard::AwaitAof).
  void NoteAofPosition(uint64_t pos) { aof_wait_pos_ = std::max(aof_wait_pos_, pos); }

  // Called by a command about to block: sends the replies of the commands pipelined
  // before it (once the AOF has what they claim), so that the client has them now and
  // not when this command returns, as Redis and Disque do. Closes the client if the
  // write fails.
  asio::awaitable<void> FlushBeforeBlocking();

  // The CLIENT LIST line of this client (without the trailing newline).
  std::string Describe(int64_t now_ms);

  // client-output-buffer-limit (`cfg.client_obuf_*`, OutputLimit): true when the output
  // the peer has not taken passed the limit; then the client is closed and the reason
  // logged. Called by the shard's cron for every client, and with the hard limit only
  // before each write (a batch bigger than the soft limit is fine if the peer takes it;
  // the soft count restarts when a write completes). Since the session reads no input
  // while a write is pending, a client that does not read holds at most one batch of
  // replies (kFlushThreshold plus the last reply) whatever the limits; the limits free
  // its connection.
  bool EnforceOutputLimits(int64_t hard, int64_t soft, int64_t soft_seconds, int64_t now_ms);

 private:
  // The read-execute-write loop; Run() wraps it so that the client is always closed
  // and forgotten, whatever happens.
  asio::awaitable<void> Session();
  // Executes the complete requests in the input buffer, in order, until it needs more
  // input, the output should be flushed first, or the session must end.
  enum class InputState {
    kNeedInput,   // every complete request ran: read more
    kFlushFirst,  // the output passed kFlushThreshold: write, then go on with the input
    kClose,       // the session ends after this write
  };
  static constexpr size_t kFlushThreshold = 64 * 1024;
  asio::awaitable<InputState> ProcessInput();
  // Writes the output buffer, once the AOF has what its replies claim (CLIENT REPLY and
  // killed clients drop it instead); false if the write failed.
  asio::awaitable<bool> WriteReplies();
  // Runs one request: CLIENT PAUSE, then Dispatch, then CLIENT REPLY suppression.
  // `cmd` is the command args[0] names (CommandTable::Lookup), nullptr if none.
  asio::awaitable<void> Execute(const std::vector<std::string_view>& args, const Command* cmd);
  // Execute without a coroutine, as far as the request allows: no CLIENT PAUSE pending,
  // no eviction to wait for, and a synchronous handler or a `now` handler that can
  // finish at once; nearly every request. A coroutine frame costs an allocation, a free
  // and its resumptions: an ADDJOB took five (docs/benchmarks.md item 22).
  enum class Progress {
    kDone,         // the request ran
    kNotStarted,   // nothing done: Execute it
    kHandlerNext,  // admitted (BeginRequest, Admit): RunAsync, then EndRequest
  };
  Progress ExecuteNow(const std::vector<std::string_view>& args, const Command* cmd);
  // An admitted request's async handler, timed and counted.
  asio::awaitable<void> RunAsync(const Command& cmd, const std::vector<std::string_view>& args);
  // An admitted request's handler when it runs at once (a plain handler, or a `now`
  // handler that takes the request), timed and counted; false, having done nothing,
  // when the request needs RunAsync.
  bool RunNow(const Command& cmd, const std::vector<std::string_view>& args);
  // Lookup, arity and AUTH checks (PROTOCOL.md 1.2), the handler, command statistics.
  asio::awaitable<void> Dispatch(const std::vector<std::string_view>& args, const Command* cmd);
  // Dispatch's parts that never suspend. Admit runs the checks before the handler, in
  // PROTOCOL.md 1.2's order, given the command looked up (nullptr: unknown) and the
  // memory verdict: kRun, or kReplied when a check answered, or kEvict when a denyoom
  // command must wait for FreeMemoryIfNeeded.
  enum class Admission { kRun, kReplied, kEvict };
  // The memory verdict Admit needs for `cmd` (only denyoom commands are asked about).
  MemoryRoom MemoryFor(const Command* cmd) const;
  Admission Admit(const std::vector<std::string_view>& args, const Command* cmd, MemoryRoom memory);
  // Around each request: where its reply starts, and CLIENT REPLY OFF / SKIP after it.
  void BeginRequest();
  void EndRequest();
  // A handler threw: the client gets an error in place of the reply, the server goes on.
  void HandlerFailed(const Command& cmd, const std::exception& e);
  // Counts a command that started at `start` (commandstats, SLOWLOG) and notes when it
  // ended: the start of the next command of the same batch (CommandStart).
  void Account(const Command& cmd, std::span<const std::string_view> args,
               std::chrono::steady_clock::time_point start);
  // When the command about to run starts: the end of the previous one of this batch of
  // requests, read once for both (a clock read is a vDSO call of about 30 ns here, and
  // every command needs two), or now at a batch's first and after Execute's waits. A
  // pipelined command's time (commandstats, SLOWLOG) so also covers its own parsing and
  // lookup, and any request refused since the last one counted (unknown command, arity,
  // NOAUTH, OOM): well under a microsecond each.
  std::chrono::steady_clock::time_point CommandStart() {
    return batch_clock_valid_ ? batch_clock_ : std::chrono::steady_clock::now();
  }

  Shard& shard_;
  const uint64_t id_;
  net::Connection conn_;
  resp::RequestParser parser_;
  std::string addr_;
  std::string name_;
  int64_t created_ms_;
  int64_t last_interaction_ms_;
  asio::steady_timer* block_timer_ = nullptr;  // while blocked in GETJOB
  uint64_t aof_wait_pos_ = 0;  // NoteAofPosition: 0 = nothing to wait for
  // Where the running command's reply starts in the output buffer (replies before it
  // belong to earlier commands of the batch).
  size_t reply_start_ = 0;
  const char* last_command_ = "NULL";  // static table name, or "NULL"
  // The end of the last command Account counted, valid until ProcessInput starts on new
  // input (time went by waiting for it).
  std::chrono::steady_clock::time_point batch_clock_{};
  bool batch_clock_valid_ = false;
  ReplyMode reply_mode_ = ReplyMode::kOn;
  bool authenticated_ = false;
  bool skip_next_ = false;     // CLIENT REPLY SKIP: drop the next command's reply
  bool skip_current_ = false;  // the command running now is the one SKIP applies to
  bool close_after_reply_ = false;
  bool drop_reply_ = false;
  OutputLimit output_limit_;
};

}  // namespace disque::server
