#pragma once
// Errors as values: every fallible call in backline returns a status or a
// result<T>, never throws across a module boundary and never fails silently.

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace backline {

enum class errc : int {
  ok = 0,
  conflict,          // expected version did not match the stream's head
  not_found,         // no such stream, event, key or id
  corrupt,           // a stored record could not be decoded or fails its checks
  io_error,          // the storage layer failed (other than a full disk)
  no_space,          // the disk is full; nothing was written
  invalid_argument,  // the caller asked for something malformed
  read_only,         // the store was opened read-only
  busy,              // overloaded: try again later
  timeout,           // a deadline passed before the answer came
  unavailable,       // a dependency (Slack, the journal) cannot be reached
  unauthenticated,   // no credentials, or unknown ones
  forbidden,         // the caller's role or ownership does not allow it
};

/// The snake_case name of an error code, as it appears in logs and JSON.
const char* to_string(errc code) noexcept;

class [[nodiscard]] status {
public:
  status() = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  /// "code: message", for logs and test failures.
  std::string describe() const;

private:
  errc code_ = errc::ok;
  std::string message_;
};

/// A value or the status that explains why there is none.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : value_(std::move(value)) {}
  result(status error) : error_(std::move(error)) {}
  result(errc code, std::string message) : error_(code, std::move(message)) {}

  bool is_ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const status& error() const noexcept { return error_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

private:
  std::optional<T> value_;
  status error_;
};

} // namespace backline
