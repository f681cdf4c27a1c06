// The authorization matrix: every /api/v1 endpoint, called by every kind of
// caller, on a chat that is the caller's own, was transferred away from it,
// or is resolved, answers exactly the status in the table below; and a call
// that is refused changes nothing (the admin's views of the chat, its
// transcript, its threads and their messages, the chat lists, and the number
// of events in the log are the same before and after).
//
// Callers: the admin; alice, an agent with inbox access; carol, an agent
// without it; bob, another agent; the bot; no token; a token nobody has.
// The chat: the bot creates it and assigns it to alice, who opens a thread
// with a file in it; an L2 person replies in Slack. For carol, alice then
// transfers the chat to her, so carol is its agent. "Transferred away": the
// chat's agent (alice, or carol) then transfers it to dave; "resolved": the
// bot then resolves it. For everyone else the chat is alice's own,
// transferred from alice to dave, or resolved.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "backline/server.hpp"
#include "slack/fake_slack.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;

namespace {

enum caller_kind { admin, agent, agent_without_inbox, other_agent, bot, no_token, bad_token, caller_kinds };
enum ownership { own, transferred_away, resolved, ownerships };

const char* caller_names[] = {"admin", "agent with inbox access", "agent without inbox access", "another agent",
                              "bot", "no token", "bad token"};
const char* ownership_names[] = {"own chat", "transferred away", "resolved"};

/// One row: an endpoint, how to call it, and the status for each caller (a
/// column) and each ownership (the three numbers of a column, in the order
/// own, transferred away, resolved).
struct endpoint {
  const char* method;
  const char* path;  // {chat}, {thread}, {file} name the chat under test
  const char* body;  // JSON, with {thread_ts} and {unique}; "" for none
  std::array<const char*, caller_kinds> statuses;
  bool changes_the_chat = false;  // a 2xx changes the chat under test: give it a chat of its own
};

// clang-format off
//                                                                          admin          agent          no inbox       other agent    bot            no token       bad token
const endpoint endpoints[] = {
  {"GET",    "/api/v1/me", "",                                            {"200 200 200", "200 200 200", "200 200 200", "200 200 200", "200 200 200", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/users", "",                                         {"200 200 200", "200 200 200", "200 200 200", "200 200 200", "200 200 200", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/users", R"({"id":"user-{unique}","name":"New","role":"agent"})",
                                                                          {"201 201 201", "403 403 403", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/chats", R"({"customer":{"id":"cust-{unique}","name":"Eve"}})",
                                                                          {"403 403 403", "403 403 403", "403 403 403", "403 403 403", "201 201 201", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/chats?view=mine", "",                               {"403 403 403", "200 200 200", "200 200 200", "200 200 200", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/chats?view=active", "",                             {"200 200 200", "403 403 403", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/chats?view=resolved", "",                           {"200 200 200", "200 200 200", "200 200 200", "200 200 200", "200 200 200", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/chats/{chat}", "",                                  {"200 200 200", "200 403 200", "200 403 200", "403 403 403", "200 200 200", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/chats/{chat}/assign", R"({"agent_id":"bob"})",      {"200 200 409", "403 403 403", "403 403 403", "403 403 403", "200 200 409", "401 401 401", "401 401 401"}, true},
  {"POST",   "/api/v1/chats/{chat}/transfer", R"({"agent_id":"bob"})",    {"200 200 409", "200 403 409", "200 403 409", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}, true},
  {"POST",   "/api/v1/chats/{chat}/resolve", "",                          {"200 200 409", "200 403 409", "200 403 409", "403 403 403", "200 200 409", "401 401 401", "401 401 401"}, true},
  {"POST",   "/api/v1/chats/{chat}/reopen", "",                           {"409 409 201", "403 403 403", "403 403 403", "403 403 403", "409 409 201", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/chats/{chat}/messages", "",                         {"200 200 200", "200 403 200", "200 403 200", "403 403 403", "200 200 200", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/chats/{chat}/messages", R"({"from":"customer","text":"Any news?"})",
                                                                          {"403 403 403", "201 403 409", "201 403 409", "403 403 403", "201 201 409", "401 401 401", "401 401 401"}, true},
  {"GET",    "/api/v1/chats/{chat}/threads", "",                          {"200 200 200", "200 403 200", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/chats/{chat}/threads", R"({"channel_id":"C0HR","text":"Another question"})",
                                                                          {"403 403 403", "201 403 409", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}, true},
  {"GET",    "/api/v1/threads/{thread}", "",                              {"200 200 200", "200 403 200", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/threads/{thread}/messages", "",                     {"200 200 200", "200 403 200", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"POST",   "/api/v1/threads/{thread}/messages", R"({"text":"Thanks @here"})",
                                                                          {"403 403 403", "201 403 409", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}, true},
  {"POST",   "/api/v1/threads/{thread}/done", "",                         {"403 403 403", "200 403 409", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}, true},
  {"PUT",    "/api/v1/chats/{chat}/focus", "",                            {"403 403 403", "204 403 204", "204 403 204", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"DELETE", "/api/v1/chats/{chat}/focus", "",                            {"403 403 403", "204 403 204", "204 403 204", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/files/{file}", "",                                  {"200 200 200", "200 403 200", "403 403 403", "403 403 403", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/notifications?wait=0", "",                          {"403 403 403", "200 200 200", "200 200 200", "200 200 200", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/slack/channels", "",                                {"200 200 200", "200 200 200", "200 200 200", "200 200 200", "403 403 403", "401 401 401", "401 401 401"}},
  {"GET",    "/api/v1/slack/mentions", "",                                {"200 200 200", "200 200 200", "200 200 200", "200 200 200", "403 403 403", "401 401 401", "401 401 401"}},
  // With a real Slack there is no sandbox to post into (see the sandbox test below).
  {"POST",   "/api/v1/sandbox/slack/replies",
             R"({"channel_id":"C0FINANCE","thread_ts":"{thread_ts}","user_name":"Erin","text":"Done"})",
                                                                          {"404 404 404", "404 404 404", "404 404 404", "404 404 404", "404 404 404", "401 401 401", "401 401 401"}, true},
};
// clang-format on

int expected_status(const endpoint& e, caller_kind who, ownership whose) {
  std::istringstream in(e.statuses[who]);
  int s[ownerships] = {};
  in >> s[own] >> s[transferred_away] >> s[resolved];
  return s[whose];
}

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

/// Which parts of two snapshots differ, with both values, for the failure message.
std::string changed_parts(const json::object& before, const json::object& after) {
  std::string out;
  for (const auto& kv : before)
    if (!after.contains(kv.key()) || after.at(kv.key()) != kv.value())
      out += std::string(kv.key()) + ": " + json::serialize(kv.value()).substr(0, 2000) + " -> " +
             (after.contains(kv.key()) ? json::serialize(after.at(kv.key())).substr(0, 2000) : "(none)") + "\n";
  return out;
}

/// A chat under test, set up as the header says.
struct chat_under_test {
  std::string chat, thread, file, thread_ts;
};

enum class slack_mode { real, sandbox };

class matrix_fixture {
public:
  backline::testing::temp_dir dir;
  slack::fake_slack fake;  // "real" Slack: a local fake without rate limits
  std::unique_ptr<server> srv;
  std::map<std::string, std::string> tokens;  // user id -> token
  bool sandbox = false;
  int unique = 0;

  /// Slack is the local fake (with a bot token), or the sandbox (no token:
  /// the server's own simulated workspace, with Slack's rate limits).
  explicit matrix_fixture(slack_mode mode = slack_mode::real) : sandbox(mode == slack_mode::sandbox) {
    server_config cfg;
    if (!sandbox) {
      fake.start();
      cfg.slack_token = fake.config().bot_token;
      cfg.slack_api_url = fake.base_url();
      cfg.slack_min_interval_ms = 1;  // deliveries at once, not paced at one a second
    }
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = "admin-token-for-the-matrix";
    cfg.rate_limit = 0;  // every call of the matrix by one token at once: the subject is who may, not how often
    cfg.log_requests = false;
    cfg.sync_writes = false;  // what is checked here is who may do what, not durability
    std::ostringstream log;
    auto s = server::start(cfg, log);
    REQUIRE(s);
    srv = std::move(s.value());
    tokens["admin"] = cfg.admin_token;
    for (auto [id, role, inbox] : {std::tuple{"alice", "agent", true}, {"carol", "agent", false},
                                   {"bob", "agent", true}, {"dave", "agent", true}, {"bot", "bot", false}}) {
      auto r = call("POST", "/api/v1/users", tokens["admin"],
                    json::serialize(json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", inbox}}));
      REQUIRE(r.first == 201);
      tokens[id] = std::string(json::parse(r.second).at("token").as_string());
    }
  }

  ~matrix_fixture() {
    if (srv)
      srv->stop();
    if (!sandbox)
      fake.stop();
  }

  std::string token_of(caller_kind who) {
    switch (who) {
      case admin: return tokens["admin"];
      case agent: return tokens["alice"];
      case agent_without_inbox: return tokens["carol"];
      case other_agent: return tokens["bob"];
      case bot: return tokens["bot"];
      case no_token: return "";
      default: return "not-a-token-anybody-has";
    }
  }

  std::pair<int, std::string> call(const std::string& method, const std::string& path, const std::string& token,
                                   const std::string& body = "") {
    httplib::Client cli("127.0.0.1", srv->port());
    httplib::Headers h;
    if (!token.empty())
      h.emplace("Authorization", "Bearer " + token);
    httplib::Result r = method == "GET"      ? cli.Get(path.c_str(), h)
                        : method == "PUT"    ? cli.Put(path.c_str(), h, body, "application/json")
                        : method == "DELETE" ? cli.Delete(path.c_str(), h)
                                             : cli.Post(path.c_str(), h, body, "application/json");
    REQUIRE(r);
    return {r->status, r->body};
  }

  json::value admin_get(const std::string& path) {
    auto [status, body] = call("GET", path, tokens["admin"]);
    REQUIRE(status == 200);
    return json::parse(body);
  }

  /// A figure from /metrics.
  uint64_t metric(const std::string& name) {
    auto [status, body] = call("GET", "/metrics", "");
    REQUIRE(status == 200);
    auto at = body.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return static_cast<uint64_t>(std::stod(body.substr(at + name.size() + 2)));
  }
  /// Events in the log so far.
  uint64_t events_in_log() { return metric("backline_journal_events_total"); }

  /// Waits until nothing is being written: no message waits for Slack (a
  /// delivery is recorded after the answer that caused it) and the log has
  /// not grown for a while.
  void settle() {
    uint64_t last = events_in_log();
    for (int quiet = 0, i = 0; quiet < 3 && i < 1000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      uint64_t now = events_in_log();
      quiet = now == last && metric("backline_slack_queue_depth") == 0 ? quiet + 1 : 0;
      last = now;
    }
  }

  chat_under_test make_chat(caller_kind who, ownership whose) {
    chat_under_test c;
    auto created = call("POST", "/api/v1/chats", tokens["bot"],
                        R"({"customer":{"id":"cust-1","name":"Dana"},"text":"Where is my refund?"})");
    REQUIRE(created.first == 201);
    c.chat = std::string(json::parse(created.second).at("id").as_string());
    REQUIRE(call("POST", "/api/v1/chats/" + c.chat + "/assign", tokens["bot"], R"({"agent_id":"alice"})").first == 200);
    auto t = call("POST", "/api/v1/chats/" + c.chat + "/threads", tokens["alice"],
                  R"({"channel_id":"C0FINANCE","text":"Was the refund issued?"})");
    REQUIRE(t.first == 201);
    c.thread = std::string(json::parse(t.second).at("id").as_string());
    backline::testing::eventually([&] {
      auto ts = admin_get("/api/v1/threads/" + c.thread).at("slack_ts");
      if (ts.is_string() && !ts.as_string().empty())
        c.thread_ts = std::string(ts.as_string());
      return !c.thread_ts.empty();
    });
    REQUIRE_FALSE(c.thread_ts.empty());
    // A message with a file, as multipart. (Not the opening message: a
    // parent posted with files gets no ts from Slack's files.completeUploadExternal.)
    httplib::Client cli("127.0.0.1", srv->port());
    httplib::MultipartFormDataItems form{{"text", "The statement", "", ""},
                                         {"files", "amount,date\n12.50,2026-11-20\n", "refund.csv", "text/csv"}};
    auto m = cli.Post(("/api/v1/threads/" + c.thread + "/messages").c_str(),
                      {{"Authorization", "Bearer " + tokens["alice"]}}, form);
    REQUIRE(m);
    REQUIRE(m->status == 201);
    c.file = std::string(json::parse(m->body).at("files").at(0).at("id").as_string());
    if (sandbox)  // an L2 person replies
      REQUIRE(call("POST", "/api/v1/sandbox/slack/replies", tokens["admin"],
                   R"({"channel_id":"C0FINANCE","thread_ts":")" + c.thread_ts +
                     R"(","user_name":"Erin","text":"Looking"})")
                .first == 201);

    std::string owner = "alice";
    if (who == agent_without_inbox) {
      REQUIRE(call("POST", "/api/v1/chats/" + c.chat + "/transfer", tokens["alice"], R"({"agent_id":"carol"})")
                .first == 200);
      owner = "carol";
    }
    if (whose == transferred_away)
      REQUIRE(call("POST", "/api/v1/chats/" + c.chat + "/transfer", tokens[owner], R"({"agent_id":"dave"})")
                .first == 200);
    if (whose == resolved)
      REQUIRE(call("POST", "/api/v1/chats/" + c.chat + "/resolve", tokens["bot"]).first == 200);
    settle();
    return c;
  }

  /// Everything a refused call must leave as it was.
  json::object snapshot(const chat_under_test& c) {
    return json::object{
      {"chat", admin_get("/api/v1/chats/" + c.chat)},
      {"transcript", admin_get("/api/v1/chats/" + c.chat + "/messages")},
      {"threads", admin_get("/api/v1/chats/" + c.chat + "/threads")},
      {"thread_messages", admin_get("/api/v1/threads/" + c.thread + "/messages")},
      {"active", admin_get("/api/v1/chats?view=active")},
      {"resolved", admin_get("/api/v1/chats?view=resolved")},
      {"events", events_in_log()},
    };
  }
};

} // namespace

TEST_CASE("authorization matrix: every endpoint x every caller x whose chat, the exact status, and a refusal changes nothing") {
  matrix_fixture f;
  // One chat per (whose chat it is, for whom): shared by every call that
  // cannot change it; a call that may change it gets a chat of its own.
  std::map<std::pair<bool, int>, chat_under_test> shared;
  size_t checked = 0, refused = 0;
  for (const auto& e : endpoints) {
    for (int w = 0; w < caller_kinds; ++w) {
      for (int o = 0; o < ownerships; ++o) {
        auto who = static_cast<caller_kind>(w);
        auto whose = static_cast<ownership>(o);
        const int expected = expected_status(e, who, whose);
        const bool success = expected >= 200 && expected < 300;
        const bool carols = who == agent_without_inbox;
        chat_under_test c;
        if (e.changes_the_chat && success) {
          c = f.make_chat(who, whose);
        } else {
          auto key = std::make_pair(carols, o);
          if (!shared.count(key))
            shared[key] = f.make_chat(who, whose);
          c = shared[key];
        }
        std::string path = e.path, body = e.body;
        for (auto* s : {&path, &body}) {
          replace_all(*s, "{chat}", c.chat);
          replace_all(*s, "{thread}", c.thread);
          replace_all(*s, "{file}", c.file);
          replace_all(*s, "{thread_ts}", c.thread_ts);
          replace_all(*s, "{unique}", std::to_string(++f.unique));
        }
        INFO(e.method << " " << e.path << " by " << caller_names[w] << ", " << ownership_names[o]);
        std::optional<json::object> before;
        if (!success)
          before = f.snapshot(c);
        auto [status, answer] = f.call(e.method, path, f.token_of(who), body);
        INFO("answer: " << answer.substr(0, 300));
        CHECK(status == expected);
        ++checked;
        if (!success) {
          // Refused: an error body, and nothing changed.
          boost::system::error_code ec;
          auto err = json::parse(answer, ec);
          CHECK((!ec && err.is_object() && err.as_object().contains("error")));
          auto after = f.snapshot(c);
          INFO("changed: " << changed_parts(*before, after));
          CHECK(after == *before);
          ++refused;
        } else if (e.changes_the_chat || std::string_view(e.method) != "GET") {
          f.settle();  // what it wrote is not mixed into the next call's "before"
        }
      }
    }
  }
  CHECK(checked == std::size(endpoints) * caller_kinds * ownerships);
  CHECK(refused > checked / 2);
}

TEST_CASE("authorization matrix: lists show a caller only the chats it may see") {
  matrix_fixture f;
  // alice's open chat, carol's open chat, a chat moved from alice to dave,
  // and alice's resolved chat.
  auto alices = f.make_chat(agent, own);
  auto carols = f.make_chat(agent_without_inbox, own);
  auto daves = f.make_chat(agent, transferred_away);
  auto alices_resolved = f.make_chat(agent, resolved);
  auto ids_in = [&](caller_kind who, const std::string& view) {
    auto [status, body] = f.call("GET", "/api/v1/chats?view=" + view, f.token_of(who));
    REQUIRE(status == 200);
    std::set<std::string> ids;
    auto listed = json::parse(body);
    for (const auto& chat : listed.at("chats").as_array())
      ids.insert(std::string(chat.at("id").as_string()));
    return ids;
  };
  using ids = std::set<std::string>;
  CHECK(ids_in(agent, "mine") == ids{alices.chat});
  CHECK(ids_in(agent_without_inbox, "mine") == ids{carols.chat});
  CHECK(ids_in(other_agent, "mine").empty());
  CHECK(ids_in(admin, "active") == ids{alices.chat, carols.chat, daves.chat});
  CHECK(ids_in(agent, "resolved") == ids{alices_resolved.chat});
  CHECK(ids_in(other_agent, "resolved").empty());
  CHECK(ids_in(admin, "resolved") == ids{alices_resolved.chat});
  CHECK(ids_in(bot, "resolved") == ids{alices_resolved.chat});
  // Users: the admin sees everyone; agents and the bot see the agents only,
  // and nobody sees a token or its hash.
  auto users_seen_by = [&](caller_kind who) {
    auto [status, body] = f.call("GET", "/api/v1/users", f.token_of(who));
    REQUIRE(status == 200);
    CHECK(body.find("token") == std::string::npos);
    ids seen;
    auto listed = json::parse(body);
    for (const auto& u : listed.at("users").as_array())
      seen.insert(std::string(u.at("id").as_string()));
    return seen;
  };
  const ids agents{"alice", "bob", "carol", "dave"};
  CHECK(users_seen_by(admin) == ids{"admin", "alice", "bob", "bot", "carol", "dave"});
  for (auto who : {agent, agent_without_inbox, other_agent, bot})
    CHECK(users_seen_by(who) == agents);
}

// In the sandbox (no Slack token) anyone signed in may act as an L2 person
// replying in a thread: that is what the sandbox is for. With a real Slack
// the endpoint is not there (the matrix above: 404).
TEST_CASE("authorization matrix: in the sandbox every signed-in caller may post an L2 reply, nobody else") {
  matrix_fixture f(slack_mode::sandbox);
  for (int o = 0; o < ownerships; ++o) {
    auto c = f.make_chat(agent, static_cast<ownership>(o));
    for (int w = 0; w < caller_kinds; ++w) {
      auto who = static_cast<caller_kind>(w);
      INFO(caller_names[w] << ", " << ownership_names[o]);
      const std::string body = R"({"channel_id":"C0FINANCE","thread_ts":")" + c.thread_ts +
                               R"(","user_name":"Erin","text":"Reply )" + std::to_string(w) + R"("})";
      bool signed_in = who != no_token && who != bad_token;
      std::optional<json::object> before;
      if (!signed_in)
        before = f.snapshot(c);
      CHECK(f.call("POST", "/api/v1/sandbox/slack/replies", f.token_of(who), body).first == (signed_in ? 201 : 401));
      if (!signed_in)
        CHECK(f.snapshot(c) == *before);
      f.settle();
    }
  }
}
