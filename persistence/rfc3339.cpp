#include "backline/rfc3339.hpp"

#include <cstdio>
#include <ctime>

namespace backline {

void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto secs = ms / 1000;
  auto milli = ms % 1000;
  if (milli < 0) {  // before 1970: the second before, plus
    secs -= 1;
    milli += 1000;
  }
  thread_local long long cached_secs = -1;
  thread_local bool cached_any = false;
  thread_local char cached[80];  // room for any int year, so the compiler sees no truncation
  thread_local int cached_len = 0;
  if (!cached_any || secs != cached_secs) {
    const auto when = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&when, &tm);
    cached_len = std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
    cached_any = true;
  }
  out.append(cached, static_cast<size_t>(cached_len));
  const auto m = static_cast<int>(milli);
  out += static_cast<char>('0' + m / 100);
  out += static_cast<char>('0' + m / 10 % 10);
  out += static_cast<char>('0' + m % 10);
  out += 'Z';
}

std::string now_rfc3339() {
  std::string out;
  out.reserve(24);
  append_rfc3339_millis(out, std::chrono::system_clock::now());
  return out;
}

} // namespace backline
