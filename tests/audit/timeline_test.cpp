// backline audit replay: events as an auditor reads them, pure; then the
// timelines of a chat, a thread, an agent and a time range over the log a
// real server run wrote, checked against what the run did.

#include <catch2/catch.hpp>

#include "audit/scenario.hpp"
#include "backline/audit.hpp"
#include "persistence/keys.hpp"
#include "persistence/raw_writer.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::audit;
using namespace backline::testing;

namespace {

event_record event_of(std::string stream, std::string type, std::string payload, std::string actor = "alice") {
  event_record e;
  e.position = 42;
  e.stream = std::move(stream);
  e.seq = 3;
  e.type = std::move(type);
  e.time = "2026-11-25T13:00:00.123Z";
  e.actor = std::move(actor);
  e.payload = std::move(payload);
  return e;
}

std::string summary_of(std::string stream, std::string type, std::string payload, std::string actor = "alice") {
  return describe_event(event_of(std::move(stream), std::move(type), std::move(payload), std::move(actor))).summary;
}

std::unique_ptr<event_store> secondary_of(const std::string& log, const temp_dir& scratch) {
  store_options ro;
  ro.read_only = true;
  ro.secondary_dir = scratch.path();
  auto s = event_store::open(log, ro);
  INFO(s.error().describe());
  REQUIRE(s);
  return std::move(s).value();
}

std::vector<std::string> types_of(const std::vector<timeline_entry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries)
    out.push_back(e.type);
  return out;
}

} // namespace

TEST_CASE("describe_event: who did what, to which chat or thread, for every event the domain writes", "[audit]") {
  auto created = describe_event(event_of("chat-ch-1", "chat_created",
                                         R"({"id":"ch-1","customer_id":"c-9","customer_name":"Dana","previous_chat_id":"ch-0"})",
                                         "bot"));
  CHECK(created.chat_id == "ch-1");
  CHECK(created.thread_id.empty());
  CHECK(created.actor == "bot");
  CHECK(created.summary == "chat ch-1 created for customer Dana (c-9); it reopens chat ch-0");
  CHECK(summary_of("chat-ch-1", "chat_message_added", R"({"kind":"customer","author":"c-9","text":"hi"})", "bot")
        == "customer c-9 wrote in the chat: \"hi\"");
  CHECK(summary_of("chat-ch-1", "chat_message_added", R"({"kind":"agent","author":"alice","text":"ok"})")
        == "agent alice wrote in the chat: \"ok\"");
  CHECK(summary_of("chat-ch-1", "chat_message_added", R"({"kind":"bot","author":"bot","text":"hello"})", "bot")
        == "the bot wrote in the chat: \"hello\"");
  CHECK(summary_of("chat-ch-1", "chat_assigned", R"({"agent_id":"alice","from":""})", "bot") == "chat assigned to alice");
  CHECK(summary_of("chat-ch-1", "chat_transferred", R"({"agent_id":"bob","from":"alice"})")
        == "chat transferred to bob (from alice)");
  CHECK(summary_of("chat-ch-1", "chat_resolved", "{}") == "chat resolved");
  CHECK(summary_of("chat-ch-1", "chat_reopened", R"({"successor_chat_id":"ch-2"})", "bot")
        == "chat reopened as chat ch-2");
  auto opened = describe_event(event_of(
    "chat-ch-1", "thread_opened",
    R"({"thread_id":"ch-1.t1","note_id":"n-1","note":"Internal thread","thread":{"channel_id":"C-fin","title":"Refund?"}})"));
  CHECK(opened.thread_id == "ch-1.t1");
  CHECK(opened.chat_id == "ch-1");
  CHECK(opened.summary == "internal thread ch-1.t1 opened in Slack channel C-fin: \"Refund?\"");
  CHECK(opened.details.at("note") == "Internal thread");
  auto thread_created = describe_event(event_of(
    "thread-ch-1.t1", "thread_created",
    R"({"channel_id":"C-fin","created_by":"alice","created_by_name":"Alice","message_id":"m-1","text":"Refund?","files":[{"id":"f-1"}]})",
    "system"));
  CHECK(thread_created.thread_id == "ch-1.t1");
  CHECK(thread_created.chat_id == "ch-1");
  CHECK(thread_created.summary
        == "thread created in Slack channel C-fin by Alice (alice); message m-1 for Slack: \"Refund?\" (1 file)");
  CHECK(summary_of("thread-ch-1.t1", "thread_message_sent",
                   R"({"id":"m-2","author_id":"alice","author_name":"Alice","text":"thanks @here"})")
        == "Alice (alice) wrote to Slack, message m-2: \"thanks @here\"");
  CHECK(summary_of("thread-ch-1.t1", "slack_reply_received",
                   R"({"id":"m-3","slack_ts":"1.2","author_id":"U1","author_name":"Lee","text":"done","late":true})",
                   "slack")
        == "reply from Slack by Lee (U1), ts 1.2: \"done\" (after the thread was done)");
  CHECK(summary_of("thread-ch-1.t1", "slack_delivered", R"({"message_id":"m-2","slack_ts":"1.3"})", "slack")
        == "message m-2 delivered to Slack, ts 1.3");
  CHECK(summary_of("thread-ch-1.t1", "slack_delivery_failed", R"({"message_id":"m-2","reason":"is_archived"})", "slack")
        == "delivery of message m-2 to Slack failed: is_archived");
  CHECK(summary_of("thread-ch-1.t1", "slack_reply_edited", R"({"slack_ts":"1.2","text":"done today"})", "slack")
        == "Slack reply 1.2 edited in Slack: \"done today\"");
  CHECK(summary_of("thread-ch-1.t1", "slack_reply_deleted", R"({"slack_ts":"1.2"})", "slack")
        == "Slack reply 1.2 deleted in Slack");
  CHECK(summary_of("thread-ch-1.t1", "thread_read", "{}") == "thread read by alice: its unread count cleared");
  CHECK(summary_of("thread-ch-1.t1", "thread_done", R"({"closing_id":"m-9","closing_author":"Alice"})")
        == "thread marked done by Alice (alice): read-only from now on");

  // A user's token hash is never shown.
  auto user = describe_event(event_of("user-bob", "user_created",
                                      R"({"id":"bob","name":"Bob","role":"agent","inbox_access":true,"token_hash":"f00d"})",
                                      "admin"));
  CHECK(user.summary == "created user bob (Bob), role agent, with inbox access");
  CHECK_FALSE(user.details.contains("token_hash"));
  CHECK(json::serialize(timeline_json(user)).find("f00d") == std::string::npos);
  // A type this version does not know is shown as recorded.
  auto unknown = describe_event(event_of("channel-C1", "channel_renamed", R"({"name":"fin"})", "system"));
  CHECK(unknown.summary == "channel_renamed");
  CHECK(unknown.details.at("name") == "fin");
  CHECK(describe_event(event_of("chat-ch-1", "odd", "not json")).details.at("payload") == "not json");
}

TEST_CASE("timeline_text and timeline_json: one line per event, every fact kept", "[audit]") {
  auto t = describe_event(event_of("chat-ch-1", "chat_message_added", R"({"kind":"agent","author":"alice","text":"a\nb"})"));
  const auto line = timeline_text(t);
  CHECK(line == "2026-11-25T13:00:00.123Z  #42  chat ch-1  by alice  agent alice wrote in the chat: \"a\\nb\"");
  CHECK(line.find('\n') == std::string::npos);
  auto o = timeline_json(t);
  CHECK(o.at("position") == 42);
  CHECK(o.at("seq") == 3);
  CHECK(o.at("stream") == "chat-ch-1");
  CHECK(o.at("type") == "chat_message_added");
  CHECK(o.at("actor") == "alice");
  CHECK(o.at("chat_id") == "ch-1");
  CHECK(o.at("thread_id").is_null());
  CHECK(o.at("details").at("text") == "a\nb");
}

TEST_CASE("canonical_time: the forms accepted, and the ends of a range", "[audit]") {
  CHECK(canonical_time("2026-11-25") == "2026-11-25T00:00:00.000Z");
  CHECK(canonical_time("2026-11-25", true) == "2026-11-25T23:59:59.999Z");
  CHECK(canonical_time("2026-11-25T13:05") == "2026-11-25T13:05:00.000Z");
  CHECK(canonical_time("2026-11-25T13:05", true) == "2026-11-25T13:05:59.999Z");
  CHECK(canonical_time("2026-11-25T13:05:07Z") == "2026-11-25T13:05:07.000Z");
  CHECK(canonical_time("2026-11-25T13:05:07Z", true) == "2026-11-25T13:05:07.999Z");
  CHECK(canonical_time("2026-11-25T13:05:07.1Z") == "2026-11-25T13:05:07.100Z");
  CHECK(canonical_time("2026-11-25T13:05:07.1234Z", true) == "2026-11-25T13:05:07.123Z");
  for (const char* bad : {"", "yesterday", "2026-13-01", "2026-11-32", "2026-11-25 13:00", "2026-11-25T24:00",
                          "2026-11-25T13:00:61", "2026-11-25T13:00:00+01:00", "-026-11-25", "2026-11-25T13:00:00."})
    CHECK_FALSE(canonical_time(bad));
}

TEST_CASE("replay of a real server run: chat, thread, agent and time range timelines show what was done",
          "[audit]") {
  in_process_server server;
  api_client client(server.port());
  const auto run = server.run_scenario();
  temp_dir scratch("backline-replay-secondary");
  auto store = secondary_of(server.log(), scratch);

  auto chat = chat_timeline(*store, run.chat_id);
  INFO(chat.error().describe());
  REQUIRE(chat);
  CHECK(types_of(*chat) == run.chat_event_types);
  for (size_t i = 1; i < chat->size(); ++i)
    CHECK((*chat)[i - 1].position < (*chat)[i].position);
  const auto& c = *chat;
  CHECK(c[1].summary == "customer cust-1 wrote in the chat: \"My refund is missing\"");
  CHECK(c[2].summary == "chat assigned to alice");
  CHECK(c[2].actor == "bot");
  CHECK(c[3].summary == "agent alice wrote in the chat: \"Let me check with finance\"");
  CHECK(c[4].summary == "internal thread " + run.thread_id + " opened in Slack channel C0FINANCE: \"Was the refund for Dana issued?\"");
  CHECK(c[4].actor == "alice");
  CHECK_THAT(c[6].summary, Catch::StartsWith("message ") && Catch::Contains("delivered to Slack, ts "));
  CHECK_THAT(c[7].summary, Catch::StartsWith("reply from Slack by ")
                             && Catch::EndsWith("(U0ERIN), ts " + run.reply_ts + ": \"Yes, on Monday\""));
  CHECK(c[7].actor == "slack");
  CHECK(c[8].summary == "Slack reply " + run.reply_ts + " edited in Slack: \"Yes, on Monday 10:00\"");
  CHECK(c[9].summary.find("(alice) wrote to Slack") != std::string::npos);
  CHECK(c[11].summary == "thread read by alice: its unread count cleared");
  CHECK(c[13].summary == "Slack reply " + run.gone_ts + " deleted in Slack");
  CHECK(c[14].summary == "chat transferred to bob (from alice)");
  CHECK(c[14].actor == "alice");
  CHECK(c[15].actor == "bob");
  CHECK(c[17].summary == "chat resolved");
  CHECK(c[18].summary == "chat reopened as chat " + run.successor_id);
  CHECK(c[19].chat_id == run.successor_id);
  CHECK_THAT(c[19].summary, Catch::EndsWith("it reopens chat " + run.chat_id));

  auto thread = thread_timeline(*store, run.thread_id);
  REQUIRE(thread);
  // The chat's event that opened it, then the thread's own.
  CHECK(thread->front().type == "thread_opened");
  CHECK(thread->size() == 12);  // thread_opened and the thread stream's 11 events
  for (const auto& t : *thread)
    CHECK(t.thread_id == run.thread_id);

  auto alice = agent_timeline(*store, "alice");
  REQUIRE(alice);
  CHECK(types_of(*alice) == std::vector<std::string>{"chat_assigned", "chat_message_added", "thread_opened",
                                                      "thread_message_sent", "thread_read", "chat_transferred"});
  auto bob = agent_timeline(*store, "bob");
  REQUIRE(bob);
  CHECK(types_of(*bob) == std::vector<std::string>{"chat_transferred", "thread_done", "chat_resolved"});

  auto everything = time_timeline(*store, "0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z");
  REQUIRE(everything);
  CHECK(everything->size() == store->head().position);
  auto from_reply = time_timeline(*store, c[7].time, c[8].time);
  REQUIRE(from_reply);
  CHECK(from_reply->size() >= 2);
  for (const auto& t : *from_reply)
    CHECK((t.time >= c[7].time && t.time <= c[8].time));
  auto nothing = time_timeline(*store, "2001-01-01T00:00:00.000Z", "2001-01-02T00:00:00.000Z");
  REQUIRE(nothing);
  CHECK(nothing->empty());
  // What is not there, and a backwards range.
  CHECK(chat_timeline(*store, "ch-unknown").error().code() == errc::not_found);
  CHECK(thread_timeline(*store, run.chat_id + ".t9").error().code() == errc::not_found);
  CHECK(thread_timeline(*store, "no|such").error().code() == errc::not_found);
  CHECK(agent_timeline(*store, "carol").error().code() == errc::not_found);
  auto inverted = time_timeline(*store, "2026-11-25T14:00:00.000Z", "2026-11-25T13:00:00.000Z");
  CHECK(inverted.error().code() == errc::invalid_argument);
  CHECK_THAT(inverted.error().message(), Catch::Contains("inverted"));
}

TEST_CASE("replay of an altered log stops at the altered event and names it", "[audit]") {
  in_process_server server;
  api_client client(server.port());
  const auto run = server.run_scenario();
  server.stop();
  const auto key = persistence::stream_key("thread-" + run.thread_id, 2);
  auto stored = persistence::raw_get_for_testing(server.log(), key);
  REQUIRE(stored);
  REQUIRE(stored->has_value());
  auto e = decode_event(**stored);
  REQUIRE(e);
  e->payload = R"({"message_id":"m-forged","slack_ts":"0.0"})";
  REQUIRE(persistence::raw_put_for_testing(server.log(), key, encode_event(*e)));
  temp_dir scratch("backline-replay-secondary");
  auto store = secondary_of(server.log(), scratch);
  auto chat = chat_timeline(*store, run.chat_id);
  REQUIRE_FALSE(chat);
  CHECK(chat.error().code() == errc::corrupt);
  CHECK_THAT(chat.error().message(), Catch::Contains("position " + std::to_string(e->position)));
  CHECK(thread_timeline(*store, run.thread_id).error().code() == errc::corrupt);
  // A record cut short: damaged, named by its key.
  REQUIRE(persistence::raw_put_for_testing(server.log(), key, stored->value().substr(0, 30)));
  auto again = secondary_of(server.log(), scratch);
  auto cut = chat_timeline(*again, run.chat_id);
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code() == errc::corrupt);
  CHECK_THAT(cut.error().message(), Catch::Contains("s|thread-" + run.thread_id));
}

TEST_CASE("progress_line: bar, share done, rate and time left", "[audit]") {
  CHECK(progress_line("verify", 500, 1000, 2.0)
        == "verify [############............]  50%  500/1000 events  250 events/s  0m02s left");
  CHECK(progress_line("verify", 3000000, 10000000, 10.0)
        == "verify [#######.................]  30%  3000000/10000000 events  300k events/s  0m23s left");
  CHECK(progress_line("verify", 10, 10, 1.0) == "verify [########################] 100%  10/10 events  10 events/s");
  // Nothing known yet: no rate, no time left, no division by zero.
  CHECK(progress_line("replay", 0, 0, 0.0) == "replay [........................]   0%  0/0 events  0 events/s");
}
