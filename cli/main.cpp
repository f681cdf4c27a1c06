// backline: the command-line entry point. It only parses arguments and
// dispatches to a subcommand; the work lives in the library.

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "backline/audit.hpp"
#include "backline/config.hpp"
#include "backline/malloc_tuning.hpp"
#include "backline/server.hpp"

namespace {

const char* usage =
  "usage: backline <command> [options]\n\n"
  "commands:\n"
  "  serve     run the server (backline serve --help for its options)\n"
  "  audit     verify, replay, export or rebuild the event log, read-only (backline audit --help)\n"
  "  help      show this text\n";

// Runs the server until SIGTERM or SIGINT, then stops it cleanly.
int serve(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << backline::serve_help();
      return 0;
    }
  auto cfg = backline::parse_serve_options(args, [](const char* name) { return std::getenv(name); });
  if (!cfg) {
    std::cerr << "backline serve: " << cfg.error().message() << "\n";
    return 2;
  }
  // Block the stop signals in every thread (threads inherit the mask), so
  // this thread alone receives them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  auto srv = backline::server::start(cfg.value(), std::cout);
  if (!srv) {
    std::cerr << "backline serve: " << srv.error().message() << "\n";
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "backline: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << " received, stopping (in-flight requests finish, the journal flushes)" << std::endl;
  (*srv)->stop();
  std::cout << "backline: stopped" << std::endl;
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // before any thread starts
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (command == "serve")
    return serve(args);
  if (command == "audit")
    return backline::audit::run_command(args, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1,
                                        [](const char* name) { return std::getenv(name); });
  std::cerr << "backline: unknown command '" << command << "'\n" << usage;
  return 2;
}
