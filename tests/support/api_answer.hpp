#pragma once
// An HTTP answer of the API as tests read it: the status and the JSON body
// (null when the body is not JSON), with the fields tests ask about.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

namespace backline::testing {

/// The body as JSON; null when it is not JSON.
inline boost::json::value parse_or_null(const std::string& body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return ec ? boost::json::value{} : v;
}

/// The API error's code in a body ({"error":{"code",…}}); "" when there is none.
inline std::string error_code_of(const std::string& body) {
  auto v = parse_or_null(body);
  if (!v.is_object() || !v.as_object().contains("error") || !v.at("error").is_object())
    return {};
  auto& e = v.at("error").as_object();
  return e.contains("code") && e.at("code").is_string() ? std::string(e.at("code").as_string()) : std::string{};
}

struct answer {
  int status = 0;
  boost::json::value body;
  /// A string field of the body; "" when absent or not a string.
  std::string get(std::string_view key) const {
    if (!body.is_object() || !body.as_object().contains(key) || !body.as_object().at(key).is_string())
      return {};
    return std::string(body.as_object().at(key).as_string());
  }
  std::string error_code() const { return error_field("code"); }
  std::string error_message() const { return error_field("message"); }

private:
  std::string error_field(const char* name) const {
    if (!body.is_object() || !body.as_object().contains("error") || !body.at("error").is_object())
      return {};
    auto& e = body.at("error").as_object();
    return e.contains(name) && e.at(name).is_string() ? std::string(e.at(name).as_string()) : std::string{};
  }
};

inline answer answer_of(const httplib::Result& r) {
  REQUIRE(r);
  return answer{r->status, parse_or_null(r->body)};
}

} // namespace backline::testing
