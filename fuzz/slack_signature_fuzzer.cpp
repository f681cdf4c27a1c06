// Slack request signatures (slack/signature, slack::verify_request): with
// any secret, timestamp header, signature header and body, verification
// never crashes and passes exactly when the signature is the body's and the
// timestamp is a number within 300 s of now.
//
// Input: secret '\n' timestamp '\n' signature '\n' body.

#include "fuzz/fuzz_check.hpp"
#include "slack/events.hpp"
#include "slack/signature.hpp"

#include <charconv>

using namespace backline;

namespace {

bool lowercase_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto rest = backline::fuzz::bytes_of(data, size);
  std::string secret(backline::fuzz::take_until(rest, '\n'));
  std::string timestamp(backline::fuzz::take_until(rest, '\n'));
  std::string signature(backline::fuzz::take_until(rest, '\n'));
  std::string body(rest);
  const int64_t now_s = 1700000000;
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(now_s));

  auto correct = slack::slack_signature(secret, timestamp, body);
  FUZZ_CHECK(correct.size() == 3 + 64 && correct.rfind("v0=", 0) == 0 && lowercase_hex(correct.substr(3)));
  FUZZ_CHECK(slack::signatures_equal(signature, correct) == (signature == correct));
  FUZZ_CHECK(slack::signatures_equal(correct, correct));

  int64_t ts = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  bool numeric = !timestamp.empty() && ec == std::errc{} && end == timestamp.data() + timestamp.size();
  bool fresh = numeric && ts >= now_s - 300 && ts <= now_s + 300;

  // The signature as given: passes only when it is the right one.
  auto given = slack::verify_request(secret, timestamp, signature, body, now);
  FUZZ_CHECK(given.is_ok() == (!secret.empty() && fresh && signature == correct));
  if (!given)
    FUZZ_CHECK(given.code() == errc::unauthenticated && !given.message().empty());

  // The right signature: passes when the request is fresh…
  auto right = slack::verify_request(secret, timestamp, correct, body, now);
  FUZZ_CHECK(right.is_ok() == (!secret.empty() && fresh));
  // …and not with another body, secret or timestamp.
  FUZZ_CHECK(!slack::verify_request(secret, timestamp, correct, body + "x", now));
  FUZZ_CHECK(!slack::verify_request(secret + "x", timestamp, correct, body, now));
  if (numeric && ts < INT64_MAX) {
    auto later = std::to_string(ts + 1);
    FUZZ_CHECK(!slack::verify_request(secret, later, correct, body, now));
  }
  return 0;
}
