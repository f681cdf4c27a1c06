#pragma once
// The directory view: what the directory starts from (the chat index, where
// threads live in Slack, which threads still owe Slack a message), kept in
// the event store beside the log (event_store::put_view) and advanced from
// the log, so that start-up reads one small entry per chat and per thread and
// replays only the log after the position the view covers, instead of every
// event ever written.
//
// Why it is crash-safe: each entry is a function of one stream as a whole (a
// chat's, a thread's), read at some moment after the view's position was
// reached. An entry may be newer than the position, never older. Advancing
// the view re-derives every chat and thread the log touched after the
// position (reading those streams whole), then records the new position. So
// a view that was written only in part, or lost, or left behind by a crash is
// merely older, and the next advance makes it whole again; the log decides.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backline/inbox.hpp"

namespace backline {

/// One chat: what the directory's index holds, and its threads in order.
struct chat_view_entry {
  std::string id;         // from chat_created
  bool resolved = false;
  std::string agent_id;
  std::string json;       // chat_json, serialized
  std::vector<std::string> thread_ids;
  bool operator==(const chat_view_entry&) const = default;
};

/// One thread: where it lives in Slack, and whether it owes Slack a message.
struct thread_view_entry {
  std::string id;          // from thread_created
  std::string channel_id;
  std::string slack_ts;    // "" until its first message is in Slack
  bool done = false;
  bool pending = false;    // messages for Slack not yet delivered
  bool operator==(const thread_view_entry&) const = default;
};

struct directory_view {
  uint64_t position = 0;                            // the global log up to here is in it
  std::map<std::string, chat_view_entry> chats;     // by stream name ("chat-…"), in key order
  std::map<std::string, thread_view_entry> threads; // by stream name ("thread-…")
};

/// What the log changed after a view's position: the new entries of the
/// streams it touched.
struct directory_view_change {
  uint64_t position = 0;  // what the view covers once the change is applied
  std::map<std::string, std::optional<chat_view_entry>> chats;  // nullopt: no such chat (no chat_created)
  std::map<std::string, thread_view_entry> threads;
};

namespace inbox {

/// The name of the directory view in the event store (its format's version in it).
inline constexpr const char* directory_view_name = "directory.1";

// -- pure --------------------------------------------------------------------

/// A chat stream's entry (nullopt: the stream has no chat_created).
std::optional<chat_view_entry> chat_view_entry_of(const std::vector<event_record>& chat_events);
/// A thread stream's entry.
thread_view_entry thread_view_entry_of(const std::vector<event_record>& thread_events);

/// A thread's entry folded event by event, as thread_view_entry_of derives
/// it from the whole stream, keeping only what the entry needs: which of its
/// messages still owe Slack. The keeper carries a fold on from the events it
/// has not seen instead of reading the thread's whole stream again.
struct thread_view_fold {
  thread_view_entry entry;
  std::unordered_set<std::string> pending;  // ids of messages for Slack neither delivered nor failed
  uint64_t seq = 0;                         // the last event of the stream applied
};
void apply_thread_view_event(thread_view_fold& fold, const event_record& e);

/// Folds the keeper carries between advances, by thread stream (bounded:
/// cleared when it holds max_threads, then rebuilt from whole streams).
struct thread_view_folds {
  size_t max_threads = 100000;
  std::unordered_map<std::string, thread_view_fold> by_stream;
};
/// The view advanced by a change: the touched entries replaced, the position moved.
void apply_view_change(directory_view& view, directory_view_change change);
/// What the directory starts from, as load_directory_index derives it from
/// the whole log: chats in stream order, each chat's threads in its order.
directory_index index_of_view(const directory_view& view);

std::string encode_view_entry(const chat_view_entry& e);
std::string encode_view_entry(const thread_view_entry& e);
/// errc::corrupt when the bytes are not an entry.
result<chat_view_entry> decode_chat_view_entry(std::string_view bytes);
result<thread_view_entry> decode_thread_view_entry(std::string_view bytes);

// -- on the store --------------------------------------------------------------

/// The entries of every chat and thread the log touched after `position`
/// (their streams read whole; a thread in `folds` only from its fold on),
/// up to the log's head.
result<directory_view_change> directory_view_change_since(const event_store& store, uint64_t position,
                                                          thread_view_folds* folds = nullptr);
/// Every chat and thread stream: a view built from nothing, up to the head.
result<directory_view_change> full_directory_view_change(const event_store& store);
/// The stored view (nullopt: none was ever completed).
result<std::optional<directory_view>> read_directory_view(const event_store& store);
/// Stores a change: the entries in pieces, then (with the last piece) the position.
status write_directory_view_change(event_store& store, const directory_view_change& change);

/// How a start-up went (for the log line).
struct directory_view_report {
  bool had_view = false;      // false: built from the whole log (an old data directory, or a damaged view)
  std::string note;           // why the stored view was not used, when it was not
  uint64_t from = 0, to = 0;  // the log replayed: positions (from, to]
  size_t chats = 0, threads = 0;  // entries re-derived
};

/// What the directory starts from, through the stored view: read it, replay
/// the log after its position, store the advanced view, derive the index.
/// Without a usable view: built from the whole log, then stored. Equal to
/// load_directory_index(store) in every case.
result<directory_index> load_directory_index_with_view(event_store& store, directory_view_report* report = nullptr);
/// What a start would load through the stored view, without storing
/// anything (for `backline audit rebuild`): nullopt when there is no view;
/// errc::corrupt when it does not decode.
result<std::optional<directory_index>> directory_index_through_view(const event_store& store);
/// Advances the stored view to the log's head (a no-op when it is there).
/// Returns the position it covers now.
result<uint64_t> advance_directory_view(event_store& store);

/// When the view keeper advances the stored view while the server runs, so
/// that a crash leaves a bounded tail of the log to replay at the next start.
struct view_keeper_options {
  std::chrono::milliseconds tick{1000};    // how often it looks at the log's head
  uint64_t max_events = 100000;            // advance once this many events are not in the view…
  std::chrono::milliseconds max_age{10000};// …or once any are and this long has passed
  std::function<void(const std::string&)> log = {};  // where failures go (one line each)
};

using view_keeper_actor = caf::typed_actor<caf::reacts_to<atoms::tick>>;

/// A detached actor (it blocks on the store) that keeps the stored view
/// close behind the log. Stop it before the final advance_directory_view at
/// shutdown: the view has one writer at a time.
view_keeper_actor spawn_view_keeper(caf::actor_system& sys, std::shared_ptr<event_store> store,
                                    view_keeper_options opts = {});

} // namespace inbox
} // namespace backline
