#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "support/files.h"

namespace disque::test {

// A port that was free on 127.0.0.1 when asked, with port + 10000 free too (the
// cluster bus port), in 10000..22767 so that both stay below Linux's ephemeral range
// (32768 and up, as tests/ops/opslib.py's free_port): there the kernel hands ports to
// outgoing connections, and a client connecting to a server that is down could take
// the server's port (even connect to itself), so that a restart on it failed with
// "Address already in use" (seen in AofStartupTest and the cluster chaos test). Ports
// are drawn at random so that parallel tests rarely collide; Start() retries on a clash.
int PickFreePort();

// Polls `condition` until it holds or `timeout` passes. Integration tests wait for
// conditions with this, never with a bare sleep.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct ServerOptions {
  int threads = 1;
  // Extra config-file lines (written to disque.conf after `port` and `bind`).
  std::vector<std::string> config_lines;
  // Extra command-line arguments, after the config file.
  std::vector<std::string> args;
  // Start without a config file (command-line flags only).
  bool no_config_file = false;
  // The address the server binds and the test connects to.
  std::string host = "127.0.0.1";
  // A network namespace (`ip netns` name) to run the server in; empty: ours.
  std::string netns;
};

// The real disque-server binary running on a free port in its own temporary directory,
// bound to 127.0.0.1 only (or to `host`, inside `netns`, for the network-namespace tests). The destructor stops it (SIGTERM, then SIGKILL after a
// deadline) and removes the directory: a test never leaves a process behind.
class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits until it answers PING. False (with the log in
  // `error()`) if it exits or does not answer in time.
  bool Start();
  // Starts the server again on the same port, directory and config file, without
  // rewriting the file (after CONFIG REWRITE, or to test a restart). The previous
  // process must have exited.
  bool Restart();
  // Sends `signal` and waits for the process to exit; returns its exit status as
  // waitpid reports it, or -1 on timeout.
  int Stop(int signal = 15, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True while the process has not exited (reaps it if it has).
  bool Running();
  // Waits for the process to exit by itself; its waitpid status, or -1 on timeout.
  int WaitExit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const { return dir_.File("disque.conf"); }
  std::string log() const;  // stdout+stderr of the process
  const std::string& error() const { return error_; }

 private:
  bool StartOnce(bool write_config);

  ServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;        // > 0 while running; the negated PID once reaped
  int exit_status_ = -1;  // waitpid status once reaped
  std::string error_;
};

// Runs a command line through /bin/sh, feeding `input` on stdin; returns stdout.
std::string RunCommand(const std::string& command, const std::string& input = "", int* exit_status = nullptr);

}  // namespace disque::test
