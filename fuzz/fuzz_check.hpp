#pragma once
// What every fuzzer here shares: a check that stops the run with a message
// (libFuzzer then saves the input as a crash), and the input as a string_view.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace backline::fuzz {

inline std::string_view bytes_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The next piece of the input up to `sep` (which is consumed), or all that is left.
inline std::string_view take_until(std::string_view& rest, char sep) {
  auto at = rest.find(sep);
  auto piece = rest.substr(0, at);
  rest.remove_prefix(at == std::string_view::npos ? rest.size() : at + 1);
  return piece;
}

} // namespace backline::fuzz
