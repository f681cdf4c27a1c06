#pragma once
// How HTTP workers reach the actors. Two ways:
//
// answer_relay (below): the request goes out and the worker goes back to its
// connection; the answering actor's thread writes the answer (see
// answer_later in http_server.hpp). Commands use it.
//
// ask / ask_then: the "front actor" of an HTTP worker thread, a blocking scoped_actor that
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

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>
#include <caf/scoped_execution_unit.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "backline/domain.hpp"
#include "backline/status.hpp"
#include "http/http_server.hpp"

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

/// The 503 for a request whose actor did not answer (gone, failed, too late).
inline api_reply busy_reply(const std::string& why) {
  return error_reply(503, "unavailable", "the server is busy: " + why);
}

/// Requests whose answers no thread waits for: each goes out as a request
/// from a CAF actor_companion (CAF's gateway for objects that are not
/// actors). The companion's enqueue hook runs on the thread of whichever
/// actor answers, and hands the api_reply straight to the request's
/// later_answer, which writes it on the connection. So a post costs its HTTP
/// worker one sleep (on the socket) instead of two (socket, then answer).
class answer_relay {
public:
  explicit answer_relay(caf::actor_system& sys) : companion_(sys.spawn<caf::actor_companion, caf::hidden>()) {
    companion()->on_enqueue([this](caf::mailbox_element_ptr answer) { hand_on(std::move(answer)); });
  }
  /// No answer is handed on once this returns (late ones are dropped). As
  /// CAF's own Qt widget ends its companion (0.17.6 declares
  /// actor_companion::disconnect but does not define it).
  ~answer_relay() {
    auto* c = companion();
    c->on_enqueue(nullptr);  // waits for a hand_on running now
    caf::scoped_execution_unit host{&c->home_system()};
    c->cleanup(caf::make_error(caf::exit_reason::user_shutdown), &host);
  }
  answer_relay(const answer_relay&) = delete;
  answer_relay& operator=(const answer_relay&) = delete;

  /// Sends xs to dest as a request; its api_reply, or its error as a 503,
  /// completes `to`.
  template <class Handle, class... Ts>
  void ask(const Handle& dest, std::shared_ptr<later_answer> to, Ts&&... xs) {
    send(dest, waiting{std::move(to), {}}, std::forward<Ts>(xs)...);
  }

  /// Sends xs to dest as a request; its answer (whatever its types, or an
  /// error) goes to `then`, which must complete `to` in the end, by itself
  /// or by asking again. `then` runs on the answering actor's thread and must
  /// not block; nothing runs once the relay is gone.
  template <class Handle, class... Ts>
  void ask_continuing(const Handle& dest, std::shared_ptr<later_answer> to,
                      std::function<void(caf::type_erased_tuple&)> then, Ts&&... xs) {
    send(dest, waiting{std::move(to), std::move(then)}, std::forward<Ts>(xs)...);
  }

private:
  struct waiting {
    std::shared_ptr<later_answer> to;
    std::function<void(caf::type_erased_tuple&)> then;  // none: the answer is an api_reply for `to`
  };

  template <class Handle, class... Ts>
  void send(const Handle& dest, waiting w, Ts&&... xs) {
    auto* receiver = caf::actor_cast<caf::abstract_actor*>(dest);
    if (receiver == nullptr) {
      w.to->complete(503, busy_reply("the actor is gone").body);
      return;
    }
    uint64_t id;
    {
      std::lock_guard lock(mu_);
      id = next_id_ = (next_id_ + 1) & caf::message_id::request_id_mask;
      if (id == 0)
        id = next_id_ = 1;
      // Answers given up at their deadline that never came: swept now and then.
      if (++since_sweep_ >= 4096) {
        since_sweep_ = 0;
        for (auto i = waiting_.begin(); i != waiting_.end();)
          i = i->second.to->settled() ? waiting_.erase(i) : std::next(i);
      }
      waiting_[id] = std::move(w);
    }
    receiver->enqueue(caf::make_mailbox_element(caf::actor_cast<caf::strong_actor_ptr>(companion_),
                                                caf::make_message_id(id), {}, std::forward<Ts>(xs)...),
                      nullptr);
  }

  caf::actor_companion* companion() const {
    return static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(companion_));
  }

  // On the answering actor's thread: never blocks (the answer is written
  // with a non-blocking send; a full socket is left to the worker).
  void hand_on(caf::mailbox_element_ptr answer) {
    if (!answer || !answer->mid.is_response())
      return;
    waiting w;
    {
      std::lock_guard lock(mu_);
      auto i = waiting_.find(answer->mid.request_id().integer_value());
      if (i == waiting_.end())
        return;
      w = std::move(i->second);
      waiting_.erase(i);
    }
    auto& content = answer->content();
    if (w.then) {
      w.then(content);
      return;
    }
    auto& to = w.to;
    if (content.match_elements<api_reply>()) {
      auto& r = content.get_mutable_as<api_reply>(0);
      to->complete(r.status, std::move(r.body));
    } else if (content.match_elements<caf::error>()) {
      to->complete(503, busy_reply(caf::to_string(content.get_as<caf::error>(0))).body);
    } else {
      to->complete(503, busy_reply("an answer of another type").body);
    }
  }

  caf::actor companion_;
  std::mutex mu_;
  std::unordered_map<uint64_t, waiting> waiting_;
  uint64_t next_id_ = 0;
  size_t since_sweep_ = 0;
};

} // namespace backline::http
