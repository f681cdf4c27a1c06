#include "http/request_parsing.hpp"

#include "backline/file_store.hpp"

#include <cmath>

namespace json = boost::json;

namespace backline::http {

namespace {

/// Boost.JSON reads a number too large for a double (1e999) as infinity and
/// writes it back as "Infinity", which is not JSON: the actors, parsing the
/// body again, would see nothing. Such numbers are refused.
bool all_numbers_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      for (const auto& x : v.get_array())
        if (!all_numbers_finite(x))
          return false;
      return true;
    case json::kind::object:
      for (const auto& kv : v.get_object())
        if (!all_numbers_finite(kv.value()))
          return false;
      return true;
    default:
      return true;
  }
}

/// How many values (objects, arrays, strings, numbers…) a JSON value holds, itself included.
size_t values_in(const json::value& v) {
  size_t n = 1;
  if (v.is_array())
    for (const auto& x : v.get_array())
      n += values_in(x);
  else if (v.is_object())
    for (const auto& kv : v.get_object())
      n += values_in(kv.value());
  return n;
}

} // namespace

parsed<json::object> parse_json_object(std::string_view body) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = max_json_depth;
  auto v = json::parse(body, ec, {}, opts);
  if (ec || !v.is_object())
    return error_reply(400, "invalid_json",
                       ec ? "the body is not valid JSON (" + ec.message() + ")" : "the body must be a JSON object");
  if (!all_numbers_finite(v))
    return error_reply(400, "invalid_json", "the body holds a number too large for a double");
  if (values_in(v) > max_json_values)
    return error_reply(400, "too_many_fields",
                       "the body holds more than " + std::to_string(max_json_values) + " JSON values");
  return std::move(v.as_object());
}

std::optional<api_reply> missing_string(const json::object& o, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto* v = o.if_contains(n);
    if (v == nullptr || !v->is_string() || v->as_string().empty())
      return error_reply(400, "invalid_field",
                         std::string(n) + (v == nullptr ? ": missing" : ": must be a non-empty string"));
  }
  return std::nullopt;
}

std::vector<const char*> required_fields(verb what) {
  switch (what) {
    case verb::chat_assign:
    case verb::chat_transfer:
      return {"agent_id"};
    case verb::chat_message_post:
    case verb::thread_post:
      return {"text"};
    case verb::thread_create:
      return {"channel_id", "text"};
    default:
      return {};
  }
}

parsed<json::object> checked_command_body(verb what, role who, json::object body, size_t file_count,
                                          const agent_lookup& is_agent) {
  // Files come as multipart parts, stored before the command names them: a
  // body naming files itself could point a message at any stored file.
  if ((what == verb::thread_post || what == verb::thread_create) && body.contains("files"))
    return error_reply(400, "invalid_field", "files: send files as multipart/form-data parts named files");
  bool has_files = file_count > 0;
  for (const char* n : required_fields(what)) {
    // A thread message may be files alone.
    if (what == verb::thread_post && has_files && std::string_view(n) == "text" && !body.contains("text"))
      continue;
    if (what == verb::thread_post && has_files && std::string_view(n) == "text" && body.at("text").is_string() &&
        body.at("text").as_string().empty())
      continue;
    if (auto refusal = missing_string(body, {n}))
      return *refusal;
  }
  if (what == verb::chat_assign || what == verb::chat_transfer) {
    if (!is_agent || !is_agent(body.at("agent_id").as_string()))
      return error_reply(400, "invalid_field", "agent_id: no such agent");
  }
  if (what == verb::chat_message_post && who == role::bot) {
    auto* from = body.if_contains("from");
    std::string_view f = from && from->is_string() ? std::string_view(from->as_string()) : std::string_view();
    if (f != "customer" && f != "bot")
      return error_reply(400, "invalid_field", "from: customer or bot");
  }
  return body;
}

parsed<std::string> user_create_body(std::string_view raw) {
  auto body = parse_json_object(raw);
  if (!body)
    return body.refusal();
  if (auto refusal = missing_string(*body, {"id", "name", "role"}))
    return *refusal;
  return json::serialize(*body);
}

parsed<std::string> chat_create_body(std::string_view raw) {
  auto body = parse_json_object(raw);
  if (!body)
    return body.refusal();
  auto* customer = body->if_contains("customer");
  if (customer == nullptr || !customer->is_object())
    return error_reply(400, "invalid_field", "customer: an object with id and name");
  if (auto refusal = missing_string(customer->as_object(), {"id", "name"}))
    return *refusal;
  auto* text = body->if_contains("text");
  if (text != nullptr && !text->is_string())
    return error_reply(400, "invalid_field", "text: must be a string");
  json::object flat{{"customer_id", customer->as_object().at("id")},
                    {"customer_name", customer->as_object().at("name")},
                    {"text", text != nullptr ? *text : json::value("")}};
  return json::serialize(flat);
}

parsed<notifications_query> notifications_query_of(const std::optional<std::string>& after,
                                                   const std::optional<std::string>& wait) {
  notifications_query q;
  double wait_s = 0;
  try {
    if (after && !after->empty())
      q.after = std::stoull(*after);
    if (wait)
      wait_s = std::stod(*wait);
  } catch (const std::exception&) {
    return error_reply(400, "invalid_field", "after: a cursor from an earlier answer; wait: seconds 0-30");
  }
  if (!(wait_s >= 0 && wait_s <= 30))
    return error_reply(400, "invalid_field", "wait: seconds from 0 to 30");
  q.wait_ms = static_cast<uint32_t>(wait_s * 1000);
  return q;
}

parsed<sandbox_reply_request> sandbox_reply_of(std::string_view raw) {
  auto body = parse_json_object(raw);
  if (!body)
    return body.refusal();
  if (auto refusal = missing_string(*body, {"channel_id", "thread_ts", "user_name", "text"}))
    return *refusal;
  auto text_of = [&](const char* n) { return std::string(body->at(n).as_string()); };
  return sandbox_reply_request{text_of("channel_id"), text_of("thread_ts"), text_of("user_name"), text_of("text")};
}

parsed<multipart_form> multipart_form_of(const httplib::MultipartFormDataMap& parts, size_t max_file_bytes) {
  if (parts.size() > max_form_parts)
    return error_reply(400, "too_many_fields",
                       "the form has more than " + std::to_string(max_form_parts) + " parts");
  if (parts.count("files") > max_files_per_message)
    return error_reply(400, "too_many_files",
                       "a message carries at most " + std::to_string(max_files_per_message) + " files");
  // A part whose Content-Disposition cpp-httplib could not read (a file
  // name holding a line break, say) comes without a name. Leaving it out
  // would let the sender believe a file went that did not.
  if (parts.count("") > 0)
    return error_reply(400, "invalid_field",
                       "a form part's Content-Disposition cannot be read (a line break in its file name?)");
  multipart_form form;
  for (const char* field : {"text", "channel_id"})
    if (auto p = parts.find(field); p != parts.end())
      form.fields[field] = p->second.content;
  auto files = parts.equal_range("files");
  for (auto p = files.first; p != files.second; ++p) {
    const auto& part = p->second;
    if (part.filename.empty())
      return error_reply(400, "invalid_field", "files: every file part needs a file name");
    if (part.content.size() > max_file_bytes)
      return error_reply(413, "file_too_large",
                         "file " + safe_file_name(part.filename) + " is larger than " +
                           std::to_string(max_file_bytes) + " bytes");
    form.files.push_back(&part);
  }
  return form;
}

const std::string* find_header(const httplib::Request& req, std::string_view name) {
  // Names are ASCII: bytes that differ must be the same letter in two cases.
  auto same = [name](const std::string& key) {
    if (key.size() != name.size())
      return false;
    for (size_t i = 0; i < key.size(); ++i) {
      const auto a = static_cast<unsigned char>(key[i]), b = static_cast<unsigned char>(name[i]);
      const auto lower = static_cast<unsigned char>(a | 0x20);
      if (a != b && (lower != (b | 0x20) || lower < 'a' || lower > 'z'))
        return false;
    }
    return true;
  };
  // The map is in case-insensitive order, equal names in arrival order: the
  // first one met is the one cpp-httplib would give.
  for (const auto& [key, value] : req.headers)
    if (same(key))
      return &value;
  return nullptr;
}

} // namespace backline::http
