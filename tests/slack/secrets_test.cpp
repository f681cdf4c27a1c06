// No token, signing secret or tokenized file URL appears in what backline
// writes or answers: `backline serve` runs against the Slack fake with its
// request log on, is asked with bad and good tokens, receives forged and
// genuine events (one with file URLs that carry a token, on a foreign host
// and on Slack's own), has its Slack token revoked mid-post; then its whole
// output and every answer it gave are searched for each secret.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "slack/signature.hpp"
#include "support/killable_backline.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

TEST_CASE("no token or signing secret or tokenized file URL appears in logs or answers", "[slack]") {
  const std::string bot_token = "xoxb-4242-secret-bot-token";
  const std::string signing_secret = "9f1c-secret-signing-0a7e";
  const std::string file_token = "xoxe-leak-5151";
  const std::string bad_token = "bad-token-secret-777";
  temp_dir dir;
  slack::fake_slack fake{[&] {
    slack::fake_slack_config c;
    c.bot_token = bot_token;
    c.signing_secret = signing_secret;
    return c;
  }()};
  fake.start();
  killable_backline b{dir, fake,
                      {"--log-requests", "on", "--slack-inbound", "both", "--slack-poll-interval-ms", "200",
                       "--slack-min-interval-ms", "20", "--slack-timeout-ms", "1000"}};
  b.start();
  std::string answers;  // every body backline answered
  auto ask = [&](const std::string& method, const std::string& path, const std::string& token,
                 const json::value& body = nullptr) {
    httplib::Client cli("127.0.0.1", b.port);
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    auto r = method == "GET" ? cli.Get(path.c_str(), h)
                             : cli.Post(path.c_str(), h, json::serialize(body), "application/json");
    REQUIRE(r);
    answers += r->body + "\n";
    return std::make_pair(r->status, r->body);
  };

  const std::string admin = "admin-crash";
  auto token_of = [&](const std::string& id, const std::string& role) {
    auto [status, body] = ask("POST", "/api/v1/users", admin,
                              json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}});
    REQUIRE(status == 201);
    return std::string(json::parse(body).at("token").as_string());
  };
  auto bot = token_of("bot", "bot");
  auto alice = token_of("alice", "agent");
  // Refused: an unknown token, a malformed header, a forbidden call.
  CHECK(ask("GET", "/api/v1/chats", bad_token).first == 401);
  CHECK(ask("POST", "/api/v1/users", alice, json::object{{"id", "x"}, {"name", "x"}, {"role", "admin"}}).first == 403);
  auto [chat_status, chat_body] = ask("POST", "/api/v1/chats", bot, json::object{{"customer", {{"id", "c"}, {"name", "D"}}}});
  REQUIRE(chat_status == 201);
  auto chat = std::string(json::parse(chat_body).at("id").as_string());
  REQUIRE(ask("POST", "/api/v1/chats/" + chat + "/assign", bot, json::object{{"agent_id", "alice"}}).first == 200);
  auto [thread_status, thread_body] =
    ask("POST", "/api/v1/chats/" + chat + "/threads", alice, json::object{{"channel_id", "C0FINANCE"}, {"text", "Refund?"}});
  REQUIRE(thread_status == 201);
  auto thread = std::string(json::parse(thread_body).at("id").as_string());
  std::string parent;
  backline::testing::eventually([&] {
    auto v = json::parse(ask("GET", "/api/v1/threads/" + thread, alice).second);
    if (v.at("slack_ts").is_string())
      parent = std::string(v.at("slack_ts").as_string());
    return !parent.empty();
  });
  REQUIRE_FALSE(parent.empty());

  // Events: a forged one (wrong secret), and a genuine reply with tokenized file URLs.
  auto post_event = [&](const std::string& body, const std::string& secret) {
    httplib::Client cli("127.0.0.1", b.port);
    auto ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
    httplib::Headers h{{"X-Slack-Request-Timestamp", ts},
                       {"X-Slack-Signature", slack::slack_signature(secret, ts, body)}};
    auto r = cli.Post("/slack/events", h, body, "application/json");
    REQUIRE(r);
    answers += r->body + "\n";
    return r->status;
  };
  auto file = [&](const std::string& id, const std::string& url) {
    return json::object{{"id", id}, {"name", id + ".pdf"}, {"mimetype", "application/pdf"}, {"size", 10},
                        {"url_private", url}, {"url_private_download", url}};
  };
  const auto reply_ts = std::to_string(std::time(nullptr)) + ".777001";
  json::object envelope{
    {"token", "verification-token-unused"}, {"team_id", "T0BACKLINE"}, {"api_app_id", "A0BACKLINE"},
    {"type", "event_callback"}, {"event_id", "Ev0SECRETS1"}, {"event_time", std::time(nullptr)},
    {"event",
     {{"type", "message"}, {"subtype", "file_share"}, {"channel", "C0FINANCE"}, {"user", "U0HUGO"},
      {"text", "the statements"}, {"ts", reply_ts}, {"thread_ts", parent},
      {"files", json::array{file("F0FOREIGN", "https://files.slack.com.evil.example/a.pdf?t=" + file_token),
                            file("F0MISSING", fake.server_url() + "/files-pri/T0/F0MISSING/b.pdf?t=" + file_token)}}}}};
  CHECK(post_event(json::serialize(envelope), "not-the-" + signing_secret) == 401);
  CHECK(post_event(json::serialize(envelope), signing_secret) == 200);
  bool arrived = backline::testing::eventually([&] {
    auto v = json::parse(ask("GET", "/api/v1/threads/" + thread + "/messages", admin).second);
    for (const auto& m : v.at("messages").as_array())
      if (m.at("direction") == "from_slack")
        return true;
    return false;
  });
  CHECK(arrived);

  // Slack refuses the token mid-post: the message waits, the reason is told.
  fake.revoke_token();
  CHECK(ask("POST", "/api/v1/threads/" + thread + "/messages", alice, json::object{{"text", "still there?"}}).first == 201);
  std::this_thread::sleep_for(600ms);
  ask("GET", "/api/v1/threads/" + thread + "/messages", alice);
  ask("GET", "/api/v1/slack/channels", alice);
  fake.restore_token();
  ask("GET", "/metrics", admin);

  b.proc->signal(SIGTERM);
  CHECK(b.proc->wait(20s) == 0);
  fake.stop();
  const auto log = read_file(dir.sub("log-1"));
  // The log is there to be searched: it has a line per request.
  CHECK_THAT(log, Catch::Contains("/api/v1/threads/{id}/messages"));
  CHECK_THAT(answers, Catch::Contains("F0FOREIGN.pdf was not downloaded") && Catch::Contains("F0MISSING.pdf was not downloaded"));  // the file notes are in the answers searched
  for (const auto& secret : {bot_token, signing_secret, file_token, bad_token, admin, alice, bot}) {
    INFO("secret: " << secret);
    CHECK(log.find(secret) == std::string::npos);
    if (secret != alice && secret != bot)  // each user's own token is answered once, at creation
      CHECK(answers.find(secret) == std::string::npos);
  }
}
