// The command table: lookup, arity and flags as PROTOCOL.md 1.5 gives them, rename-command,
// and the COMMAND entry format.

#include <gtest/gtest.h>

#include <string>

#include "disque/server/command.h"

namespace disque::server {
namespace {

CommandTable Build(std::vector<config::RenameCommand> renames = {}) {
  auto table = CommandTable::Build(renames);
  EXPECT_TRUE(table.ok()) << table.status().message();
  return std::move(table).value();
}

TEST(CommandTable, LookupIsCaseInsensitive) {
  CommandTable table = Build();
  ASSERT_NE(table.Lookup("ping"), nullptr);
  EXPECT_EQ(table.Lookup("PiNg"), table.Lookup("ping"));
  EXPECT_EQ(table.Lookup("ping")->name, "ping");
  EXPECT_EQ(table.Lookup("echo"), nullptr) << "Disque has no ECHO";
  EXPECT_EQ(table.Lookup("select"), nullptr);
  EXPECT_EQ(table.Lookup(""), nullptr);
  EXPECT_EQ(table.Lookup(std::string(100, 'a')), nullptr);
}

TEST(CommandTable, ArityAndFlagsMatchDisque) {
  CommandTable table = Build();
  struct Expected {
    const char* name;
    int arity;
    uint32_t flags;
  };
  for (const Expected& e : {Expected{"auth", 2, kReadonly | kLoading | kFast}, Expected{"ping", -1, kReadonly | kFast},
                            Expected{"info", -1, kReadonly | kLoading},
                            Expected{"shutdown", -1, kReadonly | kAdmin | kLoading}, Expected{"debug", -2, kAdmin},
                            Expected{"config", -2, kReadonly | kAdmin}, Expected{"client", -2, kReadonly | kAdmin},
                            Expected{"time", 1, kReadonly | kFast}, Expected{"command", 0, kReadonly | kLoading}}) {
    const Command* cmd = table.Lookup(e.name);
    ASSERT_NE(cmd, nullptr) << e.name;
    EXPECT_EQ(cmd->arity, e.arity) << e.name;
    EXPECT_EQ(cmd->flags, e.flags) << e.name;
    EXPECT_TRUE((cmd->sync == nullptr) != (cmd->async == nullptr)) << e.name << ": exactly one handler";
  }
}

TEST(CommandTable, IndexesAreTablePositions) {
  CommandTable table = Build();
  for (size_t i = 0; i < table.commands().size(); ++i) EXPECT_EQ(table.commands()[i].index, i);
}

TEST(CommandTable, RenameAndRemove) {
  CommandTable table = Build({{"config", "cfg", 3, "rename-command config cfg"}, {"debug", "", 4, "rename-command debug \"\""}});
  EXPECT_EQ(table.Lookup("config"), nullptr);
  ASSERT_NE(table.Lookup("CFG"), nullptr);
  EXPECT_EQ(table.Lookup("cfg")->name, "config") << "stats and errors keep the table name";
  EXPECT_EQ(table.VisibleName(*table.Lookup("cfg")), "cfg");
  EXPECT_EQ(table.Lookup("debug"), nullptr);
}

// Every command is found by its name in any case, and a long renamed name too (names
// were once lowercased into a 32-byte buffer, which made a longer one unreachable). A
// table that Build did not make finds nothing.
TEST(CommandTable, EveryNameIsFoundAndLongRenamedNamesToo) {
  CommandTable table = Build();
  for (const Command& cmd : table.commands()) {
    std::string upper(cmd.name);
    for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    EXPECT_EQ(table.Lookup(cmd.name), &cmd) << cmd.name;
    EXPECT_EQ(table.Lookup(upper), &cmd) << upper;
    EXPECT_EQ(table.Lookup(std::string(cmd.name) + "x"), nullptr) << cmd.name;
  }
  const std::string long_name = "Acknowledge-These-Jobs-Right-Now-Please-0123456789";
  CommandTable renamed = Build({{"ackjob", long_name, 2, "rename-command ackjob " + long_name}});
  ASSERT_NE(renamed.Lookup(long_name), nullptr);
  EXPECT_EQ(renamed.Lookup(long_name)->name, "ackjob");
  EXPECT_EQ(renamed.Lookup("acknowledge-these-jobs-right-now-please-0123456789"), renamed.Lookup(long_name));
  EXPECT_EQ(renamed.Lookup("ackjob"), nullptr);
  EXPECT_EQ(CommandTable().Lookup("ping"), nullptr);
}

TEST(CommandTable, RenameErrorsAreFatalConfigErrors) {
  auto missing = CommandTable::Build({{"nosuch", "x", 7, "rename-command nosuch x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            config::FatalConfigError(7, "rename-command nosuch x", "No such command in rename-command"));
  auto taken = CommandTable::Build({{"config", "ping", 2, "rename-command config ping"}});
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("Target command name already exists"), std::string::npos);
}

TEST(CommandTable, CommandInfoEntry) {
  CommandTable table = Build();
  std::string out;
  resp::ReplyWriter writer(out);
  table.WriteInfo(writer, *table.Lookup("ping"));
  EXPECT_EQ(out, "*6\r\n$4\r\nping\r\n:-1\r\n*2\r\n+readonly\r\n+fast\r\n:0\r\n:0\r\n:0\r\n");
  out.clear();
  table.WriteInfo(writer, *table.Lookup("shutdown"));
  EXPECT_EQ(out, "*6\r\n$8\r\nshutdown\r\n:-1\r\n*3\r\n+readonly\r\n+admin\r\n+loading\r\n:0\r\n:0\r\n:0\r\n");
}

}  // namespace
}  // namespace disque::server
