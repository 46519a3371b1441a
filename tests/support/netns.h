#pragma once

#include <string>
#include <vector>

namespace disque::test {

// Hosts in their own network namespaces, for cluster tests with real partitions (issue
// 5). Host i is the namespace `dq<pid>n<i>` with one interface, address 10.A.B.(i+1)/24,
// whose other end sits on a bridge in our namespace (address 10.A.B.254), so the test
// process reaches every host and the hosts reach each other. (`<pid>` is shortened and
// suffixed with a counter: interface names have at most 15 characters.) A partition between two
// hosts is a pair of blackhole routes, one in each namespace: packets are dropped in
// both directions, silently, as on a failed network, and the routes' removal heals it.
//
// Needs root and iproute2; Available() says whether this machine can (tests skip
// otherwise). The destructor removes everything it created; the servers running in the
// namespaces must be stopped first.
class NetLab {
 public:
  // Why network namespaces cannot be used here, or "" if they can.
  static std::string Unavailable();

  explicit NetLab(int hosts);
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  // "" when every host is set up; otherwise the command that failed and its output.
  const std::string& error() const { return error_; }
  int size() const { return hosts_; }
  std::string ns(int i) const;
  std::string ip(int i) const;

  // Drops every packet between hosts a and b (both directions), or lets them through
  // again. False (with error()) if a command failed.
  bool Cut(int a, int b);
  bool Heal(int a, int b);

 private:
  bool Run(const std::string& command);

  int hosts_;
  std::string prefix_;  // "dq<pid>"
  std::string subnet_;  // "10.A.B."
  std::string error_;
};

}  // namespace disque::test
