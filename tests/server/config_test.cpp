#include "backline/config.hpp"

#include <caf/all.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#ifdef BACKLINE_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#include "backline/caf_scheduler.hpp"

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

TEST_CASE("the Slack callers option: 128 by default, from --slack-callers or SLACK_CALLERS, at least 1") {
  auto defaults = parse_serve_options({}, env_of({}));
  REQUIRE(defaults);
  CHECK(defaults->slack_callers == 128);
  auto from_env = parse_serve_options({}, env_of({{"SLACK_CALLERS", "8"}}));
  REQUIRE(from_env);
  CHECK(from_env->slack_callers == 8);
  auto flag = parse_serve_options({"--slack-callers", "256"}, env_of({{"SLACK_CALLERS", "8"}}));
  REQUIRE(flag);
  CHECK(flag->slack_callers == 256);
  CHECK_FALSE(parse_serve_options({"--slack-callers", "0"}, env_of({})));
  CHECK_THAT(serve_help(), Catch::Contains("--slack-callers") && Catch::Contains("SLACK_CALLERS"));
}

TEST_CASE("the actor threads: one per core by default, from --actor-threads or BACKLINE_ACTOR_THREADS") {
  auto defaults = parse_serve_options({}, env_of({}));
  REQUIRE(defaults);
  CHECK(defaults->actor_threads == 0);
  const size_t cores = std::max<size_t>(1, std::thread::hardware_concurrency());
  CHECK(actor_threads_for(0) == cores);
  CHECK(actor_threads_for(3) == 3);
  auto from_env = parse_serve_options({}, env_of({{"BACKLINE_ACTOR_THREADS", "3"}}));
  REQUIRE(from_env);
  CHECK(from_env->actor_threads == 3);
  auto flag = parse_serve_options({"--actor-threads", "5"}, env_of({{"BACKLINE_ACTOR_THREADS", "3"}}));
  REQUIRE(flag);
  CHECK(flag->actor_threads == 5);
  auto too_many = parse_serve_options({"--actor-threads", "257"}, env_of({}));
  REQUIRE_FALSE(too_many);
  CHECK_THAT(too_many.error().message(), Catch::Contains("--actor-threads"));
  CHECK_FALSE(parse_serve_options({"--actor-threads", "two"}, env_of({})));
  CHECK_THAT(serve_help(), Catch::Contains("--actor-threads") && Catch::Contains("BACKLINE_ACTOR_THREADS")
                             && Catch::Contains("one per core: " + std::to_string(cores) + " here"));

  // The scheduler gets that many threads.
  for (size_t asked : {size_t{0}, size_t{3}}) {
    caf::actor_system_config cfg;
    choose_caf_scheduler(cfg, asked);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    CHECK(sys.scheduler().num_workers() == actor_threads_for(asked));
  }
}

TEST_CASE("the actor scheduler: work sharing by default, work stealing from --actor-scheduler or BACKLINE_ACTOR_SCHEDULER") {
  auto defaults = parse_serve_options({}, env_of({}));
  REQUIRE(defaults);
  CHECK(defaults->scheduler == actor_scheduler::sharing);
  auto from_env = parse_serve_options({}, env_of({{"BACKLINE_ACTOR_SCHEDULER", "stealing"}}));
  REQUIRE(from_env);
  CHECK(from_env->scheduler == actor_scheduler::stealing);
  auto flag = parse_serve_options({"--actor-scheduler", "sharing"}, env_of({{"BACKLINE_ACTOR_SCHEDULER", "stealing"}}));
  REQUIRE(flag);
  CHECK(flag->scheduler == actor_scheduler::sharing);
  auto bad = parse_serve_options({"--actor-scheduler", "fifo"}, env_of({}));
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("--actor-scheduler") && Catch::Contains("fifo"));
  CHECK_THAT(serve_help(), Catch::Contains("--actor-scheduler") && Catch::Contains("BACKLINE_ACTOR_SCHEDULER"));

  // The actor system gets that scheduler (under ThreadSanitizer always work sharing).
  auto policy_of = [](actor_scheduler asked) {
    caf::actor_system_config cfg;
    choose_caf_scheduler(cfg, 2, asked);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    if (dynamic_cast<caf::scheduler::coordinator<caf::policy::work_sharing>*>(&sys.scheduler()) != nullptr)
      return std::string("sharing");
    if (dynamic_cast<caf::scheduler::coordinator<caf::policy::work_stealing>*>(&sys.scheduler()) != nullptr)
      return std::string("stealing");
    return std::string("other");
  };
  CHECK(policy_of(actor_scheduler::sharing) == "sharing");
#ifdef BACKLINE_TSAN
  CHECK(policy_of(actor_scheduler::stealing) == "sharing");
#else
  CHECK(policy_of(actor_scheduler::stealing) == "stealing");
#endif
}

#ifdef BACKLINE_TCMALLOC
// Built with BACKLINE_MALLOC=tcmalloc (the default outside sanitizer builds):
// tcmalloc, not glibc, serves the program's malloc. Were glibc's serving it,
// tcmalloc's count of allocated bytes would not move.
TEST_CASE("the allocator: malloc is tcmalloc's in builds that choose it") {
  const size_t size = 8u << 20;
  size_t before = 0, during = 0, after = 0;
  REQUIRE(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &before));
  void* block = std::malloc(size);
  REQUIRE(block != nullptr);
  std::memset(block, 1, size);
  REQUIRE(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &during));
  std::free(block);
  REQUIRE(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &after));
  CHECK(during >= before + size);
  CHECK(after + size <= during);
}
#endif

TEST_CASE("HTTPS needs both --tls-cert and --tls-key, from flags or environment") {
  auto both = parse_serve_options({"--tls-cert", "/etc/c.pem", "--tls-key=/etc/k.pem"}, env_of({}));
  REQUIRE(both);
  CHECK(both->tls_cert == "/etc/c.pem");
  CHECK(both->tls_key == "/etc/k.pem");
  auto from_env = parse_serve_options({}, env_of({{"BACKLINE_TLS_CERT", "/c"}, {"BACKLINE_TLS_KEY", "/k"}}));
  REQUIRE(from_env);
  CHECK(from_env->tls_cert == "/c");
  CHECK(from_env->tls_key == "/k");
  auto cert_alone = parse_serve_options({"--tls-cert", "/etc/c.pem"}, env_of({}));
  REQUIRE_FALSE(cert_alone);
  CHECK_THAT(cert_alone.error().message(), Catch::Contains("--tls-key"));
  auto key_alone = parse_serve_options({}, env_of({{"BACKLINE_TLS_KEY", "/k"}}));
  REQUIRE_FALSE(key_alone);
  CHECK_THAT(key_alone.error().message(), Catch::Contains("--tls-cert"));
  auto neither = parse_serve_options({}, env_of({}));
  REQUIRE(neither);
  CHECK(neither->tls_cert.empty());
}

TEST_CASE("rate limits and the waiting-connection bound: defaults, overrides and 0 turning limits off") {
  auto defaults = parse_serve_options({}, env_of({}));
  REQUIRE(defaults);
  CHECK(defaults->rate_limit == 200);
  CHECK(defaults->rate_burst == 400);
  CHECK(defaults->max_waiting_connections == 1024);
  auto set = parse_serve_options({"--rate-limit", "0", "--max-waiting-connections", "10"},
                                 env_of({{"BACKLINE_RATE_LIMIT", "5"}, {"BACKLINE_RATE_BURST", "7"}}));
  REQUIRE(set);
  CHECK(set->rate_limit == 0);
  CHECK(set->rate_burst == 7);
  CHECK(set->max_waiting_connections == 10);
  auto bad = parse_serve_options({"--rate-burst", "0"}, env_of({}));
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("--rate-burst"));
  auto help = serve_help();
  for (const char* needle : {"--tls-cert", "BACKLINE_TLS_CERT", "--tls-key", "BACKLINE_TLS_KEY", "--rate-limit",
                             "BACKLINE_RATE_LIMIT", "default 200", "--rate-burst", "default 400",
                             "--max-waiting-connections", "default 1024"})
    CHECK_THAT(help, Catch::Contains(needle));
}
