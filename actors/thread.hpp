#pragma once
#include "backline/inbox.hpp"

namespace backline {

/// Spawns the actor of thread `id` (activated from its stream). `creation`
/// is its thread_created payload as its chat recorded it: used when the
/// thread's own stream does not have it yet.
thread_actor spawn_thread_actor(caf::local_actor* parent, const std::string& id, const std::string& creation,
                                const journal_actor& journal, const slack_port_actor& slack,
                                const directory_actor& directory);

} // namespace backline
