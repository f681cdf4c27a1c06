// The local Slack fake (slack/fake_slack.hpp) as a process of its own, for
// the browser tests (tests/web): the sandbox workspace (#finance, #hr,
// #operations, erin, hugo, opal, @finance-team…) on a loopback port, driven
// over HTTP through its /control/ surface.
//
//   fake_slack_server <ready file> [max seconds]
//
// Writes {"base_url","server_url","bot_token","signing_secret"} as one JSON
// line to the ready file once serving; stops on SIGTERM or SIGINT, and by
// itself after max seconds (default 600) so that it never outlives a test.

#include <boost/json.hpp>

#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>

#include "slack/fake_slack.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: fake_slack_server <ready file> [max seconds]\n";
    return 2;
  }
  const long max_seconds = argc == 3 ? std::stol(argv[2]) : 600;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  backline::slack::fake_slack_config cfg;
  cfg.bot_token = "xoxb-browser-tests";
  cfg.signing_secret = "browser-tests-signing-secret";
  // Retries of undelivered events come soon, not after minutes.
  cfg.event_retry_delays = {std::chrono::milliseconds(100), std::chrono::milliseconds(500),
                            std::chrono::milliseconds(1000)};
  backline::slack::fake_slack slack(cfg);
  slack.start();
  {
    std::ofstream ready(std::string(argv[1]) + ".tmp");
    ready << boost::json::serialize(boost::json::object{{"base_url", slack.base_url()},
                                                        {"server_url", slack.server_url()},
                                                        {"bot_token", cfg.bot_token},
                                                        {"signing_secret", cfg.signing_secret}})
          << "\n";
  }
  std::rename((std::string(argv[1]) + ".tmp").c_str(), argv[1]);
  std::cout << "fake_slack_server: serving " << slack.base_url() << std::endl;

  timespec limit{static_cast<time_t>(max_seconds), 0};
  int sig = sigtimedwait(&stop_signals, nullptr, &limit);
  std::cout << "fake_slack_server: " << (sig < 0 ? "time limit reached" : "stopped by a signal") << std::endl;
  slack.stop();
  return 0;
}
