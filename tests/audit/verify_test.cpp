// backline audit verify: the checks as pure functions on made-up entries,
// then verify_log on stores damaged on purpose, each kind of damage named
// at its first bad position, never "verified".

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "backline/audit.hpp"
#include "persistence/keys.hpp"
#include "persistence/raw_writer.hpp"
#include "support/temp_dir.hpp"

using namespace backline;
using namespace backline::audit;
using backline::testing::temp_dir;
namespace keys = backline::persistence;

namespace {

/// Events chained as the store chains them: (stream, type) in log order.
std::vector<event_record> chained(const std::vector<std::pair<std::string, std::string>>& events) {
  std::vector<event_record> out;
  std::map<std::string, uint64_t> seqs;
  std::string prev;
  for (const auto& [stream, type] : events) {
    event_record e;
    e.position = out.size() + 1;
    e.stream = stream;
    e.seq = ++seqs[stream];
    e.type = type;
    e.time = "2026-11-25T13:00:00.000Z";
    e.actor = "alice";
    e.payload = R"({"n":)" + std::to_string(e.position) + "}";
    e.prev_hash = prev;
    e.hash = event_hash(e);
    prev = e.hash;
    out.push_back(e);
  }
  return out;
}

indexed_record entry_of(const event_record& e) {
  indexed_record r;
  r.position = e.position;
  r.stream = e.stream;
  r.seq = e.seq;
  r.found = true;
  r.bytes = encode_event(e);
  return r;
}

/// Feeds entries to a checker; the first problem, if any.
std::optional<verify_problem> walk(const std::vector<indexed_record>& entries) {
  chain_checker c;
  for (const auto& e : entries)
    if (auto p = c.next(e, chain_checker::check_record(e)))
      return p;
  return std::nullopt;
}

const std::vector<std::pair<std::string, std::string>> sample = {
  {"chat-1", "chat_created"}, {"chat-1", "chat_assigned"}, {"thread-1.t1", "thread_created"},
  {"chat-2", "chat_created"}, {"thread-1.t1", "slack_delivered"}, {"chat-1", "chat_resolved"},
};

} // namespace

TEST_CASE("multiset_sum: the order of elements does not matter, their content does", "[audit]") {
  const auto k = multiset_sum::key::random();
  multiset_sum a, b, c;
  a.add(k, {"link", "1", "x"});
  a.add(k, {"link", "2", "y"});
  b.add(k, {"link", "2", "y"});
  b.add(k, {"link", "1", "x"});
  CHECK(a == b);
  c.add(k, {"link", "1", "x"});
  c.add(k, {"link", "2", "z"});
  CHECK_FALSE(a == c);
  // Parts are length-prefixed: moving a byte from one part to the next shows.
  multiset_sum d, e;
  d.add(k, {"ab", "c"});
  e.add(k, {"a", "bc"});
  CHECK_FALSE(d == e);
  // remove undoes add; a sum of sums is the sum of all.
  c.remove(k, {"link", "2", "z"});
  c.add(k, {"link", "2", "y"});
  CHECK(a == c);
  multiset_sum whole, part1, part2;
  whole.add(k, {"1"});
  whole.add(k, {"2"});
  part1.add(k, {"1"});
  part2.add(k, {"2"});
  part1.add(part2);
  CHECK(part1 == whole);
  // Another key, other sums (what a forger cannot know in advance).
  multiset_sum other;
  other.add(multiset_sum::key::random(), {"link", "1", "x"});
  other.add(multiset_sum::key::random(), {"link", "2", "y"});
  CHECK_FALSE(other == a);
}

TEST_CASE("chain_checker: a clean chain passes, each kind of damage is named at its position", "[audit]") {
  const auto events = chained(sample);
  std::vector<indexed_record> entries;
  for (const auto& e : events)
    entries.push_back(entry_of(e));
  REQUIRE_FALSE(walk(entries));
  {
    chain_checker c;
    for (const auto& e : entries)
      REQUIRE_FALSE(c.next(e, chain_checker::check_record(e)));
    CHECK(c.events() == 6);
    CHECK(c.last_position() == 6);
    CHECK(c.last_hash() == events.back().hash);
  }

  SECTION("a position missing from the global index") {
    entries.erase(entries.begin() + 2);
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 3);
    CHECK_THAT(p->what, Catch::Contains("position 3 is missing from the global index"));
  }
  SECTION("an entry pointing to a record that is not stored") {
    entries[3].found = false;
    entries[3].bytes.clear();
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 4);
    CHECK_THAT(p->what, Catch::Contains("stream chat-2 seq 1, which is not stored"));
  }
  SECTION("a record cut short") {
    entries[1].bytes.resize(entries[1].bytes.size() / 2);
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 2);
    CHECK_THAT(p->what, Catch::Contains("the record of stream chat-1 seq 2 is damaged"));
  }
  SECTION("a payload changed, its hash not") {
    auto forged = events[4];
    forged.payload = R"({"n":999})";
    entries[4].bytes = encode_event(forged);
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 5);
    CHECK_THAT(p->what, Catch::Contains("does not match its contents"));
  }
  SECTION("a payload changed and its hash recomputed: the next event's link breaks") {
    auto forged = events[2];
    forged.payload = R"({"n":999})";
    forged.hash = event_hash(forged);
    entries[2].bytes = encode_event(forged);
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 4);
    CHECK_THAT(p->what, Catch::Contains("prev_hash of stream chat-2 seq 1 is not the hash of position 3"));
  }
  SECTION("an entry pointing to another position's record") {
    entries[5].stream = entries[4].stream;
    entries[5].seq = entries[4].seq;
    entries[5].bytes = entries[4].bytes;
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 6);
    CHECK_THAT(p->what, Catch::Contains("says it is stream thread-1.t1 seq 2 at position 5"));
  }
  SECTION("a stream seq skipped") {
    // thread-1.t1 seq 2 renumbered 3 (and its hash made to match).
    auto forged = events[4];
    forged.seq = 3;
    forged.hash = event_hash(forged);
    entries[4] = entry_of(forged);
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 5);
    CHECK_THAT(p->what, Catch::Contains("follows seq 1 of its stream"));
  }
  SECTION("a malformed global entry") {
    entries[0].problem = "global entry g|... is malformed";
    auto p = walk(entries);
    REQUIRE(p);
    CHECK(p->position == 1);
  }
}

TEST_CASE("chain_checker: stored records must be what the global log holds", "[audit]") {
  const auto events = chained(sample);
  chain_checker c;
  for (const auto& e : events)
    REQUIRE_FALSE(c.next(entry_of(e), chain_checker::check_record(entry_of(e))));
  stored_stream_record r;
  r.well_formed = true;
  r.stream = "chat-1";
  r.seq = 3;
  CHECK_FALSE(c.stream_record(r));
  r.seq = 4;  // beyond what the global log reached
  auto orphan_event = events[5];
  orphan_event.seq = 4;
  orphan_event.position = 7;
  const auto bytes = encode_event(orphan_event);
  r.bytes = bytes;
  auto p = c.stream_record(r);
  REQUIRE(p);
  CHECK(p->position == 7);
  CHECK_THAT(p->what, Catch::Contains("stream chat-1 seq 4 (position 7) is stored but not in the global log"));
  r.stream = "chat-9";
  r.seq = 1;
  CHECK(c.stream_record(r));
  stored_stream_record bad;
  bad.printable_key = "s|chat-1|\\x00";
  CHECK_THAT(c.stream_record(bad)->what, Catch::Contains("s|chat-1|\\x00 is malformed"));

}

namespace {

struct store_dir {
  temp_dir dir{"backline-verify"};
  std::string log() const { return dir.sub("log"); }

  /// Writes events for streams (in log order) through the store.
  void write(const std::vector<std::pair<std::string, std::string>>& events) {
    store_options opts;
    opts.sync = false;
    auto store = event_store::open(log(), opts);
    REQUIRE(store);
    for (const auto& [stream, type] : events) {
      append_request r;
      r.stream = stream;
      r.events.push_back(new_event{type, "alice", R"({"amount":10})"});
      REQUIRE((*store)->append(std::move(r)));
    }
  }
  /// verify_log as `backline audit verify` runs it: a read-only secondary.
  verify_report verify(unsigned threads = 2) const {
    temp_dir scratch("backline-verify-secondary");
    store_options ro;
    ro.read_only = true;
    ro.secondary_dir = scratch.path();
    auto store = event_store::open(log(), ro);
    INFO(store.error().describe());
    REQUIRE(store);
    verify_options opts;
    opts.threads = threads;
    auto report = verify_log(**store, opts);
    INFO(report.error().describe());
    REQUIRE(report);
    return std::move(report).value();
  }
  std::string stored(const std::string& key) const {
    auto v = persistence::raw_get_for_testing(log(), key);
    REQUIRE(v);
    REQUIRE(v->has_value());
    return **v;
  }
  void put(const std::string& key, const std::string& value) {
    REQUIRE(persistence::raw_put_for_testing(log(), key, value));
  }
  void remove(const std::string& key) { REQUIRE(persistence::raw_delete_for_testing(log(), key)); }
};

} // namespace

TEST_CASE("verify_log: an untouched log is verified, with its event count and head", "[audit]") {
  store_dir s;
  s.write(sample);
  auto report = s.verify();
  CHECK(report.verified());
  CHECK(report.events == 6);
  CHECK(report.head_position == 6);
  CHECK(report.head_hash.size() == 64);
  // The log read in one part or cut into several agrees.
  for (unsigned threads : {1u, 3u, 8u}) {
    auto r = s.verify(threads);
    CHECK(r.verified());
    CHECK(r.events == 6);
    CHECK(r.head_hash == report.head_hash);
  }

  store_dir empty;
  empty.write({});
  auto none = empty.verify();
  CHECK(none.verified());
  CHECK(none.events == 0);
  CHECK(none.head_hash.empty());
}

TEST_CASE("verify_log: views kept beside the log (the directory's) are not part of it and not damage", "[audit]") {
  store_dir s;
  s.write(sample);
  {
    auto store = event_store::open(s.log());
    REQUIRE(store);
    REQUIRE((*store)->put_view("directory.1", {{"c|chat-1", std::string("entry")}, {"t|thread-1", std::string("x")}},
                               uint64_t{6}));
    REQUIRE((*store)->put_view("other", {{"k", std::string("v")}}, std::nullopt));
  }
  auto report = s.verify();
  CHECK(report.verified());
  CHECK(report.events == 6);
  CHECK(report.head_position == 6);
}

TEST_CASE("verify_log: damage written on purpose is found and named, never verified", "[audit]") {
  store_dir s;
  s.write(sample);
  // Position 5 is thread-1.t1 seq 2; position 3 is thread-1.t1 seq 1.
  const auto key5 = keys::stream_key("thread-1.t1", 2);

  SECTION("a byte of a payload flipped") {
    auto bytes = s.stored(key5);
    const auto at = bytes.find("10");
    REQUIRE(at != std::string::npos);
    bytes[at] = '9';  // "amount":90: still JSON, no longer what was hashed
    s.put(key5, bytes);
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 5);
    CHECK_THAT(r.problem->what, Catch::Contains("does not match its contents"));
  }
  SECTION("a byte of the record's structure flipped") {
    auto bytes = s.stored(key5);
    bytes[0] = '[';
    s.put(key5, bytes);
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 5);
    CHECK_THAT(r.problem->what, Catch::Contains("is damaged"));
  }
  SECTION("a record cut short") {
    auto bytes = s.stored(key5);
    s.put(key5, bytes.substr(0, bytes.size() - 20));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 5);
    CHECK_THAT(r.problem->what, Catch::Contains("the record of stream thread-1.t1 seq 2 is damaged"));
  }
  SECTION("a record deleted") {
    s.remove(key5);
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 5);
    CHECK_THAT(r.problem->what, Catch::Contains("which is not stored"));
  }
  SECTION("a global index entry deleted") {
    s.remove(keys::global_key(4));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 4);
    CHECK_THAT(r.problem->what, Catch::Contains("position 4 is missing from the global index"));
  }
  SECTION("the last global index entry deleted: its record is stored but not in the log") {
    s.remove(keys::global_key(6));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 6);
    CHECK_THAT(r.problem->what, Catch::Contains("stream chat-1 seq 3 (position 6) is stored but not in the global log"));
  }
  SECTION("an event rewritten with its hash recomputed: the next link breaks") {
    auto e = decode_event(s.stored(keys::stream_key("thread-1.t1", 1)));
    REQUIRE(e);
    e->payload = R"({"amount":1000000})";
    e->hash = event_hash(*e);
    s.put(keys::stream_key("thread-1.t1", 1), encode_event(*e));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 4);
    CHECK_THAT(r.problem->what, Catch::Contains("is not the hash of position 3"));
  }
  SECTION("an event added behind the index's back") {
    auto e = decode_event(s.stored(keys::stream_key("chat-2", 1)));
    REQUIRE(e);
    e->seq = 2;
    e->position = 7;
    e->hash = event_hash(*e);
    s.put(keys::stream_key("chat-2", 2), encode_event(*e));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK_THAT(r.problem->what, Catch::Contains("stream chat-2 seq 2 (position 7) is stored but not in the global log"));
  }
  SECTION("a global entry pointing to another event") {
    s.put(keys::global_key(6), keys::global_pointer("chat-2", 1));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 6);
    CHECK_THAT(r.problem->what, Catch::Contains("says it is stream chat-2 seq 1 at position 4"));
  }
  SECTION("damage found whether the log is read in one part or several") {
    s.remove(key5);
    for (unsigned threads : {1u, 3u}) {
      auto r = s.verify(threads);
      REQUIRE_FALSE(r.verified());
      CHECK(r.problem->position == 5);
    }
  }
  SECTION("two damaged events: the first is named") {
    s.remove(key5);
    auto bytes = s.stored(keys::stream_key("chat-1", 2));
    s.put(keys::stream_key("chat-1", 2), bytes.substr(0, 10));
    auto r = s.verify();
    REQUIRE_FALSE(r.verified());
    CHECK(r.problem->position == 2);
  }
}

TEST_CASE("verify_log: a stream's events reordered, with every hash and pointer made consistent, is not verified",
          "[audit]") {
  // A forger with write access rebuilds the chain so that chat-1's seq 2
  // comes first in the log: every hash, link, pointer and head checks out,
  // only the order within the stream is wrong.
  store_dir s;
  s.write({{"chat-1", "a"}, {"chat-2", "b"}, {"chat-1", "c"}});
  auto read = [&](const std::string& stream, uint64_t seq) {
    auto e = decode_event(s.stored(keys::stream_key(stream, seq)));
    REQUIRE(e);
    return *e;
  };
  auto first = read("chat-1", 2), second = read("chat-2", 1), third = read("chat-1", 1);
  first.position = 1;
  first.prev_hash = "";
  first.hash = event_hash(first);
  second.prev_hash = first.hash;
  second.hash = event_hash(second);
  third.position = 3;
  third.prev_hash = second.hash;
  third.hash = event_hash(third);
  s.put(keys::stream_key("chat-1", 2), encode_event(first));
  s.put(keys::stream_key("chat-2", 1), encode_event(second));
  s.put(keys::stream_key("chat-1", 1), encode_event(third));
  s.put(keys::global_key(1), keys::global_pointer("chat-1", 2));
  s.put(keys::global_key(3), keys::global_pointer("chat-1", 1));
  auto r = s.verify();
  REQUIRE_FALSE(r.verified());
  CHECK(r.problem->position == 1);
  CHECK_THAT(r.problem->what, Catch::Contains("stream chat-1 seq 2 follows seq 0 of its stream"));
}

TEST_CASE("verify_log: a read-only secondary verifies a log while it is written", "[audit]") {
  store_dir s;
  store_options opts;
  opts.sync = false;
  auto writer = event_store::open(s.log(), opts);
  REQUIRE(writer);
  std::atomic<bool> done{false};
  std::atomic<int> failed_appends{0};  // Catch's macros are for the test's own thread
  std::thread appender([&] {
    for (int i = 0; !done && i < 20000; ++i) {
      append_request r;
      r.stream = "chat-" + std::to_string(i % 13);
      r.events.push_back(new_event{"chat_message_added", "alice", R"({"text":"hello"})"});
      if (!(*writer)->append(std::move(r)))
        ++failed_appends;
    }
  });
  uint64_t last = 0;
  for (int round = 0; round < 5; ++round) {
    auto r = s.verify();
    CHECK(r.verified());
    CHECK(r.events >= last);
    last = r.events;
  }
  done = true;
  appender.join();
  CHECK(failed_appends == 0);
  const auto head = (*writer)->head();
  writer->reset();
  auto final_report = s.verify();
  CHECK(final_report.verified());
  CHECK(final_report.events == head.position);
  CHECK(final_report.head_hash == head.hash);
}
