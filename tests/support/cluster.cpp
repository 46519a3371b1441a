#include "support/cluster.h"

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>

#include "support/reply_text.h"

namespace disque::test {

namespace {

// Commands to a node answer in milliseconds; a short timeout keeps a wrongly queried
// stopped node from eating a test's deadline.
constexpr int kClientTimeoutMs = 3000;

std::vector<std::string_view> SplitOn(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    parts.push_back(
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

template <typename T>
bool ParseDecimal(std::string_view text, T* out) {
  if (text.empty() || text[0] == '-') return false;  // ports and unix times are never negative
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// True when every thread of `pid` is stopped (state T in /proc/<pid>/task/*/stat).
bool AllThreadsStopped(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return false;
  for (const auto& task : tasks) {
    std::ifstream in(task.path() / "stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t name_end = stat.rfind(')');  // the command name may contain spaces
    if (name_end == std::string::npos || name_end + 2 >= stat.size()) return false;
    if (stat[name_end + 2] != 'T') return false;
  }
  return true;
}

}  // namespace

bool NodeLine::Has(std::string_view flag) const {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

std::optional<NodeLine> ParseNodeLine(std::string_view line) {
  const auto fields = SplitOn(line, ' ');
  if (fields.size() != 6) return std::nullopt;
  NodeLine node;
  node.text = std::string(line);
  node.id = std::string(fields[0]);
  const size_t colon = fields[1].rfind(':');  // IPv6 addresses are not bracketed
  if (colon == std::string_view::npos) return std::nullopt;
  node.ip = std::string(fields[1].substr(0, colon));
  if (!ParseDecimal(fields[1].substr(colon + 1), &node.port)) return std::nullopt;
  for (std::string_view flag : SplitOn(fields[2], ',')) {
    if (flag.empty()) return std::nullopt;
    node.flags.emplace_back(flag);
  }
  if (!ParseDecimal(fields[3], &node.ping_sent) || !ParseDecimal(fields[4], &node.pong_received)) {
    return std::nullopt;
  }
  node.link = std::string(fields[5]);
  if (node.id.empty() || node.link.empty()) return std::nullopt;
  return node;
}

const NodeLine* ParsedNodes::Find(std::string_view id) const& {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

const NodeLine* ParsedNodes::Myself() const& {
  for (const auto& n : nodes) {
    if (n.Has("myself")) return &n;
  }
  return nullptr;
}

ParsedNodes ParseClusterNodes(std::string_view text) {
  ParsedNodes out;
  if (!text.empty() && text.back() != '\n') out.error = "the last line does not end with \\n";
  std::vector<std::string_view> lines = SplitOn(text, '\n');
  lines.pop_back();  // after the last "\n" (or the unterminated last line, reported above)
  for (std::string_view line : lines) {
    if (line.empty()) continue;
    if (line.find('\r') != std::string_view::npos) {
      if (out.error.empty()) out.error = "\\r in line: " + std::string(line);
      continue;
    }
    auto node = ParseNodeLine(line);
    if (!node) {
      if (out.error.empty()) out.error = "malformed line: " + std::string(line);
      continue;
    }
    out.nodes.push_back(std::move(*node));
  }
  return out;
}

bool IsNodeId(std::string_view id) {
  return id.size() == 40 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  for (int i = 0; i < options_.nodes; ++i) {
    ServerOptions o;
    o.threads = options_.threads;
    o.config_lines.push_back("cluster-node-timeout " + std::to_string(options_.node_timeout_ms));
    o.config_lines.insert(o.config_lines.end(), options_.config_lines.begin(),
                          options_.config_lines.end());
    nodes_.push_back(std::make_unique<ServerProcess>(std::move(o)));
    clients_.emplace_back();
    paused_.push_back(false);
  }
}

Cluster::~Cluster() {
  clients_.clear();
  // A stopped process cannot act on SIGTERM: continue every live node (harmless for
  // one that was never stopped) before the ServerProcess destructors stop them.
  for (auto& node : nodes_) {
    if (node->Running()) kill(node->pid(), SIGCONT);
  }
  nodes_.clear();
}

::testing::AssertionResult Cluster::Start() {
  for (int i = 0; i < size(); ++i) {
    if (!nodes_[i]->Start())
      return ::testing::AssertionFailure() << "node " << i << ": " << nodes_[i]->error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Cluster::StartAndJoin(std::chrono::milliseconds deadline) {
  if (auto r = Start(); !r) return r;
  if (auto r = MeetChain(); !r) return r;
  return WaitFullMesh(deadline);
}

RedisClient& Cluster::client(int i) {
  auto& c = clients_.at(i);
  if (!c || !c->connected()) c = std::make_unique<RedisClient>(port(i), kClientTimeoutMs);
  return *c;
}

Reply Cluster::Command(int i, const std::vector<std::string>& args) {
  Reply r = client(i).Command(args);
  if (r.type == Reply::Type::kNone) r = client(i).Command(args);  // client(i) reconnects
  return r;
}

::testing::AssertionResult Cluster::Meet(int from, int to) {
  const Reply r = Command(from, {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(to))});
  if (r.ToString() == "+OK") return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "CLUSTER MEET from node " << from << " to node " << to << ": " << r.ToString();
}

::testing::AssertionResult Cluster::MeetChain() {
  for (int i = 0; i + 1 < size(); ++i) {
    if (auto r = Meet(i, i + 1); !r) return r;
  }
  return ::testing::AssertionSuccess();
}

std::string Cluster::MeshProblem() {
  const int n = size();
  std::vector<ParsedNodes> views;
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) {
    if (paused_[i]) return "node " + std::to_string(i) + " is paused";
    if (!nodes_[i]->Running()) return "node " + std::to_string(i) + " is not running";
    views.push_back(Nodes(i));
    if (!views[i].ok()) return "node " + std::to_string(i) + ": " + views[i].error;
    const NodeLine* self = views[i].Myself();
    if (self == nullptr) return "node " + std::to_string(i) + " has no myself line";
    const auto myself_lines =
        std::count_if(views[i].nodes.begin(), views[i].nodes.end(),
                      [](const NodeLine& line) { return line.Has("myself"); });
    if (myself_lines != 1) return "node " + std::to_string(i) + " has several myself lines";
    ids.insert(self->id);
  }
  if (static_cast<int>(ids.size()) != n) return "two nodes have the same ID";
  for (int i = 0; i < n; ++i) {
    const std::string who = "node " + std::to_string(i) + ": ";
    if (static_cast<int>(views[i].nodes.size()) != n) {
      return who + "lists " + std::to_string(views[i].nodes.size()) + " nodes";
    }
    std::set<std::string> listed;
    for (const auto& line : views[i].nodes) {
      if (ids.count(line.id) == 0) return who + "lists an unknown ID: " + line.text;
      if (!listed.insert(line.id).second) return who + "lists an ID twice: " + line.id;
      for (const char* bad : {"handshake", "fail?", "fail", "noaddr"}) {
        if (line.Has(bad)) return who + "flags " + bad + ": " + line.text;
      }
    }
    const int64_t reachable = ClusterInfoInt(i, "cluster_reachable_nodes");
    if (reachable != n - 1) return who + "cluster_reachable_nodes is " + std::to_string(reachable);
  }
  return "";
}

::testing::AssertionResult Cluster::WaitFullMesh(std::chrono::milliseconds deadline) {
  std::string problem;
  if (Poll([&] { return (problem = MeshProblem()).empty(); }, deadline))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no full mesh of " << size() << " nodes within "
                                       << deadline.count() << " ms: " << problem << "\n"
                                       << Describe();
}

bool Cluster::Poll(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                   std::chrono::milliseconds interval) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  auto next = std::chrono::steady_clock::time_point::min();
  return WaitFor(
      [&] {
        const auto now = std::chrono::steady_clock::now();
        // Within the last poll step the condition is always evaluated, so that a
        // condition met just before the deadline is not missed.
        if (now < next && now + std::chrono::milliseconds(20) < end) return false;
        next = now + interval;
        return condition();
      },
      deadline);
}

std::string Cluster::NodeId(int i) {
  const Reply r = Command(i, {"CLUSTER", "MYID"});
  return r.type == Reply::Type::kBulk ? r.str : "";
}

std::string Cluster::NodesText(int i) {
  const Reply r = Command(i, {"CLUSTER", "NODES"});
  return r.type == Reply::Type::kBulk ? r.str : "<" + r.ToString() + ">";
}

ParsedNodes Cluster::Nodes(int i) {
  const Reply r = Command(i, {"CLUSTER", "NODES"});
  if (r.type != Reply::Type::kBulk) return ParsedNodes{{}, "CLUSTER NODES replied " + r.ToString()};
  return ParseClusterNodes(r.str);
}

std::optional<std::vector<std::string>> Cluster::FlagsOf(int observer, const std::string& id) {
  const ParsedNodes view = Nodes(observer);
  const NodeLine* line = view.Find(id);
  if (line == nullptr) return std::nullopt;
  return line->flags;
}

std::string Cluster::ClusterInfoField(int i, const std::string& name) {
  const Reply r = Command(i, {"CLUSTER", "INFO"});
  return r.type == Reply::Type::kBulk ? InfoField(r.str, name) : "";
}

int64_t Cluster::ClusterInfoInt(int i, const std::string& name) {
  const std::string v = ClusterInfoField(i, name);
  int64_t out = -1;
  return ParseDecimal(std::string_view(v), &out) ? out : -1;
}

std::string Cluster::HelloPriority(int observer, const std::string& id) {
  const Reply r = Command(observer, {"HELLO"});
  for (size_t k = 2; k < r.elements.size(); ++k) {
    const Reply& entry = r.elements[k];
    if (entry.elements.size() == 4 && entry.elements[0].str == id) return entry.elements[3].str;
  }
  return "";
}

bool Cluster::Kill(int i) {
  clients_.at(i).reset();
  return nodes_.at(i)->Stop(SIGKILL) != -1;
}

void Cluster::Pause(int i) {
  const pid_t pid = nodes_.at(i)->pid();
  kill(pid, SIGSTOP);
  paused_.at(i) = true;
  // SIGSTOP takes effect when the thread picked to receive it next runs; until then the
  // other threads keep running (tens of ms on a loaded machine), and a "paused" node
  // would still answer its peers. Return once the whole process is stopped.
  WaitFor([pid] { return AllThreadsStopped(pid); }, std::chrono::seconds(10));
}

void Cluster::Resume(int i) {
  kill(nodes_.at(i)->pid(), SIGCONT);
  paused_.at(i) = false;
}

::testing::AssertionResult Cluster::Restart(int i) {
  clients_.at(i).reset();
  if (nodes_.at(i)->Restart()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "node " << i << " did not restart: " << nodes_[i]->error();
}

::testing::AssertionResult Cluster::TakeDown(int i, bool kill) {
  if (!kill) {
    Pause(i);
    return ::testing::AssertionSuccess();
  }
  if (Kill(i)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "node " << i << " did not die";
}

::testing::AssertionResult Cluster::BringBack(int i, bool kill) {
  if (kill) return Restart(i);
  Resume(i);
  return ::testing::AssertionSuccess();
}

std::string Cluster::Describe() {
  std::ostringstream out;
  for (int i = 0; i < size(); ++i) {
    out << "--- node " << i << " port " << port(i) << " pid " << nodes_[i]->pid();
    if (paused_[i]) {
      out << " (paused)\n";
    } else if (!nodes_[i]->Running()) {
      out << " (not running)\n";
    } else {
      out << " reachable " << ClusterInfoField(i, "cluster_reachable_nodes") << "\n"
          << NodesText(i);
    }
  }
  return out.str();
}

}  // namespace disque::test
