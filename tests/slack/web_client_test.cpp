// The Slack Web API client against a small local server that answers the
// way slack.md says Slack does.

#include "slack/web_client.hpp"

#include <httplib.h>

#include <catch2/catch.hpp>

#include <thread>

using namespace backline;
using namespace backline::slack;

namespace {

struct slack_like_server {
  httplib::Server srv;
  int port = 0;
  std::thread runner;
  std::string last_auth;
  std::string last_body;

  slack_like_server() {
    srv.Post("/api/chat.postMessage", [this](const httplib::Request& req, httplib::Response& res) {
      last_auth = req.get_header_value("Authorization");
      last_body = req.body;
      res.set_content(R"({"ok":true,"channel":"C1","ts":"1712345678.000200","message":{"text":"hi"}})",
                      "application/json");
    });
    srv.Post("/api/conversations.replies", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"ok":false,"error":"channel_not_found"})", "application/json");
    });
    srv.Post("/api/auth.test", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"ok":false,"error":"token_revoked"})", "application/json");
    });
    srv.Post("/api/users.info", [](const httplib::Request&, httplib::Response& res) {
      res.status = 429;
      res.set_header("Retry-After", "7");
      res.set_content(R"({"ok":false,"error":"ratelimited"})", "application/json");
    });
    srv.Post("/api/usergroups.list", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content("oops", "text/plain");
    });
    srv.Post("/api/reactions.add", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content(R"({"ok":true})", "application/json");
    });
    srv.Post("/upload/F1", [this](const httplib::Request& req, httplib::Response& res) {
      last_body = req.body;
      res.set_content("OK - " + std::to_string(req.body.size()), "text/plain");
    });
    port = srv.bind_to_any_port("127.0.0.1");
    runner = std::thread([this] { srv.listen_after_bind(); });
  }
  ~slack_like_server() {
    srv.stop();
    runner.join();
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port) + "/api/"; }
};

std::unique_ptr<web_client> client_for(const slack_like_server& s, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto c = web_client::make({s.base(), "xoxb-test-token", timeout});
  REQUIRE(c);
  return std::move(c.value());
}

} // namespace

TEST_CASE("error codes are classified as slack.md says", "[slack]") {
  CHECK(classify_error("ratelimited") == failure_kind::rate_limited);
  CHECK(classify_error("rate_limited") == failure_kind::rate_limited);
  for (auto e : {"channel_not_found", "not_in_channel", "is_archived"})
    CHECK(classify_error(e) == failure_kind::channel_unusable);
  for (auto e : {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope"})
    CHECK(classify_error(e) == failure_kind::token_bad);
  CHECK(classify_error("msg_too_long") == failure_kind::rejected);
}

TEST_CASE("base URLs split into origin and path", "[slack]") {
  auto a = split_base_url("https://slack.com/api/");
  REQUIRE(a);
  CHECK(a->origin == "https://slack.com");
  CHECK(a->path == "/api/");
  CHECK(split_base_url("http://127.0.0.1:9/api")->path == "/api/");
  CHECK_FALSE(split_base_url("ftp://slack.com/api/"));
  CHECK_FALSE(split_base_url("slack.com/api"));
}

TEST_CASE("a call posts JSON with the bearer token and reads ok:true", "[slack]") {
  slack_like_server s;
  auto c = client_for(s);
  auto r = c->call("chat.postMessage", {{"channel", "C1"}, {"text", "hi"}, {"thread_ts", "1.2"}});
  REQUIRE(r.ok());
  CHECK(r.body.at("ts") == "1712345678.000200");
  CHECK(s.last_auth == "Bearer xoxb-test-token");
  CHECK(boost::json::parse(s.last_body).at("thread_ts") == "1.2");
}

TEST_CASE("failures come back classified, never thrown", "[slack]") {
  slack_like_server s;
  auto c = client_for(s, std::chrono::milliseconds(500));
  auto channel = c->call("conversations.replies", {});
  CHECK(channel.failure == failure_kind::channel_unusable);
  CHECK(channel.error == "channel_not_found");
  CHECK(c->call("auth.test", {}).failure == failure_kind::token_bad);
  auto limited = c->call("users.info", {});
  CHECK(limited.failure == failure_kind::rate_limited);
  CHECK(limited.retry_after == std::chrono::seconds(7));
  auto broken = c->call("usergroups.list", {});
  CHECK(broken.failure == failure_kind::transient);
  CHECK(broken.http_status == 500);
  auto slow = c->call("reactions.add", {});  // answers after the client's timeout
  CHECK(slow.failure == failure_kind::transient);
  auto unknown = c->call("no.such.method", {});  // 404 without JSON
  CHECK(unknown.failure == failure_kind::rejected);
  // The client still works after a timeout.
  CHECK(c->call("chat.postMessage", {{"channel", "C1"}, {"text", "again"}}).ok());
}

TEST_CASE("nothing listening is a transient failure", "[slack]") {
  auto c = web_client::make({"http://127.0.0.1:1/api/", "xoxb-x", std::chrono::milliseconds(300)});
  REQUIRE(c);
  auto r = c.value()->call("chat.postMessage", {});
  CHECK(r.failure == failure_kind::transient);
  CHECK(r.http_status == 0);
}

TEST_CASE("upload posts the bytes to the upload URL", "[slack]") {
  slack_like_server s;
  auto c = client_for(s);
  auto r = c->upload("http://127.0.0.1:" + std::to_string(s.port) + "/upload/F1", "file bytes", "text/plain");
  CHECK(r.ok());
  CHECK(s.last_body == "file bytes");
}
