#pragma once
// cpp-httplib with a server's settings instead of its defaults: TCP_NODELAY
// on (off costs 40 ms delayed-ACK stalls per keep-alive request), keep-alive
// limits raised, a worker pool sized from configuration (each worker serves
// one connection), a listen backlog raised past the compiled-in 5 — and the
// operations layer every route gets without asking:
//
// - a request id per request (the client's X-Request-Id, sanitised, or a new
//   one), echoed back as X-Request-Id, and one logfmt line per request;
// - metrics (http/metrics.hpp) by route pattern, method and status;
// - admission control: past max_in_flight /api/v1 requests at once (long
//   polls to /api/v1/notifications excluded) a request is answered 503
//   overloaded with Retry-After before any handler runs, changing nothing;
// - JSON errors: an error cpp-httplib answers by itself (404 no route, 413,
//   400…) gets the API's {"error":{"code","message"}} body, and every 503 or
//   429 carries Retry-After;
// - slow clients: a request's line and headers must arrive within
//   read_timeout_s in total (not per byte: a client dripping a byte a second
//   is dropped), and its body at min_body_bytes_per_s on average;
// - per-caller limits (http/rate_limit.hpp): past its token bucket a caller
//   (its bearer token, else its address) gets 429 rate_limited with
//   Retry-After before any handler runs, changing nothing;
// - floods of connections: a connection accepted while every worker is busy
//   waits in a counted queue; while connections wait, one idle between
//   requests (or before its first byte) past idle_grace is closed so its
//   worker serves a waiting one, and past max_waiting_connections a new
//   connection is answered 503 overloaded (closed at once with TLS) by the
//   accepting thread instead of waiting;
// - HTTPS in-process (tls_cert_file / tls_key_file): OpenSSL on the same
//   connection loop, the handshake bounded by the read timeout;
// - answers that come later (answer_later): a handler may leave its answer to
//   another thread and its worker goes back to the connection; whoever
//   completes the answer writes it without blocking, and the worker reads the
//   connection's next request only once it is written (or answers 503 itself
//   at the deadline). Over HTTPS every handler answers itself.
//
// These hooks own cpp-httplib's pre-routing, post-routing, error, exception
// and logger handlers: routes must not set those.

#include <httplib.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "backline/status.hpp"
#include "http/metrics.hpp"
#include "http/rate_limit.hpp"
#include "http/request_log.hpp"

namespace backline::http {

/// Connections accepted and waiting for a worker, against the workers free
/// to take them, and how many idle connections have been asked to give way.
/// fd() (an eventfd) is readable while more connections wait than free
/// workers and idle connections giving way can take: idle connections past
/// their grace wake on it.
class waiting_connections {
public:
  explicit waiting_connections(size_t workers);
  ~waiting_connections();
  waiting_connections(const waiting_connections&) = delete;
  waiting_connections& operator=(const waiting_connections&) = delete;

  int fd() const { return fd_; }
  size_t waiting() const;
  void queued();           // a connection joined the queue
  void dequeued();         // a worker took one
  void finished(bool claimed);  // a worker is done with its connection (which gave way when `claimed`)
  /// Claims one waiting connection for an idle one to give way to; false
  /// when the free workers and those already giving way cover them all.
  bool claim();

private:
  void reconcile();  // with mutex_ held
  mutable std::mutex mutex_;
  size_t workers_;
  size_t waiting_ = 0, busy_ = 0, claimed_ = 0;
  bool signalled_ = false;
  int fd_ = -1;
};

struct http_settings {
  size_t threads = 512;
  size_t max_body_bytes = 16u << 20;
  unsigned read_timeout_s = 10;       // a request's line and headers arrive within this; the longest silence mid-body
  unsigned write_timeout_s = 10;
  unsigned keep_alive_timeout_s = 30;
  size_t keep_alive_max = 100000;
  int listen_backlog = 4096;
  size_t max_in_flight = 2048;        // /api/v1 requests served at once (long polls excluded); more get 503
  size_t min_body_bytes_per_s = 16u << 10;  // a body arriving slower than this on average is dropped
  bool log_requests = false;          // one line per request (backline serve: on, see --log-requests)
  std::ostream* request_log = nullptr;  // where those lines go; nullptr: std::cout
  double rate_limit_per_s = 0;        // per caller (token, else address); 0: no limit
  size_t rate_burst = 0;              // requests a caller may make at once
  size_t max_waiting_connections = 1024;  // accepted connections waiting for a worker; more get 503 at once
  std::chrono::milliseconds idle_grace{150};  // while connections wait, an idle one is closed after this
  std::string tls_cert_file;          // both set: HTTPS (PEM certificate chain and private key)
  std::string tls_key_file;
  /// Whether a bearer token names a user now. Past an address's allowance of
  /// failed authentications, only unknown tokens are refused (429): behind a
  /// proxy every user shares one address. Unset: a token counts as unknown
  /// until it has authenticated once.
  std::function<bool(std::string_view token)> token_known;
};

/// The answer to a request that its handler leaves to another thread (see
/// answer_later). It is written on the connection by whoever completes it,
/// without blocking; if the socket cannot take all of it, the connection's
/// worker writes the rest.
class later_answer {
public:
  virtual ~later_answer() = default;
  /// The answer, a JSON body. Only the first call counts, and none after the
  /// deadline (the worker has answered 503 itself by then).
  virtual void complete(int status, std::string body) = 0;
  /// Whether it is answered or given up: nothing more will be written.
  virtual bool settled() const = 0;
};

/// In a route handler: lets the request be answered later through the
/// returned later_answer, from any thread. The worker does not wait for it:
/// it goes back to the connection, and reads the next request once the answer
/// is written. nullptr (answer as usual) when the request cannot wait: over
/// TLS, on the connection's last request or one asking to close, HTTP/1.0, or
/// outside a worker. If nothing came within `deadline`, the worker answers
/// 503 itself. Whatever the handler puts in `res` afterwards is dropped.
std::shared_ptr<later_answer> answer_later(const httplib::Request& req, httplib::Response& res,
                                           std::chrono::milliseconds deadline);

/// Whether a certificate and key (both, or neither: plain HTTP) load and
/// match, as bind() will check them; the error names the file.
status check_tls_files(const std::string& cert_file, const std::string& key_file);

class http_server {
public:
  explicit http_server(const http_settings& settings);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Where routes are registered.
  httplib::Server& routes() { return server_; }
  /// Whether connections speak HTTPS.
  bool tls() const { return tls_ctx_ != nullptr; }
  /// The front's figures, for /metrics.
  http_metrics& metrics() { return metrics_; }

  /// Binds and starts listening; returns the bound port (port 0: any free one).
  /// With TLS settings, loads the certificate and key first: one that does
  /// not load or does not match is an error naming the file.
  result<int> bind(const std::string& host, int port);
  /// An answer that comes later (answer_later; defined in http_server.cpp).
  class deferred;

  /// Serves until stop(); in-flight requests finish before it returns.
  bool run();
  /// No new connections or requests; requests being handled finish and are
  /// answered; idle and half-received connections are closed at once.
  void stop();

private:
  class tuned_server : public httplib::Server {
  public:
    explicit tuned_server(http_server& owner) : owner_(owner) {}
    socket_t listening_socket() const { return svr_sock_; }

  private:
    // cpp-httplib's per-connection loop, replaced (see http_server.cpp).
    bool process_and_close_socket(socket_t sock) override;
    http_server& owner_;
  };

  class counting_queue;
  friend class counting_queue;
  friend class deferred;
  friend std::shared_ptr<later_answer> answer_later(const httplib::Request&, httplib::Response&,
                                                    std::chrono::milliseconds);

  void install_hooks();
  void shed(int sock);  // a connection past max_waiting_connections
  status load_tls();
  httplib::Server::HandlerResponse before_routing(const httplib::Request& req, httplib::Response& res);
  void after_answer(const httplib::Request& req, const httplib::Response& res);
  // Metrics, the log line and the rate limiter's notes for an answered request.
  void record_answer(request_state& st, std::string_view method, const std::string& path,
                     const std::string& remote_addr, int status);
  void release(request_state& state);  // gives back its in-flight and admission slots
  void end_request(request_state& state, bool timed_out);

  http_settings settings_;
  std::string keep_alive_header_;  // "timeout=…, max=…" from the settings
  http_metrics metrics_;
  std::unique_ptr<line_writer> log_;
  int stop_fd_ = -1;  // an eventfd, readable once stop() is called: wakes every waiting connection
  std::atomic<bool> stopping_{false};
  waiting_connections queue_;
  rate_limiter limiter_;
  rate_limiter failed_auth_;  // failed authentications (401s) per client address
  struct ssl_ctx_deleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  std::unique_ptr<SSL_CTX, ssl_ctx_deleter> tls_ctx_;
  tuned_server server_;  // last: its workers use the members above
};

} // namespace backline::http
