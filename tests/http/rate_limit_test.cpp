// Per-caller request limits: the token-bucket rule alone, the bounded map of
// buckets, and end to end: one runaway token gets 429 with Retry-After while
// another token is served, a refused write changes nothing, and the runaway
// is served again once its bucket has refilled; and a client rotating
// unknown tokens is limited by its address's failed authentications.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <thread>

#include "backline/server.hpp"
#include "http/rate_limit.hpp"
#include "support/api_answer.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using namespace std::chrono_literals;
using backline::testing::error_code_of;
using backline::testing::temp_dir;
using steady = std::chrono::steady_clock;

TEST_CASE("rate rule: a full bucket allows its burst, then refuses with the whole seconds until a token") {
  http::rate_limit limit{1.0, 3.0};  // 1 a second, 3 at once
  auto t0 = steady::time_point{} + 1000s;
  auto b = http::full_bucket(limit, t0);
  for (int i = 0; i < 3; ++i) {
    auto r = http::take_token(b, limit, t0);
    CHECK(r.allowed);
    b = r.bucket;
  }
  auto refused = http::take_token(b, limit, t0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 1s);
  // Half a token after 500 ms: still refused, Retry-After rounded up to 1.
  auto half = http::take_token(refused.bucket, limit, t0 + 500ms);
  CHECK_FALSE(half.allowed);
  CHECK(half.retry_after == 1s);
  CHECK(half.bucket.tokens == Approx(0.5));
  // A whole token after 1 s: allowed, and only one.
  auto one = http::take_token(half.bucket, limit, t0 + 1000ms);
  CHECK(one.allowed);
  CHECK_FALSE(http::take_token(one.bucket, limit, t0 + 1000ms).allowed);
  // Refilling stops at the burst.
  auto later = http::take_token(one.bucket, limit, t0 + 1h);
  CHECK(later.allowed);
  CHECK(later.bucket.tokens == Approx(2.0));
  CHECK(http::bucket_is_full(one.bucket, limit, t0 + 1h));
  CHECK_FALSE(http::bucket_is_full(one.bucket, limit, t0 + 1000ms));
}

TEST_CASE("rate rule: a slow rate asks for a longer wait and a refusal takes nothing") {
  http::rate_limit slow{0.25, 1.0};  // one every 4 s
  auto t0 = steady::time_point{} + 1000s;
  auto first = http::take_token(http::full_bucket(slow, t0), slow, t0);
  REQUIRE(first.allowed);
  auto refused = http::take_token(first.bucket, slow, t0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 4s);
  auto again = http::take_token(refused.bucket, slow, t0 + 1s);
  CHECK_FALSE(again.allowed);
  CHECK(again.retry_after == 3s);
  CHECK(again.bucket.tokens == Approx(0.25));  // refusals took nothing
  CHECK(http::take_token(again.bucket, slow, t0 + 4s).allowed);
  // Off: everything is allowed.
  http::rate_limit off{0, 0};
  CHECK_FALSE(off.on());
  CHECK(http::take_token(http::token_bucket{}, off, t0).allowed);
}

TEST_CASE("rate limiter: keys are digests of token or address and the map stays bounded") {
  http::rate_limiter limiter(http::rate_limit{1.0, 2.0}, 32);
  auto a = limiter.key_of("token-a", "10.0.0.1");
  CHECK(a == limiter.key_of("token-a", "10.0.0.2"));  // the token decides, not the address
  CHECK(a != limiter.key_of("token-b", "10.0.0.1"));
  CHECK(limiter.key_of("", "10.0.0.1") == limiter.key_of("", "10.0.0.1"));
  CHECK(limiter.key_of("", "10.0.0.1") != limiter.key_of("", "10.0.0.2"));
  CHECK(limiter.key_of("10.0.0.1", "x") != limiter.key_of("", "10.0.0.1"));  // a token is never an address
  auto t0 = steady::time_point{} + 1000s;
  CHECK(limiter.take(a, t0).allowed);
  CHECK(limiter.take(a, t0).allowed);
  CHECK_FALSE(limiter.take(a, t0).allowed);
  for (int i = 0; i < 1000; ++i)
    limiter.take(limiter.key_of("token-" + std::to_string(i), ""), t0 + std::chrono::milliseconds(i));
  CHECK(limiter.keys() <= 32);
  CHECK(http::bearer_token_of("Bearer abc") == "abc");
  CHECK(http::bearer_token_of("bearer  abc") == "abc");
  CHECK(http::bearer_token_of("Basic abc") == "");
  CHECK(http::bearer_token_of("") == "");
}

TEST_CASE("rate limiter: emptiness is seen without taking, and authenticated tokens are remembered within bounds") {
  http::rate_limiter limiter(http::rate_limit{1.0, 2.0}, 32);
  auto t0 = steady::time_point{} + 1000s;
  auto k = limiter.key_of("", "10.0.0.9");
  CHECK_FALSE(limiter.empty(k, t0));  // no bucket yet: full
  limiter.take(k, t0);
  CHECK_FALSE(limiter.empty(k, t0));
  limiter.take(k, t0);
  CHECK(limiter.empty(k, t0));
  CHECK(limiter.empty(k, t0));        // looking takes nothing
  CHECK_FALSE(limiter.empty(k, t0 + 1s));
  CHECK_FALSE(limiter.authenticated_before(7));
  limiter.note_authenticated(7);
  CHECK(limiter.authenticated_before(7));
  for (uint64_t i = 100; i < 2000; ++i)
    limiter.note_authenticated(i);
  CHECK(limiter.authenticated_before(1999));
  auto failures = http::failed_authentication_limit(http::rate_limit{200, 400});
  CHECK(failures.per_second == 50);
  CHECK(failures.burst == 100);
  CHECK_FALSE(http::failed_authentication_limit(http::rate_limit{0, 0}).on());
}

namespace {

httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// A server on a loopback port with these limits (and its request log off), and a client of it.
struct limited_server {
  temp_dir dir;
  server_config cfg;
  std::unique_ptr<server> srv;
  std::unique_ptr<httplib::Client> cli;

  limited_server(uint32_t per_second, uint32_t burst) {
    cfg.listen_port = 0;
    cfg.data_dir = dir.path();
    cfg.http_threads = 8;
    cfg.admin_token = "admin-token-for-rate-limit-tests";
    cfg.log_requests = false;
    cfg.rate_limit = per_second;
    cfg.rate_burst = burst;
    std::ostringstream progress;
    auto started = server::start(cfg, progress);
    REQUIRE(started);
    srv = std::move(started.value());
    cli = std::make_unique<httplib::Client>("127.0.0.1", srv->port());
    cli->set_read_timeout(10, 0);
  }
};

} // namespace

TEST_CASE("rate limits: a runaway token gets 429 with Retry-After, another token is served, a refused write changes nothing") {
  limited_server s(1, 12);  // a token a second, after 12 at once
  auto& cfg = s.cfg;
  auto& srv = *s.srv;
  auto& cli = *s.cli;

  auto make_user = [&](const std::string& id, const std::string& role) {
    auto r = cli.Post("/api/v1/users", bearer(cfg.admin_token),
                      json::serialize(json::object{{"id", id}, {"name", id}, {"role", role}}), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    return std::string(backline::testing::parse_or_null(r->body).as_object().at("token").as_string());
  };
  const std::string runaway = make_user("runaway-bot", "bot");
  const std::string calm = make_user("calm-agent", "agent");

  auto chats_of_runaway = [&] {
    // Read as the admin (its own bucket): every open chat.
    auto r = cli.Get("/api/v1/chats?view=active", bearer(cfg.admin_token));
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return backline::testing::parse_or_null(r->body).as_object().at("chats").as_array().size();
  };

  // The runaway hammers; the calm one's requests are interleaved.
  int runaway_ok = 0, runaway_429 = 0, calm_ok = 0, calm_other = 0;
  std::string retry_after;
  for (int i = 0; i < 40; ++i) {
    auto r = cli.Get("/api/v1/me", bearer(runaway));
    REQUIRE(r);
    if (r->status == 200) {
      ++runaway_ok;
    } else {
      CHECK(r->status == 429);
      CHECK(error_code_of(r->body) == "rate_limited");
      retry_after = r->get_header_value("Retry-After");
      CHECK(std::stoi(retry_after) >= 1);
      ++runaway_429;
    }
    if (i % 4 == 0) {
      auto c = cli.Get("/api/v1/me", bearer(calm));
      REQUIRE(c);
      (c->status == 200 ? calm_ok : calm_other)++;
    }
  }
  CHECK(runaway_429 > 20);
  CHECK(runaway_ok >= 12);
  CHECK(calm_ok == 10);
  CHECK(calm_other == 0);

  // A refused write changes nothing.
  const auto before = chats_of_runaway();
  auto refused = cli.Post("/api/v1/chats", bearer(runaway),
                          R"({"customer":{"id":"cust-1","name":"Customer One"},"text":"hello"})", "application/json");
  REQUIRE(refused);
  CHECK(refused->status == 429);
  CHECK(error_code_of(refused->body) == "rate_limited");
  CHECK(chats_of_runaway() == before);

  // After Retry-After, the runaway is served again (and its write goes through).
  std::this_thread::sleep_for(std::chrono::seconds(std::stoi(refused->get_header_value("Retry-After"))) + 100ms);
  auto again = cli.Post("/api/v1/chats", bearer(runaway),
                        R"({"customer":{"id":"cust-1","name":"Customer One"},"text":"hello"})", "application/json");
  REQUIRE(again);
  CHECK(again->status == 201);
  CHECK(chats_of_runaway() == before + 1);

  auto metrics = cli.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("\nbackline_http_rate_limited_total " + std::to_string(runaway_429 + 1) + "\n"));
  srv.stop();
}

TEST_CASE("rate limits: a client rotating unknown tokens is limited by its address, a known token from it is still served") {
  limited_server s(4, 16);  // so failed authentications: 1 a second, 4 at once
  auto& cfg = s.cfg;
  auto& srv = *s.srv;
  auto& cli = *s.cli;
  auto made = cli.Post("/api/v1/users", bearer(cfg.admin_token),
                       R"({"id":"agent-n","name":"Agent N","role":"agent"})", "application/json");
  REQUIRE(made);
  REQUIRE(made->status == 201);
  const std::string known = std::string(backline::testing::parse_or_null(made->body).as_object().at("token").as_string());
  auto me = cli.Get("/api/v1/me", bearer(known));  // it has authenticated once
  REQUIRE(me);
  REQUIRE(me->status == 200);
  // A user whose token has not been used since start (behind a proxy, every
  // user shares the attacker's address).
  auto fresh_user = cli.Post("/api/v1/users", bearer(cfg.admin_token),
                             R"({"id":"agent-f","name":"Agent F","role":"agent"})", "application/json");
  REQUIRE(fresh_user);
  REQUIRE(fresh_user->status == 201);
  const std::string fresh =
    std::string(backline::testing::parse_or_null(fresh_user->body).as_object().at("token").as_string());

  int unauthenticated = 0, limited = 0;
  const auto flood_started = std::chrono::steady_clock::now();
  for (int i = 0; i < 30; ++i) {
    auto r = cli.Get("/api/v1/me", bearer("random-token-" + std::to_string(i)));
    REQUIRE(r);
    if (r->status == 401) {
      ++unauthenticated;
    } else {
      CHECK(r->status == 429);
      CHECK(error_code_of(r->body) == "rate_limited");
      CHECK(r->get_header_value("Retry-After") == "1");
      ++limited;
    }
  }
  // The burst, and what refilled (1 a second) while the loop ran, however long it took.
  const auto flood_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - flood_started).count();
  CHECK(unauthenticated >= 4);
  CHECK(unauthenticated <= 4 + static_cast<int>(flood_s) + 1);
  CHECK(limited == 30 - unauthenticated);

  // Valid tokens, from the same address, are served meanwhile: one that has
  // authenticated before, and one never used since start.
  for (const auto& token : {known, fresh}) {
    auto r = cli.Get("/api/v1/me", bearer(token));
    REQUIRE(r);
    CHECK(r->status == 200);
  }

  // Requests without a token are not affected (they have their own bucket).
  auto open = cli.Get("/healthz");
  REQUIRE(open);
  CHECK(open->status == 200);

  // Once a failure's allowance has refilled, an unknown token is told it is unknown again.
  std::this_thread::sleep_for(1100ms);
  auto later = cli.Get("/api/v1/me", bearer("random-token-later"));
  REQUIRE(later);
  CHECK(later->status == 401);
  srv.stop();
}
