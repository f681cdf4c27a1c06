// The HTTP workers' front actor (http/front.hpp): asking an actor from a
// worker thread leaves nothing behind in the worker's mailbox, answered or
// timed out, so the thousandth request costs what the first did. And the
// answer relay: requests whose answers the answering actor's thread hands to
// a later_answer, with no thread waiting.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
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

// ---------------------------------------------------------------------------
// The answer relay

namespace {

// A later_answer that keeps what it was given.
class kept_answer final : public http::later_answer {
public:
  void complete(int status, std::string body) override {
    std::lock_guard lock(mu_);
    ++calls_;
    status_ = status;
    body_ = std::move(body);
    cv_.notify_all();
  }
  bool settled() const override {
    std::lock_guard lock(mu_);
    return calls_ > 0;
  }
  // Waits for complete(); false if it did not come within `limit`.
  bool wait(std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return calls_ > 0; });
  }
  int status() const {
    std::lock_guard lock(mu_);
    return status_;
  }
  std::string body() const {
    std::lock_guard lock(mu_);
    return body_;
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0, status_ = 0;
  std::string body_;
};

caf::behavior replier(caf::event_based_actor*) {
  return {[](int x) { return api_reply{200 + x, "{\"x\":" + std::to_string(x) + "}"}; },
          [](const std::string&) -> caf::result<api_reply> { return caf::make_error(caf::sec::invalid_argument); }};
}

// Answers after `delay`, as slow_echo does.
caf::behavior slow_replier(caf::event_based_actor* self, std::chrono::milliseconds delay) {
  return {[self, delay](int x) {
    auto rp = self->make_response_promise<api_reply>();
    self->delayed_send(self, delay, std::string("answer"), x);
    self->become(caf::keep_behavior, [rp, self](const std::string&, int y) mutable {
      rp.deliver(api_reply{200 + y, "{}"});
      self->unbecome();
    });
    return rp;
  }};
}

} // namespace

TEST_CASE_METHOD(system_fixture, "the answer relay hands each actor's answer to its request's later_answer") {
  http::answer_relay relay(*sys);
  auto a = sys->spawn(replier);
  std::vector<std::shared_ptr<kept_answer>> answers;
  for (int i = 0; i < 50; ++i) {
    answers.push_back(std::make_shared<kept_answer>());
    relay.ask(a, answers.back(), i);
  }
  for (int i = 0; i < 50; ++i) {
    REQUIRE(answers[static_cast<size_t>(i)]->wait());
    CHECK(answers[static_cast<size_t>(i)]->status() == 200 + i);
    CHECK(answers[static_cast<size_t>(i)]->body() == "{\"x\":" + std::to_string(i) + "}");
    CHECK(answers[static_cast<size_t>(i)]->calls() == 1);
  }
  // An actor's error is a 503 that says why.
  auto failed = std::make_shared<kept_answer>();
  relay.ask(a, failed, std::string("not a number"));
  REQUIRE(failed->wait());
  CHECK(failed->status() == 503);
  CHECK_THAT(failed->body(), Catch::Contains("\"unavailable\"") && Catch::Contains("the server is busy"));
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(system_fixture, "the answer relay answers 503 for a dead actor, and drops answers once it is gone") {
  auto dead = sys->spawn(replier);
  caf::anon_send_exit(dead, caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(20ms);
  auto slow = sys->spawn(slow_replier, 100ms);
  auto late = std::make_shared<kept_answer>();
  {
    http::answer_relay relay(*sys);
    auto answer = std::make_shared<kept_answer>();
    relay.ask(dead, answer, 1);
    REQUIRE(answer->wait());
    CHECK(answer->status() == 503);
    relay.ask(slow, late, 2);
  }  // the relay goes before the slow answer comes
  std::this_thread::sleep_for(200ms);
  CHECK(late->calls() == 0);
  caf::anon_send_exit(slow, caf::exit_reason::user_shutdown);
}
