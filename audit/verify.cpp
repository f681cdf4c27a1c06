// `backline audit verify`: the hash chain, the global index and the streams
// checked against each other, event by event.

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "backline/audit.hpp"

namespace backline::audit {
namespace {

/// How messages name an event: its stream and seq (keys hold binary seqs).
std::string record_name(std::string_view stream, uint64_t seq) {
  return "stream " + std::string(stream) + " seq " + std::to_string(seq);
}

verify_problem at(uint64_t position, std::string what) { return {position, std::move(what)}; }

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

/// SHA-256 of the key and the length-prefixed parts: the first 16 bytes as two words.
std::pair<uint64_t, uint64_t> keyed_digest(const multiset_sum::key& k, std::initializer_list<std::string_view> parts) {
  thread_local std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
  unsigned char md[EVP_MAX_MD_SIZE] = {};
  unsigned int len = 0;
  // Fetched once: EVP_sha256() in every init looks SHA-256 up under a lock.
  static EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  bool ok = ctx && sha256 != nullptr && EVP_DigestInit_ex(ctx.get(), sha256, nullptr) == 1
            && EVP_DigestUpdate(ctx.get(), k.bytes, sizeof k.bytes) == 1;
  for (auto part : parts) {
    const auto prefix = std::to_string(part.size()) + ":";
    ok = ok && EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size()) == 1
         && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx.get(), md, &len) == 1;
  if (!ok)
    throw std::runtime_error("SHA-256 failed in libcrypto");
  uint64_t lo = 0, hi = 0;
  for (int i = 0; i < 8; ++i) {
    lo = (lo << 8) | md[i];
    hi = (hi << 8) | md[8 + i];
  }
  return {lo, hi};
}

} // namespace

multiset_sum::key multiset_sum::key::random() {
  key k;
  if (RAND_bytes(k.bytes, sizeof k.bytes) != 1)
    throw std::runtime_error("no random bytes from OpenSSL");
  return k;
}

void multiset_sum::add(const key& k, std::initializer_list<std::string_view> parts) {
  const auto [lo, hi] = keyed_digest(k, parts);
  add_words(lo, hi);
}

void multiset_sum::remove(const key& k, std::initializer_list<std::string_view> parts) {
  const auto [lo, hi] = keyed_digest(k, parts);
  // Subtracting is adding the two's complement.
  add_words(~lo + 1, ~hi + (lo == 0 ? 1 : 0));
}

void multiset_sum::add(const multiset_sum& other) { add_words(other.lo_, other.hi_); }

void multiset_sum::add_words(uint64_t lo, uint64_t hi) {
  const uint64_t sum = lo_ + lo;
  hi_ += hi + (sum < lo_ ? 1 : 0);
  lo_ = sum;
}

chain_checker::checked_record chain_checker::check_record(const indexed_record& entry) {
  checked_record out;
  if (!entry.problem.empty() || !entry.found)
    return out;
  out.record = decode_event(entry.bytes);
  if (out.record)
    out.hash_matches = event_hash(*out.record) == out.record->hash;
  return out;
}

std::optional<verify_problem> chain_checker::next(const indexed_record& entry, const checked_record& checked) {
  const uint64_t pos = next_position_;
  if (!entry.problem.empty())
    return at(pos, entry.problem);
  if (entry.position != pos)
    return at(pos, "position " + std::to_string(pos) + " is missing from the global index: the entry after position "
                     + std::to_string(pos - 1) + " is position " + std::to_string(entry.position));
  const auto name = record_name(entry.stream, entry.seq);
  if (!entry.found)
    return at(pos, "the global index points to " + name + ", which is not stored (deleted?)");
  if (!checked.record)
    return at(pos, "the record of " + name + " is damaged: " + checked.record.error().message());
  const auto& rec = *checked.record;
  if (rec.position != pos || rec.stream != entry.stream || rec.seq != entry.seq)
    return at(pos, "the record stored as " + name + " says it is " + record_name(rec.stream, rec.seq)
                     + " at position " + std::to_string(rec.position));
  auto& seen = streams_[rec.stream];
  if (rec.seq != seen.last_seq + 1)
    return at(pos, name + " follows seq " + std::to_string(seen.last_seq) + " of its stream in the global log"
                     + (rec.seq > seen.last_seq ? " (a gap: an event of the stream is missing)"
                                                : " (a seq repeated or out of order)"));
  if (!checked.hash_matches)
    return at(pos, "the hash stored with " + name + " does not match its contents (recomputed "
                     + event_hash(rec) + ", stored " + rec.hash + "): the event was altered after it was written");
  if (rec.prev_hash != prev_hash_)
    return at(pos, "the prev_hash of " + name + " is not the hash of position " + std::to_string(pos - 1)
                     + " (stored " + (rec.prev_hash.empty() ? "\"\"" : rec.prev_hash) + ", expected "
                     + (prev_hash_.empty() ? "\"\"" : prev_hash_)
                     + "): the event before it was rewritten or removed, or this one was");
  seen.last_seq = rec.seq;
  prev_hash_ = rec.hash;
  ++events_;
  ++next_position_;
  return std::nullopt;
}

std::optional<verify_problem> chain_checker::stream_record(const stored_stream_record& r) {
  if (!r.well_formed)
    return at(0, "the stored stream record key " + r.printable_key + " is malformed");
  if (current_ == nullptr || current_stream_ != r.stream) {
    current_stream_.assign(r.stream);
    auto i = streams_.find(current_stream_);
    current_ = i == streams_.end() ? nullptr : &i->second;
  }
  if (current_ != nullptr && r.seq >= 1 && r.seq <= current_->last_seq)
    return std::nullopt;  // the global walk reached seqs 1..last of this stream, each once
  // Not reachable from the global log: name its position if it can be read.
  auto rec = decode_event(r.bytes);
  const uint64_t pos = rec ? rec->position : 0;
  return at(pos, record_name(r.stream, r.seq) + (rec ? " (position " + std::to_string(pos) + ")" : "")
                   + " is stored but not in the global log: added behind the index's back, or the index lost it");
}

std::optional<verify_problem> chain_checker::head(std::string_view stream, std::optional<uint64_t> head_seq) {
  const std::string name(stream);
  if (!head_seq)
    return at(0, "the head of stream " + name + " (h|" + name + ") is not an 8-byte number");
  auto i = streams_.find(name);
  if (i == streams_.end())
    return at(0, "stream " + name + " has a head (seq " + std::to_string(*head_seq)
                   + ") but no event in the global log");
  i->second.has_head = true;
  if (i->second.last_seq != *head_seq)
    return at(0, "the head of stream " + name + " says seq " + std::to_string(*head_seq)
                   + ", the global log holds its seqs 1 to " + std::to_string(i->second.last_seq));
  return std::nullopt;
}

std::optional<verify_problem> chain_checker::heads_done() {
  const std::string* first = nullptr;  // the smallest name, so the report is deterministic
  for (const auto& [name, seen] : streams_)
    if (!seen.has_head && (first == nullptr || name < *first))
      first = &name;
  if (first == nullptr)
    return std::nullopt;
  return at(0, "stream " + *first + " has " + std::to_string(streams_.at(*first).last_seq)
                 + " events in the global log but no head (h|" + *first + ")");
}

namespace {

/// The walk in position order that names the first bad position.
result<verify_report> exact_walk(const event_store& store, const verify_options& opts, const progress_fn& progress) {
  verify_report report;
  const auto head = store.head();
  report.head_position = head.position;
  report.head_hash = head.hash;
  const uint64_t total = head.position;
  chain_checker checker;
  std::vector<chain_checker::checked_record> checked;

  log_scan_options scan;
  scan.window = opts.window;
  scan.threads = opts.threads;
  const unsigned workers = std::max(opts.threads, 1u);
  auto st = scan_global_log(store, scan, [&](std::vector<indexed_record>& entries) {
    // Decoding and hashing are independent per event: split them across
    // the workers; the chain itself is then walked in order.
    checked.assign(entries.size(), {});
    const size_t per = (entries.size() + workers - 1) / workers;
    std::vector<std::thread> helpers;
    auto run = [&](size_t first, size_t last) {
      for (size_t i = first; i < last; ++i)
        checked[i] = chain_checker::check_record(entries[i]);
    };
    for (unsigned t = 1; t < workers && t * per < entries.size(); ++t)
      helpers.emplace_back(run, t * per, std::min(entries.size(), (t + 1) * per));
    run(0, std::min(entries.size(), per));
    for (auto& h : helpers)
      h.join();
    for (size_t i = 0; i < entries.size(); ++i)
      if (auto p = checker.next(entries[i], checked[i])) {
        report.problem = std::move(p);
        return false;
      }
    if (progress)
      progress("verify (locating)", checker.events(), total);
    return true;
  });
  report.events = checker.events();
  if (!st) {
    // RocksDB's own checksums caught damage: that is a finding, not a
    // failure to read.
    if (st.code() != errc::corrupt)
      return st;
    report.problem = verify_problem{checker.last_position() + 1, st.message()};
  }
  if (report.problem)
    return report;

  uint64_t records = 0;
  st = scan_stream_records(store, [&](const stored_stream_record& r) {
    report.problem = checker.stream_record(r);
    if (progress && ++records % 65536 == 0)
      progress("stream records", records, checker.events());
    return !report.problem;
  });
  if (!st && st.code() != errc::corrupt)
    return st;
  if (!st)
    report.problem = verify_problem{0, st.message()};
  if (report.problem)
    return report;

  st = scan_stream_heads(store, [&](std::string_view stream, std::optional<uint64_t> seq) {
    report.problem = checker.head(stream, seq);
    return !report.problem;
  });
  if (!st && st.code() != errc::corrupt)
    return st;
  if (!st)
    report.problem = verify_problem{0, st.message()};
  if (!report.problem)
    report.problem = checker.heads_done();
  if (!report.problem && (checker.last_position() != head.position || checker.last_hash() != head.hash))
    report.problem = verify_problem{0, "the log's head (position " + std::to_string(head.position)
                                         + ") is not where the chain ends (position "
                                         + std::to_string(checker.last_position()) + ")"};
  return report;
}


// -- the fast pass -------------------------------------------------------------

/// Stored records handed from the reader to the checkers, packed in one
/// buffer (batches are reused: no allocation per record).
struct record_batch {
  struct item {
    size_t stream_at = 0, stream_len = 0;
    uint64_t seq = 0;
    size_t bytes_at = 0, bytes_len = 0;
  };
  uint64_t number = 0;  // batches in the order the reader filled them
  std::string data;
  std::vector<item> items;
  std::string_view stream(const item& i) const { return std::string_view(data).substr(i.stream_at, i.stream_len); }
  std::string_view bytes(const item& i) const { return std::string_view(data).substr(i.bytes_at, i.bytes_len); }
};

/// A bounded hand-over of batches from one reader to several checkers.
class batch_queue {
public:
  explicit batch_queue(size_t capacity) : capacity_(capacity) {}
  /// Blocks while full; false once the checkers stopped.
  bool push(std::unique_ptr<record_batch> b) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return full_.size() < capacity_ || stopped_; });
    if (stopped_)
      return false;
    full_.push_back(std::move(b));
    not_empty_.notify_one();
    return true;
  }
  /// Blocks until a batch comes; nullptr once closed and drained.
  std::unique_ptr<record_batch> pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !full_.empty() || closed_ || stopped_; });
    if (full_.empty() || stopped_)
      return nullptr;
    auto b = std::move(full_.front());
    full_.pop_front();
    not_full_.notify_one();
    return b;
  }
  /// A spent batch, for the reader to fill again.
  void recycle(std::unique_ptr<record_batch> b) {
    b->data.clear();
    b->items.clear();
    std::lock_guard lock(mu_);
    spare_.push_back(std::move(b));
  }
  std::unique_ptr<record_batch> fresh() {
    std::lock_guard lock(mu_);
    if (spare_.empty())
      return std::make_unique<record_batch>();
    auto b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }
  /// A checker found a problem: everyone stops.
  void stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::unique_ptr<record_batch>> full_;
  std::vector<std::unique_ptr<record_batch>> spare_;
  bool closed_ = false, stopped_ = false;
};

std::string u64_bytes(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

/// Where a batch starts and ends: a stream split between two batches must
/// go on at a later position in the second.
struct batch_ends {
  uint64_t number = 0;
  std::string first_stream, last_stream;
  uint64_t first_position = 0, last_position = 0;
};

/// What one checker found in the batches it took.
struct tally {
  multiset_sum hashes;    // (position, hash) of every record
  multiset_sum prevs;     // (position - 1, prev_hash) of every record but the first position's
  multiset_sum pointers;  // (position, stream, seq) of every record
  uint64_t records = 0;
  uint64_t max_position = 0;
  std::string max_hash;
  std::optional<verify_problem> problem;
  std::vector<batch_ends> ends;
  std::string failure;  // not the log's fault (e.g. no memory): verify cannot say
};

void check_batch(const record_batch& b, const multiset_sum::key& key, tally& t) {
  std::string_view previous_stream;
  uint64_t previous_position = 0;
  for (const auto& item : b.items) {
    const auto stream = b.stream(item);
    auto rec = decode_event(b.bytes(item));
    const auto name = record_name(stream, item.seq);
    if (!rec) {
      t.problem = at(0, "the record of " + name + " is damaged: " + rec.error().message());
      return;
    }
    if (rec->stream != stream || rec->seq != item.seq) {
      t.problem = at(rec->position, "the record stored as " + name + " says it is "
                                      + record_name(rec->stream, rec->seq));
      return;
    }
    if (event_hash(*rec) != rec->hash) {
      t.problem = at(rec->position, "the hash stored with " + name + " does not match its contents");
      return;
    }
    const auto position = u64_bytes(rec->position);
    t.hashes.add(key, {"link", position, rec->hash});
    if (rec->position == 1) {
      if (!rec->prev_hash.empty()) {
        t.problem = at(1, "the first event has a prev_hash");
        return;
      }
    } else {
      t.prevs.add(key, {"link", u64_bytes(rec->position - 1), rec->prev_hash});
    }
    t.pointers.add(key, {"pointer", position, stream, u64_bytes(item.seq)});
    // A stream's events come in its seq order: their positions must rise too.
    if (stream == previous_stream && rec->position <= previous_position) {
      t.problem = at(rec->position, name + " is at a position before the seq before it");
      return;
    }
    previous_stream = stream;
    previous_position = rec->position;
    if (&item == &b.items.front())
      t.ends.push_back({b.number, std::string(stream), {}, rec->position, 0});
    ++t.records;
    if (rec->position > t.max_position) {
      t.max_position = rec->position;
      t.max_hash = rec->hash;
    }
  }
  if (!b.items.empty()) {
    t.ends.back().last_stream.assign(previous_stream);
    t.ends.back().last_position = previous_position;
  }
}

/// The sequential passes. nullopt: verified (report filled in); a problem
/// otherwise, or the storage error.
result<std::optional<verify_problem>> fast_pass(const event_store& store, const verify_options& opts,
                                                const progress_fn& progress, verify_report& report) {
  const auto key = multiset_sum::key::random();
  const uint64_t total = store.head().position;
  const unsigned workers = std::max(opts.threads, 1u);
  batch_queue queue(4 * workers);
  std::vector<tally> tallies(workers);
  std::vector<std::thread> checkers;
  for (unsigned w = 0; w < workers; ++w)
    checkers.emplace_back([&, w] {
      try {
        while (auto b = queue.pop()) {
          check_batch(*b, key, tallies[w]);
          queue.recycle(std::move(b));
          if (tallies[w].problem) {
            queue.stop();
            return;
          }
        }
      } catch (const std::exception& ex) {
        tallies[w].failure = ex.what();
        queue.stop();
      }
    });

  // 1. Every stored record, in key order: streams one after another, each
  //    with seqs 1, 2, 3…
  std::unordered_map<std::string, uint64_t> last_seq;
  std::string stream;
  uint64_t seq = 0, scanned = 0, batches = 0;
  std::optional<verify_problem> problem;
  auto batch = queue.fresh();
  batch->number = batches++;
  constexpr size_t batch_records = 1024;
  auto st = scan_stream_records(store, [&](const stored_stream_record& r) {
    if (!r.well_formed) {
      problem = at(0, "the stored stream record key " + r.printable_key + " is malformed");
      return false;
    }
    if (r.stream != stream) {
      if (!stream.empty())
        last_seq.emplace(stream, seq);
      stream.assign(r.stream);
      seq = 0;
    }
    if (r.seq != seq + 1) {
      problem = at(0, record_name(r.stream, r.seq) + " is stored after seq " + std::to_string(seq)
                        + " of its stream (a gap or a stray record)");
      return false;
    }
    seq = r.seq;
    auto& item = batch->items.emplace_back();
    item.stream_at = batch->data.size();
    item.stream_len = r.stream.size();
    batch->data.append(r.stream);
    item.seq = r.seq;
    item.bytes_at = batch->data.size();
    item.bytes_len = r.bytes.size();
    batch->data.append(r.bytes);
    if (batch->items.size() == batch_records) {
      if (!queue.push(std::move(batch)))
        return false;  // a checker found a problem
      batch = queue.fresh();
      batch->number = batches++;
      scanned += batch_records;
      if (progress && scanned % (64 * batch_records) == 0)
        progress("verify", scanned, total);
    }
    return true;
  });
  if (!stream.empty())
    last_seq.emplace(stream, seq);
  if (st && !problem && !batch->items.empty())
    queue.push(std::move(batch));
  queue.close();
  for (auto& c : checkers)
    c.join();
  if (!st)
    return st;
  tally all;
  for (auto& t : tallies)
    if (!t.failure.empty())
      return status{errc::io_error, "verify could not go on: " + t.failure};
  std::vector<batch_ends> ends;
  for (auto& t : tallies) {
    if (t.problem && !problem)
      problem = t.problem;
    ends.insert(ends.end(), t.ends.begin(), t.ends.end());
    all.hashes.add(t.hashes);
    all.prevs.add(t.prevs);
    all.pointers.add(t.pointers);
    all.records += t.records;
    if (t.max_position > all.max_position) {
      all.max_position = t.max_position;
      all.max_hash = t.max_hash;
    }
  }
  if (problem)
    return problem;
  std::sort(ends.begin(), ends.end(), [](const batch_ends& a, const batch_ends& b) { return a.number < b.number; });
  for (size_t i = 1; i < ends.size(); ++i)
    if (ends[i].first_stream == ends[i - 1].last_stream && ends[i].first_position <= ends[i - 1].last_position)
      return std::optional<verify_problem>(
        at(ends[i].first_position, "stream " + ends[i].first_stream + " has an event at a position before the seq before it"));

  // 2. The global index, in position order: no gaps, and the same pointers.
  multiset_sum pointers;
  uint64_t next = 1;
  st = scan_global_index(store, 65536, [&](std::vector<indexed_record>& entries) {
    for (const auto& e : entries) {
      if (!e.problem.empty()) {
        problem = at(next, e.problem);
        return false;
      }
      if (e.position != next) {
        problem = at(next, "position " + std::to_string(next) + " is missing from the global index");
        return false;
      }
      pointers.add(key, {"pointer", u64_bytes(e.position), e.stream, u64_bytes(e.seq)});
      ++next;
    }
    if (progress)
      progress("verify index", next - 1, total);
    return true;
  });
  if (!st)
    return st;
  if (problem)
    return problem;
  const uint64_t last = next - 1;
  if (all.records != last || all.max_position != last)
    return std::optional<verify_problem>(at(0, "the global index holds " + std::to_string(last) + " positions, the streams "
                                                 + std::to_string(all.records) + " records up to position "
                                                 + std::to_string(all.max_position)));
  if (!(pointers == all.pointers))
    return std::optional<verify_problem>(at(0, "the global index and the stream records do not point to each other"));
  if (last > 0)
    all.hashes.remove(key, {"link", u64_bytes(last), all.max_hash});
  if (!(all.hashes == all.prevs))
    return std::optional<verify_problem>(at(0, "an event's prev_hash is not the hash of the event before it"));

  // 3. Every stream head says how many events its stream has.
  st = scan_stream_heads(store, [&](std::string_view name, std::optional<uint64_t> head) {
    auto i = last_seq.find(std::string(name));
    if (!head || i == last_seq.end() || i->second != *head) {
      problem = at(0, "the head of stream " + std::string(name) + " disagrees with its records");
      return false;
    }
    last_seq.erase(i);
    return true;
  });
  if (!st)
    return st;
  if (problem)
    return problem;
  if (!last_seq.empty())
    return std::optional<verify_problem>(at(0, "stream " + last_seq.begin()->first + " has no head"));
  report.events = last;
  report.head_position = last;
  report.head_hash = all.max_hash;
  return std::optional<verify_problem>{};
}

} // namespace

result<verify_report> verify_log(const event_store& store, const verify_options& opts, const progress_fn& progress) {
  verify_report report;
  auto fast = fast_pass(store, opts, progress, report);
  if (fast && !*fast) {
    const auto head = store.head();
    if (head.position == report.head_position && head.hash == report.head_hash)
      return report;
  }
  if (!fast && fast.error().code() != errc::corrupt)
    return fast.error();
  // Something is wrong: the walk in position order says where first.
  auto exact = exact_walk(store, opts, progress);
  if (!exact || exact->problem)
    return exact;
  // The walk found nothing (the log changed meanwhile?): report what the
  // fast pass saw rather than "verified".
  exact->problem = fast ? (*fast ? **fast : verify_problem{0, "the log's head is not where its chain ends"})
                        : verify_problem{0, fast.error().message()};
  return exact;
}

} // namespace backline::audit
