#pragma once
// A raw TCP client socket to a test server on loopback, for what
// httplib::Client will not send (a request dripped byte by byte, a bare
// handshake, nothing at all) and for watching how the server ends it.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
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
    std::string out;
    auto until = std::chrono::steady_clock::now() + limit;
    while ((needle.empty() || out.find(needle) == std::string::npos) && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads until `count` bytes have arrived (or the peer closes, or `limit` passes).
  std::string read_bytes(size_t count, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + limit;
    while (out.size() < count && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      std::string buf(std::min<size_t>(count - out.size(), 1u << 20), '\0');
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
  }
  // Whether the server closes the connection within `limit` (what it sent is skipped).
  bool closed_within(std::chrono::milliseconds limit) {
    read_until({}, limit);
    return closed_;
  }
  // Whether the server gave up on our request, without blocking: it closed
  // the connection or answered (an error) before the request was complete.
  bool server_gave_up() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

private:
  int fd_ = -1;
  bool closed_ = false;  // the peer closed (or reset) the connection
};

} // namespace backline::testing
