#pragma once
// Waiting in tests: for what a check depends on, never for a time.
//
// A test that sleeps "long enough" and then checks fails on a slower machine
// (sanitizers, one core, a CPU hog beside it). A test waits instead until
// the condition it depends on holds; the limit only keeps a broken build
// from hanging, so it is far beyond what the slowest machine needs.

#include <chrono>
#include <thread>

namespace backline::testing {

/// How long a test waits for something that must come before it calls it
/// lost: a guard against hanging, not a timing assumption.
inline constexpr std::chrono::seconds patience{60};

/// Checks `holds()` until it is true (then true) or `limit` has passed (then
/// false), every `every` (a few milliseconds unless the check is costly).
template <class Pred>
bool eventually(Pred&& holds, std::chrono::milliseconds limit = patience,
                std::chrono::milliseconds every = std::chrono::milliseconds(5)) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (holds())
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(every);
  }
}

} // namespace backline::testing
