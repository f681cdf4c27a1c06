// The stored form of an event (one JSON object) and its chained hash.

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>

#include "backline/event_store.hpp"
#include "backline/sha256.hpp"
#include "persistence/keys.hpp"

namespace backline {

namespace {

/// "<decimal byte length>:<bytes>", appended to what is to be digested.
bool append_field(std::string& out, std::string_view field) {
  std::array<char, 24> len{};
  auto [end, ec] = std::to_chars(len.data(), len.data() + len.size(), field.size());
  if (ec != std::errc{})
    return false;
  *end++ = ':';
  out.append(len.data(), end).append(field);
  return true;
}

void append_decimal(std::string& out, uint64_t n) {
  char digits[24];  // 24 bytes always hold a u64
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

std::string decimal(uint64_t v) {
  std::string out;
  append_decimal(out, v);
  return out;
}

constexpr std::string_view field_names[] = {
  "position", "stream", "seq", "type", "time", "actor", "payload", "prev_hash", "hash",
};

bool is_hex_sha256(std::string_view s) {
  if (s.size() != 64)
    return false;
  // Without a branch per character: hex digits are random, and a
  // mispredicted branch each made this check cost more than decoding.
  static constexpr auto hex_digit = [] {
    std::array<unsigned char, 256> t{};
    for (int c = '0'; c <= '9'; ++c)
      t[static_cast<size_t>(c)] = 1;
    for (int c = 'a'; c <= 'f'; ++c)
      t[static_cast<size_t>(c)] = 1;
    return t;
  }();
  unsigned all = 1;
  for (char c : s)
    all &= hex_digit[static_cast<unsigned char>(c)];
  return all == 1;
}

/// A field name from untrusted input, short and printable, for messages.
std::string quoted_name(std::string_view name) {
  std::string out = "\"";
  for (char c : name.substr(0, 40)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (name.size() > 40)
    out.append("...");
  out.push_back('"');
  return out;
}

status corrupt(std::string what) {
  return {errc::corrupt, "event record: " + std::move(what)};
}

/// A non-negative JSON integer (Boost.JSON parses it as int64 when it fits,
/// as uint64 otherwise); doubles such as 1.0 or 1e3 are refused.
result<uint64_t> get_u64(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v)
    return corrupt("missing field \"" + std::string(name) + "\"");
  if (auto* u = v->if_uint64())
    return *u;
  if (auto* i = v->if_int64(); i && *i >= 0)
    return static_cast<uint64_t>(*i);
  return corrupt("field \"" + std::string(name) + "\" is not a non-negative integer");
}

result<std::string> get_string(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v)
    return corrupt("missing field \"" + std::string(name) + "\"");
  auto* s = v->if_string();
  if (!s)
    return corrupt("field \"" + std::string(name) + "\" is not a string");
  return std::string(s->data(), s->size());
}

/// The checks every decoded record passes, whichever way it was read.
result<event_record> checked(event_record e) {
  if (e.position == 0 || e.seq == 0)
    return corrupt("position and seq start at 1");
  if (e.stream.empty())
    return corrupt("field \"stream\" is empty");
  if (!e.prev_hash.empty() && !is_hex_sha256(e.prev_hash))
    return corrupt("field \"prev_hash\" is not a lowercase hex SHA-256");
  if (!is_hex_sha256(e.hash))
    return corrupt("field \"hash\" is not a lowercase hex SHA-256");
  return e;
}

result<event_record> decode_object(const boost::json::object& o) {
  for (const auto& kv : o) {
    bool known = false;
    for (auto name : field_names)
      known = known || kv.key() == name;
    if (!known)
      return corrupt("unexpected field " + quoted_name(kv.key()));
  }
  event_record e;
  auto position = get_u64(o, "position");
  if (!position)
    return position.error();
  auto seq = get_u64(o, "seq");
  if (!seq)
    return seq.error();
  if (*position == 0 || *seq == 0)
    return corrupt("position and seq start at 1");
  e.position = *position;
  e.seq = *seq;
  // The string fields, in encode order.
  std::string* targets[] = {&e.stream, &e.type,      &e.time, &e.actor,
                            &e.payload, &e.prev_hash, &e.hash};
  std::string_view names[] = {"stream", "type", "time", "actor", "payload", "prev_hash", "hash"};
  for (size_t i = 0; i < std::size(names); ++i) {
    auto s = get_string(o, names[i]);
    if (!s)
      return s.error();
    *targets[i] = std::move(s).value();
  }
  return checked(std::move(e));
}

// -- the canonical form, read directly -----------------------------------------
//
// Every record the store writes is encode_event's output: the nine fields in
// one order, no whitespace. Reading exactly that form needs no parse tree,
// which makes whole-log passes (the audit) several times faster. Anything
// else, including every malformed record, takes the general path above, so
// both paths accept and refuse the same bytes with the same messages.

class canonical_reader {
public:
  explicit canonical_reader(std::string_view s) : s_(s) {}

  bool literal(std::string_view text) {
    if (s_.substr(at_, text.size()) != text)
      return false;
    at_ += text.size();
    return true;
  }
  /// A JSON integer without sign, fraction or leading zero, fitting a u64.
  bool number(uint64_t& out) {
    const size_t start = at_;
    uint64_t v = 0;
    while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') {
      const uint64_t digit = static_cast<uint64_t>(s_[at_] - '0');
      if (v > (UINT64_MAX - digit) / 10)
        return false;
      v = v * 10 + digit;
      ++at_;
    }
    const size_t len = at_ - start;
    if (len == 0 || (len > 1 && s_[start] == '0'))
      return false;
    out = v;
    return true;
  }
  /// A JSON string, unescaped; false for anything the general path should judge.
  bool string(std::string& out) {
    if (!literal("\""))
      return false;
    out.clear();
    bool wide = false;  // bytes >= 0x80 seen: validate as UTF-8 at the end
    while (at_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[at_]);
      if (c == '"') {
        ++at_;
        return !wide || persistence::valid_utf8(out);
      }
      if (c < 0x20)
        return false;
      if (c != '\\') {
        // The run up to the next quote, backslash or control byte, at once.
        const size_t end = plain_run_end(at_ + 1, wide);
        wide = wide || c >= 0x80;
        out.append(s_.data() + at_, end - at_);
        at_ = end;
        continue;
      }
      if (++at_ >= s_.size())
        return false;
      switch (s_[at_++]) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp))
            return false;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t low = 0;
            if (!literal("\\u") || !hex4(low) || low < 0xdc00 || low > 0xdfff)
              return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool at_end() const { return at_ == s_.size(); }

private:
  /// Where the run of plain string bytes from `from` ends (at a quote, a
  /// backslash or a control byte), eight bytes at a time where it can;
  /// `wide` is set when a byte >= 0x80 is passed.
  size_t plain_run_end(size_t from, bool& wide) const {
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const auto has_zero_byte = [](uint64_t v) { return (v - ones) & ~v & highs; };
    const auto has_byte_below = [](uint64_t v, uint64_t n) { return (v - ones * n) & ~v & highs; };
    size_t end = from;
    uint64_t seen = 0;
    while (s_.size() - end >= 8) {
      uint64_t v;
      std::memcpy(&v, s_.data() + end, 8);
      if (has_zero_byte(v ^ (ones * '"')) | has_zero_byte(v ^ (ones * '\\')) | has_byte_below(v, 0x20))
        break;
      seen |= v;
      end += 8;
    }
    while (end < s_.size()) {
      const auto d = static_cast<unsigned char>(s_[end]);
      if (d == '"' || d == '\\' || d < 0x20)
        break;
      seen |= d;
      ++end;
    }
    wide = wide || (seen & highs) != 0;
    return end;
  }

  bool hex4(uint32_t& out) {
    if (s_.size() - at_ < 4)
      return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[at_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return false;
    }
    out = v;
    return true;
  }
  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::string_view s_;
  size_t at_ = 0;
};

/// The record, when bytes are exactly encode_event's form; nullopt otherwise.
std::optional<event_record> decode_canonical(std::string_view bytes) {
  canonical_reader r(bytes);
  event_record e;
  if (r.literal("{\"position\":") && r.number(e.position) && r.literal(",\"stream\":") && r.string(e.stream)
      && r.literal(",\"seq\":") && r.number(e.seq) && r.literal(",\"type\":") && r.string(e.type)
      && r.literal(",\"time\":") && r.string(e.time) && r.literal(",\"actor\":") && r.string(e.actor)
      && r.literal(",\"payload\":") && r.string(e.payload) && r.literal(",\"prev_hash\":") && r.string(e.prev_hash)
      && r.literal(",\"hash\":") && r.string(e.hash) && r.literal("}") && r.at_end())
    return e;
  return std::nullopt;
}

} // namespace

std::string event_hash(const event_record& e) {
  const std::string position = decimal(e.position);
  const std::string seq = decimal(e.seq);
  // The fields gathered into one buffer and digested in one call: sixteen
  // small updates cost more than the copy (the audit hashes every event).
  thread_local std::string input;
  input.clear();
  for (std::string_view field : {std::string_view(e.prev_hash), std::string_view(position),
                                 std::string_view(e.stream), std::string_view(seq),
                                 std::string_view(e.type), std::string_view(e.time),
                                 std::string_view(e.actor), std::string_view(e.payload)}) {
    if (!append_field(input, field))
      return {};
  }
  try {
    auto md = sha256(input);
    return hex_of(md.data(), md.size());
  } catch (const std::runtime_error&) {
    return {};  // cannot happen with a working libcrypto; "" never verifies
  }
}

namespace {

// A JSON string literal for `text`, escaped by Boost.JSON's own serializer
// (so the bytes are exactly those of serialising an object holding it),
// streamed into `out` without building a JSON value first.
void append_json_string(std::string& out, std::string_view text) {
  thread_local boost::json::serializer sr;
  const boost::json::string_view sv(text.data(), text.size());
  sr.reset(sv);
  char buffer[1024];
  while (!sr.done()) {
    const auto part = sr.read(buffer, sizeof buffer);
    out.append(part.data(), part.size());
  }
}

} // namespace

std::string encode_event(const event_record& e) {
  // The nine fields in the documented order, no whitespace: what
  // boost::json::serialize writes for an object holding them in that order
  // (a test keeps the two equal), without the object's allocations, as this
  // is on the journal's path once per event.
  std::string out;
  out.reserve(160 + e.stream.size() + e.type.size() + e.time.size() + e.actor.size() + e.payload.size() * 5 / 4
              + e.prev_hash.size() + e.hash.size());
  auto number = [&](std::string_view key, uint64_t v) {
    out += key;
    append_decimal(out, v);
  };
  auto text = [&](std::string_view key, std::string_view v) {
    out += key;
    append_json_string(out, v);
  };
  number("{\"position\":", e.position);
  text(",\"stream\":", e.stream);
  number(",\"seq\":", e.seq);
  text(",\"type\":", e.type);
  text(",\"time\":", e.time);
  text(",\"actor\":", e.actor);
  // A JSON string holding the payload's text: re-serialising a parsed
  // payload could change its bytes, and the bytes are what is hashed.
  text(",\"payload\":", e.payload);
  text(",\"prev_hash\":", e.prev_hash);
  text(",\"hash\":", e.hash);
  out += '}';
  return out;
}

result<event_record> decode_event(std::string_view bytes) {
  // Stored bytes are untrusted here (disk corruption, tampering, fuzzing):
  // every failure, even an allocation failure, becomes errc::corrupt.
  try {
    if (auto fast = decode_canonical(bytes))
      return checked(std::move(*fast));
    // The parsed tree lives in a buffer on the stack (and, beyond it, in
    // blocks freed all at once): decoding is on every reader's path, and
    // the audit's whole-log passes decode millions of records.
    unsigned char buffer[4096];
    boost::json::monotonic_resource scratch(buffer, sizeof buffer);
    thread_local boost::json::parser parser;
    parser.reset(&scratch);
    boost::json::error_code ec;
    parser.write(bytes.data(), bytes.size(), ec);  // the whole text: incomplete or trailing bytes are errors
    boost::json::value v = ec ? boost::json::value() : parser.release();
    if (ec)
      return corrupt("not JSON (" + ec.message() + ")");
    auto* o = v.if_object();
    if (!o)
      return corrupt("not a JSON object");
    return decode_object(*o);
  } catch (const std::exception& ex) {
    return corrupt(std::string("cannot decode: ") + ex.what());
  } catch (...) {
    return corrupt("cannot decode");
  }
}

} // namespace backline
