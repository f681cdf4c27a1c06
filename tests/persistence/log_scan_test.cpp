// The whole-log scans the audit tools read with, raw access, and the
// read-only secondary open that lets them run beside a writing server.

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "backline/log_scan.hpp"
#include "persistence/keys.hpp"
#include "persistence/raw_writer.hpp"
#include "support/temp_dir.hpp"

using namespace backline;
using backline::testing::temp_dir;
namespace keys = backline::persistence;

namespace {

std::unique_ptr<event_store> writable(const std::string& dir) {
  store_options opts;
  opts.sync = false;
  auto s = event_store::open(dir, opts);
  REQUIRE(s);
  return std::move(s).value();
}

std::unique_ptr<event_store> secondary(const std::string& dir, const std::string& scratch) {
  store_options ro;
  ro.read_only = true;
  ro.secondary_dir = scratch;
  auto s = event_store::open(dir, ro);
  INFO(s.error().describe());
  REQUIRE(s);
  return std::move(s).value();
}

void append(event_store& store, const std::string& stream, const std::string& type) {
  append_request r;
  r.stream = stream;
  r.events.push_back(new_event{type, "alice", "{}"});
  REQUIRE(store.append(std::move(r)));
}

} // namespace

TEST_CASE("scan_global_log: position order across windows, each entry with its stored record", "[persistence]") {
  temp_dir tmp;
  {
    auto store = writable(tmp.sub("log"));
    // Streams whose names are prefixes of each other: key order is not name order.
    for (int i = 0; i < 100; ++i)
      append(*store, i % 3 == 0 ? "chat-1" : i % 3 == 1 ? "chat-10" : "chat-1x", "e" + std::to_string(i));
  }
  auto store = secondary(tmp.sub("log"), tmp.sub("scratch"));
  for (unsigned threads : {1u, 2u}) {
    for (size_t window : {size_t{1}, size_t{7}, size_t{1000}}) {
      std::vector<indexed_record> seen;
      log_scan_options opts;
      opts.window = window;
      opts.threads = threads;
      REQUIRE(scan_global_log(*store, opts, [&](std::vector<indexed_record>& entries) {
        seen.insert(seen.end(), entries.begin(), entries.end());
        return true;
      }));
      REQUIRE(seen.size() == 100);
      for (size_t i = 0; i < seen.size(); ++i) {
        CHECK(seen[i].position == i + 1);
        REQUIRE(seen[i].found);
        auto e = decode_event(seen[i].bytes);
        REQUIRE(e);
        CHECK(e->position == i + 1);
        CHECK(e->type == "e" + std::to_string(i));
        CHECK(e->stream == seen[i].stream);
      }
    }
  }
  // From a position, and stopping early.
  std::vector<uint64_t> positions;
  log_scan_options from;
  from.from_position = 95;
  from.window = 2;
  REQUIRE(scan_global_log(*store, from, [&](std::vector<indexed_record>& entries) {
    for (auto& e : entries)
      positions.push_back(e.position);
    return positions.size() < 4;
  }));
  CHECK(positions == std::vector<uint64_t>{95, 96, 97, 98});
  // The index alone.
  uint64_t count = 0;
  REQUIRE(scan_global_index(*store, 9, [&](std::vector<indexed_record>& entries) {
    for (auto& e : entries) {
      CHECK(e.position == ++count);
      CHECK_FALSE(e.found);
    }
    return true;
  }));
  CHECK(count == 100);
}

TEST_CASE("scan_stream_records and scan_stream_heads: every stored record and head, malformed keys named",
          "[persistence]") {
  temp_dir tmp;
  {
    auto store = writable(tmp.sub("log"));
    append(*store, "chat-2", "a");
    append(*store, "chat-1", "b");
    append(*store, "chat-2", "c");
  }
  REQUIRE(persistence::raw_put_for_testing(tmp.sub("log"), "s|chat-3|xyz", "junk"));
  auto store = secondary(tmp.sub("log"), tmp.sub("scratch"));
  std::vector<std::string> seen;
  REQUIRE(scan_stream_records(*store, [&](const stored_stream_record& r) {
    seen.push_back(r.well_formed ? std::string(r.stream) + "#" + std::to_string(r.seq) : "bad " + r.printable_key);
    return true;
  }));
  CHECK(seen == std::vector<std::string>{"chat-1#1", "chat-2#1", "chat-2#2", "bad s|chat-3|xyz"});
  std::map<std::string, uint64_t> heads;
  REQUIRE(scan_stream_heads(*store, [&](std::string_view stream, uint64_t head) {
    heads[std::string(stream)] = head;
    return true;
  }));
  // A head is the seq of the stream's last key; a malformed last key gives 0.
  CHECK(heads == std::map<std::string, uint64_t>{{"chat-1", 1}, {"chat-2", 2}, {"chat-3", 0}});
  // Parts of the records by stream, parts of the index by position.
  std::vector<std::string> part;
  REQUIRE(scan_stream_records(*store, [&](const stored_stream_record& r) {
    part.push_back(std::string(r.stream) + "#" + std::to_string(r.seq));
    return true;
  }, "chat-2", "chat-3"));
  CHECK(part == std::vector<std::string>{"chat-2#1", "chat-2#2"});
  part.clear();
  REQUIRE(scan_stream_records(*store, [&](const stored_stream_record& r) {
    part.push_back(std::string(r.stream));
    return true;
  }, "", "chat-2"));
  CHECK(part == std::vector<std::string>{"chat-1"});
  std::vector<uint64_t> positions;
  REQUIRE(scan_global_index(*store, 1, [&](std::vector<indexed_record>& entries) {
    for (auto& e : entries)
      positions.push_back(e.position);
    return true;
  }, 2, 3));
  CHECK(positions == std::vector<uint64_t>{2});
  std::vector<std::optional<std::string>> values;
  REQUIRE(store->get_raw_many({keys::global_key(1), keys::global_key(9), keys::global_key(3)}, values));
  REQUIRE(values.size() == 3);
  CHECK(values[0] == keys::global_pointer("chat-2", 1));
  CHECK_FALSE(values[1]);
  CHECK(values[2] == keys::global_pointer("chat-2", 2));
}

TEST_CASE("event_store: a secondary reads while the writer writes, and sees the log as it was when opened",
          "[persistence]") {
  temp_dir tmp;
  auto writer = writable(tmp.sub("log"));
  append(*writer, "chat-1", "a");
  append(*writer, "chat-1", "b");
  auto reader = secondary(tmp.sub("log"), tmp.sub("scratch"));
  append(*writer, "chat-1", "c");
  CHECK(reader->head().position == 2);
  CHECK(reader->read_all()->size() == 2);
  CHECK(reader->append([] {
                  append_request r;
                  r.stream = "chat-1";
                  r.events.push_back(new_event{"x", "alice", "{}"});
                  return r;
                }())
          .error()
          .code() == errc::read_only);
  auto later = secondary(tmp.sub("log"), tmp.sub("scratch2"));
  CHECK(later->head().position == 3);
  // The secondary's own files went to its directory, not into the log.
  CHECK(std::filesystem::exists(tmp.sub("scratch")));
}

TEST_CASE("raw_delete_for_testing and raw_get_for_testing change and read one key of a closed store",
          "[persistence]") {
  temp_dir tmp;
  {
    auto store = writable(tmp.sub("log"));
    append(*store, "chat-1", "a");
  }
  auto v = persistence::raw_get_for_testing(tmp.sub("log"), keys::global_key(1));
  REQUIRE(v);
  CHECK(*v == keys::global_pointer("chat-1", 1));
  REQUIRE(persistence::raw_delete_for_testing(tmp.sub("log"), keys::global_key(1)));
  auto gone = persistence::raw_get_for_testing(tmp.sub("log"), keys::global_key(1));
  REQUIRE(gone);
  CHECK_FALSE(gone->has_value());
}
