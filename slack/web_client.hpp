#pragma once
// The Slack Web API client: one blocking call per method, as slack.md
// describes the wire (JSON bodies, bearer token, HTTP 200 with ok:true/false,
// HTTP 429 with Retry-After). It never retries by itself: the channel actor
// decides when to try again, at Slack's pace. Blocking: call it only from a
// detached actor or a worker thread, never on CAF's scheduler threads.

#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "backline/status.hpp"

namespace backline::slack {

/// What a failed call means for the caller.
enum class failure_kind : uint8_t {
  none,              // it worked
  rate_limited,      // 429 / ratelimited / rate_limited: wait retry_after, then retry
  transient,         // 5xx, timeout, dropped connection: back off, then retry
  channel_unusable,  // channel_not_found, not_in_channel, is_archived: this channel only
  token_bad,         // invalid_auth, not_authed, token_revoked, account_inactive, missing_scope: the whole integration
  rejected,          // any other ok:false: retrying the same request will not help
};

const char* to_string(failure_kind k) noexcept;

/// The kind of an ok:false error code (pure; slack.md's lists).
failure_kind classify_error(std::string_view error) noexcept;

struct call_result {
  failure_kind failure = failure_kind::none;
  std::string error;                      // Slack's error code, or what went wrong
  int http_status = 0;                    // 0 when no HTTP answer came
  std::chrono::seconds retry_after{0};    // for rate_limited
  boost::json::object body;               // the answer (ok:true)
  bool ok() const noexcept { return failure == failure_kind::none; }
};

/// Slack's next page cursor (response_metadata.next_cursor); "" at the end.
std::string next_cursor_of(const boost::json::object& body);

struct client_options {
  std::string base_url = "https://slack.com/api/";  // SLACK_API_URL
  std::string token;                                // SLACK_BOT_TOKEN (never logged)
  std::chrono::milliseconds timeout{10000};         // connect + read + write, each
};

/// "https://slack.com/api/" → scheme+host+port and path prefix; errc::invalid_argument if malformed.
struct base_url_parts {
  std::string origin;  // "https://slack.com" (what httplib::Client takes)
  std::string path;    // "/api/"
};
result<base_url_parts> split_base_url(std::string_view url);

struct downloaded_file {
  std::string bytes;
  std::string content_type;  // as the file host said ("" when it did not)
};

class web_client {
public:
  static result<std::unique_ptr<web_client>> make(const client_options& opts);
  ~web_client();

  /// Calls a Web API method with a JSON body.
  call_result call(std::string_view method, const boost::json::object& args);
  /// Posts raw bytes to an upload URL from files.getUploadURLExternal.
  call_result upload(const std::string& upload_url, std::string_view bytes, std::string_view mimetype);
  /// Downloads a file Slack hosts (url_private_download) with the bot token:
  /// at most max_bytes (errc::invalid_argument past it), no redirects followed.
  /// Check the URL with may_download_from (slack/events.hpp) first.
  result<downloaded_file> download(const std::string& url, size_t max_bytes);

private:
  struct impl;
  explicit web_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace backline::slack
