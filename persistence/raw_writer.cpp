#include "persistence/raw_writer.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "persistence/keys.hpp"
#include "persistence/rocksdb_options.hpp"

namespace backline::persistence {

result<double> raw_write_seconds(const std::string& dir, const std::vector<event_record>& events,
                                 size_t events_per_batch, bool sync, raw_layout layout) {
  if (events_per_batch == 0)
    return status{errc::invalid_argument, "raw write: events_per_batch must be at least 1"};
  auto options = make_rocksdb_options(store_options{});
  options.create_if_missing = true;
  options.error_if_exists = true;  // a ceiling measured on a fresh log only
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::Open(options, dir, &raw); !s.ok())
    return from_rocksdb(s, "raw write: cannot open a fresh RocksDB at " + dir);
  std::unique_ptr<rocksdb::DB> db(raw);

  // Keys and values are built before the clock starts: the event store's
  // encoding is part of what it is measured against, not of the ceiling.
  std::vector<std::vector<std::pair<std::string, std::string>>> entries;
  entries.reserve(events.size());
  for (const auto& e : events) {
    auto& kv = entries.emplace_back();
    kv.emplace_back(stream_key(e.stream, e.seq), encode_event(e));
    if (layout == raw_layout::store_keys) {
      kv.emplace_back(global_key(e.position), global_pointer(e.stream, e.seq));
    }
  }

  rocksdb::WriteOptions wo;
  wo.sync = sync;
  const auto start = std::chrono::steady_clock::now();
  for (size_t first = 0; first < entries.size(); first += events_per_batch) {
    rocksdb::WriteBatch wb;
    const size_t end = std::min(entries.size(), first + events_per_batch);
    for (size_t i = first; i < end; ++i)
      for (const auto& [key, value] : entries[i])
        if (auto s = wb.Put(key, value); !s.ok())
          return from_rocksdb(s, "raw write at " + dir);
    if (auto s = db->Write(wo, &wb); !s.ok())
      return from_rocksdb(s, "raw write at " + dir);
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (auto s = db->Close(); !s.ok())
    return from_rocksdb(s, "raw write: close " + dir);
  return elapsed.count();
}

namespace {

/// Opens the existing store at dir for one raw change, applies it, closes.
status raw_change(const std::string& dir, const char* what,
                  const std::function<rocksdb::Status(rocksdb::DB&, const rocksdb::WriteOptions&)>& change) {
  store_options opts;
  opts.create_if_missing = false;
  const auto options = make_rocksdb_options(opts);
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::Open(options, dir, &raw); !s.ok())
    return from_rocksdb(s, std::string(what) + ": cannot open " + dir);
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = change(*db, wo); !s.ok())
    return from_rocksdb(s, std::string(what) + " in " + dir);
  if (auto s = db->Close(); !s.ok())
    return from_rocksdb(s, std::string(what) + ": close " + dir);
  return status::ok();
}

} // namespace

status raw_put_for_testing(const std::string& dir, std::string_view key, std::string_view value) {
  return raw_change(dir, "raw put", [&](rocksdb::DB& db, const rocksdb::WriteOptions& wo) {
    return db.Put(wo, rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  });
}

status raw_delete_for_testing(const std::string& dir, std::string_view key) {
  return raw_change(dir, "raw delete", [&](rocksdb::DB& db, const rocksdb::WriteOptions& wo) {
    return db.Delete(wo, rocksdb::Slice(key.data(), key.size()));
  });
}

result<std::optional<std::string>> raw_get_for_testing(const std::string& dir, std::string_view key) {
  std::optional<std::string> found;
  auto st = raw_change(dir, "raw get", [&](rocksdb::DB& db, const rocksdb::WriteOptions&) {
    std::string value;
    auto s = db.Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
    if (s.ok())
      found = std::move(value);
    return s.IsNotFound() ? rocksdb::Status::OK() : s;
  });
  if (!st)
    return st;
  return found;
}

} // namespace backline::persistence
