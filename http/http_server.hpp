#pragma once
// cpp-httplib with a server's settings instead of its defaults: TCP_NODELAY
// on (off costs 40 ms delayed-ACK stalls per keep-alive request), keep-alive
// limits raised, a worker pool sized from configuration (each worker serves
// one connection), read/write timeouts so a slow client cannot hold a worker
// forever, and a listen backlog raised past the compiled-in 5.

#include <httplib.h>

#include <cstddef>
#include <string>

#include "backline/status.hpp"

namespace backline::http {

struct http_settings {
  size_t threads = 512;
  size_t max_body_bytes = 16u << 20;
  unsigned read_timeout_s = 10;
  unsigned write_timeout_s = 10;
  unsigned keep_alive_timeout_s = 30;
  size_t keep_alive_max = 100000;
  int listen_backlog = 4096;
};

class http_server {
public:
  explicit http_server(const http_settings& settings);

  /// Where routes are registered.
  httplib::Server& routes() { return server_; }

  /// Binds and starts listening; returns the bound port (port 0: any free one).
  result<int> bind(const std::string& host, int port);
  /// Serves until stop(); in-flight requests finish before it returns.
  bool run();
  void stop();

private:
  // Exposes the listening socket so its backlog can be raised.
  class tuned_server : public httplib::Server {
  public:
    socket_t listening_socket() const { return svr_sock_; }
  };

  // httplib's stop() leaves an idle keep-alive connection holding its worker
  // until the keep-alive timeout, and keeps its sockets private; so stop()
  // finds the accepted sockets of our port among the process's descriptors
  // and shuts their read side (a request being handled still gets its answer).
  void close_accepted_connections();

  http_settings settings_;
  tuned_server server_;
  int port_ = 0;
};

} // namespace backline::http
