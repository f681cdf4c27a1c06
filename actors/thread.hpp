#pragma once
#include "actors/peers.hpp"

namespace backline {

/// Spawns the actor of thread `id`, activated from its stream; when that
/// stream is still empty, the thread is created from its chat's
/// thread_opened event.
thread_actor spawn_thread_actor(caf::local_actor* parent, const std::string& id, peers_pointer peers);

} // namespace backline
