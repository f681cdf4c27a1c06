// The event record decoder (persistence/event_codec): stored bytes are
// untrusted (a damaged disk, tampering). decode_event answers a record or
// errc::corrupt for any bytes, never throws; a record it accepts encodes
// and decodes back to itself, and hashing it is defined.

#include "backline/event_store.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace backline;

namespace {

bool same(const event_record& a, const event_record& b) {
  return a.position == b.position && a.stream == b.stream && a.seq == b.seq && a.type == b.type &&
         a.time == b.time && a.actor == b.actor && a.payload == b.payload && a.prev_hash == b.prev_hash &&
         a.hash == b.hash;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto decoded = decode_event(backline::fuzz::bytes_of(data, size));
  if (!decoded) {
    FUZZ_CHECK(decoded.error().code() == errc::corrupt);
    FUZZ_CHECK(decoded.error().message().rfind("event record: ", 0) == 0);
    return 0;
  }
  const event_record& e = *decoded;
  FUZZ_CHECK(e.position > 0 && e.seq > 0 && !e.stream.empty() && e.hash.size() == 64);
  auto again = decode_event(encode_event(e));
  FUZZ_CHECK(again && same(*again, e));
  FUZZ_CHECK(encode_event(*again) == encode_event(e));
  FUZZ_CHECK(event_hash(e).size() == 64);
  return 0;
}
