#pragma once
// A stand-in for getenv over a fixed set of variables, for option parsing tests.

#include <map>
#include <string>

namespace backline::testing {

inline auto env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto i = vars.find(name);
    return i == vars.end() ? nullptr : i->second.c_str();
  };
}

} // namespace backline::testing
