#include "persistence/rocksdb_options.hpp"

#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

namespace backline::persistence {
namespace {

// Memtable insert hints: keys of the global index (g|<pos>) and of one
// stream (s|<stream>|<seq>) arrive in increasing order, so the skiplist can
// remember where the last key of the same prefix went instead of searching
// from the top for every insert (the search dominated a profile of the
// journal at 256 concurrent appenders).
class log_prefix final : public rocksdb::SliceTransform {
public:
  const char* Name() const override { return "backline.log_prefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    if (key.starts_with("g|"))
      return {key.data(), 2};
    // s|<stream>|: up to and including the second '|'.
    for (size_t i = 2; i < key.size(); ++i)
      if (key[i] == '|')
        return {key.data(), i + 1};
    return key;
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.starts_with("g|") || key.starts_with("s|");
  }
};

// After a failed write for want of space RocksDB would start its own
// recovery, which waits until the disk has a whole write buffer free
// (128 MiB here) and meanwhile refuses DB::Resume() with Busy. The journal
// resumes the store itself (actors/journal.cpp), as soon as a flush fits.
class manual_recovery final : public rocksdb::EventListener {
public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// Writes RocksDB's info lines as its own logger does (time, thread, text),
// but a failed write is dropped instead of poisoning the file writer.
class tolerant_info_log final : public rocksdb::Logger {
public:
  tolerant_info_log(std::string dir, size_t max_bytes)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), path_(std::move(dir) + "/LOG"), max_bytes_(max_bytes) {
    std::rename(path_.c_str(), (path_ + ".old").c_str());  // as RocksDB does at open
    file_ = std::fopen(path_.c_str(), "a");
  }
  ~tolerant_info_log() override {
    if (file_ != nullptr)
      std::fclose(file_);
  }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char text[4096];
    va_list copy;
    va_copy(copy, ap);
    std::vsnprintf(text, sizeof text, format, copy);
    va_end(copy);
    timeval now{};
    gettimeofday(&now, nullptr);
    std::tm tm{};
    localtime_r(&now.tv_sec, &tm);
    std::lock_guard lock(mu_);
    if (file_ == nullptr)
      return;
    if (written_ > max_bytes_) {
      std::fclose(file_);
      std::rename(path_.c_str(), (path_ + ".old").c_str());
      file_ = std::fopen(path_.c_str(), "a");
      written_ = 0;
      if (file_ == nullptr)
        return;
    }
    int n = std::fprintf(file_, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long>(now.tv_usec), text);
    if (n > 0)
      written_ += static_cast<size_t>(n);
    std::fflush(file_);  // a failure (no space) loses this line, nothing else
  }
  size_t GetLogFileSize() const override {
    std::lock_guard lock(mu_);
    return written_;
  }

private:
  std::string path_;
  size_t max_bytes_;
  mutable std::mutex mu_;
  std::FILE* file_ = nullptr;
  size_t written_ = 0;
};

} // namespace

std::shared_ptr<rocksdb::Logger> make_tolerant_info_log(const std::string& dir, size_t max_bytes) {
  return std::make_shared<tolerant_info_log>(dir, max_bytes);
}

rocksdb::Options make_rocksdb_options(const store_options& opts) {
  rocksdb::Options o;
  o.create_if_missing = opts.create_if_missing && !opts.read_only;

  // Writes are small appends arriving in group-committed batches: a larger
  // memtable (and a spare one) means fewer flushes and fewer write stalls
  // while a flush is under way.
  o.write_buffer_size = 128u << 20;
  o.max_write_buffer_number = 3;
  o.min_write_buffer_number_to_merge = 1;
  o.max_bytes_for_level_base = 512u << 20;
  o.target_file_size_base = 64u << 20;
  // Level sizes follow the data actually stored: less space amplification
  // for a log that only grows (recommended for new databases).
  o.level_compaction_dynamic_level_bytes = true;
  // The machines have 2 cores shared with the server itself.
  o.max_background_jobs = 2;
  // Smooth out page-cache writeback of SST files instead of bursts.
  o.bytes_per_sync = 1u << 20;
  // One writer (the journal); hints need non-concurrent memtable writes.
  o.allow_concurrent_memtable_write = false;
  o.memtable_insert_with_hint_prefix_extractor = std::make_shared<log_prefix>();
  o.listeners.push_back(std::make_shared<manual_recovery>());
  // Keep RocksDB's own info log from growing without bound.
  o.max_log_file_size = 16u << 20;
  o.keep_log_file_num = 5;

  rocksdb::BlockBasedTableOptions table;
  if (opts.block_cache_mb == 0) {
    table.no_block_cache = true;
  } else {
    table.block_cache = rocksdb::NewLRUCache(opts.block_cache_mb << 20);
  }
  // Point lookups (h|, i|, snap|, s| via g|) dominate reads: a Bloom filter
  // saves a disk read for keys that are absent (new streams, new keys).
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

status from_rocksdb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok())
    return status::ok();
  auto message = context + ": " + s.ToString();
  // NoSpace is a subcode of IOError: test it first.
  if (s.IsNoSpace())
    return {errc::no_space, std::move(message)};
  if (s.IsCorruption())
    return {errc::corrupt, std::move(message)};
  if (s.IsNotFound() || s.IsPathNotFound())
    return {errc::not_found, std::move(message)};
  if (s.IsBusy() || s.IsTryAgain())
    return {errc::busy, std::move(message)};
  if (s.IsTimedOut())
    return {errc::timeout, std::move(message)};
  if (s.IsInvalidArgument() || s.IsNotSupported())
    return {errc::invalid_argument, std::move(message)};
  return {errc::io_error, std::move(message)};
}

} // namespace backline::persistence
