// lock_bench: the single-lock baseline. The same message-post workload as
// api_bench (POST /api/v1/threads/{id}/messages with a bearer token and a
// small JSON body, answered 201 only once durable) served by the simplest
// design there is: cpp-httplib on the same HTTP front as backline
// (backline::http::http_server, same worker count and socket settings), one
// global std::mutex guarding all state (tokens, threads, their messages), and
// under that lock an append of the message to one file followed by
// fdatasync. No actors, no group commit. It shows what backline's design
// buys as connections grow — or where it does not.
//
//   lock_bench [--connections 1,16,64,256,1000] [--seconds S] [--warmup S] [--quick]
//              [--threads N] [--loops N] [--timeout-ms MS] [--no-sync] [--dir DIR]
//
// The load comes from api_bench's generator (bench/support/load_generator.hpp).
// Ends with one JSON line: {"bench":"lock","figures":{"rps_lock_c64":…,"p99_ms_lock_c64":…,…}}

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <httplib.h>

#include <boost/json.hpp>

#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backline/malloc_tuning.hpp"
#include "bench/support/load_generator.hpp"
#include "http/http_server.hpp"

namespace {

using namespace bench;
namespace json = boost::json;

struct stored_message {
  std::string id;
  std::string author;
  std::string text;
};

// Everything the server knows, behind one lock.
struct global_state {
  std::mutex mu;
  std::unordered_map<std::string, std::string> agent_by_token;      // token -> agent id
  std::unordered_map<std::string, std::string> owner_by_thread;     // thread id -> agent id
  std::unordered_map<std::string, std::vector<stored_message>> messages;  // thread id -> messages
  uint64_t next_id = 1;
  int log_fd = -1;
  bool sync = true;
};

class lock_server {
public:
  lock_server(size_t http_threads, const std::vector<api_thread>& threads, const std::string& log_path, bool sync) {
    state_.log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (state_.log_fd < 0)
      throw bench_error("cannot open " + log_path + ": " + std::strerror(errno));
    state_.sync = sync;
    for (size_t i = 0; i < threads.size(); ++i) {
      std::string agent = "agent-" + std::to_string(i % 8);
      state_.agent_by_token[threads[i].token] = agent;
      state_.owner_by_thread[threads[i].id] = agent;
    }
    backline::http::http_settings s;
    s.threads = http_threads;
    server_ = std::make_unique<backline::http::http_server>(s);
    server_->routes().Post(R"(/api/v1/threads/([^/]+)/messages)",
                           [this](const httplib::Request& req, httplib::Response& res) { post(req, res); });
    auto port = server_->bind("127.0.0.1", 0);
    if (!port)
      throw bench_error("lock server: " + port.error().describe());
    port_ = port.value();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~lock_server() {
    server_->stop();
    thread_.join();
    ::close(state_.log_fd);
  }
  int port() const { return port_; }

private:
  static void answer(httplib::Response& res, int status, const std::string& code) {
    res.status = status;
    res.set_content(R"({"error":{"code":")" + code + "\"}}", "application/json");
  }

  void post(const httplib::Request& req, httplib::Response& res) {
    std::string thread_id = req.matches[1];
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0)
      return answer(res, 401, "unauthorized");
    std::string token = auth.substr(7);
    boost::system::error_code ec;
    auto body = json::parse(req.body, ec);
    if (ec || !body.is_object() || !body.as_object().if_contains("text") ||
        !body.as_object().at("text").is_string())
      return answer(res, 400, "invalid_body");
    std::string text(body.as_object().at("text").as_string());

    std::lock_guard lock(state_.mu);  // the one lock: everything below is serialised
    auto agent = state_.agent_by_token.find(token);
    if (agent == state_.agent_by_token.end())
      return answer(res, 401, "unauthorized");
    auto owner = state_.owner_by_thread.find(thread_id);
    if (owner == state_.owner_by_thread.end())
      return answer(res, 404, "not_found");
    if (owner->second != agent->second)
      return answer(res, 403, "forbidden");
    std::string id = "m" + std::to_string(state_.next_id++);
    json::object record{{"thread", thread_id}, {"id", id}, {"author", agent->second}, {"text", text}};
    std::string line = json::serialize(record) + "\n";
    if (::write(state_.log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        (state_.sync && ::fdatasync(state_.log_fd) != 0))
      return answer(res, 500, "storage");
    state_.messages[thread_id].push_back({id, agent->second, text});
    res.status = 201;
    res.set_content(json::serialize(json::object{{"id", id}, {"direction", "to_slack"}, {"text", text}}),
                    "application/json");
  }

  global_state state_;
  std::unique_ptr<backline::http::http_server> server_;
  std::thread thread_;
  int port_ = 0;
};

struct options {
  std::vector<size_t> levels{1, 16, 64, 256, 1000};
  double seconds = 5;
  double warmup = 1;
  size_t threads = 0;  // API threads; 0: max(levels, 64)
  size_t loops = 2;
  long timeout_ms = 5000;
  bool sync = true;
  std::string dir = std::filesystem::temp_directory_path().string();
};

const char* usage_text =
  "usage: lock_bench [--connections 1,16,64,256,1000] [--seconds S] [--warmup S] [--quick]\n"
  "                  [--threads N] [--loops N] [--timeout-ms MS] [--no-sync] [--dir DIR]\n";

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  bool quick = false, seconds_given = false, warmup_given = false;
  try {
    bench::arguments args(argc, argv);
    for (std::string a; args.next(a);) {
      auto next = [&] { return args.value(); };
      if (a == "--connections")
        o.levels = parse_levels(next());
      else if (a == "--seconds")
        o.seconds = std::stod(next()), seconds_given = true;
      else if (a == "--warmup")
        o.warmup = std::stod(next()), warmup_given = true;
      else if (a == "--threads")
        o.threads = std::stoul(next());
      else if (a == "--loops")
        o.loops = std::stoul(next());
      else if (a == "--timeout-ms")
        o.timeout_ms = std::stol(next());
      else if (a == "--dir")
        o.dir = next();
      else if (a == "--no-sync")
        o.sync = false;
      else if (a == "--quick")
        quick = true;
      else
        throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::cerr << "lock_bench: " << e.what() << "\n" << usage_text;
    return std::nullopt;
  }
  if (quick && !seconds_given)
    o.seconds = 2;
  if (quick && !warmup_given)
    o.warmup = 0.5;
  return o;
}

int run(const options& opt) {
  size_t max_c = *std::max_element(opt.levels.begin(), opt.levels.end());
  size_t http_threads = max_c + 64;  // as api_bench gives backline and the trivial server
  size_t api_threads = opt.threads ? opt.threads : std::max<size_t>(max_c, 64);
  raise_fd_limit();
  if (open_file_limit() < 2 * max_c + 256)
    throw bench_error("open-file limit " + std::to_string(open_file_limit()) + " is too low for " +
                      std::to_string(max_c) + " connections");
  std::signal(SIGPIPE, SIG_IGN);

  auto threads = synthetic_threads(api_threads);
  std::string log_path = (std::filesystem::path(opt.dir) / ("lock_bench." + std::to_string(::getpid()) + ".log"));
  std::printf("lock_bench: %u cores, one global mutex, %s append to %s, %zu HTTP worker threads,\n"
              "  %.1f s warm-up + %.1f s measured per level, %zu generator loops, timeout %ld ms\n",
              std::thread::hardware_concurrency(), opt.sync ? "fdatasync'd" : "unsynced (--no-sync)",
              log_path.c_str(), http_threads, opt.warmup, opt.seconds, opt.loops, opt.timeout_ms);
  std::string figures;
  {
    lock_server server(http_threads, threads, log_path, opt.sync);
    auto target = make_target("lock", "127.0.0.1", server.port(), threads);
    std::printf("  %5s  %-9s %9s %8s %8s %8s %9s %7s %8s\n", "conns", "server", "rps", "p50 ms", "p90 ms", "p99 ms",
                "p99.9 ms", "errors", "timeouts");
    for (size_t c : opt.levels) {
      auto r = run_load(target, c, opt.loops, ms_of(opt.warmup), ms_of(opt.seconds),
                        std::chrono::milliseconds(opt.timeout_ms));
      print_row(c, "lock", r);
      add_figures(figures, "lock", c, r);
      std::fflush(stdout);
      std::this_thread::sleep_for(200ms);
    }
  }
  std::filesystem::remove(log_path);
  std::printf("{\"bench\":\"lock\",\"figures\":{%s},\"sync\":%s}\n", figures.c_str(), opt.sync ? "true" : "false");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  auto opt = parse_options(argc, argv);
  if (!opt)
    return 2;
  try {
    return run(*opt);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "lock_bench: " << e.what() << "\n";
    return 1;
  }
}
