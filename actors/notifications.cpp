// The notifications actor: for each agent, the chats they have open (focus),
// the thread replies pending for them, and their waiting long polls. An
// agent is notified of a thread reply only while focused on its chat.

#include <map>
#include <set>

#include "actors/persist.hpp"

namespace json = boost::json;

namespace backline {
namespace {

struct pending_note {
  uint64_t cursor = 0;
  std::string chat_id;
  std::string thread_id;
  uint64_t unread = 0;
};

struct waiting_poll {
  uint64_t id = 0;
  uint64_t after = 0;
  caf::typed_response_promise<api_reply> promise;
};

struct agent_inbox {
  std::set<std::string> focused;
  std::vector<pending_note> notes;  // oldest first, bounded
  std::vector<waiting_poll> polls;
  uint64_t next_cursor = 1;
};

struct notifications_state {
  notifications_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "notifications";
  std::map<std::string, agent_inbox> agents;
  uint64_t next_poll = 1;
  bool stopping = false;  // no poll waits any more
};

constexpr size_t max_notes_per_agent = 1000;

api_reply answer(const agent_inbox& inbox, uint64_t after) {
  json::array list;
  uint64_t cursor = after;
  for (const auto& n : inbox.notes)
    if (n.cursor > after) {
      list.push_back(json::object{{"type", "thread_reply"},
                                  {"chat_id", n.chat_id},
                                  {"thread_id", n.thread_id},
                                  {"unread", n.unread}});
      cursor = n.cursor;
    }
  return json_reply(200, json::object{{"notifications", std::move(list)}, {"cursor", std::to_string(cursor)}});
}

notifications_actor::behavior_type notifications_behavior(
  notifications_actor::stateful_pointer<notifications_state> self) {
  return {
    [self](atoms::focus, const std::string& agent, const std::string& chat, bool on) {
      auto& inbox = self->state.agents[agent];
      if (on)
        inbox.focused.insert(chat);
      else
        inbox.focused.erase(chat);
    },
    [self](atoms::notify, const std::string& agent, const std::string& chat, const std::string& thread,
           uint64_t unread) {
      auto i = self->state.agents.find(agent);
      if (i == self->state.agents.end() || !i->second.focused.count(chat))
        return;
      auto& inbox = i->second;
      inbox.notes.push_back({inbox.next_cursor++, chat, thread, unread});
      if (inbox.notes.size() > max_notes_per_agent)
        inbox.notes.erase(inbox.notes.begin());
      for (auto& p : inbox.polls)
        p.promise.deliver(answer(inbox, p.after));
      inbox.polls.clear();
    },
    [self](atoms::poll, const std::string& agent, uint64_t after, uint32_t wait_ms) -> caf::result<api_reply> {
      auto& inbox = self->state.agents[agent];
      if (!inbox.notes.empty() && inbox.notes.back().cursor > after)
        return answer(inbox, after);
      if (wait_ms == 0 || self->state.stopping)
        return answer(inbox, after);
      auto rp = self->make_response_promise<api_reply>();
      auto id = self->state.next_poll++;
      inbox.polls.push_back({id, after, rp});
      self->delayed_send(self, std::chrono::milliseconds(wait_ms), atoms::poll_end::value, agent, id);
      return rp;
    },
    // Waiting polls would hold the HTTP front's shutdown for their whole wait.
    [self](atoms::flush) {
      self->state.stopping = true;
      for (auto& [agent, inbox] : self->state.agents) {
        for (auto& p : inbox.polls)
          p.promise.deliver(answer(inbox, p.after));
        inbox.polls.clear();
      }
    },
    [self](atoms::poll_end, const std::string& agent, uint64_t id) {
      auto& inbox = self->state.agents[agent];
      for (auto p = inbox.polls.begin(); p != inbox.polls.end(); ++p)
        if (p->id == id) {
          p->promise.deliver(answer(inbox, p->after));
          inbox.polls.erase(p);
          return;
        }
    },
  };
}

} // namespace

namespace inbox {

notifications_actor spawn_notifications(caf::actor_system& sys) { return sys.spawn(notifications_behavior); }

} // namespace inbox
} // namespace backline
