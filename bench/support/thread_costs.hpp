#pragma once
// Where a process's CPU goes, by kind of thread: each thread's CPU time (ns,
// from /proc/<pid>/task/<tid>/schedstat) and context switches (voluntary and
// involuntary, from …/status), summed by the thread's name. Two readings
// around a measured window, divided by the requests served in it, give CPU
// µs and switches per request for each kind of thread. A thread that started
// inside the window counts from its start; one that ended inside it is not
// counted.

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace bench {

struct thread_reading {
  std::string name;
  uint64_t cpu_ns = 0;
  uint64_t switches = 0;
};

/// Every thread of `pid` now, by thread id (empty when the process is gone).
inline std::map<pid_t, thread_reading> read_threads(pid_t pid) {
  std::map<pid_t, thread_reading> out;
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec)
    return out;
  for (const auto& task : tasks) {
    thread_reading r;
    std::ifstream comm(task.path() / "comm"), sched(task.path() / "schedstat"), status(task.path() / "status");
    if (!std::getline(comm, r.name) || !(sched >> r.cpu_ns))
      continue;  // the thread ended while being read
    for (std::string line; std::getline(status, line);)
      if (line.find("ctxt_switches:") != std::string::npos)
        r.switches += std::stoull(line.substr(line.find(':') + 1));
    out.emplace(static_cast<pid_t>(std::stol(task.path().filename().string())), std::move(r));
  }
  return out;
}

struct thread_use {
  double cpu_s = 0;
  uint64_t switches = 0;
};

/// What each kind of thread (by name) used between two readings.
inline std::map<std::string, thread_use> use_between(const std::map<pid_t, thread_reading>& before,
                                                     const std::map<pid_t, thread_reading>& after) {
  std::map<std::string, thread_use> out;
  for (const auto& [tid, a] : after) {
    auto b = before.find(tid);
    uint64_t cpu = a.cpu_ns, sw = a.switches;
    if (b != before.end() && b->second.name == a.name) {
      cpu -= std::min(cpu, b->second.cpu_ns);
      sw -= std::min(sw, b->second.switches);
    }
    auto& u = out[a.name];
    u.cpu_s += static_cast<double>(cpu) / 1e9;
    u.switches += sw;
  }
  return out;
}

} // namespace bench
