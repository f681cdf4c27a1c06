// backline audit rebuild: the log replayed into fresh state against what
// the actors would load from the same store. Differences are made on
// purpose by writing behind the global index's back, which the actors'
// loading sees and the audited log does not.

#include <catch2/catch.hpp>

#include "audit/scenario.hpp"
#include "backline/audit.hpp"
#include "backline/directory_view.hpp"
#include "persistence/keys.hpp"
#include "persistence/raw_writer.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::audit;
using namespace backline::testing;
namespace keys = backline::persistence;

namespace {

result<rebuild_report> rebuild_of(const std::string& log) {
  temp_dir scratch("backline-rebuild-secondary");
  store_options ro;
  ro.read_only = true;
  ro.secondary_dir = scratch.path();
  auto store = event_store::open(log, ro);
  INFO(store.error().describe());
  REQUIRE(store);
  return rebuild_and_compare(**store);
}

bool any_contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos)
      return true;
  return false;
}

/// A record for a stream, chained to nothing: what someone writing into
/// RocksDB directly (not through the store) would leave.
std::string stray_record(const std::string& stream, uint64_t seq, const std::string& type, const std::string& payload) {
  event_record e;
  e.position = 999;
  e.stream = stream;
  e.seq = seq;
  e.type = type;
  e.time = "2026-11-25T13:00:00.000Z";
  e.actor = "slack";
  e.payload = payload;
  e.hash = event_hash(e);
  return encode_event(e);
}

} // namespace

TEST_CASE("diff_chat and diff_thread: nothing for equal states, each difference named with both values", "[audit]") {
  chat_state a;
  a.id = "ch-1";
  a.exists = true;
  a.agent_id = "alice";
  a.thread_ids = {"ch-1.t1"};
  a.version = 4;
  CHECK(diff_chat(a, a).empty());
  auto b = a;
  b.resolved = true;
  b.agent_id = "bob";
  auto d = diff_chat(a, b);
  REQUIRE(d.size() == 2);
  CHECK(d[0] == "chat ch-1 status resolved: the log replayed gives false, the actors would load true");
  CHECK(d[1] == "chat ch-1 agent: the log replayed gives \"alice\", the actors would load \"bob\"");

  thread_state t;
  t.id = "ch-1.t1";
  t.exists = true;
  t.unread = 1;
  thread_message m;
  m.id = "m-1";
  m.direction = "to_slack";
  m.delivery = "pending";
  t.messages.push_back(m);
  CHECK(diff_thread(t, t).empty());
  auto u = t;
  u.unread = 0;
  u.messages[0].delivery = "sent";
  u.messages[0].slack_ts = "1.1";
  auto dt = diff_thread(t, u);
  CHECK(any_contains(dt, "thread ch-1.t1 unread: the log replayed gives 1, the actors would load 0"));
  CHECK(any_contains(dt, "thread ch-1.t1 pending deliveries: the log replayed gives true, the actors would load false"));
  CHECK(any_contains(dt, "thread ch-1.t1 message 1 (m-1) delivery: the log replayed gives \"pending\", the actors would load \"sent\""));
  CHECK(any_contains(dt, "message 1 (m-1) Slack ts"));
}

TEST_CASE("rebuild of a real server run: the replayed log and what the actors load agree", "[audit]") {
  in_process_server server;
  api_client client(server.port());
  const auto run = server.run_scenario();
  server.stop();
  auto report = rebuild_of(server.log());
  INFO(report.error().describe());
  REQUIRE(report);
  INFO((report->differences.empty() ? std::string() : report->differences.front()));
  CHECK(report->differences.empty());
  CHECK(report->chats == 2);
  CHECK(report->threads == 1);
  CHECK(report->users == 4);  // admin, bot, alice, bob
  CHECK(report->events > 20);

  SECTION("a Slack reply written into the thread's stream behind the index: unread counts differ") {
    const auto stream = "thread-" + run.thread_id;
    REQUIRE(keys::valid_stream_name(stream));
    uint64_t head = 0;
    {
      store_options ro;
      ro.read_only = true;
      auto store = event_store::open(server.log(), ro);
      REQUIRE(store);
      auto version = (*store)->stream_version(stream);
      REQUIRE(version);
      head = *version;
    }
    REQUIRE(head > 0);
    const uint64_t next = head + 1;
    REQUIRE(persistence::raw_put_for_testing(
      server.log(), keys::stream_key(stream, next),
      stray_record(stream, next, "slack_reply_received",
                   R"({"id":"m-stray","slack_ts":"1900000000.000100","author_id":"U9","author_name":"X","text":"hi"})")));
    auto r = rebuild_of(server.log());
    REQUIRE(r);
    CHECK(any_contains(r->differences, "thread " + run.thread_id + " unread: the log replayed gives 1, the actors would load 2"));
    CHECK(any_contains(r->differences, "thread " + run.thread_id + " messages: the log replayed gives"));
  }
  SECTION("a user written behind the index: the server would accept a token the log never granted") {
    REQUIRE(persistence::raw_put_for_testing(
      server.log(), keys::stream_key("user-mallory", 1),
      stray_record("user-mallory", 1, "user_created",
                   R"({"id":"mallory","name":"M","role":"admin","inbox_access":false,"token_hash":"00"})")));
    auto r = rebuild_of(server.log());
    REQUIRE(r);
    CHECK(any_contains(r->differences, "user mallory: the actors would load it, the log replayed has no such user"));
  }
  SECTION("the directory view the server left: it agrees with the log; altered, it is named") {
    const auto key = keys::view_entry_key(inbox::directory_view_name, "c|chat-" + run.chat_id);
    auto stored = persistence::raw_get_for_testing(server.log(), key);
    REQUIRE(stored);
    REQUIRE(stored->has_value());  // the server's shutdown advanced the view
    auto entry = inbox::decode_chat_view_entry(**stored);
    REQUIRE(entry);
    entry->agent_id = "mallory";
    REQUIRE(persistence::raw_put_for_testing(server.log(), key, inbox::encode_view_entry(*entry)));
    auto r = rebuild_of(server.log());
    REQUIRE(r);
    CHECK(any_contains(r->differences, "directory view: chat " + run.chat_id + " agent: the log replayed gives"));
    REQUIRE(persistence::raw_put_for_testing(server.log(), key, "garbage"));
    r = rebuild_of(server.log());
    REQUIRE(r);
    CHECK(any_contains(r->differences, "directory view: a chat entry is malformed"));
  }
  SECTION("a damaged record: rebuild stops and names it") {
    REQUIRE(persistence::raw_put_for_testing(server.log(), keys::stream_key("chat-" + run.chat_id, 2), "{\"posit"));
    auto r = rebuild_of(server.log());
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::corrupt);
    CHECK_THAT(r.error().message(), Catch::Contains("position"));
  }
}
