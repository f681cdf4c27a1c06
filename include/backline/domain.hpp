#pragma once
// The inbox domain: users, chats and internal threads as plain state, the
// events that change them, and the pure rules that decide who may do what.
// Actors own the state; these functions are what they (and tests) call.

#include <boost/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backline/event_store.hpp"
#include "backline/rfc3339.hpp"
#include "backline/status.hpp"

namespace backline {

enum class role : uint8_t { admin, agent, bot };
const char* to_string(role r) noexcept;
std::optional<role> role_from(std::string_view text) noexcept;

struct user {
  std::string id;
  std::string name;
  role kind = role::agent;
  bool inbox_access = false;
  std::string token_hash;  // hex SHA-256 of the bearer token
};

/// An answer as the HTTP API gives it: status code and JSON body.
struct api_reply {
  int status = 200;
  std::string body;
};

/// The user a user_created event creates (nullopt for any other event, or a
/// payload that is not a JSON object).
std::optional<user> user_from_event(const event_record& e);

api_reply error_reply(int status, std::string_view code, std::string_view message);
api_reply json_reply(int status, const boost::json::value& body);

/// Who is calling (copied into every command so actors check it themselves).
struct caller {
  std::string id;
  std::string name;
  role kind = role::agent;
  bool inbox_access = false;
};
caller caller_of(const user& u);

// -- chats -------------------------------------------------------------------

struct chat_message {
  std::string id;
  std::string kind;    // customer | bot | agent | internal_note
  std::string text;
  std::string author;
  std::string created_at;
};

struct chat_state {
  std::string id;
  bool exists = false;
  bool resolved = false;
  std::string customer_id;
  std::string customer_name;
  std::string agent_id;          // "" when unassigned
  std::string previous_chat_id;  // "" when none
  std::string created_at;
  std::vector<chat_message> messages;
  std::vector<std::string> thread_ids;  // in the order they were opened
  std::vector<std::string> successor_chat_ids;  // chats that reopened this one, oldest first
  uint64_t version = 0;          // head seq of the chat's stream
};

/// Applies one event of a chat's stream (events it does not know are ignored).
void apply_chat_event(chat_state& chat, const event_record& e);
/// A chat as its actor loads it: every event of its stream applied in order
/// (its lists without spare capacity: an idle chat keeps what it holds only).
chat_state chat_from_events(const std::vector<event_record>& events);
/// Did the chat open this thread?
bool has_thread(const chat_state& chat, std::string_view thread_id);
/// The thread a chat's thread_opened event describes (its thread_created
/// payload, as JSON text), found in the chat's events; nullopt when the chat
/// opened no such thread. A thread whose own stream is empty (a crash between
/// the chat's write and the thread's) is created from it at activation.
std::optional<std::string> thread_creation_of(const std::vector<event_record>& chat_events,
                                              std::string_view thread_id);
boost::json::object chat_json(const chat_state& chat);

/// A chat as its idle actor keeps it: a chat_state without its transcript,
/// its strings (ids, customer, agent, time, thread and successor ids) in one
/// allocation instead of a std::string of 32 bytes each plus the heap for
/// the longer ones (memory per idle chat actor counts at a million chats).
/// unpack() gives back the chat it was made from, with no messages.
class packed_chat {
public:
  packed_chat() = default;
  explicit packed_chat(const chat_state& chat);
  chat_state unpack() const;

private:
  std::unique_ptr<char[]> data_;  // uint32 counts of thread and successor ids, every string's length, then their bytes
  uint64_t version_ = 0;
  bool exists_ = false;
  bool resolved_ = false;
};

// -- threads -----------------------------------------------------------------

struct file_ref {
  std::string id;
  std::string name;
  std::string mimetype;
  uint64_t size = 0;
};

struct mention {
  std::string kind;    // here | channel | name (a user group handle or a Slack user name)
  std::string handle;
};

/// The mentions in an agent's text: @here, @channel, @everyone, @<handle>.
/// An e-mail address is not a mention. Pure; tested on its own.
std::vector<mention> extract_mentions(std::string_view text);

struct thread_message {
  std::string id;
  std::string direction;  // to_slack | from_slack
  std::string text;
  std::string markdown;   // CommonMark rendering (Slack replies); "" means the text itself
  std::string author_id;
  std::string author_name;
  std::vector<file_ref> files;
  std::vector<mention> mentions;
  std::string delivery;   // pending | sent | failed (to_slack only)
  std::string delivery_error;  // why it failed
  std::string created_at;
  std::string slack_ts;
  bool late = false;      // a Slack reply that came after the thread was done
  std::string edited_at;  // when Slack's copy was edited
  bool deleted = false;   // deleted in Slack (kept as a tombstone)
};

struct thread_state {
  std::string id;
  std::string chat_id;
  bool exists = false;
  std::string channel_id;
  std::string created_by;
  std::string created_at;
  std::string title;
  bool done = false;
  uint64_t unread = 0;
  std::string slack_ts;
  std::vector<thread_message> messages;
  uint64_t version = 0;
};

/// Slack ts order ("1712345678.000200"): seconds and fraction each compared
/// as decimal numbers, never as floats or plain strings. (Inline: the Slack
/// code and its fuzzers use it without the rest of the domain.)
inline bool slack_ts_before(std::string_view a, std::string_view b) {
  auto split = [](std::string_view ts) {
    auto dot = ts.find('.');
    auto sec = ts.substr(0, dot);
    auto frac = dot == std::string_view::npos ? std::string_view{} : ts.substr(dot + 1);
    while (sec.size() > 1 && sec.front() == '0')
      sec.remove_prefix(1);
    return std::make_pair(sec, frac);
  };
  auto [as, af] = split(a);
  auto [bs, bf] = split(b);
  if (as.size() != bs.size())
    return as.size() < bs.size();
  if (as != bs)
    return as < bs;
  std::string fa(af), fb(bf);  // ".0002" == ".000200"
  auto n = std::max(fa.size(), fb.size());
  fa.resize(n, '0');
  fb.resize(n, '0');
  return fa < fb;
}


/// Thread ids are "<chat id>.t<n>": the chat owns the thread.
std::string thread_id_of(std::string_view chat_id, size_t n);
/// The chat a thread id belongs to ("" when it is not a thread id).
std::string chat_of_thread(std::string_view thread_id);

void apply_thread_event(thread_state& thread, const event_record& e);
/// A thread as its actor loads it: every event of its stream applied in order.
thread_state thread_from_events(const std::vector<event_record>& events);
/// Does the thread hold messages for Slack not yet delivered (its outbox)?
bool has_pending_delivery(const thread_state& thread);
/// The thread without its messages: what its actor applies a planned event
/// to when it needs the answer before the event is durable (copying every
/// message per command would make each command cost the thread's length).
thread_state preview_of(const thread_state& thread);
boost::json::object thread_json(const thread_state& thread);
boost::json::object thread_message_json(const thread_message& m);

/// The first Slack message of a thread: the chat's details, the agent's id
/// and name, then the query.
std::string thread_opening_text(const chat_state& chat, const caller& agent, std::string_view query);

// -- rules -------------------------------------------------------------------

/// What the thread rules look at in a chat: whom it is assigned to and
/// whether it is resolved. The directory keeps these for every chat, so it
/// checks a thread's command without asking the chat (see actors/directory.cpp).
struct chat_access {
  std::string_view id;
  std::string_view agent_id;
  bool resolved = false;
};
inline chat_access access_of(const chat_state& chat) { return {chat.id, chat.agent_id, chat.resolved}; }

/// May the caller work this chat's threads (create, answer, close)?
/// Only an agent with inbox access to whom the chat is assigned.
status may_work_threads(const caller& who, chat_access chat);
inline status may_work_threads(const caller& who, const chat_state& chat) {
  return may_work_threads(who, access_of(chat));
}
/// May the caller read this chat's threads? Its agent (with inbox access), or an admin.
status may_read_threads(const caller& who, chat_access chat);
inline status may_read_threads(const caller& who, const chat_state& chat) {
  return may_read_threads(who, access_of(chat));
}
/// May the caller read the chat itself?
status may_read_chat(const caller& who, const chat_state& chat);

/// The HTTP status for a rule's error code.
int http_status_of(errc code);

} // namespace backline
