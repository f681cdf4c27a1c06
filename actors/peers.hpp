#pragma once
// The actors every chat and thread actor talks to. They are the same for all
// of them, and handles never change, so the directory makes one immutable
// copy and every chat and thread holds a pointer to it instead of a handle
// per peer (memory per idle actor counts at a million chats).

#include <memory>

#include "backline/inbox.hpp"

namespace backline {

struct inbox_peers {
  journal_actor journal;
  directory_actor directory;
  slack_port_actor slack;
  notifications_actor notifications;
};

using peers_pointer = std::shared_ptr<const inbox_peers>;

} // namespace backline
