// Whole-log scans over the event store's raw cursors (key layout:
// persistence/keys.hpp).

#include "backline/log_scan.hpp"

#include <algorithm>
#include <numeric>
#include <thread>

#include "persistence/keys.hpp"

namespace backline {

using namespace persistence;

namespace {

/// Reads the global entries of one window: up to `window` of them, from the
/// cursor's position (fewer at the end of the log).
void read_window(event_store::raw_cursor& global, size_t window, std::vector<indexed_record>& out) {
  out.clear();
  for (; global.valid() && out.size() < window; global.next()) {
    auto& r = out.emplace_back();
    const auto key = global.key();
    const auto pointer = global.value();
    if (key.size() != global_prefix_tag.size() + 8) {
      r.problem = "global key " + printable_key(key) + " is malformed (not g| and an 8-byte position)";
      continue;
    }
    r.position = read_u64be(key.substr(global_prefix_tag.size()));
    if (pointer.size() < 9) {
      r.problem = "global entry " + printable_key(key) + " is malformed (its pointer has "
                  + std::to_string(pointer.size()) + " bytes)";
      continue;
    }
    r.seq = read_u64be(pointer);
    r.stream.assign(pointer.substr(8));
    if (!valid_stream_name(r.stream)) {
      r.problem = "global entry " + printable_key(key) + " names an invalid stream \""
                  + printable_key(r.stream.substr(0, 60)) + "\"";
      r.stream.clear();
    }
  }
}

/// Fills in the stream records of entries [first, last) of `order` (indices
/// into `entries`, sorted by stream key) with one cursor moving forward.
status read_records(const event_store& store, std::vector<indexed_record>& entries,
                    const std::vector<std::pair<std::string, size_t>>& order, size_t first, size_t last) {
  if (first >= last)
    return status::ok();
  // Point lookups in key order, many at once: RocksDB's filters skip the
  // files that do not hold a key, which a cursor's seek cannot.
  std::vector<std::string> keys;
  keys.reserve(last - first);
  for (size_t i = first; i < last; ++i)
    keys.push_back(order[i].first);
  std::vector<std::optional<std::string>> values;
  if (auto st = store.get_raw_many(keys, values); !st)
    return st;
  for (size_t i = first; i < last; ++i)
    if (auto& v = values[i - first]) {
      auto& e = entries[order[i].second];
      e.found = true;
      e.bytes = std::move(*v);
    }
  return status::ok();
}

} // namespace

status scan_global_log(const event_store& store, const log_scan_options& opts,
                       const std::function<bool(std::vector<indexed_record>&)>& visit) {
  const size_t window = std::max<size_t>(opts.window, 1);
  const unsigned threads = std::max(opts.threads, 1u);
  auto global = store.open_raw_cursor(std::string(global_prefix_tag), prefix_upper_bound(global_prefix_tag));
  global->seek(global_key(std::max<uint64_t>(opts.from_position, 1)));
  std::vector<indexed_record> entries;
  std::vector<std::pair<std::string, size_t>> order;  // stream key, index into entries
  while (true) {
    read_window(*global, window, entries);
    if (!global->valid())
      if (auto st = global->error(); !st)
        return st;
    if (entries.empty())
      return status::ok();
    order.clear();
    for (size_t i = 0; i < entries.size(); ++i)
      if (entries[i].problem.empty())
        order.emplace_back(stream_key(entries[i].stream, entries[i].seq), i);
    std::sort(order.begin(), order.end());
    // Each reader takes a contiguous run of the sorted keys.
    const unsigned used = order.size() < 1024 ? 1 : threads;
    std::vector<status> results(used);
    std::vector<std::thread> helpers;
    const size_t per = (order.size() + used - 1) / used;
    for (unsigned t = 1; t < used; ++t)
      helpers.emplace_back([&, t] {
        results[t] = read_records(store, entries, order, t * per, std::min(order.size(), (t + 1) * per));
      });
    results[0] = read_records(store, entries, order, 0, std::min(order.size(), per));
    for (auto& h : helpers)
      h.join();
    for (auto& st : results)
      if (!st)
        return st;
    if (!visit(entries))
      return status::ok();
  }
}

status scan_global_index(const event_store& store, size_t window,
                         const std::function<bool(std::vector<indexed_record>&)>& visit, uint64_t from_position,
                         uint64_t to_position) {
  auto global = store.open_raw_cursor(std::string(global_prefix_tag), to_position == 0
                                                                         ? prefix_upper_bound(global_prefix_tag)
                                                                         : global_key(to_position));
  global->seek(global_key(std::max<uint64_t>(from_position, 1)));
  std::vector<indexed_record> entries;
  while (true) {
    read_window(*global, std::max<size_t>(window, 1), entries);
    if (!global->valid())
      if (auto st = global->error(); !st)
        return st;
    if (entries.empty() || !visit(entries))
      return status::ok();
  }
}

status scan_stream_records(const event_store& store,
                           const std::function<bool(const stored_stream_record&)>& visit,
                           const std::string& from_stream, const std::string& to_stream) {
  // All keys of a stream share "s|<stream>|", which no other stream's keys
  // start with: a bound there never splits a stream.
  const std::string lower = from_stream.empty() ? std::string(stream_prefix_tag) : stream_events_prefix(from_stream);
  auto cursor = store.open_raw_cursor(lower, to_stream.empty() ? prefix_upper_bound(stream_prefix_tag)
                                                               : stream_events_prefix(to_stream));
  stored_stream_record r;
  for (cursor->seek(lower); cursor->valid(); cursor->next()) {
    const auto key = cursor->key();
    r = {};
    r.bytes = cursor->value();
    // s|<stream>|<seq:8>
    const auto stream = event_key_stream(key);
    if (stream && key.size() == stream_prefix_tag.size() + stream->size() + 1 + 8 && valid_stream_name(*stream)) {
      r.well_formed = true;
      r.stream = *stream;
      r.seq = read_u64be(key.substr(key.size() - 8));
    } else {
      r.printable_key = printable_key(key);
    }
    if (!visit(r))
      return status::ok();
  }
  return cursor->error();
}

status scan_stream_heads(const event_store& store,
                         const std::function<bool(std::string_view, uint64_t)>& visit) {
  // A skip-scan: the stream's first key names it, the last key of its
  // prefix holds its head; then on to the next stream's keys.
  auto cursor = store.open_raw_cursor(std::string(stream_prefix_tag), prefix_upper_bound(stream_prefix_tag));
  std::string stream;
  for (cursor->seek(stream_prefix_tag); cursor->valid();) {
    const auto name = event_key_stream(cursor->key());
    if (!name) {  // malformed: scan_stream_records names it
      cursor->next();
      continue;
    }
    stream.assign(*name);
    const auto prefix = stream_events_prefix(stream);
    const auto next = prefix_upper_bound(prefix);
    cursor->seek_for_prev(next);
    if (!cursor->valid())
      break;  // a storage error: told below
    const auto last = cursor->key();
    const uint64_t head = last.size() == prefix.size() + 8 ? read_u64be(last.substr(prefix.size())) : 0;
    if (!visit(stream, head))
      return status::ok();
    cursor->seek(next);
  }
  return cursor->error();
}

} // namespace backline
