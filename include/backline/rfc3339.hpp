#pragma once
// Times as the log and the request lines write them: RFC 3339, UTC, to the
// millisecond (2026-11-25T13:00:00.123Z).

#include <chrono>
#include <string>

namespace backline {

/// Appends t. The part to the second is formatted once a second per thread
/// (gmtime_r takes glibc's time zone lock, and snprintf is slow): every
/// command and every answered request writes one.
void append_rfc3339_millis(std::string& out, std::chrono::system_clock::time_point t);

/// Now, as above.
std::string now_rfc3339();

} // namespace backline
