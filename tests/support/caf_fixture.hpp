#pragma once
// A Catch2 fixture that runs CAF on the deterministic test scheduler
// (scheduler.policy = "testing"): nothing runs until the test steps it, so
// actor tests see one fixed interleaving and never sleep.
//
//   TEST_CASE_METHOD(caf_fixture, "…") {
//     auto a = sys.spawn(behavior);
//     auto reply = request<int>(a, get_atom::value);  // runs until answered
//   }

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace backline::testing {

struct caf_test_config : caf::actor_system_config {
  caf_test_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    set("logger.console-verbosity", caf::atom("quiet"));
  }
};

class caf_fixture {
public:
  caf_test_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;

  caf_fixture()
    : sys(cfg),
      self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {}

  virtual ~caf_fixture() { run(); }

  /// Runs every actor until no message is left. Returns messages consumed.
  size_t run() { return sched.run(); }

  /// Runs one message of the next actor. False when nothing was left.
  bool run_once() { return sched.try_run_once(); }

  /// Triggers every pending timeout (delayed sends, request deadlines).
  size_t trigger_timeouts() { return sched.trigger_timeouts(); }

  /// Sends a request from the test, runs the actors, and returns the single
  /// reply of type T (fails the test on an error or no reply).
  template <class T, class Handle, class... Ts>
  T request(const Handle& dest, Ts&&... xs) {
    self->send(caf::actor_cast<caf::actor>(dest), std::forward<Ts>(xs)...);
    run();
    std::optional<T> got;
    std::string failure;
    self->receive([&](T& x) { got = std::move(x); },
                  [&](caf::error& err) { failure = caf::to_string(err); },
                  caf::after(std::chrono::seconds(0)) >> [&] { failure = "no reply"; });
    if (!got)
      FAIL("request failed: " << failure);
    return std::move(*got);
  }
};

} // namespace backline::testing
