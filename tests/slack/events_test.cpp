// The Events API: signature checks and envelope reading as pure functions,
// then end to end: backline posting to the local Slack fake, which pushes
// signed events back for L2 replies, edits and deletes.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "backline/server.hpp"
#include "slack/events.hpp"
#include "slack/fake_slack.hpp"
#include "slack/signature.hpp"
#include "support/live_slack.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using namespace std::chrono_literals;

TEST_CASE("events: a request is verified by its signature and a fresh timestamp", "[slack]") {
  auto now = std::chrono::system_clock::now();
  auto ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  std::string body = R"({"type":"url_verification","challenge":"abc"})";
  auto sig = slack::slack_signature("secret", ts, body);
  CHECK(slack::verify_request("secret", ts, sig, body, now));
  CHECK(slack::verify_request("other", ts, sig, body, now).code() == errc::unauthenticated);
  CHECK_FALSE(slack::verify_request("secret", ts, sig, body + " ", now));
  CHECK_FALSE(slack::verify_request("secret", ts, "", body, now));
  auto old = std::to_string(std::stoll(ts) - 301);
  CHECK_FALSE(slack::verify_request("secret", old, slack::slack_signature("secret", old, body), body, now));
  CHECK_FALSE(slack::verify_request("secret", "12x", sig, body, now));
}

TEST_CASE("events: envelopes become replies, edits, deletes, or nothing", "[slack]") {
  auto reply = slack::parse_event(
    R"({"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","ts":"2.0","thread_ts":"1.0","user":"U1","text":"paid"}})");
  REQUIRE(reply);
  CHECK(reply->what == slack::slack_event::kind::reply);
  CHECK(reply->event_id == "Ev1");
  auto broadcast = slack::parse_event(
    R"({"type":"event_callback","event":{"type":"message","subtype":"thread_broadcast","channel":"C1","ts":"3.0","thread_ts":"1.0","user":"U1","text":"x"}})");
  CHECK(broadcast->what == slack::slack_event::kind::reply);
  auto ours = slack::parse_event(
    R"({"type":"event_callback","event":{"type":"message","bot_id":"B1","channel":"C1","ts":"4.0","thread_ts":"1.0","text":"x"}})");
  CHECK(ours->what == slack::slack_event::kind::ignored);
  auto parent = slack::parse_event(
    R"({"type":"event_callback","event":{"type":"message","channel":"C1","ts":"1.0","user":"U1","text":"x"}})");
  CHECK(parent->what == slack::slack_event::kind::ignored);
  auto edit = slack::parse_event(
    R"({"type":"event_callback","event":{"type":"message","subtype":"message_changed","channel":"C1","message":{"ts":"2.0","thread_ts":"1.0","user":"U1","text":"paid today"},"previous_message":{"ts":"2.0","thread_ts":"1.0","text":"paid"}}})");
  CHECK(edit->what == slack::slack_event::kind::edited);
  CHECK(edit->text == "paid today");
  auto gone = slack::parse_event(
    R"({"type":"event_callback","event":{"type":"message","subtype":"message_deleted","channel":"C1","deleted_ts":"2.0","previous_message":{"ts":"2.0","thread_ts":"1.0","user":"U1","text":"paid"}}})");
  CHECK(gone->what == slack::slack_event::kind::deleted);
  CHECK(gone->ts == "2.0");
  CHECK_FALSE(slack::parse_event("not json"));
  CHECK(slack::parse_event(R"({"type":"app_rate_limited"})")->what == slack::slack_event::kind::ignored);
}

using backline::testing::live_slack;

TEST_CASE("events: L2 replies, edits and deletes in Slack reach the inbox once", "[slack]") {
  live_slack f;
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.call("POST", "/api/v1/chats/" + chat_id + "/threads", agent,
                       json::object{{"channel_id", "C0FINANCE"}, {"text", "Was the refund issued?"}});
  auto thread_id = std::string(thread.at("id").as_string());
  // The parent reached the fake through the Web API: the thread knows its ts.
  auto parent_ts = f.parent_ts_of(thread_id, agent);
  REQUIRE_FALSE(parent_ts.empty());

  f.fake.duplicate_next_events(1);  // Slack sometimes delivers twice
  auto reply_ts = f.fake.post_reply("C0FINANCE", parent_ts, "U0ERIN", "Refund *issued* :white_check_mark:");
  auto list = f.messages_until(thread_id, agent, [](const json::array& l) { return l.size() >= 2; });
  std::this_thread::sleep_for(200ms);  // let a duplicate arrive, if any
  REQUIRE(f.call("GET", "/api/v1/threads/" + thread_id + "/messages", agent).at("messages").as_array().size() == 2);
  CHECK(list[1].at("direction") == "from_slack");
  CHECK(list[1].at("author").at("name") == "erin");  // users.info's display name, not U0ERIN
  CHECK(list[1].at("text") == "Refund issued \u2705");
  CHECK(list[1].at("markdown") == "Refund **issued** \u2705");

  f.fake.edit_message("C0FINANCE", reply_ts, "Refund issued yesterday, ask <@U0HUGO> or <!subteam^S0FIN>");
  list = f.messages_until(thread_id, agent, [](const json::array& l) { return l[1].as_object().contains("edited_at"); });
  // Names, never raw <@U…> or <!subteam^…> markup.
  CHECK(list[1].at("text") == "Refund issued yesterday, ask @hugo or @finance-team");

  f.fake.delete_message("C0FINANCE", reply_ts);
  list = f.messages_until(thread_id, agent, [](const json::array& l) { return l[1].as_object().contains("deleted"); });
  CHECK(list[1].at("text") == "");

  // A forged request changes nothing.
  httplib::Client cli("127.0.0.1", f.srv->port());
  auto forged = cli.Post("/slack/events", {{"X-Slack-Request-Timestamp", "1"}, {"X-Slack-Signature", "v0=00"}},
                         R"({"type":"url_verification","challenge":"x"})", "application/json");
  REQUIRE(forged);
  CHECK(forged->status == 401);
  CHECK(f.fake.verify_events_url());  // the url_verification handshake answers the challenge
}

TEST_CASE("a message acknowledged but not yet in Slack is delivered after a restart, once", "[slack]") {
  live_slack f;
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  // Slack is down: the thread is created (durable), its parent cannot be posted.
  f.fake.inject_fault("chat.postMessage", {slack::fault_kind::server_error, 100000});
  int status = 0;
  auto thread = f.call("POST", "/api/v1/chats/" + chat_id + "/threads", agent,
                       json::object{{"channel_id", "C0HR"}, {"text", "Holiday balance?"}}, &status);
  REQUIRE(status == 201);
  auto thread_id = std::string(thread.at("id").as_string());
  std::this_thread::sleep_for(300ms);
  f.srv->stop();
  f.srv.reset();
  f.fake.clear_faults();
  f.start();  // nobody touches the thread: the server delivers it by itself
  auto posted = [&] {
    size_t n = 0;
    for (auto& s : f.fake.sent())
      n += s.method == "chat.postMessage" && s.channel == "C0HR" ? 1 : 0;
    return n;
  };
  REQUIRE(backline::testing::eventually([&] { return posted() > 0; }));
  CHECK(backline::testing::eventually([&, agent = agent] {  // a copy: clang 14 captures no structured binding
    return f.call("GET", "/api/v1/threads/" + thread_id, agent).at("slack_ts").is_string();
  }));
  CHECK(posted() == 1);
}

TEST_CASE("the To list shows the app's channels, and one Slack stops offering stays, unavailable", "[slack]") {
  live_slack f;
  auto agent = f.token_of("alice", "agent");
  auto bot = f.token_of("bot", "bot");
  int status = 0;
  f.call("GET", "/api/v1/slack/channels", bot, nullptr, &status);
  CHECK(status == 403);
  auto list = f.call("GET", "/api/v1/slack/channels", agent, nullptr, &status);
  REQUIRE(status == 200);
  std::map<std::string, bool> available;
  for (auto& c : list.at("channels").as_array())
    available[std::string(c.at("id").as_string())] = c.at("available").as_bool();
  CHECK(available == std::map<std::string, bool>{{"C0FINANCE", true}, {"C0HR", true}, {"C0OPS", true}});
  CHECK(list.at("sandbox") == false);  // a Slack token is configured
  auto health = f.call("GET", "/healthz", "");
  CHECK(health.at("slack").at("status") == "ok");
  httplib::Client cli("127.0.0.1", f.srv->port());
  auto metrics = cli.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("backline_slack_queue_depth 0") && Catch::Contains("backline_slack_token_ok 1"));
  f.fake.archive_channel("C0OPS");
  list = f.call("GET", "/api/v1/slack/channels", agent, nullptr, &status);
  for (auto& c : list.at("channels").as_array())
    if (c.at("id") == "C0OPS") {
      CHECK(c.at("available") == false);
      CHECK(c.as_object().contains("reason"));
    }
}

TEST_CASE("done posts a closing reply in the Slack thread and a check mark on its parent", "[slack]") {
  live_slack f;
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.call("POST", "/api/v1/chats/" + chat_id + "/threads", agent,
                       json::object{{"channel_id", "C0OPS"}, {"text", "Shift swap?"}});
  auto thread_id = std::string(thread.at("id").as_string());
  auto parent_ts = f.parent_ts_of(thread_id, agent);
  REQUIRE_FALSE(parent_ts.empty());
  int status = 0;
  f.call("POST", "/api/v1/threads/" + thread_id + "/done", agent, json::object{}, &status);
  REQUIRE(status == 200);
  bool closed = false, marked = false;
  backline::testing::eventually([&] {
    for (auto& s : f.fake.sent()) {
      closed = closed || (s.method == "chat.postMessage" && s.thread_ts == parent_ts &&
                          s.text.find("Marked as done by alice") != std::string::npos);
      marked = marked || (s.method == "reactions.add" && s.ts == parent_ts && s.text == "white_check_mark");
    }
    return closed && marked;
  });
  CHECK(closed);
  CHECK(marked);
}
