// The pure rules and translations of the inbox domain, on their own.

#include "backline/domain.hpp"

#include <catch2/catch.hpp>

using namespace backline;

TEST_CASE("mentions: @here, @channel and handles, but not addresses or trailing dots") {
  auto m = extract_mentions("@here ask @finance-team and @john.doe. Mail a@b.com, @here again, @channel");
  REQUIRE(m.size() == 4);
  CHECK(m[0].kind == "here");
  CHECK((m[1].kind == "name" && m[1].handle == "finance-team"));
  CHECK(m[2].handle == "john.doe");
  CHECK(m[3].kind == "channel");
  CHECK(extract_mentions("no mentions @ all").empty());
}

TEST_CASE("who may read and work a chat's threads") {
  chat_state chat;
  chat.id = "ch-1";
  chat.agent_id = "alice";
  caller alice{"alice", "Alice", role::agent, true};
  caller alice_no_inbox{"alice", "Alice", role::agent, false};
  caller bob{"bob", "Bob", role::agent, true};
  caller admin{"root", "Root", role::admin, false};
  caller bot{"bot", "Bot", role::bot, false};
  CHECK(may_work_threads(alice, chat));
  CHECK(may_work_threads(alice_no_inbox, chat).code() == errc::forbidden);
  CHECK(may_work_threads(bob, chat).code() == errc::forbidden);
  CHECK(may_work_threads(admin, chat).code() == errc::forbidden);
  CHECK(may_read_threads(admin, chat));
  CHECK(may_read_threads(bot, chat).code() == errc::forbidden);
  chat.resolved = true;
  CHECK(may_work_threads(alice, chat).code() == errc::conflict);
  CHECK(may_read_threads(alice, chat));
}

TEST_CASE("chat and thread state are rebuilt from their events") {
  chat_state chat;
  auto ev = [](std::string type, std::string payload, uint64_t seq) {
    event_record e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    e.seq = seq;
    e.time = "2026-11-25T13:00:00.000Z";
    e.actor = "alice";
    return e;
  };
  apply_chat_event(chat, ev("chat_created", R"({"id":"ch-1","customer_id":"c","customer_name":"Dana"})", 1));
  apply_chat_event(chat, ev("chat_assigned", R"({"agent_id":"alice"})", 2));
  apply_chat_event(chat, ev("thread_opened", R"({"thread_id":"ch-1.t1","note_id":"n1","note":"opened","thread":{"id":"ch-1.t1"}})", 3));
  CHECK(chat.exists);
  CHECK(chat.agent_id == "alice");
  CHECK(chat.thread_ids == std::vector<std::string>{"ch-1.t1"});
  CHECK(chat.messages.back().kind == "internal_note");
  CHECK(chat.version == 3);

  thread_state t;
  apply_thread_event(t, ev("thread_created", R"({"id":"ch-1.t1","chat_id":"ch-1","channel_id":"C1","text":"q","message_id":"m1"})", 1));
  apply_thread_event(t, ev("slack_delivered", R"({"message_id":"m1","slack_ts":"1.2"})", 2));
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"m2","text":"done","slack_ts":"1.3"})", 3));
  CHECK(t.unread == 1);
  CHECK(t.slack_ts == "1.2");
  CHECK(t.messages[0].delivery == "sent");
  apply_thread_event(t, ev("thread_read", "{}", 4));
  apply_thread_event(t, ev("thread_done", "{}", 5));
  CHECK(t.unread == 0);
  CHECK(t.done);
  CHECK(thread_json(t).at("status") == "done");
}

TEST_CASE("Slack replies stand in Slack's ts order, whatever order they arrive in") {
  CHECK(slack_ts_before("1712345678.000200", "1712345678.000300"));
  CHECK(slack_ts_before("999999999.999999", "1000000000.000001"));  // decimals, not strings
  CHECK_FALSE(slack_ts_before("5.0002", "5.000200"));
  auto ev = [](std::string type, std::string payload, uint64_t seq) {
    event_record e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    e.seq = seq;
    return e;
  };
  thread_state t;
  apply_thread_event(t, ev("thread_created", R"({"id":"ch-1.t1","chat_id":"ch-1","channel_id":"C1","text":"q","message_id":"m1"})", 1));
  apply_thread_event(t, ev("slack_delivered", R"({"message_id":"m1","slack_ts":"100.000001"})", 2));
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r3","text":"third","slack_ts":"100.000030"})", 3));
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r1","text":"first","slack_ts":"100.000010"})", 4));
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r2","text":"second","slack_ts":"100.000020"})", 5));
  std::vector<std::string> order;
  for (const auto& m : t.messages)
    order.push_back(m.id);
  CHECK(order == std::vector<std::string>{"m1", "r1", "r2", "r3"});
  CHECK(t.unread == 3);
}

TEST_CASE("a late Slack reply steps over agent messages not in Slack to find its place among the replies") {
  auto ev = [](std::string type, std::string payload, std::string time) {
    event_record e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    e.time = std::move(time);
    return e;
  };
  thread_state t;
  apply_thread_event(t, ev("thread_created", R"({"id":"ch-1.t1","chat_id":"ch-1","channel_id":"C1","text":"q","message_id":"m1"})", "2024-04-05T19:34:00.000Z"));
  apply_thread_event(t, ev("slack_delivered", R"({"message_id":"m1","slack_ts":"1712345640.000100"})", "2024-04-05T19:34:00.500Z"));
  // Replies at :10, :30 and :50; the agent writes a failed and a pending message between.
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r1","text":"first","slack_ts":"1712345650.000100"})", "2024-04-05T19:34:10.100Z"));
  apply_thread_event(t, ev("thread_message_sent", R"({"id":"a1","text":"mine"})", "2024-04-05T19:34:20.000Z"));
  apply_thread_event(t, ev("slack_delivery_failed", R"({"message_id":"a1","reason":"is_archived"})", "2024-04-05T19:34:20.100Z"));
  apply_thread_event(t, ev("thread_message_sent", R"({"id":"a2","text":"later"})", "2024-04-05T19:34:40.000Z"));
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r3","text":"third","slack_ts":"1712345690.000100"})", "2024-04-05T19:34:50.000Z"));
  // The :30 reply arrives last (the poller found it): between r1 and r3, the agent's messages kept in place.
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r2","text":"second","slack_ts":"1712345670.000100"})", "2024-04-05T19:34:55.000Z"));
  // One older than all: right after the parent.
  apply_thread_event(t, ev("slack_reply_received", R"({"id":"r0","text":"zeroth","slack_ts":"1712345641.000100"})", "2024-04-05T19:34:56.000Z"));
  std::vector<std::string> order;
  for (const auto& m : t.messages)
    order.push_back(m.id);
  CHECK(order == std::vector<std::string>{"m1", "r0", "r1", "a1", "a2", "r2", "r3"});
}

TEST_CASE("a late reply stands before or after the closing message as Slack ordered them") {
  auto ev = [](std::string type, std::string payload) {
    event_record e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    return e;
  };
  auto closed_thread = [&] {
    thread_state t;
    apply_thread_event(t, ev("thread_created", R"({"id":"ch-1.t1","chat_id":"ch-1","channel_id":"C1","text":"q","message_id":"m1"})"));
    apply_thread_event(t, ev("slack_delivered", R"({"message_id":"m1","slack_ts":"100.000001"})"));
    apply_thread_event(t, ev("thread_done", R"({"closing_id":"c1","closing_text":"closed","closing_author":"A"})"));
    return t;
  };
  auto order = [](const thread_state& t) {
    std::vector<std::string> ids;
    for (const auto& m : t.messages)
      ids.push_back(m.id);
    return ids;
  };
  // Slack took the closing message first: the reply came after it there.
  auto after = closed_thread();
  apply_thread_event(after, ev("slack_delivered", R"({"message_id":"c1","slack_ts":"100.000005"})"));
  apply_thread_event(after, ev("slack_reply_received", R"({"id":"r1","text":"late","slack_ts":"100.000009"})"));
  CHECK(order(after) == std::vector<std::string>{"m1", "c1", "r1"});
  CHECK(after.messages.back().late);
  // The L2 person replied before the closing message reached Slack: it stands
  // before the closing message, still marked late (it came after Done).
  auto before = closed_thread();
  apply_thread_event(before, ev("slack_delivered", R"({"message_id":"c1","slack_ts":"100.000009"})"));
  apply_thread_event(before, ev("slack_reply_received", R"({"id":"r1","text":"late","slack_ts":"100.000005"})"));
  CHECK(order(before) == std::vector<std::string>{"m1", "r1", "c1"});
  CHECK(before.messages[1].late);
  // The closing message not yet in Slack has no ts to compare: it keeps its place.
  auto pending = closed_thread();
  apply_thread_event(pending, ev("slack_reply_received", R"({"id":"r1","text":"late","slack_ts":"100.000005"})"));
  CHECK(order(pending) == std::vector<std::string>{"m1", "c1", "r1"});
}

TEST_CASE("the opening Slack message carries chat details, the agent and the query") {
  chat_state chat;
  chat.id = "ch-9";
  chat.customer_id = "cust-3";
  chat.customer_name = "Dana";
  auto text = thread_opening_text(chat, caller{"alice", "Alice A.", role::agent, true}, "Refund?");
  CHECK_THAT(text, Catch::Contains("ch-9") && Catch::Contains("Dana") && Catch::Contains("Alice A.") &&
                     Catch::Contains("alice") && Catch::EndsWith("Refund?"));
}

namespace {

event_record event_of(std::string type, std::string payload, uint64_t seq, std::string actor = "alice") {
  event_record e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.seq = seq;
  e.actor = std::move(actor);
  e.time = "2026-11-25T13:00:00.000Z";
  return e;
}

} // namespace

TEST_CASE("a reopened chat links to the chat that succeeds it, and state loads as the actors load it") {
  auto chat = chat_from_events({event_of("chat_created", R"({"id":"ch-1","customer_id":"c","customer_name":"D"})", 1),
                                event_of("chat_resolved", "{}", 2),
                                event_of("chat_reopened", R"({"successor_chat_id":"ch-2"})", 3),
                                event_of("chat_reopened", R"({"successor_chat_id":"ch-3"})", 4)});
  CHECK(chat.id == "ch-1");
  CHECK(chat.version == 4);
  CHECK(chat.successor_chat_ids == std::vector<std::string>{"ch-2", "ch-3"});
  CHECK(packed_chat(chat).unpack().successor_chat_ids == chat.successor_chat_ids);  // as the chat actor keeps it

  auto thread = thread_from_events(
    {event_of("thread_created", R"({"id":"ch-1.t1","chat_id":"ch-1","channel_id":"C1","message_id":"m-1","text":"q"})", 1),
     event_of("thread_message_sent", R"({"id":"m-2","text":"more"})", 2)});
  CHECK(thread.id == "ch-1.t1");
  CHECK(has_pending_delivery(thread));
  apply_thread_event(thread, event_of("slack_delivered", R"({"message_id":"m-1","slack_ts":"1.1"})", 3, "slack"));
  CHECK(has_pending_delivery(thread));
  apply_thread_event(thread, event_of("slack_delivery_failed", R"({"message_id":"m-2","reason":"archived"})", 4, "slack"));
  CHECK_FALSE(has_pending_delivery(thread));

  auto u = user_from_event(event_of(
    "user_created", R"({"id":"bob","name":"Bob","role":"agent","inbox_access":true,"token_hash":"ab"})", 1, "admin"));
  REQUIRE(u);
  CHECK(u->id == "bob");
  CHECK(u->kind == role::agent);
  CHECK(u->inbox_access);
  CHECK(u->token_hash == "ab");
  CHECK_FALSE(user_from_event(event_of("chat_created", "{}", 1)));
  CHECK_FALSE(user_from_event(event_of("user_created", "not json", 1)));
}

TEST_CASE("the thread a chat opened is found in the chat's events, for a thread whose own stream is empty") {
  std::vector<event_record> events{
    event_of("chat_created", R"({"id":"ch-1","customer_id":"c","customer_name":"D"})", 1),
    event_of("thread_opened", R"({"thread_id":"ch-1.t1","note":"n","thread":{"id":"ch-1.t1","title":"one"}})", 2),
    event_of("thread_opened", R"({"thread_id":"ch-1.t2","note":"n","thread":{"id":"ch-1.t2","title":"two"}})", 3)};
  auto chat = chat_from_events(events);
  CHECK(has_thread(chat, "ch-1.t2"));
  CHECK_FALSE(has_thread(chat, "ch-1.t3"));
  auto second = thread_creation_of(events, "ch-1.t2");
  REQUIRE(second);
  CHECK(boost::json::parse(*second).as_object().at("title").as_string() == "two");
  CHECK_FALSE(thread_creation_of(events, "ch-1.t3"));
  CHECK_FALSE(thread_creation_of({event_of("thread_opened", R"({"thread_id":"ch-1.t1"})", 1)}, "ch-1.t1"));
}

TEST_CASE("a packed chat unpacks to the chat it was made from, without its transcript") {
  auto same = [](const chat_state& a, const chat_state& b) {
    return a.id == b.id && a.exists == b.exists && a.resolved == b.resolved && a.customer_id == b.customer_id &&
           a.customer_name == b.customer_name && a.agent_id == b.agent_id && a.previous_chat_id == b.previous_chat_id &&
           a.created_at == b.created_at && a.thread_ids == b.thread_ids &&
           a.successor_chat_ids == b.successor_chat_ids && a.version == b.version;
  };
  chat_state chat;
  chat.id = "ch-0123456789abcdef";
  chat.exists = true;
  chat.customer_id = "cust-1";
  chat.customer_name = std::string(300, 'n') + " Zoë \xF0\x9F\x98\x80";  // long, non-ASCII
  chat.agent_id = "";                                                  // unassigned
  chat.previous_chat_id = "ch-fedcba9876543210";
  chat.created_at = "2026-12-04T22:04:09.123Z";
  chat.messages.push_back({"m-1", "customer", "hello", "cust-1", "2026-12-04T22:04:09.124Z"});
  chat.version = 7;
  SECTION("no threads, no successors") {
    auto back = packed_chat(chat).unpack();
    CHECK(same(back, chat));
    CHECK(back.messages.empty());
  }
  SECTION("threads and successors, resolved") {
    chat.thread_ids = {thread_id_of(chat.id, 1), thread_id_of(chat.id, 2), ""};
    chat.successor_chat_ids = {"ch-next"};
    chat.resolved = true;
    chat.agent_id = "alice";
    std::string with_nul("a\0b", 3);
    chat.customer_id = with_nul;
    auto back = packed_chat(chat).unpack();
    CHECK(same(back, chat));
    CHECK(back.customer_id.size() == 3);
    CHECK(back.messages.empty());
  }
  SECTION("a chat loaded from its stream") {
    std::vector<event_record> events;
    auto add = [&](std::string type, std::string payload) {
      event_record e;
      e.type = std::move(type);
      e.payload = std::move(payload);
      e.seq = events.size() + 1;
      e.time = "2026-12-04T22:04:1" + std::to_string(events.size()) + ".000Z";
      e.actor = "bot";
      events.push_back(e);
    };
    add("chat_created", R"({"id":"ch-9","customer_id":"c","customer_name":"D","previous_chat_id":""})");
    add("chat_message_added", R"({"id":"m-1","kind":"customer","text":"hi","author":"c"})");
    add("chat_assigned", R"({"agent_id":"alice"})");
    add("thread_opened", R"({"thread_id":"ch-9.t1","note_id":"n-1","note":"opened"})");
    add("chat_resolved", "{}");
    add("chat_reopened", R"({"successor_chat_id":"ch-10"})");
    auto loaded = chat_from_events(events);
    auto back = packed_chat(loaded).unpack();
    CHECK(same(back, loaded));
    CHECK(back.messages.empty());
    CHECK(boost::json::serialize(chat_json(back)) == boost::json::serialize(chat_json(loaded)));
  }
  CHECK(same(packed_chat().unpack(), chat_state{}));
}
