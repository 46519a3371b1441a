#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/status.h"
#include "disque/config/config.h"
#include "disque/resp/writer.h"

namespace disque::server {

// Room in memory for a command that adds data (PROTOCOL.md 5; Server::MemoryRoomNow).
enum class MemoryRoom {
  kRoom,    // at most 95 % of maxmemory used, or no maxmemory
  kNoRoom,  // above it, and the policy evicts nothing
  kEvict,   // above it: eviction may make room (Server::FreeMemoryIfNeeded)
};

class Server;
class Shard;
class Client;

// Command flags, as COMMAND reports them (PROTOCOL.md 1.5 and 6.9).
enum CommandFlag : uint32_t {
  kWrite = 1 << 0,
  kReadonly = 1 << 1,
  kDenyOom = 1 << 2,
  kAdmin = 1 << 3,
  kRandom = 1 << 4,
  kLoading = 1 << 5,
  kSkipMonitor = 1 << 6,
  kFast = 1 << 7,
};

// What a handler works with: the arguments (views into the connection's input buffer,
// valid until the handler returns or its coroutine finishes), the reply writer, and the
// client, shard and server it runs for.
struct CommandContext {
  Server& server;
  Shard& shard;
  Client& client;
  std::span<const std::string_view> args;
  resp::ReplyWriter reply;

  // Writes `status` as an error reply ("-<CODE> <message>").
  void ReplyError(const Status& status);
};

using SyncHandler = void (*)(CommandContext&);
using AsyncHandler = asio::awaitable<void> (*)(CommandContext&);
// Runs the command at once when it can: true when it did (the reply is written); false,
// having written and changed nothing, when the async handler must run instead.
using TryHandler = bool (*)(CommandContext&);

// An entry of a command table. Exactly one of `sync`, `async` is set: handlers that only
// touch their own shard are plain functions; those that reach other shards are
// coroutines (see Shard::RunOn). An async command may also have `now` for its common
// case (the client's own shard, nothing to wait for), which runs without a coroutine
// frame (Client::ExecuteNow; docs/benchmarks.md item 22).
struct Command {
  std::string_view name;  // lowercase
  int arity;              // N: exactly N words; -N: at least N words
  uint32_t flags;
  SyncHandler sync = nullptr;
  AsyncHandler async = nullptr;
  TryHandler now = nullptr;
  size_t index = 0;       // position in the server's table (commandstats slot)
};

// The command family tables. Each family lives with its handlers.
std::span<const Command> ServerCommands();
std::span<const Command> JobCommands();
std::span<const Command> QueueCommands();
std::span<const Command> ClusterCommands();

// The server's command table: every family, with rename-command applied. Built once at
// startup and read-only afterwards, so every shard reads it without locks.
class CommandTable {
 public:
  // Builds the table, applying `renames` in order. An error is the fatal-config-error
  // text of the offending rename-command line.
  static Result<CommandTable> Build(const std::vector<config::RenameCommand>& renames);

  // Case-insensitive lookup by (possibly renamed) name; nullptr when unknown.
  const Command* Lookup(std::string_view name) const;

  // All commands, in table order (indexes 0..size-1).
  const std::vector<Command>& commands() const { return commands_; }

  // The name a command is reached by after renames (the table name otherwise).
  std::string_view VisibleName(const Command& cmd) const { return visible_names_[cmd.index]; }

  // Appends the COMMAND entry of `cmd` (6-element array).
  void WriteInfo(resp::ReplyWriter& reply, const Command& cmd) const;

 private:
  // Hash of a name as Lookup sees it: ASCII letters lowercased (FNV-1a).
  static uint64_t NameHash(std::string_view name);
  size_t Home(uint64_t hash) const { return static_cast<size_t>(hash >> lookup_shift_); }

  std::vector<Command> commands_;
  std::vector<std::string> visible_names_;  // by index, lowercase; "" = renamed away
  // Lookup's table, by NameHash of the visible name: open addressing, linear probing, a
  // power of two at most 1/4 full; each slot holds index + 1, 0 = empty. A std::string
  // key and std::hash in an unordered_map were 150 instructions per command, 4 % of an
  // ADDJOB's (docs/benchmarks.md item 23).
  std::vector<uint16_t> lookup_;
  int lookup_shift_ = 64;
};

}  // namespace disque::server
