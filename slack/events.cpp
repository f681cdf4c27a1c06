#include "slack/events.hpp"

#include <boost/json.hpp>

#include <charconv>

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
  // Our own posts (bot_id), joins and the like are not replies.
  if (ev.contains("bot_id") || !(subtype.empty() || subtype == "thread_broadcast" || subtype == "file_share"))
    return out;
  out.ts = str(ev, "ts");
  out.thread_ts = str(ev, "thread_ts");
  out.user = str(ev, "user");
  out.text = str(ev, "text");
  if (out.thread_ts.empty() || out.thread_ts == out.ts || out.ts.empty())
    return out;  // a channel message or a thread's parent
  out.what = slack_event::kind::reply;
  return out;
}

} // namespace backline::slack
