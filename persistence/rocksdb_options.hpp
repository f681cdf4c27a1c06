#pragma once
// The RocksDB options shared by the event store and the raw benchmark writer,
// so the benchmark's ceiling is measured on exactly the store's settings.

#include <memory>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include "backline/event_store.hpp"

namespace backline::persistence {

/// Options for a write-heavy, append-only log (create_if_missing as asked).
rocksdb::Options make_rocksdb_options(const store_options& opts);

/// RocksDB's info log (DIR/LOG) for a writable store: one that ignores its
/// own write failures. RocksDB's default logger asserts (aborts, in Debian's
/// build) on its next line after a failed write, so a full disk would kill
/// the server instead of failing writes. Rolls to LOG.old past max_bytes.
std::shared_ptr<rocksdb::Logger> make_tolerant_info_log(const std::string& dir, size_t max_bytes);

/// Maps a failed RocksDB status to ours; context says what was being done
/// (e.g. "append to /var/lib/backline"), the RocksDB text follows it.
status from_rocksdb(const rocksdb::Status& s, const std::string& context);

} // namespace backline::persistence
