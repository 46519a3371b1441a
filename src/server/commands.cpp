#include <array>
#include <bit>
#include <unordered_map>

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
  std::unordered_map<std::string, size_t> by_name;  // lowercase visible name -> index
  for (auto family : {ServerCommands(), JobCommands(), QueueCommands(), ClusterCommands()}) {
    for (const Command& cmd : family) {
      table.commands_.push_back(cmd);
      table.commands_.back().index = table.commands_.size() - 1;
      table.visible_names_.emplace_back(cmd.name);
      by_name.emplace(std::string(cmd.name), table.commands_.size() - 1);
    }
  }
  // rename-command, in file order, exactly as Disque checks it while reading the file.
  for (const config::RenameCommand& rename : renames) {
    auto it = by_name.find(ToLower(rename.from));
    if (it == by_name.end()) {
      return Status::Error(config::FatalConfigError(rename.line_no, rename.line, "No such command in rename-command"));
    }
    const size_t index = it->second;
    if (rename.to.empty()) {
      by_name.erase(it);
      table.visible_names_[index].clear();
      continue;
    }
    std::string to = ToLower(rename.to);
    if (by_name.contains(to)) {
      return Status::Error(config::FatalConfigError(rename.line_no, rename.line, "Target command name already exists"));
    }
    by_name.erase(it);
    table.visible_names_[index] = to;
    by_name.emplace(std::move(to), index);
  }
  size_t slots = 16;
  while (slots < 4 * by_name.size()) slots *= 2;
  table.lookup_.assign(slots, 0);
  table.lookup_shift_ = 64 - std::countr_zero(slots);
  for (const auto& [name, index] : by_name) {
    size_t i = table.Home(NameHash(name));
    while (table.lookup_[i] != 0) i = (i + 1) & (slots - 1);
    table.lookup_[i] = static_cast<uint16_t>(index + 1);
  }
  return table;
}

namespace {

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

uint64_t CommandTable::NameHash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325;
  for (char c : name) h = (h ^ static_cast<uint8_t>(AsciiLower(c))) * 0x100000001b3;
  return h;
}

const Command* CommandTable::Lookup(std::string_view name) const {
  if (lookup_.empty()) return nullptr;  // a table not built by Build
  const size_t mask = lookup_.size() - 1;
  for (size_t i = Home(NameHash(name));; i = (i + 1) & mask) {
    const uint16_t slot = lookup_[i];
    if (slot == 0) return nullptr;
    const std::string& visible = visible_names_[slot - 1];  // lowercase
    if (visible.size() != name.size()) continue;
    size_t k = 0;
    while (k < name.size() && AsciiLower(name[k]) == visible[k]) ++k;
    if (k == name.size()) return &commands_[slot - 1];
  }
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
