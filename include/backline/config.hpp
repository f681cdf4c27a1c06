#pragma once
// Configuration of `backline serve`: every option has a flag, an environment
// variable and a default, all listed in one table (server/config.cpp) so that
// --help can never disagree with the code.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backline/status.hpp"

namespace backline {

/// How the actor threads share work (include/backline/caf_scheduler.hpp says
/// why work sharing is the default).
enum class actor_scheduler { sharing, stealing };

/// "sharing" or "stealing".
inline std::string_view to_string(actor_scheduler s) { return s == actor_scheduler::sharing ? "sharing" : "stealing"; }

/// The scheduler of that name; nullopt for any other name.
inline std::optional<actor_scheduler> actor_scheduler_named(std::string_view name) {
  if (name == "sharing")
    return actor_scheduler::sharing;
  if (name == "stealing")
    return actor_scheduler::stealing;
  return std::nullopt;
}

struct server_config {
  std::string listen_host = "127.0.0.1";  // --listen HOST:PORT, BACKLINE_LISTEN
  int listen_port = 8080;                 // 0 picks a free port (tests)
  std::string data_dir = "./backline-data";  // --data DIR, BACKLINE_DATA
  std::string admin_token;                // BACKLINE_ADMIN_TOKEN (else generated once)
  std::string slack_token;                // SLACK_BOT_TOKEN (environment only; never printed)
  std::string slack_signing_secret;       // SLACK_SIGNING_SECRET (environment only): enables /slack/events
  std::string slack_api_url = "https://slack.com/api/";  // --slack-api-url, SLACK_API_URL
  uint32_t slack_timeout_ms = 10000;      // --slack-timeout-ms: each Slack Web API call
  uint32_t slack_callers = 128;           // --slack-callers: Web API calls in flight at once (one thread each)
  uint32_t slack_min_interval_ms = 1000;  // --slack-min-interval-ms: per channel, after a burst of 3
  std::string slack_inbound = "both";     // --slack-inbound events|poll|both
  uint32_t slack_poll_budget = 50;        // --slack-poll-budget: calls per window (a minute) per method
  uint32_t slack_poll_page = 15;          // --slack-poll-page: messages per conversations.replies call
  uint32_t slack_poll_window_ms = 60000;  // --slack-poll-window-ms: the budget counts per this window (a minute)
  uint32_t slack_poll_interval_ms = 5000; // --slack-poll-interval-ms: an active thread is polled again this soon
  size_t http_threads = 512;              // --http-threads, one per open connection
  size_t actor_threads = 0;               // --actor-threads: CAF scheduler threads; 0: one per core
  actor_scheduler scheduler = actor_scheduler::sharing;  // --actor-scheduler sharing|stealing
  size_t max_body_bytes = 16u << 20;      // --max-body-bytes, larger bodies get 413
  size_t max_file_bytes = 10u << 20;      // --max-file-bytes, larger attached files get 413
  uint32_t request_timeout_ms = 5000;     // --request-timeout-ms, actor answer deadline
  uint32_t read_timeout_s = 10;           // --read-timeout-s, slow clients are dropped
  uint32_t keep_alive_timeout_s = 30;     // --keep-alive-timeout-s
  size_t keep_alive_max = 100000;         // --keep-alive-max, requests per connection
  int listen_backlog = 4096;              // --listen-backlog
  size_t max_in_flight = 2048;            // --max-in-flight: /api/v1 requests at once (long polls excluded); more get 503
  uint32_t rate_limit = 200;              // --rate-limit: requests a second per caller (token, else address); 0: off
  uint32_t rate_burst = 400;              // --rate-burst: requests a caller may make at once
  size_t max_waiting_connections = 1024;  // --max-waiting-connections: accepted, waiting for a worker; more get 503
  std::string tls_cert;                   // --tls-cert FILE: with --tls-key, HTTPS
  std::string tls_key;                    // --tls-key FILE
  bool log_requests = true;               // --log-requests on|off: one logfmt line per request
  std::ostream* request_log = nullptr;    // where those lines go (nullptr: stdout); for tests, no flag
  bool sync_writes = true;                // --no-sync: skip fsync (benchmarks only)
  std::string ready_file;                 // --ready-file: write "host:port" when serving
};

/// Reads `backline serve` flags (args, without the program and subcommand)
/// over environment variables (looked up by getenv) over defaults.
/// Returns errc::invalid_argument with a message naming the bad option.
result<server_config> parse_serve_options(
  const std::vector<std::string>& args,
  const std::function<const char*(const char*)>& getenv);

/// The --help text of `backline serve`, with every default.
std::string serve_help();

/// Splits "host:port" ("[::1]:80" too). Port must be 0..65535.
result<std::pair<std::string, int>> parse_host_port(const std::string& text);

} // namespace backline
