// Tokens and ids: random bytes from OpenSSL, hashes with SHA-256.

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "backline/inbox.hpp"
#include "backline/sha256.hpp"

namespace backline::inbox {
namespace {

std::string random_hex(size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1)
    throw std::runtime_error("no random bytes from OpenSSL");
  return hex_of(buf, bytes);
}

// Ids need unpredictable bytes, not a call into OpenSSL each: a thread draws
// 256 at a time and hands them out (one RAND_bytes per id was about 4% of
// the actors' time on the message-post path). Tokens, which are secrets,
// still take theirs straight from RAND_bytes.
std::string random_id_hex(size_t bytes) {
  thread_local std::array<unsigned char, 256> pool{};
  thread_local size_t used = pool.size();
  if (bytes > pool.size())
    throw std::runtime_error("an id of more than 256 random bytes");
  if (pool.size() - used < bytes) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
      throw std::runtime_error("no random bytes from OpenSSL");
    used = 0;
  }
  auto out = hex_of(pool.data() + used, bytes);
  OPENSSL_cleanse(pool.data() + used, bytes);  // handed out once
  used += bytes;
  return out;
}

} // namespace

std::string hash_token(std::string_view token) {
  auto md = sha256(token);
  return hex_of(md.data(), md.size());
}

std::string new_token() { return "bl_" + random_hex(32); }

std::string new_id(std::string_view prefix) { return std::string(prefix) + random_id_hex(8); }

} // namespace backline::inbox
