#pragma once
// How backline runs its actors on CAF's scheduler.
//
// Threads: CAF's default, max(cores, 4), unless configured (--actor-threads).
// On 2 cores one thread per core was measured both ways, alternating in the
// same session: `journal_bench --appenders 256 --quick` 0.65-0.71 of the raw
// ceiling against 0.58-0.62 (CPU per event 9.0 against 9.7 us), but
// `api_bench --connections 64` 12.4k-13.4k posts/s against 13.5k-14.5k, and
// the same at 1,000 connections. The server's figure is the one that counts,
// so the default stays CAF's; the journal's benchmark runs as the server does.
//
// Policy: normally CAF's default, work stealing. Under ThreadSanitizer
// (BACKLINE_TSAN, which CMake defines for BACKLINE_SANITIZE=thread) work
// sharing instead: Debian's libcaf_core is not built with ThreadSanitizer, so
// the lock-free queues through which work stealing hands actors and their
// messages from one thread to the next are invisible to it, and every such
// hand-off would be reported as a race. Work sharing hands actors over
// through a mutex, which ThreadSanitizer sees; the races left to report are
// backline's own.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <algorithm>
#include <cstddef>
#include <thread>

namespace backline {

/// The scheduler threads for a configured count (0: CAF's default, max(cores, 4)).
inline size_t actor_threads_for(size_t configured) {
  if (configured > 0)
    return configured;
  return std::max<size_t>(4, std::thread::hardware_concurrency());
}

/// Sets CAF's scheduler up as backline runs it: `threads` scheduler threads
/// (0: CAF's default) and the policy above.
inline void choose_caf_scheduler(caf::actor_system_config& cfg, size_t threads = 0) {
  cfg.set("scheduler.max-threads", actor_threads_for(threads));
#ifdef BACKLINE_TSAN
  cfg.set("scheduler.policy", caf::atom("sharing"));
#endif
}

} // namespace backline
