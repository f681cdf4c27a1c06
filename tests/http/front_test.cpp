// The HTTP workers' front actor (http/front.hpp): asking an actor from a
// worker thread leaves nothing behind in the worker's mailbox, answered or
// timed out, so the thousandth request costs what the first did.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <thread>

#include "backline/caf_scheduler.hpp"
#include "http/front.hpp"

using namespace backline;
using namespace std::chrono_literals;

namespace {

caf::behavior echo(caf::event_based_actor*) {
  return {[](int x) { return x; }};
}

// Answers after `delay` (a scheduled message to itself, so no thread sleeps).
caf::behavior slow_echo(caf::event_based_actor* self, std::chrono::milliseconds delay) {
  return {[self, delay](int x) {
    auto rp = self->make_response_promise<int>();
    self->delayed_send(self, delay, std::string("answer"), x);
    self->become(caf::keep_behavior, [rp, self](const std::string&, int y) mutable {
      rp.deliver(y);
      self->unbecome();
    });
    return rp;
  }};
}

struct system_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  system_fixture() {
    choose_caf_scheduler(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  ~system_fixture() { http::drop_front_actor(); }  // while its system lives
};

} // namespace

TEST_CASE_METHOD(system_fixture, "an answered ask leaves no message in the worker's front actor, even after its deadline") {
  auto a = sys->spawn(echo);
  for (int i = 0; i < 200; ++i) {
    auto r = http::ask<int>(*sys, a, 30ms, i);
    REQUIRE(r);
    CHECK(*r == i);
  }
  // CAF's own request timeouts would arrive now, 30 ms after each answer.
  std::this_thread::sleep_for(80ms);
  CHECK_FALSE(http::front_actor(*sys)->has_next_message());
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(system_fixture, "a timed-out ask says so, and its late answer does not reach the next ask") {
  auto slow = sys->spawn(slow_echo, 60ms);
  auto r = http::ask<int>(*sys, slow, 10ms, 7);
  REQUIRE_FALSE(r);
  INFO(r.error().message());
  CHECK(r.error().code() == errc::timeout);
  std::this_thread::sleep_for(100ms);  // the late answer has come by now
  CHECK_FALSE(http::front_actor(*sys)->has_next_message());
  auto a = sys->spawn(echo);
  auto next = http::ask<int>(*sys, a, 1000ms, 8);
  REQUIRE(next);
  CHECK(*next == 8);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(slow, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(system_fixture, "an ask of a dead actor is unavailable, not a timeout") {
  auto a = sys->spawn(echo);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(20ms);
  auto r = http::ask<int>(*sys, a, 1000ms, 1);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::unavailable);
}
