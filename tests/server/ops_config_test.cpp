// The operations options of `backline serve`: --max-in-flight and --log-requests.

#include "backline/config.hpp"

#include <catch2/catch.hpp>

#include "support/env.hpp"

using namespace backline;

using backline::testing::env_of;

TEST_CASE("operations options: request logs on and 2048 requests in flight by default") {
  auto cfg = parse_serve_options({}, env_of({}));
  REQUIRE(cfg);
  CHECK(cfg->log_requests);
  CHECK(cfg->max_in_flight == 2048);
  CHECK(cfg->request_log == nullptr);  // stdout
}

TEST_CASE("operations options: from the environment and from flags") {
  auto env = env_of({{"BACKLINE_MAX_IN_FLIGHT", "64"}, {"BACKLINE_LOG_REQUESTS", "off"}});
  auto from_env = parse_serve_options({}, env);
  REQUIRE(from_env);
  CHECK(from_env->max_in_flight == 64);
  CHECK_FALSE(from_env->log_requests);
  auto from_flags = parse_serve_options({"--max-in-flight", "5", "--log-requests=on"}, env);
  REQUIRE(from_flags);
  CHECK(from_flags->max_in_flight == 5);
  CHECK(from_flags->log_requests);
  auto zero = parse_serve_options({}, env_of({{"BACKLINE_LOG_REQUESTS", "0"}}));
  REQUIRE(zero);
  CHECK_FALSE(zero->log_requests);
}

TEST_CASE("operations options: bad values name the option") {
  auto env = env_of({});
  auto limit = parse_serve_options({"--max-in-flight", "0"}, env);
  REQUIRE_FALSE(limit);
  CHECK_THAT(limit.error().message(), Catch::Contains("--max-in-flight"));
  auto logs = parse_serve_options({"--log-requests", "maybe"}, env);
  REQUIRE_FALSE(logs);
  CHECK_THAT(logs.error().message(), Catch::Contains("--log-requests"));
  auto from_env = parse_serve_options({}, env_of({{"BACKLINE_LOG_REQUESTS", "loud"}}));
  REQUIRE_FALSE(from_env);
  CHECK_THAT(from_env.error().message(), Catch::Contains("BACKLINE_LOG_REQUESTS"));
}

TEST_CASE("operations options: --help lists them with their defaults") {
  auto help = serve_help();
  CHECK_THAT(help, Catch::Contains("--max-in-flight N"));
  CHECK_THAT(help, Catch::Contains("env BACKLINE_MAX_IN_FLIGHT, default 2048"));
  CHECK_THAT(help, Catch::Contains("--log-requests on|off"));
  CHECK_THAT(help, Catch::Contains("env BACKLINE_LOG_REQUESTS, default on"));
}
