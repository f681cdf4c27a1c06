#include "backline/server.hpp"

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

TEST_CASE("an in-process server answers /healthz on an ephemeral port and stops cleanly") {
  temp_dir dir;
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = dir.path();
  cfg.http_threads = 4;
  std::ostringstream log;
  auto srv = server::start(cfg, log);
  REQUIRE(srv);
  REQUIRE((*srv)->port() > 0);
  CHECK_THAT(log.str(), Catch::Contains("listening on http://127.0.0.1:"));
  httplib::Client cli("127.0.0.1", (*srv)->port());
  auto res = cli.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  // The log decides the status; the Slack side is reported beside it.
  CHECK(res->body == R"({"status":"ok","slack":{"status":"ok","queued":0}})");
  (*srv)->stop();
  (*srv)->stop();  // idempotent
}

TEST_CASE("a port already in use is a clear error, and the actors started before it stop") {
  temp_dir first_dir, second_dir;
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = first_dir.path();
  cfg.http_threads = 4;
  std::ostringstream log;
  auto first = server::start(cfg, log);
  REQUIRE(first);
  cfg.listen_port = (*first)->port();
  cfg.data_dir = second_dir.path();
  auto second = server::start(cfg, log);  // returned at all: nothing was left running to wait for
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error().message(), Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(cfg.listen_port)));
  // The second log was closed: a third server opens it.
  auto third = server::start([&] {
    auto c = cfg;
    c.listen_port = 0;
    return c;
  }(), log);
  CHECK(third);
}

TEST_CASE("a data directory that cannot be created is a clear error") {
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = "/proc/backline-cannot-be-here";
  std::ostringstream log;
  auto srv = server::start(cfg, log);
  REQUIRE_FALSE(srv);
  CHECK_THAT(srv.error().message(), Catch::Contains("/proc/backline-cannot-be-here"));
}

TEST_CASE("backline serve stops on SIGTERM and SIGINT with exit code 0, keeping its data") {
  temp_dir dir;
  for (int sig : {SIGTERM, SIGINT}) {
    std::string ready = dir.sub("ready-" + std::to_string(sig));
    child_process proc({backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", dir.sub("data"),
                        "--ready-file", ready, "--http-threads", "8"},
                       dir.sub("log-" + std::to_string(sig)));
    int port = wait_for_ready_file(ready, 20s);
    REQUIRE(port > 0);
    httplib::Client cli("127.0.0.1", port);
    auto res = cli.Get("/healthz");
    REQUIRE(res);
    CHECK(res->status == 200);
    proc.signal(sig);
    CHECK(proc.wait(20s) == 0);
    auto log = read_file(dir.sub("log-" + std::to_string(sig)));
    CHECK_THAT(log, Catch::Contains("stopped"));
  }
}

TEST_CASE("backline serve --help lists options and defaults, bad options exit 2") {
  temp_dir dir;
  child_process help({backline_binary(), "serve", "--help"}, dir.sub("help"));
  CHECK(help.wait(10s) == 0);
  CHECK_THAT(read_file(dir.sub("help")), Catch::Contains("BACKLINE_LISTEN"));
  child_process bad({backline_binary(), "serve", "--bogus"}, dir.sub("bad"));
  CHECK(bad.wait(10s) == 2);
  CHECK_THAT(read_file(dir.sub("bad")), Catch::Contains("--bogus"));
}

TEST_CASE("stopping answers a waiting long poll at once instead of after its wait") {
  temp_dir dir;
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = dir.path();
  cfg.http_threads = 4;
  cfg.admin_token = "admin-token-stop";
  cfg.log_requests = false;
  std::ostringstream log;
  auto srv = server::start(cfg, log);
  REQUIRE(srv);
  const int port = (*srv)->port();
  httplib::Client admin("127.0.0.1", port);
  auto user = admin.Post("/api/v1/users", {{"Authorization", "Bearer admin-token-stop"}},
                         R"({"id":"ann","name":"Ann","role":"agent","inbox_access":true})", "application/json");
  REQUIRE(user);
  REQUIRE(user->status == 201);
  auto token = boost::json::parse(user->body).at("token").as_string();
  std::string bearer = "Bearer " + std::string(token);

  int poll_status = 0;
  std::thread poller([&] {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(60, 0);
    auto r = cli.Get("/api/v1/notifications?wait=30", {{"Authorization", bearer}});
    poll_status = r ? r->status : -1;
  });
  std::this_thread::sleep_for(300ms);  // the poll is waiting
  auto started = std::chrono::steady_clock::now();
  (*srv)->stop();
  auto took = std::chrono::steady_clock::now() - started;
  poller.join();
  CHECK(poll_status == 200);
  CHECK(took < 15s);  // not the poll's 30 s
}
