// ThreadSanitizer and CAF 0.17.6 as Debian ships it (linked into the test
// executables of a BACKLINE_SANITIZE=thread build only; never into backline).
//
// libcaf_core is not built with ThreadSanitizer, so the lock-free queues and
// atomic reference counts through which CAF hands a message, an actor or a
// shared object from one thread to the next are invisible to it: every such
// hand-off would be reported as a race between the code before it and the
// code after it. These wrappers tell ThreadSanitizer about each hand-off, at
// the library functions where it happens:
//
//   a message:  enqueue (release on the receiving actor or its inbox) ->
//               the receiver consumes it, or fetches it from its inbox
//               (acquire on the same);
//   an actor:   a scheduler thread resumes it (acquire) and lets it go
//               (release), so the next thread to resume it sees its state;
//   a shared object: dropping a reference releases and acquires on the
//               object, so whoever destroys it sees every earlier use.
//
// Each wrapper is the library function's own symbol, defined here so the
// dynamic linker binds CAF's calls (and vtables) to it (ELF interposition),
// and it calls the library's definition found with dlsym(RTLD_NEXT). What is
// left for ThreadSanitizer to report are races in code that shares memory
// outside CAF's messages: backline's and the tests' own.

#include <caf/all.hpp>
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

namespace {

template <class F>
F next_definition(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_caf_handoffs: %s not found in libcaf_core\n", mangled);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

} // namespace

namespace caf {

void scheduled_actor::enqueue(mailbox_element_ptr ptr, execution_unit* eu) {
  using fn = void (*)(scheduled_actor*, mailbox_element_ptr, execution_unit*);
  static auto real = next_definition<fn>(
    "_ZN3caf15scheduled_actor7enqueueESt10unique_ptrINS_15mailbox_elementENS_6detail8disposerEEPNS_14execution_unitE");
  __tsan_release(this);
  real(this, std::move(ptr), eu);
}

void blocking_actor::enqueue(mailbox_element_ptr ptr, execution_unit* eu) {
  using fn = void (*)(blocking_actor*, mailbox_element_ptr, execution_unit*);
  static auto real = next_definition<fn>(
    "_ZN3caf14blocking_actor7enqueueESt10unique_ptrINS_15mailbox_elementENS_6detail8disposerEEPNS_14execution_unitE");
  __tsan_release(&mailbox());
  real(this, std::move(ptr), eu);
}

// A blocking actor (a scoped_actor, an HTTP worker's front actor) takes what
// arrived from its inbox here, before it receives any of it.
template <>
bool intrusive::fifo_inbox<blocking_actor::mailbox_policy>::fetch_more() {
  using fn = bool (*)(intrusive::fifo_inbox<blocking_actor::mailbox_policy>*);
  static auto real = next_definition<fn>("_ZN3caf9intrusive10fifo_inboxINS_14blocking_actor14mailbox_policyEE10fetch_moreEv");
  bool fetched = real(this);
  __tsan_acquire(this);
  return fetched;
}

// The release after each message as well as after resume: once the last
// message is handled, resume blocks the mailbox and a sender may hand the
// actor to another thread before this one leaves resume, so a release only
// there could come after the next thread's acquire.
invoke_message_result scheduled_actor::consume(mailbox_element& x) {
  using fn = invoke_message_result (*)(scheduled_actor*, mailbox_element&);
  static auto real = next_definition<fn>("_ZN3caf15scheduled_actor7consumeERNS_15mailbox_elementE");
  __tsan_acquire(this);
  auto result = real(this, x);
  __tsan_release(this);
  return result;
}

resumable::resume_result scheduled_actor::resume(execution_unit* eu, size_t max_throughput) {
  using fn = resumable::resume_result (*)(scheduled_actor*, execution_unit*, size_t);
  static auto real = next_definition<fn>("_ZN3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
  __tsan_acquire(this);
  auto result = real(this, eu, max_throughput);
  __tsan_release(this);
  return result;
}

} // namespace caf

// Schedulers resume an actor through its `resumable` base: the library's
// thunk for that jumps straight to its own resume, so the thunk is wrapped too.
extern "C" caf::resumable::resume_result resume_through_resumable(caf::resumable* r, caf::execution_unit* eu,
                                                                    size_t max_throughput)
  __asm__("_ZThn160_N3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
extern "C" caf::resumable::resume_result resume_through_resumable(caf::resumable* r, caf::execution_unit* eu,
                                                                    size_t max_throughput) {
  return static_cast<caf::scheduled_actor*>(r)->caf::scheduled_actor::resume(eu, max_throughput);
}

namespace caf {

// An actor that quits drops the messages still in its mailbox here, without
// consuming them: it takes them as consume() would.
bool scheduled_actor::cleanup(error&& fail_state, execution_unit* host) {
  using fn = bool (*)(scheduled_actor*, error&&, execution_unit*);
  static auto real = next_definition<fn>("_ZN3caf15scheduled_actor7cleanupEONS_5errorEPNS_14execution_unitE");
  __tsan_acquire(this);
  return real(this, std::move(fail_state), host);
}

// The last weak reference (an attachable's, an actor_addr's) frees the
// actor's storage: it must see everything done before the strong ones went.
void intrusive_ptr_release_weak(actor_control_block* x) {
  using fn = void (*)(actor_control_block*);
  static auto real = next_definition<fn>("_ZN3caf26intrusive_ptr_release_weakEPNS_19actor_control_blockE");
  __tsan_release(x);
  __tsan_acquire(x);
  real(x);
}

void intrusive_ptr_release(actor_control_block* x) {
  using fn = void (*)(actor_control_block*);
  static auto real = next_definition<fn>("_ZN3caf21intrusive_ptr_releaseEPNS_19actor_control_blockE");
  __tsan_release(x);
  __tsan_acquire(x);
  real(x);
}

void ref_counted::deref() const noexcept {
  using fn = void (*)(const ref_counted*);
  static auto real = next_definition<fn>("_ZNK3caf11ref_counted5derefEv");
  __tsan_release(const_cast<ref_counted*>(this));
  __tsan_acquire(const_cast<ref_counted*>(this));
  real(this);
}

} // namespace caf
