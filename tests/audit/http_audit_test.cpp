// The audit timelines over HTTP: GET /api/v1/audit/chats/{id} and
// /api/v1/audit/threads/{id}, for admins only, on a running server.

#include <catch2/catch.hpp>

#include "audit/scenario.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;

TEST_CASE("audit timelines over HTTP: admins see a chat's and a thread's history, in log order", "[audit]") {
  in_process_server server;
  api_client client(server.port());
  const auto run = server.run_scenario();

  auto chat = client.get("/api/v1/audit/chats/" + run.chat_id, audit_admin_token);
  REQUIRE(chat.status == 200);
  CHECK(chat.text("chat_id") == run.chat_id);
  const auto& events = chat.body.at("events").as_array();
  std::vector<std::string> types;
  int64_t last = 0;
  for (const auto& e : events) {
    const auto& o = e.as_object();
    types.emplace_back(o.at("type").as_string());
    CHECK(o.at("position").as_int64() > last);
    last = o.at("position").as_int64();
    for (const char* field : {"time", "stream", "seq", "actor", "chat_id", "thread_id", "summary", "details"})
      CHECK(o.contains(field));
  }
  CHECK(types == run.chat_event_types);
  CHECK(events[14].at("summary") == "chat transferred to bob (from alice)");
  CHECK(events[14].at("actor") == "alice");
  CHECK(events[7].at("details").at("slack_ts").as_string() == run.reply_ts);
  CHECK(events[19].at("chat_id").as_string() == run.successor_id);

  auto thread = client.get("/api/v1/audit/threads/" + run.thread_id, audit_admin_token);
  REQUIRE(thread.status == 200);
  CHECK(thread.text("thread_id") == run.thread_id);
  const auto& thread_events = thread.body.at("events").as_array();
  REQUIRE(thread_events.size() == 12);
  CHECK(thread_events.front().at("type") == "thread_opened");
  CHECK(thread_events.back().at("type") == "slack_delivered");

  // The successor's timeline starts with its creation, which names the chat it reopens.
  auto successor = client.get("/api/v1/audit/chats/" + run.successor_id, audit_admin_token);
  REQUIRE(successor.status == 200);
  CHECK(successor.body.at("events").as_array().size() == 1);
}

TEST_CASE("audit timelines over HTTP: admins only, unknown ids are 404", "[audit]") {
  in_process_server server;
  api_client client(server.port());
  const auto run = server.run_scenario();
  for (const auto& path : {"/api/v1/audit/chats/" + run.chat_id, "/api/v1/audit/threads/" + run.thread_id}) {
    CHECK(client.get(path, "").status == 401);
    CHECK(client.get(path, "not-a-token").status == 401);
    for (const auto& token : {run.alice, run.bob, run.bot}) {
      auto r = client.get(path, token);
      CHECK(r.status == 403);
      CHECK(r.body.at("error").at("code") == "forbidden");
    }
  }
  auto chat = client.get("/api/v1/audit/chats/ch-nope", audit_admin_token);
  CHECK(chat.status == 404);
  CHECK_THAT(std::string(chat.body.at("error").at("message").as_string()), Catch::Contains("no chat ch-nope"));
  CHECK(client.get("/api/v1/audit/threads/ch-nope.t1", audit_admin_token).status == 404);
  CHECK(client.get("/api/v1/audit/threads/" + run.chat_id + ".t7", audit_admin_token).status == 404);
}
