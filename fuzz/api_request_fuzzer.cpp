// API request bodies and query parameters (http/request_parsing): whatever
// the bytes, each function answers a value or a 400 with the API's error
// body, never throws, and what it accepts holds what the actors rely on.
//
// Input: byte 0 picks the endpoint, byte 1 the caller's role and the number
// of multipart files beside the body; the rest is the body (for
// notifications: "after&wait").

#include "fuzz/fuzz_check.hpp"
#include "http/request_parsing.hpp"

#include <iterator>

namespace json = boost::json;
using namespace backline;
using namespace backline::http;
using backline::fuzz::bytes_of;

namespace {

void check_refusal(const api_reply& r, std::initializer_list<int> statuses) {
  bool expected = false;
  for (int s : statuses)
    expected = expected || r.status == s;
  FUZZ_CHECK(expected);
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  FUZZ_CHECK(!ec && v.is_object());
  auto* e = v.as_object().if_contains("error");
  FUZZ_CHECK(e && e->is_object());
  auto* code = e->as_object().if_contains("code");
  auto* message = e->as_object().if_contains("message");
  FUZZ_CHECK(code && code->is_string() && !code->as_string().empty());
  FUZZ_CHECK(message && message->is_string());
}

/// What the actors do with a body the front accepted: parse it again
/// (Boost.JSON's default options) and read string fields.
json::object reparsed(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  FUZZ_CHECK(!ec && v.is_object());
  return v.as_object();
}

bool non_empty_string(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() && !v->as_string().empty();
}

constexpr verb command_verbs[] = {verb::chat_assign,  verb::chat_transfer,     verb::chat_resolve,
                                  verb::chat_reopen,  verb::chat_message_post, verb::thread_create,
                                  verb::thread_post,  verb::thread_done,       verb::chat_focus,
                                  verb::chat_unfocus, verb::chat_get};
constexpr role roles[] = {role::admin, role::agent, role::bot};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  const uint8_t endpoint = data[0] % (4 + std::size(command_verbs));
  const uint8_t flags = data[1];
  auto raw = bytes_of(data + 2, size - 2);

  switch (endpoint) {
    case 0: {
      auto body = user_create_body(raw);
      if (!body)
        return check_refusal(body.refusal(), {400}), 0;
      auto o = reparsed(*body);
      FUZZ_CHECK(non_empty_string(o, "id") && non_empty_string(o, "name") && non_empty_string(o, "role"));
      return 0;
    }
    case 1: {
      auto body = chat_create_body(raw);
      if (!body)
        return check_refusal(body.refusal(), {400}), 0;
      auto o = reparsed(*body);
      FUZZ_CHECK(o.size() == 3);
      FUZZ_CHECK(non_empty_string(o, "customer_id") && non_empty_string(o, "customer_name"));
      FUZZ_CHECK(o.at("text").is_string());
      return 0;
    }
    case 2: {
      auto reply = sandbox_reply_of(raw);
      if (!reply)
        return check_refusal(reply.refusal(), {400}), 0;
      FUZZ_CHECK(!reply->channel_id.empty() && !reply->thread_ts.empty() && !reply->user_name.empty() &&
                 !reply->text.empty());
      return 0;
    }
    case 3: {
      auto rest = raw;
      std::optional<std::string> after{std::string(backline::fuzz::take_until(rest, '&'))};
      std::optional<std::string> wait{std::string(rest)};
      if (flags & 1)
        after.reset();
      if (flags & 2)
        wait.reset();
      auto q = notifications_query_of(after, wait);
      if (!q)
        return check_refusal(q.refusal(), {400}), 0;
      FUZZ_CHECK(q->wait_ms <= 30000);
      return 0;
    }
    default:
      break;
  }

  const verb what = command_verbs[endpoint - 4];
  const role who = roles[flags % 3];
  const size_t file_count = (flags >> 2) % 3;
  auto body = parse_json_object(raw);
  if (!body)
    return check_refusal(body.refusal(), {400}), 0;
  // Agents are the ids starting with 'a' here.
  agent_lookup is_agent = [](std::string_view id) { return !id.empty() && id.front() == 'a'; };
  auto checked = checked_command_body(what, who, *body, file_count, is_agent);
  if (!checked)
    return check_refusal(checked.refusal(), {400}), 0;
  auto o = reparsed(json::serialize(*checked));
  bool files_alone = what == verb::thread_post && file_count > 0;
  for (const char* n : required_fields(what))
    FUZZ_CHECK(non_empty_string(o, n) || (files_alone && std::string_view(n) == "text"));
  if (what == verb::chat_assign || what == verb::chat_transfer)
    FUZZ_CHECK(o.at("agent_id").as_string().starts_with("a"));
  return 0;
}
