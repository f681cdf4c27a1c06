// The inbox actors on the deterministic scheduler: directory, chat and
// thread actors over a real journal, with the in-memory Slack port.

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "backline/inbox.hpp"
#include "support/caf_fixture.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using backline::testing::caf_fixture;
using backline::testing::temp_dir;

namespace {

struct inbox_actors : caf_fixture {
  temp_dir dir;
  std::shared_ptr<event_store> store;
  journal_actor journal;
  slack_port_actor slack;
  notifications_actor notifications;
  directory_actor directory;
  caller bot{"bot", "Bot", role::bot, false};
  caller alice{"alice", "Alice", role::agent, true};
  caller admin{"root", "Root", role::admin, false};

  inbox_actors() {
    auto s = event_store::open(dir.path());
    REQUIRE(s);
    store = std::shared_ptr<event_store>(std::move(s.value()));
    journal = journal::spawn(sys, store, {.detached = false});
    slack = inbox::spawn_memory_slack_port(sys);
    notifications = inbox::spawn_notifications(sys);
    directory = inbox::spawn_directory(sys, journal, slack, notifications, {});
    run();
  }
  ~inbox_actors() override {
    for (auto a : {caf::actor_cast<caf::actor>(directory), caf::actor_cast<caf::actor>(slack),
                   caf::actor_cast<caf::actor>(notifications), caf::actor_cast<caf::actor>(journal)})
      self->send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  api_reply cmd(verb what, const caller& who, std::string chat_id, std::string thread_id = "",
                json::object body = {}) {
    command c{what, who, std::move(chat_id), std::move(thread_id), json::serialize(body), ""};
    return request<api_reply>(directory, atoms::command::value, c);
  }
  static std::string id_of(const api_reply& r) {
    return std::string(json::parse(r.body).as_object().at("id").as_string());
  }
  // A chat the bot created (with the customer's first message, if any), assigned to alice.
  std::string assigned_chat(const std::string& text) {
    auto created = request<api_reply>(
      directory, atoms::create::value, bot,
      json::serialize(json::object{{"customer_id", "c1"}, {"customer_name", "Dana"}, {"text", text}}), std::string());
    REQUIRE(created.status == 201);
    auto chat = id_of(created);
    REQUIRE(cmd(verb::chat_assign, bot, chat, "", {{"agent_id", "alice"}}).status == 200);
    return chat;
  }
};

} // namespace

TEST_CASE_METHOD(inbox_actors, "a chat's thread goes from creation to done, each step durable in its stream") {
  auto created = request<api_reply>(directory, atoms::create::value, bot,
                                    std::string(R"({"customer_id":"c1","customer_name":"Dana","text":""})"),
                                    std::string());
  REQUIRE(created.status == 201);
  auto chat = id_of(created);
  REQUIRE(cmd(verb::chat_assign, bot, chat, "", {{"agent_id", "alice"}}).status == 200);
  CHECK(cmd(verb::thread_create, admin, chat, "", {{"channel_id", "C1"}, {"text", "q"}}).status == 403);
  auto thread = cmd(verb::thread_create, alice, chat, "", {{"channel_id", "C1"}, {"text", "Refund?"}});
  REQUIRE(thread.status == 201);
  auto thread_id = id_of(thread);
  REQUIRE(cmd(verb::thread_post, alice, chat, thread_id, {{"text", "@here any news?"}}).status == 201);
  REQUIRE(cmd(verb::thread_done, alice, chat, thread_id).status == 200);
  CHECK(cmd(verb::thread_post, alice, chat, thread_id, {{"text", "late"}}).status == 409);

  // The Slack port got the parent, the reply in the parent's thread, then
  // the closing reply and a check mark on the parent when it was done.
  auto sent = request<std::vector<outbound_post>>(slack, atoms::sent_log::value);
  REQUIRE(sent.size() == 4);
  CHECK(sent[0].thread_ts.empty());
  CHECK_THAT(sent[0].text, Catch::Contains("Dana") && Catch::Contains("Refund?"));
  CHECK(!sent[1].thread_ts.empty());
  REQUIRE(sent[1].mentions.size() == 1);
  CHECK(sent[1].mentions[0].kind == "here");
  CHECK_THAT(sent[2].text, Catch::Contains("Marked as done by Alice"));
  CHECK(sent[2].thread_ts == sent[1].thread_ts);
  CHECK(sent[3].reaction == "white_check_mark");
  CHECK(sent[3].thread_ts == sent[1].thread_ts);

  // Every change is an event in the right stream.
  auto chat_events = store->read_stream("chat-" + chat).value();
  auto thread_events = store->read_stream("thread-" + thread_id).value();
  std::vector<std::string> chat_types, thread_types;
  for (auto& e : chat_events)
    chat_types.push_back(e.type);
  for (auto& e : thread_events)
    thread_types.push_back(e.type);
  CHECK(chat_types == std::vector<std::string>{"chat_created", "chat_assigned", "thread_opened"});
  CHECK(thread_types == std::vector<std::string>{"thread_created", "slack_delivered", "thread_message_sent",
                                                 "slack_delivered", "thread_done", "slack_delivered"});
}

TEST_CASE_METHOD(inbox_actors, "a thread its chat opened but whose own stream is empty is created at its activation") {
  // A crash between the chat's write and the thread's: the chat's stream
  // says the thread was opened, the thread's stream has nothing.
  const std::string chat = "ch-crash";
  const auto thread_id = thread_id_of(chat, 1);
  json::object thread{{"id", thread_id},        {"chat_id", chat},    {"channel_id", "C1"},
                      {"created_by", "alice"},  {"created_by_name", "Alice"},
                      {"title", "Refund?"},     {"text", "Refund?"},  {"message_id", "m-1"},
                      {"mentions", json::array{}}, {"files", json::array{}}};
  append_request req{"chat-" + chat, expected_version::no_stream(), {}};
  req.events.push_back({"chat_created", "bot", json::serialize(json::object{{"id", chat}, {"customer_id", "c1"}})});
  req.events.push_back({"chat_assigned", "bot", json::serialize(json::object{{"agent_id", "alice"}})});
  req.events.push_back({"thread_opened", "alice",
                        json::serialize(json::object{{"thread_id", thread_id}, {"note", "opened"}, {"thread", thread}})});
  REQUIRE(store->append(req));
  auto index = inbox::load_directory_index(*store);
  REQUIRE(index);
  auto restarted = inbox::spawn_directory(sys, journal, slack, notifications, std::move(*index));
  run();
  command get{verb::thread_get, alice, chat, thread_id, "", ""};
  auto got = request<api_reply>(restarted, atoms::command::value, get);
  REQUIRE(got.status == 200);
  CHECK(json::parse(got.body).as_object().at("title").as_string() == "Refund?");
  auto thread_events = store->read_stream("thread-" + thread_id).value();
  REQUIRE_FALSE(thread_events.empty());
  CHECK(thread_events.front().type == "thread_created");
  // A thread the chat never opened stays absent.
  command other{verb::thread_get, alice, chat, thread_id_of(chat, 2), "", ""};
  CHECK(request<api_reply>(restarted, atoms::command::value, other).status == 404);
  self->send_exit(restarted, caf::exit_reason::user_shutdown);
  run();
}

TEST_CASE_METHOD(inbox_actors, "unknown chats and threads are 404 and create nothing") {
  CHECK(cmd(verb::chat_get, admin, "ch-nope").status == 404);
  CHECK(cmd(verb::thread_get, admin, "ch-nope", "ch-nope.t1").status == 404);
  CHECK(store->head().position == 0);
}

// The directory sends a thread's commands straight to its actor once
// activated, checking them on its index; a transfer still on its way must
// not let the agent who is losing the chat through.
TEST_CASE_METHOD(inbox_actors, "a thread command sent after a transfer is checked against the new agent") {
  caller bob{"bob", "Bob", role::agent, true};
  auto chat = assigned_chat("");
  auto thread_id = id_of(cmd(verb::thread_create, alice, chat, "", {{"channel_id", "C1"}, {"text", "Refund?"}}));
  REQUIRE(cmd(verb::thread_post, alice, chat, thread_id, {{"text", "one"}}).status == 201);

  // Both sent before either is answered: the post comes second.
  auto send = [&](verb what, const caller& who, std::string thread, json::object body) {
    return self->request(directory, caf::infinite, atoms::command::value,
                         command{what, who, chat, std::move(thread), json::serialize(body), ""});
  };
  auto transfer = send(verb::chat_transfer, alice, "", {{"agent_id", "bob"}});
  auto late = send(verb::thread_post, alice, thread_id, {{"text", "two"}});
  run();
  auto status_of = [](auto& handle) {
    int status = 0;
    handle.receive([&](api_reply& r) { status = r.status; }, [](caf::error& e) { FAIL(caf::to_string(e)); });
    return status;
  };
  CHECK(status_of(transfer) == 200);
  CHECK(status_of(late) == 403);

  // Afterwards too, and the new agent works the thread.
  CHECK(cmd(verb::thread_post, alice, chat, thread_id, {{"text", "three"}}).status == 403);
  CHECK(cmd(verb::thread_messages, alice, chat, thread_id).status == 403);
  CHECK(cmd(verb::thread_post, bob, chat, thread_id, {{"text", "four"}}).status == 201);
  REQUIRE(cmd(verb::chat_resolve, bob, chat).status == 200);
  CHECK(cmd(verb::thread_post, bob, chat, thread_id, {{"text", "five"}}).status == 409);
  CHECK(cmd(verb::thread_get, bob, chat, thread_id).status == 200);
  CHECK(cmd(verb::thread_get, bot, chat, thread_id).status == 403);

  std::vector<std::string> texts;
  auto events = store->read_stream("thread-" + thread_id).value();
  for (auto& e : events)
    if (e.type == "thread_message_sent")
      texts.push_back(std::string(json::parse(e.payload).as_object().at("text").as_string()));
  CHECK(texts == std::vector<std::string>{"one", "four"});
}

TEST_CASE_METHOD(inbox_actors, "a chat keeps no transcript and answers a transcript read from its stream as before") {
  auto chat = assigned_chat("hello");
  REQUIRE(cmd(verb::chat_message_post, alice, chat, "", {{"text", "Let me check."}}).status == 201);
  REQUIRE(cmd(verb::thread_create, alice, chat, "", {{"channel_id", "C1"}, {"text", "Refund?"}}).status == 201);
  REQUIRE(cmd(verb::chat_message_post, bot, chat, "", {{"from", "customer"}, {"text", "thanks"}}).status == 201);

  // What a transcript kept in memory answered: every message of the stream,
  // the internal note included, with its fields; the bot without the note.
  auto events = store->read_stream("chat-" + chat).value();
  auto whole = chat_from_events(events);
  REQUIRE(whole.messages.size() == 4);
  auto expected = [&](bool bot_view) {
    json::array list;
    for (const auto& m : whole.messages)
      if (!(bot_view && m.kind == "internal_note"))
        list.push_back(json::object{{"id", m.id},         {"kind", m.kind},
                                    {"text", m.text},     {"author", m.author},
                                    {"created_at", m.created_at}});
    return json::serialize(json::object{{"messages", std::move(list)}});
  };
  auto as_agent = cmd(verb::chat_messages, alice, chat);
  REQUIRE(as_agent.status == 200);
  CHECK(as_agent.body == expected(false));
  auto as_bot = cmd(verb::chat_messages, bot, chat);
  REQUIRE(as_bot.status == 200);
  CHECK(as_bot.body == expected(true));
  CHECK(cmd(verb::chat_messages, caller{"bob", "Bob", role::agent, true}, chat).status == 403);

  // A chat activated from the log answers the same.
  auto index = inbox::load_directory_index(*store);
  REQUIRE(index);
  auto restarted = inbox::spawn_directory(sys, journal, slack, notifications, std::move(*index));
  run();
  command read{verb::chat_messages, alice, chat, "", "", ""};
  CHECK(request<api_reply>(restarted, atoms::command::value, read).body == expected(false));
  self->send_exit(restarted, caf::exit_reason::user_shutdown);
  run();
}

TEST_CASE_METHOD(inbox_actors, "a thread keeps no messages and answers reads, Slack replies, edits and deletes from its stream") {
  auto chat = assigned_chat("");
  auto thread_id = id_of(cmd(verb::thread_create, alice, chat, "", {{"channel_id", "C1"}, {"text", "Refund?"}}));
  REQUIRE(cmd(verb::thread_post, alice, chat, thread_id, {{"text", "any news?"}}).status == 201);
  caller slack_bot{"slack", "Slack", role::bot, false};
  auto reply = [&](verb what, std::string ts, std::string text) {
    return cmd(what, slack_bot, chat, thread_id,
               {{"slack_ts", ts}, {"user_id", "U1"}, {"user_name", "Erin"}, {"text", text}});
  };
  REQUIRE(reply(verb::slack_reply, "1800000000.000300", "later one").status == 201);
  REQUIRE(reply(verb::slack_reply, "1800000000.000200", "earlier one").status == 201);
  CHECK(reply(verb::slack_reply, "1800000000.000200", "earlier one").status == 200);  // once per Slack ts
  REQUIRE(reply(verb::slack_edit, "1800000000.000300", "later one, edited").status == 200);
  CHECK(reply(verb::slack_edit, "1800000000.000300", "later one, edited").status == 200);  // the same edit again
  REQUIRE(reply(verb::slack_delete, "1800000000.000200", "").status == 200);
  CHECK(reply(verb::slack_delete, "1800000000.000200", "").status == 200);  // nothing left to change
  CHECK(reply(verb::slack_edit, "1800000000.000999", "x").status == 404);

  // Every message of the stream, in Slack's order, as the events left it.
  auto messages_of = [](const api_reply& r) { return json::parse(r.body).as_object().at("messages").as_array(); };
  auto events = store->read_stream("thread-" + thread_id).value();
  auto whole = thread_from_events(events);
  REQUIRE(whole.messages.size() == 4);
  CHECK(whole.unread == 2);
  auto check_answer = [&](const api_reply& r) {
    REQUIRE(r.status == 200);
    auto list = messages_of(r);
    REQUIRE(list.size() == whole.messages.size());
    for (size_t i = 0; i < list.size(); ++i) {
      auto& m = list[i].as_object();
      CHECK(m.at("id").as_string() == whole.messages[i].id);
      CHECK(m.at("direction").as_string() == whole.messages[i].direction);
      CHECK(m.at("text").as_string() == whole.messages[i].text);
      CHECK(m.contains("deleted") == whole.messages[i].deleted);
      CHECK(m.contains("edited_at") == !whole.messages[i].edited_at.empty());
    }
  };
  auto as_admin = cmd(verb::thread_messages, admin, chat, thread_id);
  check_answer(as_admin);
  CHECK(messages_of(as_admin)[2].as_object().at("text").as_string() == "");  // deleted: a tombstone
  CHECK(messages_of(as_admin)[3].as_object().at("text").as_string() == "later one, edited");
  CHECK(json::parse(cmd(verb::thread_get, admin, chat, thread_id).body).as_object().at("unread").as_int64() == 2);
  // The agent reading clears the unread count (an event); the answer is the same.
  auto as_alice = cmd(verb::thread_messages, alice, chat, thread_id);
  CHECK(as_alice.body == as_admin.body);
  CHECK(json::parse(cmd(verb::thread_get, admin, chat, thread_id).body).as_object().at("unread").as_int64() == 0);
  CHECK(store->read_stream("thread-" + thread_id).value().back().type == "thread_read");

  // A thread activated from the log answers the same, and still knows its replies.
  auto index = inbox::load_directory_index(*store);
  REQUIRE(index);
  auto restarted = inbox::spawn_directory(sys, journal, slack, notifications, std::move(*index));
  run();
  command read{verb::thread_messages, admin, chat, thread_id, "", ""};
  CHECK(request<api_reply>(restarted, atoms::command::value, read).body == as_admin.body);
  command again{verb::slack_reply, slack_bot, chat, thread_id,
                json::serialize(json::object{{"slack_ts", "1800000000.000300"}, {"text", "later one"}}), ""};
  CHECK(request<api_reply>(restarted, atoms::command::value, again).status == 200);
  self->send_exit(restarted, caf::exit_reason::user_shutdown);
  run();
}
