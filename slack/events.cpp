#include "slack/events.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>
#include <optional>

#include "backline/domain.hpp"
#include "slack/signature.hpp"

namespace json = boost::json;

namespace backline::slack {
namespace {

std::string str(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string())
    return std::string(v->as_string());
  return {};
}

} // namespace

status verify_request(std::string_view secret, std::string_view timestamp, std::string_view signature,
                      std::string_view body, std::chrono::system_clock::time_point now) {
  if (secret.empty())
    return {errc::unauthenticated, "no signing secret is configured"};
  if (timestamp.empty() || signature.empty())
    return {errc::unauthenticated, "missing X-Slack-Request-Timestamp or X-Slack-Signature"};
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc{} || end != timestamp.data() + timestamp.size())
    return {errc::unauthenticated, "X-Slack-Request-Timestamp is not a number"};
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (ts < now_s - 300 || ts > now_s + 300)
    return {errc::unauthenticated, "the request timestamp is more than 300 s from now"};
  auto expected = slack_signature(std::string(secret), std::string(timestamp), std::string(body));
  if (!signatures_equal(expected, signature))
    return {errc::unauthenticated, "the signature does not match"};
  return {};
}

result<slack_event> parse_event(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return status{errc::invalid_argument, "the body is not a JSON object"};
  auto& o = v.as_object();
  slack_event out;
  auto type = str(o, "type");
  if (type == "url_verification") {
    out.what = slack_event::kind::url_verification;
    out.challenge = str(o, "challenge");
    return out;
  }
  out.event_id = str(o, "event_id");
  auto* e = o.if_contains("event");
  if (type != "event_callback" || e == nullptr || !e->is_object())
    return out;  // ignored
  auto& ev = e->as_object();
  if (str(ev, "type") != "message")
    return out;
  out.channel = str(ev, "channel");
  auto subtype = str(ev, "subtype");
  if (subtype == "message_changed" || subtype == "message_deleted") {
    bool changed = subtype == "message_changed";
    auto* inner = ev.if_contains(changed ? "message" : "previous_message");
    if (inner == nullptr || !inner->is_object())
      return out;
    auto& m = inner->as_object();
    if (m.contains("bot_id"))
      return out;  // our own message
    out.ts = changed ? str(m, "ts") : str(ev, "deleted_ts");
    out.thread_ts = str(m, "thread_ts");
    out.user = str(m, "user");
    out.text = str(m, "text");
    if (out.thread_ts.empty() || out.thread_ts == out.ts)
      return out;  // not a reply in a thread
    out.what = changed ? slack_event::kind::edited : slack_event::kind::deleted;
    return out;
  }
  auto reply = reply_of_message(ev, out.channel);
  reply.event_id = std::move(out.event_id);
  return reply;
}

slack_event reply_of_message(const json::object& ev, std::string_view channel) {
  slack_event out;
  out.channel = std::string(channel);
  auto subtype = str(ev, "subtype");
  // Our own posts (bot_id), joins and the like are not replies.
  if (ev.contains("bot_id") || !(subtype.empty() || subtype == "thread_broadcast" || subtype == "file_share"))
    return out;
  out.ts = str(ev, "ts");
  out.thread_ts = str(ev, "thread_ts");
  out.user = str(ev, "user");
  out.text = str(ev, "text");
  if (out.thread_ts.empty() || out.thread_ts == out.ts || out.ts.empty())
    return out;  // a channel message or a thread's parent
  if (auto* files = ev.if_contains("files"); files && files->is_array())
    for (const auto& f : files->as_array()) {
      if (!f.is_object())
        continue;
      auto& fo = f.as_object();
      inbound_file file{str(fo, "id"), str(fo, "name"), str(fo, "mimetype"), 0, str(fo, "url_private_download")};
      if (file.url.empty())
        file.url = str(fo, "url_private");
      if (auto* size = fo.if_contains("size"); size && size->is_int64() && size->as_int64() > 0)
        file.size = static_cast<uint64_t>(size->as_int64());
      if (file.name.empty())
        file.name = file.id.empty() ? std::string("file") : file.id;
      if (!file.url.empty())
        out.files.push_back(std::move(file));
    }
  out.what = slack_event::kind::reply;
  return out;
}

namespace {

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

} // namespace

std::optional<file_url> parse_file_url(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->has_userinfo() || !parsed->has_authority() || parsed->encoded_host().empty())
    return std::nullopt;
  file_url u;
  u.scheme = parsed->scheme();
  u.host = parsed->encoded_host();
  for (auto* s : {&u.scheme, &u.host})
    for (auto& c : *s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https")
    return std::nullopt;
  u.port = parsed->has_port() ? std::string(parsed->port()) : u.scheme == "https" ? "443" : "80";
  u.target = parsed->encoded_target();
  if (u.target.empty() || u.target.front() != '/')
    u.target.insert(0, "/");
  return u;
}

bool may_download_from(const file_url& u, std::string_view api_url) {
  if (auto api = parse_file_url(api_url); api && api->scheme == u.scheme && api->host == u.host && api->port == u.port)
    return true;  // the Web API's own host: the sandbox or a test fake
  if (u.scheme != "https" || u.port != "443")
    return false;
  return u.host == "files.slack.com" || u.host == "slack-files.com" || ends_with(u.host, ".slack-edge.com");
}

bool ts_less(std::string_view a, std::string_view b) { return slack_ts_before(a, b); }

} // namespace backline::slack
