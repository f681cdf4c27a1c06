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
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>

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
  bool last_on_connection = false;  // the connection's keep-alive count ends with this one
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

/// Writes whole lines to a stream shared by every worker, from a thread of
/// its own. A worker only appends its line to a buffer (a short lock, no
/// system call); the writer thread writes the buffer out every `interval`,
/// or sooner once `wake_bytes` are waiting, in one write and flush.
///
/// Before, each worker wrote and flushed its line under the lock: a system
/// call per request, and a stalled output (a full stdout pipe) stalled every
/// request behind the lock. Now requests never wait for the log's output.
/// (Throughput: api_bench at 64 connections, four alternating pairs, showed
/// no difference beyond the noise of this machine.)
/// Hand-written rather than spdlog's async logger: the same buffer swap and
/// one thread, without a new dependency for one log.
///
/// Nothing is written twice and lines never interleave. What is buffered
/// when the writer is destroyed is written then; a crash loses at most the
/// last `interval` of lines. When the stream stalls (a full pipe) and more
/// than `max_buffered` bytes wait, further lines are dropped and counted,
/// rather than holding up requests; a line saying how many is written
/// once the stream moves again.
class line_writer {
public:
  explicit line_writer(std::ostream& out, std::chrono::milliseconds interval = std::chrono::milliseconds(50),
                       size_t wake_bytes = 64 * 1024, size_t max_buffered = 16u << 20);
  ~line_writer();
  line_writer(const line_writer&) = delete;
  line_writer& operator=(const line_writer&) = delete;

  /// Buffers one line (without its newline).
  void write(std::string_view line);
  /// Lines dropped so far because the stream was stalled.
  uint64_t dropped() const;

private:
  void run();

  std::ostream& out_;
  const std::chrono::milliseconds interval_;
  const size_t wake_bytes_;
  const size_t max_buffered_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;       // lines waiting for the writer thread
  uint64_t dropped_ = 0;     // since the start
  uint64_t unreported_ = 0;  // dropped, not yet said in the log
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace backline::http
