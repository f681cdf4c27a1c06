// The framing check of a request (http/framing.hpp), as a pure function.

#include <catch2/catch.hpp>

#include <string>

#include "http/framing.hpp"

using backline::http::body_framing;
using backline::http::framing_of;

namespace {

body_framing of(const std::string& headers) { return framing_of("POST /api/v1/chats HTTP/1.1\r\n" + headers + "\r\n"); }

} // namespace

TEST_CASE("framing: a body is framed by one Content-Length, by chunked, or is empty") {
  auto none = of("Host: t\r\n");
  CHECK_FALSE(none.refused());
  CHECK(none.how == body_framing::kind::none);

  auto length = of("Host: t\r\nContent-Length: 13\r\n");
  CHECK_FALSE(length.refused());
  CHECK(length.how == body_framing::kind::length);
  CHECK(length.length == 13);
  CHECK(of("content-length:   0  \r\n").length == 0);
  CHECK(of("Content-Length: 7\r\nContent-Length: 7\r\n").length == 7);  // the same number twice
  CHECK(of("Content-Length: 99999999999999999999999\r\n").length == UINT64_MAX);  // too large: 413 later

  auto chunked = of("Transfer-Encoding: chunked\r\n");
  CHECK_FALSE(chunked.refused());
  CHECK(chunked.how == body_framing::kind::chunked);
  CHECK(of("transfer-encoding: Chunked\r\n").how == body_framing::kind::chunked);
}

TEST_CASE("framing: what two parsers could read differently is refused (RFC 9112 6.3)") {
  auto refused = [](const std::string& headers) {
    auto f = of(headers);
    INFO(headers);
    CHECK(f.refused());
    CHECK(f.refusal_status == 400);
    return f.refusal;
  };
  CHECK_THAT(refused("Transfer-Encoding: chunked\r\nContent-Length: 13\r\n"), Catch::Contains("ambiguous"));
  CHECK_THAT(refused("Content-Length: 13\r\nTransfer-Encoding: chunked\r\n"), Catch::Contains("ambiguous"));
  refused("Transfer-Encoding: identity, chunked\r\n");
  refused("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
  refused("Transfer-Encoding: gzip\r\n");
  refused("Transfer-Encoding: chunked, gzip\r\n");
  refused("Content-Length: +13\r\n");
  refused("Content-Length: 13abc\r\n");
  refused("Content-Length: -1\r\n");
  refused("Content-Length: \r\n");
  refused("Content-Length: 13, 14\r\n");
  refused("Content-Length: 13\r\nContent-Length: 14\r\n");
  refused("Content-Length: 1 3\r\n");
}

TEST_CASE("framing: malformed header lines are refused, not skipped") {
  auto refused = [](const std::string& block) {
    auto f = framing_of(block);
    INFO(block);
    CHECK(f.refusal_status == 400);
  };
  const std::string line = "GET /healthz HTTP/1.1\r\n";
  refused(line + "Host t\r\n\r\n");                        // no colon
  refused(line + ": value\r\n\r\n");                       // no name
  refused(line + "Content-Length : 5\r\n\r\n");            // a space before the colon
  refused(line + "X-A: 1\r\n folded\r\n\r\n");             // obs-fold
  refused(line + "X-A: a" + std::string(1, '\0') + "b\r\n\r\n");  // NUL
  refused(line + "X-A: a\rb\r\n\r\n");                     // a bare CR
  refused(line + "X-A: a\r\nContent-Length: 5\n\r\n");     // a bare LF: cpp-httplib would skip the line
  refused("GET /a" + std::string(1, '\0') + " HTTP/1.1\r\n\r\n");  // in the request line too
  CHECK_FALSE(framing_of(line + "X-A: a\tb\r\n\r\n").refused());  // a tab is fine
}

TEST_CASE("framing: more than max_header_count header lines is 431") {
  std::string headers;
  for (size_t i = 0; i < backline::http::max_header_count; ++i)
    headers += "X-" + std::to_string(i) + ": 1\r\n";
  CHECK_FALSE(of(headers).refused());
  auto f = of(headers + "X-One-More: 1\r\n");
  CHECK(f.refusal_status == 431);
}
