// The event store on RocksDB. Key layout: persistence/keys.hpp.
//
// Concurrency: one writer of the log at a time (the journal actor; write_mu
// makes a second writer wait rather than break the chain), any number of
// concurrent readers. Views (put_view) are written beside the log, by their
// own writer, without write_mu: they touch no key of the log. Readers only touch RocksDB, which is thread-safe, and the
// in-memory head, which head_mu guards. Every append is one atomic
// WriteBatch, so a reader sees all of it or none of it.

#include "backline/event_store.hpp"
#include "backline/rfc3339.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "persistence/keys.hpp"
#include "persistence/rocksdb_options.hpp"

namespace backline {

using namespace persistence;

namespace {

status invalid_stream(const std::string& stream) {
  return {errc::invalid_argument,
          "invalid stream name \"" + printable_key(stream.substr(0, max_stream_name_bytes))
            + "\": it must be 1 to 200 bytes of UTF-8 without '|' or control characters"};
}

// Whether `text` is one JSON value. The parse tree lives in a buffer on the
// stack (and beyond it in blocks freed at once) and is thrown away: this is
// on the journal's path once per event.
bool is_json(std::string_view text, boost::json::error_code& ec) {
  unsigned char buffer[4096];
  boost::json::monotonic_resource scratch(buffer, sizeof buffer);
  thread_local boost::json::parser parser;
  parser.reset(&scratch);
  parser.write(text.data(), text.size(), ec);  // the whole text: incomplete or trailing bytes are errors
  parser.reset();  // drops the tree before its buffer goes
  return !ec;
}

status validate_request(const append_request& req) {
  if (!valid_stream_name(req.stream))
    return invalid_stream(req.stream);
  if (req.events.empty())
    return {errc::invalid_argument, "stream " + req.stream + ": an append needs at least one event"};
  for (size_t i = 0; i < req.events.size(); ++i) {
    const auto& ev = req.events[i];
    auto where = [&] { return "stream " + req.stream + ", event " + std::to_string(i) + ": "; };
    if (ev.type.empty() || !valid_utf8(ev.type))
      return {errc::invalid_argument, where() + "type must be non-empty UTF-8"};
    if (!valid_utf8(ev.actor) || !valid_utf8(ev.time))
      return {errc::invalid_argument, where() + "actor and time must be UTF-8"};
    if (ev.payload.empty())
      return {errc::invalid_argument, where() + "payload is empty"};
    // The payload is stored as text, but it must be JSON so readers (and
    // the auditor) can parse it; this also guarantees it is valid UTF-8.
    boost::json::error_code ec;
    if (!is_json(ev.payload, ec))
      return {errc::invalid_argument, where() + "payload is not JSON (" + ec.message() + ")"};
  }
  if (!valid_utf8(req.idempotency_key))
    return {errc::invalid_argument, "stream " + req.stream + ": idempotency key must be UTF-8"};
  return status::ok();
}

/// Checks an expected version against the stream's head seq.
status check_expected(const append_request& req, uint64_t head) {
  switch (req.expected.what) {
    case expected_version::kind::any:
      return status::ok();
    case expected_version::kind::no_stream:
      if (head == 0)
        return status::ok();
      return {errc::conflict,
              "stream " + req.stream + ": expected no stream, head is " + std::to_string(head)};
    case expected_version::kind::exact:
      if (head == req.expected.version)
        return status::ok();
      return {errc::conflict, "stream " + req.stream + ": expected version "
                                + std::to_string(req.expected.version) + ", head is "
                                + std::to_string(head)};
  }
  return {errc::invalid_argument, "stream " + req.stream + ": unknown expected version kind"};
}

} // namespace

struct event_store::impl {
  std::string dir;
  store_options opts;
  std::unique_ptr<rocksdb::DB> db;

  std::mutex write_mu;         // one append_batch at a time: the chain is sequential
  mutable std::mutex head_mu;  // guards head (readers call head() concurrently)
  log_head head;
  // Stream heads the writer has read or written (guarded by write_mu): a
  // version check costs a hash lookup instead of a memtable search. Cleared
  // when it grows past its bound, so memory follows active streams.
  std::unordered_map<std::string, uint64_t> head_cache;
  static constexpr size_t head_cache_limit = 1u << 20;

  ~impl() {
    if (db)
      (void)db->Close();  // flushes nothing (the WAL has it all); errors have nowhere to go
  }

  status db_error(const rocksdb::Status& s, const std::string& what) const {
    return from_rocksdb(s, what + " (event store at " + dir + ")");
  }

  status read_only_error(const std::string& what) const {
    return {errc::read_only, "cannot " + what + ": event store at " + dir + " is open read-only"};
  }

  /// A point lookup: the value, nullopt when absent, or the storage error.
  result<std::optional<std::string>> get(const std::string& key) const {
    std::string value;
    auto s = db->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound())
      return std::optional<std::string>{};
    if (!s.ok())
      return db_error(s, "read " + printable_key(key));
    return std::optional<std::string>{std::move(value)};
  }

  /// The last key of those starting with prefix, and its value; nullopt
  /// when there is none. (`what` names the read in an error, with the prefix.)
  result<std::optional<std::pair<std::string, std::string>>> last_with_prefix(const std::string& prefix,
                                                                              std::string_view what) const {
    const std::string upper = prefix_upper_bound(prefix);
    rocksdb::Slice lower_slice(prefix), upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
    it->SeekToLast();
    if (!it->Valid()) {
      if (!it->status().ok())
        return db_error(it->status(), std::string(what) + " (" + printable_key(prefix) + ")");
      return std::optional<std::pair<std::string, std::string>>{};
    }
    return std::optional<std::pair<std::string, std::string>>{{it->key().ToString(), it->value().ToString()}};
  }

  /// A stream's head: the seq of its last event, from its last event key
  /// (no key of its own: a third key per event cost the journal's writer
  /// about 2 µs an event, mostly in RocksDB's memtable). 0: no events yet.
  result<uint64_t> read_head_seq(const std::string& stream) const {
    const std::string prefix = stream_events_prefix(stream);
    auto last = last_with_prefix(prefix, "read a stream's head");
    if (!last)
      return last.error();
    if (!last->has_value())
      return uint64_t{0};
    const std::string_view key = (*last)->first;
    if (key.size() != prefix.size() + 8)
      return status{errc::corrupt, "event key " + printable_key(key) + " is malformed (event store at " + dir + ")"};
    return read_u64be(key.substr(prefix.size()));
  }

  /// Follows a g| entry to its event and checks that they agree.
  result<event_record> resolve_global(std::string_view key, std::string_view pointer) const {
    // Made only for an error: a read of many events would pay for it on each.
    auto where = [&] { return "global entry " + printable_key(key) + " (event store at " + dir + ")"; };
    if (key.size() != global_prefix_tag.size() + 8 || pointer.size() < 9)
      return status{errc::corrupt, where() + " is malformed"};
    const uint64_t position = read_u64be(key.substr(global_prefix_tag.size()));
    const uint64_t seq = read_u64be(pointer);
    const std::string stream(pointer.substr(8));
    const auto skey = stream_key(stream, seq);
    auto value = get(skey);
    if (!value)
      return value.error();
    if (!value->has_value())
      return status{errc::corrupt, where() + " points to missing event " + printable_key(skey)};
    auto rec = decode_event(**value);
    if (!rec)
      return status{errc::corrupt, "event " + printable_key(skey) + ": " + rec.error().message()
                                     + " (event store at " + dir + ")"};
    if (rec->position != position || rec->stream != stream || rec->seq != seq)
      return status{errc::corrupt, where() + " points to event " + printable_key(skey)
                                     + " whose position is " + std::to_string(rec->position)};
    return rec;
  }

  /// The last g| entry's event, so appends continue its position and hash.
  status load_head() {
    auto last = last_with_prefix(std::string(global_prefix_tag), "load the log head");
    if (!last)
      return last.error();
    if (!last->has_value()) {
      head = {};
      return status::ok();
    }
    const std::string& key = (*last)->first;
    auto rec = resolve_global(key, (*last)->second);
    if (!rec) {
      // A writer cannot continue a chain it cannot read; an audit tool
      // (read-only) must still be able to open the log and report on it.
      if (!opts.read_only || key.size() != global_prefix_tag.size() + 8)
        return rec.error();
      head = {read_u64be(std::string_view(key).substr(global_prefix_tag.size())), ""};
      return status::ok();
    }
    head = {rec->position, rec->hash};
    return status::ok();
  }

  /// A log written before stream heads were derived has an h|<stream> key
  /// per stream: nothing reads them now, and they would go stale.
  status drop_retired_head_keys() {
    const std::string lower(retired_head_prefix_tag);
    const std::string upper = prefix_upper_bound(retired_head_prefix_tag);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
    it->Seek(lower);
    if (!it->Valid())
      return it->status().ok() ? status::ok() : db_error(it->status(), "look for retired head keys");
    rocksdb::WriteOptions wo;
    wo.sync = opts.sync;
    if (auto s = db->DeleteRange(wo, db->DefaultColumnFamily(), lower, upper); !s.ok())
      return db_error(s, "delete the retired head keys");
    return status::ok();
  }
};

event_store::event_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
event_store::~event_store() = default;

result<std::unique_ptr<event_store>> event_store::open(const std::string& dir,
                                                       const store_options& opts) {
  namespace fs = std::filesystem;
  if (dir.empty())
    return status{errc::invalid_argument, "event store directory is empty"};
  const bool may_create = opts.create_if_missing && !opts.read_only;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
    // Without CURRENT RocksDB would create a new, empty database beside the
    // old files (and later delete them as obsolete): refuse instead.
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const auto name = entry.path().filename().string();
      if (name.rfind("MANIFEST-", 0) == 0 || entry.path().extension() == ".sst"
          || entry.path().extension() == ".log")
        return status{errc::corrupt, "event store at " + dir + ": its CURRENT file is missing, but it holds "
                                       "RocksDB files (" + name + "): the database is damaged"};
    }
    if (!may_create)
      return status{errc::not_found,
                    "no event store at " + dir
                      + (opts.read_only ? " (opened read-only, so none is created)"
                                        : " (create_if_missing is off)")};
    // RocksDB creates only the last directory level itself.
    fs::create_directories(dir, ec);
    if (ec)
      return status{errc::io_error, "cannot create event store directory " + dir + ": "
                                      + ec.message()};
  }

  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->opts = opts;
  auto options = make_rocksdb_options(opts);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (opts.read_only && !opts.secondary_dir.empty()) {
    // A secondary keeps every table file it uses open, so a file the
    // writer's compaction deletes meanwhile stays readable.
    options.max_open_files = -1;
    fs::create_directories(opts.secondary_dir, ec);
    if (ec)
      return status{errc::io_error, "cannot create the secondary directory " + opts.secondary_dir + ": "
                                      + ec.message()};
    s = rocksdb::DB::OpenAsSecondary(options, dir, opts.secondary_dir, &raw);
  } else {
    if (!opts.read_only)
      options.info_log = make_tolerant_info_log(dir, options.max_log_file_size);
    s = opts.read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &raw)
                       : rocksdb::DB::Open(options, dir, &raw);
  }
  if (!s.ok())
    return from_rocksdb(s, "cannot open event store at " + dir);
  p->db.reset(raw);
  if (auto st = p->load_head(); !st)
    return st;
  if (!opts.read_only)
    if (auto st = p->drop_retired_head_keys(); !st)
      return st;
  return std::unique_ptr<event_store>(new event_store(std::move(p)));
}

status event_store::validate(const append_request& req) { return validate_request(req); }

std::vector<result<append_result>> event_store::append_batch(std::vector<append_request> batch,
                                                            durability mode, checks check) {
  auto& d = *impl_;
  std::vector<result<append_result>> out;
  out.reserve(batch.size());
  if (d.opts.read_only) {
    for (size_t i = 0; i < batch.size(); ++i)
      out.emplace_back(d.read_only_error("append"));
    return out;
  }

  std::lock_guard write_lock(d.write_mu);
  log_head chain;  // where the chain stands, event by event, in this batch
  {
    std::lock_guard lock(d.head_mu);
    chain = d.head;
  }
  const std::string now = now_rfc3339();  // one stamp for the whole batch
  rocksdb::WriteBatch wb;
  bool batch_ok = true;  // a WriteBatch::Put failed: the batch is unusable
  auto put = [&](const std::string& key, const std::string& value) {
    if (!wb.Put(key, value).ok())
      batch_ok = false;
  };
  // Heads of streams appended to earlier in this batch (not yet in RocksDB).
  std::unordered_map<std::string, uint64_t> heads;
  // Idempotency keys recorded earlier in this batch -> that request's index.
  std::unordered_map<std::string, size_t> keys;

  for (size_t i = 0; i < batch.size(); ++i) {
    auto& req = batch[i];
    if (auto st = check == checks::all ? validate_request(req) : status::ok(); !st) {
      out.emplace_back(std::move(st));
      continue;
    }
    // Idempotency first: a retry of a command that succeeded must get its
    // first answer, not a conflict with the events that command wrote.
    if (!req.idempotency_key.empty()) {
      if (auto it = keys.find(req.idempotency_key); it != keys.end()) {
        append_result dup;
        dup.duplicate = true;
        dup.stored_result = batch[it->second].idempotency_result;
        out.emplace_back(std::move(dup));
        continue;
      }
      auto stored = d.get(idempotency_key(req.idempotency_key));
      if (!stored) {
        out.emplace_back(stored.error());
        continue;
      }
      if (stored->has_value()) {
        append_result dup;
        dup.duplicate = true;
        dup.stored_result = std::move(**stored);
        out.emplace_back(std::move(dup));
        continue;
      }
    }

    uint64_t head = 0;
    if (auto it = heads.find(req.stream); it != heads.end()) {
      head = it->second;
    } else if (auto cached = d.head_cache.find(req.stream); cached != d.head_cache.end()) {
      head = cached->second;
    } else {
      auto h = d.read_head_seq(req.stream);
      if (!h) {
        out.emplace_back(h.error());
        continue;
      }
      head = *h;
    }
    if (auto st = check_expected(req, head); !st) {
      out.emplace_back(std::move(st));
      continue;
    }

    append_result res;
    res.first_position = chain.position + 1;
    for (auto& ev : req.events) {
      event_record rec;
      rec.position = chain.position + 1;
      rec.stream = req.stream;
      rec.seq = ++head;
      rec.type = std::move(ev.type);
      rec.time = ev.time.empty() ? now : std::move(ev.time);
      rec.actor = std::move(ev.actor);
      rec.payload = std::move(ev.payload);
      rec.prev_hash = chain.hash;
      rec.hash = event_hash(rec);
      put(stream_key(rec.stream, rec.seq), encode_event(rec));
      put(global_key(rec.position), global_pointer(rec.stream, rec.seq));
      chain = {rec.position, std::move(rec.hash)};
    }
    if (!req.idempotency_key.empty()) {
      put(idempotency_key(req.idempotency_key), req.idempotency_result);
      keys.emplace(req.idempotency_key, i);
    }
    heads[req.stream] = head;
    res.last_seq = head;
    out.emplace_back(std::move(res));
  }

  if (wb.Count() == 0 && batch_ok)
    return out;  // nothing to write: every request failed or was a duplicate
  rocksdb::WriteOptions wo;
  wo.sync = d.opts.sync && mode == durability::per_options;
  const auto s = batch_ok ? d.db->Write(wo, &wb)
                          : rocksdb::Status::InvalidArgument("write batch too large");
  if (!s.ok()) {
    // Nothing of the batch is stored: every answer that was not already a
    // failure of its own becomes the storage failure, and the head stays.
    const auto st = d.db_error(s, "append");
    for (auto& r : out)
      if (r)
        r = st;
    return out;
  }
  if (d.head_cache.size() + heads.size() > impl::head_cache_limit)
    d.head_cache.clear();
  for (auto& [stream, version] : heads)
    d.head_cache[stream] = version;
  std::lock_guard lock(d.head_mu);
  d.head = std::move(chain);
  return out;
}

result<append_result> event_store::append(append_request req) {
  std::vector<append_request> one;
  one.push_back(std::move(req));
  return std::move(append_batch(std::move(one)).front());
}

result<std::vector<event_record>> event_store::read_stream(const std::string& stream,
                                                          uint64_t from_seq,
                                                          size_t max_count) const {
  const auto& d = *impl_;
  if (!valid_stream_name(stream))
    return invalid_stream(stream);
  std::vector<event_record> out;
  if (max_count == 0)
    return out;
  const std::string prefix = stream_events_prefix(stream);
  const std::string upper = prefix_upper_bound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro));
  for (it->Seek(stream_key(stream, std::max<uint64_t>(from_seq, 1)));
       it->Valid() && out.size() < max_count; it->Next()) {
    const auto key = it->key().ToStringView();
    auto where = [&] { return "event " + printable_key(key) + " (event store at " + d.dir + ")"; };  // for errors only
    if (key.size() != prefix.size() + 8)
      return status{errc::corrupt, where() + ": malformed key"};
    auto rec = decode_event(it->value().ToStringView());
    if (!rec)
      return status{errc::corrupt, where() + ": " + rec.error().message()};
    if (rec->stream != stream || rec->seq != read_u64be(key.substr(prefix.size())))
      return status{errc::corrupt, where() + ": record says stream " + rec->stream + " seq "
                                     + std::to_string(rec->seq)};
    out.push_back(std::move(rec).value());
  }
  if (!it->status().ok())
    return d.db_error(it->status(), "read stream " + stream);
  return out;
}

result<std::vector<event_record>> event_store::read_all(uint64_t from_position,
                                                       size_t max_count) const {
  const auto& d = *impl_;
  std::vector<event_record> out;
  if (max_count == 0)
    return out;
  const std::string upper = prefix_upper_bound(global_prefix_tag);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro));
  // Each pointed-to event was written in the same atomic batch as its g|
  // entry, so a visible entry always has its event visible too.
  for (it->Seek(global_key(std::max<uint64_t>(from_position, 1)));
       it->Valid() && out.size() < max_count; it->Next()) {
    auto rec = d.resolve_global(it->key().ToStringView(), it->value().ToStringView());
    if (!rec)
      return rec.error();
    out.push_back(std::move(rec).value());
  }
  if (!it->status().ok())
    return d.db_error(it->status(), "read the global log");
  return out;
}

result<uint64_t> event_store::stream_version(const std::string& stream) const {
  if (!valid_stream_name(stream))
    return invalid_stream(stream);
  return impl_->read_head_seq(stream);
}

log_head event_store::head() const {
  std::lock_guard lock(impl_->head_mu);
  return impl_->head;
}

result<std::optional<std::string>> event_store::find_idempotent(const std::string& key) const {
  if (key.empty())
    return status{errc::invalid_argument, "idempotency key is empty"};
  return impl_->get(idempotency_key(key));
}

status event_store::put_snapshot(const std::string& stream, const snapshot& snap) {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return d.read_only_error("put a snapshot");
  if (!valid_stream_name(stream))
    return invalid_stream(stream);
  std::string value = u64be(snap.version);
  value.append(snap.data);
  rocksdb::WriteOptions wo;
  wo.sync = true;  // a snapshot is rare and expensive to rebuild: always durable
  const auto s = d.db->Put(wo, snapshot_key(stream), value);
  if (!s.ok())
    return d.db_error(s, "put snapshot of " + stream);
  return status::ok();
}

result<std::optional<snapshot>> event_store::get_snapshot(const std::string& stream) const {
  const auto& d = *impl_;
  if (!valid_stream_name(stream))
    return invalid_stream(stream);
  const auto key = snapshot_key(stream);
  auto v = d.get(key);
  if (!v)
    return v.error();
  if (!v->has_value())
    return std::optional<snapshot>{};
  const std::string& bytes = **v;
  if (bytes.size() < 8)
    return status{errc::corrupt, "snapshot " + printable_key(key) + " is shorter than its version"
                                   + " (event store at " + d.dir + ")"};
  return std::optional<snapshot>{snapshot{read_u64be(bytes), bytes.substr(8)}};
}

namespace {

status invalid_view(const std::string& view) {
  return {errc::invalid_argument, "invalid view name \"" + printable_key(view.substr(0, max_stream_name_bytes))
                                    + "\": it must be 1 to 200 bytes of UTF-8 without '|' or control characters"};
}

} // namespace

status event_store::put_view(const std::string& view, const std::vector<view_write>& changes,
                             std::optional<uint64_t> position) {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return d.read_only_error("write view " + view);
  if (!valid_stream_name(view))
    return invalid_view(view);
  rocksdb::WriteBatch wb;
  rocksdb::Status s;
  for (const auto& c : changes) {
    if (c.key.empty())
      return {errc::invalid_argument, "view " + view + ": an entry key is empty"};
    const auto key = view_entry_key(view, c.key);
    s = c.value ? wb.Put(key, *c.value) : wb.Delete(key);
    if (!s.ok())
      return d.db_error(s, "write view " + view);
  }
  if (position)
    if (s = wb.Put(view_prefix(view), u64be(*position)); !s.ok())
      return d.db_error(s, "write view " + view);
  if (wb.Count() == 0)
    return status::ok();
  rocksdb::WriteOptions wo;
  wo.sync = false;  // rebuilt from the log when lost; the WAL keeps it behind the events it covers
  if (s = d.db->Write(wo, &wb); !s.ok())
    return d.db_error(s, "write view " + view);
  return status::ok();
}

result<std::optional<uint64_t>> event_store::view_position(const std::string& view) const {
  const auto& d = *impl_;
  if (!valid_stream_name(view))
    return invalid_view(view);
  const auto key = view_prefix(view);
  auto v = d.get(key);
  if (!v)
    return v.error();
  if (!v->has_value())
    return std::optional<uint64_t>{};
  auto position = parse_u64be(**v);
  if (!position)
    return status{errc::corrupt, "view position " + printable_key(key) + " is not a u64be (event store at " + d.dir + ")"};
  return std::optional<uint64_t>{*position};
}

result<std::optional<uint64_t>> event_store::read_view(
  const std::string& view, const std::function<void(std::string_view, std::string_view)>& visit) const {
  const auto& d = *impl_;
  if (!valid_stream_name(view))
    return invalid_view(view);
  const std::string lower = view_prefix(view);
  const std::string upper = prefix_upper_bound(lower);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  ro.readahead_size = 2u << 20;  // one sequential pass
  ro.fill_cache = false;
  // One iterator reads one implicit snapshot: the position and the entries agree.
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro));
  std::optional<uint64_t> position;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const auto key = it->key().ToStringView().substr(lower.size());
    if (key.empty()) {
      position = parse_u64be(it->value().ToStringView());
      if (!position)
        return status{errc::corrupt, "view position " + printable_key(lower) + " is not a u64be (event store at "
                                       + d.dir + ")"};
      continue;
    }
    visit(key, it->value().ToStringView());
  }
  if (!it->status().ok())
    return d.db_error(it->status(), "read view " + view);
  return position;
}

status event_store::drop_view(const std::string& view) {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return d.read_only_error("drop view " + view);
  if (!valid_stream_name(view))
    return invalid_view(view);
  const std::string lower = view_prefix(view);
  rocksdb::WriteOptions wo;
  const auto s = d.db->DeleteRange(wo, d.db->DefaultColumnFamily(), lower, prefix_upper_bound(lower));
  if (!s.ok())
    return d.db_error(s, "drop view " + view);
  return status::ok();
}

status event_store::flush() {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return status::ok();
  const auto s = d.db->Flush(rocksdb::FlushOptions());
  if (!s.ok())
    return d.db_error(s, "flush the memtables");
  return status::ok();
}

result<std::vector<std::string>> event_store::list_streams(const std::string& prefix) const {
  const auto& d = *impl_;
  // A skip-scan over the event keys: the first key of a stream names it,
  // then the iterator seeks past the stream's other keys.
  const std::string lower = std::string(stream_prefix_tag).append(prefix);
  const std::string upper = prefix_upper_bound(lower);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro));
  std::vector<std::string> out;
  for (it->Seek(lower); it->Valid();) {
    const auto stream = event_key_stream(it->key().ToStringView());
    if (!stream) {  // not an event key (verify names it)
      it->Next();
      continue;
    }
    out.emplace_back(*stream);
    it->Seek(prefix_upper_bound(stream_events_prefix(out.back())));
  }
  if (!it->status().ok())
    return d.db_error(it->status(), "list streams");
  // Key order puts "chat-10|" before "chat-1|": answer in name order.
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

class rocksdb_raw_cursor final : public event_store::raw_cursor {
public:
  rocksdb_raw_cursor(const rocksdb::DB& db, std::string dir, std::string lower, std::string upper)
      : dir_(std::move(dir)), lower_(std::move(lower)), upper_(std::move(upper)),
        lower_slice_(lower_), upper_slice_(upper_) {
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice_;
    if (!upper_.empty())
      ro.iterate_upper_bound = &upper_slice_;
    // Raw cursors serve whole-range passes (the audit): read ahead in large
    // pieces, and keep the blocks read once out of the cache.
    ro.readahead_size = 2u << 20;
    ro.fill_cache = false;
    it_.reset(const_cast<rocksdb::DB&>(db).NewIterator(ro));
  }
  void seek(std::string_view key) override { it_->Seek(rocksdb::Slice(key.data(), key.size())); }
  void seek_for_prev(std::string_view key) override { it_->SeekForPrev(rocksdb::Slice(key.data(), key.size())); }
  void next() override { it_->Next(); }
  bool valid() const override { return it_->Valid(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override { return it_->value().ToStringView(); }
  status error() const override {
    return from_rocksdb(it_->status(), "read " + printable_key(lower_) + " (event store at " + dir_ + ")");
  }

private:
  std::string dir_, lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

} // namespace

std::unique_ptr<event_store::raw_cursor> event_store::open_raw_cursor(std::string lower,
                                                                      std::string upper) const {
  return std::make_unique<rocksdb_raw_cursor>(*impl_->db, impl_->dir, std::move(lower), std::move(upper));
}

status event_store::get_raw_many(const std::vector<std::string>& keys,
                                 std::vector<std::optional<std::string>>& values) const {
  const auto& d = *impl_;
  values.assign(keys.size(), std::nullopt);
  if (keys.empty())
    return status::ok();
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> found(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  const bool sorted = std::is_sorted(keys.begin(), keys.end());
  d.db->MultiGet(rocksdb::ReadOptions(), d.db->DefaultColumnFamily(), keys.size(), slices.data(), found.data(),
                 statuses.data(), sorted);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok())
      values[i].emplace(found[i].data(), found[i].size());
    else if (!statuses[i].IsNotFound())
      return d.db_error(statuses[i], "read " + printable_key(keys[i]));
  }
  return status::ok();
}

status event_store::sync() {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return d.read_only_error("sync");
  if (!d.opts.sync)
    return status::ok();  // the store was opened without fsync (benchmarks)
  if (const auto s = d.db->SyncWAL(); !s.ok())
    return d.db_error(s, "sync the write-ahead log");
  return status::ok();
}

const std::string& event_store::directory() const { return impl_->dir; }

status event_store::resume() {
  const auto& d = *impl_;
  if (d.opts.read_only)
    return status::ok();  // a read-only store has no background writes to resume
  const auto s = d.db->Resume();
  if (!s.ok())
    return d.db_error(s, "resume");
  return status::ok();
}

} // namespace backline
