#pragma once
// Raw RocksDB access with the event store's own options, so that bench/ and
// tests/ never include RocksDB:
// - raw_write_seconds: the benchmark ceiling (plain batched writes, no JSON,
//   no hashing, no idempotency or version checks);
// - raw_put_for_testing, raw_delete_for_testing, raw_get_for_testing: change
//   or read one key of a closed store, to prove that tampering and
//   corruption are detected.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backline/event_store.hpp"
#include "backline/status.hpp"

namespace backline::persistence {

/// What the ceiling writes for each event.
enum class raw_layout {
  store_keys,  // the same key/value pairs the event store writes (record, global pointer)
  record_only, // only the encoded record, under its stream key
};

/// Creates a fresh RocksDB at dir (errc::invalid_argument if one is already
/// there) and writes the events, events_per_batch of them per WriteBatch,
/// each batch synced when sync is set. Keys and values are built before the
/// clock starts. Returns the seconds the writes took (opening and closing are
/// not timed).
result<double> raw_write_seconds(const std::string& dir, const std::vector<event_record>& events,
                                 size_t events_per_batch, bool sync,
                                 raw_layout layout = raw_layout::store_keys);

/// Puts key -> value (synced) into the existing store at dir, which must not
/// be open elsewhere. Tests only: it bypasses every check of the store.
status raw_put_for_testing(const std::string& dir, std::string_view key, std::string_view value);
/// Deletes key (synced) from the existing store at dir, likewise.
status raw_delete_for_testing(const std::string& dir, std::string_view key);
/// The stored value of key in the closed store at dir (nullopt when absent), likewise.
result<std::optional<std::string>> raw_get_for_testing(const std::string& dir, std::string_view key);

} // namespace backline::persistence
