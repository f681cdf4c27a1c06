// The directory: finds or activates the actor of a chat, creates chats, and
// keeps the chat index that serves the chat lists (My Chats, Active,
// Resolved). Chat actors report each change to it.
//
// A thread's commands go straight to its actor once its chat has activated
// it (and said so): the index holds what the thread rules look at (the
// chat's agent, resolved or not), so a post costs no stop at its chat. While
// an assign, transfer or resolve of the chat is on its way, its thread
// commands go through the chat as before, queued behind the change: the chat
// re-indexes before it answers, so once every change has answered the index
// is as the chat is, and no command is checked against an agent who has
// already lost the chat.

#include "actors/chat.hpp"
#include "actors/persist.hpp"

namespace json = boost::json;

namespace backline {
namespace {

struct directory_state {
  directory_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "directory";
  journal_actor journal;
  slack_port_actor slack;
  notifications_actor notifications;
  peers_pointer peers;  // what every chat and thread actor talks to, made once
  std::unordered_map<std::string, chat_index_entry> index;
  // The actors of the chats activated, by their index entry's id (its node
  // stays put), so an activated chat costs no copy of its id: memory per
  // activated chat counts at a million chats. Chats activated before they
  // are indexed (being created) are found by their id.
  std::unordered_map<const std::string*, chat_actor> chats;
  std::unordered_map<std::string, chat_actor> unindexed;
  std::unordered_map<std::string, thread_actor> threads;  // activated by their chats, by thread id
  std::unordered_map<std::string, uint32_t> changing;     // chats with access changes on their way, how many
  std::unordered_map<std::string, std::string> thread_by_slack;  // "channel|ts" -> thread id
  std::unordered_map<std::string, std::pair<std::string, std::string>> open_in_slack;  // for the poller
  poller_actor poller;  // none when replies come by events only
};

using directory_pointer = directory_actor::stateful_pointer<directory_state>;

bool plausible_chat_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && id.find_first_of("|/ ") == std::string::npos;
}

chat_actor chat_of(directory_pointer self, const std::string& id) {
  auto& st = self->state;
  auto entry = st.index.find(id);
  const std::string* key = entry == st.index.end() ? nullptr : &entry->first;
  if (key != nullptr)
    if (auto i = st.chats.find(key); i != st.chats.end())
      return i->second;
  if (auto i = st.unindexed.find(id); i != st.unindexed.end())
    return i->second;
  if (!st.peers)
    st.peers = std::make_shared<const inbox_peers>(
      inbox_peers{st.journal, caf::actor_cast<directory_actor>(self), st.slack, st.notifications});
  auto a = spawn_chat_actor(self, id, st.peers);
  if (key != nullptr)
    st.chats.emplace(key, a);
  else
    st.unindexed.emplace(id, a);
  return a;
}

api_reply list_chats(directory_pointer self, const caller& who, const std::string& view) {
  if (view != "mine" && view != "active" && view != "resolved")
    return error_reply(400, "invalid_field", "view: one of mine, active, resolved");
  if (view == "mine" && who.kind != role::agent)
    return error_reply(403, "forbidden", "My Chats is an agent's view");
  if (view == "active" && who.kind != role::admin)
    return error_reply(403, "forbidden", "Active Chats is an admin's view");
  std::vector<std::pair<std::string, const chat_index_entry*>> rows;
  for (const auto& [id, e] : self->state.index) {
    bool visible = false;
    if (view == "mine")
      visible = !e.resolved && e.agent_id == who.id;
    else if (view == "active")
      visible = !e.resolved;
    else
      visible = e.resolved && (who.kind != role::agent || e.agent_id == who.id);
    if (visible)
      rows.emplace_back(id, &e);
  }
  std::sort(rows.begin(), rows.end());
  json::array list;
  for (auto& [id, e] : rows)
    list.push_back(json::parse(e->json));
  return json_reply(200, json::object{{"chats", std::move(list)}});
}

// An assign, transfer or resolve: it goes to the chat, and until the chat
// answers, the chat's thread commands go through the chat too (see the top).
caf::result<api_reply> change_access(directory_pointer self, command& cmd) {
  auto rp = self->make_response_promise<api_reply>();
  auto chat = cmd.chat_id;
  ++self->state.changing[chat];
  auto done = [self, chat] {
    auto& changing = self->state.changing;
    if (auto i = changing.find(chat); i != changing.end() && --i->second == 0)
      changing.erase(i);
  };
  self->request(chat_of(self, chat), caf::infinite, atoms::command::value, std::move(cmd))
    .then(
      [rp, done](api_reply& r) mutable {
        done();
        rp.deliver(std::move(r));
      },
      [rp, done](caf::error&) mutable {
        done();
        rp.deliver(error_reply(503, "unavailable", "the chat did not answer"));
      });
  return rp;
}

// The thread's actor, if the command may go straight to it: a thread
// command, the thread activated by its chat, no access change on its way.
const thread_actor* direct_route(directory_pointer self, const command& cmd) {
  switch (cmd.what) {
    case verb::thread_get:
    case verb::thread_messages:
    case verb::thread_post:
    case verb::thread_done:
      break;
    default:
      return nullptr;
  }
  auto& st = self->state;
  auto t = st.threads.find(cmd.thread_id);
  if (t == st.threads.end() || st.changing.count(cmd.chat_id) || chat_of_thread(cmd.thread_id) != cmd.chat_id)
    return nullptr;
  return &t->second;
}

// Reopen: the resolved chat agrees and records which chat succeeds it, then
// that chat is created naming it as its predecessor; the old chat's threads
// stay with the old chat. The link is recorded under its own idempotency key:
// a retry after a crash between the two writes gets the first verdict back,
// with the same successor id, and creates that chat.
caf::result<api_reply> reopen(directory_pointer self, const command& cmd) {
  auto rp = self->make_response_promise<api_reply>();
  command link = cmd;
  link.body = json::serialize(json::object{{"successor_chat_id", inbox::new_id("ch-")}});
  if (!cmd.idempotency_key.empty())
    link.idempotency_key = cmd.idempotency_key + "#reopen-link";
  self->request(chat_of(self, cmd.chat_id), caf::infinite, atoms::command::value, link)
    .then(
      [self, rp, cmd](const api_reply& verdict) mutable {
        if (verdict.status != 200) {
          rp.deliver(verdict);
          return;
        }
        auto old = json::parse(verdict.body).as_object();
        auto* successor = old.if_contains("successor_chat_id");
        if (successor == nullptr || !successor->is_string()) {
          rp.deliver(error_reply(500, "corrupt", "chat " + cmd.chat_id + " answered a reopen without a successor"));
          return;
        }
        auto& customer = old.at("customer").as_object();
        command create;
        create.what = verb::chat_create;
        create.who = cmd.who;
        create.chat_id = std::string(successor->as_string());
        create.idempotency_key = cmd.idempotency_key;
        create.body = json::serialize(json::object{{"customer_id", customer.at("id")},
                                                   {"customer_name", customer.at("name")},
                                                   {"previous_chat_id", cmd.chat_id}});
        self->request(chat_of(self, create.chat_id), caf::infinite, atoms::command::value, create)
          .then([rp](const api_reply& r) mutable { rp.deliver(r); },
                [rp](caf::error&) mutable { rp.deliver(error_reply(503, "unavailable", "the new chat did not answer")); });
      },
      [rp](caf::error&) mutable { rp.deliver(error_reply(503, "unavailable", "the chat did not answer")); });
  return rp;
}

directory_actor::behavior_type directory_behavior(directory_pointer self, journal_actor journal,
                                                  slack_port_actor slack, notifications_actor notifications,
                                                  inbox::directory_index index) {
  self->state.journal = std::move(journal);
  self->state.slack = std::move(slack);
  self->state.notifications = std::move(notifications);
  self->state.index = std::move(index.chats);
  self->state.thread_by_slack = std::move(index.thread_by_slack);
  self->state.open_in_slack = std::move(index.open_in_slack);
  // Nothing acknowledged is lost: threads whose messages were not yet in
  // Slack when the server stopped are woken now, and deliver them.
  for (const auto& thread_id : index.threads_to_deliver) {
    command wake;
    wake.what = verb::thread_wake;
    wake.who = caller{"system", "backline", role::admin, false};
    wake.thread_id = thread_id;
    wake.chat_id = chat_of_thread(thread_id);
    self->request(chat_of(self, wake.chat_id), caf::infinite, atoms::command::value, wake)
      .then([](const api_reply&) {}, [](caf::error&) {});
  }
  return {
    [self](atoms::command, command& cmd) -> caf::result<api_reply> {
      auto entry = plausible_chat_id(cmd.chat_id) ? self->state.index.find(cmd.chat_id) : self->state.index.end();
      if (entry == self->state.index.end())
        return error_reply(404, "not_found", "no chat " + cmd.chat_id);
      if (auto* thread = direct_route(self, cmd)) {
        // The chat's own checks, on what the index holds of it.
        const chat_access access{entry->first, entry->second.agent_id, entry->second.resolved};
        if (auto s = detail::may_run_thread_command(cmd.who, cmd.what, access); !s)
          return detail::rule_error(s);
        return self->delegate(*thread, atoms::command::value, std::move(cmd));
      }
      switch (cmd.what) {
        case verb::chat_reopen:
          return reopen(self, cmd);
        case verb::chat_assign:
        case verb::chat_transfer:
        case verb::chat_resolve:
          return change_access(self, cmd);
        default:
          return self->delegate(chat_of(self, cmd.chat_id), atoms::command::value, std::move(cmd));
      }
    },
    [self](atoms::create, const caller& who, const std::string& body,
           const std::string& key) -> caf::result<api_reply> {
      if (who.kind != role::bot)
        return error_reply(403, "forbidden", "chats are created by the bot role");
      command cmd;
      cmd.what = verb::chat_create;
      cmd.who = who;
      cmd.chat_id = inbox::new_id("ch-");
      cmd.body = body;
      cmd.idempotency_key = key;
      return self->delegate(chat_of(self, cmd.chat_id), atoms::command::value, std::move(cmd));
    },
    [self](atoms::list, const caller& who, const std::string& view) { return list_chats(self, who, view); },
    [self](atoms::indexed, const std::string& id, bool resolved, const std::string& agent_id,
           const std::string& chat) {
      auto& st = self->state;
      auto entry = st.index.insert_or_assign(id, chat_index_entry{resolved, agent_id, chat}).first;
      if (auto i = st.unindexed.find(id); i != st.unindexed.end()) {  // a chat just created
        st.chats.emplace(&entry->first, std::move(i->second));
        st.unindexed.erase(i);
      }
    },
    [self](atoms::spawned, const std::string& thread, const thread_actor& actor) {
      self->state.threads.insert_or_assign(thread, actor);
    },
    [self](atoms::slack_tsix, const std::string& channel, const std::string& ts, const std::string& thread) {
      self->state.thread_by_slack[channel + "|" + ts] = thread;
      self->state.open_in_slack[thread] = {channel, ts};
      if (self->state.poller)
        self->send(self->state.poller, atoms::watch::value, thread, channel, ts);
    },
    [self](atoms::active, const std::string& thread) {
      if (self->state.poller && self->state.open_in_slack.count(thread))
        self->send(self->state.poller, atoms::active::value, thread);
    },
    [self](atoms::unwatch, const std::string& thread) {
      self->state.open_in_slack.erase(thread);
      if (self->state.poller)
        self->send(self->state.poller, atoms::unwatch::value, thread);
    },
    [self](atoms::route, const caf::actor& poller) {
      self->state.poller = caf::actor_cast<poller_actor>(poller);
      for (const auto& [thread, where] : self->state.open_in_slack)
        self->send(self->state.poller, atoms::watch::value, thread, where.first, where.second);
    },
    [self](atoms::resolve, const std::string& channel, const std::string& ts) {
      auto i = self->state.thread_by_slack.find(channel + "|" + ts);
      return i == self->state.thread_by_slack.end() ? std::string{} : i->second;
    },
  };
}

// The in-memory Slack port: records what would have been posted and gives
// each post a Slack-like ts. Tests read the record; issue 4 replaces it.
struct memory_port_state {
  memory_port_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "memory_slack_port";
  std::vector<outbound_post> sent;
  uint64_t next_ts = 1700000000;
};

slack_port_actor::behavior_type memory_port(slack_port_actor::stateful_pointer<memory_port_state> self) {
  return {
    [self](atoms::post, outbound_post& p) -> caf::result<reply_status, std::string> {
      self->state.sent.push_back(p);
      return {reply_status{}, std::to_string(self->state.next_ts++) + ".000100"};
    },
    [self](atoms::sent_log) { return self->state.sent; },
    [self](atoms::route, const std::string&) { return caf::actor_cast<slack_channel_actor>(self); },  // one record for all
    [](atoms::resolve, const std::vector<std::string>& user_ids) { return user_ids; },  // no workspace to ask
    [](atoms::list) -> caf::result<reply_status, std::string> {
      return {reply_status{}, std::string("[]")};  // no Slack app configured: no channels
    },
    [](atoms::mentions) -> caf::result<reply_status, std::string> {
      return {reply_status{}, std::string("[]")};  // no workspace: no user groups or users
    },
    [](atoms::health) -> caf::result<reply_status, uint64_t> { return {reply_status{}, uint64_t{0}}; },
    [](atoms::notify, const std::string&, uint64_t, bool) {},
  };
}

} // namespace

namespace inbox {

directory_actor spawn_directory(caf::actor_system& sys, journal_actor journal, slack_port_actor slack,
                                notifications_actor notifications, directory_index index) {
  return sys.spawn(directory_behavior, std::move(journal), std::move(slack), std::move(notifications),
                   std::move(index));
}

slack_port_actor spawn_memory_slack_port(caf::actor_system& sys) { return sys.spawn(memory_port); }

result<directory_index> load_directory_index(const event_store& store) {
  directory_index index;
  auto streams = store.list_streams("chat-");
  if (!streams)
    return streams.error();
  for (const auto& s : *streams) {
    auto events = store.read_stream(s);
    if (!events)
      return events.error();
    const chat_state c = chat_from_events(*events);
    if (!c.exists)
      continue;
    index.chats[c.id] = chat_index_entry{c.resolved, c.agent_id, json::serialize(chat_json(c))};
    for (const auto& thread_id : c.thread_ids) {
      auto thread_events = store.read_stream("thread-" + thread_id);
      if (!thread_events)
        return thread_events.error();
      const thread_state t = thread_from_events(*thread_events);
      if (!t.slack_ts.empty())
        index.thread_by_slack[t.channel_id + "|" + t.slack_ts] = t.id;
      if (!t.slack_ts.empty() && !t.done)
        index.open_in_slack[t.id] = {t.channel_id, t.slack_ts};
      if (has_pending_delivery(t))
        index.threads_to_deliver.push_back(t.id);
    }
  }
  return index;
}

} // namespace inbox
} // namespace backline
