#include "backline/domain.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace json = boost::json;

namespace backline {
namespace {

std::string str(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string())
    return std::string(v->as_string());
  return {};
}

json::object parse_payload(const event_record& e) {
  boost::system::error_code ec;
  auto v = json::parse(e.payload, ec);
  if (ec || !v.is_object())
    return {};
  return std::move(v.as_object());
}

} // namespace

const char* to_string(role r) noexcept {
  switch (r) {
    case role::admin: return "admin";
    case role::agent: return "agent";
    case role::bot: return "bot";
  }
  return "agent";
}

std::optional<role> role_from(std::string_view text) noexcept {
  if (text == "admin")
    return role::admin;
  if (text == "agent")
    return role::agent;
  if (text == "bot")
    return role::bot;
  return std::nullopt;
}

api_reply json_reply(int status, const json::value& body) { return {status, json::serialize(body)}; }

api_reply error_reply(int status, std::string_view code, std::string_view message) {
  return json_reply(status, json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

caller caller_of(const user& u) { return {u.id, u.name, u.kind, u.inbox_access}; }

std::optional<user> user_from_event(const event_record& e) {
  if (e.type != "user_created")
    return std::nullopt;
  boost::system::error_code ec;
  auto v = json::parse(e.payload, ec);
  if (ec || !v.is_object())
    return std::nullopt;
  const auto& o = v.as_object();
  user u{str(o, "id"), str(o, "name"), role_from(str(o, "role")).value_or(role::agent), false, str(o, "token_hash")};
  if (auto* ia = o.if_contains("inbox_access"); ia && ia->is_bool())
    u.inbox_access = ia->as_bool();
  return u;
}

int http_status_of(errc code) {
  switch (code) {
    case errc::ok: return 200;
    case errc::invalid_argument: return 400;
    case errc::unauthenticated: return 401;
    case errc::forbidden: return 403;
    case errc::not_found: return 404;
    case errc::conflict: return 409;
    case errc::busy: return 503;
    case errc::timeout: return 503;
    case errc::no_space: return 503;
    default: return 500;
  }
}

// -- chats -------------------------------------------------------------------

void apply_chat_event(chat_state& chat, const event_record& e) {
  auto p = parse_payload(e);
  chat.version = e.seq;
  if (e.type == "chat_created") {
    chat.exists = true;
    chat.id = str(p, "id");
    chat.customer_id = str(p, "customer_id");
    chat.customer_name = str(p, "customer_name");
    chat.previous_chat_id = str(p, "previous_chat_id");
    chat.created_at = e.time;
  } else if (e.type == "chat_message_added") {
    chat.messages.push_back({str(p, "id"), str(p, "kind"), str(p, "text"), str(p, "author"), e.time});
  } else if (e.type == "chat_assigned" || e.type == "chat_transferred") {
    chat.agent_id = str(p, "agent_id");
  } else if (e.type == "thread_opened") {
    chat.thread_ids.push_back(str(p, "thread_id"));
    chat.messages.push_back({str(p, "note_id"), "internal_note", str(p, "note"), e.actor, e.time});
  } else if (e.type == "chat_resolved") {
    chat.resolved = true;
  } else if (e.type == "chat_reopened") {
    chat.successor_chat_ids.push_back(str(p, "successor_chat_id"));
  }
}

chat_state chat_from_events(const std::vector<event_record>& events) {
  chat_state c;
  for (const auto& e : events)
    apply_chat_event(c, e);
  c.messages.shrink_to_fit();
  c.thread_ids.shrink_to_fit();
  c.successor_chat_ids.shrink_to_fit();
  return c;
}

bool has_thread(const chat_state& chat, std::string_view thread_id) {
  return std::find(chat.thread_ids.begin(), chat.thread_ids.end(), thread_id) != chat.thread_ids.end();
}

std::optional<std::string> thread_creation_of(const std::vector<event_record>& chat_events,
                                              std::string_view thread_id) {
  for (const auto& e : chat_events) {
    if (e.type != "thread_opened")
      continue;
    auto p = parse_payload(e);
    if (str(p, "thread_id") != thread_id)
      continue;
    if (auto* t = p.if_contains("thread"); t && t->is_object())
      return json::serialize(*t);
    return std::nullopt;
  }
  return std::nullopt;
}

namespace {
// The strings a packed chat holds, in order: six fields, then its thread
// ids, then its successors' ids.
template <class Chat, class F>
void each_chat_string(Chat& chat, F f) {
  for (auto* s : {&chat.id, &chat.customer_id, &chat.customer_name, &chat.agent_id, &chat.previous_chat_id,
                  &chat.created_at})
    f(*s);
  for (auto& s : chat.thread_ids)
    f(s);
  for (auto& s : chat.successor_chat_ids)
    f(s);
}
} // namespace

packed_chat::packed_chat(const chat_state& chat)
  : version_(chat.version), exists_(chat.exists), resolved_(chat.resolved) {
  std::vector<uint32_t> header{static_cast<uint32_t>(chat.thread_ids.size()),
                               static_cast<uint32_t>(chat.successor_chat_ids.size())};
  size_t bytes = 0;
  each_chat_string(chat, [&](const std::string& s) {
    header.push_back(static_cast<uint32_t>(s.size()));
    bytes += s.size();
  });
  const size_t head = header.size() * sizeof(uint32_t);
  data_ = std::make_unique_for_overwrite<char[]>(head + bytes);
  std::memcpy(data_.get(), header.data(), head);
  char* out = data_.get() + head;
  each_chat_string(chat, [&](const std::string& s) {
    std::memcpy(out, s.data(), s.size());
    out += s.size();
  });
}

chat_state packed_chat::unpack() const {
  chat_state c;
  c.version = version_;
  c.exists = exists_;
  c.resolved = resolved_;
  if (!data_)
    return c;
  uint32_t counts[2];
  std::memcpy(counts, data_.get(), sizeof counts);
  c.thread_ids.resize(counts[0]);
  c.successor_chat_ids.resize(counts[1]);
  const char* length = data_.get() + sizeof counts;
  const char* in = length + (6 + counts[0] + counts[1]) * sizeof(uint32_t);
  each_chat_string(c, [&](std::string& s) {
    uint32_t n;
    std::memcpy(&n, length, sizeof n);
    length += sizeof n;
    s.assign(in, n);
    in += n;
  });
  return c;
}

json::object chat_json(const chat_state& chat) {
  json::object o;
  o["id"] = chat.id;
  o["status"] = chat.resolved ? "resolved" : "open";
  o["customer"] = json::object{{"id", chat.customer_id}, {"name", chat.customer_name}};
  o["agent_id"] = chat.agent_id.empty() ? json::value(nullptr) : json::value(chat.agent_id);
  o["previous_chat_id"] = chat.previous_chat_id.empty() ? json::value(nullptr) : json::value(chat.previous_chat_id);
  o["created_at"] = chat.created_at;
  o["thread_count"] = chat.thread_ids.size();
  return o;
}

// -- threads -----------------------------------------------------------------

std::vector<mention> extract_mentions(std::string_view text) {
  std::vector<mention> out;
  auto is_handle_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '@')
      continue;
    // "name@example.com" is an address, not a mention.
    if (i > 0 && is_handle_char(text[i - 1]))
      continue;
    size_t j = i + 1;
    while (j < text.size() && is_handle_char(text[j]))
      ++j;
    // A trailing dot ends the sentence, not the handle.
    size_t end = j;
    while (end > i + 1 && text[end - 1] == '.')
      --end;
    if (end == i + 1)
      continue;
    std::string handle(text.substr(i + 1, end - i - 1));
    std::string kind = (handle == "here" || handle == "channel" || handle == "everyone") ? handle : "name";
    if (kind != "name")
      handle.clear();
    bool seen = false;
    for (const auto& m : out)
      seen = seen || (m.kind == kind && m.handle == handle);
    if (!seen)
      out.push_back({kind, handle});
    i = j - 1;
  }
  return out;
}

namespace {

std::vector<file_ref> files_from(const json::object& p) {
  std::vector<file_ref> out;
  if (auto* f = p.if_contains("files"); f && f->is_array())
    for (auto& v : f->as_array())
      if (v.is_object()) {
        auto& o = v.as_object();
        file_ref r{str(o, "id"), str(o, "name"), str(o, "mimetype"), 0};
        if (auto* s = o.if_contains("size"); s && s->is_int64())
          r.size = static_cast<uint64_t>(s->as_int64());
        out.push_back(std::move(r));
      }
  return out;
}

std::vector<mention> mentions_from(const json::object& p) {
  std::vector<mention> out;
  if (auto* m = p.if_contains("mentions"); m && m->is_array())
    for (auto& v : m->as_array())
      if (v.is_object())
        out.push_back({str(v.as_object(), "kind"), str(v.as_object(), "handle")});
  return out;
}

// A message for Slack, pending until the Slack port reports it delivered.
thread_message outbound_message(std::string id, std::string text, std::string author_id, std::string author_name,
                                std::vector<file_ref> files, std::vector<mention> mentions, std::string time) {
  thread_message m;
  m.id = std::move(id);
  m.direction = "to_slack";
  m.text = std::move(text);
  m.author_id = std::move(author_id);
  m.author_name = std::move(author_name);
  m.files = std::move(files);
  m.mentions = std::move(mentions);
  m.delivery = "pending";
  m.created_at = std::move(time);
  return m;
}

// From the newest: the message a delivery names is nearly always among the
// last few, and a long thread would otherwise cost a scan of all of it per post.
thread_message* find_message(thread_state& t, const std::string& id) {
  for (auto m = t.messages.rbegin(); m != t.messages.rend(); ++m)
    if (m->id == id)
      return &*m;
  return nullptr;
}

} // namespace

std::string thread_id_of(std::string_view chat_id, size_t n) {
  return std::string(chat_id) + ".t" + std::to_string(n);
}

std::string chat_of_thread(std::string_view thread_id) {
  auto dot = thread_id.rfind(".t");
  return dot == std::string_view::npos ? std::string{} : std::string(thread_id.substr(0, dot));
}

void apply_thread_event(thread_state& t, const event_record& e) {
  auto p = parse_payload(e);
  t.version = e.seq;
  if (e.type == "thread_created") {
    t.exists = true;
    t.id = str(p, "id");
    t.chat_id = str(p, "chat_id");
    t.channel_id = str(p, "channel_id");
    t.created_by = str(p, "created_by");
    t.title = str(p, "title");
    t.created_at = e.time;
    t.messages.push_back(outbound_message(str(p, "message_id"), str(p, "text"), str(p, "created_by"),
                                          str(p, "created_by_name"), files_from(p), mentions_from(p), e.time));
  } else if (e.type == "thread_message_sent") {
    t.messages.push_back(outbound_message(str(p, "id"), str(p, "text"), str(p, "author_id"), str(p, "author_name"),
                                          files_from(p), mentions_from(p), e.time));
  } else if (e.type == "slack_reply_received") {
    thread_message m;
    m.id = str(p, "id");
    m.direction = "from_slack";
    m.text = str(p, "text");
    m.markdown = str(p, "markdown");
    m.author_id = str(p, "author_id");
    m.author_name = str(p, "author_name");
    m.files = files_from(p);
    m.created_at = e.time;
    m.slack_ts = str(p, "slack_ts");
    m.late = t.done;
    // In Slack's order: a reply that arrives after a newer one (events out of
    // order, the poller finding what an event missed) goes before it. The
    // agent's messages not in Slack (pending, failed) have no ts to compare:
    // they keep their places and are stepped over, never ordered against
    // Slack's clock.
    auto at = t.messages.end();
    for (auto it = t.messages.end(); it != t.messages.begin();) {
      --it;
      if (it->slack_ts.empty())
        continue;
      if (!slack_ts_before(m.slack_ts, it->slack_ts))
        break;
      at = it;
    }
    t.messages.insert(at, std::move(m));
    t.unread += 1;
  } else if (e.type == "slack_delivered") {
    if (auto* m = find_message(t, str(p, "message_id"))) {
      m->delivery = "sent";
      m->slack_ts = str(p, "slack_ts");
    }
    if (t.slack_ts.empty())
      t.slack_ts = str(p, "slack_ts");
  } else if (e.type == "slack_delivery_failed") {
    if (auto* m = find_message(t, str(p, "message_id"))) {
      m->delivery = "failed";
      m->delivery_error = str(p, "reason");
    }
  } else if (e.type == "slack_reply_edited" || e.type == "slack_reply_deleted") {
    for (auto& m : t.messages)
      if (m.direction == "from_slack" && m.slack_ts == str(p, "slack_ts")) {
        if (e.type == "slack_reply_edited") {
          m.text = str(p, "text");
          m.markdown = str(p, "markdown");
          m.edited_at = e.time;
        } else {
          m.deleted = true;
          m.text.clear();
          m.markdown.clear();
          m.files.clear();
        }
      }
  } else if (e.type == "thread_read") {
    t.unread = 0;
  } else if (e.type == "thread_done") {
    t.done = true;
    // The closing reply Slack users see, delivered like any other message.
    if (!str(p, "closing_id").empty())
      t.messages.push_back(
        outbound_message(str(p, "closing_id"), str(p, "closing_text"), e.actor, str(p, "closing_author"), {}, {}, e.time));
  }
}

thread_state thread_from_events(const std::vector<event_record>& events) {
  thread_state t;
  for (const auto& e : events)
    apply_thread_event(t, e);
  t.messages.shrink_to_fit();
  return t;
}

bool has_pending_delivery(const thread_state& t) {
  for (const auto& m : t.messages)
    if (m.direction == "to_slack" && m.delivery == "pending")
      return true;
  return false;
}

thread_state preview_of(const thread_state& t) {
  thread_state p;
  p.id = t.id;
  p.chat_id = t.chat_id;
  p.exists = t.exists;
  p.channel_id = t.channel_id;
  p.created_by = t.created_by;
  p.created_at = t.created_at;
  p.title = t.title;
  p.done = t.done;
  p.unread = t.unread;
  p.slack_ts = t.slack_ts;
  p.version = t.version;
  return p;
}

json::object thread_json(const thread_state& t) {
  json::object o;
  o["id"] = t.id;
  o["chat_id"] = t.chat_id;
  o["channel_id"] = t.channel_id;
  o["status"] = t.done ? "done" : "open";
  o["slack_ts"] = t.slack_ts.empty() ? json::value(nullptr) : json::value(t.slack_ts);
  o["unread"] = t.unread;
  o["created_by"] = t.created_by;
  o["created_at"] = t.created_at;
  o["title"] = t.title;
  return o;
}

json::object thread_message_json(const thread_message& m) {
  json::object o;
  o["id"] = m.id;
  o["direction"] = m.direction;
  o["text"] = m.text;
  o["markdown"] = m.markdown.empty() ? m.text : m.markdown;
  o["author"] = json::object{{"id", m.author_id}, {"name", m.author_name}};
  json::array files;
  for (const auto& f : m.files)
    files.push_back(json::object{{"id", f.id}, {"name", f.name}, {"mimetype", f.mimetype}, {"size", f.size},
                                 {"url", "/api/v1/files/" + f.id}});
  o["files"] = std::move(files);
  json::array mentions;
  for (const auto& mm : m.mentions)
    mentions.push_back(json::object{{"kind", mm.kind}, {"handle", mm.handle}});
  o["mentions"] = std::move(mentions);
  if (m.direction == "to_slack")
    o["delivery"] = m.delivery;
  if (!m.delivery_error.empty())
    o["delivery_error"] = m.delivery_error;
  if (m.late)
    o["late"] = true;
  if (!m.edited_at.empty())
    o["edited_at"] = m.edited_at;
  if (m.deleted)
    o["deleted"] = true;
  o["created_at"] = m.created_at;
  return o;
}

std::string thread_opening_text(const chat_state& chat, const caller& agent, std::string_view query) {
  std::string out;
  out += "Chat " + chat.id + " with customer " + chat.customer_name + " (" + chat.customer_id + ")\n";
  out += "Agent: " + agent.name + " (" + agent.id + ")\n\n";
  out += query;
  return out;
}

// -- rules -------------------------------------------------------------------

status may_read_chat(const caller& who, const chat_state& chat) {
  if (who.kind == role::admin || who.kind == role::bot)
    return {};
  if (chat.agent_id == who.id)
    return {};
  return {errc::forbidden, "chat " + chat.id + " is not assigned to you"};
}

status may_read_threads(const caller& who, chat_access chat) {
  if (who.kind == role::admin)
    return {};
  if (who.kind == role::bot)
    return {errc::forbidden, "the bot role never sees internal threads"};
  if (!who.inbox_access)
    return {errc::forbidden, "internal threads need inbox access"};
  if (chat.agent_id != who.id)
    return {errc::forbidden, "chat " + std::string(chat.id) + " is not assigned to you"};
  return {};
}

status may_work_threads(const caller& who, chat_access chat) {
  if (who.kind == role::admin)
    return {errc::forbidden, "admins see threads read-only"};
  if (auto s = may_read_threads(who, chat); !s)
    return s;
  if (chat.resolved)
    return {errc::conflict, "chat " + std::string(chat.id) + " is resolved: its threads are read-only"};
  return {};
}

} // namespace backline
