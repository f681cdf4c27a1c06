#include "http/http_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>
#include <iostream>

#include "http/framing.hpp"
#include "http/request_parsing.hpp"

namespace backline::http {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// One connection's socket as cpp-httplib's Stream, kept for the whole
/// connection. Unlike cpp-httplib's own (one per request, and the read-ahead
/// of a pipelined request lost with it), it enforces a deadline per request,
/// not only a timeout per read, and every wait also wakes on stop().
class connection_stream final : public httplib::Stream {
public:
  connection_stream(int sock, int stop_fd, milliseconds idle_read, milliseconds write_timeout)
    : sock_(sock), stop_fd_(stop_fd), idle_read_(idle_read), write_timeout_(write_timeout) {}

  /// From now on, reads and writes go through `ssl` (a TLS connection whose
  /// handshake is done; the socket is non-blocking).
  void use_tls(SSL* ssl) { ssl_ = ssl; }
  bool tls() const { return ssl_ != nullptr; }
  /// While on, writes are dropped. cpp-httplib writes a response after every
  /// handler; for a request answered later (answer_later) that response must
  /// not reach the client, whose answer another thread writes.
  void discard_writes(bool on) { discard_ = on; }
  /// The server speaks plain HTTP on this connection (no TLS handshake
  /// comes): bytes may be read ahead before any is asked for.
  void plain_http() { plain_ = true; }

  enum class idle_end { request, timeout, stopped, gave_way, error };
  /// Waits for the first byte of the next request until `until`. While
  /// connections wait for a worker, a connection idle since `idle_since` for
  /// `grace` or more gives way (gave_way: close it).
  idle_end wait_for_request(steady::time_point until, steady::time_point idle_since, milliseconds grace,
                            waiting_connections& queue) {
    for (;;) {
      if (has_buffered() || read_ahead_now())
        return idle_end::request;
      auto now = steady::now();
      if (now >= until)
        return idle_end::timeout;
      const bool past_grace = now - idle_since >= grace;
      auto limit = std::chrono::ceil<milliseconds>(until - now);
      int wake_fd = -1;
      if (past_grace) {
        // A request that has arrived is served, even now.
        switch (wait(POLLIN, milliseconds(0), true)) {
        case waited::ready: return idle_end::request;
        case waited::stopped: return idle_end::stopped;
        case waited::error: return idle_end::error;
        default: break;
        }
        if (queue.claim())
          return idle_end::gave_way;
        wake_fd = queue.fd();
      } else {
        limit = std::min(limit, std::chrono::ceil<milliseconds>(idle_since + grace - now));
      }
      switch (wait(POLLIN, limit, true, wake_fd)) {
      case waited::ready: return idle_end::request;
      case waited::stopped: return idle_end::stopped;
      case waited::error: return idle_end::error;
      default: break;  // timeout or a connection waiting: look again
      }
    }
  }

  enum class handshake_end { done, failed, plain_http, timeout, stopped };
  /// The server's side of the TLS handshake on a non-blocking socket, by `until`.
  handshake_end accept_tls(SSL* ssl, steady::time_point until) const {
    for (;;) {
      ERR_clear_error();
      int r = SSL_accept(ssl);
      if (r == 1)
        return handshake_end::done;
      int e = SSL_get_error(ssl, r);
      short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (events == 0) {
        unsigned long err = ERR_peek_error();
        bool plain = ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_HTTP_REQUEST;
        ERR_clear_error();
        return plain ? handshake_end::plain_http : handshake_end::failed;
      }
      auto now = steady::now();
      if (now >= until)
        return handshake_end::timeout;
      switch (wait(events, std::chrono::ceil<milliseconds>(until - now), true)) {
      case waited::ready: break;
      case waited::timeout: return handshake_end::timeout;
      case waited::stopped: return handshake_end::stopped;
      default: return handshake_end::failed;
      }
    }
  }
  /// Reads fail once `deadline` has passed.
  void set_deadline(steady::time_point deadline) { deadline_ = deadline; }
  /// Whether a read failed because the client was too slow (then cleared).
  bool take_timed_out() { return std::exchange(timed_out_, false); }
  /// Reads fail once `bytes` more have been read (SIZE_MAX: no limit).
  void set_read_budget(size_t bytes) {
    budget_ = bytes;
    over_budget_ = false;
  }
  /// Whether a read failed because the budget was spent.
  bool over_budget() const { return over_budget_; }

  /// A request begins: what is read until headers_read() is its request
  /// line and headers, kept for the framing check (http/framing.hpp).
  void begin_request() {
    header_block_.clear();
    capturing_ = true;
    no_body_ = false;
  }
  /// The request line and headers as they came, once cpp-httplib has read them.
  std::string_view headers_read() {
    capturing_ = false;
    return header_block_;
  }
  /// The request has no body (neither Content-Length nor Transfer-Encoding):
  /// reads end at once, so cpp-httplib does not read on until the client
  /// closes, and what follows is the next request.
  void body_is_empty() { no_body_ = true; }

  bool is_readable() const override {
    if (has_buffered())
      return true;
    auto now = steady::now();
    if (now >= deadline_) {
      timed_out_ = true;
      return false;
    }
    auto left = std::chrono::ceil<milliseconds>(deadline_ - now);
    switch (wait(POLLIN, std::min(idle_read_, left), true)) {
    case waited::ready:
      return true;
    case waited::timeout:
      timed_out_ = true;
      return false;
    default:
      return false;
    }
  }

  // Writes do not wake on stop(): a request being handled gets its answer.
  bool is_writable() const override { return wait(POLLOUT, write_timeout_, false) == waited::ready; }

  ssize_t read(char* ptr, size_t size) override {
    if (no_body_)
      return 0;
    auto n = charge(read_some(ptr, size));
    if (capturing_ && n > 0)
      header_block_.append(ptr, static_cast<size_t>(n));
    return n;
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (discard_)
      return static_cast<ssize_t>(size);
    if (ssl_ == nullptr) {
      if (!is_writable())
        return -1;
      return ::send(sock_, ptr, size, MSG_NOSIGNAL);
    }
    const int n = static_cast<int>(std::min<size_t>(size, INT_MAX));
    for (;;) {
      ERR_clear_error();
      int r = SSL_write(ssl_, ptr, n);
      if (r > 0)
        return r;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_WRITE && is_writable())
        continue;
      if (e == SSL_ERROR_WANT_READ && wait(POLLIN, write_timeout_, false) == waited::ready)
        continue;
      return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (!remote_.known)
      remote_ = address_of(sock_, ::getpeername);
    ip = remote_.ip;
    port = remote_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (!local_.known)
      local_ = address_of(sock_, ::getsockname);
    ip = local_.ip;
    port = local_.port;
  }
  socket_t socket() const override { return sock_; }

private:
  enum class waited { ready, timeout, stopped, woken, error };

  // Bytes read from the connection and not yet handed to cpp-httplib.
  bool has_buffered() const { return off_ < len_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0); }

  // One read from the socket, or of decrypted bytes; waits (within the
  // request's deadline) while TLS needs more bytes.
  ssize_t receive(char* ptr, size_t size) {
    if (ssl_ == nullptr)
      return ::recv(sock_, ptr, size, 0);
    const int n = static_cast<int>(std::min<size_t>(size, INT_MAX));
    for (;;) {
      ERR_clear_error();
      int r = SSL_read(ssl_, ptr, n);
      if (r > 0)
        return r;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) {
        if (!is_readable())
          return -1;
        continue;
      }
      if (e == SSL_ERROR_WANT_WRITE) {
        if (!is_writable())
          return -1;
        continue;
      }
      return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
  }

  // Plain connections: takes into the buffer what has arrived, without
  // waiting. A request usually has (its first bytes woke the worker), and
  // then a recv alone does what a poll and a recv did.
  bool read_ahead_now() {
    if (!plain_ || ssl_ != nullptr || off_ < len_)
      return off_ < len_;
    ssize_t n;
    do
      n = ::recv(sock_, buf_.data(), buf_.size(), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
      return false;  // nothing yet, the end, or an error: the poll that follows tells
    off_ = 0;
    len_ = static_cast<size_t>(n);
    return true;
  }

  ssize_t read_some(char* ptr, size_t size) {
    // What already arrived is read even now; past the deadline, nothing more is awaited.
    if (off_ < len_ || (size < buf_.size() && steady::now() < deadline_ && read_ahead_now())) {
      size_t n = std::min(size, len_ - off_);
      std::memcpy(ptr, buf_.data() + off_, n);
      off_ += n;
      return static_cast<ssize_t>(n);
    }
    if (!is_readable())
      return -1;
    // cpp-httplib reads request lines a byte at a time: read ahead into a buffer.
    if (size < buf_.size()) {
      ssize_t n = receive(buf_.data(), buf_.size());
      if (n <= 0)
        return n;
      len_ = static_cast<size_t>(n);
      off_ = std::min(size, len_);
      std::memcpy(ptr, buf_.data(), off_);
      return static_cast<ssize_t>(off_);
    }
    return receive(ptr, size);
  }

  // Counts bytes handed to cpp-httplib against the budget.
  ssize_t charge(ssize_t n) {
    if (n <= 0 || budget_ == SIZE_MAX)
      return n;
    if (static_cast<size_t>(n) > budget_) {
      over_budget_ = true;
      return -1;
    }
    budget_ -= static_cast<size_t>(n);
    return n;
  }

  struct address {
    bool known = false;
    std::string ip;
    int port = 0;
  };

  static address address_of(int sock, int (*get)(int, sockaddr*, socklen_t*)) {
    address a;
    a.known = true;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (get(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return a;
    if (addr.ss_family == AF_INET)
      a.port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    else if (addr.ss_family == AF_INET6)
      a.port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    else
      return a;
    std::array<char, NI_MAXHOST> host{};
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host.data(), host.size(), nullptr, 0,
                      NI_NUMERICHOST) == 0)
      a.ip = host.data();
    return a;
  }

  // Waits for `events` on the socket; with wake_on_stop stop() ends the
  // wait, and a readable wake_fd too (woken).
  waited wait(short events, milliseconds timeout, bool wake_on_stop, int wake_fd = -1) const {
    pollfd fds[3] = {{sock_, events, 0}, {stop_fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int ms = static_cast<int>(std::clamp<milliseconds::rep>(timeout.count(), 0, INT_MAX));
    nfds_t count = wake_on_stop ? (wake_fd >= 0 ? 3 : 2) : 1;
    int r;
    do
      r = ::poll(fds, count, ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
      return waited::error;
    if (r == 0)
      return waited::timeout;
    if (wake_on_stop && fds[1].revents != 0)
      return waited::stopped;
    if (count == 3 && fds[0].revents == 0)
      return waited::woken;
    // A hang-up or error is "ready" too: the read or write that follows reports it.
    return waited::ready;
  }

  int sock_;
  int stop_fd_;
  milliseconds idle_read_;
  milliseconds write_timeout_;
  steady::time_point deadline_ = steady::time_point::max();
  mutable bool timed_out_ = false;
  size_t budget_ = SIZE_MAX;
  bool over_budget_ = false;
  std::array<char, 4096> buf_{};
  size_t off_ = 0, len_ = 0;
  SSL* ssl_ = nullptr;
  bool discard_ = false;
  bool plain_ = false;
  std::string header_block_;  // the request line and headers, while capturing_
  bool capturing_ = false;
  bool no_body_ = false;
  mutable address remote_, local_;
};

// The stream of the connection this worker thread serves (for the body deadline).
thread_local connection_stream* current_stream = nullptr;
// When the connection this thread is about to serve was accepted.
thread_local steady::time_point connection_queued_at{};
// Whether this thread (the accepting one) is to refuse the connection it hands on.
thread_local bool shedding_connection = false;
// Whether the connection this worker served gave way to a waiting one.
thread_local bool connection_gave_way = false;

std::string error_body(std::string_view code, std::string_view message) {
  return boost::json::serialize(
    boost::json::object{{"error", boost::json::object{{"code", code}, {"message", message}}}});
}

// The API error for a status cpp-httplib answered by itself.
std::string error_body_of(int status, size_t max_body_bytes) {
  switch (status) {
  case 400: return error_body("bad_request", "the request is malformed");
  case 404: return error_body("not_found", "no route for this method and path");
  case 405: return error_body("method_not_allowed", "this method is not allowed here");
  case 408: return error_body("request_timeout", "the request did not arrive in time");
  case 413:
    return error_body("payload_too_large",
                      "the request body is larger than " + std::to_string(max_body_bytes) + " bytes");
  case 414: return error_body("uri_too_long", "the request line is too long");
  case 416: return error_body("range_not_satisfiable", "the requested range cannot be served");
  case 431:
    return error_body("headers_too_large", "the request's line and headers are larger than " +
                                               std::to_string(max_header_bytes / 1024) + " KiB");
  case 417: return error_body("expectation_failed", "the Expect header cannot be met");
  case 429: return error_body("too_many_requests", "too many requests; retry later");
  case 500: return error_body("internal", "internal server error");
  case 503: return error_body("unavailable", "the server cannot answer now; retry later");
  default:
    return error_body("http_" + std::to_string(status),
                      status >= 500 ? "the server failed to answer" : "the request cannot be served");
  }
}

// /api/v1 requests count against the admission limit, except long polls,
// which wait by design and are bounded by their own timeout.
bool admission_counts(const std::string& path) {
  return path.rfind("/api/v1/", 0) == 0 && path != "/api/v1/notifications";
}

// The announced body size: Content-Length, or `unknown` for a chunked body.
size_t announced_body(const httplib::Request& req, bool chunked, size_t unknown) {
  if (chunked)
    return unknown;
  auto text = header_value(req, "Content-Length");
  size_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range)
    return SIZE_MAX;
  return ec == std::errc{} && end == text.data() + text.size() ? n : 0;
}

} // namespace

// --- connections waiting for a worker ---------------------------------------

waiting_connections::waiting_connections(size_t workers)
  : workers_(workers), fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

waiting_connections::~waiting_connections() {
  if (fd_ >= 0)
    ::close(fd_);
}

size_t waiting_connections::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

void waiting_connections::queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++waiting_;
  reconcile();
}

void waiting_connections::dequeued() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (waiting_ > 0)
    --waiting_;
  ++busy_;
  claimed_ = std::min(claimed_, waiting_);
  reconcile();
}

void waiting_connections::finished(bool claimed) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (busy_ > 0)
    --busy_;
  // The worker that gave way is free now: counted as free, no longer as claimed.
  if (claimed && claimed_ > 0)
    --claimed_;
  reconcile();
}

bool waiting_connections::claim() {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t free_workers = workers_ > busy_ ? workers_ - busy_ : 0;
  if (waiting_ <= free_workers + claimed_)
    return false;
  ++claimed_;
  reconcile();
  return true;
}

void waiting_connections::reconcile() {
  const size_t free_workers = workers_ > busy_ ? workers_ - busy_ : 0;
  const bool want = waiting_ > free_workers + claimed_;
  if (fd_ < 0 || want == signalled_)
    return;
  uint64_t value = 1;
  if (want) {
    if (::write(fd_, &value, sizeof value) == sizeof value)
      signalled_ = true;
  } else {
    if (::read(fd_, &value, sizeof value) == sizeof value || errno == EAGAIN)
      signalled_ = false;
  }
}

// cpp-httplib's ThreadPool, counting the connections that wait in it; past
// max_waiting_connections a new connection is refused by the accepting
// thread itself (see shed) instead of waiting.
class http_server::counting_queue final : public httplib::TaskQueue {
public:
  counting_queue(http_server& owner, size_t threads) : owner_(owner), pool_(threads) {}

  void enqueue(std::function<void()> fn) override {
    auto& o = owner_;
    if (o.queue_.waiting() >= o.settings_.max_waiting_connections) {
      // fn is process_and_close_socket(sock): it sees the flag and refuses.
      shedding_connection = true;
      fn();
      shedding_connection = false;
      return;
    }
    o.queue_.queued();
    o.metrics_.connections_waiting.fetch_add(1, std::memory_order_relaxed);
    pool_.enqueue([&o, fn = std::move(fn), at = steady::now()] {
      o.queue_.dequeued();
      o.metrics_.connections_waiting.fetch_sub(1, std::memory_order_relaxed);
      connection_queued_at = at;
      connection_gave_way = false;
      fn();
      o.queue_.finished(connection_gave_way);
    });
  }
  void shutdown() override { pool_.shutdown(); }

private:
  http_server& owner_;
  httplib::ThreadPool pool_;
};

void http_server::shed(int sock) {
  metrics_.connections_shed.fetch_add(1, std::memory_order_relaxed);
  if (!tls_ctx_) {
    // What the client has sent is read (closing over unread bytes would
    // reset the connection before our answer arrives), never waited for.
    char sink[4096];
    while (::recv(sock, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    static const std::string answer = [] {
      auto body = error_body("overloaded", "the server has too many connections waiting; retry later");
      return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
             "Connection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    if (::send(sock, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      // A full buffer or a gone client: closed all the same.
    }
    ::shutdown(sock, SHUT_WR);
  }
  // With TLS there is no quick answer (a handshake takes round trips): closed at once.
  ::close(sock);
}

namespace {

struct ssl_ctx_free {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// The server's TLS context from a PEM certificate chain and key; none when
// both are empty. Errors name the file.
result<std::unique_ptr<SSL_CTX, ssl_ctx_free>> make_tls_context(const std::string& cert, const std::string& key) {
  std::unique_ptr<SSL_CTX, ssl_ctx_free> none;
  if (cert.empty() && key.empty())
    return none;
  if (cert.empty() || key.empty())
    return status{errc::invalid_argument, "HTTPS needs both a certificate (--tls-cert) and a key (--tls-key)"};
  for (const auto* f : {&cert, &key})
    if (::access(f->c_str(), R_OK) != 0)
      return status{errc::invalid_argument, std::string("cannot read the TLS ") +
                                              (f == &cert ? "certificate " : "key ") + *f + ": " +
                                              std::strerror(errno)};
  auto openssl_says = [] {
    unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    const char* reason = ERR_reason_error_string(err);
    return std::string(reason != nullptr ? reason : "unknown OpenSSL error");
  };
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx)
    return status{errc::io_error, "cannot create a TLS context: " + openssl_says()};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
    return status{errc::invalid_argument, "cannot load the TLS certificate " + cert + ": " + openssl_says() +
                                            " (expected a PEM certificate chain)"};
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      return status{errc::invalid_argument, "the TLS key " + key + " does not match the certificate " + cert + ": " +
                                              openssl_says()};
    return status{errc::invalid_argument, "cannot load the TLS key " + key + ": " + openssl_says() +
                                            " (expected an unencrypted PEM private key)"};
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return status{errc::invalid_argument, "the TLS key " + key + " does not match the certificate " + cert + ": " +
                                            openssl_says()};
  return ctx;
}

} // namespace

status check_tls_files(const std::string& cert_file, const std::string& key_file) {
  auto ctx = make_tls_context(cert_file, key_file);
  return ctx ? status{} : ctx.error();
}

status http_server::load_tls() {
  auto ctx = make_tls_context(settings_.tls_cert_file, settings_.tls_key_file);
  if (!ctx)
    return ctx.error();
  tls_ctx_.reset(ctx.value().release());
  return {};
}

http_server::http_server(const http_settings& settings)
  : settings_(settings),
    keep_alive_header_("timeout=" + std::to_string(settings.keep_alive_timeout_s)
                       + ", max=" + std::to_string(settings.keep_alive_max)),
    queue_(settings.threads),
    limiter_(rate_limit{settings.rate_limit_per_s, static_cast<double>(settings.rate_burst)}),
    failed_auth_(failed_authentication_limit(rate_limit{settings.rate_limit_per_s, static_cast<double>(settings.rate_burst)})),
    server_(*this) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  metrics_.max_in_flight = settings.max_in_flight;
  if (settings.log_requests)
    log_ = std::make_unique<line_writer>(settings.request_log != nullptr ? *settings.request_log : std::cout);
  // cpp-httplib's default also sets SO_REUSEPORT, which lets a second server
  // bind the same port and silently take half the connections: only
  // SO_REUSEADDR (a restart may bind while old connections are in TIME_WAIT).
  server_.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(settings.keep_alive_max);
  server_.set_keep_alive_timeout(static_cast<time_t>(settings.keep_alive_timeout_s));
  server_.set_read_timeout(static_cast<time_t>(settings.read_timeout_s), 0);
  server_.set_write_timeout(static_cast<time_t>(settings.write_timeout_s), 0);
  server_.set_payload_max_length(settings.max_body_bytes);
  auto threads = settings.threads;
  server_.new_task_queue = [this, threads] { return new counting_queue(*this, threads); };
  install_hooks();
}

http_server::~http_server() {
  if (stop_fd_ >= 0)
    ::close(stop_fd_);
}

result<int> http_server::bind(const std::string& host, int port) {
  if (stop_fd_ < 0 || queue_.fd() < 0)
    return status{errc::io_error, "cannot create an eventfd: " + std::string(std::strerror(errno))};
  if (auto loaded = load_tls(); !loaded)
    return loaded;
  int bound = port;
  if (port == 0) {
    bound = server_.bind_to_any_port(host);
    if (bound <= 0)
      return status{errc::io_error, "cannot listen on " + host + ": no free port"};
  } else if (!server_.bind_to_port(host, port)) {
    return status{errc::io_error, "cannot listen on " + host + ":" + std::to_string(port) +
                                    " (in use, or not an address of this machine)"};
  }
  // The Debian build listened with a backlog of 5; on Linux a second listen()
  // on the bound socket sets the new backlog.
  if (::listen(server_.listening_socket(), settings_.listen_backlog) != 0)
    return status{errc::io_error, "cannot raise the listen backlog"};
  return bound;
}

bool http_server::run() { return server_.listen_after_bind(); }

void http_server::stop() {
  stopping_ = true;
  uint64_t one = 1;
  if (stop_fd_ >= 0 && ::write(stop_fd_, &one, sizeof one) < 0) {
    // Cannot fail on a fresh eventfd; the keep-alive timeout would still end connections.
  }
  if (server_.is_running())
    server_.stop();
  else
    // run() is not accepting yet (or never will): make its accept fail at
    // once instead of waiting for a connection. cpp-httplib's stop() does
    // nothing before it runs.
    ::shutdown(server_.listening_socket(), SHUT_RDWR);
}

// --- answers that come later -----------------------------------------------

namespace {

// The reason phrase of a status line. cpp-httplib's own table is not in the
// header the Debian package installs, so the API's statuses are listed here.
const char* reason_phrase(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

// Waits for the first of: `a` readable (when a >= 0), `b` readable, or the timeout.
enum class polled { a, b, timeout, error };
polled poll_either(int a, int b, milliseconds timeout) {
  pollfd fds[2] = {{b, POLLIN, 0}, {a, POLLIN, 0}};
  int ms = static_cast<int>(std::clamp<milliseconds::rep>(timeout.count(), 0, INT_MAX));
  int r;
  do
    r = ::poll(fds, a >= 0 ? 2 : 1, ms);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return polled::error;
  if (r == 0)
    return polled::timeout;
  return fds[0].revents != 0 ? polled::b : polled::a;
}

} // namespace

// The answer to one request that its handler left to another thread. The
// worker keeps the connection; whoever completes the answer writes it on the
// socket without blocking, then records it (metrics, log line). States:
//   preparing: the handler has not returned yet; an answer now is kept
//              (answered_early), and the worker writes it as it arms;
//   armed:     the worker is back on the connection; an answer now is written
//              by the completing thread;
//   writing:   one side is writing it; leftover: the socket was full, the
//              worker writes the rest (woken through the connection's eventfd);
//   expired:   the deadline passed with no answer: the worker answers 503;
//   done:      written (whichever answer it was) and recorded.
// The worker reads the connection's next request, and closes the socket,
// only once the answer is done.
class http_server::deferred final : public later_answer {
public:
  deferred(http_server& owner, int sock, int wake_fd, request_state st, const httplib::Request& req,
           milliseconds allowed)
    : owner_(owner), sock_(sock), wake_fd_(wake_fd), st_(std::move(st)), method_(req.method), path_(req.path),
      remote_(req.remote_addr), allowed_(allowed), deadline_(steady::now() + allowed) {}

  void complete(int status, std::string body) override {
    auto bytes = compose(status, body);
    std::unique_lock lock(mu_);
    if (state_ != state::preparing && state_ != state::armed)
      return;  // answered already, or given up at the deadline
    status_ = status;
    out_ = std::move(bytes);
    if (state_ == state::preparing) {
      state_ = state::answered_early;
      return;
    }
    state_ = state::writing;
    lock.unlock();
    owner_.release(st_);  // before the answer leaves: a client holding it never sees its slots taken
    bool failed = false;
    while (sent_ < out_.size()) {
      auto n = ::send(sock_, out_.data() + sent_, out_.size() - sent_, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        failed = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        break;
      }
    }
    if (sent_ < out_.size() && !failed) {
      lock.lock();
      state_ = state::leftover;  // the worker writes the rest, blocking as it may
      lock.unlock();
      wake();
      return;
    }
    finish();
  }

  bool settled() const override {
    std::lock_guard lock(mu_);
    return state_ == state::done || state_ == state::expired;
  }

  // The worker, once cpp-httplib has returned from the request: from now on
  // an answer is written by whoever brings it (or by the worker if it came
  // already).
  void arm(connection_stream& strm) {
    std::unique_lock lock(mu_);
    if (state_ != state::answered_early) {
      state_ = state::armed;
      return;
    }
    state_ = state::writing;
    lock.unlock();
    owner_.release(st_);
    write_rest(strm);
    finish();
  }

  // The worker, before the connection's next request or its end: waits until
  // the answer is written (writing what is left, or answering 503 at the
  // deadline). Until then the connection's next bytes wait unread; with
  // `for_close` they are not looked at. Returns when the answer was done.
  steady::time_point await(connection_stream& strm, milliseconds recheck, bool for_close) {
    bool client_waits = for_close;  // bytes have come (or do not matter): only the answer is awaited
    for (;;) {
      std::unique_lock lock(mu_);
      switch (state_) {
      case state::done:
      case state::expired:
        return done_at_;
      case state::leftover:
        state_ = state::writing;
        worker_waiting_ = false;  // this worker writes it: nobody to wake
        lock.unlock();
        write_rest(strm);
        finish();
        continue;
      case state::armed:
        if (steady::now() >= deadline_) {
          state_ = state::expired;
          worker_waiting_ = false;
          lock.unlock();
          give_up(strm);
          continue;
        }
        break;
      default:
        break;
      }
      worker_waiting_ = client_waits;
      lock.unlock();
      auto now = steady::now();
      auto left = std::chrono::ceil<milliseconds>(deadline_ > now ? deadline_ - now : steady::duration::zero());
      // Until the client has sent more, look again every `recheck`: the
      // answer may be done (written by another thread, which does not wake
      // this one unless it waits for it).
      switch (poll_either(client_waits ? -1 : sock_, wake_fd_, client_waits ? left : std::min(left, recheck))) {
      case polled::b: {
        uint64_t v;
        if (::read(wake_fd_, &v, sizeof v) < 0) {
          // Another read took it: looked at again all the same.
        }
        break;
      }
      case polled::a:
        client_waits = true;
        break;
      case polled::timeout:
      case polled::error:  // looked at again; the deadline bounds it
        if (!client_waits && settled())
          return done_at_;
        break;
      }
    }
  }

private:
  enum class state { preparing, answered_early, armed, writing, leftover, done, expired };

  std::string compose(int status, const std::string& body) const {
    std::string head;
    head.reserve(192 + st_.id.size() + body.size());
    head += "HTTP/1.1 ";
    head += std::to_string(status);
    head += ' ';
    head += reason_phrase(status);
    head += "\r\nContent-Length: ";
    head += std::to_string(body.size());
    head += "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff"
            "\r\nKeep-Alive: ";
    head += owner_.keep_alive_header_;
    if (status == 503 || status == 429)
      head += "\r\nRetry-After: 1";
    head += "\r\nX-Request-Id: ";
    head += st_.id;
    head += "\r\n\r\n";
    head += body;
    return head;
  }

  // Writes what is left of out_ on the worker's stream (blocking, within the write timeout).
  void write_rest(connection_stream& strm) {
    while (sent_ < out_.size()) {
      auto n = strm.write(out_.data() + sent_, out_.size() - sent_);
      if (n <= 0)
        break;  // the client is gone or stopped reading: recorded all the same
      sent_ += static_cast<size_t>(n);
    }
  }

  // The deadline passed with no answer: 503, in the words of a blocking ask
  // (http/front.hpp), naming the time the handler allowed.
  void give_up(connection_stream& strm) {
    status_ = 503;
    out_ = compose(503, error_body("unavailable", "the server is busy: no answer within "
                                                    + std::to_string(allowed_.count()) + " ms"));
    sent_ = 0;
    owner_.release(st_);
    write_rest(strm);
    finish();
  }

  void finish() {
    owner_.record_answer(st_, method_, path_, remote_, status_);
    std::unique_lock lock(mu_);
    state_ = state::done;
    done_at_ = steady::now();
    bool waiting = worker_waiting_;
    lock.unlock();
    if (waiting)
      wake();
  }

  void wake() const {
    uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) < 0) {
      // An eventfd only fails past 2^64-2 unread wakes.
    }
  }

  http_server& owner_;
  const int sock_;
  const int wake_fd_;
  request_state st_;
  const std::string method_, path_, remote_;
  const milliseconds allowed_;  // the handler's deadline, from when it let the answer come later
  const steady::time_point deadline_;
  mutable std::mutex mu_;
  state state_ = state::preparing;
  bool worker_waiting_ = false;
  int status_ = 0;
  std::string out_;
  size_t sent_ = 0;
  steady::time_point done_at_{};
};

namespace {

// The connection this worker thread serves, for answer_later.
struct connection_context {
  http_server* owner = nullptr;
  connection_stream* strm = nullptr;
  int sock = -1;
  int wake_fd = -1;           // an eventfd made at the first answer that comes later
  bool last_request = false;  // the connection closes after this one
  std::shared_ptr<http_server::deferred> deferred;  // the current request's, if it is answered later
};
thread_local connection_context* current_connection = nullptr;

} // namespace

std::shared_ptr<later_answer> answer_later(const httplib::Request& req, httplib::Response& res,
                                           milliseconds deadline) {
  auto* cx = current_connection;
  auto* st = current_request();
  if (cx == nullptr || st == nullptr || cx->deferred || cx->strm->tls() || cx->last_request || st->close_after ||
      cx->owner->stopping_ || req.version != "HTTP/1.1" || header_value(req, "Connection") == "close")
    return nullptr;
  if (cx->wake_fd < 0) {
    cx->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cx->wake_fd < 0)
      return nullptr;  // answered as usual
  }
  // The request's slots and its line now go with the answer.
  cx->deferred = std::make_shared<http_server::deferred>(*cx->owner, cx->sock, cx->wake_fd, *st, req, deadline);
  st->in_flight = false;
  st->admitted = false;
  st->logged = true;  // recorded by whoever writes the answer
  // What cpp-httplib writes after this handler is dropped. A status keeps it
  // from taking the request for unanswered (a 404 through the error handler).
  cx->strm->discard_writes(true);
  res.status = 202;
  return cx->deferred;
}

// cpp-httplib's loop over one connection's requests (process_and_close_socket
// in 0.11.4) with our stream: the same keep-alive rules, plus a per-request
// read deadline, a request context for the hooks, and stop() waking it.
bool http_server::tuned_server::process_and_close_socket(socket_t sock) {
  auto& o = owner_;
  const auto& s = o.settings_;
  if (shedding_connection) {
    o.shed(sock);
    return false;
  }
  auto idle_since = connection_queued_at == steady::time_point{} ? steady::now() : connection_queued_at;
  connection_stream strm(sock, o.stop_fd_, milliseconds(s.read_timeout_s * 1000),
                         milliseconds(s.write_timeout_s * 1000));
  if (!o.tls_ctx_)
    strm.plain_http();
  const auto read_timeout = std::chrono::seconds(s.read_timeout_s);
  const auto keep_alive = std::chrono::seconds(s.keep_alive_timeout_s);
  // An idle connection: closed at its timeout, or to give way to waiting ones.
  auto wait_for_request = [&](steady::time_point until) {
    auto end = strm.wait_for_request(until, idle_since, s.idle_grace, o.queue_);
    if (end == connection_stream::idle_end::gave_way) {
      connection_gave_way = true;
      o.metrics_.idle_closed.fetch_add(1, std::memory_order_relaxed);
    }
    return end;
  };

  SSL* ssl = nullptr;
  bool ret = false;
  bool serve = true;
  if (o.tls_ctx_) {
    // The handshake is the start of the first request: it must be done
    // within the read timeout of the connection's arrival.
    const auto until = idle_since + read_timeout;
    auto first = wait_for_request(until);
    if (first == connection_stream::idle_end::timeout)
      o.metrics_.read_timeouts.fetch_add(1, std::memory_order_relaxed);  // connected, never said hello
    serve = first == connection_stream::idle_end::request;
    if (serve) {
      ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
      ssl = SSL_new(o.tls_ctx_.get());
      serve = ssl != nullptr && SSL_set_fd(ssl, sock) == 1;
      if (serve) {
        switch (strm.accept_tls(ssl, until)) {
        case connection_stream::handshake_end::done:
          strm.use_tls(ssl);
          break;
        case connection_stream::handshake_end::plain_http: {
          // Plain HTTP on the HTTPS port: told so in plain HTTP, then closed.
          char sink[4096];
          while (::recv(sock, sink, sizeof sink, MSG_DONTWAIT) > 0) {
          }
          auto body = error_body("https_required", "this port speaks HTTPS: use https://");
          auto answer = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
          if (::send(sock, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            // The client is gone: nothing to tell.
          }
          serve = false;
          break;
        }
        case connection_stream::handshake_end::timeout:
          o.metrics_.read_timeouts.fetch_add(1, std::memory_order_relaxed);
          serve = false;
          break;
        default:
          serve = false;
        }
      }
      if (!serve) {
        // Not a TLS connection: nothing to say in TLS.
        SSL_free(ssl);
        ssl = nullptr;
      }
    }
  }

  current_stream = &strm;
  connection_context cx;
  cx.owner = &o;
  cx.strm = &strm;
  cx.sock = sock;
  current_connection = &cx;
  std::shared_ptr<deferred> pending;  // the last request's answer, when another thread writes it
  const auto recheck = std::max(s.idle_grace, milliseconds(1));
  for (size_t left = s.keep_alive_max; serve && left > 0 && !o.stopping_; --left) {
    if (pending) {
      idle_since = pending->await(strm, recheck, false);
      pending.reset();
    }
    if (wait_for_request(idle_since + keep_alive) != connection_stream::idle_end::request)
      break;
    request_state state;
    state.start = steady::now();
    request_scope scope(state);
    // The request line and headers must all arrive within the read timeout;
    // before_routing moves the deadline for the body.
    strm.set_deadline(state.start + read_timeout);
    strm.set_read_budget(max_header_bytes);  // before_routing sets the body's
    strm.begin_request();
    bool connection_closed = false;
    cx.last_request = left == 1;
    state.last_on_connection = left == 1;
    try {
      // close_connection = true: in cpp-httplib 0.11.4 it only picks the
      // header written with the answer, Connection: close instead of a
      // Keep-Alive formatted through a std::stringstream for every answer
      // (4% of the HTTP workers' time). The post-routing hook writes the
      // right one; whether the connection goes on is decided below.
      ret = process_request(strm, true, connection_closed, nullptr);
    } catch (...) {
      // Handlers' exceptions are answered inside; this is cpp-httplib itself
      // failing (out of memory): drop the connection, keep the worker.
      ret = false;
    }
    if (cx.deferred) {
      strm.discard_writes(false);
      pending = std::move(cx.deferred);
      pending->arm(strm);
    }
    const bool timed_out = strm.take_timed_out();
    o.end_request(state, timed_out);
    idle_since = steady::now();
    // A request not read to its end leaves the connection mid-stream: what
    // follows cannot be parsed as the next request, so the connection ends.
    if (!ret || connection_closed || state.close_after || timed_out || strm.over_budget())
      break;
  }
  if (pending)
    (void)pending->await(strm, recheck, true);  // written before the socket closes
  current_connection = nullptr;
  if (cx.wake_fd >= 0)
    ::close(cx.wake_fd);
  current_stream = nullptr;
  if (ssl != nullptr) {
    SSL_shutdown(ssl);  // close_notify, not waited for
    SSL_free(ssl);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

void http_server::install_hooks() {
  server_.set_pre_routing_handler(
    [this](const httplib::Request& req, httplib::Response& res) { return before_routing(req, res); });

  // An error cpp-httplib answers by itself has no body: give it the API's.
  server_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ > 0 || res.content_provider_)
      return httplib::Server::HandlerResponse::Unhandled;
    // Past its budget, cpp-httplib fails a read of the headers or of a
    // chunked body as a read error (400): the headers were too large, or the body.
    auto* st = current_request();
    if (current_stream != nullptr && current_stream->over_budget())
      res.status = st != nullptr && !st->past_headers ? 431 : 413;
    if (st != nullptr) {
      st->no_handler = true;
      // Past a 404 (no route; the body was read) the request was not read to
      // its end: the connection closes (and says so, see post-routing).
      if (res.status != 404)
        st->close_after = true;
    }
    res.set_content(error_body_of(res.status, settings_.max_body_bytes), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  // A handler that throws: 500 with the API's error; what it said goes to the
  // log line, not to the client.
  server_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    if (auto* st = current_request())
      st->error = what.substr(0, 200);
    res.status = 500;
    res.set_content(error_body("internal", "internal server error"), "application/json");
  });

  // Just before the answer's head is written, whoever produced it. The
  // request's work is done: its slots are released here, so a client holding
  // its answer never sees them still taken.
  server_.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (auto* st = current_request()) {
      release(*st);
      if (st->id.empty())
        st->id = new_request_id();
      if (!res.has_header("X-Request-Id"))
        res.set_header("X-Request-Id", st->id);
      // cpp-httplib was told that every connection closes (see
      // process_and_close_socket) and has just added Connection: close;
      // whether it does close is decided here, as cpp-httplib would (plus
      // close_after), and a Keep-Alive header written from one string.
      const auto connection = header_value(req, "Connection");
      const bool closes = st->close_after || st->last_on_connection || connection == "close"
                          || (req.version == "HTTP/1.0" && connection != "Keep-Alive");
      res.headers.erase("Connection");
      res.headers.erase("Keep-Alive");
      if (closes)
        res.set_header("Connection", "close");
      else
        res.set_header("Keep-Alive", keep_alive_header_);
    }
    if ((res.status == 503 || res.status == 429) && !res.has_header("Retry-After"))
      res.set_header("Retry-After", "1");
    // The API's answers (and its errors) are read by code, not sniffed, and
    // are not kept by caches: they hold what the caller is allowed to see now.
    if (res.get_header_value("Content-Type") == "application/json") {
      if (!res.has_header("Cache-Control"))
        res.set_header("Cache-Control", "no-store");
      res.set_header("X-Content-Type-Options", "nosniff");
    }
  });

  // After the answer is written: metrics and the log line.
  server_.set_logger([this](const httplib::Request& req, const httplib::Response& res) { after_answer(req, res); });
}

httplib::Server::HandlerResponse http_server::before_routing(const httplib::Request& req, httplib::Response& res) {
  auto* st = current_request();
  if (st == nullptr)
    return httplib::Server::HandlerResponse::Unhandled;
  st->past_headers = true;
  st->id = sanitize_request_id(header_value(req, "X-Request-Id"));
  if (st->id.empty())
    st->id = new_request_id();
  st->in_flight = true;
  metrics_.in_flight.fetch_add(1, std::memory_order_relaxed);

  // How the body is framed, from the bytes that came (RFC 9112 §6.3):
  // ambiguous framing is refused and the connection closed, since what
  // follows it cannot be told apart from the next request.
  body_framing framing;
  if (current_stream != nullptr)
    framing = framing_of(current_stream->headers_read());
  else
    framing.how = find_header(req, "Transfer-Encoding") != nullptr ? body_framing::kind::chunked
                  : find_header(req, "Content-Length") != nullptr ? body_framing::kind::length
                                                                  : body_framing::kind::none;
  if (framing.refused()) {
    st->no_handler = true;
    st->close_after = true;
    res.status = framing.refusal_status;
    res.set_content(error_body(framing.refusal_status == 431 ? "headers_too_large" : "bad_request",
                               "the request's framing is refused: " + framing.refusal),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }
  const bool chunked = framing.how == body_framing::kind::chunked;
  if (current_stream != nullptr) {
    if (framing.how == body_framing::kind::none)
      current_stream->body_is_empty();
    // cpp-httplib 0.11.4 limits Content-Length bodies (413) but reads chunked
    // ones without limit: cap those at max_body_bytes on the wire, framing
    // included.
    current_stream->set_read_budget(chunked ? settings_.max_body_bytes : SIZE_MAX);
  }
  const size_t body = chunked ? settings_.max_body_bytes
                      : framing.how == body_framing::kind::length && current_stream != nullptr
                        ? static_cast<size_t>(std::min<uint64_t>(framing.length, SIZE_MAX))
                        : announced_body(req, false, 0);
  const bool has_body = body > 0;
  // A body announced too large is refused before it is read (cpp-httplib
  // would read and discard all of it first).
  if (body > settings_.max_body_bytes && !chunked) {
    st->no_handler = true;
    st->close_after = true;
    res.status = 413;
    res.set_content(error_body_of(413, settings_.max_body_bytes), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }

  // Per-caller limits: a request past its caller's bucket is refused before
  // anything else is done for it. Health checks and scrapes are not counted.
  if (limiter_.on() && req.path != "/healthz" && req.path != "/metrics") {
    const auto authorization = header_value(req, "Authorization");  // a view into req, as is the token
    const auto token = bearer_token_of(authorization);
    const auto key = limiter_.key_of(token, req.remote_addr);
    auto refuse = [&](std::chrono::seconds retry_after, const std::string& why) {
      st->rejected = true;
      metrics_.rate_limited.fetch_add(1, std::memory_order_relaxed);
      auto wait_s = std::to_string(retry_after.count());
      res.status = 429;
      res.set_header("Retry-After", wait_s);
      res.set_content(error_body("rate_limited", why + "; retry in " + wait_s + " s"), "application/json");
      st->close_after = has_body;  // the body was not read
      return httplib::Server::HandlerResponse::Handled;
    };
    // Every new token gets a full bucket, so a client rotating unknown tokens
    // is limited by its address's failed authentications instead: past them,
    // only tokens that name a user are let through (the bad guesses are
    // refused, not the users sharing the address behind a proxy).
    if (!token.empty()) {
      st->token_key = key;
      if (failed_auth_.empty(limiter_.key_of({}, req.remote_addr)) && !limiter_.authenticated_before(key)
          && !(settings_.token_known && settings_.token_known(token)))
        return refuse(std::chrono::seconds(1), "too many requests with unknown tokens from this address");
    }
    auto taken = limiter_.take(key);
    if (!taken.allowed)
      return refuse(taken.retry_after, "too many requests from this caller");
  }

  if (admission_counts(req.path)) {
    st->admitted = true;
    auto now_in = metrics_.api_in_flight.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (static_cast<size_t>(now_in) > settings_.max_in_flight) {
      st->rejected = true;
      metrics_.overloaded.fetch_add(1, std::memory_order_relaxed);
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(error_body("overloaded", "the server is at its limit of requests in flight; retry later"),
                      "application/json");
      // The body was not read: the connection cannot carry another request.
      st->close_after = has_body;
      return httplib::Server::HandlerResponse::Handled;
    }
  }

  // The body must come at min_body_bytes_per_s on average (plus the read
  // timeout), so a client dripping it cannot hold a worker for long.
  if (has_body && current_stream != nullptr) {
    auto rate = std::max<size_t>(settings_.min_body_bytes_per_s, 1);
    auto allowance = std::chrono::seconds(settings_.read_timeout_s + std::min(body, settings_.max_body_bytes) / rate);
    current_stream->set_deadline(steady::now() + allowance);
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

void http_server::after_answer(const httplib::Request& req, const httplib::Response& res) {
  auto* st = current_request();
  if (st == nullptr || st->logged)
    return;
  record_answer(*st, st->past_headers ? std::string_view(req.method) : std::string_view("-"), req.path,
                req.remote_addr, res.status);
}

void http_server::record_answer(request_state& st, std::string_view method, const std::string& path,
                                const std::string& remote_addr, int status) {
  st.logged = true;
  if (st.token_key != 0) {
    if (!st.user.empty())
      limiter_.note_authenticated(st.token_key);
    else if (status == 401)
      (void)failed_auth_.take(limiter_.key_of({}, remote_addr));
  }
  // The route label is bounded: the pattern of a path a handler answered, and
  // for answers given before any handler ran, that pattern only when a
  // handler has answered it before (else "unmatched").
  std::string route = "unmatched";
  if (st.past_headers) {
    route = route_pattern(path);
    if (st.no_handler || st.rejected)
      route = metrics_.label_for_unhandled(route);
    else
      metrics_.note_handled(route);
  }
  auto took = steady::now() - st.start;
  metrics_.observe(route, method, status, took);
  if (log_) {
    request_log_fields f;
    f.when = std::chrono::system_clock::now();
    f.id = st.id;
    f.method = method;
    f.route = route;
    f.user = st.user;
    f.error = st.error;
    f.status = status;
    f.dur_ms = std::chrono::duration<double, std::milli>(took).count();
    log_->write(format_request_line(f));
  }
}

void http_server::release(request_state& st) {
  if (std::exchange(st.in_flight, false))
    metrics_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (std::exchange(st.admitted, false))
    metrics_.api_in_flight.fetch_sub(1, std::memory_order_acq_rel);
}

void http_server::end_request(request_state& st, bool timed_out) {
  release(st);
  if (!timed_out)
    return;
  metrics_.read_timeouts.fetch_add(1, std::memory_order_relaxed);
  // Nothing was answered when the request line itself did not arrive in
  // time; the line still says a slow client was dropped.
  if (log_ && !st.logged) {
    if (st.id.empty())
      st.id = new_request_id();
    request_log_fields f;
    f.when = std::chrono::system_clock::now();
    f.id = st.id;
    f.method = "-";
    f.route = "unmatched";
    f.status = 0;
    f.error = "read timeout: the request did not arrive in time; connection closed";
    f.dur_ms = std::chrono::duration<double, std::milli>(steady::now() - st.start).count();
    log_->write(format_request_line(f));
  }
}

} // namespace backline::http
