// The journal actor: group commit over the event store.
//
// Appends are collected in `pending`; the first append after a write sends
// the actor a `flush` message, which lands behind every append already in
// the mailbox. So one synced write takes everything that arrived while the
// previous write was on disk: the busier the journal, the larger its batches.

#include "backline/journal.hpp"

#include <chrono>
#include <deque>

namespace backline {
namespace {

// The syncer fsyncs the write-ahead log on its own thread, so the journal can
// write the next batch into RocksDB while the previous one is reaching the
// disk. One sync covers every batch written before it started.
using syncer_actor = caf::typed_actor<caf::replies_to<atoms::flush>::with<reply_status>>;

syncer_actor::behavior_type syncer_behavior(syncer_actor::pointer, std::shared_ptr<event_store> store) {
  return {[store](atoms::flush) { return reply_status::from(store->sync()); }};
}

struct pending_append {
  append_request request;
  caf::typed_response_promise<append_reply> promise;
};

// A batch written to RocksDB whose answers wait for the sync that makes it durable.
struct written_batch {
  uint64_t id = 0;
  std::vector<caf::typed_response_promise<append_reply>> promises;
  std::vector<result<append_result>> results;
  std::chrono::steady_clock::time_point started;
};

struct journal_state {
  journal_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "journal";
  std::shared_ptr<event_store> store;
  journal_options opts;
  syncer_actor syncer;
  std::vector<pending_append> pending;
  bool flush_scheduled = false;
  std::deque<written_batch> unsynced;
  uint64_t next_batch_id = 1;
  bool sync_in_flight = false;
  reply_status last_write;  // ok, or the error of the last failed batch
  journal_stats stats;
};

using journal_pointer = journal_actor::stateful_pointer<journal_state>;

size_t bucket_of(uint64_t value, std::initializer_list<uint64_t> bounds) {
  size_t i = 0;
  for (auto b : bounds) {
    if (value <= b)
      return i;
    ++i;
  }
  return i;
}

bool is_storage_failure(errc code) {
  return code == errc::io_error || code == errc::no_space || code == errc::corrupt;
}

// Answers every caller of a batch now that its fate is known: a failed sync
// turns every success of the batch into that failure.
void answer_batch(journal_pointer self, written_batch& batch, const reply_status& sync_status) {
  auto& s = self->state.stats;
  auto micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now() - batch.started)
                                        .count());
  s.write_micros += micros;
  s.write_micros_buckets[bucket_of(micros, {500, 1000, 2000, 5000, 10000, 50000})] += 1;
  bool storage_failed = !sync_status.ok();
  for (size_t i = 0; i < batch.promises.size(); ++i) {
    auto& r = batch.results[i];
    if (r && sync_status.ok()) {
      batch.promises[i].deliver(append_reply{reply_status{}, std::move(r.value())});
      continue;
    }
    s.failed_requests += 1;
    auto failure = r ? sync_status : reply_status::from(r.error());
    storage_failed = storage_failed || is_storage_failure(failure.code);
    batch.promises[i].deliver(append_reply{failure, {}});
  }
  self->state.last_write = storage_failed ? reply_status{errc::io_error, "the last journal write failed"}
                                          : reply_status{};
}

void sync_written(journal_pointer self);

// Writes what was collected (visible, not yet durable) and asks for a sync.
void flush_pending(journal_pointer self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.pending.empty())
    return;
  written_batch batch;
  batch.id = st.next_batch_id++;
  batch.started = std::chrono::steady_clock::now();
  std::vector<append_request> requests;
  requests.reserve(st.pending.size());
  batch.promises.reserve(st.pending.size());
  std::vector<size_t> event_counts;
  event_counts.reserve(st.pending.size());
  for (auto& p : st.pending) {
    event_counts.push_back(p.request.events.size());
    requests.push_back(std::move(p.request));
    batch.promises.push_back(std::move(p.promise));
  }
  st.pending.clear();
  batch.results = st.store->append_batch(std::move(requests), event_store::durability::deferred);
  auto& s = st.stats;
  s.batches += 1;
  s.requests += batch.promises.size();
  for (size_t i = 0; i < batch.results.size(); ++i)
    if (batch.results[i] && !batch.results[i]->duplicate)
      s.events += event_counts[i];
  s.largest_batch = std::max<uint64_t>(s.largest_batch, batch.promises.size());
  s.batch_size_buckets[bucket_of(batch.promises.size(), {1, 4, 16, 64, 256})] += 1;
  st.unsynced.push_back(std::move(batch));
  sync_written(self);
}

// Starts a sync of everything written so far, unless one is under way (its
// answer starts the next).
void sync_written(journal_pointer self) {
  auto& st = self->state;
  if (st.sync_in_flight || st.unsynced.empty())
    return;
  st.sync_in_flight = true;
  uint64_t upto = st.unsynced.back().id;
  self->request(st.syncer, caf::infinite, atoms::flush::value)
    .then([self, upto](const reply_status& result) {
      auto& st = self->state;
      while (!st.unsynced.empty() && st.unsynced.front().id <= upto) {
        answer_batch(self, st.unsynced.front(), result);
        st.unsynced.pop_front();
      }
      st.sync_in_flight = false;
      sync_written(self);
    });
}

journal_actor::behavior_type journal_behavior(journal_pointer self,
                                              std::shared_ptr<event_store> store,
                                              journal_options opts) {
  self->state.store = std::move(store);
  self->state.opts = opts;
  self->state.stats.batch_size_buckets.assign(6, 0);
  self->state.stats.write_micros_buckets.assign(7, 0);
  self->state.syncer = opts.detached ? self->spawn<caf::detached + caf::linked>(syncer_behavior, self->state.store)
                                      : self->spawn<caf::linked>(syncer_behavior, self->state.store);
  // On shutdown, everything collected is written and synced, and answered.
  self->set_exit_handler([self](const caf::exit_msg& msg) {
    auto& st = self->state;
    st.flush_scheduled = false;
    if (!st.pending.empty()) {
      flush_pending(self);
    }
    auto synced = reply_status::from(st.store->sync());
    for (auto& batch : st.unsynced)
      answer_batch(self, batch, synced);
    st.unsynced.clear();
    self->quit(msg.reason);
  });
  return {
    [self](atoms::append, append_request& req) -> caf::result<append_reply> {
      auto& st = self->state;
      // A bounded queue: when the disk falls behind, callers hear "busy"
      // at once instead of waiting without bound.
      size_t waiting = st.pending.size();
      for (const auto& b : st.unsynced)
        waiting += b.promises.size();
      if (waiting >= st.opts.max_waiting_requests)
        return append_reply{reply_status{errc::busy, "the event log is behind; try again shortly"}, {}};
      auto promise = self->make_response_promise<append_reply>();
      st.pending.push_back(pending_append{std::move(req), promise});
      if (st.pending.size() >= st.opts.max_batch_requests) {
        flush_pending(self);
      } else if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atoms::flush::value);
      }
      return promise;
    },
    [self](atoms::flush) { flush_pending(self); },
    [self](atoms::read_strm, const std::string& stream, uint64_t from,
           uint64_t max) -> read_reply {
      auto r = self->state.store->read_stream(stream, from, max == 0 ? SIZE_MAX : max);
      if (!r)
        return {reply_status::from(r.error()), {}};
      return {reply_status{}, std::move(r.value())};
    },
    [self](atoms::read_all, uint64_t from, uint64_t max) -> read_reply {
      auto r = self->state.store->read_all(from, max == 0 ? SIZE_MAX : max);
      if (!r)
        return {reply_status::from(r.error()), {}};
      return {reply_status{}, std::move(r.value())};
    },
    [self](atoms::idem_get, const std::string& key)
      -> caf::result<reply_status, bool, std::string> {
      auto r = self->state.store->find_idempotent(key);
      if (!r)
        return {reply_status::from(r.error()), false, std::string{}};
      if (!r.value())
        return {reply_status{}, false, std::string{}};
      return {reply_status{}, true, std::move(*r.value())};
    },
    [self](atoms::snap_put, const std::string& stream, const snapshot& snap) {
      return reply_status::from(self->state.store->put_snapshot(stream, snap));
    },
    [self](atoms::snap_get, const std::string& stream)
      -> caf::result<reply_status, bool, snapshot> {
      auto r = self->state.store->get_snapshot(stream);
      if (!r)
        return {reply_status::from(r.error()), false, snapshot{}};
      if (!r.value())
        return {reply_status{}, false, snapshot{}};
      return {reply_status{}, true, std::move(*r.value())};
    },
    [self](atoms::stats) { return self->state.stats; },
    [self](atoms::health) { return self->state.last_write; },
  };
}

} // namespace

namespace journal {

journal_actor spawn(caf::actor_system& sys, std::shared_ptr<event_store> store,
                    journal_options opts) {
  if (opts.detached)
    return sys.spawn<caf::detached>(journal_behavior, std::move(store), opts);
  return sys.spawn(journal_behavior, std::move(store), opts);
}

} // namespace journal
} // namespace backline
