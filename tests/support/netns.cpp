#include "support/netns.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "support/files.h"
#include "support/server_process.h"

namespace disque::test {

std::string NetLab::Unavailable() {
  if (geteuid() != 0) return "network namespaces need root";
  int status = 0;
  const std::string name = "dq" + std::to_string(getpid()) + "probe";
  RunCommand("ip netns add " + name, "", &status);
  if (status != 0) return "`ip netns add` failed";
  RunCommand("ip netns del " + name, "", &status);
  return "";
}

namespace {
std::atomic<int> labs{0};  // labs made by this process: names stay unique
}  // namespace

NetLab::NetLab(int hosts) : hosts_(hosts) {
  // Names and a /24 from the PID and a counter: parallel tests share neither.
  const int pid = static_cast<int>(getpid());
  const int lab = labs.fetch_add(1);
  prefix_ = "dq" + std::to_string(pid % 100000) + "x" + std::to_string(lab % 10);
  subnet_ = "10." + std::to_string(100 + (pid / 250 + lab) % 100) + "." + std::to_string(pid % 250) + ".";
  const std::string bridge = prefix_ + "br";
  if (!Run("ip link add " + bridge + " type bridge") || !Run("ip addr add " + subnet_ + "254/24 dev " + bridge) ||
      !Run("ip link set " + bridge + " up")) {
    return;
  }
  for (int i = 0; i < hosts; ++i) {
    const std::string outside = prefix_ + "a" + std::to_string(i), inside = prefix_ + "b" + std::to_string(i);
    const std::string in_ns = "ip netns exec " + ns(i) + " ";
    if (!Run("ip netns add " + ns(i)) || !Run("ip link add " + outside + " type veth peer name " + inside) ||
        !Run("ip link set " + outside + " master " + bridge) || !Run("ip link set " + outside + " up") ||
        !Run("ip link set " + inside + " netns " + ns(i)) || !Run(in_ns + "ip addr add " + ip(i) + "/24 dev " + inside) ||
        !Run(in_ns + "ip link set " + inside + " up") || !Run(in_ns + "ip link set lo up")) {
      return;
    }
  }
}

NetLab::~NetLab() {
  for (int i = 0; i < hosts_; ++i) {
    RunCommand("ip link del " + prefix_ + "a" + std::to_string(i) + " 2>/dev/null");  // and its peer
    RunCommand("ip netns del " + ns(i) + " 2>/dev/null");
  }
  RunCommand("ip link del " + prefix_ + "br 2>/dev/null");
}

std::string NetLab::ns(int i) const { return prefix_ + "n" + std::to_string(i); }
std::string NetLab::ip(int i) const { return subnet_ + std::to_string(i + 1); }

bool NetLab::Cut(int a, int b) {
  return Run("ip netns exec " + ns(a) + " ip route add blackhole " + ip(b) + "/32") &&
         Run("ip netns exec " + ns(b) + " ip route add blackhole " + ip(a) + "/32");
}

bool NetLab::Heal(int a, int b) {
  return Run("ip netns exec " + ns(a) + " ip route del blackhole " + ip(b) + "/32") &&
         Run("ip netns exec " + ns(b) + " ip route del blackhole " + ip(a) + "/32");
}

bool NetLab::Run(const std::string& command) {
  int status = 0;
  const std::string out = RunCommand(command, "", &status);
  if (status == 0) return true;
  if (error_.empty()) error_ = command + ": " + out;
  return false;
}

}  // namespace disque::test
