#pragma once
// What every benchmark's command line needs: a flag's value, lists like
// "1,16,256", and where the backline binary is.

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bench {

/// Walks argv; value() takes the argument after the current flag, or throws
/// "<flag> needs a value".
class arguments {
public:
  arguments(int argc, char** argv) : argc_(argc), argv_(argv) {}
  /// The next flag, false when none is left.
  bool next(std::string& flag) {
    if (++i_ >= argc_)
      return false;
    flag = argv_[i_];
    return true;
  }
  std::string value() {
    if (i_ + 1 >= argc_)
      throw std::invalid_argument(std::string(argv_[i_]) + " needs a value");
    return argv_[++i_];
  }

private:
  int argc_;
  char** argv_;
  int i_ = 0;
};

/// "1,16,256" as numbers.
inline std::vector<size_t> parse_list(const std::string& text) {
  std::vector<size_t> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    out.push_back(static_cast<size_t>(std::stoul(item)));
  return out;
}

/// Connection levels: a list of numbers, none of them 0, at least one.
inline std::vector<size_t> parse_levels(const std::string& text) {
  auto levels = parse_list(text);
  for (auto v : levels)
    if (v == 0)
      throw std::invalid_argument("0 connections");
  if (levels.empty())
    throw std::invalid_argument("empty list");
  return levels;
}

/// ../backline beside the running benchmark (build/<type>/bench/x → build/<type>/backline).
inline std::filesystem::path default_backline_path() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec)
    return "backline";
  return (self.parent_path() / ".." / "backline").lexically_normal();
}

} // namespace bench
