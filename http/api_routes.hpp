#pragma once
// The /api/v1 routes: each handler authenticates, validates the body, sends
// one command to an actor with a deadline, and writes the actor's answer.

#include <caf/all.hpp>
#include <httplib.h>

#include <chrono>
#include <memory>

#include "backline/file_store.hpp"
#include "backline/inbox.hpp"

namespace backline::slack {
class fake_slack;
}

namespace backline::http {

class answer_relay;

struct api_deps {
  caf::actor_system* sys = nullptr;
  journal_actor journal;
  directory_actor directory;
  notifications_actor notifications;
  slack_port_actor slack;
  users_actor user_admin;
  std::shared_ptr<backline::users_view> users;  // the published users table
  std::shared_ptr<file_store> files;
  // The audit timelines read the store directly (its reads are thread-safe):
  // they must not queue behind the journal's writes.
  std::shared_ptr<const event_store> store;
  size_t max_file_bytes = 10u << 20;
  std::chrono::milliseconds deadline{5000};
  // Sends commands whose answers the actors write (see answer_relay); none:
  // every handler waits for its answer.
  std::shared_ptr<answer_relay> relay;
  std::string slack_api_url;  // where files of Slack replies may come from (with slack_token)
  std::string slack_token;
  slack::fake_slack* sandbox = nullptr;  // the simulated workspace in sandbox mode, else none
};

void register_api_routes(httplib::Server& server, const api_deps& deps);

} // namespace backline::http
