// A request's framing check (http/framing.hpp) over any request line and
// headers: nothing may crash or throw; a refusal is a 400 or a 431 with a
// reason; an accepted block holds no control character but tabs and line
// ends, every line of it ends in CRLF, and a framing it reports comes from
// a header that names it.

#include "fuzz/fuzz_check.hpp"
#include "http/framing.hpp"

#include <algorithm>
#include <cctype>
#include <string>

using namespace backline::http;

namespace {

bool names(std::string_view block, std::string_view header) {
  std::string lower(block);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find(header) != std::string::npos;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto block = backline::fuzz::bytes_of(data, size);
  auto f = framing_of(block);
  if (f.refused()) {
    FUZZ_CHECK(f.refusal_status == 400 || f.refusal_status == 431);
    FUZZ_CHECK(!f.refusal.empty());
    return 0;
  }
  // What it read: the request line, then header lines up to an empty one.
  size_t end = 0;
  for (bool first = true;; first = false) {
    auto nl = block.find('\n', end);
    if (nl == std::string_view::npos) {
      end = block.size();
      break;
    }
    bool empty = nl == end + 1;
    end = nl + 1;
    if (empty && !first)
      break;
  }
  block = block.substr(0, end);
  for (size_t i = 0; i < block.size(); ++i) {
    auto c = static_cast<unsigned char>(block[i]);
    FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\r' || c == '\n');
    FUZZ_CHECK(c != 0x7f);
    if (c == '\n')
      FUZZ_CHECK(i > 0 && block[i - 1] == '\r');
  }
  if (f.how == body_framing::kind::chunked)
    FUZZ_CHECK(names(block, "\ntransfer-encoding:") && !names(block, "\ncontent-length:"));
  if (f.how == body_framing::kind::length)
    FUZZ_CHECK(names(block, "\ncontent-length:") && !names(block, "\ntransfer-encoding:"));
  return 0;
}
