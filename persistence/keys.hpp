#pragma once
// The RocksDB key layout of the event store (see design.md, "Event log
// layout"). Internal to persistence/ (and its tests): integers are big-endian
// u64 so that byte order is numeric order and prefix scans come out sorted.
//
//   s|<stream>|<seq:u64be>  -> encode_event(...) bytes
//   g|<pos:u64be>           -> <seq:u64be><stream bytes>  (pointer into s|)
//   (h|<stream>             -> head seq: written until 2026-12; a stream's head
//                              is now its last s| key, and open deletes these)
//   i|<key>                 -> stored idempotency result
//   snap|<stream>           -> <version:u64be><data>
//   v|<view>|               -> <position:u64be>: the global position the view covers
//   v|<view>|<key>          -> one entry of a view (derived from the log, opaque to the store)

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace backline::persistence {

inline constexpr std::string_view stream_prefix_tag = "s|";
inline constexpr std::string_view global_prefix_tag = "g|";
inline constexpr std::string_view retired_head_prefix_tag = "h|";  // see the layout above
inline constexpr std::string_view idempotency_prefix_tag = "i|";
inline constexpr std::string_view snapshot_prefix_tag = "snap|";
inline constexpr std::string_view view_prefix_tag = "v|";

/// Stream names longer than this are rejected (keys stay small).
inline constexpr size_t max_stream_name_bytes = 200;

inline void append_u64be(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

/// Reads 8 big-endian bytes; the caller checks the size.
inline uint64_t read_u64be(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

inline std::string u64be(uint64_t v) {
  std::string out;
  append_u64be(out, v);
  return out;
}

/// Parses a value that must be exactly one u64be.
inline std::optional<uint64_t> parse_u64be(std::string_view bytes) {
  if (bytes.size() != 8)
    return std::nullopt;
  return read_u64be(bytes);
}

/// Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF): every
/// text field is stored inside JSON, which must be valid UTF-8 to read back.
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the 2nd byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < len)
      return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi)
      return false;
    for (size_t k = 2; k < len; ++k) {
      auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf)
        return false;
    }
    i += len;
  }
  return true;
}

/// Non-empty, at most max_stream_name_bytes of UTF-8, no '|' (the key
/// separator) and no control characters (they would make keys and logs
/// ambiguous).
inline bool valid_stream_name(std::string_view stream) {
  if (stream.empty() || stream.size() > max_stream_name_bytes)
    return false;
  for (char c : stream) {
    auto u = static_cast<unsigned char>(c);
    if (c == '|' || u < 0x20 || u == 0x7f)
      return false;
  }
  return valid_utf8(stream);
}

/// "s|<stream>|": every event key of the stream starts with it.
inline std::string stream_events_prefix(std::string_view stream) {
  std::string k;
  k.reserve(stream_prefix_tag.size() + stream.size() + 1);
  k.append(stream_prefix_tag).append(stream).push_back('|');
  return k;
}

/// The stream of an event key "s|<stream>|…": a stream name has no '|', so
/// the first one after the tag ends it (the seq's bytes may hold any value).
/// nullopt when there is none. The caller checks the rest of the key.
inline std::optional<std::string_view> event_key_stream(std::string_view key) {
  const auto rest = key.substr(std::min(key.size(), stream_prefix_tag.size()));
  const auto bar = rest.find('|');
  if (bar == std::string_view::npos)
    return std::nullopt;
  return rest.substr(0, bar);
}

inline std::string stream_key(std::string_view stream, uint64_t seq) {
  auto k = stream_events_prefix(stream);
  append_u64be(k, seq);
  return k;
}

inline std::string global_key(uint64_t position) {
  std::string k(global_prefix_tag);
  append_u64be(k, position);
  return k;
}

inline std::string global_pointer(std::string_view stream, uint64_t seq) {
  std::string v;
  v.reserve(8 + stream.size());
  append_u64be(v, seq);
  v.append(stream);
  return v;
}

inline std::string idempotency_key(std::string_view key) {
  return std::string(idempotency_prefix_tag).append(key);
}

inline std::string snapshot_key(std::string_view stream) {
  return std::string(snapshot_prefix_tag).append(stream);
}

/// "v|<view>|": the view's position key, and the start of each of its entries' keys.
inline std::string view_prefix(std::string_view view) {
  std::string k(view_prefix_tag);
  k.append(view).push_back('|');
  return k;
}

inline std::string view_entry_key(std::string_view view, std::string_view key) {
  return view_prefix(view).append(key);
}

/// The smallest key greater than every key starting with prefix, for
/// ReadOptions::iterate_upper_bound; empty when there is none (all 0xff).
inline std::string prefix_upper_bound(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty()) {
    auto last = static_cast<unsigned char>(bound.back());
    if (last != 0xff) {
      bound.back() = static_cast<char>(last + 1);
      return bound;
    }
    bound.pop_back();
  }
  return bound;
}

/// Keys as they appear in error messages: printable bytes as is, the rest
/// (big-endian integers) as \xNN.
inline std::string printable_key(std::string_view key) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out.append("\\x");
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xf]);
    }
  }
  return out;
}

} // namespace backline::persistence
