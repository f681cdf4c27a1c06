#pragma once
// The load generator shared by the HTTP benchmarks (api_bench, lock_bench):
// a few epoll event loops drive non-blocking keep-alive TCP_NODELAY
// connections; each connection sends one POST /api/v1/threads/{id}/messages
// with a small JSON body, waits for the whole answer (Content-Length
// framing), records the latency and sends the next. Figures cover the
// measured window after the warm-up; errors (non-2xx answers, connection
// failures) and timeouts (no answer within the timeout) are counted over
// warm-up, window and the drain after it, and a failed or timed-out
// connection is reopened.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/support/backline_child.hpp"
#include "bench/support/options.hpp"

namespace bench {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The load generator.

// What every connection of one run sends: per API thread, the request's
// head up to the Content-Length value; the body is appended per request.
struct load_target {
  std::string name;  // "trivial" or "backline"
  sockaddr_in addr{};
  std::vector<std::string> heads;
};

struct run_plan {
  const load_target* target = nullptr;
  size_t connections = 0;
  time_point measure_from;  // warm-up ends
  time_point end;           // window ends
  std::chrono::milliseconds timeout{5000};
};

struct run_counts {
  uint64_t ok = 0;           // 2xx answers inside the window
  uint64_t non2xx = 0;       // whole run
  uint64_t conn_errors = 0;  // whole run: connect/reset/EOF/protocol failures
  uint64_t timeouts = 0;     // whole run
  std::vector<uint32_t> latency_us;  // 2xx answers inside the window

  void merge(run_counts&& o) {
    ok += o.ok;
    non2xx += o.non2xx;
    conn_errors += o.conn_errors;
    timeouts += o.timeouts;
    latency_us.insert(latency_us.end(), o.latency_us.begin(), o.latency_us.end());
  }
};

enum class conn_state { closed, connecting, sending, receiving };

struct connection {
  size_t index = 0;  // within the run; picks the API thread
  int fd = -1;
  conn_state state = conn_state::closed;
  bool out_registered = false;  // EPOLLOUT is in the interest set
  const std::string* head = nullptr;
  std::string out;
  size_t out_off = 0;
  std::string in;
  time_point sent_at;        // when the current request (or connect) started
  time_point reopen_at;      // when closed: when to connect again
  uint64_t seq = 0;
};

// Finds a complete HTTP/1.1 response at the start of `in`.
// Returns its length, 0 if incomplete, -1 if malformed (or chunked, which
// this client does not frame).
inline long parse_response(const std::string& in, int& status, bool& close) {
  size_t hdr_end = in.find("\r\n\r\n");
  if (hdr_end == std::string::npos)
    return in.size() > 65536 ? -1 : 0;
  if (in.compare(0, 5, "HTTP/") != 0)
    return -1;
  size_t sp = in.find(' ');
  if (sp == std::string::npos || sp + 4 > hdr_end)
    return -1;
  status = std::atoi(in.c_str() + sp + 1);
  if (status < 100 || status > 999)
    return -1;
  long content_length = 0;
  close = in.compare(0, 8, "HTTP/1.0") == 0;
  size_t pos = in.find("\r\n") + 2;
  while (pos < hdr_end) {
    size_t eol = in.find("\r\n", pos);
    const char* line = in.c_str() + pos;
    size_t len = eol - pos;
    auto value_of = [&](size_t name_len) {
      std::string v(line + name_len, len - name_len);
      size_t b = v.find_first_not_of(" \t");
      return b == std::string::npos ? std::string() : v.substr(b);
    };
    if (len > 15 && strncasecmp(line, "content-length:", 15) == 0)
      content_length = std::atol(value_of(15).c_str());
    else if (len > 11 && strncasecmp(line, "connection:", 11) == 0)
      close = strncasecmp(value_of(11).c_str(), "close", 5) == 0;
    else if (len > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
      return -1;
    pos = eol + 2;
  }
  if (content_length < 0)
    return -1;
  size_t total = hdr_end + 4 + static_cast<size_t>(content_length);
  return in.size() >= total ? static_cast<long>(total) : 0;
}

// One epoll loop driving a share of the connections until plan.end.
class event_loop {
public:
  event_loop(const run_plan& plan, std::vector<connection*> conns) : plan_(plan), conns_(std::move(conns)) {}

  run_counts run() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0)
      throw bench_error(std::string("epoll_create1: ") + std::strerror(errno));
    auto now = clock_type::now();
    for (auto* c : conns_)
      open(*c, now);
    std::vector<epoll_event> events(512);
    auto next_scan = now + 20ms;
    // After plan.end no request starts; the loop drains the ones in flight
    // (each ends answered or timed out), so a stuck request counts even when
    // the run is shorter than the timeout.
    auto hard_stop = plan_.end + plan_.timeout + 50ms;
    while (now < plan_.end || (busy_ > 0 && now < hard_stop)) {
      int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 10);
      now = clock_type::now();
      if (n < 0 && errno != EINTR)
        throw bench_error(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i)
        on_event(*static_cast<connection*>(events[i].data.ptr), events[i].events, now);
      if (now >= next_scan) {
        scan(now);
        next_scan = now + 20ms;
      }
    }
    // Still unanswered after the drain: older than the timeout.
    for (auto* c : conns_) {
      if (c->state != conn_state::closed)
        ++counts_.timeouts;
      close_fd(*c);
    }
    ::close(ep_);
    return std::move(counts_);
  }

private:
  void open(connection& c, time_point now) {
    c.in.clear();
    c.out_registered = false;
    c.sent_at = now;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail(c, now);
      return;
    }
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&plan_.target->addr), sizeof(sockaddr_in));
    if (rc != 0 && errno != EINPROGRESS) {
      fail(c, now);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
      fail(c, now);
      return;
    }
    c.out_registered = true;
    c.state = conn_state::connecting;
    ++busy_;
  }

  void close_fd(connection& c) {
    if (c.fd >= 0)
      ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    if (c.state != conn_state::closed)
      --busy_;
    c.state = conn_state::closed;
  }

  // A connection failure: counted, closed, reopened shortly (a small delay
  // keeps a dead server from turning the loop into a reconnect storm).
  void fail(connection& c, time_point now) {
    ++counts_.conn_errors;
    close_fd(c);
    c.reopen_at = now + 10ms;
  }

  void want_out(connection& c, bool on) {
    if (c.out_registered == on)
      return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    c.out_registered = on;
  }

  void start_request(connection& c, time_point now) {
    char body[64];
    int body_len = std::snprintf(body, sizeof body, "{\"text\":\"load message %llu\"}",
                                 static_cast<unsigned long long>(c.seq * plan_.connections + c.index));
    ++c.seq;
    c.out.assign(*c.head);
    c.out += std::to_string(body_len);
    c.out += "\r\n\r\n";
    c.out.append(body, static_cast<size_t>(body_len));
    c.out_off = 0;
    c.sent_at = now;
    c.state = conn_state::sending;
    flush(c, now);
  }

  void flush(connection& c, time_point now) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        want_out(c, true);
        return;
      }
      fail(c, now);
      return;
    }
    c.state = conn_state::receiving;
    want_out(c, false);
  }

  void on_event(connection& c, uint32_t ev, time_point now) {
    if (c.fd < 0)
      return;
    if (c.state == conn_state::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if ((ev & (EPOLLERR | EPOLLHUP)) || ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        fail(c, now);
        return;
      }
      if (now >= plan_.end)
        close_fd(c);  // draining: no new requests
      else if (ev & EPOLLOUT)
        start_request(c, now);
      return;
    }
    if ((ev & EPOLLOUT) && c.state == conn_state::sending)
      flush(c, now);
    if (c.fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
      receive(c, now);
  }

  void receive(connection& c, time_point now) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof buf)
          break;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      fail(c, now);  // EOF or reset while a request was out
      return;
    }
    if (c.state != conn_state::receiving)
      return;  // an answer before the request was fully sent: wait for it
    int status = 0;
    bool close = false;
    long used = parse_response(c.in, status, close);
    if (used == 0)
      return;
    if (used < 0) {
      fail(c, now);
      return;
    }
    c.in.erase(0, static_cast<size_t>(used));
    if (!c.in.empty()) {  // bytes nobody asked for: the framing is lost
      fail(c, now);
      return;
    }
    if (status >= 200 && status < 300) {
      if (c.sent_at >= plan_.measure_from && now <= plan_.end) {
        ++counts_.ok;
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - c.sent_at).count();
        counts_.latency_us.push_back(static_cast<uint32_t>(std::min<long long>(us, UINT32_MAX)));
      }
    } else {
      ++counts_.non2xx;
    }
    if (now >= plan_.end) {  // draining: this connection is done
      close_fd(c);
      return;
    }
    if (close) {  // the server ends keep-alive: not an error, connect again
      close_fd(c);
      open(c, now);
      return;
    }
    start_request(c, now);
  }

  void scan(time_point now) {
    bool draining = now >= plan_.end;
    for (auto* c : conns_) {
      if (c->state == conn_state::closed) {
        if (!draining && now >= c->reopen_at)
          open(*c, now);
      } else if (now - c->sent_at > plan_.timeout) {
        ++counts_.timeouts;
        close_fd(*c);
        if (!draining)
          open(*c, now);
      }
    }
  }

  const run_plan& plan_;
  std::vector<connection*> conns_;
  int ep_ = -1;
  size_t busy_ = 0;  // connections not closed (connecting or with a request out)
  run_counts counts_;
};

struct run_result {
  double rps = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0;  // ms
  uint64_t errors = 0;  // non-2xx + connection failures
  uint64_t non2xx = 0;
  uint64_t conn_errors = 0;
  uint64_t timeouts = 0;
};

inline double percentile_ms(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

/// Called as the measured window opens and as it closes (from the thread
/// that called run_load, while the generator's loops run).
struct window_hooks {
  std::function<void()> at_start, at_end;
};

/// One load run's raw counts (latencies unsorted), for callers that add
/// several runs up before the percentiles (api_bench's alternating slices).
inline run_counts run_load_counts(const load_target& target, size_t connections, size_t loops,
                                  std::chrono::milliseconds warmup, std::chrono::milliseconds window,
                                  std::chrono::milliseconds timeout, const window_hooks* hooks = nullptr) {
  std::vector<connection> conns(connections);
  for (size_t i = 0; i < connections; ++i) {
    conns[i].index = i;
    conns[i].head = &target.heads[i % target.heads.size()];
  }
  loops = std::max<size_t>(1, std::min(loops, connections));
  run_plan plan;
  plan.target = &target;
  plan.connections = connections;
  plan.timeout = timeout;
  auto start = clock_type::now();
  plan.measure_from = start + warmup;
  plan.end = plan.measure_from + window;

  std::vector<run_counts> partial(loops);
  std::vector<std::thread> workers;
  std::mutex failure_mu;
  std::string failure;
  for (size_t l = 0; l < loops; ++l) {
    std::vector<connection*> mine;
    for (size_t i = l; i < connections; i += loops)
      mine.push_back(&conns[i]);
    workers.emplace_back([&, l, mine = std::move(mine)]() mutable {
      (void)pthread_setname_np(pthread_self(), "load-gen");  // told apart from the servers' threads
      try {
        event_loop loop(plan, std::move(mine));
        partial[l] = loop.run();
      } catch (const std::exception& e) {
        std::lock_guard lock(failure_mu);
        failure = e.what();
      }
    });
  }
  if (hooks) {
    std::this_thread::sleep_until(plan.measure_from);
    if (hooks->at_start)
      hooks->at_start();
    std::this_thread::sleep_until(plan.end);
    if (hooks->at_end)
      hooks->at_end();
  }
  for (auto& w : workers)
    w.join();
  if (!failure.empty())
    throw bench_error("load generator: " + failure);

  run_counts all;
  for (auto& p : partial)
    all.merge(std::move(p));
  return all;
}

/// Requests per second over `window` (the measured time the counts cover) and the percentiles.
inline run_result summarize(run_counts all, std::chrono::milliseconds window) {
  std::sort(all.latency_us.begin(), all.latency_us.end());
  run_result r;
  r.rps = static_cast<double>(all.ok) / std::chrono::duration<double>(window).count();
  r.p50 = percentile_ms(all.latency_us, 0.50);
  r.p90 = percentile_ms(all.latency_us, 0.90);
  r.p99 = percentile_ms(all.latency_us, 0.99);
  r.p999 = percentile_ms(all.latency_us, 0.999);
  r.non2xx = all.non2xx;
  r.conn_errors = all.conn_errors;
  r.errors = all.non2xx + all.conn_errors;
  r.timeouts = all.timeouts;
  return r;
}

inline run_result run_load(const load_target& target, size_t connections, size_t loops, std::chrono::milliseconds warmup,
                           std::chrono::milliseconds window, std::chrono::milliseconds timeout,
                           const window_hooks* hooks = nullptr) {
  return summarize(run_load_counts(target, connections, loops, warmup, window, timeout, hooks), window);
}


// ---------------------------------------------------------------------------
// Request heads.

struct api_thread {
  std::string id;     // the internal thread's id
  std::string token;  // its owning agent's token
};

inline std::vector<std::string> heads_for(const std::vector<api_thread>& threads, const std::string& host, int port) {
  std::vector<std::string> heads;
  heads.reserve(threads.size());
  for (const auto& t : threads)
    heads.push_back("POST /api/v1/threads/" + t.id + "/messages HTTP/1.1\r\nHost: " + host + ":" +
                    std::to_string(port) + "\r\nAuthorization: Bearer " + t.token +
                    "\r\nContent-Type: application/json\r\nContent-Length: ");
  return heads;
}

inline load_target make_target(std::string name, const std::string& host, int port, const std::vector<api_thread>& threads) {
  load_target t;
  t.name = std::move(name);
  t.addr.sin_family = AF_INET;
  t.addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &t.addr.sin_addr) != 1)
    throw bench_error("not an IPv4 address: " + host);
  t.heads = heads_for(threads, host, port);
  return t;
}

// ---------------------------------------------------------------------------

// Ids and tokens shaped like real ones, for --trivial-only runs.
inline std::vector<api_thread> synthetic_threads(size_t n, size_t agent_count = 8) {
  std::vector<api_thread> threads;
  for (size_t i = 0; i < n; ++i) {
    char id[32], token[80];
    auto u = static_cast<unsigned long long>(i);
    std::snprintf(id, sizeof id, "thr-%016llx", u * 0x9e3779b97f4a7c15ull);
    std::snprintf(token, sizeof token, "%016llx%016llx%016llx%016llx", u % agent_count, u * 31, u * 131, u * 7);
    threads.push_back({id, token});
  }
  return threads;
}

inline void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

inline size_t open_file_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<size_t>(lim.rlim_cur);
}

inline std::chrono::milliseconds ms_of(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

inline void print_row(size_t c, const char* name, const run_result& r) {
  std::printf("  %5zu  %-9s %9.0f %8.2f %8.2f %8.2f %9.2f %7llu %8llu\n", c, name, r.rps, r.p50, r.p90, r.p99, r.p999,
              static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(r.timeouts));
  if (r.conn_errors > 0)
    std::printf("  %5s  %-9s errors: %llu non-2xx, %llu connection failures\n", "", "",
                static_cast<unsigned long long>(r.non2xx), static_cast<unsigned long long>(r.conn_errors));
}

inline void add_figures(std::string& json, const char* name, size_t c, const run_result& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s\"rps_%s_c%zu\":%.0f,\"p50_ms_%s_c%zu\":%.3f,\"p90_ms_%s_c%zu\":%.3f,\"p99_ms_%s_c%zu\":%.3f,"
                "\"p999_ms_%s_c%zu\":%.3f,\"errors_%s_c%zu\":%llu,\"timeouts_%s_c%zu\":%llu",
                json.empty() ? "" : ",", name, c, r.rps, name, c, r.p50, name, c, r.p90, name, c, r.p99, name, c,
                r.p999, name, c, static_cast<unsigned long long>(r.errors), name, c,
                static_cast<unsigned long long>(r.timeouts));
  json += buf;
}


} // namespace bench
