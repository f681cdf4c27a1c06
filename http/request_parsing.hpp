#pragma once
// What the /api/v1 handlers read from a request, as pure functions: the JSON
// body, the fields each command needs, multipart forms and query parameters.
// Each gives the value, or the error reply that answers the request. None
// throws on any input (short of std::bad_alloc); fuzz/ holds them to that.

#include <boost/json.hpp>
#include <httplib.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backline/domain.hpp"
#include "backline/messages.hpp"

namespace backline::http {

/// The first value of a request header, by its name in any case; nullptr
/// when absent. (cpp-httplib's own lookup walks its case-insensitive map
/// calling tolower per character, and "Content-Type" shares 8 of them with
/// "Content-Length": 3% of the server's CPU at 64 connections. A scan of the
/// few headers a request has is cheaper.)
const std::string* find_header(const httplib::Request& req, std::string_view name);
/// The same, "" when absent (as cpp-httplib's get_header_value).
inline std::string_view header_value(const httplib::Request& req, std::string_view name) {
  const auto* v = find_header(req, name);
  return v != nullptr ? std::string_view(*v) : std::string_view();
}
/// A multipart/form-data body (as cpp-httplib's is_multipart_form_data).
inline bool is_multipart(const httplib::Request& req) {
  return header_value(req, "Content-Type").rfind("multipart/form-data", 0) == 0;
}

/// A value read from a request, or the error reply that refuses the request.
template <class T>
class parsed {
public:
  parsed(T value) : value_(std::move(value)) {}
  parsed(api_reply refusal) : refusal_(std::move(refusal)) {}

  explicit operator bool() const noexcept { return value_.has_value(); }
  T& operator*() & { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const api_reply& refusal() const noexcept { return refusal_; }

private:
  std::optional<T> value_;
  api_reply refusal_;
};

/// JSON nesting deeper than this is refused (400): Boost.JSON's default,
/// so what the front accepts the actors can parse again.
inline constexpr size_t max_json_depth = 32;

/// A body holding more JSON values than this (every key's value, array
/// element and the object itself) is refused (400 too_many_fields): no
/// request of the API needs a hundredth of it, and a body of a million tiny
/// values costs far more memory and time than its bytes suggest.
inline constexpr size_t max_json_values = 10000;

/// The request body as a JSON object; 400 invalid_json (or too_many_fields) otherwise.
parsed<boost::json::object> parse_json_object(std::string_view body);

/// A 400 invalid_field naming the first of `names` that is not a non-empty string; nothing when all are.
std::optional<api_reply> missing_string(const boost::json::object& o, std::initializer_list<const char*> names);

/// The fields a command's body must hold as non-empty strings.
std::vector<const char*> required_fields(verb what);

/// Does this user id name an agent? (for assign and transfer)
using agent_lookup = std::function<bool(std::string_view user_id)>;

/// Checks a command's body: JSON, or the text fields of a multipart form
/// that came with `file_count` files. Answers the body to send the actors
/// (without "files": the handler adds the stored files), or why not. A
/// body that names "files" itself is refused: files come only as parts.
parsed<boost::json::object> checked_command_body(verb what, role who, boost::json::object body, size_t file_count,
                                                 const agent_lookup& is_agent);

/// POST /api/v1/users: {"id","name","role",...}; the body the users actor takes.
parsed<std::string> user_create_body(std::string_view raw);

/// POST /api/v1/chats: {"customer":{"id","name"},"text"?}; the flat body the
/// directory takes: {"customer_id","customer_name","text"}.
parsed<std::string> chat_create_body(std::string_view raw);

/// GET /api/v1/notifications?after=&wait=: the cursor and the wait (≤ 30 s).
struct notifications_query {
  uint64_t after = 0;
  uint32_t wait_ms = 0;
};
parsed<notifications_query> notifications_query_of(const std::optional<std::string>& after,
                                                   const std::optional<std::string>& wait);

/// POST /api/v1/sandbox/slack/replies: {"channel_id","thread_ts","user_name","text"}.
struct sandbox_reply_request {
  std::string channel_id;
  std::string thread_ts;
  std::string user_name;
  std::string text;
};
parsed<sandbox_reply_request> sandbox_reply_of(std::string_view raw);

/// Slack shows at most 10 files on one message (files.completeUploadExternal
/// shares up to 10 at once): a message with more is refused (400 too_many_files).
inline constexpr size_t max_files_per_message = 10;
/// A form with more parts than this is refused (400 too_many_fields).
inline constexpr size_t max_form_parts = 32;

/// A multipart thread message or thread creation: the form fields `text`
/// and `channel_id` (the first of each), and every part named `files`, each
/// at most max_file_bytes (else 413 file_too_large); at most
/// max_files_per_message files and max_form_parts parts.
struct multipart_form {
  boost::json::object fields;
  std::vector<const httplib::MultipartFormData*> files;  // into the parts given
};
parsed<multipart_form> multipart_form_of(const httplib::MultipartFormDataMap& parts, size_t max_file_bytes);

} // namespace backline::http
