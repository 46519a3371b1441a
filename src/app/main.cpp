// disque-server: command line, configuration, daemonize, logging, then the Server.
//
//   disque-server [/path/to/disque.conf | -] [--<directive> <args...>]...
//
// Flags are the config directives themselves (PROTOCOL.md 9.1): each `--name args` is
// appended to the file's text as a `name args` line, in command-line order, so flags
// override the file. CLI11 parses them from the option table's directive names.

#include <csignal>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "disque/common/strings.h"
#include "disque/config/config.h"
#include "disque/persist/aof_check.h"
#include "disque/server/logging.h"
#include "disque/server/server.h"
#include "disque/server/supervisor.h"

namespace {

using disque::Status;
namespace config = disque::config;
namespace server = disque::server;
namespace persist = disque::persist;

[[noreturn]] void Die(std::string_view message) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  std::exit(1);
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

std::string Executable(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  return AbsolutePath(argv0);
}

// Forks into the background as Disque's daemonize(): the parent exits, the child starts
// a new session and points stdio at /dev/null.
void Daemonize() {
  pid_t pid = fork();
  if (pid < 0) Die("Can't fork to daemonize");
  if (pid > 0) std::_Exit(0);
  setsid();
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO) close(fd);
  }
}

void WritePidfile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    spdlog::warn("Can't write the pidfile {}: {}", path, std::strerror(errno));
    return;
  }
  std::fprintf(f, "%d\n", static_cast<int>(getpid()));
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a closed pipe or socket is an error to handle where it happens (EPIPE),
  // never a reason to die: a log on stdout piped into a reader that went away, say.
  ::signal(SIGPIPE, SIG_IGN);
  // As Redis and Disque: a hangup (the terminal that started us closed) is not a reason
  // to stop serving.
  ::signal(SIGHUP, SIG_IGN);
  config::Options options;

  CLI::App app{"disque-server: a distributed, in-memory job queue (Disque 1.0-rc1 compatible)"};
  app.set_help_flag();  // Disque's -h/--help exits 1; ours is below
  std::string config_file;
  bool want_help = false;
  bool want_version = false;
  app.add_option("config", config_file, "Path of the configuration file, or - to read it from stdin");
  app.add_flag("-h,--help", want_help, "Print this help and exit");
  app.add_flag("-v,--version", want_version, "Print the version and exit");
  std::string check_aof;
  bool fix_aof = false;
  app.add_option("--check-aof", check_aof,
                 "Check an append-only file (a torn tail, damage) and exit: 0 if valid, 1 if not");
  app.add_flag("--fix", fix_aof, "With --check-aof: truncate the file to its valid part");
  // Every directive is also a flag, in the table's spelling; each occurrence becomes one
  // config line, quoted so values with spaces or special bytes survive.
  std::string extra;
  for (const config::Options::Directive& directive : options.Directives()) {
    std::string description = directive.help;
    if (!directive.default_value.empty()) description += " (default: " + directive.default_value + ")";
    app.add_option_function<std::vector<std::string>>(
           "--" + directive.name,
           [&extra, name = directive.name](const std::vector<std::string>& values) {
             extra += name;
             for (const std::string& v : values) {
               extra += ' ';
               disque::AppendQuoted(extra, v);
             }
             extra += '\n';
           },
           description)
        ->type_name(directive.usage)
        ->group("Config directives (also lines of disque.conf; flags come after the file, so they win)")
        ->expected(0, 32)
        ->trigger_on_parse();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::cerr << e.what() << "\n" << "Usage: ./disque-server [/path/to/disque.conf] [options]\n";
    return 1;
  }
  if (want_version) {
    std::printf("Disque server v=%s sha=%s:0 malloc=libc bits=%zu build=%s\n", server::kDisqueVersion.data(),
                server::GitSha1().data(), sizeof(void*) * 8, server::GitSha1().data());
    return 0;
  }
  if (!check_aof.empty()) return persist::RunCheckAof(check_aof, fix_aof);
  if (want_help) {
    std::cerr << app.help() << "\nExamples:\n"
              << "       ./disque-server (run the server with default conf)\n"
              << "       ./disque-server /etc/disque/7711.conf\n"
              << "       ./disque-server --port 7777\n"
              << "       ./disque-server /etc/mydisque.conf --loglevel verbose\n"
              << "       ./disque-server --bind 127.0.0.1 --threads 1 --appendonly yes\n"
              << "       ./disque-server --check-aof /var/lib/disque/disque.aof --fix\n"
              << "\nUnder systemd (Type=notify) it reports READY=1 once it accepts clients.\n"
              << "More: man disque-server, docs/operations.md.\n";
    return 1;
  }

  // Load: the file (made absolute first, since `dir` changes the working directory),
  // then the flags.
  config::Config cfg;
  Status loaded = Status::Ok();
  if (config_file.empty()) {
    loaded = options.LoadFromString(extra, cfg);
  } else {
    if (config_file != "-") config_file = AbsolutePath(config_file);
    loaded = options.LoadFile(config_file, extra, cfg);
    if (config_file == "-") config_file.clear();
  }
  if (!loaded.ok()) Die(loaded.message());
  if (cfg.port > 55535 && cfg.cluster_port == 0) {
    Die("Port " + std::to_string(cfg.port) + " is too high: the cluster bus uses port + 10000 (or set cluster-port)");
  }

  auto table = server::CommandTable::Build(cfg.renames);
  if (!table.ok()) Die(table.status().message());

  if (cfg.daemonize) Daemonize();
  if (Status st = server::SetupLogging(cfg); !st.ok()) Die(st.message());
  if (config_file.empty() && argc == 1) {
    spdlog::warn(
        "Warning: no config file specified, using the default config. In order to specify a config file use {} "
        "/path/to/disque.conf",
        argv[0]);
  }

  const int64_t maxclients = server::AdjustOpenFilesLimit(cfg.maxclients);
  if (maxclients < cfg.maxclients) {
    spdlog::warn("Server can't set maximum open files to {} because of OS error: max number of clients reduced to {}",
                 cfg.maxclients + 32, maxclients);
    cfg.maxclients = maxclients;
  }
  options.SetApplyHook("loglevel", [](const config::Config&, const config::Config& next) {
    server::SetLogLevel(next.loglevel);
    return Status::Ok();
  });
  options.SetApplyHook("maxclients", [](const config::Config&, const config::Config& next) {
    const int64_t allowed = server::AdjustOpenFilesLimit(next.maxclients);
    if (allowed < next.maxclients) {
      return Status::Error("ERR The operating system is not able to handle the specified number of clients, try with " +
                           std::to_string(allowed));
    }
    return Status::Ok();
  });

  const bool daemonized = cfg.daemonize;
  const std::string pidfile = cfg.pidfile;
  server::ProcessInfo info{Executable(argv[0]), config_file, std::vector<std::string>(argv, argv + argc)};
  server::Server srv(options, cfg, std::move(table).value(), std::move(info));
  // The banner carries "Port: <n>" and "PID: <n>" as Disque's does (PROTOCOL.md 9.4).
  spdlog::info("Disque {} (sha {}) {} bit, Port: {}, PID: {}, shard threads: {}", server::kDisqueVersion,
               server::GitSha1(), sizeof(void*) * 8, cfg.port, getpid(), srv.shard_count());
  spdlog::info("Server started, Disque version {}", server::kDisqueVersion);
  if (Status st = srv.Listen(); !st.ok()) {
    spdlog::warn("{}", st.message());
    return 1;
  }
  // Written before the shards start serving, so a client that got an answer can rely on
  // the pidfile and the readiness line being there.
  if (daemonized) WritePidfile(pidfile);
  if (cfg.port > 0) spdlog::info("The server is now ready to accept connections on port {}", cfg.port);
  if (!cfg.unixsocket.empty()) spdlog::info("The server is now ready to accept connections at {}", cfg.unixsocket);
  if (Status st = srv.Run(); !st.ok()) {
    // A damaged AOF: Disque exits here too. The shards already run, so no destructors.
    spdlog::warn("{}", st.message());
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }
  // The AOF is loaded and the port answers: a Type=notify unit is now active (unless a
  // shutdown came during the load: STOPPING=1 was sent, READY=1 must not follow it).
  if (!srv.shutdown_requested()) server::NotifySupervisor("READY=1");

  srv.Wait();
  if (daemonized) unlink(pidfile.c_str());
  spdlog::warn("Disque is now ready to exit, bye bye...");
  // After a forced stop, cross-shard work may still be queued between io_contexts that
  // destruction would tear down in some order: exit without running destructors.
  if (srv.forced_stop()) std::_Exit(0);
  return 0;
}
