#pragma once
// Whole-log scans for the audit tools: the global log in position order as
// stored (undecoded, so that damage is seen rather than hidden), every stored
// stream record, every stream head. persistence/ implements them over the
// store's raw cursors; audit/ decides what is right or wrong.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backline/event_store.hpp"

namespace backline {

/// One entry of the global index (g|<position>) and the stream record it
/// points to, as stored.
struct indexed_record {
  uint64_t position = 0;  // from the global key (0 when the key is malformed)
  std::string stream;     // from the global entry's pointer
  uint64_t seq = 0;
  bool found = false;     // the pointed-to stream record exists
  std::string bytes;      // that record's stored bytes, when found
  std::string problem;    // non-empty: the global entry itself is malformed (what and where)
};

struct log_scan_options {
  uint64_t from_position = 1;  // the first position to visit
  size_t window = 131072;      // global entries read (and visited) at a time: about 64 MB of
                               // records; larger windows read each stream's blocks fewer times
  unsigned threads = 1;        // readers of one window's stream records
};

/// Visits the global log in position order, one window at a time, until
/// visit returns false or the log ends. Within a window the stream records
/// are read in key order, stream by stream: a large log is read almost
/// sequentially instead of by one random lookup per event. A storage error
/// (not a malformed entry: those are reported in the entries) ends the scan
/// with that error.
status scan_global_log(const event_store& store, const log_scan_options& opts,
                       const std::function<bool(std::vector<indexed_record>&)>& visit);

/// Visits the global index alone (no stream record is read), in position
/// order, one window at a time: the entries come without bytes (found is
/// false), or with a problem when malformed.
status scan_global_index(const event_store& store, size_t window,
                         const std::function<bool(std::vector<indexed_record>&)>& visit,
                         uint64_t from_position = 1, uint64_t to_position = 0 /* exclusive; 0: to the end */);

/// A stored stream record (s|<stream>|<seq>), in key order.
struct stored_stream_record {
  bool well_formed = false;  // the key has a valid stream name and an 8-byte seq
  std::string_view stream;   // when well formed
  uint64_t seq = 0;          // when well formed
  std::string printable_key; // when malformed: the key as error messages show it
  std::string_view bytes;    // the stored value
};

/// Visits every stored stream record in key order until visit returns false;
/// with from_stream / to_stream, only the keys from the first record of
/// from_stream up to (not including) those of to_stream ("": no bound), so
/// that parts of the log can be read side by side.
status scan_stream_records(const event_store& store,
                           const std::function<bool(const stored_stream_record&)>& visit,
                           const std::string& from_stream = {}, const std::string& to_stream = {});

/// Visits every stream in key order with its head: the seq in its last
/// event key (0 when that key is malformed; scan_stream_records names it).
status scan_stream_heads(const event_store& store,
                         const std::function<bool(std::string_view stream, uint64_t head)>& visit);

} // namespace backline
