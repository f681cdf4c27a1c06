// `backline audit replay` and the admin audit routes: events as an auditor
// reads them (who did what, when, to which chat or thread), and the
// timelines of a chat, a thread, an agent or a time range.

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include "backline/audit.hpp"
#include "backline/domain.hpp"

namespace json = boost::json;

namespace backline::audit {
namespace {

std::string str(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string())
    return std::string(v->as_string());
  return {};
}

/// Copies the named fields that are present.
json::object pick(const json::object& o, std::initializer_list<std::string_view> keys) {
  json::object out;
  for (auto k : keys)
    if (auto* v = o.if_contains(k))
      out[k] = *v;
  return out;
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string files_note(const json::object& p) {
  if (auto* f = p.if_contains("files"); f && f->is_array() && !f->as_array().empty())
    return " (" + std::to_string(f->as_array().size()) + (f->as_array().size() == 1 ? " file)" : " files)");
  return {};
}

} // namespace

timeline_entry describe_event(const event_record& e) {
  timeline_entry t;
  t.position = e.position;
  t.time = e.time;
  t.stream = e.stream;
  t.seq = e.seq;
  t.type = e.type;
  t.actor = e.actor;
  if (e.stream.rfind("chat-", 0) == 0) {
    t.chat_id = e.stream.substr(5);
  } else if (e.stream.rfind("thread-", 0) == 0) {
    t.thread_id = e.stream.substr(7);
    t.chat_id = chat_of_thread(t.thread_id);
  }
  boost::system::error_code ec;
  auto parsed = json::parse(e.payload, ec);
  const json::object p = !ec && parsed.is_object() ? parsed.as_object() : json::object{};
  const auto& type = e.type;
  if (type == "user_created") {
    t.details = pick(p, {"id", "name", "role", "inbox_access"});  // never the token's hash
    auto* ia = p.if_contains("inbox_access");
    t.summary = "created user " + str(p, "id") + " (" + str(p, "name") + "), role " + str(p, "role")
                + (ia && ia->is_bool() && ia->as_bool() ? ", with inbox access" : "");
  } else if (type == "chat_created") {
    t.details = pick(p, {"id", "customer_id", "customer_name", "previous_chat_id"});
    t.summary = "chat " + str(p, "id") + " created for customer " + str(p, "customer_name") + " ("
                + str(p, "customer_id") + ")";
    if (!str(p, "previous_chat_id").empty())
      t.summary += "; it reopens chat " + str(p, "previous_chat_id");
  } else if (type == "chat_message_added") {
    t.details = pick(p, {"id", "kind", "author", "text"});
    const auto kind = str(p, "kind");
    t.summary = (kind == "customer" ? "customer " + str(p, "author")
                 : kind == "agent"  ? "agent " + str(p, "author")
                 : kind == "bot"    ? std::string("the bot")
                                    : kind + " " + str(p, "author"))
                + " wrote in the chat: " + quoted(str(p, "text"));
  } else if (type == "chat_assigned" || type == "chat_transferred") {
    t.details = pick(p, {"agent_id", "from"});
    const auto from = str(p, "from");
    t.summary = std::string(type == "chat_assigned" ? "chat assigned to " : "chat transferred to ")
                + str(p, "agent_id") + (from.empty() ? "" : " (from " + from + ")");
  } else if (type == "chat_resolved") {
    t.summary = "chat resolved";
  } else if (type == "chat_reopened") {
    t.details = pick(p, {"successor_chat_id"});
    t.summary = "chat reopened as chat " + str(p, "successor_chat_id");
  } else if (type == "thread_opened") {
    json::object thread;
    if (auto* th = p.if_contains("thread"); th && th->is_object())
      thread = th->as_object();
    t.details = pick(p, {"thread_id", "note_id", "note"});
    t.details["channel_id"] = str(thread, "channel_id");
    t.details["title"] = str(thread, "title");
    t.thread_id = str(p, "thread_id");
    t.summary = "internal thread " + str(p, "thread_id") + " opened in Slack channel " + str(thread, "channel_id")
                + ": " + quoted(str(thread, "title"));
  } else if (type == "thread_created") {
    t.details = pick(p, {"id", "chat_id", "channel_id", "created_by", "created_by_name", "title", "message_id", "text",
                         "mentions", "files"});
    t.summary = "thread created in Slack channel " + str(p, "channel_id") + " by " + str(p, "created_by_name") + " ("
                + str(p, "created_by") + "); message " + str(p, "message_id") + " for Slack: "
                + quoted(str(p, "text")) + files_note(p);
  } else if (type == "thread_message_sent") {
    t.details = pick(p, {"id", "author_id", "author_name", "text", "mentions", "files"});
    t.summary = str(p, "author_name") + " (" + str(p, "author_id") + ") wrote to Slack, message " + str(p, "id")
                + ": " + quoted(str(p, "text")) + files_note(p);
  } else if (type == "slack_reply_received") {
    t.details = pick(p, {"id", "slack_ts", "author_id", "author_name", "text", "slack_text", "late", "files"});
    auto* late = p.if_contains("late");
    t.summary = "reply from Slack by " + str(p, "author_name") + " (" + str(p, "author_id") + "), ts "
                + str(p, "slack_ts") + ": " + quoted(str(p, "text")) + files_note(p)
                + (late && late->is_bool() && late->as_bool() ? " (after the thread was done)" : "");
  } else if (type == "slack_delivered") {
    t.details = pick(p, {"message_id", "slack_ts"});
    t.summary = "message " + str(p, "message_id") + " delivered to Slack, ts " + str(p, "slack_ts");
  } else if (type == "slack_delivery_failed") {
    t.details = pick(p, {"message_id", "reason"});
    t.summary = "delivery of message " + str(p, "message_id") + " to Slack failed: " + str(p, "reason");
  } else if (type == "slack_reply_edited") {
    t.details = pick(p, {"slack_ts", "text", "slack_text"});
    t.summary = "Slack reply " + str(p, "slack_ts") + " edited in Slack: " + quoted(str(p, "text"));
  } else if (type == "slack_reply_deleted") {
    t.details = pick(p, {"slack_ts"});
    t.summary = "Slack reply " + str(p, "slack_ts") + " deleted in Slack";
  } else if (type == "thread_read") {
    t.summary = "thread read by " + e.actor + ": its unread count cleared";
  } else if (type == "thread_done") {
    t.details = pick(p, {"closing_id", "closing_author", "closing_text"});
    t.summary = "thread marked done by " + (str(p, "closing_author").empty() ? e.actor : str(p, "closing_author"))
                + " (" + e.actor + "): read-only from now on";
  } else {
    // An event type this version does not describe: shown as recorded.
    if (!ec && parsed.is_object())
      t.details = p;
    else
      t.details["payload"] = e.payload;
    t.summary = type;
  }
  return t;
}

std::string timeline_text(const timeline_entry& t) {
  std::string subject = !t.thread_id.empty() ? "thread " + t.thread_id
                        : !t.chat_id.empty() ? "chat " + t.chat_id
                                             : t.stream;
  std::string line = t.time + "  #" + std::to_string(t.position) + "  " + subject + "  by " + t.actor + "  "
                     + t.summary;
  // One event, one line: line breaks inside texts are shown escaped.
  std::string out;
  out.reserve(line.size());
  for (char c : line) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out.push_back(c);
  }
  return out;
}

json::object timeline_json(const timeline_entry& t) {
  json::object o;
  o["position"] = t.position;
  o["time"] = t.time;
  o["stream"] = t.stream;
  o["seq"] = t.seq;
  o["type"] = t.type;
  o["actor"] = t.actor;
  o["chat_id"] = t.chat_id.empty() ? json::value(nullptr) : json::value(t.chat_id);
  o["thread_id"] = t.thread_id.empty() ? json::value(nullptr) : json::value(t.thread_id);
  o["summary"] = t.summary;
  o["details"] = t.details;
  return o;
}

namespace {

/// A record read for a timeline must at least hash to what it says; the
/// whole chain is verify's work.
status check_own_hash(const event_record& e) {
  if (event_hash(e) == e.hash)
    return status::ok();
  return {errc::corrupt, "position " + std::to_string(e.position) + " (stream " + e.stream + " seq "
                           + std::to_string(e.seq)
                           + "): its stored hash does not match its contents: the event was altered after it was "
                             "written (backline audit verify checks the whole log)"};
}

/// Adds a stream's events to a timeline; the events read, for following links.
result<std::vector<event_record>> add_stream(const event_store& store, const std::string& stream,
                                             std::vector<timeline_entry>& out) {
  auto events = store.read_stream(stream);
  if (!events)
    return events.error();
  for (const auto& e : *events) {
    if (auto st = check_own_hash(e); !st)
      return st;
    out.push_back(describe_event(e));
  }
  return events;
}

void by_position(std::vector<timeline_entry>& entries) {
  std::sort(entries.begin(), entries.end(),
            [](const timeline_entry& a, const timeline_entry& b) { return a.position < b.position; });
}

/// A pass over the whole global log, keeping the events `keep` selects.
result<std::vector<timeline_entry>> scan_timeline(const event_store& store, const progress_fn& progress,
                                                  const std::function<bool(const event_record&)>& keep) {
  std::vector<timeline_entry> out;
  status failure;
  uint64_t seen = 0;
  const uint64_t total = store.head().position;
  log_scan_options opts;
  opts.threads = 2;
  auto st = scan_global_log(store, opts, [&](std::vector<indexed_record>& entries) {
    for (const auto& entry : entries) {
      const auto where = "position " + std::to_string(entry.position);
      if (!entry.problem.empty()) {
        failure = {errc::corrupt, entry.problem};
        return false;
      }
      if (!entry.found) {
        failure = {errc::corrupt, where + ": the global index points to stream " + entry.stream + " seq "
                                    + std::to_string(entry.seq) + ", which is not stored"};
        return false;
      }
      auto e = decode_event(entry.bytes);
      if (!e) {
        failure = {errc::corrupt, where + ": " + e.error().message()};
        return false;
      }
      if (keep(*e)) {
        if (auto own = check_own_hash(*e); !own) {
          failure = own;
          return false;
        }
        out.push_back(describe_event(*e));
      }
      ++seen;
    }
    if (progress)
      progress("replay", seen, total);
    return true;
  });
  if (!st)
    return st;
  if (!failure)
    return failure;
  return out;
}

bool two_digits(std::string_view s, size_t at, int min, int max, int& out) {
  if (at + 2 > s.size() || !std::isdigit(static_cast<unsigned char>(s[at]))
      || !std::isdigit(static_cast<unsigned char>(s[at + 1])))
    return false;
  out = (s[at] - '0') * 10 + (s[at + 1] - '0');
  return out >= min && out <= max;
}

} // namespace

result<std::vector<timeline_entry>> chat_timeline(const event_store& store, const std::string& chat_id) {
  std::vector<timeline_entry> out;
  std::vector<std::string> chats{chat_id};
  std::set<std::string> visited;
  for (size_t i = 0; i < chats.size(); ++i) {
    if (!visited.insert(chats[i]).second)
      continue;  // a link cycle cannot come from the server, but must not loop
    auto events = add_stream(store, "chat-" + chats[i], out);
    if (!events)
      return events.error();
    if (events->empty() && i == 0)
      return status{errc::not_found, "no chat " + chat_id + " in the log"};
    const chat_state c = chat_from_events(*events);
    for (const auto& thread_id : c.thread_ids)
      if (auto t = add_stream(store, "thread-" + thread_id, out); !t)
        return t.error();
    // The chats that reopened it, with their threads.
    chats.insert(chats.end(), c.successor_chat_ids.begin(), c.successor_chat_ids.end());
  }
  by_position(out);
  return out;
}

result<std::vector<timeline_entry>> thread_timeline(const event_store& store, const std::string& thread_id) {
  std::vector<timeline_entry> out;
  const auto chat_id = chat_of_thread(thread_id);
  if (!chat_id.empty()) {
    // The chat's event that opened the thread (with its internal note).
    auto chat_events = store.read_stream("chat-" + chat_id);
    if (!chat_events && chat_events.error().code() != errc::invalid_argument)
      return chat_events.error();
    if (chat_events)
      for (const auto& e : *chat_events)
        if (e.type == "thread_opened" && describe_event(e).thread_id == thread_id) {
          if (auto st = check_own_hash(e); !st)
            return st;
          out.push_back(describe_event(e));
        }
  }
  auto events = store.read_stream("thread-" + thread_id);
  if (!events && events.error().code() == errc::invalid_argument)
    return status{errc::not_found, "no thread " + thread_id + " in the log"};
  if (!events)
    return events.error();
  if (events->empty() && out.empty())
    return status{errc::not_found, "no thread " + thread_id + " in the log"};
  for (const auto& e : *events) {
    if (auto st = check_own_hash(e); !st)
      return st;
    out.push_back(describe_event(e));
  }
  by_position(out);
  return out;
}

result<std::vector<timeline_entry>> agent_timeline(const event_store& store, const std::string& agent_id,
                                                   const progress_fn& progress) {
  auto user = store.read_stream("user-" + agent_id);
  if (!user && user.error().code() != errc::invalid_argument)
    return user.error();
  if (!user || user->empty())
    return status{errc::not_found, "no user " + agent_id + " in the log"};
  return scan_timeline(store, progress, [&](const event_record& e) {
    if (e.actor == agent_id)
      return true;
    // What was done to them: chats assigned or transferred to or from them.
    if (e.type != "chat_assigned" && e.type != "chat_transferred")
      return false;
    const auto t = describe_event(e);
    return str(t.details, "agent_id") == agent_id || str(t.details, "from") == agent_id;
  });
}

result<std::vector<timeline_entry>> time_timeline(const event_store& store, const std::string& from,
                                                  const std::string& to, const progress_fn& progress) {
  if (from > to)
    return status{errc::invalid_argument, "the time range is inverted: from " + from + " is after to " + to};
  return scan_timeline(store, progress, [&](const event_record& e) { return e.time >= from && e.time <= to; });
}

std::optional<std::string> canonical_time(std::string_view s, bool end) {
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z'))
    s.remove_suffix(1);
  // YYYY-MM-DD
  if (s.size() < 10 || s[4] != '-' || s[7] != '-')
    return std::nullopt;
  int year = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      return std::nullopt;
    year = year * 10 + (s[i] - '0');
  }
  int month = 0, day = 0, hour = end ? 23 : 0, minute = end ? 59 : 0, second = end ? 59 : 0, milli = end ? 999 : 0;
  if (!two_digits(s, 5, 1, 12, month) || !two_digits(s, 8, 1, 31, day))
    return std::nullopt;
  if (s.size() > 10) {
    // THH:MM, then optionally :SS, then optionally .fraction
    if ((s[10] != 'T' && s[10] != 't') || s.size() < 16 || s[13] != ':')
      return std::nullopt;
    if (!two_digits(s, 11, 0, 23, hour) || !two_digits(s, 14, 0, 59, minute))
      return std::nullopt;
    if (s.size() > 16) {
      if (s[16] != ':' || !two_digits(s, 17, 0, 59, second))
        return std::nullopt;
      if (s.size() > 19) {
        if (s[19] != '.' || s.size() == 20)
          return std::nullopt;
        // Milliseconds: the first three digits, padded (with 9s for an end).
        std::string digits;
        for (size_t i = 20; i < s.size(); ++i) {
          if (!std::isdigit(static_cast<unsigned char>(s[i])))
            return std::nullopt;
          if (digits.size() < 3)
            digits.push_back(s[i]);
        }
        while (digits.size() < 3)
          digits.push_back(end ? '9' : '0');
        milli = std::stoi(digits);
      }
    }
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, month, day, hour, minute, second, milli);
  return std::string(buf);
}

} // namespace backline::audit
