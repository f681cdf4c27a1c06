// Slack's own Node SDK (@slack/web-api, @slack/bolt; pinned in
// tests/slack_sdk/package-lock.json) against fake_slack: tests/slack_sdk/run.sh
// runs conformance.mjs, which drives the fake over HTTP and exits non-zero on
// any mismatch. Needs node and npm (scripts/deps.sh --test).

#include "slack/fake_slack.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

/// The repository root, found from this file's path (tests/slack/…).
std::filesystem::path repo_root() { return BACKLINE_SOURCE_DIR; }

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace

TEST_CASE("Slack's Node SDK (@slack/web-api, @slack/bolt) accepts the fake's wire format") {
  using namespace std::chrono_literals;
  backline::slack::fake_slack_config cfg;
  cfg.bot_token = "xoxb-conformance";
  cfg.signing_secret = "conformance-signing-secret";
  cfg.event_retry_delays = {50ms, 50ms, 50ms};
  cfg.event_timeout = 2000ms;
  backline::slack::fake_slack slack(cfg);
  slack.start();

  const auto script = repo_root() / "tests" / "slack_sdk" / "run.sh";
  REQUIRE(std::filesystem::exists(script));
  const std::string command = "bash " + shell_quote(script.string()) + " " + shell_quote(slack.base_url()) + " " +
                              shell_quote(cfg.bot_token) + " " + shell_quote(cfg.signing_secret) + " " +
                              shell_quote(slack.server_url() + "/control/");
  INFO(command);
  const int status = std::system(command.c_str());
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
