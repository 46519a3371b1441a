// Fuzz target for the config file parser (include/disque/config/config.h): the input is
// the text of a disque.conf, parsed with Options::LoadFromString.
//
// A bad file must be reported, not crash: the error is the FatalConfigError() text for
// a line that exists, quoting that line as the file has it (trimmed). A good file must
// survive CONFIG REWRITE: every value shows in CONFIG GET, the rewritten file (written
// from scratch) loads, and rewriting what it loads gives the same file again.
//
// Three directives act on the file system when parsed, so lines of theirs that would
// run are turned into comments before parsing (the line count stays): `dir <path>`
// (chdir), `logfile <path>` (creates the file) and `include <path>` (reads any file,
// stdin for "-"). Their wrong-arity forms, which only fail, are left in.
//
// Built with libFuzzer under clang (`make fuzz`), and as config_file_fuzz_replay, which
// runs the seed corpus under any compiler in ctest (replay_main.cpp).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>

#include "disque/common/status.h"
#include "disque/common/strings.h"
#include "disque/config/config.h"

namespace {

using disque::Status;
using disque::config::Config;
using disque::config::Options;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "config_file_fuzz: %s\n", what);
  std::abort();
}

// Calls fn(line) for each line of `text` as Options::LoadText cuts it ('\n' only).
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t nl = text.find('\n', pos);
    fn(text.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
  }
}

// The text with the lines that would touch the file system replaced by "#".
std::string Neutralize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool first = true;
  ForEachLine(text, [&](std::string_view raw) {
    if (!first) out.push_back('\n');
    first = false;
    const std::string_view line = disque::Trim(raw);
    if (!line.empty() && line.front() != '#') {
      auto words = disque::SplitArgs(line);
      if (words && words->size() == 2) {
        const std::string name = disque::ToLower(words->front());
        if (name == "dir" || name == "include" || (name == "logfile" && !(*words)[1].empty())) {
          out.push_back('#');
          return;
        }
      }
    }
    out.append(raw);
  });
  return out;
}

void CheckError(std::string_view text, std::string_view message) {
  constexpr std::string_view kHead =
      "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line ";
  if (!message.starts_with(kHead)) Fail("an error that is not a fatal config file error");
  size_t at = kHead.size();
  int line_no = 0;
  while (at < message.size() && message[at] >= '0' && message[at] <= '9' && line_no < 1000000000) {
    line_no = line_no * 10 + (message[at++] - '0');
  }
  std::string_view line;
  int n = 0;
  ForEachLine(text, [&](std::string_view raw) {
    if (++n == line_no) line = disque::Trim(raw);
  });
  if (line_no < 1 || line_no > n) Fail("an error at a line the file does not have");
  if (line.empty() || line.front() == '#') Fail("an error at a blank line or a comment");
  // FatalConfigError(n, line, reason) is the head, the reason, then a newline.
  std::string head = disque::config::FatalConfigError(line_no, line, "");
  head.pop_back();
  if (!message.starts_with(head)) Fail("the error does not quote its line");
  if (message.size() < head.size() + 2 || message.back() != '\n') Fail("an error without a reason");
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read the rewritten file");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A scratch file for CONFIG REWRITE, removed at exit.
const std::filesystem::path& ScratchPath() {
  struct Scratch {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("config_file_fuzz." + std::to_string(::getpid()) + ".conf");
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  };
  static const Scratch scratch;
  return scratch.path;
}

// CONFIG REWRITE of `cfg` into an empty file: its content.
std::string Rewrite(const Options& options, const Config& cfg) {
  std::error_code ignored;
  std::filesystem::remove(ScratchPath(), ignored);
  if (!options.Rewrite(cfg, ScratchPath()).ok()) Fail("CONFIG REWRITE failed");
  return ReadFile(ScratchPath());
}

// QUIRK (Disque's): `bind` is rewritten unquoted, so an address that is empty or holds
// blanks or quotes does not read back as written.
bool BindRewritesAsIs(const Config& cfg) {
  for (const std::string& address : cfg.bind) {
    if (address.empty() || address.find_first_of(" \t\r\n\v\f\"'") != std::string::npos)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Options options;
  const std::string text = Neutralize(std::string_view(reinterpret_cast<const char*>(data), size));

  Config cfg;
  const Status loaded = options.LoadFromString(text, cfg);
  if (!loaded.ok()) {
    CheckError(text, loaded.message());
    return 0;
  }
  for (const auto& [name, value] : options.Get(cfg, "*")) {
    if (name.empty()) Fail("CONFIG GET shows an option without a name");
  }
  if (!BindRewritesAsIs(cfg)) return 0;

  const std::string rewritten = Rewrite(options, cfg);
  Config again;
  const Status reloaded = options.LoadFile(ScratchPath(), "", again);
  if (!reloaded.ok()) {
    std::fprintf(stderr, "%s", std::string(reloaded.message()).c_str());
    Fail("the file CONFIG REWRITE wrote does not load");
  }
  if (Rewrite(options, again) != rewritten) Fail("rewriting a rewritten config changes it");
  return 0;
}
