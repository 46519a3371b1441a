#include <array>

#include "disque/common/strings.h"
#include "disque/server/command.h"

namespace disque::server {

void CommandContext::ReplyError(const Status& status) {
  std::string text(CodePrefix(status.code()));
  if (!status.message().empty()) text.append(" ").append(status.message());
  reply.Error(text);
}

Result<CommandTable> CommandTable::Build(const std::vector<config::RenameCommand>& renames) {
  CommandTable table;
  for (auto family : {ServerCommands(), JobCommands(), QueueCommands(), ClusterCommands()}) {
    for (const Command& cmd : family) {
      table.commands_.push_back(cmd);
      table.commands_.back().index = table.commands_.size() - 1;
      table.visible_names_.emplace_back(cmd.name);
      table.by_name_.emplace(std::string(cmd.name), table.commands_.size() - 1);
    }
  }
  // rename-command, in file order, exactly as Disque checks it while reading the file.
  for (const config::RenameCommand& rename : renames) {
    auto it = table.by_name_.find(ToLower(rename.from));
    if (it == table.by_name_.end()) {
      return Status::Error(config::FatalConfigError(rename.line_no, rename.line, "No such command in rename-command"));
    }
    const size_t index = it->second;
    if (rename.to.empty()) {
      table.by_name_.erase(it);
      table.visible_names_[index].clear();
      continue;
    }
    std::string to = ToLower(rename.to);
    if (table.by_name_.contains(to)) {
      return Status::Error(config::FatalConfigError(rename.line_no, rename.line, "Target command name already exists"));
    }
    table.by_name_.erase(it);
    table.visible_names_[index] = to;
    table.by_name_.emplace(std::move(to), index);
  }
  return table;
}

const Command* CommandTable::Lookup(std::string_view name) const {
  // Command names are short; lowercase into a stack buffer to avoid an allocation.
  char buf[32];
  if (name.size() > sizeof buf) return nullptr;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  auto it = by_name_.find(std::string(buf, name.size()));
  return it == by_name_.end() ? nullptr : &commands_[it->second];
}

void CommandTable::WriteInfo(resp::ReplyWriter& reply, const Command& cmd) const {
  static constexpr std::array<std::pair<uint32_t, std::string_view>, 8> kFlagNames{{
      {kWrite, "write"},
      {kReadonly, "readonly"},
      {kDenyOom, "denyoom"},
      {kAdmin, "admin"},
      {kRandom, "random"},
      {kLoading, "loading"},
      {kSkipMonitor, "skip_monitor"},
      {kFast, "fast"},
  }};
  reply.ArrayHeader(6);
  reply.Bulk(cmd.name);  // the table name even when renamed, as Disque's addReplyCommand
  reply.Integer(cmd.arity);
  size_t n = 0;
  for (const auto& [flag, name] : kFlagNames) n += (cmd.flags & flag) ? 1 : 0;
  reply.ArrayHeader(n);
  for (const auto& [flag, name] : kFlagNames) {
    if (cmd.flags & flag) reply.Status(name);
  }
  reply.Integer(0);
  reply.Integer(0);
  reply.Integer(0);
}

}  // namespace disque::server
