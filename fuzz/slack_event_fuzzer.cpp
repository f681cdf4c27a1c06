// Slack Events API envelopes (slack/events): the endpoint verifies the
// signature, then reads the body. Whatever the body, parse_event answers an
// event or an error without throwing, and what it calls a reply, an edit or
// a delete names a message inside a thread; the signature of the body
// passes and that of any other body does not.

#include "fuzz/fuzz_check.hpp"
#include "slack/events.hpp"
#include "slack/signature.hpp"

using namespace backline;
using kind = backline::slack::slack_event::kind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = backline::fuzz::bytes_of(data, size);

  // What POST /slack/events does, signed as Slack would sign it.
  const std::string secret = "8f742231b10e8888abcd99yyyzzz85a5";
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  const std::string ts = "1700000000";
  auto signature = slack::slack_signature(secret, ts, std::string(body));
  FUZZ_CHECK(slack::verify_request(secret, ts, signature, body, now));
  if (!body.empty())
    FUZZ_CHECK(!slack::verify_request(secret, ts, signature, body.substr(1), now));

  auto event = slack::parse_event(body);
  if (!event) {
    FUZZ_CHECK(event.error().code() == errc::invalid_argument);
    return 0;
  }
  switch (event->what) {
    case kind::reply:
      FUZZ_CHECK(!event->ts.empty());
      [[fallthrough]];
    case kind::edited:
    case kind::deleted:
      FUZZ_CHECK(!event->thread_ts.empty());
      FUZZ_CHECK(event->thread_ts != event->ts);
      FUZZ_CHECK(event->challenge.empty());
      break;
    case kind::url_verification:
      FUZZ_CHECK(event->ts.empty() && event->thread_ts.empty() && event->text.empty());
      break;
    case kind::ignored:
      break;
  }
  return 0;
}
