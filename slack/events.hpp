#pragma once
// The Slack Events API, as pure functions: verifying a request's signature
// and reading an event envelope into what backline acts on.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backline/status.hpp"

namespace backline::slack {

/// Checks X-Slack-Signature over the raw body, and that X-Slack-Request-Timestamp
/// is within 300 s of `now`. errc::unauthenticated says which check failed.
status verify_request(std::string_view signing_secret, std::string_view timestamp_header,
                      std::string_view signature_header, std::string_view body,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

struct slack_event {
  enum class kind : uint8_t {
    url_verification,  // answer the challenge
    reply,             // a message in a thread (also thread_broadcast and file_share)
    edited,            // message_changed of a message in a thread
    deleted,           // message_deleted of a message in a thread
    ignored,           // anything else: our own posts, joins, thread parents, other event types
  };
  kind what = kind::ignored;
  std::string challenge;
  std::string event_id;
  std::string channel;
  std::string ts;         // the message (for deleted: the deleted message)
  std::string thread_ts;  // its thread's parent
  std::string user;
  std::string text;
};

/// Reads an Events API body; errc::invalid_argument when it is not one.
result<slack_event> parse_event(std::string_view body);

} // namespace backline::slack
