// What the /api/v1 handlers read from requests (http/request_parsing), alone.
// Inputs the fuzzers in fuzz/ found wrong are kept here as regressions.

#include <catch2/catch.hpp>

#include "http/request_parsing.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::http;

namespace {

json::object object_of(std::string_view text) { return json::parse(text).as_object(); }

std::string code_of(const api_reply& r) {
  return std::string(json::parse(r.body).at("error").at("code").as_string());
}

const agent_lookup agents = [](std::string_view id) { return id == "alice" || id == "bob"; };

} // namespace

TEST_CASE("request bodies: JSON objects only, nested at most 32 deep") {
  CHECK(parse_json_object(R"({"text":"hi"})"));
  for (std::string_view bad : {"", "{", "[1]", "\"x\"", "{\"a\":\"\xff\"}", "{} {}"}) {
    auto r = parse_json_object(bad);
    REQUIRE_FALSE(r);
    CHECK(r.refusal().status == 400);
    CHECK(code_of(r.refusal()) == "invalid_json");
  }
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(parse_json_object("{\"a\":" + nested(31) + "}"));
  CHECK_FALSE(parse_json_object("{\"a\":" + nested(32) + "}"));
}

TEST_CASE("request bodies: at most 10000 JSON values") {
  auto body_of = [](size_t values) {  // the object, then values - 1 keys
    std::string b = "{";
    for (size_t i = 1; i < values; ++i)
      b += (i > 1 ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
    return b + "}";
  };
  CHECK(parse_json_object(body_of(max_json_values)));
  auto r = parse_json_object(body_of(max_json_values + 1));
  REQUIRE_FALSE(r);
  CHECK(r.refusal().status == 400);
  CHECK(code_of(r.refusal()) == "too_many_fields");
  std::string array = "{\"a\":[0";  // the object, the array and 10000 numbers
  for (int i = 1; i < 10000; ++i)
    array += ",0";
  CHECK_FALSE(parse_json_object(array + "]}"));
}

// Found by fuzz/api_request: 1e999 parsed as infinity, was written on as
// "Infinity" (not JSON), and the actor that parsed the body again saw none.
TEST_CASE("request bodies: numbers past a double's range are refused") {
  for (std::string_view bad : {R"({"text":"x","n":1e999})", R"({"a":[{"b":-5e906}]})"}) {
    auto r = parse_json_object(bad);
    REQUIRE_FALSE(r);
    CHECK(r.refusal().status == 400);
    CHECK(code_of(r.refusal()) == "invalid_json");
  }
  auto tiny = parse_json_object(R"({"n":1e-999,"m":1.5e308})");
  REQUIRE(tiny);
  CHECK(json::parse(json::serialize(*tiny)).is_object());
}

TEST_CASE("command bodies: each command's fields, by name") {
  auto ok = checked_command_body(verb::thread_create, role::agent, object_of(R"({"channel_id":"C1","text":"q"})"), 0,
                                 agents);
  CHECK(ok);
  auto missing = checked_command_body(verb::thread_create, role::agent, object_of(R"({"text":"q"})"), 0, agents);
  REQUIRE_FALSE(missing);
  CHECK(missing.refusal().status == 400);
  CHECK(missing.refusal().body.find("channel_id: missing") != std::string::npos);
  auto typed = checked_command_body(verb::thread_post, role::agent, object_of(R"({"text":7})"), 0, agents);
  REQUIRE_FALSE(typed);
  CHECK(typed.refusal().body.find("text: must be a non-empty string") != std::string::npos);
  // A thread message may be files alone, but not nothing.
  CHECK(checked_command_body(verb::thread_post, role::agent, object_of("{}"), 1, agents));
  CHECK(checked_command_body(verb::thread_post, role::agent, object_of(R"({"text":""})"), 2, agents));
  CHECK_FALSE(checked_command_body(verb::thread_post, role::agent, object_of(R"({"text":""})"), 0, agents));
  // Assign and transfer name an agent; the bot says who speaks.
  CHECK(checked_command_body(verb::chat_assign, role::bot, object_of(R"({"agent_id":"bob"})"), 0, agents));
  CHECK_FALSE(checked_command_body(verb::chat_transfer, role::agent, object_of(R"({"agent_id":"eve"})"), 0, agents));
  CHECK_FALSE(checked_command_body(verb::chat_assign, role::bot, object_of(R"({"agent_id":"bob"})"), 0, {}));
  CHECK(checked_command_body(verb::chat_message_post, role::bot, object_of(R"({"from":"bot","text":"x"})"), 0, agents));
  CHECK_FALSE(checked_command_body(verb::chat_message_post, role::bot, object_of(R"({"from":1,"text":"x"})"), 0, agents));
  CHECK(checked_command_body(verb::chat_message_post, role::agent, object_of(R"({"text":"x"})"), 0, agents));
}

// Found by fuzz/api_request (both inputs are seeds in fuzz/corpus/api_request).
TEST_CASE("command bodies: a body cannot name files itself, whatever their type") {
  for (auto body : {R"({"text":"x","files":[{"id":"f-1","name":"a","mimetype":"b","size":1}]})",
                    R"({"files":[{"id":"f-1"}]})", R"({"text":"x","files":5})", R"({"text":"x","files":[]})"}) {
    INFO(body);
    for (verb what : {verb::thread_post, verb::thread_create}) {
      auto o = object_of(body);
      o["channel_id"] = "C1";
      auto r = checked_command_body(what, role::agent, o, 0, agents);
      REQUIRE_FALSE(r);
      CHECK(r.refusal().status == 400);
      CHECK(code_of(r.refusal()) == "invalid_field");
    }
  }
}

TEST_CASE("users and chats: the fields they need, the body the actors take") {
  CHECK(user_create_body(R"({"id":"a","name":"A","role":"agent"})"));
  CHECK_FALSE(user_create_body(R"({"id":"a","name":"A"})"));
  auto chat = chat_create_body(R"({"customer":{"id":"c1","name":"Dana"},"text":"hi","extra":[1]})");
  REQUIRE(chat);
  CHECK(json::parse(*chat) == json::parse(R"({"customer_id":"c1","customer_name":"Dana","text":"hi"})"));
  CHECK(json::parse(*chat_create_body(R"({"customer":{"id":"c1","name":"Dana"}})")).at("text") == "");
  CHECK_FALSE(chat_create_body(R"({"customer":"Dana"})"));
  CHECK_FALSE(chat_create_body(R"({"customer":{"id":"c1","name":"Dana"},"text":5})"));
}

TEST_CASE("notifications: after is a cursor, wait is 0 to 30 seconds") {
  auto q = notifications_query_of(std::string("12"), std::string("2.5"));
  REQUIRE(q);
  CHECK(q->after == 12);
  CHECK(q->wait_ms == 2500);
  CHECK(notifications_query_of(std::nullopt, std::nullopt));
  CHECK(notifications_query_of(std::string(""), std::nullopt));
  for (auto wait : {"31", "-1", "nan", "x", ""})
    CHECK_FALSE(notifications_query_of(std::nullopt, std::string(wait)));
  CHECK_FALSE(notifications_query_of(std::string("cursor"), std::nullopt));
}

TEST_CASE("multipart forms: text fields and files, each file within the limit") {
  httplib::MultipartFormDataMap parts;
  parts.emplace("text", httplib::MultipartFormData{"text", "hello", "", ""});
  parts.emplace("files", httplib::MultipartFormData{"files", "1234", "a.txt", "text/plain"});
  parts.emplace("files", httplib::MultipartFormData{"files", "12345678", "../b.bin", ""});
  parts.emplace("other", httplib::MultipartFormData{"other", "ignored", "", ""});
  auto form = multipart_form_of(parts, 8);
  REQUIRE(form);
  CHECK(form->fields == object_of(R"({"text":"hello"})"));
  CHECK(form->files.size() == 2);
  auto big = multipart_form_of(parts, 7);
  REQUIRE_FALSE(big);
  CHECK(big.refusal().status == 413);
  CHECK(big.refusal().body.find("file b.bin is larger than 7 bytes") != std::string::npos);
}

TEST_CASE("multipart forms: at most 10 files and 32 parts") {
  httplib::MultipartFormDataMap parts;
  parts.emplace("text", httplib::MultipartFormData{"text", "hello", "", ""});
  for (int i = 0; i < 10; ++i)
    parts.emplace("files", httplib::MultipartFormData{"files", "x", "f" + std::to_string(i) + ".txt", "text/plain"});
  REQUIRE(multipart_form_of(parts, 8));
  parts.emplace("files", httplib::MultipartFormData{"files", "x", "f10.txt", "text/plain"});
  auto eleven = multipart_form_of(parts, 8);
  REQUIRE_FALSE(eleven);
  CHECK(eleven.refusal().status == 400);
  CHECK(code_of(eleven.refusal()) == "too_many_files");
  httplib::MultipartFormDataMap fields;
  for (int i = 0; i < 33; ++i)
    fields.emplace("x" + std::to_string(i), httplib::MultipartFormData{"x", "y", "", ""});
  auto many = multipart_form_of(fields, 8);
  REQUIRE_FALSE(many);
  CHECK(code_of(many.refusal()) == "too_many_fields");
}

TEST_CASE("request headers: found by name in any case, the first of several, the same as cpp-httplib's lookup") {
  httplib::Request req;
  req.headers.emplace("Content-Length", "12");
  req.headers.emplace("content-type", "multipart/form-data; boundary=x");
  req.headers.emplace("X-Tag", "first");
  req.headers.emplace("x-tag", "second");
  req.headers.emplace("X[A", "bracket");
  for (const char* name : {"Content-Length", "content-type", "CONTENT-TYPE", "x-TAG", "X[A", "X{A", "Content-Lengt",
                           "Content-Lengthy", "Authorization", ""})
    CHECK(header_value(req, name) == req.get_header_value(name));
  CHECK(header_value(req, "X-TAG") == "first");
  CHECK(header_value(req, "x{a").empty());  // '[' and '{' differ by 0x20 but are not letters
  CHECK(find_header(req, "Idempotency-Key") == nullptr);
  REQUIRE(find_header(req, "CONTENT-length") != nullptr);
  CHECK(*find_header(req, "CONTENT-length") == "12");
  CHECK(is_multipart(req) == req.is_multipart_form_data());
  CHECK(is_multipart(req));
  req.headers.erase("content-type");
  req.headers.emplace("Content-Type", "application/json");
  CHECK_FALSE(is_multipart(req));
  CHECK(is_multipart(req) == req.is_multipart_form_data());
}
