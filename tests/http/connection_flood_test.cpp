// A flood of connections against a server with few workers: idle
// connections (never a byte, or idle between requests) give their worker to
// waiting ones after a short grace, past the bound of waiting connections new
// ones are answered 503 at once, and the server stays up and recovers.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "http/http_server.hpp"

using namespace backline;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// As many descriptors as the hard limit allows (the flood needs two per connection).
size_t raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<size_t>(lim.rlim_cur);
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What arrived on `fd` so far, without waiting.
std::string received_now(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

struct flood_front {
  std::unique_ptr<http::http_server> front;
  std::thread runner;
  int port = 0;

  explicit flood_front(http::http_settings s) {
    front = std::make_unique<http::http_server>(s);
    front->routes().Get("/ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("pong", "text/plain");
    });
    auto p = front->bind("127.0.0.1", 0);
    REQUIRE(p);
    port = p.value();
    runner = std::thread([this] { front->run(); });
  }
  ~flood_front() {
    front->stop();
    runner.join();
  }
  std::string metrics() {
    std::string out;
    front->metrics().render(out);
    return out;
  }
};

// One ordinary client's request, as a polite client makes it: a 503 with
// Retry-After is tried again after that wait. Answered, and how long it took.
struct ping_result {
  bool ok = false;
  double took_s = 0;
  int refused = 0;  // 503s before the answer
  std::string last;
};

ping_result ping(int port) {
  ping_result out;
  auto t0 = steady::now();
  for (int attempt = 0; attempt < 5 && !out.ok; ++attempt) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(10, 0);
    cli.set_read_timeout(10, 0);
    auto r = cli.Get("/ping");
    if (r && r->status == 503 && r->get_header_value("Retry-After") == "1") {
      ++out.refused;
      std::this_thread::sleep_for(1s);
      continue;
    }
    out.ok = r && r->status == 200 && r->body == "pong";
    out.last = r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
    break;
  }
  out.took_s = std::chrono::duration<double>(steady::now() - t0).count();
  return out;
}

} // namespace

TEST_CASE("flood: idle connections give way to a normal client, past the waiting bound new ones get 503, and the server recovers") {
  const size_t limit = raise_fd_limit();
  const size_t flood = std::min<size_t>(1500, limit > 400 ? (limit - 200) / 2 : 100);
  INFO("descriptor limit " << limit << ", flood of " << flood);

  http::http_settings s;
  s.threads = 8;
  s.keep_alive_timeout_s = 30;
  s.read_timeout_s = 10;
  s.max_waiting_connections = 200;
  flood_front f(s);

  std::vector<int> idle;
  for (size_t i = 0; i < flood; ++i) {
    int fd = connect_to(f.port);
    if (fd >= 0)
      idle.push_back(fd);
  }
  CHECK(idle.size() == flood);

  // Without giving way, this would wait behind them for the keep-alive timeout (30 s).
  auto p = ping(f.port);
  INFO("503s first: " << p.refused << ", took " << p.took_s << " s, last: " << p.last);
  CHECK(p.ok);
  CHECK(p.took_s < 15.0);  // not the keep-alive timeout's 30 s

  // Past the bound, connections were answered 503 overloaded with Retry-After at once.
  std::this_thread::sleep_for(300ms);
  size_t told_503 = 0;
  for (int fd : idle) {
    auto got = received_now(fd);
    if (got.rfind("HTTP/1.1 503", 0) == 0 && got.find("Retry-After: 1") != std::string::npos &&
        got.find("\"overloaded\"") != std::string::npos)
      ++told_503;
  }
  CHECK(told_503 > 0);
  auto m = f.metrics();
  CHECK_THAT(m, !Catch::Contains("\nbackline_http_connections_shed_total 0\n"));
  CHECK_THAT(m, !Catch::Contains("\nbackline_http_idle_closed_total 0\n"));

  for (int fd : idle)
    ::close(fd);
  // Served normally afterwards.
  for (int i = 0; i < 20; ++i) {
    auto again = ping(f.port);
    CHECK(again.ok);
    CHECK(again.refused == 0);
  }
  CHECK_THAT(f.metrics(), Catch::Contains("\nbackline_http_connections_waiting 0\n"));
}

TEST_CASE("flood: keep-alive connections idle between requests give way to waiting ones") {
  http::http_settings s;
  s.threads = 4;
  s.keep_alive_timeout_s = 30;
  flood_front f(s);

  // 24 clients each make a request and keep their connection open; with 4
  // workers, all are answered only if idle ones give way (else 30 s each).
  constexpr int clients = 24;
  std::vector<std::unique_ptr<httplib::Client>> kept;
  std::vector<std::thread> threads;
  std::vector<int> ok(clients, 0);
  auto t0 = steady::now();
  for (int i = 0; i < clients; ++i) {
    kept.push_back(std::make_unique<httplib::Client>("127.0.0.1", f.port));
    kept.back()->set_keep_alive(true);
    kept.back()->set_read_timeout(15, 0);
  }
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto r = kept[i]->Get("/ping");
      ok[i] = r && r->status == 200 ? 1 : 0;
    });
  for (auto& t : threads)
    t.join();
  CHECK(std::count(ok.begin(), ok.end(), 1) == clients);
  CHECK(steady::now() - t0 < 10s);
  // The kept clients reconnect when their connection was closed.
  for (int i = 0; i < clients; ++i) {
    auto r = kept[i]->Get("/ping");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}
