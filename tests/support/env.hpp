#pragma once
// A stand-in for getenv over a fixed set of variables, for option parsing
// tests; and the numbers that make a test's load longer (e.g. the crash rounds).

#include <cstdlib>
#include <map>
#include <string>

namespace backline::testing {

inline auto env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto i = vars.find(name);
    return i == vars.end() ? nullptr : i->second.c_str();
  };
}

/// The environment variable `name` as an integer; `fallback` when unset.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

} // namespace backline::testing
