#pragma once
// The "front actor" of an HTTP worker thread: a blocking scoped_actor that
// sends one typed request to an actor and waits for the answer with a
// deadline. Each cpp-httplib worker gets its own (thread_local), so handlers
// never share one and never run on CAF's scheduler threads.
//
// The deadline is the receive's own, never CAF's request timeout: in CAF
// 0.17 a request timeout is a message the clock thread sends after the
// deadline whether or not the answer came, and a blocking actor keeps every
// message it did not wait for in its mailbox and scans all of them again on
// each receive. Thread-local front actors live as long as the server, so
// each request left one more message behind and every request cost more than
// the one before (perf: a third of the workers' time in that scan). When the
// deadline passes, the worker's front actor is replaced, so the late answer
// lands in a mailbox nobody reads and goes with it.

#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "backline/status.hpp"

namespace backline::http {

namespace front_detail {

struct front_slot {
  std::unique_ptr<caf::scoped_actor> self;
  caf::actor_system* owner = nullptr;
};

inline front_slot& this_threads_front() {
  thread_local front_slot slot;
  return slot;
}

} // namespace front_detail

inline caf::scoped_actor& front_actor(caf::actor_system& sys) {
  auto& slot = front_detail::this_threads_front();
  if (!slot.self || slot.owner != &sys) {
    slot.self = std::make_unique<caf::scoped_actor>(sys);
    slot.owner = &sys;
  }
  return *slot.self;
}

/// Lets go of this thread's front actor (before its actor system ends).
inline void drop_front_actor() {
  auto& slot = front_detail::this_threads_front();
  slot.self.reset();
  slot.owner = nullptr;
}

/// Sends xs to dest and waits up to `deadline` for its answer, which goes to
/// on_answer (a handler of the answer's types, returning void). A timeout is
/// errc::timeout; a dead or failing actor errc::unavailable.
template <class OnAnswer, class Handle, class... Ts>
status ask_then(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds deadline,
                OnAnswer on_answer, Ts&&... xs) {
  auto& self = front_actor(sys);
  auto pending = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
  status outcome;
  bool timed_out = false;
  caf::blocking_actor::accept_one_cond one;
  self->varargs_receive(
    one, pending.id(), std::move(on_answer),
    [&](caf::error& err) { outcome = status{errc::unavailable, caf::to_string(err)}; },
    caf::after(deadline) >> [&] { timed_out = true; });
  if (timed_out) {
    drop_front_actor();
    return status{errc::timeout, "no answer within " + std::to_string(deadline.count()) + " ms"};
  }
  return outcome;
}

/// Sends xs to dest and waits up to `deadline` for a single reply of type R.
template <class R, class Handle, class... Ts>
result<R> ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds deadline, Ts&&... xs) {
  std::optional<R> answer;
  auto st = ask_then(sys, dest, deadline, [&](R& r) { answer = std::move(r); }, std::forward<Ts>(xs)...);
  if (answer)
    return std::move(*answer);
  return st.is_ok() ? status{errc::unavailable, "an answer of another type"} : st;
}

} // namespace backline::http
