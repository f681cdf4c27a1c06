// The journal actor: group commit over the event store.
//
// Appends are collected in `pending`; the first append after a write sends
// the actor a `flush` message, which lands behind every append already in
// the mailbox. So one synced write takes everything that arrived while the
// previous write was on disk: the busier the journal, the larger its batches.
//
// Three threads share the work, one stage each, so that they overlap:
// - the journal itself takes appends in, checks their form, and answers
//   them (CAF messaging);
// - the writer chains, hashes, encodes and writes a batch into RocksDB
//   (visible, not yet durable), one batch at a time: what arrives meanwhile
//   waits in `pending` and becomes the next batch;
// - the syncer fsyncs the write-ahead log: one sync covers every batch
//   written before it started.
//
// Storage failures (disk full, I/O errors). RocksDB, once a write fails,
// refuses every write until DB::Resume() succeeds; the journal then refuses
// appends at once (errc::no_space / io_error, 503 at the HTTP front) without
// touching the store, reports the episode once through opts.log, and tries
// resume() on a timer (a delayed `flush` to itself, backing off from
// resume_first to resume_max). When resume succeeds (it flushes RocksDB's
// memtable into a table file, so it needs free space) writes are accepted
// again, without a restart.
//
// The rule for answers, so that the log never holds a refused write:
// - a batch RocksDB refused (its Write failed) is answered as failed, and
//   none of it is stored (a WriteBatch is atomic; RocksDB inserts nothing
//   into its memtable when the WAL write fails);
// - a batch RocksDB accepted is in its memtable and will be in the log: such
//   a batch is never answered as failed because its WAL sync failed, or was
//   not done because a later write failed. Its answers are held until the
//   resume (whose flush writes the memtable into a synced table file) and a
//   sync succeed, and then answered as durable. Only on shutdown with the
//   store still failing is it answered as failed, saying it may or may not be
//   stored (RocksDB decides at the next open).
// So a 2xx is in the log, and a write the journal answered as failed is not.
// A caller that gave up waiting (the HTTP deadline) may see its write in the
// log later; a retry with the same Idempotency-Key gets the first answer.

#include "backline/journal.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>

#include <sys/statvfs.h>

#include "actors/thread_name.hpp"

namespace backline {
namespace {

// The syncer fsyncs the write-ahead log on its own thread, so the journal can
// write the next batch into RocksDB while the previous one is reaching the
// disk. One sync covers every batch written before it started.
using syncer_actor = caf::typed_actor<caf::replies_to<atoms::flush>::with<reply_status>>;

syncer_actor::behavior_type syncer_behavior(syncer_actor::pointer self, std::shared_ptr<event_store> store) {
  name_detached_thread(self, "journal.sync");
  return {[store](atoms::flush) { return reply_status::from(store->sync()); }};
}

// A batch on its way through the writer: the requests out, their results back.
struct write_job {
  std::vector<append_request> requests;
  std::vector<result<append_result>> results;
};

} // namespace
} // namespace backline

// Only ever sent between the journal and its writer, in one process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(backline::write_job)

namespace backline {
namespace {

using writer_actor = caf::typed_actor<caf::replies_to<atoms::append, write_job>::with<write_job>>;

writer_actor::behavior_type writer_behavior(writer_actor::pointer self, std::shared_ptr<event_store> store) {
  name_detached_thread(self, "journal.write");
  return {[store](atoms::append, write_job& job) {
    // The journal validated each request as it came in.
    job.results = store->append_batch(std::move(job.requests), event_store::durability::deferred,
                                      event_store::checks::validated_by_caller);
    job.requests.clear();
    return std::move(job);
  }};
}

struct pending_append {
  append_request request;
  caf::typed_response_promise<append_reply> promise;
};

// A batch written to RocksDB whose answers wait for the sync that makes it durable.
struct written_batch {
  uint64_t id = 0;
  std::vector<caf::typed_response_promise<append_reply>> promises;
  std::vector<size_t> event_counts;  // per request
  std::vector<result<append_result>> results;
  std::chrono::steady_clock::time_point started;
};

struct journal_state {
  journal_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "journal";
  std::shared_ptr<event_store> store;
  journal_options opts;
  syncer_actor syncer;
  writer_actor writer;
  std::vector<pending_append> pending;
  bool flush_scheduled = false;
  std::optional<written_batch> writing;  // the batch at the writer, if any
  std::optional<caf::error> stopping;    // the exit reason, while the batch at the writer finishes
  std::deque<written_batch> unsynced;
  uint64_t next_batch_id = 1;
  bool sync_in_flight = false;
  reply_status last_write;  // ok, or the error of the last failed batch
  journal_stats stats;
  // A storage failure episode: the failure, writes refused until resumed.
  std::optional<reply_status> down;
  std::chrono::steady_clock::time_point down_since;
  std::chrono::milliseconds resume_delay{0};
  bool resume_timer = false;  // a delayed flush is on its way
  bool write_after_sync = false;  // a write waits for the sync under way (low on space)
  uint64_t refused_while_down = 0;
  // Until then the disk had room to spare (see low_on_space).
  std::chrono::steady_clock::time_point roomy_until;
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

// Failures after which RocksDB refuses writes until resumed (and which may
// pass: space freed, a device back).
bool needs_resume(errc code) { return code == errc::io_error || code == errc::no_space; }

void report(journal_pointer self, const std::string& line) {
  if (self->state.opts.log)
    self->state.opts.log(line);
}

// What a caller hears while writes are refused.
reply_status refusal(const reply_status& failure) {
  if (failure.code == errc::no_space)
    return {errc::no_space, "writes are refused until space is freed on the disk of the event log ("
                              + failure.message + ")"};
  return {failure.code, "the event log cannot be written; writes are refused until the store recovers ("
                          + failure.message + ")"};
}

void arm_resume_timer(journal_pointer self) {
  auto& st = self->state;
  if (st.resume_timer)
    return;
  st.resume_timer = true;
  self->delayed_send(self, st.resume_delay, atoms::flush::value);
}

// Starts a storage failure episode (once: later failures of the same episode
// say nothing more).
void enter_down(journal_pointer self, const reply_status& failure) {
  auto& st = self->state;
  if (st.down)
    return;
  st.down = refusal(failure);
  st.down_since = std::chrono::steady_clock::now();
  st.resume_delay = st.opts.resume_first;
  st.refused_while_down = 0;
  st.last_write = *st.down;
  const auto& dir = st.store->directory();
  if (failure.code == errc::no_space)
    report(self, "journal: disk full at " + dir + ": writes refused until space is freed (" + failure.message + ")");
  else
    report(self, "journal: the event log at " + dir + " failed: writes refused until it recovers ("
                   + failure.message + ")");
  arm_resume_timer(self);
}

void sync_written(journal_pointer self);

constexpr uint64_t min_free_to_resume = 1u << 20;

uint64_t free_bytes(const journal_state& st) {
  struct statvfs fs {};
  if (::statvfs(st.store->directory().c_str(), &fs) != 0)
    return 0;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// Tries to end a storage failure episode: resume the store, then sync.
void try_resume(journal_pointer self) {
  auto& st = self->state;
  if (st.writing) {  // never resume under a write: the batch's answer comes first
    arm_resume_timer(self);
    return;
  }
  auto resumed = st.store->resume();
  if (resumed)
    resumed = st.store->sync();
  // RocksDB resumes at once when it has nothing to flush, even on a full
  // disk: writes are accepted again only once there is room for them, so an
  // episode ends when space was freed, not at the next refused write.
  if (!resumed || free_bytes(st) < min_free_to_resume) {
    st.resume_delay = std::min(st.resume_delay * 2, st.opts.resume_max);
    arm_resume_timer(self);
    return;
  }
  auto seconds = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                                      - st.down_since).count() / 1000.0;
  char took[32];
  std::snprintf(took, sizeof took, "%.1f", seconds);
  report(self, "journal: the event log at " + st.store->directory() + " is writable again after " + took
                 + " s; " + std::to_string(st.refused_while_down) + " writes were refused meanwhile");
  st.down.reset();
  st.last_write = {};
  sync_written(self);  // answers batches held since a failed sync
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
  if (!self->state.down)
    self->state.last_write = storage_failed ? reply_status{errc::io_error, "the last journal write failed"}
                                            : reply_status{};
}

// Answers every collected append with the refusal of a storage episode.
void refuse_pending(journal_pointer self) {
  auto& st = self->state;
  for (auto& p : st.pending) {
    st.stats.requests += 1;
    st.stats.failed_requests += 1;
    st.refused_while_down += 1;
    p.promise.deliver(append_reply{*st.down, {}});
  }
  st.pending.clear();
}

// Below this much free space on the log's disk, the journal does not write
// while a sync is under way: a write failing for want of space must not race
// with a sync of the same write-ahead log file (RocksDB's writer, once a
// write to it failed, must not be synced).
constexpr uint64_t careful_below_free_bytes = 256u << 20;

// With four times that free, the answer holds for a while: the journal
// cannot write 768 MiB in 50 ms, and a statvfs per batch was a tenth of the
// journal thread's time at 64 connections. Nearer the line, every time.
constexpr uint64_t roomy_free_bytes = 4 * careful_below_free_bytes;
constexpr auto roomy_recheck = std::chrono::milliseconds(50);

bool low_on_space(journal_state& st) {
  const auto now = std::chrono::steady_clock::now();
  if (now < st.roomy_until)
    return false;
  const auto free = free_bytes(st);
  if (free >= roomy_free_bytes)
    st.roomy_until = now + roomy_recheck;
  return free < careful_below_free_bytes;
}

void batch_written(journal_pointer self, written_batch batch);
void finish_exit(journal_pointer self);

// Hands what was collected to the writer (visible once written, not yet
// durable). One batch at a time: what arrives meanwhile makes the next one
// larger. (Two at the writer, or preparing the next batch here while the
// writer writes one, measured no faster with journal_bench and gave smaller
// batches.) `now` (shutdown, the writer idle): writes everything on this
// thread.

void flush_pending(journal_pointer self, bool now = false) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.down) {
    refuse_pending(self);
    return;
  }
  if (st.pending.empty() || (!now && st.writing))
    return;
  if (!now && st.sync_in_flight && low_on_space(st)) {
    st.write_after_sync = true;  // the sync's answer writes them
    return;
  }
  written_batch batch;
  batch.id = st.next_batch_id++;
  batch.started = std::chrono::steady_clock::now();
  // At most max_batch_requests go at once (all of them at shutdown); the
  // rest are the next batch.
  const size_t take = now ? st.pending.size() : std::min(st.pending.size(), st.opts.max_batch_requests);
  std::vector<append_request> requests;
  requests.reserve(take);
  batch.promises.reserve(take);
  batch.event_counts.reserve(take);
  for (size_t i = 0; i < take; ++i) {
    auto& p = st.pending[i];
    batch.event_counts.push_back(p.request.events.size());
    requests.push_back(std::move(p.request));
    batch.promises.push_back(std::move(p.promise));
  }
  st.pending.erase(st.pending.begin(), st.pending.begin() + static_cast<std::ptrdiff_t>(take));
  if (now) {
    batch.results = st.store->append_batch(std::move(requests), event_store::durability::deferred,
                                           event_store::checks::validated_by_caller);
    batch_written(self, std::move(batch));
    return;
  }
  st.writing = std::move(batch);
  write_job job;
  job.requests = std::move(requests);
  self->request(st.writer, caf::infinite, atoms::append::value, std::move(job))
    .then([self](write_job& done) {
      auto& st = self->state;
      auto written = std::move(*st.writing);
      st.writing.reset();
      written.results = std::move(done.results);
      batch_written(self, std::move(written));
      if (st.stopping) {
        finish_exit(self);
        return;
      }
      if (!st.pending.empty() && !st.flush_scheduled)
        flush_pending(self);  // what arrived while the writer was busy
    });
}

// A batch is written (or refused): what was stored waits for a sync, what
// was refused is answered now.
void batch_written(journal_pointer self, written_batch batch) {
  auto& st = self->state;
  auto& s = st.stats;
  s.batches += 1;
  s.requests += batch.promises.size();
  for (size_t i = 0; i < batch.results.size(); ++i)
    if (batch.results[i] && !batch.results[i]->duplicate)
      s.events += batch.event_counts[i];
  s.largest_batch = std::max<uint64_t>(s.largest_batch, batch.promises.size());
  s.batch_size_buckets[bucket_of(batch.promises.size(), {1, 4, 16, 64, 256})] += 1;
  // A storage failure of the write itself: nothing of the batch is stored
  // (its answers are those failures), and writes stop until resumed.
  for (const auto& r : batch.results)
    if (!r && needs_resume(r.error().code())) {
      enter_down(self, reply_status::from(r.error()));
      break;
    }
  if (std::none_of(batch.results.begin(), batch.results.end(), [](const auto& r) { return r.is_ok(); })) {
    // Nothing of it was stored: its failures need no sync to be told.
    answer_batch(self, batch, reply_status{});
    return;
  }
  st.unsynced.push_back(std::move(batch));
  sync_written(self);
}

// Starts a sync of everything written so far, unless one is under way (its
// answer starts the next).
void sync_written(journal_pointer self) {
  auto& st = self->state;
  // While the store is down nothing is synced: RocksDB's write-ahead log
  // writer must not be touched after a failed write until resume() has
  // replaced it (an assertion in RocksDB's own checks otherwise).
  if (st.sync_in_flight || st.unsynced.empty() || st.down)
    return;
  if (st.writing && low_on_space(st)) {
    // Low on space a write and a sync never overlap (see low_on_space): the
    // write's answer starts this sync.
    return;
  }
  st.sync_in_flight = true;
  st.stats.syncs += 1;
  uint64_t upto = st.unsynced.back().id;
  self->request(st.syncer, caf::infinite, atoms::flush::value)
    .then([self, upto](const reply_status& result) {
      auto& st = self->state;
      if (!result.ok() && needs_resume(result.code)) {
        // What RocksDB accepted stays in its memtable: hold the answers
        // until a sync or the resume makes it durable (see the top).
        st.sync_in_flight = false;
        st.write_after_sync = false;
        enter_down(self, result);
        refuse_pending(self);
        return;
      }
      while (!st.unsynced.empty() && st.unsynced.front().id <= upto) {
        answer_batch(self, st.unsynced.front(), result);
        st.unsynced.pop_front();
      }
      st.sync_in_flight = false;
      if (st.write_after_sync) {
        st.write_after_sync = false;
        flush_pending(self);  // syncs what it writes
      }
      sync_written(self);
    });
}

// Shutdown: writes and syncs what is left on this thread, answers every
// caller, and quits.
void finish_exit(journal_pointer self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.down && st.store->resume()) {
    st.down.reset();
    st.last_write = {};
  }
  if (!st.pending.empty())
    flush_pending(self, true);
  // Down: what RocksDB accepted cannot be synced now (see sync_written);
  // whether it survives is decided when the log is next opened.
  auto synced = st.down ? reply_status{st.down->code, "the event log failed before this write was durable; "
                                                      "it may or may not be stored ("
                                                        + st.down->message + ")"}
                        : reply_status::from(st.store->sync());
  for (auto& batch : st.unsynced)
    answer_batch(self, batch, synced);
  st.unsynced.clear();
  self->quit(*st.stopping);
}

journal_actor::behavior_type journal_behavior(journal_pointer self,
                                              std::shared_ptr<event_store> store,
                                              journal_options opts) {
  name_detached_thread(self, "journal");
  self->state.store = std::move(store);
  self->state.opts = opts;
  self->state.stats.batch_size_buckets.assign(6, 0);
  self->state.stats.write_micros_buckets.assign(7, 0);
  self->state.syncer = opts.detached ? self->spawn<caf::detached + caf::linked>(syncer_behavior, self->state.store)
                                      : self->spawn<caf::linked>(syncer_behavior, self->state.store);
  self->state.writer = opts.detached ? self->spawn<caf::detached + caf::linked>(writer_behavior, self->state.store)
                                      : self->spawn<caf::linked>(writer_behavior, self->state.store);
  // On shutdown, everything collected is written and synced, and answered,
  // once the batch at the writer (if any) is back.
  self->set_exit_handler([self](const caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.stopping)
      return;
    st.stopping = msg.reason;
    if (!st.writing)
      finish_exit(self);
  });
  return {
    [self](atoms::append, append_request& req) -> caf::result<append_reply> {
      auto& st = self->state;
      if (st.down) {
        // A storage failure episode: refused at once, nothing is written.
        st.stats.requests += 1;
        st.stats.failed_requests += 1;
        st.refused_while_down += 1;
        return append_reply{*st.down, {}};
      }
      // A request of the wrong form is refused at once (the writer does not
      // check again): the checks need no state, and here they run beside
      // the writer instead of on its thread.
      if (auto valid = event_store::validate(req); !valid) {
        st.stats.requests += 1;
        st.stats.failed_requests += 1;
        return append_reply{reply_status::from(valid), {}};
      }
      // A bounded queue: when the disk falls behind, callers hear "busy"
      // at once instead of waiting without bound.
      size_t waiting = st.pending.size();
      if (st.writing)
        waiting += st.writing->promises.size();
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
    [self](atoms::flush) {
      auto& st = self->state;
      // While down, appends are refused without scheduling a flush: a flush
      // then is the resume timer's (or the one an append scheduled before
      // the failure, which flush_scheduled still marks).
      if (st.down && !st.flush_scheduled) {
        st.resume_timer = false;
        try_resume(self);
      }
      flush_pending(self);
    },
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
