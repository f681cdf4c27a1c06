#include "backline/status.hpp"

namespace backline {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::conflict: return "conflict";
    case errc::not_found: return "not_found";
    case errc::corrupt: return "corrupt";
    case errc::io_error: return "io_error";
    case errc::no_space: return "no_space";
    case errc::invalid_argument: return "invalid_argument";
    case errc::read_only: return "read_only";
    case errc::busy: return "busy";
    case errc::timeout: return "timeout";
    case errc::unavailable: return "unavailable";
    case errc::unauthenticated: return "unauthenticated";
    case errc::forbidden: return "forbidden";
  }
  return "unknown";
}

std::string status::describe() const {
  std::string out = to_string(code_);
  if (!message_.empty())
    out.append(": ").append(message_);
  return out;
}

} // namespace backline
