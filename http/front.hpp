#pragma once
// The "front actor" of an HTTP worker thread: a blocking scoped_actor that
// sends one typed request to an actor and waits for the answer with a
// deadline. Each cpp-httplib worker gets its own (thread_local), so handlers
// never share one and never run on CAF's scheduler threads.

#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "backline/status.hpp"

namespace backline::http {

inline caf::scoped_actor& front_actor(caf::actor_system& sys) {
  thread_local std::unique_ptr<caf::scoped_actor> self;
  thread_local caf::actor_system* owner = nullptr;
  if (!self || owner != &sys) {
    self = std::make_unique<caf::scoped_actor>(sys);
    owner = &sys;
  }
  return *self;
}

/// Sends xs to dest and waits up to `deadline` for a single reply of type R.
/// A timeout is errc::timeout; a dead or failing actor errc::unavailable.
template <class R, class Handle, class... Ts>
result<R> ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds deadline,
              Ts&&... xs) {
  auto& self = front_actor(sys);
  std::optional<R> answer;
  status failure{errc::timeout, "no answer within " + std::to_string(deadline.count()) + " ms"};
  self->request(dest, deadline, std::forward<Ts>(xs)...)
    .receive([&](R& r) { answer = std::move(r); },
             [&](caf::error& err) {
               if (err != caf::sec::request_timeout)
                 failure = status{errc::unavailable, caf::to_string(err)};
             });
  if (answer)
    return std::move(*answer);
  return failure;
}

} // namespace backline::http
