#pragma once
// How backline runs its actors on CAF's scheduler.
//
// Policy: work sharing unless configured (--actor-scheduler). CAF's default,
// work stealing, gives each thread its own queue and puts the work an actor
// sends at its front (last in, first out); under load the oldest work waits
// at the back until the other thread steals it, so some requests wait far
// longer than the rest. Work sharing is one queue, first in, first out.
// Measured on 2 cores, alternating in one session (api_bench, 8 s a level):
// at 1,000 connections p99 99-103 ms against 161-196 ms (p90 85-86 against
// 109-112), 13.6k-14.1k posts/s against 12.7k-13.6k; at 64 connections
// 16.7k-17.3k against 14.0k-16.8k posts/s, 92-96 against 101-122 us of CPU a
// post. The journal alone (journal_bench --appenders 256, whose 256 appender
// actors wake on every answer) was slower with four threads, 0.56-0.59 of its
// ceiling against 0.65-0.66; with one thread per core (below) and the malloc
// setting (malloc_tuning.hpp) it gives 0.77-0.81. Under ThreadSanitizer (BACKLINE_TSAN) it is always work
// sharing: Debian's libcaf_core is not built with ThreadSanitizer, and work
// stealing's lock-free queues would make every hand-off between threads look
// like a race; work sharing's mutex is visible to it.
//
// Threads: one per core unless configured (--actor-threads); CAF's own
// default is max(cores, 4). With work sharing, four threads on 2 cores
// contend for the one queue: journal_bench --appenders 256 gave 0.47 of its
// ceiling against 0.67 with two, while the HTTP figures were the same with
// two or four (17.2k posts/s at 64 connections; p99 91-113 against 91-103 ms
// at 1,000). (With work stealing, one thread per core made journal_bench
// faster, 0.65-0.71 against 0.58-0.62, and HTTP posts slower, 12.4k-13.4k
// against 13.5k-14.5k posts/s at 64 connections.)

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <algorithm>
#include <cstddef>
#include <thread>

#include "backline/config.hpp"

namespace backline {

/// The scheduler threads for a configured count (0: one per core).
inline size_t actor_threads_for(size_t configured) {
  if (configured > 0)
    return configured;
  return std::max<size_t>(1, std::thread::hardware_concurrency());
}

/// Sets CAF's scheduler up as backline runs it: the policy and `threads`
/// scheduler threads (0: one per core), as above.
inline void choose_caf_scheduler(caf::actor_system_config& cfg, size_t threads = 0,
                                 actor_scheduler policy = actor_scheduler::sharing) {
  cfg.set("scheduler.max-threads", actor_threads_for(threads));
#ifdef BACKLINE_TSAN
  policy = actor_scheduler::sharing;
#endif
  cfg.set("scheduler.policy", policy == actor_scheduler::sharing ? caf::atom("sharing") : caf::atom("stealing"));
}

} // namespace backline
