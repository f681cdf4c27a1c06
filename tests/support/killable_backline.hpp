#pragma once
// The real `backline serve` against the Slack fake, as a child process that
// tests can kill (SIGKILL) and start again on the same data.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "slack/fake_slack.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace backline::testing {

struct killable_backline {
  temp_dir& dir;
  slack::fake_slack& fake;
  std::vector<std::string> extra_args;
  std::unique_ptr<child_process> proc = nullptr;
  int port = 0;
  int runs = 0;

  /// Starts (again) on the same data; Slack's events go to the new port.
  void start() {
    auto ready = dir.sub("ready-" + std::to_string(++runs));
    std::vector<std::string> args{backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", dir.sub("data"),
                                  "--ready-file", ready, "--http-threads", "16",
                                  // The load drives each token as fast as it can: no per-caller limit.
                                  "--rate-limit", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    proc = std::make_unique<child_process>(
      args, dir.sub("log-" + std::to_string(runs)),
      std::vector<std::string>{"BACKLINE_ADMIN_TOKEN=admin-crash", "SLACK_BOT_TOKEN=" + fake.config().bot_token,
                               "SLACK_API_URL=" + fake.base_url(),
                               "SLACK_SIGNING_SECRET=" + fake.config().signing_secret});
    port = wait_for_ready_file(ready, std::chrono::seconds(30));
    REQUIRE(port > 0);
    fake.set_events_url("http://127.0.0.1:" + std::to_string(port) + "/slack/events");
  }
  boost::json::value call(const std::string& method, const std::string& path, const std::string& token,
                   const boost::json::value& body = nullptr) {
    httplib::Client cli("127.0.0.1", port);
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    auto r = method == "GET" ? cli.Get(path.c_str(), h) : cli.Post(path.c_str(), h, boost::json::serialize(body), "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status < 300);
    return boost::json::parse(r->body);
  }
};

} // namespace backline::testing
