#pragma once
// The journal: the one writer of the event store. It collects appends from
// many actors and writes them as one synced RocksDB batch (group commit),
// then answers each caller; an append is never answered before it is durable.
//
// Spawn it detached in a server (its writes block): journal::spawn(sys, store).
// Tests on the deterministic scheduler spawn it scheduled: journal::spawn(sys,
// store, {.detached = false}).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <optional>

#include "backline/messages.hpp"

namespace backline {

using journal_actor = caf::typed_actor<
  // Append events to one stream; answered once durable (or failed).
  caf::replies_to<atoms::append, append_request>::with<append_reply>,
  // Read a stream from a seq (max count; 0 = all).
  caf::replies_to<atoms::read_strm, std::string, uint64_t, uint64_t>::with<read_reply>,
  // Read the global log from a position (max count; 0 = all).
  caf::replies_to<atoms::read_all, uint64_t, uint64_t>::with<read_reply>,
  // Look up an idempotency record: (status, found, stored answer).
  caf::replies_to<atoms::idem_get, std::string>::with<reply_status, bool, std::string>,
  caf::replies_to<atoms::snap_put, std::string, snapshot>::with<reply_status>,
  caf::replies_to<atoms::snap_get, std::string>::with<reply_status, bool, snapshot>,
  caf::replies_to<atoms::stats>::with<journal_stats>,
  // Whether the log is writable now: after a storage failure (disk full, I/O
  // error) it is that failure until the store has been resumed.
  caf::replies_to<atoms::health>::with<reply_status>,
  // Internal: write what has been collected; after a storage failure, try
  // to resume the store first (the retry timer sends it too).
  caf::reacts_to<atoms::flush>>;

struct journal_options {
  bool detached = true;          // run on its own thread (blocking writes)
  size_t max_batch_requests = 1024;  // flush at once when this many are waiting
  size_t max_waiting_requests = 65536;  // more than this collected or unsynced: answer busy (503)
  // After a storage failure (disk full, I/O error) the journal refuses writes
  // and tries to resume the store on a timer: first after resume_first, then
  // doubling up to resume_max.
  std::chrono::milliseconds resume_first{100};
  std::chrono::milliseconds resume_max{2000};
  // Where the journal reports storage episodes (one line when writes stop,
  // one when they resume); nothing when empty.
  std::function<void(const std::string&)> log = {};
};

namespace journal {

journal_actor spawn(caf::actor_system& sys, std::shared_ptr<event_store> store,
                    journal_options opts = {});

} // namespace journal
} // namespace backline
