#pragma once
// A real server run for the audit tests: one scenario of everything the
// audit must show (messages both ways, an internal note, a transfer, Slack
// deliveries, a Slack reply edited and one deleted, done, resolved, reopened),
// performed over HTTP against a server on a loopback port, in-process or a
// `backline serve` child. The test then audits the log that run wrote.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backline/server.hpp"
#include "slack/signature.hpp"
#include "support/temp_dir.hpp"

namespace backline::testing {

inline constexpr const char* audit_admin_token = "audit-admin-token";
inline constexpr const char* audit_signing_secret = "audit-signing-secret";

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

  /// A signed Events API request, as Slack sends it.
  int slack_event(const boost::json::object& event, const std::string& event_id) {
    const auto body = boost::json::serialize(boost::json::object{
      {"type", "event_callback"}, {"event_id", event_id}, {"event", event}});
    const auto ts = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    httplib::Client cli("127.0.0.1", port_);
    httplib::Headers h{{"X-Slack-Request-Timestamp", ts},
                       {"X-Slack-Signature", slack::slack_signature(audit_signing_secret, ts, body)}};
    auto r = cli.Post("/slack/events", h, body, "application/json");
    REQUIRE(r);
    return r->status;
  }

  /// Waits until every message of the thread went to Slack (the admin
  /// reads: that records nothing) and returns the thread.
  boost::json::value settled_thread(const std::string& thread_id) {
    for (int i = 0; i < 500; ++i) {
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
  std::string alice, bob, bot;  // tokens
  std::vector<std::string> chat_event_types;  // the --chat timeline's types, in order
};

/// Runs the scenario; every step waits for what it caused to be recorded,
/// so the log's order is the order of the steps.
inline scenario_result run_audit_scenario(api_client& c) {
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
                       json::object{{"channel_id", "C-finance"}, {"text", "Was the refund for Dana issued?"}});
  REQUIRE(thread.status == 201);
  r.thread_id = thread.text("id");
  const auto thread_path = "/api/v1/threads/" + r.thread_id;
  auto settled = c.settled_thread(r.thread_id);
  const std::string parent_ts(settled.at("slack_ts").as_string());
  // L2 answers in Slack, then edits the answer.
  auto message = [&](const std::string& ts, const std::string& text) {
    return json::object{{"type", "message"}, {"channel", "C-finance"}, {"ts", ts}, {"thread_ts", parent_ts},
                        {"user", "U0FIN"}, {"text", text}};
  };
  REQUIRE(c.slack_event(message("1800000000.000100", "Yes, on Monday"), "Ev-reply-1") == 200);
  REQUIRE(c.slack_event(json::object{{"type", "message"}, {"subtype", "message_changed"}, {"channel", "C-finance"},
                                     {"message", {{"ts", "1800000000.000100"}, {"thread_ts", parent_ts},
                                                  {"user", "U0FIN"}, {"text", "Yes, on Monday 10:00"}}},
                                     {"previous_message", {{"ts", "1800000000.000100"}, {"thread_ts", parent_ts},
                                                           {"user", "U0FIN"}, {"text", "Yes, on Monday"}}}},
                        "Ev-edit-1") == 200);
  REQUIRE(c.post(thread_path + "/messages", r.alice, json::object{{"text", "Thanks! @here"}}).status == 201);
  c.settled_thread(r.thread_id);
  // Alice reads the thread: its unread count is cleared.
  REQUIRE(c.get(thread_path + "/messages", r.alice).status == 200);
  // A second answer, deleted in Slack.
  REQUIRE(c.slack_event(message("1800000000.000200", "wrong thread, sorry"), "Ev-reply-2") == 200);
  REQUIRE(c.slack_event(json::object{{"type", "message"}, {"subtype", "message_deleted"}, {"channel", "C-finance"},
                                     {"deleted_ts", "1800000000.000200"},
                                     {"previous_message", {{"ts", "1800000000.000200"}, {"thread_ts", parent_ts},
                                                           {"user", "U0FIN"}, {"text", "wrong thread, sorry"}}}},
                        "Ev-delete-2") == 200);
  REQUIRE(c.post(chat_path + "/transfer", r.alice, json::object{{"agent_id", "bob"}}).status == 200);
  REQUIRE(c.post(thread_path + "/done", r.bob, json::object{}).status == 200);
  c.settled_thread(r.thread_id);
  REQUIRE(c.post(chat_path + "/resolve", r.bob, json::object{}).status == 200);
  auto next = c.post(chat_path + "/reopen", r.bot, json::object{});
  REQUIRE(next.status == 201);
  r.successor_id = next.text("id");
  r.chat_event_types = {"chat_created",         "chat_message_added", "chat_assigned",   "chat_message_added",
                        "thread_opened",        "thread_created",     "slack_delivered", "slack_reply_received",
                        "slack_reply_edited",   "thread_message_sent", "slack_delivered", "thread_read",
                        "slack_reply_received", "slack_reply_deleted", "chat_transferred", "thread_done",
                        "slack_delivered",      "chat_resolved",      "chat_reopened",   "chat_created"};
  return r;
}

/// A server in this process on an ephemeral port, with the Events API on.
struct in_process_server {
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
    cfg.slack_signing_secret = audit_signing_secret;
    cfg.log_requests = false;
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    srv = std::move(s.value());
  }
  void stop() {
    if (srv)
      srv->stop();
    srv.reset();
  }
  int port() const { return srv->port(); }
  std::string data() const { return dir.sub("data"); }
  std::string log() const { return dir.sub("data") + "/log"; }
};

} // namespace backline::testing
