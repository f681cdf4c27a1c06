#pragma once
// A backline server and the local Slack fake wired together on loopback, as
// in production with a bot token: the server posts to the fake's Web API and
// the fake pushes signed events back. `tune` adjusts the server's
// configuration before it starts (e.g. --slack-inbound poll).

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <functional>
#include <sstream>
#include <thread>

#include "backline/server.hpp"
#include "slack/fake_slack.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace backline::testing {

using namespace std::chrono_literals;
namespace json = boost::json;

struct live_slack {
  backline::testing::temp_dir dir;
  slack::fake_slack fake{[] {
    slack::fake_slack_config c;
    c.event_retry_delays = {50ms, 50ms, 50ms};
    return c;
  }()};
  std::unique_ptr<server> srv;
  std::string admin = "admin-token-events";
  std::function<void(server_config&)> tune;
  bool events_on = true;

  explicit live_slack(std::function<void(server_config&)> tune_config = {}) : tune(std::move(tune_config)) {
    fake.start();
    start();
    if (events_on)  // else Slack has no URL to push to
      fake.set_events_url("http://127.0.0.1:" + std::to_string(srv->port()) + "/slack/events");
  }
  void start() {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = admin;
    cfg.slack_token = fake.config().bot_token;
    cfg.slack_api_url = fake.base_url();
    cfg.slack_signing_secret = fake.config().signing_secret;
    cfg.log_requests = false;
    if (tune)
      tune(cfg);
    events_on = cfg.slack_inbound != "poll";
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    srv = std::move(s.value());
  }
  ~live_slack() {
    srv->stop();
    fake.stop();
  }
  json::value call(const std::string& method, const std::string& path, const std::string& token,
                   const json::value& body = nullptr, int* status = nullptr) {
    httplib::Client cli("127.0.0.1", srv->port());
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    auto r = method == "GET" ? cli.Get(path.c_str(), h) : cli.Post(path.c_str(), h, json::serialize(body), "application/json");
    REQUIRE(r);
    if (status)
      *status = r->status;
    boost::system::error_code ec;
    return json::parse(r->body, ec);
  }
  std::string token_of(const std::string& id, const std::string& role) {
    auto u = call("POST", "/api/v1/users", admin,
                  json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}});
    return std::string(u.at("token").as_string());
  }
  // A bot, an agent "alice" with inbox access, and a chat assigned to her.
  struct assigned_chat {
    std::string bot, agent, chat_id;
  };
  assigned_chat assigned_chat_for_alice() {
    assigned_chat a{token_of("bot", "bot"), token_of("alice", "agent"), ""};
    auto chat = call("POST", "/api/v1/chats", a.bot, json::object{{"customer", {{"id", "c1"}, {"name", "Dana"}}}});
    a.chat_id = std::string(chat.at("id").as_string());
    call("POST", "/api/v1/chats/" + a.chat_id + "/assign", a.bot, json::object{{"agent_id", "alice"}});
    return a;
  }
  // A new thread in `channel` of the chat; its id.
  std::string open_thread(const std::string& agent, const std::string& chat_id, const std::string& channel,
                          const std::string& text = "Question") {
    auto t = call("POST", "/api/v1/chats/" + chat_id + "/threads", agent,
                  json::object{{"channel_id", channel}, {"text", text}});
    return std::string(t.at("id").as_string());
  }
  // The thread's parent ts, once the Web API port has posted it ("" if never).
  std::string parent_ts_of(const std::string& thread_id, const std::string& agent) {
    std::string ts;
    eventually([&] {
      auto t = call("GET", "/api/v1/threads/" + thread_id, agent);
      if (t.at("slack_ts").is_string())
        ts = std::string(t.at("slack_ts").as_string());
      return !ts.empty();
    });
    return ts;
  }
  // The thread's messages once `pred` holds of them.
  template <class Pred>
  json::array messages_until(const std::string& thread, const std::string& agent, Pred pred) {
    json::array list;
    if (!eventually([&] {
          list = call("GET", "/api/v1/threads/" + thread + "/messages", agent).at("messages").as_array();
          return pred(list);
        }))
      FAIL("the thread's messages never became what the test waits for");
    return list;
  }
};


} // namespace backline::testing
