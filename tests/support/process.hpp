#pragma once
// Runs the real `backline` binary as a child process for end-to-end tests:
// on an ephemeral loopback port, with a deadline, killed if it outlives the test.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace backline::testing {

/// The backline binary under test (CTest sets BACKLINE_BIN).
inline std::string backline_binary() {
  const char* bin = std::getenv("BACKLINE_BIN");
  if (bin == nullptr)
    throw std::runtime_error("BACKLINE_BIN is not set (run the tests through ctest)");
  return bin;
}

class child_process {
public:
  child_process(const std::vector<std::string>& argv, const std::string& log_file,
                std::vector<std::string> env = {}) {
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      FILE* log = std::fopen(log_file.c_str(), "w");
      if (log != nullptr) {
        ::dup2(fileno(log), 1);
        ::dup2(fileno(log), 2);
      }
      for (auto& e : env)
        ::putenv(e.data());
      std::vector<char*> args;
      for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~child_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) { ::kill(pid_, sig); }

  /// Waits for exit up to `limit`; returns the exit code, or -1 on timeout,
  /// or 128+signal when killed by a signal.
  int wait(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

/// Waits until `file` holds "host:port" (written by --ready-file); returns the port.
inline int wait_for_ready_file(const std::string& file, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    std::ifstream in(file);
    std::string line;
    if (std::getline(in, line) && line.find(':') != std::string::npos)
      return std::stoi(line.substr(line.rfind(':') + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace backline::testing
