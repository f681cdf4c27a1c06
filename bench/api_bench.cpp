// api_bench: durable message posts per second through backline's HTTP API
// (POST /api/v1/threads/{id}/messages, answered 201 only once fsynced) at
// 1, 16, 64, 256 and 1000 keep-alive connections, beside the ceiling measured
// in the same run: a trivial server on the very same HTTP front
// (backline::http::http_server, same worker count and socket settings) that
// answers the same route with a fixed 201 body, hit by the same generator
// with the same request bytes.
//
//   api_bench [--connections 1,16,64,256,1000] [--seconds S] [--warmup S] [--quick]
//             [--backline PATH] [--trivial-only] [--threads N] [--loops N]
//             [--timeout-ms MS] [--no-sync] [--keep] [--compare PATH]
//
// The generator (bench/support/load_generator.hpp, shared with lock_bench):
// a few epoll event loops (--loops, default 2) drive non-blocking keep-alive
// TCP_NODELAY connections; each connection sends one request, waits for the
// whole answer (Content-Length framing), records the latency and sends the
// next. Within a level the two servers take turns (--rounds slices each,
// trivial, backline, backline, trivial, ...), so that the machine's drift
// over seconds falls on both alike. Figures cover the measured slices after
// their warm-ups; errors (non-2xx answers, connection failures) and timeouts
// (no answer within --timeout-ms) are counted over warm-ups, slices and the
// drain after each (requests in flight at the end get their answer or time
// out), and a failed or timed-out connection is reopened.
//
// --compare PATH runs a second backline build (its own child, data and
// setup) in the same turns: trivial, backline, compare, then the other way
// round. Two builds measured in separate runs differ by the machine's drift
// as much as by their code (on a shared 2-core machine, a tenth from one run
// to the next); measured in turns they share it.
//
// backline runs as a child process: `backline serve --listen 127.0.0.1:0
// --data <tmp> --ready-file <tmp> --http-threads <max(C)+64>` with
// BACKLINE_ADMIN_TOKEN set; the bench creates a bot, 8 agents, and one chat
// with one internal thread per connection through the API, then loads it.
//
// Ends with one JSON line:
// {"bench":"api","figures":{…},"ratio":<backline/trivial rps at 64>,"target":0.6}

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backline/malloc_tuning.hpp"
#include "bench/support/backline_child.hpp"
#include "bench/support/load_generator.hpp"
#include "bench/support/thread_costs.hpp"
#include "http/http_server.hpp"

namespace {

using namespace bench;
const char* const trivial_body = R"({"id":"m1","direction":"to_slack","text":"hi"})";
constexpr size_t agent_count = 8;

// ---------------------------------------------------------------------------
// The trivial server: the ceiling.

class trivial_server {
public:
  explicit trivial_server(size_t threads) {
    backline::http::http_settings s;  // backline's defaults, as `backline serve` uses them
    s.threads = threads;
    server_ = std::make_unique<backline::http::http_server>(s);
    server_->routes().Post(R"(/api/v1/threads/([^/]+)/messages)",
                           [](const httplib::Request&, httplib::Response& res) {
                             res.status = 201;
                             res.set_content(trivial_body, "application/json");
                           });
    auto port = server_->bind("127.0.0.1", 0);
    if (!port)
      throw bench_error("trivial server: " + port.error().describe());
    port_ = port.value();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~trivial_server() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }

private:
  std::unique_ptr<backline::http::http_server> server_;
  std::thread thread_;
  int port_ = 0;
};

// ---------------------------------------------------------------------------
// Where the CPU goes: each server's threads over the measured window, per
// request served, by kind of thread.

// A thread's name as a reader of the figures knows it. CAF 0.17.6 names its
// scheduler's workers "caf.multiplexer"; backline names its detached actors'
// threads (actors/thread_name.hpp); HTTP workers keep the process's name.
std::string thread_kind(const std::string& name) {
  if (name == "backline" || name == "api_bench")
    return "http";
  if (name == "caf.multiplexer")
    return "caf_workers";
  std::string k = name;
  for (auto& ch : k)
    if (!std::isalnum(static_cast<unsigned char>(ch)))
      ch = '_';
  return k;
}

struct cpu_use {
  std::map<std::string, thread_use> by_kind;  // the generator's threads left out
  double generator_cpu_s = 0;                 // the load generator's, when it shares the process
};

/// Reads `pid`'s threads as each measured window opens and closes, and adds
/// up what they used over the windows.
class cpu_probe {
public:
  explicit cpu_probe(pid_t pid) : pid_(pid) {
    hooks_.at_start = [this] { before_ = read_threads(pid_); };
    hooks_.at_end = [this] {
      for (const auto& [name, use] : use_between(before_, read_threads(pid_))) {
        auto& sum = used_[name];
        sum.cpu_s += use.cpu_s;
        sum.switches += use.switches;
      }
    };
  }
  cpu_probe(const cpu_probe&) = delete;  // its hooks hold `this`
  cpu_probe& operator=(const cpu_probe&) = delete;
  const window_hooks* hooks() const { return &hooks_; }
  cpu_use use() const {
    cpu_use u;
    for (const auto& [name, use] : used_) {
      if (name == "load-gen") {
        u.generator_cpu_s += use.cpu_s;
        continue;
      }
      auto& k = u.by_kind[thread_kind(name)];
      k.cpu_s += use.cpu_s;
      k.switches += use.switches;
    }
    return u;
  }

private:
  pid_t pid_;
  window_hooks hooks_;
  std::map<pid_t, thread_reading> before_;
  std::map<std::string, thread_use> used_;  // by thread name, over the windows so far
};

/// One line per server: CPU µs and context switches per request, in all and
/// by kind of thread (kinds under 0.5 µs a request left out); adds the
/// figures cpu_us_<server>_c<C>[_<kind>] and switches_<server>_c<C>[_<kind>].
void report_cpu(std::string& json, const char* server, size_t c, const cpu_use& u, double requests) {
  if (requests <= 0)
    return;
  double cpu = 0, sw = 0;
  for (const auto& [kind, use] : u.by_kind) {
    cpu += use.cpu_s;
    sw += static_cast<double>(use.switches);
  }
  auto us = [&](double s) { return s * 1e6 / requests; };
  char buf[160];
  std::printf("  %5s  %-9s CPU %.1f us and %.2f context switches a request:", "", server, us(cpu), sw / requests);
  std::snprintf(buf, sizeof buf, ",\"cpu_us_%s_c%zu\":%.2f,\"switches_%s_c%zu\":%.3f", server, c, us(cpu), server, c,
                sw / requests);
  json += buf;
  std::vector<std::pair<std::string, thread_use>> kinds(u.by_kind.begin(), u.by_kind.end());
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) { return a.second.cpu_s > b.second.cpu_s; });
  const char* sep = "";
  for (const auto& [kind, use] : kinds) {
    if (us(use.cpu_s) < 0.5)
      continue;
    std::printf("%s %s %.1f/%.2f", sep, kind.c_str(), us(use.cpu_s), static_cast<double>(use.switches) / requests);
    sep = ",";
    std::snprintf(buf, sizeof buf, ",\"cpu_us_%s_c%zu_%s\":%.2f,\"switches_%s_c%zu_%s\":%.3f", server, c, kind.c_str(),
                  us(use.cpu_s), server, c, kind.c_str(), static_cast<double>(use.switches) / requests);
    json += buf;
  }
  if (u.generator_cpu_s > 0)
    std::printf(" (load generator %.1f us)", us(u.generator_cpu_s));
  std::printf("\n");
}

// ---------------------------------------------------------------------------
// Setup through the API.

class api_client {
public:
  api_client(const std::string& host, int port) : cli_(host, port) {
    cli_.set_keep_alive(true);
    cli_.set_tcp_nodelay(true);
    cli_.set_connection_timeout(10, 0);
    cli_.set_read_timeout(60, 0);
    cli_.set_write_timeout(60, 0);
  }

  // POSTs JSON as `token`; returns the parsed answer, or throws with the
  // status and body when the answer is not 2xx or not a JSON object.
  boost::json::object post(const std::string& path, const std::string& token, const boost::json::value& body) {
    httplib::Headers headers = {{"Authorization", "Bearer " + token}};
    auto res = cli_.Post(path.c_str(), headers, boost::json::serialize(body), "application/json");
    if (!res)
      throw bench_error("setup: POST " + path + " failed: " + httplib::to_string(res.error()));
    if (res->status < 200 || res->status > 299)
      throw bench_error("setup: POST " + path + " answered " + std::to_string(res->status) + ": " + res->body);
    boost::system::error_code ec;
    auto parsed = boost::json::parse(res->body, ec);
    if (ec || !parsed.is_object())
      throw bench_error("setup: POST " + path + " answered " + std::to_string(res->status) +
                        " with a body that is not a JSON object: " + res->body);
    return parsed.as_object();
  }

private:
  httplib::Client cli_;
};

std::string string_field(const boost::json::object& o, const char* name, const std::string& what) {
  auto* v = o.if_contains(name);
  if (!v || !v->is_string())
    throw bench_error("setup: " + what + " answered without a string \"" + name + "\": " + boost::json::serialize(o));
  return std::string(v->as_string());
}

// A bot, 8 agents, and `count` chats each with one internal thread owned by
// agent i % 8. Eight setup workers, one per agent, create them in parallel.
std::vector<api_thread> setup_backline(const std::string& host, int port, size_t count) {
  api_client admin(host, port);
  auto bot = admin.post("/api/v1/users", admin_token, {{"id", "bench-bot"}, {"name", "Bench Bot"}, {"role", "bot"}});
  std::string bot_token = string_field(bot, "token", "POST /api/v1/users (bot)");
  std::vector<std::string> agent_tokens;
  for (size_t k = 0; k < agent_count; ++k) {
    auto a = admin.post("/api/v1/users", admin_token,
                        {{"id", "agent-" + std::to_string(k)},
                         {"name", "Agent " + std::to_string(k)},
                         {"role", "agent"},
                         {"inbox_access", true}});
    agent_tokens.push_back(string_field(a, "token", "POST /api/v1/users (agent)"));
  }

  std::vector<api_thread> threads(count);
  std::atomic<size_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex failure_mu;
  std::string failure;
  std::vector<std::thread> workers;
  for (size_t k = 0; k < agent_count; ++k) {
    workers.emplace_back([&, k] {
      try {
        api_client cli(host, port);
        for (size_t i = k; i < count && !stop; i += agent_count) {
          std::string n = std::to_string(i);
          auto chat = cli.post("/api/v1/chats", bot_token,
                               {{"customer", {{"id", "cust-" + n}, {"name", "Customer " + n}}}, {"text", "hello"}});
          std::string chat_id = string_field(chat, "id", "POST /api/v1/chats");
          cli.post("/api/v1/chats/" + chat_id + "/assign", bot_token, {{"agent_id", "agent-" + std::to_string(k)}});
          auto thread = cli.post("/api/v1/chats/" + chat_id + "/threads", agent_tokens[k],
                                 {{"channel_id", "C0FINANCE"}, {"text", "query"}});
          threads[i] = {string_field(thread, "id", "POST /api/v1/chats/{id}/threads"), agent_tokens[k]};
          ++done;
        }
      } catch (const std::exception& e) {
        stop = true;
        std::lock_guard lock(failure_mu);
        if (failure.empty())
          failure = e.what();
      }
    });
  }
  // Progress, for setups slow enough to wonder about.
  auto started = clock_type::now();
  auto next_report = started + 5s;
  while (done < count && !stop) {
    std::this_thread::sleep_for(50ms);
    if (clock_type::now() >= next_report) {
      std::printf("  setup: %zu/%zu threads created\n", done.load(), count);
      std::fflush(stdout);
      next_report += 5s;
    }
  }
  for (auto& w : workers)
    w.join();
  if (!failure.empty())
    throw bench_error(failure);
  double secs = std::chrono::duration<double>(clock_type::now() - started).count();
  std::printf("  setup: bot, %zu agents, %zu chats with one thread each in %.1f s\n", agent_count, count, secs);
  return threads;
}


const char* usage_text =
  "usage: api_bench [--connections 1,16,64,256,1000] [--seconds S] [--warmup S] [--quick]\n"
  "                 [--backline PATH] [--trivial-only] [--threads N] [--loops N]\n"
  "                 [--timeout-ms MS] [--rounds R] [--no-sync] [--keep] [--compare PATH]\n\n"
  "  --connections LIST  concurrency levels (default 1,16,64,256,1000)\n"
  "  --seconds S         measured seconds per level and server (default 5)\n"
  "  --warmup S          warm-up seconds before each measured slice (default 1)\n"
  "  --rounds R          the seconds split into R slices per server, the servers\n"
  "                      taking turns (trivial, backline, backline, trivial, ...);\n"
  "                      default 4, 2 with --quick\n"
  "  --quick             2 s per level, 0.5 s warm-up\n"
  "  --backline PATH     the backline binary (default: ../backline next to this binary)\n"
  "  --trivial-only      measure the trivial server alone (no backline child)\n"
  "  --threads N         internal threads created for the load (default max(C), at least 64)\n"
  "  --loops N           generator event-loop threads (default 2)\n"
  "  --timeout-ms MS     a request unanswered this long is a timeout (default 5000)\n"
  "  --no-sync           pass --no-sync to backline (no fsync: shows the durability cost)\n"
  "  --keep              keep backline's temporary data directory and log\n"
  "  --compare PATH      a second backline binary, measured in the same turns\n"
  "                      (trivial, backline, compare, compare, backline, trivial, ...)\n";

struct options {
  std::vector<size_t> levels = {1, 16, 64, 256, 1000};
  double seconds = 5;
  double warmup = 1;
  std::string backline;
  bool trivial_only = false;
  size_t threads = 0;
  size_t loops = 2;
  long timeout_ms = 5000;
  size_t rounds = 4;
  bool no_sync = false;
  bool keep = false;
  std::string compare;  // a second backline binary, measured in the same turns
};

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  bool seconds_given = false, warmup_given = false, rounds_given = false, quick = false;
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
      else if (a == "--quick")
        quick = true;
      else if (a == "--backline")
        o.backline = next();
      else if (a == "--trivial-only")
        o.trivial_only = true;
      else if (a == "--threads")
        o.threads = std::stoul(next());
      else if (a == "--loops")
        o.loops = std::max<size_t>(1, std::stoul(next()));
      else if (a == "--timeout-ms")
        o.timeout_ms = std::stol(next());
      else if (a == "--rounds")
        o.rounds = std::stoul(next()), rounds_given = true;
      else if (a == "--no-sync")
        o.no_sync = true;
      else if (a == "--keep")
        o.keep = true;
      else if (a == "--compare")
        o.compare = next();
      else if (a == "--help" || a == "-h") {
        std::cout << usage_text;
        std::exit(0);
      } else
        throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::cerr << "api_bench: " << e.what() << "\n" << usage_text;
    return std::nullopt;
  }
  if (quick && !seconds_given)
    o.seconds = 2;
  if (quick && !warmup_given)
    o.warmup = 0.5;
  if (quick && !rounds_given)
    o.rounds = 2;
  if (!o.compare.empty() && o.trivial_only) {
    std::cerr << "api_bench: --compare needs backline (not --trivial-only)\n";
    return std::nullopt;
  }
  if (o.seconds <= 0 || o.warmup < 0 || o.timeout_ms <= 0 || o.rounds == 0) {
    std::cerr << "api_bench: --seconds, --warmup, --rounds and --timeout-ms must be positive\n";
    return std::nullopt;
  }
  return o;
}

int run(const options& opt) {
  size_t max_c = *std::max_element(opt.levels.begin(), opt.levels.end());
  size_t http_threads = max_c + 64;
  size_t api_threads = opt.threads ? opt.threads : std::max<size_t>(max_c, 64);
  auto warmup = ms_of(opt.warmup);
  auto window = ms_of(opt.seconds);
  auto timeout = std::chrono::milliseconds(opt.timeout_ms);

  raise_fd_limit();
  // Client and server ends of every connection live in this process for the
  // trivial server, plus the worker threads' descriptors and some slack.
  if (open_file_limit() < 2 * max_c + 256)
    throw bench_error("open-file limit " + std::to_string(open_file_limit()) + " is too low for " +
                      std::to_string(max_c) + " connections (need about " + std::to_string(2 * max_c + 256) + ")");
  std::signal(SIGPIPE, SIG_IGN);

  std::printf("api_bench: %u cores, levels", std::thread::hardware_concurrency());
  for (size_t c : opt.levels)
    std::printf(" %zu", c);
  std::printf(" connections, %.1f s measured per level and server in %zu turns (each after %.1f s of warm-up),\n"
              "  %zu generator loops, %zu HTTP worker threads per server, timeout %lld ms, open-file limit %zu\n",
              opt.seconds, opt.rounds, opt.warmup, opt.loops, http_threads, static_cast<long long>(timeout.count()),
              open_file_limit());

  // A backline under test: its child process, data, API setup and target.
  struct server_under_test {
    std::string name;
    std::unique_ptr<backline_child> child;
    std::filesystem::path workdir;
    std::vector<api_thread> threads;
    std::optional<load_target> target;
  };
  std::vector<server_under_test> servers;  // backline, then --compare's build
  bool failed = true;
  struct cleanup {
    std::vector<server_under_test>& servers;
    const bool& failed;
    bool keep;
    ~cleanup() {
      for (auto& s : servers) {
        if (s.child)
          s.child->stop();
        if (!s.workdir.empty()) {
          if (keep || failed)
            std::fprintf(stderr, "api_bench: kept %s\n", s.workdir.c_str());
          else
            std::filesystem::remove_all(s.workdir);
        }
      }
    }
  } guard{servers, failed, opt.keep};

  auto start_backline = [&](const std::string& name, const std::string& binary) {
    if (::access(binary.c_str(), X_OK) != 0)
      throw bench_error("backline binary " + binary +
                        " is not there or not executable (build it, pass --backline PATH, or use --trivial-only)");
    auto& s = servers.emplace_back();
    s.name = name;
    char tmpl[] = "/tmp/api_bench.XXXXXX";
    if (!::mkdtemp(tmpl))
      throw bench_error(std::string("mkdtemp: ") + std::strerror(errno));
    s.workdir = tmpl;
    // No per-caller limit: the benchmark drives each token far past what a person would.
    std::vector<std::string> args{"--http-threads", std::to_string(http_threads), "--rate-limit", "0"};
    if (opt.no_sync)
      args.push_back("--no-sync");
    s.child = std::make_unique<backline_child>(binary, s.workdir.string(), args);
    s.child->wait_ready();
    try {
      s.threads = setup_backline(s.child->host(), s.child->port(), api_threads);
    } catch (const bench_error& e) {
      throw bench_error(std::string(e.what()) + "\n(backline log: " + s.child->log_path() + ")");
    }
    s.target = make_target(name, s.child->host(), s.child->port(), s.threads);
  };
  std::vector<api_thread> threads;  // the trivial server's requests name these
  if (!opt.trivial_only) {
    start_backline("backline", opt.backline.empty() ? default_backline_path().string() : opt.backline);
    if (!opt.compare.empty()) {
      start_backline("compare", opt.compare);
      std::printf("  backline: %s\n  compare:  %s\n", (opt.backline.empty() ? default_backline_path().string()
                                                                              : opt.backline).c_str(),
                  opt.compare.c_str());
    }
    threads = servers.front().threads;
  } else {
    threads = synthetic_threads(api_threads);
  }

  trivial_server trivial(http_threads);
  load_target trivial_target = make_target("trivial", "127.0.0.1", trivial.port(), threads);
  std::printf("  trivial server on 127.0.0.1:%d; %zu threads, %zu agents\n\n", trivial.port(), threads.size(),
              threads.size() < agent_count ? threads.size() : agent_count);

  std::printf("  %5s  %-9s %9s %8s %8s %8s %9s %7s %8s\n", "conns", "server", "rps", "p50 ms", "p90 ms", "p99 ms",
              "p99.9 ms", "errors", "timeouts");
  std::string figures;
  std::optional<double> ratio_64, p99_64;
  std::optional<uint64_t> timeouts_1000;
  std::optional<double> p99_1000;
  // The servers take turns within a level, in slices of window/rounds each
  // with its own warm-up: trivial, backline, backline, trivial, trivial, ...
  // (with --compare: trivial, backline, compare, compare, backline, trivial).
  // This machine's speed drifts over seconds, for reasons outside the
  // program; measured one after the other, a drift between the two windows
  // moved the ratio by about a tenth. Turns in this order cancel a steady
  // drift. Each turn ends with a pause for closed connections to drain.
  const auto slice = std::max(1ms, window / static_cast<long>(opt.rounds));
  const auto measured = slice * static_cast<long>(opt.rounds);
  const double window_s = std::chrono::duration<double>(measured).count();
  for (size_t c : opt.levels) {
    // Turn 0 is the trivial server's, turn i the i-th backline's.
    const size_t turns = 1 + servers.size();
    std::deque<cpu_probe> cpu;  // never moved: their hooks hold `this`
    cpu.emplace_back(::getpid());
    for (auto& s : servers)
      cpu.emplace_back(s.child->pid());
    std::vector<run_counts> counts(turns);
    auto take_turn = [&](size_t turn) {
      const load_target& target = turn == 0 ? trivial_target : *servers[turn - 1].target;
      counts[turn].merge(run_load_counts(target, c, opt.loops, warmup, slice, timeout, cpu[turn].hooks()));
      std::this_thread::sleep_for(200ms);  // let closed connections drain
    };
    for (size_t r = 0; r < opt.rounds; ++r)
      for (size_t i = 0; i < turns; ++i)
        take_turn(r % 2 == 0 ? i : turns - 1 - i);
    auto t = summarize(std::move(counts[0]), measured);
    print_row(c, "trivial", t);
    add_figures(figures, "trivial", c, t);
    report_cpu(figures, "trivial", c, cpu[0].use(), t.rps * window_s);
    std::fflush(stdout);
    for (size_t i = 0; i < servers.size(); ++i) {
      auto& s = servers[i];
      const char* name = s.name.c_str();
      auto b = summarize(std::move(counts[i + 1]), measured);
      print_row(c, name, b);
      add_figures(figures, name, c, b);
      report_cpu(figures, name, c, cpu[i + 1].use(), b.rps * window_s);
      double ratio = t.rps > 0 ? b.rps / t.rps : 0;
      std::printf("  %5zu  %-9s %9.2f  (%s/trivial rps)\n", c, "ratio", ratio, name);
      char buf[64];
      std::snprintf(buf, sizeof buf, i == 0 ? ",\"ratio_c%zu\":%.3f" : ",\"ratio_compare_c%zu\":%.3f", c, ratio);
      figures += buf;
      if (i == 0 && c == 64) {
        ratio_64 = ratio;
        p99_64 = b.p99;
      }
      if (i == 0 && c == 1000) {
        timeouts_1000 = b.timeouts;
        p99_1000 = b.p99;
      }
      if (!s.child->alive())
        throw bench_error(s.name + " died during the run; its log:\n" + tail_of(s.child->log_path()));
    }
    std::fflush(stdout);
  }

  bool all_met = true;
  std::printf("\n  targets (backline):\n");
  if (servers.empty()) {
    std::printf("    not judged: --trivial-only\n");
    all_met = false;
  } else {
    if (ratio_64) {
      bool met = *ratio_64 >= 0.6;  // issue 7's target
      all_met &= met;
      std::printf("    c64 rps ratio %.2f >= 0.60: %s\n", *ratio_64, met ? "MET" : "MISSED");
      met = *p99_64 <= 20.0;
      all_met &= met;
      std::printf("    c64 p99 %.2f ms <= 20 ms: %s\n", *p99_64, met ? "MET" : "MISSED");
    } else {
      all_met = false;
      std::printf("    c64 not run (add 64 to --connections)\n");
    }
    if (timeouts_1000) {
      bool met = *timeouts_1000 == 0;
      all_met &= met;
      std::printf("    c1000 timeouts %llu == 0: %s\n", static_cast<unsigned long long>(*timeouts_1000),
                  met ? "MET" : "MISSED");
      met = *p99_1000 <= 100.0;
      all_met &= met;
      std::printf("    c1000 p99 %.2f ms <= 100 ms: %s\n", *p99_1000, met ? "MET" : "MISSED");
    } else {
      all_met = false;
      std::printf("    c1000 not run (add 1000 to --connections)\n");
    }
  }
  for (auto& srv : servers) {
    auto how = srv.child->stop();
    std::printf("  %s stopped with SIGTERM: %s\n", srv.name.c_str(), how.c_str());
  }
  failed = false;
  char ratio_text[32] = "null";
  if (ratio_64)
    std::snprintf(ratio_text, sizeof ratio_text, "%.3f", *ratio_64);
  std::printf("{\"bench\":\"api\",\"figures\":{%s},\"ratio\":%s,\"target\":0.6,\"targets_met\":%s}\n", figures.c_str(),
              ratio_text, all_met ? "true" : "false");
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
    std::cerr << "api_bench: " << e.what() << "\n";
    return 1;
  }
}
