#include "http/framing.hpp"

#include <vector>

namespace backline::http {
namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x != y && (x | 0x20) != (y | 0x20))
      return false;
  }
  return true;
}

// The elements of a comma-separated list value, trimmed; empty ones kept
// (so that "13," reads as two elements, one of them not a number).
template <class F>
void for_each_element(std::string_view value, F f) {
  for (;;) {
    auto comma = value.find(',');
    f(trim_ows(value.substr(0, comma)));
    if (comma == std::string_view::npos)
      return;
    value.remove_prefix(comma + 1);
  }
}

body_framing refuse(int status, std::string why) {
  body_framing f;
  f.refusal_status = status;
  f.refusal = std::move(why);
  return f;
}

} // namespace

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

body_framing framing_of(std::string_view block) {
  bool first = true;
  size_t count = 0;
  bool has_length = false;
  bool bad_length = false;
  uint64_t length = 0;
  std::vector<std::string_view> codings;
  while (!block.empty()) {
    // cpp-httplib skips a header line ended by a bare LF (and reads on past
    // an empty one): such a line is refused, not read differently.
    auto nl = block.find('\n');
    auto line = block.substr(0, nl);
    block.remove_prefix(nl == std::string_view::npos ? block.size() : nl + 1);
    if (nl == std::string_view::npos || line.empty() || line.back() != '\r')
      return refuse(400, "a line of the request not ended by CRLF");
    line.remove_suffix(1);
    for (char c : line) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f)
        return refuse(400, "a control character in the request's " + std::string(first ? "line" : "headers"));
    }
    if (first) {  // the request line: cpp-httplib parses it
      first = false;
      continue;
    }
    if (line.empty())
      break;  // the end of the headers
    if (line.front() == ' ' || line.front() == '\t')
      return refuse(400, "a header line folded onto the one before");
    if (++count > max_header_count)
      return refuse(431, "more than " + std::to_string(max_header_count) + " header lines");
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return refuse(400, "a header line without a colon");
    auto name = line.substr(0, colon);
    if (name.empty())
      return refuse(400, "a header line without a name");
    for (char c : name)
      if (!is_tchar(static_cast<unsigned char>(c)))
        return refuse(400, "a header name that is not a token (a space before the colon?)");
    auto value = trim_ows(line.substr(colon + 1));
    if (same_name(name, "Content-Length")) {
      for_each_element(value, [&](std::string_view n) {
        uint64_t v = 0;
        bool digits = !n.empty();
        for (char c : n) {
          if (c < '0' || c > '9') {
            digits = false;
            break;
          }
          auto d = static_cast<uint64_t>(c - '0');
          v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        }
        if (!digits || (has_length && v != length))
          bad_length = true;
        has_length = true;
        length = v;
      });
    } else if (same_name(name, "Transfer-Encoding")) {
      for_each_element(value, [&](std::string_view coding) { codings.push_back(coding); });
    }
  }
  if (bad_length)
    return refuse(400, "a Content-Length that is not one number");
  if (!codings.empty()) {
    if (has_length)
      return refuse(400, "both Transfer-Encoding and Content-Length: the body's length is ambiguous");
    if (codings.size() != 1 || !same_name(codings.front(), "chunked"))
      return refuse(400, "a Transfer-Encoding other than chunked");
    body_framing f;
    f.how = body_framing::kind::chunked;
    return f;
  }
  body_framing f;
  if (has_length) {
    f.how = body_framing::kind::length;
    f.length = length;
  }
  return f;
}

} // namespace backline::http
