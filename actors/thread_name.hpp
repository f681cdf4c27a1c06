#pragma once
// Names the OS thread a detached actor runs on, so that top -H, perf and
// /proc/<pid>/task/*/comm tell the journal's writer from a Slack caller.
// CAF 0.17.6 names every detached actor's thread "caf.actor" (and, oddly, its
// scheduler's worker threads "caf.multiplexer"). Linux keeps 15 characters.
//
// Call it from the actor's behaviour function: for a detached actor that runs
// on its own thread. An actor on the scheduler's threads (or on a test's
// deterministic scheduler) renames nothing.

#include <pthread.h>

#include <caf/all.hpp>

namespace backline {

inline void name_detached_thread(const caf::local_actor* self, const char* name) {
  if (self->getf(caf::abstract_actor::is_detached_flag))
    (void)pthread_setname_np(pthread_self(), name);  // only fails past 15 characters
}

} // namespace backline
