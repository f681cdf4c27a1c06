#pragma once
// A real server run for the audit tests: one scenario of everything the
// audit must show (messages both ways, an internal note, a transfer, Slack
// deliveries, a Slack reply edited and one deleted, done, resolved, reopened),
// performed over HTTP against a server on a loopback port, in-process or a
// `backline serve` child, talking to the local Slack fake as it would to
// slack.com (L2 people reply, edit and delete in the fake, which pushes
// signed events). The test then audits the log that run wrote.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backline/server.hpp"
#include "slack/fake_slack.hpp"
#include "support/temp_dir.hpp"

namespace backline::testing {

inline constexpr const char* audit_admin_token = "audit-admin-token";
inline constexpr const char* audit_channel = "C0FINANCE";  // in the fake's workspace
inline constexpr const char* audit_l2_person = "U0ERIN";

/// The local Slack fake, as Slack for the servers under test.
struct slack_workspace {
  slack::fake_slack fake{[] {
    slack::fake_slack_config c;
    c.event_retry_delays = {std::chrono::milliseconds(50), std::chrono::milliseconds(50),
                            std::chrono::milliseconds(50)};
    return c;
  }()};
  slack_workspace() { fake.start(); }
  ~slack_workspace() { fake.stop(); }
  void push_events_to(int port) { fake.set_events_url("http://127.0.0.1:" + std::to_string(port) + "/slack/events"); }
};

struct http_answer {
  int status = 0;
  boost::json::value body;
  std::string text(std::string_view key) const {
    if (auto* o = body.if_object())
      if (auto* v = o->if_contains(key); v && v->is_string())
        return std::string(v->as_string());
    return {};
  }
};

class api_client {
public:
  explicit api_client(int port) : port_(port) {}

  http_answer call(const std::string& method, const std::string& path, const std::string& token,
                   const boost::json::value& body = nullptr) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(10, 0);
    httplib::Headers h;
    if (!token.empty())
      h.emplace("Authorization", "Bearer " + token);
    auto r = method == "GET" ? cli.Get(path.c_str(), h)
                             : cli.Post(path.c_str(), h, boost::json::serialize(body), "application/json");
    REQUIRE(r);
    http_answer a;
    a.status = r->status;
    boost::system::error_code ec;
    a.body = boost::json::parse(r->body, ec);
    return a;
  }
  http_answer get(const std::string& path, const std::string& token) { return call("GET", path, token); }
  http_answer post(const std::string& path, const std::string& token, const boost::json::value& body) {
    return call("POST", path, token, body);
  }

  /// Waits until the admin's view of the thread's messages satisfies `done`.
  void wait_for_messages(const std::string& thread_id, const std::function<bool(const boost::json::array&)>& done) {
    for (int i = 0; i < 1000; ++i) {
      auto m = get("/api/v1/threads/" + thread_id + "/messages", audit_admin_token);
      if (m.status == 200 && done(m.body.at("messages").as_array()))
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("thread " << thread_id << " did not show what Slack sent");
  }

  /// Waits until every message of the thread went to Slack (the admin
  /// reads: that records nothing) and returns the thread.
  boost::json::value settled_thread(const std::string& thread_id) {
    for (int i = 0; i < 1000; ++i) {
      auto t = get("/api/v1/threads/" + thread_id, audit_admin_token);
      auto m = get("/api/v1/threads/" + thread_id + "/messages", audit_admin_token);
      bool pending = t.text("slack_ts").empty();
      if (auto* list = m.body.as_object().if_contains("messages"))
        for (const auto& msg : list->as_array())
          if (auto* d = msg.as_object().if_contains("delivery"); d && *d == "pending")
            pending = true;
      if (!pending)
        return t.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("thread " << thread_id << " did not settle");
    return nullptr;
  }

private:
  int port_;
};

/// What the scenario did: ids, and the events it caused, in order.
struct scenario_result {
  std::string chat_id, thread_id, successor_id;
  std::string alice, bob, bot;    // tokens
  std::string reply_ts, gone_ts;  // the L2 reply edited, and the one deleted
  std::vector<std::string> chat_event_types;  // the --chat timeline's types, in order
};

/// Runs the scenario; every step waits for what it caused to be recorded,
/// so the log's order is the order of the steps.
inline scenario_result run_audit_scenario(api_client& c, slack::fake_slack& slack) {
  namespace json = boost::json;
  scenario_result r;
  auto user = [&](const std::string& id, const std::string& role) {
    auto u = c.post("/api/v1/users", audit_admin_token,
                    json::object{{"id", id}, {"name", "User " + id}, {"role", role}, {"inbox_access", role == "agent"}});
    REQUIRE(u.status == 201);
    return u.text("token");
  };
  r.bot = user("bot", "bot");
  r.alice = user("alice", "agent");
  r.bob = user("bob", "agent");
  auto chat = c.post("/api/v1/chats", r.bot,
                     json::object{{"customer", {{"id", "cust-1"}, {"name", "Dana"}}}, {"text", "My refund is missing"}});
  REQUIRE(chat.status == 201);
  r.chat_id = chat.text("id");
  const auto chat_path = "/api/v1/chats/" + r.chat_id;
  // The first customer message is appended after the creation is answered.
  for (int i = 0; i < 500; ++i) {
    auto m = c.get(chat_path + "/messages", r.bot);
    if (m.status == 200 && !m.body.at("messages").as_array().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(c.post(chat_path + "/assign", r.bot, json::object{{"agent_id", "alice"}}).status == 200);
  REQUIRE(c.post(chat_path + "/messages", r.alice, json::object{{"text", "Let me check with finance"}}).status == 201);
  auto thread = c.post(chat_path + "/threads", r.alice,
                       json::object{{"channel_id", audit_channel}, {"text", "Was the refund for Dana issued?"}});
  REQUIRE(thread.status == 201);
  r.thread_id = thread.text("id");
  const auto thread_path = "/api/v1/threads/" + r.thread_id;
  auto settled = c.settled_thread(r.thread_id);
  const std::string parent_ts(settled.at("slack_ts").as_string());
  // L2 answers in Slack, then edits the answer.
  r.reply_ts = slack.post_reply(audit_channel, parent_ts, audit_l2_person, "Yes, on Monday");
  c.wait_for_messages(r.thread_id, [](const json::array& m) { return m.size() == 2; });
  slack.edit_message(audit_channel, r.reply_ts, "Yes, on Monday 10:00");
  c.wait_for_messages(r.thread_id, [](const json::array& m) { return m.size() == 2 && m[1].as_object().contains("edited_at"); });
  REQUIRE(c.post(thread_path + "/messages", r.alice, json::object{{"text", "Thanks! @here"}}).status == 201);
  c.settled_thread(r.thread_id);
  // Alice reads the thread: its unread count is cleared.
  REQUIRE(c.get(thread_path + "/messages", r.alice).status == 200);
  // A second answer, deleted in Slack.
  r.gone_ts = slack.post_reply(audit_channel, parent_ts, audit_l2_person, "wrong thread, sorry");
  c.wait_for_messages(r.thread_id, [](const json::array& m) { return m.size() == 4; });
  slack.delete_message(audit_channel, r.gone_ts);
  c.wait_for_messages(r.thread_id, [](const json::array& m) { return m.size() == 4 && m[3].as_object().contains("deleted"); });
  REQUIRE(c.post(chat_path + "/transfer", r.alice, json::object{{"agent_id", "bob"}}).status == 200);
  REQUIRE(c.post(thread_path + "/done", r.bob, json::object{}).status == 200);
  c.settled_thread(r.thread_id);
  REQUIRE(c.post(chat_path + "/resolve", r.bob, json::object{}).status == 200);
  auto next = c.post(chat_path + "/reopen", r.bot, json::object{});
  REQUIRE(next.status == 201);
  r.successor_id = next.text("id");
  REQUIRE(slack.wait_events_idle());
  r.chat_event_types = {"chat_created",         "chat_message_added", "chat_assigned",   "chat_message_added",
                        "thread_opened",        "thread_created",     "slack_delivered", "slack_reply_received",
                        "slack_reply_edited",   "thread_message_sent", "slack_delivered", "thread_read",
                        "slack_reply_received", "slack_reply_deleted", "chat_transferred", "thread_done",
                        "slack_delivered",      "chat_resolved",      "chat_reopened",   "chat_created"};
  return r;
}

/// A server in this process on an ephemeral port, with a Slack token for
/// the fake and its events pushed back (no poller: one way in, one order).
struct in_process_server {
  slack_workspace slack;
  temp_dir dir{"backline-audit"};
  std::unique_ptr<server> srv;

  in_process_server() { start(); }
  ~in_process_server() { stop(); }
  void start() {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.sub("data");
    cfg.http_threads = 8;
    cfg.admin_token = audit_admin_token;
    cfg.slack_token = slack.fake.config().bot_token;
    cfg.slack_api_url = slack.fake.base_url();
    cfg.slack_signing_secret = slack.fake.config().signing_secret;
    cfg.slack_inbound = "events";
    cfg.log_requests = false;
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    srv = std::move(s.value());
    slack.push_events_to(srv->port());
  }
  void stop() {
    if (srv)
      srv->stop();
    srv.reset();
  }
  int port() const { return srv->port(); }
  std::string data() const { return dir.sub("data"); }
  std::string log() const { return dir.sub("data") + "/log"; }
  scenario_result run_scenario() {
    api_client client(port());
    return run_audit_scenario(client, slack.fake);
  }
};

} // namespace backline::testing
