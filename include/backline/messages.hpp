#pragma once
// Message types and atoms shared by backline's actors (CAF 0.17.6).
// Every type sent between actors is listed in the one type-ID block below
// and has a 0.17-style inspect() so CAF can print and copy it.

#include <caf/all.hpp>

#include "backline/domain.hpp"
#include "backline/event_store.hpp"

namespace backline {

/// A status as a message field (errc and text), for replies that can fail.
struct reply_status {
  errc code = errc::ok;
  std::string message;
  bool ok() const noexcept { return code == errc::ok; }
  static reply_status from(const status& s) { return {s.code(), s.message()}; }
};

/// The journal's answer to an append: the outcome and, on success, where.
struct append_reply {
  reply_status status;
  append_result value;
};

/// The journal's answer to a read.
struct read_reply {
  reply_status status;
  std::vector<event_record> events;
};

/// Counters the journal exposes for /metrics and benchmarks.
struct journal_stats {
  uint64_t batches = 0;          // batches written (each made durable by a sync)
  uint64_t syncs = 0;            // fsyncs of the write-ahead log, each covering every batch written before it
  uint64_t requests = 0;         // append requests answered
  uint64_t events = 0;           // events made durable
  uint64_t failed_requests = 0;  // answered with an error
  uint64_t largest_batch = 0;    // requests in the largest batch
  uint64_t write_micros = 0;     // time spent in synced writes, total
  std::vector<uint64_t> batch_size_buckets;  // requests per batch: ≤1,≤4,≤16,≤64,≤256,>256
  std::vector<uint64_t> write_micros_buckets; // write latency: ≤0.5,≤1,≤2,≤5,≤10,≤50 ms,>50
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reply_status& x) {
  return f(caf::meta::type_name("reply_status"), x.code, x.message);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_record& x) {
  return f(caf::meta::type_name("event_record"), x.position, x.stream, x.seq, x.type,
           x.time, x.actor, x.payload, x.prev_hash, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_event& x) {
  return f(caf::meta::type_name("new_event"), x.type, x.actor, x.payload, x.time);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, expected_version& x) {
  return f(caf::meta::type_name("expected_version"), x.what, x.version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_request& x) {
  return f(caf::meta::type_name("append_request"), x.stream, x.expected, x.events,
           x.idempotency_key, x.idempotency_result);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_result& x) {
  return f(caf::meta::type_name("append_result"), x.first_position, x.last_seq,
           x.duplicate, x.stored_result);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_reply& x) {
  return f(caf::meta::type_name("append_reply"), x.status, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_reply& x) {
  return f(caf::meta::type_name("read_reply"), x.status, x.events);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot& x) {
  return f(caf::meta::type_name("snapshot"), x.version, x.data);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, journal_stats& x) {
  return f(caf::meta::type_name("journal_stats"), x.batches, x.syncs, x.requests, x.events,
           x.failed_requests, x.largest_batch, x.write_micros, x.batch_size_buckets,
           x.write_micros_buckets);
}

/// What an HTTP request asks of the inbox actors.
enum class verb : uint8_t {
  chat_create, chat_get, chat_assign, chat_transfer, chat_resolve, chat_reopen, chat_messages, chat_message_post,
  thread_list, thread_create, thread_get, thread_messages, thread_post, thread_done,
  chat_focus, chat_unfocus,  // the agent opened / left the chat
  slack_reply,               // a reply from Slack arrived for a thread (body: slack_ts, user_id, user_name, text)
  file_access,               // may the caller read the files of this chat's threads?
  slack_edit,                // a reply was edited in Slack (body: slack_ts, text)
  slack_delete,              // a reply was deleted in Slack (body: slack_ts)
  thread_wake,               // activate the thread (at start-up: it has messages to deliver)
};

/// One command: who asks, what, on which chat/thread, with which validated
/// JSON body, under which idempotency key ("" for none; scoped by caller).
struct command {
  verb what = verb::chat_get;
  caller who;
  std::string chat_id;
  std::string thread_id;
  std::string body;
  std::string idempotency_key;
};

/// A message for the Slack side: post text (and files) into a thread.
struct outbound_post {
  std::string thread_id;
  std::string message_id;
  std::string channel_id;
  std::string thread_ts;  // "" for the thread's parent message
  std::string text;
  std::vector<mention> mentions;
  std::vector<file_ref> files;  // sent with the text as one Slack message
  std::string reaction;  // not a message: add this reaction (e.g. white_check_mark) to thread_ts
  bool recheck = false;  // it may already be in Slack (a retry after an unknown outcome, a restart):
                         // look for its outbox id in Slack's metadata before posting
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, caller& x) {
  return f(caf::meta::type_name("caller"), x.id, x.name, x.kind, x.inbox_access);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, api_reply& x) {
  return f(caf::meta::type_name("api_reply"), x.status, x.body);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command& x) {
  return f(caf::meta::type_name("command"), x.what, x.who, x.chat_id, x.thread_id, x.body, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mention& x) {
  return f(caf::meta::type_name("mention"), x.kind, x.handle);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_ref& x) {
  return f(caf::meta::type_name("file_ref"), x.id, x.name, x.mimetype, x.size);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbound_post& x) {
  return f(caf::meta::type_name("outbound_post"), x.thread_id, x.message_id, x.channel_id, x.thread_ts, x.text,
           x.mentions, x.files, x.reaction, x.recheck);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user& x) {
  return f(caf::meta::type_name("user"), x.id, x.name, x.kind, x.inbox_access, x.token_hash);
}

} // namespace backline

CAF_BEGIN_TYPE_ID_BLOCK(backline, caf::first_custom_type_id)
  CAF_ADD_ATOM(backline, backline::atoms, append, "append")
  CAF_ADD_ATOM(backline, backline::atoms, flush, "flush")
  CAF_ADD_ATOM(backline, backline::atoms, read_strm, "read_strm")
  CAF_ADD_ATOM(backline, backline::atoms, read_all, "read_all")
  CAF_ADD_ATOM(backline, backline::atoms, idem_get, "idem_get")
  CAF_ADD_ATOM(backline, backline::atoms, snap_put, "snap_put")
  CAF_ADD_ATOM(backline, backline::atoms, snap_get, "snap_get")
  CAF_ADD_ATOM(backline, backline::atoms, stats, "stats")
  CAF_ADD_ATOM(backline, backline::atoms, health, "health")
  CAF_ADD_ATOM(backline, backline::atoms, command, "command")
  CAF_ADD_ATOM(backline, backline::atoms, create, "create")
  CAF_ADD_ATOM(backline, backline::atoms, list, "list")
  CAF_ADD_ATOM(backline, backline::atoms, indexed, "indexed")
  CAF_ADD_ATOM(backline, backline::atoms, post, "post")
  CAF_ADD_ATOM(backline, backline::atoms, delivered, "delivered")
  CAF_ADD_ATOM(backline, backline::atoms, sent_log, "sent_log")
  CAF_ADD_ATOM(backline, backline::atoms, focus, "focus")
  CAF_ADD_ATOM(backline, backline::atoms, notify, "notify")
  CAF_ADD_ATOM(backline, backline::atoms, poll, "poll")
  CAF_ADD_ATOM(backline, backline::atoms, poll_end, "poll_end")
  CAF_ADD_ATOM(backline, backline::atoms, slack_tsix, "slack_tsix")
  CAF_ADD_ATOM(backline, backline::atoms, resolve, "resolve")
  CAF_ADD_ATOM(backline, backline::atoms, watch, "watch")
  CAF_ADD_ATOM(backline, backline::atoms, unwatch, "unwatch")
  CAF_ADD_ATOM(backline, backline::atoms, active, "active")
  CAF_ADD_ATOM(backline, backline::atoms, tick, "tick")
  CAF_ADD_ATOM(backline, backline::atoms, route, "route")
  CAF_ADD_ATOM(backline, backline::atoms, mentions, "mentions")
  CAF_ADD_ATOM(backline, backline::atoms, spawned, "spawned")
  CAF_ADD_TYPE_ID(backline, (backline::reply_status))
  CAF_ADD_TYPE_ID(backline, (backline::event_record))
  CAF_ADD_TYPE_ID(backline, (backline::new_event))
  CAF_ADD_TYPE_ID(backline, (backline::append_request))
  CAF_ADD_TYPE_ID(backline, (backline::append_result))
  CAF_ADD_TYPE_ID(backline, (backline::append_reply))
  CAF_ADD_TYPE_ID(backline, (backline::read_reply))
  CAF_ADD_TYPE_ID(backline, (backline::snapshot))
  CAF_ADD_TYPE_ID(backline, (backline::journal_stats))
  CAF_ADD_TYPE_ID(backline, (backline::caller))
  CAF_ADD_TYPE_ID(backline, (backline::api_reply))
  CAF_ADD_TYPE_ID(backline, (backline::command))
  CAF_ADD_TYPE_ID(backline, (backline::mention))
  CAF_ADD_TYPE_ID(backline, (backline::file_ref))
  CAF_ADD_TYPE_ID(backline, (backline::outbound_post))
  CAF_ADD_TYPE_ID(backline, (backline::user))
CAF_END_TYPE_ID_BLOCK(backline)
