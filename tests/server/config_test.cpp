#include "backline/config.hpp"

#include <catch2/catch.hpp>

#include "support/env.hpp"

using namespace backline;

using backline::testing::env_of;

TEST_CASE("serve runs on the embedded default with no options") {
  auto cfg = parse_serve_options({}, env_of({}));
  REQUIRE(cfg);
  CHECK(cfg->listen_host == "127.0.0.1");
  CHECK(cfg->listen_port == 8080);
  CHECK(cfg->data_dir == "./backline-data");
  CHECK(cfg->sync_writes);
}

TEST_CASE("flags override environment variables, which override defaults") {
  auto env = env_of({{"BACKLINE_LISTEN", "0.0.0.0:9000"}, {"BACKLINE_DATA", "/srv/env"},
                     {"BACKLINE_ADMIN_TOKEN", "secret"}, {"BACKLINE_HTTP_THREADS", "64"}});
  auto from_env = parse_serve_options({}, env);
  REQUIRE(from_env);
  CHECK(from_env->listen_host == "0.0.0.0");
  CHECK(from_env->listen_port == 9000);
  CHECK(from_env->data_dir == "/srv/env");
  CHECK(from_env->admin_token == "secret");
  CHECK(from_env->http_threads == 64);
  auto from_flags = parse_serve_options({"--listen", "127.0.0.1:0", "--data=/srv/flag", "--no-sync"}, env);
  REQUIRE(from_flags);
  CHECK(from_flags->listen_port == 0);
  CHECK(from_flags->data_dir == "/srv/flag");
  CHECK_FALSE(from_flags->sync_writes);
  CHECK(from_flags->http_threads == 64);
}

TEST_CASE("bad options are clear errors naming the option") {
  auto env = env_of({});
  auto unknown = parse_serve_options({"--lisen", "x"}, env);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == errc::invalid_argument);
  CHECK_THAT(unknown.error().message(), Catch::Contains("--lisen"));
  auto port = parse_serve_options({"--listen", "127.0.0.1:99999"}, env);
  REQUIRE_FALSE(port);
  CHECK_THAT(port.error().message(), Catch::Contains("--listen"));
  auto missing = parse_serve_options({"--data"}, env);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message(), Catch::Contains("--data"));
  auto threads = parse_serve_options({}, env_of({{"BACKLINE_HTTP_THREADS", "lots"}}));
  REQUIRE_FALSE(threads);
  CHECK_THAT(threads.error().message(), Catch::Contains("BACKLINE_HTTP_THREADS"));
}

TEST_CASE("host:port parsing") {
  CHECK(parse_host_port("[::1]:80").value() == std::make_pair(std::string("::1"), 80));
  CHECK(parse_host_port("localhost:0").value().second == 0);
  CHECK_FALSE(parse_host_port("8080"));
  CHECK_FALSE(parse_host_port(":8080"));
  CHECK_FALSE(parse_host_port("h:-1"));
}

TEST_CASE("--help states every option with its default") {
  auto help = serve_help();
  for (const char* needle : {"--listen", "BACKLINE_LISTEN", "127.0.0.1:8080", "--data", "BACKLINE_DATA",
                             "./backline-data", "BACKLINE_ADMIN_TOKEN", "--http-threads"})
    CHECK_THAT(help, Catch::Contains(needle));
}
