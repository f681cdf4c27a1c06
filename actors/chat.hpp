#pragma once
#include "actors/peers.hpp"

namespace backline {

/// Spawns the actor of chat `id`, activated from its stream.
chat_actor spawn_chat_actor(caf::local_actor* parent, const std::string& id, peers_pointer peers);

} // namespace backline
