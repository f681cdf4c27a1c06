#pragma once
// Requests between the inbox actors and the journal carry no timeout
// (caf::infinite): each timed request puts an entry in CAF's clock, and at
// thousands of requests per second those entries cost more than the work.
// The HTTP front keeps the one deadline a caller waits for.
//
// How an inbox actor makes a change: it computes the answer the change will
// give, appends the change's events with that answer as the idempotency
// record, and only when the journal says the events are durable does it
// apply them and answer. `await` keeps the actor from taking its next
// command before then, so each actor's state always matches its stream.

#include <chrono>

#include "backline/inbox.hpp"

namespace backline::detail {

inline std::string encode_reply(const api_reply& r) { return std::to_string(r.status) + "\n" + r.body; }

inline api_reply decode_reply(const std::string& stored) {
  auto nl = stored.find('\n');
  if (nl == std::string::npos)
    return error_reply(500, "corrupt", "a stored idempotent answer is unreadable");
  return {std::atoi(stored.substr(0, nl).c_str()), stored.substr(nl + 1)};
}

inline std::string scoped_key(const caller& who, const std::string& key) {
  return key.empty() ? std::string{} : who.id + "|" + key;
}

inline api_reply storage_error(const reply_status& s) {
  if (s.code == errc::conflict)
    return error_reply(409, "conflict", "the record changed meanwhile; retry: " + s.message);
  if (s.code == errc::invalid_argument)
    return error_reply(400, "invalid_request", s.message);
  if (s.code == errc::busy)
    return error_reply(503, "overloaded", s.message);
  if (s.code == errc::no_space)
    return error_reply(503, "storage_full", "the disk is full, the change was not stored: " + s.message);
  return error_reply(503, "unavailable", "the event log could not store the change: " + s.message);
}

/// Appends `req`; on durable success calls on_durable() and answers `reply`;
/// on a duplicate key answers the stored first answer; on failure an error.
template <class Self, class OnDurable>
void persist(Self self, const journal_actor& journal, append_request req, const api_reply& reply,
             caf::typed_response_promise<api_reply> rp, OnDurable on_durable) {
  req.idempotency_result = encode_reply(reply);
  self->request(journal, caf::infinite, atoms::append::value, std::move(req))
    .await(
      [rp, reply, on_durable](append_reply& r) mutable {
        if (!r.status.ok()) {
          rp.deliver(storage_error(r.status));
        } else if (r.value.duplicate) {
          rp.deliver(decode_reply(r.value.stored_result));
        } else {
          on_durable(r.value);
          rp.deliver(reply);
        }
      },
      [rp](caf::error&) mutable {
        rp.deliver(error_reply(503, "unavailable", "the event log did not answer in time"));
      });
}

/// Reads `stream` up to `version` (what the actor's state holds, not an
/// event still on its way to being applied) and calls f(rp, events); answers
/// rp 503 when the read fails, naming `what` could not be read. `hold`: the
/// actor takes no other command meanwhile (await), else it goes on (then).
template <class Self, class F>
void read_up_to(Self self, const journal_actor& journal, std::string stream, uint64_t version, bool hold,
                caf::typed_response_promise<api_reply> rp, std::string what, F f) {
  auto handle = self->request(journal, caf::infinite, atoms::read_strm::value, std::move(stream), uint64_t{1}, version);
  auto on_read = [rp, what, f](read_reply& r) mutable {
    if (!r.status.ok())
      rp.deliver(error_reply(503, "unavailable", what + " could not be read: " + r.status.message));
    else
      f(rp, r.events);
  };
  auto on_error = [rp](caf::error&) mutable { rp.deliver(error_reply(503, "unavailable", "the journal did not answer")); };
  if (hold)
    handle.await(on_read, on_error);
  else
    handle.then(on_read, on_error);
}

/// One event for a stream, stamped with the time now so the actor can answer with it.
inline append_request one_event(std::string stream, expected_version expected, std::string type, std::string actor,
                                 const boost::json::object& payload, std::string idempotency_key) {
  append_request r;
  r.stream = std::move(stream);
  r.expected = expected;
  r.events.push_back(new_event{std::move(type), std::move(actor), boost::json::serialize(payload), now_rfc3339()});
  r.idempotency_key = std::move(idempotency_key);
  return r;
}

/// The event record an append_request's single event becomes once stored.
inline event_record as_record(const append_request& req, const append_result& r) {
  event_record e;
  e.stream = req.stream;
  e.seq = r.last_seq;
  e.position = r.first_position;
  e.type = req.events.front().type;
  e.actor = req.events.front().actor;
  e.payload = req.events.front().payload;
  e.time = req.events.front().time;
  return e;
}

/// Parses a body the HTTP front already validated as a JSON object.
inline boost::json::object body_of(const command& cmd) {
  boost::system::error_code ec;
  auto v = boost::json::parse(cmd.body, ec);
  if (ec || !v.is_object())
    return {};
  return std::move(v.as_object());
}

/// The expected version for an actor that knows its stream's head (0: new stream).
inline expected_version at_head(uint64_t head) {
  return head == 0 ? expected_version::no_stream() : expected_version::exact(head);
}

inline std::string field(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string())
    return std::string(v->as_string());
  return {};
}

inline api_reply rule_error(const status& s) {
  return error_reply(http_status_of(s.code()), to_string(s.code()), s.message());
}

/// The rule a thread's get, messages, post or done answers to: the writes
/// (post, done) need may_work_threads, the reads may_read_threads. Checked by
/// the chat, or by the directory when it sends the command straight to the thread.
inline status may_run_thread_command(const caller& who, verb what, chat_access chat) {
  const bool write = what == verb::thread_post || what == verb::thread_done;
  return write ? may_work_threads(who, chat) : may_read_threads(who, chat);
}

} // namespace backline::detail
