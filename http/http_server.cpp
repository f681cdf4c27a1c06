#include "http/http_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <filesystem>

namespace backline::http {

http_server::http_server(const http_settings& settings) : settings_(settings) {
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(settings.keep_alive_max);
  server_.set_keep_alive_timeout(static_cast<time_t>(settings.keep_alive_timeout_s));
  server_.set_read_timeout(static_cast<time_t>(settings.read_timeout_s), 0);
  server_.set_write_timeout(static_cast<time_t>(settings.write_timeout_s), 0);
  server_.set_payload_max_length(settings.max_body_bytes);
  auto threads = settings.threads;
  server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
}

result<int> http_server::bind(const std::string& host, int port) {
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
  port_ = bound;
  return bound;
}

bool http_server::run() { return server_.listen_after_bind(); }

void http_server::stop() {
  server_.stop();
  close_accepted_connections();
}

void http_server::close_accepted_connections() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      continue;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || listening)
      continue;
    int local_port = addr.ss_family == AF_INET
                       ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                       : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port) : -1;
    if (local_port == port_)
      ::shutdown(fd, SHUT_RD);
  }
}

} // namespace backline::http
