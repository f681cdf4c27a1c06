// The operations layer of the HTTP front, end to end against real in-process
// servers: /metrics, request logs with request ids, admission control (503
// overloaded), JSON errors for what cpp-httplib answers itself, slow clients.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <streambuf>
#include <thread>

#include "backline/server.hpp"
#include "http/http_server.hpp"
#include "http/metrics.hpp"
#include "http/request_log.hpp"
#include "support/api_answer.hpp"
#include "support/raw_client.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using namespace std::chrono_literals;
using backline::testing::error_code_of;
using backline::testing::raw_client;
using backline::testing::temp_dir;

namespace {

// A stream many server threads may write while the test reads it.
class shared_log : public std::ostream {
public:
  shared_log() : std::ostream(&buf_) {}
  std::string text() const {
    std::lock_guard<std::mutex> lock(buf_.mutex);
    return buf_.data;
  }
  // Waits until the log contains `needle` (lines are written just after the
  // answer, so a client may see the answer first).
  bool wait_for(const std::string& needle, std::chrono::milliseconds limit = 5s) const {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (text().find(needle) != std::string::npos)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

private:
  struct locked_buf : std::streambuf {
    mutable std::mutex mutex;
    std::string data;
    int_type overflow(int_type c) override {
      if (c != traits_type::eof()) {
        std::lock_guard<std::mutex> lock(mutex);
        data += static_cast<char>(c);
      }
      return c;
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      std::lock_guard<std::mutex> lock(mutex);
      data.append(s, static_cast<size_t>(n));
      return n;
    }
  } buf_;
};

class ops_fixture {
public:
  temp_dir dir;
  shared_log log;
  std::unique_ptr<server> srv;
  std::string admin = "admin-secret-token-for-ops-tests";

  explicit ops_fixture(const std::function<void(server_config&)>& tune = {}) {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = admin;
    cfg.request_log = &log;
    if (tune)
      tune(cfg);
    std::ostringstream progress;
    auto s = server::start(cfg, progress);
    REQUIRE(s);
    srv = std::move(s.value());
  }

  httplib::Client client() const {
    httplib::Client cli("127.0.0.1", srv->port());
    cli.set_read_timeout(10, 0);
    return cli;
  }
  static httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

  std::string new_user(const std::string& id, const std::string& role) {
    auto cli = client();
    auto r = cli.Post("/api/v1/users", bearer(admin),
                      json::serialize(json::object{{"id", id}, {"name", "User " + id}, {"role", role},
                                                   {"inbox_access", role == "agent"}}),
                      "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    return std::string(backline::testing::parse_or_null(r->body).as_object().at("token").as_string());
  }

  std::string metrics() {
    auto cli = client();
    auto r = cli.Get("/metrics");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return r->body;
  }

  // Waits until /metrics shows `sample` (a whole line).
  bool wait_for_metric(const std::string& sample, std::chrono::milliseconds limit = 5s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (("\n" + metrics()).find("\n" + sample + "\n") != std::string::npos)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

// A bare http_server with the test's own routes (no actors).
class front_fixture {
public:
  shared_log log;
  std::unique_ptr<http::http_server> front;
  std::thread runner;
  int port = 0;

  explicit front_fixture(http::http_settings s = {}) {
    s.log_requests = true;
    s.request_log = &log;
    front = std::make_unique<http::http_server>(s);
  }
  void start() {
    auto p = front->bind("127.0.0.1", 0);
    REQUIRE(p);
    port = p.value();
    runner = std::thread([this] { front->run(); });
  }
  ~front_fixture() {
    front->stop();
    if (runner.joinable())
      runner.join();
  }
};

} // namespace

// ---------------------------------------------------------------------------
// Pure parts

TEST_CASE("route labels are patterns: the id after chats or threads or files or users becomes {id}, page files are one label") {
  CHECK(http::route_pattern("/api/v1/chats") == "/api/v1/chats");
  CHECK(http::route_pattern("/api/v1/chats/c-17") == "/api/v1/chats/{id}");
  CHECK(http::route_pattern("/api/v1/chats/c-17/threads") == "/api/v1/chats/{id}/threads");
  CHECK(http::route_pattern("/api/v1/threads/c-17.t2/messages") == "/api/v1/threads/{id}/messages");
  CHECK(http::route_pattern("/api/v1/files/f9") == "/api/v1/files/{id}");
  CHECK(http::route_pattern("/api/v1/users/u1") == "/api/v1/users/{id}");
  CHECK(http::route_pattern("/api/v1/me") == "/api/v1/me");
  // An id that happens to be a collection name is still an id.
  CHECK(http::route_pattern("/api/v1/chats/threads/threads") == "/api/v1/chats/{id}/threads");
  CHECK(http::route_pattern("/" + std::string(300, 'x')) == "other");
  // The page's files share one label, whatever name is asked for.
  CHECK(http::route_pattern("/assets/app.js") == "/assets/{file}");
  CHECK(http::route_pattern("/assets/no-such-file-42.js") == "/assets/{file}");
  CHECK(http::route_pattern("/") == "/");
}

TEST_CASE("request ids: a client's is sanitised and bounded and a new one is 16 hex digits") {
  CHECK(http::sanitize_request_id("abc-123_X.y:z") == "abc-123_X.y:z");
  CHECK(http::sanitize_request_id("a b\"c=d\\e\tf") == "abcdef");
  CHECK(http::sanitize_request_id(std::string(100, 'a')).size() == 64);
  CHECK(http::sanitize_request_id("   ").empty());
  auto id = http::new_request_id();
  CHECK(std::regex_match(id, std::regex("[0-9a-f]{16}")));
  CHECK(http::new_request_id() != id);
}

TEST_CASE("the request log writer: lines from many workers arrive whole and in each worker's order") {
  shared_log out;
  constexpr int workers = 8, lines = 2000;
  {
    http::line_writer writer(out, 5ms, 4096);
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w)
      threads.emplace_back([&writer, w] {
        for (int i = 0; i < lines; ++i)
          writer.write("w=" + std::to_string(w) + " i=" + std::to_string(i) + " pad=" + std::string(40, 'x'));
      });
    for (auto& t : threads)
      t.join();
  }  // destroyed: everything buffered is written
  std::istringstream in(out.text());
  std::vector<int> next(workers, 0);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    int w = -1, i = -1;
    REQUIRE(std::sscanf(line.c_str(), "w=%d i=%d", &w, &i) == 2);
    REQUIRE(line == "w=" + std::to_string(w) + " i=" + std::to_string(i) + " pad=" + std::string(40, 'x'));
    REQUIRE(w >= 0);
    REQUIRE(w < workers);
    CHECK(i == next[static_cast<size_t>(w)]);
    next[static_cast<size_t>(w)] = i + 1;
    ++count;
  }
  CHECK(count == workers * lines);
}

TEST_CASE("the request log writer writes a lone line without waiting for more") {
  shared_log out;
  http::line_writer writer(out, 20ms);
  writer.write("only=1");
  CHECK(out.wait_for("only=1\n", 2s));
}

namespace {
// A stream whose writes block until released: a full pipe.
class stalled_log : public std::ostream {
public:
  stalled_log() : std::ostream(&buf_) {}
  void release() {
    {
      std::lock_guard<std::mutex> lock(buf_.mutex);
      buf_.released = true;
    }
    buf_.cv.notify_all();
  }
  bool wait_entered(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(buf_.mutex);
    return buf_.cv.wait_for(lock, limit, [this] { return buf_.entered; });
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(buf_.mutex);
    return buf_.data;
  }

private:
  struct blocking_buf : std::streambuf {
    std::mutex mutex;
    std::condition_variable cv;
    bool entered = false, released = false;
    std::string data;
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      std::unique_lock<std::mutex> lock(mutex);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [this] { return released; });
      data.append(s, static_cast<size_t>(n));
      return n;
    }
    int_type overflow(int_type c) override {
      std::lock_guard<std::mutex> lock(mutex);
      if (c != traits_type::eof())
        data += static_cast<char>(c);
      return c;
    }
  } buf_;
};
} // namespace

TEST_CASE("the request log writer drops lines past its bound while the stream is stalled, and says how many") {
  stalled_log out;
  {
    http::line_writer writer(out, 5ms, 64, 1000);
    writer.write("first=1");
    REQUIRE(out.wait_entered(2s));  // the writer thread is stuck writing it
    // Requests go on: their lines are buffered up to 1000 bytes, then dropped.
    for (int i = 0; i < 100; ++i)
      writer.write("n=" + std::to_string(i) + " " + std::string(40, 'y'));
    const auto dropped = writer.dropped();
    CHECK(dropped > 70);
    CHECK(dropped < 100);
    out.release();
    // Destroyed: what was kept is written, then the count of what was not.
    auto keep = writer.dropped();
    CHECK(keep == dropped);
  }
  auto text = out.text();
  CHECK_THAT(text, Catch::StartsWith("first=1\nn=0 "));
  CHECK_THAT(text, Catch::Contains("request log lines dropped"));
  std::smatch m;
  REQUIRE(std::regex_search(text, m, std::regex("level=warn msg=\"([0-9]+) request log lines dropped")));
  const int said = std::stoi(m[1]);
  int kept = 0;
  for (size_t at = text.find("n="); at != std::string::npos; at = text.find("\nn=", at + 1))
    ++kept;
  CHECK(said + kept == 100);
}

TEST_CASE("a request line says its time to the millisecond, in UTC, and each field once") {
  using namespace std::chrono;
  http::request_log_fields f;
  f.id = "trace-1";
  f.method = "POST";
  f.route = "/api/v1/threads/{id}/messages";
  f.user = "alice";
  f.status = 201;
  f.dur_ms = 0.4567;
  // 2026-12-05T12:34:56.007Z, then 0.993 s later (the next second) and a failure.
  f.when = system_clock::time_point(milliseconds(1796474096007));
  CHECK(http::format_request_line(f) == "ts=2026-12-05T12:34:56.007Z level=info req=trace-1 method=POST "
                                        "route=/api/v1/threads/{id}/messages status=201 dur_ms=0.457 user=alice");
  f.when += milliseconds(993);
  f.status = 503;
  f.dur_ms = 12;
  f.user = "";
  f.error = "no answer";
  f.method = "";
  CHECK(http::format_request_line(f) == "ts=2026-12-05T12:34:57.000Z level=warn req=trace-1 method=- "
                                        "route=/api/v1/threads/{id}/messages status=503 dur_ms=12.000 error=\"no answer\"");
}

TEST_CASE("log values cannot forge fields or lines") {
  CHECK(http::logfmt_value("/api/v1/chats/{id}") == "/api/v1/chats/{id}");
  CHECK(http::logfmt_value("a b") == "\"a b\"");
  CHECK(http::logfmt_value("x=1 level=error") == "\"x=1 level=error\"");
  CHECK(http::logfmt_value("line\nts=forged") == "\"line\\nts=forged\"");
  CHECK(http::logfmt_value("q\"uote") == "\"q\\\"uote\"");
  CHECK(http::logfmt_value("") == "\"\"");
}

TEST_CASE("the metrics registry keeps counting past its series limit under one overflow series") {
  http::http_metrics m;
  for (int i = 0; i < 2000; ++i)
    m.observe("/r" + std::to_string(i), "GET", 200, 1ms);
  std::string out;
  m.render(out);
  CHECK_THAT(out, Catch::Contains(R"(backline_http_requests_total{route="other",method="other",status="0"})"));
  // Every observation is counted somewhere.
  uint64_t total = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("backline_http_requests_total{", 0) == 0)
      total += std::stoull(line.substr(line.rfind(' ') + 1));
  CHECK(total == 2000);
}

// ---------------------------------------------------------------------------
// /metrics

TEST_CASE("/metrics: Prometheus text by route pattern with journal figures and actors and no auth") {
  ops_fixture f;
  auto bot = f.new_user("bot", "bot");
  auto cli = f.client();
  auto chat = cli.Post("/api/v1/chats", ops_fixture::bearer(bot),
                       R"({"customer":{"id":"cust-42","name":"Dana"},"text":"hi"})", "application/json");
  REQUIRE(chat);
  REQUIRE(chat->status == 201);
  std::string chat_id(backline::testing::parse_or_null(chat->body).as_object().at("id").as_string());
  for (int i = 0; i < 2; ++i) {
    auto r = cli.Get(("/api/v1/chats/" + chat_id).c_str(), ops_fixture::bearer(bot));
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  auto missing = cli.Get("/no/such/route/zq9x");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  // Lines are counted after the answer is written: wait for the last one.
  REQUIRE(f.wait_for_metric(R"(backline_http_requests_total{route="unmatched",method="GET",status="404"} 1)"));

  auto r = cli.Get("/metrics");  // no Authorization header
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK_THAT(r->get_header_value("Content-Type"), Catch::StartsWith("text/plain; version=0.0.4"));
  const auto& m = r->body;
  CHECK_THAT(m, Catch::Contains("# TYPE backline_http_requests_total counter"));
  CHECK_THAT(m, Catch::Contains(R"(backline_http_requests_total{route="/api/v1/chats/{id}",method="GET",status="200"} 2)"));
  CHECK_THAT(m, Catch::Contains(R"(backline_http_requests_total{route="/api/v1/chats",method="POST",status="201"} 1)"));
  CHECK_THAT(m, Catch::Contains("# TYPE backline_http_request_duration_seconds histogram"));
  CHECK_THAT(m, Catch::Contains(
                  R"(backline_http_request_duration_seconds_bucket{route="/api/v1/chats/{id}",method="GET",le="+Inf"} 2)"));
  CHECK_THAT(m, Catch::Contains(
                  R"(backline_http_request_duration_seconds_bucket{route="/api/v1/chats/{id}",method="GET",le="0.0005"})"));
  CHECK_THAT(m, Catch::Contains(R"(backline_http_request_duration_seconds_count{route="/api/v1/chats/{id}",method="GET"} 2)"));
  // Raw paths never become labels: neither the chat id nor the unknown path.
  CHECK_THAT(m, !Catch::Contains(chat_id));
  CHECK_THAT(m, !Catch::Contains("zq9x"));
  CHECK_THAT(m, Catch::Contains("\nbackline_http_in_flight 1\n"));  // this request
  CHECK_THAT(m, Catch::Contains("\nbackline_http_max_in_flight 2048\n"));
  CHECK_THAT(m, Catch::Contains("\nbackline_journal_up 1\n"));
  CHECK_THAT(m, Catch::Contains("# TYPE backline_journal_batches_total counter"));
  CHECK_THAT(m, Catch::Contains("# TYPE backline_journal_syncs_total counter"));
  CHECK_THAT(m, Catch::Contains("backline_journal_events_total "));
  CHECK_THAT(m, Catch::Contains("backline_journal_failed_requests_total 0"));
  CHECK_THAT(m, Catch::Contains("# TYPE backline_journal_batch_size histogram"));
  CHECK_THAT(m, Catch::Contains(R"(backline_journal_batch_size_bucket{le="+Inf"})"));
  CHECK_THAT(m, Catch::Contains("# TYPE backline_journal_write_duration_seconds histogram"));
  CHECK_THAT(m, Catch::Contains(R"(backline_journal_write_duration_seconds_bucket{le="0.0005"})"));
  CHECK_THAT(m, Catch::Contains("backline_actors_running "));

  // Every line is a comment or a well-formed sample; every histogram's buckets
  // are cumulative and end in its count.
  std::regex sample(R"(^[a-z_]+(\{([a-z_]+="[^"\\\n]*",?)*\})? (-?[0-9.e+]+|\+Inf)$)");
  std::istringstream lines(m);
  std::map<std::string, uint64_t> last_bucket;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# ", 0) == 0)
      continue;
    INFO(line);
    CHECK(std::regex_match(line, sample));
    auto at = line.find("_bucket{");
    if (at != std::string::npos) {
      auto series = line.substr(0, line.find(",le=") == std::string::npos ? line.find("le=") : line.find(",le="));
      uint64_t v = std::stoull(line.substr(line.rfind(' ') + 1));
      CHECK(v >= last_bucket[series]);
      last_bucket[series] = v;
    }
  }
  // Journal figures are real: creating the bot and the chat wrote events.
  std::smatch events;
  REQUIRE(std::regex_search(m, events, std::regex("\nbackline_journal_events_total ([0-9]+)\n")));
  CHECK(std::stoull(events[1]) >= 2);
}

// ---------------------------------------------------------------------------
// Request logs

TEST_CASE("request log: one logfmt line per request with its id and never a token or body or query") {
  ops_fixture f;
  auto cli = f.client();

  auto me = cli.Get("/api/v1/me", {{"Authorization", "Bearer " + f.admin}, {"X-Request-Id", "trace-abc.123"}});
  REQUIRE(me);
  CHECK(me->status == 200);
  CHECK(me->get_header_value("X-Request-Id") == "trace-abc.123");
  REQUIRE(f.log.wait_for("req=trace-abc.123"));

  // A token in a query string, a secret in a body, an unknown bearer token.
  auto q = cli.Get("/api/v1/me?token=QUERYSECRET-999&x=1", ops_fixture::bearer(f.admin));
  REQUIRE(q);
  auto post = cli.Post("/api/v1/users", ops_fixture::bearer(f.admin),
                       R"({"id":"u1","name":"BODYSECRET-777","role":"agent"})", "application/json");
  REQUIRE(post);
  CHECK(post->status == 201);
  std::string new_token(backline::testing::parse_or_null(post->body).as_object().at("token").as_string());
  auto wrong = cli.Get("/api/v1/me", ops_fixture::bearer("WRONGTOKEN-SECRET-555"));
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto as_new = cli.Get("/api/v1/me", {{"Authorization", "Bearer " + new_token}, {"X-Request-Id", "last-one"}});
  REQUIRE(as_new);
  REQUIRE(f.log.wait_for("req=last-one"));

  // Without X-Request-Id the server makes one, echoes it and logs it.
  auto anon = cli.Get("/healthz");
  REQUIRE(anon);
  auto made = anon->get_header_value("X-Request-Id");
  CHECK(std::regex_match(made, std::regex("[0-9a-f]{16}")));
  REQUIRE(f.log.wait_for("req=" + made));

  // A hostile request id is sanitised before it is echoed or logged.
  auto hostile = cli.Get("/healthz", {{"X-Request-Id", "evil id=1 level=error " + std::string(80, 'z')}});
  REQUIRE(hostile);
  auto clean = hostile->get_header_value("X-Request-Id");
  CHECK(clean == ("evilid1levelerror" + std::string(80, 'z')).substr(0, 64));
  REQUIRE(f.log.wait_for("req=" + clean + " "));

  auto text = f.log.text();
  INFO(text);
  for (const auto& secret : {f.admin, new_token, std::string("QUERYSECRET"), std::string("BODYSECRET"),
                             std::string("WRONGTOKEN"), std::string("Bearer"), std::string("token=")})
    CHECK(text.find(secret) == std::string::npos);
  std::istringstream lines(text);
  std::regex line_shape(R"(^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(info|warn|error) req=\S+ method=[A-Z-]+ )"
                        R"(route=\S+ status=\d+ dur_ms=\d+\.\d{3}( user=\S+)?( error=.*)?$)");
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    INFO(line);
    CHECK(std::regex_match(line, line_shape));
  }
  CHECK(count >= 7);
  CHECK_THAT(text, Catch::Contains("req=trace-abc.123 method=GET route=/api/v1/me status=200 dur_ms="));
  CHECK_THAT(text, Catch::Contains("method=POST route=/api/v1/users status=201"));
  CHECK_THAT(text, Catch::Contains("route=/api/v1/me status=401"));
}

TEST_CASE("request log: --log-requests off writes no lines") {
  ops_fixture f([](server_config& c) { c.log_requests = false; });
  auto cli = f.client();
  auto r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK_FALSE(r->get_header_value("X-Request-Id").empty());  // still echoed
  std::this_thread::sleep_for(100ms);
  CHECK(f.log.text().empty());
}

TEST_CASE("front: a handler names the caller for the log and exceptions and bare 503s are answered properly") {
  front_fixture f;
  f.front->routes().Get("/api/v1/probe", [](const httplib::Request&, httplib::Response& res) {
    http::note_request_user("alice");
    res.set_content(std::string(http::current_request_id()), "text/plain");
  });
  f.front->routes().Get("/busy", [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  f.front->routes().Get("/boom", [](const httplib::Request&, httplib::Response&) {
    throw std::runtime_error("internal detail the client must not see");
  });
  f.start();
  httplib::Client cli("127.0.0.1", f.port);

  auto probe = cli.Get("/api/v1/probe", {{"X-Request-Id", "probe-1"}});
  REQUIRE(probe);
  CHECK(probe->body == "probe-1");  // the handler sees the request id
  REQUIRE(f.log.wait_for("req=probe-1 method=GET route=/api/v1/probe status=200"));
  CHECK_THAT(f.log.text(), Catch::Contains(" user=alice"));

  auto busy = cli.Get("/busy");
  REQUIRE(busy);
  CHECK(busy->status == 503);
  CHECK(busy->get_header_value("Retry-After") == "1");
  CHECK(error_code_of(busy->body) == "unavailable");

  auto boom = cli.Get("/boom");
  REQUIRE(boom);
  CHECK(boom->status == 500);
  CHECK(error_code_of(boom->body) == "internal");
  CHECK(boom->body.find("internal detail") == std::string::npos);
  CHECK_FALSE(boom->has_header("EXCEPTION_WHAT"));
  REQUIRE(f.log.wait_for("route=/boom status=500"));
  CHECK_THAT(f.log.text(), Catch::Contains("level=error"));
}

// ---------------------------------------------------------------------------
// Overload

TEST_CASE("overload: past --max-in-flight an /api/v1 request gets 503 overloaded with Retry-After and changes nothing") {
  ops_fixture f([](server_config& c) { c.max_in_flight = 1; });
  auto bot = f.new_user("bot", "bot");
  {
    // A chat before the overload (so the route has been answered once: an
    // answer given before routing is labelled with a route only then).
    auto cli = f.client();
    auto first = cli.Post("/api/v1/chats", ops_fixture::bearer(bot), R"({"customer":{"id":"cust-0","name":"Zed"}})",
                          "application/json");
    REQUIRE(first);
    REQUIRE(first->status == 201);
  }

  // Request A holds the only slot: its headers are in (admission happens
  // there), its body is still coming. (Every earlier request has answered,
  // so the slot is A's once the gauge reads 1.)
  REQUIRE(f.wait_for_metric("backline_http_api_in_flight 0"));
  std::string body_a = R"({"customer":{"id":"cust-A","name":"Ann"},"text":"first"})";
  raw_client a(f.srv->port());
  REQUIRE(a.send("POST /api/v1/chats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + bot +
                 "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body_a.size()) +
                 "\r\nConnection: close\r\n\r\n" + body_a.substr(0, 10)));
  REQUIRE(f.wait_for_metric("backline_http_api_in_flight 1"));

  // Request B: a complete, valid command, refused before any handler runs.
  auto cli = f.client();
  auto b = cli.Post("/api/v1/chats", ops_fixture::bearer(bot),
                    R"({"customer":{"id":"cust-B","name":"Ben"},"text":"second"})", "application/json");
  REQUIRE(b);
  CHECK(b->status == 503);
  CHECK(b->get_header_value("Retry-After") == "1");
  CHECK(error_code_of(b->body) == "overloaded");
  CHECK(b->get_header_value("Connection") == "close");  // its body was never read
  CHECK_FALSE(b->get_header_value("X-Request-Id").empty());

  // Not counted: long polls, /healthz, /metrics.
  auto poll = cli.Get("/api/v1/notifications?wait=0", ops_fixture::bearer(f.admin));
  REQUIRE(poll);
  CHECK(poll->status != 503);
  auto health = cli.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);

  // A finishes and is served; then the slot is free again.
  REQUIRE(a.send(body_a.substr(10)));
  auto answer_a = a.read_all();
  CHECK_THAT(answer_a, Catch::StartsWith("HTTP/1.1 201"));
  REQUIRE(f.wait_for_metric("backline_http_api_in_flight 0"));
  auto active = cli.Get("/api/v1/chats?view=active", ops_fixture::bearer(f.admin));
  REQUIRE(active);
  REQUIRE(active->status == 200);
  auto chats = json::serialize(backline::testing::parse_or_null(active->body).as_object().at("chats"));
  CHECK(backline::testing::parse_or_null(active->body).as_object().at("chats").as_array().size() == 2);
  CHECK_THAT(chats, Catch::Contains("cust-A"));
  CHECK_THAT(chats, !Catch::Contains("cust-B"));  // B left nothing behind
  CHECK_THAT(f.metrics(), Catch::Contains("\nbackline_http_overloaded_total 1\n"));
  CHECK_THAT(f.metrics(), Catch::Contains(R"(backline_http_requests_total{route="/api/v1/chats",method="POST",status="503"} 1)"));
}

// ---------------------------------------------------------------------------
// JSON errors

TEST_CASE("errors cpp-httplib answers by itself carry the API's JSON error") {
  ops_fixture f([](server_config& c) { c.max_body_bytes = 1024; });
  auto cli = f.client();

  SECTION("a body over --max-body-bytes is 413 payload_too_large") {
    auto r = cli.Post("/api/v1/chats", ops_fixture::bearer(f.admin), std::string(5000, 'x'), "application/json");
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    CHECK(error_code_of(r->body) == "payload_too_large");
  }
  SECTION("a chunked body over the limit is 413 payload_too_large too") {
    raw_client c(f.srv->port());
    std::string chunk(2000, 'x');
    std::ostringstream hex;
    hex << std::hex << chunk.size();
    REQUIRE(c.send("POST /api/v1/chats HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                   hex.str() + "\r\n" + chunk + "\r\n0\r\n\r\n"));
    auto answer = c.read_all();
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 413"));
    CHECK_THAT(answer, Catch::Contains(R"("code":"payload_too_large")"));
  }
  SECTION("an unknown path is 404 not_found") {
    auto r = cli.Get("/api/v1/nowhere");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    CHECK(error_code_of(r->body) == "not_found");
    CHECK_FALSE(r->get_header_value("X-Request-Id").empty());
  }
  SECTION("a malformed request line is 400 bad_request") {
    raw_client c(f.srv->port());
    REQUIRE(c.send("NONSENSE\r\n\r\n"));
    auto answer = c.read_all(3s);
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 400"));
    CHECK_THAT(answer, Catch::Contains(R"("code":"bad_request")"));
  }
  SECTION("a handler's own error body is kept") {
    auto r = cli.Get("/api/v1/me");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(error_code_of(r->body) == "unauthenticated");
  }
}

// ---------------------------------------------------------------------------
// Slow clients and connections

TEST_CASE("slow clients: a byte a second is dropped by the read timeout and does not hold the only worker") {
  ops_fixture f([](server_config& c) {
    c.http_threads = 1;
    c.read_timeout_s = 1;
  });

  SECTION("dripping the request line and headers") {
    auto started = std::chrono::steady_clock::now();
    std::atomic<bool> dropped{false};
    std::atomic<double> dropped_after_s{0};
    raw_client slow(f.srv->port());
    std::thread dripper([&] {
      const std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: aaaaaaaaaa\r\n\r\n";
      for (char c : request) {
        if (slow.server_gave_up() || !slow.send(std::string(1, c))) {
          dropped = true;
          dropped_after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          return;
        }
        std::this_thread::sleep_for(1s);
        if (std::chrono::steady_clock::now() - started > 10s)
          return;
      }
    });
    std::this_thread::sleep_for(200ms);  // the slow client holds the only worker now
    httplib::Client cli("127.0.0.1", f.srv->port());
    cli.set_connection_timeout(5, 0);
    cli.set_read_timeout(5, 0);
    auto t0 = std::chrono::steady_clock::now();
    auto r = cli.Get("/healthz");
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(r);
    CHECK(r->status == 200);
    // Held behind the dripper, it would wait a minute (a byte a second);
    // the bounds leave room for a slow machine, not for that.
    CHECK(waited < 20.0);
    dripper.join();
    CHECK(dropped);
    CHECK(dropped_after_s < 20.0);
    REQUIRE(f.log.wait_for("read timeout"));
    CHECK_THAT(f.metrics(), Catch::Contains("\nbackline_http_read_timeouts_total 1\n"));
  }
  SECTION("dripping the body") {
    raw_client slow(f.srv->port());
    REQUIRE(slow.send("POST /api/v1/chats HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      "Content-Length: 100\r\n\r\n{"));
    auto t0 = std::chrono::steady_clock::now();
    bool dropped = false;
    // Undropped, the 100 bytes would take 70 s at this pace.
    for (int i = 0; i < 30 && !dropped; ++i) {
      std::this_thread::sleep_for(700ms);
      dropped = slow.server_gave_up() || !slow.send(" ");
    }
    CHECK(dropped);
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
    httplib::Client cli("127.0.0.1", f.srv->port());
    cli.set_read_timeout(5, 0);
    auto r = cli.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK_THAT(f.metrics(), Catch::Contains("\nbackline_http_read_timeouts_total 1\n"));
  }
}

TEST_CASE("front: pipelined requests on one connection are all answered and stop() closes idle keep-alive at once") {
  http::http_settings s;
  s.threads = 2;
  s.keep_alive_timeout_s = 30;
  front_fixture f(s);
  f.front->routes().Get("/ping", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("pong", "text/plain");
  });
  f.start();

  raw_client pipelined(f.port);
  REQUIRE(pipelined.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  auto answers = pipelined.read_all();
  size_t pongs = 0;
  for (size_t at = answers.find("pong"); at != std::string::npos; at = answers.find("pong", at + 1))
    ++pongs;
  CHECK(pongs == 3);

  // An idle keep-alive connection does not hold stop() for the keep-alive timeout.
  raw_client idle(f.port);
  REQUIRE(idle.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE_THAT(idle.read_until("pong"), Catch::Contains("pong"));
  auto t0 = std::chrono::steady_clock::now();
  f.front->stop();
  f.runner.join();
  CHECK(std::chrono::steady_clock::now() - t0 < 15s);  // not the keep-alive timeout's 30 s
  CHECK_THAT(idle.read_all(2s), Catch::Equals(""));  // closed, nothing more
}

TEST_CASE("front: answers say Keep-Alive while the connection goes on, Connection: close on the one it ends with") {
  http::http_settings s;
  s.threads = 2;
  s.keep_alive_timeout_s = 7;
  s.keep_alive_max = 3;
  front_fixture f(s);
  f.front->routes().Get("/ping", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("pong", "text/plain");
  });
  f.start();
  // Each answer, cut at the start of the next.
  auto answers_of = [](const std::string& all) {
    std::vector<std::string> out;
    for (size_t at = all.find("HTTP/1.1 "); at != std::string::npos;) {
      auto next = all.find("HTTP/1.1 ", at + 1);
      out.push_back(all.substr(at, next == std::string::npos ? std::string::npos : next - at));
      at = next;
    }
    return out;
  };

  raw_client three(f.port);  // the keep-alive count is 3: the third closes
  REQUIRE(three.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto answers = answers_of(three.read_all());
  REQUIRE(answers.size() == 3);
  for (size_t i = 0; i < 2; ++i) {
    CHECK_THAT(answers[i], Catch::Contains("Keep-Alive: timeout=7, max=3\r\n"));
    CHECK_THAT(answers[i], !Catch::Contains("Connection:"));
  }
  CHECK_THAT(answers[2], Catch::Contains("Connection: close\r\n") && !Catch::Contains("Keep-Alive"));

  raw_client closing(f.port);  // the client says it closes
  REQUIRE(closing.send("GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  answers = answers_of(closing.read_all());
  REQUIRE(answers.size() == 1);
  CHECK_THAT(answers[0], Catch::Contains("Connection: close\r\n") && !Catch::Contains("Keep-Alive"));

  raw_client old(f.port);  // HTTP/1.0 without keep-alive: closed after one
  REQUIRE(old.send("GET /ping HTTP/1.0\r\nHost: t\r\n\r\n"));
  answers = answers_of(old.read_all());
  REQUIRE(answers.size() == 1);
  CHECK_THAT(answers[0], Catch::Contains("Connection: close\r\n") && !Catch::Contains("Keep-Alive"));
}

// ---------------------------------------------------------------------------
// Answers that come later (answer_later): the worker goes back to the
// connection and another thread writes the answer.

namespace {

// Completes later_answers from threads of its own, joined before it goes
// (declare it after the front_fixture, so it goes first).
class completer {
public:
  void after(std::chrono::milliseconds delay, std::shared_ptr<http::later_answer> answer, int status,
             std::string body) {
    std::lock_guard lock(mu_);
    threads_.emplace_back([=] {
      std::this_thread::sleep_for(delay);
      answer->complete(status, body);
    });
  }
  ~completer() {
    std::lock_guard lock(mu_);
    for (auto& t : threads_)
      t.join();
  }

private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// GET /later?ms=M&tag=T[&size=N][&deadline=D]: answered 201 {"tag":T} (or N
// bytes of x) by another thread M ms after the handler returned; "sync" when
// the request cannot wait for it.
void later_route(front_fixture& f, completer& c) {
  f.front->routes().Get("/later", [&c](const httplib::Request& req, httplib::Response& res) {
    auto num = [&](const char* name, long fallback) {
      return req.has_param(name) ? std::stol(req.get_param_value(name)) : fallback;
    };
    auto later = http::answer_later(req, res, std::chrono::milliseconds(num("deadline", 5000)));
    if (!later) {
      res.set_content("{\"tag\":\"sync\"}", "application/json");
      return;
    }
    auto size = num("size", 0);
    std::string body = size > 0 ? std::string(static_cast<size_t>(size), 'x')
                                : "{\"tag\":\"" + req.get_param_value("tag") + "\"}";
    c.after(std::chrono::milliseconds(num("ms", 0)), later, 201, body);
  });
  f.front->routes().Get("/ping", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("pong", "text/plain");
  });
}

// A front with two workers and the routes above, started.
struct later_fixture {
  front_fixture f{two_workers()};
  completer c;  // after f: its threads are joined before the front goes
  later_fixture() {
    later_route(f, c);
    f.start();
  }
  static http::http_settings two_workers() {
    http::http_settings s;
    s.threads = 2;
    return s;
  }
  // The connection still serves: a ping on it is answered, and nothing else comes.
  static std::string ping(raw_client& conn) {
    REQUIRE(conn.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
    return conn.read_until("pong");
  }
};

} // namespace

TEST_CASE_METHOD(later_fixture, "answers that come later are written by another thread, in order, and each gets its log line") {
  // Pipelined: the second request is not read until the first's answer is
  // written, though the first's answer comes last.
  raw_client conn(f.port);
  REQUIRE(conn.send("GET /later?ms=150&tag=one HTTP/1.1\r\nHost: t\r\nX-Request-Id: first-one\r\n\r\n"
                    "GET /later?ms=0&tag=two HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto answers = conn.read_until("\"two\"");
  auto one = answers.find("{\"tag\":\"one\"}");
  auto two = answers.find("{\"tag\":\"two\"}");
  REQUIRE(one != std::string::npos);
  REQUIRE(two != std::string::npos);
  CHECK(one < two);
  // The head a handler's answer would have had.
  CHECK(answers.rfind("HTTP/1.1 201 Created\r\n", 0) == 0);
  CHECK_THAT(answers, Catch::Contains("Content-Length: 13\r\n") && Catch::Contains("Content-Type: application/json\r\n") &&
                        Catch::Contains("Keep-Alive: timeout=") && Catch::Contains("X-Request-Id: first-one\r\n"));
  CHECK_THAT(answers, !Catch::Contains("Connection: close"));

  // The connection goes on as usual.
  CHECK_THAT(ping(conn), Catch::EndsWith("pong"));
  CHECK(f.log.wait_for("route=/ping"));  // the last line
  auto log = f.log.text();
  CHECK_THAT(log, Catch::Contains("req=first-one method=GET route=/later") && Catch::Contains("status=201"));
  size_t later_lines = 0;
  for (auto at = log.find("route=/later"); at != std::string::npos; at = log.find("route=/later", at + 1))
    ++later_lines;
  CHECK(later_lines == 2);
}

TEST_CASE_METHOD(later_fixture, "an answer that comes later is answered 503 at its deadline, and a late one writes nothing") {
  raw_client conn(f.port);
  REQUIRE(conn.send("GET /later?ms=400&deadline=100&tag=late HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto answer = conn.read_until("ms\"}}");
  CHECK(answer.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK_THAT(answer, Catch::Contains("Retry-After: 1\r\n") && Catch::Contains("\"unavailable\"") &&
                       Catch::Contains("no answer within 100 ms"));  // the deadline asked for
  std::this_thread::sleep_for(500ms);  // the late answer has come and gone
  auto next = ping(conn);
  CHECK_THAT(next, Catch::EndsWith("pong"));
  CHECK_THAT(next, !Catch::Contains("late"));
}

TEST_CASE_METHOD(later_fixture, "a request that closes its connection, or speaks HTTP/1.0, is answered by its handler") {
  raw_client closing(f.port);
  REQUIRE(closing.send("GET /later?tag=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  CHECK_THAT(closing.read_all(), Catch::Contains("{\"tag\":\"sync\"}"));
  raw_client old(f.port);
  REQUIRE(old.send("GET /later?tag=x HTTP/1.0\r\nHost: t\r\n\r\n"));
  CHECK_THAT(old.read_all(), Catch::Contains("{\"tag\":\"sync\"}"));
}

TEST_CASE_METHOD(later_fixture, "an answer that comes later is written whole to a client slow to read it") {
  // More than a loopback socket takes at once: the completing thread writes
  // what it can, the worker the rest. The deadline is long: under
  // ThreadSanitizer, on a machine where page faults are dear, building and
  // copying the 32 MiB answer took longer than the route's default 5 s.
  const size_t size = 32u << 20;
  raw_client conn(f.port);
  REQUIRE(conn.send("GET /later?ms=0&deadline=60000&size=" + std::to_string(size) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(300ms);
  auto answer = conn.read_until("\r\n\r\n");
  auto body_at = answer.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  answer += conn.read_bytes(body_at + 4 + size - answer.size(), 10s);
  CHECK_THAT(answer.substr(0, body_at), Catch::Contains("Content-Length: " + std::to_string(size)));
  auto body = answer.substr(body_at + 4);
  CHECK(body.size() == size);
  CHECK(body.find_first_not_of('x') == std::string::npos);
  CHECK_THAT(ping(conn), Catch::EndsWith("pong"));
}

TEST_CASE_METHOD(later_fixture, "stop() lets an answer that comes later be written before the connection closes") {
  raw_client conn(f.port);
  REQUIRE(conn.send("GET /later?ms=200&tag=in-flight HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(50ms);  // the handler has returned; the answer is on its way
  f.front->stop();
  f.runner.join();
  CHECK_THAT(conn.read_all(3s), Catch::Contains("{\"tag\":\"in-flight\"}"));
}
