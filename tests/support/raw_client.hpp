#pragma once
// A raw TCP client socket to a test server on loopback, for what
// httplib::Client will not send (a request dripped byte by byte, a bare
// handshake, nothing at all) and for watching how the server ends it.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <string>

namespace backline::testing {

// A raw client socket, for what httplib::Client will not send.
class raw_client {
public:
  explicit raw_client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~raw_client() { ::close(fd_); }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Reads until the peer closes or `limit` passes.
  std::string read_all(std::chrono::milliseconds limit = std::chrono::seconds(5)) { return read_until({}, limit); }
  // Reads until `needle` has arrived (or the peer closes, or `limit` passes);
  // an empty needle reads until the peer closes or `limit` passes.
  std::string read_until(const std::string& needle, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return read_while(
      [&](const std::string& out) -> size_t {
        return needle.empty() || out.find(needle) == std::string::npos ? 4096 : 0;
      },
      limit);
  }
  // Reads until `count` bytes have arrived (or the peer closes, or `limit` passes).
  std::string read_bytes(size_t count, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return read_while([&](const std::string& out) { return std::min<size_t>(count - out.size(), 1u << 20); },
                      limit);
  }
  // Whether the server closes the connection within `limit` (what it sent is skipped).
  bool closed_within(std::chrono::milliseconds limit) {
    read_until({}, limit);
    return closed_;
  }
  // Sends `chunk` again and again, up to `total` bytes, while the server
  // takes them: stops when it closes the connection, or when it has left
  // them unread for `stalled` (it stopped reading). The bytes sent.
  size_t send_while_taken(const std::string& chunk, size_t total,
                          std::chrono::milliseconds stalled = std::chrono::seconds(2)) {
    size_t sent = 0;
    while (sent < total) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(stalled.count())) <= 0 || (p.revents & (POLLERR | POLLHUP)) != 0)
        break;
      ssize_t n = ::send(fd_, chunk.data(), std::min(chunk.size(), total - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (n <= 0)
        break;
      sent += static_cast<size_t>(n);
    }
    return sent;
  }
  // Ends our side of the connection (a half-close): the server reads its end.
  void half_close() { ::shutdown(fd_, SHUT_WR); }
  // Whether the server gave up on our request, without blocking: it closed
  // the connection or answered (an error) before the request was complete.
  bool server_gave_up() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

private:
  // Reads while `wanted(what came so far)` asks for more bytes (at most that
  // many a read), until the peer closes or `limit` passes.
  std::string read_while(const std::function<size_t(const std::string&)>& wanted, std::chrono::milliseconds limit) {
    std::string out, buf;
    auto until = std::chrono::steady_clock::now() + limit;
    for (size_t want; (want = wanted(out)) > 0 && std::chrono::steady_clock::now() < until;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      buf.resize(want);
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
  }

  int fd_ = -1;
  bool closed_ = false;  // the peer closed (or reset) the connection
};

} // namespace backline::testing
