#pragma once
// backline as a child process for the benchmarks: started on an ephemeral
// port with its own data directory, waited for through --ready-file, stopped
// with SIGTERM (and killed if the bench itself dies).

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace bench {

using namespace std::chrono_literals;

// A failure that ends the bench with a message and exit code 1.
struct bench_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline const char* const admin_token = "bench-admin-token";

inline std::string tail_of(const std::string& path, size_t max_bytes = 4000) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? "…" + s.substr(s.size() - max_bytes) : s;
}

class backline_child {
public:
  /// `backline serve --listen 127.0.0.1:0 --data WORKDIR/data --ready-file …`
  /// plus `extra_args`; the environment without BACKLINE_* and SLACK_*, plus
  /// BACKLINE_ADMIN_TOKEN and `extra_env` ("NAME=value").
  backline_child(const std::string& binary, const std::string& workdir, std::vector<std::string> extra_args,
                 std::vector<std::string> extra_env = {})
      : log_path_(workdir + "/backline.log"), ready_path_(workdir + "/ready") {
    std::string data = workdir + "/data";
    const std::string& ready = ready_path_;
    std::filesystem::remove(ready_path_);  // a previous server's: wait_ready must see this one's
    std::vector<std::string> args = {binary, "serve", "--listen", "127.0.0.1:0", "--data", data, "--ready-file", ready};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "BACKLINE_", 9) != 0 && std::strncmp(*e, "SLACK_", 6) != 0)
        env.emplace_back(*e);
    env.push_back(std::string("BACKLINE_ADMIN_TOKEN=") + admin_token);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> argv, envp;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);

    int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0)
      throw bench_error("cannot open " + log_path_ + ": " + std::strerror(errno));
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0)
      throw bench_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      // Only async-signal-safe calls until execve. If the bench dies, so does the server.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent)
        ::_exit(127);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(argv[0], argv.data(), envp.data());
      const char msg[] = "bench: execve of backline failed\n";
      [[maybe_unused]] auto w = ::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    std::cout << "backline: started pid " << pid_ << ": ";
    for (auto& a : args)
      std::cout << a << " ";
    std::cout << "(log " << log_path_ << ")" << std::endl;
  }

  ~backline_child() { stop(); }

  // Waits for "host:port\n" in the ready file (up to `limit`).
  void wait_ready(std::chrono::seconds limit = 60s) {
    std::string ready = ready_path_;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      std::ifstream f(ready);
      std::string line;
      if (f && std::getline(f, line) && !f.eof()) {
        auto colon = line.rfind(':');
        if (colon != std::string::npos) {
          host_ = line.substr(0, colon);
          port_ = std::atoi(line.c_str() + colon + 1);
          if (port_ > 0)
            break;
        }
      }
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw bench_error("backline exited before it was ready (" + describe_exit(st) + "); its log:\n" +
                          tail_of(log_path_));
      }
      if (std::chrono::steady_clock::now() > deadline)
        throw bench_error("backline did not write " + ready + " within " + std::to_string(limit.count()) +
                          " s; its log:\n" + tail_of(log_path_));
      std::this_thread::sleep_for(20ms);
    }
    std::cout << "backline: ready on " << host_ << ":" << port_ << std::endl;
  }

  // SIGTERM, then wait (up to 60 s, then SIGKILL). Returns how it ended.
  std::string stop() {
    if (pid_ <= 0)
      return "not running";
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + 60s;
    int st = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_ || r < 0)
        break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        return "did not stop within 60 s of SIGTERM: killed";
      }
      std::this_thread::sleep_for(20ms);
    }
    pid_ = -1;
    return describe_exit(st);
  }

  bool alive() {
    int st = 0;
    return pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == 0;
  }

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

private:
  static std::string describe_exit(int st) {
    if (WIFEXITED(st))
      return "exit status " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st))
      return std::string("killed by signal ") + strsignal(WTERMSIG(st));
    return "status " + std::to_string(st);
  }

  std::string log_path_;
  std::string ready_path_;
  pid_t pid_ = -1;
  std::string host_;
  int port_ = 0;
};

} // namespace bench
