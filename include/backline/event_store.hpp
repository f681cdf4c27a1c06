#pragma once
// The event store: backline's append-only log on RocksDB.
//
// Streams (one per aggregate: chat-<id>, thread-<id>, channel-<id>, user-<id>)
// hold events numbered 1, 2, 3… by a per-stream sequence; every event also has
// a position in the global log and a SHA-256 hash chained to the event before
// it, so an auditor can prove the log was not altered. Only this interface
// and persistence/ know that RocksDB is underneath.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backline/status.hpp"

namespace backline {

/// An event as stored: what happened, where, when, by whom, and its hash.
struct event_record {
  uint64_t position = 0;   // 1-based place in the global log
  std::string stream;      // e.g. "thread-42"
  uint64_t seq = 0;        // 1-based place in its stream
  std::string type;        // e.g. "thread_opened"
  std::string time;        // RFC 3339 UTC with milliseconds
  std::string actor;       // who did it: a user id, "slack:U123", "system"
  std::string payload;     // JSON text, kept byte for byte (it is hashed)
  std::string prev_hash;   // hex SHA-256 of the previous event ("" for the first)
  std::string hash;        // hex SHA-256 of this event, see event_hash()
};

/// An event to append; the store assigns position, seq, time and hashes.
struct new_event {
  std::string type;
  std::string actor;
  std::string payload;     // JSON text
  std::string time = {};   // empty: the store stamps the current time
};

/// What the appender believes about the stream's head.
struct expected_version {
  enum class kind : uint8_t { any, no_stream, exact };
  kind what = kind::any;
  uint64_t version = 0;    // for kind::exact: the head seq the stream must have

  static expected_version any() { return {kind::any, 0}; }
  static expected_version no_stream() { return {kind::no_stream, 0}; }
  static expected_version exact(uint64_t v) { return {kind::exact, v}; }
};

/// One append: events for one stream, written atomically, optionally under an
/// idempotency key whose stored answer is written in the same batch.
struct append_request {
  std::string stream;
  expected_version expected = expected_version::any();
  std::vector<new_event> events;
  std::string idempotency_key = {};     // empty: not idempotent
  std::string idempotency_result = {};  // what a repeat of the key answers
};

/// For a duplicate only `duplicate` and `stored_result` are set (the
/// positions of the first call are not kept).
struct append_result {
  uint64_t first_position = 0;  // position of the first appended event
  uint64_t last_seq = 0;        // the stream's head after the append
  bool duplicate = false;       // the idempotency key was already recorded
  std::string stored_result;    // for a duplicate: the first call's answer
};

struct log_head {
  uint64_t position = 0;  // last global position (0: empty log)
  std::string hash;       // hash of that event ("" for an empty log)
};

struct snapshot {
  uint64_t version = 0;   // the stream seq the snapshot includes
  std::string data;       // opaque to the store
};

/// Every field says its default.
struct store_options {
  bool read_only = false;          // open without writing a byte (audit tools)
  std::string secondary_dir = {};  // with read_only: open as a RocksDB secondary instance whose
                                   // own files (its info log) go here, not into the store, so
                                   // it reads safely while a server writes and compacts the
                                   // store; it sees the store as it was when opened
  bool create_if_missing = true;   // ignored when read_only
  bool sync = true;                // fsync each batch before acknowledging
  size_t block_cache_mb = 64;      // RocksDB block cache
};

/// The hash of an event: hex SHA-256 over its fields, each as
/// "<byte length>:<bytes>", in the order prev_hash, position, stream, seq,
/// type, time, actor, payload. Simple enough to recompute in any language.
std::string event_hash(const event_record& e);

/// The event as one JSON object (the stored and exported form).
std::string encode_event(const event_record& e);
/// Parses encode_event's output; errc::corrupt when it is not one.
result<event_record> decode_event(std::string_view bytes);

class event_store {
public:
  static result<std::unique_ptr<event_store>> open(const std::string& dir,
                                                   const store_options& opts = {});
  ~event_store();
  event_store(const event_store&) = delete;
  event_store& operator=(const event_store&) = delete;

  /// How an append_batch reaches the disk.
  enum class durability : uint8_t {
    per_options,  // synced when store_options::sync is set
    deferred,     // written (visible) but not yet synced: the caller must
                  // call sync() and succeed before acknowledging anything
  };

  /// Whether append_batch checks each request's form (stream name, UTF-8,
  /// JSON payloads) itself, or the caller already did with validate().
  enum class checks : uint8_t { all, validated_by_caller };

  /// The checks of a request's form that need no state: the same error
  /// append_batch would give it. Callers may run them on another thread.
  static status validate(const append_request& req);

  /// Appends every request in one synced write (group commit). Each request
  /// succeeds or fails on its own; a failed request writes nothing. Storage
  /// failures fail every request of the batch.
  std::vector<result<append_result>> append_batch(std::vector<append_request> batch,
                                                  durability mode = durability::per_options,
                                                  checks check = checks::all);
  /// Makes every write so far durable (fsyncs the write-ahead log; nothing
  /// when store_options::sync is off). After a failure nothing written since
  /// the last successful sync is known durable.
  status sync();
  /// One request, one write.
  result<append_result> append(append_request req);

  /// Events of a stream with seq >= from_seq, at most max_count of them.
  result<std::vector<event_record>> read_stream(const std::string& stream,
                                                uint64_t from_seq = 1,
                                                size_t max_count = SIZE_MAX) const;
  /// Events of the global log with position >= from_position.
  result<std::vector<event_record>> read_all(uint64_t from_position = 1,
                                             size_t max_count = SIZE_MAX) const;
  /// The head seq of a stream (0: no such stream).
  result<uint64_t> stream_version(const std::string& stream) const;
  log_head head() const;

  /// The stored answer of an idempotent command, if the key was recorded.
  result<std::optional<std::string>> find_idempotent(const std::string& key) const;

  status put_snapshot(const std::string& stream, const snapshot& snap);
  result<std::optional<snapshot>> get_snapshot(const std::string& stream) const;

  /// Views: data derived from the log and kept beside it (the directory's
  /// index, so that start-up need not replay the whole log), each a set of
  /// keyed entries and the global position it covers. Opaque to the store,
  /// never part of the log: the audit ignores them, and a view can always be
  /// rebuilt from the log. A view name is 1 to 200 bytes without '|'.
  struct view_write {
    std::string key;                   // non-empty
    std::optional<std::string> value;  // nullopt: erase the entry
  };
  /// Writes the changes, and with a position the position the view now
  /// covers, in one atomic write (not synced: a view lost in a crash is
  /// rebuilt from an older one and the log).
  status put_view(const std::string& view, const std::vector<view_write>& changes,
                  std::optional<uint64_t> position);
  /// The position the view covers (nullopt: it never recorded one).
  result<std::optional<uint64_t>> view_position(const std::string& view) const;
  /// Visits every entry of the view in key order, all from one consistent
  /// state of the store; returns the position recorded in that same state.
  result<std::optional<uint64_t>> read_view(const std::string& view,
                                            const std::function<void(std::string_view key,
                                                                     std::string_view value)>& visit) const;
  /// Erases the view, its entries and its position.
  status drop_view(const std::string& view);

  /// Writes RocksDB's memtables into table files, so that the next open has
  /// no write-ahead log to replay (called at clean shutdown).
  status flush();

  /// Streams whose name starts with prefix ("chat-"), in key order.
  result<std::vector<std::string>> list_streams(const std::string& prefix) const;

  /// Tries to leave RocksDB's background error state after a failed write
  /// (e.g. once space was freed): RocksDB refuses every write until this
  /// succeeds. It flushes the memtable to a table file, so everything RocksDB
  /// had accepted is durable when it returns ok.
  status resume();
  /// The directory the store was opened at (for messages).
  const std::string& directory() const;

  /// Undecoded access to stored keys and values, for the integrity checks in
  /// persistence/ (which alone know the key layout, persistence/keys.hpp).
  class raw_cursor {
  public:
    virtual ~raw_cursor() = default;
    /// Moves to the first key >= key (within the cursor's range).
    virtual void seek(std::string_view key) = 0;
    /// Moves to the last key <= key (within the cursor's range).
    virtual void seek_for_prev(std::string_view key) = 0;
    virtual void next() = 0;
    virtual bool valid() const = 0;
    virtual std::string_view key() const = 0;    // while valid()
    virtual std::string_view value() const = 0;  // while valid()
    /// Once !valid(): ok at the end of the range, else the storage error.
    virtual status error() const = 0;
  };
  /// A cursor over the keys in [lower, upper), positioned nowhere until a seek.
  std::unique_ptr<raw_cursor> open_raw_cursor(std::string lower, std::string upper) const;
  /// Point lookups of many keys at once (sorted keys read fastest): each
  /// value, or nullopt when the key is absent.
  status get_raw_many(const std::vector<std::string>& keys, std::vector<std::optional<std::string>>& values) const;

  struct impl;

private:
  explicit event_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace backline
