#pragma once
#include "backline/inbox.hpp"

namespace backline {

/// Spawns the actor of chat `id`, activated from its stream.
chat_actor spawn_chat_actor(caf::local_actor* parent, const std::string& id, const journal_actor& journal,
                            const directory_actor& directory, const slack_port_actor& slack,
                            const notifications_actor& notifications);

} // namespace backline
