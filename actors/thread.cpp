// The thread actor: the only writer of its thread-<id> stream. Its chat
// actor (or, once the chat has activated it, the directory) checks who may do
// what and forwards the command; the thread keeps its own rules (a done
// thread takes no writes) and hands outbound messages to its Slack channel's
// actor, which the Slack port names.

#include "actors/thread.hpp"

#include <chrono>

#include "actors/persist.hpp"
#include "slack/format.hpp"

namespace json = boost::json;

namespace backline {
namespace {

struct thread_actor_state {
  thread_actor_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "thread";
  thread_state thread;  // its messages only while a command or a delivery uses them (see settle)
  std::vector<std::string> slack_replies;  // the Slack ts of every reply the thread holds
  peers_pointer peers;
  slack_channel_actor channel;  // where its posts go, once the port said (see to_slack)
  std::chrono::steady_clock::time_point active_said{};  // when the poller last heard "a reply may follow"
};

using thread_pointer = thread_actor::stateful_pointer<thread_actor_state>;

std::string thread_stream(const std::string& id) { return "thread-" + id; }

// Tells the poller (through the directory) that a reply may follow, so it
// looks at this thread again soon (within its minimum interval, 5 s by
// default). Said at most once a second: a busy thread's every post would
// cost two messages and a pass over the poller's threads, and a second "soon"
// within the same second moves nothing.
void say_active(thread_pointer self) {
  auto now = std::chrono::steady_clock::now();
  if (now - self->state.active_said < std::chrono::seconds(1))
    return;
  self->state.active_said = now;
  self->send(self->state.peers->directory, atoms::active::value, self->state.thread.id);
}

// An idle thread keeps no messages: what reads them (the messages list,
// Slack edits and deletes) reads the thread's stream (with_messages), so an
// activated thread costs the same memory however long its conversation. The
// Slack ts of its replies stay, so a reply that comes again is known without
// a read. Called once what was just applied has been used (e.g. delivered).
void settle(thread_pointer self) {
  auto& st = self->state;
  for (const auto& m : st.thread.messages)
    if (m.direction == "from_slack")
      st.slack_replies.push_back(m.slack_ts);
  std::vector<thread_message>().swap(st.thread.messages);
}

// Applies one durable event of the thread's stream. Its version stays the
// highest applied: the reply to a quiet append (then) waits while a command's
// append is awaited, so the later event can be applied first, and the
// messages are read up to the version.
void apply(thread_pointer self, const event_record& e) {
  auto& t = self->state.thread;
  auto head = t.version;
  apply_thread_event(t, e);
  t.version = std::max(head, t.version);
}

// Runs f(rp, thread) on the thread as its stream has it, messages included:
// the stream read up to the thread's version (its state but the messages),
// taking no other command meanwhile. Answers 503 when the read fails.
template <class F>
caf::result<api_reply> with_messages(thread_pointer self, F f) {
  auto rp = self->make_response_promise<api_reply>();
  const auto& t = self->state.thread;
  detail::read_up_to(self, self->state.peers->journal, thread_stream(t.id), t.version, true, rp,
                     "the thread's messages",
                     [f](caf::typed_response_promise<api_reply>& rp, const std::vector<event_record>& events) {
                       f(rp, thread_from_events(events));
                     });
  return rp;
}

// Records an event no caller waits for (delivery reports, recovered
// creation), applied once durable so the state always equals the stream.
// It does not hold up the thread's commands (`then`, not `await`): the
// thread actor is the only writer of its stream, and the journal keeps one
// sender's appends in order, so its events chain without version checks.
void record_quietly(thread_pointer self, append_request req, std::function<void()> after = [] {},
                    bool hold_commands = false) {
  auto on_reply = [self, req, after](append_reply& r) {
    if (r.status.ok() && !r.value.duplicate) {
      auto& t = self->state.thread;
      bool had_parent = !t.slack_ts.empty();
      apply(self, detail::as_record(req, r.value));
      // The parent's ts is how Slack's replies find this thread.
      if (!had_parent && !t.slack_ts.empty()) {
        self->send(self->state.peers->directory, atoms::slack_tsix::value, t.channel_id, t.slack_ts, t.id);
        if (t.done)  // closed before Slack took its parent: nothing to poll
          self->send(self->state.peers->directory, atoms::unwatch::value, t.id);
      }
      after();
      settle(self);
    }
  };
  auto handle = self->request(self->state.peers->journal, caf::infinite, atoms::append::value, req);
  if (hold_commands)  // e.g. the thread's own creation: nothing may run before it
    handle.await(on_reply, [](caf::error&) {});
  else
    handle.then(on_reply, [](caf::error&) {});
}

// A post for Slack, and whether its outcome is recorded (a message's is; a
// check mark's is not).
struct slack_job {
  outbound_post post;
  bool record = true;
};

// Hands one post to `to` (the channel's actor, or the port) and records the
// outcome of a message: its Slack ts, or why it failed for good.
template <class Handle>
void post_one(thread_pointer self, const Handle& to, slack_job job) {
  auto id = job.post.message_id;
  auto handle = self->request(to, caf::infinite, atoms::post::value, std::move(job.post));
  if (!job.record) {
    handle.then([](const reply_status&, const std::string&) {}, [](caf::error&) {});
    return;
  }
  handle.then(
    [self, id](const reply_status& st, const std::string& ts) {
      auto& t = self->state.thread;
      if (!st.ok()) {
        // The Slack port retries what can succeed; a failure here is final
        // for this message (channel archived, app removed, refused).
        record_quietly(self, detail::one_event(thread_stream(t.id), expected_version::any(), "slack_delivery_failed",
                                               "slack", json::object{{"message_id", id}, {"reason", st.message}}, ""));
        return;
      }
      record_quietly(self, detail::one_event(thread_stream(t.id), expected_version::any(), "slack_delivered",
                                             "slack", json::object{{"message_id", id}, {"slack_ts", ts}}, ""));
    },
    [](caf::error&) {});
}

// Sends posts to the thread's Slack channel, in this order. The channel's
// actor is asked of the port at the first post after activation, and
// awaited, so no other post can overtake these meanwhile; later posts go to
// it directly, one hop fewer than through the port.
void to_slack(thread_pointer self, std::vector<slack_job> jobs) {
  if (jobs.empty())
    return;
  auto& st = self->state;
  if (st.channel) {
    for (auto& job : jobs)
      post_one(self, st.channel, std::move(job));
    return;
  }
  auto jobs_ptr = std::make_shared<std::vector<slack_job>>(std::move(jobs));
  self->request(st.peers->slack, caf::infinite, atoms::route::value, st.thread.channel_id)
    .await(
      [self, jobs_ptr](slack_channel_actor& channel) {
        self->state.channel = std::move(channel);
        for (auto& job : *jobs_ptr)
          post_one(self, self->state.channel, std::move(job));
      },
      [self, jobs_ptr](caf::error&) {
        for (auto& job : *jobs_ptr)  // the port answers them as it can
          post_one(self, self->state.peers->slack, std::move(job));
      });
}

// An outbound message as the Slack port takes it.
slack_job post_of(thread_pointer self, const thread_message& m, bool recheck = false) {
  const auto& t = self->state.thread;
  return {outbound_post{t.id, m.id, t.channel_id, t.slack_ts, m.text, m.mentions, m.files, "", recheck}, true};
}

// At activation: what was acknowledged but not yet marked sent goes to Slack
// again, checked first against what Slack already has (a crash may have come
// between Slack's answer and our record of it).
void deliver_pending(thread_pointer self, bool recheck) {
  std::vector<slack_job> jobs;
  for (const auto& m : self->state.thread.messages)
    if (m.direction == "to_slack" && m.delivery == "pending")
      jobs.push_back(post_of(self, m, recheck));
  to_slack(self, std::move(jobs));
}

// Hands an outbound message to Slack and records its Slack ts.
void deliver(thread_pointer self, const thread_message& m) {
  std::vector<slack_job> jobs;
  jobs.push_back(post_of(self, m));
  to_slack(self, std::move(jobs));
}

// How a Slack reply's ids become names: from the "names" the inbound path
// looked up ({"U1": "Erin"}); ids it does not name stay as they are.
slack::name_lookup names_of(const json::object& body) {
  auto names = std::make_shared<json::object>();
  if (auto* n = body.if_contains("names"); n && n->is_object())
    *names = n->as_object();
  slack::name_lookup lookup;
  lookup.user_display_name = [names](std::string_view id) -> std::optional<std::string> {
    if (auto* v = names->if_contains(id); v && v->is_string())
      return std::string(v->as_string());
    return std::nullopt;
  };
  lookup.usergroup_handle = lookup.user_display_name;  // group ids (S…) are in the same map
  return lookup;
}

// A message as readers get it. The agent's own messages are Slack mrkdwn
// (that is where they go): their `markdown` is rendered the way a Slack
// reply's is (bold, italic, strike, code, emoji shortcodes), so the inbox
// shows both directions alike.
json::object message_view(const thread_message& m) {
  auto o = thread_message_json(m);
  if (m.direction == "to_slack" && m.markdown.empty())
    o["markdown"] = slack::render_inbound(slack::escape_text(m.text), {}).markdown;
  return o;
}

api_reply messages_reply(const thread_state& t) {
  json::array list;
  for (const auto& m : t.messages)
    list.push_back(message_view(m));
  return json_reply(200, json::object{{"messages", std::move(list)}});
}

// Appends one event for a command; once durable, applies it, answers rp, and
// runs `after` (e.g. hand the message to Slack).
template <class After>
void record_into(thread_pointer self, caf::typed_response_promise<api_reply> rp, const command& cmd, std::string type,
                 json::object payload, std::function<api_reply(const thread_state&)> answer, After after) {
  auto& t = self->state.thread;
  auto req = detail::one_event(thread_stream(t.id), expected_version::any(), std::move(type), cmd.who.id, payload,
                               detail::scoped_key(cmd.who, cmd.idempotency_key));
  // The answer is computed on the state as it will be, so it can be stored
  // as the idempotent answer in the same write; the preview holds only what
  // the event adds to the thread, not its messages.
  auto next = preview_of(t);
  apply_thread_event(next, detail::as_record(req, append_result{0, t.version + 1, false, {}}));
  detail::persist(self, self->state.peers->journal, req, answer(next), rp, [self, req, after](const append_result& r) {
    apply(self, detail::as_record(req, r));
    after();
    settle(self);
  });
}

template <class After>
caf::result<api_reply> record(thread_pointer self, const command& cmd, std::string type, json::object payload,
                              std::function<api_reply(const thread_state&)> answer, After after) {
  auto rp = self->make_response_promise<api_reply>();
  record_into(self, rp, cmd, std::move(type), std::move(payload), std::move(answer), std::move(after));
  return rp;
}

caf::result<api_reply> on_command(thread_pointer self, command& cmd) {
  auto& t = self->state.thread;
  if (!t.exists)
    return error_reply(404, "not_found", "no thread " + cmd.thread_id);
  switch (cmd.what) {
    case verb::thread_get:
      return json_reply(200, thread_json(t));
    case verb::thread_messages:
      return with_messages(self, [self, cmd](caf::typed_response_promise<api_reply> rp, const thread_state& whole) {
        auto reply = messages_reply(whole);
        // The owning agent reading the thread clears its unread count.
        if (cmd.who.kind != role::agent || self->state.thread.unread == 0) {
          rp.deliver(reply);
          return;
        }
        record_into(self, rp, cmd, "thread_read", {}, [reply](const thread_state&) { return reply; }, [] {});
      });
    case verb::thread_post: {
      if (t.done)
        return error_reply(409, "thread_done", "thread " + t.id + " is done: it is read-only");
      auto body = detail::body_of(cmd);
      auto text = detail::field(body, "text");
      json::array mentions;
      for (const auto& m : extract_mentions(text))
        mentions.push_back(json::object{{"kind", m.kind}, {"handle", m.handle}});
      json::object payload{{"id", inbox::new_id("m-")}, {"text", text},
                           {"author_id", cmd.who.id},    {"author_name", cmd.who.name},
                           {"mentions", mentions},
                           {"files", body.contains("files") ? body.at("files") : json::value(json::array{})}};
      return record(
        self, cmd, "thread_message_sent", payload,
        [](const thread_state& s) { return json_reply(201, message_view(s.messages.back())); },
        [self] {
          deliver(self, self->state.thread.messages.back());
          say_active(self);
        });
    }
    case verb::thread_done:
      if (t.done)
        return error_reply(409, "thread_done", "thread " + t.id + " is already done");
      // Slack users see it closed: a closing reply in the thread, and a
      // check mark on the parent.
      return record(
        self, cmd, "thread_done",
        json::object{{"closing_id", inbox::new_id("m-")},
                     {"closing_text", ":white_check_mark: Marked as done by " + cmd.who.name + " - this thread is closed."},
                     {"closing_author", cmd.who.name}},
        [](const thread_state& s) { return json_reply(200, thread_json(s)); },
        [self] {
          auto& t = self->state.thread;
          self->send(self->state.peers->directory, atoms::unwatch::value, t.id);  // no more polling
          std::vector<slack_job> jobs;
          jobs.push_back(post_of(self, t.messages.back()));
          if (!t.slack_ts.empty())
            jobs.push_back({outbound_post{t.id, t.messages.back().id + "-reaction", t.channel_id, t.slack_ts, "", {},
                                          {}, "white_check_mark", false},
                            false});
          to_slack(self, std::move(jobs));
        });
    case verb::slack_reply: {
      // Each Slack message reaches the thread once, whichever way it came.
      auto body = detail::body_of(cmd);
      auto ts = detail::field(body, "slack_ts");
      const auto& seen = self->state.slack_replies;
      if (std::find(seen.begin(), seen.end(), ts) != seen.end())
        return json_reply(200, thread_json(t));
      // Slack's markup becomes readable: mentions, links, emoji, mrkdwn.
      auto shown = slack::render_inbound(detail::field(body, "text"), names_of(body));
      // Files that could not be brought over are said in the text, not dropped silently.
      if (auto* notes = body.if_contains("file_notes"); notes && notes->is_array())
        for (const auto& n : notes->as_array())
          if (n.is_string()) {
            auto line = std::string(shown.text.empty() ? "" : "\n") + "(" + std::string(n.as_string()) + ")";
            shown.text += line;
            shown.markdown += line;
          }
      json::object payload{{"id", inbox::new_id("m-")},
                           {"slack_ts", ts},
                           {"author_id", detail::field(body, "user_id")},
                           {"author_name", detail::field(body, "user_name")},
                           {"text", shown.text},
                           {"markdown", shown.markdown},
                           {"slack_text", detail::field(body, "text")},
                           {"late", t.done},
                           {"files", body.contains("files") && body.at("files").is_array() ? body.at("files")
                                                                                           : json::value(json::array{})}};
      return record(self, cmd, "slack_reply_received", payload,
                    [](const thread_state& s) { return json_reply(201, thread_json(s)); },
                    [self] {
                      if (!self->state.thread.done)  // more may follow: the poller looks again soon
                        say_active(self);
                    });
    }
    case verb::slack_edit:
    case verb::slack_delete: {
      // Edits and deletes in Slack reach the inbox copy (a tombstone for deletes).
      return with_messages(self, [self, cmd](caf::typed_response_promise<api_reply> rp, const thread_state& whole) {
        const auto& t = self->state.thread;
        auto body = detail::body_of(cmd);
        auto ts = detail::field(body, "slack_ts");
        const thread_message* target = nullptr;
        for (const auto& m : whole.messages)
          if (m.direction == "from_slack" && m.slack_ts == ts)
            target = &m;
        if (target == nullptr) {
          rp.deliver(error_reply(404, "not_found", "no Slack reply " + ts + " in thread " + t.id));
          return;
        }
        if (target->deleted) {
          rp.deliver(json_reply(200, thread_json(t)));  // nothing left to change
          return;
        }
        json::object payload{{"slack_ts", ts}};
        if (cmd.what == verb::slack_edit) {
          auto shown = slack::render_inbound(detail::field(body, "text"), names_of(body));
          if (shown.text == target->text) {
            rp.deliver(json_reply(200, thread_json(t)));  // the same edit again
            return;
          }
          payload["text"] = shown.text;
          payload["markdown"] = shown.markdown;
          payload["slack_text"] = detail::field(body, "text");
        }
        record_into(self, rp, cmd, cmd.what == verb::slack_edit ? "slack_reply_edited" : "slack_reply_deleted",
                    payload, [](const thread_state& s) { return json_reply(200, thread_json(s)); }, [] {});
      });
    }
    default:
      return error_reply(400, "invalid_request", "not a thread command");
  }
}

// A thread its chat recorded but whose own stream is empty (just opened, or
// a crash between the two writes) is created from the chat's thread_opened
// event, before it takes any command.
void create_from_chat(thread_pointer self) {
  const auto id = self->state.thread.id;
  self->request(self->state.peers->journal, caf::infinite, atoms::read_strm::value, "chat-" + chat_of_thread(id),
                uint64_t{1}, uint64_t{0})
    .await(
      [self, id](read_reply& r) {
        auto creation = thread_creation_of(r.events, id);
        if (!creation)
          return;  // the chat opened no such thread: it stays absent
        boost::system::error_code ec;
        auto payload = json::parse(*creation, ec);
        if (!ec && payload.is_object())
          record_quietly(self,
                         detail::one_event(thread_stream(id), expected_version::no_stream(), "thread_created", "system",
                                           payload.as_object(), ""),
                         [self] { deliver_pending(self, false); }, true);  // new: nothing can be in Slack yet
      },
      [](caf::error&) {});
}

thread_actor::behavior_type thread_behavior(thread_pointer self, std::string id, peers_pointer peers) {
  self->state.peers = std::move(peers);
  self->state.thread.id = id;
  // Activation: rebuild from the stream before taking any command.
  self->request(self->state.peers->journal, caf::infinite, atoms::read_strm::value, thread_stream(id),
                uint64_t{1}, uint64_t{0})
    .await(
      [self, id](read_reply& r) {
        // What `backline audit rebuild` compares with the log replayed: the
        // same function over the same stream.
        self->state.thread = thread_from_events(r.events);
        auto& t = self->state.thread;
        if (t.id.empty())
          t.id = id;
        if (t.exists)
          deliver_pending(self, true);  // what was not yet delivered goes to Slack now
        else
          create_from_chat(self);
        settle(self);
        self->state.slack_replies.shrink_to_fit();
      },
      [](caf::error&) {});
  return {
    [self](atoms::command, command& cmd) -> caf::result<api_reply> { return on_command(self, cmd); },
  };
}

} // namespace

thread_actor spawn_thread_actor(caf::local_actor* parent, const std::string& id, peers_pointer peers) {
  return parent->spawn<caf::linked>(thread_behavior, id, std::move(peers));
}

} // namespace backline
