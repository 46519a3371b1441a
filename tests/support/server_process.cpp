#include "support/server_process.h"

#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/redis_client.h"

namespace disque::test {

namespace {

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

int PickFreePort() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> dist(10000, 22767);  // see the header
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = dist(rng);
    if (PortFree(port) && PortFree(port + 10000)) return port;
  }
  return 0;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {}

ServerProcess::~ServerProcess() {
  // A server still running is stopped the way an operator would, and must exit cleanly.
  if (pid_ > 0 && Running()) {
    const int status = Stop(SIGTERM, std::chrono::seconds(20));
    if (status == -1) {
      Stop(SIGKILL, std::chrono::seconds(10));
      ADD_FAILURE() << "the server did not exit within 20 s of SIGTERM\n" << log();
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ADD_FAILURE() << "the server did not exit cleanly on SIGTERM (status " << status << ")\n" << log();
    }
  }
  // In sanitizer builds the server reports errors and leaks on its own output: any report
  // fails the test that ran it, whatever that test checked.
  const std::string text = log();
  if (text.find("Sanitizer") != std::string::npos || text.find("runtime error:") != std::string::npos) {
    ADD_FAILURE() << "sanitizer report from the server:\n" << text;
  }
}

bool ServerProcess::Start() {
  // A port picked as free can be taken by a parallel test before we bind it: retry.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (StartOnce(true)) return true;
    if (log().find("Address already in use") == std::string::npos) return false;
  }
  return false;
}

bool ServerProcess::Restart() { return StartOnce(false); }

bool ServerProcess::StartOnce(bool write_config) {
  if (write_config) {
    port_ = PickFreePort();
    std::string conf = "port " + std::to_string(port_) + "\nbind " + options_.host + "\n";
    for (const auto& line : options_.config_lines) conf += line + "\n";
    WriteFile(config_path(), conf);
  }

  std::vector<std::string> args{DISQUE_SERVER_BINARY};
  if (options_.no_config_file) {
    args.insert(args.end(), {"--port", std::to_string(port_), "--bind", options_.host});
  } else {
    args.push_back(config_path());
  }
  args.insert(args.end(), {"--threads", std::to_string(options_.threads)});
  args.insert(args.end(), options_.args.begin(), options_.args.end());

  const std::string log_path = dir_.File("stdout.log");
  pid_ = fork();
  if (pid_ < 0) {
    error_ = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
    if (chdir(dir_.path().c_str()) != 0) _exit(127);
    if (!options_.netns.empty()) {
      const std::string path = "/var/run/netns/" + options_.netns;
      const int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(126);
    }
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const bool up = WaitFor(
      [this] {
        if (!Running()) return true;  // exited: stop waiting
        RedisClient client(Host{options_.host}, port_, 1000);
        return client.connected() && client.Command({"PING"}).str == "PONG";
      },
      std::chrono::seconds(20));
  if (up && Running()) return true;
  error_ = "server did not start:\n" + log();
  if (Running()) Stop(SIGKILL);
  pid_ = -1;
  return false;
}

bool ServerProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -pid_;  // remember it exited; keep the value for messages
    exit_status_ = status;
    return false;
  }
  return r == 0;
}

int ServerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (!WaitFor([this] { return !Running(); }, timeout)) return -1;
  return exit_status_;
}

int ServerProcess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (!Running()) return exit_status_;
  kill(pid_, signal);
  return WaitExit(timeout);
}

std::string ServerProcess::log() const { return ReadFile(dir_.File("stdout.log")); }

std::string RunCommand(const std::string& command, const std::string& input, int* exit_status) {
  TempDir tmp;
  const std::string in_path = tmp.File("in"), out_path = tmp.File("out");
  WriteFile(in_path, input);
  const std::string full = command + " < '" + in_path + "' > '" + out_path + "' 2>&1";
  const int status = std::system(full.c_str());
  if (exit_status != nullptr) *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ReadFile(out_path);
}

}  // namespace disque::test
