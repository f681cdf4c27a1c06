// The HTTP API v1 end to end: a real server on an ephemeral loopback port.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "backline/server.hpp"
#include "support/api_answer.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using backline::testing::eventually;
using backline::testing::temp_dir;

using backline::testing::answer;
using backline::testing::answer_of;

namespace {

class api_fixture {
public:
  temp_dir dir;
  std::unique_ptr<server> srv;
  std::string admin = "admin-token-for-tests";
  std::string startup_log;

  api_fixture() { start(); }

  void start() {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = admin;
    cfg.max_file_bytes = 64 * 1024;
    std::ostringstream log;
    auto s = server::start(cfg, log);
    startup_log = log.str();
    REQUIRE(s);
    srv = std::move(s.value());
  }
  void restart() {
    srv->stop();
    srv.reset();
    start();
  }

  answer call(const std::string& method, const std::string& path, const std::string& token,
              const std::string& body = "", const std::string& idem = "") {
    httplib::Client cli("127.0.0.1", srv->port());
    // Keep-alive, as real clients: the server then answers commands from the
    // actors' side (answer_later); other suites ask with Connection: close.
    cli.set_keep_alive(true);
    httplib::Headers h;
    if (!token.empty())
      h.emplace("Authorization", "Bearer " + token);
    if (!idem.empty())
      h.emplace("Idempotency-Key", idem);
    httplib::Result r = method == "GET"      ? cli.Get(path.c_str(), h)
                        : method == "PUT"    ? cli.Put(path.c_str(), h, body, "application/json")
                        : method == "DELETE" ? cli.Delete(path.c_str(), h)
                                             : cli.Post(path.c_str(), h, body, "application/json");
    return answer_of(r);
  }
  answer post(const std::string& path, const std::string& token, const json::value& body, const std::string& idem = "") {
    return call("POST", path, token, json::serialize(body), idem);
  }
  answer get(const std::string& path, const std::string& token) { return call("GET", path, token); }

  std::string new_user(const std::string& id, const std::string& role, bool inbox = false) {
    auto a = post("/api/v1/users", admin, json::object{{"id", id}, {"name", "User " + id}, {"role", role},
                                                       {"inbox_access", inbox}});
    REQUIRE(a.status == 201);
    return a.get("token");
  }
};

struct inbox_fixture : api_fixture {
  std::string bot, agent, other, no_inbox, chat;
  inbox_fixture() {
    bot = new_user("bot", "bot");
    agent = new_user("alice", "agent", true);
    other = new_user("bob", "agent", true);
    no_inbox = new_user("carol", "agent", false);
    auto c = post("/api/v1/chats", bot, json::object{{"customer", {{"id", "cust-1"}, {"name", "Dana"}}}, {"text", "hi"}});
    REQUIRE(c.status == 201);
    chat = c.get("id");
    REQUIRE(post("/api/v1/chats/" + chat + "/assign", bot, json::object{{"agent_id", "alice"}}).status == 200);
  }
  std::string open_thread() {
    auto t = post("/api/v1/chats/" + chat + "/threads", agent,
                  json::object{{"channel_id", "C0FINANCE"}, {"text", "Was the refund issued?"}});
    REQUIRE(t.status == 201);
    return t.get("id");
  }
};

size_t count_of(const answer& a, std::string_view list) { return a.body.as_object().at(list).as_array().size(); }

} // namespace

TEST_CASE_METHOD(api_fixture, "tokens: none or unknown is 401, /me names the caller") {
  CHECK(get("/api/v1/me", "").status == 401);
  CHECK(get("/api/v1/me", "not-a-token").status == 401);
  auto me = get("/api/v1/me", admin);
  CHECK(me.status == 200);
  CHECK(me.get("role") == "admin");
  auto bot = new_user("bot", "bot");
  CHECK(get("/api/v1/me", bot).get("id") == "bot");
  CHECK(post("/api/v1/users", bot, json::object{{"id", "x"}, {"name", "X"}, {"role", "agent"}}).status == 403);
}

TEST_CASE_METHOD(inbox_fixture, "rule 1: only the assigned agent with inbox access works threads") {
  auto body = json::object{{"channel_id", "C0FINANCE"}, {"text", "query"}};
  CHECK(post("/api/v1/chats/" + chat + "/threads", admin, body).status == 403);
  CHECK(post("/api/v1/chats/" + chat + "/threads", bot, body).status == 403);
  CHECK(post("/api/v1/chats/" + chat + "/threads", other, body).status == 403);
  CHECK(post("/api/v1/chats/" + chat + "/threads", no_inbox, body).status == 403);
  auto thread = open_thread();
  CHECK(get("/api/v1/threads/" + thread, admin).status == 200);       // admins read
  CHECK(get("/api/v1/threads/" + thread, bot).status == 403);         // the bot never sees threads
  CHECK(get("/api/v1/threads/" + thread + "/messages", other).status == 403);
  CHECK(post("/api/v1/threads/" + thread + "/messages", admin, json::object{{"text", "x"}}).status == 403);
  CHECK(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "x"}}).status == 201);
}

TEST_CASE_METHOD(inbox_fixture, "rules 2 and 3: many threads per chat, the opening message and the internal note") {
  auto first = open_thread();
  auto second = open_thread();
  CHECK(first != second);
  auto list = get("/api/v1/chats/" + chat + "/threads", agent);
  REQUIRE(list.status == 200);
  CHECK(count_of(list, "threads") == 2);
  auto messages = get("/api/v1/threads/" + first + "/messages", agent);
  auto opening = std::string(messages.body.at("messages").at(0).at("text").as_string());
  CHECK_THAT(opening, Catch::Contains("Dana") && Catch::Contains("alice") && Catch::Contains("User alice") &&
                        Catch::Contains("Was the refund issued?"));
  auto as_agent = get("/api/v1/chats/" + chat + "/messages", agent);
  auto as_bot = get("/api/v1/chats/" + chat + "/messages", bot);
  size_t notes = 0;
  for (auto& m : as_agent.body.at("messages").as_array())
    notes += m.at("kind") == "internal_note" ? 1 : 0;
  CHECK(notes == 2);
  for (auto& m : as_bot.body.at("messages").as_array())
    CHECK(m.at("kind") != "internal_note");
}

TEST_CASE_METHOD(inbox_fixture, "rule 6: done makes a thread read-only") {
  auto thread = open_thread();
  auto done = post("/api/v1/threads/" + thread + "/done", agent, json::object{});
  REQUIRE(done.status == 200);
  CHECK(done.get("status") == "done");
  CHECK(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "late"}}).status == 409);
  CHECK(post("/api/v1/threads/" + thread + "/done", agent, json::object{}).status == 409);
  CHECK(get("/api/v1/threads/" + thread + "/messages", agent).status == 200);
}

TEST_CASE_METHOD(inbox_fixture, "rules 7 and 8: transfer moves threads, resolve makes them read-only") {
  auto thread = open_thread();
  REQUIRE(post("/api/v1/chats/" + chat + "/transfer", agent, json::object{{"agent_id", "bob"}}).status == 200);
  CHECK(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "x"}}).status == 403);
  CHECK(post("/api/v1/threads/" + thread + "/messages", other, json::object{{"text", "x"}}).status == 201);
  REQUIRE(post("/api/v1/chats/" + chat + "/resolve", bot, json::object{}).status == 200);
  CHECK(post("/api/v1/threads/" + thread + "/messages", other, json::object{{"text", "x"}}).status == 409);
  CHECK(get("/api/v1/chats?view=resolved", other).body.at("chats").as_array().size() == 1);
  CHECK(get("/api/v1/chats?view=mine", other).body.at("chats").as_array().empty());
}

TEST_CASE_METHOD(inbox_fixture, "rule 9: mentions are recorded with the message") {
  auto thread = open_thread();
  auto m = post("/api/v1/threads/" + thread + "/messages", agent,
                json::object{{"text", "@here @finance-team please check, cc dana@example.com"}});
  REQUIRE(m.status == 201);
  auto mentions = m.body.at("mentions").as_array();
  REQUIRE(mentions.size() == 2);
  CHECK(mentions[0].at("kind") == "here");
  CHECK(mentions[1].at("handle") == "finance-team");
}

TEST_CASE_METHOD(inbox_fixture, "bad input is a clear error and changes nothing") {
  auto bad = call("POST", "/api/v1/chats/" + chat + "/threads", agent, "{not json");
  CHECK(bad.status == 400);
  CHECK(bad.body.at("error").at("code") == "invalid_json");
  CHECK(post("/api/v1/chats/" + chat + "/threads", agent, json::object{{"channel_id", 7}, {"text", "q"}}).status == 400);
  CHECK(post("/api/v1/chats/" + chat + "/threads", agent, json::object{{"text", "q"}}).status == 400);
  CHECK(call("POST", "/api/v1/chats/" + chat + "/threads", agent, "{\"channel_id\":\"C\",\"text\":\"\xff\"}").status == 400);
  CHECK(get("/api/v1/chats/no-such-chat", agent).status == 404);
  CHECK(get("/api/v1/threads/no-such.t1", agent).status == 404);
  CHECK(count_of(get("/api/v1/chats/" + chat + "/threads", agent), "threads") == 0);
}

// Found by fuzz/api_request: a JSON body passed its own "files" through to
// the message (any file id, name and size), and a non-array one was a 500.
TEST_CASE_METHOD(inbox_fixture, "a JSON body cannot name files: only multipart parts are files") {
  auto thread = open_thread();
  json::array forged{json::object{{"id", "f-someone-elses"}, {"name", "payroll.xlsx"}, {"mimetype", "text/plain"},
                                  {"size", 1}}};
  auto with_text = post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "x"}, {"files", forged}});
  CHECK(with_text.status == 400);
  CHECK(with_text.body.at("error").at("code") == "invalid_field");
  CHECK(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"files", forged}}).status == 400);
  CHECK(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "x"}, {"files", 5}}).status == 400);
  CHECK(post("/api/v1/chats/" + chat + "/threads", agent,
             json::object{{"channel_id", "C0FINANCE"}, {"text", "q"}, {"files", forged}})
          .status == 400);
  CHECK(count_of(get("/api/v1/threads/" + thread + "/messages", agent), "messages") == 1);  // the opening only
  CHECK(count_of(get("/api/v1/chats/" + chat + "/threads", agent), "threads") == 1);
}

// Found by fuzz/api_request: a number past a double's range passed the
// front's checks, then the thread actor could not read the body again and
// recorded a message with no text.
TEST_CASE_METHOD(inbox_fixture, "a body with a number too large for a double is refused and changes nothing") {
  auto thread = open_thread();
  auto huge = call("POST", "/api/v1/threads/" + thread + "/messages", agent, R"({"text":"hello","n":1e999})");
  CHECK(huge.status == 400);
  CHECK(huge.body.at("error").at("code") == "invalid_json");
  CHECK(count_of(get("/api/v1/threads/" + thread + "/messages", agent), "messages") == 1);
}

TEST_CASE_METHOD(inbox_fixture, "Idempotency-Key: a repeat returns the first answer, also after a restart") {
  auto thread = open_thread();
  auto first = post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "once"}}, "key-1");
  auto again = post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "once"}}, "key-1");
  REQUIRE(first.status == 201);
  CHECK(again.status == 201);
  CHECK(again.get("id") == first.get("id"));
  restart();
  auto after = post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "once"}}, "key-1");
  CHECK(after.get("id") == first.get("id"));
  CHECK(count_of(get("/api/v1/threads/" + thread + "/messages", agent), "messages") == 2);  // opening + once
}

TEST_CASE_METHOD(inbox_fixture, "Idempotency-Key: a repeat gets the first answer though the state moved on or the body is refused") {
  auto thread = open_thread();
  auto done = post("/api/v1/threads/" + thread + "/done", agent, json::object{}, "done-1");
  REQUIRE(done.status == 200);
  // Without the key, a second "done" is a conflict; with it, the first answer.
  CHECK(post("/api/v1/threads/" + thread + "/done", agent, json::object{}).status == 409);
  auto again = post("/api/v1/threads/" + thread + "/done", agent, json::object{}, "done-1");
  CHECK(again.status == 200);
  CHECK(again.get("status") == "done");
  // A repeat whose body the checks would refuse still gets the first answer.
  auto open = open_thread();
  auto first = post("/api/v1/threads/" + open + "/messages", agent, json::object{{"text", "once"}}, "msg-1");
  REQUIRE(first.status == 201);
  auto garbled = call("POST", "/api/v1/threads/" + open + "/messages", agent, "{not json", "msg-1");
  CHECK(garbled.status == 201);
  CHECK(garbled.get("id") == first.get("id"));
  CHECK(call("POST", "/api/v1/threads/" + open + "/messages", agent, "{not json", "msg-2").status == 400);
  // Creating a chat: the same key, the same chat.
  json::object customer{{"customer", {{"id", "cust-9"}, {"name", "Kim"}}}, {"text", "hello"}};
  auto c1 = post("/api/v1/chats", bot, customer, "chat-9");
  auto c2 = post("/api/v1/chats", bot, customer, "chat-9");
  REQUIRE(c1.status == 201);
  CHECK(c2.status == 201);
  CHECK(c2.get("id") == c1.get("id"));
}

std::string slack_ts_of(inbox_fixture& f, const std::string& thread);

TEST_CASE_METHOD(inbox_fixture, "restart: statuses, threads, unread counts and users are as before") {
  auto open = open_thread();
  auto closed = open_thread();
  REQUIRE(post("/api/v1/threads/" + closed + "/done", agent, json::object{}).status == 200);
  auto ts = slack_ts_of(*this, open);
  REQUIRE(post("/api/v1/sandbox/slack/replies", agent,
               json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts}, {"user_name", "Erin"}, {"text", "ok"}})
            .status == 201);
  restart();
  CHECK(get("/api/v1/threads/" + open, agent).body.at("unread") == 1);
  // Slack replies still find their thread after a restart.
  CHECK(post("/api/v1/sandbox/slack/replies", agent,
             json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts}, {"user_name", "Erin"}, {"text", "again"}})
          .status == 201);
  CHECK(get("/api/v1/threads/" + open, agent).body.at("unread") == 2);
  CHECK(get("/api/v1/me", agent).get("id") == "alice");
  CHECK(get("/api/v1/chats/" + chat, agent).get("agent_id") == "alice");
  CHECK(get("/api/v1/threads/" + open, agent).get("status") == "open");
  CHECK(get("/api/v1/threads/" + closed, agent).get("status") == "done");
  CHECK(get("/api/v1/chats?view=mine", agent).body.at("chats").as_array().size() == 1);
  CHECK(post("/api/v1/threads/" + closed + "/messages", agent, json::object{{"text", "x"}}).status == 409);
}

// The thread's Slack ts appears once the Slack port has taken the parent.
std::string slack_ts_of(inbox_fixture& f, const std::string& thread) {
  std::string ts;
  if (!eventually([&] { return !(ts = f.get("/api/v1/threads/" + thread, f.agent).get("slack_ts")).empty(); }))
    FAIL("the thread never got a Slack ts");
  return ts;
}

TEST_CASE_METHOD(inbox_fixture, "rule 5: a Slack reply raises unread and notifies the focused owner, reading clears it") {
  auto thread = open_thread();
  auto ts = slack_ts_of(*this, thread);
  auto reply = [&] {
    return post("/api/v1/sandbox/slack/replies", agent,
                json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts}, {"user_name", "Erin (finance)"},
                             {"text", "Refund went out today"}});
  };
  // Not focused: the reply is recorded, nobody is notified.
  REQUIRE(reply().status == 201);
  auto none = get("/api/v1/notifications?wait=0.3", agent);
  REQUIRE(none.status == 200);
  CHECK(none.body.at("notifications").as_array().empty());
  CHECK(get("/api/v1/threads/" + thread, agent).body.at("unread") == 1);

  // Focused: the next reply wakes a waiting long poll.
  REQUIRE(call("PUT", "/api/v1/chats/" + chat + "/focus", agent).status == 204);
  // The reply comes from another thread, which must not assert: Catch2's
  // assertions are not thread-safe (ThreadSanitizer found this one).
  int late_status = 0;
  std::thread later([&, port = srv->port()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    httplib::Client cli("127.0.0.1", port);
    auto body = json::serialize(json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts},
                                             {"user_name", "Erin (finance)"}, {"text", "Refund went out today"}});
    if (auto r = cli.Post("/api/v1/sandbox/slack/replies", {{"Authorization", "Bearer " + agent}}, body,
                          "application/json"))
      late_status = r->status;
  });
  auto woke = get("/api/v1/notifications?wait=10", agent);
  later.join();
  CHECK(late_status == 201);
  REQUIRE(woke.status == 200);
  auto notes = woke.body.at("notifications").as_array();
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].at("type") == "thread_reply");
  CHECK(notes[0].at("thread_id") == json::value(thread));
  CHECK(notes[0].at("unread") == 2);
  auto cursor = woke.get("cursor");
  CHECK(get("/api/v1/notifications?wait=0&after=" + cursor, agent).body.at("notifications").as_array().empty());

  // The admin reads without clearing; the owner's read clears unread.
  auto as_admin = get("/api/v1/threads/" + thread + "/messages", admin);
  CHECK(as_admin.body.at("messages").as_array().size() == 3);
  CHECK(get("/api/v1/threads/" + thread, agent).body.at("unread") == 2);
  auto messages = get("/api/v1/threads/" + thread + "/messages", agent);
  CHECK(messages.body.at("messages").at(1).at("direction") == "from_slack");
  CHECK(messages.body.at("messages").at(1).at("author").at("name") == "Erin (finance)");
  CHECK(messages.body.at("messages").at(1).at("text") == "Refund went out today");
  CHECK(get("/api/v1/threads/" + thread, agent).body.at("unread") == 0);

  // Admins get no notifications; leaving the chat stops them.
  CHECK(get("/api/v1/notifications", admin).status == 403);
  CHECK(call("PUT", "/api/v1/chats/" + chat + "/focus", admin).status == 403);
  REQUIRE(call("DELETE", "/api/v1/chats/" + chat + "/focus", agent).status == 204);
  REQUIRE(reply().status == 201);
  CHECK(get("/api/v1/notifications?wait=0.3&after=" + cursor, agent).body.at("notifications").as_array().empty());
}

TEST_CASE_METHOD(inbox_fixture, "a Slack reply to a done thread is kept as a late reply, the thread stays done") {
  auto thread = open_thread();
  auto ts = slack_ts_of(*this, thread);
  REQUIRE(post("/api/v1/threads/" + thread + "/done", agent, json::object{}).status == 200);
  // The L2 person replies once Slack shows the thread closed: the closing
  // message is in Slack before the reply, so the reply stands after it (the
  // inbox keeps Slack's order; one Slack took before the closing message
  // stands before it, see the domain's tests).
  auto closing_sent = [&] {
    auto m = get("/api/v1/threads/" + thread + "/messages", agent).body.at("messages").as_array();
    return m.back().at("delivery") == "sent";
  };
  REQUIRE(eventually(closing_sent));
  auto r = post("/api/v1/sandbox/slack/replies", agent,
                json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts}, {"user_name", "Erin"},
                             {"text", "*late* :white_check_mark: &lt;3"}});
  REQUIRE(r.status == 201);
  CHECK(r.get("status") == "done");
  auto messages = get("/api/v1/threads/" + thread + "/messages", agent).body.at("messages").as_array();
  REQUIRE(messages.size() >= 2);
  CHECK_THAT(std::string(messages[messages.size() - 2].at("text").as_string()), Catch::Contains("Marked as done"));
  CHECK(messages.back().at("late") == true);
  CHECK(messages.back().at("text") == "late \u2705 <3");
  CHECK(messages.back().at("markdown") == "**late** \u2705 \\<3");
  CHECK(post("/api/v1/sandbox/slack/replies", agent,
             json::object{{"channel_id", "C0HR"}, {"thread_ts", ts}, {"user_name", "E"}, {"text", "x"}})
          .status == 404);
}

TEST_CASE_METHOD(inbox_fixture, "rule 8: reopen creates a new chat linked to the old, the old threads stay behind") {
  open_thread();
  CHECK(post("/api/v1/chats/" + chat + "/reopen", bot, json::object{}).status == 409);  // still open
  REQUIRE(post("/api/v1/chats/" + chat + "/resolve", agent, json::object{}).status == 200);
  CHECK(post("/api/v1/chats/" + chat + "/reopen", agent, json::object{}).status == 403);
  auto next = post("/api/v1/chats/" + chat + "/reopen", bot, json::object{}, "reopen-1");
  REQUIRE(next.status == 201);
  CHECK(next.get("previous_chat_id") == chat);
  CHECK(next.get("status") == "open");
  CHECK(next.get("id") != chat);
  auto again = post("/api/v1/chats/" + chat + "/reopen", bot, json::object{}, "reopen-1");
  CHECK(again.get("id") == next.get("id"));
  REQUIRE(post("/api/v1/chats/" + next.get("id") + "/assign", bot, json::object{{"agent_id", "alice"}}).status == 200);
  CHECK(count_of(get("/api/v1/chats/" + next.get("id") + "/threads", agent), "threads") == 0);
  CHECK(get("/api/v1/chats/" + chat, agent).get("status") == "resolved");
}

namespace {

answer post_multipart(api_fixture& f, const std::string& path, const std::string& token,
                      const httplib::MultipartFormDataItems& items) {
  httplib::Client cli("127.0.0.1", f.srv->port());
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  return answer_of(cli.Post(path.c_str(), h, items));
}

const std::string png_bytes("\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake image body", 29);

} // namespace

TEST_CASE_METHOD(inbox_fixture, "rule 4: text and files sent together are one message, files download to readers only") {
  auto thread = open_thread();
  auto m = post_multipart(*this, "/api/v1/threads/" + thread + "/messages", agent,
                          {{"text", "Receipt attached", "", ""}, {"files", png_bytes, "../receipt.png", "image/png"},
                           {"files", "a,b\n1,2\n", "totals.csv", "text/csv"}});
  REQUIRE(m.status == 201);
  CHECK(m.get("text") == "Receipt attached");
  auto files = m.body.at("files").as_array();
  REQUIRE(files.size() == 2);
  CHECK(files[0].at("name") == "receipt.png");  // no path from the client survives
  CHECK(files[0].at("mimetype") == "image/png");
  CHECK(count_of(get("/api/v1/threads/" + thread + "/messages", agent), "messages") == 2);  // opening + this one

  auto id = std::string(files[0].at("id").as_string());
  httplib::Client cli("127.0.0.1", srv->port());
  auto download = cli.Get(("/api/v1/files/" + id).c_str(), {{"Authorization", "Bearer " + agent}});
  REQUIRE(download);
  CHECK(download->status == 200);
  CHECK(download->body == png_bytes);
  CHECK(download->get_header_value("Content-Type") == "image/png");
  CHECK_THAT(download->get_header_value("Content-Disposition"), Catch::StartsWith("inline"));
  auto csv = cli.Get(("/api/v1/files/" + std::string(files[1].at("id").as_string())).c_str(),
                     {{"Authorization", "Bearer " + admin}});
  REQUIRE(csv);
  CHECK(csv->status == 200);
  CHECK_THAT(csv->get_header_value("Content-Disposition"), Catch::StartsWith("attachment"));
  for (const auto& token : {bot, other}) {
    auto denied = cli.Get(("/api/v1/files/" + id).c_str(), {{"Authorization", "Bearer " + token}});
    REQUIRE(denied);
    CHECK(denied->status == 403);
  }
  auto missing = cli.Get("/api/v1/files/f-0000", {{"Authorization", "Bearer " + agent}});
  REQUIRE(missing);
  CHECK(missing->status == 404);

  // Files alone are a message; a thread can open with a file.
  CHECK(post_multipart(*this, "/api/v1/threads/" + thread + "/messages", agent,
                       {{"files", png_bytes, "again.png", "image/png"}})
          .status == 201);
  auto opened = post_multipart(*this, "/api/v1/chats/" + chat + "/threads", agent,
                               {{"channel_id", "C0HR", "", ""}, {"text", "See the contract", "", ""},
                                {"files", "%PDF-1.4", "contract.pdf", "application/pdf"}});
  REQUIRE(opened.status == 201);
  auto first = get("/api/v1/threads/" + opened.get("id") + "/messages", agent).body.at("messages").at(0);
  CHECK(first.at("files").as_array().size() == 1);
  // An oversized file is refused whole: no message.
  auto big = post_multipart(*this, "/api/v1/threads/" + thread + "/messages", agent,
                            {{"text", "big", "", ""}, {"files", std::string(100 * 1024, 'x'), "big.bin", ""}});
  CHECK(big.status == 413);
  CHECK(big.body.at("error").at("code") == "file_too_large");
  CHECK(count_of(get("/api/v1/threads/" + thread + "/messages", agent), "messages") == 3);
  // Neither text nor files: nothing to send.
  CHECK(post_multipart(*this, "/api/v1/threads/" + thread + "/messages", agent, {{"text", "", "", ""}}).status == 400);
}

// Without a Slack token the server runs a simulated workspace and talks to
// it through the same Web API client as to slack.com: posts really go out
// and come back as sent, and sandbox replies come back in as Slack events.
TEST_CASE_METHOD(inbox_fixture, "sandbox mode: the simulated workspace is reached through the Web API both ways") {
  CHECK_THAT(startup_log, Catch::Contains("SANDBOX mode"));
  auto channels = get("/api/v1/slack/channels", agent);
  REQUIRE(channels.status == 200);
  bool finance = false;
  for (const auto& c : channels.body.at("channels").as_array())
    finance = finance || (c.at("id") == "C0FINANCE" && c.at("name") == "finance" && c.at("available") == true);
  CHECK(finance);

  // Events the server took: the workspace pushes the app's own posts too.
  auto events_taken = [&] {
    httplib::Client cli("127.0.0.1", srv->port());
    auto m = cli.Get("/metrics");
    std::string key = "route=\"/slack/events\",method=\"POST\",status=\"200\"} ";
    auto at = m ? m->body.find(key) : std::string::npos;
    return at == std::string::npos ? 0L : std::stol(m->body.substr(at + key.size()));
  };
  auto before = events_taken();

  auto thread = open_thread();
  auto ts = slack_ts_of(*this, thread);
  REQUIRE(post("/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", "Any news? @here"}}).status == 201);
  CHECK(eventually([&] {
    auto messages = get("/api/v1/threads/" + thread + "/messages", agent).body.at("messages").as_array();
    return messages.back().at("delivery") == "sent";
  }));

  auto r = post("/api/v1/sandbox/slack/replies", agent,
                json::object{{"channel_id", "C0FINANCE"}, {"thread_ts", ts}, {"user_name", "Erin"}, {"text", "Paid <!here>"}});
  REQUIRE(r.status == 201);
  // The workspace pushes the reply to /slack/events too, after the app's two
  // posts (the parent and "Any news?"); the reply is kept once.
  CHECK(eventually([&] { return events_taken() >= before + 3; }));
  CHECK(events_taken() == before + 3);
  auto messages = get("/api/v1/threads/" + thread + "/messages", agent).body.at("messages").as_array();
  size_t replies = 0;
  for (const auto& m : messages)
    if (m.at("direction") == "from_slack") {
      ++replies;
      CHECK(m.at("text") == "Paid @here");
      CHECK(m.at("author").at("name") == "erin");  // the name Slack shows for Erin, by either path
    }
  CHECK(replies == 1);
  // An unknown channel is Slack's answer, not a guess.
  CHECK(post("/api/v1/sandbox/slack/replies", agent,
             json::object{{"channel_id", "C0NOPE"}, {"thread_ts", ts}, {"user_name", "Erin"}, {"text", "x"}})
          .status == 404);
}

TEST_CASE_METHOD(inbox_fixture, "GET /api/v1/users: an admin sees everyone, agents and the bot see the agents, nobody a token") {
  auto all = get("/api/v1/users", admin);
  REQUIRE(all.status == 200);
  std::vector<std::string> ids;
  for (auto& u : all.body.at("users").as_array()) {
    ids.push_back(std::string(u.at("id").as_string()));
    CHECK_FALSE(u.as_object().contains("token"));
    CHECK_FALSE(u.as_object().contains("token_hash"));
  }
  CHECK(ids == std::vector<std::string>{"admin", "alice", "bob", "bot", "carol"});
  auto alice = all.body.at("users").at(1);
  CHECK(alice.at("name") == "User alice");
  CHECK(alice.at("role") == "agent");
  CHECK(alice.at("inbox_access") == true);
  for (const auto& token : {agent, bot}) {
    auto agents = get("/api/v1/users", token);
    REQUIRE(agents.status == 200);
    std::vector<std::string> shown;
    for (auto& u : agents.body.at("users").as_array())
      shown.push_back(std::string(u.at("id").as_string()));
    CHECK(shown == std::vector<std::string>{"alice", "bob", "carol"});
  }
  CHECK(get("/api/v1/users", "").status == 401);
}

TEST_CASE_METHOD(inbox_fixture, "GET /api/v1/slack/channels without a Slack token says it is the sandbox") {
  auto c = get("/api/v1/slack/channels", agent);
  REQUIRE(c.status == 200);
  CHECK(c.body.at("sandbox") == true);
}

TEST_CASE_METHOD(inbox_fixture, "GET /api/v1/slack/mentions: @here and @channel, then the workspace's groups and people, never for the bot") {
  auto m = get("/api/v1/slack/mentions", agent);
  REQUIRE(m.status == 200);
  std::vector<std::string> handles;
  for (auto& one : m.body.at("mentions").as_array())
    handles.push_back(std::string(one.at("handle").as_string()));
  // The sandbox workspace: three user groups and three people.
  CHECK(handles == std::vector<std::string>{"here", "channel", "finance-team", "hr-team", "ops-team", "erin", "hugo", "opal"});
  CHECK(m.body.at("mentions").at(0).at("kind") == "special");
  CHECK(m.body.at("mentions").at(2).at("kind") == "usergroup");
  CHECK(m.body.at("mentions").at(5).at("kind") == "user");
  CHECK(get("/api/v1/slack/mentions", admin).status == 200);
  CHECK(get("/api/v1/slack/mentions", bot).status == 403);
}

TEST_CASE_METHOD(inbox_fixture, "an agent's Slack formatting is rendered in markdown the way a reply's is") {
  auto thread = open_thread();
  auto m = post("/api/v1/threads/" + thread + "/messages", agent,
                json::object{{"text", "*paid* _today_ ~not~ `ref` :tada: a < b"}});
  REQUIRE(m.status == 201);
  CHECK(m.get("text") == "*paid* _today_ ~not~ `ref` :tada: a < b");  // what goes to Slack is unchanged
  CHECK(m.get("markdown") == "**paid** *today* ~~not~~ `ref` \xF0\x9F\x8E\x89 a \\< b");
  auto listed = get("/api/v1/threads/" + thread + "/messages", agent).body.at("messages").as_array();
  CHECK(listed.back().at("markdown") == m.body.at("markdown"));
}
