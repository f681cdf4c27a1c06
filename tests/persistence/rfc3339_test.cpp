#include "backline/rfc3339.hpp"

#include <catch2/catch.hpp>

#include <regex>

using namespace backline;
using std::chrono::milliseconds;
using std::chrono::system_clock;

namespace {

std::string text_of(long long ms) {
  std::string out;
  append_rfc3339_millis(out, system_clock::time_point(milliseconds(ms)));
  return out;
}

} // namespace

TEST_CASE("rfc3339: UTC to the millisecond, the same second reused and the next one made anew") {
  CHECK(text_of(0) == "1970-01-01T00:00:00.000Z");
  CHECK(text_of(1764938096007) == "2025-12-05T12:34:56.007Z");
  CHECK(text_of(1764938096999) == "2025-12-05T12:34:56.999Z");  // the cached second
  CHECK(text_of(1764938097000) == "2025-12-05T12:34:57.000Z");  // the next one
  CHECK(text_of(1764938096050) == "2025-12-05T12:34:56.050Z");  // back again
  CHECK(text_of(-1) == "1969-12-31T23:59:59.999Z");
  std::string appended = "ts=";
  append_rfc3339_millis(appended, system_clock::time_point(milliseconds(86400000)));
  CHECK(appended == "ts=1970-01-02T00:00:00.000Z");
  CHECK(std::regex_match(now_rfc3339(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}
