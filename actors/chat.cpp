// The chat actor: the only writer of its chat-<id> stream, the parent of
// its threads' actors, and the gate that checks who may do what with them.

#include "actors/chat.hpp"

#include "actors/persist.hpp"
#include "actors/thread.hpp"

namespace json = boost::json;

namespace backline {
namespace {

struct chat_actor_state {
  chat_actor_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "chat";
  packed_chat chat;  // without its transcript (see apply)
  peers_pointer peers;
  std::vector<thread_actor> threads;  // by place in chat.thread_ids; none until activated
};

using chat_pointer = chat_actor::stateful_pointer<chat_actor_state>;

std::string chat_stream(const std::string& id) { return "chat-" + id; }

// The chat as the actor keeps it, unpacked for a command.
chat_state chat_of(chat_pointer self) { return self->state.chat.unpack(); }

// Applies one durable event of the chat's stream to the actor's state. An
// idle chat keeps everything but its transcript (packed_chat), so an
// activated chat costs the same memory however long its conversation; a
// transcript read reads the chat's stream (read_messages).
void apply(chat_pointer self, const event_record& e) {
  auto c = chat_of(self);
  apply_chat_event(c, e);
  self->state.chat = packed_chat(c);
}

void report_index(chat_pointer self) {
  auto c = chat_of(self);
  self->send(self->state.peers->directory, atoms::indexed::value, c.id, c.resolved, c.agent_id,
             json::serialize(chat_json(c)));
}

// The actor of one of the chat's threads (callers check has_thread first),
// activated on first use. `c`: the chat as the caller unpacked it.
thread_actor thread_of(chat_pointer self, const chat_state& c, const std::string& thread_id) {
  const auto& ids = c.thread_ids;
  auto i = static_cast<size_t>(std::find(ids.begin(), ids.end(), thread_id) - ids.begin());
  if (i == ids.size())
    return spawn_thread_actor(self, thread_id, self->state.peers);  // not the chat's: kept by no one
  auto& threads = self->state.threads;
  if (threads.size() < ids.size())
    threads.resize(ids.size());
  if (!threads[i]) {
    threads[i] = spawn_thread_actor(self, thread_id, self->state.peers);
    // From now on the directory sends the thread's commands to it directly.
    self->send(self->state.peers->directory, atoms::spawned::value, thread_id, threads[i]);
  }
  return threads[i];
}

// Appends one chat event for a command; once durable, applies it and answers.
caf::result<api_reply> record(chat_pointer self, const command& cmd, std::string type, json::object payload,
                              std::function<api_reply(const chat_state&)> answer,
                              std::function<void()> after = [] {}) {
  auto next = chat_of(self);  // the answer as the chat will be (the actor keeps no transcript to copy)
  auto req = detail::one_event(chat_stream(cmd.chat_id), detail::at_head(next.version), std::move(type), cmd.who.id,
                               payload, detail::scoped_key(cmd.who, cmd.idempotency_key));
  apply_chat_event(next, detail::as_record(req, append_result{0, next.version + 1, false, {}}));
  auto rp = self->make_response_promise<api_reply>();
  detail::persist(self, self->state.peers->journal, req, answer(next), rp, [self, req, after](const append_result& r) {
    apply(self, detail::as_record(req, r));
    report_index(self);
    after();
  });
  return rp;
}

api_reply chat_reply(int status, const chat_state& c) { return json_reply(status, chat_json(c)); }

api_reply messages_reply(const chat_state& c, const caller& who) {
  json::array list;
  for (const auto& m : c.messages) {
    if (m.kind == "internal_note" && who.kind == role::bot)
      continue;  // the bot sees the customer transcript only
    list.push_back(json::object{{"id", m.id},         {"kind", m.kind},
                                {"text", m.text},     {"author", m.author},
                                {"created_at", m.created_at}});
  }
  return json_reply(200, json::object{{"messages", std::move(list)}});
}

// The transcript as the chat's state has it: its stream read up to the
// chat's version, then the same answer as from a transcript kept in memory.
caf::result<api_reply> read_messages(chat_pointer self, const caller& who) {
  auto rp = self->make_response_promise<api_reply>();
  const auto c = chat_of(self);
  detail::read_up_to(self, self->state.peers->journal, chat_stream(c.id), c.version, false, rp,
                     "the chat's transcript",
                     [who](caf::typed_response_promise<api_reply>& rp, const std::vector<event_record>& events) {
                       rp.deliver(messages_reply(chat_from_events(events), who));
                     });
  return rp;
}

// Lists the chat's threads: asks each thread actor, answers when all did.
caf::result<api_reply> list_threads(chat_pointer self, const command& cmd) {
  auto rp = self->make_response_promise<api_reply>();
  const auto c = chat_of(self);
  const auto& ids = c.thread_ids;
  if (ids.empty()) {
    rp.deliver(json_reply(200, json::object{{"threads", json::array{}}}));
    return rp;
  }
  auto results = std::make_shared<std::vector<std::string>>(ids.size());
  auto remaining = std::make_shared<size_t>(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    command get = cmd;
    get.what = verb::thread_get;
    get.thread_id = ids[i];
    self->request(thread_of(self, c, ids[i]), caf::infinite, atoms::command::value, get)
      .then(
        [rp, results, remaining, i](const api_reply& r) mutable {
          (*results)[i] = r.status == 200 ? r.body : std::string{};
          if (--*remaining > 0)
            return;
          json::array list;
          for (auto& body : *results)
            if (!body.empty())
              list.push_back(json::parse(body));
          rp.deliver(json_reply(200, json::object{{"threads", std::move(list)}}));
        },
        [rp, remaining](caf::error&) mutable {
          if (*remaining > 0) {
            *remaining = 0;
            rp.deliver(error_reply(503, "unavailable", "a thread did not answer"));
          }
        });
  }
  return rp;
}

caf::result<api_reply> create_thread(chat_pointer self, const command& cmd) {
  const auto c = chat_of(self);
  auto body = detail::body_of(cmd);
  auto channel = detail::field(body, "channel_id");
  auto text = detail::field(body, "text");
  auto thread_id = thread_id_of(c.id, c.thread_ids.size() + 1);
  auto opening = thread_opening_text(c, cmd.who, text);
  auto title = text.substr(0, text.find('\n')).substr(0, 120);
  json::array mentions;
  for (const auto& m : extract_mentions(text))
    mentions.push_back(json::object{{"kind", m.kind}, {"handle", m.handle}});
  json::object thread{{"id", thread_id},          {"chat_id", c.id},       {"channel_id", channel},
                      {"created_by", cmd.who.id}, {"created_by_name", cmd.who.name},
                      {"title", title},           {"text", opening},       {"message_id", inbox::new_id("m-")},
                      {"mentions", mentions},
                      {"files", body.contains("files") ? body.at("files") : json::value(json::array{})}};
  json::object payload{{"thread_id", thread_id},
                       {"note_id", inbox::new_id("n-")},
                       {"note", "Internal thread " + thread_id + " opened in Slack channel " + channel + ": " + title},
                       {"thread", thread}};
  // The answer is the thread as it will be once created.
  thread_state planned;
  event_record created;
  created.type = "thread_created";
  created.seq = 1;
  created.payload = json::serialize(thread);
  created.time = now_rfc3339();
  apply_thread_event(planned, created);
  auto answer = json_reply(201, thread_json(planned));
  return record(self, cmd, "thread_opened", payload, [answer](const chat_state&) { return answer; },
                [self, thread_id] { thread_of(self, chat_of(self), thread_id); });
}

// A reply from Slack: the thread records it (once per Slack ts), then the
// chat's agent is told, if they have the chat open.
caf::result<api_reply> forward_slack_reply(chat_pointer self, const chat_state& c, const command& cmd) {
  if (!has_thread(c, cmd.thread_id))
    return error_reply(404, "not_found", "no thread " + cmd.thread_id);
  auto rp = self->make_response_promise<api_reply>();
  self->request(thread_of(self, c, cmd.thread_id), caf::infinite, atoms::command::value, cmd)
    .then(
      [self, rp, thread_id = cmd.thread_id](const api_reply& r) mutable {
        if (r.status == 201) {
          boost::system::error_code ec;
          auto v = json::parse(r.body, ec);
          uint64_t unread = 0;
          if (!ec && v.is_object()) {
            if (auto* u = v.as_object().if_contains("unread"); u && u->is_uint64())
              unread = u->as_uint64();
            else if (u && u->is_int64())
              unread = static_cast<uint64_t>(u->as_int64());
          }
          const auto c = chat_of(self);
          if (!c.agent_id.empty())
            self->send(self->state.peers->notifications, atoms::notify::value, c.agent_id, c.id, thread_id, unread);
        }
        rp.deliver(r);
      },
      [rp](caf::error&) mutable { rp.deliver(error_reply(503, "unavailable", "the thread did not answer")); });
  return rp;
}

caf::result<api_reply> on_command(chat_pointer self, command& cmd) {
  const auto c = chat_of(self);
  if (cmd.what == verb::chat_create) {
    if (c.exists)
      return error_reply(409, "conflict", "chat " + cmd.chat_id + " exists");
    auto body = detail::body_of(cmd);
    json::object payload{{"id", cmd.chat_id},
                         {"customer_id", detail::field(body, "customer_id")},
                         {"customer_name", detail::field(body, "customer_name")},
                         {"previous_chat_id", detail::field(body, "previous_chat_id")}};
    auto text = detail::field(body, "text");
    return record(self, cmd, "chat_created", payload, [](const chat_state& s) { return chat_reply(201, s); },
                  [self, cmd, text]() mutable {
                    if (text.empty())
                      return;
                    // The first customer message, if the bot gave one.
                    const auto c = chat_of(self);
                    json::object m{{"id", inbox::new_id("m-")}, {"kind", "customer"}, {"text", text},
                                   {"author", c.customer_id}};
                    auto req = detail::one_event(chat_stream(c.id), detail::at_head(c.version), "chat_message_added", cmd.who.id, m, "");
                    self->request(self->state.peers->journal, caf::infinite, atoms::append::value, req)
                      .await([self, req](append_reply& r) {
                               if (r.status.ok() && !r.value.duplicate)
                                 apply(self, detail::as_record(req, r.value));
                             },
                             [](caf::error&) {});
                  });
  }
  if (!c.exists)
    return error_reply(404, "not_found", "no chat " + cmd.chat_id);
  // Parsed only by the commands that read it: a thread's commands pass
  // through here on every post, and the thread parses its own.
  auto body = [&cmd] { return detail::body_of(cmd); };
  const auto& who = cmd.who;
  switch (cmd.what) {
    case verb::chat_get:
      if (auto s = may_read_chat(who, c); !s)
        return detail::rule_error(s);
      return chat_reply(200, c);
    case verb::chat_messages:
      if (auto s = may_read_chat(who, c); !s)
        return detail::rule_error(s);
      return read_messages(self, who);
    case verb::chat_assign:
    case verb::chat_transfer: {
      bool transfer = cmd.what == verb::chat_transfer;
      if (transfer && !(who.kind == role::admin || (who.kind == role::agent && c.agent_id == who.id)))
        return error_reply(403, "forbidden", "only the assigned agent or an admin transfers a chat");
      if (!transfer && who.kind == role::agent)
        return error_reply(403, "forbidden", "agents do not assign chats; transfer them");
      if (c.resolved)
        return error_reply(409, "chat_resolved", "chat " + c.id + " is resolved");
      auto agent = detail::field(body(), "agent_id");
      return record(self, cmd, transfer ? "chat_transferred" : "chat_assigned",
                    json::object{{"agent_id", agent}, {"from", c.agent_id}},
                    [](const chat_state& s) { return chat_reply(200, s); });
    }
    case verb::chat_resolve:
      if (!(who.kind == role::admin || who.kind == role::bot || (who.kind == role::agent && c.agent_id == who.id)))
        return error_reply(403, "forbidden", "chat " + c.id + " is not assigned to you");
      if (c.resolved)
        return error_reply(409, "chat_resolved", "chat " + c.id + " is already resolved");
      return record(self, cmd, "chat_resolved", {}, [](const chat_state& s) { return chat_reply(200, s); });
    case verb::chat_message_post: {
      if (who.kind == role::admin)
        return error_reply(403, "forbidden", "admins watch read-only");
      if (who.kind == role::agent && c.agent_id != who.id)
        return error_reply(403, "forbidden", "chat " + c.id + " is not assigned to you");
      if (c.resolved)
        return error_reply(409, "chat_resolved", "chat " + c.id + " is resolved");
      const auto fields = body();
      auto kind = who.kind == role::bot ? detail::field(fields, "from") : std::string("agent");
      json::object m{{"id", inbox::new_id("m-")}, {"kind", kind}, {"text", detail::field(fields, "text")},
                     {"author", kind == "customer" ? c.customer_id : who.id}};
      return record(self, cmd, "chat_message_added", m, [](const chat_state& s) {
        const auto& last = s.messages.back();
        return json_reply(201, json::object{{"id", last.id},     {"kind", last.kind},
                                            {"text", last.text}, {"author", last.author},
                                            {"created_at", last.created_at}});
      });
    }
    case verb::thread_list:
      if (auto s = may_read_threads(who, c); !s)
        return detail::rule_error(s);
      return list_threads(self, cmd);
    case verb::thread_create:
      if (auto s = may_work_threads(who, c); !s)
        return detail::rule_error(s);
      return create_thread(self, cmd);
    case verb::thread_get:
    case verb::thread_messages:
    case verb::thread_post:
    case verb::thread_done: {
      if (!has_thread(c, cmd.thread_id))
        return error_reply(404, "not_found", "no thread " + cmd.thread_id);
      if (auto s = detail::may_run_thread_command(who, cmd.what, access_of(c)); !s)
        return detail::rule_error(s);
      return self->delegate(thread_of(self, c, cmd.thread_id), atoms::command::value, std::move(cmd));
    }
    case verb::chat_reopen: {
      // The directory creates the successor; the old chat says whether it
      // may, and records the link first, so its history (and an audit
      // replay) leads to the successor without searching the whole log.
      if (who.kind != role::bot && who.kind != role::admin)
        return error_reply(403, "forbidden", "chats are reopened by the bot or an admin");
      if (!c.resolved)
        return error_reply(409, "chat_open", "chat " + c.id + " is not resolved");
      auto successor = detail::field(body(), "successor_chat_id");
      if (successor.empty())
        return error_reply(400, "invalid_request", "reopen needs the successor's id");
      return record(self, cmd, "chat_reopened", json::object{{"successor_chat_id", successor}},
                    [successor](const chat_state& s) {
                      auto verdict = chat_json(s);
                      verdict["successor_chat_id"] = successor;
                      return json_reply(200, verdict);
                    });
    }
    case verb::thread_wake:
      if (!has_thread(c, cmd.thread_id))
        return error_reply(404, "not_found", "no thread " + cmd.thread_id);
      thread_of(self, c, cmd.thread_id);
      return api_reply{204, ""};
    case verb::file_access:
      if (auto s = may_read_threads(who, c); !s)
        return detail::rule_error(s);
      return api_reply{204, ""};
    case verb::chat_focus:
    case verb::chat_unfocus:
      if (who.kind != role::agent)
        return error_reply(403, "forbidden", "only agents get notifications");
      if (auto s = may_read_chat(who, c); !s)
        return detail::rule_error(s);
      self->send(self->state.peers->notifications, atoms::focus::value, who.id, c.id, cmd.what == verb::chat_focus);
      return api_reply{204, ""};
    case verb::slack_reply:
      return forward_slack_reply(self, c, cmd);
    case verb::slack_edit:
    case verb::slack_delete:
      if (!has_thread(c, cmd.thread_id))
        return error_reply(404, "not_found", "no thread " + cmd.thread_id);
      return self->delegate(thread_of(self, c, cmd.thread_id), atoms::command::value, std::move(cmd));
    default:
      return error_reply(400, "invalid_request", "not a chat command");
  }
}

chat_actor::behavior_type chat_behavior(chat_pointer self, std::string id, peers_pointer peers) {
  self->state.peers = std::move(peers);
  chat_state unloaded;
  unloaded.id = id;
  self->state.chat = packed_chat(unloaded);
  // Activation: rebuild from the stream before taking any command.
  self->request(self->state.peers->journal, caf::infinite, atoms::read_strm::value, chat_stream(id), uint64_t{1},
                uint64_t{0})
    .await(
      [self, id](read_reply& r) {
        // What `backline audit rebuild` compares with the log replayed: the
        // same function over the same stream.
        auto c = chat_from_events(r.events);
        if (c.id.empty())
          c.id = id;
        self->state.chat = packed_chat(c);
      },
      [](caf::error&) {});
  return {
    [self](atoms::command, command& cmd) -> caf::result<api_reply> { return on_command(self, cmd); },
  };
}

} // namespace

chat_actor spawn_chat_actor(caf::local_actor* parent, const std::string& id, peers_pointer peers) {
  return parent->spawn<caf::linked>(chat_behavior, id, std::move(peers));
}

} // namespace backline
