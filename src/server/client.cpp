#include "disque/server/client.h"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "disque/common/clock.h"
#include "disque/common/strings.h"
#include "disque/resp/writer.h"
#include "disque/server/command.h"
#include "disque/server/replies.h"
#include "disque/server/server.h"
#include "disque/server/shard.h"

namespace disque::server {
namespace {

int64_t NowMs() { return SystemClock::Instance().MonotonicMs(); }

}  // namespace

Client::Client(Shard& shard, uint64_t id, net::Socket socket, bool is_unix)
    : shard_(shard),
      id_(id),
      conn_(std::move(socket), is_unix),
      addr_(net::PeerAddress(conn_.socket(), shard.config().unixsocket)),
      created_ms_(NowMs()),
      last_interaction_ms_(created_ms_) {}

void Client::Close() {
  conn_.Close();
  if (block_timer_ != nullptr) block_timer_->cancel();
}

asio::awaitable<void> Client::Run() {
  try {
    co_await Session();
  } catch (const std::exception& e) {
    spdlog::warn("Client {} session failed: {}", addr_, e.what());
  }
  conn_.Close();
  shard_.Forget(*this);  // frees this client after the coroutine returns
}

asio::awaitable<void> Client::Session() {
  ShardStats& stats = shard_.stats();
  bool need_input = true;
  while (true) {
    if (need_input) {
      const size_t n = co_await conn_.Read(parser_.bytes_wanted());
      if (n == 0) break;
      stats.net_input_bytes += n;
      last_interaction_ms_ = NowMs();
      // A query buffer past 1 GB closes the client without a reply (PROTOCOL.md 1.1).
      if (conn_.input().size() > resp::kMaxQueryBufLen) {
        spdlog::warn("Closing client that reached max query buffer length: {}", Describe(NowMs()));
        break;
      }
    }
    const InputState state = co_await ProcessInput();
    const bool written = co_await WriteReplies();
    if (!written) break;
    if (state == InputState::kClose || shard_.shutting_down()) break;
    need_input = state == InputState::kNeedInput;
  }
}

asio::awaitable<Client::InputState> Client::ProcessInput() {
  resp::ReplyWriter writer(conn_.output());
  batch_clock_valid_ = false;
  while (!close_after_reply_ && !conn_.closed()) {
    // Replies are flushed once they pass kFlushThreshold, so a long pipeline of big
    // replies (CLIENT LIST, COMMAND) is written in pieces, not built whole in memory.
    if (conn_.output().size() >= kFlushThreshold) co_return InputState::kFlushFirst;
    switch (parser_.Parse(conn_.input())) {
      case resp::RequestParser::Result::kNeedMore:
        co_return InputState::kNeedInput;
      case resp::RequestParser::Result::kError:
        writer.Error(parser_.error());
        close_after_reply_ = true;
        co_return InputState::kClose;
      case resp::RequestParser::Result::kRequest:
        // The argument views point into the input buffer, which is not touched until
        // Consume(): Execute may suspend, but this session does not read meanwhile.
        if (!parser_.args().empty()) {
          const Command* cmd = shard_.server().commands().Lookup(parser_.args()[0]);
          const Progress progress = ExecuteNow(parser_.args(), cmd);
          if (progress == Progress::kNotStarted) {
            co_await Execute(parser_.args(), cmd);
          } else if (progress == Progress::kHandlerNext) {
            co_await RunAsync(*cmd, parser_.args());
            EndRequest();
          }
        }
        conn_.Consume(parser_.consumed());
        break;
    }
  }
  co_return InputState::kClose;
}

asio::awaitable<void> Client::Execute(const std::vector<std::string_view>& args, const Command* cmd) {
  // CLIENT PAUSE: hold every command until the pause ends. Waits in slices so that a
  // pause extended meanwhile is honoured and a client closed meanwhile (CLIENT KILL,
  // shutdown) never runs its command.
  // paused_until_ms is 0 when no pause is pending, so commands read no clock here.
  while (shard_.paused_until_ms() != 0 && !conn_.closed()) {
    const int64_t remaining = shard_.paused_until_ms() - NowMs();
    if (remaining <= 0) {
      shard_.set_paused_until_ms(0);
      break;
    }
    asio::steady_timer timer(shard_.context());
    timer.expires_after(std::chrono::milliseconds(std::min<int64_t>(remaining, 100)));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (conn_.closed()) co_return;
  batch_clock_valid_ = false;  // a pause or an eviction may have made it old
  BeginRequest();
  co_await Dispatch(args, cmd);
  EndRequest();
}

Client::Progress Client::ExecuteNow(const std::vector<std::string_view>& args, const Command* cmd) {
  if (shard_.paused_until_ms() != 0) return Progress::kNotStarted;
  if (conn_.closed()) return Progress::kDone;  // as Execute: a closed client's request never runs
  if (cmd != nullptr && cmd->sync == nullptr && cmd->now == nullptr) return Progress::kNotStarted;
  const MemoryRoom memory = MemoryFor(cmd);
  if (memory == MemoryRoom::kEvict) return Progress::kNotStarted;
  BeginRequest();
  if (Admit(args, cmd, memory) == Admission::kRun && !RunNow(*cmd, args)) return Progress::kHandlerNext;
  EndRequest();
  return Progress::kDone;
}

MemoryRoom Client::MemoryFor(const Command* cmd) const {
  if (cmd == nullptr || !(cmd->flags & kDenyOom)) return MemoryRoom::kRoom;  // Admit does not ask
  return shard_.server().MemoryRoomNow(shard_.config());
}

void Client::BeginRequest() {
  reply_start_ = conn_.output().size();
  skip_current_ = skip_next_;
  skip_next_ = false;
}

void Client::EndRequest() {
  // CLIENT REPLY OFF drops every reply, errors and its own +OK included; SKIP drops its
  // own reply and the next request's, whatever that request turns out to be.
  std::string& out = conn_.output();
  if (reply_mode_ == ReplyMode::kOff || skip_current_) out.resize(reply_start_);
  if (reply_mode_ == ReplyMode::kSkipNext) {
    out.resize(reply_start_);
    reply_mode_ = ReplyMode::kOn;
    skip_next_ = true;
  }
}

asio::awaitable<bool> Client::WriteReplies() {
  // The replies may claim AOF writes: they go once the AOF has them.
  if (aof_wait_pos_ != 0) {
    const uint64_t pos = aof_wait_pos_;
    co_await shard_.AwaitAof(pos);
    if (aof_wait_pos_ == pos) aof_wait_pos_ = 0;
  }
  if (drop_reply_) conn_.output().clear();
  const config::Config& cfg = shard_.config();
  if (EnforceOutputLimits(cfg.client_obuf_hard, 0, 0, NowMs())) co_return false;
  const size_t n = conn_.output().size();
  const bool written = co_await conn_.Flush();
  if (!written) co_return false;
  output_limit_.Reset();
  shard_.stats().net_output_bytes += n;
  last_interaction_ms_ = NowMs();  // a slow reader of a big reply is not idle
  co_return true;
}

asio::awaitable<void> Client::FlushBeforeBlocking() {
  std::string& out = conn_.output();
  if (reply_start_ == 0) co_return;
  // Whatever the running command wrote so far stays for its own reply.
  std::string current = out.substr(reply_start_);
  out.resize(reply_start_);
  const bool written = co_await WriteReplies();
  out = std::move(current);
  reply_start_ = 0;
  if (!written) Close();
}

void Client::set_reply_mode(ReplyMode mode) {
  switch (mode) {
    case ReplyMode::kOn:  // ON also cancels a pending SKIP, so its own +OK is sent
      skip_current_ = skip_next_ = false;
      reply_mode_ = mode;
      break;
    case ReplyMode::kOff:
      reply_mode_ = mode;
      break;
    case ReplyMode::kSkipNext:  // ignored while OFF, as in Disque
      if (reply_mode_ != ReplyMode::kOff) reply_mode_ = mode;
      break;
  }
}

asio::awaitable<void> Client::Dispatch(const std::vector<std::string_view>& args, const Command* cmd) {
  Admission admission = Admit(args, cmd, MemoryFor(cmd));
  if (admission == Admission::kEvict) {
    const bool room = co_await shard_.server().FreeMemoryIfNeeded(shard_);
    admission = Admit(args, cmd, room ? MemoryRoom::kRoom : MemoryRoom::kNoRoom);
  }
  if (admission != Admission::kRun || RunNow(*cmd, args)) co_return;
  co_await RunAsync(*cmd, args);
}

asio::awaitable<void> Client::RunAsync(const Command& cmd, const std::vector<std::string_view>& args) {
  last_command_ = cmd.name.data();  // table names are static and NUL-terminated
  const auto start = CommandStart();
  resp::ReplyWriter writer(conn_.output());
  CommandContext ctx{shard_.server(), shard_, *this, std::span<const std::string_view>(args), writer};
  try {
    co_await cmd.async(ctx);
  } catch (const std::exception& e) {
    HandlerFailed(cmd, e);
  }
  Account(cmd, ctx.args, start);
}

bool Client::RunNow(const Command& cmd, const std::vector<std::string_view>& args) {
  if (cmd.sync == nullptr && cmd.now == nullptr) return false;
  last_command_ = cmd.name.data();  // table names are static and NUL-terminated
  const auto start = CommandStart();
  resp::ReplyWriter writer(conn_.output());
  CommandContext ctx{shard_.server(), shard_, *this, std::span<const std::string_view>(args), writer};
  try {
    if (cmd.sync != nullptr) {
      cmd.sync(ctx);
    } else if (!cmd.now(ctx)) {
      return false;  // RunAsync sets last_command_ again and times the handler
    }
  } catch (const std::exception& e) {
    HandlerFailed(cmd, e);
  }
  Account(cmd, ctx.args, start);
  return true;
}

Client::Admission Client::Admit(const std::vector<std::string_view>& args, const Command* cmd, MemoryRoom memory) {
  Server& server = shard_.server();
  resp::ReplyWriter writer(conn_.output());

  // QUIT is handled before lookup and needs no AUTH (PROTOCOL.md 1.1).
  if (EqualsIgnoreCase(args[0], "quit")) {
    writer.Status(replies::kOk);
    CloseAfterReply();
    return Admission::kReplied;
  }
  if (cmd == nullptr) {
    std::string text(replies::kUnknownCommandPrefix);
    text.append(args[0]).append("'");
    writer.Error(text);
    return Admission::kReplied;
  }
  const auto argc = static_cast<int>(args.size());
  if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
    std::string text(replies::kWrongArityPrefix);
    text.append(cmd->name).append("' command");
    writer.Error(text);
    return Admission::kReplied;
  }
  if (!authenticated_ && !shard_.config().requirepass.empty() && cmd->name != "auth") {
    writer.Error(replies::kNoAuth);
    return Admission::kReplied;
  }

  // Memory (PROTOCOL.md 1.2 step 4 and 5): above 95 % of maxmemory, commands that add
  // data first try to evict; if that cannot bring usage down they are refused.
  if (cmd->flags & kDenyOom) {
    if (memory == MemoryRoom::kEvict) return Admission::kEvict;
    if (memory == MemoryRoom::kNoRoom) {
      writer.Error(replies::kOom);
      return Admission::kReplied;
    }
  }
  // Step 5: the AOF cannot be written; step 6: it is still being loaded.
  if (const int err = server.persistence().write_error(); err != 0 && ((cmd->flags & kWrite) || cmd->name == "ping")) {
    writer.Error(std::string(replies::kMisconfPrefix) + std::strerror(err));
    return Admission::kReplied;
  }
  if (server.loading() && !(cmd->flags & kLoading)) {
    writer.Error(replies::kLoading);
    return Admission::kReplied;
  }
  return Admission::kRun;
}

void Client::HandlerFailed(const Command& cmd, const std::exception& e) {
  // A handler that throws has a bug; the client still gets an answer and the server
  // goes on (exceptions never cross the event loop).
  spdlog::warn("Command '{}' failed: {}", cmd.name, e.what());
  std::string& out = conn_.output();
  out.resize(reply_start_);
  resp::ReplyWriter(out).Error(std::string("ERR internal error executing '") + std::string(cmd.name) + "': " + e.what());
}

void Client::Account(const Command& cmd, std::span<const std::string_view> args,
                     std::chrono::steady_clock::time_point start) {
  const auto end = std::chrono::steady_clock::now();
  batch_clock_ = end;
  batch_clock_valid_ = true;
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
  shard_.MaybeLogSlow(args, usec);
  ShardStats& stats = shard_.stats();
  ++stats.commands_processed;
  ++stats.commands[cmd.index].calls;
  stats.commands[cmd.index].usec += static_cast<uint64_t>(usec);
}

bool Client::EnforceOutputLimits(int64_t hard, int64_t soft, int64_t soft_seconds, int64_t now_ms) {
  if (conn_.closed()) return false;
  const auto pending = static_cast<int64_t>(conn_.pending_output());
  if (!output_limit_.Over(pending, hard, soft, soft_seconds, now_ms)) return false;
  // Redis's words, so that operators find the line they know.
  spdlog::warn("Client {} closed for overcoming of output buffer limits.", Describe(now_ms));
  ++shard_.stats().output_limit_disconnections;
  Close();
  return true;
}

std::string Client::Describe(int64_t now_ms) {
  std::string flags;  // in Disque's order
  if (blocked()) flags += 'b';
  if (close_after_reply_) flags += 'c';
  if (conn_.is_unix()) flags += 'U';
  if (flags.empty()) flags = "N";
  const size_t qbuf = conn_.input().size();
  std::string line;
  line.reserve(256);
  line += "id=" + std::to_string(id_);
  line += " addr=" + addr_;
  line += " fd=" + std::to_string(conn_.fd());
  line += " name=" + name_;
  line += " age=" + std::to_string((now_ms - created_ms_) / 1000);
  line += " idle=" + std::to_string((now_ms - last_interaction_ms_) / 1000);
  line += " flags=" + flags;
  line += " qbuf=" + std::to_string(qbuf);
  line += " qbuf-free=" + std::to_string(conn_.input_capacity() - qbuf);
  line += " obl=" + std::to_string(conn_.pending_output());
  line += " oll=0 omem=0";
  line += conn_.writing() ? " events=rw" : " events=r";
  line += " cmd=";
  line += last_command_;
  return line;
}

}  // namespace disque::server
