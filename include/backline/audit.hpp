#pragma once
// The audit tools over the event log (`backline audit …` and the admin
// audit routes): verify the hash chain and the indexes, replay timelines,
// export the log for an independent check, and rebuild state from the log to
// compare it with what the actors load. None of them writes: they read a
// store opened read-only (or, over HTTP, the server's store through reads).

#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backline/domain.hpp"
#include "backline/event_store.hpp"
#include "backline/log_scan.hpp"
#include "backline/status.hpp"

namespace backline::audit {

/// Progress of a long pass: its name, work done and the total expected.
using progress_fn = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;

// -- verify ------------------------------------------------------------------

struct verify_problem {
  uint64_t position = 0;  // the first bad position (0: not one position, e.g. a malformed key)
  std::string what;       // what is wrong, naming the stored key
};

struct verify_report {
  uint64_t events = 0;          // events of the global log checked
  uint64_t head_position = 0;   // the last position of the global log
  std::string head_hash;        // its stored hash
  std::optional<verify_problem> problem;  // none: verified
  bool verified() const { return !problem.has_value(); }
};

/// Checks, in order, one entry of the global log after another: positions
/// without gaps, each entry pointing to a stored record that says the same
/// position, stream and seq, each hash recomputed, each prev_hash equal to
/// the hash before it, and every stream's seqs 1, 2, 3… Then that every
/// stored stream record is one the global log holds. Pure: the store is read
/// by verify_log.
class chain_checker {
public:
  /// One entry with its record decoded and its hash recomputed (the work
  /// that runs in parallel, see check_record).
  struct checked_record {
    result<event_record> record = status{errc::not_found, "no record"};
    bool hash_matches = false;
  };
  static checked_record check_record(const indexed_record& entry);

  /// Starts at the beginning of the log (position 1, no previous hash).
  chain_checker() = default;
  /// The next entry of the global log; the first problem found, if any.
  std::optional<verify_problem> next(const indexed_record& entry, const checked_record& checked);
  /// A stored stream record (s|…), after every entry was seen: it must be one
  /// the global log points to.
  std::optional<verify_problem> stream_record(const stored_stream_record& r);

  uint64_t events() const { return events_; }
  uint64_t last_position() const { return next_position_ - 1; }
  const std::string& last_hash() const { return prev_hash_; }

private:
  struct stream_seen {
    uint64_t last_seq = 0;
  };
  uint64_t next_position_ = 1;
  std::string prev_hash_;
  uint64_t events_ = 0;
  std::unordered_map<std::string, stream_seen> streams_;
  // The stream the stored records are being matched against (they come in
  // key order, so this saves a lookup per record).
  std::string current_stream_;
  const stream_seen* current_ = nullptr;
};

/// A keyed multiset hash: the sum, modulo 2^128, of a keyed SHA-256 of each
/// element. Equal multisets give equal sums whatever the order they are added
/// in; for a key drawn after the data was fixed, unequal ones give equal sums
/// with probability about 2^-128. This lets verify read the streams and the
/// global index each in its own key order (sequentially, fast) and still
/// prove that they hold the same links and pointers.
class multiset_sum {
public:
  struct key {
    unsigned char bytes[16] = {};
    static key random();  // from OpenSSL's generator
  };
  /// Adds the element made of these parts (each length-prefixed).
  void add(const key& k, std::initializer_list<std::string_view> parts);
  void remove(const key& k, std::initializer_list<std::string_view> parts);
  void add(const multiset_sum& other);
  bool operator==(const multiset_sum& other) const { return lo_ == other.lo_ && hi_ == other.hi_; }

private:
  void add_words(uint64_t lo, uint64_t hi);
  uint64_t lo_ = 0, hi_ = 0;
};

struct verify_options {
  unsigned threads = 2;   // decoders and hashers (the machines have 2 cores)
  size_t window = 32768;  // global entries per window
};

/// Verifies the whole log: everything chain_checker checks. First in one
/// sequential pass over the stored records (decoded, hashed and checked in
/// parallel, their links and pointers summed with multiset_sum) and one over
/// the global index; only when that finds something wrong does it walk the
/// log in position order with chain_checker, to name the first bad position.
/// A storage failure (the log cannot be read) is an error; damage found is a
/// report with a problem.
result<verify_report> verify_log(const event_store& store, const verify_options& opts = {},
                                 const progress_fn& progress = {});

// -- timelines (replay) ------------------------------------------------------

/// One event as an auditor reads it.
struct timeline_entry {
  uint64_t position = 0;
  std::string time;
  std::string stream;
  uint64_t seq = 0;
  std::string type;
  std::string actor;      // who did it, as recorded: a user id, "slack", "system"
  std::string chat_id;    // what it concerns ("" when no chat)
  std::string thread_id;  // ("" when no thread)
  std::string summary;    // one sentence: what happened
  boost::json::object details;  // the facts behind it (never token hashes)
};

/// Describes one event. Pure; every event type the domain writes has its
/// own sentence, others are shown by type with their payload.
timeline_entry describe_event(const event_record& e);
/// One line of `--format text`.
std::string timeline_text(const timeline_entry& t);
/// One object of `--format jsonl` and of the HTTP timelines.
boost::json::object timeline_json(const timeline_entry& t);

/// A chat's timeline: its own events, its threads', and those of the chats
/// that reopened it (and theirs), in log order. errc::not_found for an
/// unknown chat; errc::corrupt when a record read is damaged or fails its
/// own hash.
result<std::vector<timeline_entry>> chat_timeline(const event_store& store, const std::string& chat_id);
/// A thread's timeline: the chat's event that opened it, then the thread's.
result<std::vector<timeline_entry>> thread_timeline(const event_store& store, const std::string& thread_id);
/// What an agent did, and the chats assigned or transferred to them
/// (a pass over the whole log). errc::not_found when no such user exists.
result<std::vector<timeline_entry>> agent_timeline(const event_store& store, const std::string& agent_id,
                                                   const progress_fn& progress = {});
/// Every event stamped from `from` to `to` inclusive (canonical times, see
/// canonical_time), a pass over the whole log.
result<std::vector<timeline_entry>> time_timeline(const event_store& store, const std::string& from,
                                                  const std::string& to, const progress_fn& progress = {});

/// "2026-11-25", "2026-11-25T13:00", "2026-11-25T13:00:05Z", "…05.123Z" as
/// the log's form 2026-11-25T13:00:05.123Z; `end` fills what is left out
/// with its last instant (…T23:59:59.999Z) instead of its first. nullopt for
/// anything else (only UTC, marked Z or unmarked, is accepted).
std::optional<std::string> canonical_time(std::string_view text, bool end = false);

// -- export ------------------------------------------------------------------

struct export_report {
  uint64_t events = 0;
  uint64_t from_position = 1;
  uint64_t head_position = 0;
  std::string head_hash;
};

/// Writes JSON Lines: a header {"format":"backline-audit-export","version":1,
/// "from_position","prev_hash"}, one line per event (the stored record:
/// position, stream, seq, type, time, actor, payload, prev_hash, hash), and a
/// footer {"head":{"position","hash"},"events"}. errc::corrupt when an entry
/// cannot be exported (a gap, a missing or undecodable record): an export is
/// whole or it is not written. errc::invalid_argument for a from_position
/// past the head.
result<export_report> export_log(const event_store& store, uint64_t from_position, std::ostream& out,
                                 const progress_fn& progress = {});

// -- rebuild -----------------------------------------------------------------

struct rebuild_report {
  uint64_t events = 0;
  uint64_t chats = 0, threads = 0, users = 0;
  std::vector<std::string> differences;  // each names the chat/thread/user and both values
};

/// What differs between a chat or thread as the log replays to and as its
/// actor loads it ("thread X unread: the log replayed gives 0, the actors
/// would load 1"); empty when nothing does. Pure.
std::vector<std::string> diff_chat(const chat_state& replayed, const chat_state& loaded);
std::vector<std::string> diff_thread(const thread_state& replayed, const thread_state& loaded);

/// Replays the global log, event by event, into fresh state with the
/// domain's apply functions, then loads what the server's actors would load
/// from the same store (the users table, the directory's chat index, Slack
/// thread index and outbox wake-ups, each chat and thread from its stream)
/// and compares: statuses, agents, unread counts, messages and their
/// delivery (the outbox), Slack ts. Any difference is a bug, reported.
result<rebuild_report> rebuild_and_compare(const event_store& store, const progress_fn& progress = {});

// -- the command ---------------------------------------------------------------

/// Exit codes of `backline audit`.
inline constexpr int exit_ok = 0;        // verified / done / no difference
inline constexpr int exit_damaged = 1;   // tampered or corrupt (rebuild: differences found)
inline constexpr int exit_cannot = 2;    // cannot read the log, or a bad request (usage, unknown id, range)

/// A progress line for a terminal: bar, percentage, rate and time left.
std::string progress_line(std::string_view phase, uint64_t done, uint64_t total, double seconds);

/// Runs `backline audit <args…>`: results on out, messages on err, a
/// progress bar on err only when err_is_tty. getenv reads BACKLINE_DATA.
int run_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool err_is_tty,
                const std::function<const char*(const char*)>& getenv);

/// The help text of `backline audit`.
std::string help();

} // namespace backline::audit
