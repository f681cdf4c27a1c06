#pragma once
// Per-request context of the HTTP front and its one-line structured log.
//
// Each cpp-httplib worker serves one request at a time on its own thread, so
// the context of the request being served lives in a thread_local: the
// front's hooks (http_server.cpp) fill it, and a handler may add to it
// (note_request_user) without any plumbing through cpp-httplib.
//
// The log line is logfmt, one per request:
//   ts=2024-05-01T12:00:00.123Z level=info req=4f1c… method=POST
//   route=/api/v1/threads/{id}/messages status=201 dur_ms=1.23 user=alice
// It never carries a token, a header other than the request id, a body, a
// query string or the raw path (ids in paths may be capabilities): only the
// route pattern.

#include <chrono>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

namespace backline::http {

/// Tells the request being served on this thread who its caller is, for its
/// log line (call after authenticating). No-op outside a request.
void note_request_user(std::string_view user_id);

/// The id of the request being served on this thread ("" outside a request).
std::string_view current_request_id();

/// The context of one request, from its first byte to its answer written.
struct request_state {
  std::chrono::steady_clock::time_point start;
  std::string id;         // request id: the client's X-Request-Id (sanitised) or a new one
  std::string user;       // the authenticated caller, when a handler said so
  std::string error;      // what an exception said, for the log
  bool past_headers = false;  // the pre-routing hook ran (method and path are known)
  bool no_handler = false;    // cpp-httplib answered by itself (no route, body too large, bad request)
  bool rejected = false;      // admission control answered 503
  bool in_flight = false;     // counted in backline_http_in_flight
  bool admitted = false;      // holds an admission slot
  bool close_after = false;   // the connection must not serve another request
  bool logged = false;        // its line and metrics are done
  uint64_t token_key = 0;     // with rate limits on: the digest of the bearer token, when one came
};

/// The request being served on this thread, or nullptr.
request_state* current_request();

/// Makes `state` the current request of this thread for its lifetime.
class request_scope {
public:
  explicit request_scope(request_state& state);
  ~request_scope();
  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;

private:
  request_state* previous_;
};

/// A client's X-Request-Id reduced to [A-Za-z0-9._:-], at most 64 characters;
/// "" when nothing is left (then the server makes one).
std::string sanitize_request_id(std::string_view client_id);

/// A fresh request id: 16 random hex digits.
std::string new_request_id();

/// A value for a logfmt line: bare when safe, else quoted with \", \\ and
/// control characters escaped, so a value can never forge a field or a line.
std::string logfmt_value(std::string_view v);

/// The fields of one request's log line.
struct request_log_fields {
  std::chrono::system_clock::time_point when;
  std::string_view id, method, route, user, error;
  int status = 0;
  double dur_ms = 0;
};

/// One log line, without the newline.
std::string format_request_line(const request_log_fields& f);

/// Writes whole lines to a stream shared by every worker.
class line_writer {
public:
  explicit line_writer(std::ostream& out) : out_(out) {}
  void write(const std::string& line);

private:
  std::mutex mutex_;
  std::ostream& out_;
};

} // namespace backline::http
