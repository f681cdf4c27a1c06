// `backline audit verify`: the hash chain, the global index and the streams
// checked against each other, event by event.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <openssl/rand.h>

#include "backline/audit.hpp"
#include "backline/sha256.hpp"

namespace backline::audit {
namespace {

/// How messages name an event: its stream and seq (keys hold binary seqs).
std::string record_name(std::string_view stream, uint64_t seq) {
  return "stream " + std::string(stream) + " seq " + std::to_string(seq);
}

verify_problem at(uint64_t position, std::string what) { return {position, std::move(what)}; }

/// SHA-256 of the key and the length-prefixed parts: the first 16 bytes as two words.
std::pair<uint64_t, uint64_t> keyed_digest(const multiset_sum::key& k, std::initializer_list<std::string_view> parts) {
  // One buffer, one update: the parts are short, the calls are many.
  thread_local std::string input;
  input.assign(reinterpret_cast<const char*>(k.bytes), sizeof k.bytes);
  for (auto part : parts) {
    char length[24];
    auto [end, ec] = std::to_chars(length, length + sizeof length - 1, part.size());
    (void)ec;  // 23 digits hold any size
    *end++ = ':';
    input.append(length, end).append(part);
  }
  const auto md = sha256(input);  // throws if libcrypto fails
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
  if (checker.last_position() != head.position || checker.last_hash() != head.hash)
    report.problem = verify_problem{0, "the log's head (position " + std::to_string(head.position)
                                         + ") is not where the chain ends (position "
                                         + std::to_string(checker.last_position()) + ")"};
  return report;
}


// -- the fast pass -------------------------------------------------------------

std::string u64_bytes(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

/// What one reader found in its part of the stored records.
struct tally {
  multiset_sum hashes;    // (position, hash) of every record
  multiset_sum prevs;     // (position - 1, prev_hash) of every record but the first position's
  multiset_sum pointers;  // (position, stream, seq) of every record
  uint64_t records = 0;
  uint64_t max_position = 0;
  std::string max_hash;
  std::optional<verify_problem> problem;
  status failure;  // the part could not be read
};

/// Checks the stored records of the streams from `from` up to `to` (the
/// whole of each stream: a part never splits one).
void check_part(const event_store& store, const multiset_sum::key& key, const std::string& from,
                const std::string& to, std::atomic<uint64_t>& done, std::atomic<bool>& stop, tally& t) {
  std::string stream;
  uint64_t seq = 0, previous_position = 0, unreported = 0;
  t.failure = scan_stream_records(
    store,
    [&](const stored_stream_record& r) {
      if (stop)
        return false;
      if (!r.well_formed) {
        t.problem = at(0, "the stored stream record key " + r.printable_key + " is malformed");
        return false;
      }
      if (r.stream != stream) {
        stream.assign(r.stream);
        seq = 0;
        previous_position = 0;
      }
      // Named only when something is wrong: this runs for every event.
      const auto name = [&] { return record_name(r.stream, r.seq); };
      if (r.seq != seq + 1) {
        t.problem = at(0, name() + " is stored after seq " + std::to_string(seq) + " of its stream (a gap or a stray record)");
        return false;
      }
      seq = r.seq;
      auto rec = decode_event(r.bytes);
      if (!rec) {
        t.problem = at(0, "the record of " + name() + " is damaged: " + rec.error().message());
        return false;
      }
      if (rec->stream != r.stream || rec->seq != r.seq) {
        t.problem = at(rec->position, "the record stored as " + name() + " says it is " + record_name(rec->stream, rec->seq));
        return false;
      }
      if (event_hash(*rec) != rec->hash) {
        t.problem = at(rec->position, "the hash stored with " + name() + " does not match its contents");
        return false;
      }
      // A stream's events come in its seq order: their positions must rise too.
      if (rec->position <= previous_position) {
        t.problem = at(rec->position, name() + " is at a position before the seq before it");
        return false;
      }
      previous_position = rec->position;
      const auto position = u64_bytes(rec->position);
      t.hashes.add(key, {"link", position, rec->hash});
      if (rec->position == 1) {
        if (!rec->prev_hash.empty()) {
          t.problem = at(1, "the first event has a prev_hash");
          return false;
        }
      } else {
        t.prevs.add(key, {"link", u64_bytes(rec->position - 1), rec->prev_hash});
      }
      t.pointers.add(key, {"pointer", position, r.stream, u64_bytes(r.seq)});
      ++t.records;
      if (rec->position > t.max_position) {
        t.max_position = rec->position;
        t.max_hash = rec->hash;
      }
      if (++unreported == 4096) {
        done += unreported;
        unreported = 0;
      }
      return true;
    },
    from, to);
  done += unreported;
  if (t.problem)
    stop = true;
}

/// Streams where the stored records are cut into `parts` parts of about as
/// many events each (from the stream heads, the seqs of their last keys; a
/// damaged key only makes the parts uneven). parts - 1 stream names,
/// ascending in key order.
result<std::vector<std::string>> part_bounds(const event_store& store, unsigned parts) {
  std::vector<std::pair<std::string, uint64_t>> heads;  // in key order ("s|<stream>|")
  uint64_t total = 0;
  auto st = scan_stream_heads(store, [&](std::string_view stream, uint64_t head) {
    heads.emplace_back(std::string(stream), std::max<uint64_t>(head, 1));
    total += std::max<uint64_t>(head, 1);
    return true;
  });
  if (!st)
    return st;
  std::vector<std::string> bounds;
  uint64_t seen = 0;
  for (const auto& [stream, events] : heads) {
    if (bounds.size() + 1 >= parts)
      break;
    if (seen >= total * (bounds.size() + 1) / parts)
      bounds.push_back(stream);
    seen += events;
  }
  return bounds;
}

/// The sequential passes, each cut into parts read side by side. nullopt:
/// verified (report filled in); a problem otherwise, or the storage error.
result<std::optional<verify_problem>> fast_pass(const event_store& store, const verify_options& opts,
                                                const progress_fn& progress, verify_report& report) {
  const auto key = multiset_sum::key::random();
  const uint64_t total = store.head().position;
  const unsigned parts = std::max(opts.threads, 1u);
  using found = std::optional<verify_problem>;

  // Runs one job per part on its own thread; this thread reports progress.
  auto side_by_side = [&](const char* phase, size_t jobs, const std::function<void(size_t)>& job,
                          std::atomic<uint64_t>& done) {
    std::atomic<size_t> finished{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < jobs; ++i)
      threads.emplace_back([&, i] {
        job(i);
        ++finished;
      });
    while (finished < jobs) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (progress)
        progress(phase, done, total);
    }
    for (auto& t : threads)
      t.join();
  };

  // 1. Every stored record, in key order: streams one after another, each
  //    with seqs 1, 2, 3…
  auto bounds = part_bounds(store, parts);
  if (!bounds)
    return bounds.error();
  std::vector<std::string> edges{""};
  edges.insert(edges.end(), bounds->begin(), bounds->end());
  edges.push_back("");
  std::vector<tally> tallies(edges.size() - 1);
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  side_by_side("verify", tallies.size(), [&](size_t i) {
    try {
      check_part(store, key, edges[i], edges[i + 1], done, stop, tallies[i]);
    } catch (const std::exception& ex) {
      tallies[i].failure = status{errc::io_error, std::string("verify could not go on: ") + ex.what()};
      stop = true;
    }
  }, done);
  tally all;
  for (auto& t : tallies) {
    if (!t.failure && t.failure.code() != errc::corrupt)
      return t.failure;
    if (!t.failure)
      return found(at(0, t.failure.message()));  // RocksDB's checksums caught damage
    if (t.problem)
      return found(t.problem);
  }
  for (auto& t : tallies) {
    all.hashes.add(t.hashes);
    all.prevs.add(t.prevs);
    all.pointers.add(t.pointers);
    all.records += t.records;
    if (t.max_position > all.max_position) {
      all.max_position = t.max_position;
      all.max_hash = t.max_hash;
    }
  }

  // 2. The global index, in position order: no gaps, and the same pointers.
  const uint64_t last = total;  // the last global entry's position
  std::vector<multiset_sum> pointers(parts);
  std::vector<std::optional<verify_problem>> index_problems(parts);
  std::vector<status> index_failures(parts);
  std::atomic<uint64_t> indexed{0};
  side_by_side("verify index", parts, [&](size_t i) {
    const uint64_t from = 1 + last * i / parts;
    const uint64_t to = i + 1 == parts ? 0 : 1 + last * (i + 1) / parts;  // the last part reads to the end
    uint64_t next = from;
    index_failures[i] = scan_global_index(store, 65536, [&](std::vector<indexed_record>& entries) {
      for (const auto& e : entries) {
        if (!e.problem.empty()) {
          index_problems[i] = at(next, e.problem);
          return false;
        }
        if (e.position != next) {
          index_problems[i] = at(next, "position " + std::to_string(next) + " is missing from the global index");
          return false;
        }
        pointers[i].add(key, {"pointer", u64_bytes(e.position), e.stream, u64_bytes(e.seq)});
        ++next;
      }
      indexed += entries.size();
      return true;
    }, from, to);
    if (!index_problems[i] && to != 0 && next != to)
      index_problems[i] = at(next, "position " + std::to_string(next) + " is missing from the global index");
    if (!index_problems[i] && to == 0 && next != last + 1)
      index_problems[i] = at(0, "the global index ends at position " + std::to_string(next - 1) + ", its last key says "
                                  + std::to_string(last));
  }, indexed);
  for (size_t i = 0; i < parts; ++i) {
    if (!index_failures[i])
      return index_failures[i].code() == errc::corrupt ? found(at(0, index_failures[i].message()))
                                                        : result<found>(index_failures[i]);
    if (index_problems[i])
      return found(index_problems[i]);
  }
  multiset_sum index_pointers;
  for (const auto& p : pointers)
    index_pointers.add(p);
  if (all.records != last || all.max_position != last)
    return found(at(0, "the global index holds " + std::to_string(last) + " positions, the streams "
                         + std::to_string(all.records) + " records up to position " + std::to_string(all.max_position)));
  if (!(index_pointers == all.pointers))
    return found(at(0, "the global index and the stream records do not point to each other"));
  if (last > 0)
    all.hashes.remove(key, {"link", u64_bytes(last), all.max_hash});
  if (!(all.hashes == all.prevs))
    return found(at(0, "an event's prev_hash is not the hash of the event before it"));

  report.events = last;
  report.head_position = last;
  report.head_hash = all.max_hash;
  return found{};
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
