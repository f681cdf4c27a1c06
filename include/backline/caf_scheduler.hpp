#pragma once
// Which CAF scheduler backline runs its actors on.
//
// Normally CAF's default, work stealing. Under ThreadSanitizer (BACKLINE_TSAN,
// which CMake defines for BACKLINE_SANITIZE=thread) work sharing instead:
// Debian's libcaf_core is not built with ThreadSanitizer, so the lock-free
// queues through which work stealing hands actors and their messages from
// one thread to the next are invisible to it, and every such hand-off would
// be reported as a race. Work sharing hands actors over through a mutex,
// which ThreadSanitizer sees; the races left to report are backline's own.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

namespace backline {

inline void choose_caf_scheduler(caf::actor_system_config& cfg) {
#ifdef BACKLINE_TSAN
  cfg.set("scheduler.policy", caf::atom("sharing"));
#else
  (void)cfg;
#endif
}

} // namespace backline
