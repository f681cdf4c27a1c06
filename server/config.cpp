#include "backline/config.hpp"

#include "backline/caf_scheduler.hpp"

#include <charconv>
#include <sstream>

namespace backline {
namespace {

// One row per option: flag, environment variable, value name, help, and how
// to apply a value. The default shown by --help is read from a default
// server_config, so it is always the one the code uses.
struct option_row {
  const char* flag;
  const char* env;
  const char* value_name;  // nullptr: a switch without a value
  const char* help;
  std::function<status(server_config&, const std::string&)> apply;
  std::function<std::string(const server_config&)> show;
};

template <class Int>
status parse_number(const std::string& text, Int min, Int max, Int& out, const char* flag) {
  Int v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
    return {errc::invalid_argument, std::string(flag) + ": expected a whole number from " +
                                      std::to_string(min) + " to " + std::to_string(max) +
                                      ", got '" + text + "'"};
  out = v;
  return {};
}

template <class Int>
option_row number_option(const char* flag, const char* env, const char* help, Int server_config::*field,
                         Int min, Int max) {
  return {flag, env, "N", help,
          [=](server_config& c, const std::string& v) { return parse_number(v, min, max, c.*field, flag); },
          [=](const server_config& c) { return std::to_string(c.*field); }};
}

const std::vector<option_row>& option_table() {
  static const std::vector<option_row> rows = {
    {"--listen", "BACKLINE_LISTEN", "HOST:PORT", "where the HTTP API listens (port 0: any free port)",
     [](server_config& c, const std::string& v) -> status {
       auto hp = parse_host_port(v);
       if (!hp)
         return {errc::invalid_argument, "--listen: " + hp.error().message()};
       c.listen_host = hp->first;
       c.listen_port = hp->second;
       return {};
     },
     [](const server_config& c) { return c.listen_host + ":" + std::to_string(c.listen_port); }},
    {"--data", "BACKLINE_DATA", "DIR", "the data directory (event log); created if missing",
     [](server_config& c, const std::string& v) -> status {
       if (v.empty())
         return {errc::invalid_argument, "--data: the directory must not be empty"};
       c.data_dir = v;
       return {};
     },
     [](const server_config& c) { return c.data_dir; }},
    number_option<size_t>("--http-threads", "BACKLINE_HTTP_THREADS",
                          "HTTP worker threads; each serves one open connection", &server_config::http_threads,
                          1, 20000),
    {"--actor-threads", "BACKLINE_ACTOR_THREADS", "N",
     "threads running the actors (CAF's scheduler); 0: one per core (CAF's own default is max(cores, 4), which "
     "with work sharing slowed the journal by a third on 2 cores)",
     [](server_config& c, const std::string& v) {
       return parse_number(v, size_t{0}, size_t{256}, c.actor_threads, "--actor-threads");
     },
     [](const server_config& c) {
       return c.actor_threads == 0 ? "0 (one per core: " + std::to_string(actor_threads_for(0)) + " here)"
                                   : std::to_string(c.actor_threads);
     }},
    {"--actor-scheduler", "BACKLINE_ACTOR_SCHEDULER", "sharing|stealing",
     "how the actor threads share work: one first-in-first-out queue (sharing), or CAF's work stealing, whose "
     "last-in-first-out queues gave a p99 nearly twice as long at 1,000 connections (README, Benchmarks)",
     [](server_config& c, const std::string& v) -> status {
       auto named = actor_scheduler_named(v);
       if (!named)
         return {errc::invalid_argument, "--actor-scheduler: expected sharing or stealing, got '" + v + "'"};
       c.scheduler = *named;
       return {};
     },
     [](const server_config& c) { return std::string(to_string(c.scheduler)); }},
    number_option<size_t>("--max-body-bytes", "BACKLINE_MAX_BODY_BYTES",
                          "largest request body accepted (larger: 413)", &server_config::max_body_bytes, 1024,
                          size_t{1} << 30),
    number_option<size_t>("--max-file-bytes", "BACKLINE_MAX_FILE_BYTES",
                          "largest file attached to a thread message (larger: 413)", &server_config::max_file_bytes, 1,
                          size_t{1} << 30),
    number_option<uint32_t>("--request-timeout-ms", "BACKLINE_REQUEST_TIMEOUT_MS",
                            "how long a request waits for the actors before 503",
                            &server_config::request_timeout_ms, 1, 600000),
    number_option<uint32_t>("--read-timeout-s", "BACKLINE_READ_TIMEOUT_S",
                            "a client silent this long mid-request is disconnected", &server_config::read_timeout_s,
                            1, 3600),
    number_option<uint32_t>("--keep-alive-timeout-s", "BACKLINE_KEEP_ALIVE_TIMEOUT_S",
                            "an idle keep-alive connection is closed after this",
                            &server_config::keep_alive_timeout_s, 1, 3600),
    number_option<size_t>("--keep-alive-max", "BACKLINE_KEEP_ALIVE_MAX", "requests served on one connection",
                          &server_config::keep_alive_max, 1, size_t{1} << 40),
    number_option<int>("--listen-backlog", "BACKLINE_LISTEN_BACKLOG", "pending connections the kernel queues",
                       &server_config::listen_backlog, 1, 65535),
    number_option<size_t>("--max-in-flight", "BACKLINE_MAX_IN_FLIGHT",
                          "/api/v1 requests served at once (long polls excluded); more get 503 + Retry-After",
                          &server_config::max_in_flight, 1, 1000000),
    number_option<uint32_t>("--rate-limit", "BACKLINE_RATE_LIMIT",
                            "requests a second per caller (its bearer token, else its address); past it 429 + "
                            "Retry-After; 0: no limit",
                            &server_config::rate_limit, 0, 1000000),
    number_option<uint32_t>("--rate-burst", "BACKLINE_RATE_BURST",
                            "requests a caller may make at once before --rate-limit paces it",
                            &server_config::rate_burst, 1, 10000000),
    number_option<size_t>("--max-waiting-connections", "BACKLINE_MAX_WAITING_CONNECTIONS",
                          "connections waiting for a free worker; more are answered 503 at once (while any wait, "
                          "idle connections give way)",
                          &server_config::max_waiting_connections, 1, 1000000),
    {"--tls-cert", "BACKLINE_TLS_CERT", "FILE",
     "HTTPS: the server's certificate chain (PEM); needs --tls-key",
     [](server_config& c, const std::string& v) -> status {
       if (v.empty())
         return {errc::invalid_argument, "--tls-cert: the file name must not be empty"};
       c.tls_cert = v;
       return {};
     },
     [](const server_config& c) { return c.tls_cert.empty() ? std::string("none (plain HTTP)") : c.tls_cert; }},
    {"--tls-key", "BACKLINE_TLS_KEY", "FILE", "HTTPS: the certificate's private key (unencrypted PEM); needs --tls-cert",
     [](server_config& c, const std::string& v) -> status {
       if (v.empty())
         return {errc::invalid_argument, "--tls-key: the file name must not be empty"};
       c.tls_key = v;
       return {};
     },
     [](const server_config& c) { return c.tls_key.empty() ? std::string("none") : c.tls_key; }},
    {"--log-requests", "BACKLINE_LOG_REQUESTS", "on|off",
     "one logfmt line per request on stdout: request id, route, status, duration (never tokens or bodies)",
     [](server_config& c, const std::string& v) -> status {
       if (v == "on" || v == "true" || v == "yes" || v == "1") {
         c.log_requests = true;
         return {};
       }
       if (v == "off" || v == "false" || v == "no" || v == "0") {
         c.log_requests = false;
         return {};
       }
       return {errc::invalid_argument, "--log-requests: expected on or off, got '" + v + "'"};
     },
     [](const server_config& c) { return c.log_requests ? std::string("on") : std::string("off"); }},
    {"--no-sync", "BACKLINE_NO_SYNC", nullptr,
     "do not fsync the log (loses acknowledged writes on a crash: benchmarks only)",
     [](server_config& c, const std::string&) -> status {
       c.sync_writes = false;
       return {};
     },
     [](const server_config& c) { return c.sync_writes ? std::string("off") : std::string("on"); }},
    {"--slack-api-url", "SLACK_API_URL", "URL", "the Slack Web API (tests point it at a local fake)",
     [](server_config& c, const std::string& v) -> status {
       if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
         return {errc::invalid_argument, "--slack-api-url: must start with http:// or https://"};
       c.slack_api_url = v;
       return {};
     },
     [](const server_config& c) { return c.slack_api_url; }},
    number_option<uint32_t>("--slack-timeout-ms", "SLACK_TIMEOUT_MS",
                            "how long one Slack Web API call may take before it counts as failed (and is retried)",
                            &server_config::slack_timeout_ms, 50, 600000),
    number_option<uint32_t>("--slack-callers", "SLACK_CALLERS",
                            "Slack Web API calls in flight at once (one blocking thread each, shared by every "
                            "channel); a busy channel holds one for Slack's answer time every 1 s + that time, so "
                            "128 keep 1,000 channels at Slack's 1/s with answers of up to about 140 ms",
                            &server_config::slack_callers, 1, 1024),
    number_option<uint32_t>("--slack-min-interval-ms", "SLACK_MIN_INTERVAL_MS",
                            "per Slack channel, the pace of posts (after a burst of 3)",
                            &server_config::slack_min_interval_ms, 1, 600000),
    {"--slack-inbound", "SLACK_INBOUND", "events|poll|both",
     "how Slack replies come in: pushed by the Events API, found by the poller, or both",
     [](server_config& c, const std::string& v) -> status {
       if (v != "events" && v != "poll" && v != "both")
         return {errc::invalid_argument, "--slack-inbound: expected events, poll or both, got '" + v + "'"};
       c.slack_inbound = v;
       return {};
     },
     [](const server_config& c) { return c.slack_inbound; }},
    number_option<uint32_t>("--slack-poll-budget", "SLACK_POLL_BUDGET",
                            "the poller's calls per window (a minute) per Slack method (conversations.replies)",
                            &server_config::slack_poll_budget, 1, 100000),
    number_option<uint32_t>("--slack-poll-page", "SLACK_POLL_PAGE",
                            "messages asked for per conversations.replies call (Slack may allow only 15)",
                            &server_config::slack_poll_page, 1, 1000),
    number_option<uint32_t>("--slack-poll-window-ms", "SLACK_POLL_WINDOW_MS",
                            "the window the poll budget counts in (a minute; tests and benchmarks shorten it)",
                            &server_config::slack_poll_window_ms, 10, 3600000),
    number_option<uint32_t>("--slack-poll-interval-ms", "SLACK_POLL_INTERVAL_MS",
                            "the poller looks at an active thread again this soon (quiet ones: less and less often)",
                            &server_config::slack_poll_interval_ms, 10, 3600000),
    {"--ready-file", "BACKLINE_READY_FILE", "FILE", "write HOST:PORT to FILE once serving (for scripts)",
     [](server_config& c, const std::string& v) -> status {
       c.ready_file = v;
       return {};
     },
     [](const server_config& c) { return c.ready_file.empty() ? std::string("none") : c.ready_file; }},
  };
  return rows;
}

bool truthy(const std::string& v) {
  return !(v.empty() || v == "0" || v == "false" || v == "no" || v == "off");
}

} // namespace

result<std::pair<std::string, int>> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return status{errc::invalid_argument, "expected HOST:PORT, got '" + text + "'"};
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = 0;
  if (auto s = parse_number(text.substr(colon + 1), 0, 65535, port, "port"); !s)
    return s;
  return std::make_pair(host, port);
}

result<server_config> parse_serve_options(const std::vector<std::string>& args,
                                          const std::function<const char*(const char*)>& getenv) {
  server_config cfg;
  const auto& rows = option_table();
  // Environment first, flags over it.
  for (const auto& row : rows) {
    const char* v = getenv(row.env);
    if (v == nullptr)
      continue;
    if (row.value_name == nullptr && !truthy(v))
      continue;
    if (auto s = row.apply(cfg, v); !s)
      return status{errc::invalid_argument, std::string(row.env) + ": " + s.message()};
  }
  if (const char* token = getenv("BACKLINE_ADMIN_TOKEN"))
    cfg.admin_token = token;
  if (const char* token = getenv("SLACK_BOT_TOKEN"))
    cfg.slack_token = token;
  if (const char* secret = getenv("SLACK_SIGNING_SECRET"))
    cfg.slack_signing_secret = secret;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_inline_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    const option_row* row = nullptr;
    for (const auto& r : rows)
      if (arg == r.flag)
        row = &r;
    if (row == nullptr)
      return status{errc::invalid_argument, "unknown option '" + arg + "' (see backline serve --help)"};
    if (row->value_name != nullptr && !has_inline_value) {
      if (i + 1 >= args.size())
        return status{errc::invalid_argument, arg + " needs a value " + row->value_name};
      value = args[++i];
    }
    if (auto s = row->apply(cfg, value); !s)
      return s;
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    return status{errc::invalid_argument,
                  cfg.tls_cert.empty()
                    ? "--tls-key (BACKLINE_TLS_KEY) is set without --tls-cert (BACKLINE_TLS_CERT): HTTPS needs both"
                    : "--tls-cert (BACKLINE_TLS_CERT) is set without --tls-key (BACKLINE_TLS_KEY): HTTPS needs both"};
  return cfg;
}

std::string serve_help() {
  std::ostringstream out;
  server_config defaults;
  out << "usage: backline serve [options]\n\n"
         "Starts the backline server. With no options it keeps its data in ./backline-data\n"
         "and listens on 127.0.0.1:8080. Flags override environment variables.\n\n";
  for (const auto& row : option_table()) {
    std::string left = std::string("  ") + row.flag + (row.value_name ? std::string(" ") + row.value_name : "");
    out << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << row.help << "\n"
        << std::string(30, ' ') << "env " << row.env << ", default " << row.show(defaults) << "\n";
  }
  out << "\n  BACKLINE_ADMIN_TOKEN        the first admin's token on a fresh data directory\n"
         "                              (default: a random one, printed once)\n"
         "  SLACK_BOT_TOKEN             the Slack app's bot token (xoxb-…); without it outbound\n"
         "                              thread messages are kept in memory (sandbox)\n"
         "  SLACK_SIGNING_SECRET        verifies Slack's Events API requests to /slack/events\n";
  return out.str();
}

} // namespace backline
