#include "slack/fake_slack.hpp"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace backline::slack {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

// =============================================================================
// Signatures
// =============================================================================

// =============================================================================
// Workspace defaults
// =============================================================================

fake_workspace sandbox_workspace() {
  fake_workspace w;
  w.channels = {
      {"C0FINANCE", "finance", true, false, false},
      {"C0HR", "hr", true, false, false},
      {"C0OPS", "operations", true, false, false},
      {"C0GENERAL", "general", false, false, false},
  };
  w.users = {
      {"U0ERIN", "erin", "Erin Finance", "erin", false},
      {"U0HUGO", "hugo", "Hugo Human-Resources", "hugo", false},
      {"U0OPAL", "opal", "Opal Operations", "opal", false},
  };
  w.usergroups = {
      {"S0FIN", "finance-team", "Finance team", {"U0ERIN"}, false},
      {"S0HR", "hr-team", "HR team", {"U0HUGO"}, false},
      {"S0OPS", "ops-team", "Operations team", {"U0OPAL"}, false},
  };
  return w;
}

std::map<std::string, rate_limit> slack_rate_limits() {
  const rate_limit tier2{20.0 / 60, 5};
  const rate_limit tier3{50.0 / 60, 10};
  const rate_limit tier4{100.0 / 60, 20};
  return {
      {"chat.postMessage", {1.0, 3}},
      {"chat.update", tier3},
      {"chat.delete", tier3},
      {"reactions.add", tier3},
      {"conversations.replies", tier3},
      {"conversations.history", tier3},
      {"conversations.info", tier3},
      {"users.conversations", tier2},
      {"usergroups.list", tier2},
      {"users.info", tier4},
      {"users.list", tier2},
      {"files.getUploadURLExternal", tier4},
      {"files.completeUploadExternal", tier4},
  };
}

fault_kind parse_fault_kind(std::string_view s) {
  if (s == "ratelimit")
    return fault_kind::ratelimit;
  if (s == "server_error")
    return fault_kind::server_error;
  if (s == "slow")
    return fault_kind::slow;
  if (s == "drop")
    return fault_kind::drop;
  if (s == "error")
    return fault_kind::error;
  throw fake_slack_error("invalid_arguments");
}

namespace {

// =============================================================================
// Small helpers: ts, cursors, encodings, JSON arguments
// =============================================================================

/// A Slack ts as an integer number of microseconds: ts are decimals with six
/// fractional digits, compared as decimals (never as floats).
std::optional<std::int64_t> ts_micros(std::string_view s) {
  if (s.empty())
    return std::nullopt;
  auto dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  if (whole.empty() || whole.size() > 12)
    return std::nullopt;
  std::int64_t sec = 0;
  for (char c : whole) {
    if (c < '0' || c > '9')
      return std::nullopt;
    sec = sec * 10 + (c - '0');
  }
  std::int64_t micro = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9')
      return std::nullopt;
    micro = micro * 10 + (c - '0');
  }
  for (std::size_t i = 6; i < frac.size(); ++i)  // more digits: ignored, but must be digits
    if (frac[i] < '0' || frac[i] > '9')
      return std::nullopt;
  return sec * 1'000'000 + micro;
}

std::string format_ts(std::int64_t sec, std::int64_t counter) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(sec),
                static_cast<long long>(counter));
  return buf;
}

std::int64_t wall_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += b64_alphabet[v >> 18 & 63];
    out += b64_alphabet[v >> 12 & 63];
    out += b64_alphabet[v >> 6 & 63];
    out += b64_alphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += b64_alphabet[v >> 18 & 63];
    out += b64_alphabet[v >> 12 & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += b64_alphabet[v >> 18 & 63];
    out += b64_alphabet[v >> 12 & 63];
    out += b64_alphabet[v >> 6 & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=')
      break;
    const char* p = std::strchr(b64_alphabet, c);
    if (c == '\0' || p == nullptr)
      return std::nullopt;
    v = v << 6 | static_cast<unsigned>(p - b64_alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(v >> bits & 0xff);
    }
  }
  return out;
}

/// Slack's cursors are base64 of e.g. "next_ts:1512085861000543"; ours too.
std::string make_cursor(std::string_view kind, std::string_view key) {
  return base64_encode(std::string(kind) + ":" + std::string(key));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Percent-encodes a file name for a URL path segment.
std::string path_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// application/x-www-form-urlencoded → fields (the SDK's default encoding;
/// nested values arrive as JSON strings).
void parse_form(std::string_view body, json::object& into) {
  std::size_t pos = 0;
  while (pos <= body.size()) {
    auto amp = body.find('&', pos);
    std::string_view pair = body.substr(pos, amp == std::string_view::npos ? body.npos : amp - pos);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      std::string key = url_decode(pair.substr(0, eq));
      std::string val = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
      into[key] = val;
    }
    if (amp == std::string_view::npos)
      break;
    pos = amp + 1;
  }
}

/// An error answered as {"ok":false,"error":code} (plus `extra` fields).
struct api_error {
  std::string code;
  json::object extra = {};
};

/// A string argument; numbers and booleans are accepted as their text, the
/// way Slack reads a form field.
std::string arg_string(const json::object& args, std::string_view key) {
  auto it = args.find(key);
  if (it == args.end() || it->value().is_null())
    return {};
  const auto& v = it->value();
  if (v.is_string())
    return std::string(v.as_string());
  if (v.is_bool())
    return v.as_bool() ? "true" : "false";
  return json::serialize(v);
}

bool arg_bool(const json::object& args, std::string_view key, bool fallback = false) {
  auto it = args.find(key);
  if (it == args.end())
    return fallback;
  const auto& v = it->value();
  if (v.is_bool())
    return v.as_bool();
  if (v.is_int64())
    return v.as_int64() != 0;
  if (v.is_string())
    return v.as_string() == "true" || v.as_string() == "1";
  return fallback;
}

std::optional<std::int64_t> arg_int(const json::object& args, std::string_view key) {
  auto it = args.find(key);
  if (it == args.end() || it->value().is_null())
    return std::nullopt;
  const auto& v = it->value();
  if (v.is_int64())
    return v.as_int64();
  if (v.is_uint64())
    return static_cast<std::int64_t>(v.as_uint64());
  if (v.is_double())
    return static_cast<std::int64_t>(v.as_double());
  if (v.is_string()) {
    try {
      std::size_t used = 0;
      auto n = std::stoll(std::string(v.as_string()), &used);
      if (used == v.as_string().size())
        return n;
    } catch (const std::exception&) {
    }
    throw api_error{"invalid_arguments"};
  }
  throw api_error{"invalid_arguments"};
}

/// A nested argument (blocks, metadata, files): a JSON value in a JSON body,
/// a JSON string in a form body. Null when absent.
json::value arg_json(const json::object& args, std::string_view key, const char* bad_error) {
  auto it = args.find(key);
  if (it == args.end() || it->value().is_null())
    return nullptr;
  if (!it->value().is_string())
    return it->value();
  const auto& s = it->value().as_string();
  if (s.empty())
    return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(std::string_view(s.data(), s.size()), ec);
  if (ec)
    throw api_error{bad_error};
  return v;
}

std::string guess_mimetype(std::string_view name) {
  auto dot = name.rfind('.');
  std::string ext = dot == std::string_view::npos ? "" : std::string(name.substr(dot + 1));
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, std::string> types = {
      {"txt", "text/plain"},       {"csv", "text/csv"},          {"json", "application/json"},
      {"pdf", "application/pdf"},  {"png", "image/png"},         {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},      {"gif", "image/gif"},         {"html", "text/html"},
      {"md", "text/plain"},        {"zip", "application/zip"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
  };
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

std::string filetype_of(std::string_view name) {
  auto dot = name.rfind('.');
  return dot == std::string_view::npos ? "binary" : std::string(name.substr(dot + 1));
}

/// Slack truncates text past 40,000 characters; cut on a UTF-8 boundary.
std::string truncate_text(std::string text) {
  constexpr std::size_t max_chars = 40000;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) {
        text.resize(i);
        break;
      }
      ++chars;
    }
  }
  return text;
}

struct parsed_url {
  std::string scheme_host_port;  // "http://127.0.0.1:8080"
  std::string path;              // "/slack/events"
};

std::optional<parsed_url> parse_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return std::nullopt;
  auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos)
    return parsed_url{url, "/"};
  return parsed_url{url.substr(0, path_start), url.substr(path_start)};
}

// =============================================================================
// Workspace state
// =============================================================================

struct stored_file {
  std::string id, name, title, mimetype, user, alt_text;
  std::int64_t declared_length = 0;
  std::string content;
  std::int64_t created = 0;
  bool uploaded = false;   // the bytes arrived
  bool completed = false;  // files.completeUploadExternal (or a person's file)
};

struct reaction {
  std::string name;
  std::vector<std::string> users;
};

struct stored_message {
  std::string ts;
  std::string thread_ts;  // the parent's ts for a reply, else empty
  std::string user, bot_id, app_id;
  std::string text, subtype;
  std::vector<std::string> files;
  json::value blocks, metadata;  // null when absent
  std::string edited_user, edited_ts;
  std::vector<reaction> reactions;
  bool upload = false;  // posted by files.completeUploadExternal

  bool is_reply() const { return !thread_ts.empty() && thread_ts != ts; }
};

struct channel_state {
  fake_channel info;
  std::int64_t created = 0;
  std::map<std::int64_t, stored_message> messages;  // every message, by ts
};

struct pending_event {
  std::string event_id;
  std::string body;
  int retry_num = 0;
  std::string retry_reason;
  std::chrono::steady_clock::time_point happened = std::chrono::steady_clock::now();
};

}  // namespace

// =============================================================================
// The implementation
// =============================================================================

struct fake_slack::impl {
  explicit impl(fake_slack_config c) : cfg(std::move(c)) {
    for (auto& ch : cfg.workspace.channels)
      add_channel_locked(ch);
    for (auto& u : cfg.workspace.users)
      users[u.id] = u;
    users[cfg.bot_user_id] = fake_user{cfg.bot_user_id, "backline", "backline", "backline", true};
    usergroups = cfg.workspace.usergroups;
    limits = cfg.rate_limits;
    if (cfg.fixed_clock_seconds)
      clock_sec = *cfg.fixed_clock_seconds;
  }

  fake_slack_config cfg;

  // --- workspace state (guarded by mu) ---
  mutable std::mutex mu;
  std::map<std::string, channel_state> channels;
  std::map<std::string, fake_user> users;
  std::vector<fake_usergroup> usergroups;
  std::map<std::string, stored_file> files;
  bool token_revoked = false;
  std::int64_t clock_sec = 0;
  std::int64_t clock_counter = 0;
  std::uint64_t next_file = 1;
  std::uint64_t next_event = 1;
  std::map<std::string, std::deque<fault_spec>> faults;
  struct bucket {
    double tokens = 0;
    steady::time_point at;
  };
  std::map<std::string, rate_limit> limits;
  std::map<std::pair<std::string, std::string>, bucket> buckets;
  std::vector<sent_item> sent_log;
  std::vector<api_call> call_log;

  // --- serving ---
  httplib::Server server;
  std::thread server_thread;
  std::atomic<int> bound_port{0};
  std::atomic<bool> running{false};
  bool started_once = false;
  std::mutex stop_mu;  // lets a "slow" fault's sleep end early on stop()
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu

  // --- event delivery (guarded by ev_mu; never takes mu) ---
  mutable std::mutex ev_mu;
  std::condition_variable ev_cv;
  std::string events_url;
  bool events_on = true;
  int duplicate_left = 0;
  std::chrono::milliseconds events_delay{0};
  std::multimap<steady::time_point, pending_event> ev_queue;  // by due time, FIFO on ties
  int ev_in_flight = 0;
  bool ev_stopping = false;
  std::vector<event_delivery> deliveries;
  std::vector<std::thread> ev_threads;

  // ---------------------------------------------------------------------------
  // Identity, clock, lookups (callers hold mu)
  // ---------------------------------------------------------------------------

  std::string host_url() const {
    return "http://" + cfg.host + ":" + std::to_string(bound_port.load());
  }

  void add_channel_locked(const fake_channel& ch) {
    auto& st = channels[ch.id];
    st.info = ch;
    st.created = wall_seconds() - 86400;
  }

  /// Unique, increasing "<seconds>.<counter>" ts (a fake clock).
  // Like Slack's, a ts is the wall clock in microseconds, made unique by
  // stepping past the last one issued. So a new fake (the sandbox after a
  // restart) continues past every ts an earlier one issued in the same
  // second, instead of issuing "<second>.000001" again. A fixed clock counts
  // from .000001 (deterministic ts for tests).
  std::string next_ts() {
    if (!cfg.fixed_clock_seconds) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
      std::int64_t sec = us / 1'000'000;
      std::int64_t micros = std::max<std::int64_t>(us % 1'000'000, 1);  // .000000 is never issued
      if (sec > clock_sec) {
        clock_sec = sec;
        clock_counter = micros - 1;  // the ++ below issues the wall clock's own microsecond
      } else if (sec == clock_sec && micros - 1 > clock_counter) {
        clock_counter = micros - 1;
      }
    }
    if (++clock_counter > 999'999) {
      ++clock_sec;
      clock_counter = 1;
    }
    return format_ts(clock_sec, clock_counter);
  }

  std::string new_file_id() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "F%010llu", static_cast<unsigned long long>(next_file++));
    return buf;
  }

  std::string new_event_id() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "Ev%010llu", static_cast<unsigned long long>(next_event++));
    return buf;
  }

  /// A channel the app may read: the bot must be in it. A private channel the
  /// bot is not in is invisible (channel_not_found), a public one answers
  /// not_in_channel.
  channel_state& readable_channel(const std::string& id) {
    auto it = channels.find(id);
    if (id.empty() || it == channels.end())
      throw api_error{"channel_not_found"};
    if (!it->second.info.is_member)
      throw api_error{it->second.info.is_private ? "channel_not_found" : "not_in_channel"};
    return it->second;
  }

  channel_state& writable_channel(const std::string& id) {
    auto& ch = readable_channel(id);
    if (ch.info.archived)
      throw api_error{"is_archived"};
    return ch;
  }

  channel_state& control_channel(const std::string& id) {
    auto it = channels.find(id);
    if (it == channels.end())
      throw fake_slack_error("channel_not_found");
    return it->second;
  }

  static stored_message* find_message(channel_state& ch, const std::string& ts) {
    auto key = ts_micros(ts);
    if (!key)
      return nullptr;
    auto it = ch.messages.find(*key);
    return it == ch.messages.end() ? nullptr : &it->second;
  }

  /// A thread's parent. In sandbox mode the workspace lives in memory while
  /// backline's log survives restarts: a parent ts it does not know is then
  /// taken as a placeholder parent of the app's (adopt_unknown_parents).
  stored_message* find_parent(channel_state& ch, const std::string& ts) {
    auto* m = find_message(ch, ts);
    if (m != nullptr || !cfg.adopt_unknown_parents)
      return m;
    auto key = ts_micros(ts);
    if (!key)
      return nullptr;
    stored_message p;
    p.ts = format_ts(*key / 1'000'000, *key % 1'000'000);
    p.user = cfg.bot_user_id;
    p.bot_id = cfg.bot_id;
    p.app_id = cfg.app_id;
    p.text = "(a thread posted before the sandbox workspace restarted)";
    return &ch.messages.emplace(*key, std::move(p)).first->second;
  }

  static std::vector<const stored_message*> replies_of(const channel_state& ch, const stored_message& parent) {
    std::vector<const stored_message*> out;
    auto key = *ts_micros(parent.ts);
    for (auto it = ch.messages.upper_bound(key); it != ch.messages.end(); ++it)
      if (it->second.thread_ts == parent.ts && it->second.is_reply())
        out.push_back(&it->second);
    return out;
  }

  // ---------------------------------------------------------------------------
  // JSON views
  // ---------------------------------------------------------------------------

  json::object file_json(const stored_file& f) const {
    const std::string base = host_url() + "/files-pri/" + f.id + "/";
    json::object o;
    o["id"] = f.id;
    o["created"] = f.created;
    o["timestamp"] = f.created;
    o["name"] = f.name;
    o["title"] = f.title;
    o["mimetype"] = f.mimetype;
    o["filetype"] = filetype_of(f.name);
    o["user"] = f.user;
    o["size"] = f.uploaded ? static_cast<std::int64_t>(f.content.size()) : f.declared_length;
    o["mode"] = "hosted";
    o["is_external"] = false;
    o["is_public"] = true;
    o["url_private"] = base + path_encode(f.name);
    o["url_private_download"] = base + "download/" + path_encode(f.name);
    o["permalink"] = "https://fake.slack.com/files/" + f.user + "/" + f.id + "/" + path_encode(f.name);
    if (!f.alt_text.empty())
      o["alt_txt"] = f.alt_text;
    return o;
  }

  /// A message as conversations.replies / history show it. `summary` adds the
  /// thread fields a parent carries (reply_count, latest_reply, reply_users).
  json::object message_json(const channel_state& ch, const stored_message& m, bool with_metadata,
                            bool summary) const {
    json::object o;
    o["type"] = "message";
    if (!m.subtype.empty())
      o["subtype"] = m.subtype;
    o["ts"] = m.ts;
    if (!m.user.empty())
      o["user"] = m.user;
    if (!m.bot_id.empty())
      o["bot_id"] = m.bot_id;
    if (!m.app_id.empty())
      o["app_id"] = m.app_id;
    o["text"] = m.text;
    o["team"] = cfg.team_id;
    if (m.is_reply()) {
      o["thread_ts"] = m.thread_ts;
      auto parent_key = ts_micros(m.thread_ts);
      auto p = parent_key ? ch.messages.find(*parent_key) : ch.messages.end();
      if (p != ch.messages.end() && !p->second.user.empty())
        o["parent_user_id"] = p->second.user;
    } else if (summary) {
      auto replies = replies_of(ch, m);
      if (!replies.empty()) {
        o["thread_ts"] = m.ts;
        o["reply_count"] = static_cast<std::int64_t>(replies.size());
        json::array reply_users;
        std::set<std::string> seen;
        for (auto* r : replies) {
          const std::string& who = r->user.empty() ? r->bot_id : r->user;
          if (seen.insert(who).second && reply_users.size() < 5)
            reply_users.emplace_back(who);
        }
        o["reply_users_count"] = static_cast<std::int64_t>(seen.size());
        o["latest_reply"] = replies.back()->ts;
        o["reply_users"] = std::move(reply_users);
        o["is_locked"] = false;
        o["subscribed"] = false;
      }
    }
    if (!m.files.empty()) {
      json::array fs;
      for (auto& id : m.files)
        if (auto f = files.find(id); f != files.end())
          fs.push_back(file_json(f->second));
      o["files"] = std::move(fs);
      o["upload"] = m.upload;
      o["display_as_bot"] = false;
    }
    if (!m.blocks.is_null())
      o["blocks"] = m.blocks;
    if (!m.edited_ts.empty())
      o["edited"] = json::object{{"user", m.edited_user}, {"ts", m.edited_ts}};
    if (!m.reactions.empty()) {
      json::array rs;
      for (auto& r : m.reactions) {
        json::array us;
        for (auto& u : r.users)
          us.emplace_back(u);
        rs.push_back(json::object{{"name", r.name},
                                  {"users", us},
                                  {"count", static_cast<std::int64_t>(r.users.size())}});
      }
      o["reactions"] = std::move(rs);
    }
    if (with_metadata && !m.metadata.is_null())
      o["metadata"] = m.metadata;
    if (m.subtype == "tombstone")
      o["hidden"] = true;
    return o;
  }

  json::object channel_json(const channel_state& ch) const {
    return json::object{
        {"id", ch.info.id},
        {"name", ch.info.name},
        {"name_normalized", ch.info.name},
        {"is_channel", !ch.info.is_private},
        {"is_group", ch.info.is_private},
        {"is_im", false},
        {"is_private", ch.info.is_private},
        {"is_archived", ch.info.archived},
        {"is_member", ch.info.is_member},
        {"created", ch.created},
        {"context_team_id", cfg.team_id},
    };
  }

  json::object user_json(const fake_user& u) const {
    return json::object{
        {"id", u.id},
        {"team_id", cfg.team_id},
        {"name", u.name},
        {"deleted", false},
        {"real_name", u.real_name},
        {"is_bot", u.is_bot},
        {"profile", json::object{{"display_name", u.display_name},
                                 {"display_name_normalized", u.display_name},
                                 {"real_name", u.real_name},
                                 {"real_name_normalized", u.real_name},
                                 {"team", cfg.team_id}}},
    };
  }

  // ---------------------------------------------------------------------------
  // Events (callers hold mu; queueing takes ev_mu, which nests inside mu)
  // ---------------------------------------------------------------------------

  std::string channel_type(const channel_state& ch) const {
    return ch.info.is_private ? "group" : "channel";
  }

  void push_event(const channel_state& ch, json::object event) {
    if (!ch.info.is_member)  // Slack sends nothing from channels the app is not in
      return;
    json::object envelope{
        {"token", "fake-verification-token"},
        {"team_id", cfg.team_id},
        {"context_team_id", cfg.team_id},
        {"api_app_id", cfg.app_id},
        {"event", std::move(event)},
        {"type", "event_callback"},
        {"event_id", new_event_id()},
        {"event_time", wall_seconds()},
        {"authorizations",
         json::array{json::object{{"enterprise_id", nullptr},
                                  {"team_id", cfg.team_id},
                                  {"user_id", cfg.bot_user_id},
                                  {"is_bot", true},
                                  {"is_enterprise_install", false}}}},
        {"is_ext_shared_channel", false},
    };
    pending_event p{std::string(envelope["event_id"].as_string()), json::serialize(envelope), 0, ""};
    std::lock_guard ev_lock(ev_mu);
    if (!events_on || events_url.empty())
      return;  // lost, as when Slack's subscription is off
    auto due = steady::now() + events_delay;
    if (duplicate_left > 0) {
      --duplicate_left;
      ev_queue.emplace(due, p);
    }
    ev_queue.emplace(due, std::move(p));
    ev_cv.notify_all();
  }

  void event_new_message(const channel_state& ch, const stored_message& m) {
    if (!m.bot_id.empty() && !cfg.events_for_bot_messages)
      return;
    auto e = message_json(ch, m, true, false);
    e["channel"] = ch.info.id;
    e["event_ts"] = m.ts;
    e["channel_type"] = channel_type(ch);
    push_event(ch, std::move(e));
  }

  void event_changed(const channel_state& ch, const json::object& before, const stored_message& after) {
    if (!after.bot_id.empty() && !cfg.events_for_bot_messages)
      return;
    auto ts = next_ts();
    json::object e{
        {"type", "message"},        {"subtype", "message_changed"},
        {"hidden", true},           {"channel", ch.info.id},
        {"ts", ts},                 {"event_ts", ts},
        {"channel_type", channel_type(ch)},
        {"message", message_json(ch, after, true, false)},
        {"previous_message", before},
    };
    push_event(ch, std::move(e));
  }

  void event_deleted(const channel_state& ch, const json::object& before, const std::string& deleted_ts,
                     bool by_bot) {
    if (by_bot && !cfg.events_for_bot_messages)
      return;
    auto ts = next_ts();
    json::object e{
        {"type", "message"},   {"subtype", "message_deleted"},
        {"hidden", true},      {"channel", ch.info.id},
        {"ts", ts},            {"event_ts", ts},
        {"deleted_ts", deleted_ts},
        {"channel_type", channel_type(ch)},
        {"previous_message", before},
    };
    push_event(ch, std::move(e));
  }

  // ---------------------------------------------------------------------------
  // Shared mutations
  // ---------------------------------------------------------------------------

  /// Adds a message; `thread_ts` must name a top-level message.
  stored_message& insert_message(channel_state& ch, stored_message m, const std::string& thread_ts) {
    if (!thread_ts.empty()) {
      auto* parent = find_parent(ch, thread_ts);
      if (parent == nullptr || parent->is_reply())
        throw api_error{"thread_not_found"};
      m.thread_ts = parent->ts;
    }
    m.ts = next_ts();
    auto key = *ts_micros(m.ts);
    return ch.messages.emplace(key, std::move(m)).first->second;
  }

  /// Deletes a message; a parent with replies stays as a tombstone.
  void remove_message(channel_state& ch, stored_message& m) {
    if (!m.is_reply() && !replies_of(ch, m).empty()) {
      m.subtype = "tombstone";
      m.text = "This message was deleted.";
      m.user = "USLACKBOT";
      m.bot_id.clear();
      m.app_id.clear();
      m.files.clear();
      m.blocks = nullptr;
      m.metadata = nullptr;
      m.reactions.clear();
      return;
    }
    ch.messages.erase(*ts_micros(m.ts));
  }

  std::vector<std::string> store_person_files(const std::string& user, std::vector<fake_file> fs) {
    std::vector<std::string> ids;
    for (auto& f : fs) {
      stored_file s;
      s.id = new_file_id();
      s.name = f.name.empty() ? "file" : f.name;
      s.title = f.title.empty() ? s.name : f.title;
      s.mimetype = f.mimetype.empty() ? guess_mimetype(s.name) : f.mimetype;
      s.user = user;
      s.content = std::move(f.content);
      s.declared_length = static_cast<std::int64_t>(s.content.size());
      s.created = wall_seconds();
      s.uploaded = s.completed = true;
      ids.push_back(s.id);
      files.emplace(s.id, std::move(s));
    }
    return ids;
  }

  // ---------------------------------------------------------------------------
  // Web API methods (callers hold mu). Each answers the fields besides "ok"
  // or throws api_error.
  // ---------------------------------------------------------------------------

  void record_sent(std::string method, const std::string& channel, const std::string& ts,
                   const std::string& thread_ts, const std::string& text, const json::object& args) {
    sent_log.push_back(sent_item{std::move(method), channel, ts, thread_ts, text, args});
  }

  json::object auth_test(const json::object&) {
    return json::object{{"url", "https://fake.slack.com/"}, {"team", cfg.team_name},
                        {"user", "backline"},                {"team_id", cfg.team_id},
                        {"user_id", cfg.bot_user_id},        {"bot_id", cfg.bot_id},
                        {"is_enterprise_install", false}};
  }

  json::object chat_post_message(const json::object& args) {
    auto& ch = writable_channel(arg_string(args, "channel"));
    stored_message m;
    m.text = truncate_text(arg_string(args, "text"));
    m.blocks = arg_json(args, "blocks", "invalid_blocks");
    auto attachments = arg_json(args, "attachments", "invalid_attachments");
    bool has_blocks = m.blocks.is_array() && !m.blocks.as_array().empty();
    bool has_attachments = attachments.is_array() && !attachments.as_array().empty();
    if (m.text.empty() && !has_blocks && !has_attachments)
      throw api_error{"no_text"};
    if (!m.blocks.is_null() && !m.blocks.is_array())
      throw api_error{"invalid_blocks"};
    m.metadata = arg_json(args, "metadata", "invalid_metadata_format");
    if (!m.metadata.is_null()) {
      auto* md = m.metadata.if_object();
      if (md == nullptr || !md->contains("event_type") || !(*md)["event_type"].is_string())
        throw api_error{"invalid_metadata_format"};
      if (md->contains("event_payload") && !(*md)["event_payload"].is_object())
        throw api_error{"invalid_metadata_format"};
    }
    m.user = cfg.bot_user_id;
    m.bot_id = cfg.bot_id;
    m.app_id = cfg.app_id;
    const std::string thread_ts = arg_string(args, "thread_ts");
    if (!thread_ts.empty() && arg_bool(args, "reply_broadcast"))
      m.subtype = "thread_broadcast";
    auto& stored = insert_message(ch, std::move(m), thread_ts);
    record_sent("chat.postMessage", ch.info.id, stored.ts, stored.thread_ts, stored.text, args);
    event_new_message(ch, stored);
    auto msg = message_json(ch, stored, true, false);
    return json::object{{"channel", ch.info.id}, {"ts", stored.ts}, {"message", std::move(msg)}};
  }

  json::object chat_update(const json::object& args) {
    auto& ch = readable_channel(arg_string(args, "channel"));
    auto* m = find_message(ch, arg_string(args, "ts"));
    if (m == nullptr)
      throw api_error{"message_not_found"};
    if (m->bot_id != cfg.bot_id)
      throw api_error{"cant_update_message"};
    if (ch.info.archived)
      throw api_error{"is_archived"};
    auto text = truncate_text(arg_string(args, "text"));
    auto blocks = arg_json(args, "blocks", "invalid_blocks");
    if (text.empty() && blocks.is_null())
      throw api_error{"no_text"};
    auto before = message_json(ch, *m, true, false);
    m->text = text;
    if (!blocks.is_null())
      m->blocks = blocks;
    auto metadata = arg_json(args, "metadata", "invalid_metadata_format");
    if (!metadata.is_null())
      m->metadata = metadata;
    m->edited_user = cfg.bot_user_id;
    m->edited_ts = next_ts();
    record_sent("chat.update", ch.info.id, m->ts, m->is_reply() ? m->thread_ts : "", m->text, args);
    event_changed(ch, before, *m);
    return json::object{{"channel", ch.info.id},
                        {"ts", m->ts},
                        {"text", m->text},
                        {"message", message_json(ch, *m, true, false)}};
  }

  json::object chat_delete(const json::object& args) {
    auto& ch = readable_channel(arg_string(args, "channel"));
    auto* m = find_message(ch, arg_string(args, "ts"));
    if (m == nullptr || m->subtype == "tombstone")
      throw api_error{"message_not_found"};
    if (m->bot_id != cfg.bot_id)
      throw api_error{"cant_delete_message"};
    if (ch.info.archived)
      throw api_error{"is_archived"};
    const std::string ts = m->ts;
    auto before = message_json(ch, *m, true, false);
    record_sent("chat.delete", ch.info.id, ts, m->is_reply() ? m->thread_ts : "", "", args);
    remove_message(ch, *m);
    event_deleted(ch, before, ts, true);
    return json::object{{"channel", ch.info.id}, {"ts", ts}};
  }

  static std::string strip_colons(std::string name) {
    if (name.size() >= 2 && name.front() == ':' && name.back() == ':')
      name = name.substr(1, name.size() - 2);
    return name;
  }

  json::object reactions_add(const json::object& args) {
    auto& ch = readable_channel(arg_string(args, "channel"));
    if (ch.info.archived)
      throw api_error{"is_archived"};
    auto* m = find_message(ch, arg_string(args, "timestamp"));
    if (m == nullptr || m->subtype == "tombstone")
      throw api_error{"message_not_found"};
    auto name = strip_colons(arg_string(args, "name"));
    if (name.empty())
      throw api_error{"invalid_name"};
    auto r = std::find_if(m->reactions.begin(), m->reactions.end(),
                          [&](const reaction& x) { return x.name == name; });
    if (r == m->reactions.end())
      r = m->reactions.insert(m->reactions.end(), reaction{name, {}});
    if (std::find(r->users.begin(), r->users.end(), cfg.bot_user_id) != r->users.end())
      throw api_error{"already_reacted"};
    r->users.push_back(cfg.bot_user_id);
    record_sent("reactions.add", ch.info.id, m->ts, m->is_reply() ? m->thread_ts : "", name, args);
    return {};
  }

  struct window {
    std::int64_t oldest = 0;
    std::int64_t latest = INT64_MAX;
    bool inclusive = false;
    bool contains(std::int64_t key) const {
      return inclusive ? key >= oldest && key <= latest : key > oldest && key < latest;
    }
  };

  static window read_window(const json::object& args) {
    window w;
    w.inclusive = arg_bool(args, "inclusive");
    if (auto s = arg_string(args, "oldest"); !s.empty()) {
      auto k = ts_micros(s);
      if (!k)
        throw api_error{"invalid_ts_oldest"};
      w.oldest = *k;
    }
    if (auto s = arg_string(args, "latest"); !s.empty()) {
      auto k = ts_micros(s);
      if (!k)
        throw api_error{"invalid_ts_latest"};
      w.latest = *k;
    }
    return w;
  }

  static std::size_t read_limit(const json::object& args, std::size_t fallback, std::size_t max) {
    auto n = arg_int(args, "limit");
    if (!n || *n <= 0)
      return fallback;
    return std::min<std::size_t>(static_cast<std::size_t>(*n), max);
  }

  /// The position a cursor names (a ts key), or none without a cursor.
  static std::optional<std::int64_t> read_ts_cursor(const json::object& args) {
    auto c = arg_string(args, "cursor");
    if (c.empty())
      return std::nullopt;
    auto decoded = base64_decode(c);
    if (!decoded || decoded->rfind("next_ts:", 0) != 0)
      throw api_error{"invalid_cursor"};
    auto key = ts_micros(decoded->substr(8));
    if (!key)
      throw api_error{"invalid_cursor"};
    return key;
  }

  json::object conversations_replies(const json::object& args) {
    auto& ch = readable_channel(arg_string(args, "channel"));
    auto ts = arg_string(args, "ts");
    if (ts.empty())
      throw api_error{"thread_not_found"};
    auto* root = find_parent(ch, ts);
    if (root == nullptr)
      throw api_error{"thread_not_found"};
    auto w = read_window(args);
    auto limit = read_limit(args, cfg.replies_default_limit, cfg.replies_max_limit);
    auto cursor = read_ts_cursor(args);
    const bool metadata = arg_bool(args, "include_all_metadata");

    // Asked about a reply: Slack answers that one message.
    std::vector<const stored_message*> items;
    if (root->is_reply()) {
      if (!cursor)
        items.push_back(root);
    } else {
      const auto root_key = *ts_micros(root->ts);
      if (!cursor && (cfg.replies_always_include_parent || w.contains(root_key)))
        items.push_back(root);
      for (auto* r : replies_of(ch, *root)) {
        auto key = *ts_micros(r->ts);
        if (w.contains(key) && (!cursor || key >= *cursor))
          items.push_back(r);
      }
    }
    json::array out;
    std::string next;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (out.size() == limit) {
        next = make_cursor("next_ts", items[i]->ts);
        break;
      }
      out.push_back(message_json(ch, *items[i], metadata, true));
    }
    return json::object{{"messages", std::move(out)},
                        {"has_more", !next.empty()},
                        {"response_metadata", json::object{{"next_cursor", next}}}};
  }

  json::object conversations_history(const json::object& args) {
    auto& ch = readable_channel(arg_string(args, "channel"));
    auto w = read_window(args);
    auto limit = read_limit(args, 100, 999);
    auto cursor = read_ts_cursor(args);
    const bool metadata = arg_bool(args, "include_all_metadata");
    json::array out;
    std::string next;
    // Newest first; replies only when also sent to the channel.
    for (auto it = ch.messages.rbegin(); it != ch.messages.rend(); ++it) {
      const auto& m = it->second;
      if (m.is_reply() && m.subtype != "thread_broadcast")
        continue;
      if (!w.contains(it->first) || (cursor && it->first > *cursor))
        continue;
      if (out.size() == limit) {
        next = make_cursor("next_ts", m.ts);
        break;
      }
      out.push_back(message_json(ch, m, metadata, true));
    }
    return json::object{{"messages", std::move(out)},
                        {"has_more", !next.empty()},
                        {"pin_count", 0},
                        {"response_metadata", json::object{{"next_cursor", next}}}};
  }

  json::object conversations_info(const json::object& args) {
    auto id = arg_string(args, "channel");
    auto it = channels.find(id);
    if (it == channels.end() || (it->second.info.is_private && !it->second.info.is_member))
      throw api_error{"channel_not_found"};
    return json::object{{"channel", channel_json(it->second)}};
  }

  json::object users_conversations(const json::object& args) {
    std::set<std::string> types;
    std::string t = arg_string(args, "types");
    if (t.empty())
      t = "public_channel";  // Slack's default
    for (std::size_t pos = 0; pos <= t.size();) {
      auto comma = t.find(',', pos);
      auto one = t.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!one.empty())
        types.insert(one);
      if (comma == std::string::npos)
        break;
      pos = comma + 1;
    }
    for (auto& one : types)
      if (one != "public_channel" && one != "private_channel" && one != "im" && one != "mpim")
        throw api_error{"invalid_types"};
    const bool exclude_archived = arg_bool(args, "exclude_archived");
    auto limit = read_limit(args, 100, 999);
    std::string after;
    if (auto c = arg_string(args, "cursor"); !c.empty()) {
      auto d = base64_decode(c);
      if (!d || d->rfind("next_id:", 0) != 0)
        throw api_error{"invalid_cursor"};
      after = d->substr(8);
    }
    json::array out;
    std::string next;
    for (auto it = after.empty() ? channels.begin() : channels.lower_bound(after); it != channels.end();
         ++it) {
      const auto& ch = it->second;
      if (!ch.info.is_member || (exclude_archived && ch.info.archived))
        continue;
      if (!types.count(ch.info.is_private ? "private_channel" : "public_channel"))
        continue;
      if (out.size() == limit) {
        next = make_cursor("next_id", ch.info.id);
        break;
      }
      out.push_back(channel_json(ch));
    }
    return json::object{{"channels", std::move(out)},
                        {"response_metadata", json::object{{"next_cursor", next}}}};
  }

  json::object users_info(const json::object& args) {
    auto it = users.find(arg_string(args, "user"));
    if (it == users.end())
      throw api_error{"user_not_found"};
    return json::object{{"user", user_json(it->second)}};
  }

  // users.list: every member (bots too), by id, `limit` a page with Slack's cursors.
  json::object users_list(const json::object& args) {
    auto limit = read_limit(args, 200, 1000);
    std::string after;
    if (auto c = arg_string(args, "cursor"); !c.empty()) {
      auto d = base64_decode(c);
      if (!d || d->rfind("user:", 0) != 0)
        throw api_error{"invalid_cursor"};
      after = d->substr(5);
    }
    json::array out;
    std::string next;
    for (auto it = after.empty() ? users.begin() : users.lower_bound(after); it != users.end(); ++it) {
      if (out.size() == limit) {
        next = make_cursor("user", it->first);
        break;
      }
      out.push_back(user_json(it->second));
    }
    return json::object{{"members", std::move(out)}, {"response_metadata", json::object{{"next_cursor", next}}}};
  }

  json::object usergroups_list(const json::object& args) {
    const bool include_disabled = arg_bool(args, "include_disabled");
    const bool include_users = arg_bool(args, "include_users");
    json::array out;
    for (auto& g : usergroups) {
      if (g.disabled && !include_disabled)
        continue;
      json::object o{{"id", g.id},
                     {"team_id", cfg.team_id},
                     {"is_usergroup", true},
                     {"handle", g.handle},
                     {"name", g.name},
                     {"date_delete", g.disabled ? wall_seconds() : 0},
                     {"user_count", static_cast<std::int64_t>(g.users.size())}};
      if (include_users) {
        json::array us;
        for (auto& u : g.users)
          us.emplace_back(u);
        o["users"] = std::move(us);
      }
      out.push_back(std::move(o));
    }
    return json::object{{"usergroups", std::move(out)}};
  }

  json::object files_get_upload_url(const json::object& args) {
    auto filename = arg_string(args, "filename");
    auto length = arg_int(args, "length");
    if (filename.empty() || !length || *length <= 0)
      throw api_error{"invalid_arguments"};
    stored_file f;
    f.id = new_file_id();
    f.name = filename;
    f.title = filename;
    f.mimetype = guess_mimetype(filename);
    f.user = cfg.bot_user_id;
    f.alt_text = arg_string(args, "alt_txt");
    if (f.alt_text.empty())
      f.alt_text = arg_string(args, "alt_text");
    f.declared_length = *length;
    f.created = wall_seconds();
    auto id = f.id;
    files.emplace(id, std::move(f));
    return json::object{{"upload_url", host_url() + "/upload/" + id}, {"file_id", id}};
  }

  json::object files_complete_upload(const json::object& args) {
    auto list = arg_json(args, "files", "invalid_arguments");
    if (!list.is_array() || list.as_array().empty())
      throw api_error{"invalid_arguments"};
    std::string channel = arg_string(args, "channel_id");
    if (channel.empty())
      channel = arg_string(args, "channels");  // one channel; Slack rejects lists
    if (channel.find(',') != std::string::npos)
      throw api_error{"invalid_arguments"};
    const std::string thread_ts = arg_string(args, "thread_ts");
    channel_state* ch = channel.empty() ? nullptr : &writable_channel(channel);
    if (ch != nullptr && !thread_ts.empty()) {
      auto* parent = find_parent(*ch, thread_ts);
      if (parent == nullptr || parent->is_reply())
        throw api_error{"thread_not_found"};
    }
    std::vector<stored_file*> done;
    for (auto& item : list.as_array()) {
      auto* o = item.if_object();
      if (o == nullptr || !o->contains("id"))
        throw api_error{"invalid_arguments"};
      auto id = arg_string(*o, "id");
      auto it = files.find(id);
      if (it == files.end() || !it->second.uploaded || it->second.completed)
        throw api_error{"file_not_found"};
      if (auto title = arg_string(*o, "title"); !title.empty())
        it->second.title = title;
      done.push_back(&it->second);
    }
    for (auto* f : done)
      f->completed = true;

    std::string posted_ts;
    if (ch != nullptr) {
      // One message carries every file and the comment, as in Slack.
      stored_message m;
      m.text = truncate_text(arg_string(args, "initial_comment"));
      m.blocks = arg_json(args, "blocks", "invalid_blocks");
      m.user = cfg.bot_user_id;
      m.bot_id = cfg.bot_id;
      m.app_id = cfg.app_id;
      m.upload = true;
      for (auto* f : done)
        m.files.push_back(f->id);
      auto& stored = insert_message(*ch, std::move(m), thread_ts);
      posted_ts = stored.ts;
      record_sent("files.completeUploadExternal", ch->info.id, stored.ts, stored.thread_ts, stored.text,
                  args);
      event_new_message(*ch, stored);
    } else {
      record_sent("files.completeUploadExternal", "", "", "", "", args);
    }
    json::array out;
    for (auto* f : done) {
      auto o = file_json(*f);
      if (cfg.complete_upload_reports_shares && ch != nullptr) {
        json::object share{{"ts", posted_ts}, {"channel_name", ch->info.name}, {"team_id", cfg.team_id}};
        if (!thread_ts.empty())
          share["thread_ts"] = thread_ts;
        o["shares"] = json::object{
            {ch->info.is_private ? "private" : "public", json::object{{ch->info.id, json::array{share}}}}};
      } else {
        o["shares"] = json::object{};
      }
      out.push_back(std::move(o));
    }
    return json::object{{"files", std::move(out)}};
  }

  json::object dispatch(const std::string& method, const json::object& args) {
    using handler = json::object (impl::*)(const json::object&);
    static const std::map<std::string, handler> methods = {
        {"auth.test", &impl::auth_test},
        {"chat.postMessage", &impl::chat_post_message},
        {"chat.update", &impl::chat_update},
        {"chat.delete", &impl::chat_delete},
        {"reactions.add", &impl::reactions_add},
        {"conversations.replies", &impl::conversations_replies},
        {"conversations.history", &impl::conversations_history},
        {"conversations.info", &impl::conversations_info},
        {"users.conversations", &impl::users_conversations},
        {"users.info", &impl::users_info},
        {"users.list", &impl::users_list},
        {"usergroups.list", &impl::usergroups_list},
        {"files.getUploadURLExternal", &impl::files_get_upload_url},
        {"files.completeUploadExternal", &impl::files_complete_upload},
    };
    if (method == "files.upload")
      throw api_error{"method_deprecated"};  // switched off on 12 Nov 2025
    auto it = methods.find(method);
    if (it == methods.end())
      throw api_error{"unknown_method"};
    return (this->*(it->second))(args);
  }

  /// Token bucket for (method, channel); answers seconds to wait, 0 = go.
  int take_rate_token(const std::string& method, const json::object& args) {
    auto lim = limits.find(method);
    if (lim == limits.end() || lim->second.per_second <= 0)
      return 0;
    const std::string channel = method == "chat.postMessage" ? arg_string(args, "channel") : "";
    auto now = steady::now();
    auto [it, fresh] = buckets.try_emplace({method, channel});
    auto& b = it->second;
    if (fresh) {
      b.tokens = lim->second.burst;
    } else {
      double elapsed = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(lim->second.burst, b.tokens + elapsed * lim->second.per_second);
    }
    b.at = now;
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return 0;
    }
    return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / lim->second.per_second)));
  }

  // ---------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------

  static void answer(httplib::Response& res, int status, const json::object& body) {
    res.status = status;
    res.set_content(json::serialize(body), "application/json; charset=utf-8");
  }

  static std::string bearer(const httplib::Request& req) {
    auto h = req.get_header_value("Authorization");
    if (h.rfind("Bearer ", 0) == 0)
      return h.substr(7);
    return {};
  }

  /// Sleeps, unless the fake stops first.
  void interruptible_sleep(std::chrono::milliseconds d) {
    std::unique_lock lk(stop_mu);
    stop_cv.wait_for(lk, d, [&] { return stopping; });
  }

  /// One Web API call: gather arguments, apply faults, auth, limits, run.
  void serve_api(const std::string& method, const httplib::Request& req, httplib::Response& res,
                 const std::string& body, const std::vector<httplib::MultipartFormData>& parts) {
    json::object args;
    for (auto& [k, v] : req.params)  // the query string (GET, or extra fields on POST)
      args[k] = v;
    const auto content_type = req.get_header_value("Content-Type");
    const bool json_body = content_type.rfind("application/json", 0) == 0;
    std::optional<api_error> parse_error;
    if (json_body) {
      boost::system::error_code ec;
      auto v = json::parse(body, ec);
      if (ec)
        parse_error = api_error{"invalid_json"};
      else if (!v.is_object())
        parse_error = api_error{"json_not_object"};
      else
        for (auto& kv : v.as_object())
          args[kv.key()] = kv.value();
    } else if (req.is_multipart_form_data()) {
      for (auto& p : parts)
        if (p.filename.empty())
          args[p.name] = p.content;
    } else if (!body.empty()) {
      parse_form(body, args);
    }
    // Slack reads the token from the header, or from a form field; never
    // from a JSON body.
    std::string token = bearer(req);
    if (token.empty() && !json_body)
      token = arg_string(args, "token");
    args.erase("token");

    std::optional<fault_spec> fault;
    json::object reply;
    int status = 200;
    int retry_after = 0;
    {
      std::lock_guard lk(mu);
      api_call call{method, 200, "", args, std::chrono::steady_clock::now()};
      if (auto f = faults.find(method); f != faults.end() && !f->second.empty()) {
        fault = f->second.front();
        if (--f->second.front().count <= 0)
          f->second.pop_front();
      }
      try {
        if (fault && fault->kind == fault_kind::ratelimit) {
          retry_after = fault->retry_after;
          throw api_error{"ratelimited"};
        }
        if (fault && fault->kind == fault_kind::server_error)
          throw api_error{"internal_error"};
        if (fault && fault->kind == fault_kind::error) {
          api_error e{fault->error};
          if (fault->error == "missing_scope")
            e.extra = json::object{{"needed", "chat:write"}, {"provided", "channels:history"}};
          throw e;
        }
        if (parse_error)
          throw *parse_error;
        if (token.empty())
          throw api_error{"not_authed"};
        if (token != cfg.bot_token)
          throw api_error{"invalid_auth"};
        if (token_revoked)
          throw api_error{"token_revoked"};
        if (int wait = take_rate_token(method, args); wait > 0) {
          retry_after = wait;
          throw api_error{"ratelimited"};
        }
        reply = json::object{{"ok", true}};
        for (auto& kv : dispatch(method, args))
          reply[kv.key()] = kv.value();
      } catch (const api_error& e) {
        reply = json::object{{"ok", false}, {"error", e.code}};
        for (auto& kv : e.extra)
          reply[kv.key()] = kv.value();
        call.error = e.code;
        if (e.code == "ratelimited")
          status = 429;
        else if (fault && fault->kind == fault_kind::server_error)
          status = 500;
      }
      call.http_status = status;
      call_log.push_back(std::move(call));
    }
    if (status == 429)
      res.set_header("Retry-After", std::to_string(retry_after));
    if (fault && fault->kind == fault_kind::slow)
      interruptible_sleep(fault->delay);
    if (fault && fault->kind == fault_kind::drop) {
      // httplib cannot close a connection without answering; it does cut it
      // when a content provider fails, after the status line and headers, so
      // the client gets a truncated body: no usable answer, like a dropped
      // connection. The call itself was executed.
      res.status = 200;
      res.set_content_provider(
          1024, "application/json; charset=utf-8",
          [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
      return;
    }
    answer(res, status, reply);
  }

  void serve_upload(const std::string& file_id, const std::string& body,
                    const std::vector<httplib::MultipartFormData>& parts, httplib::Response& res) {
    std::string bytes = body;
    if (!parts.empty()) {  // multipart: the file part (the SDK names it "body")
      auto it = std::find_if(parts.begin(), parts.end(),
                             [](const httplib::MultipartFormData& p) { return !p.filename.empty(); });
      bytes = it != parts.end() ? it->content : parts.front().content;
    }
    std::lock_guard lk(mu);
    auto it = files.find(file_id);
    if (it == files.end() || it->second.completed) {
      res.status = 404;
      res.set_content("Not Found", "text/plain");
      return;
    }
    it->second.content = bytes;
    it->second.uploaded = true;
    record_sent("upload", "", "", "", bytes, json::object{{"file_id", file_id}});
    res.status = 200;
    res.set_content("OK - " + std::to_string(bytes.size()), "text/plain");
  }

  void serve_download(const std::string& file_id, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lk(mu);
    // Real Slack answers an HTML sign-in page (HTTP 200) without a valid
    // token; the fake answers 401, which is easier to assert.
    if (bearer(req) != cfg.bot_token || token_revoked) {
      res.status = 401;
      res.set_content("Unauthorized", "text/plain");
      return;
    }
    auto it = files.find(file_id);
    if (it == files.end() || !it->second.uploaded) {
      res.status = 404;
      res.set_content("Not Found", "text/plain");
      return;
    }
    res.status = 200;
    res.set_content(it->second.content, it->second.mimetype.c_str());
  }

  void install_routes() {
    auto read_body = [](const httplib::Request& req, const httplib::ContentReader& reader, std::string& body,
                        std::vector<httplib::MultipartFormData>& parts) {
      if (req.is_multipart_form_data()) {
        reader(
            [&](const httplib::MultipartFormData& f) {
              parts.push_back(f);
              return true;
            },
            [&](const char* data, std::size_t n) {
              parts.back().content.append(data, n);
              return true;
            });
      } else {
        reader([&](const char* data, std::size_t n) {
          body.append(data, n);
          return true;
        });
      }
    };
    // A content reader handler reads the body itself: httplib's own parsing
    // would cap form bodies at 8 KB (CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH).
    server.Post(R"(/api/([A-Za-z0-9_.]+))",
                [this, read_body](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
                  std::string body;
                  std::vector<httplib::MultipartFormData> parts;
                  read_body(req, reader, body, parts);
                  serve_api(req.matches[1], req, res, body, parts);
                });
    server.Get(R"(/api/([A-Za-z0-9_.]+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve_api(req.matches[1], req, res, "", {});
    });
    server.Post(R"(/upload/([A-Za-z0-9]+))",
                [this, read_body](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
                  std::string body;
                  std::vector<httplib::MultipartFormData> parts;
                  read_body(req, reader, body, parts);
                  serve_upload(req.matches[1], body, parts, res);
                });
    server.Get(R"(/files-pri/([A-Za-z0-9]+)/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      serve_download(req.matches[1], req, res);
    });
    server.Post(R"(/control/([a-z_]+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve_control(req.matches[1], req.body, req, res);
    });
    server.Get(R"(/control/([a-z_]+))", [this](const httplib::Request& req, httplib::Response& res) {
      serve_control(req.matches[1], "", req, res);
    });
  }

  // Control over HTTP: defined after fake_slack's methods (it calls them).
  fake_slack* owner = nullptr;
  void serve_control(const std::string& op, const std::string& body, const httplib::Request& req,
                     httplib::Response& res);

  // ---------------------------------------------------------------------------
  // Event delivery thread
  // ---------------------------------------------------------------------------

  void deliver_loop() {
    std::unique_lock lk(ev_mu);
    while (!ev_stopping) {
      if (ev_queue.empty()) {
        ev_cv.wait(lk);
        continue;
      }
      auto first = ev_queue.begin();
      if (first->first > steady::now()) {
        // A copy: wait_until reads its deadline after waking, and stop() may
        // have freed the queue's node by then.
        const auto due = first->first;
        ev_cv.wait_until(lk, due);
        continue;
      }
      pending_event p = std::move(first->second);
      ev_queue.erase(first);
      const std::string url = events_url;
      ++ev_in_flight;
      lk.unlock();
      auto [status, reason] = deliver(url, p);
      lk.lock();
      --ev_in_flight;
      deliveries.push_back(
          event_delivery{p.event_id, p.retry_num, p.retry_reason, status, p.body, p.happened, steady::now()});
      const std::size_t max_retries = cfg.event_retry_delays.size();
      if (!(status >= 200 && status < 300) && static_cast<std::size_t>(p.retry_num) < max_retries &&
          !url.empty()) {
        auto delay = cfg.event_retry_delays[static_cast<std::size_t>(p.retry_num)];
        p.retry_num += 1;
        p.retry_reason = reason;
        ev_queue.emplace(steady::now() + delay, std::move(p));
      }
      ev_cv.notify_all();
    }
  }

  /// One signed POST; answers the HTTP status (0 = none) and, on failure,
  /// Slack's X-Slack-Retry-Reason for the retry.
  std::pair<int, std::string> deliver(const std::string& url, const pending_event& p) {
    auto parts = parse_url(url);
    if (!parts)
      return {0, "unknown_error"};
    httplib::Client client(parts->scheme_host_port);
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(cfg.event_timeout);
    auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(cfg.event_timeout - secs);
    client.set_connection_timeout(secs.count(), usecs.count());
    client.set_read_timeout(secs.count(), usecs.count());
    client.set_write_timeout(secs.count(), usecs.count());
    const std::string timestamp = std::to_string(wall_seconds());
    httplib::Headers headers{
        {"X-Slack-Request-Timestamp", timestamp},
        {"X-Slack-Signature", slack_signature(cfg.signing_secret, timestamp, p.body)},
        {"User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)"},
    };
    if (p.retry_num > 0) {
      headers.emplace("X-Slack-Retry-Num", std::to_string(p.retry_num));
      headers.emplace("X-Slack-Retry-Reason", p.retry_reason);
    }
    auto r = client.Post(parts->path, headers, p.body, "application/json");
    if (!r) {
      switch (r.error()) {
        case httplib::Error::Connection:
          return {0, "connection_failed"};
        case httplib::Error::SSLConnection:
        case httplib::Error::SSLServerVerification:
          return {0, "ssl_error"};
        case httplib::Error::Read:
        case httplib::Error::Write:
          return {0, "http_timeout"};
        default:
          return {0, "unknown_error"};
      }
    }
    return {r->status, r->status >= 200 && r->status < 300 ? "" : "http_error"};
  }
};

// =============================================================================
// fake_slack
// =============================================================================

fake_slack::fake_slack(fake_slack_config config) : impl_(std::make_unique<impl>(std::move(config))) {
  impl_->owner = this;
  impl_->install_routes();
}

fake_slack::~fake_slack() { stop(); }

void fake_slack::start() {
  auto& d = *impl_;
  if (d.running)
    return;
  if (d.started_once)  // httplib::Server does not listen again after stop()
    throw std::runtime_error("fake_slack: cannot start again after stop(); make a new one");
  d.started_once = true;
  auto threads = d.cfg.worker_threads;
  d.server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  d.server.set_tcp_nodelay(true);
  d.server.set_keep_alive_max_count(1000);
  int port = d.cfg.port == 0 ? d.server.bind_to_any_port(d.cfg.host)
                             : (d.server.bind_to_port(d.cfg.host, d.cfg.port) ? d.cfg.port : -1);
  if (port <= 0)
    throw std::runtime_error("fake_slack: cannot bind " + d.cfg.host + ":" + std::to_string(d.cfg.port));
  d.bound_port = port;
  {
    std::lock_guard lk(d.stop_mu);
    d.stopping = false;
  }
  {
    std::lock_guard lk(d.ev_mu);
    d.ev_stopping = false;
  }
  d.running = true;
  d.server_thread = std::thread([&d] { d.server.listen_after_bind(); });
  for (std::size_t i = 0; i < std::max<std::size_t>(1, d.cfg.event_senders); ++i)
    d.ev_threads.emplace_back([&d] { d.deliver_loop(); });
}

void fake_slack::stop() {
  auto& d = *impl_;
  if (!d.running.exchange(false))
    return;
  {
    std::lock_guard lk(d.stop_mu);
    d.stopping = true;
  }
  d.stop_cv.notify_all();
  d.server.stop();
  if (d.server_thread.joinable())
    d.server_thread.join();
  {
    std::lock_guard lk(d.ev_mu);
    d.ev_stopping = true;
    d.ev_queue.clear();
  }
  d.ev_cv.notify_all();
  for (auto& t : d.ev_threads)
    if (t.joinable())
      t.join();
  d.ev_threads.clear();
}

int fake_slack::port() const { return impl_->bound_port; }
std::string fake_slack::server_url() const { return impl_->host_url(); }
std::string fake_slack::base_url() const { return impl_->host_url() + "/api/"; }
const fake_slack_config& fake_slack::config() const { return impl_->cfg; }

// --- people on the Slack side -----------------------------------------------

namespace {
void require_user(const std::map<std::string, fake_user>& users, const std::string& id) {
  if (!users.count(id))
    throw fake_slack_error("user_not_found");
}
}  // namespace

std::string fake_slack::post_message(const std::string& channel, const std::string& user_id,
                                     const std::string& text, std::vector<fake_file> files) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  auto& ch = d.control_channel(channel);
  require_user(d.users, user_id);
  if (ch.info.archived)
    throw fake_slack_error("is_archived");
  stored_message m;
  m.user = user_id;
  m.text = truncate_text(text);
  m.files = d.store_person_files(user_id, std::move(files));
  if (!m.files.empty())
    m.subtype = "file_share";
  auto& stored = d.insert_message(ch, std::move(m), "");
  d.event_new_message(ch, stored);
  return stored.ts;
}

std::string fake_slack::post_reply(const std::string& channel, const std::string& thread_ts,
                                   const std::string& user_id, const std::string& text,
                                   std::vector<fake_file> files, bool broadcast) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  auto& ch = d.control_channel(channel);
  require_user(d.users, user_id);
  if (ch.info.archived)
    throw fake_slack_error("is_archived");
  if (thread_ts.empty())
    throw fake_slack_error("thread_not_found");
  stored_message m;
  m.user = user_id;
  m.text = truncate_text(text);
  m.files = d.store_person_files(user_id, std::move(files));
  if (broadcast)
    m.subtype = "thread_broadcast";
  else if (!m.files.empty())
    m.subtype = "file_share";
  try {
    auto& stored = d.insert_message(ch, std::move(m), thread_ts);
    d.event_new_message(ch, stored);
    return stored.ts;
  } catch (const api_error& e) {
    throw fake_slack_error(e.code);
  }
}

std::string fake_slack::add_file_reply(const std::string& channel, const std::string& thread_ts,
                                       const std::string& user_id, fake_file file, const std::string& text) {
  std::vector<fake_file> files;
  files.push_back(std::move(file));
  return post_reply(channel, thread_ts, user_id, text, std::move(files));
}

void fake_slack::edit_message(const std::string& channel, const std::string& ts, const std::string& new_text) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  auto& ch = d.control_channel(channel);
  auto* m = impl::find_message(ch, ts);
  if (m == nullptr || m->subtype == "tombstone")
    throw fake_slack_error("message_not_found");
  auto before = d.message_json(ch, *m, true, false);
  m->text = truncate_text(new_text);
  m->edited_user = m->user;
  m->edited_ts = d.next_ts();
  d.event_changed(ch, before, *m);
}

void fake_slack::delete_message(const std::string& channel, const std::string& ts) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  auto& ch = d.control_channel(channel);
  auto* m = impl::find_message(ch, ts);
  if (m == nullptr || m->subtype == "tombstone")
    throw fake_slack_error("message_not_found");
  auto before = d.message_json(ch, *m, true, false);
  const bool by_bot = !m->bot_id.empty();
  const std::string deleted_ts = m->ts;
  d.remove_message(ch, *m);
  d.event_deleted(ch, before, deleted_ts, by_bot);
}

void fake_slack::add_reaction(const std::string& channel, const std::string& ts, const std::string& user_id,
                              const std::string& name) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  auto& ch = d.control_channel(channel);
  require_user(d.users, user_id);
  auto* m = impl::find_message(ch, ts);
  if (m == nullptr)
    throw fake_slack_error("message_not_found");
  auto n = impl::strip_colons(name);
  auto r = std::find_if(m->reactions.begin(), m->reactions.end(), [&](const reaction& x) { return x.name == n; });
  if (r == m->reactions.end())
    r = m->reactions.insert(m->reactions.end(), reaction{n, {}});
  if (std::find(r->users.begin(), r->users.end(), user_id) == r->users.end())
    r->users.push_back(user_id);
}

// --- the workspace changing ---------------------------------------------------

void fake_slack::archive_channel(const std::string& channel) {
  std::lock_guard lk(impl_->mu);
  impl_->control_channel(channel).info.archived = true;
}
void fake_slack::unarchive_channel(const std::string& channel) {
  std::lock_guard lk(impl_->mu);
  impl_->control_channel(channel).info.archived = false;
}
void fake_slack::remove_app(const std::string& channel) {
  std::lock_guard lk(impl_->mu);
  impl_->control_channel(channel).info.is_member = false;
}
void fake_slack::invite_app(const std::string& channel) {
  std::lock_guard lk(impl_->mu);
  impl_->control_channel(channel).info.is_member = true;
}
void fake_slack::add_channel(fake_channel channel) {
  std::lock_guard lk(impl_->mu);
  if (channel.id.empty())
    throw fake_slack_error("invalid_arguments");
  impl_->add_channel_locked(channel);
}
void fake_slack::add_user(fake_user user) {
  std::lock_guard lk(impl_->mu);
  if (user.id.empty())
    throw fake_slack_error("invalid_arguments");
  impl_->users[user.id] = std::move(user);
}
std::string fake_slack::person_named(const std::string& name) {
  auto lower = [](std::string v) {
    for (auto& c : v)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  auto wanted = lower(name);
  if (wanted.empty())
    throw fake_slack_error("invalid_arguments");
  std::lock_guard lk(impl_->mu);
  for (const auto& [id, u] : impl_->users)
    if (!u.is_bot && (lower(u.name) == wanted || lower(u.display_name) == wanted || lower(u.real_name) == wanted))
      return id;
  // A stable id per name, so the same person keeps one id across restarts.
  char id[32];
  std::snprintf(id, sizeof id, "U1%08X", static_cast<unsigned>(std::hash<std::string>{}(wanted) & 0xFFFFFFFFu));
  std::string handle;
  for (char c : wanted)
    handle += std::isalnum(static_cast<unsigned char>(c)) ? c : '.';
  impl_->users[id] = fake_user{id, handle, name, name, false};
  return id;
}
std::string fake_slack::display_name_of(const std::string& user_id) const {
  std::lock_guard lk(impl_->mu);
  auto u = impl_->users.find(user_id);
  if (u == impl_->users.end())
    return "";
  for (const auto* name : {&u->second.display_name, &u->second.real_name, &u->second.name})
    if (!name->empty())
      return *name;
  return "";
}
void fake_slack::revoke_token() {
  std::lock_guard lk(impl_->mu);
  impl_->token_revoked = true;
}
void fake_slack::restore_token() {
  std::lock_guard lk(impl_->mu);
  impl_->token_revoked = false;
}

// --- Slack misbehaving --------------------------------------------------------

void fake_slack::inject_fault(const std::string& method, fault_spec fault) {
  if (fault.count <= 0)
    return;
  std::lock_guard lk(impl_->mu);
  impl_->faults[method].push_back(std::move(fault));
}

void fake_slack::inject_fault(const std::string& method, fault_kind kind, int count, int retry_after,
                              std::chrono::milliseconds delay) {
  fault_spec f;
  f.kind = kind;
  f.count = count;
  f.retry_after = retry_after;
  f.delay = delay;
  inject_fault(method, std::move(f));
}

void fake_slack::clear_faults() {
  std::lock_guard lk(impl_->mu);
  impl_->faults.clear();
}

void fake_slack::set_rate_limit(const std::string& method, rate_limit limit) {
  std::lock_guard lk(impl_->mu);
  impl_->limits[method] = limit;
  for (auto it = impl_->buckets.begin(); it != impl_->buckets.end();)
    it = it->first.first == method ? impl_->buckets.erase(it) : std::next(it);
}

void fake_slack::set_rate_limits(std::map<std::string, rate_limit> limits) {
  std::lock_guard lk(impl_->mu);
  impl_->limits = std::move(limits);
  impl_->buckets.clear();
}

// --- Events API ---------------------------------------------------------------

void fake_slack::set_events_url(const std::string& url) {
  std::lock_guard lk(impl_->ev_mu);
  impl_->events_url = url;
}
void fake_slack::events_enabled(bool on) {
  std::lock_guard lk(impl_->ev_mu);
  impl_->events_on = on;
}
void fake_slack::duplicate_next_events(int n) {
  std::lock_guard lk(impl_->ev_mu);
  impl_->duplicate_left = std::max(0, n);
}
void fake_slack::delay_events(std::chrono::milliseconds delay) {
  std::lock_guard lk(impl_->ev_mu);
  impl_->events_delay = delay;
}

bool fake_slack::verify_events_url() {
  std::string url;
  {
    std::lock_guard lk(impl_->ev_mu);
    url = impl_->events_url;
  }
  auto parts = parse_url(url);
  if (!parts)
    return false;
  const std::string challenge = "challenge-" + std::to_string(wall_seconds());
  const std::string body = json::serialize(json::object{
      {"token", "fake-verification-token"}, {"challenge", challenge}, {"type", "url_verification"}});
  const std::string timestamp = std::to_string(wall_seconds());
  httplib::Client client(parts->scheme_host_port);
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(impl_->cfg.event_timeout).count() + 1);
  httplib::Headers headers{{"X-Slack-Request-Timestamp", timestamp},
                           {"X-Slack-Signature", slack_signature(impl_->cfg.signing_secret, timestamp, body)}};
  auto r = client.Post(parts->path, headers, body, "application/json");
  if (!r || r->status != 200)
    return false;
  // Slack accepts the challenge as plain text or as {"challenge": "…"}.
  if (r->body == challenge)
    return true;
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  return !ec && v.is_object() && arg_string(v.as_object(), "challenge") == challenge;
}

bool fake_slack::wait_events_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->ev_mu);
  return impl_->ev_cv.wait_for(lk, timeout,
                               [&] { return impl_->ev_queue.empty() && impl_->ev_in_flight == 0; });
}

std::vector<event_delivery> fake_slack::event_deliveries() const {
  std::lock_guard lk(impl_->ev_mu);
  return impl_->deliveries;
}

// --- reading back ---------------------------------------------------------------

std::vector<sent_item> fake_slack::sent() const {
  std::lock_guard lk(impl_->mu);
  return impl_->sent_log;
}

std::vector<api_call> fake_slack::calls() const {
  std::lock_guard lk(impl_->mu);
  return impl_->call_log;
}

std::size_t fake_slack::call_count(const std::string& method) const {
  std::lock_guard lk(impl_->mu);
  return static_cast<std::size_t>(std::count_if(impl_->call_log.begin(), impl_->call_log.end(),
                                                [&](const api_call& c) { return c.method == method; }));
}

std::size_t fake_slack::busiest_window(const std::string& method, std::chrono::milliseconds window) const {
  if (window <= std::chrono::milliseconds::zero())
    return 0;
  std::vector<std::chrono::steady_clock::time_point> at;  // in the order the calls came, so by time
  {
    std::lock_guard lk(impl_->mu);
    for (const auto& c : impl_->call_log)
      if (c.method == method)
        at.push_back(c.at);
  }
  std::size_t most = 0;
  for (std::size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] >= window)
      ++i;
    most = std::max(most, j - i + 1);
  }
  return most;
}

std::optional<json::object> fake_slack::message(const std::string& channel, const std::string& ts) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->channels.find(channel);
  if (it == impl_->channels.end())
    return std::nullopt;
  auto* m = impl::find_message(it->second, ts);
  if (m == nullptr)
    return std::nullopt;
  return impl_->message_json(it->second, *m, true, true);
}

std::vector<json::object> fake_slack::thread(const std::string& channel, const std::string& thread_ts) const {
  std::lock_guard lk(impl_->mu);
  std::vector<json::object> out;
  auto it = impl_->channels.find(channel);
  if (it == impl_->channels.end())
    return out;
  auto* root = impl::find_message(it->second, thread_ts);
  if (root == nullptr)
    return out;
  out.push_back(impl_->message_json(it->second, *root, true, true));
  for (auto* r : impl::replies_of(it->second, *root))
    out.push_back(impl_->message_json(it->second, *r, true, true));
  return out;
}

std::optional<std::string> fake_slack::file_content(const std::string& file_id) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->files.find(file_id);
  if (it == impl_->files.end() || !it->second.uploaded)
    return std::nullopt;
  return it->second.content;
}

// =============================================================================
// Control over HTTP: /control/<op>, JSON in and out
// =============================================================================

namespace {

std::vector<fake_file> files_from_json(const json::object& args) {
  std::vector<fake_file> out;
  auto it = args.find("files");
  if (it == args.end() || !it->value().is_array())
    return out;
  for (auto& v : it->value().as_array()) {
    auto* o = v.if_object();
    if (o == nullptr)
      throw fake_slack_error("invalid_arguments");
    fake_file f;
    f.name = arg_string(*o, "name");
    f.mimetype = arg_string(*o, "mimetype");
    f.title = arg_string(*o, "title");
    if (o->contains("content_base64")) {
      auto bytes = base64_decode(arg_string(*o, "content_base64"));
      if (!bytes)
        throw fake_slack_error("invalid_arguments");
      f.content = *bytes;
    } else {
      f.content = arg_string(*o, "content");
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::string required(const json::object& args, std::string_view key) {
  auto v = arg_string(args, key);
  if (v.empty())
    throw fake_slack_error("invalid_arguments");
  return v;
}

}  // namespace

void fake_slack::impl::serve_control(const std::string& op, const std::string& body, const httplib::Request& req,
                                     httplib::Response& res) {
  json::object args;
  for (auto& [k, v] : req.params)
    args[k] = v;
  if (!body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object())
      return answer(res, 400, json::object{{"ok", false}, {"error", "invalid_json"}});
    for (auto& kv : v.as_object())
      args[kv.key()] = kv.value();
  }
  auto& s = *owner;
  json::object out{{"ok", true}};
  try {
    if (op == "post_message") {
      out["ts"] = s.post_message(required(args, "channel"), required(args, "user"), arg_string(args, "text"),
                                 files_from_json(args));
    } else if (op == "post_reply") {
      out["ts"] = s.post_reply(required(args, "channel"), required(args, "thread_ts"), required(args, "user"),
                               arg_string(args, "text"), files_from_json(args), arg_bool(args, "broadcast"));
    } else if (op == "add_file_reply") {  // post_reply that must carry files
      auto files = files_from_json(args);
      if (files.empty())
        throw fake_slack_error("invalid_arguments");
      out["ts"] = s.post_reply(required(args, "channel"), required(args, "thread_ts"), required(args, "user"),
                               arg_string(args, "text"), std::move(files));
    } else if (op == "edit_message") {
      s.edit_message(required(args, "channel"), required(args, "ts"), arg_string(args, "text"));
    } else if (op == "delete_message") {
      s.delete_message(required(args, "channel"), required(args, "ts"));
    } else if (op == "add_reaction") {
      s.add_reaction(required(args, "channel"), required(args, "ts"), required(args, "user"),
                     required(args, "name"));
    } else if (op == "archive_channel") {
      s.archive_channel(required(args, "channel"));
    } else if (op == "unarchive_channel") {
      s.unarchive_channel(required(args, "channel"));
    } else if (op == "remove_app") {
      s.remove_app(required(args, "channel"));
    } else if (op == "invite_app") {
      s.invite_app(required(args, "channel"));
    } else if (op == "revoke_token") {
      s.revoke_token();
    } else if (op == "restore_token") {
      s.restore_token();
    } else if (op == "inject_fault") {
      fault_spec f;
      f.kind = parse_fault_kind(required(args, "kind"));
      f.count = static_cast<int>(arg_int(args, "count").value_or(1));
      f.retry_after = static_cast<int>(arg_int(args, "retry_after").value_or(1));
      f.delay = std::chrono::milliseconds(arg_int(args, "delay_ms").value_or(0));
      if (auto e = arg_string(args, "error"); !e.empty())
        f.error = e;
      s.inject_fault(required(args, "method"), f);
    } else if (op == "clear_faults") {
      s.clear_faults();
    } else if (op == "rate_limit") {
      // {"method","per_second","burst"}, or {"slack_defaults":true}, or {"off":true}
      if (arg_bool(args, "off"))
        s.set_rate_limits({});
      else if (arg_bool(args, "slack_defaults"))
        s.set_rate_limits(slack_rate_limits());
      else {
        auto num = [&](std::string_view k, double fallback) {
          auto it = args.find(k);
          if (it == args.end())
            return fallback;
          if (it->value().is_double())
            return it->value().as_double();
          return static_cast<double>(arg_int(args, k).value_or(0));
        };
        s.set_rate_limit(required(args, "method"), rate_limit{num("per_second", 1), num("burst", 1)});
      }
    } else if (op == "events_url") {
      s.set_events_url(arg_string(args, "url"));
    } else if (op == "events_enabled") {
      s.events_enabled(arg_bool(args, "enabled", true));
    } else if (op == "duplicate_next_events") {
      s.duplicate_next_events(static_cast<int>(arg_int(args, "count").value_or(1)));
    } else if (op == "delay_events") {
      s.delay_events(std::chrono::milliseconds(arg_int(args, "ms").value_or(0)));
    } else if (op == "verify_events_url") {
      out["verified"] = s.verify_events_url();
    } else if (op == "wait_events_idle") {
      out["idle"] = s.wait_events_idle(std::chrono::milliseconds(arg_int(args, "timeout_ms").value_or(10000)));
    } else if (op == "sent") {
      json::array items;
      for (auto& x : s.sent())
        items.push_back(json::object{{"method", x.method},
                                     {"channel", x.channel},
                                     {"ts", x.ts},
                                     {"thread_ts", x.thread_ts},
                                     {"text", x.text},
                                     {"args", x.args}});
      out["sent"] = std::move(items);
    } else if (op == "calls") {
      json::array items;
      for (auto& c : s.calls())
        items.push_back(json::object{
            {"method", c.method}, {"http_status", c.http_status}, {"error", c.error}, {"args", c.args}});
      out["calls"] = std::move(items);
    } else if (op == "deliveries") {
      json::array items;
      for (auto& e : s.event_deliveries())
        items.push_back(json::object{{"event_id", e.event_id},
                                     {"retry_num", e.retry_num},
                                     {"retry_reason", e.retry_reason},
                                     {"http_status", e.http_status}});
      out["deliveries"] = std::move(items);
    } else if (op == "thread") {
      json::array items;
      for (auto& m : s.thread(required(args, "channel"), required(args, "ts")))
        items.push_back(std::move(m));
      out["messages"] = std::move(items);
    } else {
      return answer(res, 404, json::object{{"ok", false}, {"error", "unknown_control"}});
    }
  } catch (const fake_slack_error& e) {
    return answer(res, 400, json::object{{"ok", false}, {"error", e.what()}});
  } catch (const api_error& e) {
    return answer(res, 400, json::object{{"ok", false}, {"error", e.code}});
  }
  answer(res, 200, out);
}

}  // namespace backline::slack
