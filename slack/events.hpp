#pragma once
// The Slack Events API, as pure functions: verifying a request's signature
// and reading an event envelope into what backline acts on.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "backline/status.hpp"

namespace backline::slack {

/// Checks X-Slack-Signature over the raw body, and that X-Slack-Request-Timestamp
/// is within 300 s of `now`. errc::unauthenticated says which check failed.
status verify_request(std::string_view signing_secret, std::string_view timestamp_header,
                      std::string_view signature_header, std::string_view body,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// A file attached to a Slack message (downloaded with the bot token, only
/// from Slack's file hosts: see may_download_from).
struct inbound_file {
  std::string id;
  std::string name;
  std::string mimetype;
  uint64_t size = 0;
  std::string url;  // url_private_download, else url_private
};

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
  std::vector<inbound_file> files;
};

/// Reads an Events API body; errc::invalid_argument when it is not one.
result<slack_event> parse_event(std::string_view body);

/// Reads one message as conversations.replies (or an event) gives it: a
/// reply in a thread (also thread_broadcast and file_share) is kind::reply;
/// our own posts (bot_id), thread parents, joins and the like are ignored.
slack_event reply_of_message(const boost::json::object& message, std::string_view channel);

/// A file's URL, parsed once (Boost.URL, RFC 3986) for both the check of
/// its host and the download, so that the two cannot read it differently.
struct file_url {
  std::string scheme;  // lower case
  std::string host;    // lower case
  std::string port;    // the scheme's default when none is given
  std::string target;  // path and query, as sent in the request line ("/" at least)
  std::string origin() const { return scheme + "://" + host + ":" + port; }
};
/// Nothing for a URL that is not absolute http(s) with a host, or that has
/// userinfo ('@' is how URLs smuggle another host in).
std::optional<file_url> parse_file_url(std::string_view url);

/// May a file be downloaded from this URL with the bot token? Only https
/// from Slack's file hosts (files.slack.com, *.slack-edge.com, slack-files.com),
/// or from the configured Web API's own host and port (the sandbox, a test fake):
/// the token never goes anywhere else (no request forgery through a file URL).
bool may_download_from(const file_url& url, std::string_view api_url);
inline bool may_download_from(std::string_view url, std::string_view api_url) {
  auto u = parse_file_url(url);
  return u && may_download_from(*u, api_url);
}

/// Slack ts compare as decimals ("1712345678.000200"), not as floats or strings.
/// True when a < b, seconds and fraction each compared as decimal numbers.
bool ts_less(std::string_view a, std::string_view b);

} // namespace backline::slack
