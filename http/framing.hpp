#pragma once
// How a request's body is framed (RFC 9112 §6.3), read from the request line
// and headers exactly as they came off the wire. cpp-httplib's own parse is
// lenient: it skips header lines without a colon, reads Content-Length with
// strtoull ("+13", "13abc"), looks at the first Transfer-Encoding only, and
// reads a body with neither header until the client closes. Behind a proxy
// that reads the same bytes differently, that is request smuggling; alone,
// it is a body read without limit. This check runs first and refuses what
// is ambiguous; what it accepts, cpp-httplib reads the same way.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace backline::http {

/// The request line and headers together, in bytes: past it, 431.
inline constexpr size_t max_header_bytes = 64 * 1024;
/// Header lines in one request: past it, 431.
inline constexpr size_t max_header_count = 100;

struct body_framing {
  enum class kind { none, length, chunked };
  /// none: no Content-Length and no Transfer-Encoding, so the body is empty
  /// (HTTP/1.1, for every method).
  kind how = kind::none;
  /// With kind::length; UINT64_MAX when the number does not fit.
  uint64_t length = 0;
  /// Non-zero when the request is refused: 400 (ambiguous or malformed
  /// framing) or 431 (too many header lines). The connection then closes.
  int refusal_status = 0;
  std::string refusal;

  bool refused() const { return refusal_status != 0; }
};

/// `s` without the optional whitespace (spaces and tabs, RFC 9110 5.6.3) at
/// either end, as a header value or a list element is read.
std::string_view trim_ows(std::string_view s);

/// The framing of the request whose request line and header lines are
/// `block` (each ended by CRLF, up to the empty line that ends them).
/// Refused (400): a line not ended by CRLF; a header line without a colon, with a name that
/// is not a token (spaces before the colon included), folded onto the line
/// before, or with a NUL, a bare CR or another control character; both
/// Transfer-Encoding and Content-Length; a Transfer-Encoding other than
/// exactly "chunked"; a Content-Length that is not digits alone, or several
/// that differ. Refused (431): more than max_header_count header lines.
body_framing framing_of(std::string_view block);

} // namespace backline::http
