// Hostile clients against a real server with default limits: each test sends
// what an attacker (or a careless client) would, and checks the answer, that
// the server's memory stays bounded, and that it keeps serving.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "backline/server.hpp"
#include "http/framing.hpp"
#include "support/api_answer.hpp"
#include "support/raw_client.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using backline::testing::answer_of;
using backline::testing::raw_client;
using backline::testing::temp_dir;

namespace {

struct hostile_fixture {
  temp_dir dir;
  std::unique_ptr<server> srv;
  std::string admin = "admin-token-hostile";

  hostile_fixture() {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = admin;
    cfg.log_requests = false;
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    srv = std::move(s.value());
  }
  int port() const { return srv->port(); }

  // The server still answers a new client.
  bool serving() {
    httplib::Client cli("127.0.0.1", port());
    auto r = cli.Get("/healthz");
    return r && r->status == 200;
  }
};

// This process's resident memory (the server runs in it), in bytes.
size_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

size_t answers_in(const std::string& bytes) {
  size_t n = 0;
  for (auto at = bytes.find("HTTP/1.1 "); at != std::string::npos; at = bytes.find("HTTP/1.1 ", at + 1))
    ++n;
  return n;
}

constexpr size_t MiB = 1024 * 1024;

} // namespace

TEST_CASE_METHOD(hostile_fixture, "hostile: a request with neither Content-Length nor Transfer-Encoding has an empty body") {
  // Answered as soon as its headers are in (before, cpp-httplib read on until
  // the client closed), and the next request on the connection is read as one.
  raw_client c(port());
  REQUIRE(c.send("POST /api/v1/users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + admin +
                 "\r\nContent-Type: application/json\r\n\r\n"
                 "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto both = c.read_until("{\"status\":\"ok\"");
  CHECK_THAT(both, Catch::StartsWith("HTTP/1.1 400"));
  CHECK_THAT(both, Catch::Contains("invalid_json"));
  CHECK(answers_in(both) == 2);
  CHECK_THAT(both, Catch::Contains("HTTP/1.1 200"));

  // A bodiless command (PUT, POST) is answered at once, on the connection still open.
  raw_client d(port());
  REQUIRE(d.send("PUT /api/v1/chats/ch-none/focus HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + admin + "\r\n\r\n"));
  CHECK_THAT(d.read_until("}}"), Catch::StartsWith("HTTP/1.1 404"));  // no such chat: it was read as a request
}

TEST_CASE_METHOD(hostile_fixture, "hostile: a body streamed without framing before authentication is not held") {
  auto before = rss_bytes();
  raw_client c(port());
  REQUIRE(c.send("POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\r\n"));
  auto sent = c.send_while_taken(std::string(64 * 1024, 'a'), 256 * MiB);
  c.half_close();
  auto answer = c.read_all();
  INFO("sent " << sent << " bytes");
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 401"));
  CHECK(sent < 64 * MiB);  // the server stopped reading the junk, and closed
  CHECK(rss_bytes() < before + 32 * MiB);
  CHECK(serving());
}

TEST_CASE_METHOD(hostile_fixture, "hostile: request headers are bounded in bytes and in lines (431)") {
  auto before = rss_bytes();
  SECTION("64 MiB of 1 KiB header lines") {
    raw_client c(port());
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));
    auto sent = c.send_while_taken("X-Pad: " + std::string(1017, 'p') + "\r\n", 64 * MiB);
    CHECK(sent < 8 * MiB);
    CHECK_THAT(c.read_all(), Catch::StartsWith("HTTP/1.1 431"));
  }
  SECTION("one header line that never ends") {
    raw_client c(port());
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Long: "));
    auto sent = c.send_while_taken(std::string(64 * 1024, 'x'), 64 * MiB);
    CHECK(sent < 8 * MiB);
    auto answer = c.read_all();
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 431"));
    CHECK_THAT(answer, Catch::Contains("headers_too_large"));
  }
  SECTION("more header lines than allowed, each small") {
    std::string headers;
    for (size_t i = 0; i <= http::max_header_count; ++i)
      headers += "X-" + std::to_string(i) + ": 1\r\n";
    raw_client c(port());
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n" + headers + "\r\n"));
    CHECK_THAT(c.read_all(), Catch::StartsWith("HTTP/1.1 431"));
  }
  CHECK(rss_bytes() < before + 32 * MiB);
  CHECK(serving());
}

TEST_CASE_METHOD(hostile_fixture, "hostile: ambiguous framing is 400 and closes the connection, nothing smuggled is answered") {
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  auto refused = [&](const std::string& framing, const std::string& body) {
    raw_client c(port());
    REQUIRE(c.send("POST /api/v1/chats HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + framing +
                   "\r\n" + body + smuggled));
    auto answer = c.read_all();
    INFO(framing);
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 400"));
    CHECK(answers_in(answer) == 1);
    CHECK_THAT(answer, Catch::Contains("Connection: close"));
  };
  refused("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n");
  refused("Transfer-Encoding: identity, chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n");
  refused("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n");
  refused("Content-Length: +2\r\n", "{}");
  refused("Content-Length: 2abc\r\n", "{}");
  refused("Content-Length: 2\r\nContent-Length: 3\r\n", "{} ");
  refused("X-No-Colon\r\nContent-Length: 2\r\n", "{}");
  refused(std::string("X-Nul: a") + '\0' + "b\r\nContent-Length: 2\r\n", "{}");
  CHECK(serving());
}

TEST_CASE_METHOD(hostile_fixture, "hostile: the Bearer scheme is matched in any case (RFC 9110)") {
  httplib::Client cli("127.0.0.1", port());
  for (std::string scheme : {"Bearer", "bearer", "BEARER"}) {
    auto r = cli.Get("/api/v1/me", {{"Authorization", scheme + " " + admin}});
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE_METHOD(hostile_fixture, "hostile: API answers are not sniffed and not stored, whichever path writes them") {
  auto check = [](const httplib::Result& r) {
    REQUIRE(r);
    CHECK(r->get_header_value("Cache-Control") == "no-store");
    CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
  };
  httplib::Client cli("127.0.0.1", port());
  check(cli.Get("/api/v1/me", {{"Authorization", "Bearer " + admin}}));
  check(cli.Get("/api/v1/me"));  // an error (401)
  // A command on a kept-alive connection is answered from the actors' side.
  httplib::Client kept("127.0.0.1", port());
  kept.set_keep_alive(true);
  auto bot = kept.Post("/api/v1/users", {{"Authorization", "Bearer " + admin}},
                       R"({"id":"bot","name":"Bot","role":"bot"})", "application/json");
  REQUIRE(bot);
  REQUIRE(bot->status == 201);
  auto token = std::string(json::parse(bot->body).at("token").as_string());
  check(kept.Post("/api/v1/chats", {{"Authorization", "Bearer " + token}},
                  R"({"customer":{"id":"c1","name":"Dana"},"text":"hi"})", "application/json"));
}

namespace {

// An agent's open thread in the sandbox workspace, for the file tests.
struct thread_fixture : hostile_fixture {
  std::string agent, thread;
  thread_fixture() {
    httplib::Client cli("127.0.0.1", port());
    auto user = [&](const std::string& id, const std::string& role) {
      auto r = cli.Post("/api/v1/users", {{"Authorization", "Bearer " + admin}},
                        json::serialize(json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}}),
                        "application/json");
      REQUIRE(r);
      REQUIRE(r->status == 201);
      return std::string(json::parse(r->body).at("token").as_string());
    };
    auto bot = user("bot", "bot");
    agent = user("alice", "agent");
    auto chat = answer_of(cli.Post("/api/v1/chats", {{"Authorization", "Bearer " + bot}},
                                   R"({"customer":{"id":"c1","name":"Dana"},"text":"hi"})", "application/json"));
    REQUIRE(chat.status == 201);
    REQUIRE(answer_of(cli.Post(("/api/v1/chats/" + chat.get("id") + "/assign").c_str(),
                               {{"Authorization", "Bearer " + bot}}, R"({"agent_id":"alice"})", "application/json"))
              .status == 200);
    auto t = answer_of(cli.Post(("/api/v1/chats/" + chat.get("id") + "/threads").c_str(),
                                {{"Authorization", "Bearer " + agent}},
                                R"({"channel_id":"C0FINANCE","text":"Receipts?"})", "application/json"));
    REQUIRE(t.status == 201);
    thread = t.get("id");
  }
  testing::answer post_files(const httplib::MultipartFormDataItems& items) {
    httplib::Client cli("127.0.0.1", port());
    return answer_of(cli.Post(("/api/v1/threads/" + thread + "/messages").c_str(),
                              {{"Authorization", "Bearer " + agent}}, items));
  }
};

} // namespace

TEST_CASE_METHOD(thread_fixture, "hostile: an uploaded file that could run script downloads, sandboxed, and no file is cached") {
  auto m = post_files({{"text", "two files", "", ""},
                       {"files", "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                        "evil\".svg", "image/svg+xml"},
                       {"files", std::string("\x89PNG\r\n\x1a\n", 8), "ok.png", "image/png"}});
  REQUIRE(m.status == 201);
  auto files = m.body.at("files").as_array();
  REQUIRE(files.size() == 2);
  httplib::Client cli("127.0.0.1", port());
  auto svg = cli.Get(json::value_to<std::string>(files[0].at("url")).c_str(), {{"Authorization", "Bearer " + agent}});
  REQUIRE(svg);
  CHECK(svg->status == 200);
  CHECK_THAT(svg->get_header_value("Content-Disposition"), Catch::StartsWith("attachment; filename=\""));
  auto disposition = svg->get_header_value("Content-Disposition");
  CHECK(std::count(disposition.begin(), disposition.end(), '"') == 2);  // the name's own quote cannot end the parameter
  CHECK_THAT(svg->get_header_value("Content-Security-Policy"), Catch::StartsWith("sandbox"));
  CHECK(svg->get_header_value("Cache-Control") == "no-store");
  auto png = cli.Get(json::value_to<std::string>(files[1].at("url")).c_str(), {{"Authorization", "Bearer " + agent}});
  REQUIRE(png);
  CHECK_THAT(png->get_header_value("Content-Disposition"), Catch::StartsWith("inline"));
  CHECK(png->get_header_value("Cache-Control") == "no-store");
}

TEST_CASE_METHOD(thread_fixture, "hostile: a file whose name holds CR or LF is refused, not dropped from a post that succeeds") {
  auto before = answer_of(httplib::Client("127.0.0.1", port())
                            .Get(("/api/v1/threads/" + thread + "/messages").c_str(), {{"Authorization", "Bearer " + agent}}));
  auto m = post_files({{"text", "with a file", "", ""}, {"files", "a,b\n", "totals\r\nX-Evil: 1.csv", "text/csv"}});
  CHECK(m.status == 400);
  auto after = answer_of(httplib::Client("127.0.0.1", port())
                           .Get(("/api/v1/threads/" + thread + "/messages").c_str(), {{"Authorization", "Bearer " + agent}}));
  CHECK(after.body.at("messages").as_array().size() == before.body.at("messages").as_array().size());
}

TEST_CASE("hostile: the data directory is readable by the service user only") {
  // The log's files may be 0644 (RocksDB's choice): a directory others cannot
  // enter keeps them from every other user, whether the server made it or
  // found it.
  temp_dir dir;
  for (std::string data : {dir.path() + "/new", dir.path() + "/open"}) {
    if (data.ends_with("/open")) {
      std::filesystem::create_directory(data);
      std::filesystem::permissions(data, std::filesystem::perms::all);
    }
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = data;
    cfg.admin_token = "admin-token-dir";
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    CHECK(std::filesystem::status(data).permissions() == std::filesystem::perms::owner_all);
    (*s)->stop();
  }
}
