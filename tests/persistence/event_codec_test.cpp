// decode_event reads the canonical form (what encode_event writes) directly
// and everything else through the general JSON parser: both paths must
// accept and refuse the same bytes, and give the same record.

#include <catch2/catch.hpp>

#include <random>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "backline/event_store.hpp"

using namespace backline;

namespace {

event_record sample_record() {
  event_record e;
  e.position = 18446744073709551615ull;
  e.stream = "thread-ch-1.t1";
  e.seq = 42;
  e.type = "slack_reply_received";
  e.time = "2026-11-25T13:00:00.123Z";
  e.actor = "slack";
  // Escapes, control characters, a NUL, non-ASCII (2, 3 and 4 bytes) and a
  // JSON payload inside a string.
  e.payload = std::string(R"({"text":"Yes \"paid\"\n\ttab \\ slash / é € 😀","x":1})") + '\0' + "\x01\x1f end";
  e.prev_hash = std::string(64, 'a');
  e.hash = std::string(64, '0');
  return e;
}

bool same(const event_record& a, const event_record& b) {
  return a.position == b.position && a.stream == b.stream && a.seq == b.seq && a.type == b.type
         && a.time == b.time && a.actor == b.actor && a.payload == b.payload && a.prev_hash == b.prev_hash
         && a.hash == b.hash;
}

/// The general path's answer for the same bytes: a leading space is not the
/// canonical form, and JSON ignores it.
result<event_record> decoded_generally(const std::string& bytes) { return decode_event(" " + bytes); }

} // namespace

TEST_CASE("decode_event: the canonical form round-trips exactly, escapes and all", "[persistence]") {
  const auto e = sample_record();
  const auto bytes = encode_event(e);
  auto fast = decode_event(bytes);
  REQUIRE(fast);
  CHECK(same(*fast, e));
  auto general = decoded_generally(bytes);
  REQUIRE(general);
  CHECK(same(*general, e));
  // \u escapes (as another writer might emit them) decode to the same text.
  auto escaped = decode_event(R"({"position":1,"stream":"chat-\u00e9","seq":1,"type":"t","time":"x","actor":"\ud83d\ude00",)"
                              R"("payload":"{}","prev_hash":"","hash":")" + std::string(64, 'b') + "\"}");
  REQUIRE(escaped);
  CHECK(escaped->stream == "chat-\xc3\xa9");
  CHECK(escaped->actor == "\xf0\x9f\x98\x80");
}

TEST_CASE("decode_event: the direct reading and the general parser agree on damaged bytes", "[persistence]") {
  const auto bytes = encode_event(sample_record());
  std::mt19937 rng(20261125);
  constexpr std::string_view replacements = "\"\\{}:,0-u\x80\xff\n ";
  constexpr std::string_view insertions = "\"\\0 9\xc3";
  int agreed_ok = 0, agreed_corrupt = 0;
  for (int i = 0; i < 20000; ++i) {
    auto damaged = bytes;
    switch (i % 4) {
      case 0:  // a byte flipped
        damaged[rng() % damaged.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // cut short
        damaged.resize(rng() % damaged.size());
        break;
      case 2:  // a byte replaced by an interesting one
        damaged[rng() % damaged.size()] = replacements[rng() % replacements.size()];
        break;
      default:  // a byte inserted
        damaged.insert(damaged.begin() + static_cast<long>(rng() % damaged.size()),
                       insertions[rng() % insertions.size()]);
        break;
    }
    auto direct = decode_event(damaged);
    auto general = decoded_generally(damaged);
    INFO(i);
    REQUIRE(static_cast<bool>(direct) == static_cast<bool>(general));
    if (direct) {
      CHECK(same(*direct, *general));
      ++agreed_ok;
    } else {
      CHECK(direct.error().code() == errc::corrupt);
      ++agreed_corrupt;
    }
  }
  // Both outcomes were exercised.
  CHECK(agreed_ok > 100);
  CHECK(agreed_corrupt > 100);
}

TEST_CASE("encode_event writes exactly what serialising the JSON object would", "[persistence]") {
  // encode_event streams its fields instead of building a boost::json
  // object; the bytes (which are hashed and audited) must not change.
  auto as_object = [](const event_record& e) {
    boost::json::object o;
    o.emplace("position", e.position);
    o.emplace("stream", e.stream);
    o.emplace("seq", e.seq);
    o.emplace("type", e.type);
    o.emplace("time", e.time);
    o.emplace("actor", e.actor);
    o.emplace("payload", e.payload);
    o.emplace("prev_hash", e.prev_hash);
    o.emplace("hash", e.hash);
    return boost::json::serialize(o);
  };
  std::mt19937 rng(7);
  const std::string alphabet = std::string("ab\"\\/\n\t\r\b\f\x01\x1f\x7f é€😀{}:,") + '\0';
  auto random_text = [&](size_t max_len) {
    std::string s;
    const size_t len = rng() % (max_len + 1);
    while (s.size() < len)
      s += alphabet[rng() % alphabet.size()];
    return s;
  };
  auto e = sample_record();
  CHECK(encode_event(e) == as_object(e));
  for (int i = 0; i < 300; ++i) {
    e.position = i % 3 == 0 ? rng() : static_cast<uint64_t>(i);
    e.seq = i % 5 == 0 ? 18446744073709551615ull : rng() % 1000;
    e.stream = random_text(20);
    e.type = random_text(10);
    e.actor = random_text(10);
    e.time = random_text(30);
    e.payload = random_text(i % 10 == 0 ? 5000 : 300);  // longer than the serializer's buffer too
    e.prev_hash = random_text(64);
    e.hash = random_text(64);
    const auto text = encode_event(e);
    REQUIRE(text == as_object(e));  // (random fields are not a valid record: decoding is tested above)
  }
}
