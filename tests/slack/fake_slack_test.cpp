// fake_slack over real HTTP (httplib::Client), the way backline's Slack
// client and the Node SDK see it.

#include "slack/fake_slack.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <httplib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/wait.hpp"

namespace json = boost::json;
using namespace std::chrono_literals;
using backline::slack::fake_slack;
using backline::slack::fake_slack_config;
using backline::slack::fault_kind;

namespace {

fake_slack_config test_config() {
  fake_slack_config cfg;
  cfg.signing_secret = "test-secret";
  cfg.event_retry_delays = {50ms, 50ms, 50ms};
  cfg.event_timeout = 1000ms;
  return cfg;
}

std::string form_encode(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// A tiny Web API client: JSON or form posts with the bearer token.
struct api_client {
  explicit api_client(const fake_slack& s, std::string token = "xoxb-fake")
      : cli(s.server_url()), token(std::move(token)) {
    cli.set_read_timeout(5, 0);
  }

  httplib::Client cli;
  std::string token;

  httplib::Headers auth() const {
    if (token.empty())
      return {};
    return {{"Authorization", "Bearer " + token}};
  }

  json::object parse(const httplib::Result& r) const {
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    auto v = json::parse(r->body);
    REQUIRE(v.is_object());
    return v.as_object();
  }

  json::object call(const std::string& method, const json::object& args) {
    return parse(cli.Post(("/api/" + method).c_str(), auth(), json::serialize(args),
                          "application/json; charset=utf-8"));
  }

  json::object form(const std::string& method, const httplib::Params& params) {
    std::string body;
    for (auto& [k, v] : params)
      body += (body.empty() ? "" : "&") + form_encode(k) + "=" + form_encode(v);
    return parse(cli.Post(("/api/" + method).c_str(), auth(), body, "application/x-www-form-urlencoded"));
  }

  json::object ok(const std::string& method, const json::object& args) {
    auto r = call(method, args);
    INFO(method << " -> " << json::serialize(r));
    REQUIRE(r["ok"].as_bool());
    return r;
  }

  std::string error(const std::string& method, const json::object& args) {
    auto r = call(method, args);
    INFO(method << " -> " << json::serialize(r));
    REQUIRE_FALSE(r["ok"].as_bool());
    return std::string(r["error"].as_string());
  }
};

std::string str(const json::value& v) { return std::string(v.as_string()); }

std::vector<std::string> ts_of(const json::array& messages) {
  std::vector<std::string> out;
  for (auto& m : messages)
    out.push_back(str(m.at("ts")));
  return out;
}

/// A local Events API receiver: records raw requests; answers `statuses`
/// in turn (then 200).
struct event_receiver {
  struct request {
    std::string body, signature, timestamp, retry_num, retry_reason;
  };

  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<request> got;
  std::vector<int> statuses;
  std::atomic<int> delay_ms{0};  // answer this late

  event_receiver() {
    server.Post("/slack/events", [this](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
      std::lock_guard lk(mu);
      got.push_back({req.body, req.get_header_value("X-Slack-Signature"),
                     req.get_header_value("X-Slack-Request-Timestamp"), req.get_header_value("X-Slack-Retry-Num"),
                     req.get_header_value("X-Slack-Retry-Reason")});
      int status = 200;
      if (!statuses.empty()) {
        status = statuses.front();
        statuses.erase(statuses.begin());
      }
      res.status = status;
      auto v = json::parse(req.body).as_object();
      if (v["type"] == "url_verification")
        res.set_content(str(v["challenge"]), "text/plain");
      else
        res.set_content("", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~event_receiver() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/slack/events"; }
  std::vector<request> requests() {
    std::lock_guard lk(mu);
    return got;
  }
  void clear() {
    std::lock_guard lk(mu);
    got.clear();
  }
  void fail_with(std::vector<int> s) {
    std::lock_guard lk(mu);
    statuses = std::move(s);
  }
};

}  // namespace

TEST_CASE("slack_signature matches Slack's documented example and signatures_equal compares") {
  const std::string body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
      "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
      "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
      "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  auto sig = backline::slack::slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body);
  CHECK(sig == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
  CHECK(backline::slack::signatures_equal(sig, "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"));
  CHECK_FALSE(backline::slack::signatures_equal(sig, "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b504"));
  CHECK_FALSE(backline::slack::signatures_equal(sig, "v0=short"));
}

TEST_CASE("chat.postMessage, thread replies and conversations.replies pages by cursor") {
  auto cfg = test_config();
  cfg.fixed_clock_seconds = 1712345678;
  fake_slack slack(cfg);
  slack.start();
  REQUIRE(slack.base_url() == "http://127.0.0.1:" + std::to_string(slack.port()) + "/api/");
  api_client api(slack);

  auto posted = api.ok("chat.postMessage",
                       {{"channel", "C0FINANCE"},
                        {"text", "Refund for order 42?"},
                        {"metadata", {{"event_type", "backline_outbox"}, {"event_payload", {{"outbox_id", "ob-1"}}}}}});
  const std::string parent = str(posted["ts"]);
  CHECK(parent == "1712345678.000001");
  CHECK(str(posted["channel"]) == "C0FINANCE");
  CHECK(str(posted["message"].at("bot_id")) == "B0BACKLINE");
  CHECK(str(posted["message"].at("text")) == "Refund for order 42?");

  std::vector<std::string> replies;
  for (int i = 1; i <= 7; ++i)
    replies.push_back(slack.post_reply("C0FINANCE", parent, "U0ERIN", "reply " + std::to_string(i)));
  for (std::size_t i = 1; i < replies.size(); ++i)
    CHECK(replies[i - 1] < replies[i]);  // same length here, so string order is decimal order
  auto mine = api.ok("chat.postMessage", {{"channel", "C0FINANCE"}, {"thread_ts", parent}, {"text", "thanks"}});
  replies.push_back(str(mine["ts"]));

  // Three per page: parent + 2, then 3, then 3 — next_cursor "" at the end.
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    json::object args{{"channel", "C0FINANCE"}, {"ts", parent}, {"limit", 3}};
    if (!cursor.empty())
      args["cursor"] = cursor;
    auto page = api.ok("conversations.replies", args);
    ++pages;
    for (auto& ts : ts_of(page["messages"].as_array()))
      seen.push_back(ts);
    cursor = str(page["response_metadata"].at("next_cursor"));
    CHECK(page["has_more"].as_bool() == !cursor.empty());
    if (pages == 1) {
      auto& first = page["messages"].as_array()[0].as_object();
      CHECK(str(first.at("ts")) == parent);
      CHECK(first.at("reply_count").as_int64() == 8);
      CHECK(str(first.at("latest_reply")) == replies.back());
      CHECK(first.at("reply_users").as_array().size() == 2);
      CHECK_FALSE(first.contains("metadata"));  // only with include_all_metadata
      auto& second = page["messages"].as_array()[1].as_object();
      CHECK(str(second.at("thread_ts")) == parent);
      CHECK(str(second.at("user")) == "U0ERIN");
      CHECK(str(second.at("text")) == "reply 1");
    }
  } while (!cursor.empty() && pages < 10);
  CHECK(pages == 3);
  std::vector<std::string> expected{parent};
  expected.insert(expected.end(), replies.begin(), replies.end());
  CHECK(seen == expected);

  SECTION("include_all_metadata returns the stored metadata") {
    auto page = api.ok("conversations.replies",
                       {{"channel", "C0FINANCE"}, {"ts", parent}, {"include_all_metadata", true}, {"limit", 1}});
    auto& md = page["messages"].as_array()[0].at("metadata").as_object();
    CHECK(str(md.at("event_type")) == "backline_outbox");
    CHECK(str(md.at("event_payload").at("outbox_id")) == "ob-1");
  }
  SECTION("oldest is exclusive unless inclusive; the parent still comes first") {
    auto page = api.ok("conversations.replies", {{"channel", "C0FINANCE"}, {"ts", parent}, {"oldest", replies[5]}});
    CHECK(ts_of(page["messages"].as_array()) == std::vector<std::string>{parent, replies[6], replies[7]});
    page = api.ok("conversations.replies",
                  {{"channel", "C0FINANCE"}, {"ts", parent}, {"oldest", replies[5]}, {"inclusive", true}});
    CHECK(ts_of(page["messages"].as_array()) ==
          std::vector<std::string>{parent, replies[5], replies[6], replies[7]});
    page = api.ok("conversations.replies",
                  {{"channel", "C0FINANCE"}, {"ts", parent}, {"latest", replies[1]}, {"oldest", "0"}});
    CHECK(ts_of(page["messages"].as_array()) == std::vector<std::string>{parent, replies[0]});
  }
  SECTION("default limit is 10") {
    for (int i = 0; i < 5; ++i)
      slack.post_reply("C0FINANCE", parent, "U0HUGO", "more");
    auto page = api.ok("conversations.replies", {{"channel", "C0FINANCE"}, {"ts", parent}});
    CHECK(page["messages"].as_array().size() == 10);
    CHECK(page["has_more"].as_bool());
  }
  SECTION("a bad cursor is invalid_cursor") {
    CHECK(api.error("conversations.replies", {{"channel", "C0FINANCE"}, {"ts", parent}, {"cursor", "bm9wZQ=="}}) ==
          "invalid_cursor");
  }
}

TEST_CASE("form-encoded and JSON bodies, GET with query parameters") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);

  // The SDK's default: form fields, nested values as JSON strings.
  auto posted = api.form("chat.postMessage",
                         {{"channel", "C0HR"},
                          {"text", "form & friends: 100% <ok>"},
                          {"blocks", R"([{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}])"},
                          {"metadata", R"({"event_type":"backline_outbox","event_payload":{"outbox_id":"ob-7"}})"},
                          {"unfurl_links", "false"}});
  REQUIRE(posted["ok"].as_bool());
  const std::string ts = str(posted["ts"]);
  CHECK(str(posted["message"].at("text")) == "form & friends: 100% <ok>");
  CHECK(posted["message"].at("blocks").as_array().size() == 1);

  // Token as a form field instead of the header.
  api_client no_header(slack, "");
  auto r = no_header.form("conversations.replies",
                          {{"token", "xoxb-fake"}, {"channel", "C0HR"}, {"ts", ts}, {"include_all_metadata", "true"}});
  REQUIRE(r["ok"].as_bool());
  CHECK(str(r["messages"].as_array()[0].at("metadata").at("event_payload").at("outbox_id")) == "ob-7");

  // GET with query parameters, as for read methods.
  auto got = api.parse(api.cli.Get(("/api/conversations.replies?channel=C0HR&ts=" + ts).c_str(), api.auth()));
  REQUIRE(got["ok"].as_bool());
  CHECK(got["messages"].as_array().size() == 1);

  // Slack never reads a token from a JSON body.
  auto json_token = no_header.call("auth.test", {{"token", "xoxb-fake"}});
  CHECK(str(json_token["error"]) == "not_authed");

  // A form body larger than httplib's 8 KB form limit still works.
  std::string big(20000, 'x');
  auto large = api.form("chat.postMessage", {{"channel", "C0HR"}, {"text", big}});
  REQUIRE(large["ok"].as_bool());
  CHECK(large["message"].at("text").as_string().size() == 20000);

  // Slack truncates text past 40,000 characters.
  auto huge = api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", std::string(45000, 'y')}});
  CHECK(huge["message"].at("text").as_string().size() == 40000);

  // Malformed JSON.
  auto bad = api.parse(api.cli.Post("/api/chat.postMessage", api.auth(), "{nope", "application/json"));
  CHECK(str(bad["error"]) == "invalid_json");
}

TEST_CASE("Slack's ok:false errors") {
  fake_slack slack(test_config());
  slack.add_channel({"G0SECRET", "secret", true, false, true});
  slack.start();
  api_client api(slack);
  auto parent = str(api.ok("chat.postMessage", {{"channel", "C0OPS"}, {"text", "parent"}})["ts"]);

  CHECK(api_client(slack, "xoxb-wrong").error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}}) ==
        "invalid_auth");
  CHECK(api_client(slack, "").error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}}) == "not_authed");
  CHECK(api.error("chat.postMessage", {{"channel", "C0NOPE"}, {"text", "x"}}) == "channel_not_found");
  CHECK(api.error("chat.postMessage", {{"channel", "C0GENERAL"}, {"text", "x"}}) == "not_in_channel");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}}) == "no_text");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}, {"thread_ts", "1.000001"}}) ==
        "thread_not_found");
  auto reply = slack.post_reply("C0OPS", parent, "U0OPAL", "a reply");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}, {"thread_ts", reply}}) ==
        "thread_not_found");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}, {"metadata", {{"x", 1}}}}) ==
        "invalid_metadata_format");
  CHECK(api.error("conversations.replies", {{"channel", "C0OPS"}, {"ts", "1.000001"}}) == "thread_not_found");
  CHECK(api.error("users.info", {{"user", "U0NOBODY"}}) == "user_not_found");
  CHECK(api.error("chat.update", {{"channel", "C0OPS"}, {"ts", reply}, {"text", "mine now"}}) ==
        "cant_update_message");
  CHECK(api.error("chat.delete", {{"channel", "C0OPS"}, {"ts", reply}}) == "cant_delete_message");
  CHECK(api.error("chat.update", {{"channel", "C0OPS"}, {"ts", "1.000001"}, {"text", "x"}}) == "message_not_found");
  CHECK(api.error("files.upload", {{"channels", "C0OPS"}}) == "method_deprecated");
  CHECK(api.error("no.such.method", {}) == "unknown_method");

  api.ok("reactions.add", {{"channel", "C0OPS"}, {"timestamp", reply}, {"name", "white_check_mark"}});
  CHECK(api.error("reactions.add", {{"channel", "C0OPS"}, {"timestamp", reply}, {"name", "white_check_mark"}}) ==
        "already_reacted");

  slack.archive_channel("C0OPS");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}}) == "is_archived");
  api.ok("conversations.replies", {{"channel", "C0OPS"}, {"ts", parent}});  // reading still works
  slack.unarchive_channel("C0OPS");
  api.ok("chat.postMessage", {{"channel", "C0OPS"}, {"text", "back"}});

  slack.remove_app("C0OPS");
  CHECK(api.error("chat.postMessage", {{"channel", "C0OPS"}, {"text", "x"}}) == "not_in_channel");
  CHECK(api.error("conversations.replies", {{"channel", "C0OPS"}, {"ts", parent}}) == "not_in_channel");
  slack.remove_app("G0SECRET");
  CHECK(api.error("chat.postMessage", {{"channel", "G0SECRET"}, {"text", "x"}}) == "channel_not_found");

  slack.revoke_token();
  CHECK(api.error("auth.test", {}) == "token_revoked");
  slack.restore_token();
  api.ok("auth.test", {});

  // Every call is logged, failed or not.
  CHECK(slack.call_count("chat.postMessage") >= 10);
}

TEST_CASE("injected faults: 429 with Retry-After, 500, body errors, slow, dropped") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);

  SECTION("ratelimit answers 429 + Retry-After and does not post") {
    slack.inject_fault("chat.postMessage", fault_kind::ratelimit, 1, 7);
    auto r = api.cli.Post("/api/chat.postMessage", api.auth(), R"({"channel":"C0HR","text":"x"})",
                          "application/json");
    REQUIRE(r);
    CHECK(r->status == 429);
    CHECK(r->get_header_value("Retry-After") == "7");
    CHECK(json::parse(r->body).at("error") == "ratelimited");
    CHECK(slack.sent().empty());
    api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "x"}});  // count was 1
  }
  SECTION("server_error answers HTTP 500 for `count` calls") {
    slack.inject_fault("conversations.history", fault_kind::server_error, 2);
    for (int i = 0; i < 2; ++i) {
      auto r = api.cli.Post("/api/conversations.history", api.auth(), R"({"channel":"C0HR"})", "application/json");
      REQUIRE(r);
      CHECK(r->status == 500);
    }
    api.ok("conversations.history", {{"channel", "C0HR"}});
  }
  SECTION("error answers ok:false with the given code (e.g. rate_limited in the body)") {
    backline::slack::fault_spec f;
    f.kind = fault_kind::error;
    f.error = "rate_limited";
    slack.inject_fault("chat.postMessage", f);
    CHECK(api.error("chat.postMessage", {{"channel", "C0HR"}, {"text", "x"}}) == "rate_limited");
    f.error = "missing_scope";
    slack.inject_fault("users.info", f);
    auto r = api.call("users.info", {{"user", "U0ERIN"}});
    CHECK(str(r["error"]) == "missing_scope");
    CHECK(r.contains("needed"));
  }
  SECTION("slow posts the message but answers after the client gave up") {
    slack.inject_fault("chat.postMessage", fault_kind::slow, 1, 1, 1500ms);
    httplib::Client impatient(slack.server_url());
    impatient.set_read_timeout(0, 300'000);
    auto r = impatient.Post("/api/chat.postMessage", api.auth(), R"({"channel":"C0HR","text":"slow"})",
                            "application/json");
    CHECK_FALSE(r);
    REQUIRE(slack.sent().size() == 1);  // it did go out: a retry would post twice
    CHECK(slack.sent()[0].text == "slow");
  }
  SECTION("drop cuts the connection without a usable answer") {
    slack.inject_fault("chat.postMessage", fault_kind::drop);
    auto r = api.cli.Post("/api/chat.postMessage", api.auth(), R"({"channel":"C0HR","text":"dropped"})",
                          "application/json");
    CHECK_FALSE(r);
    CHECK(slack.sent().size() == 1);
    api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "after"}});
  }
  SECTION("the control surface over HTTP injects faults too") {
    httplib::Client control(slack.server_url());
    auto c = control.Post("/control/inject_fault", R"({"method":"users.info","kind":"ratelimit","retry_after":3})",
                          "application/json");
    REQUIRE(c);
    CHECK(c->status == 200);
    auto r = api.cli.Post("/api/users.info", api.auth(), R"({"user":"U0ERIN"})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 429);
    CHECK(r->get_header_value("Retry-After") == "3");
    auto bad = control.Post("/control/inject_fault", R"({"method":"users.info","kind":"meteor"})", "application/json");
    REQUIRE(bad);
    CHECK(bad->status == 400);
  }
}

TEST_CASE("rate limits: a token bucket per method and channel") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);
  // Off by default.
  for (int i = 0; i < 5; ++i)
    api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "burst"}});

  slack.set_rate_limit("chat.postMessage", {1.0, 2});
  api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "1"}});
  api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "2"}});
  auto r = api.cli.Post("/api/chat.postMessage", api.auth(), R"({"channel":"C0HR","text":"3"})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 429);
  CHECK(r->get_header_value("Retry-After") == "1");
  // Another channel has its own bucket.
  api.ok("chat.postMessage", {{"channel", "C0OPS"}, {"text", "elsewhere"}});
  std::this_thread::sleep_for(1100ms);
  api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "after waiting"}});

  slack.set_rate_limits({});
  for (int i = 0; i < 3; ++i)
    api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "off again"}});
  CHECK_FALSE(backline::slack::slack_rate_limits().empty());
}

TEST_CASE("three-step file upload gives one message with files and the comment") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);
  auto parent = str(api.ok("chat.postMessage", {{"channel", "C0FINANCE"}, {"text", "ticket"}})["ts"]);

  const std::string a = "invoice bytes\n", b = std::string("\x89PNG\r\n\x1a\n\0\x01", 10);
  auto u1 = api.ok("files.getUploadURLExternal", {{"filename", "invoice.txt"}, {"length", a.size()}});
  auto u2 = api.form("files.getUploadURLExternal", {{"filename", "shot.png"}, {"length", std::to_string(b.size())}});
  REQUIRE(u2["ok"].as_bool());
  const std::string id1 = str(u1["file_id"]), id2 = str(u2["file_id"]);
  const std::string prefix = slack.server_url() + "/upload/";
  REQUIRE(str(u1["upload_url"]).rfind(prefix, 0) == 0);

  // Raw bytes to one, multipart (as the Node SDK does) to the other.
  httplib::Client up(slack.server_url());
  auto r1 = up.Post(str(u1["upload_url"]).substr(slack.server_url().size()).c_str(), a, "application/octet-stream");
  REQUIRE(r1);
  CHECK(r1->status == 200);
  CHECK(r1->body == "OK - " + std::to_string(a.size()));
  httplib::MultipartFormDataItems items{{"body", b, "shot.png", "application/octet-stream"}};
  auto r2 = up.Post(str(u2["upload_url"]).substr(slack.server_url().size()).c_str(), items);
  REQUIRE(r2);
  CHECK(r2->status == 200);
  CHECK(*slack.file_content(id2) == b);

  // files as a JSON string in a form post, as the SDK sends it.
  auto done = api.form("files.completeUploadExternal",
                       {{"files", R"([{"id":")" + id1 + R"(","title":"Invoice"},{"id":")" + id2 + R"("}])"},
                        {"channel_id", "C0FINANCE"},
                        {"thread_ts", parent},
                        {"initial_comment", "here you go <@U0ERIN>"}});
  INFO(json::serialize(done));
  REQUIRE(done["ok"].as_bool());
  REQUIRE(done["files"].as_array().size() == 2);
  CHECK(str(done["files"].as_array()[0].at("title")) == "Invoice");
  CHECK(str(done["files"].as_array()[0].at("id")) == id1);

  auto thread = api.ok("conversations.replies", {{"channel", "C0FINANCE"}, {"ts", parent}});
  auto& messages = thread["messages"].as_array();
  REQUIRE(messages.size() == 2);  // one message with both files
  auto& msg = messages[1].as_object();
  CHECK(str(msg.at("text")) == "here you go <@U0ERIN>");
  CHECK(str(msg.at("bot_id")) == "B0BACKLINE");
  auto& files = msg.at("files").as_array();
  REQUIRE(files.size() == 2);
  CHECK(str(files[0].at("name")) == "invoice.txt");
  CHECK(str(files[0].at("mimetype")) == "text/plain");
  CHECK(files[0].at("size").as_int64() == static_cast<std::int64_t>(a.size()));
  CHECK(str(files[1].at("mimetype")) == "image/png");

  // Downloading needs the bearer token.
  const std::string url = str(files[1].at("url_private_download"));
  REQUIRE(url.rfind(slack.server_url() + "/files-pri/" + id2 + "/", 0) == 0);
  httplib::Client dl(slack.server_url());
  auto path = url.substr(slack.server_url().size());
  auto anonymous = dl.Get(path.c_str());
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  auto wrong = dl.Get(path.c_str(), {{"Authorization", "Bearer xoxb-wrong"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto ok = dl.Get(path.c_str(), api.auth());
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(ok->body == b);
  auto ok2 = dl.Get(str(files[0].at("url_private")).substr(slack.server_url().size()).c_str(), api.auth());
  REQUIRE(ok2);
  CHECK(ok2->body == a);

  SECTION("errors: unknown or not-yet-uploaded file, missing arguments") {
    auto u3 = api.ok("files.getUploadURLExternal", {{"filename", "late.txt"}, {"length", 3}});
    CHECK(api.error("files.completeUploadExternal",
                    {{"files", json::array{json::object{{"id", u3["file_id"]}}}}, {"channel_id", "C0FINANCE"}}) ==
          "file_not_found");
    CHECK(api.error("files.completeUploadExternal", {{"files", R"([{"id":"F404"}])"}}) == "file_not_found");
    CHECK(api.error("files.getUploadURLExternal", {{"filename", "x.txt"}}) == "invalid_arguments");
    // Completed files cannot be completed or uploaded again.
    CHECK(api.error("files.completeUploadExternal", {{"files", json::array{json::object{{"id", id1}}}}}) ==
          "file_not_found");
  }
  SECTION("people's files arrive in thread replies with subtype file_share") {
    auto ts = slack.add_file_reply("C0FINANCE", parent, "U0ERIN", {"receipt.pdf", "%PDF-1.4"}, "receipt attached");
    auto m = slack.message("C0FINANCE", ts);
    REQUIRE(m);
    CHECK(str(m->at("subtype")) == "file_share");
    auto& f = m->at("files").as_array()[0].as_object();
    CHECK(str(f.at("mimetype")) == "application/pdf");
    auto got = dl.Get(str(f.at("url_private")).substr(slack.server_url().size()).c_str(), api.auth());
    REQUIRE(got);
    CHECK(got->body == "%PDF-1.4");
  }
}

TEST_CASE("edits and deletes show in conversations.replies and the app's writes in sent()") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);
  auto parent = str(api.ok("chat.postMessage", {{"channel", "C0HR"}, {"text", "leave request"}})["ts"]);
  auto r1 = slack.post_reply("C0HR", parent, "U0HUGO", "approved");
  auto r2 = slack.post_reply("C0HR", parent, "U0HUGO", "oops");
  auto r3 = slack.post_reply("C0HR", parent, "U0HUGO", "also in channel", {}, true);

  slack.edit_message("C0HR", r1, "approved (2 days)");
  slack.delete_message("C0HR", r2);
  api.ok("chat.update", {{"channel", "C0HR"}, {"ts", parent}, {"text", "leave request (updated)"}});

  auto thread = api.ok("conversations.replies", {{"channel", "C0HR"}, {"ts", parent}});
  auto& m = thread["messages"].as_array();
  REQUIRE(ts_of(m) == std::vector<std::string>{parent, r1, r3});
  CHECK(str(m[0].at("text")) == "leave request (updated)");
  CHECK(str(m[0].at("edited").at("user")) == "U0BACKLINE");
  CHECK(str(m[1].at("text")) == "approved (2 days)");
  CHECK(str(m[1].at("edited").at("user")) == "U0HUGO");
  CHECK(str(m[2].at("subtype")) == "thread_broadcast");

  // A broadcast reply is in the channel's history too, newest first.
  auto history = api.ok("conversations.history", {{"channel", "C0HR"}});
  CHECK(ts_of(history["messages"].as_array()) == std::vector<std::string>{r3, parent});

  // Deleting a parent with replies leaves a tombstone.
  api.ok("chat.delete", {{"channel", "C0HR"}, {"ts", parent}});
  auto after = api.ok("conversations.replies", {{"channel", "C0HR"}, {"ts", parent}});
  CHECK(str(after["messages"].as_array()[0].at("subtype")) == "tombstone");
  CHECK(after["messages"].as_array().size() == 3);

  auto sent = slack.sent();
  REQUIRE(sent.size() == 3);
  CHECK(sent[0].method == "chat.postMessage");
  CHECK(sent[0].text == "leave request");
  CHECK(sent[1].method == "chat.update");
  CHECK(sent[2].method == "chat.delete");
  CHECK(sent[2].ts == parent);
}

TEST_CASE("conversations.history, users.conversations, users.info, usergroups.list") {
  auto cfg = test_config();
  cfg.workspace.channels.push_back({"C0OLD", "old-billing", true, true, false});
  cfg.workspace.usergroups.push_back({"S0GONE", "gone-team", "Gone", {}, true});
  fake_slack slack(cfg);
  slack.start();
  api_client api(slack);

  std::vector<std::string> posted;
  for (int i = 0; i < 5; ++i) {
    posted.push_back(str(api.ok("chat.postMessage", {{"channel", "C0OPS"}, {"text", std::to_string(i)}})["ts"]));
    slack.post_reply("C0OPS", posted.back(), "U0OPAL", "r");
  }
  slack.post_reply("C0OPS", posted[0], "U0ERIN", "r2");
  auto page1 = api.ok("conversations.history", {{"channel", "C0OPS"}, {"limit", 2}});
  CHECK(ts_of(page1["messages"].as_array()) == std::vector<std::string>{posted[4], posted[3]});
  CHECK(page1["has_more"].as_bool());
  auto page2 = api.ok("conversations.history",
                      {{"channel", "C0OPS"}, {"limit", 10}, {"cursor", page1["response_metadata"].at("next_cursor")}});
  CHECK(ts_of(page2["messages"].as_array()) == std::vector<std::string>{posted[2], posted[1], posted[0]});
  CHECK(str(page2["response_metadata"].at("next_cursor")).empty());
  auto& oldest = page2["messages"].as_array()[2].as_object();
  CHECK(oldest.at("reply_count").as_int64() == 2);
  CHECK(oldest.at("reply_users").as_array().size() == 2);
  auto window = api.ok("conversations.history", {{"channel", "C0OPS"}, {"oldest", posted[1]}, {"latest", posted[3]}});
  CHECK(ts_of(window["messages"].as_array()) == std::vector<std::string>{posted[2]});

  // The bot's channels: public by default; archived ones unless excluded.
  auto convs = api.ok("users.conversations", {{"types", "public_channel,private_channel"}});
  std::vector<std::string> ids;
  for (auto& c : convs["channels"].as_array()) {
    ids.push_back(str(c.at("id")));
    CHECK(c.at("is_member").as_bool());
  }
  CHECK(ids == std::vector<std::string>{"C0FINANCE", "C0HR", "C0OLD", "C0OPS"});
  auto active = api.ok("users.conversations", {{"exclude_archived", true}, {"limit", 2}});
  CHECK(active["channels"].as_array().size() == 2);
  auto rest = api.ok("users.conversations",
                     {{"exclude_archived", true}, {"limit", 2}, {"cursor", active["response_metadata"].at("next_cursor")}});
  CHECK(rest["channels"].as_array().size() == 1);
  CHECK(str(rest["channels"].as_array()[0].at("name")) == "operations");
  CHECK(str(rest["response_metadata"].at("next_cursor")).empty());

  auto erin = api.ok("users.info", {{"user", "U0ERIN"}});
  CHECK(str(erin["user"].at("name")) == "erin");
  CHECK(str(erin["user"].at("real_name")) == "Erin Finance");
  CHECK(str(erin["user"].at("profile").at("display_name")) == "erin");

  auto groups = api.ok("usergroups.list", {});
  REQUIRE(groups["usergroups"].as_array().size() == 3);
  CHECK(str(groups["usergroups"].as_array()[0].at("id")) == "S0FIN");
  CHECK(str(groups["usergroups"].as_array()[0].at("handle")) == "finance-team");
  CHECK(api.ok("usergroups.list", {{"include_disabled", true}})["usergroups"].as_array().size() == 4);
}

TEST_CASE("signed events are pushed, and retried with X-Slack-Retry-Num after a failure") {
  event_receiver receiver;
  fake_slack slack(test_config());
  slack.start();
  slack.set_events_url(receiver.url());
  CHECK(slack.verify_events_url());  // the url_verification challenge
  receiver.clear();
  receiver.fail_with({500});  // the first delivery fails

  api_client api(slack);
  auto parent = str(api.ok("chat.postMessage", {{"channel", "C0FINANCE"}, {"text", "ticket"}})["ts"]);
  REQUIRE(slack.wait_events_idle());

  auto verify = [&](const event_receiver::request& r) {
    CHECK(backline::slack::signatures_equal(
        r.signature, backline::slack::slack_signature("test-secret", r.timestamp, r.body)));
    CHECK(std::abs(std::stoll(r.timestamp) - std::chrono::duration_cast<std::chrono::seconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count()) < 60);
  };

  // The app's own message comes back as an event (with bot_id): 500, then a retry.
  auto got = receiver.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].body == got[1].body);
  CHECK(got[0].retry_num.empty());
  CHECK(got[1].retry_num == "1");
  CHECK(got[1].retry_reason == "http_error");
  for (auto& r : got)
    verify(r);
  auto first = json::parse(got[0].body).as_object();
  CHECK(str(first["type"]) == "event_callback");
  CHECK(str(first["team_id"]) == "T0BACKLINE");
  CHECK(str(first["event_id"]).rfind("Ev", 0) == 0);
  CHECK(str(first["event"].at("bot_id")) == "B0BACKLINE");

  // A person's reply, an edit, a deletion.
  receiver.clear();
  auto reply = slack.post_reply("C0FINANCE", parent, "U0ERIN", "done", {{"proof.txt", "paid"}});
  slack.edit_message("C0FINANCE", reply, "done!");
  slack.delete_message("C0FINANCE", reply);
  auto broadcast = slack.post_reply("C0FINANCE", parent, "U0ERIN", "FYI all", {}, true);
  REQUIRE(slack.wait_events_idle());
  got = receiver.requests();
  REQUIRE(got.size() == 4);
  for (auto& r : got)
    verify(r);
  auto e0 = json::parse(got[0].body).at("event").as_object();
  CHECK(str(e0["type"]) == "message");
  CHECK(str(e0["subtype"]) == "file_share");
  CHECK(str(e0["channel"]) == "C0FINANCE");
  CHECK(str(e0["ts"]) == reply);
  CHECK(str(e0["thread_ts"]) == parent);
  CHECK(str(e0["user"]) == "U0ERIN");
  CHECK(str(e0["text"]) == "done");
  CHECK(str(e0["files"].as_array()[0].at("name")) == "proof.txt");
  auto e1 = json::parse(got[1].body).at("event").as_object();
  CHECK(str(e1["subtype"]) == "message_changed");
  CHECK(str(e1["message"].at("ts")) == reply);
  CHECK(str(e1["message"].at("text")) == "done!");
  CHECK(str(e1["previous_message"].at("text")) == "done");
  auto e2 = json::parse(got[2].body).at("event").as_object();
  CHECK(str(e2["subtype"]) == "message_deleted");
  CHECK(str(e2["deleted_ts"]) == reply);
  auto e3 = json::parse(got[3].body).at("event").as_object();
  CHECK(str(e3["subtype"]) == "thread_broadcast");
  CHECK(str(e3["ts"]) == broadcast);
  // event_ids are unique
  std::set<std::string> ids;
  for (auto& r : got)
    ids.insert(str(json::parse(r.body).at("event_id")));
  CHECK(ids.size() == 4);

  SECTION("gives up after 3 retries") {
    receiver.clear();
    receiver.fail_with({500, 503, 500, 500, 500});
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "unlucky");
    REQUIRE(slack.wait_events_idle());
    got = receiver.requests();
    REQUIRE(got.size() == 4);
    CHECK(got[3].retry_num == "3");
  }
  SECTION("a receiver slower than the timeout gets http_timeout retries") {
    receiver.delay_ms = 1300;  // past the 1 s test timeout
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "slowly");
    // Four 1 s timeouts would be slow: check the first retry, then stop.
    backline::testing::eventually([&] { return slack.event_deliveries().size() >= 8; });
    auto d = slack.event_deliveries();
    REQUIRE(d.size() >= 8);
    CHECK(d[6].http_status == 0);
    CHECK(d[7].retry_num == 1);
    CHECK(d[7].retry_reason == "http_timeout");
    slack.stop();
    receiver.delay_ms = 0;
  }
  SECTION("duplicates, disabled events, delays") {
    receiver.clear();
    slack.duplicate_next_events(1);
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "twice");
    REQUIRE(slack.wait_events_idle());
    got = receiver.requests();
    REQUIRE(got.size() == 2);
    CHECK(got[0].body == got[1].body);
    CHECK(got[1].retry_num.empty());

    receiver.clear();
    slack.events_enabled(false);
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "lost");
    REQUIRE(slack.wait_events_idle());
    CHECK(receiver.requests().empty());
    slack.events_enabled(true);

    slack.delay_events(300ms);
    auto t0 = std::chrono::steady_clock::now();
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "late");
    REQUIRE(slack.wait_events_idle());
    CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
    CHECK(receiver.requests().size() == 1);
  }
  SECTION("no events from a channel the app was removed from") {
    receiver.clear();
    slack.remove_app("C0FINANCE");
    slack.post_reply("C0FINANCE", parent, "U0ERIN", "unseen");
    REQUIRE(slack.wait_events_idle());
    CHECK(receiver.requests().empty());
  }
}

TEST_CASE("the control surface over HTTP drives people and reads back") {
  fake_slack slack(test_config());
  slack.start();
  api_client api(slack);
  httplib::Client control(slack.server_url());
  auto parent = str(api.ok("chat.postMessage", {{"channel", "C0FINANCE"}, {"text", "q"}})["ts"]);

  auto r = control.Post("/control/post_reply",
                        json::serialize(json::object{{"channel", "C0FINANCE"},
                                                     {"thread_ts", parent},
                                                     {"user", "U0ERIN"},
                                                     {"text", "answer"},
                                                     {"files", json::array{json::object{{"name", "a.csv"},
                                                                                        {"content_base64", "YSxiCjEsMgo="}}}}}),
                        "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto ts = str(json::parse(r->body).at("ts"));
  auto m = slack.message("C0FINANCE", ts);
  REQUIRE(m);
  auto file_id = str(m->at("files").as_array()[0].at("id"));
  CHECK(*slack.file_content(file_id) == "a,b\n1,2\n");

  auto unknown = control.Post("/control/post_reply",
                              R"({"channel":"C0FINANCE","thread_ts":"1.000001","user":"U0ERIN","text":"x"})",
                              "application/json");
  REQUIRE(unknown);
  CHECK(unknown->status == 400);
  CHECK(json::parse(unknown->body).at("error") == "thread_not_found");

  auto sent = control.Get("/control/sent");
  REQUIRE(sent);
  auto items = json::parse(sent->body).at("sent").as_array();
  REQUIRE(items.size() == 1);
  CHECK(str(items[0].at("text")) == "q");

  auto thread = control.Get(("/control/thread?channel=C0FINANCE&ts=" + parent).c_str());
  REQUIRE(thread);
  CHECK(json::parse(thread->body).at("messages").as_array().size() == 2);

  REQUIRE(control.Post("/control/archive_channel", R"({"channel":"C0FINANCE"})", "application/json"));
  CHECK(api.error("chat.postMessage", {{"channel", "C0FINANCE"}, {"text", "x"}}) == "is_archived");
  REQUIRE(control.Post("/control/revoke_token", "", "application/json"));
  CHECK(api.error("auth.test", {}) == "token_revoked");
}

TEST_CASE("ts are unique and increasing under concurrent posts") {
  fake_slack slack(test_config());
  slack.start();
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::string> all;
  // No Catch2 assertions off the main thread: collect, then check.
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      httplib::Client cli(slack.server_url());
      for (int i = 0; i < 25; ++i) {
        auto r = cli.Post("/api/chat.postMessage", {{"Authorization", "Bearer xoxb-fake"}},
                          R"({"channel":"C0OPS","text":"x"})", "application/json");
        std::string ts = r ? std::string(json::parse(r->body).at("ts").as_string()) : "";
        std::lock_guard lk(mu);
        all.push_back(ts);
      }
    });
  for (auto& t : threads)
    t.join();
  std::set<std::string> unique(all.begin(), all.end());
  CHECK(unique.size() == 100);
  CHECK_FALSE(unique.count(""));
  for (auto& ts : all) {
    CHECK(ts.size() == 17);
    CHECK(ts[10] == '.');
  }
}
